/* The sender of `ferry copy`: reads a source in segments and ships what the receiver does not
 * hold yet, with several segments in flight.
 *
 * Resume: the receiver's list of durable segments is the truth. Segments it holds and whose
 * checksum this side recorded are skipped without reading; segments it holds that this side never
 * saw acknowledged (in flight when a run died) are read and checksummed but not sent, so the final
 * digest still covers every byte from the source. Before a segment goes on the wire it is marked
 * "attempted" in the CLI's catalog; a later run that sends it again counts it as re-sent.
 *
 * Threads: `jobs` workers, each with its own connection, codec and buffers, claim the next
 * segment index under `lock`; the calling thread draws progress and joins them.
 *
 * Retries: a segment whose send failed for a passing reason (the link, the receiver restarting,
 * a checksum refused) is tried again with capped exponential backoff and jitter
 * (api_backoff_ms) for at most retry_seconds, and the control calls (begin, the base's size,
 * commit) alike through their client, so that a copy outlives a receiver's restart of a few
 * seconds; options->cancel cuts every wait and call when the process stops. */
#include "replicator/backend.h"
#include "common/api_client.h"
#include "common/error.h"
#include "common/log.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEND_RETRY_BASE_MS 250
#define SEND_RETRY_CAP_MS  15000

enum segment_job { JOB_SKIP, JOB_CHECKSUM_ONLY, JOB_SEND };

struct copy_run {
	const struct repl_copy_options *options;
	struct repl_volume *source;
	struct catalog_transfer local;
	int64_t remote_id;
	uint64_t segment_size;
	uint64_t segments_total;
	struct range_set remote_durable;
	struct range_set local_known;
	struct range_set local_attempted;
	/* A delta: the segments it carries, the base's identity, the segment size it must use. */
	bool delta;
	struct range_set members;
	char base_identity[256];
	uint64_t base_segment_size;

	pthread_mutex_t lock;
	uint64_t next_index;
	bool failed;
	int error_code;
	char error_message[1024];
	/* statistics, under lock */
	uint64_t bytes_done; /* plain bytes handled this run */
	uint64_t bytes_sent;
	uint64_t bytes_resent;
	uint64_t bytes_read;
	uint64_t bytes_changed; /* a delta: the changed extents of its segments that hold data */
	uint64_t segments_zero;
	uint64_t segments_sent;
	uint64_t retries;
	int workers_running;
	pthread_cond_t workers_done; /* signalled when workers_running reaches 0 */
	double link_free_at; /* --bwlimit: when the link has sent what was scheduled on it */
};

static enum segment_job
copy_job_for(const struct copy_run *run, uint64_t index)
{
	if (run->delta && !range_set_contains(&run->members, index))
		return JOB_SKIP;
	if (!range_set_contains(&run->remote_durable, index))
		return JOB_SEND;
	return range_set_contains(&run->local_known, index) ? JOB_SKIP : JOB_CHECKSUM_ONLY;
}

static void
copy_fail(struct copy_run *run, int code)
{
	pthread_mutex_lock(&run->lock);
	if (!run->failed) {
		run->failed = true;
		run->error_code = code;
		snprintf(run->error_message, sizeof(run->error_message), "%s",
			 ferry_error_message());
	}
	pthread_mutex_unlock(&run->lock);
}

/* Claims the next index that needs work; false when none is left or the run failed. */
static bool
copy_claim(struct copy_run *run, uint64_t *index, enum segment_job *job)
{
	bool claimed = false;

	pthread_mutex_lock(&run->lock);
	if (!run->failed && run->options->cancel && atomic_load(run->options->cancel)) {
		run->failed = true;
		run->error_code = FERRY_ERR_NETWORK;
		snprintf(run->error_message, sizeof(run->error_message),
			 "copy of %s to %s cut: this process is stopping; the next run resumes",
			 run->options->name, run->options->url);
	}
	while (!run->failed && run->next_index < run->segments_total) {
		uint64_t candidate = run->next_index++;

		*job = copy_job_for(run, candidate);
		if (*job != JOB_SKIP) {
			*index = candidate;
			claimed = true;
			break;
		}
	}
	pthread_mutex_unlock(&run->lock);
	return claimed;
}

static bool
copy_error_is_transient(int code)
{
	return code == FERRY_ERR_NETWORK || code == FERRY_ERR_CHECKSUM || code == FERRY_ERR_IO ||
	       code == FERRY_ERR_REMOTE || code == FERRY_ERR_INTERNAL;
}

/* How long a passing failure is retried: options->retry_seconds, 0 the default, < 0 never. */
static int64_t
copy_retry_seconds(const struct repl_copy_options *options)
{
	if (options->retry_seconds < 0)
		return 0;
	return options->retry_seconds > 0 ? options->retry_seconds : REPL_COPY_RETRY_SECONDS;
}

