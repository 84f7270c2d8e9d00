/* The CLI's own configuration: where the daemon is and how to reach it, so that an operator does
 * not repeat --daemon, --token-file and --cacert on every command. Flags win over the
 * environment, which wins over the file ($FERRY_CONFIG, else ~/.config/ferry/ferry.conf, else
 * /etc/ferry/ferry.conf); `ferry config` shows each setting in force and where it came from. */
#include "cmd/cli.h"
#include "common/config.h"
#include "common/error.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum cli_setting_index {
	CLI_SETTING_DAEMON,
	CLI_SETTING_TOKEN_FILE,
	CLI_SETTING_CACERT,
	CLI_SETTING_CEPH_CONF,
	CLI_SETTING_CEPH_ID,
	CLI_SETTING_COUNT,
};

/* Values live here for the process's life: options point into them. */
static struct cli_setting {
	const char *key; /* in ferry.conf, and the flag's name */
	const char *environment;
	char value[4096];
	char source[4200]; /* "flag", "environment (NAME)", the file's path, "default" */
} cli_settings[CLI_SETTING_COUNT] = {
	{"daemon", "FERRY_DAEMON", "", ""}, {"token-file", "FERRY_TOKEN_FILE", "", ""},
	{"cacert", "FERRY_CACERT", "", ""}, {"ceph-conf", "CEPH_CONF", "", ""},
	{"ceph-id", NULL, "", ""},
};
static char cli_config_file[4096];

static const char **
cli_setting_field(struct cli_options *options, int index)
{
	switch (index) {
	case CLI_SETTING_DAEMON: return &options->url;
	case CLI_SETTING_TOKEN_FILE: return &options->token_file;
	case CLI_SETTING_CACERT: return &options->cacert;
	case CLI_SETTING_CEPH_CONF: return &options->ceph_conf;
	default: return &options->ceph_id;
	}
}

struct cli_file_values {
	char values[CLI_SETTING_COUNT][4096];
	bool given[CLI_SETTING_COUNT];
	const char *path;
};

static int
cli_config_each(const char *section, const char *key, const char *value, void *context)
{
	struct cli_file_values *file = context;

	if (section[0] && strcmp(section, "ferry") != 0)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "section [%s] is not ferry's (its settings go in [ferry])",
				       section);
	for (int i = 0; i < CLI_SETTING_COUNT; i++)
		if (strcmp(key, cli_settings[i].key) == 0) {
			/* A relative path in the file is relative to the file. */
			if (i != CLI_SETTING_DAEMON && i != CLI_SETTING_CEPH_ID && value[0] &&
			    value[0] != '/' && strrchr(file->path, '/'))
				snprintf(file->values[i], sizeof(file->values[i]), "%.*s/%s",
					 (int)(strrchr(file->path, '/') - file->path), file->path,
					 value);
			else
				snprintf(file->values[i], sizeof(file->values[i]), "%s", value);
			file->given[i] = true;
			return 0;
		}
	return ferry_error_set(FERRY_ERR_INVALID,
			       "unknown setting '%s' (ferry.conf takes daemon, token-file, cacert, "
			       "ceph-conf and ceph-id)",
			       key);
}

/* The file in force: --config, else $FERRY_CONFIG (both must exist), else the first of the
 * user's and the system's that exists; "" when none does. */
static int
cli_config_find(const char *flag, char *path, size_t size)
{
	const char *environment = getenv("FERRY_CONFIG"), *home = getenv("HOME"),
		   *xdg = getenv("XDG_CONFIG_HOME");
	const char *given = flag ? flag : environment;

	path[0] = '\0';
	if (given && given[0]) {
		if (access(given, R_OK) < 0)
			return ferry_error_set(FERRY_ERR_NOT_FOUND,
					       "cannot read the configuration %s (given by %s)",
					       given, flag ? "--config" : "FERRY_CONFIG");
		snprintf(path, size, "%s", given);
		return 0;
	}
	if (xdg && xdg[0] == '/')
		snprintf(path, size, "%s/ferry/ferry.conf", xdg);
	else if (home && home[0] == '/')
		snprintf(path, size, "%s/.config/ferry/ferry.conf", home);
	if (path[0] && access(path, R_OK) == 0)
		return 0;
	snprintf(path, size, "/etc/ferry/ferry.conf");
	if (access(path, R_OK) == 0)
		return 0;
	path[0] = '\0';
	return 0;
}

