/* The HTTPS server (libmicrohttpd, one thread per connection so a segment's blocking fsync
 * never stalls other requests) and the /v1 routes.
 *
 * Every request is authenticated before its body is read; bodies are collected up to a
 * ceiling chosen by route (JSON 64 KiB, segments the worst-case size of the largest segment),
 * then dispatched. Errors leave through web_reply_error(), the one place that maps ferry error
 * codes to HTTP statuses. */
#include "web/web.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define WEB_JSON_BODY_MAX (64u << 10)

/* The status of the reply queued last on this thread (one thread per connection), for the
 * audit log. */
static _Thread_local unsigned int web_reply_status;

static const struct {
	int code;
	unsigned int status;
} web_status_table[] = {
	{FERRY_ERR_INVALID, MHD_HTTP_BAD_REQUEST},
	{FERRY_ERR_METHOD, MHD_HTTP_METHOD_NOT_ALLOWED},
	{FERRY_ERR_UNAUTHORIZED, MHD_HTTP_UNAUTHORIZED},
	{FERRY_ERR_FORBIDDEN, MHD_HTTP_FORBIDDEN},
	{FERRY_ERR_NOT_FOUND, MHD_HTTP_NOT_FOUND},
	{FERRY_ERR_CONFLICT, MHD_HTTP_CONFLICT},
	{FERRY_ERR_TOO_LARGE, MHD_HTTP_CONTENT_TOO_LARGE},
	{FERRY_ERR_CHECKSUM, MHD_HTTP_UNPROCESSABLE_CONTENT},
	{FERRY_ERR_NO_SPACE, MHD_HTTP_INSUFFICIENT_STORAGE},
	{FERRY_ERR_NO_MEMORY, MHD_HTTP_SERVICE_UNAVAILABLE},
	{FERRY_ERR_IO, MHD_HTTP_INTERNAL_SERVER_ERROR},
	{FERRY_ERR_INTERNAL, MHD_HTTP_INTERNAL_SERVER_ERROR},
};

