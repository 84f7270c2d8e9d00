/* The receiver's apply side: what ferryd does with a transfer's begin, segments and commit.
 *
 * Invariants (the design's rules, held here):
 *  1. A segment is acknowledged (0 returned) only after its bytes matched their checksum, were
 *     written, flushed to stable storage, and recorded durable in the catalog, in that order.
 *  2. A transfer restarts only on purpose (restart) or when nothing of it is durable yet;
 *     a different source never silently continues someone else's partial copy.
 *  3. A transfer is complete only when every segment is durable and the digests match.
 *  4. A begin, commit or prune at a lower generation of its group than this site's changes
 *     nothing (repl_generation_check, under `lock` held exclusively, before anything else).
 * Segments run in parallel under the shared side of `lock`; begin and commit take it exclusively,
 * so a restart never races a segment of the transfer it replaces. */
#include "replicator/backend.h"
#include "common/error.h"
#include "common/log.h"

#include <limits.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECEIVER_OPEN_VOLUMES 64
/* Changed extents of a segment closer than this are written as one piece, the verified base
 * bytes between them included. Storage works in units of about this size (memstore's pages,
 * bluestore's allocation unit on disks), so a short gap costs little more than the extents
 * around it, while each write saved is a whole op: 4 KiB changes scattered over a quarter of an
 * object come as some 190 extents and land as a few writes. */
#define RECEIVER_EXTENT_GAP (64u << 10)

#define RECEIVER_SEGMENT_STRIPES 64
/* The largest volumes: a file up to ext4's 16 TiB, an RBD image up to 1 PiB. */
#define RECEIVER_FILE_SIZE_MAX (16ull << 40)
#define RECEIVER_RBD_SIZE_MAX  (1ull << 50)

struct repl_receiver {
	struct catalog *catalog;
	char volumes_dir[PATH_MAX];
	char replica_pool[128]; /* "" when this site has no Ceph */
	pthread_rwlock_t lock;
	/* Write handles kept open between segments: an RBD image must not be reopened (and its
	 * exclusive lock passed around) for every segment. Entries are added under open_lock
	 * while `lock` is held shared, and removed only while `lock` is held exclusively. */
	pthread_mutex_t open_lock;
	/* Two PUTs of one segment (two senders of one name) must not interleave their write,
	 * flush and record: the recorded checksum has to describe the bytes on disk. A segment
	 * holds its stripe from the first byte written until it is recorded. */
	pthread_mutex_t segment_locks[RECEIVER_SEGMENT_STRIPES];
	struct {
		char location[1024];
		struct repl_volume *volume;
	} open[RECEIVER_OPEN_VOLUMES];
};

struct repl_receiver *
repl_receiver_new(struct catalog *catalog, const char *state_dir, const char *replica_pool)
{
	struct repl_receiver *receiver = calloc(1, sizeof(*receiver));

	if (receiver == NULL)
		return NULL;
	receiver->catalog = catalog;
	snprintf(receiver->replica_pool, sizeof(receiver->replica_pool), "%s",
		 replica_pool ? replica_pool : "");
	snprintf(receiver->volumes_dir, sizeof(receiver->volumes_dir), "%s/volumes", state_dir);
	if (util_mkdir_p(receiver->volumes_dir, 0700) < 0) {
		log_error("%s", ferry_error_message());
		free(receiver);
		return NULL;
	}
	pthread_rwlock_init(&receiver->lock, NULL);
	for (int i = 0; i < RECEIVER_SEGMENT_STRIPES; i++)
		pthread_mutex_init(&receiver->segment_locks[i], NULL);
	pthread_mutex_init(&receiver->open_lock, NULL);
	return receiver;
}

void
repl_receiver_free(struct repl_receiver *receiver)
{
	if (receiver == NULL)
		return;
	for (int i = 0; i < RECEIVER_OPEN_VOLUMES; i++)
		repl_volume_close(receiver->open[i].volume);
	pthread_mutex_destroy(&receiver->open_lock);
	pthread_rwlock_destroy(&receiver->lock);
	for (int i = 0; i < RECEIVER_SEGMENT_STRIPES; i++)
		pthread_mutex_destroy(&receiver->segment_locks[i]);
	free(receiver);
}

/* The shared write handle of location, opened on first use. The caller holds `lock` (either
 * side), which keeps the handle open. *owned is true when the table was full and the caller
 * got a handle of its own to close. */
static int
receiver_volume_get(struct repl_receiver *receiver, const char *location, struct repl_volume **out,
		    bool *owned)
{
	int free_slot = -1, rc = 0;

	*owned = false;
	pthread_mutex_lock(&receiver->open_lock);
	for (int i = 0; i < RECEIVER_OPEN_VOLUMES; i++) {
		if (receiver->open[i].volume == NULL) {
			if (free_slot < 0)
				free_slot = i;
		} else if (strcmp(receiver->open[i].location, location) == 0) {
			*out = receiver->open[i].volume;
			goto out;
		}
	}
	rc = repl_volume_open(location, REPL_OPEN_WRITE, out);
	if (rc < 0)
		goto out;
	if (free_slot < 0) {
		*owned = true;
		goto out;
	}
	snprintf(receiver->open[free_slot].location, sizeof(receiver->open[free_slot].location),
		 "%s", location);
	receiver->open[free_slot].volume = *out;
out:
	pthread_mutex_unlock(&receiver->open_lock);
	return rc;
}

