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

enum MHD_Result
web_reply_json(struct MHD_Connection *connection, unsigned int status, json_t *document)
{
	char *text = json_dumps(document, JSON_COMPACT);
	struct MHD_Response *response;
	enum MHD_Result result;

	json_decref(document);
	if (text == NULL)
		return MHD_NO;
	response = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (response == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"ferryd\"");
	web_reply_status = status;
	result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
}

enum MHD_Result
web_reply_response(struct MHD_Connection *connection, unsigned int status,
		   struct MHD_Response *response)
{
	enum MHD_Result result;

	web_reply_status = status;
	result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
}

enum MHD_Result
web_reply_text(struct MHD_Connection *connection, unsigned int status, const char *content_type,
	       char *text, size_t length)
{
	struct MHD_Response *response;
	enum MHD_Result result;

	response = MHD_create_response_from_buffer(length, text, MHD_RESPMEM_MUST_FREE);
	if (response == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	web_reply_status = status;
	result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
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

static json_t *
web_transfer_json(const struct catalog_transfer *transfer)
{
	uint64_t carried = catalog_transfer_segments_carried(transfer);
	bool whole = transfer->segments_durable >= transfer->segments_total;

	/* bytes_durable is exact for a finished full copy, else counted in whole segments. */
	return json_pack(
		"{s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:s, s:s, s:s, s:s,"
		" s:I, s:I}",
		"id", (json_int_t)transfer->id, "volume", transfer->volume, "state",
		catalog_transfer_state_name(transfer->state), "size", (json_int_t)transfer->size,
		"segment_size", (json_int_t)transfer->segment_size, "segments_total",
		(json_int_t)transfer->segments_total, "segments_carried", (json_int_t)carried,
		"segments_durable", (json_int_t)transfer->segments_durable, "bytes_durable",
		(json_int_t)(whole ? transfer->size
				   : transfer->segments_durable * transfer->segment_size),
		"progress", carried ? (double)transfer->segments_durable / (double)carried : 1.0,
		"source_identity", transfer->source_identity, "base_identity",
		transfer->base_identity, "snapshot", transfer->snapshot, "digest", transfer->digest,
		"created_ms", (json_int_t)transfer->created_ms, "updated_ms",
		(json_int_t)transfer->updated_ms);
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

/* Reads [[first, last], ...] into out: ascending, each first <= last. */
static int
web_ranges_from_json(json_t *array, struct range_set *out)
{
	size_t i;
	json_t *pair;

	if (!json_is_array(array))
		return FERRY_ERR_INVALID;
	json_array_foreach(array, i, pair)
	{
		json_t *first = json_array_get(pair, 0), *last = json_array_get(pair, 1);

		if (json_array_size(pair) != 2 || !json_is_integer(first) ||
		    !json_is_integer(last) || json_integer_value(first) < 0 ||
		    json_integer_value(last) < json_integer_value(first) ||
		    range_set_add(out, (uint64_t)json_integer_value(first),
				  (uint64_t)json_integer_value(last)) < 0)
			return FERRY_ERR_INVALID;
	}
	return 0;
}

static enum MHD_Result
web_transfer_begin(struct web_route_context *route)
{
	struct repl_begin_request begin = {0};
	struct range_set members;
	struct catalog_transfer transfer;
	struct range_set durable;
	json_t *body, *ranges = NULL, *size, *segment_size;
	enum MHD_Result result;
	int code = 0;

	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	size = json_object_get(body, "size");
	segment_size = json_object_get(body, "segment_size");
	begin.volume = route->parts[2];
	begin.source_identity = json_string_value(json_object_get(body, "source_identity"));
	begin.restart = json_is_true(json_object_get(body, "restart"));
	begin.kind = json_string_value(json_object_get(body, "kind"));
	begin.base_identity = json_string_value(json_object_get(body, "base_identity"));
	begin.snapshot = json_string_value(json_object_get(body, "snapshot"));
	range_set_init(&members);
	begin.members = &members;
	if (begin.base_identity &&
	    web_ranges_from_json(json_object_get(body, "segments"), &members) < 0) {
		json_decref(body);
		range_set_free(&members);
		return web_reply_error(route->connection, FERRY_ERR_INVALID,
				       "a delta needs 'segments': an array of [first, last] index "
				       "pairs");
	}
	if (!json_is_integer(size) || json_integer_value(size) < 0 ||
	    (segment_size &&
	     (!json_is_integer(segment_size) || json_integer_value(segment_size) < 0))) {
		json_decref(body);
		return web_reply_error(route->connection, FERRY_ERR_INVALID,
				       "'size' and 'segment_size' must be non-negative integers");
	}
	begin.size = (uint64_t)json_integer_value(size);
	begin.segment_size = segment_size ? (uint64_t)json_integer_value(segment_size) : 0;
	/* A restart throws away what the volume holds, a complete replica too: an admin's call. */
	if (begin.restart && route->request->identity.role != WEB_ROLE_ADMIN)
		code = ferry_error_set(FERRY_ERR_FORBIDDEN,
				       "restarting volume %s discards what it holds: only an admin "
				       "token may (token %s is %s)",
				       begin.volume, route->request->identity.name,
				       web_role_name(route->request->identity.role));
	if (code == 0)
		code = repl_receiver_begin(route->server->options.receiver, &begin, &transfer);
	if (code == 0)
		code = web_peer_owns(route, "volume", begin.volume, true);
	if (code == 0 && begin.restart)
		catalog_event_add(route->server->options.catalog, "warn", begin.volume,
				  "transfer restarted from scratch by token %s",
				  route->request->identity.name);
	json_decref(body);
	range_set_free(&members);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	range_set_init(&durable);
	code = catalog_transfer_load_ranges(route->server->options.catalog, transfer.id,
					    CATALOG_RANGE_DURABLE, &durable);
	if (code < 0) {
		range_set_free(&durable);
		return web_reply_last_error(route->connection, code);
	}
	ranges = json_array();
	for (size_t i = 0; i < durable.count; i++)
		json_array_append_new(ranges,
				      json_pack("[I, I]", (json_int_t)durable.ranges[i].first,
						(json_int_t)durable.ranges[i].last));
	range_set_free(&durable);
	result = web_reply_json(route->connection, MHD_HTTP_OK,
				json_pack("{s:o, s:o}", "transfer", web_transfer_json(&transfer),
					  "durable", ranges));
	return result;
}

static int
web_parse_unsigned(const char *text, uint64_t *out)
{
	int64_t value;
	int rc = util_parse_int64(text, 0, INT64_MAX, &value);

	if (rc == 0)
		*out = (uint64_t)value;
	return rc;
}

static enum MHD_Result
web_segment_put(struct web_route_context *route)
{
	struct MHD_Connection *connection = route->connection;
	struct repl_segment_request segment = {0};
	const char *transfer_text, *length_text, *encoding_text, *checksum_text;
	uint64_t index = 0, transfer_id = 0;
	int code;

	transfer_text =
		MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Ferry-Transfer");
	length_text = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Ferry-Length");
	encoding_text =
		MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Ferry-Encoding");
	checksum_text =
		MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Ferry-Checksum");
	if (web_parse_unsigned(route->parts[4], &index) < 0 ||
	    web_parse_unsigned(transfer_text, &transfer_id) < 0 ||
	    web_parse_unsigned(length_text, &segment.length) < 0 ||
	    segment_encoding_parse(encoding_text, &segment.encoding) < 0 ||
	    checksum_from_hex(checksum_text, &segment.checksum) < 0)
		return web_reply_error(
			connection, FERRY_ERR_INVALID,
			"a segment needs a numeric index and the headers "
			"X-Ferry-Transfer, X-Ferry-Length (numbers), X-Ferry-Encoding "
			"(zstd|zero) and X-Ferry-Checksum (32 hex digits)");
	segment.volume = route->parts[2];
	segment.transfer_id = (int64_t)transfer_id;
	segment.index = index;
	segment.body = route->request->body;
	segment.body_length = route->request->length;
	code = repl_receiver_put_segment(route->server->options.receiver, &segment);
	if (code < 0)
		return web_reply_last_error(connection, code);
	return web_reply_json(connection, MHD_HTTP_OK,
			      json_pack("{s:I, s:b}", "index", (json_int_t)index, "durable", 1));
}

static enum MHD_Result
web_transfer_commit(struct web_route_context *route)
{
	struct catalog_transfer transfer;
	json_t *body, *transfer_id;
	int code = 0;

	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	transfer_id = json_object_get(body, "transfer_id");
	if (!json_is_integer(transfer_id)) {
		json_decref(body);
		return web_reply_error(route->connection, FERRY_ERR_INVALID,
				       "'transfer_id' must be an integer");
	}
	code = repl_receiver_commit(route->server->options.receiver, route->parts[2],
				    json_integer_value(transfer_id),
				    json_string_value(json_object_get(body, "digest")), &transfer);
	json_decref(body);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:o}", "transfer", web_transfer_json(&transfer)));
}

static enum MHD_Result
web_volume_verify(struct web_route_context *route)
{
	char digest[DIGEST_STRING_SIZE];
	json_t *body, *segment_size;
	int code = 0;

	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	segment_size = json_object_get(body, "segment_size");
	if (!json_is_integer(segment_size) || json_integer_value(segment_size) <= 0) {
		json_decref(body);
		return web_reply_error(route->connection, FERRY_ERR_INVALID,
				       "'segment_size' must be a positive integer");
	}
	code = repl_receiver_verify(route->server->options.receiver, route->parts[2],
				    (uint64_t)json_integer_value(segment_size), digest);
	json_decref(body);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:s, s:s}", "volume", route->parts[2], "digest", digest));
}

struct web_list_context {
	struct catalog *catalog;
	json_t *array;
};

static int
web_volume_entry(const struct catalog_volume *volume, void *context)
{
	struct web_list_context *list = context;
	struct catalog_transfer transfer;
	json_t *entry =
		json_pack("{s:s, s:s, s:s, s:I}", "name", volume->name, "kind", volume->kind,
			  "location", volume->location, "size", (json_int_t)volume->size);

	if (entry == NULL)
		return FERRY_ERR_NO_MEMORY;
	if (volume->transfer_id &&
	    catalog_transfer_get(list->catalog, volume->transfer_id, &transfer) == 0) {
		json_object_set_new(entry, "state",
				    json_string(catalog_transfer_state_name(transfer.state)));
		json_object_set_new(entry, "transfer", web_transfer_json(&transfer));
	}
	json_array_append_new(list->array, entry);
	return 0;
}

static int
web_transfer_entry(const struct catalog_transfer *transfer, void *context)
{
	struct web_list_context *list = context;

	return json_array_append_new(list->array, web_transfer_json(transfer)) ? FERRY_ERR_NO_MEMORY
									       : 0;
}

/* ---- continuous replication: status of protected volumes and their groups ---- */

struct web_status_context {
	struct catalog *catalog;
	json_t *volumes;
	json_t *groups; /* name -> group object, filled as volumes are seen */
	int64_t now_ms;
};

static const char *const web_state_order[] = {"in-sync", "syncing", "paused", "lagging", "error"};

static int
web_state_rank(const char *state)
{
	for (int i = 0; i < 5; i++)
		if (strcmp(web_state_order[i], state) == 0)
			return i;
	return 0;
}

static int
web_protection_entry(const struct catalog_protection *protection, void *context)
{
	struct web_status_context *status = context;
	struct catalog_group group = {.interval_s = 1};
	json_t *entry, *group_json;
	const char *state = protection->state;
	double lag = protection->last_point_ms
			     ? (double)(status->now_ms - protection->last_point_ms) / 1000.0
			     : -1;

	catalog_group_get(status->catalog, protection->group, &group);
	state = web_protection_state(protection, &group, status->now_ms);
	entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:I, s:I, s:f, s:f, s:s,"
			  " s:s}",
			  "name", protection->source, "kind", "protected", "group",
			  protection->group, "site", protection->site, "replica",
			  protection->replica, "last_point", (json_int_t)protection->last_point,
			  "last_point_time", (json_int_t)(protection->last_point_ms / 1000),
			  "pending_point", (json_int_t)protection->pending_point, "lag_seconds",
			  lag < 0 ? 0.0 : lag, "bytes_changed",
			  (json_int_t)protection->last_bytes_changed, "bytes_sent",
			  (json_int_t)protection->last_bytes_sent, "seconds",
			  protection->last_seconds, "throughput",
			  protection->last_seconds > 0
				  ? (double)protection->last_bytes_sent / protection->last_seconds
				  : 0.0,
			  "state", state, "reason", protection->reason);
	if (entry == NULL)
		return FERRY_ERR_NO_MEMORY;
	/* Times in milliseconds, as everywhere else; the fields above stay for old readers. */
	json_object_set_new(entry, "last_point_time_ms", json_integer(protection->last_point_ms));
	json_object_set_new(entry, "lag_ms", json_integer(lag < 0 ? 0 : (json_int_t)(lag * 1000)));
	json_object_set_new(entry, "duration_ms",
			    json_integer((json_int_t)(protection->last_seconds * 1000)));
	json_array_append_new(status->volumes, entry);
	group_json = json_object_get(status->groups, protection->group);
	if (group_json) {
		json_t *worst = json_object_get(group_json, "state");
		json_int_t volumes = json_integer_value(json_object_get(group_json, "volumes"));
		json_int_t point = json_integer_value(json_object_get(group_json, "last_point"));

		json_object_set_new(group_json, "volumes", json_integer(volumes + 1));
		if (volumes == 0 ||
		    web_state_rank(state) > web_state_rank(json_string_value(worst)))
			json_object_set_new(group_json, "state", json_string(state));
		if (volumes == 0 || protection->last_point < point) {
			json_object_set_new(group_json, "last_point",
					    json_integer(protection->last_point));
			json_object_set_new(group_json, "last_point_time_ms",
					    json_integer(protection->last_point_ms));
			json_object_set_new(group_json, "next_point_ms",
					    json_integer(protection->last_point_ms
								 ? protection->last_point_ms +
									   group.interval_s * 1000
								 : status->now_ms));
		}
		if (protection->last_seconds * 1000 >
		    (double)json_integer_value(json_object_get(group_json, "duration_ms")))
			json_object_set_new(
				group_json, "duration_ms",
				json_integer((json_int_t)(protection->last_seconds * 1000)));
		json_object_set_new(
			group_json, "errors",
			json_integer(json_integer_value(json_object_get(group_json, "errors")) +
				     protection->errors));
		if (lag > json_real_value(json_object_get(group_json, "lag_seconds"))) {
			json_object_set_new(group_json, "lag_seconds", json_real(lag));
			json_object_set_new(group_json, "lag_ms",
					    json_integer((json_int_t)(lag * 1000)));
		}
		if (strcmp(state, "error") == 0)
			json_object_set_new(group_json, "reason", json_string(protection->reason));
	}
	return 0;
}

