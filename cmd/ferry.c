/* ferry: the operator's CLI. Each command parses its options and hands over to the replicator
 * (copy, verify) or to ferryd's /v1 API (status). Exit status: 0 done, 1 failed, 2 bad usage. */
#include "cmd/cli.h"
#include "catalog/catalog.h"
#include "common/api_client.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "replicator/repl.h"

#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Each command's usage, in the order `ferry --help` shows them; `ferry help CMD`, `ferry CMD
 * --help` and `-h` print the entries of that command alone. */
static const struct {
	const char *command;
	const char *text;
} cli_usages[] = {
	{"copy",
	 "  copy [--to URL] [--segment-size BYTES] [--jobs N] [--zstd-level N] [--restart]\n"
	 "       [--bwlimit RATE] [--target file|rbd] [--from-snap SNAPSHOT] [--json]\n"
	 "       SOURCE NAME\n"
	 "                        copy a file, block device or RBD image to a ferryd as\n"
	 "                        volume NAME, resuming whatever an earlier run left;\n"
	 "                        --target: keep it there as a file or an RBD image\n"
	 "                        (default: the same kind as SOURCE); --from-snap: ship\n"
	 "                        only what changed since that snapshot of SOURCE\n"},
	{"verify", "  verify [--to URL] [--json] SOURCE NAME\n"
		   "                        re-read both sides and compare their digests\n"},
	{"status",
	 "  status [--json] [NAME]\n"
	 "                        list a daemon's volumes, transfers and groups, or one\n"},
	{"site", "  site add NAME --url URL --peer-token-file F [--peer-cacert F] [--replace]\n"
		 "                        the replica site this daemon pushes to\n"
		 "  site list [--json]; site remove NAME\n"
		 "                        (remove: refused while images replicate there)\n"},
	{"group", "  group create NAME --interval SECONDS [--keep K] [--rpo SECONDS]\n"
		  "                        a protection group: a point every SECONDS, K kept, an\n"
		  "                        RPO target (default two intervals and a minute)\n"
		  "  group set NAME [--interval S] [--keep K] [--rpo S]; group list [--json]\n"
		  "  group sync NAME        take and ship a point now\n"
		  "  group pause NAME; group resume NAME\n"
		  "                        stop taking points on the schedule, or start again\n"
		  "  group delete NAME      (refused while images or VMs are protected in it)\n"},
	{"events",
	 "  events [--follow] [--json]\n"
	 "                        what happened (points, state changes, run steps,\n"
	 "                        errors), oldest first; --follow: and what happens next\n"},
	{"health", "  health [--json]        ok, warning or error, with the reasons; exit 0, 1\n"
		   "                        or 2, and 3 when the daemon cannot be reached\n"},
	{"protect", "  protect --group NAME --site SITE rbd:POOL/IMAGE [REPLICA]\n"
		    "                        replicate an image continuously\n"},
	{"unprotect", "  unprotect rbd:POOL/IMAGE\n"
		      "                        stop replicating it\n"},
	{"vm", "  vm protect DOMAIN --uri URI --group G --dest-uri URI [--order N] [--delay S]\n"
	       "       [--network-map SRC=DST ...] [--site SITE]\n"
	       "                        protect a VM's RBD disks and keep its XML at both sites\n"
	       "  vm list [--json]       the VMs this site knows and its role for each\n"
	       "  vm unprotect DOMAIN    (primary site) its disks stop replicating, its record\n"
	       "                        goes at both sites; refused during a run\n"},
	{"migrate",
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
	{"failover",
	 "  failover DOMAIN|--group G [--point N] [--test] [--json]\n"
	 "  failover --cleanup [DOMAIN|--group G]\n"
	 "                        (replica site) bring VMs up from a committed point; --test\n"
	 "                        on clones with links down, while replication goes on\n"},
	{"reprotect",
	 "  reprotect GROUP [--site SITE] [--json]\n"
	 "                        (the site the VMs moved to) reverse the direction: the\n"
	 "                        other site's images go back to the last shared point and\n"
	 "                        become replicas; only what changed since then is shipped\n"},
	{"token",
	 "  token create NAME --role viewer|operator|admin|peer [--expires DAYS] [--json]\n"
	 "  token list [--json]; token revoke NAME\n"
	 "                        API tokens of a daemon (as admin); the secret is shown\n"
	 "                        once, at create; a peer token is what the other site's\n"
	 "                        ferry site add --peer-token-file holds\n"},
	{"audit",
	 "  audit [--since TIME] [--json]\n"
	 "                        who changed what at a daemon (TIME: 2026-12-01T10:00:00Z,\n"
	 "                        ms since 1970, or 30m, 12h, 7d ago)\n"},
	{"runs", "  runs [--json]\n"
		 "                        cutover runs and their state\n"},
	{"run", "  run show ID [--json]; run resume ID; run abort ID\n"
		"  run rollback ID [--json]\n"
		"                        a run and its steps; resume an interrupted one; abort a\n"
		"                        planned migration before the VM stops at the source (it\n"
		"                        keeps running there); roll back\n"
		"                        an interrupted or failed migration that never ran the VM\n"
		"                        at the destination: start it again at the source (a test\n"
		"                        failover: clean it up)\n"},
	{"config",
	 "  config [--json]\n"
	 "                        the settings in force (daemon, token file, CA, Ceph) and\n"
	 "                        where each came from\n"},
	{"help", "  help [COMMAND]        this text, or one command's\n"},
};

static const char cli_usage_options[] =
	"\n"
	"Options for every command, before or after it:\n"
	"  --daemon URL (or --to URL)   the ferryd, https://HOST:PORT\n"
	"  --token-file FILE            its bearer token\n"
	"  --cacert FILE | --insecure   the CA that signed its certificate, or no check\n"
	"  --config FILE                the client configuration to read\n"
	"  --json                       one JSON object on stdout\n"
	"  -h, --help                   this command's usage; --version: ferry's version\n"
	"Each comes from the flag, else the environment (FERRY_DAEMON, FERRY_TOKEN_FILE,\n"
	"FERRY_CACERT, CEPH_CONF), else the configuration: $FERRY_CONFIG, else\n"
	"~/.config/ferry/ferry.conf, else /etc/ferry/ferry.conf (INI: daemon, token-file,\n"
	"cacert, ceph-conf, ceph-id); `ferry config` shows what is in force.\n"
	"SOURCE is a path, file:PATH, or rbd:POOL/IMAGE[@SNAPSHOT] with --ceph-conf FILE\n"
	"(default /etc/ceph/ceph.conf) and --ceph-id NAME (default admin).\n"
	"RATE is bytes per second with an optional suffix K, M or G (powers of 1024):\n"
	"100M is 100 MiB/s (a bare --bandwidth number is MiB/s, as it always was).\n"
	"ferry keeps its records in $FERRY_STATE_DIR, else /var/lib/ferry-cli as root, else\n"
	"~/.local/state/ferry.\n"
	"Exit status: 0 done, 1 failed, 2 bad usage.\n";

static void
usage(FILE *out)
{
	fprintf(out, "usage: ferry [OPTIONS] COMMAND [OPTIONS]\n\n");
	for (size_t i = 0; i < sizeof(cli_usages) / sizeof(cli_usages[0]); i++)
		fputs(cli_usages[i].text, out);
	fputs(cli_usage_options, out);
}

int
cli_command_usage(FILE *out, const char *command)
{
	for (size_t i = 0; i < sizeof(cli_usages) / sizeof(cli_usages[0]); i++)
		if (strcmp(cli_usages[i].command, command) == 0) {
			fprintf(out, "usage:\n%s%s", cli_usages[i].text, cli_usage_options);
			return 0;
		}
	fprintf(stderr, "ferry: unknown command '%s' (ferry --help lists them)\n", command);
	return 2;
}

int
cli_fail(const struct cli_options *options, const char *command)
{
	const char *message = ferry_error_message();

	fprintf(stderr, "ferry %s: %s\n", command, message[0] ? message : "failed");
	(void)options;
	return 1;
}

/* Parses the options shared by every command; returns the index of the first operand,
 * or -1 after printing why. */
int
cli_parse(int argc, char **argv, struct cli_options *options)
{
	static const struct option long_options[] = {
		{"to", required_argument, NULL, 'u'},
		{"daemon", required_argument, NULL, 'u'},
		{"token-file", required_argument, NULL, 't'},
		{"cacert", required_argument, NULL, 'c'},
		{"insecure", no_argument, NULL, 'k'},
		{"json", no_argument, NULL, 'j'},
		{"segment-size", required_argument, NULL, 's'},
		{"jobs", required_argument, NULL, 'J'},
		{"zstd-level", required_argument, NULL, 'z'},
		{"restart", no_argument, NULL, 'r'},
		{"bwlimit", required_argument, NULL, 'b'},
		{"no-progress", no_argument, NULL, 'P'},
		{"ceph-conf", required_argument, NULL, 'C'},
		{"ceph-id", required_argument, NULL, 'I'},
		{"target", required_argument, NULL, 'T'},
		{"from-snap", required_argument, NULL, 'F'},
		{"url", required_argument, NULL, 'U'},
		{"peer-token-file", required_argument, NULL, 'K'},
		{"peer-cacert", required_argument, NULL, 'A'},
		{"group", required_argument, NULL, 'G'},
		{"site", required_argument, NULL, 'S'},
		{"interval", required_argument, NULL, 'V'},
		{"keep", required_argument, NULL, 'E'},
		{"uri", required_argument, NULL, 1000},
		{"dest-uri", required_argument, NULL, 1001},
		{"order", required_argument, NULL, 1002},
		{"delay", required_argument, NULL, 1003},
		{"network-map", required_argument, NULL, 1004},
		{"live", no_argument, NULL, 1005},
		{"cold", no_argument, NULL, 1006},
		{"test", no_argument, NULL, 1007},
		{"cleanup", no_argument, NULL, 1008},
		{"force", no_argument, NULL, 1009},
		{"point", required_argument, NULL, 1010},
		{"shutdown-timeout", required_argument, NULL, 1011},
		{"dry-run", no_argument, NULL, 1012},
		{"max-time", required_argument, NULL, 1013},
		{"bandwidth", required_argument, NULL, 1014},
		{"on-timeout", required_argument, NULL, 1015},
		{"max-lag", required_argument, NULL, 1016},
		{"role", required_argument, NULL, 1017},
		{"expires", required_argument, NULL, 1018},
		{"since", required_argument, NULL, 1019},
		{"replace", no_argument, NULL, 1020},
		{"config", required_argument, NULL, 1021},
		{"rpo", required_argument, NULL, 1023},
		{"follow", no_argument, NULL, 1024},
		{"version", no_argument, NULL, 1022},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int option;

	options->jobs = 4;
	options->zstd_level = 1;
	options->progress = isatty(STDERR_FILENO);
	optind = 1;
	while ((option = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		char *end = NULL;

		switch (option) {
		case 'u': options->url = optarg; break;
		case 't': options->token_file = optarg; break;
		case 'c': options->cacert = optarg; break;
		case 'k': options->insecure = true; break;
		case 'j': options->json = true; break;
		case 'r': options->restart = true; break;
		case 'P': options->progress = false; break;
		case 'C': options->ceph_conf = optarg; break;
		case 'F': options->from_snapshot = optarg; break;
		case 'U': options->site_url = optarg; break;
		case 'K': options->peer_token_file = optarg; break;
		case 'A': options->peer_cacert = optarg; break;
		case 'G': options->group = optarg; break;
		case 'S': options->site = optarg; break;
		case 'V':
		case 'E':
		case 1023: {
			long long value = strtoll(optarg, &end, 10);

			if (*end || value < 1) {
				fprintf(stderr,
					"ferry: --%s %s: give a whole number of 1 or more\n",
					option == 'V'	? "interval"
					: option == 'E' ? "keep"
							: "rpo",
					optarg);
				return -1;
			}
			*(option == 'V'	  ? &options->interval
			  : option == 'E' ? &options->keep
					  : &options->rpo) = value;
			break;
		}
		case 'I': options->ceph_id = optarg; break;
		case 1000: options->uri = optarg; break;
		case 1001: options->dest_uri = optarg; break;
		case 1002:
		case 1003:
		case 1010:
		case 1011:
		case 1013:
		case 1014:
		case 1016: {
			long long value = strtoll(optarg, &end, 10);

			/* --bandwidth: a rate with a suffix, as --bwlimit takes; bare, MiB/s. */
			if (option == 1014 && *end && value >= 0) {
				uint64_t bytes = 0;

				if (util_parse_size(optarg, &bytes) < 0 || bytes < 1024 * 1024) {
					fprintf(stderr,
						"ferry: --bandwidth %s: give a rate of 1M (1 "
						"MiB/s) "
						"or more, e.g. 100M; libvirt moves memory in "
						"MiB/s\n",
						optarg);
					return -1;
				}
				options->bandwidth = (int64_t)(bytes / (1024 * 1024));
				break;
			}

			if (*end || value < 0) {
				fprintf(stderr, "ferry: %s: give a whole number of 0 or more\n",
					optarg);
				return -1;
			}
			*(option == 1002   ? &options->order
			  : option == 1003 ? &options->delay
			  : option == 1010 ? &options->point
			  : option == 1011 ? &options->shutdown_timeout
			  : option == 1013 ? &options->max_time
			  : option == 1014 ? &options->bandwidth
					   : &options->max_lag) = value;
			break;
		}
		case 1017: options->role = optarg; break;
		case 1018: {
			int64_t days;

			if (util_parse_int64(optarg, 1, 3650, &days) < 0) {
				fprintf(stderr,
					"ferry: --expires %s: give a number of days, 1 to "
					"3650\n",
					optarg);
				return -1;
			}
			options->expires_days = days;
			break;
		}
		case 1019: options->since = optarg; break;
		case 1020: options->replace = true; break;
		case 1021: options->config_path = optarg; break;
		case 1024: options->follow = true; break;
		case 1022: printf("ferry %s\n", FERRY_VERSION); exit(0);
		case 1015:
			if (strcmp(optarg, "abort") != 0 && strcmp(optarg, "cold") != 0) {
				fprintf(stderr,
					"ferry: --on-timeout takes abort (the VM keeps running at "
					"the source) or cold (then shut it down and move it "
					"cold)%s\n",
					strcmp(optarg, "postcopy") == 0
						? "; post-copy would run the VM at the destination "
						  "before its final delta has landed there"
						: "");
				return -1;
			}
			options->on_timeout = optarg;
			break;
		case 1004: {
			const char *equals = strchr(optarg, '=');
			char key[256];

			if (equals == NULL || equals == optarg || equals[1] == '\0') {
				fprintf(stderr,
					"ferry: --network-map %s: give SOURCE=DESTINATION\n",
					optarg);
				return -1;
			}
			if (options->network_map == NULL)
				options->network_map = json_object();
			snprintf(key, sizeof(key), "%.*s", (int)(equals - optarg), optarg);
			json_object_set_new(options->network_map, key, json_string(equals + 1));
			break;
		}
		case 1005: options->live = true; break;
		case 1006: options->cold = true; break;
		case 1007: options->test = true; break;
		case 1008: options->cleanup = true; break;
		case 1009: options->force = true; break;
		case 1012: options->dry_run = true; break;
		case 'T':
			if (strcmp(optarg, "file") != 0 && strcmp(optarg, "rbd") != 0) {
				fprintf(stderr, "ferry: --target %s: give file or rbd\n", optarg);
				return -1;
			}
			options->target_kind = optarg;
			break;
		case 's':
			if (util_parse_size(optarg, &options->segment_size) < 0 ||
			    options->segment_size < SEGMENT_SIZE_MIN ||
			    options->segment_size > SEGMENT_SIZE_MAX ||
			    options->segment_size % SEGMENT_SIZE_MIN) {
				fprintf(stderr,
					"ferry: --segment-size %s: give a multiple of 4096 "
					"between 4 KiB and 64 MiB (e.g. 4M)\n",
					optarg);
				return -1;
			}
			break;
		case 'b':
			if (util_parse_size(optarg, &options->bandwidth_limit) < 0) {
				fprintf(stderr, "ferry: --bwlimit %s is not a size (e.g. 50M)\n",
					optarg);
				return -1;
			}
			break;
		case 'J':
			options->jobs = (int)strtol(optarg, &end, 10);
			if (*end || options->jobs < 1 || options->jobs > 64) {
				fprintf(stderr, "ferry: --jobs %s: give 1 to 64\n", optarg);
				return -1;
			}
			break;
		case 'z':
			options->zstd_level = (int)strtol(optarg, &end, 10);
			if (*end || options->zstd_level < -7 || options->zstd_level > 19) {
				fprintf(stderr, "ferry: --zstd-level %s: give -7 to 19\n", optarg);
				return -1;
			}
			break;
		case 'h': exit(cli_command_usage(stdout, argv[0]));
		default: return -1;
		}
	}
	if (cli_config_load(options) < 0) {
		fprintf(stderr, "ferry: %s\n", ferry_error_message());
		return -1;
	}
	if (options->ceph_conf)
		repl_ceph_configure(options->ceph_conf, options->ceph_id);
	if (options->url == NULL) {
		fprintf(stderr,
			"ferry: no daemon given: pass --daemon https://HOST:PORT, set "
			"FERRY_DAEMON, or write 'daemon = URL' in ferry.conf (ferry config shows "
			"what is in force)\n");
		return -1;
	}
	if (util_read_token_file(options->token_file, &options->token) < 0) {
		fprintf(stderr, "ferry: %s\n", ferry_error_message());
		return -1;
	}
	return optind;
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

static int
cli_copy(int argc, char **argv)
{
	struct cli_options options = {0};
	struct repl_copy_result result;
	struct catalog *catalog = NULL;
	json_t *document;
	int first, rc, status = 1;

	first = cli_parse(argc, argv, &options);
	if (first < 0)
		return 2;
	if (argc - first != 2) {
		fprintf(stderr, "ferry copy: give SOURCE and NAME\n");
		free(options.token);
		return 2;
	}
	rc = cli_state_catalog(&catalog);
	if (rc < 0) {
		status = cli_fail(&options, "copy");
		goto out;
	}
	rc = repl_copy_run(
		&(struct repl_copy_options){
			.source = argv[first],
			.name = argv[first + 1],
			.url = options.url,
			.token = options.token,
			.cacert = options.cacert,
			.insecure = options.insecure,
			.segment_size = options.segment_size,
			.jobs = options.jobs,
			.zstd_level = options.zstd_level,
			.restart = options.restart,
			.target_kind = options.target_kind,
			.from_snapshot = options.from_snapshot,
			.progress = options.progress,
			.bandwidth_limit = options.bandwidth_limit,
			.catalog = catalog,
		},
		&result);
	if (rc < 0)
		fprintf(stderr, "ferry copy: %s: %s\n", argv[first + 1], ferry_error_message());
	if (options.json) {
		document =
			json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
				  "s:I, s:f, s:s,"
				  " s:I}",
				  "name", result.name, "status", result.status, "destination",
				  options.url, "bytes_total", (json_int_t)result.bytes_total,
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
		if (options.from_snapshot)
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
	free(options.token);
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
	printf("\n%-16s %7s %-8s %6s %8s %9s %8s %7s %5s\n", "GROUP", "MEMBERS", "STATE", "POINT",
	       "AGE", "NEXT", "DURATION", "RPO", "FAILS");
	json_array_foreach(groups, i, group)
	{
		const char *name = json_string_value(json_object_get(group, "name"));
		int64_t last = json_integer_value(json_object_get(group, "last_point_time_ms"));
		int64_t next = json_integer_value(json_object_get(group, "next_point_ms"));
		char age[32] = "-", ahead[32] = "-", next_text[40] = "-";

		if (last > 0) {
			cli_format_age(now - last, age, sizeof(age));
			cli_format_age(next - now, ahead, sizeof(ahead));
			snprintf(next_text, sizeof(next_text), next > now ? "in %s" : "due", ahead);
		}
		if (json_is_true(json_object_get(group, "paused")))
			snprintf(next_text, sizeof(next_text), "paused");
		printf("%-16s %7" JSON_INTEGER_FORMAT " %-8s %6" JSON_INTEGER_FORMAT
		       " %8s %9s %6.1f s %5" JSON_INTEGER_FORMAT " s %5" JSON_INTEGER_FORMAT "\n",
		       name, json_integer_value(json_object_get(group, "volumes")),
		       json_string_value(json_object_get(group, "state")),
		       json_integer_value(json_object_get(group, "last_point")), age, next_text,
		       (double)json_integer_value(json_object_get(group, "duration_ms")) / 1000.0,
		       json_integer_value(json_object_get(group, "rpo_target")),
		       json_integer_value(json_object_get(group, "errors")));
	}
	printf("\n");
	return error;
}

static int
cli_status(int argc, char **argv)
{
	struct cli_options options = {0};
	struct api_client *client = NULL;
	json_t *reply = NULL, *volume;
	char path[256] = "/v1/volumes";
	size_t i;
	int first, status = 1;

	first = cli_parse(argc, argv, &options);
	if (first < 0)
		return 2;
	if (argc - first > 1) {
		fprintf(stderr, "ferry status: give at most one volume NAME\n");
		free(options.token);
		return 2;
	}
	client = cli_client(&options);
	if (argc - first == 1)
		snprintf(path, sizeof(path), "/v1/volumes/%s", argv[first]);
	if (client == NULL || api_client_json(client, "GET", path, NULL, &reply) < 0) {
		status = cli_fail(&options, "status");
		goto out;
	}
	if (options.json) {
		/* The daemon's answer as it is: the list, or the one volume asked for. */
		json_dumpf(reply, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	} else {
		json_t *volumes = argc - first == 1
					  ? json_pack("[O]", reply)
					  : json_incref(json_object_get(reply, "volumes"));
		bool unhealthy = false;

		if (argc - first == 0)
			unhealthy = cli_print_health_and_groups(client, reply);
		printf("%-24s %-10s %7s %10s %19s %s\n", "VOLUME", "STATE", "DONE", "SIZE",
		       "SEGMENTS", "DIGEST");
		json_array_foreach(volumes, i, volume) cli_print_volume_row(volume);
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
	free(options.token);
	return status;
}

static int
cli_verify(int argc, char **argv)
{
	struct cli_options options = {0};
	struct api_client *client = NULL;
	struct repl_volume *source = NULL;
	json_t *volume = NULL, *request = NULL, *reply = NULL;
	char path[512], local_digest[DIGEST_STRING_SIZE];
	const char *remote_digest, *recorded;
	uint8_t *sums = NULL;
	uint64_t segment_size;
	bool match;
	int first, status = 1;

	first = cli_parse(argc, argv, &options);
	if (first < 0)
		return 2;
	if (argc - first != 2) {
		fprintf(stderr, "ferry verify: give SOURCE and NAME\n");
		free(options.token);
		return 2;
	}
	client = cli_client(&options);
	snprintf(path, sizeof(path), "/v1/volumes/%s", argv[first + 1]);
	if (client == NULL || api_client_json(client, "GET", path, NULL, &volume) < 0)
		goto fail;
	segment_size = (uint64_t)json_integer_value(
		json_object_get(json_object_get(volume, "transfer"), "segment_size"));
	if (options.segment_size)
		segment_size = options.segment_size;
	if (segment_size == 0)
		segment_size = SEGMENT_SIZE_DEFAULT;
	if (repl_volume_open(argv[first], REPL_OPEN_READ, &source) < 0)
		goto fail;
	sums = malloc((repl_volume_size(source) / segment_size + 1) * CHECKSUM_BYTES);
	if (sums == NULL || repl_volume_digest(source, segment_size, sums, local_digest) < 0)
		goto fail;
	request = json_pack("{s:I}", "segment_size", (json_int_t)segment_size);
	snprintf(path, sizeof(path), "/v1/volumes/%s/verify", argv[first + 1]);
	if (api_client_json(client, "POST", path, request, &reply) < 0)
		goto fail;
	remote_digest = json_string_value(json_object_get(reply, "digest"));
	recorded =
		json_string_value(json_object_get(json_object_get(volume, "transfer"), "digest"));
	match = remote_digest && strcmp(remote_digest, local_digest) == 0 &&
		repl_volume_size(source) ==
			(uint64_t)json_integer_value(json_object_get(volume, "size"));
	if (options.json) {
		json_t *document =
			json_pack("{s:s, s:b, s:s, s:s, s:s, s:I}", "name", argv[first + 1],
				  "match", match, "source_digest", local_digest, "receiver_digest",
				  remote_digest ?: "", "recorded_digest", recorded ?: "",
				  "segment_size", (json_int_t)segment_size);

		json_dumpf(document, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(document);
	} else {
		printf("%s: %s (source %s, receiver %s)\n", argv[first + 1],
		       match ? "match" : "MISMATCH", local_digest, remote_digest ?: "-");
	}
	if (!match)
		fprintf(stderr,
			"ferry verify: %s differs from %s on %s; re-run ferry copy with "
			"--restart to copy it again\n",
			argv[first + 1], argv[first], options.url);
	status = match ? 0 : 1;
	goto out;
fail:
	status = cli_fail(&options, "verify");
out:
	free(sums);
	repl_volume_close(source);
	json_decref(volume);
	json_decref(request);
	json_decref(reply);
	api_client_free(client);
	free(options.token);
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

/* ferry protect --group G --site S SOURCE [REPLICA]; ferry unprotect SOURCE */
static int
cli_protect(int argc, char **argv, bool protect)
{
	struct cli_options options = {0};
	char done[700];
	int first, status = 2;

	first = cli_parse(argc, argv, &options);
	if (first < 0)
		return 2;
	if (protect && (argc - first < 1 || argc - first > 2 || !options.group || !options.site)) {
		fprintf(stderr, "usage: ferry protect --group NAME --site SITE rbd:POOL/IMAGE "
				"[REPLICA]\n");
	} else if (!protect && argc - first != 1) {
		fprintf(stderr, "usage: ferry unprotect rbd:POOL/IMAGE\n");
	} else if (protect) {
		json_t *request = json_pack("{s:s, s:s, s:s}", "source", argv[first], "group",
					    options.group, "site", options.site);

		if (argc - first == 2)
			json_object_set_new(request, "replica", json_string(argv[first + 1]));
		snprintf(done, sizeof(done), "%s: protected in group %s, replica at site %s",
			 argv[first], options.group, options.site);
		status = cli_request(&options, "protect", "/v1/protections", request, done);
	} else {
		snprintf(done, sizeof(done), "%s: no longer protected", argv[first]);
		status = cli_request(&options, "unprotect", "/v1/protections/remove",
				     json_pack("{s:s}", "source", argv[first]), done);
	}
	free(options.token);
	return status;
}

/* ---- cutover ---- */

static int
cli_dispatch(int argc, char **argv)
{
	int status;

	if (strcmp(argv[0], "copy") == 0)
		status = cli_copy(argc, argv);
	else if (strcmp(argv[0], "status") == 0)
		status = cli_status(argc, argv);
	else if (strcmp(argv[0], "verify") == 0)
		status = cli_verify(argc, argv);
	else if (strcmp(argv[0], "site") == 0)
		status = cli_site(argc, argv);
	else if (strcmp(argv[0], "group") == 0)
		status = cli_group(argc, argv);
	else if (strcmp(argv[0], "protect") == 0)
		status = cli_protect(argc, argv, true);
	else if (strcmp(argv[0], "unprotect") == 0)
		status = cli_protect(argc, argv, false);
	else if (strcmp(argv[0], "vm") == 0)
		status = cli_vm(argc, argv);
	else if (strcmp(argv[0], "migrate") == 0)
		status = cli_migrate(argc, argv);
	else if (strcmp(argv[0], "failover") == 0)
		status = cli_failover(argc, argv);
	else if (strcmp(argv[0], "reprotect") == 0)
		status = cli_reprotect(argc, argv);
	else if (strcmp(argv[0], "runs") == 0)
		status = cli_runs(argc, argv, false);
	else if (strcmp(argv[0], "token") == 0)
		status = cli_token(argc, argv);
	else if (strcmp(argv[0], "audit") == 0)
		status = cli_audit(argc, argv);
	else if (strcmp(argv[0], "run") == 0)
		status = cli_runs(argc, argv, true);
	else if (strcmp(argv[0], "config") == 0)
		status = cli_config(argc, argv);
	else if (strcmp(argv[0], "health") == 0)
		status = cli_health(argc, argv);
	else if (strcmp(argv[0], "events") == 0)
		status = cli_events(argc, argv);
	else if (strcmp(argv[0], "help") == 0)
		status = argc > 1 && argv[1][0] != '-' ? cli_command_usage(stdout, argv[1])
						       : (usage(stdout), 0);
	else {
		fprintf(stderr, "ferry: unknown command '%s'\n", argv[0]);
		usage(stderr);
		status = 2;
	}
	return status;
}

/* Options every command takes, and whether each takes a value: these may come before the
 * command too (ferry --daemon URL status, as virsh -c and git -C). */
static const struct {
	const char *name;
	bool value;
} cli_global_options[] = {
	{"daemon", true}, {"to", true},		  {"token-file", true}, {"cacert", true},
	{"config", true}, {"ceph-conf", true},	  {"ceph-id", true},	{"insecure", false},
	{"json", false},  {"no-progress", false},
};

/* The arguments with the command first and the global options given before it moved after it,
 * where its parser reads them; NULL after printing why. *count_out: how many. */
static char **
cli_command_first(int argc, char **argv, int *count_out)
{
	int at = 1, count = 0;
	char **out;

	while (at < argc && argv[at][0] == '-') {
		const char *name = argv[at] + (strncmp(argv[at], "--", 2) == 0 ? 2 : 1);
		size_t length = strcspn(name, "=");
		bool known = false;

		for (size_t i = 0; i < sizeof(cli_global_options) / sizeof(cli_global_options[0]);
		     i++)
			if (strlen(cli_global_options[i].name) == length &&
			    strncmp(cli_global_options[i].name, name, length) == 0) {
				known = true;
				at += cli_global_options[i].value && name[length] != '=' ? 2 : 1;
				break;
			}
		if (!known) {
			fprintf(stderr,
				"ferry: %s is not an option for every command: put it after the "
				"command (ferry COMMAND --help)\n",
				argv[at]);
			return NULL;
		}
	}
	if (at > argc || at == argc) {
		fprintf(stderr, "ferry: no command given (ferry --help lists them)\n");
		return NULL;
	}
	out = calloc((size_t)argc + 1, sizeof(*out));
	if (out == NULL)
		return NULL;
	for (int i = at; i < argc; i++)
		out[count++] = argv[i];
	for (int i = 1; i < at; i++)
		out[count++] = argv[i];
	*count_out = count;
	return out;
}

int
main(int argc, char **argv)
{
	char **arguments;
	int count = 0, status;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("ferry %s\n", FERRY_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	arguments = cli_command_first(argc, argv, &count);
	if (arguments == NULL)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	status = cli_dispatch(count, arguments);
	free(arguments);
	repl_ceph_shutdown();
	curl_global_cleanup();
	return status;
}