/* The retries of one call ran out: its last failure, and for how long it was retried. */
static int
copy_gave_up(int code, int tries, int64_t first_failure_ms)
{
	char cause[1024];

	if (tries < 2)
		return code;
	snprintf(cause, sizeof(cause), "%s", ferry_error_message());
	return ferry_error_set(code, "%s (tried %d times over %.0f s; re-run to resume)", cause,
			       tries, (double)(util_now_ms() - first_failure_ms) / 1000.0);
}

#ifdef FERRY_FAULT_INJECTION
/* Test hook: FERRY_FAULT_CORRUPT_SEGMENT=N flips a byte of segment N's body on its first
 * attempt, after the checksum was taken, so the receiver must refuse it and the sender retry. */
static bool
copy_fault_corrupt(uint64_t index, int attempt)
{
	const char *value = getenv("FERRY_FAULT_CORRUPT_SEGMENT");
	int64_t wanted = -1;

	return value && attempt == 0 && util_parse_int64(value, 0, INT64_MAX, &wanted) == 0 &&
	       (uint64_t)wanted == index;
}

/* Test hook: FERRY_FAULT_EXIT_AFTER_DELTA_SEGMENTS=N ends the process as kill -9 would once N
 * segments of a delta are durable at the receiver, before its commit: the replica then holds
 * part of a point that must never be exposed (a primary that died mid-delta). */
static void
copy_fault_exit_after(const struct copy_run *run, uint64_t segments_sent)
{
	const char *value = getenv("FERRY_FAULT_EXIT_AFTER_DELTA_SEGMENTS");
	int64_t wanted = -1;

	if (value && run->delta && util_parse_int64(value, 0, INT64_MAX, &wanted) == 0 &&
	    segments_sent == (uint64_t)wanted) {
		log_warn("%s: FERRY_FAULT_EXIT_AFTER_DELTA_SEGMENTS: exiting after %" PRIu64
			 " segment(s) of a delta",
			 run->options->name, segments_sent);
		_exit(137);
	}
}
#endif

struct copy_worker {
	struct copy_run *run;
	struct api_client *client;
	struct segment_codec *codec;
	char *plain;
	char *encoded;
	size_t encoded_capacity;
	/* deltas: the changed extents of the current segment, and their packed form */
	struct segment_extent *extents;
	size_t extent_count;
	uint64_t extent_base;
	bool extents_overflow;
	char *packed;
};

static int
copy_extent_add(uint64_t offset, uint64_t length, void *context)
{
	struct copy_worker *worker = context;
	uint64_t segment_end = worker->extent_base + worker->run->segment_size;
	uint64_t start = offset < worker->extent_base ? worker->extent_base : offset;
	uint64_t end = offset + length > segment_end ? segment_end : offset + length;
	struct segment_extent *last =
		worker->extent_count ? &worker->extents[worker->extent_count - 1] : NULL;

	if (end <= start)
		return 0;
	start -= worker->extent_base;
	end -= worker->extent_base;
	if (last && start <= (uint64_t)last->offset + last->length) {
		if (end > (uint64_t)last->offset + last->length)
			last->length = (uint32_t)(end - last->offset);
		return 0;
	}
	if (worker->extent_count == SEGMENT_EXTENTS_MAX) {
		worker->extents_overflow = true;
		return 0;
	}
	worker->extents[worker->extent_count].offset = (uint32_t)start;
	worker->extents[worker->extent_count].length = (uint32_t)(end - start);
	worker->extent_count++;
	return 0;
}

/* For a segment of a delta: when only a small part of it changed, packs just those extents into
 * worker->encoded and sets *used; otherwise the caller sends the whole segment. */
static int
copy_encode_extents(struct copy_worker *worker, uint64_t offset, size_t length, size_t *body_length,
		    bool *used)
{
	struct copy_run *run = worker->run;
	uint64_t changed = 0;
	size_t packed_length;
	int rc;

	*used = false;
	worker->extent_count = 0;
	worker->extent_base = offset;
	worker->extents_overflow = false;
	rc = repl_volume_diff(run->source, run->options->from_snapshot, offset, length, true,
			      copy_extent_add, worker);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < worker->extent_count; i++)
		changed += worker->extents[i].length;
	pthread_mutex_lock(&run->lock);
	run->bytes_changed += worker->extents_overflow ? length : changed;
	pthread_mutex_unlock(&run->lock);
	/* Past half the segment, the whole of it compresses as well and is simpler to apply. */
	if (worker->extents_overflow || worker->extent_count == 0 || changed * 2 > length)
		return 0;
	packed_length = segment_extents_pack(worker->plain, worker->extents, worker->extent_count,
					     worker->packed);
	rc = segment_encode(worker->codec, worker->packed, packed_length, worker->encoded,
			    worker->encoded_capacity, body_length);
	*used = rc == 0;
	return rc;
}

