/* libFuzzer target: ferryd's request router and every route's body parsing, driven in-process
 * through the real entry point, web_access() in web/server.c, as libmicrohttpd calls it: once
 * with the headers, once per piece of body, once at the end, then the completion callback.
 *
 * No socket and no TLS: this file defines the few MHD functions that touch a connection
 * (MHD_start_daemon keeps the callbacks it is given instead of listening; the header, cookie
 * and argument look-ups read the fuzzed request; MHD_queue_response records the status), and
 * the linker takes them before libmicrohttpd's. Responses are still made and freed by the real
 * library. Behind the router are a real catalog, a receiver of file volumes and a cutover site,
 * in a scratch folder on tmpfs; no libvirt connection is configured and every https request to
 * a peer goes to a proxy that refuses it, so nothing leaves the process.
 *
 * The input is one request:
 *   METHOD /path?query\n
 *   Header: value\n        (any number; Cookie: a=b; c=d gives cookies)
 *   \n
 *   body                   (delivered in three pieces)
 * A Content-Length header is set to the body's real length, as MHD guarantees. The bootstrap
 * token is FUZZ_TOKEN (admin). Findings besides ASan's and UBSan's: two replies to one request,
 * a request that ends with no reply, a status outside HTTP's. FUZZ_VERBOSE=1 prints each
 * request's status (to see what a seed reaches). */
#include "catalog/catalog.h"
#include "common/error.h"
#include "common/log.h"
#include "cutover/cutover.h"
#include "replicator/repl.h"
#include "tests/fuzz/fuzz.h"
#include "web/web.h"

#include <fcntl.h>
#include <libxml/parser.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define FUZZ_TOKEN	 "fuzz0123456789abcdef0123456789ab"
#define FUZZ_VALUES_MAX	 48
#define FUZZ_RUN_WAIT_MS 5000
/* Requests served by one ferryd before it is replaced by a fresh one (an empty catalog and
 * state folder): the state the requests leave stays small and fast to search. */
#define FUZZ_REQUESTS_PER_FERRYD 4096
#define FUZZ_BODY_PIECES	 3
/* Volumes are made no larger: verifying one re-reads all of it, which takes minutes for a TiB
 * (right for ferryd, a timeout for a fuzzer). */
#define FUZZ_VOLUME_MAX (64u << 20)

struct fuzz_value {
	enum MHD_ValueKind kind;
	char *key, *value;
	bool owned; /* a copy, freed with the connection; else in the request's text */
};

/* The fake connection the handlers see. */
struct MHD_Connection {
	struct fuzz_value values[FUZZ_VALUES_MAX];
	int count;
	unsigned replies;
	unsigned int status;
};

/* What MHD_start_daemon was given by web_server_start(). */
static struct {
	MHD_AccessHandlerCallback access;
	void *access_context;
	MHD_RequestCompletedCallback completed;
	void *completed_context;
	struct MHD_Daemon *daemon;
} fuzz_mhd;

static struct {
	struct catalog *catalog;
	struct repl_receiver *receiver;
	struct cutover_site site;
	struct web_server *server;
	int listen_fd; /* /dev/null: MHD would close its socket at the stop */
} fuzz_ferryd;

/* ---- the MHD functions that would need a live connection ---- */

