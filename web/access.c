/* Who is asking and what they may do: the bearer token is parsed strictly and matched against
 * the bootstrap token (--token-file, admin) or the SHA-256 of a stored one; roles are checked
 * against the route table's column; a peer reaches only what it pushed; every mutating request
 * lands in the audit log. Also the /v1/tokens and /v1/audit routes. */
#include "web/web.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"

#include <gnutls/crypto.h>
#include <inttypes.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WEB_TOKEN_BYTES 32
/* A token's last use is written at most this often: a segment PUT must not cost a write. */
#define WEB_TOKEN_TOUCH_MS 60000

static const char *const web_role_names[] = {"none", "viewer", "operator", "admin", "peer"};

const char *
web_role_name(enum web_role role)
{
	return web_role_names[role];
}

static int
web_role_parse(const char *name, enum web_role *out)
{
	for (int role = WEB_ROLE_VIEWER; role <= WEB_ROLE_PEER; role++)
		if (name && strcmp(name, web_role_names[role]) == 0) {
			*out = (enum web_role)role;
			return 0;
		}
	return ferry_error_set(FERRY_ERR_INVALID,
			       "'role' must be viewer, operator, admin or peer, not '%.40s'",
			       name ? name : "");
}

void
web_token_hash(const char *token, char hash[65])
{
	unsigned char digest[32];

	gnutls_hash_fast(GNUTLS_DIG_SHA256, token, strlen(token), digest);
	for (int i = 0; i < 32; i++)
		snprintf(hash + 2 * i, 3, "%02x", digest[i]);
}

/* The token alphabet of RFC 6750 (b64token). */
bool
web_token_syntax(const char *token)
{
	size_t length = strlen(token);

	return length > 0 && length <= TOKEN_MAX &&
	       strspn(token, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/"
			     "=") == length;
}

/* MHD 0.9 ends a header value at its first NUL and says nothing: "Bearer T\0junk" reads as
 * "Bearer T". Its values lie in the request's read buffer, where a line's CR and LF both become
 * NUL, so the next header starts one byte (bare LF) or two (CRLF) after the value's end.
 * Anything between is what followed a NUL inside the line. Newer MHD reports the length. */
struct web_header_walk {
	const char *value;
	const char *next_key;
	bool seen;
};

static enum MHD_Result
web_header_next(void *closure, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct web_header_walk *walk = closure;

	(void)kind;
	if (walk->seen) {
		walk->next_key = key;
		return MHD_NO;
	}
	walk->seen = value == walk->value;
	return MHD_YES;
}

static bool
web_header_cut_at_nul(struct MHD_Connection *connection, const char *value)
{
	struct web_header_walk walk = {.value = value};
	const char *after = value + strlen(value) + 1;

	if (strncmp(MHD_get_version(), "0.9.", 4) != 0)
		return false;
	MHD_get_connection_values(connection, MHD_HEADER_KIND, web_header_next, &walk);
	if (walk.next_key == NULL)
		return *after != '\0';
	return walk.next_key != after && walk.next_key != after + 1;
}

/* The identity of a token's SHA-256 (hex): the bootstrap token's, or a stored one's. */
int
web_identify_hash(struct web_server *server, const char *hash, struct web_identity *out)
{
	struct catalog_token stored;
	int64_t now = util_now_ms();
	int rc;

	memset(out, 0, sizeof(out->name) + sizeof(out->role));
	snprintf(out->name, sizeof(out->name), "-");
	if (util_secret_equal(server->token_hash, hash)) {
		snprintf(out->name, sizeof(out->name), "bootstrap");
		out->role = WEB_ROLE_ADMIN;
		return 0;
	}
	rc = catalog_token_find(server->options.catalog, hash, &stored);
	if (rc == FERRY_ERR_NOT_FOUND)
		return ferry_error_set(FERRY_ERR_UNAUTHORIZED,
				       "wrong bearer token (revoked, or never issued here)");
	if (rc < 0)
		return ferry_error_set(FERRY_ERR_UNAUTHORIZED, "cannot check the token: %s",
				       ferry_error_message());
	if (stored.expires_ms > 0 && stored.expires_ms <= now)
		return ferry_error_set(FERRY_ERR_UNAUTHORIZED,
				       "token %s expired; an admin issues a new one (ferry token "
				       "create)",
				       stored.name);
	snprintf(out->name, sizeof(out->name), "%s", stored.name);
	if (web_role_parse(stored.role, &out->role) < 0)
		return ferry_error_set(FERRY_ERR_UNAUTHORIZED, "token %s has no known role",
				       stored.name);
	if (now - stored.last_used_ms > WEB_TOKEN_TOUCH_MS)
		catalog_token_touch(server->options.catalog, stored.name, now);
	return 0;
}

