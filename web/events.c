/* The event log over HTTP: GET /v1/events answers the newest 200 at once; GET
 * /v1/events/stream is Server-Sent Events (points committed, state changes, run steps begun and
 * ended, errors), each with its catalog id, so that a client reconnecting with Last-Event-ID
 * misses nothing and sees nothing twice. */
#include "web/web.h"
#include "common/error.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A stream sends a comment this often when nothing happens, so that neither ferryd's idle
 * timeout nor a proxy closes it. */
#define WEB_EVENT_HEARTBEAT_MS 5000
#define WEB_EVENT_POLL_MS      250

static json_t *
web_event_json(const struct catalog_event *event)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)event->id, "time_ms",
			 (json_int_t)event->time_ms, "kind", event->kind, "level", event->level,
			 "object", event->object, "message", event->message);
}

static int
web_event_entry(const struct catalog_event *event, void *context)
{
	return json_array_append_new(context, web_event_json(event)) ? FERRY_ERR_NO_MEMORY : 0;
}

enum MHD_Result
web_event_list(struct web_route_context *route)
{
	json_t *array = json_array();
	int code = catalog_event_list(route->server->options.catalog, 200, web_event_entry, array);

	if (code < 0) {
		json_decref(array);
		return web_reply_last_error(route->connection, code);
	}
	return web_reply_json(route->connection, MHD_HTTP_OK, json_pack("{s:o}", "events", array));
}

struct web_event_stream {
	struct web_server *server;
	struct catalog *catalog;
	int64_t last_id;
	char *pending; /* formatted events not yet handed to MHD */
	size_t pending_length;
	size_t pending_sent;
	int64_t last_write_ms;
};

static int
web_event_format(const struct catalog_event *event, void *context)
{
	struct web_event_stream *stream = context;
	json_t *data = web_event_json(event);
	char *text = json_dumps(data, JSON_COMPACT), *grown;
	int length;

	json_decref(data);
	if (text == NULL)
		return ferry_error_no_memory();
	length = snprintf(NULL, 0, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)event->id,
			  event->kind, text);
	grown = realloc(stream->pending, stream->pending_length + (size_t)length + 1);
	if (grown == NULL) {
		free(text);
		return ferry_error_no_memory();
	}
	stream->pending = grown;
	snprintf(stream->pending + stream->pending_length, (size_t)length + 1,
		 "id: %lld\nevent: %s\ndata: %s\n\n", (long long)event->id, event->kind, text);
	stream->pending_length += (size_t)length;
	stream->last_id = event->id;
	free(text);
	return 0;
}

/* MHD asks for more of the body; this connection has a thread of its own, so waiting here for
 * the next event holds no one else up. Returns how many bytes it wrote into buffer. */
static ssize_t
web_event_more(void *context, uint64_t position, char *buffer, size_t size)
{
	struct web_event_stream *stream = context;

	(void)position;
	for (;;) {
		if (stream->pending_sent < stream->pending_length) {
			size_t count = stream->pending_length - stream->pending_sent;

			if (count > size)
				count = size;
			memcpy(buffer, stream->pending + stream->pending_sent, count);
			stream->pending_sent += count;
			if (stream->pending_sent == stream->pending_length)
				stream->pending_sent = stream->pending_length = 0;
			stream->last_write_ms = util_now_ms();
			return (ssize_t)count;
		}
		if (catalog_event_list_after(stream->catalog, stream->last_id, 100,
					     web_event_format, stream) < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (stream->pending_length > 0)
			continue;
		if (__atomic_load_n(&stream->server->stopping, __ATOMIC_ACQUIRE))
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (util_now_ms() - stream->last_write_ms >= WEB_EVENT_HEARTBEAT_MS && size >= 2) {
			memcpy(buffer, ":\n", 2);
			stream->last_write_ms = util_now_ms();
			return 2;
		}
		usleep(WEB_EVENT_POLL_MS * 1000);
	}
}

static void
web_event_stream_free(void *context)
{
	struct web_event_stream *stream = context;

	free(stream->pending);
	free(stream);
}

/* The newest event's id: a stream without Last-Event-ID starts from now. */
static int
web_event_newest(const struct catalog_event *event, void *context)
{
	*(int64_t *)context = event->id;
	return 0;
}

enum MHD_Result
web_event_stream(struct web_route_context *route)
{
	const char *resume =
		MHD_lookup_connection_value(route->connection, MHD_HEADER_KIND, "Last-Event-ID");
	struct web_event_stream *stream = calloc(1, sizeof(*stream));
	struct MHD_Response *response;
	int64_t after = 0;

	if (stream == NULL)
		return web_reply_error(route->connection, FERRY_ERR_NO_MEMORY,
				       "no memory for an event stream");
	if (resume && util_parse_int64(resume, 0, INT64_MAX, &after) < 0) {
		free(stream);
		return web_reply_error(route->connection, FERRY_ERR_INVALID,
				       "Last-Event-ID '%.40s' is not an event id", resume);
	}
	stream->server = route->server;
	stream->catalog = route->server->options.catalog;
	if (resume == NULL)
		catalog_event_list(stream->catalog, 1, web_event_newest, &after);
	stream->last_id = after;
	stream->last_write_ms = util_now_ms();
	response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, web_event_more, stream,
						     web_event_stream_free);
	if (response == NULL) {
		free(stream);
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	return web_reply_response(route->connection, MHD_HTTP_OK, response);
}