struct MHD_Daemon *
MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback accept_policy,
		 void *accept_context, MHD_AccessHandlerCallback access, void *access_context, ...)
{
	static char daemon_placeholder;
	va_list args;
	int option;

	(void)flags;
	(void)port;
	(void)accept_policy;
	(void)accept_context;
	fuzz_mhd.access = access;
	fuzz_mhd.access_context = access_context;
	va_start(args, access_context);
	while ((option = va_arg(args, int)) != MHD_OPTION_END) {
		switch (option) {
		case MHD_OPTION_NOTIFY_COMPLETED:
			fuzz_mhd.completed = va_arg(args, MHD_RequestCompletedCallback);
			fuzz_mhd.completed_context = va_arg(args, void *);
			break;
		case MHD_OPTION_EXTERNAL_LOGGER:
		case MHD_OPTION_UNESCAPE_CALLBACK:
		case MHD_OPTION_NOTIFY_CONNECTION:
		case MHD_OPTION_URI_LOG_CALLBACK:
			(void)va_arg(args, void *);
			(void)va_arg(args, void *);
			break;
		case MHD_OPTION_LISTEN_SOCKET: (void)va_arg(args, int); break;
		case MHD_OPTION_HTTPS_MEM_CERT:
		case MHD_OPTION_HTTPS_MEM_KEY:
		case MHD_OPTION_HTTPS_PRIORITIES:
		case MHD_OPTION_HTTPS_MEM_TRUST:
		case MHD_OPTION_HTTPS_MEM_DHPARAMS:
		case MHD_OPTION_HTTPS_KEY_PASSWORD: (void)va_arg(args, const char *); break;
		case MHD_OPTION_CONNECTION_LIMIT:
		case MHD_OPTION_PER_IP_CONNECTION_LIMIT:
		case MHD_OPTION_CONNECTION_TIMEOUT:
		case MHD_OPTION_THREAD_POOL_SIZE:
		case MHD_OPTION_LISTEN_BACKLOG_SIZE:
		case MHD_OPTION_LISTENING_ADDRESS_REUSE: (void)va_arg(args, unsigned int); break;
		case MHD_OPTION_CONNECTION_MEMORY_LIMIT:
		case MHD_OPTION_CONNECTION_MEMORY_INCREMENT:
		case MHD_OPTION_THREAD_STACK_SIZE: (void)va_arg(args, size_t); break;
		default:
			/* Its arguments' types are unknown here: teach this switch the option. */
			fprintf(stderr, "fuzz_web: MHD option %d is new to the harness\n", option);
			abort();
		}
	}
	va_end(args);
	fuzz_check(fuzz_mhd.access && fuzz_mhd.completed, "web_server_start gave no callbacks");
	fuzz_mhd.daemon = (struct MHD_Daemon *)(void *)&daemon_placeholder;
	return fuzz_mhd.daemon;
}

void
MHD_stop_daemon(struct MHD_Daemon *daemon)
{
	(void)daemon;
}

static bool
fuzz_key_equal(enum MHD_ValueKind kind, const char *a, const char *b)
{
	/* Header names are case-insensitive, cookies and arguments are not. */
	return kind == MHD_HEADER_KIND ? strcasecmp(a, b) == 0 : strcmp(a, b) == 0;
}

const char *
MHD_lookup_connection_value(struct MHD_Connection *connection, enum MHD_ValueKind kind,
			    const char *key)
{
	for (int i = 0; connection && key && i < connection->count; i++)
		if ((connection->values[i].kind & kind) &&
		    fuzz_key_equal(connection->values[i].kind, connection->values[i].key, key))
			return connection->values[i].value;
	return NULL;
}

enum MHD_Result
MHD_lookup_connection_value_n(struct MHD_Connection *connection, enum MHD_ValueKind kind,
			      const char *key, size_t key_size, const char **value_ptr,
			      size_t *value_size_ptr)
{
	for (int i = 0; connection && key && i < connection->count; i++)
		if ((connection->values[i].kind & kind) &&
		    strlen(connection->values[i].key) == key_size &&
		    fuzz_key_equal(connection->values[i].kind, connection->values[i].key, key)) {
			if (value_ptr)
				*value_ptr = connection->values[i].value;
			if (value_size_ptr)
				*value_size_ptr = strlen(connection->values[i].value);
			return MHD_YES;
		}
	return MHD_NO;
}