/* Shares --bwlimit between the workers: each body is scheduled on the link after the ones
 * before it, and its worker waits for its turn. Without a limit it returns at once. */
static void
copy_throttle(struct copy_run *run, size_t bytes)
{
	double limit = (double)run->options->bandwidth_limit, now, start;

	if (limit <= 0 || bytes == 0)
		return;
	pthread_mutex_lock(&run->lock);
	now = util_monotonic_seconds();
	if (run->link_free_at < now)
		run->link_free_at = now;
	start = run->link_free_at;
	run->link_free_at += (double)bytes / limit;
	pthread_mutex_unlock(&run->lock);
	if (start > now) {
		double wait = start - now;
		struct timespec pause = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};

		nanosleep(&pause, NULL);
	}
}

static int
copy_send_segment(struct copy_worker *worker, uint64_t index, uint64_t length,
		  enum segment_encoding encoding, size_t body_length, const struct checksum *sum,
		  bool resend)
{
	struct copy_run *run = worker->run;
	char path[512], transfer_header[64], length_header[64], encoding_header[64];
	char checksum_header[64], hex[CHECKSUM_HEX_LENGTH + 1];
	const char *headers[] = {transfer_header, length_header, encoding_header, checksum_header,
				 NULL};
	int64_t first_failure_ms = 0, deadline_ms = 0;
	int rc = 0;

	checksum_to_hex(sum, hex);
	snprintf(path, sizeof(path), "/v1/volumes/%s/segments/%" PRIu64, run->options->name, index);
	snprintf(transfer_header, sizeof(transfer_header), "X-Ferry-Transfer: %" PRId64,
		 run->remote_id);
	snprintf(length_header, sizeof(length_header), "X-Ferry-Length: %" PRIu64, length);
	snprintf(encoding_header, sizeof(encoding_header), "X-Ferry-Encoding: %s",
		 segment_encoding_name(encoding));
	snprintf(checksum_header, sizeof(checksum_header), "X-Ferry-Checksum: %s", hex);

	rc = catalog_transfer_mark_attempted(run->options->catalog, run->local.id, index);
	if (rc < 0)
		return rc;
	for (int attempt = 0;; attempt++) {
		if (attempt > 0) {
			int64_t wait_ms =
				api_backoff_ms(attempt, SEND_RETRY_BASE_MS, SEND_RETRY_CAP_MS);

			if (util_now_ms() + wait_ms > deadline_ms) {
				rc = copy_gave_up(rc, attempt, first_failure_ms);
				break;
			}
			log_warn("segment %" PRIu64 " of %s: %s; trying again in %.1f s (try %d)",
				 index, run->options->name, ferry_error_message(),
				 (double)wait_ms / 1000.0, attempt + 1);
			if (!api_backoff_sleep(wait_ms, run->options->cancel))
				break;
			pthread_mutex_lock(&run->lock);
			run->retries++;
			pthread_mutex_unlock(&run->lock);
		}
#ifdef FERRY_FAULT_INJECTION
		if (copy_fault_corrupt(index, attempt) && body_length > 0)
			worker->encoded[body_length / 2] ^= 0x5a;
#endif
		copy_throttle(run, body_length);
		rc = api_client_send(worker->client, "PUT", path, "application/octet-stream",
				     worker->encoded, body_length, headers, NULL);
#ifdef FERRY_FAULT_INJECTION
		if (copy_fault_corrupt(index, attempt) && body_length > 0)
			worker->encoded[body_length / 2] ^= 0x5a;
#endif
		pthread_mutex_lock(&run->lock);
		run->bytes_sent += body_length;
		pthread_mutex_unlock(&run->lock);
		if (rc == 0 || !copy_error_is_transient(rc) || run->failed)
			break;
		if (attempt == 0) {
			first_failure_ms = util_now_ms();
			deadline_ms = first_failure_ms + copy_retry_seconds(run->options) * 1000;
		}
	}
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&run->lock);
	run->segments_sent++;
	if (resend)
		run->bytes_resent += body_length;
#ifdef FERRY_FAULT_INJECTION
	copy_fault_exit_after(run, run->segments_sent);
#endif
	pthread_mutex_unlock(&run->lock);
	return 0;
}

