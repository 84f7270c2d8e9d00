/* ferryd --check-config: everything the daemon would use, checked without starting it (files
 * readable, the TLS pair, the listen address, the state folder, Ceph's configuration and
 * keyring, the libvirt connections), so that an operator or a package learns every problem at
 * once, each on a line, before a start fails on the first. */
#include "cmd/ferryd.h"
#include "common/error.h"
#include "common/util.h"
#include "cutover/cutover.h"
#include "replicator/repl.h"
#include "web/web.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int ferryd_check_problems;

static void __attribute__((format(printf, 1, 2))) ferryd_check_problem(const char *format, ...)
{
	va_list args;

	fprintf(stderr, "ferryd: problem: ");
	va_start(args, format);
	vfprintf(stderr, format, args);
	va_end(args);
	fputc('\n', stderr);
	ferryd_check_problems++;
}

static void
ferryd_check_token(const char *path)
{
	char *token = NULL;
	struct stat info;

	if (util_read_token_file(path, &token) < 0) {
		ferryd_check_problem("token-file: %s", ferry_error_message());
		return;
	}
	free(token);
	if (stat(path, &info) == 0 && (info.st_mode & 077))
		ferryd_check_problem("token-file %s is readable by other users (mode %03o): chmod "
				     "600 it",
				     path, (unsigned)(info.st_mode & 0777));
}

static void
ferryd_check_listen(const char *listen)
{
	int fd = -1;

	if (web_listen(listen, &fd) < 0)
		ferryd_check_problem("%s", ferry_error_message());
	else
		close(fd);
}

/* The folder, or the nearest folder above it that exists, must take ferryd's writes. */
static void
ferryd_check_state_dir(const char *state_dir)
{
	char path[4096];
	struct stat info;

	snprintf(path, sizeof(path), "%s", state_dir);
	while (stat(path, &info) < 0) {
		char *parent;

		if (errno != ENOENT) {
			ferryd_check_problem("state-dir %s: %s", path, strerror(errno));
			return;
		}
		parent = dirname(path);
		memmove(path, parent, strlen(parent) + 1);
	}
	if (!S_ISDIR(info.st_mode))
		ferryd_check_problem("state-dir: %s is not a folder", path);
	else if (access(path, W_OK | X_OK) < 0)
		ferryd_check_problem("state-dir %s: not writable by this user (%s): give ferryd "
				     "a folder of its own (the package's is /var/lib/ferry)",
				     path, strerror(errno));
	else if (strcmp(path, state_dir) == 0)
		printf("state-dir %s: writable\n", state_dir);
	else
		printf("state-dir %s: will be made (in %s, writable)\n", state_dir, path);
}

static void
ferryd_check_tls(const struct ferryd_settings *settings)
{
	char certificate[4096], key[4096];

	if ((settings->certificate_path == NULL) != (settings->key_path == NULL)) {
		ferryd_check_problem("give both tls-cert and tls-key, or neither (then a "
				     "self-signed pair is kept in %s/tls)",
				     settings->state_dir);
		return;
	}
	if (settings->certificate_path) {
		snprintf(certificate, sizeof(certificate), "%s", settings->certificate_path);
		snprintf(key, sizeof(key), "%s", settings->key_path);
	} else {
		snprintf(certificate, sizeof(certificate), "%s/tls/cert.pem", settings->state_dir);
		snprintf(key, sizeof(key), "%s/tls/key.pem", settings->state_dir);
		if (access(certificate, F_OK) < 0 && access(key, F_OK) < 0) {
			printf("TLS: a self-signed pair will be made in %s/tls at the first "
			       "start\n",
			       settings->state_dir);
			return;
		}
	}
	if (web_tls_pair_check(certificate, key) < 0)
		ferryd_check_problem("%s", ferry_error_message());
	else
		printf("TLS: %s with its key %s\n", certificate, key);
}

/* Whether one keyring of a comma-separated list (with Ceph's $cluster and $name) is
 * readable; found names it. */
