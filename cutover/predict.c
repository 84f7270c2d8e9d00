/* Predictions of a live migration (ferry migrate --dry-run, and the start of every real one):
 * from the guest's memory and its dirty rate sampled from QEMU, and from what the last live
 * migrations from this site to the same destination measured, part by part, in their runs.
 *
 * The model, with M the memory, D the dirty rate now, and L the link's rate while memory moved
 * last time (QEMU's own measure):
 *   memory copy  = last copy's duration x M/M_last x (L - D_last) / (L - D)  (pre-copy resends
 *                  what is dirtied meanwhile: a geometric series of ratio D/L);
 *   frozen       = QEMU's own downtime + final delta + promote + resume, each the mean of the
 *                  last few migrations, the final delta grown by the bytes it would carry beyond
 *                  theirs;
 *   total        = the rest of those runs (checks, catch-up, validation) + copy + frozen.
 * Live does not converge when D reaches 80 % of L: then cold is advised, with its downtime.
 * Without a measured migration the link's replication rate stands in for L, and QEMU's default
 * 300 ms downtime for its part, and the inputs say so. */
#include "cutover/internal.h"

#include <stdarg.h>

#define PREDICT_HISTORY_RUNS	      200
#define PREDICT_CONVERGE_SHARE	      0.8
#define PREDICT_DEFAULT_LINK	      100e6
#define PREDICT_DEFAULT_DOWNTIME_MS   300.0
#define PREDICT_DEFAULT_OTHER_MS      3000.0
#define PREDICT_SHUTDOWN_ALLOWANCE_MS 30000.0

/* The replication state of the VM's disks: how far behind, how fast, how much per cycle. */
struct predict_link {
	const struct cutover_vm_record *record;
	int64_t lag_ms;
	double bytes_per_second;
	double cycle_seconds;
	int64_t bytes_changed;
};

static int
predict_link_entry(const struct catalog_protection *protection, void *context)
{
	struct predict_link *link = context;

	for (size_t i = 0; i < link->record->disk_count; i++) {
		if (strcmp(link->record->disks[i].source, protection->source) != 0)
			continue;
		if (protection->last_point_ms &&
		    util_now_ms() - protection->last_point_ms > link->lag_ms)
			link->lag_ms = util_now_ms() - protection->last_point_ms;
		if (protection->last_seconds > link->cycle_seconds)
			link->cycle_seconds = protection->last_seconds;
		/* A small cycle's rate says little about the link: only sizeable ones count. */
		if (protection->last_seconds > 0 && protection->last_bytes_sent >= (4 << 20) &&
		    (link->bytes_per_second == 0 ||
		     protection->last_bytes_sent / protection->last_seconds <
			     link->bytes_per_second))
			link->bytes_per_second =
				(double)protection->last_bytes_sent / protection->last_seconds;
		link->bytes_changed += protection->last_bytes_changed;
	}
	return 0;
}

/* The newest measured live migrations to a destination, newest first: the newest gives the
 * rate memory moves at (a link's state), the mean of all the parts that are the same from one
 * migration to the next but for noise (the frozen window's parts, the rest of the run). */
#define PREDICT_SAMPLES 4
struct predict_history {
	const char *dest_uri;
	size_t count;
	int64_t runs[PREDICT_SAMPLES];
	json_t *measured[PREDICT_SAMPLES]; /* owned */
	char run_list[PREDICT_SAMPLES * 24];
};

static int
predict_history_entry(const struct catalog_run *run, void *context)
{
	struct predict_history *history = context;
	json_t *result, *vms, *vm;
	size_t i;

	if (strcmp(run->kind, "migrate-live") != 0 || strcmp(run->status, "completed") != 0 ||
	    run->result == NULL || history->count == PREDICT_SAMPLES)
		return 0;
	result = json_loads(run->result, 0, NULL);
	vms = json_object_get(result, "vms");
	json_array_foreach(vms, i, vm) {
		json_t *measured = json_object_get(vm, "measured");
		const char *dest = json_string_value(json_object_get(measured, "dest_uri"));

		if (history->count == PREDICT_SAMPLES || !json_is_object(measured) ||
		    dest == NULL || strcmp(dest, history->dest_uri) != 0 ||
		    json_number_value(json_object_get(measured, "memory_ms")) <= 0 ||
		    json_number_value(json_object_get(measured, "other_ms")) <= 0)
			continue;
		history->runs[history->count] = run->id;
		history->measured[history->count++] = json_incref(measured);
	}
	json_decref(result);
	return 0;
}

/* The mean of a measured part over the history. */
static double
predict_mean(const struct predict_history *history, const char *key)
{
	double sum = 0;

	for (size_t i = 0; i < history->count; i++)
		sum += json_number_value(json_object_get(history->measured[i], key));
	return history->count ? sum / (double)history->count : 0;
}

static double
predict_max(double a, double b)
{
	return a > b ? a : b;
}

static double
predict_number(json_t *object, const char *key)
{
	return json_number_value(json_object_get(object, key));
}

