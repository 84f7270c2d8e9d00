/* ferry: the operator's CLI. main() parses the command line against the command table below
 * (cmd/ferry_options.c: the option table and its parser) and hands over to the command's
 * handler: here copy and verify (to the replicator), status, protect and unprotect (ferryd's /v1
 * API); the others live in the files beside this one (cmd/cli.h lists them). Exit status: 0
 * done, 1 failed, 2 bad usage. */
#include "cmd/cli.h"
#include "catalog/catalog.h"
#include "common/api_client.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "replicator/repl.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every command, in the order `ferry --help` shows them: a row per command, or per verb of one
 * (ferry group create), with the options it takes (cmd/ferry_options.c has them all) and its
 * usage. `ferry help CMD`, `ferry CMD --help` and `-h` print the rows of that command alone,
 * with their options. */
const struct cli_command cli_commands[] = {
	{"copy", NULL, cli_copy,
	 CLI_TAKES(CLI_OPTION_SEGMENT_SIZE, CLI_OPTION_JOBS, CLI_OPTION_ZSTD_LEVEL,
		   CLI_OPTION_RESTART, CLI_OPTION_BWLIMIT, CLI_OPTION_TARGET, CLI_OPTION_FROM_SNAP,
		   CLI_OPTION_SOURCE_FORMAT, CLI_OPTION_TARGET_FORMAT, CLI_OPTION_RETRY_FOR),
	 false,
	 "  copy [--to URL] [--segment-size BYTES] [--jobs N] [--zstd-level N] [--restart]\n"
	 "       [--bwlimit RATE] [--target file|rbd] [--from-snap SNAPSHOT]\n"
	 "       [--source-format raw|qcow2|vmdk|vhdx|vpc] [--target-format raw|qcow2]\n"
	 "       [--retry-for N] [--json] SOURCE NAME\n"
	 "                        copy a file, block device or RBD image to a ferryd as\n"
	 "                        volume NAME, resuming whatever an earlier run left;\n"
	 "                        --target: keep it there as a file or an RBD image\n"
	 "                        (default: the same kind as SOURCE); --from-snap: ship\n"
	 "                        only what changed since that snapshot of SOURCE;\n"
	 "                        --source-format: SOURCE is a disk image (a qcow2 with its\n"
	 "                        backing chain, vmdk, vhdx, vpc), copied as the guest sees\n"
	 "                        it; --target-format: the volume there is a raw file\n"
	 "                        (default) or a qcow2 file\n"},
	{"verify", NULL, cli_verify, CLI_TAKES(CLI_OPTION_SEGMENT_SIZE, CLI_OPTION_SOURCE_FORMAT),
	 false,
	 "  verify [--to URL] [--segment-size BYTES] [--source-format FORMAT] [--json]\n"
	 "         SOURCE NAME\n"
	 "                        re-read both sides and compare their digests\n"},
	{"status", NULL, cli_status, NULL, false,
	 "  status [--json] [NAME]\n"
	 "                        list a daemon's volumes, transfers and groups, or one\n"},
	{"site", "add", cli_site_add,
	 CLI_TAKES(CLI_OPTION_URL, CLI_OPTION_PEER_TOKEN_FILE, CLI_OPTION_PEER_CACERT,
		   CLI_OPTION_REPLACE),
	 false,
	 "  site add NAME --url URL --peer-token-file F [--peer-cacert F] [--replace]\n"
	 "                        the replica site this daemon pushes to\n"},
	{"site", "list", cli_site_list, NULL, false, "  site list [--json]\n"},
	{"site", "remove", cli_site_remove, NULL, false,
	 "  site remove NAME       (refused while images replicate there)\n"},
	{"group", "create", cli_group_create,
	 CLI_TAKES(CLI_OPTION_INTERVAL, CLI_OPTION_KEEP, CLI_OPTION_RPO), false,
	 "  group create NAME --interval SECONDS [--keep K] [--rpo SECONDS]\n"
	 "                        a protection group: a point every SECONDS, K kept, an\n"
	 "                        RPO target (default two intervals and a minute)\n"},
	{"group", "set", cli_group_change,
	 CLI_TAKES(CLI_OPTION_INTERVAL, CLI_OPTION_KEEP, CLI_OPTION_RPO), false,
	 "  group set NAME [--interval S] [--keep K] [--rpo S]\n"},
	{"group", "list", cli_group_list, NULL, false, "  group list [--json]\n"},
	{"group", "sync", cli_group_change, NULL, false,
	 "  group sync NAME        take and ship a point now\n"},
	{"group", "pause", cli_group_change, NULL, false, "  group pause NAME\n"},
	{"group", "resume", cli_group_change, NULL, false,
	 "  group resume NAME      (pause:) stop taking points on the schedule, or start again\n"},
	{"group", "delete", cli_group_change, NULL, false,
	 "  group delete NAME      (refused while images or VMs are protected in it)\n"},
	{"group", "promote", cli_group_promote, CLI_TAKES(CLI_OPTION_POINT, CLI_OPTION_FORCE),
	 false,
	 "  group promote NAME [--point N] [--force] [--json]\n"
	 "                        (replica site, a group without VMs: those are ferry\n"
	 "                        failover's) its images go back to point N (default: the\n"
	 "                        newest they all hold) and are written here from now on;\n"
	 "                        the group's generation is raised, so that a push from\n"
	 "                        the old primary is refused as a split brain. Refused\n"
	 "                        while the primary pushed here in the last 60 s (it still\n"
	 "                        writes), unless --force\n"},
	{"events", NULL, cli_events, CLI_TAKES(CLI_OPTION_FOLLOW), false,
	 "  events [--follow] [--json]\n"
	 "                        what happened (points, state changes, run steps,\n"
	 "                        errors), oldest first; --follow: and what happens next\n"},
	{"health", NULL, cli_health, NULL, false,
	 "  health [--json]        ok, warning or error, with the reasons; exit 0, 1\n"
	 "                        or 2, and 3 when the daemon cannot be reached\n"},
	{"protect", NULL, cli_protect, CLI_TAKES(CLI_OPTION_GROUP, CLI_OPTION_SITE), false,
	 "  protect --group NAME --site SITE rbd:POOL/IMAGE [REPLICA]\n"
	 "                        replicate an image continuously\n"},
	{"unprotect", NULL, cli_unprotect, NULL, false,
	 "  unprotect rbd:POOL/IMAGE\n"
	 "                        stop replicating it\n"},
	{"vm", "protect", cli_vm_protect,
	 CLI_TAKES(CLI_OPTION_URI, CLI_OPTION_DEST_URI, CLI_OPTION_GROUP, CLI_OPTION_ORDER,
		   CLI_OPTION_DELAY, CLI_OPTION_NETWORK_MAP, CLI_OPTION_SITE),
	 false,
	 "  vm protect DOMAIN --uri URI --group G --dest-uri URI [--order N] [--delay S]\n"
	 "       [--network-map SRC=DST ...] [--site SITE]\n"
	 "                        protect a VM's RBD disks and keep its XML at both sites\n"},
	{"vm", "list", cli_vm_list, NULL, false,
	 "  vm list [--json]       the VMs this site knows and its role for each\n"},
	{"vm", "unprotect", cli_vm_unprotect, NULL, false,
	 "  vm unprotect DOMAIN    (primary site) its disks stop replicating, its record\n"
	 "                        goes at both sites; refused during a run\n"},
	{"migrate", NULL, cli_migrate,
	 CLI_TAKES(CLI_OPTION_LIVE, CLI_OPTION_COLD, CLI_OPTION_DRY_RUN, CLI_OPTION_MAX_TIME,
		   CLI_OPTION_BANDWIDTH, CLI_OPTION_ON_TIMEOUT, CLI_OPTION_SHUTDOWN_TIMEOUT,
		   CLI_OPTION_FORCE, CLI_OPTION_MAX_LAG),
	 false,
	 "  migrate DOMAIN --live|--cold [--max-lag S] ...: refused when a disk's replica\n"
	 "                        has no point, fails, or lags more than S (default: three\n"
	 "                        intervals of its group and a minute)\n"
	 "  migrate DOMAIN --live [--max-time S] [--bandwidth RATE]\n"
	 "       [--on-timeout abort|cold [--shutdown-timeout S] [--force]] [--json]\n"
	 "                        (primary site) catch up, move the memory (auto-converge;\n"
	 "                        after S, default 600, aborted with the VM left running,\n"
	 "                        or then moved cold), ship the final delta while paused,\n"
	 "                        resume at the replica site\n"
	 "  migrate DOMAIN --cold [--shutdown-timeout S] [--force] [--json]\n"
	 "                        (primary site) shut down, ship the final delta, start the\n"
	 "                        VM at the replica site\n"
	 "  migrate DOMAIN --live|--cold --dry-run [--json]\n"
	 "                        check and predict, change nothing\n"},
	{"failover", NULL, cli_failover,
	 CLI_TAKES(CLI_OPTION_GROUP, CLI_OPTION_POINT, CLI_OPTION_TEST, CLI_OPTION_CLEANUP,
		   CLI_OPTION_FORCE),
	 false,
	 "  failover DOMAIN|--group G [--point N] [--test] [--force] [--json]\n"
	 "  failover --cleanup [DOMAIN|--group G]\n"
	 "                        (replica site) bring VMs up from a committed point; --test\n"
	 "                        on clones with links down, while replication goes on\n"},
	{"reprotect", NULL, cli_reprotect, CLI_TAKES(CLI_OPTION_SITE), false,
	 "  reprotect GROUP [--site SITE] [--json]\n"
	 "                        (the site the VMs moved to) reverse the direction: the\n"
	 "                        other site's images go back to the last shared point and\n"
	 "                        become replicas; only what changed since then is shipped\n"},
	{"token", "create", cli_token_create, CLI_TAKES(CLI_OPTION_ROLE, CLI_OPTION_EXPIRES), false,
	 "  token create NAME --role viewer|operator|admin|peer [--expires DAYS] [--json]\n"
	 "                        an API token of a daemon (as admin); the secret is shown\n"
	 "                        once; a peer token is what the other site's\n"
	 "                        ferry site add --peer-token-file holds\n"},
	{"token", "list", cli_token_list, NULL, false, "  token list [--json]\n"},
	{"token", "revoke", cli_token_revoke, NULL, false, "  token revoke NAME\n"},
	{"audit", NULL, cli_audit, CLI_TAKES(CLI_OPTION_SINCE), false,
	 "  audit [--since TIME] [--json]\n"
	 "                        who changed what at a daemon (TIME: 2026-12-01T10:00:00Z,\n"
	 "                        ms since 1970, or 30m, 12h, 7d ago)\n"},
	{"runs", NULL, cli_runs, NULL, false,
	 "  runs [--json]\n"
	 "                        cutover runs and their state\n"},
	{"run", "show", cli_run, NULL, false, "  run show ID [--json]   a run and its steps\n"},
	{"run", "resume", cli_run, NULL, false,
	 "  run resume ID          resume an interrupted run\n"},
	{"run", "abort", cli_run, NULL, false,
	 "  run abort ID           stop a planned migration before the VM stops at the\n"
	 "                        source (it keeps running there)\n"},
	{"run", "rollback", cli_run, NULL, false,
	 "  run rollback ID [--json]\n"
	 "                        roll back an interrupted or failed migration that never\n"
	 "                        ran the VM at the destination: start it again at the\n"
	 "                        source (a test failover: clean it up)\n"},
	{"config", NULL, cli_config, NULL, true,
	 "  config [--json]\n"
	 "                        the settings in force (daemon, token file, CA, Ceph) and\n"
	 "                        where each came from\n"},
	{"help", NULL, cli_help, NULL, true,
	 "  help [COMMAND]        this text, or one command's\n"},
};
const size_t cli_command_count = sizeof(cli_commands) / sizeof(cli_commands[0]);

