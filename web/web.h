/* ferryd's HTTPS server: the site-to-site replication endpoint and the REST API (/v1), both
 * behind one bearer token, JSON in and out, one error shape:
 *   {"error": {"code": "<ferry_error_name>", "message": "<what, why, what next>"}}
 * The server does not own the catalog or the receiver it is given; the caller frees them after
 * web_server_stop(). */
#ifndef FERRY_WEB_H
#define FERRY_WEB_H

#include <stdint.h>

#include "catalog/catalog.h"
#include "cutover/cutover.h"
#include "replicator/repl.h"

struct web_server;

struct web_server_options {
	const char *listen; /* HOST:PORT */
	const char *certificate_pem;
	const char *key_pem;
	const char *token;
	struct catalog *catalog;
	struct repl_receiver *receiver;
	const char *state_dir;		    /* where peer secrets are kept (STATE/secrets) */
	const struct cutover_site *cutover; /* NULL: no cutover API */
};

/* Starts serving on background threads. Returns NULL with a message on failure. */
struct web_server *web_server_start(const struct web_server_options *options);
/* Stops accepting, waits for requests in progress, frees the server. NULL is allowed. */
void web_server_stop(struct web_server *server);
/* The TCP port it listens on (useful with --listen HOST:0). */
int web_server_port(struct web_server *server);

/* Loads the TLS pair from certificate_path/key_path, or, when both are NULL, from
 * state_dir/tls/, creating a self-signed pair there on first start. Logs the certificate's
 * SHA-256 fingerprint. Caller frees both PEM strings. */
int web_tls_load(const char *state_dir, const char *certificate_path, const char *key_path,
		 char **certificate_pem, char **key_pem);

#endif
