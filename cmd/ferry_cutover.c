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
	json_array_foreach(json_object_get(run, "vms"), i, vm)
	{
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
	json_array_foreach(json_object_get(run, "steps"), i, step) if (steps) cli_print_step(step);
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
cli_vm(int argc, char **argv)
{
	struct cli_options options = {0};
	json_t *request;
	char done[600];
	int first, status = 2;

	first = cli_parse(argc, argv, &options);
	if (first < 0)
		return 2;
	if (argc - first == 1 && strcmp(argv[first], "list") == 0) {
		status = cli_vm_list(&options);
		goto out;
	}
	if (argc - first == 2 && strcmp(argv[first], "unprotect") == 0) {
		snprintf(done, sizeof(done),
			 "%s unprotected: its disks no longer replicate, its record is gone at "
			 "both sites",
			 argv[first + 1]);
		status = cli_request(&options, "vm unprotect", "/v1/vms/remove",
				     json_pack("{s:s}", "name", argv[first + 1]), done);
		goto out;
	}
	if (argc - first != 2 || strcmp(argv[first], "protect") != 0 || !options.uri ||
	    !options.dest_uri || !options.group) {
		fprintf(stderr, "usage: ferry vm protect DOMAIN --uri LIBVIRT_URI --group GROUP "
				"--dest-uri LIBVIRT_URI [--order N] [--delay SECONDS] "
				"[--network-map SRC=DST ...] [--site SITE]\n");
		goto out;
	}
	request = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o}", "name", argv[first + 1], "uri",
			    options.uri, "dest_uri", options.dest_uri, "group", options.group,
			    "order", (json_int_t)options.order, "delay", (json_int_t)options.delay,
			    "network_map",
			    options.network_map ? json_incref(options.network_map) : json_object());
	if (options.site)
		json_object_set_new(request, "site", json_string(options.site));
	snprintf(done, sizeof(done),
		 "%s: protected in group %s; its XML and disks are at the "
		 "replica site",
		 argv[first + 1], options.group);
	status = cli_request(&options, "vm protect", "/v1/vms", request, done);
out:
	json_decref(options.network_map);
	free(options.token);
	return status;
}

/* ferry migrate DOMAIN --cold [--shutdown-timeout S] [--force] [--json] */
int
cli_migrate(int argc, char **argv)
{
	struct cli_options options = {0};
	int first, status = 2;

	first = cli_parse(argc, argv, &options);
	if (first < 0)
		return 2;
	if (argc - first != 1 || (options.live == options.cold && !options.dry_run)) {
		fprintf(stderr, "usage: ferry migrate DOMAIN --live [--max-time SECONDS] "
				"[--bandwidth MIB_PER_S]\n"
				"       [--on-timeout abort|cold [--shutdown-timeout SECONDS] "
				"[--force]] [--max-lag SECONDS] [--json]\n"
				"       ferry migrate DOMAIN --cold [--shutdown-timeout SECONDS] "
				"[--force] [--max-lag SECONDS] [--json]\n");
		goto out;
	}
	/* --dry-run checks what a live migration checks, changes nothing, and predicts. */
	status = cli_run_follow(&options, "migrate",
				json_pack("{s:s, s:s, s:I, s:b, s:I, s:b, s:I, s:s, s:I}", "kind",
					  options.dry_run ? "migrate-check"
					  : options.live  ? "migrate-live"
							  : "migrate-cold",
					  "vm", argv[first], "shutdown_timeout",
					  (json_int_t)options.shutdown_timeout, "force",
					  options.force, "max_time", (json_int_t)options.max_time,
					  "dry_run", options.dry_run, "bandwidth",
					  (json_int_t)options.bandwidth, "on_timeout",
					  options.on_timeout ? options.on_timeout : "abort",
					  "max_lag", (json_int_t)options.max_lag));
out:
	free(options.token);
	return status;
}

