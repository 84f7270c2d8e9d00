/* ferry's options: one table of every option (its name, its value, how the value is checked,
 * what it is for), the parser that reads a command line against the command's row of
 * cli_commands, the usage made from both tables, and the words bash completes with.
 *
 * The parser, in two passes over what follows the command's name:
 *   1. split the words into options (with their values) and operands; an option's value is
 *      the rest of --NAME=VALUE or the next word, as getopt_long has it, and "--" ends the
 *      options;
 *   2. with the verb (the first operand, for a command that has verbs) known, take each option
 *      in turn: a global one, or one the command's row lists, is checked and stored; anything
 *      else is refused, naming the option and the command.
 * Global options may also come before the command; there, only they are taken.
 * Invariants:
 *   1. A command's handler sees only options its row lists or global ones (cli_value()).
 *   2. Every value stored passed its option's check (range, choice or parse function).
 *   3. A refusal exits with 2 and says which option, which command, and where to look. */
#include "cmd/cli.h"
#include "common/error.h"
#include "common/util.h"
#include "replicator/repl.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum cli_value_kind {
	CLI_VALUE_NONE,	   /* a flag */
	CLI_VALUE_TEXT,	   /* any text */
	CLI_VALUE_CHOICE,  /* one of the words of value, "file|rbd" */
	CLI_VALUE_INTEGER, /* util_parse_int64 within [minimum, maximum] */
	CLI_VALUE_SIZE,	   /* util_parse_size (4M, 64k) within [minimum, maximum] */
	CLI_VALUE_CUSTOM,  /* parse() */
};

struct cli_option {
	const char *name;  /* without its dashes */
	const char *alias; /* a second name, or NULL */
	const char *value; /* the value's name in the usage ("N", "FILE", "file|rbd"); NULL: none */
	enum cli_value_kind kind;
	int64_t minimum, maximum;
	int64_t fallback; /* cli_number() when not given */
	/* CLI_VALUE_CUSTOM: checks text and stores it in *value (and args); 0, or -1 after
	 * printing why. */
	int (*parse)(struct cli_args *args, const char *command, const char *text,
		     struct cli_value *value);
	const char *help;
};

static int
cli_parse_segment_size(struct cli_args *args, const char *command, const char *text,
		       struct cli_value *value)
{
	uint64_t bytes = 0;

	(void)args;
	if (util_parse_size(text, &bytes) < 0 || bytes < SEGMENT_SIZE_MIN ||
	    bytes > SEGMENT_SIZE_MAX || bytes % SEGMENT_SIZE_MIN) {
		fprintf(stderr,
			"%s: --segment-size %s: give a multiple of 4096 between 4 KiB and 64 "
			"MiB (e.g. 4M)\n",
			command, text);
		return -1;
	}
	value->number = (int64_t)bytes;
	return 0;
}

/* --bandwidth: a rate with a suffix, as --bwlimit takes; a bare number is MiB/s, as it always
 * was. Stored in MiB/s, what libvirt takes. */
static int
cli_parse_bandwidth(struct cli_args *args, const char *command, const char *text,
		    struct cli_value *value)
{
	uint64_t bytes = 0;
	int64_t mib;

	(void)args;
	if (util_parse_int64(text, 0, INT64_MAX, &mib) == 0) {
		value->number = mib;
		return 0;
	}
	if (util_parse_size(text, &bytes) < 0 || bytes < 1024 * 1024) {
		fprintf(stderr,
			"%s: --bandwidth %s: give a rate of 1M (1 MiB/s) or more, e.g. 100M; "
			"libvirt moves memory in MiB/s\n",
			command, text);
		return -1;
	}
	value->number = (int64_t)(bytes / (1024 * 1024));
	return 0;
}

static int
cli_parse_on_timeout(struct cli_args *args, const char *command, const char *text,
		     struct cli_value *value)
{
	(void)args;
	(void)value;
	if (strcmp(text, "abort") == 0 || strcmp(text, "cold") == 0)
		return 0;
	fprintf(stderr,
		"%s: --on-timeout takes abort (the VM keeps running at the source) or cold "
		"(then shut it down and move it cold)%s\n",
		command,
		strcmp(text, "postcopy") == 0 ? "; post-copy would run the VM at the destination "
						"before its final delta has landed there"
					      : "");
	return -1;
}

static int
cli_parse_network_map(struct cli_args *args, const char *command, const char *text,
		      struct cli_value *value)
{
	const char *equals = strchr(text, '=');
	char key[256];

