/* ferryd's HTTPS server: the site-to-site replication endpoint and the REST API (/v1), both
 * behind one bearer token, JSON in and out, one error shape:
 *   {"error": {"code": "<ferry_error_name>", "message": "<what, why, what next>"}}
 * The server does not own the catalog or the receiver it is given; the caller frees them after
 * web_server_stop(). */
#ifndef FERRY_WEB_H
#define FERRY_WEB_H

#include <stdint.h>
#include <stdio.h>

#include "catalog/catalog.h"
#include "cutover/cutover.h"
#include "replicator/repl.h"

struct web_server;

struct web_server_options {
	const char *listen; /* HOST:PORT, for messages */
	int listen_fd;	    /* from web_listen(); the server takes it */
	const char *certificate_pem;
	const char *key_pem;
	const char *token;
	struct catalog *catalog;
	struct repl_receiver *receiver;
	const char *state_dir;		    /* where peer secrets are kept (STATE/secrets) */
	const struct cutover_site *cutover; /* NULL: no cutover API */
};

/* Binds and listens on HOST:PORT (IPv6 as [ADDRESS]:PORT), before anything else is made, so that
 * a bad or busy address is the first error. */
int web_listen(const char *listen, int *fd_out);
/* The port a listening socket is bound to, or -1. */
int web_listen_port(int fd);
/* Whether certificate_path and key_path are a PEM certificate and its private key. */
int web_tls_pair_check(const char *certificate_path, const char *key_path);
/* Starts serving on background threads. Returns NULL with a message on failure. */
struct web_server *web_server_start(const struct web_server_options *options);
/* Stops accepting, waits for requests in progress, frees the server. NULL is allowed. */
void web_server_stop(struct web_server *server);
/* The TCP port it listens on (useful with --listen HOST:0). */
int web_server_port(struct web_server *server);

/* Prints every route as "METHOD PATH ROLE", one a line, "*" standing for a variable part
 * (ferryd --print-routes). */
void web_routes_print(FILE *out);
/* Loads the TLS pair from certificate_path/key_path, or, when both are NULL, from
 * state_dir/tls/, creating a self-signed pair there on first start (a server certificate, not a
 * CA, for two years, naming localhost, the host and its FQDN, and each of sans, NULL-ended). Logs
 * the certificate's SHA-256 fingerprint. Caller frees both PEM strings. */
int web_tls_load(const char *state_dir, const char *certificate_path, const char *key_path,
		 const char *const *sans, char **certificate_pem, char **key_pem);

/* ---- for the files of web/ only ---- */
#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

#define WEB_PATH_PARTS 6

/* Roles of API tokens, from the least to the most: a peer is apart, it may use only the
 * site-to-site routes, on the objects it pushed. */
enum web_role { WEB_ROLE_NONE, WEB_ROLE_VIEWER, WEB_ROLE_OPERATOR, WEB_ROLE_ADMIN, WEB_ROLE_PEER };
/* What a route asks for (its column in the route table). */
enum web_access {
	WEB_ACCESS_VIEWER,	   /* any role but peer */
	WEB_ACCESS_OPERATOR,	   /* operator or admin */
	WEB_ACCESS_ADMIN,	   /* admin */
	WEB_ACCESS_PEER,	   /* admin, or the peer that owns the object */
	WEB_ACCESS_VIEWER_OR_PEER, /* any role but peer, or the peer that owns the object */
	WEB_ACCESS_PUBLIC,	   /* no token needed: the console's files and its login */
};

struct web_identity {
	char name[65]; /* the token's name; "bootstrap" for --token-file */
	enum web_role role;
	bool via_session; /* the console's cookie, not a bearer token */
	char csrf[65];	  /* then the session's CSRF token */
	char session[65]; /* and its id */
};

/* Connections: all, and from one client address; idle seconds before ferryd closes one; and the
 * seconds a connection has for its handshake and each request's headers (web/deadline.c). */
#define WEB_CONNECTIONS_MAX	    256
#define WEB_CONNECTIONS_PER_ADDRESS 24
#define WEB_IDLE_TIMEOUT_S	    15
#define WEB_HEADER_DEADLINE_S	    10

struct web_deadline;
struct web_deadline *web_deadline_start(void);
void web_deadline_stop(struct web_deadline *deadline);
void web_deadline_notify(void *context, struct MHD_Connection *connection, void **socket_context,
			 enum MHD_ConnectionNotificationCode code);
void web_deadline_request_begun(struct web_deadline *deadline, struct MHD_Connection *connection);
void web_deadline_request_ended(struct web_deadline *deadline, struct MHD_Connection *connection);

struct web_server {
	struct MHD_Daemon *daemon;
	struct web_deadline *deadline;
	bool stopping; /* atomic: set before MHD stops */
	struct web_server_options options;
	char token[TOKEN_MAX + 1];
	char token_hash[65]; /* its SHA-256, made once: sessions are checked by hash */
};

struct web_request {
	bool answered; /* an early error was queued: swallow the body */
	size_t ceiling;
	char *body;
	size_t length;
	size_t capacity;
	bool too_large;
	struct web_identity identity;
	char client[64];
};

