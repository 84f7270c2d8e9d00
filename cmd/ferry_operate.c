/* The CLI's everyday verbs on sites, groups and VMs (list, add, set, sync now, pause, resume,
 * delete, remove) and ferry health, the monitoring probe: one word, ok, warning or error, with
 * its reasons, and exit status 0, 1 or 2 (3 when the daemon cannot be reached). */
#include "cmd/cli.h"
#include "common/error.h"
#include "common/util.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One request, its answer in *reply (caller frees); 0, or 1 after printing why. */
int
cli_call(const struct cli_options *options, const char *command, const char *method,
	 const char *path, json_t *request, json_t **reply)
{
	struct api_client *client = cli_client(options);
	int rc;

	*reply = NULL;
	rc = client ? api_client_json(client, method, path, request, reply)
		    : ferry_error_last_code();
	json_decref(request);
	api_client_free(client);
	return rc < 0 ? cli_fail(options, command) : 0;
}

static void
cli_print_json(json_t *document)
{
	json_dumpf(document, stdout, JSON_COMPACT);
	fputc('\n', stdout);
}

/* "12 s", "5 min", "3 h" ago or ahead: what an operator reads at a glance. */
void
cli_format_age(int64_t ms, char *out, size_t size)
{
	int64_t seconds = ms / 1000;

	if (seconds < 0)
		seconds = -seconds;
	if (seconds < 120)
		snprintf(out, size, "%" PRId64 " s", seconds);
	else if (seconds < 7200)
		snprintf(out, size, "%" PRId64 " min", seconds / 60);
	else if (seconds < 172800)
		snprintf(out, size, "%" PRId64 " h", seconds / 3600);
	else
		snprintf(out, size, "%" PRId64 " d", seconds / 86400);
}

/* ferry site list [--json] */
int
cli_site_list(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	json_t *reply = NULL, *site;
	size_t i;
	int status;

	if (args->operand_count != 0)
		return cli_usage_error(args);
	status = cli_call(options, "site list", "GET", "/v1/sites", NULL, &reply);
	if (status == 0 && options->json) {
		cli_print_json(reply);
	} else if (status == 0) {
		printf("%-20s %-44s %s\n", "SITE", "URL", "CA");
		json_array_foreach(json_object_get(reply, "sites"), i, site)
			printf("%-20s %-44s %s\n", json_string_value(json_object_get(site, "name")),
			       json_string_value(json_object_get(site, "url")),
			       json_is_true(json_object_get(site, "cacert")) ? "own" : "system");
		if (json_array_size(json_object_get(reply, "sites")) == 0)
			printf("(no replica sites: ferry site add NAME --url URL "
			       "--peer-token-file F)\n");
	}
	json_decref(reply);
	return status;
}

/* ferry site remove NAME */
int
cli_site_remove(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	json_t *reply = NULL;
	char path[300];
	int status;

	if (args->operand_count != 1)
		return cli_usage_error(args);
	snprintf(path, sizeof(path), "/v1/sites/%s", args->operands[0]);
	status = cli_call(options, "site remove", "DELETE", path, NULL, &reply);
	if (status == 0)
		options->json ? cli_print_json(reply)
			      : (void)printf("site %s removed\n", args->operands[0]);
	json_decref(reply);
	return status;
}

/* ferry site add NAME --url URL --peer-token-file F [--peer-cacert F] [--replace] */
int
cli_site_add(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	const char *url = cli_text(args, CLI_OPTION_URL),
		   *peer_cacert = cli_text(args, CLI_OPTION_PEER_CACERT);
	char *peer_token = NULL, *cacert = NULL, done[600];
	int status = 1;

	if (args->operand_count != 1 || url == NULL)
		return cli_usage_error(args);
	if (util_read_token_file(cli_text(args, CLI_OPTION_PEER_TOKEN_FILE), &peer_token) < 0 ||
	    (peer_cacert && util_read_file(peer_cacert, 64 << 10, &cacert, NULL) < 0)) {
		status = cli_fail(options, "site add");
		goto out;
	}
	snprintf(done, sizeof(done), "site %s: %s", args->operands[0], url);
	status =
		cli_request(options, "site add", "/v1/sites",
			    json_pack("{s:s, s:s, s:s, s:s, s:b}", "name", args->operands[0], "url",
				      url, "token", peer_token, "cacert_pem", cacert ? cacert : "",
				      "replace", cli_given(args, CLI_OPTION_REPLACE)),
			    done);
out:
	free(peer_token);
	free(cacert);
	return status;
}

