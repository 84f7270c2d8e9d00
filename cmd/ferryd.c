/* ferryd: the per-site appliance daemon. Parses options, opens the site's catalog, loads TLS,
 * serves /v1 in the foreground until SIGTERM or SIGINT, then stops cleanly, within
 * FERRYD_STOP_SECONDS whatever its clusters, peers and libvirt daemons are doing: a watchdog
 * ends the process then (the catalog is crash-safe, and whatever was under way resumes at the
 * next start as after a kill), naming what it was waiting for. */
#include "cmd/ferryd.h"
#include "catalog/catalog.h"
#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "cutover/cutover.h"
#include "replicator/repl.h"
#include "web/web.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

/* From the stop signal to the end of the process, at most (systemd's default stop timeout is
 * 90 s; an operator's `systemctl restart` should not wait on a dead cluster). */
#define FERRYD_STOP_SECONDS 8

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: ferryd --state-dir DIR --listen HOST:PORT --token-file FILE\n"
		"              [--tls-cert FILE --tls-key FILE] [--ceph-conf FILE] [--ceph-id "
		"NAME]\n"
		"              [--replica-pool POOL] [--ceph-op-timeout SECONDS]\n"
		"              [--vm-refresh SECONDS] [--config FILE]\n"
		"              [--libvirt NAME=URI]... [--guest-file-dir DIR]... [--tls-san "
		"NAME]...\n"
		"              [--print-routes] [--verbose] [--check-config] [--version]\n"
		"\n"
		"Runs one ferry site in the foreground, logging to stderr; SIGTERM stops it.\n"
		"DIR/catalog.db is the site's catalog, DIR/volumes/NAME each received file "
		"volume,\n"
		"DIR/tls/ the self-signed TLS pair made on first start when no --tls-cert is "
		"given.\n"
		"With --ceph-conf, volumes can also be kept as RBD images in the replica pool\n"
		"(default rbd). --ceph-op-timeout: the longest any Ceph call may wait on the\n"
		"cluster (connecting, monitors, OSDs; default 30 s); a pass against a cluster\n"
		"that does not answer fails then, and is tried again with backoff.\n"
		"--vm-refresh: how often the definitions of the VMs that run here\n"
		"are read again from libvirt (default 30 s); a changed one is registered again.\n"
		"--libvirt: a libvirt connection this site may open (repeatable); requests name\n"
		"one of them or give its exact URI, and no other connection is ever opened.\n"
		"--tls-san: a DNS name or IP address the self-signed certificate also names\n"
		"(repeatable; it always names localhost, the host and its full name).\n"
		"--guest-file-dir: a folder where guests' character devices may write files\n"
		"(serial logs); a definition naming any other host file is refused.\n"
		"--check-config checks every file, the TLS pair, the listen address, the state\n"
		"folder and the Ceph settings, prints each problem and exits 0, or 2 if any.\n"
		"SIGHUP re-reads the configuration: the libvirt connections, guest folders and\n"
		"log-level change at once; the other settings at the next start.\n"
		"--config reads the same settings from an INI file; flags win:\n"
		"  [ferryd] state-dir, listen, token-file, tls-cert, tls-key, tls-san, "
		"vm-refresh,\n"
		"           log-level (debug, info, warn, error; --verbose is debug)\n"
		"  [ceph]   conf, id, replica-pool, op-timeout\n"
		"  [libvirt] NAME = URI, one line per connection\n"
		"  [guests] file-dir = DIR, one line per folder\n");
}

static const struct {
	const char *section;
	const char *key;
	size_t offset;
} ferryd_keys[] = {
	{"ferryd", "state-dir", offsetof(struct ferryd_settings, state_dir)},
	{"ferryd", "listen", offsetof(struct ferryd_settings, listen)},
	{"ferryd", "token-file", offsetof(struct ferryd_settings, token_file)},
	{"ferryd", "tls-cert", offsetof(struct ferryd_settings, certificate_path)},
	{"ferryd", "tls-key", offsetof(struct ferryd_settings, key_path)},
	{"ferryd", "vm-refresh", offsetof(struct ferryd_settings, vm_refresh)},
	{"ferryd", "log-level", offsetof(struct ferryd_settings, log_level)},
	{"ceph", "conf", offsetof(struct ferryd_settings, ceph_conf)},
	{"ceph", "id", offsetof(struct ferryd_settings, ceph_id)},
	{"ceph", "replica-pool", offsetof(struct ferryd_settings, replica_pool)},
	{"ceph", "op-timeout", offsetof(struct ferryd_settings, ceph_op_timeout)},
};
_Static_assert(sizeof(ferryd_keys) / sizeof(ferryd_keys[0]) <= 32,
	       "file_keys_seen has a bit for each key");

