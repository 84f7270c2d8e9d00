/* libcurl-based client of the /v1 API. Errors are reported once here, with the URL and a next
 * step, so that the CLI can print ferry_error_message() as it is.
 *
 * Bounded waits: a connection is given 10 s to open and is dropped when no byte moves for
 * stall_seconds (libcurl's low-speed limit of 1 byte/s), a call that could not reach the
 * daemon is retried with capped exponential backoff and jitter for at most retry_seconds,
 * and a cancel flag cuts a call in flight (libcurl's progress callback, after a grace) and
 * every wait. */
#include "common/api_client.h"
#include "common/error.h"
#include "common/log.h"

#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define API_REPLY_MAX (16u << 20)
/* A call in flight when the cancel flag is set gets this long to finish: a commit the peer has
 * carried out, its answer cut on the way back, would leave the two sites a point apart until
 * the next start. A stalled call is still cut, after this. */
#define API_CANCEL_GRACE_MS 3000

struct api_client {
	CURL *curl;
	char url[512];
	char authorization[4200];
	bool insecure;
	int stall_seconds;
	int retry_seconds;
	const atomic_bool *cancel;
	int64_t cancel_seen_ms; /* when a call in flight first saw the cancel flag; 0: not yet */
	uint64_t retries;
	json_t *error; /* the error object of the last refusal, NULL after a success */
};

int64_t
api_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms)
{
	static _Atomic uint64_t state = 0;
	uint64_t seed, mixed;
	int64_t delay = base_ms > 0 ? base_ms : 1;

	for (int i = 1; i < attempt && delay < cap_ms; i++)
		delay *= 2;
	if (delay > cap_ms)
		delay = cap_ms;
	/* splitmix64 over a shared counter seeded from the clock: jitter, not cryptography. */
	seed = atomic_fetch_add(&state, 0x9e3779b97f4a7c15ULL);
	if (seed == 0) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		seed = (uint64_t)now.tv_nsec * 0x2545f4914f6cdd1dULL + (uint64_t)pthread_self();
		atomic_store(&state, seed);
	}
	mixed = seed + 0x9e3779b97f4a7c15ULL;
	mixed = (mixed ^ (mixed >> 30)) * 0xbf58476d1ce4e5b9ULL;
	mixed = (mixed ^ (mixed >> 27)) * 0x94d049bb133111ebULL;
	mixed ^= mixed >> 31;
	/* 80% to 120% of the delay. */
	return delay * 8 / 10 + (int64_t)(mixed % (uint64_t)(delay * 4 / 10 + 1));
}

bool
api_backoff_sleep(int64_t milliseconds, const atomic_bool *cancel)
{
	while (milliseconds > 0) {
		int64_t slice = milliseconds < 100 ? milliseconds : 100;
		struct timespec pause = {0, (long)slice * 1000000L};

		if (cancel && atomic_load(cancel))
			return false;
		nanosleep(&pause, NULL);
		milliseconds -= slice;
	}
	return !(cancel && atomic_load(cancel));
}

/* libcurl's progress callback: a non-zero answer cuts the transfer in flight. */
static int
api_client_progress(void *context, curl_off_t download_total, curl_off_t downloaded,
		    curl_off_t upload_total, curl_off_t uploaded)
{
	struct api_client *client = context;
	struct timespec now;
	int64_t now_ms;

	(void)download_total, (void)downloaded, (void)upload_total, (void)uploaded;
	if (client->cancel == NULL || !atomic_load(client->cancel))
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	if (client->cancel_seen_ms == 0)
		client->cancel_seen_ms = now_ms;
	return now_ms - client->cancel_seen_ms >= API_CANCEL_GRACE_MS;
}

struct api_reply {
	char *data;
	size_t length;
	bool too_large;
};