	(void)value;
	if (equals == NULL || equals == text || equals[1] == '\0' ||
	    (size_t)(equals - text) >= sizeof(key)) {
		fprintf(stderr, "%s: --network-map %s: give SOURCE=DESTINATION\n", command, text);
		return -1;
	}
	if (args->network_map == NULL)
		args->network_map = json_object();
	snprintf(key, sizeof(key), "%.*s", (int)(equals - text), text);
	json_object_set_new(args->network_map, key, json_string(equals + 1));
	return 0;
}

#define CLI_FLAG(name, help)                                                                       \
	{                                                                                          \
		name, NULL, NULL, CLI_VALUE_NONE, 0, 0, 0, NULL, help                              \
	}
#define CLI_TEXT(name, value, help)                                                                \
	{                                                                                          \
		name, NULL, value, CLI_VALUE_TEXT, 0, 0, 0, NULL, help                             \
	}
#define CLI_CHOICE(name, value, help)                                                              \
	{                                                                                          \
		name, NULL, value, CLI_VALUE_CHOICE, 0, 0, 0, NULL, help                           \
	}
#define CLI_INTEGER(name, low, high, help)                                                         \
	{                                                                                          \
		name, NULL, "N", CLI_VALUE_INTEGER, low, high, 0, NULL, help                       \
	}
#define CLI_SECONDS(name, low, help)                                                               \
	{                                                                                          \
		name, NULL, "SECONDS", CLI_VALUE_INTEGER, low, INT64_MAX, 0, NULL, help            \
	}
#define CLI_CUSTOM(name, value, parse, help)                                                       \
	{                                                                                          \
		name, NULL, value, CLI_VALUE_CUSTOM, 0, 0, 0, parse, help                          \
	}