static int
copy_one(struct copy_worker *worker, uint64_t index, enum segment_job job)
{
	struct copy_run *run = worker->run;
	uint64_t offset = index * run->segment_size;
	size_t length =
		(size_t)(run->source->size - offset < run->segment_size ? run->source->size - offset
									: run->segment_size);
	enum segment_encoding encoding = SEGMENT_ENCODING_ZERO;
	size_t body_length = 0;
	struct checksum sum;
	bool hole = false;
	int rc;

	rc = repl_volume_is_hole(run->source, offset, length, &hole);
	if (rc < 0)
		return rc;
	if (!hole) {
		rc = repl_volume_read(run->source, offset, worker->plain, length);
		if (rc < 0)
			return rc;
		pthread_mutex_lock(&run->lock);
		run->bytes_read += length;
		pthread_mutex_unlock(&run->lock);
		hole = segment_is_zero(worker->plain, length);
	}
	if (hole) {
		checksum_of_zeroes(length, &sum);
	} else {
		checksum_compute(worker->plain, length, &sum);
		if (job == JOB_SEND && run->delta) {
			bool used;

			rc = copy_encode_extents(worker, offset, length, &body_length, &used);
			if (rc < 0)
				return rc;
			if (used)
				encoding = SEGMENT_ENCODING_EXTENTS;
		}
		if (job == JOB_SEND && encoding != SEGMENT_ENCODING_EXTENTS) {
			encoding = SEGMENT_ENCODING_ZSTD;
			rc = segment_encode(worker->codec, worker->plain, length, worker->encoded,
					    worker->encoded_capacity, &body_length);
			if (rc < 0)
				return rc;
		}
	}
	if (job == JOB_SEND) {
		rc = copy_send_segment(worker, index, length, encoding, body_length, &sum,
				       range_set_contains(&run->local_attempted, index));
		if (rc < 0)
			return rc;
	}
	rc = catalog_transfer_mark_durable(run->options->catalog, run->local.id, index, &sum);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&run->lock);
	run->bytes_done += length;
	if (hole)
		run->segments_zero++;
	pthread_mutex_unlock(&run->lock);
	return 0;
}

static void *
copy_worker_main(void *argument)
{
	struct copy_worker *worker = argument;
	struct copy_run *run = worker->run;
	enum segment_job job;
	uint64_t index;

	while (copy_claim(run, &index, &job)) {
		int rc = copy_one(worker, index, job);

		if (rc < 0) {
			copy_fail(run, rc);
			break;
		}
	}
	pthread_mutex_lock(&run->lock);
	if (--run->workers_running == 0)
		pthread_cond_signal(&run->workers_done);
	pthread_mutex_unlock(&run->lock);
	return NULL;
}

static void
copy_draw_progress(struct copy_run *run, double started, uint64_t skipped_bytes, bool final)
{
	char done_text[32], total_text[32], rate_text[32], eta_text[32] = "--:--";
	double elapsed = util_monotonic_seconds() - started, rate;
	uint64_t done, total = run->source->size;

	pthread_mutex_lock(&run->lock);
	done = skipped_bytes + run->bytes_done;
	rate = elapsed > 0 ? (double)run->bytes_done / elapsed : 0;
	pthread_mutex_unlock(&run->lock);
	if (done > total)
		done = total;
	if (rate > 0) {
		uint64_t eta = (uint64_t)((double)(total - done) / rate);

		snprintf(eta_text, sizeof(eta_text), "%" PRIu64 ":%02" PRIu64, eta / 60, eta % 60);
	}
	util_format_bytes((double)done, done_text, sizeof(done_text));
	util_format_bytes((double)total, total_text, sizeof(total_text));
	util_format_bytes(rate, rate_text, sizeof(rate_text));
	fprintf(stderr, "\r%s: %5.1f%%  %s of %s  %s/s  ETA %s   %s", run->options->name,
		total ? 100.0 * (double)done / (double)total : 100.0, done_text, total_text,
		rate_text, eta_text, final ? "\n" : "");
	fflush(stderr);
}

static int
copy_ranges_from_json(json_t *array, struct range_set *out)
{
	size_t i;
	json_t *pair;

	if (!json_is_array(array))
		return ferry_error_set(FERRY_ERR_REMOTE, "receiver reply lacks 'durable' ranges");
	json_array_foreach(array, i, pair) {
		json_int_t first = json_integer_value(json_array_get(pair, 0));
		json_int_t last = json_integer_value(json_array_get(pair, 1));

		if (json_array_size(pair) != 2 || first < 0 || last < first)
			return ferry_error_set(FERRY_ERR_REMOTE, "receiver sent a bad range");
		if (range_set_add(out, (uint64_t)first, (uint64_t)last) < 0)
			return ferry_error_no_memory();
	}
	return 0;
}

