/* GET /v1/health, one word with its reasons, and GET /metrics in Prometheus' text format: every
 * protection's last point, lag against its group's RPO target and state (one series per state, 0 or
 * 1), its counters, whether each replica site answers, cutover runs by kind and status, HTTP
 * answers by route and code, and the process. Names follow Prometheus' conventions: a timestamp is
 * *_timestamp_seconds, a duration *_seconds, a counter *_total. */
#include "web/web.h"
#include "common/error.h"
#include "common/util.h"

#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define WEB_METRICS_HTTP_SERIES 512

/* One series per route of the table (NULL: no route matched) and status: a caller's names
 * never make new ones, and counting is a lookup, not a string built per request. */
static struct {
	const struct web_route *route;
	unsigned int code;
	uint64_t count;
} web_http_series[WEB_METRICS_HTTP_SERIES];
static int web_http_series_count;
static pthread_mutex_t web_http_lock = PTHREAD_MUTEX_INITIALIZER;

void
web_metrics_count_request(const struct web_route *route, unsigned int status)
{
	int i;

	pthread_mutex_lock(&web_http_lock);
	for (i = 0; i < web_http_series_count; i++)
		if (web_http_series[i].route == route && web_http_series[i].code == status)
			break;
	if (i == web_http_series_count && i < WEB_METRICS_HTTP_SERIES) {
		web_http_series[i].route = route;
		web_http_series[i].code = status;
		web_http_series_count++;
	}
	if (i < WEB_METRICS_HTTP_SERIES)
		web_http_series[i].count++;
	pthread_mutex_unlock(&web_http_lock);
}

const char *
web_protection_state(const struct catalog_protection *protection, const struct catalog_group *group,
		     int64_t now_ms)
{
	if (group->paused_ms > 0)
		return "paused";
	if (strcmp(protection->state, "error") == 0)
		return "error";
	if (protection->last_point == 0)
		return "syncing";
	/* Judged now, not at the last cycle, so that a stalled scheduler shows. */
	if (catalog_protection_lagging(protection, group, now_ms))
		return "lagging";
	return "in-sync";
}

/* A label value with \, " and newline escaped, as the text format asks. */
static void
web_metrics_label(FILE *out, const char *value)
{
	for (const char *c = value; *c; c++) {
		if (*c == '\\' || *c == '"')
			fputc('\\', out);
		if (*c == '\n')
			fputs("\\n", out);
		else
			fputc(*c, out);
	}
}