/* Sets a setting unless a flag already did (flags are read first and win). */
static int
ferryd_setting_offer(char **field, const char *value)
{
	if (*field)
		return 0;
	*field = strdup(value);
	return *field ? 0 : ferry_error_no_memory();
}

static int
ferryd_list_add(char **list, int *count, int max, const char *value)
{
	if (*count == max)
		return ferry_error_set(FERRY_ERR_INVALID, "more than %d entries of one list", max);
	list[*count] = strdup(value);
	if (list[*count] == NULL)
		return ferry_error_no_memory();
	(*count)++;
	return 0;
}

static int
ferryd_config_each(const char *section, const char *key, const char *value, void *context)
{
	struct ferryd_settings *settings = context;

	if (strcmp(section, "libvirt") == 0) {
		char entry[CUTOVER_LIBVIRT_NAME_MAX + CUTOVER_LIBVIRT_URI_MAX + 2];
		size_t length = strlen(key);

		for (int i = 0; i < settings->libvirt_count[1]; i++)
			if (strncmp(settings->libvirt[1][i], key, length) == 0 &&
			    settings->libvirt[1][i][length] == '=')
				return ferry_error_set(FERRY_ERR_INVALID,
						       "libvirt connection '%s' is given twice in "
						       "[libvirt]: keep the one you mean",
						       key);

		snprintf(entry, sizeof(entry), "%s=%s", key, value);
		return ferryd_list_add(settings->libvirt[1], &settings->libvirt_count[1], 64,
				       entry);
	}
	if (strcmp(section, "ferryd") == 0 && strcmp(key, "tls-san") == 0)
		return ferryd_list_add(settings->tls_sans, &settings->tls_san_count, 16, value);
	if (strcmp(section, "guests") == 0 && strcmp(key, "file-dir") == 0)
		return ferryd_list_add(settings->guest_dirs, &settings->guest_dir_count, 8, value);
	for (size_t i = 0; i < sizeof(ferryd_keys) / sizeof(ferryd_keys[0]); i++) {
		if (strcmp(ferryd_keys[i].section, section) != 0 ||
		    strcmp(ferryd_keys[i].key, key) != 0)
			continue;
		/* A second line would be silently ignored: the operator meant one of them. */
		if (settings->file_keys_seen & (1u << i))
			return ferry_error_set(FERRY_ERR_INVALID,
					       "'%s' is given twice in [%s]: keep the one you mean",
					       key, section);
		settings->file_keys_seen |= 1u << i;
		return ferryd_setting_offer((char **)((char *)settings + ferryd_keys[i].offset),
					    value);
	}
	return ferry_error_set(FERRY_ERR_INVALID, "unknown setting '%s' in section [%s]", key,
			       section);
}

static void
ferryd_settings_free(struct ferryd_settings *settings)
{
	for (size_t i = 0; i < sizeof(ferryd_keys) / sizeof(ferryd_keys[0]); i++)
		free(*(char **)((char *)settings + ferryd_keys[i].offset));
	free(settings->config_path);
	for (int from = 0; from < 2; from++)
		for (int i = 0; i < settings->libvirt_count[from]; i++)
			free(settings->libvirt[from][i]);
	for (int i = 0; i < settings->guest_dir_count; i++)
		free(settings->guest_dirs[i]);
	for (int i = 0; i < settings->tls_san_count; i++)
		free(settings->tls_sans[i]);
}

/* The libvirt connections and guest file folders, flags first: a name the flags give is not
 * taken from the file again. Both lists are replaced whole (at start, and at a reload), or not
 * at all. Returns 0, or 2 with a message. */