/* Finds or creates this side's record of the transfer the receiver reported. */
static int
copy_local_record(struct copy_run *run)
{
	const struct repl_copy_options *options = run->options;
	int rc;

	rc = catalog_transfer_find_current(options->catalog, CATALOG_ROLE_SEND, options->url,
					   options->name, &run->local);
	if (rc == 0 && (run->local.remote_id != run->remote_id ||
			run->local.segment_size != run->segment_size ||
			strcmp(run->local.source_identity, run->source->identity) != 0)) {
		rc = catalog_transfer_set_state(options->catalog, run->local.id,
						CATALOG_TRANSFER_ABANDONED, NULL);
		if (rc < 0)
			return rc;
		rc = FERRY_ERR_NOT_FOUND;
	}
	if (rc == FERRY_ERR_NOT_FOUND) {
		memset(&run->local, 0, sizeof(run->local));
		run->local.role = CATALOG_ROLE_SEND;
		snprintf(run->local.volume, sizeof(run->local.volume), "%s", options->name);
		snprintf(run->local.peer, sizeof(run->local.peer), "%s", options->url);
		snprintf(run->local.location, sizeof(run->local.location), "%s",
			 run->source->location);
		snprintf(run->local.source_identity, sizeof(run->local.source_identity), "%s",
			 run->source->identity);
		run->local.remote_id = run->remote_id;
		run->local.size = run->source->size;
		run->local.segment_size = run->segment_size;
		run->local.generation = options->push.group ? options->push.generation : 0;
		rc = catalog_transfer_create(options->catalog, &run->local);
	}
	if (rc < 0)
		return rc;
	rc = catalog_transfer_load_ranges(options->catalog, run->local.id, CATALOG_RANGE_DURABLE,
					  &run->local_known);
	if (rc == 0)
		rc = catalog_transfer_load_ranges(options->catalog, run->local.id,
						  CATALOG_RANGE_ATTEMPTED, &run->local_attempted);
	return rc;
}

struct copy_member_context {
	struct range_set *members;
	uint64_t segment_size;
};

static int
copy_member_add(uint64_t offset, uint64_t length, void *context)
{
	struct copy_member_context *member = context;

	if (length == 0)
		return 0;
	return range_set_add(member->members, offset / member->segment_size,
			     (offset + length - 1) / member->segment_size);
}

/* A delta from options->from_snapshot to the source's snapshot: finds the base's identity,
 * the segment size the receiver's volume uses, and the segments that changed. */
static int
copy_prepare_delta(struct copy_run *run, struct api_client *control)
{
	const struct repl_copy_options *options = run->options;
	struct copy_member_context member = {&run->members, 0};
	struct repl_volume *base = NULL;
	json_t *volume = NULL;
	const char *at = strchr(run->source->location, '@');
	char base_location[1100], path[256];
	int rc;

	if (strcmp(run->source->ops->scheme, "rbd") != 0 || at == NULL)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "--from-snap needs a snapshot as the source "
				       "(rbd:POOL/IMAGE@SNAPSHOT), not %s",
				       options->source);
	snprintf(base_location, sizeof(base_location), "rbd:%.*s@%s",
		 (int)(at - run->source->location), run->source->location, options->from_snapshot);
	rc = repl_volume_open(base_location, REPL_OPEN_READ, &base);
	if (rc < 0)
		goto out;
	snprintf(run->base_identity, sizeof(run->base_identity), "%s", base->identity);
	/* A grown image ships its delta over the base grown alike; a shrunk one would cut data
	 * off the replica's last point, so it is refused. */
	if (run->source->size < base->size) {
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "%s shrank from %llu to %llu bytes since %s; ferry does not "
				     "shrink replicas: grow the image back to %llu bytes, or "
				     "unprotect it and protect it again for a new full copy",
				     options->source, (unsigned long long)base->size,
				     (unsigned long long)run->source->size, base_location,
				     (unsigned long long)base->size);
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/volumes/%s", options->name);
	rc = api_client_json(control, "GET", path, NULL, &volume);
	if (rc == FERRY_ERR_NOT_FOUND)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "volume %s is not on %s yet: copy its base %s first, then the "
				     "delta",
				     options->name, options->url, base_location);
	if (rc < 0)
		goto out;
	run->base_segment_size = (uint64_t)json_integer_value(
		json_object_get(json_object_get(volume, "transfer"), "segment_size"));
	if (run->base_segment_size < SEGMENT_SIZE_MIN) {
		rc = ferry_error_set(FERRY_ERR_REMOTE, "%s reports no segment size for %s",
				     options->url, options->name);
		goto out;
	}
	member.segment_size = run->base_segment_size;
	rc = repl_volume_diff(run->source, options->from_snapshot, 0, run->source->size, false,
			      copy_member_add, &member);
	if (rc < 0)
		goto out;
	run->delta = true;