int
cli_config_load(struct cli_options *options)
{
	struct cli_file_values file = {0};
	int rc;

	rc = cli_config_find(options->config_path, cli_config_file, sizeof(cli_config_file));
	if (rc == 0 && cli_config_file[0]) {
		file.path = cli_config_file;
		rc = config_read_ini(cli_config_file, cli_config_each, &file);
	}
	if (rc < 0)
		return rc;
	for (int i = 0; i < CLI_SETTING_COUNT; i++) {
		struct cli_setting *setting = &cli_settings[i];
		const char **field = cli_setting_field(options, i);
		const char *environment =
			setting->environment ? getenv(setting->environment) : NULL;

		if (*field) {
			snprintf(setting->source, sizeof(setting->source), "flag --%s",
				 setting->key);
			continue;
		}
		if (environment && environment[0]) {
			snprintf(setting->value, sizeof(setting->value), "%s", environment);
			snprintf(setting->source, sizeof(setting->source), "environment (%s)",
				 setting->environment);
		} else if (file.given[i]) {
			snprintf(setting->value, sizeof(setting->value), "%s", file.values[i]);
			snprintf(setting->source, sizeof(setting->source), "%s", cli_config_file);
		} else if (i == CLI_SETTING_CEPH_CONF && access("/etc/ceph/ceph.conf", R_OK) == 0) {
			/* As rbd does. */
			snprintf(setting->value, sizeof(setting->value), "/etc/ceph/ceph.conf");
			snprintf(setting->source, sizeof(setting->source), "default");
		} else if (i == CLI_SETTING_CEPH_ID) {
			snprintf(setting->value, sizeof(setting->value), "admin");
			snprintf(setting->source, sizeof(setting->source), "default");
		} else {
			continue;
		}
		*field = setting->value;
	}
	return 0;
}

/* ferry config [--config F] [--json]: the settings in force, and where each came from. The flags
 * it shows are the global options (cli_parse() put them in args->options). */
int
cli_config(struct cli_args *args)
{
	struct cli_options options = args->options;

	if (args->operand_count != 0)
		return cli_usage_error(args);
	if (cli_config_load(&options) < 0)
		return cli_fail(&options, "config");
	if (options.json) {
		json_t *settings = json_object();
		char *text;

		for (int i = 0; i < CLI_SETTING_COUNT; i++) {
			const char *value = *cli_setting_field(&options, i);

			json_object_set_new(settings, cli_settings[i].key,
					    json_pack("{s:s?, s:s?}", "value", value, "source",
						      value ? cli_settings[i].source : NULL));
		}
		{
			json_t *answer = json_pack("{s:s?, s:o}", "config_file",
						   cli_config_file[0] ? cli_config_file : NULL,
						   "settings", settings);

			text = json_dumps(answer, JSON_INDENT(2) | JSON_SORT_KEYS);
			json_decref(answer);
		}
		if (text)
			puts(text);
		free(text);
		return 0;
	}
	printf("configuration file: %s\n",
	       cli_config_file[0] ? cli_config_file
				  : "none ($FERRY_CONFIG, ~/.config/ferry/ferry.conf and "
				    "/etc/ferry/ferry.conf do not exist)");
	for (int i = 0; i < CLI_SETTING_COUNT; i++) {
		const char *value = *cli_setting_field(&options, i);

		printf("%-10s = %-40s %s\n", cli_settings[i].key, value ? value : "(unset)",
		       value ? cli_settings[i].source : "");
	}
	return 0;
}