/* One input of the prediction: its value and where it came from. */
static void predict_input(json_t *inputs, const char *key, double value, const char *format, ...)
	__attribute__((format(printf, 4, 5)));
static void
predict_input(json_t *inputs, const char *key, double value, const char *format, ...)
{
	char source[256];
	va_list arguments;

	va_start(arguments, format);
	vsnprintf(source, sizeof(source), format, arguments);
	va_end(arguments);
	json_object_set_new(inputs, key, json_pack("{s:f, s:s}", "value", value, "source", source));
}

int64_t
cutover_dirty_rate_start(virDomainPtr domain)
{
	return virDomainStartDirtyRateCalc(domain, 1, 0) == 0 ? util_now_ms() : -1;
}

/* QEMU's dirty rate in bytes per second, sampled over the second after started_ms; -1 when it
 * could not be measured. Waits for the sample when it is not done yet. */
static double
cutover_dirty_rate_read(virDomainPtr domain, int64_t started_ms)
{
	virDomainPtr domains[2] = {domain, NULL};

	if (started_ms < 0)
		return -1;
	for (int tries = 0; tries < 40; tries++) {
		virDomainStatsRecordPtr *stats = NULL;
		long long mib = 0;
		int status = 0, count;

		if (util_now_ms() - started_ms >= 1100) {
			count = virDomainListGetStats(domains, VIR_DOMAIN_STATS_DIRTYRATE, &stats,
						      0);
			if (count > 0) {
				virTypedParamsGetInt(stats[0]->params, stats[0]->nparams,
						     "dirtyrate.calc_status", &status);
				/* a signed 64-bit parameter: the unsigned getter finds nothing */
				virTypedParamsGetLLong(stats[0]->params, stats[0]->nparams,
						       "dirtyrate.megabytes_per_second", &mib);
			}
			virDomainStatsRecordListFree(stats);
			if (count > 0 && status == VIR_DOMAIN_DIRTYRATE_MEASURED)
				return mib > 0 ? (double)mib * 1048576.0 : 0;
		}
		usleep(100 * 1000);
	}
	return -1;
}