static void
web_metrics_header(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct web_metrics_rows {
	struct catalog_group *groups;
	size_t group_count;
	struct catalog_protection *protections;
	size_t protection_count;
};

static int
web_metrics_group_row(const struct catalog_group *group, void *context)
{
	struct web_metrics_rows *rows = context;
	struct catalog_group *grown =
		realloc(rows->groups, (rows->group_count + 1) * sizeof(*rows->groups));

	if (grown == NULL)
		return ferry_error_no_memory();
	rows->groups = grown;
	rows->groups[rows->group_count++] = *group;
	return 0;
}

static int
web_metrics_protection_row(const struct catalog_protection *protection, void *context)
{
	struct web_metrics_rows *rows = context;
	struct catalog_protection *grown = realloc(
		rows->protections, (rows->protection_count + 1) * sizeof(*rows->protections));

	if (grown == NULL)
		return ferry_error_no_memory();
	rows->protections = grown;
	rows->protections[rows->protection_count++] = *protection;
	return 0;
}

static int
web_metrics_rows_load(struct catalog *catalog, struct web_metrics_rows *rows)
{
	int code = catalog_group_list(catalog, web_metrics_group_row, rows);

	return code < 0 ? code : catalog_protection_list(catalog, web_metrics_protection_row, rows);
}

static void
web_metrics_rows_free(struct web_metrics_rows *rows)
{
	free(rows->groups);
	free(rows->protections);
}

static const struct catalog_group *
web_metrics_group_of(const struct web_metrics_rows *rows, const char *name)
{
	static const struct catalog_group none = {.interval_s = 1};

	for (size_t i = 0; i < rows->group_count; i++)
		if (strcmp(rows->groups[i].name, name) == 0)
			return &rows->groups[i];
	return &none;
}

static void
web_metrics_protection_labels(FILE *out, const struct catalog_protection *protection,
			      const char *state)
{
	fputs("{group=\"", out);
	web_metrics_label(out, protection->group);
	fputs("\",volume=\"", out);
	web_metrics_label(out, protection->source);
	fputs("\",site=\"", out);
	web_metrics_label(out, protection->site);
	if (state)
		fprintf(out, "\",state=\"%s", state);
	fputs("\"}", out);
}

static void
web_metrics_protections(FILE *out, const struct web_metrics_rows *rows, int64_t now_ms)
{
	static const char *const states[] = {"syncing", "in-sync", "lagging", "error", "paused"};
	static const struct {
		const char *name, *type, *help;
	} series[] = {
		{"ferry_protection_last_point_timestamp_seconds", "gauge",
		 "Unix time of the last point committed at the replica site (0: none yet)."},
		{"ferry_protection_lag_seconds", "gauge",
		 "Seconds since the last committed point was taken (the data at risk)."},
		{"ferry_protection_points_committed_total", "counter",
		 "Points committed at the replica site."},
		{"ferry_protection_bytes_shipped_total", "counter",
		 "Bytes put on the wire to the replica site."},
		{"ferry_protection_errors_total", "counter", "Replication cycles that failed."},
	};

	for (size_t s = 0; s < sizeof(series) / sizeof(series[0]); s++) {
		web_metrics_header(out, series[s].name, series[s].type, series[s].help);
		for (size_t i = 0; i < rows->protection_count; i++) {
			const struct catalog_protection *protection = &rows->protections[i];
			double value =
				s == 0	 ? (double)protection->last_point_ms / 1000.0
				: s == 1 ? (protection->last_point_ms
						    ? (double)(now_ms - protection->last_point_ms) /
							      1000.0
						    : 0)
				: s == 2 ? (double)protection->points_committed
				: s == 3 ? (double)protection->bytes_shipped
					 : (double)protection->errors;

			fputs(series[s].name, out);
			web_metrics_protection_labels(out, protection, NULL);
			fprintf(out, " %.3f\n", value);
		}
	}
	web_metrics_header(out, "ferry_protection_state", "gauge",
			   "1 for the protection's state now, 0 for the others.");
	for (size_t i = 0; i < rows->protection_count; i++) {
		const struct catalog_protection *protection = &rows->protections[i];
		const char *state = web_protection_state(
			protection, web_metrics_group_of(rows, protection->group), now_ms);

		for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
			fputs("ferry_protection_state", out);
			web_metrics_protection_labels(out, protection, states[k]);
			fprintf(out, " %d\n", strcmp(state, states[k]) == 0);
		}
	}
}

static void
web_metrics_groups(FILE *out, const struct web_metrics_rows *rows)
{
	web_metrics_header(out, "ferry_group_rpo_target_seconds", "gauge",
			   "The group's recovery point objective: the most data it may lose.");
	for (size_t i = 0; i < rows->group_count; i++) {
		fputs("ferry_group_rpo_target_seconds{group=\"", out);
		web_metrics_label(out, rows->groups[i].name);
		fprintf(out, "\"} %lld\n", (long long)catalog_group_rpo_target(&rows->groups[i]));
	}
	web_metrics_header(out, "ferry_group_interval_seconds", "gauge",
			   "How often the group takes a point.");
	for (size_t i = 0; i < rows->group_count; i++) {
		fputs("ferry_group_interval_seconds{group=\"", out);
		web_metrics_label(out, rows->groups[i].name);
		fprintf(out, "\"} %lld\n", (long long)rows->groups[i].interval_s);
	}
	web_metrics_header(out, "ferry_group_paused", "gauge",
			   "1 while an operator has paused the group.");
	for (size_t i = 0; i < rows->group_count; i++) {
		fputs("ferry_group_paused{group=\"", out);
		web_metrics_label(out, rows->groups[i].name);
		fprintf(out, "\"} %d\n", rows->groups[i].paused_ms > 0);
	}
	web_metrics_header(out, "ferry_group_paused_since_timestamp_seconds", "gauge",
			   "Unix time the group was paused (only while it is).");
	for (size_t i = 0; i < rows->group_count; i++)
		if (rows->groups[i].paused_ms > 0) {
			fputs("ferry_group_paused_since_timestamp_seconds{group=\"", out);
			web_metrics_label(out, rows->groups[i].name);
			fprintf(out, "\"} %.3f\n", (double)rows->groups[i].paused_ms / 1000.0);
		}
}

/* Each group's prediction (replicator/prediction.c): the rates and the predicted lag only once
 * there is history (a series that is absent, not 0, says unknown); at_risk always. */