/* Every option ferry knows, by enum cli_option_id. */
static const struct cli_option cli_option_table[CLI_OPTION_COUNT] = {
	[CLI_OPTION_DAEMON] = {"daemon", "to", "URL", CLI_VALUE_TEXT, 0, 0, 0, NULL,
			       "the ferryd, https://HOST:PORT"},
	[CLI_OPTION_TOKEN_FILE] = CLI_TEXT("token-file", "FILE", "its bearer token"),
	[CLI_OPTION_CACERT] = CLI_TEXT("cacert", "FILE", "the CA that signed its certificate"),
	[CLI_OPTION_INSECURE] = CLI_FLAG("insecure", "no check of its certificate (tests only)"),
	[CLI_OPTION_CONFIG] = CLI_TEXT("config", "FILE", "the client configuration to read"),
	[CLI_OPTION_JSON] = CLI_FLAG("json", "one JSON object on stdout"),
	[CLI_OPTION_CEPH_CONF] =
		CLI_TEXT("ceph-conf", "FILE", "the Ceph cluster rbd: sources are read from"),
	[CLI_OPTION_CEPH_ID] = CLI_TEXT("ceph-id", "NAME", "the Ceph client name (admin)"),
	[CLI_OPTION_NO_PROGRESS] = CLI_FLAG("no-progress", "no progress line on stderr"),
	[CLI_OPTION_HELP] = CLI_FLAG("help", "this command's usage (also -h)"),
	[CLI_OPTION_VERSION] = CLI_FLAG("version", "ferry's version"),

	[CLI_OPTION_SEGMENT_SIZE] = CLI_CUSTOM("segment-size", "BYTES", cli_parse_segment_size,
					       "segments of BYTES, 4K to 64M (default 4M)"),
	[CLI_OPTION_JOBS] = {"jobs", NULL, "N", CLI_VALUE_INTEGER, 1, 64, 4, NULL,
			     "segments in flight at once, 1 to 64 (default 4)"},
	[CLI_OPTION_ZSTD_LEVEL] = {"zstd-level", NULL, "N", CLI_VALUE_INTEGER, -7, 19, 1, NULL,
				   "zstd's level, -7 to 19 (default 1)"},
	[CLI_OPTION_RESTART] = CLI_FLAG("restart", "discard what was received and start over"),
	[CLI_OPTION_BWLIMIT] = {"bwlimit", NULL, "RATE", CLI_VALUE_SIZE, 0, INT64_MAX, 0, NULL,
				"at most RATE bytes per second (100M)"},
	[CLI_OPTION_TARGET] =
		CLI_CHOICE("target", "file|rbd", "keep the volume as a file or an RBD image"),
	[CLI_OPTION_FROM_SNAP] =
		CLI_TEXT("from-snap", "SNAPSHOT", "ship only what changed since SNAPSHOT"),
	[CLI_OPTION_SOURCE_FORMAT] = CLI_CHOICE("source-format", "raw|qcow2|vmdk|vhdx|vpc",
						"read SOURCE as a disk image of that format"),
	[CLI_OPTION_RETRY_FOR] = CLI_INTEGER("retry-for", 0, 86400,
					     "retry a cut link or a restarting daemon for N "
					     "seconds (default 120; 0: fail at once)"),
	[CLI_OPTION_TARGET_FORMAT] = CLI_CHOICE("target-format", "raw|qcow2",
						"keep the volume as a raw or a qcow2 file"),

	[CLI_OPTION_URL] = CLI_TEXT("url", "URL", "the replica site's ferryd"),
	[CLI_OPTION_PEER_TOKEN_FILE] = CLI_TEXT("peer-token-file", "FILE",
						"the token that site gave this one (role peer)"),
	[CLI_OPTION_PEER_CACERT] = CLI_TEXT("peer-cacert", "FILE", "that site's CA certificate"),
	[CLI_OPTION_REPLACE] = CLI_FLAG("replace", "point an existing site elsewhere"),
	[CLI_OPTION_INTERVAL] = CLI_SECONDS("interval", 1, "a point every SECONDS"),
	[CLI_OPTION_KEEP] = {"keep", NULL, "K", CLI_VALUE_INTEGER, 1, INT64_MAX, 0, NULL,
			     "the newest K points kept"},
	[CLI_OPTION_RPO] = CLI_SECONDS("rpo", 1, "the RPO target"),
	[CLI_OPTION_GROUP] = CLI_TEXT("group", "GROUP", "the protection group"),
	[CLI_OPTION_SITE] = CLI_TEXT("site", "SITE", "the replica site"),

	[CLI_OPTION_URI] = CLI_TEXT("uri", "URI", "the libvirt connection here (name or URI)"),
	[CLI_OPTION_DEST_URI] = CLI_TEXT("dest-uri", "URI", "the libvirt connection there"),
	[CLI_OPTION_ORDER] = CLI_INTEGER("order", 0, INT64_MAX, "start order at a failover"),
	[CLI_OPTION_DELAY] = CLI_SECONDS("delay", 0, "wait after starting it at a failover"),
	[CLI_OPTION_NETWORK_MAP] = CLI_CUSTOM("network-map", "SRC=DST", cli_parse_network_map,
					      "network SRC is DST there (repeatable)"),
	[CLI_OPTION_LIVE] = CLI_FLAG("live", "move the memory, the guest running"),
	[CLI_OPTION_COLD] = CLI_FLAG("cold", "shut the guest down and start it there"),
	[CLI_OPTION_DRY_RUN] = CLI_FLAG("dry-run", "check and predict, change nothing"),
	[CLI_OPTION_MAX_TIME] = CLI_SECONDS("max-time", 0, "the memory copy's limit (600)"),
	[CLI_OPTION_BANDWIDTH] = CLI_CUSTOM("bandwidth", "RATE", cli_parse_bandwidth,
					    "the memory copy's rate, 1M or more"),
	[CLI_OPTION_ON_TIMEOUT] = CLI_CUSTOM("on-timeout", "abort|cold", cli_parse_on_timeout,
					     "after --max-time: abort, or move it cold"),
	[CLI_OPTION_SHUTDOWN_TIMEOUT] =
		CLI_SECONDS("shutdown-timeout", 0, "wait for the guest's shutdown"),
	[CLI_OPTION_FORCE] =
		CLI_FLAG("force", "migrate: power it off after --shutdown-timeout; failover: go on "
				  "when the primary answers but cannot fence it; group promote: "
				  "even while the primary still pushes"),
	[CLI_OPTION_MAX_LAG] = CLI_SECONDS("max-lag", 0, "refuse when a replica lags more"),
	[CLI_OPTION_POINT] = CLI_INTEGER("point", 0, INT64_MAX, "this point, not the newest"),
	[CLI_OPTION_TEST] = CLI_FLAG("test", "on clones with network links down"),
	[CLI_OPTION_CLEANUP] = CLI_FLAG("cleanup", "remove test failovers"),

	[CLI_OPTION_ROLE] = CLI_CHOICE("role", "viewer|operator|admin|peer", "what it may do"),
	[CLI_OPTION_EXPIRES] = {"expires", NULL, "DAYS", CLI_VALUE_INTEGER, 1, 3650, 0, NULL,
				"valid for DAYS, 1 to 3650"},
	[CLI_OPTION_SINCE] = CLI_TEXT("since", "TIME", "entries since TIME"),
	[CLI_OPTION_FOLLOW] = CLI_FLAG("follow", "and what happens next"),
};