struct MHD_Response *
web_response_json(json_t *document)
{
	char *text = json_dumps(document, JSON_COMPACT);
	struct MHD_Response *response;

	json_decref(document);
	if (text == NULL)
		return NULL;
	response = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (response == NULL) {
		free(text);
		return NULL;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	return response;
}

enum MHD_Result
web_reply_response(struct MHD_Connection *connection, unsigned int status,
		   struct MHD_Response *response)
{
	enum MHD_Result result;

	if (response == NULL)
		return MHD_NO;
	web_reply_status = status;
	result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
}

enum MHD_Result
web_reply_json(struct MHD_Connection *connection, unsigned int status, json_t *document)
{
	struct MHD_Response *response = web_response_json(document);

	if (response && status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"ferryd\"");
	return web_reply_response(connection, status, response);
}

enum MHD_Result
web_reply_text(struct MHD_Connection *connection, unsigned int status, const char *content_type,
	       char *text, size_t length)
{
	struct MHD_Response *response =
		MHD_create_response_from_buffer(length, text, MHD_RESPMEM_MUST_FREE);

	if (response == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	return web_reply_response(connection, status, response);
}

unsigned int
web_last_status(void)
{
	return web_reply_status;
}

static void web_client_address(struct MHD_Connection *connection, char *out, size_t size);

enum MHD_Result
web_reply_error(struct MHD_Connection *connection, int code, const char *format, ...)
{
	unsigned int status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	char message[1200];
	va_list args;

	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	for (size_t i = 0; i < sizeof(web_status_table) / sizeof(web_status_table[0]); i++)
		if (web_status_table[i].code == code)
			status = web_status_table[i].status;
	/* Every refusal is logged: an operator reading ferryd's log must see what it turned away.
	 */
	{
		char client[64];

		web_client_address(connection, client, sizeof(client));
		if (status >= 500)
			log_error("%s (request from %s)", message, client);
		else
			log_warn("refused %s (HTTP %u): %s", client, status, message);
	}
	return web_reply_json(connection, status,
			      json_pack("{s:{s:s, s:s}}", "error", "code", ferry_error_name(code),
					"message", message));
}

/* Replies with the error recorded on this thread by the layer that detected it. */
enum MHD_Result
web_reply_last_error(struct MHD_Connection *connection, int code)
{
	return web_reply_error(connection, code, "%s",
			       ferry_error_message()[0] ? ferry_error_message()
							: ferry_error_name(code));
}

/* ---- handlers ---- */

json_t *
web_parse_json_body(struct web_route_context *route, int *code)
{
	json_error_t error;
	json_t *body;

	body = json_loadb(route->request->body ? route->request->body : "", route->request->length,
			  0, &error);
	if (body == NULL || !json_is_object(body)) {
		json_decref(body);
		*code = ferry_error_set(FERRY_ERR_INVALID, "request body is not a JSON object: %s",
					body ? "wrong type" : error.text);
		return NULL;
	}
	if (route->keys && (*code = web_unknown_keys(body, route->keys)) < 0) {
		json_decref(body);
		return NULL;
	}
	return body;
}

/* FERRY_ERR_INVALID naming the first key of body that is not in allowed (NULL-terminated). */
int
web_unknown_keys(json_t *body, const char *const *allowed)
{
	const char *key;
	json_t *value;

	json_object_foreach(body, key, value) {
		bool known = false;

		(void)value;
		for (int i = 0; allowed[i] && !known; i++)
			known = strcmp(key, allowed[i]) == 0;
		if (!known)
			return ferry_error_set(FERRY_ERR_INVALID,
					       "unknown key '%.64s' in the request", key);
	}
	return 0;
}

/* The keys each JSON body may hold: a misspelt or unknown one is a 400 naming it, never
 * silently ignored (routes whose bodies are whole records of the other site are not listed). */
static const char *const web_keys_transfer[] = {"size",	    "segment_size",  "source_identity",
						"kind",	    "restart",	     "snapshot",
						"segments", "base_identity", NULL};
static const char *const web_keys_commit[] = {"transfer_id", "digest", NULL};
static const char *const web_keys_verify[] = {"segment_size", NULL};
static const char *const web_keys_prune[] = {"keep_from", "also_keep", NULL};
static const char *const web_keys_site[] = {"name", "url", "token", "cacert_pem", "replace", NULL};
static const char *const web_keys_group[] = {"name", "interval", "keep", "rpo", NULL};
static const char *const web_keys_group_set[] = {"interval", "keep", "rpo", NULL};
static const char *const web_keys_protect[] = {"source", "group", "site", "replica", NULL};
static const char *const web_keys_unprotect[] = {"source", NULL};
static const char *const web_keys_vm[] = {"name",  "uri",   "dest_uri",	   "group", "site",
					  "order", "delay", "network_map", NULL};
static const char *const web_keys_remap[] = {"name", "xml", "persistent_xml", NULL};
static const char *const web_keys_promote[] = {"name", "run", "point", NULL};
static const char *const web_keys_activate[] = {"kind", "vm", "point", NULL};
static const char *const web_keys_token[] = {"name", "role", "expires_days", NULL};
static const char *const web_keys_session[] = {"token", NULL};
static const char *const web_keys_name[] = {"name", NULL};
static const char *const web_keys_vm_record[] = {"name",  "uri",   "dest_uri", "group",
						 "site",  "order", "delay",    "network_map",
						 "disks", "xml",   NULL};
static const char *const web_keys_reprotect[] = {"group", "disks", "records", NULL};
static const char *const web_keys_run[] = {
	"kind",	 "vm",	     "group",	"site",	     "point",	   "shutdown_timeout",
	"force", "max_time", "dry_run", "bandwidth", "on_timeout", "max_lag",
	NULL};

/* One row per route: method, path pattern ("*" is one variable part), handler, whether the body
 * is a segment, and the role it needs (WEB_ACCESS_PEER routes are the site-to-site ones; a peer
 * reaches only the volumes (parts[2]) and VM records it pushed). A test walks this table
 * (ferryd --print-routes). */
static const struct web_route web_routes[] = {
	/* clang-format off */
	{"GET", {"v1", "health"}, 2, web_health, false, WEB_ACCESS_VIEWER_OR_PEER, NULL},
	{"GET", {"v1", "volumes"}, 2, web_volume_list, false, WEB_ACCESS_VIEWER, NULL},
	{"GET", {"v1", "volumes", "*"}, 3, web_volume_show, false, WEB_ACCESS_VIEWER_OR_PEER, NULL},
	{"POST", {"v1", "volumes", "*", "transfer"}, 4, web_transfer_begin, false, WEB_ACCESS_PEER, web_keys_transfer},
	{"PUT", {"v1", "volumes", "*", "segments", "*"}, 5, web_segment_put, true, WEB_ACCESS_PEER, NULL},
	{"POST", {"v1", "volumes", "*", "commit"}, 4, web_transfer_commit, false, WEB_ACCESS_PEER, web_keys_commit},
	{"POST", {"v1", "volumes", "*", "verify"}, 4, web_volume_verify, false, WEB_ACCESS_VIEWER_OR_PEER, web_keys_verify},
	{"GET", {"v1", "transfers"}, 2, web_transfer_list, false, WEB_ACCESS_VIEWER, NULL},
	{"GET", {"v1", "events"}, 2, web_event_list, false, WEB_ACCESS_VIEWER, NULL},
	{"GET", {"v1", "events", "stream"}, 3, web_event_stream, false, WEB_ACCESS_VIEWER, NULL},
	{"POST", {"v1", "sites"}, 2, web_site_add, false, WEB_ACCESS_ADMIN, web_keys_site},
	{"GET", {"v1", "sites"}, 2, web_site_list, false, WEB_ACCESS_VIEWER, NULL},
	{"DELETE", {"v1", "sites", "*"}, 3, web_site_remove, false, WEB_ACCESS_ADMIN, NULL},
	{"GET", {"v1", "groups"}, 2, web_group_list, false, WEB_ACCESS_VIEWER, NULL},
	{"POST", {"v1", "groups"}, 2, web_group_create, false, WEB_ACCESS_ADMIN, web_keys_group},
	{"POST", {"v1", "groups", "*"}, 3, web_group_set, false, WEB_ACCESS_ADMIN, web_keys_group_set},
	{"DELETE", {"v1", "groups", "*"}, 3, web_group_delete, false, WEB_ACCESS_ADMIN, NULL},
	{"POST", {"v1", "groups", "*", "sync"}, 4, web_group_sync, false, WEB_ACCESS_OPERATOR, NULL},
	{"POST", {"v1", "groups", "*", "pause"}, 4, web_group_pause, false, WEB_ACCESS_OPERATOR, NULL},
	{"POST", {"v1", "groups", "*", "resume"}, 4, web_group_resume, false, WEB_ACCESS_OPERATOR, NULL},
	{"GET", {"metrics"}, 1, web_metrics, false, WEB_ACCESS_VIEWER, NULL},
	{"POST", {"v1", "protections"}, 2, web_protect, false, WEB_ACCESS_OPERATOR, web_keys_protect},
	{"POST", {"v1", "protections", "remove"}, 3, web_unprotect, false, WEB_ACCESS_OPERATOR, web_keys_unprotect},
	{"POST", {"v1", "volumes", "*", "prune"}, 4, web_volume_prune, false, WEB_ACCESS_PEER, web_keys_prune},
	{"GET", {"v1", "vms"}, 2, web_vm_list, false, WEB_ACCESS_VIEWER, NULL},
	{"POST", {"v1", "vms"}, 2, web_vm_protect, false, WEB_ACCESS_OPERATOR, web_keys_vm},
	{"POST", {"v1", "vms", "remove"}, 3, web_vm_unprotect, false, WEB_ACCESS_OPERATOR, web_keys_name},
	{"POST", {"v1", "vms", "forget"}, 3, web_vm_forget, false, WEB_ACCESS_PEER, web_keys_name},
	{"POST", {"v1", "vms", "receive"}, 3, web_vm_receive, false, WEB_ACCESS_PEER, web_keys_vm_record},
	{"POST", {"v1", "vms", "remap"}, 3, web_vm_remap, false, WEB_ACCESS_PEER, web_keys_remap},
	{"POST", {"v1", "reprotect", "prepare"}, 3, web_reprotect_prepare, false, WEB_ACCESS_PEER, web_keys_reprotect},
	{"POST", {"v1", "vms", "promote"}, 3, web_vm_promote, false, WEB_ACCESS_PEER, web_keys_promote},
	{"POST", {"v1", "vms", "activate"}, 3, web_vm_activate, false, WEB_ACCESS_PEER, web_keys_activate},
	{"GET", {"v1", "runs"}, 2, web_run_list, false, WEB_ACCESS_VIEWER, NULL},
	/* operator; a failover, reprotect or activation asks for admin (web_run_start) */
	{"POST", {"v1", "runs"}, 2, web_run_start, false, WEB_ACCESS_OPERATOR, web_keys_run},
	/* a peer: only the activations it asked for (web_run_show) */
	{"GET", {"v1", "runs", "*"}, 3, web_run_show, false, WEB_ACCESS_VIEWER_OR_PEER, NULL},
	{"POST", {"v1", "runs", "*", "resume"}, 4, web_run_resume, false, WEB_ACCESS_OPERATOR, NULL},
	{"POST", {"v1", "runs", "*", "rollback"}, 4, web_run_rollback, false, WEB_ACCESS_ADMIN, NULL},
	{"POST", {"v1", "runs", "*", "abort"}, 4, web_run_abort, false, WEB_ACCESS_OPERATOR, NULL},
	{"POST", {"v1", "tokens"}, 2, web_token_create, false, WEB_ACCESS_ADMIN, web_keys_token},
	{"GET", {"v1", "tokens"}, 2, web_token_list, false, WEB_ACCESS_ADMIN, NULL},
	{"DELETE", {"v1", "tokens", "*"}, 3, web_token_revoke, false, WEB_ACCESS_ADMIN, NULL},
	{"GET", {"v1", "audit"}, 2, web_audit_list, false, WEB_ACCESS_ADMIN, NULL},
	{"GET", {"v1", "openapi.json"}, 2, web_openapi, false, WEB_ACCESS_VIEWER, NULL},
	{"GET", {NULL}, 0, web_console_index, false, WEB_ACCESS_PUBLIC, NULL},
	{"GET", {"console", "*"}, 2, web_console_file, false, WEB_ACCESS_PUBLIC, NULL},
	{"POST", {"v1", "session"}, 2, web_session_create, false, WEB_ACCESS_PUBLIC, web_keys_session},
	{"GET", {"v1", "session"}, 2, web_session_show, false, WEB_ACCESS_VIEWER, NULL},
	{"DELETE", {"v1", "session"}, 2, web_session_end, false, WEB_ACCESS_VIEWER, NULL},
	/* clang-format on */
};

const struct web_route *
web_route_table(size_t *count)
{
	*count = sizeof(web_routes) / sizeof(web_routes[0]);
	return web_routes;
}

const char *const web_access_names[] = {"viewer", "operator",	    "admin",
					"peer",	  "viewer-or-peer", "public"};

void
web_route_format(const struct web_route *route, char *out, size_t size)
{
	size_t used = (size_t)snprintf(out, size, "%s %s", route->method, route->parts ? "" : "/");

	for (int part = 0; part < route->parts && used < size; part++)
		used += (size_t)snprintf(out + used, size - used, "/%s", route->pattern[part]);
}

void
web_routes_print(FILE *out)
{
	for (size_t i = 0; i < sizeof(web_routes) / sizeof(web_routes[0]); i++) {
		char route[160];

		web_route_format(&web_routes[i], route, sizeof(route));
		fprintf(out, "%s %s\n", route, web_access_names[web_routes[i].access]);
	}
}

/* Splits url into parts (in place in buffer); false when it has too many or empty parts. */
static bool
web_split_path(const char *url, char *buffer, size_t size, const char **parts, int *count)
{
	char *cursor, *saved;

	if (strlen(url) >= size || url[0] != '/')
		return false;
	memcpy(buffer, url + 1, strlen(url));
	*count = 0;
	if (url[1] == '\0') /* "/": the console */
		return true;
	/* An empty part ("a//b", a trailing '/') is refused rather than skipped, so that one
	 * resource has one spelling. */
	for (cursor = buffer;; cursor = saved + 1) {
		saved = strchr(cursor, '/');
		if (saved)
			*saved = '\0';
		if (*cursor == '\0' || *count == WEB_PATH_PARTS)
			return false;
		parts[(*count)++] = cursor;
		if (saved == NULL)
			return true;
	}
}

static const struct web_route *
web_find_route(const char **parts, int count, const char *method, bool *path_known)
{
	*path_known = false;
	for (size_t i = 0; i < sizeof(web_routes) / sizeof(web_routes[0]); i++) {
		const struct web_route *route = &web_routes[i];
		bool match = route->parts == count;

		for (int p = 0; match && p < count; p++)
			if (strcmp(route->pattern[p], "*") != 0 &&
			    strcmp(route->pattern[p], parts[p]))
				match = false;
		if (!match)
			continue;
		*path_known = true;
		if (strcmp(route->method, method) == 0)
			return route;
	}
	return NULL;
}

static void
web_client_address(struct MHD_Connection *connection, char *out, size_t size)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *address = info ? info->client_addr : NULL;

	snprintf(out, size, "?");
	if (address && address->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)address)->sin_addr, out,
			  (socklen_t)size);
	else if (address && address->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)address)->sin6_addr, out,
			  (socklen_t)size);
}