/* Closes the shared handle of location, if any. The caller holds `lock` exclusively. */
static void
receiver_volume_forget(struct repl_receiver *receiver, const char *location)
{
	pthread_mutex_lock(&receiver->open_lock);
	for (int i = 0; i < RECEIVER_OPEN_VOLUMES; i++) {
		if (receiver->open[i].volume && strcmp(receiver->open[i].location, location) == 0) {
			repl_volume_close(receiver->open[i].volume);
			receiver->open[i].volume = NULL;
		}
	}
	pthread_mutex_unlock(&receiver->open_lock);
}

static int
repl_receiver_check_name(const char *volume)
{
	if (!util_volume_name_valid(volume))
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"invalid volume name '%.160s': use 1 to %d of A-Z a-z 0-9 . _ -, "
			"not starting with '.'",
			volume ? volume : "", VOLUME_NAME_MAX);
	return 0;
}

/* Explains a no-space error in the receiver's terms: which storage, and what to do. */
static int
repl_receiver_no_space(struct repl_receiver *receiver, const char *volume, const char *location,
		       const char *doing)
{
	bool rbd = strncmp(location, "rbd:", 4) == 0;

	return ferry_error_set(FERRY_ERR_NO_SPACE,
			       "receiver %s %s is full while %s volume %s (%s); free space "
			       "there and re-run the same command: acknowledged data is kept",
			       rbd ? "Ceph pool" : "folder",
			       rbd ? receiver->replica_pool : receiver->volumes_dir, doing, volume,
			       ferry_error_message());
}

static int
repl_receiver_start_transfer(struct repl_receiver *receiver,
			     const struct repl_begin_request *request, const char *path,
			     bool truncate, int64_t generation, struct catalog_transfer *out)
{
	struct catalog_volume volume;
	int rc;

	/* A delta lands on the volume as its base left it; anything else (re)creates it. */
	if (request->base_identity == NULL) {
		receiver_volume_forget(receiver, path);
		rc = repl_volume_create(path, request->size, truncate);
		if (rc == FERRY_ERR_NO_SPACE)
			return repl_receiver_no_space(receiver, request->volume, path, "creating");
		if (rc < 0)
			return rc;
	}
	memset(out, 0, sizeof(*out));
	out->role = CATALOG_ROLE_RECEIVE;
	snprintf(out->volume, sizeof(out->volume), "%s", request->volume);
	snprintf(out->location, sizeof(out->location), "%s", path);
	snprintf(out->source_identity, sizeof(out->source_identity), "%s",
		 request->source_identity);
	out->size = request->size;
	out->segment_size = request->segment_size ? request->segment_size : SEGMENT_SIZE_DEFAULT;
	snprintf(out->base_identity, sizeof(out->base_identity), "%s",
		 request->base_identity ? request->base_identity : "");
	snprintf(out->snapshot, sizeof(out->snapshot), "%s",
		 request->snapshot && strncmp(path, "rbd:", 4) == 0 ? request->snapshot : "");
	out->generation = generation;
	rc = catalog_transaction_begin(receiver->catalog);
	if (rc < 0)
		return rc;
	rc = catalog_transfer_create(receiver->catalog, out);
	if (rc == 0 && request->base_identity) {
		if (request->members->count &&
		    request->members->ranges[request->members->count - 1].last >=
			    out->segments_total)
			rc = ferry_error_set(FERRY_ERR_INVALID,
					     "the delta names segments beyond volume %s's %llu",
					     request->volume,
					     (unsigned long long)out->segments_total);
		else
			rc = catalog_transfer_set_members(receiver->catalog, out->id,
							  request->members);
		out->segments_member = range_set_size(request->members);
	}
	if (rc == 0) {
		memset(&volume, 0, sizeof(volume));
		snprintf(volume.name, sizeof(volume.name), "%s", request->volume);
		snprintf(volume.kind, sizeof(volume.kind), "%s",
			 strncmp(path, "rbd:", 4) == 0		 ? "rbd"
			 : strncmp(path, "disk:qcow2:", 11) == 0 ? "qcow2"
								 : "file");
		snprintf(volume.location, sizeof(volume.location), "%s", path);
		volume.size = request->size;
		volume.transfer_id = out->id;
		snprintf(volume.group, sizeof(volume.group), "%s",
			 request->push.group ? request->push.group : "");
		rc = catalog_volume_put(receiver->catalog, &volume);
	}
	if (rc == 0)
		rc = catalog_event_add(receiver->catalog, "info", request->volume,
				       "transfer %lld started: %llu bytes, %llu of %llu segments%s",
				       (long long)out->id, (unsigned long long)out->size,
				       (unsigned long long)catalog_transfer_segments_carried(out),
				       (unsigned long long)out->segments_total,
				       truncate			? " (restarted)"
				       : request->base_identity ? " (a delta)"
								: "");
	if (rc < 0) {
		catalog_transaction_rollback(receiver->catalog);
		return rc == FERRY_ERR_NO_SPACE ? repl_receiver_no_space(receiver, request->volume,
									 path, "recording")
						: rc;
	}
	return catalog_transaction_commit(receiver->catalog);
}

