/* The routes of a site's volumes and their transfers: the replication endpoint a peer pushes to
 * (begin, segments, commit, verify) and the status an operator reads (volumes with their
 * transfers, protected images and their groups). */
#include "web/web.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *
web_transfer_json(const struct catalog_transfer *transfer)
{
	uint64_t carried = catalog_transfer_segments_carried(transfer);
	bool whole = transfer->segments_durable >= transfer->segments_total;

	/* bytes_durable is exact for a finished full copy, else counted in whole segments. */
	return json_pack(
		"{s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:s, s:s, s:s, s:s,"
		" s:I, s:I, s:I}",
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
		(json_int_t)transfer->updated_ms, "generation", (json_int_t)transfer->generation);
}

/* Reads [[first, last], ...] into out: ascending, each first <= last. */
static int
web_ranges_from_json(json_t *array, struct range_set *out)
{
	size_t i;
	json_t *pair;

	if (!json_is_array(array))
		return FERRY_ERR_INVALID;
	json_array_foreach(array, i, pair) {
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

enum MHD_Result
web_transfer_begin(struct web_route_context *route)
{
	struct repl_begin_request begin = {0};
	struct range_set members;
	struct catalog_transfer transfer;
	struct range_set durable;
	json_t *body, *ranges = NULL, *size, *segment_size;
	enum MHD_Result result;
	int64_t generation;
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
	code = web_push_group_parse(body, &begin.push);
	if (code < 0) {
		json_decref(body);
		return web_reply_last_error(route->connection, code);
	}
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
	range_set_free(&members);
	if (code < 0) {
		result = web_reply_push_error(route, code, begin.volume, &begin.push);
		json_decref(body);
		return result;
	}
	generation = web_push_generation(route, begin.volume, &begin.push);
	json_decref(body);
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
				json_pack("{s:o, s:o, s:I}", "transfer",
					  web_transfer_json(&transfer), "durable", ranges,
					  "generation", (json_int_t)generation));
	return result;
}

int
web_parse_unsigned(const char *text, uint64_t *out)
{
	int64_t value;
	int rc = util_parse_int64(text, 0, INT64_MAX, &value);

	if (rc == 0)
		*out = (uint64_t)value;
	return rc;
}

enum MHD_Result
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

enum MHD_Result
web_transfer_commit(struct web_route_context *route)
{
	struct catalog_transfer transfer;
	struct repl_push_group push = {0};
	json_t *body, *transfer_id;
	enum MHD_Result result;
	int64_t generation;
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
	code = web_push_group_parse(body, &push);
	if (code == 0)
		code = repl_receiver_commit(route->server->options.receiver, route->parts[2],
					    json_integer_value(transfer_id),
					    json_string_value(json_object_get(body, "digest")),
					    &push, &transfer);
	if (code < 0) {
		result = web_reply_push_error(route, code, route->parts[2], &push);
		json_decref(body);
		return result;
	}
	generation = web_push_generation(route, route->parts[2], &push);
	json_decref(body);
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:o, s:I}", "transfer", web_transfer_json(&transfer),
					"generation", (json_int_t)generation));
}

int
web_push_group_parse(json_t *body, struct repl_push_group *out)
{
	json_t *group = json_object_get(body, "group"),
	       *generation = json_object_get(body, "generation");

	memset(out, 0, sizeof(*out));
	if ((group && !json_is_string(group)) || (generation && !json_is_integer(generation)))
		return ferry_error_set(FERRY_ERR_INVALID,
				       "'group' must be a group name and 'generation' a number");
	out->group = json_string_value(group);
	/* Out of range is the receiver's to refuse, with its message; a negative one too. */
	out->generation = generation ? json_integer_value(generation) : 0;
	if (generation && out->generation == 0)
		out->generation = -1;
	return 0;
}

int64_t
web_push_generation(struct web_route_context *route, const char *volume,
		    const struct repl_push_group *push)
{
	struct catalog *catalog = route->server->options.catalog;
	struct catalog_generation own;
	struct catalog_volume record;
	const char *group = push->group;

	if (group == NULL && util_volume_name_valid(volume) &&
	    catalog_volume_get(catalog, volume, &record) == 0 && record.group[0])
		group = record.group;
	if (group == NULL || catalog_generation_get(catalog, group, &own) < 0)
		return 0;
	return own.generation;
}

enum MHD_Result
web_reply_push_error(struct web_route_context *route, int code, const char *volume,
		     const struct repl_push_group *push)
{
	char message[1024];
	int64_t generation;

	if (code != FERRY_ERR_SPLIT_BRAIN)
		return web_reply_last_error(route->connection, code);
	/* Kept aside: the look-up below may record messages of its own. */
	snprintf(message, sizeof(message), "%s", ferry_error_message());
	generation = web_push_generation(route, volume, push);
	return web_reply_error_detail(
		route->connection, code, message,
		json_pack("{s:s?, s:I, s:I}", "group", push->group, "generation",
			  (json_int_t)generation, "peer_generation",
			  (json_int_t)(push->generation > 0 ? push->generation : 1)));
}

