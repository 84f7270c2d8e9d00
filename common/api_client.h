/* A client of ferryd's REST API (/v1): HTTPS only, bearer token, JSON in and out, and the one
 * error shape {"error": {"code": "...", "message": "..."}} turned back into a ferry error.
 * One client per thread: it owns a libcurl handle and reuses its connection.
 * Call curl_global_init() once in main() before creating clients. */
#ifndef FERRY_COMMON_API_CLIENT_H
#define FERRY_COMMON_API_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct api_client;

struct api_client_options {
	const char *url; /* https://HOST:PORT */
	const char *token;
	const char *cacert;	 /* CA file to trust, or NULL for the system's */
	bool insecure;		 /* skip certificate verification (explicit operator choice) */
	uint64_t max_send_speed; /* bytes per second, 0 for no limit */
};

/* Returns NULL with a message when the URL is not https:// or memory runs out. */
struct api_client *api_client_new(const struct api_client_options *options);
void api_client_free(struct api_client *client);

/* Sends one request. body may be NULL; headers is a NULL-terminated list of "Name: value"
 * or NULL. On 2xx returns 0 and, when reply_out is not NULL, the parsed JSON reply (caller
 * json_decref()s it). On an error answer returns the code named in its body, with its message. */
int api_client_send(struct api_client *client, const char *method, const char *path,
		    const char *content_type, const void *body, size_t body_length,
		    const char *const *headers, json_t **reply_out);

/* JSON convenience: body_json may be NULL (no body). Does not steal body_json. */
int api_client_json(struct api_client *client, const char *method, const char *path,
		    json_t *body_json, json_t **reply_out);

/* GETs path as a stream (Server-Sent Events): each piece of the body goes to each() as it
 * arrives, until the server ends it or each() returns non-zero (then 0 is returned). */
int api_client_stream(struct api_client *client, const char *path, const char *const *headers,
		      int (*each)(const char *data, size_t length, void *context), void *context);

#endif