void
repl_receiver_release(struct repl_receiver *receiver, const char *volume)
{
	char path[PATH_MAX];

	if (receiver == NULL || receiver->replica_pool[0] == '\0')
		return;
	snprintf(path, sizeof(path), "rbd:%s/%s", receiver->replica_pool, volume);
	pthread_rwlock_wrlock(&receiver->lock);
	receiver_volume_forget(receiver, path);
	pthread_rwlock_unlock(&receiver->lock);
}

int
repl_receiver_adopt(struct repl_receiver *receiver, const char *volume, const char *identity,
		    uint64_t size, const char *snapshot)
{
	struct catalog_transfer current, adopted;
	struct catalog_volume record;
	char path[PATH_MAX];
	int rc, found;

	rc = repl_receiver_check_name(volume);
	if (rc == 0 && (identity == NULL || identity[0] == '\0' ||
			strlen(identity) >= sizeof(adopted.source_identity)))
		rc = ferry_error_set(FERRY_ERR_INVALID, "source identity missing or too long");
	if (rc == 0 && receiver->replica_pool[0] == '\0')
		rc = ferry_error_set(FERRY_ERR_INVALID,
				     "this site has no Ceph settings, so it keeps no RBD replicas");
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "rbd:%s/%s", receiver->replica_pool, volume);
	memset(&adopted, 0, sizeof(adopted));
	adopted.role = CATALOG_ROLE_RECEIVE;
	snprintf(adopted.volume, sizeof(adopted.volume), "%s", volume);
	rc = util_format(adopted.location, sizeof(adopted.location), "the location of a replica",
			 "%s", path);
	if (rc < 0)
		return rc;
	snprintf(adopted.source_identity, sizeof(adopted.source_identity), "%s", identity);
	snprintf(adopted.snapshot, sizeof(adopted.snapshot), "%s", snapshot ? snapshot : "");
	adopted.size = size;
	adopted.segment_size = SEGMENT_SIZE_DEFAULT;
	pthread_rwlock_wrlock(&receiver->lock);
	receiver_volume_forget(receiver, path);
	rc = catalog_transaction_begin(receiver->catalog);
	if (rc < 0)
		goto out;
	found = catalog_transfer_find_current(receiver->catalog, CATALOG_ROLE_RECEIVE, "", volume,
					      &current);
	if (found == 0)
		rc = catalog_transfer_set_state(receiver->catalog, current.id,
						CATALOG_TRANSFER_ABANDONED, NULL);
	else if (found != FERRY_ERR_NOT_FOUND)
		rc = found;
	if (rc == 0)
		rc = catalog_transfer_create(receiver->catalog, &adopted);
	/* No digest: the image was not received but found in place, at a point both sites
	 * share; the next delta's segments are checked as always. */
	if (rc == 0)
		rc = catalog_transfer_set_state(receiver->catalog, adopted.id,
						CATALOG_TRANSFER_COMPLETE, "");
	if (rc == 0) {
		memset(&record, 0, sizeof(record));
		snprintf(record.name, sizeof(record.name), "%s", volume);
		snprintf(record.kind, sizeof(record.kind), "rbd");
		rc = util_format(record.location, sizeof(record.location),
				 "the location of a replica", "%s", path);
		record.size = size;
		record.transfer_id = adopted.id;
	}
	if (rc == 0) {
		rc = catalog_volume_put(receiver->catalog, &record);
	}
	if (rc == 0)
		rc = catalog_promoted_remove(receiver->catalog, volume);
	if (rc == 0)
		rc = catalog_event_add(receiver->catalog, "info", volume,
				       "replica again, from the point both sites share (%s of %s)",
				       snapshot ? snapshot : "", identity);
	if (rc < 0)
		catalog_transaction_rollback(receiver->catalog);
	else
		rc = catalog_transaction_commit(receiver->catalog);
out:
	pthread_rwlock_unlock(&receiver->lock);
	return rc;
}

/* Where a received volume of the request's kind lives: a raw file (default) or a qcow2 file in
 * the volumes folder, or an RBD image of the replica pool. */
static int
receiver_location(struct repl_receiver *receiver, const struct repl_begin_request *request,
		  char *path, size_t size)
{
	const char *kind = request->kind ? request->kind : "file";

	if (strcmp(kind, "rbd") == 0 &&
	    (receiver->replica_pool[0] == '\0' || !repl_ceph_configured()))
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"this site has no Ceph settings, so it cannot keep volume %s "
			"in RBD: start ferryd with --ceph-conf, or copy with --target "
			"file",
			request->volume);
	if (strcmp(kind, "rbd") == 0)
		return util_format(path, size, "the location of a volume", "rbd:%s/%s",
				   receiver->replica_pool, request->volume);
	if (strcmp(kind, "file") == 0 || strcmp(kind, "qcow2") == 0)
		return util_format(path, size, "the path of a volume", "%s%s/%s",
				   strcmp(kind, "qcow2") == 0 ? "disk:qcow2:" : "",
				   receiver->volumes_dir, request->volume);
	return ferry_error_set(FERRY_ERR_INVALID, "unknown volume kind '%.32s' (file, qcow2, rbd)",
			       kind);
}