struct api_client *
api_client_new(const struct api_client_options *options)
{
	struct api_client *client;
	size_t length;

	if (options->url == NULL || strncmp(options->url, "https://", 8) != 0) {
		ferry_error_set(
			FERRY_ERR_INVALID,
			"daemon address '%s' is not an https:// URL; ferry speaks HTTPS only "
			"(e.g. https://127.0.0.1:7443)",
			options->url ? options->url : "");
		return NULL;
	}
	client = calloc(1, sizeof(*client));
	if (client == NULL)
		return NULL;
	snprintf(client->url, sizeof(client->url), "%s", options->url);
	length = strlen(client->url);
	while (length > 0 && client->url[length - 1] == '/')
		client->url[--length] = '\0';
	snprintf(client->authorization, sizeof(client->authorization), "Authorization: Bearer %s",
		 options->token ? options->token : "");
	client->curl = curl_easy_init();
	if (client->curl == NULL) {
		free(client);
		ferry_error_set(FERRY_ERR_NO_MEMORY, "curl_easy_init failed");
		return NULL;
	}
	curl_easy_setopt(client->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(client->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(client->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	/* A stalled peer must not hang a copy forever: no byte for stall_seconds drops the
	 * connection, and the caller resumes on a new one. */
	client->stall_seconds =
		options->stall_seconds > 0 ? options->stall_seconds : API_CLIENT_STALL_SECONDS;
	client->retry_seconds = options->retry_seconds > 0 ? options->retry_seconds : 0;
	client->cancel = options->cancel;
	curl_easy_setopt(client->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(client->curl, CURLOPT_LOW_SPEED_TIME, (long)client->stall_seconds);
	curl_easy_setopt(client->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	if (client->cancel) {
		curl_easy_setopt(client->curl, CURLOPT_XFERINFOFUNCTION, api_client_progress);
		curl_easy_setopt(client->curl, CURLOPT_XFERINFODATA, client);
		curl_easy_setopt(client->curl, CURLOPT_NOPROGRESS, 0L);
	}
	if (options->cacert)
		curl_easy_setopt(client->curl, CURLOPT_CAINFO, options->cacert);
	client->insecure = options->insecure;
	if (options->insecure) {
		curl_easy_setopt(client->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(client->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (options->max_send_speed)
		curl_easy_setopt(client->curl, CURLOPT_MAX_SEND_SPEED_LARGE,
				 (curl_off_t)options->max_send_speed);
	return client;
}

uint64_t
api_client_retries(const struct api_client *client)
{
	return client ? client->retries : 0;
}

void
api_client_free(struct api_client *client)
{
	if (client == NULL)
		return;
	curl_easy_cleanup(client->curl);
	json_decref(client->error);
	free(client);
}

const json_t *
api_client_error_detail(const struct api_client *client)
{
	return client ? client->error : NULL;
}

static size_t
api_client_collect(char *data, size_t size, size_t count, void *context)
{
	struct api_reply *reply = context;
	size_t length = size * count;
	char *grown;

	if (reply->length + length > API_REPLY_MAX) {
		reply->too_large = true;
		return 0;
	}
	grown = realloc(reply->data, reply->length + length + 1);
	if (grown == NULL)
		return 0;
	memcpy(grown + reply->length, data, length);
	reply->data = grown;
	reply->length += length;
	reply->data[reply->length] = '\0';
	return length;
}

/* The SHA-256 fingerprint of the certificate the daemon presents, read with verification off
 * (nothing is sent but a handshake and a HEAD), so that a trust error can name what to trust. */
static void
api_client_peer_fingerprint(const struct api_client *client, char *text, size_t size)
{
	struct curl_certinfo *chain = NULL;
	CURL *probe = curl_easy_init();

	text[0] = '\0';
	if (probe == NULL)
		return;
	curl_easy_setopt(probe, CURLOPT_URL, client->url);
	curl_easy_setopt(probe, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(probe, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(probe, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(probe, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(probe, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(probe, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(probe, CURLOPT_CERTINFO, 1L);
	if (curl_easy_perform(probe) == CURLE_OK &&
	    curl_easy_getinfo(probe, CURLINFO_CERTINFO, &chain) == CURLE_OK && chain &&
	    chain->num_of_certs > 0) {
		for (struct curl_slist *field = chain->certinfo[0]; field; field = field->next) {
			gnutls_x509_crt_t certificate = NULL;
			unsigned char digest[32];
			size_t digest_size = sizeof(digest);
			gnutls_datum_t pem;

			if (strncmp(field->data, "Cert:", 5) != 0)
				continue;
			pem = (gnutls_datum_t){(unsigned char *)field->data + 5,
					       (unsigned)strlen(field->data + 5)};
			if (gnutls_x509_crt_init(&certificate) == 0 &&
			    gnutls_x509_crt_import(certificate, &pem, GNUTLS_X509_FMT_PEM) == 0 &&
			    gnutls_x509_crt_get_fingerprint(certificate, GNUTLS_DIG_SHA256, digest,
							    &digest_size) == 0)
				for (size_t i = 0; i < digest_size && 3 * i + 3 < size; i++)
					snprintf(text + 3 * i, 4, "%02X%s", digest[i],
						 i + 1 < digest_size ? ":" : "");
			gnutls_x509_crt_deinit(certificate);
			break;
		}
	}
	curl_easy_cleanup(probe);
}

static int
api_client_transport_error(struct api_client *client, CURLcode code, const char *detail)
{
	const char *text = detail[0] ? detail : curl_easy_strerror(code);
	char stalled[160];
	bool certificate = code == CURLE_PEER_FAILED_VERIFICATION ||
			   code == CURLE_SSL_CACERT_BADFILE || code == CURLE_SSL_CERTPROBLEM ||
			   (code == CURLE_SSL_CONNECT_ERROR && strcasestr(text, "certificate"));

	/* curl reports a reset or broken pipe during the handshake as an SSL connect error too:
	 * that is a network failure (retried, resumable), not a trust problem. */
	if (certificate) {
		char fingerprint[32 * 3 + 1], cause[512];

		snprintf(cause, sizeof(cause), "%s", text);
		api_client_peer_fingerprint(client, fingerprint, sizeof(fingerprint));
		return ferry_error_set(
			FERRY_ERR_TLS,
			"TLS with %s failed: %s. %s%s%sgive the daemon's certificate "
			"(STATE/tls/cert.pem at a self-signed ferryd) or its CA with --cacert "
			"FILE%s",
			client->url, cause,
			fingerprint[0] ? "It presents a certificate with SHA-256 fingerprint " : "",
			fingerprint,
			fingerprint[0] ? "; if ferryd logged that one at its start, " : "",
			client->insecure ? ""
					 : " (--insecure skips the check: a last resort, it trusts "
					   "anyone on the path)");
	}
	if (code == CURLE_ABORTED_BY_CALLBACK)
		return ferry_error_set(FERRY_ERR_NETWORK,
				       "call to %s cut: this process is stopping", client->url);
	if (code == CURLE_OPERATION_TIMEDOUT && !strstr(text, "onnect")) {
		snprintf(stalled, sizeof(stalled),
			 "no byte moved for %d s (%s), connection dropped", client->stall_seconds,
			 text);
		text = stalled;
	}
	return ferry_error_set(FERRY_ERR_NETWORK,
			       "cannot reach %s: %s; check that ferryd runs there and the "
			       "network between, then re-run to resume",
			       client->url, text);
}

static int
api_client_status_error(struct api_client *client, long status, const struct api_reply *reply)
{
	json_t *root = reply->data ? json_loads(reply->data, 0, NULL) : NULL;
	json_t *error = root ? json_object_get(root, "error") : NULL;
	const char *name = json_string_value(json_object_get(error, "code"));
	const char *message = json_string_value(json_object_get(error, "message"));
	int code;

	if (name)
		code = ferry_error_from_name(name);
	else if (status == 401)
		code = FERRY_ERR_UNAUTHORIZED;
	else if (status == 404)
		code = FERRY_ERR_NOT_FOUND;
	else if (status == 507)
		code = FERRY_ERR_NO_SPACE;
	else
		code = FERRY_ERR_REMOTE;
	if (code == FERRY_ERR_UNAUTHORIZED)
		ferry_error_set(code, "%s refused the token (HTTP %ld): %s; check --token-file",
				client->url, status, message ? message : "unauthorized");
	else
		ferry_error_set(code, "%s answered HTTP %ld: %s", client->url, status,
				message ? message : "(no error message)");
	if (json_is_object(error)) {
		json_decref(client->error);
		client->error = json_incref(error);
	}
	json_decref(root);
	return code;
}

static int
api_client_send_once(struct api_client *client, const char *method, const char *path,
		     const char *content_type, const void *body, size_t body_length,
		     const char *const *headers, json_t **reply_out)
{
	struct curl_slist *list = NULL;
	struct api_reply reply = {0};
	char url[1024], content_header[128], detail[CURL_ERROR_SIZE] = "";
	CURLcode code;
	long status = 0;
	int rc = 0;

	json_decref(client->error);
	client->error = NULL;
	snprintf(url, sizeof(url), "%s%s", client->url, path);
	list = curl_slist_append(list, client->authorization);
	list = curl_slist_append(list, "Accept: application/json");
	list = curl_slist_append(list, "Expect:"); /* no 100-continue round trip per segment */
	if (content_type) {
		snprintf(content_header, sizeof(content_header), "Content-Type: %s", content_type);
		list = curl_slist_append(list, content_header);
	}
	for (size_t i = 0; headers && headers[i]; i++)
		list = curl_slist_append(list, headers[i]);
	curl_easy_setopt(client->curl, CURLOPT_URL, url);
	curl_easy_setopt(client->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(client->curl, CURLOPT_ERRORBUFFER, detail);
	curl_easy_setopt(client->curl, CURLOPT_WRITEFUNCTION, api_client_collect);
	curl_easy_setopt(client->curl, CURLOPT_WRITEDATA, &reply);
	if (body || strcmp(method, "GET") != 0) {
		curl_easy_setopt(client->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(client->curl, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(client->curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)body_length);
	} else {
		curl_easy_setopt(client->curl, CURLOPT_HTTPGET, 1L);
	}
	code = curl_easy_perform(client->curl);
	curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(client->curl, CURLOPT_ERRORBUFFER, NULL);
	if (code != CURLE_OK) {
		rc = api_client_transport_error(client, code, detail);
		goto out;
	}
	curl_easy_getinfo(client->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		rc = api_client_status_error(client, status, &reply);
		goto out;
	}
	if (reply_out) {
		json_error_t error;

		*reply_out = json_loads(reply.data ? reply.data : "{}", 0, &error);
		if (*reply_out == NULL)
			rc = ferry_error_set(FERRY_ERR_REMOTE,
					     "%s sent a reply that is not JSON: %s", client->url,
					     error.text);
	}
out:
	curl_slist_free_all(list);
	free(reply.data);
	return rc;
}

int
api_client_send(struct api_client *client, const char *method, const char *path,
		const char *content_type, const void *body, size_t body_length,
		const char *const *headers, json_t **reply_out)
{
	struct timespec now;
	double deadline;
	int rc, attempt = 0;

	clock_gettime(CLOCK_MONOTONIC, &now);
	deadline = (double)now.tv_sec + (double)now.tv_nsec / 1e9 + client->retry_seconds;
	for (;;) {
		int64_t wait_ms;

		if (client->cancel && atomic_load(client->cancel))
			return ferry_error_set(FERRY_ERR_NETWORK,
					       "call to %s not made: this process is stopping",
					       client->url);
		rc = api_client_send_once(client, method, path, content_type, body, body_length,
					  headers, reply_out);
		if (rc != FERRY_ERR_NETWORK || client->retry_seconds == 0)
			return rc;
		wait_ms = api_backoff_ms(++attempt, 500, 15000);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)now.tv_sec + (double)now.tv_nsec / 1e9 + (double)wait_ms / 1000.0 >
		    deadline)
			return rc; /* its message says what failed; the caller adds what it was */
		client->retries++;
		log_warn("%s; trying %s %s again in %.1f s (try %d)", ferry_error_message(), method,
			 path, (double)wait_ms / 1000.0, attempt + 1);
		if (!api_backoff_sleep(wait_ms, client->cancel))
			return rc;
	}
}

int
api_client_json(struct api_client *client, const char *method, const char *path, json_t *body_json,
		json_t **reply_out)
{
	char *body = body_json ? json_dumps(body_json, JSON_COMPACT) : NULL;
	int rc;

	if (body_json && body == NULL)
		return ferry_error_no_memory();
	rc = api_client_send(client, method, path, body ? "application/json" : NULL, body,
			     body ? strlen(body) : 0, NULL, reply_out);
	free(body);
	return rc;
}

struct api_client_streaming {
	struct api_client *client;
	int (*each)(const char *data, size_t length, void *context);
	void *context;
	struct api_reply error_body; /* a refusal's body, for its message */
	long status;
	bool stopped;
};

static size_t
api_client_stream_chunk(char *data, size_t size, size_t count, void *context)
{
	struct api_client_streaming *stream = context;
	size_t length = size * count;

	if (stream->status == 0)
		curl_easy_getinfo(stream->client->curl, CURLINFO_RESPONSE_CODE, &stream->status);
	if (stream->status < 200 || stream->status > 299)
		return api_client_collect(data, size, count, &stream->error_body);
	if (stream->each(data, length, stream->context) != 0) {
		stream->stopped = true;
		return 0;
	}
	return length;
}

int
api_client_stream(struct api_client *client, const char *path, const char *const *headers,
		  int (*each)(const char *data, size_t length, void *context), void *context)
{
	struct api_client_streaming stream = {client, each, context, {0}, 0, false};
	struct curl_slist *list = NULL;
	char url[1024], detail[CURL_ERROR_SIZE] = "";
	CURLcode code;
	int rc = 0;

	json_decref(client->error);
	client->error = NULL;
	snprintf(url, sizeof(url), "%s%s", client->url, path);
	list = curl_slist_append(list, client->authorization);
	list = curl_slist_append(list, "Accept: text/event-stream");
	for (size_t i = 0; headers && headers[i]; i++)
		list = curl_slist_append(list, headers[i]);
	curl_easy_setopt(client->curl, CURLOPT_URL, url);
	curl_easy_setopt(client->curl, CURLOPT_CUSTOMREQUEST, "GET");
	curl_easy_setopt(client->curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(client->curl, CURLOPT_ERRORBUFFER, detail);
	curl_easy_setopt(client->curl, CURLOPT_WRITEFUNCTION, api_client_stream_chunk);
	curl_easy_setopt(client->curl, CURLOPT_WRITEDATA, &stream);
	/* A quiet stream sends a few bytes every few seconds: not a stalled transfer. */
	curl_easy_setopt(client->curl, CURLOPT_LOW_SPEED_TIME, 0L);
	code = curl_easy_perform(client->curl);
	curl_easy_setopt(client->curl, CURLOPT_LOW_SPEED_TIME, (long)client->stall_seconds);
	curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(client->curl, CURLOPT_ERRORBUFFER, NULL);
	if (stream.status != 0 && (stream.status < 200 || stream.status > 299))
		rc = api_client_status_error(client, stream.status, &stream.error_body);
	else if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && stream.stopped))
		rc = api_client_transport_error(client, code, detail);
	curl_slist_free_all(list);
	free(stream.error_body.data);
	return rc;
}
