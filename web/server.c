/* The HTTPS server (libmicrohttpd, one thread per connection so a segment's blocking fsync
 * never stalls other requests): the daemon, and web_access(), which authenticates, reads and
 * dispatches each request through the route table (web/routes.c).
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

void
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
		/* Every mutating request is recorded before it runs, and is not run when it
		 * cannot be: no change goes unaudited. A segment's is covered by its transfer's
		 * begin and commit. */
		bool audited = strcmp(method, "GET") != 0 && !found->segment_body;
		int64_t audit_id = 0;
		enum MHD_Result result;
		int rc = 0;

		if (audited)
			rc = web_audit_begin(&route, &audit_id);
		result = rc < 0 ? web_reply_last_error(connection, rc) : found->handler(&route);
		if (audited && rc == 0)
			web_audit_finish(&route, audit_id, web_last_status());
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