static bool
ferryd_keyring_readable(const char *list, const char *client, char *found, size_t size)
{
	char copy[1024], *save = NULL;

	snprintf(copy, sizeof(copy), "%s", list);
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char path[1024];
		size_t used = 0;

		while (*item == ' ')
			item++;
		for (const char *c = item; *c && used + 1 < sizeof(path);) {
			const char *with = NULL;
			size_t skip = 1;

			if (strncmp(c, "$cluster", 8) == 0)
				with = "ceph", skip = 8;
			else if (strncmp(c, "$name", 5) == 0)
				with = client, skip = 5;
			if (with)
				used += (size_t)snprintf(path + used, sizeof(path) - used, "%s",
							 with);
			else
				path[used++] = *c;
			c += skip;
		}
		path[used < sizeof(path) ? used : sizeof(path) - 1] = '\0';
		while (used > 0 && path[used - 1] == ' ')
			path[--used] = '\0';
		if (access(path, R_OK) == 0) {
			snprintf(found, size, "%s", path);
			return true;
		}
	}
	return false;
}

static void
ferryd_check_ceph(const struct ferryd_settings *settings)
{
	const char *id = settings->ceph_id ? settings->ceph_id : "admin";
	char client[128], keyring[1024] = "", found[1024], line[1024];
	FILE *conf;

	if (settings->ceph_conf == NULL) {
		printf("Ceph: not configured (volumes are kept as files only)\n");
		return;
	}
	conf = fopen(settings->ceph_conf, "r");
	if (conf == NULL) {
		ferryd_check_problem("[ceph] conf %s: %s", settings->ceph_conf, strerror(errno));
		return;
	}
	/* The keyring Ceph's client would use: the conf's keyring line, else its defaults. */
	while (fgets(line, sizeof(line), conf)) {
		char *key = line + strspn(line, " \t"), *equals = strchr(key, '=');

		if (equals && strncmp(key, "keyring", 7) == 0 &&
		    strspn(key + 7, " \t") == (size_t)(equals - key - 7)) {
			char *value = equals + 1 + strspn(equals + 1, " \t");

			value[strcspn(value, "\r\n;#")] = '\0';
			snprintf(keyring, sizeof(keyring), "%s", value);
		}
	}
	fclose(conf);
	snprintf(client, sizeof(client), "client.%s", id);
	if (!keyring[0])
		snprintf(keyring, sizeof(keyring),
			 "/etc/ceph/$cluster.$name.keyring,/etc/ceph/$cluster.keyring,"
			 "/etc/ceph/keyring,/etc/ceph/keyring.bin");
	if (ferryd_keyring_readable(keyring, client, found, sizeof(found)))
		printf("Ceph: %s as %s, keyring %s, replica pool %s, calls bounded to %lld s\n",
		       settings->ceph_conf, client, found,
		       settings->replica_pool ? settings->replica_pool : "rbd",
		       (long long)(settings->ceph_op_timeout_s ? settings->ceph_op_timeout_s
							       : REPL_CEPH_TIMEOUT_DEFAULT));
	else
		ferryd_check_problem("Ceph: no keyring for %s is readable by this user (looked at "
				     "%s): give the ferry user read access (e.g. a group that "
				     "may read it)",
				     client, keyring);
}

static void
ferryd_check_libvirt(const struct ferryd_settings *settings)
{
	char list[8192];
	int count = cutover_virt_allowed_list(list, sizeof(list));

	if (count == 0)
		printf("libvirt: no connections configured (protecting VMs and cutovers are "
		       "refused)\n");
	else
		printf("libvirt: %d connection(s) this site may open:\n%s\n", count, list);
	for (int i = 0; i < settings->guest_dir_count; i++) {
		struct stat info;

		if (stat(settings->guest_dirs[i], &info) < 0 || !S_ISDIR(info.st_mode))
			ferryd_check_problem("[guests] file-dir %s is not a folder here",
					     settings->guest_dirs[i]);
	}
}

int
ferryd_check_config(const struct ferryd_settings *settings, int earlier_problems)
{
	ferryd_check_problems = earlier_problems;
	ferryd_check_token(settings->token_file);
	ferryd_check_listen(settings->listen);
	ferryd_check_state_dir(settings->state_dir);
	ferryd_check_tls(settings);
	ferryd_check_ceph(settings);
	ferryd_check_libvirt(settings);
	if (ferryd_check_problems > 0) {
		fprintf(stderr, "ferryd: %d problem(s) in the configuration%s%s\n",
			ferryd_check_problems, settings->config_path ? " from " : "",
			settings->config_path ? settings->config_path : "");
		return 2;
	}
	printf("configuration OK\n");
	return 0;
}