struct web_route_context;
/* One row of the route table (web/server.c). */
struct web_route {
	const char *method;
	const char *pattern[WEB_PATH_PARTS];
	int parts;
	enum MHD_Result (*handler)(struct web_route_context *route);
	bool segment_body;
	enum web_access access;
	const char *const *keys; /* the JSON keys the body may hold (NULL: not checked here) */
};
const struct web_route *web_route_table(size_t *count);
/* A route as --print-routes, metrics and OpenAPI name it: the method, a space, the path with a
 * star for each variable part ("/" for the console's page). */
void web_route_format(const struct web_route *route, char *out, size_t size);
extern const char *const web_access_names[];
/* web/openapi.c: GET /v1/openapi.json, an OpenAPI 3 document made from the route table. */
enum MHD_Result web_openapi(struct web_route_context *route);

struct web_route_context {
	struct web_server *server;
	struct MHD_Connection *connection;
	const char *method;
	const char *parts[WEB_PATH_PARTS];
	int part_count;
	struct web_request *request;
	const char *const *keys; /* the route's allowed JSON keys, checked by the body parser */
};

enum MHD_Result web_reply_json(struct MHD_Connection *connection, unsigned int status,
			       json_t *document);
enum MHD_Result web_reply_error(struct MHD_Connection *connection, int code, const char *format,
				...) __attribute__((format(printf, 3, 4)));
enum MHD_Result web_reply_last_error(struct MHD_Connection *connection, int code);
/* The same error shape with detail's keys added to the error object (detail taken; NULL: none),
 * e.g. both generations of a split brain. */
enum MHD_Result web_reply_error_detail(struct MHD_Connection *connection, int code,
				       const char *message, json_t *detail);
/* A JSON response of document (taken), to add headers to; NULL when out of memory. */
struct MHD_Response *web_response_json(json_t *document);
/* Queues response (taken; NULL: out of memory) with status, recording the status for the audit log
 * and metrics. */
enum MHD_Result web_reply_response(struct MHD_Connection *connection, unsigned int status,
				   struct MHD_Response *response);
/* Replies with text (malloc'd, taken) of that content type. */
enum MHD_Result web_reply_text(struct MHD_Connection *connection, unsigned int status,
			       const char *content_type, char *text, size_t length);
/* A protection's state as the operator sees it now: paused (its group is), error (its last
 * cycle failed), syncing (no point yet), lagging (its last point is older than the group's RPO
 * target), else in-sync. */
const char *web_protection_state(const struct catalog_protection *protection,
				 const struct catalog_group *group, int64_t now_ms);
json_t *web_parse_json_body(struct web_route_context *route, int *code);
/* web/routes.c: url split into parts (in place in buffer; false when it has too many or empty
 * parts), and the route of those parts and method (NULL: none; *path_known says whether the
 * path exists with another method). */
bool web_split_path(const char *url, char *buffer, size_t size, const char **parts, int *count);
const struct web_route *web_find_route(const char **parts, int count, const char *method,
				       bool *path_known);
/* web/server.c: the client's address as text, for logs and the audit. */
void web_client_address(struct MHD_Connection *connection, char *out, size_t size);
/* FERRY_ERR_INVALID naming the first key of body not in allowed (NULL-ended), else 0. */
int web_unknown_keys(json_t *body, const char *const *allowed);

/* web/access.c: tokens, roles, owners and the audit log. */
const char *web_role_name(enum web_role role);
/* Who sent the request: the bootstrap token (admin) or a stored token that has not expired;
 * FERRY_ERR_UNAUTHORIZED (with the reason) otherwise. */
void web_token_hash(const char *token, char hash[65]);
int web_identify_hash(struct web_server *server, const char *hash, struct web_identity *out);
int web_identify_token(struct web_server *server, const char *token, struct web_identity *out);
/* web/session.c: the console's sessions. A valid ferry_session cookie fills out (0). */
int web_session_identify(struct web_server *server, struct MHD_Connection *connection,
			 struct web_identity *out);
/* Whether a mutating request made with a session carries its X-CSRF-Token. */
bool web_session_csrf_ok(struct MHD_Connection *connection, const struct web_identity *identity);
enum MHD_Result web_session_create(struct web_route_context *route);
enum MHD_Result web_session_show(struct web_route_context *route);
enum MHD_Result web_session_end(struct web_route_context *route);
/* web/console.c: GET / and GET /console/NAME, the console's files built into ferryd. */
enum MHD_Result web_console_index(struct web_route_context *route);
enum MHD_Result web_console_file(struct web_route_context *route);
int web_identify(struct web_server *server, struct MHD_Connection *connection,
		 struct web_identity *out);
/* One token of the RFC 6750 alphabet, 1 to TOKEN_MAX bytes. */
bool web_token_syntax(const char *token);
bool web_permitted(const struct web_identity *identity, enum web_access access);
/* For a peer: FERRY_ERR_FORBIDDEN unless the object (kind "volume" or "vm") is unowned or its
 * own; with claim, an unowned one becomes its own. Other roles pass. */