int
cli_fail(const struct cli_options *options, const char *command)
{
	const char *message = ferry_error_message();

	fprintf(stderr, "ferry %s: %s\n", command, message[0] ? message : "failed");
	(void)options;
	return 1;
}

static int
cli_state_catalog(struct catalog **out)
{
	char folder[4096], path[4200];
	const char *configured = getenv("FERRY_STATE_DIR");
	const char *home = getenv("HOME");

	if (configured && configured[0])
		snprintf(folder, sizeof(folder), "%s", configured);
	else if (geteuid() == 0)
		/* Not /var/lib/ferry: that is ferryd's, with its own catalog.db. */
		snprintf(folder, sizeof(folder), "/var/lib/ferry-cli");
	else
		snprintf(folder, sizeof(folder), "%s/.local/state/ferry", home ? home : ".");
	if (util_mkdir_p(folder, 0700) < 0)
		return ferry_error_last_code();
	snprintf(path, sizeof(path), "%s/catalog.db", folder);
	return catalog_open(path, CATALOG_SYNC_NORMAL, out);
}

/* The location SOURCE is read from: disk:FORMAT:SOURCE with --source-format, else SOURCE as
 * given. Nothing is guessed: a plain file that starts like a disk image of another format
 * (its header says qcow2, vmdk, vhdx or vpc) is refused until --source-format says how to read
 * it, raw included (a raw disk may hold such a header). Exit status 2 on a refusal. */