static int
web_group_entry(const struct catalog_group *group, void *context)
{
	struct web_status_context *status = context;

	return json_object_set_new(
		       status->groups, group->name,
		       json_pack("{s:s, s:I, s:I, s:i, s:s, s:I, s:f, s:I, s:I, s:b, s:I,"
				 " s:I, s:I}",
				 "name", group->name, "interval", (json_int_t)group->interval_s,
				 "keep", (json_int_t)group->keep, "volumes", 0, "state",
				 group->paused_ms ? "paused" : "syncing", "last_point",
				 (json_int_t)0, "lag_seconds", 0.0, "lag_ms", (json_int_t)0,
				 "rpo_target", (json_int_t)catalog_group_rpo_target(group),
				 "paused", group->paused_ms > 0, "paused_since_ms",
				 (json_int_t)group->paused_ms, "duration_ms", (json_int_t)0,
				 "errors", (json_int_t)0))
		       ? FERRY_ERR_NO_MEMORY
		       : 0;
}

static enum MHD_Result
web_volume_list(struct web_route_context *route)
{
	struct catalog *catalog = route->server->options.catalog;
	struct web_list_context volumes = {catalog, json_array()};
	struct web_list_context transfers = {catalog, json_array()};
	struct web_status_context status = {catalog, volumes.array, json_object(), util_now_ms()};
	json_t *groups = json_array(), *group;
	const char *name;
	int code;

	code = catalog_volume_list(catalog, web_volume_entry, &volumes);
	if (code == 0)
		code = catalog_transfer_list(catalog, false, web_transfer_entry, &transfers);
	if (code == 0)
		code = catalog_group_list(catalog, web_group_entry, &status);
	if (code == 0)
		code = catalog_protection_list(catalog, web_protection_entry, &status);
	json_object_foreach(status.groups, name, group) json_array_append(groups, group);
	json_decref(status.groups);
	if (code < 0) {
		json_decref(volumes.array);
		json_decref(transfers.array);
		json_decref(groups);
		return web_reply_last_error(route->connection, code);
	}
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:o, s:o, s:o}", "volumes", volumes.array, "transfers",
					transfers.array, "groups", groups));
}