int web_peer_owns(struct web_route_context *route, const char *kind, const char *name, bool claim);
/* Records a request in the audit log (refusals at most a few a second). */
void web_audit_record(struct web_route_context *route, unsigned int status);
/* Before a mutating request runs: its audit entry, not answered yet. A request whose entry
 * cannot be written is not carried out (the error says why and what to do). */
int web_audit_begin(struct web_route_context *route, int64_t *id);
/* After it ran: the answer's status into entry id. */
void web_audit_finish(struct web_route_context *route, int64_t id, unsigned int status);
enum MHD_Result web_token_create(struct web_route_context *route);
enum MHD_Result web_token_list(struct web_route_context *route);
enum MHD_Result web_token_revoke(struct web_route_context *route);
enum MHD_Result web_audit_list(struct web_route_context *route);
unsigned int web_last_status(void);

/* web/replication_routes.c: sites, groups, protections, pruning. */
enum MHD_Result web_site_add(struct web_route_context *route);
/* web/volume_routes.c */
enum MHD_Result web_transfer_begin(struct web_route_context *route);
enum MHD_Result web_segment_put(struct web_route_context *route);
enum MHD_Result web_transfer_commit(struct web_route_context *route);
enum MHD_Result web_volume_verify(struct web_route_context *route);
enum MHD_Result web_volume_list(struct web_route_context *route);
enum MHD_Result web_volume_show(struct web_route_context *route);
enum MHD_Result web_transfer_list(struct web_route_context *route);
/* A decimal with no sign, no leading zero and no trailing junk (a header, a path index). */
int web_parse_unsigned(const char *text, uint64_t *out);
/* A push's "group" (a string) and "generation" (an integer) from body, both optional (the
 * receiver checks their values); FERRY_ERR_INVALID for the wrong types. */
int web_push_group_parse(json_t *body, struct repl_push_group *out);
/* The generation of the push's group at this site (0: no group), for a push's answer. */
int64_t web_push_generation(struct web_route_context *route, const char *volume,
			    const struct repl_push_group *push);
/* The reply to a refused push: a split brain's error object also holds "group", "generation"
 * (this site's) and "peer_generation" (the push's), so that the sender can show both. */
enum MHD_Result web_reply_push_error(struct web_route_context *route, int code, const char *volume,
				     const struct repl_push_group *push);
/* web/group_routes.c */
enum MHD_Result web_group_create(struct web_route_context *route);
enum MHD_Result web_group_set(struct web_route_context *route);
enum MHD_Result web_group_list(struct web_route_context *route);
enum MHD_Result web_group_sync(struct web_route_context *route);
enum MHD_Result web_group_pause(struct web_route_context *route);
enum MHD_Result web_group_resume(struct web_route_context *route);
enum MHD_Result web_group_delete(struct web_route_context *route);
/* web/group_promote.c: POST /v1/groups/NAME/promote (ferry group promote), at the replica site */
enum MHD_Result web_group_promote(struct web_route_context *route);
enum MHD_Result web_site_list(struct web_route_context *route);
enum MHD_Result web_site_remove(struct web_route_context *route);
/* web/metrics.c: GET /metrics, and the count of each route's answers. */
enum MHD_Result web_metrics(struct web_route_context *route);
/* web/events.c: GET /v1/events (the newest 200) and GET /v1/events/stream (Server-Sent
 * Events from Last-Event-ID on). */
enum MHD_Result web_event_list(struct web_route_context *route);
enum MHD_Result web_event_stream(struct web_route_context *route);
/* GET /v1/health: ok, warning or error, with the reasons (a peer sees the word alone). */
enum MHD_Result web_health(struct web_route_context *route);
void web_metrics_count_request(const struct web_route *route, unsigned int status);
enum MHD_Result web_protect(struct web_route_context *route);
enum MHD_Result web_unprotect(struct web_route_context *route);
enum MHD_Result web_volume_prune(struct web_route_context *route);

/* web/cutover_routes.c: the handlers of /v1/vms, /v1/runs and /v1/reprotect. */
enum MHD_Result web_vm_protect(struct web_route_context *route);
enum MHD_Result web_vm_receive(struct web_route_context *route);
enum MHD_Result web_vm_unprotect(struct web_route_context *route);
enum MHD_Result web_vm_forget(struct web_route_context *route);
enum MHD_Result web_vm_remap(struct web_route_context *route);
enum MHD_Result web_vm_promote(struct web_route_context *route);
enum MHD_Result web_vm_activate(struct web_route_context *route);
enum MHD_Result web_vm_list(struct web_route_context *route);
enum MHD_Result web_reprotect_prepare(struct web_route_context *route);
enum MHD_Result web_run_start(struct web_route_context *route);
enum MHD_Result web_run_list(struct web_route_context *route);
enum MHD_Result web_run_show(struct web_route_context *route);
enum MHD_Result web_run_resume(struct web_route_context *route);
enum MHD_Result web_run_rollback(struct web_route_context *route);
enum MHD_Result web_run_abort(struct web_route_context *route);

#endif