static bool
cli_option_global(enum cli_option_id id)
{
	return id <= CLI_OPTION_VERSION;
}

/* The option called name (length bytes of it), or CLI_OPTION_COUNT. */
static enum cli_option_id
cli_option_find(const char *name, size_t length)
{
	for (int id = 0; id < CLI_OPTION_COUNT; id++) {
		const struct cli_option *option = &cli_option_table[id];

		if ((strlen(option->name) == length && strncmp(option->name, name, length) == 0) ||
		    (option->alias && strlen(option->alias) == length &&
		     strncmp(option->alias, name, length) == 0))
			return (enum cli_option_id)id;
	}
	return CLI_OPTION_COUNT;
}

static bool
cli_command_takes(const struct cli_command *command, enum cli_option_id id)
{
	if (cli_option_global(id))
		return true;
	for (size_t i = 0; command && command->options && command->options[i] != CLI_OPTION_END;
	     i++)
		if (command->options[i] == id)
			return true;
	return false;
}

/* "group create" for messages; "copy" for a command without verbs. */
static const char *
cli_command_title(const struct cli_command *command, const char *name, char *out, size_t size)
{
	if (command && command->verb)
		snprintf(out, size, "%s %s", command->name, command->verb);
	else
		snprintf(out, size, "%s", command ? command->name : name ? name : "");
	return out;
}

static const struct cli_value *
cli_value(const struct cli_args *args, enum cli_option_id id)
{
	assert(id < CLI_OPTION_COUNT);
	/* Invariant 1: a handler reads only what its row of cli_commands lists. */
	assert(cli_command_takes(args->command, id));
	return &args->values[id];
}

bool
cli_given(const struct cli_args *args, enum cli_option_id id)
{
	return cli_value(args, id)->given;
}

const char *
cli_text(const struct cli_args *args, enum cli_option_id id)
{
	const struct cli_value *value = cli_value(args, id);

	return value->given ? value->text : NULL;
}

int64_t
cli_number(const struct cli_args *args, enum cli_option_id id)
{
	const struct cli_value *value = cli_value(args, id);

	return value->given ? value->number : cli_option_table[id].fallback;
}

/* Checks text against the option's kind and range and stores it; 0, or -1 after printing
 * why (invariant 2). */
static int
cli_option_store(struct cli_args *args, const char *command, enum cli_option_id id,
		 const char *text)
{
	const struct cli_option *option = &cli_option_table[id];
	struct cli_value *value = &args->values[id];
	uint64_t bytes = 0;

	switch (option->kind) {
	case CLI_VALUE_NONE:
	case CLI_VALUE_TEXT: break;
	case CLI_VALUE_CHOICE: {
		size_t length = strlen(text);
		const char *at = option->value;

		while (at) {
			if (strncmp(at, text, length) == 0 && (at[length] == '|' || !at[length]))
				break;
			at = strchr(at, '|');
			at = at ? at + 1 : NULL;
		}
		if (at == NULL || length == 0) {
			fprintf(stderr, "%s: --%s %s: give %s\n", command, option->name, text,
				option->value);
			return -1;
		}
		break;
	}
	case CLI_VALUE_INTEGER:
		if (util_parse_int64(text, option->minimum, option->maximum, &value->number) < 0) {
			if (option->maximum == INT64_MAX)
				fprintf(stderr,
					"%s: --%s %s: give a whole number of %lld or more\n",
					command, option->name, text, (long long)option->minimum);
			else
				fprintf(stderr, "%s: --%s %s: give %lld to %lld\n", command,
					option->name, text, (long long)option->minimum,
					(long long)option->maximum);
			return -1;
		}
		break;
	case CLI_VALUE_SIZE:
		if (util_parse_size(text, &bytes) < 0 || bytes > (uint64_t)option->maximum ||
		    bytes < (uint64_t)option->minimum) {
			fprintf(stderr, "%s: --%s %s is not a size (e.g. 50M)\n", command,
				option->name, text);
			return -1;
		}
		value->number = (int64_t)bytes;
		break;
	case CLI_VALUE_CUSTOM:
		if (option->parse(args, command, text, value) < 0)
			return -1;
		break;
	}
	value->given = true;
	value->text = text;
	return 0;
}

/* One option word of the command line, after pass 1. */
struct cli_word {
	const char *word; /* as given, "--jobs=3" */
	enum cli_option_id id;
	const char *text; /* its value, or NULL */
};

/* Pass 1: the words after the command split into options and operands (operands in place, in
 * order, at the start of argv). -1 after printing why. */
