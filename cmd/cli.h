/* The operator CLI's shared parts (cmd/ferry.c and the command files beside it): the command
 * table, the option table and its parser, the daemon client, one JSON request, one way to fail.
 * Exit statuses: 0 done, 1 failed, 2 bad usage.
 *
 * Every option is one row of cli_option_table (cmd/ferry_options.c): its name, its value and
 * how that value is checked. Every command (or command and verb, "group create") is one row of
 * cli_commands (cmd/ferry.c) that lists the options it takes; the global options
 * (cli_option_global()) come on top, before or after the command. An option the command does
 * not list is refused with exit status 2, and a handler reads only the options its row lists
 * (cli_value() asserts it), so the usage, the completion and the parser cannot disagree. */
#ifndef FERRY_CMD_CLI_H
#define FERRY_CMD_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/api_client.h"

/* Global options first (through CLI_OPTION_VERSION), then each command's own. */
enum cli_option_id {
	CLI_OPTION_DAEMON, /* --daemon, --to */
	CLI_OPTION_TOKEN_FILE,
	CLI_OPTION_CACERT,
	CLI_OPTION_INSECURE,
	CLI_OPTION_CONFIG,
	CLI_OPTION_JSON,
	CLI_OPTION_CEPH_CONF,
	CLI_OPTION_CEPH_ID,
	CLI_OPTION_NO_PROGRESS,
	CLI_OPTION_HELP,
	CLI_OPTION_VERSION,
	/* copy, verify */
	CLI_OPTION_SEGMENT_SIZE,
	CLI_OPTION_JOBS,
	CLI_OPTION_ZSTD_LEVEL,
	CLI_OPTION_RESTART,
	CLI_OPTION_BWLIMIT,
	CLI_OPTION_TARGET,
	CLI_OPTION_FROM_SNAP,
	CLI_OPTION_SOURCE_FORMAT,
	CLI_OPTION_TARGET_FORMAT,
	CLI_OPTION_RETRY_FOR,
	/* sites, groups, protections */
	CLI_OPTION_URL,
	CLI_OPTION_PEER_TOKEN_FILE,
	CLI_OPTION_PEER_CACERT,
	CLI_OPTION_REPLACE,
	CLI_OPTION_INTERVAL,
	CLI_OPTION_KEEP,
	CLI_OPTION_RPO,
	CLI_OPTION_GROUP,
	CLI_OPTION_SITE,
	/* VMs and cutovers */
	CLI_OPTION_URI,
	CLI_OPTION_DEST_URI,
	CLI_OPTION_ORDER,
	CLI_OPTION_DELAY,
	CLI_OPTION_NETWORK_MAP,
	CLI_OPTION_LIVE,
	CLI_OPTION_COLD,
	CLI_OPTION_DRY_RUN,
	CLI_OPTION_MAX_TIME,
	CLI_OPTION_BANDWIDTH,
	CLI_OPTION_ON_TIMEOUT,
	CLI_OPTION_SHUTDOWN_TIMEOUT,
	CLI_OPTION_FORCE,
	CLI_OPTION_MAX_LAG,
	CLI_OPTION_POINT,
	CLI_OPTION_TEST,
	CLI_OPTION_CLEANUP,
	/* tokens, audit, events */
	CLI_OPTION_ROLE,
	CLI_OPTION_EXPIRES,
	CLI_OPTION_SINCE,
	CLI_OPTION_FOLLOW,
	CLI_OPTION_COUNT,
};

/* A command's option list ends with this. */
#define CLI_OPTION_END CLI_OPTION_COUNT
/* CLI_TAKES(CLI_OPTION_JOBS, ...): a command's option list, for its row of cli_commands. */
#define CLI_TAKES(...) ((const enum cli_option_id[]){__VA_ARGS__, CLI_OPTION_END})

struct cli_args;

struct cli_command {
	const char *name; /* "copy", "group" */
	const char *verb; /* "create" for ferry group create; NULL for a command without verbs */
	int (*run)(struct cli_args *args);
	const enum cli_option_id *options; /* CLI_TAKES(...), or NULL: the global ones alone */
	bool local;			   /* true: needs no daemon (config, help) */
	/* The command's usage: its synopsis and what it does. ferry COMMAND --help prints the
	 * text of each row of COMMAND, then the options those rows take, from the option table. */
	const char *usage;
};

/* cmd/ferry.c: every command, in the order ferry --help shows them. */
extern const struct cli_command cli_commands[];
extern const size_t cli_command_count;

/* The settings every command shares: the global options, filled in by cli_config_load(). */
struct cli_options {
	const char *url;
	const char *token_file;
	const char *cacert;
	const char *config_path; /* --config */
	const char *ceph_conf;
	const char *ceph_id;
	bool insecure;
	bool json;
	bool progress;
	char *token; /* read from token_file; freed by cli_args_free() */
};