static void
web_metrics_predictions(FILE *out, const struct web_metrics_rows *rows,
			struct repl_scheduler *scheduler, int64_t now_ms)
{
	static const struct {
		const char *name, *help;
	} series[] = {
		{"ferry_group_change_rate_bytes_per_second",
		 "Bytes changed per second over the group's recent cycles."},
		{"ferry_group_ship_rate_bytes_per_second",
		 "Bytes on the wire per second of shipping over the group's recent cycles."},
		{"ferry_group_predicted_lag_seconds", "The lag the group settles at, or reaches in "
						      "3 cycles when it grows, at those rates."},
		{"ferry_group_at_risk", "1 while the predicted lag is above the RPO target."},
	};
	struct repl_prediction *predictions = calloc(rows->group_count + 1, sizeof(*predictions));

	if (predictions == NULL)
		return;
	for (size_t i = 0; i < rows->group_count; i++)
		repl_scheduler_prediction(scheduler, &rows->groups[i], now_ms, &predictions[i]);
	for (size_t s = 0; s < sizeof(series) / sizeof(series[0]); s++) {
		web_metrics_header(out, series[s].name, "gauge", series[s].help);
		for (size_t i = 0; i < rows->group_count; i++) {
			const struct repl_prediction *prediction = &predictions[i];
			double value = s == 0	? prediction->change_rate
				       : s == 1 ? prediction->ship_rate
				       : s == 2 ? prediction->predicted_lag_s
						: (double)prediction->at_risk;

			if (s < 3 && !prediction->known)
				continue;
			fputs(series[s].name, out);
			fputs("{group=\"", out);
			web_metrics_label(out, rows->groups[i].name);
			fprintf(out, "\"} %.3f\n", value);
		}
	}
	free(predictions);
}

static int
web_metrics_run_count(const char *kind, const char *status, int64_t count, void *context)
{
	FILE *out = context;

	fputs("ferry_cutover_runs_total{kind=\"", out);
	web_metrics_label(out, kind);
	fputs("\",status=\"", out);
	web_metrics_label(out, status);
	fprintf(out, "\"} %lld\n", (long long)count);
	return 0;
}

static void
web_metrics_sites(FILE *out, struct web_route_context *route)
{
	struct repl_site_contact contacts[64];
	struct repl_scheduler *scheduler =
		route->server->options.cutover ? route->server->options.cutover->scheduler : NULL;
	uint64_t resent = 0;
	int count = repl_scheduler_sites(scheduler, contacts, 64, &resent);

	web_metrics_header(out, "ferry_site_up", "gauge",
			   "1 when the replica site answered at the last try (or none was made).");
	for (int i = 0; i < count; i++) {
		fputs("ferry_site_up{site=\"", out);
		web_metrics_label(out, contacts[i].site);
		fprintf(out, "\"} %d\n", contacts[i].up);
	}
	web_metrics_header(out, "ferry_transfer_segments_resent_total", "counter",
			   "Segments sent again after a failure since ferryd started.");
	fprintf(out, "ferry_transfer_segments_resent_total %llu\n", (unsigned long long)resent);
}

static void
web_metrics_http(FILE *out)
{
	web_metrics_header(out, "ferry_http_requests_total", "counter",
			   "Requests answered, by route and HTTP status.");
	pthread_mutex_lock(&web_http_lock);
	for (int i = 0; i < web_http_series_count; i++) {
		char route[160] = "other";

		if (web_http_series[i].route)
			web_route_format(web_http_series[i].route, route, sizeof(route));
		fputs("ferry_http_requests_total{route=\"", out);
		web_metrics_label(out, route);
		fprintf(out, "\",code=\"%u\"} %llu\n", web_http_series[i].code,
			(unsigned long long)web_http_series[i].count);
	}
	pthread_mutex_unlock(&web_http_lock);
}