static int
cli_source_location(struct cli_args *args, const char *command, char *out, size_t size)
{
	static const struct {
		const char *magic, *format;
	} headers[] = {{"QFI\xfb", "qcow2"},
		       {"KDMV", "vmdk"},
		       {"# Disk DescriptorFile", "vmdk"},
		       {"vhdxfile", "vhdx"},
		       {"conectix", "vpc"}};
	const char *source = args->operands[0], *format = cli_text(args, CLI_OPTION_SOURCE_FORMAT);
	char head[64] = "";
	FILE *file;
	size_t got;

	if (format) {
		if (strchr(source, ':') && source[0] != '/' && source[0] != '.') {
			fprintf(stderr,
				"ferry %s: --source-format is for a disk image file, not %s; give "
				"its path\n",
				command, source);
			return 2;
		}
		if (util_format(out, size, "the source's location", "disk:%s:%s", format, source) <
		    0) {
			fprintf(stderr, "ferry %s: %s\n", command, ferry_error_message());
			return 2;
		}
		return 0;
	}
	if (util_format(out, size, "the source's location", "%s", source) < 0) {
		fprintf(stderr, "ferry %s: %s\n", command, ferry_error_message());
		return 2;
	}
	file = strchr(source, ':') && source[0] != '/' && source[0] != '.' ? NULL
									   : fopen(source, "rb");
	got = file ? fread(head, 1, sizeof(head), file) : 0;
	if (file)
		fclose(file);
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		size_t length = strlen(headers[i].magic);

		if (got >= length && memcmp(head, headers[i].magic, length) == 0) {
			fprintf(stderr,
				"ferry %s: %s starts with a %s header: say how to read it, "
				"--source-format %s for the disk it describes, or --source-format "
				"raw for its bytes as they are\n",
				command, source, headers[i].format, headers[i].format);
			return 2;
		}
	}
	return 0;
}