static int
cli_split(int argc, char **argv, const char *command, struct cli_word *words, int *word_count,
	  int *operand_count)
{
	bool options_end = false;

	*word_count = *operand_count = 0;
	for (int i = 0; i < argc; i++) {
		const char *word = argv[i], *name;
		struct cli_word *option = &words[*word_count];
		size_t length;

		if (options_end || word[0] != '-' || word[1] == '\0') {
			argv[(*operand_count)++] = argv[i];
			continue;
		}
		if (strcmp(word, "--") == 0) {
			options_end = true;
			continue;
		}
		name = word + (word[1] == '-' ? 2 : 1);
		length = strcspn(name, "=");
		option->word = word;
		option->text = name[length] == '=' ? name + length + 1 : NULL;
		option->id = strcmp(word, "-h") == 0 ? CLI_OPTION_HELP
			     : word[1] == '-'	     ? cli_option_find(name, length)
						     : CLI_OPTION_COUNT;
		(*word_count)++;
		if (option->id == CLI_OPTION_COUNT)
			continue;
		if (cli_option_table[option->id].value == NULL && option->text) {
			fprintf(stderr, "ferry %s: --%s takes no value; see 'ferry %s --help'\n",
				command, cli_option_table[option->id].name, command);
			return -1;
		}
		if (cli_option_table[option->id].value && option->text == NULL) {
			if (i + 1 == argc) {
				fprintf(stderr,
					"ferry %s: --%s needs a value (--%s %s); see 'ferry %s "
					"--help'\n",
					command, cli_option_table[option->id].name,
					cli_option_table[option->id].name,
					cli_option_table[option->id].value, command);
				return -1;
			}
			option->text = argv[++i];
		}
	}
	return 0;
}

static const struct cli_command *
cli_command_find(const char *name, const char *verb)
{
	for (size_t i = 0; i < cli_command_count; i++)
		if (strcmp(cli_commands[i].name, name) == 0 &&
		    (cli_commands[i].verb == NULL ||
		     (verb && strcmp(cli_commands[i].verb, verb) == 0)))
			return &cli_commands[i];
	return NULL;
}

static bool
cli_command_known(const char *name)
{
	for (size_t i = 0; i < cli_command_count; i++)
		if (strcmp(cli_commands[i].name, name) == 0)
			return true;
	return false;
}

/* The verbs of command name, "add, list or remove", into out. */
static void
cli_verbs_text(const char *name, char *out, size_t size)
{
	size_t count = 0, used = 0, seen = 0;

	out[0] = '\0';
	for (size_t i = 0; i < cli_command_count; i++)
		count += strcmp(cli_commands[i].name, name) == 0;
	for (size_t i = 0; i < cli_command_count && used < size; i++) {
		if (strcmp(cli_commands[i].name, name) != 0)
			continue;
		seen++;
		used += (size_t)snprintf(out + used, size - used, "%s%s",
					 seen == 1	 ? ""
					 : seen == count ? " or "
							 : ", ",
					 cli_commands[i].verb);
	}
}

/* Pass 2 for one option word: stored, or refused (-1, or 0 with *exit_out set for --help and
 * --version). */
static int
cli_take(struct cli_args *args, const char *name, const struct cli_word *word, int *exit_out)
{
	char title[64], prefix[80];
	const char *command = cli_command_title(args->command, name, title, sizeof(title));

	/* Before the command: "ferry: --jobs x: ..."; after it, "ferry copy: ...". */
	if (name)
		snprintf(prefix, sizeof(prefix), "ferry %s", command);
	else
		snprintf(prefix, sizeof(prefix), "ferry");
	if (word->id == CLI_OPTION_COUNT) {
		fprintf(stderr, "ferry %s: unknown option %s; see 'ferry %s --help'\n", command,
			word->word, name);
		return -1;
	}
	if (word->id == CLI_OPTION_HELP) {
		*exit_out = cli_command_usage(stdout, name);
		return 0;
	}
	if (word->id == CLI_OPTION_VERSION) {
		printf("ferry %s\n", FERRY_VERSION);
		*exit_out = 0;
		return 0;
	}
	/* Invariant 3. */
	if (args->command && !cli_command_takes(args->command, word->id)) {
		fprintf(stderr, "ferry %s: --%s is not an option of %s; see 'ferry %s --help'\n",
			command, cli_option_table[word->id].name, command, name);
		return -1;
	}
	return cli_option_store(args, prefix, word->id, word->text);
}