static void
cli_print_group(json_t *group)
{
	printf("group %s: a point every %" JSON_INTEGER_FORMAT " s, %" JSON_INTEGER_FORMAT
	       " kept, RPO target %" JSON_INTEGER_FORMAT " s%s\n",
	       json_string_value(json_object_get(group, "name")),
	       json_integer_value(json_object_get(group, "interval")),
	       json_integer_value(json_object_get(group, "keep")),
	       json_integer_value(json_object_get(group, "rpo_target")),
	       json_is_true(json_object_get(group, "paused")) ? ", paused" : "");
}

/* ferry group list [--json] */
int
cli_group_list(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	json_t *reply = NULL, *group;
	size_t i;
	int status;

	if (args->operand_count != 0)
		return cli_usage_error(args);
	status = cli_call(options, "group list", "GET", "/v1/groups", NULL, &reply);
	if (status == 0 && options->json) {
		cli_print_json(reply);
	} else if (status == 0) {
		json_array_foreach(json_object_get(reply, "groups"), i, group)
			cli_print_group(group);
		if (json_array_size(json_object_get(reply, "groups")) == 0)
			printf("(no groups: ferry group create NAME --interval S)\n");
	}
	json_decref(reply);
	return status;
}

/* The settings given to group create or set: interval, keep, rpo. */
static json_t *
cli_group_settings(const struct cli_args *args)
{
	json_t *request = json_object();

	if (cli_given(args, CLI_OPTION_INTERVAL))
		json_object_set_new(request, "interval",
				    json_integer(cli_number(args, CLI_OPTION_INTERVAL)));
	if (cli_given(args, CLI_OPTION_KEEP))
		json_object_set_new(request, "keep",
				    json_integer(cli_number(args, CLI_OPTION_KEEP)));
	if (cli_given(args, CLI_OPTION_RPO))
		json_object_set_new(request, "rpo", json_integer(cli_number(args, CLI_OPTION_RPO)));
	return request;
}

/* The daemon's answer to a group verb, as text or JSON. */
static void
cli_group_print_reply(const struct cli_args *args, json_t *reply)
{
	if (args->options.json)
		cli_print_json(reply);
	else if (json_object_get(reply, "interval"))
		cli_print_group(reply);
	else if (json_is_true(json_object_get(reply, "requested")))
		printf("group %s: a point is taken and shipped now (ferry status shows it)\n",
		       args->operands[0]);
	else
		printf("group %s deleted\n", args->operands[0]);
}

/* ferry group create NAME --interval S [--keep K] [--rpo S] */
int
cli_group_create(struct cli_args *args)
{
	json_t *request, *reply = NULL;
	int status;

	if (args->operand_count != 1 || !cli_given(args, CLI_OPTION_INTERVAL))
		return cli_usage_error(args);
	request = cli_group_settings(args);
	json_object_set_new(request, "name", json_string(args->operands[0]));
	status = cli_call(&args->options, "group create", "POST", "/v1/groups", request, &reply);
	if (status == 0)
		cli_group_print_reply(args, reply);
	json_decref(reply);
	return status;
}