/* FERRY_ERR_INVALID naming the first key of body that is not in allowed (NULL-terminated). */
int
web_unknown_keys(json_t *body, const char *const *allowed)
{
	const char *key;
	json_t *value;

	json_object_foreach(body, key, value)
	{
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

static enum MHD_Result
web_volume_show(struct web_route_context *route)
{
	struct catalog *catalog = route->server->options.catalog;
	struct web_list_context one = {catalog, json_array()};
	struct catalog_volume volume;
	json_t *entry;
	int code;

	if (!util_volume_name_valid(route->parts[2])) {
		json_decref(one.array);
		return web_reply_error(route->connection, FERRY_ERR_INVALID,
				       "invalid volume name '%.160s'", route->parts[2]);
	}
	code = catalog_volume_get(catalog, route->parts[2], &volume);
	if (code == 0)
		code = web_volume_entry(&volume, &one);
	if (code < 0) {
		json_decref(one.array);
		return web_reply_last_error(route->connection, code);
	}
	entry = json_incref(json_array_get(one.array, 0));
	json_decref(one.array);
	return web_reply_json(route->connection, MHD_HTTP_OK, entry);
}

static enum MHD_Result
web_transfer_list(struct web_route_context *route)
{
	struct web_list_context transfers = {route->server->options.catalog, json_array()};
	int code = catalog_transfer_list(transfers.catalog, true, web_transfer_entry, &transfers);

	if (code < 0) {
		json_decref(transfers.array);
		return web_reply_last_error(route->connection, code);
	}
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:o}", "transfers", transfers.array));
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
web_routes_print(FILE *out)
{
	for (size_t i = 0; i < sizeof(web_routes) / sizeof(web_routes[0]); i++) {
		fprintf(out, "%s %s", web_routes[i].method, web_routes[i].parts ? "" : "/");
		for (int part = 0; part < web_routes[i].parts; part++)
			fprintf(out, "/%s", web_routes[i].pattern[part]);
		fprintf(out, " %s\n", web_access_names[web_routes[i].access]);
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
			web_metrics_count_request(method, NULL, 0, web_last_status());
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
			web_metrics_count_request(method, found->pattern, found->parts,
						  web_last_status());
			return result;
		}
		if (found) {
			if (web_route_refused(&route, found)) {
				enum MHD_Result result =
					web_reply_last_error(connection, FERRY_ERR_FORBIDDEN);

				request->answered = true;
				web_audit_record(&route, web_last_status());
				web_metrics_count_request(method, found->pattern, found->parts,
							  web_last_status());
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
		web_metrics_count_request(method, NULL, 0, path_known ? 405 : 404);
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
		web_metrics_count_request(method, found->pattern, found->parts, web_last_status());
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