json_t *
cutover_predict_live(struct cutover_run *run, const struct cutover_vm_record *record,
		     virDomainPtr domain, const char *name, int64_t dirty_started_ms)
{
	struct predict_link link = {record, 0, 0, 0, 0};
	struct predict_history history = {.dest_uri = record->dest_uri};
	json_t *inputs = json_object(), *prediction = NULL;
	virDomainInfo info;
	double memory, dirty, ship, rate, converge_rate, memory_ms = -1, final_ms, frozen_ms,
							 other_ms, cold_ms;
	double downtime_ms, promote_ms, resume_ms;
	bool converges;

	catalog_protection_list(run->site->catalog, predict_link_entry, &link);
	catalog_run_list(run->site->catalog, 0, PREDICT_HISTORY_RUNS, predict_history_entry,
			 &history);
	memset(&info, 0, sizeof(info));
	virDomainGetInfo(domain, &info);
	memory = (double)info.memory * 1024.0;
	dirty = cutover_dirty_rate_read(domain, dirty_started_ms);
	predict_input(inputs, "memory_bytes", memory, "the domain's current memory (libvirt)");
	if (dirty < 0) {
		dirty = 0;
		predict_input(inputs, "dirty_bytes_per_second", 0,
			      "not measured: QEMU gave no dirty-rate sample; taken as idle");
	} else {
		predict_input(inputs, "dirty_bytes_per_second", dirty,
			      "sampled from QEMU over 1 s just now");
	}
	ship = link.bytes_per_second > 0 ? link.bytes_per_second : PREDICT_DEFAULT_LINK;
	predict_input(inputs, "replication_bytes_per_second", ship,
		      link.bytes_per_second > 0
			      ? "the slowest sizeable replication cycle of its disks"
			      : "no sizeable replication cycle yet: 100 MB/s assumed");
	predict_input(inputs, "lag_ms", (double)link.lag_ms, "its disks' newest committed points");
	predict_input(inputs, "expected_final_delta_bytes", (double)link.bytes_changed,
		      "what its disks' last cycle changed");
	if (history.count > 0) {
		json_t *last = history.measured[0];
		double last_memory = predict_number(last, "memory_bytes");
		double last_dirty = predict_number(last, "dirty_bytes_per_second");
		double last_copy = predict_number(last, "memory_ms");
		double sent = predict_number(last, "memory_processed_bytes");
		size_t used = 0;

		for (size_t i = 0; i < history.count; i++)
			used += (size_t)snprintf(history.run_list + used,
						 sizeof(history.run_list) - used, "%s%lld",
						 i ? ", " : "", (long long)history.runs[i]);
		rate = sent > 0 ? sent * 1000.0 / last_copy : ship;
		predict_input(inputs, "memory_bytes_per_second", rate,
			      "migration run %lld (the newest to %s) moved %.0f MiB in %.0f ms",
			      (long long)history.runs[0], record->dest_uri, sent / 1048576.0,
			      last_copy);
		/* Whether pre-copy keeps ahead of the guest is a matter of the link while memory
		 * moves (QEMU's measure), not of the copy's whole length with its set-up. */
		converge_rate = predict_number(last, "memory_link_bytes_per_second");
		if (converge_rate <= 0)
			converge_rate = rate;
		predict_input(inputs, "memory_link_bytes_per_second", converge_rate,
			      "QEMU's transfer rate during migration run %lld",
			      (long long)history.runs[0]);
		converges = dirty < PREDICT_CONVERGE_SHARE * converge_rate;
		if (converges)
			memory_ms = last_copy * (last_memory > 0 ? memory / last_memory : 1.0) *
				    predict_max(converge_rate - last_dirty, 1.0) /
				    (converge_rate - dirty);
		downtime_ms = predict_mean(&history, "qemu_downtime_ms");
		promote_ms = predict_mean(&history, "promote_ms");
		resume_ms = predict_mean(&history, "resume_ms");
		final_ms = predict_mean(&history, "final_delta_ms") +
			   predict_max(0, (double)link.bytes_changed -
						  predict_mean(&history, "final_delta_bytes")) *
				   1000.0 / ship;
		other_ms = predict_mean(&history, "other_ms");
		predict_input(inputs, "qemu_downtime_ms", downtime_ms, "the mean of runs %s",
			      history.run_list);
		predict_input(inputs, "final_delta_ms", predict_mean(&history, "final_delta_ms"),
			      "the mean of runs %s, for %.0f bytes", history.run_list,
			      predict_mean(&history, "final_delta_bytes"));
		predict_input(inputs, "promote_ms", promote_ms, "the mean of runs %s",
			      history.run_list);
		predict_input(inputs, "resume_ms", resume_ms, "the mean of runs %s",
			      history.run_list);
		predict_input(inputs, "other_ms", other_ms,
			      "checks, catch-up, retire and validation: the mean of runs %s",
			      history.run_list);
	} else {
		rate = converge_rate = ship;
		predict_input(inputs, "memory_bytes_per_second", rate,
			      "no live migration to %s measured yet: the replication rate",
			      record->dest_uri);
		converges = dirty < PREDICT_CONVERGE_SHARE * converge_rate;
		if (converges)
			memory_ms = 1000.0 * memory / (rate - dirty);
		downtime_ms = PREDICT_DEFAULT_DOWNTIME_MS;
		promote_ms = resume_ms = 0;
		final_ms = 1000.0 * link.cycle_seconds;
		other_ms = PREDICT_DEFAULT_OTHER_MS + 1000.0 * link.cycle_seconds;
		predict_input(inputs, "qemu_downtime_ms", downtime_ms,
			      "not measured yet: QEMU's default maximum downtime");
		predict_input(inputs, "final_delta_ms", final_ms,
			      "not measured yet: its disks' last replication cycle");
		predict_input(inputs, "other_ms", other_ms, "not measured yet: assumed");
	}
	frozen_ms = downtime_ms + final_ms + promote_ms + resume_ms;
	/* The shutdown is not measured yet: 30 s is allowed for it. */
	cold_ms = PREDICT_SHUTDOWN_ALLOWANCE_MS + 1000.0 * link.cycle_seconds + 1000.0;
	prediction = json_pack(
		"{s:s, s:s, s:I, s:I, s:I, s:b, s:I, s:f, s:f, s:f, s:I, s:I, s:I, s:o}", "name",
		name, "strategy", converges ? "live" : "cold", "predicted_total_ms",
		(json_int_t)(converges ? other_ms + memory_ms + final_ms + promote_ms + resume_ms
				       : cold_ms),
		"predicted_frozen_ms", (json_int_t)(converges ? frozen_ms : cold_ms),
		"predicted_cold_downtime_ms", (json_int_t)cold_ms, "converges", converges,
		"memory_bytes", (json_int_t)memory, "dirty_bytes_per_second", dirty,
		"link_bytes_per_second", ship, "memory_bytes_per_second", rate, "lag_seconds",
		(json_int_t)(link.lag_ms / 1000), "lag_ms", (json_int_t)link.lag_ms,
		"final_delta_bytes", (json_int_t)link.bytes_changed, "inputs", inputs);
	if (prediction && converges)
		json_object_set_new(prediction, "predicted_memory_ms",
				    json_integer((json_int_t)memory_ms));
	if (prediction && !converges)
		json_object_set_new(
			prediction, "advice",
			json_sprintf(
				"live will not converge: the guest dirties %.1f MB/s and memory "
				"moves at %.1f MB/s; migrate it with --cold (about %.0f s of "
				"downtime)",
				dirty / 1e6, converge_rate / 1e6, cold_ms / 1000.0));
	for (size_t i = 0; i < history.count; i++)
		json_decref(history.measured[i]);
	return prediction;
}
