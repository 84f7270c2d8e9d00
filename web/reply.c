/* Replies and bodies: the one place that maps ferry error codes to HTTP statuses
 * (web_reply_error), JSON and text replies, and the JSON body of a request read with a ceiling
 * and checked for unknown keys. */
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
	{FERRY_ERR_SPLIT_BRAIN, MHD_HTTP_CONFLICT},
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

/* The one error reply: {"error": {"code", "message", and detail's keys}} (detail taken, may be
 * NULL). */
static enum MHD_Result
web_reply_error_with(struct MHD_Connection *connection, int code, const char *message,
		     json_t *detail)
{
	unsigned int status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	json_t *error;

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
	error = json_pack("{s:s, s:s}", "code", ferry_error_name(code), "message", message);
	if (error && detail)
		json_object_update_missing(error, detail);
	json_decref(detail);
	return web_reply_json(connection, status, json_pack("{s:o}", "error", error));
}

enum MHD_Result
web_reply_error(struct MHD_Connection *connection, int code, const char *format, ...)
{
	char message[1200];
	va_list args;

	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	return web_reply_error_with(connection, code, message, NULL);
}

enum MHD_Result
web_reply_error_detail(struct MHD_Connection *connection, int code, const char *message,
		       json_t *detail)
{
	return web_reply_error_with(connection, code, message, detail);
}

/* Replies with the error recorded on this thread by the layer that detected it. */
enum MHD_Result
web_reply_last_error(struct MHD_Connection *connection, int code)
{
	return web_reply_error(connection, code, "%s",
			       ferry_error_message()[0] ? ferry_error_message()
							: ferry_error_name(code));
}

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