int
repl_receiver_begin(struct repl_receiver *receiver, const struct repl_begin_request *request,
		    struct catalog_transfer *out)
{
	struct catalog_transfer current;
	char path[PATH_MAX];
	int64_t promoted_by = 0, generation = 0;
	int rc, found;

	rc = repl_receiver_check_name(request->volume);
	if (rc < 0)
		return rc;
	if (request->segment_size &&
	    (request->segment_size < SEGMENT_SIZE_MIN || request->segment_size > SEGMENT_SIZE_MAX ||
	     request->segment_size % SEGMENT_SIZE_MIN))
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"segment size %llu is not a multiple of %u between %u and %u",
			(unsigned long long)request->segment_size, SEGMENT_SIZE_MIN,
			SEGMENT_SIZE_MIN, SEGMENT_SIZE_MAX);
	if (request->source_identity == NULL || request->source_identity[0] == '\0' ||
	    strlen(request->source_identity) >= sizeof(current.source_identity))
		return ferry_error_set(FERRY_ERR_INVALID, "source identity missing or too long");
	/* The snapshot is taken under this name at completion: a name, never cut to fit. */
	if (request->snapshot && (!util_volume_name_valid(request->snapshot) ||
				  strlen(request->snapshot) >= sizeof(current.snapshot)))
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"volume %s: 'snapshot' must be a name of at most %zu letters, "
			"digits, '.', '_' or '-'",
			request->volume, sizeof(current.snapshot) - 1);
	if (request->kind && strcmp(request->kind, "file") != 0 &&
	    strcmp(request->kind, "rbd") != 0 && strcmp(request->kind, "qcow2") != 0)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "volume %s: 'kind' must be file, qcow2 or rbd, not '%.32s'",
				       request->volume, request->kind);
	/* Checked whole before anything is created or truncated: a size no file system or
	 * checksum store can hold is a bad request, not a half-made volume. */
	{
		bool rbd = request->kind && strcmp(request->kind, "rbd") == 0;
		uint64_t limit = rbd ? RECEIVER_RBD_SIZE_MAX : RECEIVER_FILE_SIZE_MAX;
		uint64_t segment = request->segment_size ? request->segment_size : SEGMENT_SIZE_MAX;

		if (request->size > limit ||
		    request->size / segment + 1 > CATALOG_CHECKSUMS_MAX_BYTES / CHECKSUM_BYTES)
			return ferry_error_set(FERRY_ERR_INVALID,
					       "volume %s: %llu bytes in segments of %llu is more "
					       "than a %s volume here may hold (%llu bytes)",
					       request->volume, (unsigned long long)request->size,
					       (unsigned long long)segment, rbd ? "RBD" : "file",
					       (unsigned long long)limit);
	}
	rc = receiver_location(receiver, request, path, sizeof(path));
	if (rc < 0)
		return rc;

	pthread_rwlock_wrlock(&receiver->lock);
	/* One writer per group: a push from a site at a lower generation is a split brain. */
	rc = repl_generation_check(receiver->catalog, request->volume, &request->push, &generation);
	/* One primary per volume: a replica that a failover brought up is written by its VM. */
	if (rc == 0)
		rc = catalog_promoted_get(receiver->catalog, request->volume, &promoted_by);
	if (rc == 0 && promoted_by > 0)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "volume %s was promoted by failover run %lld and is written "
				     "by its VM at this site; it takes no more deltas. Reverse the "
				     "direction with ferry reprotect",
				     request->volume, (long long)promoted_by);
	else if (rc == 0 && promoted_by)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "volume %s was promoted by ferry group promote and is written "
				     "at this site; it takes no more deltas. Reverse the direction "
				     "with ferry reprotect",
				     request->volume);
	if (rc < 0)
		goto out;
	found = catalog_transfer_find_current(receiver->catalog, CATALOG_ROLE_RECEIVE, "",
					      request->volume, &current);
	if (found < 0 && found != FERRY_ERR_NOT_FOUND) {
		rc = found;
		goto out;
	}
	if (found == 0 && !request->restart && strcmp(current.location, path) != 0) {
		rc = ferry_error_set(
			FERRY_ERR_CONFLICT,
			"volume %s is kept at %s on this receiver, not at %s; re-run with "
			"--restart to replace it, or pick another name",
			request->volume, current.location, path);
		goto out;
	}
	if (request->base_identity && found == 0 && !request->restart &&
	    strcmp(current.source_identity, request->base_identity) == 0 &&
	    request->size < current.size) {
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "volume %s is %llu bytes and this delta's source only %llu: "
				     "replicas are never shrunk; grow the source back, or copy it "
				     "whole with --restart",
				     request->volume, (unsigned long long)current.size,
				     (unsigned long long)request->size);
		goto out;
	}
	if (request->base_identity &&
	    (request->restart || found != 0 ||
	     (strcmp(current.source_identity, request->source_identity) != 0 &&
	      (current.state != CATALOG_TRANSFER_COMPLETE ||
	       strcmp(current.source_identity, request->base_identity) != 0)))) {
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "volume %s does not hold the base of this delta (%s); it "
				     "holds %s (%s). Copy "
				     "the base first, or copy this source whole",
				     request->volume, request->base_identity,
				     found == 0 ? current.source_identity : "nothing",
				     found != 0 ? "no volume"
						: catalog_transfer_state_name(current.state));
		goto out;
	}
	if (request->base_identity && strcmp(current.source_identity, request->source_identity)) {
		/* Segment indexes of a delta are those of its base. */
		if (request->segment_size != current.segment_size) {
			rc = ferry_error_set(
				FERRY_ERR_CONFLICT,
				"volume %s has segments of %llu bytes; a delta must use "
				"them, not %llu",
				request->volume, (unsigned long long)current.segment_size,
				(unsigned long long)request->segment_size);
			goto out;
		}
		if (request->size > current.size) {
			/* The source grew: so does the replica, before any of the delta lands. */
			struct repl_volume *image = NULL;

			receiver_volume_forget(receiver, path);
			rc = repl_volume_open(path, REPL_OPEN_WRITE, &image);
			if (rc == 0)
				rc = repl_volume_resize(image, request->size);
			repl_volume_close(image);
			if (rc < 0)
				goto out;
			log_info("volume %s: grown from %llu to %llu bytes", request->volume,
				 (unsigned long long)current.size,
				 (unsigned long long)request->size);
		}
		rc = repl_receiver_start_transfer(receiver, request, path, false, generation, out);
		goto out;
	}
	if (found == 0 && !request->restart) {
		if (current.size == request->size &&
		    strcmp(current.source_identity, request->source_identity) == 0) {
			*out = current; /* resume, or already complete */
			rc = 0;
			goto out;
		}
		if (current.segments_durable > 0 || current.state == CATALOG_TRANSFER_COMPLETE) {
			rc = ferry_error_set(
				FERRY_ERR_CONFLICT,
				"volume %s was %s from a different source (%llu bytes, %s); this "
				"source is %llu bytes, %s. Refusing to mix them: re-run with "
				"--restart to discard the received data and start over",
				request->volume,
				current.state == CATALOG_TRANSFER_COMPLETE ? "copied" : "started",
				(unsigned long long)current.size, current.source_identity,
				(unsigned long long)request->size, request->source_identity);
			goto out;
		}
	}
	if (found == 0) {
		receiver_volume_forget(receiver, current.location);
		rc = catalog_transfer_set_state(receiver->catalog, current.id,
						CATALOG_TRANSFER_ABANDONED, NULL);
		if (rc < 0)
			goto out;
		log_info("volume %s: transfer %lld abandoned (%s)", request->volume,
			 (long long)current.id, request->restart ? "restart requested" : "empty");
	}
	rc = repl_receiver_start_transfer(receiver, request, path, found == 0, generation, out);
	if (rc == 0)
		log_info("volume %s: transfer %lld started, %llu bytes, %llu segments of %llu",
			 request->volume, (long long)out->id, (unsigned long long)out->size,
			 (unsigned long long)out->segments_total,
			 (unsigned long long)out->segment_size);