static int
ferryd_allow(const struct ferryd_settings *settings)
{
	char *names[128], *uris[128], copies[128][CUTOVER_LIBVIRT_NAME_MAX + 1];
	int count = 0;

	for (int from = 0; from < 2; from++) {
		for (int i = 0; i < settings->libvirt_count[from]; i++) {
			char *entry = settings->libvirt[from][i], *equals = strchr(entry, '=');
			bool flagged = false;

			if (equals == NULL || equals == entry ||
			    (size_t)(equals - entry) > CUTOVER_LIBVIRT_NAME_MAX) {
				ferry_error_set(FERRY_ERR_INVALID,
						"--libvirt takes NAME=URI, not '%.200s'", entry);
				return 2;
			}
			snprintf(copies[count], sizeof(copies[0]), "%.*s", (int)(equals - entry),
				 entry);
			for (int j = 0; from == 1 && j < settings->libvirt_count[0]; j++)
				flagged = flagged ||
					  (strncmp(settings->libvirt[0][j], copies[count],
						   strlen(copies[count])) == 0 &&
					   settings->libvirt[0][j][strlen(copies[count])] == '=');
			if (flagged)
				continue;
			names[count] = copies[count];
			uris[count] = equals + 1;
			count++;
		}
	}
	if (cutover_virt_allow_replace(names, uris, count) < 0 ||
	    cutover_domain_allow_replace((char *const *)settings->guest_dirs,
					 settings->guest_dir_count) < 0)
		return 2;
	return 0;
}

static int
ferryd_log_level(const char *name)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};

	for (int level = 0; level < 4; level++)
		if (name && strcmp(name, names[level]) == 0) {
			log_set_level((enum log_level)level);
			return 0;
		}
	return ferry_error_set(FERRY_ERR_INVALID,
			       "log-level must be debug, info, warn or error, not '%.40s'",
			       name ? name : "");
}

/* Flags first, then the configuration file for whatever they left unset. Returns 0, 1 after
 * --help, or 2 for bad usage (with a message). */