/* ferry group set|delete|sync|pause|resume NAME: one request on /v1/groups/NAME. */
int
cli_group_change(struct cli_args *args)
{
	/* body: what the request carries, the settings given (set), nothing (delete) or {}. */
	enum { CLI_BODY_SETTINGS, CLI_BODY_NONE, CLI_BODY_EMPTY };
	static const struct {
		const char *verb, *method, *suffix;
		int body;
	} verbs[] = {
		{"set", "POST", "", CLI_BODY_SETTINGS},
		{"delete", "DELETE", "", CLI_BODY_NONE},
		{"sync", "POST", "/sync", CLI_BODY_EMPTY},
		{"pause", "POST", "/pause", CLI_BODY_EMPTY},
		{"resume", "POST", "/resume", CLI_BODY_EMPTY},
	};
	const char *verb = args->command->verb;
	json_t *reply = NULL, *request = NULL;
	char command[64], path[300];
	size_t i;
	int status;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verb, verbs[i].verb) == 0)
			break;
	assert(i < sizeof(verbs) / sizeof(verbs[0]));
	if (verbs[i].body == CLI_BODY_SETTINGS)
		request = cli_group_settings(args);
	else if (verbs[i].body == CLI_BODY_EMPTY)
		request = json_object();
	if (args->operand_count != 1 ||
	    (verbs[i].body == CLI_BODY_SETTINGS && json_object_size(request) == 0)) {
		json_decref(request);
		return cli_usage_error(args);
	}
	snprintf(command, sizeof(command), "group %s", verb);
	snprintf(path, sizeof(path), "/v1/groups/%s%s", args->operands[0], verbs[i].suffix);
	status = cli_call(&args->options, command, verbs[i].method, path, request, &reply);
	if (status == 0)
		cli_group_print_reply(args, reply);
	json_decref(reply);
	return status;
}

/* ferry group promote NAME [--point N] [--force] [--json]: at the replica site. */
int
cli_group_promote(struct cli_args *args)
{
	json_t *request, *reply = NULL;
	char path[300];
	int status;

	if (args->operand_count != 1)
		return cli_usage_error(args);
	request = json_object();
	if (cli_given(args, CLI_OPTION_POINT))
		json_object_set_new(request, "point",
				    json_integer(cli_number(args, CLI_OPTION_POINT)));
	if (cli_given(args, CLI_OPTION_FORCE))
		json_object_set_new(request, "force", json_true());
	snprintf(path, sizeof(path), "/v1/groups/%s/promote", args->operands[0]);
	status = cli_call(&args->options, "group promote", "POST", path, request, &reply);
	if (status == 0 && args->options.json)
		cli_print_json(reply);
	else if (status == 0)
		printf("group %s promoted at point %" JSON_INTEGER_FORMAT
		       ", generation %" JSON_INTEGER_FORMAT ": its %zu image(s) are written here "
		       "now; a push from the old primary is refused as a split brain (ferry "
		       "reprotect %s here reverses the direction)\n",
		       args->operands[0], json_integer_value(json_object_get(reply, "point")),
		       json_integer_value(json_object_get(reply, "generation")),
		       json_array_size(json_object_get(reply, "volumes")), args->operands[0]);
	json_decref(reply);
	return status;
}

/* ferry vm list [--json]: each VM this site knows, its role here and where it runs. */
int
cli_vm_list(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	json_t *reply = NULL, *vm;
	size_t i;
	int status;

	if (args->operand_count != 0)
		return cli_usage_error(args);
	status = cli_call(options, "vm list", "GET", "/v1/vms", NULL, &reply);
	if (status != 0)
		return status;
	if (options->json) {
		cli_print_json(reply);
	} else {
		printf("%-24s %-8s %-16s %-6s %s\n", "VM", "ROLE", "GROUP", "ORDER", "DISKS");
		json_array_foreach(json_object_get(reply, "vms"), i, vm)
			printf("%-24s %-8s %-16s %-6" JSON_INTEGER_FORMAT " %zu\n",
			       json_string_value(json_object_get(vm, "name")),
			       json_string_value(json_object_get(vm, "role")),
			       json_string_value(json_object_get(vm, "group")),
			       json_integer_value(json_object_get(vm, "order")),
			       json_array_size(json_object_get(vm, "disks")));
		if (json_array_size(json_object_get(reply, "vms")) == 0)
			printf("(no VMs: ferry vm protect DOMAIN ...)\n");
	}
	json_decref(reply);
	return 0;
}