out:
	json_decref(volume);
	repl_volume_close(base);
	return rc;
}

/* A copy that replicates in a group says so, with this site's generation of it. */
static void
copy_push_group(const struct repl_copy_options *options, json_t *request)
{
	if (options->push.group == NULL)
		return;
	json_object_set_new(request, "group", json_string(options->push.group));
	json_object_set_new(request, "generation", json_integer(options->push.generation));
}

/* The receiver's generation of the group, from its answer or its refusal (a split brain). */
static void
copy_peer_generation(struct api_client *control, json_t *reply, int rc,
		     struct repl_copy_result *result)
{
	json_t *generation =
		rc == 0 ? json_object_get(reply, "generation")
			: json_object_get(api_client_error_detail(control), "generation");

	if (json_is_integer(generation) && json_integer_value(generation) > 0)
		result->peer_generation = json_integer_value(generation);
}

static int
copy_begin(struct copy_run *run, struct api_client *control, json_t **transfer_out,
	   struct repl_copy_result *result)
{
	const struct repl_copy_options *options = run->options;
	json_t *request = NULL, *reply = NULL, *transfer;
	const char *snapshot;
	char path[256];
	int rc;

	request = json_pack(
		"{s:I, s:I, s:s, s:s, s:b}", "size", (json_int_t)run->source->size, "segment_size",
		(json_int_t)(run->delta ? run->base_segment_size : options->segment_size),
		"source_identity", run->source->identity, "kind",
		options->target_kind ? options->target_kind : run->source->ops->scheme, "restart",
		options->restart);
	if (request == NULL)
		return ferry_error_no_memory();
	snapshot = strchr(run->source->location, '@');
	if (snapshot && strcmp(run->source->ops->scheme, "rbd") == 0)
		json_object_set_new(request, "snapshot", json_string(snapshot + 1));
	if (run->delta) {
		json_t *ranges = json_array();

		for (size_t i = 0; i < run->members.count; i++)
			json_array_append_new(ranges,
					      json_pack("[I, I]",
							(json_int_t)run->members.ranges[i].first,
							(json_int_t)run->members.ranges[i].last));
		json_object_set_new(request, "segments", ranges);
		json_object_set_new(request, "base_identity", json_string(run->base_identity));
	}
	copy_push_group(options, request);
	snprintf(path, sizeof(path), "/v1/volumes/%s/transfer", options->name);
	rc = api_client_json(control, "POST", path, request, &reply);
	copy_peer_generation(control, reply, rc, result);
	if (rc < 0)
		goto out;
	transfer = json_object_get(reply, "transfer");
	run->remote_id = json_integer_value(json_object_get(transfer, "id"));
	run->segment_size = (uint64_t)json_integer_value(json_object_get(transfer, "segment_size"));
	run->segments_total =
		(uint64_t)json_integer_value(json_object_get(transfer, "segments_total"));
	if (run->remote_id <= 0 || run->segment_size < SEGMENT_SIZE_MIN ||
	    run->segment_size > SEGMENT_SIZE_MAX ||
	    run->segments_total !=
		    (run->source->size + run->segment_size - 1) / run->segment_size) {
		rc = ferry_error_set(FERRY_ERR_REMOTE, "receiver %s sent an inconsistent transfer",
				     options->url);
		goto out;
	}
	if (options->segment_size && options->segment_size != run->segment_size)
		log_warn("%s: resuming with the receiver's segment size %" PRIu64 " (not %" PRIu64
			 "); use --restart to change it",
			 options->name, run->segment_size, options->segment_size);
	rc = copy_ranges_from_json(json_object_get(reply, "durable"), &run->remote_durable);
	if (rc < 0)
		goto out;
	*transfer_out = json_incref(transfer);
out:
	json_decref(request);
	json_decref(reply);
	return rc;
}

static int
copy_commit(struct copy_run *run, struct api_client *control, struct repl_copy_result *result)
{
	json_t *request = NULL, *reply = NULL;
	uint8_t *sums = NULL;
	const char *remote_digest;
	char path[256];
	int rc;

	sums = malloc(run->segments_total * CHECKSUM_BYTES + 1);
	if (sums == NULL)
		return ferry_error_no_memory();
	rc = catalog_transfer_read_checksums(run->options->catalog, run->local.id, sums,
					     run->segments_total);
	if (rc < 0)
		goto out;
	if (run->delta)
		checksum_digest_ranges(sums, &run->members, result->digest);
	else
		checksum_digest(sums, run->segments_total, result->digest);
	request = json_pack("{s:I, s:s}", "transfer_id", (json_int_t)run->remote_id, "digest",
			    result->digest);
	if (request == NULL) {
		rc = ferry_error_no_memory();
		goto out;
	}
	copy_push_group(run->options, request);
	snprintf(path, sizeof(path), "/v1/volumes/%s/commit", run->options->name);
	rc = api_client_json(control, "POST", path, request, &reply);
	copy_peer_generation(control, reply, rc, result);
	if (rc < 0)
		goto out;
	remote_digest =
		json_string_value(json_object_get(json_object_get(reply, "transfer"), "digest"));
	if (remote_digest == NULL || strcmp(remote_digest, result->digest) != 0) {
		rc = ferry_error_set(FERRY_ERR_CHECKSUM, "receiver committed digest %s, ours is %s",
				     remote_digest ? remote_digest : "(none)", result->digest);
		goto out;
	}
	rc = catalog_transfer_set_state(run->options->catalog, run->local.id,
					CATALOG_TRANSFER_COMPLETE, result->digest);
out:
	free(sums);
	json_decref(request);
	json_decref(reply);
	return rc;
}