int
MHD_get_connection_values(struct MHD_Connection *connection, enum MHD_ValueKind kind,
			  MHD_KeyValueIterator iterator, void *iterator_cls)
{
	int seen = 0;

	if (connection == NULL)
		return -1;
	for (int i = 0; i < connection->count; i++)
		if (connection->values[i].kind & kind) {
			seen++;
			if (iterator && iterator(iterator_cls, connection->values[i].kind,
						 connection->values[i].key,
						 connection->values[i].value) != MHD_YES)
				break;
		}
	return seen;
}

const union MHD_ConnectionInfo *
MHD_get_connection_info(struct MHD_Connection *connection, enum MHD_ConnectionInfoType info_type,
			...)
{
	static struct sockaddr_in address;
	static union MHD_ConnectionInfo info;

	(void)connection;
	if (info_type != MHD_CONNECTION_INFO_CLIENT_ADDRESS)
		return NULL; /* no socket, no socket context: the header deadline skips it */
	address.sin_family = AF_INET;
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	info.client_addr = (struct sockaddr *)&address;
	return &info;
}

enum MHD_Result
MHD_queue_response(struct MHD_Connection *connection, unsigned int status_code,
		   struct MHD_Response *response)
{
	fuzz_check(response != NULL, "a NULL response queued");
	fuzz_check(connection->replies == 0, "two replies queued for one request");
	fuzz_check(status_code >= 100 && status_code <= 599, "a status outside HTTP's");
	connection->replies++;
	connection->status = status_code;
	return MHD_YES;
}

/* ---- ferryd, once per process ---- */

static void
fuzz_ferryd_start(const char *state)
{
	struct web_server_options options = {0};
	char path[512];

	log_set_level(LOG_LEVEL_ERROR);
	xmlInitParser();
	/* Any https request to a peer meets a proxy that is not there: refused at once. */
	setenv("https_proxy", "http://127.0.0.1:9", 1);
	setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1);
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
	snprintf(path, sizeof(path), "%s/catalog.db", state);
	fuzz_check(catalog_open(path, CATALOG_SYNC_NORMAL, &fuzz_ferryd.catalog) == 0,
		   "catalog does not open");
	fuzz_ferryd.receiver = repl_receiver_new(fuzz_ferryd.catalog, state, NULL);
	fuzz_check(fuzz_ferryd.receiver != NULL, "receiver not made");
	fuzz_ferryd.site.catalog = fuzz_ferryd.catalog;
	fuzz_ferryd.site.receiver = fuzz_ferryd.receiver;
	options.listen = "fuzz";
	fuzz_ferryd.listen_fd = open("/dev/null", O_RDONLY);
	options.listen_fd = fuzz_ferryd.listen_fd;
	options.certificate_pem = "";
	options.key_pem = "";
	options.token = FUZZ_TOKEN;
	options.catalog = fuzz_ferryd.catalog;
	options.receiver = fuzz_ferryd.receiver;
	options.state_dir = state;
	options.cutover = &fuzz_ferryd.site;
	fuzz_ferryd.server = web_server_start(&options);
	fuzz_check(fuzz_ferryd.server != NULL, "web_server_start failed");
}

static void
fuzz_ferryd_stop(void)
{
	web_server_stop(fuzz_ferryd.server);
	repl_receiver_free(fuzz_ferryd.receiver);
	catalog_close(fuzz_ferryd.catalog);
	close(fuzz_ferryd.listen_fd);
	memset(&fuzz_ferryd, 0, sizeof(fuzz_ferryd));
}

/* ---- one request ---- */

/* A value in place (key and value live in the request's text, as in MHD's buffer). */
static void
fuzz_value_add(struct MHD_Connection *connection, enum MHD_ValueKind kind, char *key, char *value)
{
	if (connection->count == FUZZ_VALUES_MAX)
		return;
	connection->values[connection->count++] = (struct fuzz_value){kind, key, value, false};
}