/* ferry health [--json]: 0 ok, 1 warning, 2 error, 3 the daemon cannot be reached. */
int
cli_health(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	struct api_client *client = NULL;
	json_t *reply = NULL, *reason;
	const char *word;
	size_t i;
	int status = 3;

	if (args->operand_count != 0) {
		cli_command_usage(stderr, "health");
		return 2;
	}
	client = cli_client(options);
	if (client == NULL || api_client_json(client, "GET", "/v1/health", NULL, &reply) < 0) {
		if (options->json)
			printf("{\"health\":\"unknown\",\"reasons\":[{\"level\":\"error\","
			       "\"reason\":\"the daemon cannot be reached\"}]}\n");
		cli_fail(options, "health");
		goto out;
	}
	word = json_string_value(json_object_get(reply, "health"));
	status = word && strcmp(word, "ok") == 0 ? 0 : word && strcmp(word, "warning") == 0 ? 1 : 2;
	if (options->json) {
		cli_print_json(reply);
	} else {
		printf("%s\n", word ? word : "error");
		json_array_foreach(json_object_get(reply, "reasons"), i, reason)
			printf("  %s: %s\n", json_string_value(json_object_get(reason, "level")),
			       json_string_value(json_object_get(reason, "reason")));
	}
out:
	json_decref(reply);
	api_client_free(client);
	return status;
}

static void
cli_print_event(json_t *event, bool json)
{
	time_t seconds = (time_t)(json_integer_value(json_object_get(event, "time_ms")) / 1000);
	struct tm tm;
	char when[32];

	if (json) {
		cli_print_json(event);
		fflush(stdout);
		return;
	}
	gmtime_r(&seconds, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s %-5s %-5s %-24s %s\n", when, json_string_value(json_object_get(event, "level")),
	       json_string_value(json_object_get(event, "kind")),
	       json_string_value(json_object_get(event, "object")),
	       json_string_value(json_object_get(event, "message")));
	fflush(stdout);
}

struct cli_event_follow {
	char line[8192];
	size_t used;
	int64_t last_id;
	bool json;
	bool complained;
};

/* Server-Sent Events arrive in pieces: lines are put together, and each "data:" line is one
 * event (ferryd sends one per event, with its id). */
static int
cli_event_chunk(const char *data, size_t length, void *context)
{
	struct cli_event_follow *follow = context;

	for (size_t i = 0; i < length; i++) {
		json_t *event;

		if (data[i] != '\n') {
			if (follow->used + 1 < sizeof(follow->line))
				follow->line[follow->used++] = data[i];
			continue;
		}
		follow->line[follow->used] = '\0';
		follow->used = 0;
		if (strncmp(follow->line, "data: ", 6) != 0)
			continue;
		event = json_loads(follow->line + 6, 0, NULL);
		if (event) {
			follow->last_id = json_integer_value(json_object_get(event, "id"));
			cli_print_event(event, follow->json);
		}
		json_decref(event);
	}
	return 0;
}

/* ferry events [--follow] [--json]: the newest events, oldest first; --follow then prints each
 * new one as it happens, reconnecting where it left off when the link drops. */
int
cli_events(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	struct cli_event_follow follow = {0};
	struct api_client *client = NULL;
	json_t *reply = NULL, *events;
	int status = 1;

	if (args->operand_count != 0) {
		cli_command_usage(stderr, "events");
		return 2;
	}
	follow.json = options->json;
	client = cli_client(options);
	if (client == NULL || api_client_json(client, "GET", "/v1/events", NULL, &reply) < 0) {
		status = cli_fail(options, "events");
		goto out;
	}
	events = json_object_get(reply, "events");
	if (options->json && !cli_given(args, CLI_OPTION_FOLLOW)) {
		cli_print_json(reply);
	} else {
		for (size_t i = json_array_size(events); i > 0; i--)
			cli_print_event(json_array_get(events, i - 1), options->json);
	}
	follow.last_id = json_integer_value(json_object_get(json_array_get(events, 0), "id"));
	status = 0;
	while (cli_given(args, CLI_OPTION_FOLLOW)) {
		char header[64];
		const char *headers[] = {header, NULL};
		int rc;

		snprintf(header, sizeof(header), "Last-Event-ID: %lld", (long long)follow.last_id);
		rc = api_client_stream(client, "/v1/events/stream", headers, cli_event_chunk,
				       &follow);
		if (rc == FERRY_ERR_UNAUTHORIZED || rc == FERRY_ERR_FORBIDDEN ||
		    rc == FERRY_ERR_TLS) {
			status = cli_fail(options, "events");
			break;
		}
		/* One line per outage, not one per second of it. */
		if (rc < 0 && !follow.complained)
			fprintf(stderr, "ferry events: %s; reconnecting\n", ferry_error_message());
		follow.complained = rc < 0;
		sleep(1);
	}
out:
	json_decref(reply);
	api_client_free(client);
	return status;
}