int
cli_copy(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	struct repl_copy_result result;
	struct catalog *catalog = NULL;
	char source[1024];
	const char *target;
	json_t *document;
	int rc, status = 1;

	if (args->operand_count != 2) {
		fprintf(stderr, "ferry copy: give SOURCE and NAME\n");
		return 2;
	}
	status = cli_source_location(args, "copy", source, sizeof(source));
	if (status != 0)
		return status;
	status = 1;
	/* A disk image arrives as a raw volume unless --target says otherwise. */
	target = cli_text(args, CLI_OPTION_TARGET);
	if (target == NULL && cli_given(args, CLI_OPTION_SOURCE_FORMAT))
		target = "file";
	if (cli_given(args, CLI_OPTION_TARGET_FORMAT) &&
	    strcmp(cli_text(args, CLI_OPTION_TARGET_FORMAT), "qcow2") == 0) {
		if (target && strcmp(target, "file") != 0) {
			fprintf(stderr,
				"ferry copy: --target-format qcow2 keeps a file, not an %s "
				"image; leave out --target %s\n",
				target, target);
			return 2;
		}
		target = "qcow2"; /* the receiver's kind of volume */
	}
	rc = cli_state_catalog(&catalog);
	if (rc < 0) {
		status = cli_fail(options, "copy");
		goto out;
	}
	rc = repl_copy_run(
		&(struct repl_copy_options){
			.source = source,
			.name = args->operands[1],
			.url = options->url,
			.token = options->token,
			.cacert = options->cacert,
			.insecure = options->insecure,
			.segment_size = (uint64_t)cli_number(args, CLI_OPTION_SEGMENT_SIZE),
			.jobs = (int)cli_number(args, CLI_OPTION_JOBS),
			.zstd_level = (int)cli_number(args, CLI_OPTION_ZSTD_LEVEL),
			.restart = cli_given(args, CLI_OPTION_RESTART),
			.target_kind = target,
			/* 0 on the command line is one try; 0 in the options is the default. */
			.retry_seconds = !cli_given(args, CLI_OPTION_RETRY_FOR) ? 0
					 : cli_number(args, CLI_OPTION_RETRY_FOR) == 0
						 ? -1
						 : (int)cli_number(args, CLI_OPTION_RETRY_FOR),
			.from_snapshot = cli_text(args, CLI_OPTION_FROM_SNAP),
			.progress = options->progress,
			.bandwidth_limit = (uint64_t)cli_number(args, CLI_OPTION_BWLIMIT),
			.catalog = catalog,
		},
		&result);
	if (rc < 0)
		fprintf(stderr, "ferry copy: %s: %s\n", args->operands[1], ferry_error_message());
	if (options->json) {
		document =
			json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
				  "s:I, s:f, s:s,"
				  " s:I}",
				  "name", result.name, "status", result.status, "destination",
				  options->url, "bytes_total", (json_int_t)result.bytes_total,
				  "bytes_sent", (json_int_t)result.bytes_sent, "bytes_resent",
				  (json_int_t)result.bytes_resent, "bytes_read",
				  (json_int_t)result.bytes_read, "segments_total",
				  (json_int_t)result.segments_total, "segments_skipped",
				  (json_int_t)result.segments_skipped, "segments_zero",
				  (json_int_t)result.segments_zero, "segments_sent",
				  (json_int_t)result.segments_sent, "segment_size",
				  (json_int_t)result.segment_size, "retries",
				  (json_int_t)result.retries, "seconds", result.seconds, "digest",
				  result.digest, "transfer_id", (json_int_t)result.transfer_id);
		json_object_set_new(document, "duration_ms",
				    json_integer((json_int_t)(result.seconds * 1000)));
		if (cli_given(args, CLI_OPTION_FROM_SNAP))
			json_object_set_new(document, "segments_delta",
					    json_integer((json_int_t)result.segments_delta));
		if (rc < 0)
			json_object_set_new(document, "error",
					    json_pack("{s:s, s:s}", "code", ferry_error_name(rc),
						      "message", ferry_error_message()));
		json_dumpf(document, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(document);
	} else if (rc == 0) {
		char total[32], sent[32];

		util_format_bytes((double)result.bytes_total, total, sizeof(total));
		util_format_bytes((double)result.bytes_sent, sent, sizeof(sent));
		printf("%s: complete, %s verified (%s sent in %.1f s), digest %s\n", result.name,
		       total, sent, result.seconds, result.digest);
	}
	status = rc < 0 ? 1 : 0;
out:
	catalog_close(catalog);
	return status;
}

