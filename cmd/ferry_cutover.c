/* The CLI's cutover commands: vm protect and unprotect, migrate, failover, reprotect and runs.
 * Each starts a run at the daemon (or acts on one) and follows it, printing the run's id at once
 * and each step as it begins and ends; --json prints one object at the end. */
#include "cmd/cli.h"
#include "common/error.h"
#include "common/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
cli_print_step(json_t *step)
{
	printf("  %2" JSON_INTEGER_FORMAT ". %-46s %-8s %6" JSON_INTEGER_FORMAT " ms  %s\n",
	       json_integer_value(json_object_get(step, "seq")),
	       json_string_value(json_object_get(step, "name")),
	       json_string_value(json_object_get(step, "result")),
	       json_integer_value(json_object_get(step, "duration_ms")),
	       json_string_value(json_object_get(step, "detail")));
}

static void
cli_print_run(json_t *run, bool steps)
{
	json_t *vm, *step;
	size_t i;

	printf("run %" JSON_INTEGER_FORMAT " %s %s: %s in %.1f s%s%s\n",
	       json_integer_value(json_object_get(run, "run")),
	       json_string_value(json_object_get(run, "kind")),
	       json_string_value(json_object_get(run, "target")),
	       json_string_value(json_object_get(run, "status")),
	       (double)json_integer_value(json_object_get(run, "total_ms")) / 1000.0,
	       *json_string_value(json_object_get(run, "reason")) ? ": " : "",
	       json_string_value(json_object_get(run, "reason")));
	json_array_foreach(json_object_get(run, "vms"), i, vm) {
		printf("  %s at point %" JSON_INTEGER_FORMAT,
		       json_string_value(json_object_get(vm, "name")),
		       json_integer_value(json_object_get(vm, "point")));
		if (json_object_get(vm, "downtime_ms"))
			printf(", downtime %" JSON_INTEGER_FORMAT " ms",
			       json_integer_value(json_object_get(vm, "downtime_ms")));
		if (json_object_get(vm, "frozen_ms"))
			printf(", frozen %" JSON_INTEGER_FORMAT " ms",
			       json_integer_value(json_object_get(vm, "frozen_ms")));
		if (json_object_get(vm, "rto_seconds"))
			printf(", RTO %.1f s, RPO %" JSON_INTEGER_FORMAT " s",
			       json_real_value(json_object_get(vm, "rto_seconds")),
			       json_integer_value(json_object_get(vm, "rpo_seconds")));
		printf(", final delta %" JSON_INTEGER_FORMAT " bytes\n",
		       json_integer_value(json_object_get(vm, "final_delta_bytes")));
	}
	if (!steps)
		return;
	json_array_foreach(json_object_get(run, "steps"), i, step) {
		cli_print_step(step);
	}
}

/* Starts a run at the daemon and follows it to its end, printing its id at once and each step
 * as it begins and ends (or, with --json, one object at the end). Exit status 0 only when the run
 * completed. */