/* Bytes of the segments the receiver holds durable and this side knew: not sent again. */
static uint64_t
copy_skipped_bytes(const struct copy_run *run)
{
	uint64_t skipped = 0;

	for (size_t i = 0; i < run->remote_durable.count; i++) {
		const struct range *range = &run->remote_durable.ranges[i];

		for (uint64_t index = range->first; index <= range->last; index++)
			if (range_set_contains(&run->local_known, index))
				skipped += index == run->segments_total - 1
						   ? run->source->size - index * run->segment_size
						   : run->segment_size;
	}
	return skipped;
}

/* Each worker's connection, codec and buffers; freed by the caller even on an error. */
static int
copy_workers_make(struct copy_run *run, const struct api_client_options *client_options,
		  struct copy_worker *workers, int jobs)
{
	const struct repl_copy_options *options = run->options;

	for (int i = 0; i < jobs; i++) {
		workers[i].run = run;
		workers[i].client = api_client_new(client_options);
		workers[i].codec = segment_codec_new(options->zstd_level);
		workers[i].plain = malloc(run->segment_size);
		workers[i].encoded_capacity = segment_encoded_bound(
			segment_extents_packed_size(SEGMENT_EXTENTS_MAX, run->segment_size));
		workers[i].encoded = malloc(workers[i].encoded_capacity);
		if (run->delta) {
			workers[i].extents =
				calloc(SEGMENT_EXTENTS_MAX, sizeof(struct segment_extent));
			workers[i].packed = malloc(segment_extents_packed_size(SEGMENT_EXTENTS_MAX,
									       run->segment_size));
			if (!workers[i].extents || !workers[i].packed) {
				return ferry_error_no_memory();
			}
		}
		if (!workers[i].client || !workers[i].codec || !workers[i].plain ||
		    !workers[i].encoded) {
			return ferry_error_no_memory();
		}
	}
	return 0;
}

/* Starts the workers and waits for them all, drawing the progress line meanwhile. */
static void
copy_workers_run(struct copy_run *run, struct copy_worker *workers, pthread_t *threads, int jobs,
		 double started, uint64_t skipped_bytes)
{
	const struct repl_copy_options *options = run->options;
	int started_threads = 0;

	run->workers_running = jobs;
	for (int i = 0; i < jobs; i++) {
		if (pthread_create(&threads[i], NULL, copy_worker_main, &workers[i]) != 0) {
			pthread_mutex_lock(&run->lock);
			run->workers_running -= jobs - i;
			run->failed = true;
			run->error_code = FERRY_ERR_INTERNAL;
			snprintf(run->error_message, sizeof(run->error_message),
				 "pthread_create failed");
			pthread_mutex_unlock(&run->lock);
			break;
		}
		started_threads++;
	}
	/* Woken the moment the last worker ends (a small delta, a guest frozen meanwhile), and
	 * every 200 ms for the progress line. */
	pthread_mutex_lock(&run->lock);
	while (run->workers_running > 0) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 200000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&run->workers_done, &run->lock, &until) != 0 &&
		    options->progress) {
			pthread_mutex_unlock(&run->lock);
			copy_draw_progress(run, started, skipped_bytes, false);
			pthread_mutex_lock(&run->lock);
		}
	}
	pthread_mutex_unlock(&run->lock);
	for (int i = 0; i < started_threads; i++)
		pthread_join(threads[i], NULL);
}