/* The commands that take option id, "copy, verify", into out. */
static void
cli_option_takers(enum cli_option_id id, char *out, size_t size)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < cli_command_count && used < size; i++) {
		char title[64];

		if (!cli_command_takes(&cli_commands[i], id))
			continue;
		cli_command_title(&cli_commands[i], NULL, title, sizeof(title));
		used += (size_t)snprintf(out + used, size - used, "%s%s", used ? ", " : "", title);
	}
}

/* The global options before the command: how many words they take, or -1 after printing why
 * (*exit_out is set for --help and --version). */
static int
cli_parse_before(int argc, char **argv, struct cli_args *args, int *exit_out)
{
	int at = 1;

	while (at < argc && argv[at][0] == '-' && argv[at][1] != '\0' && *exit_out < 0) {
		const char *name = argv[at] + (argv[at][1] == '-' ? 2 : 1);
		size_t length = strcspn(name, "=");
		struct cli_word word = {argv[at], cli_option_find(name, length), NULL};

		if (strcmp(argv[at], "-h") == 0)
			word.id = CLI_OPTION_HELP;
		if (word.id == CLI_OPTION_COUNT) {
			fprintf(stderr, "ferry: unknown option %s; see 'ferry --help'\n", argv[at]);
			return -1;
		}
		if (!cli_option_global(word.id)) {
			char takers[200];

			cli_option_takers(word.id, takers, sizeof(takers));
			fprintf(stderr,
				"ferry: --%s is an option of %s, not of every command: put it "
				"after the command (ferry COMMAND --help)\n",
				cli_option_table[word.id].name, takers);
			return -1;
		}
		if (word.id == CLI_OPTION_HELP) {
			cli_usage(stdout);
			*exit_out = 0;
			break;
		}
		if (cli_option_table[word.id].value && name[length] != '=' && at + 1 == argc) {
			fprintf(stderr, "ferry: %s needs a value (%s %s)\n", argv[at], argv[at],
				cli_option_table[word.id].value);
			return -1;
		}
		word.text = cli_option_table[word.id].value == NULL ? NULL
			    : name[length] == '='		    ? name + length + 1
								    : argv[++at];
		if (cli_take(args, NULL, &word, exit_out) < 0)
			return -1;
		at++;
	}
	return at;
}

/* The global options into args->options, then the configuration, the Ceph cluster and the
 * token for a command that talks to a daemon. 0, or -1 after printing why. */
static int
cli_settings(struct cli_args *args)
{
	struct cli_options *options = &args->options;
	const struct cli_value *values = args->values;

	options->url = values[CLI_OPTION_DAEMON].given ? values[CLI_OPTION_DAEMON].text : NULL;
	options->token_file = values[CLI_OPTION_TOKEN_FILE].text;
	options->cacert = values[CLI_OPTION_CACERT].text;
	options->config_path = values[CLI_OPTION_CONFIG].text;
	options->ceph_conf = values[CLI_OPTION_CEPH_CONF].text;
	options->ceph_id = values[CLI_OPTION_CEPH_ID].text;
	options->insecure = values[CLI_OPTION_INSECURE].given;
	options->json = values[CLI_OPTION_JSON].given;
	options->progress = isatty(STDERR_FILENO) && !values[CLI_OPTION_NO_PROGRESS].given;
	if (args->command->local)
		return 0;
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
	return 0;
}

int
cli_parse(int argc, char **argv, struct cli_args *args)
{
	struct cli_word *words = NULL;
	const char *name;
	int at, word_count = 0, operand_count = 0, exit_status = -1;

	memset(args, 0, sizeof(*args));
	at = cli_parse_before(argc, argv, args, &exit_status);
	if (at < 0 || exit_status >= 0)
		return at < 0 ? 2 : exit_status;
	if (at == argc) {
		fprintf(stderr, "ferry: no command given (ferry --help lists them)\n");
		return 2;
	}
	name = argv[at];
	if (!cli_command_known(name)) {
		fprintf(stderr, "ferry: unknown command '%s'\n", name);
		cli_usage(stderr);
		return 2;
	}
	words = calloc((size_t)argc, sizeof(*words));
	if (words == NULL) {
		fprintf(stderr, "ferry: out of memory\n");
		return 2;
	}
	/* Pass 1. */
	if (cli_split(argc - at - 1, argv + at + 1, name, words, &word_count, &operand_count) < 0) {
		exit_status = 2;
		goto out;
	}
	args->operands = argv + at + 1;
	args->operand_count = operand_count;
	args->command = cli_command_find(name, operand_count ? args->operands[0] : NULL);
	if (args->command && args->command->verb) {
		args->operands++;
		args->operand_count--;
	}
	/* Pass 2. */
	for (int i = 0; i < word_count && exit_status < 0; i++)
		if (cli_take(args, name, &words[i], &exit_status) < 0)
			exit_status = 2;
	if (exit_status >= 0)
		goto out;
	if (args->command == NULL) {
		char verbs[200];

		cli_verbs_text(name, verbs, sizeof(verbs));
		fprintf(stderr, "ferry %s: give %s (see 'ferry %s --help')\n", name, verbs, name);
		cli_command_usage(stderr, name);
		exit_status = 2;
		goto out;
	}
	if (cli_settings(args) < 0)
		exit_status = 2;
out:
	free(words);
	return exit_status;
}