int
web_identify_token(struct web_server *server, const char *token, struct web_identity *out)
{
	char hash[65];

	if (!web_token_syntax(token))
		return ferry_error_set(FERRY_ERR_UNAUTHORIZED,
				       "wrong bearer token: it holds a byte outside the token "
				       "alphabet");
	web_token_hash(token, hash);
	return web_identify_hash(server, hash, out);
}

int
web_identify(struct web_server *server, struct MHD_Connection *connection, struct web_identity *out)
{
	const char *header = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_AUTHORIZATION);
	const char *token;
	size_t header_length = 0;

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "-");
	/* The console's browser carries a session cookie instead (web/session.c); one that no
	 * longer works says so, rather than asking for a bearer token. */
	if (header == NULL &&
	    MHD_lookup_connection_value(connection, MHD_COOKIE_KIND, "ferry_session") != NULL) {
		int rc = web_session_identify(server, connection, out);

		if (rc < 0 && !ferry_error_message()[0])
			rc = ferry_error_set(FERRY_ERR_UNAUTHORIZED,
					     "the console's session is not valid: log in again");
		return rc;
	}
	/* MHD hands the value up to a NUL: a header holding one is longer than what we see. */
	if (header)
		MHD_lookup_connection_value_n(
			connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION,
			strlen(MHD_HTTP_HEADER_AUTHORIZATION), NULL, &header_length);
	if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
		return ferry_error_set(FERRY_ERR_UNAUTHORIZED,
				       "missing bearer token; send 'Authorization: Bearer TOKEN' "
				       "(this daemon's --token-file, or a token from ferry token "
				       "create)");
	token = header + 7;
	while (*token == ' ')
		token++;
	if (header_length != strlen(header) || web_header_cut_at_nul(connection, header))
		return ferry_error_set(FERRY_ERR_UNAUTHORIZED,
				       "wrong bearer token: it holds a byte outside the token "
				       "alphabet");
	return web_identify_token(server, token, out);
}

bool
web_permitted(const struct web_identity *identity, enum web_access access)
{
	if (access == WEB_ACCESS_PUBLIC)
		return true;
	switch (identity->role) {
	case WEB_ROLE_ADMIN: return true;
	case WEB_ROLE_PEER: return access == WEB_ACCESS_PEER || access == WEB_ACCESS_VIEWER_OR_PEER;
	case WEB_ROLE_OPERATOR:
		return access == WEB_ACCESS_VIEWER || access == WEB_ACCESS_VIEWER_OR_PEER ||
		       access == WEB_ACCESS_OPERATOR;
	case WEB_ROLE_VIEWER:
		return access == WEB_ACCESS_VIEWER || access == WEB_ACCESS_VIEWER_OR_PEER;
	default: return false;
	}
}

int
web_peer_owns(struct web_route_context *route, const char *kind, const char *name, bool claim)
{
	const struct web_identity *identity = &route->request->identity;
	struct catalog *catalog = route->server->options.catalog;
	char owner[65];
	int rc;

	if (identity->role != WEB_ROLE_PEER)
		return 0;
	rc = catalog_owner_get(catalog, kind, name, owner, sizeof(owner));
	if (rc < 0)
		return rc;
	if (owner[0] && strcmp(owner, identity->name) != 0)
		return ferry_error_set(FERRY_ERR_FORBIDDEN,
				       "%s %s was pushed by another peer; token %s may change only "
				       "what it pushed",
				       kind, name, identity->name);
	if (owner[0] == '\0' && claim)
		rc = catalog_owner_set(catalog, kind, name, identity->name);
	return rc;
}

/* The audit entry of route's request, answered with status (0: not answered yet). */
static void
web_audit_fill(struct web_route_context *route, unsigned int status,
	       struct catalog_audit_entry *entry)
{
	const struct web_request *request = route->request;