/* A value copied out of a larger string (cookies, arguments); freed with the connection. */
static void
fuzz_value_copy(struct MHD_Connection *connection, enum MHD_ValueKind kind, const char *key,
		size_t key_length, const char *value, size_t value_length)
{
	char *key_copy = strndup(key, key_length), *value_copy = strndup(value, value_length);

	fuzz_check(key_copy && value_copy, "no memory");
	if (connection->count == FUZZ_VALUES_MAX) {
		free(key_copy);
		free(value_copy);
		return;
	}
	connection->values[connection->count++] =
		(struct fuzz_value){kind, key_copy, value_copy, true};
}

/* "a=b<separator>c=d" into values of kind. */
static void
fuzz_pairs_add(struct MHD_Connection *connection, enum MHD_ValueKind kind, const char *text,
	       char separator)
{
	while (*text) {
		const char *end = strchr(text, separator), *equals;
		size_t length = end ? (size_t)(end - text) : strlen(text);

		while (kind == MHD_COOKIE_KIND && length && *text == ' ')
			text++, length--;
		equals = memchr(text, '=', length);
		if (equals)
			fuzz_value_copy(connection, kind, text, (size_t)(equals - text), equals + 1,
					length - (size_t)(equals - text) - 1);
		else if (length)
			fuzz_value_copy(connection, kind, text, length, "", 0);
		if (end == NULL)
			break;
		text = end + 1;
	}
}

/* The header lines, in place, laid out as MHD 0.9 leaves them in its read buffer (web/access.c
 * relies on it to find a NUL hidden in a value): the colon and the line's LF (and a CR before
 * it) become NUL, a value starts after the blanks that follow the colon, and whatever follows a
 * NUL inside a line stays there, unseen. headers ends with the empty line's LF, made NUL too. */