/* True (with the reason recorded) when the caller's role may not use the route, or a peer
 * asks for a volume it did not push. */
static bool
web_route_refused(struct web_route_context *route, const struct web_route *found)
{
	const struct web_identity *identity = &route->request->identity;

	if (!web_permitted(identity, found->access)) {
		ferry_error_set(FERRY_ERR_FORBIDDEN,
				"%s /%s/%s... needs the role %s; token %s has the role %s (an "
				"admin creates tokens: ferry token create NAME --role ROLE)",
				found->method, found->pattern[0], found->pattern[1],
				web_access_names[found->access], identity->name,
				web_role_name(identity->role));
		return true;
	}
	if (identity->role == WEB_ROLE_PEER && found->parts >= 3 &&
	    strcmp(found->pattern[1], "volumes") == 0 && strcmp(found->pattern[2], "*") == 0)
		return web_peer_owns(route, "volume", route->parts[2], false) < 0;
	return false;
}

static enum MHD_Result
web_access(void *context, struct MHD_Connection *connection, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_data_size,
	   void **connection_context)
{
	struct web_server *server = context;
	struct web_request *request = *connection_context;
	struct web_route_context route = {server, connection, method, {0}, 0, request, NULL};
	const struct web_route *found;
	char path[1024];
	bool path_known;

	(void)version;
	if (request == NULL) {
		const char *length_text;
		uint64_t length = 0;

		request = calloc(1, sizeof(*request));
		if (request == NULL)
			return MHD_NO;
		*connection_context = request;
		web_deadline_request_begun(server->deadline, connection);
		route.request = request;
		web_client_address(connection, request->client, sizeof(request->client));
		/* Who, then whether this role may use this route, before any body is read. Only
		 * the console's files and its login need no token. */
		found = web_split_path(url, path, sizeof(path), route.parts, &route.part_count)
				? web_find_route(route.parts, route.part_count, method, &path_known)
				: NULL;
		if (web_identify(server, connection, &request->identity) < 0 &&
		    (found == NULL || found->access != WEB_ACCESS_PUBLIC)) {
			enum MHD_Result result =
				web_reply_last_error(connection, FERRY_ERR_UNAUTHORIZED);

			request->answered = true;
			web_audit_record(&route, web_last_status());
			web_metrics_count_request(NULL, web_last_status());
			return result;
		}
		/* A browser's cookie goes with every request to this origin, whoever made the page
		 * that sends it: a change made with one needs the session's own CSRF token too. */
		if (found && strcmp(method, "GET") != 0 &&
		    !web_session_csrf_ok(connection, &request->identity)) {
			enum MHD_Result result = web_reply_error(
				connection, FERRY_ERR_FORBIDDEN,
				"a change made with the console's session needs its X-CSRF-Token "
				"header (from POST or GET /v1/session)");

			request->answered = true;
			web_audit_record(&route, web_last_status());
			web_metrics_count_request(found, web_last_status());
			return result;
		}
		if (found) {
			if (web_route_refused(&route, found)) {
				enum MHD_Result result =
					web_reply_last_error(connection, FERRY_ERR_FORBIDDEN);

				request->answered = true;
				web_audit_record(&route, web_last_status());
				web_metrics_count_request(found, web_last_status());
				return result;
			}
		}
		request->ceiling = WEB_JSON_BODY_MAX;
		if (strcmp(method, "PUT") == 0 && strstr(url, "/segments/"))
			request->ceiling = segment_encoded_bound(SEGMENT_SIZE_MAX);
		length_text = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
							  MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (length_text &&
		    (web_parse_unsigned(length_text, &length) < 0 || length > request->ceiling)) {
			request->answered = true;
			return web_reply_error(connection, FERRY_ERR_TOO_LARGE,
					       "request body of %s bytes is above this route's "
					       "limit of %zu bytes",
					       length_text, request->ceiling);
		}
		if (length > 0) {
			/* The length is known and below the ceiling: one buffer, no regrowth. */
			request->body = malloc(length);
			if (request->body == NULL)
				return MHD_NO;
			request->capacity = length;
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t incoming = *upload_data_size;

		*upload_data_size = 0;
		if (request->answered || request->too_large)
			return MHD_YES;
		if (request->length + incoming > request->ceiling) {
			request->too_large = true;
			return MHD_YES;
		}
		if (request->length + incoming > request->capacity) {
			size_t capacity = request->capacity ? request->capacity : 65536;
			char *grown;

			while (capacity < request->length + incoming)
				capacity *= 2;
			if (capacity > request->ceiling)
				capacity = request->ceiling;
			grown = realloc(request->body, capacity);
			if (grown == NULL)
				return MHD_NO;
			request->body = grown;
			request->capacity = capacity;
		}
		memcpy(request->body + request->length, upload_data, incoming);
		request->length += incoming;
		return MHD_YES;
	}
	if (request->answered)
		return MHD_YES;
	request->answered = true;
	if (request->too_large)
		return web_reply_error(connection, FERRY_ERR_TOO_LARGE,
				       "request body is above this route's limit of %zu bytes",
				       request->ceiling);
	if (!web_split_path(url, path, sizeof(path), route.parts, &route.part_count))
		return web_reply_error(connection, FERRY_ERR_NOT_FOUND, "no such path: %.200s",
				       url);
	found = web_find_route(route.parts, route.part_count, method, &path_known);
	if (found == NULL)
		web_metrics_count_request(NULL, path_known ? 405 : 404);
	if (found == NULL)
		return web_reply_error(connection,
				       path_known ? FERRY_ERR_METHOD : FERRY_ERR_NOT_FOUND,
				       path_known ? "method %s is not allowed on %.200s"
						  : "no such path: %s %.200s",
				       method, url);
	ferry_error_clear();
	route.keys = found->keys;
	{
		enum MHD_Result result = found->handler(&route);

		/* Every mutating request is recorded; a segment's is covered by its transfer's
		 * begin and commit. */
		if (strcmp(method, "GET") != 0 && !found->segment_body)
			web_audit_record(&route, web_last_status());
		web_metrics_count_request(found, web_last_status());
		log_debug("%s %.200s from %s, token %s (%s): HTTP %u", method, url, request->client,
			  request->identity.name, web_role_name(request->identity.role),
			  web_last_status());
		return result;
	}
}

static void
web_request_done(void *context, struct MHD_Connection *connection, void **connection_context,
		 enum MHD_RequestTerminationCode code)
{
	struct web_server *server = context;
	struct web_request *request = *connection_context;

	(void)code;
	web_deadline_request_ended(server->deadline, connection);
	if (request == NULL)
		return;
	free(request->body);
	free(request);
	*connection_context = NULL;
}

static void
web_mhd_log(void *context, const char *format, va_list args)
{
	/* A flood of refused connections must not become a flood of log lines: a few per second,
	 * then one line with the count of those left out. */
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static int64_t second;
	static unsigned logged, suppressed;
	char message[512];
	int64_t now = util_now_ms() / 1000;
	unsigned left_out = 0;
	bool print;

	(void)context;
	vsnprintf(message, sizeof(message), format, args);
	message[strcspn(message, "\n")] = '\0';
	for (char *c = message; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	pthread_mutex_lock(&lock);
	if (now != second) {
		left_out = suppressed;
		second = now;
		logged = suppressed = 0;
	}
	print = logged < 5;
	if (print)
		logged++;
	else
		suppressed++;
	pthread_mutex_unlock(&lock);
	if (left_out)
		log_warn("http: %u similar message(s) left out in the second before", left_out);
	if (print)
		log_warn("http: %s", message);
}

/* Leaves percent escapes in the path as they are: no ferry name needs escaping, so an escaped
 * character ("%2F", "%00") stays visible and makes the name invalid instead of changing the
 * path's shape after it was checked. */
static size_t
web_keep_escaped(void *context, struct MHD_Connection *connection, char *text)
{
	(void)context;
	(void)connection;
	return strlen(text);
}

/* No one locks the daemon out: one client address may hold a few connections (a sender's jobs
 * and the CLI), far below the total; a connection that says nothing for a while (a handshake
 * or headers never finished, an idle keep-alive) is closed. */
/* TLS 1.2 and 1.3 only, forward-secret key exchange, no SHA-1 or CBC-era leftovers. */
#define WEB_TLS_PRIORITIES                                                                         \
	"SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:-SHA1:-AES-128-CBC:-AES-256-CBC:"      \
	"-CAMELLIA-128-CBC:-CAMELLIA-256-CBC:%SERVER_PRECEDENCE"

struct web_server *
web_server_start(const struct web_server_options *options)
{
	struct web_server *server = NULL;
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			     MHD_USE_TLS | MHD_USE_ERROR_LOG | MHD_USE_POLL;

	if (options->listen_fd < 0) {
		ferry_error_set(FERRY_ERR_INVALID, "no listening socket (web_listen first)");
		return NULL;
	}
	server = calloc(1, sizeof(*server));
	if (server == NULL)
		return NULL;
	server->options = *options;
	snprintf(server->token, sizeof(server->token), "%s", options->token);
	web_token_hash(server->token, server->token_hash);
	server->deadline = web_deadline_start();
	if (server->deadline == NULL) {
		ferry_error_set(FERRY_ERR_NO_MEMORY, "cannot start the header deadline's thread");
		free(server);
		return NULL;
	}
	server->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, web_access, server, MHD_OPTION_EXTERNAL_LOGGER, web_mhd_log,
		NULL, MHD_OPTION_UNESCAPE_CALLBACK, web_keep_escaped, NULL,
		MHD_OPTION_LISTEN_SOCKET, options->listen_fd, MHD_OPTION_HTTPS_MEM_CERT,
		options->certificate_pem, MHD_OPTION_HTTPS_MEM_KEY, options->key_pem,
		MHD_OPTION_NOTIFY_COMPLETED, web_request_done, server, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned int)WEB_CONNECTIONS_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned int)WEB_CONNECTIONS_PER_ADDRESS, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)WEB_IDLE_TIMEOUT_S, MHD_OPTION_NOTIFY_CONNECTION, web_deadline_notify,
		server->deadline, MHD_OPTION_HTTPS_PRIORITIES, WEB_TLS_PRIORITIES,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_END);
	if (server->daemon == NULL) {
		ferry_error_set(FERRY_ERR_IO,
				"cannot serve on %s: the HTTPS server did not start (is the TLS "
				"pair valid?)",
				options->listen);
		web_deadline_stop(server->deadline);
		free(server);
		return NULL;
	}
	return server;
}

void
web_server_stop(struct web_server *server)
{
	if (server == NULL)
		return;
	/* Event streams wait for events in MHD's threads: they end when they see this. */
	__atomic_store_n(&server->stopping, true, __ATOMIC_RELEASE);
	MHD_stop_daemon(server->daemon);
	web_deadline_stop(server->deadline);
	free(server);
}

int
web_server_port(struct web_server *server)
{
	return web_listen_port(server->options.listen_fd);
}
