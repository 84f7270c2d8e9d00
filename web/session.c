/* The console's sessions: a token given once at login (POST /v1/session) becomes an HttpOnly,
 * Secure, SameSite=Strict cookie that expires; the browser never keeps the token. A mutating
 * request made with the cookie must also carry the session's X-CSRF-Token, which a page of
 * another origin cannot read. Log out ends the session here, not only in the browser. Sessions
 * live in memory: a restart of ferryd logs everyone out. */
#include "web/web.h"
#include "common/error.h"
#include "common/util.h"

#include <gnutls/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define WEB_SESSIONS_MAX   256
#define WEB_SESSION_TTL_MS (12 * 3600 * 1000LL)

static struct web_session {
	char id[65];
	char csrf[65];
	char token_hash[65]; /* checked again at every request: a revoked token ends it */
	int64_t expires_ms;
} web_sessions[WEB_SESSIONS_MAX];
static pthread_mutex_t web_session_lock = PTHREAD_MUTEX_INITIALIZER;

static int
web_random_hex(char out[65])
{
	unsigned char bytes[32];

	if (gnutls_rnd(GNUTLS_RND_KEY, bytes, sizeof(bytes)) < 0)
		return ferry_error_set(FERRY_ERR_INTERNAL, "no random bytes for a session");
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", bytes[i]);
	return 0;
}

/* The session of id (its slot, locked by the caller), or NULL. Expired ones are freed. */
static struct web_session *
web_session_find(const char *id, int64_t now)
{
	for (int i = 0; i < WEB_SESSIONS_MAX; i++) {
		struct web_session *session = &web_sessions[i];

		if (session->id[0] && session->expires_ms <= now)
			memset(session, 0, sizeof(*session));
		if (session->id[0] && util_secret_equal(session->id, id))
			return session;
	}
	return NULL;
}

int
web_session_identify(struct web_server *server, struct MHD_Connection *connection,
		     struct web_identity *out)
{
	const char *cookie =
		MHD_lookup_connection_value(connection, MHD_COOKIE_KIND, "ferry_session");
	struct web_session copy = {0}, *session;

	ferry_error_clear();
	if (cookie == NULL || strlen(cookie) != 64 || !web_token_syntax(cookie))
		return ferry_error_set(FERRY_ERR_UNAUTHORIZED,
				       "the console's session cookie is malformed: log in again");
	pthread_mutex_lock(&web_session_lock);
	session = web_session_find(cookie, util_now_ms());
	if (session)
		copy = *session;
	pthread_mutex_unlock(&web_session_lock);
	if (copy.id[0] == '\0')
		return ferry_error_set(FERRY_ERR_UNAUTHORIZED,
				       "the console's session has ended (logged out, expired or "
				       "ferryd restarted): log in again");
	if (web_identify_hash(server, copy.token_hash, out) < 0)
		return ferry_error_set(FERRY_ERR_UNAUTHORIZED,
				       "the token this session logged in with is no longer valid "
				       "(revoked or expired): log in with another");
	out->via_session = true;
	snprintf(out->csrf, sizeof(out->csrf), "%s", copy.csrf);
	snprintf(out->session, sizeof(out->session), "%s", copy.id);
	return 0;
}

bool
web_session_csrf_ok(struct MHD_Connection *connection, const struct web_identity *identity)
{
	const char *given =
		MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-CSRF-Token");

	return !identity->via_session || (given && util_secret_equal(given, identity->csrf));
}

static json_t *
web_session_json(const struct web_identity *identity, int64_t expires_ms)
{
	return json_pack("{s:s, s:s, s:s?, s:I}", "name", identity->name, "role",
			 web_role_name(identity->role), "csrf",
			 identity->via_session ? identity->csrf : NULL, "expires_ms",
			 (json_int_t)expires_ms);
}