	entry->time_ms = util_now_ms();
	entry->status = (int)status;
	snprintf(entry->token, sizeof(entry->token), "%s", request ? request->identity.name : "-");
	snprintf(entry->role, sizeof(entry->role), "%s",
		 web_role_name(request ? request->identity.role : WEB_ROLE_NONE));
	snprintf(entry->client, sizeof(entry->client), "%s", request ? request->client : "?");
	snprintf(entry->method, sizeof(entry->method), "%s", route->method);
	for (int i = 0; i < route->part_count; i++) {
		size_t used = strlen(entry->path);

		snprintf(entry->path + used, sizeof(entry->path) - used, "/%s", route->parts[i]);
	}
	if (route->part_count == 0)
		snprintf(entry->path, sizeof(entry->path), "?");
	snprintf(entry->object, sizeof(entry->object), "%s",
		 route->part_count >= 3 ? route->parts[2] : "");
	for (char *c = entry->path; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
}

void
web_audit_record(struct web_route_context *route, unsigned int status)
{
	/* Refusals may come in floods: a few a second per token and client address are kept (a
	 * flood from one does not hide another's), the rest dropped. */
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct {
		char key[140];
		int64_t second;
		unsigned count;
	} recent[32];
	struct catalog_audit_entry entry = {0};
	const struct web_request *request = route->request;
	int64_t now = util_now_ms();

	if (status == 401 || status == 403) {
		char key[sizeof(recent[0].key)];
		size_t slot = 0;
		bool keep;

		snprintf(key, sizeof(key), "%s %s", request ? request->identity.name : "-",
			 request ? request->client : "?");
		pthread_mutex_lock(&lock);
		for (size_t i = 0; i < sizeof(recent) / sizeof(recent[0]); i++) {
			if (strcmp(recent[i].key, key) == 0) {
				slot = i;
				break;
			}
			if (recent[i].second < recent[slot].second)
				slot = i; /* else the oldest is replaced */
		}
		if (strcmp(recent[slot].key, key) != 0 || recent[slot].second != now / 1000) {
			snprintf(recent[slot].key, sizeof(recent[slot].key), "%s", key);
			recent[slot].second = now / 1000;
			recent[slot].count = 0;
		}
		keep = ++recent[slot].count <= 5;
		pthread_mutex_unlock(&lock);
		if (!keep)
			return;
	}
	web_audit_fill(route, status, &entry);
	if (catalog_audit_add(route->server->options.catalog, &entry, NULL) < 0)
		log_warn("cannot record %s %s in the audit log: %s", entry.method, entry.path,
			 ferry_error_message());
}

int
web_audit_begin(struct web_route_context *route, int64_t *id)
{
	struct catalog_audit_entry entry = {0};
	int rc;

	web_audit_fill(route, 0, &entry);
	rc = catalog_audit_add(route->server->options.catalog, &entry, id);
#ifdef FERRY_FAULT_INJECTION
	/* Test hook: FERRY_FAULT_AUDIT_FAIL=1 makes the write fail, as a full disk would. */
	if (rc == 0 && getenv("FERRY_FAULT_AUDIT_FAIL"))
		rc = ferry_error_set(FERRY_ERR_NO_SPACE, "FERRY_FAULT_AUDIT_FAIL: no space left");
#endif
	if (rc < 0) {
		char cause[512];

		snprintf(cause, sizeof(cause), "%s", ferry_error_message());
		rc = ferry_error_set(rc,
				     "%s %s was not carried out: the audit log cannot record it "
				     "(%s); see ferryd's log, free space in its state folder, "
				     "then try again",
				     entry.method, entry.path, cause);
	}
	return rc;
}

void
web_audit_finish(struct web_route_context *route, int64_t id, unsigned int status)
{
	if (catalog_audit_finish(route->server->options.catalog, id, (int)status) < 0)
		log_warn("cannot record the answer (HTTP %u) of audit entry %" PRId64 ": %s",
			 status, id, ferry_error_message());
}

/* ---- /v1/tokens ---- */

enum MHD_Result
web_token_create(struct web_route_context *route)
{
	struct catalog_token token = {0};
	unsigned char secret[WEB_TOKEN_BYTES];
	char text[2 * WEB_TOKEN_BYTES + 1];
	const char *name, *role_name;
	enum web_role role = WEB_ROLE_NONE;
	json_t *body, *expires;
	int code = 0;

	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	name = json_string_value(json_object_get(body, "name"));
	role_name = json_string_value(json_object_get(body, "role"));
	expires = json_object_get(body, "expires_days");
	if (code == 0 &&
	    (!util_volume_name_valid(name) || strlen(name) > 64 || strcmp(name, "bootstrap") == 0))
		code = ferry_error_set(FERRY_ERR_INVALID,
				       "'name' must be 1 to 64 letters, digits, '.', '_' or '-' "
				       "(and not 'bootstrap')");
	if (code == 0 && web_role_parse(role_name, &role) < 0)
		code = FERRY_ERR_INVALID;
	if (code == 0 && expires && !json_is_null(expires) &&
	    (!json_is_integer(expires) || json_integer_value(expires) < 1 ||
	     json_integer_value(expires) > 3650))
		code = ferry_error_set(FERRY_ERR_INVALID,
				       "'expires_days' must be a whole number of days, 1 to 3650");
	if (code < 0) {
		json_decref(body);
		return web_reply_last_error(route->connection, code);
	}
	if (gnutls_rnd(GNUTLS_RND_KEY, secret, sizeof(secret)) < 0) {
		json_decref(body);
		return web_reply_error(route->connection, FERRY_ERR_INTERNAL,
				       "cannot draw random bytes for a token");
	}
	for (size_t i = 0; i < sizeof(secret); i++)
		snprintf(text + 2 * i, 3, "%02x", secret[i]);
	snprintf(token.name, sizeof(token.name), "%s", name);
	snprintf(token.role, sizeof(token.role), "%s", web_role_name(role));
	web_token_hash(text, token.hash);
	token.created_ms = util_now_ms();
	if (expires && json_is_integer(expires))
		token.expires_ms = token.created_ms + json_integer_value(expires) * 86400000LL;
	json_decref(body);
	code = catalog_token_add(route->server->options.catalog, &token);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	catalog_event_add(route->server->options.catalog, "info", token.name,
			  "token created with the role %s by %s", token.role,
			  route->request->identity.name);
	/* The secret leaves once, here; only its hash is kept. */
	return web_reply_json(route->connection, MHD_HTTP_CREATED,
			      json_pack("{s:s, s:s, s:s, s:I}", "name", token.name, "role",
					token.role, "token", text, "expires_ms",
					(json_int_t)token.expires_ms));
}

static int
web_token_entry(const struct catalog_token *token, void *context)
{
	return json_array_append_new(
		       context, json_pack("{s:s, s:s, s:I, s:I, s:I}", "name", token->name, "role",
					  token->role, "created_ms", (json_int_t)token->created_ms,
					  "last_used_ms", (json_int_t)token->last_used_ms,
					  "expires_ms", (json_int_t)token->expires_ms)) == 0
		       ? 0
		       : ferry_error_no_memory();
}

enum MHD_Result
web_token_list(struct web_route_context *route)
{
	json_t *tokens = json_array();
	int code = catalog_token_list(route->server->options.catalog, web_token_entry, tokens);

	if (code < 0) {
		json_decref(tokens);
		return web_reply_last_error(route->connection, code);
	}
	return web_reply_json(route->connection, MHD_HTTP_OK, json_pack("{s:o}", "tokens", tokens));
}

enum MHD_Result
web_token_revoke(struct web_route_context *route)
{
	int code = catalog_token_revoke(route->server->options.catalog, route->parts[2]);

	if (code < 0)
		return web_reply_last_error(route->connection, code);
	catalog_event_add(route->server->options.catalog, "info", route->parts[2],
			  "token revoked by %s", route->request->identity.name);
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:s, s:b}", "name", route->parts[2], "revoked", 1));
}