void
cli_args_free(struct cli_args *args)
{
	free(args->options.token);
	args->options.token = NULL;
	json_decref(args->network_map);
	args->network_map = NULL;
}

/* "--jobs N" into out. */
static void
cli_option_synopsis(enum cli_option_id id, char *out, size_t size)
{
	const struct cli_option *option = &cli_option_table[id];

	snprintf(out, size, "--%s%s%s", option->name, option->value ? " " : "",
		 option->value ? option->value : "");
}

void
cli_usage(FILE *out)
{
	fprintf(out, "usage: ferry [OPTIONS] COMMAND [OPTIONS]\n\n");
	for (size_t i = 0; i < cli_command_count; i++)
		fputs(cli_commands[i].usage, out);
	fprintf(out, "\nOptions for every command, before or after it:\n");
	for (int id = 0; cli_option_global(id); id++) {
		char synopsis[64];

		cli_option_synopsis(id, synopsis, sizeof(synopsis));
		if (cli_option_table[id].alias)
			snprintf(synopsis, sizeof(synopsis), "--%s URL (or --%s URL)",
				 cli_option_table[id].name, cli_option_table[id].alias);
		fprintf(out, "  %-28s %s\n", synopsis, cli_option_table[id].help);
	}
	fputs("Each comes from the flag, else the environment (FERRY_DAEMON, FERRY_TOKEN_FILE,\n"
	      "FERRY_CACERT, CEPH_CONF), else the configuration: $FERRY_CONFIG, else\n"
	      "~/.config/ferry/ferry.conf, else /etc/ferry/ferry.conf (INI: daemon, token-file,\n"
	      "cacert, ceph-conf, ceph-id); `ferry config` shows what is in force.\n"
	      "SOURCE is a path, file:PATH, or rbd:POOL/IMAGE[@SNAPSHOT] with --ceph-conf FILE\n"
	      "(default /etc/ceph/ceph.conf) and --ceph-id NAME (default admin).\n"
	      "RATE is bytes per second with an optional suffix K, M or G (powers of 1024):\n"
	      "100M is 100 MiB/s (a bare --bandwidth number is MiB/s, as it always was).\n"
	      "ferry keeps its records in $FERRY_STATE_DIR, else /var/lib/ferry-cli as root, "
	      "else\n"
	      "~/.local/state/ferry.\n"
	      "Exit status: 0 done, 1 failed, 2 bad usage.\n",
	      out);
}

int
cli_command_usage(FILE *out, const char *command)
{
	bool listed[CLI_OPTION_COUNT] = {false};
	size_t rows = 0, options = 0;

	for (size_t i = 0; i < cli_command_count; i++) {
		const struct cli_command *row = &cli_commands[i];

		if (strcmp(row->name, command) != 0)
			continue;
		fprintf(out, "%s%s", rows++ ? "" : "usage:\n", row->usage);
		for (size_t j = 0; row->options && row->options[j] != CLI_OPTION_END; j++)
			listed[row->options[j]] = true;
	}
	if (rows == 0) {
		fprintf(stderr, "ferry: unknown command '%s' (ferry --help lists them)\n", command);
		return 2;
	}
	/* The options of the command's rows, in the option table's order. */
	for (int id = 0; id < CLI_OPTION_COUNT; id++) {
		char synopsis[64];

		if (!listed[id])
			continue;
		if (options++ == 0)
			fprintf(out, "\nOptions of %s:\n", command);
		cli_option_synopsis(id, synopsis, sizeof(synopsis));
		fprintf(out, "  %-28s %s\n", synopsis, cli_option_table[id].help);
	}
	fprintf(out, "\nOptions for every command, before or after it (ferry --help says "
		     "what each does):\n ");
	for (int id = 0, column = 1; cli_option_global(id); id++) {
		char name[64];

		snprintf(name, sizeof(name), " --%s%s%s", cli_option_table[id].name,
			 cli_option_table[id].alias ? "|--" : "",
			 cli_option_table[id].alias ? cli_option_table[id].alias : "");
		if (column + strlen(name) > 80) {
			fprintf(out, "\n ");
			column = 1;
		}
		fputs(name, out);
		column += (int)strlen(name);
	}
	fprintf(out, "\n"
		     "Exit status: 0 done, 1 failed, 2 bad usage.\n");
	return 0;
}