/* The process metrics every Prometheus client library exports, from /proc. */
static void
web_metrics_process(FILE *out)
{
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long long utime = 0, stime = 0, start = 0, vsize = 0, uptime_boot = 0;
	long long rss = 0;
	double uptime = 0;
	struct rlimit limit;
	char stat[2048];
	FILE *file;
	DIR *fds;
	int open_fds = 0;

	file = fopen("/proc/self/stat", "r");
	if (file && fgets(stat, sizeof(stat), file)) {
		/* Fields after the command's closing parenthesis, which may hold spaces. */
		const char *after = strrchr(stat, ')');

		if (after)
			sscanf(after + 2,
			       "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d "
			       "%*d %*d %*d %llu %llu %lld",
			       &utime, &stime, &start, &vsize, &rss);
	}
	if (file)
		fclose(file);
	file = fopen("/proc/uptime", "r");
	if (file && fscanf(file, "%lf", &uptime) == 1)
		uptime_boot = (unsigned long long)((double)util_now_ms() / 1000.0 - uptime);
	if (file)
		fclose(file);
	fds = opendir("/proc/self/fd");
	for (struct dirent *entry = fds ? readdir(fds) : NULL; entry; entry = readdir(fds))
		open_fds += entry->d_name[0] != '.';
	if (fds)
		closedir(fds);
	web_metrics_header(out, "process_cpu_seconds_total", "counter",
			   "User and system CPU time spent.");
	fprintf(out, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / (double)ticks);
	web_metrics_header(out, "process_start_time_seconds", "gauge",
			   "Start time of the process since the epoch.");
	fprintf(out, "process_start_time_seconds %.2f\n",
		(double)uptime_boot + (double)start / (double)ticks);
	web_metrics_header(out, "process_resident_memory_bytes", "gauge", "Resident memory size.");
	fprintf(out, "process_resident_memory_bytes %lld\n", rss * page);
	web_metrics_header(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size.");
	fprintf(out, "process_virtual_memory_bytes %llu\n", vsize);
	web_metrics_header(out, "process_open_fds", "gauge", "Open file descriptors.");
	fprintf(out, "process_open_fds %d\n", open_fds - 1); /* less opendir's own */
	if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
		web_metrics_header(out, "process_max_fds", "gauge",
				   "The most file descriptors it may open.");
		fprintf(out, "process_max_fds %llu\n", (unsigned long long)limit.rlim_cur);
	}
}

struct web_metrics_generation_walk {
	FILE *out;
	bool split_brain; /* the series written: ferry_group_split_brain, else the generation */
};

static int
web_metrics_generation_row(const struct catalog_generation *generation, void *context)
{
	struct web_metrics_generation_walk *walk = context;

	fputs(walk->split_brain ? "ferry_group_split_brain{group=\""
				: "ferry_group_generation{group=\"",
	      walk->out);
	web_metrics_label(walk->out, generation->group);
	fprintf(walk->out, "\"} %lld\n",
		walk->split_brain ? (long long)(generation->split_brain_ms > 0)
				  : (long long)generation->generation);
	return 0;
}

/* Each group this site holds a generation of (one walk per series, so that each is one block). */
static void
web_metrics_generations(FILE *out, struct catalog *catalog)
{
	struct web_metrics_generation_walk walk = {out, false};

	web_metrics_header(out, "ferry_group_generation", "gauge",
			   "This site's generation of the group (one writer per group).");
	catalog_generation_list(catalog, web_metrics_generation_row, &walk);
	walk.split_brain = true;
	web_metrics_header(out, "ferry_group_split_brain", "gauge",
			   "1 while a push across generations is refused: both sites wrote.");
	catalog_generation_list(catalog, web_metrics_generation_row, &walk);
}

enum MHD_Result
web_metrics(struct web_route_context *route)
{
	struct catalog *catalog = route->server->options.catalog;
	struct web_metrics_rows rows = {0};
	char *text = NULL;
	size_t length = 0;
	FILE *out;
	int code;

	code = web_metrics_rows_load(catalog, &rows);
	out = code == 0 ? open_memstream(&text, &length) : NULL;
	if (out == NULL) {
		web_metrics_rows_free(&rows);
		return web_reply_last_error(route->connection,
					    code < 0 ? code : FERRY_ERR_NO_MEMORY);
	}
	web_metrics_header(out, "ferry_build_info", "gauge", "ferryd's version.");
	fprintf(out, "ferry_build_info{version=\"%s\"} 1\n", FERRY_VERSION);
	web_metrics_protections(out, &rows, util_now_ms());
	web_metrics_groups(out, &rows);
	web_metrics_generations(out, catalog);
	web_metrics_predictions(
		out, &rows,
		route->server->options.cutover ? route->server->options.cutover->scheduler : NULL,
		util_now_ms());
	web_metrics_sites(out, route);
	web_metrics_header(out, "ferry_cutover_runs_total", "counter",
			   "Cutover runs by kind and how they ended (or stand).");
	catalog_run_counts(catalog, web_metrics_run_count, out);
	web_metrics_http(out);
	web_metrics_process(out);
	fclose(out);
	web_metrics_rows_free(&rows);
	return web_reply_text(route->connection, MHD_HTTP_OK,
			      "text/plain; version=0.0.4; charset=utf-8", text, length);
}