int
repl_copy_run(const struct repl_copy_options *options, struct repl_copy_result *result)
{
	struct api_client_options client_options = {
		.url = options->url,
		.token = options->token,
		.cacert = options->cacert,
		.insecure = options->insecure,
		.stall_seconds = options->stall_seconds,
		.retry_seconds = (int)copy_retry_seconds(options),
		.cancel = options->cancel,
	};
	struct copy_run run;
	struct copy_worker *workers = NULL;
	pthread_t *threads = NULL;
	struct api_client *control = NULL;
	json_t *transfer = NULL;
	double started = util_monotonic_seconds();
	uint64_t skipped_bytes = 0;
	int jobs = options->jobs > 0 ? options->jobs : 4, rc;

	memset(&run, 0, sizeof(run));
	memset(result, 0, sizeof(*result));
	snprintf(result->name, sizeof(result->name), "%s", options->name);
	result->status = "failed";
	run.options = options;
	pthread_mutex_init(&run.lock, NULL);
	pthread_cond_init(&run.workers_done, NULL);
	range_set_init(&run.remote_durable);
	range_set_init(&run.local_known);
	range_set_init(&run.local_attempted);
	range_set_init(&run.members);

	if (!util_volume_name_valid(options->name)) {
		rc = ferry_error_set(FERRY_ERR_INVALID,
				     "invalid volume name '%s': use A-Z a-z 0-9 . _ - (not "
				     "starting with '.')",
				     options->name);
		goto out;
	}
	rc = repl_volume_open(options->source, REPL_OPEN_READ, &run.source);
	if (rc < 0)
		goto out;
	result->bytes_total = run.source->size;
	control = api_client_new(&client_options);
	if (control == NULL) {
		rc = ferry_error_last_code() ? ferry_error_last_code() : ferry_error_no_memory();
		goto out;
	}
	if (options->from_snapshot) {
		rc = copy_prepare_delta(&run, control);
		if (rc < 0)
			goto out;
		result->segments_delta = range_set_size(&run.members);
	}
	rc = copy_begin(&run, control, &transfer, result);
	if (rc < 0)
		goto out;
	result->transfer_id = run.remote_id;
	result->segments_total = run.segments_total;
	result->segment_size = run.segment_size;
	result->segments_skipped = range_set_size(&run.remote_durable);
	rc = copy_local_record(&run);
	if (rc < 0)
		goto out;
	if (strcmp(json_string_value(json_object_get(transfer, "state")) ?: "", "complete") == 0) {
		/* Already complete with this very source: nothing to send or read. */
		snprintf(result->digest, sizeof(result->digest), "%s",
			 json_string_value(json_object_get(transfer, "digest")) ?: "");
		if (run.local.state != CATALOG_TRANSFER_COMPLETE)
			catalog_transfer_set_state(options->catalog, run.local.id,
						   CATALOG_TRANSFER_COMPLETE, result->digest);
		result->status = "complete";
		goto out;
	}
	skipped_bytes = copy_skipped_bytes(&run);

	/* Each connection may use the whole limit; copy_throttle() keeps their sum under it. A
	 * segment's retries are the worker's own (a refused checksum is retried too). */
	client_options.max_send_speed = options->bandwidth_limit;
	client_options.retry_seconds = 0;
	workers = calloc((size_t)jobs, sizeof(*workers));
	threads = calloc((size_t)jobs, sizeof(*threads));
	if (workers == NULL || threads == NULL) {
		rc = ferry_error_no_memory();
		goto out;
	}
	rc = copy_workers_make(&run, &client_options, workers, jobs);
	if (rc < 0)
		goto out;
	copy_workers_run(&run, workers, threads, jobs, started, skipped_bytes);
	if (options->progress)
		copy_draw_progress(&run, started, skipped_bytes, true);
	if (run.failed) {
		rc = ferry_error_set(run.error_code, "%s", run.error_message);
		goto out;
	}
	rc = copy_commit(&run, control, result);
	if (rc < 0)
		goto out;
	result->status = "complete";
out:
	result->bytes_sent = run.bytes_sent;
	result->bytes_resent = run.bytes_resent;
	result->bytes_read = run.bytes_read;
	result->bytes_changed = run.delta ? run.bytes_changed : run.bytes_read;
	result->segments_zero = run.segments_zero;
	result->segments_sent = run.segments_sent;
	result->retries = run.retries + api_client_retries(control);
	result->seconds = util_monotonic_seconds() - started;
	for (int i = 0; workers && i < jobs; i++) {
		api_client_free(workers[i].client);
		segment_codec_free(workers[i].codec);
		free(workers[i].plain);
		free(workers[i].encoded);
		free(workers[i].extents);
		free(workers[i].packed);
	}
	free(workers);
	free(threads);
	json_decref(transfer);
	api_client_free(control);
	repl_volume_close(run.source);
	range_set_free(&run.remote_durable);
	range_set_free(&run.local_known);
	range_set_free(&run.local_attempted);
	range_set_free(&run.members);
	pthread_mutex_destroy(&run.lock);
	pthread_cond_destroy(&run.workers_done);
	return rc;
}