static int
cli_run_follow_at(const struct cli_options *options, const char *command, const char *post_path,
		  json_t *request)
{
	struct api_client *client = cli_client(options);
	json_t *reply = NULL;
	size_t printed = 0, begun = 0;
	char path[64];
	int rc;

	rc = client ? api_client_json(client, "POST", post_path, request, &reply)
		    : ferry_error_last_code();
	json_decref(request);
	if (rc < 0)
		goto out;
	snprintf(path, sizeof(path), "/v1/runs/%" JSON_INTEGER_FORMAT,
		 json_integer_value(json_object_get(reply, "run")));
	/* The run's id at once: an operator can follow or resume it from another terminal. */
	if (!options->json) {
		printf("run %" JSON_INTEGER_FORMAT " started (ferry run show %" JSON_INTEGER_FORMAT
		       ")\n",
		       json_integer_value(json_object_get(reply, "run")),
		       json_integer_value(json_object_get(reply, "run")));
		fflush(stdout);
	}
	for (;;) {
		json_t *steps, *step;

		json_decref(reply);
		reply = NULL;
		rc = api_client_json(client, "GET", path, NULL, &reply);
		if (rc < 0)
			goto out;
		steps = json_object_get(reply, "steps");
		/* Each step as it begins, and again as it ends. */
		while (!options->json && begun < json_array_size(steps)) {
			step = json_array_get(steps, begun++);
			if (strcmp(json_string_value(json_object_get(step, "result")), "running") ==
			    0)
				printf("  %2" JSON_INTEGER_FORMAT ". %s ...\n",
				       json_integer_value(json_object_get(step, "seq")),
				       json_string_value(json_object_get(step, "name")));
		}
		while (!options->json && printed < json_array_size(steps) &&
		       strcmp(json_string_value(json_object_get(
				      step = json_array_get(steps, printed), "result")),
			      "running") != 0) {
			cli_print_step(step);
			printed++;
		}
		fflush(stdout);
		if (strcmp(json_string_value(json_object_get(reply, "status")), "running") != 0)
			break;
		usleep(200 * 1000);
	}
	if (options->json) {
		json_dumpf(reply, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	} else {
		json_object_set_new(reply, "steps", json_array());
		cli_print_run(reply, false);
	}
	rc = strcmp(json_string_value(json_object_get(reply, "status")), "completed") == 0 ? 0 : 1;
out:
	api_client_free(client);
	json_decref(reply);
	if (rc < 0)
		return cli_fail(options, command);
	return rc;
}

static int
cli_run_follow(const struct cli_options *options, const char *command, json_t *request)
{
	return cli_run_follow_at(options, command, "/v1/runs", request);
}

/* ferry vm protect DOMAIN --uri URI --group G --dest-uri URI [--order N] [--delay S]
 * [--network-map SRC=DST ...] [--site SITE] */
int
cli_vm_protect(struct cli_args *args)
{
	const char *uri = cli_text(args, CLI_OPTION_URI),
		   *dest_uri = cli_text(args, CLI_OPTION_DEST_URI),
		   *group = cli_text(args, CLI_OPTION_GROUP),
		   *site = cli_text(args, CLI_OPTION_SITE);
	json_t *request;
	char done[600];

	if (args->operand_count != 1 || !uri || !dest_uri || !group) {
		fprintf(stderr, "usage: ferry vm protect DOMAIN --uri LIBVIRT_URI --group GROUP "
				"--dest-uri LIBVIRT_URI [--order N] [--delay SECONDS] "
				"[--network-map SRC=DST ...] [--site SITE]\n");
		return 2;
	}
	request = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o}", "name", args->operands[0], "uri",
			    uri, "dest_uri", dest_uri, "group", group, "order",
			    (json_int_t)cli_number(args, CLI_OPTION_ORDER), "delay",
			    (json_int_t)cli_number(args, CLI_OPTION_DELAY), "network_map",
			    args->network_map ? json_incref(args->network_map) : json_object());
	if (site)
		json_object_set_new(request, "site", json_string(site));
	snprintf(done, sizeof(done),
		 "%s: protected in group %s; its XML and disks are at the "
		 "replica site",
		 args->operands[0], group);
	return cli_request(&args->options, "vm protect", "/v1/vms", request, done);
}

/* ferry vm unprotect DOMAIN */
int
cli_vm_unprotect(struct cli_args *args)
{
	char done[600];

	if (args->operand_count != 1)
		return cli_usage_error(args);
	snprintf(done, sizeof(done),
		 "%s unprotected: its disks no longer replicate, its record is gone at "
		 "both sites",
		 args->operands[0]);
	return cli_request(&args->options, "vm unprotect", "/v1/vms/remove",
			   json_pack("{s:s}", "name", args->operands[0]), done);
}

/* ferry migrate DOMAIN --live|--cold [--dry-run] ... */
int
cli_migrate(struct cli_args *args)
{
	bool live = cli_given(args, CLI_OPTION_LIVE), cold = cli_given(args, CLI_OPTION_COLD),
	     dry_run = cli_given(args, CLI_OPTION_DRY_RUN);

	if (args->operand_count != 1 || (live == cold && !dry_run)) {
		fprintf(stderr, "usage: ferry migrate DOMAIN --live [--max-time SECONDS] "
				"[--bandwidth MIB_PER_S]\n"
				"       [--on-timeout abort|cold [--shutdown-timeout SECONDS] "
				"[--force]] [--max-lag SECONDS] [--json]\n"
				"       ferry migrate DOMAIN --cold [--shutdown-timeout SECONDS] "
				"[--force] [--max-lag SECONDS] [--json]\n");
		return 2;
	}
	/* --dry-run checks what a live migration checks, changes nothing, and predicts. */
	return cli_run_follow(
		&args->options, "migrate",
		json_pack("{s:s, s:s, s:I, s:b, s:I, s:b, s:I, s:s, s:I}", "kind",
			  dry_run ? "migrate-check"
			  : live  ? "migrate-live"
				  : "migrate-cold",
			  "vm", args->operands[0], "shutdown_timeout",
			  (json_int_t)cli_number(args, CLI_OPTION_SHUTDOWN_TIMEOUT), "force",
			  cli_given(args, CLI_OPTION_FORCE), "max_time",
			  (json_int_t)cli_number(args, CLI_OPTION_MAX_TIME), "dry_run", dry_run,
			  "bandwidth", (json_int_t)cli_number(args, CLI_OPTION_BANDWIDTH),
			  "on_timeout", cli_text(args, CLI_OPTION_ON_TIMEOUT) ?: "abort", "max_lag",
			  (json_int_t)cli_number(args, CLI_OPTION_MAX_LAG)));
}