int
cli_usage_error(const struct cli_args *args)
{
	cli_command_usage(stderr, args->command->name);
	return 2;
}

/* The words of an option list for completion: "--name --alias ...". */
static void
cli_complete_option(enum cli_option_id id)
{
	printf("--%s ", cli_option_table[id].name);
	if (cli_option_table[id].alias)
		printf("--%s ", cli_option_table[id].alias);
}

/* The words of an option list for completion: the command's own first, then the global ones. */
static void
cli_complete_options(const bool *taken)
{
	for (int id = CLI_OPTION_VERSION + 1; id < CLI_OPTION_COUNT; id++)
		if (taken[id])
			cli_complete_option(id);
	for (int id = 0; cli_option_global(id); id++)
		cli_complete_option(id);
}

/* What may follow prev, an option that takes a value: files, a choice, or nothing. */
static void
cli_complete_value(enum cli_option_id id)
{
	const char *value = cli_option_table[id].value;

	if (strcmp(value, "FILE") == 0)
		printf("__files__");
	else if (cli_option_table[id].kind == CLI_VALUE_CHOICE ||
		 (cli_option_table[id].kind == CLI_VALUE_CUSTOM && strchr(value, '|')))
		for (const char *at = value; *at; at++)
			putchar(*at == '|' ? ' ' : *at);
}

/* ferry __complete PREV CUR WORDS...: WORDS are those between ferry and the word being
 * completed, CUR (the part of it typed so far), PREV the word before it (for --NAME=VALUE,
 * bash's completion gives --NAME as PREV and VALUE as CUR). */
int
cli_complete(int argc, char **argv)
{
	const char *prev = argc > 2 ? argv[2] : "", *cur = argc > 3 ? argv[3] : "";
	const char *command = NULL, *verb = NULL;
	bool taken[CLI_OPTION_COUNT] = {false};
	enum cli_option_id id;

	if (strncmp(prev, "--", 2) == 0 && !strchr(prev, '=')) {
		id = cli_option_find(prev + 2, strlen(prev + 2));
		if (id != CLI_OPTION_COUNT && cli_option_table[id].value) {
			cli_complete_value(id);
			putchar('\n');
			return 0;
		}
	}
	for (int i = 4; i < argc; i++) {
		if (argv[i][0] == '-') {
			const char *name = argv[i] + (argv[i][1] == '-' ? 2 : 1);

			id = cli_option_find(name, strcspn(name, "="));
			if (id != CLI_OPTION_COUNT && cli_option_table[id].value &&
			    !strchr(name, '='))
				i++;
		} else if (command == NULL) {
			command = argv[i];
		} else if (verb == NULL) {
			verb = argv[i];
		}
	}
	for (int i = 0; cli_option_global(i); i++)
		taken[i] = true;
	for (size_t i = 0; i < cli_command_count; i++) {
		const struct cli_command *row = &cli_commands[i];
		bool verbs = command && strcmp(row->name, command) == 0 && row->verb;

		if (command == NULL && cur[0] != '-' &&
		    (i == 0 || strcmp(row->name, cli_commands[i - 1].name) != 0))
			printf("%s ", row->name);
		if (verbs && verb == NULL && cur[0] != '-')
			printf("%s ", row->verb);
		if (command && strcmp(row->name, command) == 0 &&
		    (row->verb == NULL || verb == NULL || strcmp(row->verb, verb) == 0))
			for (size_t j = 0; row->options && row->options[j] != CLI_OPTION_END; j++)
				taken[row->options[j]] = true;
	}
	if (cur[0] == '-') {
		cli_complete_options(taken);
	} else if (command && strcmp(command, "help") == 0 && verb == NULL) {
		for (size_t i = 0; i < cli_command_count; i++)
			if (i == 0 || strcmp(cli_commands[i].name, cli_commands[i - 1].name) != 0)
				printf("%s ", cli_commands[i].name);
	} else if (command && (strcmp(command, "copy") == 0 || strcmp(command, "verify") == 0)) {
		/* SOURCE is a path (or rbd:POOL/IMAGE, which the operator types). */
		printf("__files__");
	}
	putchar('\n');
	return 0;
}