enum MHD_Result
web_volume_verify(struct web_route_context *route)
{
	char digest[DIGEST_STRING_SIZE];
	json_t *body, *segment_size, *point;
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
	point = json_object_get(body, "point");
	if (point && (!json_is_integer(point) || json_integer_value(point) < 1)) {
		json_decref(body);
		return web_reply_error(route->connection, FERRY_ERR_INVALID,
				       "'point' must be a point number (1 or more)");
	}
	code = repl_receiver_verify(route->server->options.receiver, route->parts[2],
				    (uint64_t)json_integer_value(segment_size),
				    point ? json_integer_value(point) : 0, digest);
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

	int64_t promoted_by = 0;

	if (entry == NULL)
		return ferry_error_no_memory();
	if (volume->transfer_id &&
	    catalog_transfer_get(list->catalog, volume->transfer_id, &transfer) == 0) {
		json_object_set_new(entry, "state",
				    json_string(catalog_transfer_state_name(transfer.state)));
		json_object_set_new(entry, "transfer", web_transfer_json(&transfer));
	}
	/* A replica of a group, and whether it is written here now (promoted). */
	if (volume->group[0])
		json_object_set_new(entry, "group", json_string(volume->group));
	catalog_promoted_get(list->catalog, volume->name, &promoted_by);
	json_object_set_new(entry, "promoted", json_boolean(promoted_by != 0));
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
	struct repl_scheduler *scheduler; /* NULL: no retries to show */
};

static const char *const web_state_order[] = {"in-sync", "syncing", "paused",	  "at-risk",
					      "lagging", "error",   "split-brain"};

static int
web_state_rank(const char *state)
{
	for (int i = 0; i < (int)(sizeof(web_state_order) / sizeof(web_state_order[0])); i++)
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
	int64_t next_retry_ms = 0;
	int failures = 0;
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
		return ferry_error_no_memory();
	/* Times in milliseconds, as everywhere else; the fields above stay for old readers. */
	json_object_set_new(entry, "last_point_time_ms", json_integer(protection->last_point_ms));
	json_object_set_new(entry, "lag_ms", json_integer(lag < 0 ? 0 : (json_int_t)(lag * 1000)));
	json_object_set_new(entry, "duration_ms",
			    json_integer((json_int_t)(protection->last_seconds * 1000)));
	/* A failed cycle is tried again after a backoff: when, and how many failed in a row
	 * (0 and 0 when the last cycle went well). */
	repl_scheduler_retry(status->scheduler, protection->group, &next_retry_ms, &failures);
	json_object_set_new(entry, "next_retry_ms", json_integer(next_retry_ms));
	json_object_set_new(entry, "failed_cycles", json_integer(failures));
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
		json_object_set_new(group_json, "next_retry_ms", json_integer(next_retry_ms));
		json_object_set_new(group_json, "failed_cycles", json_integer(failures));
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
				 " s:I, s:I, s:I, s:i}",
				 "name", group->name, "interval", (json_int_t)group->interval_s,
				 "keep", (json_int_t)group->keep, "volumes", 0, "state",
				 group->paused_ms ? "paused" : "syncing", "last_point",
				 (json_int_t)0, "lag_seconds", 0.0, "lag_ms", (json_int_t)0,
				 "rpo_target", (json_int_t)catalog_group_rpo_target(group),
				 "paused", group->paused_ms > 0, "paused_since_ms",
				 (json_int_t)group->paused_ms, "duration_ms", (json_int_t)0,
				 "errors", (json_int_t)0, "next_retry_ms", (json_int_t)0,
				 "failed_cycles", 0))
		       ? FERRY_ERR_NO_MEMORY
		       : 0;
}

/* A group's predicted RPO (replicator/prediction.c): its rates over its recent cycles and the
 * lag they lead to, null while unknown (a fresh daemon, a new group). A group predicted above
 * its RPO target is at-risk, with the reason, unless it is worse already: paused, lagging, in
 * error, or split-brain (set afterwards, by the generations). */