/* ferry failover DOMAIN|--group G [--point N] [--test] [--json]; ferry failover --cleanup */
int
cli_failover(int argc, char **argv)
{
	struct cli_options options = {0};
	json_t *request;
	int first, status = 2;

	first = cli_parse(argc, argv, &options);
	if (first < 0)
		return 2;
	if (!options.cleanup && (argc - first == 1) == (options.group != NULL)) {
		fprintf(stderr,
			"usage: ferry failover DOMAIN|--group GROUP [--point N] [--test] "
			"[--json]\n       ferry failover --cleanup [DOMAIN|--group GROUP]\n");
		goto out;
	}
	request = json_pack("{s:s, s:I}", "kind",
			    options.cleanup ? "failover-cleanup"
			    : options.test  ? "failover-test"
					    : "failover",
			    "point", (json_int_t)options.point);
	if (argc - first == 1)
		json_object_set_new(request, "vm", json_string(argv[first]));
	if (options.group)
		json_object_set_new(request, "group", json_string(options.group));
	status = cli_run_follow(&options, "failover", request);
out:
	free(options.token);
	return status;
}

/* ferry reprotect GROUP [--site SITE] [--json] */
int
cli_reprotect(int argc, char **argv)
{
	struct cli_options options = {0};
	json_t *request;
	int first, status = 2;

	first = cli_parse(argc, argv, &options);
	if (first < 0)
		return 2;
	if (argc - first != 1) {
		fprintf(stderr, "usage: ferry reprotect GROUP [--site SITE] [--json]\n");
		goto out;
	}
	request = json_pack("{s:s, s:s}", "kind", "reprotect", "group", argv[first]);
	if (options.site)
		json_object_set_new(request, "site", json_string(options.site));
	status = cli_run_follow(&options, "reprotect", request);
out:
	free(options.token);
	return status;
}

/* ferry runs [--json]; ferry run show ID [--json]; ferry run resume ID */
int
cli_runs(int argc, char **argv, bool one)
{
	struct cli_options options = {0};
	struct api_client *client = NULL;
	json_t *reply = NULL, *run;
	char path[128];
	size_t i;
	int first, rc, status = 2;

	first = cli_parse(argc, argv, &options);
	if (first < 0)
		return 2;
	if (one && (argc - first != 2 ||
		    (strcmp(argv[first], "show") != 0 && strcmp(argv[first], "resume") != 0 &&
		     strcmp(argv[first], "rollback") != 0 && strcmp(argv[first], "abort") != 0))) {
		cli_command_usage(stderr, "run");
		goto out;
	}
	if (one && strcmp(argv[first], "abort") == 0) {
		snprintf(path, sizeof(path), "/v1/runs/%s/abort", argv[first + 1]);
		status =
			cli_request(&options, "run abort", path, json_object(),
				    "abort asked for: the run stops at the next safe point, the VM "
				    "running at the source (ferry run show ID)");
		goto out;
	}
	if (one && strcmp(argv[first], "rollback") == 0) {
		snprintf(path, sizeof(path), "/v1/runs/%s/rollback", argv[first + 1]);
		status = cli_run_follow_at(&options, "run rollback", path, json_object());
		goto out;
	}
	if (one && strcmp(argv[first], "resume") == 0) {
		snprintf(path, sizeof(path), "/v1/runs/%s/resume", argv[first + 1]);
		status = cli_request(&options, "run resume", path, json_object(), "resumed");
		goto out;
	}
	status = 1;
	client = cli_client(&options);
	snprintf(path, sizeof(path), one ? "/v1/runs/%s" : "/v1/runs", one ? argv[first + 1] : "");
	rc = client ? api_client_json(client, "GET", path, NULL, &reply) : ferry_error_last_code();
	if (rc < 0) {
		status = cli_fail(&options, one ? "run show" : "runs");
		goto out;
	}
	if (options.json) {
		json_dumpf(reply, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	} else if (one) {
		cli_print_run(reply, true);
	} else {
		json_array_foreach(json_object_get(reply, "runs"), i, run)
		{
			json_object_set_new(run, "steps", json_array());
			cli_print_run(run, false);
		}
	}
	status = 0;
out:
	json_decref(reply);
	api_client_free(client);
	free(options.token);
	return status;
}