enum MHD_Result
web_session_create(struct web_route_context *route)
{
	struct web_identity identity;
	struct web_session *slot = NULL;
	struct MHD_Response *response;
	char cookie[200], hash[65];
	const char *token;
	json_t *body;
	int64_t now = util_now_ms();
	int code = 0;

	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	token = json_string_value(json_object_get(body, "token"));
	code = token ? web_identify_token(route->server, token, &identity)
		     : ferry_error_set(FERRY_ERR_INVALID, "give the API 'token' to log in with");
	if (code == FERRY_ERR_UNAUTHORIZED)
		code = ferry_error_set(FERRY_ERR_UNAUTHORIZED,
				       "this token is not valid here (revoked, expired, or never "
				       "issued by this ferryd): an admin gives you one with ferry "
				       "token create");
	if (code == 0 && identity.role == WEB_ROLE_PEER)
		code = ferry_error_set(FERRY_ERR_FORBIDDEN,
				       "token %s is a peer's: it pushes replicas and cannot log "
				       "in to the console; use a viewer, operator or admin token",
				       identity.name);
	if (code == 0)
		web_token_hash(token, hash);
	json_decref(body);
	if (code == 0) {
		pthread_mutex_lock(&web_session_lock);
		web_session_find("", now); /* frees the expired */
		for (int i = 0; i < WEB_SESSIONS_MAX && slot == NULL; i++)
			if (web_sessions[i].id[0] == '\0')
				slot = &web_sessions[i];
		if (slot && web_random_hex(slot->id) == 0 && web_random_hex(slot->csrf) == 0) {
			snprintf(slot->token_hash, sizeof(slot->token_hash), "%s", hash);
			slot->expires_ms = now + WEB_SESSION_TTL_MS;
			identity.via_session = true;
			snprintf(identity.csrf, sizeof(identity.csrf), "%s", slot->csrf);
			snprintf(cookie, sizeof(cookie),
				 "ferry_session=%s; Path=/; Max-Age=%lld; HttpOnly; Secure; "
				 "SameSite=Strict",
				 slot->id, WEB_SESSION_TTL_MS / 1000);
		} else {
			if (slot)
				memset(slot, 0, sizeof(*slot));
			code = ferry_error_set(FERRY_ERR_NO_MEMORY,
					       "%d console sessions are open: log one out, or wait "
					       "for one to expire",
					       WEB_SESSIONS_MAX);
		}
		pthread_mutex_unlock(&web_session_lock);
	}
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	snprintf(route->request->identity.name, sizeof(route->request->identity.name), "%s",
		 identity.name);
	route->request->identity.role = identity.role;
	response = web_response_json(web_session_json(&identity, now + WEB_SESSION_TTL_MS));
	if (response) {
		MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, cookie);
		MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	}
	return web_reply_response(route->connection, MHD_HTTP_OK, response);
}

enum MHD_Result
web_session_show(struct web_route_context *route)
{
	struct web_identity *identity = &route->request->identity;
	int64_t expires = 0;

	if (identity->via_session) {
		struct web_session *session;

		pthread_mutex_lock(&web_session_lock);
		session = web_session_find(identity->session, util_now_ms());
		expires = session ? session->expires_ms : 0;
		pthread_mutex_unlock(&web_session_lock);
	}
	return web_reply_json(route->connection, MHD_HTTP_OK, web_session_json(identity, expires));
}

enum MHD_Result
web_session_end(struct web_route_context *route)
{
	struct web_identity *identity = &route->request->identity;
	struct MHD_Response *response;

	if (identity->via_session) {
		struct web_session *session;

		pthread_mutex_lock(&web_session_lock);
		session = web_session_find(identity->session, util_now_ms());
		if (session)
			memset(session, 0, sizeof(*session));
		pthread_mutex_unlock(&web_session_lock);
	}
	response = web_response_json(json_pack("{s:b}", "ended", 1));
	if (response)
		MHD_add_response_header(
			response, MHD_HTTP_HEADER_SET_COOKIE,
			"ferry_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
	return web_reply_response(route->connection, MHD_HTTP_OK, response);
}