static void
fuzz_headers_add(struct MHD_Connection *connection, char *headers, size_t length,
		 size_t body_length)
{
	static char content_length[32];
	char *end = headers + length;

	snprintf(content_length, sizeof(content_length), "%zu", body_length);
	for (char *line = headers, *next; line < end; line = next) {
		char *line_end = memchr(line, '\n', (size_t)(end - line)), *colon, *value;

		if (line_end == NULL)
			line_end = end;
		next = line_end + 1;
		*line_end = '\0';
		if (line_end > line && line_end[-1] == '\r')
			line_end[-1] = '\0';
		colon = strchr(line, ':');
		if (colon == NULL || colon == line)
			continue;
		*colon = '\0';
		for (value = colon + 1; *value == ' ' || *value == '\t'; value++)
			;
		if (strcasecmp(line, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
			value = content_length;
		fuzz_value_add(connection, MHD_HEADER_KIND, line, value);
		if (strcasecmp(line, MHD_HTTP_HEADER_COOKIE) == 0)
			fuzz_pairs_add(connection, MHD_COOKIE_KIND, value, ';');
	}
}

static void
fuzz_request(struct MHD_Connection *connection, const char *method, const char *url,
	     const char *body, size_t body_length)
{
	void *request_context = NULL;
	size_t piece = body_length / FUZZ_BODY_PIECES + 1, sent = 0, size = 0;
	enum MHD_Result result;

	result = fuzz_mhd.access(fuzz_mhd.access_context, connection, url, method, "HTTP/1.1", NULL,
				 &size, &request_context);
	/* MHD reads no body after a reply was queued for the headers, nor after MHD_NO. */
	while (result == MHD_YES && connection->replies == 0 && sent < body_length) {
		size_t length = body_length - sent < piece ? body_length - sent : piece;

		size = length;
		result = fuzz_mhd.access(fuzz_mhd.access_context, connection, url, method,
					 "HTTP/1.1", body + sent, &size, &request_context);
		fuzz_check(size == 0, "the body was not taken whole");
		sent += length;
	}
	if (result == MHD_YES && connection->replies == 0) {
		size = 0;
		result = fuzz_mhd.access(fuzz_mhd.access_context, connection, url, method,
					 "HTTP/1.1", NULL, &size, &request_context);
		fuzz_check(result == MHD_NO || connection->replies == 1,
			   "a request ended with no reply");
	}
	if (getenv("FUZZ_VERBOSE")) /* for whoever writes seeds: what each one reached */
		fprintf(stderr, "fuzz_web: %s %.200s -> %u\n", method, url, connection->status);
	fuzz_mhd.completed(fuzz_mhd.completed_context, connection, &request_context,
			   MHD_REQUEST_TERMINATED_COMPLETED_OK);
}

/* Whether the request would make a volume above FUZZ_VOLUME_MAX (then it is not sent). */
static bool
fuzz_volume_too_large(const char *url, const char *body, size_t body_length)
{
	size_t length = strlen(url);
	json_t *document, *size;
	bool large;

	if (length < 9 || strcmp(url + length - 9, "/transfer") != 0)
		return false;
	document = json_loadb(body, body_length, 0, NULL);
	size = json_object_get(document, "size");
	large = json_is_number(size) && json_number_value(size) > FUZZ_VOLUME_MAX;
	json_decref(document);
	return large;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct MHD_Connection connection = {0};
	char *text, *line_end, *space, *query, *headers, *body, *body_copy;
	size_t body_length = 0, headers_length;

	static unsigned served;

	if (fuzz_ferryd.server && ++served % FUZZ_REQUESTS_PER_FERRYD == 0) {
		fuzz_ferryd_stop();
		fuzz_ferryd_start(fuzz_state_dir_fresh());
	}
	if (fuzz_ferryd.server == NULL)
		fuzz_ferryd_start(fuzz_state_dir());
	/* text: the input and two NULs (an input without an empty line still ends like MHD's
	 * buffer does after the headers). */
	text = calloc(1, size + 2);
	fuzz_check(text != NULL, "no memory");
	memcpy(text, data, size);
	line_end = memchr(text, '\n', size);
	headers = line_end ? line_end + 1 : text + size;
	if (line_end)
		*line_end = '\0';
	body = memmem(headers, size - (size_t)(headers - text), "\n\n", 2);
	if (body) {
		headers_length = (size_t)(body - headers) + 2; /* the empty line too */
		body += 2;
		body_length = size - (size_t)(body - text);
	} else {
		headers_length = size - (size_t)(headers - text);
	}
	/* METHOD SP URL [SP VERSION]: MHD hands over a method and a URL, neither empty. */
	space = strchr(text, ' ');
	if (space == NULL || space == text || space[1] == '\0' || space[1] == ' ') {
		free(text);
		return 0;
	}
	*space = '\0';
	if (strchr(space + 1, ' '))
		*strchr(space + 1, ' ') = '\0';
	query = strchr(space + 1, '?');
	if (query) {
		*query++ = '\0';
		fuzz_pairs_add(&connection, MHD_GET_ARGUMENT_KIND, query, '&');
	}
	fuzz_headers_add(&connection, headers, headers_length, body_length);
	/* The body is copied out, so that it ends where the input does (ASan sees any read past).
	 */
	body_copy = malloc(body_length ? body_length : 1);
	fuzz_check(body_copy != NULL, "no memory");
	if (body_length)
		memcpy(body_copy, body, body_length);
	if (!fuzz_volume_too_large(space + 1, body_copy, body_length))
		fuzz_request(&connection, text, space + 1, body_copy, body_length);
	/* A run started by the request ends (or fails) before the next request. */
	for (int waited = 0; cutover_runs_active() > 0 && waited < FUZZ_RUN_WAIT_MS; waited += 10)
		usleep(10 * 1000);
	for (int i = 0; i < connection.count; i++)
		if (connection.values[i].owned) {
			free(connection.values[i].key);
			free(connection.values[i].value);
		}
	free(body_copy);
	free(text);
	ferry_error_clear();
	return 0;
}