struct api_client *
cli_client(const struct cli_options *options)
{
	return api_client_new(&(struct api_client_options){
		.url = options->url,
		.token = options->token,
		.cacert = options->cacert,
		.insecure = options->insecure,
	});
}

static void
cli_print_volume_row(json_t *volume)
{
	json_t *transfer = json_object_get(volume, "transfer");
	const char *kind = json_string_value(json_object_get(volume, "kind"));
	char size[32], sent[32];

	if (kind && strcmp(kind, "protected") == 0) {
		/* A protected source: its last point, how old it is, and what the last cycle cost.
		 */
		util_format_bytes((double)json_integer_value(json_object_get(volume, "bytes_sent")),
				  sent, sizeof(sent));
		printf("%-24s %-10s point %-6" JSON_INTEGER_FORMAT " lag %5.1f s  -> %s/%s, last "
		       "cycle %s sent%s%s\n",
		       json_string_value(json_object_get(volume, "name")),
		       json_string_value(json_object_get(volume, "state")),
		       json_integer_value(json_object_get(volume, "last_point")),
		       json_real_value(json_object_get(volume, "lag_seconds")),
		       json_string_value(json_object_get(volume, "site")),
		       json_string_value(json_object_get(volume, "replica")), sent,
		       *json_string_value(json_object_get(volume, "reason")) ? ": " : "",
		       json_string_value(json_object_get(volume, "reason")));
		return;
	}
	util_format_bytes((double)json_integer_value(json_object_get(volume, "size")), size,
			  sizeof(size));
	printf("%-24s %-10s %6.1f%% %10s %9" JSON_INTEGER_FORMAT "/%-9" JSON_INTEGER_FORMAT " %s\n",
	       json_string_value(json_object_get(volume, "name")),
	       json_string_value(json_object_get(volume, "state")) ?: "-",
	       100.0 * json_real_value(json_object_get(transfer, "progress")), size,
	       json_integer_value(json_object_get(transfer, "segments_durable")),
	       json_integer_value(json_object_get(transfer, "segments_total")),
	       json_string_value(json_object_get(transfer, "digest")) ?: "");
}

