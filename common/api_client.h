/* A client of ferryd's REST API (/v1): HTTPS only, bearer token, JSON in and out, and the one
 * error shape {"error": {"code": "...", "message": "..."}} turned back into a ferry error.
 * One client per thread: it owns a libcurl handle and reuses its connection.
 * Call curl_global_init() once in main() before creating clients. */
#ifndef FERRY_COMMON_API_CLIENT_H
#define FERRY_COMMON_API_CLIENT_H

#include <jansson.h>
#include <stdatomic.h>
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
	/* A connection that moves no byte for this long is dropped (a network error, so that
	 * callers retry and resume); 0: API_CLIENT_STALL_SECONDS. */
	int stall_seconds;
	/* How long a call that cannot reach the daemon (FERRY_ERR_NETWORK) is tried again, with
	 * api_backoff_ms() between tries; 0: never (one try). Streams are never retried. */
	int retry_seconds;
	/* When set (ferryd stopping), a call in flight is cut and none is retried: the call
	 * returns FERRY_ERR_NETWORK at once. May be NULL. */
	const atomic_bool *cancel;
};

#define API_CLIENT_STALL_SECONDS 60

/* Capped exponential backoff with jitter, the one schedule of every retry loop (the sender's
 * segments, peer calls, the scheduler's failed passes): the wait before retry number attempt
 * (1, 2, ...) is base_ms * 2^(attempt - 1), at most cap_ms, spread by -20%..+20% so that clients
 * that failed together do not come back together. */
int64_t api_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms);
/* Sleeps milliseconds, in slices, returning false early when cancel (may be NULL) is set. */
bool api_backoff_sleep(int64_t milliseconds, const atomic_bool *cancel);

/* Returns NULL with a message when the URL is not https:// or memory runs out. */
struct api_client *api_client_new(const struct api_client_options *options);
void api_client_free(struct api_client *client);
/* How many times this client's calls were tried again (retry_seconds) since it was made. */
uint64_t api_client_retries(const struct api_client *client);

/* Sends one request. body may be NULL; headers is a NULL-terminated list of "Name: value"
 * or NULL. On 2xx returns 0 and, when reply_out is not NULL, the parsed JSON reply (caller
 * json_decref()s it). On an error answer returns the code named in its body, with its message. */
int api_client_send(struct api_client *client, const char *method, const char *path,
		    const char *content_type, const void *body, size_t body_length,
		    const char *const *headers, json_t **reply_out);

/* The "error" object of the last call's refusal, with whatever else the daemon put in it
 * (a split brain's generations); NULL after a success or an answer without one. Owned by the
 * client, valid until its next call. */
const json_t *api_client_error_detail(const struct api_client *client);

/* JSON convenience: body_json may be NULL (no body). Does not steal body_json. */
int api_client_json(struct api_client *client, const char *method, const char *path,
		    json_t *body_json, json_t **reply_out);

/* GETs path as a stream (Server-Sent Events): each piece of the body goes to each() as it
 * arrives, until the server ends it or each() returns non-zero (then 0 is returned). */
int api_client_stream(struct api_client *client, const char *path, const char *const *headers,
		      int (*each)(const char *data, size_t length, void *context), void *context);

#endif