/* ---- /v1/audit ---- */

static int
web_audit_entry(const struct catalog_audit_entry *entry, void *context)
{
	return json_array_append_new(
		       context, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "time_ms",
					  (json_int_t)entry->time_ms, "token", entry->token, "role",
					  entry->role, "client", entry->client, "method",
					  entry->method, "path", entry->path, "object",
					  entry->object, "status", entry->status)) == 0
		       ? 0
		       : ferry_error_no_memory();
}

enum MHD_Result
web_audit_list(struct web_route_context *route)
{
	const char *since_text =
		MHD_lookup_connection_value(route->connection, MHD_GET_ARGUMENT_KIND, "since_ms");
	const char *limit_text =
		MHD_lookup_connection_value(route->connection, MHD_GET_ARGUMENT_KIND, "limit");
	int64_t since = 0, limit = 1000;
	json_t *entries;
	int code;

	if ((since_text && util_parse_int64(since_text, 0, INT64_MAX, &since) < 0) ||
	    (limit_text && util_parse_int64(limit_text, 1, 100000, &limit) < 0))
		return web_reply_error(route->connection, FERRY_ERR_INVALID,
				       "'since_ms' must be a time in ms since 1970 and 'limit' 1 "
				       "to 100000");
	entries = json_array();
	code = catalog_audit_list(route->server->options.catalog, since, (int)limit,
				  web_audit_entry, entries);
	if (code < 0) {
		json_decref(entries);
		return web_reply_last_error(route->connection, code);
	}
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:o}", "entries", entries));
}