out:
	pthread_rwlock_unlock(&receiver->lock);
	return rc;
}

/* Finds the volume's current transfer and checks that the request belongs to it. */
static int
repl_receiver_current(struct repl_receiver *receiver, const char *volume, int64_t transfer_id,
		      struct catalog_transfer *out)
{
	int rc = repl_receiver_check_name(volume);

	if (rc < 0)
		return rc;
	rc = catalog_transfer_find_current(receiver->catalog, CATALOG_ROLE_RECEIVE, "", volume,
					   out);
	if (rc == FERRY_ERR_NOT_FOUND)
		return ferry_error_set(FERRY_ERR_NOT_FOUND,
				       "no volume named '%s' on this receiver; start a transfer "
				       "first",
				       volume);
	if (rc < 0)
		return rc;
	if (transfer_id != out->id)
		return ferry_error_set(FERRY_ERR_CONFLICT,
				       "transfer %lld is not the current transfer of volume %s "
				       "(%lld); it was restarted: re-run the copy",
				       (long long)transfer_id, volume, (long long)out->id);
	return 0;
}

/* An extents segment of a delta: decodes the changed extents and lays them over the bytes the
 * volume holds now (its base) in the scratch's plain buffer, so that the whole segment can be
 * checked against its checksum before anything is written. Opens the volume for that read. */
static int
repl_receiver_apply_extents(struct repl_receiver *receiver,
			    const struct repl_segment_request *request,
			    const struct catalog_transfer *transfer, uint64_t offset,
			    uint64_t expected, struct receiver_scratch **scratch_out,
			    struct repl_volume **volume, bool *volume_owned, size_t *count)
{
	size_t packed_capacity = segment_extents_packed_size(SEGMENT_EXTENTS_MAX, expected);
	struct receiver_scratch *scratch;
	size_t packed_length;
	const uint8_t *data;
	int rc;

