/* ferry token and ferry audit: a daemon's API tokens (create prints the secret once; list never
 * shows one) and its audit log of mutating requests. */
#include "cmd/cli.h"
#include "common/error.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
cli_time_text(int64_t time_ms, char *out, size_t size)
{
	time_t seconds = (time_t)(time_ms / 1000);
	struct tm parts;

	if (time_ms <= 0) {
		snprintf(out, size, "-");
		return;
	}
	gmtime_r(&seconds, &parts);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &parts);
}

/* --since: ms since 1970, an ISO 8601 UTC time, or an age (30m, 12h, 7d). */
static int
cli_since_parse(const char *text, int64_t *out)
{
	struct tm parts = {0};
	const char *end;
	int64_t value;
	size_t length = strlen(text);

	if (util_parse_int64(text, 0, INT64_MAX, &value) == 0) {
		*out = value;
		return 0;
	}
	if (length >= 2 && strchr("mhd", text[length - 1])) {
		char number[32];

		snprintf(number, sizeof(number), "%.*s", (int)(length - 1), text);
		if (util_parse_int64(number, 1, 100000, &value) == 0) {
			int64_t unit = text[length - 1] == 'm'	 ? 60000LL
				       : text[length - 1] == 'h' ? 3600000LL
								 : 86400000LL;

			*out = util_now_ms() - value * unit;
			return 0;
		}
	}
	end = strptime(text, "%Y-%m-%dT%H:%M:%S", &parts);
	if (end == NULL)
		end = strptime(text, "%Y-%m-%d", &parts);
	if (end && (*end == '\0' || strcmp(end, "Z") == 0)) {
		*out = (int64_t)timegm(&parts) * 1000;
		return 0;
	}
	return ferry_error_set(FERRY_ERR_INVALID,
			       "--since %s: give 2026-12-01T10:00:00Z, ms since 1970, or an age "
			       "such as 30m, 12h or 7d",
			       text);
}

/* ferry token create NAME --role ROLE [--expires DAYS] */
int
cli_token_create(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	const char *role = cli_text(args, CLI_OPTION_ROLE), *name = args->operands[0];
	struct api_client *client = NULL;
	json_t *request, *reply = NULL;
	int rc;

	if (args->operand_count != 1 || role == NULL)
		return cli_usage_error(args);
	client = cli_client(options);
	request = json_pack("{s:s, s:s}", "name", name, "role", role);
	if (cli_given(args, CLI_OPTION_EXPIRES))
		json_object_set_new(request, "expires_days",
				    json_integer(cli_number(args, CLI_OPTION_EXPIRES)));
	rc = client ? api_client_json(client, "POST", "/v1/tokens", request, &reply)
		    : ferry_error_last_code();
	json_decref(request);
	api_client_free(client);
	if (rc < 0)
		return cli_fail(options, "token create");
	if (options->json) {
		json_dumpf(reply, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	} else {
		printf("%s\n", json_string_value(json_object_get(reply, "token")));
		fprintf(stderr,
			"token %s (role %s) created; it is shown this once: keep it in a file "
			"readable only by its user (chmod 600)\n",
			name, role);
	}
	json_decref(reply);
	return 0;
}

/* ferry token list [--json] */
int
cli_token_list(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	struct api_client *client = NULL;
	json_t *reply = NULL, *token;
	size_t index;
	int rc;

	if (args->operand_count != 0)
		return cli_usage_error(args);
	client = cli_client(options);
	rc = client ? api_client_json(client, "GET", "/v1/tokens", NULL, &reply)
		    : ferry_error_last_code();
	api_client_free(client);
	if (rc < 0)
		return cli_fail(options, "token list");
	if (options->json) {
		json_dumpf(reply, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	} else {
		printf("%-24s %-9s %-21s %-21s %s\n", "NAME", "ROLE", "CREATED", "LAST USED",
		       "EXPIRES");
		json_array_foreach(json_object_get(reply, "tokens"), index, token) {
			char created[32], used[32], expires[32];

			cli_time_text(json_integer_value(json_object_get(token, "created_ms")),
				      created, sizeof(created));
			cli_time_text(json_integer_value(json_object_get(token, "last_used_ms")),
				      used, sizeof(used));
			cli_time_text(json_integer_value(json_object_get(token, "expires_ms")),
				      expires, sizeof(expires));
			printf("%-24s %-9s %-21s %-21s %s\n",
			       json_string_value(json_object_get(token, "name")),
			       json_string_value(json_object_get(token, "role")), created, used,
			       expires[0] == '-' ? "never" : expires);
		}
	}
	json_decref(reply);
	return 0;
}

/* ferry token revoke NAME */
int
cli_token_revoke(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	const char *name = args->operands[0];
	struct api_client *client = NULL;
	json_t *reply = NULL;
	char path[200];
	int rc;

	if (args->operand_count != 1)
		return cli_usage_error(args);
	if (!util_volume_name_valid(name)) {
		fprintf(stderr, "ferry token revoke: '%s' is not a token name\n", name);
		return 2;
	}
	client = cli_client(options);
	snprintf(path, sizeof(path), "/v1/tokens/%s", name);
	rc = client ? api_client_json(client, "DELETE", path, NULL, &reply)
		    : ferry_error_last_code();
	api_client_free(client);
	if (rc < 0)
		return cli_fail(options, "token revoke");
	if (options->json) {
		json_dumpf(reply, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	} else {
		printf("token %s revoked\n", name);
	}
	json_decref(reply);
	return 0;
}

/* ferry audit [--since TIME] [--json] */
int
cli_audit(struct cli_args *args)
{
	const struct cli_options *options = &args->options;
	struct api_client *client = NULL;
	json_t *reply = NULL, *entry;
	int64_t since = 0;
	char path[100];
	size_t index;
	const char *since_text = cli_text(args, CLI_OPTION_SINCE);
	int status = 2;

	if (args->operand_count != 0) {
		fprintf(stderr, "usage: ferry audit [--since TIME] [--json]\n");
		goto out;
	}
	status = 1;
	if (since_text && cli_since_parse(since_text, &since) < 0) {
		status = cli_fail(options, "audit");
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/audit?since_ms=%lld", (long long)since);
	client = cli_client(options);
	if ((client ? api_client_json(client, "GET", path, NULL, &reply)
		    : ferry_error_last_code()) < 0) {
		status = cli_fail(options, "audit");
		goto out;
	}
	status = 0;
	if (options->json) {
		json_dumpf(reply, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		goto out;
	}
	json_array_foreach(json_object_get(reply, "entries"), index, entry) {
		char when[32];

		cli_time_text(json_integer_value(json_object_get(entry, "time_ms")), when,
			      sizeof(when));
		printf("%s %-16s %-8s %-15s %-6s %-40s %lld\n", when,
		       json_string_value(json_object_get(entry, "token")),
		       json_string_value(json_object_get(entry, "role")),
		       json_string_value(json_object_get(entry, "client")),
		       json_string_value(json_object_get(entry, "method")),
		       json_string_value(json_object_get(entry, "path")),
		       (long long)json_integer_value(json_object_get(entry, "status")));
	}
out:
	json_decref(reply);
	api_client_free(client);
	return status;
}