/* ferry failover DOMAIN|--group G [--point N] [--test] [--json]; ferry failover --cleanup */
int
cli_failover(struct cli_args *args)
{
	const char *group = cli_text(args, CLI_OPTION_GROUP);
	bool cleanup = cli_given(args, CLI_OPTION_CLEANUP);
	json_t *request;

	if (args->operand_count > 1 ||
	    (!cleanup && (args->operand_count == 1) == (group != NULL))) {
		fprintf(stderr, "usage: ferry failover DOMAIN|--group GROUP [--point N] [--test] "
				"[--force] [--json]\n       ferry failover --cleanup "
				"[DOMAIN|--group GROUP]\n");
		return 2;
	}
	request = json_pack("{s:s, s:I}", "kind",
			    cleanup			       ? "failover-cleanup"
			    : cli_given(args, CLI_OPTION_TEST) ? "failover-test"
							       : "failover",
			    "point", (json_int_t)cli_number(args, CLI_OPTION_POINT));
	if (cli_given(args, CLI_OPTION_FORCE))
		json_object_set_new(request, "force", json_true());
	if (args->operand_count == 1)
		json_object_set_new(request, "vm", json_string(args->operands[0]));
	if (group)
		json_object_set_new(request, "group", json_string(group));
	return cli_run_follow(&args->options, "failover", request);
}

/* ferry reprotect GROUP [--site SITE] [--json] */
int
cli_reprotect(struct cli_args *args)
{
	const char *site = cli_text(args, CLI_OPTION_SITE);
	json_t *request;

	if (args->operand_count != 1) {
		fprintf(stderr, "usage: ferry reprotect GROUP [--site SITE] [--json]\n");
		return 2;
	}
	request = json_pack("{s:s, s:s}", "kind", "reprotect", "group", args->operands[0]);
	if (site)
		json_object_set_new(request, "site", json_string(site));
	return cli_run_follow(&args->options, "reprotect", request);
}

/* GET of a run (id) or of every run (id NULL), printed. */
static int
cli_runs_show(const struct cli_options *options, const char *id)
{
	struct api_client *client = cli_client(options);
	json_t *reply = NULL, *run;
	char path[128];
	size_t i;
	int rc;

	snprintf(path, sizeof(path), id ? "/v1/runs/%s" : "/v1/runs", id ? id : "");
	rc = client ? api_client_json(client, "GET", path, NULL, &reply) : ferry_error_last_code();
	api_client_free(client);
	if (rc < 0)
		return cli_fail(options, id ? "run show" : "runs");
	if (options->json) {
		json_dumpf(reply, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	} else if (id) {
		cli_print_run(reply, true);
	} else {
		json_array_foreach(json_object_get(reply, "runs"), i, run) {
			json_object_set_new(run, "steps", json_array());
			cli_print_run(run, false);
		}
	}
	json_decref(reply);
	return 0;
}

/* ferry runs [--json] */
int
cli_runs(struct cli_args *args)
{
	if (args->operand_count != 0)
		return cli_usage_error(args);
	return cli_runs_show(&args->options, NULL);
}

/* ferry run show|resume|abort|rollback ID */
int
cli_run(struct cli_args *args)
{
	const char *verb = args->command->verb, *id = args->operands[0];
	char path[128], command[64];

	if (args->operand_count != 1)
		return cli_usage_error(args);
	if (strcmp(verb, "show") == 0)
		return cli_runs_show(&args->options, id);
	snprintf(command, sizeof(command), "run %s", verb);
	snprintf(path, sizeof(path), "/v1/runs/%s/%s", id, verb);
	if (strcmp(verb, "abort") == 0)
		return cli_request(&args->options, command, path, json_object(),
				   "abort asked for: the run stops at the next safe point, the VM "
				   "running at the source (ferry run show ID)");
	if (strcmp(verb, "rollback") == 0)
		return cli_run_follow_at(&args->options, command, path, json_object());
	return cli_request(&args->options, command, path, json_object(), "resumed");
}