static int
ferryd_settings_parse(int argc, char **argv, struct ferryd_settings *settings)
{
	static const struct option long_options[] = {
		{"state-dir", required_argument, NULL, 's'},
		{"listen", required_argument, NULL, 'l'},
		{"token-file", required_argument, NULL, 't'},
		{"tls-cert", required_argument, NULL, 'c'},
		{"tls-key", required_argument, NULL, 'k'},
		{"ceph-conf", required_argument, NULL, 'C'},
		{"ceph-id", required_argument, NULL, 'I'},
		{"replica-pool", required_argument, NULL, 'p'},
		{"ceph-op-timeout", required_argument, NULL, 'T'},
		{"vm-refresh", required_argument, NULL, 'R'},
		{"config", required_argument, NULL, 'f'},
		{"libvirt", required_argument, NULL, 'L'},
		{"guest-file-dir", required_argument, NULL, 'G'},
		{"print-routes", no_argument, NULL, 'P'},
		{"tls-san", required_argument, NULL, 'N'},
		{"verbose", no_argument, NULL, 'v'},
		{"check-config", no_argument, NULL, 'X'},
		{"version", no_argument, NULL, 'W'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char **field;
	int option;

	optind = 0; /* parsed again at each reload */
	while ((option = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (option) {
		case 's': field = &settings->state_dir; break;
		case 'l': field = &settings->listen; break;
		case 't': field = &settings->token_file; break;
		case 'c': field = &settings->certificate_path; break;
		case 'k': field = &settings->key_path; break;
		case 'C': field = &settings->ceph_conf; break;
		case 'I': field = &settings->ceph_id; break;
		case 'p': field = &settings->replica_pool; break;
		case 'T': field = &settings->ceph_op_timeout; break;
		case 'R': field = &settings->vm_refresh; break;
		case 'f': field = &settings->config_path; break;
		case 'v':
			free(settings->log_level);
			settings->log_level = strdup("debug");
			continue;
		case 'X': settings->check_config = true; continue;
		case 'W': printf("ferryd %s\n", FERRY_VERSION); return 1;
		case 'L':
			if (ferryd_list_add(settings->libvirt[0], &settings->libvirt_count[0], 64,
					    optarg) < 0)
				goto list_full;
			continue;
		case 'G':
			if (ferryd_list_add(settings->guest_dirs, &settings->guest_dir_count, 8,
					    optarg) < 0)
				goto list_full;
			continue;
		case 'h': usage(stdout); return 1;
		case 'P': web_routes_print(stdout); return 1;
		case 'N':
			if (ferryd_list_add(settings->tls_sans, &settings->tls_san_count, 16,
					    optarg) < 0)
				goto list_full;
			continue;
		default: usage(stderr); return 2;
		}
		free(*field);
		*field = strdup(optarg);
	}
	if (optind != argc) {
		fprintf(stderr, "ferryd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (settings->config_path &&
	    config_read_ini(settings->config_path, ferryd_config_each, settings) < 0) {
		fprintf(stderr, "ferryd: %s\n", ferry_error_message());
		return 2;
	}
	if (!settings->state_dir || !settings->listen || !settings->token_file) {
		fprintf(stderr, "ferryd: --state-dir, --listen and --token-file are required "
				"(as flags or in --config)\n");
		usage(stderr);
		return 2;
	}
	if (strlen(settings->state_dir) > 900) {
		fprintf(stderr, "ferryd: --state-dir path is too long (900 characters at most)\n");
		return 2;
	}
	if ((settings->ceph_id || settings->replica_pool) && !settings->ceph_conf) {
		fprintf(stderr, "ferryd: --ceph-id and --replica-pool need --ceph-conf\n");
		return 2;
	}
	if (settings->vm_refresh &&
	    util_parse_int64(settings->vm_refresh, 1, INT32_MAX, &settings->vm_refresh_s) < 0) {
		fprintf(stderr,
			"ferryd: --vm-refresh takes a whole number of seconds, 1 or more\n");
		return 2;
	}
	if (settings->ceph_op_timeout && util_parse_int64(settings->ceph_op_timeout, 1, 3600,
							  &settings->ceph_op_timeout_s) < 0) {
		fprintf(stderr, "ferryd: --ceph-op-timeout ([ceph] op-timeout) takes a whole "
				"number of seconds, 1 to 3600\n");
		return 2;
	}
	if (settings->log_level && ferryd_log_level(settings->log_level) < 0) {
		fprintf(stderr, "ferryd: %s\n", ferry_error_message());
		return 2;
	}
	if (settings->ceph_conf && !settings->replica_pool)
		settings->replica_pool = strdup("rbd");
	return 0;
list_full:
	fprintf(stderr, "ferryd: %s\n", ferry_error_message());
	return 2;
}

static int
ferryd_count_protection(const struct catalog_protection *protection, void *context)
{
	(void)protection;
	(*(long long *)context)++;
	return 0;
}

/* What systemd shows in `systemctl status`: where ferryd listens and what it protects. */
static void
ferryd_notify_status(struct catalog *catalog, const char *url)
{
	long long protected_volumes = 0;

	catalog_protection_list(catalog, ferryd_count_protection, &protected_volumes);
	sd_notifyf(0, "STATUS=listening on %s, %lld protected volume(s)", url, protected_volumes);
}

/* SIGHUP: the configuration is read again. The allow-lists and the log level change now; a
 * setting that needs a restart is named, and the one in force stays. A file with an error
 * changes nothing. */
static void
ferryd_reload(int argc, char **argv, const struct ferryd_settings *running)
{
	struct ferryd_settings fresh = {0};
	int changed = 0;

	log_info("SIGHUP: reading the configuration again%s%s",
		 running->config_path ? " from " : "",
		 running->config_path ? running->config_path : "");
	if (ferryd_settings_parse(argc, argv, &fresh) != 0 || ferryd_allow(&fresh) != 0) {
		log_error("reload refused, the settings in force stay: %s",
			  ferry_error_message()[0] ? ferry_error_message()
						   : "the configuration does not parse");
		goto out;
	}
	for (size_t i = 0; i < sizeof(ferryd_keys) / sizeof(ferryd_keys[0]); i++) {
		const char *before =
			*(char *const *)((const char *)running + ferryd_keys[i].offset);
		const char *after = *(char *const *)((const char *)&fresh + ferryd_keys[i].offset);

		if (strcmp(ferryd_keys[i].key, "log-level") == 0)
			continue;
		if ((before == NULL) != (after == NULL) ||
		    (before && after && strcmp(before, after) != 0)) {
			log_warn("[%s] %s changed: it takes effect when ferryd is restarted",
				 ferryd_keys[i].section, ferryd_keys[i].key);
			changed++;
		}
	}
	if (fresh.log_level == NULL)
		log_set_level(LOG_LEVEL_INFO);
	log_info("configuration reloaded: %d libvirt connection(s), %d guest file folder(s)%s",
		 fresh.libvirt_count[0] + fresh.libvirt_count[1], fresh.guest_dir_count,
		 changed ? "; restart ferryd for the rest" : "");
out:
	ferryd_settings_free(&fresh);
}

/* One ferryd per state folder: two would run the same transfers twice, and the second would
 * blocklist the first's Ceph session as a dead one's (backend_rbd.c). The lock is held, through
 * a descriptor never closed, until the process ends, however it ends. */
static int
ferryd_state_lock(const char *state_dir)
{
	char path[PATH_MAX], holder[32] = "";
	ssize_t length;
	int fd;

	if (util_format(path, sizeof(path), "the path of the state lock", "%s/ferryd.lock",
			state_dir) < 0)
		return ferry_error_last_code();
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return ferry_error_set(FERRY_ERR_IO, "cannot open the state lock %s: %s", path,
				       strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int error_number = errno;

		length = pread(fd, holder, sizeof(holder) - 1, 0);
		holder[length > 0 ? length : 0] = '\0';
		holder[strcspn(holder, "\r\n")] = '\0';
		close(fd);
		if (error_number == EWOULDBLOCK)
			return ferry_error_set(
				FERRY_ERR_CONFLICT,
				"state folder %s is in use by another ferryd (pid %s): "
				"stop it first, or give this one its own --state-dir",
				state_dir, holder[0] ? holder : "unknown");
		return ferry_error_set(FERRY_ERR_IO, "cannot lock the state lock %s: %s", path,
				       strerror(error_number));
	}
	length = snprintf(holder, sizeof(holder), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, holder, (size_t)length, 0) != length)
		log_warn("cannot write this ferryd's pid into %s: %s", path, strerror(errno));
	return 0;
}

/* The token, the state folder (made absolute: paths recorded in the catalog must not depend on
 * the cwd), the catalog with its interrupted runs marked, libvirt, and the Ceph settings. */
static int
ferryd_state_open(const struct ferryd_settings *settings, char *state_dir_absolute, char **token,
		  struct catalog **catalog)
{
	char catalog_path[4096];
	struct stat token_info;

	if (util_read_token_file(settings->token_file, token) < 0 ||
	    util_mkdir_p(settings->state_dir, 0700) < 0)
		return ferry_error_last_code();
	if (stat(settings->token_file, &token_info) == 0 && (token_info.st_mode & 077))
		log_warn("token file %s is readable by other users (mode %03o); chmod 600 it",
			 settings->token_file, (unsigned)(token_info.st_mode & 0777));
	if (realpath(settings->state_dir, state_dir_absolute) == NULL)
		return ferry_error_set(FERRY_ERR_IO, "cannot resolve --state-dir %s: %s",
				       settings->state_dir, strerror(errno));
	if (ferryd_state_lock(state_dir_absolute) < 0 ||
	    util_format(catalog_path, sizeof(catalog_path), "the path of the catalog",
			"%s/catalog.db", state_dir_absolute) < 0)
		return ferry_error_last_code();
	if (catalog_open(catalog_path, CATALOG_SYNC_FULL, catalog) < 0)
		return ferry_error_last_code();
	/* A run that was going on when this daemon stopped says so, and waits to be resumed. */
	if (catalog_run_mark_interrupted(*catalog) < 0 || cutover_init() < 0)
		return ferry_error_last_code();
	if (settings->ceph_conf) {
		struct stat conf_info;

		if (stat(settings->ceph_conf, &conf_info) < 0)
			return ferry_error_set(FERRY_ERR_NOT_FOUND,
					       "cannot read --ceph-conf %s: %s",
					       settings->ceph_conf, strerror(errno));
		repl_ceph_configure(settings->ceph_conf, settings->ceph_id);
		{
			char fence[PATH_MAX];

			if (util_format(fence, sizeof(fence), "the Ceph session file", "%s/%s",
					settings->state_dir, "ceph-session") < 0)
				return ferry_error_last_code();
			repl_ceph_fence_file(fence);
		}
		if (settings->ceph_op_timeout_s &&
		    repl_ceph_set_timeout((int)settings->ceph_op_timeout_s) < 0)
			return ferry_error_last_code();
		log_info("RBD volumes go to pool %s of the cluster in %s (client.%s; Ceph calls "
			 "bounded to %d s)",
			 settings->replica_pool, settings->ceph_conf,
			 settings->ceph_id ? settings->ceph_id : "admin",
			 settings->ceph_op_timeout_s ? (int)settings->ceph_op_timeout_s
						     : REPL_CEPH_TIMEOUT_DEFAULT);
	}
	return 0;
}

/* What the stop is doing now, for the watchdog's message. */
static _Atomic(const char *) ferryd_stop_stage = "starting to stop";
static int ferryd_stop_status;

static void *
ferryd_stop_watchdog(void *argument)
{
	struct timespec pause = {FERRYD_STOP_SECONDS, 0};

	(void)argument;
	while (nanosleep(&pause, &pause) != 0)
		;
	log_warn("still stopping after %d s (%s): exiting now; what was under way resumes at the "
		 "next start, as after a crash",
		 FERRYD_STOP_SECONDS, atomic_load(&ferryd_stop_stage));
	_exit(ferryd_stop_status);
}

/* Bounds the stop: from now on, the process ends within FERRYD_STOP_SECONDS. */
static void
ferryd_stop_bound(int status)
{
	pthread_attr_t attributes;
	pthread_t watchdog;

	ferryd_stop_status = status;
	pthread_attr_init(&attributes);
	pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&watchdog, &attributes, ferryd_stop_watchdog, NULL) != 0)
		log_warn("cannot start the stop watchdog: the stop is not bounded");
	pthread_attr_destroy(&attributes);
}

static void
ferryd_stop_stage_set(const char *stage)
{
	atomic_store(&ferryd_stop_stage, stage);
	log_debug("stopping: %s", stage);
}

/* Stops what runs in threads, under the stop bound (the watchdog starts here). */
static void
ferryd_stop_threads(struct cutover_refresher *refresher, struct repl_scheduler *scheduler,
		    struct web_server *server, int status)
{
	double stop_started = util_monotonic_seconds();

	ferryd_stop_bound(status);
	ferryd_stop_stage_set("stopping the VM definition refresher (libvirt calls in flight)");
	cutover_refresher_stop(refresher);
	ferryd_stop_stage_set("stopping the scheduler (its pass in flight: Ceph calls, pushes to "
			      "peers)");
	repl_scheduler_stop(scheduler);
	ferryd_stop_stage_set("stopping the web server (requests in flight: received segments "
			      "being written)");
	web_server_stop(server);
	/* Runs in progress use the catalog: give them what is left of the bound, else leave
	 * them interrupted (the next start marks them so) rather than pull the catalog from
	 * under them. */
	ferryd_stop_stage_set("waiting for cutover runs in progress");
	while (cutover_runs_active() > 0 &&
	       util_monotonic_seconds() - stop_started < FERRYD_STOP_SECONDS - 2)
		usleep(100 * 1000);
	if (cutover_runs_active() > 0) {
		log_warn("stopping with %d cutover run(s) in progress; they show as interrupted "
			 "after the next start (ferry run resume ID)",
			 cutover_runs_active());
		_exit(status);
	}
}

/* Until a stop signal (returned): each SIGHUP reloads the configuration. */
static int
ferryd_wait_stop(const sigset_t *signals, int argc, char **argv, struct ferryd_settings *settings,
		 struct catalog *catalog, const char *url)
{
	int received = 0;

	for (;;) {
		if (sigwait(signals, &received) != 0)
			continue;
		if (received != SIGHUP)
			return received;
		/* Logs go to stderr (the journal's stream under systemd): nothing to reopen. */
		sd_notify(0, "RELOADING=1");
		ferryd_reload(argc, argv, settings);
		sd_notify(0, "READY=1");
		ferryd_notify_status(catalog, url);
	}
}

int
main(int argc, char **argv)
{
	struct ferryd_settings settings = {0};
	const char *state_dir;
	char *token = NULL, *certificate_pem = NULL, *key_pem = NULL;
	char url_path[4096] = "", url[512], state_dir_absolute[PATH_MAX];
	struct catalog *catalog = NULL;
	struct repl_receiver *receiver = NULL;
	struct web_server *server = NULL;
	struct repl_scheduler *scheduler = NULL;
	struct cutover_refresher *refresher = NULL;
	struct cutover_site cutover = {0};
	sigset_t signals;
	int received = 0, status, listen_fd = -1;

	/* Catalog, keys, received volumes: nothing ferryd writes is for other users. */
	umask(077);
	/* Segment buffers (megabytes, one request long) are always mapped and unmapped: glibc's
	 * moving threshold would keep them in per-thread arenas, and a hundred idle connections
	 * would hold hundreds of megabytes. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	status = ferryd_settings_parse(argc, argv, &settings);
	if (status == 0 && settings.check_config) {
		int allowed = ferryd_allow(&settings);

		if (allowed != 0)
			fprintf(stderr, "ferryd: problem: %s\n", ferry_error_message());
		status = ferryd_check_config(&settings, allowed != 0);
		ferryd_settings_free(&settings);
		return status;
	}
	if (status == 0 && ferryd_allow(&settings) != 0) {
		fprintf(stderr, "ferryd: %s\n", ferry_error_message());
		status = 2;
	}
	if (status != 0) {
		ferryd_settings_free(&settings);
		return status == 1 ? 0 : 2;
	}
	status = 1;
	/* The address first: a busy or mistyped one is the only error, with nothing made yet. */
	if (web_listen(settings.listen, &listen_fd) < 0)
		goto out;
	state_dir = settings.state_dir;
	/* Before any thread: the scheduler's sender speaks to replica sites through libcurl. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* Block the stop and reload signals before any thread starts, so that only sigwait()
	 * sees them. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (ferryd_state_open(&settings, state_dir_absolute, &token, &catalog) < 0)
		goto out;
	state_dir = state_dir_absolute;
	receiver = repl_receiver_new(catalog, state_dir, settings.replica_pool);
	if (receiver == NULL)
		goto out;
	cutover.catalog = catalog;
	cutover.receiver = receiver;
	cutover.ceph_conf = settings.ceph_conf;
	cutover.replica_pool = settings.replica_pool;
	if (web_tls_load(state_dir, settings.certificate_path, settings.key_path,
			 (const char *const *)settings.tls_sans, &certificate_pem, &key_pem) < 0)
		goto out;
	server = web_server_start(&(struct web_server_options){
		.listen = settings.listen,
		.listen_fd = listen_fd,
		.certificate_pem = certificate_pem,
		.key_pem = key_pem,
		.token = token,
		.catalog = catalog,
		.receiver = receiver,
		.state_dir = state_dir,
		.cutover = &cutover,
	});
	if (server == NULL)
		goto out;
	listen_fd = -1; /* the server's now */
	{
		const char *colon = strrchr(settings.listen, ':');

		snprintf(url, sizeof(url), "https://%.*s:%d\n", (int)(colon - settings.listen),
			 settings.listen, web_server_port(server));
	}
	/* DIR/ferryd.url says where this daemon listens, and that it is ready. */
	if (util_format(url_path, sizeof(url_path), "the path of ferryd.url", "%s/ferryd.url",
			state_dir) < 0 ||
	    util_write_file_atomic(url_path, url, strlen(url), 0644) < 0) {
		url_path[0] = '\0';
		goto out;
	}
	url[strcspn(url, "\n")] = '\0';
	catalog_event_add(catalog, "info", "ferryd", "started, listening on %s", url);
	log_info("ferryd listening on %s, state in %s", url, state_dir);
	scheduler = repl_scheduler_start(catalog);
	if (scheduler == NULL)
		goto out;
	cutover.scheduler = scheduler;
	refresher = cutover_refresher_start(&cutover,
					    settings.vm_refresh ? (int)settings.vm_refresh_s : 30);
	if (refresher == NULL)
		goto out;
	sd_notify(0, "READY=1");
	ferryd_notify_status(catalog, url);
	received = ferryd_wait_stop(&signals, argc, argv, &settings, catalog, url);
	sd_notify(0, "STOPPING=1");
	log_info("ferryd stopping (%s)", strsignal(received));
	status = 0;
out:
	if (status != 0 && ferry_error_message()[0])
		log_error("%s", ferry_error_message());
	ferryd_stop_threads(refresher, scheduler, server, status);
	if (url_path[0])
		unlink(url_path);
	if (listen_fd >= 0)
		close(listen_fd);
	if (catalog && status == 0)
		catalog_event_add(catalog, "info", "ferryd", "stopped");
	ferryd_stop_stage_set("closing the received volumes (flushing RBD images)");
	repl_receiver_free(receiver);
	ferryd_stop_stage_set("disconnecting from the Ceph cluster");
	repl_ceph_shutdown();
	ferryd_stop_stage_set("closing the catalog");
	catalog_close(catalog);
	free(token);
	free(certificate_pem);
	free(key_pem);
	ferryd_settings_free(&settings);
	curl_global_cleanup();
	return status;
}