static int
web_group_prediction(const struct catalog_group *group, void *context)
{
	struct web_status_context *status = context;
	json_t *group_json = json_object_get(status->groups, group->name);
	struct repl_prediction prediction;
	const char *state;

	if (group_json == NULL)
		return 0;
	repl_scheduler_prediction(status->scheduler, group, status->now_ms, &prediction);
	json_object_set_new(group_json, "change_rate_bytes_per_second",
			    prediction.known ? json_real(prediction.change_rate) : json_null());
	json_object_set_new(group_json, "ship_rate_bytes_per_second",
			    prediction.known ? json_real(prediction.ship_rate) : json_null());
	json_object_set_new(group_json, "predicted_lag_seconds",
			    prediction.known ? json_real(prediction.predicted_lag_s) : json_null());
	json_object_set_new(group_json, "prediction_cycles", json_integer(prediction.cycles));
	json_object_set_new(group_json, "lag_grows", json_boolean(prediction.grows));
	if (prediction.known)
		json_object_set_new(group_json, "prediction", json_string(prediction.reason));
	state = json_string_value(json_object_get(group_json, "state"));
	if (prediction.at_risk && state && web_state_rank(state) < web_state_rank("at-risk")) {
		json_object_set_new(group_json, "state", json_string("at-risk"));
		json_object_set_new(group_json, "reason", json_string(prediction.reason));
	}
	return 0;
}

/* A group's generations (web_generation_entry fills them from the catalog): 1 and nothing learnt
 * until a row says otherwise. */
static void
web_group_generations(json_t *group_json, const struct catalog_generation *generation)
{
	json_object_set_new(group_json, "generation", json_integer(generation->generation));
	json_object_set_new(group_json, "peer_generation",
			    json_integer(generation->peer_generation));
	json_object_set_new(group_json, "split_brain", json_boolean(generation->split_brain_ms));
	json_object_set_new(group_json, "split_brain_since_ms",
			    json_integer(generation->split_brain_ms));
	json_object_set_new(group_json, "promoted_ms", json_integer(generation->raised_ms));
}

/* One row of the generations table in the status: its group's generations, and for a split
 * brain the state split-brain (the group and its protected volumes) with what to do. A group
 * this site only keeps replicas of is listed once it was promoted here or saw a split brain. */
static int
web_generation_entry(const struct catalog_generation *generation, void *context)
{
	struct web_status_context *status = context;
	json_t *group_json = json_object_get(status->groups, generation->group), *volume;
	char hint[1024];
	size_t i;

	if (group_json == NULL && generation->raised_ms == 0 && generation->split_brain_ms == 0)
		return 0;
	if (group_json == NULL) {
		group_json = json_pack(
			"{s:s, s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:i}", "name",
			generation->group, "role", "replica", "volumes", 0, "state", "promoted",
			"last_point", (json_int_t)0, "last_point_time_ms", (json_int_t)0,
			"duration_ms", (json_int_t)0, "rpo_target", (json_int_t)0, "errors",
			(json_int_t)0, "next_retry_ms", (json_int_t)0, "failed_cycles", 0);
		if (group_json == NULL ||
		    json_object_set_new(status->groups, generation->group, group_json) < 0)
			return ferry_error_no_memory();
	}
	web_group_generations(group_json, generation);
	if (generation->split_brain_ms == 0)
		return 0;
	snprintf(hint, sizeof(hint),
		 "split brain: group %s is at generation %lld here and %lld at the other site, "
		 "and both sites wrote its volumes. Keep one side's data: run ferry reprotect %s "
		 "at that site; the other site's writes since the last common point are "
		 "discarded",
		 generation->group, (long long)generation->generation,
		 (long long)generation->peer_generation, generation->group);
	json_object_set_new(group_json, "state", json_string("split-brain"));
	json_object_set_new(group_json, "hint", json_string(hint));
	json_array_foreach(status->volumes, i, volume) {
		const char *group = json_string_value(json_object_get(volume, "group"));

		if (group && strcmp(group, generation->group) == 0) {
			json_object_set_new(volume, "state", json_string("split-brain"));
			json_object_set_new(volume, "hint", json_string(hint));
		}
	}
	return 0;
}

/* Every group listed at 1, before the generations table says otherwise. */
static void
web_groups_default_generations(json_t *groups)
{
	struct catalog_generation first = {.generation = 1};
	const char *name;
	json_t *group;

	json_object_foreach(groups, name, group)
		web_group_generations(group, &first);
}

enum MHD_Result
web_volume_list(struct web_route_context *route)
{
	struct catalog *catalog = route->server->options.catalog;
	struct web_list_context volumes = {catalog, json_array()};
	struct web_list_context transfers = {catalog, json_array()};
	struct web_status_context status = {
		catalog, volumes.array, json_object(), util_now_ms(),
		route->server->options.cutover ? route->server->options.cutover->scheduler : NULL};
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
	if (code == 0)
		code = catalog_group_list(catalog, web_group_prediction, &status);
	web_groups_default_generations(status.groups);
	if (code == 0)
		code = catalog_generation_list(catalog, web_generation_entry, &status);
	json_object_foreach(status.groups, name, group)
		json_array_append(groups, group);
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

enum MHD_Result
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

enum MHD_Result
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