/* The health word on top, as rbd mirror pool status has, then one row per group; true when
 * the health is error. */
static bool
cli_print_health_and_groups(struct api_client *client, json_t *status_reply)
{
	json_t *health = NULL, *groups = json_object_get(status_reply, "groups"), *group, *reason;
	const char *word = "unknown";
	int64_t now = util_now_ms();
	size_t i;
	bool error;

	if (api_client_json(client, "GET", "/v1/health", NULL, &health) == 0)
		word = json_string_value(json_object_get(health, "health")) ?: "unknown";
	printf("health: %s\n", word);
	json_array_foreach(json_object_get(health, "reasons"), i, reason)
		printf("  %s: %s\n", json_string_value(json_object_get(reason, "level")),
		       json_string_value(json_object_get(reason, "reason")));
	error = strcmp(word, "error") == 0;
	json_decref(health);
	if (json_array_size(groups) == 0) {
		printf("\n");
		return error;
	}
	printf("\n%-16s %7s %-8s %6s %8s %9s %8s %7s %5s  %s\n", "GROUP", "MEMBERS", "STATE",
	       "POINT", "AGE", "NEXT", "DURATION", "RPO", "FAILS", "PREDICTED");
	json_array_foreach(groups, i, group) {
		const char *name = json_string_value(json_object_get(group, "name"));
		int64_t last = json_integer_value(json_object_get(group, "last_point_time_ms"));
		int64_t next = json_integer_value(json_object_get(group, "next_point_ms"));
		json_t *predicted = json_object_get(group, "predicted_lag_seconds");
		char age[32] = "-", ahead[32] = "-", next_text[40] = "-", predicted_text[40] = "-";

		if (last > 0) {
			cli_format_age(now - last, age, sizeof(age));
			cli_format_age(next - now, ahead, sizeof(ahead));
			snprintf(next_text, sizeof(next_text), next > now ? "in %s" : "due", ahead);
		}
		if (json_is_true(json_object_get(group, "paused")))
			snprintf(next_text, sizeof(next_text), "paused");
		/* The lag the group settles at (or reaches in a few cycles, growing) at its recent
		 * rates; "-" while there are too few cycles to tell. */
		if (json_is_number(predicted))
			snprintf(predicted_text, sizeof(predicted_text), "%.1f s%s",
				 json_number_value(predicted),
				 json_is_true(json_object_get(group, "lag_grows")) ? ", growing"
										   : "");
		printf("%-16s %7" JSON_INTEGER_FORMAT " %-8s %6" JSON_INTEGER_FORMAT
		       " %8s %9s %6.1f s %5" JSON_INTEGER_FORMAT " s %5" JSON_INTEGER_FORMAT
		       "  %s\n",
		       name, json_integer_value(json_object_get(group, "volumes")),
		       json_string_value(json_object_get(group, "state")),
		       json_integer_value(json_object_get(group, "last_point")), age, next_text,
		       (double)json_integer_value(json_object_get(group, "duration_ms")) / 1000.0,
		       json_integer_value(json_object_get(group, "rpo_target")),
		       json_integer_value(json_object_get(group, "errors")), predicted_text);
		if (strcmp(json_string_value(json_object_get(group, "state")) ?: "", "at-risk") ==
		    0)
			printf("  at risk: %s\n",
			       json_string_value(json_object_get(group, "reason")) ?: "");
		if (json_string_value(json_object_get(group, "hint")))
			printf("  %s\n", json_string_value(json_object_get(group, "hint")));
	}
	printf("\n");
	return error;
}