	if (transfer->base_identity[0] == '\0')
		return ferry_error_set(FERRY_ERR_INVALID,
				       "segment %llu of volume %s: extents apply only to a delta",
				       (unsigned long long)request->index, request->volume);
	if (request->body_length == 0 ||
	    request->body_length > segment_encoded_bound(packed_capacity))
		return ferry_error_set(FERRY_ERR_INVALID,
				       "extents body of %zu bytes is out of bounds",
				       request->body_length);
	scratch = receiver_scratch_get(expected, packed_capacity);
	if (scratch == NULL)
		return ferry_error_no_memory();
	*scratch_out = scratch;
	rc = segment_decode_bounded(scratch->codec, request->body, request->body_length,
				    scratch->packed, packed_capacity, &packed_length);
	if (rc == 0)
		rc = segment_extents_unpack(scratch->packed, packed_length, expected,
					    scratch->extents, count, &data);
	if (rc == 0)
		rc = receiver_volume_get(receiver, transfer->location, volume, volume_owned);
	if (rc == 0)
		rc = repl_volume_read(*volume, offset, scratch->plain, expected);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < *count; i++) {
		memcpy(scratch->plain + scratch->extents[i].offset, data,
		       scratch->extents[i].length);
		data += scratch->extents[i].length;
	}
	return 0;
}

/* Joins extents closer than RECEIVER_EXTENT_GAP in place; returns the new count. */
static size_t
receiver_extents_join(struct segment_extent *extents, size_t count)
{
	size_t joined = 0;

	for (size_t i = 0; i < count; i++) {
		struct segment_extent *last = joined ? &extents[joined - 1] : NULL;

		if (last && extents[i].offset - (last->offset + last->length) < RECEIVER_EXTENT_GAP)
			last->length = extents[i].offset + extents[i].length - last->offset;
		else
			extents[joined++] = extents[i];
	}
	return joined;
}

#ifdef FERRY_FAULT_INJECTION
/* Test hook: FERRY_FAULT_EXIT_AFTER_RECEIVED_SEGMENTS=N ends the process as kill -9 would once
 * this process has made N segments durable: a replica that dies with a transfer half landed. */
static void
receiver_fault_exit_after(void)
{
	static unsigned long long durable;
	const char *value = getenv("FERRY_FAULT_EXIT_AFTER_RECEIVED_SEGMENTS");
	int64_t wanted = -1;

	if (value && util_parse_int64(value, 1, INT64_MAX, &wanted) == 0 &&
	    __atomic_add_fetch(&durable, 1, __ATOMIC_SEQ_CST) == (unsigned long long)wanted) {
		log_warn("FERRY_FAULT_EXIT_AFTER_RECEIVED_SEGMENTS: exiting after %s durable "
			 "segment(s)",
			 value);
		_exit(137);
	}
}
#endif

