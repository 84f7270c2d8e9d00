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

static int
cli_token_create(struct cli_options *options, const char *name)
{
	struct api_client *client = cli_client(options);
	json_t *request = json_pack("{s:s, s:s}", "name", name, "role", options->role),
	       *reply = NULL;
	int rc;

	if (options->expires_days)
		json_object_set_new(request, "expires_days", json_integer(options->expires_days));
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
			name, options->role);
	}
	json_decref(reply);
	return 0;
}

static int
cli_token_list(struct cli_options *options)
{
	struct api_client *client = cli_client(options);
	json_t *reply = NULL, *token;
	size_t index;
	int rc;

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
		json_array_foreach(json_object_get(reply, "tokens"), index, token)
		{
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

static int
cli_token_revoke(struct cli_options *options, const char *name)
{
	struct api_client *client = cli_client(options);
	json_t *reply = NULL;
	char path[200];
	int rc;

	if (!util_volume_name_valid(name)) {
		fprintf(stderr, "ferry token revoke: '%s' is not a token name\n", name);
		api_client_free(client);
		return 2;
	}
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

/* ferry token create NAME --role ROLE [--expires DAYS]; token list; token revoke NAME */
int
cli_token(int argc, char **argv)
{
	struct cli_options options = {0};
	int first = cli_parse(argc, argv, &options), status = 2;
	int operands = argc - first;

	if (first < 0)
		return 2;
	if (operands == 2 && strcmp(argv[first], "create") == 0 && options.role)
		status = cli_token_create(&options, argv[first + 1]);
	else if (operands == 1 && strcmp(argv[first], "list") == 0)
		status = cli_token_list(&options);
	else if (operands == 2 && strcmp(argv[first], "revoke") == 0)
		status = cli_token_revoke(&options, argv[first + 1]);
	else
		fprintf(stderr, "usage: ferry token create NAME --role viewer|operator|admin|peer "
				"[--expires DAYS] [--json]\n"
				"       ferry token list [--json]\n"
				"       ferry token revoke NAME\n");
	free(options.token);
	return status;
}

/* ferry audit [--since TIME] [--json] */
int
cli_audit(int argc, char **argv)
{
	struct cli_options options = {0};
	struct api_client *client = NULL;
	json_t *reply = NULL, *entry;
	int64_t since = 0;
	char path[100];
	size_t index;
	int first = cli_parse(argc, argv, &options), status = 2;

	if (first < 0)
		return 2;
	if (first != argc) {
		fprintf(stderr, "usage: ferry audit [--since TIME] [--json]\n");
		goto out;
	}
	status = 1;
	if (options.since && cli_since_parse(options.since, &since) < 0) {
		status = cli_fail(&options, "audit");
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/audit?since_ms=%lld", (long long)since);
	client = cli_client(&options);
	if ((client ? api_client_json(client, "GET", path, NULL, &reply)
		    : ferry_error_last_code()) < 0) {
		status = cli_fail(&options, "audit");
		goto out;
	}
	status = 0;
	if (options.json) {
		json_dumpf(reply, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		goto out;
	}
	json_array_foreach(json_object_get(reply, "entries"), index, entry)
	{
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
	free(options.token);
	return status;
}
