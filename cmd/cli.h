/* The operator CLI's shared parts (cmd/ferry.c and the command files beside it): the options
 * every command parses, the daemon client, one JSON request, one way to fail. Exit statuses:
 * 0 done, 1 failed, 2 bad usage. */
#ifndef FERRY_CMD_CLI_H
#define FERRY_CMD_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/api_client.h"

struct cli_options {
	const char *url;
	const char *token_file;
	const char *cacert;
	bool insecure;
	bool json;
	uint64_t segment_size;
	int jobs;
	int zstd_level;
	bool restart;
	bool progress;
	uint64_t bandwidth_limit;
	const char *ceph_conf;
	const char *ceph_id;
	const char *target_kind;
	const char *from_snapshot;
	const char *site_url;
	const char *peer_token_file;
	const char *peer_cacert;
	const char *group;
	const char *site;
	int64_t interval;
	int64_t keep;
	char *token;
	/* cutover */
	const char *uri;
	const char *dest_uri;
	int64_t order;
	int64_t delay;
	json_t *network_map;
	bool live, cold, test, cleanup, force, dry_run;
	int64_t point;
	int64_t shutdown_timeout;
	int64_t max_time;
	int64_t bandwidth;
	int64_t max_lag;
	const char *on_timeout;
	/* tokens, sites, audit */
	const char *role;
	int64_t expires_days;
	const char *since;
	bool replace;
	const char *config_path; /* --config */
	int64_t rpo;
	bool follow;
};

/* The index of the first operand, or -1 after printing why. Reads the token file. */
int cli_parse(int argc, char **argv, struct cli_options *options);
struct api_client *cli_client(const struct cli_options *options);
/* Prints "ferry COMMAND: message" and returns 1. */
int cli_fail(const struct cli_options *options, const char *command);
/* POSTs request (taken) to path and prints the answer: JSON with --json, else done. */
int cli_request(const struct cli_options *options, const char *command, const char *path,
		json_t *request, const char *done);

/* Prints the usage of command alone (ferry help CMD, CMD --help); 0, or 2 when unknown. */
int cli_command_usage(FILE *out, const char *command);

/* cmd/ferry_config.c: fills what the flags left unset from the environment, then from the
 * configuration file (--config, $FERRY_CONFIG, ~/.config/ferry/ferry.conf,
 * /etc/ferry/ferry.conf), then from defaults (Ceph: /etc/ceph/ceph.conf, admin). */
int cli_config_load(struct cli_options *options);
/* ferry config [--json] */
int cli_config(int argc, char **argv);

/* cmd/ferry_operate.c */
/* One request (taken); its answer in *reply (caller frees). 0, or 1 after printing why. */
int cli_call(const struct cli_options *options, const char *command, const char *method,
	     const char *path, json_t *request, json_t **reply);
void cli_format_age(int64_t ms, char *out, size_t size);
int cli_site(int argc, char **argv);
int cli_group(int argc, char **argv);
int cli_vm_list(const struct cli_options *options);
int cli_health(int argc, char **argv);
int cli_events(int argc, char **argv);

/* cmd/ferry_cutover.c */
int cli_vm(int argc, char **argv);
int cli_migrate(int argc, char **argv);
int cli_failover(int argc, char **argv);
int cli_reprotect(int argc, char **argv);
int cli_runs(int argc, char **argv, bool one);

/* cmd/ferry_access.c */
int cli_token(int argc, char **argv);
int cli_audit(int argc, char **argv);

#endif