/* Adds a reason; the word is the worst of them. */
static void web_health_reason(json_t *reasons, int *worst, int level, const char *format, ...)
	__attribute__((format(printf, 4, 5)));

static void
web_health_reason(json_t *reasons, int *worst, int level, const char *format, ...)
{
	char text[1024];
	va_list args;

	va_start(args, format);
	vsnprintf(text, sizeof(text), format, args);
	va_end(args);
	json_array_append_new(reasons, json_pack("{s:s, s:s}", "level",
						 level == 2 ? "error" : "warning", "reason", text));
	if (level > *worst)
		*worst = level;
}

struct web_health_walk {
	json_t *reasons;
	int *worst;
};

/* A split brain is an error until a reprotect names the side whose data is kept. */
static int
web_health_generation(const struct catalog_generation *generation, void *context)
{
	struct web_health_walk *walk = context;

	if (generation->split_brain_ms > 0)
		web_health_reason(walk->reasons, walk->worst, 2,
				  "group %s: split brain (generation %lld here, %lld at the other "
				  "site): run ferry reprotect %s at the site whose data is kept",
				  generation->group, (long long)generation->generation,
				  (long long)generation->peer_generation, generation->group);
	return 0;
}

enum MHD_Result
web_health(struct web_route_context *route)
{
	static const char *const words[] = {"ok", "warning", "error"};
	struct catalog *catalog = route->server->options.catalog;
	struct web_metrics_rows rows = {0};
	struct repl_site_contact contacts[64];
	struct repl_scheduler *scheduler =
		route->server->options.cutover ? route->server->options.cutover->scheduler : NULL;
	uint64_t resent;
	int64_t now = util_now_ms();
	json_t *reasons = json_array();
	int worst = 0, code, sites;

	code = web_metrics_rows_load(catalog, &rows);
	if (code < 0)
		web_health_reason(reasons, &worst, 2, "the catalog cannot be read: %s",
				  ferry_error_message());
	for (size_t i = 0; i < rows.protection_count; i++) {
		const struct catalog_protection *protection = &rows.protections[i];
		const struct catalog_group *group = web_metrics_group_of(&rows, protection->group);
		const char *state = web_protection_state(protection, group, now);

		if (strcmp(state, "error") == 0)
			web_health_reason(reasons, &worst, 2, "%s (group %s): %s",
					  protection->source, protection->group,
					  protection->reason);
		else if (strcmp(state, "lagging") == 0)
			web_health_reason(reasons, &worst, 2,
					  "%s (group %s): its last point is %lld s old, above the "
					  "RPO target of %lld s",
					  protection->source, protection->group,
					  (long long)((now - protection->last_point_ms) / 1000),
					  (long long)catalog_group_rpo_target(group));
	}
	for (size_t i = 0; i < rows.group_count; i++) {
		struct repl_prediction prediction;

		if (rows.groups[i].paused_ms > 0)
			web_health_reason(reasons, &worst, 1, "group %s is paused since %lld s",
					  rows.groups[i].name,
					  (long long)((now - rows.groups[i].paused_ms) / 1000));
		repl_scheduler_prediction(scheduler, &rows.groups[i], now, &prediction);
		if (prediction.at_risk)
			web_health_reason(reasons, &worst, 1, "group %s is at risk: %s",
					  rows.groups[i].name, prediction.reason);
	}
	catalog_generation_list(catalog, web_health_generation,
				&(struct web_health_walk){reasons, &worst});
	sites = repl_scheduler_sites(scheduler, contacts, 64, &resent);
	for (int i = 0; i < sites; i++)
		if (!contacts[i].up)
			web_health_reason(reasons, &worst, 2,
					  "replica site %s could not be reached at the last try",
					  contacts[i].site);
	web_metrics_rows_free(&rows);
	if (route->request->identity.role == WEB_ROLE_PEER) {
		json_decref(reasons);
		reasons = json_array();
	}
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:s, s:s, s:o, s:i, s:s}", "status", "ok", "health",
					words[worst], "reasons", reasons, "schema_version",
					catalog_schema_version(catalog), "version", FERRY_VERSION));
}