int
cli_status(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	struct api_client *client = NULL;
	json_t *reply = NULL, *volume;
	char path[256] = "/v1/volumes";
	size_t i;
	int status = 1;

	if (args->operand_count > 1) {
		fprintf(stderr, "ferry status: give at most one volume NAME\n");
		return 2;
	}
	client = cli_client(options);
	if (args->operand_count == 1)
		snprintf(path, sizeof(path), "/v1/volumes/%s", args->operands[0]);
	if (client == NULL || api_client_json(client, "GET", path, NULL, &reply) < 0) {
		status = cli_fail(options, "status");
		goto out;
	}
	if (options->json) {
		/* The daemon's answer as it is: the list, or the one volume asked for. */
		json_dumpf(reply, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	} else {
		json_t *volumes = args->operand_count == 1
					  ? json_pack("[O]", reply)
					  : json_incref(json_object_get(reply, "volumes"));
		bool unhealthy = false;

		if (args->operand_count == 0)
			unhealthy = cli_print_health_and_groups(client, reply);
		printf("%-24s %-10s %7s %10s %19s %s\n", "VOLUME", "STATE", "DONE", "SIZE",
		       "SEGMENTS", "DIGEST");
		json_array_foreach(volumes, i, volume)
			cli_print_volume_row(volume);
		if (json_array_size(volumes) == 0)
			printf("(no volumes)\n");
		json_decref(volumes);
		/* A monitoring script reading the table must not take an error for success. */
		if (unhealthy) {
			status = 1;
			goto out;
		}
	}
	status = 0;
out:
	json_decref(reply);
	api_client_free(client);
	return status;
}

int
cli_verify(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	struct api_client *client = NULL;
	struct repl_volume *source = NULL;
	json_t *volume = NULL, *request = NULL, *reply = NULL;
	char path[512], local_digest[DIGEST_STRING_SIZE], location[1024];
	const char *remote_digest, *recorded;
	uint8_t *sums = NULL;
	uint64_t segment_size;
	bool match;
	int status = -1; /* -1: failed, reported at out */

	if (args->operand_count != 2) {
		fprintf(stderr, "ferry verify: give SOURCE and NAME\n");
		return 2;
	}
	status = cli_source_location(args, "verify", location, sizeof(location));
	if (status != 0)
		return status;
	status = -1;
	client = cli_client(options);
	snprintf(path, sizeof(path), "/v1/volumes/%s", args->operands[1]);
	if (client == NULL || api_client_json(client, "GET", path, NULL, &volume) < 0)
		goto out;
	segment_size = (uint64_t)json_integer_value(
		json_object_get(json_object_get(volume, "transfer"), "segment_size"));
	if (cli_given(args, CLI_OPTION_SEGMENT_SIZE))
		segment_size = (uint64_t)cli_number(args, CLI_OPTION_SEGMENT_SIZE);
	if (segment_size == 0)
		segment_size = SEGMENT_SIZE_DEFAULT;
	if (repl_volume_open(location, REPL_OPEN_READ, &source) < 0)
		goto out;
	sums = malloc((repl_volume_size(source) / segment_size + 1) * CHECKSUM_BYTES);
	if (sums == NULL || repl_volume_digest(source, segment_size, sums, local_digest) < 0)
		goto out;
	request = json_pack("{s:I}", "segment_size", (json_int_t)segment_size);
	snprintf(path, sizeof(path), "/v1/volumes/%s/verify", args->operands[1]);
	if (api_client_json(client, "POST", path, request, &reply) < 0)
		goto out;
	remote_digest = json_string_value(json_object_get(reply, "digest"));
	recorded =
		json_string_value(json_object_get(json_object_get(volume, "transfer"), "digest"));
	match = remote_digest && strcmp(remote_digest, local_digest) == 0 &&
		repl_volume_size(source) ==
			(uint64_t)json_integer_value(json_object_get(volume, "size"));
	if (options->json) {
		json_t *document =
			json_pack("{s:s, s:b, s:s, s:s, s:s, s:I}", "name", args->operands[1],
				  "match", match, "source_digest", local_digest, "receiver_digest",
				  remote_digest ?: "", "recorded_digest", recorded ?: "",
				  "segment_size", (json_int_t)segment_size);

		json_dumpf(document, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(document);
	} else {
		printf("%s: %s (source %s, receiver %s)\n", args->operands[1],
		       match ? "match" : "MISMATCH", local_digest, remote_digest ?: "-");
	}
	if (!match)
		fprintf(stderr,
			"ferry verify: %s differs from %s on %s; re-run ferry copy with "
			"--restart to copy it again\n",
			args->operands[1], args->operands[0], options->url);
	status = match ? 0 : 1;
out:
	if (status < 0)
		status = cli_fail(options, "verify");
	free(sums);
	repl_volume_close(source);
	json_decref(volume);
	json_decref(request);
	json_decref(reply);
	api_client_free(client);
	return status;
}

/* Sends one JSON request to the daemon and prints its answer (JSON with --json). */
int
cli_request(const struct cli_options *options, const char *command, const char *path,
	    json_t *request, const char *done)
{
	json_t *reply = NULL;

	if (cli_call(options, command, "POST", path, request, &reply) != 0)
		return 1;
	if (options->json) {
		json_dumpf(reply, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	} else {
		printf("%s\n", done);
	}
	json_decref(reply);
	return 0;
}

/* ferry protect --group G --site S SOURCE [REPLICA] */
int
cli_protect(struct cli_args *args)
{
	const char *group = cli_text(args, CLI_OPTION_GROUP),
		   *site = cli_text(args, CLI_OPTION_SITE);
	json_t *request;
	char done[700];

	if (args->operand_count < 1 || args->operand_count > 2 || !group || !site) {
		fprintf(stderr, "usage: ferry protect --group NAME --site SITE rbd:POOL/IMAGE "
				"[REPLICA]\n");
		return 2;
	}
	request = json_pack("{s:s, s:s, s:s}", "source", args->operands[0], "group", group, "site",
			    site);
	if (args->operand_count == 2)
		json_object_set_new(request, "replica", json_string(args->operands[1]));
	snprintf(done, sizeof(done), "%s: protected in group %s, replica at site %s",
		 args->operands[0], group, site);
	return cli_request(&args->options, "protect", "/v1/protections", request, done);
}

/* ferry unprotect SOURCE */
int
cli_unprotect(struct cli_args *args)
{
	char done[700];

	if (args->operand_count != 1) {
		fprintf(stderr, "usage: ferry unprotect rbd:POOL/IMAGE\n");
		return 2;
	}
	snprintf(done, sizeof(done), "%s: no longer protected", args->operands[0]);
	return cli_request(&args->options, "unprotect", "/v1/protections/remove",
			   json_pack("{s:s}", "source", args->operands[0]), done);
}

/* ferry help [COMMAND] */
int
cli_help(struct cli_args *args)
{
	if (args->operand_count > 0)
		return cli_command_usage(stdout, args->operands[0]);
	cli_usage(stdout);
	return 0;
}

int
main(int argc, char **argv)
{
	struct cli_args args;
	int status;

	if (argc < 2) {
		cli_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "__complete") == 0)
		return cli_complete(argc, argv);
	status = cli_parse(argc, argv, &args);
	if (status >= 0) {
		cli_args_free(&args);
		return status;
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	status = args.command->run(&args);
	cli_args_free(&args);
	repl_ceph_shutdown();
	curl_global_cleanup();
	return status;
}