struct cli_value {
	bool given;
	const char *text; /* as given (the last one, for an option given twice) */
	int64_t number;	  /* a number, size or rate, checked against the option's range */
};

/* One parsed command line. */
struct cli_args {
	const struct cli_command *command;
	struct cli_options options;
	char **operands; /* after the command and its verb */
	int operand_count;
	struct cli_value values[CLI_OPTION_COUNT];
	json_t *network_map; /* --network-map SRC=DST, each one given */
};

/* Parses ferry's whole command line (argv[0] is the program) into args with the command's
 * option table; for a command that talks to a daemon, loads the configuration and reads the
 * token too. Returns -1 when args holds a command to run; else the exit status to return at
 * once: 0 after --help or --version, 2 after printing why (the option, the command and what to
 * do). Free args with cli_args_free() either way. */
int cli_parse(int argc, char **argv, struct cli_args *args);
void cli_args_free(struct cli_args *args);

/* Whether the option was given; its text (NULL when not given); its number (the option's
 * default when not given). Asserts that the command takes the option. */
bool cli_given(const struct cli_args *args, enum cli_option_id id);
const char *cli_text(const struct cli_args *args, enum cli_option_id id);
int64_t cli_number(const struct cli_args *args, enum cli_option_id id);

/* Prints every command's usage (ferry --help). */
void cli_usage(FILE *out);
/* Prints the usage of command alone, with its options (ferry help CMD, CMD --help); 0, or 2
 * when there is no such command. */
int cli_command_usage(FILE *out, const char *command);
/* Prints the usage of args' command to stderr; returns 2, for a handler refusing its operands. */
int cli_usage_error(const struct cli_args *args);
/* ferry __complete CWORD WORDS...: what bash may complete the word at CWORD with, one line of
 * words, or "__files__" for a file name. packaging/bash-completion/ferry calls it, so that the
 * completion is made from the same tables as the parser. */
int cli_complete(int argc, char **argv);

struct api_client *cli_client(const struct cli_options *options);
/* Prints "ferry COMMAND: message" and returns 1. */
int cli_fail(const struct cli_options *options, const char *command);
/* POSTs request (taken) to path and prints the answer: JSON with --json, else done. */
int cli_request(const struct cli_options *options, const char *command, const char *path,
		json_t *request, const char *done);

/* cmd/ferry_config.c: fills what the flags left unset from the environment, then from the
 * configuration file (--config, $FERRY_CONFIG, ~/.config/ferry/ferry.conf,
 * /etc/ferry/ferry.conf), then from defaults (Ceph: /etc/ceph/ceph.conf, admin). */
int cli_config_load(struct cli_options *options);
/* ferry config [--json] */
int cli_config(struct cli_args *args);

/* cmd/ferry.c */
int cli_copy(struct cli_args *args);
int cli_verify(struct cli_args *args);
int cli_status(struct cli_args *args);
int cli_protect(struct cli_args *args);
int cli_unprotect(struct cli_args *args);
int cli_help(struct cli_args *args);

/* cmd/ferry_operate.c */
/* One request (taken); its answer in *reply (caller frees). 0, or 1 after printing why. */
int cli_call(const struct cli_options *options, const char *command, const char *method,
	     const char *path, json_t *request, json_t **reply);
void cli_format_age(int64_t ms, char *out, size_t size);
int cli_site_add(struct cli_args *args);
int cli_site_list(struct cli_args *args);
int cli_site_remove(struct cli_args *args);
int cli_group_list(struct cli_args *args);
int cli_group_create(struct cli_args *args);
/* group set, delete, sync, pause, resume: one request on /v1/groups/NAME */
int cli_group_change(struct cli_args *args);
/* group promote NAME [--point N] [--force] */
int cli_group_promote(struct cli_args *args);
int cli_vm_list(struct cli_args *args);
int cli_health(struct cli_args *args);
int cli_events(struct cli_args *args);

/* cmd/ferry_cutover.c */
int cli_vm_protect(struct cli_args *args);
int cli_vm_unprotect(struct cli_args *args);
int cli_migrate(struct cli_args *args);
int cli_failover(struct cli_args *args);
int cli_reprotect(struct cli_args *args);
int cli_runs(struct cli_args *args);
/* run show, resume, abort, rollback */
int cli_run(struct cli_args *args);

/* cmd/ferry_access.c */
int cli_token_create(struct cli_args *args);
int cli_token_list(struct cli_args *args);
int cli_token_revoke(struct cli_args *args);
int cli_audit(struct cli_args *args);

#endif