int
repl_receiver_put_segment(struct repl_receiver *receiver,
			  const struct repl_segment_request *request)
{
	struct catalog_transfer transfer;
	struct repl_volume *volume = NULL;
	bool volume_owned = false;
	struct receiver_scratch *scratch = NULL;
	size_t extent_count = 0;
	struct checksum sum;
	const char *plain = NULL;
	uint64_t offset, expected;
	pthread_mutex_t *segment_lock = NULL;
	int rc;

	pthread_rwlock_rdlock(&receiver->lock);
	rc = repl_receiver_current(receiver, request->volume, request->transfer_id, &transfer);
	if (rc < 0)
		goto out;
	if (transfer.state != CATALOG_TRANSFER_ACTIVE) {
		rc = ferry_error_set(FERRY_ERR_CONFLICT, "volume %s is already complete",
				     request->volume);
		goto out;
	}
	if (transfer.base_identity[0] &&
	    !catalog_transfer_has_member(receiver->catalog, transfer.id, request->index)) {
		rc = ferry_error_set(FERRY_ERR_INVALID,
				     "segment %llu is not part of the delta that transfer %lld of "
				     "volume %s carries",
				     (unsigned long long)request->index, (long long)transfer.id,
				     request->volume);
		goto out;
	}
	if (request->index >= transfer.segments_total) {
		rc = ferry_error_set(FERRY_ERR_INVALID,
				     "segment %llu of volume %s is out of range "
				     "(it has %llu segments)",
				     (unsigned long long)request->index, request->volume,
				     (unsigned long long)transfer.segments_total);
		goto out;
	}
	offset = request->index * transfer.segment_size;
	expected = transfer.size - offset < transfer.segment_size ? transfer.size - offset
								  : transfer.segment_size;
	if (request->length != expected) {
		rc = ferry_error_set(
			FERRY_ERR_INVALID, "segment %llu of volume %s must be %llu bytes, not %llu",
			(unsigned long long)request->index, request->volume,
			(unsigned long long)expected, (unsigned long long)request->length);
		goto out;
	}
	if (request->encoding == SEGMENT_ENCODING_ZERO) {
		if (request->body_length != 0) {
			rc = ferry_error_set(FERRY_ERR_INVALID, "a zero record carries no body");
			goto out;
		}
		checksum_of_zeroes(expected, &sum);
	} else if (request->encoding == SEGMENT_ENCODING_EXTENTS) {
		rc = repl_receiver_apply_extents(receiver, request, &transfer, offset, expected,
						 &scratch, &volume, &volume_owned, &extent_count);
		if (rc < 0)
			goto out;
		plain = scratch->plain;
		checksum_compute(plain, expected, &sum);
	} else {
		if (request->body_length == 0 ||
		    request->body_length > segment_encoded_bound(expected)) {
			rc = ferry_error_set(FERRY_ERR_INVALID,
					     "segment body of %zu bytes cannot encode %llu bytes",
					     request->body_length, (unsigned long long)expected);
			goto out;
		}
		scratch = receiver_scratch_get(expected, 0);
		if (scratch == NULL) {
			rc = ferry_error_no_memory();
			goto out;
		}
		plain = scratch->plain;
		rc = segment_decode(scratch->codec, request->body, request->body_length,
				    scratch->plain, expected);
		if (rc < 0)
			goto out;
		checksum_compute(plain, expected, &sum);
	}
	if (memcmp(sum.bytes, request->checksum.bytes, CHECKSUM_BYTES) != 0) {
		catalog_event_add(receiver->catalog, "warn", request->volume,
				  "segment %llu refused: checksum mismatch",
				  (unsigned long long)request->index);
		rc = ferry_error_set(FERRY_ERR_CHECKSUM,
				     "segment %llu of volume %s does not match its checksum; "
				     "nothing was written, send it again",
				     (unsigned long long)request->index, request->volume);
		goto out;
	}
	if (volume == NULL)
		rc = receiver_volume_get(receiver, transfer.location, &volume, &volume_owned);
	if (rc == 0 && request->encoding != SEGMENT_ENCODING_ZERO &&
	    receiver_check_headroom(receiver->volumes_dir, transfer.location, expected) < 0)
		rc = repl_receiver_no_space(receiver, request->volume, transfer.location,
					    "writing");
	if (rc < 0)
		goto out;
	segment_lock = &receiver->segment_locks[((uint64_t)transfer.id * 131 + request->index) %
						RECEIVER_SEGMENT_STRIPES];
	pthread_mutex_lock(segment_lock);
	if (request->encoding == SEGMENT_ENCODING_ZERO) {
		rc = repl_volume_write_zeroes(volume, offset, expected);
	} else if (request->encoding == SEGMENT_ENCODING_EXTENTS) {
		/* Only the changed extents are written (the rest already holds the base), nearby
		 * ones together, all in flight at once. */
		extent_count = receiver_extents_join(scratch->extents, extent_count);
		rc = repl_volume_write_ranges(volume, offset, plain, scratch->extents,
					      extent_count);
	} else {
		rc = repl_volume_write(volume, offset, plain, expected);
	}
	if (rc == 0)
		rc = repl_volume_flush(volume);
	/* Only the volume's own write is the volume's folder or pool being full; a full catalog
	 * says so itself, naming the state folder. */
	if (rc == FERRY_ERR_NO_SPACE)
		rc = repl_receiver_no_space(receiver, request->volume, transfer.location,
					    "writing");
	if (rc == 0)
		rc = catalog_transfer_mark_durable(receiver->catalog, transfer.id, request->index,
						   &sum);
	if (rc == 0)
		log_debug("volume %s: segment %" PRIu64 " of transfer %" PRId64
			  " durable (%zu bytes at offset %" PRIu64 ")",
			  request->volume, request->index, transfer.id, (size_t)expected,
			  (uint64_t)offset);
#ifdef FERRY_FAULT_INJECTION
	if (rc == 0)
		receiver_fault_exit_after();
#endif
out:
	if (segment_lock)
		pthread_mutex_unlock(segment_lock);
	/* The segment-sized buffers go back at once: a kept-alive connection must not hold
	 * megabytes between requests (a hundred idle ones would hold hundreds). */
	if (scratch) {
		free(scratch->plain);
		free(scratch->packed);
		scratch->plain = NULL;
		scratch->packed = NULL;
		scratch->capacity = scratch->packed_capacity = 0;
	}
	pthread_rwlock_unlock(&receiver->lock);
	if (volume_owned)
		repl_volume_close(volume);
	return rc;
}

int
repl_receiver_commit(struct repl_receiver *receiver, const char *volume, int64_t transfer_id,
		     const char *digest, const struct repl_push_group *push,
		     struct catalog_transfer *out)
{
	struct range_set members;
	uint8_t *sums = NULL;
	char ours[DIGEST_STRING_SIZE];
	int rc;

	range_set_init(&members);
	pthread_rwlock_wrlock(&receiver->lock);
	rc = repl_receiver_current(receiver, volume, transfer_id, out);
	if (rc == 0)
		rc = repl_generation_check(receiver->catalog, volume, push, NULL);
	if (rc < 0)
		goto out;
	if (out->segments_durable != catalog_transfer_segments_carried(out)) {
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "volume %s has %llu of %llu segments durable; send the rest "
				     "before committing",
				     volume, (unsigned long long)out->segments_durable,
				     (unsigned long long)catalog_transfer_segments_carried(out));
		goto out;
	}
	sums = malloc(out->segments_total * CHECKSUM_BYTES + 1);
	if (sums == NULL) {
		rc = ferry_error_no_memory();
		goto out;
	}
	rc = catalog_transfer_read_checksums(receiver->catalog, out->id, sums, out->segments_total);
	if (rc < 0)
		goto out;
	if (out->base_identity[0]) {
		rc = catalog_transfer_load_ranges(receiver->catalog, out->id, CATALOG_RANGE_MEMBER,
						  &members);
		if (rc < 0)
			goto out;
		checksum_digest_ranges(sums, &members, ours);
	} else {
		checksum_digest(sums, out->segments_total, ours);
	}
	if (digest == NULL || strcmp(digest, ours) != 0) {
		catalog_event_add(receiver->catalog, "error", volume,
				  "digest mismatch: sender %s, receiver %s", digest ? digest : "-",
				  ours);
		rc = ferry_error_set(FERRY_ERR_CHECKSUM,
				     "volume %s: whole-volume digest differs (sender %s, receiver "
				     "%s); the copy is not complete: re-run with --restart",
				     volume, digest ? digest : "(none)", ours);
		goto out;
	}
	if (out->state != CATALOG_TRANSFER_COMPLETE && out->snapshot[0]) {
		/* The point: every byte of it is durable and verified, so it may now be named.
		 * Taken before the catalog says complete, so that "complete" implies the snapshot
		 * (a retried commit finds it there and goes on). */
		struct repl_volume *image = NULL;
		bool image_owned = false;

		rc = receiver_volume_get(receiver, out->location, &image, &image_owned);
		if (rc == 0)
			rc = repl_volume_flush(image);
		if (rc == 0)
			rc = repl_volume_snapshot_create(image, out->snapshot);
		if (image_owned)
			repl_volume_close(image);
		if (rc < 0)
			goto out;
		log_info("volume %s: snapshot %s taken at %s", volume, out->snapshot,
			 out->location);
	}
	if (out->state != CATALOG_TRANSFER_COMPLETE) {
		rc = catalog_transaction_begin(receiver->catalog);
		if (rc < 0)
			goto out;
		rc = catalog_transfer_set_state(receiver->catalog, out->id,
						CATALOG_TRANSFER_COMPLETE, ours);
		if (rc == 0)
			rc = catalog_event_add(receiver->catalog, "info", volume,
					       "transfer %lld complete, digest %s",
					       (long long)out->id, ours);
		if (rc < 0) {
			catalog_transaction_rollback(receiver->catalog);
			goto out;
		}
		rc = catalog_transaction_commit(receiver->catalog);
		if (rc < 0)
			goto out;
		log_info("volume %s: transfer %lld complete, %s", volume, (long long)out->id, ours);
		receiver_volume_forget(receiver, out->location); /* let go of an RBD image's lock */
	}
	out->state = CATALOG_TRANSFER_COMPLETE;
	snprintf(out->digest, sizeof(out->digest), "%s", ours);
out:
	pthread_rwlock_unlock(&receiver->lock);
	free(sums);
	range_set_free(&members);
	return rc;
}

int
repl_receiver_prune(struct repl_receiver *receiver, const char *volume,
		    const struct repl_push_group *push, const struct repl_retention *retention,
		    int *removed)
{
	struct catalog_transfer current;
	struct repl_volume *image = NULL;
	bool image_owned = false;
	int rc;

	rc = repl_receiver_check_name(volume);
	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&receiver->lock);
	rc = repl_generation_check(receiver->catalog, volume, push, NULL);
	if (rc == 0)
		rc = catalog_transfer_find_current(receiver->catalog, CATALOG_ROLE_RECEIVE, "",
						   volume, &current);
	if (rc == 0 && strncmp(current.location, "rbd:", 4) != 0)
		rc = ferry_error_set(FERRY_ERR_INVALID, "volume %s is a file: it has no points",
				     volume);
	if (rc == 0)
		rc = receiver_volume_get(receiver, current.location, &image, &image_owned);
	if (rc == 0)
		rc = repl_volume_prune_points(image, retention);
	if (rc >= 0) {
		*removed = rc;
		rc = 0;
	}
	pthread_rwlock_unlock(&receiver->lock);
	if (image_owned)
		repl_volume_close(image);
	return rc;
}

int
repl_receiver_exclusive(struct repl_receiver *receiver, int (*each)(void *context), void *context)
{
	int rc;

	pthread_rwlock_wrlock(&receiver->lock);
	pthread_mutex_lock(&receiver->open_lock);
	for (int i = 0; i < RECEIVER_OPEN_VOLUMES; i++) {
		repl_volume_close(receiver->open[i].volume);
		receiver->open[i].volume = NULL;
	}
	pthread_mutex_unlock(&receiver->open_lock);
	rc = each(context);
	pthread_rwlock_unlock(&receiver->lock);
	return rc;
}

int
repl_receiver_verify(struct repl_receiver *receiver, const char *volume, uint64_t segment_size,
		     int64_t point, char *digest_out)
{
	struct catalog_volume record;
	char at_point[sizeof(record.location) + 32];
	int rc;

	rc = repl_receiver_check_name(volume);
	if (rc < 0)
		return rc;
	if (segment_size < SEGMENT_SIZE_MIN || segment_size > SEGMENT_SIZE_MAX)
		return ferry_error_set(FERRY_ERR_INVALID, "segment size %llu out of range",
				       (unsigned long long)segment_size);
	if (point < 0)
		return ferry_error_set(FERRY_ERR_INVALID, "'point' must be a point number");
	rc = catalog_volume_get(receiver->catalog, volume, &record);
	if (rc < 0)
		return rc;
	if (point == 0)
		return repl_volume_verify(record.location, segment_size, digest_out);
	/* A committed point of a replica image is its snapshot ferry-N. */
	if (strcmp(record.kind, "rbd") != 0)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "volume %s is a %s volume: it keeps no points to verify",
				       volume, record.kind);
	snprintf(at_point, sizeof(at_point), "%s@ferry-%lld", record.location, (long long)point);
	return repl_volume_verify(at_point, segment_size, digest_out);
}
