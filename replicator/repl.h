/* The replicator's public interface: volumes (through backends), the receiver's apply side and
 * the sender. ferryd's web layer calls the receiver; the ferry CLI calls the sender.
 *
 * Ownership: the caller owns every struct and string it passes in; a struct repl_volume from
 * repl_volume_open() is freed with repl_volume_close(); a receiver with repl_receiver_free(). */
#ifndef FERRY_REPLICATOR_REPL_H
#define FERRY_REPLICATOR_REPL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "common/checksum.h"
#include "common/segment.h"

/* ---- volumes ---- */

/* Ceph settings for every rbd: volume this process opens: the ceph.conf (whose keyring setting
 * names the key) and the client id (NULL: "admin"). The cluster is connected on first use. */
int repl_ceph_configure(const char *conf_path, const char *client_id);
/* The bound, in seconds (1 to 3600), of every librados/librbd call that waits on the cluster:
 * connecting, monitor commands and OSD operations alike. Takes effect at the next connection
 * (set it before the first rbd: volume is opened). */
#define REPL_CEPH_TIMEOUT_DEFAULT 30
int repl_ceph_set_timeout(int seconds);
bool repl_ceph_configured(void);
void repl_ceph_shutdown(void);
/* The file where each connection records its Ceph session's address, so that the next process
 * blocklists a killed one's session at once (backend_rbd.c says why); "" or NULL: none. */
int repl_ceph_fence_file(const char *path);

struct repl_volume;

enum repl_open_mode { REPL_OPEN_READ, REPL_OPEN_WRITE };

/* Opens a volume by location ("file:/path" or a plain path). Sets *out. */
int repl_volume_open(const char *location, enum repl_open_mode mode, struct repl_volume **out);
/* Creates (or with truncate, empties) a sparse volume of size bytes at location. */
int repl_volume_create(const char *location, uint64_t size, bool truncate);
void repl_volume_close(struct repl_volume *volume);
uint64_t repl_volume_size(const struct repl_volume *volume);
/* What makes this source this source: changes when it is replaced, resized or modified. */
const char *repl_volume_identity(const struct repl_volume *volume);
const char *repl_volume_location(const struct repl_volume *volume);
/* The backend's scheme: "file" or "rbd". */
const char *repl_volume_kind(const struct repl_volume *volume);
int repl_volume_read(struct repl_volume *volume, uint64_t offset, void *buffer, size_t length);
/* Writes data, leaving all-zero blocks sparse. */
int repl_volume_write(struct repl_volume *volume, uint64_t offset, const void *data, size_t length);
int repl_volume_write_zeroes(struct repl_volume *volume, uint64_t offset, uint64_t length);
/* True in *hole when [offset, offset+length) holds no data (reads as zeroes without I/O). */
int repl_volume_is_hole(struct repl_volume *volume, uint64_t offset, uint64_t length, bool *hole);
int repl_volume_flush(struct repl_volume *volume);
/* Calls each() for every extent of [offset, offset+length) of volume (at a snapshot, or the
 * image's head) that differs from its snapshot from_snapshot: whole changed objects, fast; or,
 * with exact, the changed byte ranges, which costs a scan of the objects in the range.
 * FERRY_ERR_INVALID for kinds without snapshots. */
int repl_volume_diff(struct repl_volume *volume, const char *from_snapshot, uint64_t offset,
		     uint64_t length, bool exact,
		     int (*each)(uint64_t offset, uint64_t length, void *context), void *context);
/* Takes snapshot name of the volume; an existing one of that name is kept. */
int repl_volume_snapshot_create(struct repl_volume *volume, const char *name);
int repl_volume_snapshot_remove(struct repl_volume *volume, const char *name);
/* Grows the volume to size bytes (RBD). */
int repl_volume_resize(struct repl_volume *volume, uint64_t size);
/* Which points retention keeps: every M >= keep_from, and the few older ones in also: the last
 * point of a group's member that lags (in error, say), which a failover of the whole group
 * needs. Without also, one member stuck would hold every later point of the others forever. */
#define REPL_RETENTION_ALSO_MAX 64
struct repl_retention {
	int64_t keep_from;
	int64_t also[REPL_RETENTION_ALSO_MAX];
	size_t also_count;
};
/* Adds point to also (nothing when it is >= keep_from or there already); when also is full,
 * keep_from comes down to it instead, which keeps more, never less. */
void repl_retention_also(struct repl_retention *retention, int64_t point);
bool repl_retention_keeps(const struct repl_retention *retention, int64_t point);
/* Retention of points: removes snapshots ferry-M and ferry-M-before for every M that retention
 * does not keep. Returns how many. */
int repl_volume_prune_points(struct repl_volume *volume, const struct repl_retention *retention);

/* ---- points ----
 * A volume's points N = 1, 2, 3, ... and the points a protection group's volumes share, through
 * the point table of the volume's kind (struct repl_point_ops in backend.h), chosen by the
 * location's scheme. RBD images (rbd:POOL/IMAGE) have them: a point is the image's snapshot
 * ferry-N, and a group's point one RBD group snapshot ferry-N of the RBD group ferry-GROUP in
 * the images' pool, so that every image of the group holds the same instant. Other kinds have
 * none yet: a file volume is refused (FERRY_ERR_INVALID, naming it: points need an RBD volume),
 * as is an unknown scheme; a malformed location is refused before any call reaches the storage.
 * group is always a protection group's name. */

/* Whether location's kind has points (no message is recorded). */
bool repl_point_supported(const char *location);
/* The points the volume holds (at a replica: the committed ones), at most max of them, in no
 * order; *newest_time is when the newest was taken (Unix seconds). */
int repl_point_list(const char *location, int64_t *points, size_t max, size_t *count,
		    int64_t *newest_time);
/* Brings the volume back to point (a failover onto a point), so that a delta from it lists only
 * what is written afterwards. */
int repl_point_rollback(const char *location, int64_t point);
/* Clones point of the volume into a volume clone_name beside it (a test failover); the clone
 * keeps the point from being pruned. Removing the clone lets go of the point again (point 0:
 * not known, the clone alone goes). An existing clone is kept; a missing one is no error. */
int repl_point_clone(const char *location, int64_t point, const char *clone_name);
int repl_point_clone_remove(const char *location, int64_t point, const char *clone_name);
/* Reversing the direction (reprotect) at the site that becomes the replica. */
/* Brings the volume back to point: its own point, else group's point (which brings back every
 * volume of the group); FERRY_ERR_NOT_FOUND when neither is left. */
int repl_point_restore(const char *location, const char *group, int64_t point);
/* Leaves the volume as a replica at point: removes its points after it (and RBD's ferry-M-before
 * snapshots) and takes point again unless it is there. */
int repl_point_reset(const char *location, int64_t point);

/* Where the group of a volume would live, in the kind's own terms (RBD: the pool): the volumes
 * of one group share it, as one group point covers one place. */
int repl_group_place(const char *location, char *place, size_t size);
/* Adds the volume to group, creating the group if needed. member (NULL: none yet) is a volume
 * already in the group: one that cannot share its group points is refused (FERRY_ERR_INVALID).
 * FERRY_ERR_CONFLICT when the volume is in another group of the kind's (not ferry's). */
int repl_group_join(const char *location, const char *group, const char *member);
/* Removes the volume from group; the last one out removes the group and its points. */
int repl_group_leave(const char *location, const char *group);
/* For repl_group_point_*, repl_group_prune and repl_group_dissolve, location is any volume of
 * the group (it says where the group lives). */
/* 1 when group holds a complete point, else 0; or a negative error. */
int repl_group_point_exists(const char *location, const char *group, int64_t point);
/* Takes group's point over all its volumes at one instant, unless a complete one exists (one
 * cut short is taken again); *taken says whether it was taken now. */
int repl_group_point_take(const char *location, const char *group, int64_t point, bool *taken);
/* Removes group's point; one that is not there is no error. */
int repl_group_point_remove(const char *location, const char *group, int64_t point);
/* Removes group's points that retention does not keep; returns how many. */
int repl_group_prune(const char *location, const char *group,
		     const struct repl_retention *retention);
/* Removes group with its points; its volumes stay. No group: 0. */
int repl_group_dissolve(const char *location, const char *group);

/* Checksums every segment of a volume (holes without reading) into sums (16 bytes each) and
 * computes the digest. Used by `ferry verify` on both sides. */
int repl_volume_digest(struct repl_volume *volume, uint64_t segment_size, uint8_t *sums,
		       char *digest_out);
/* The digest (hex, as repl_volume_digest) of the volume at location, opened for reading. */
int repl_volume_verify(const char *location, uint64_t segment_size, char *digest_out);

/* ---- receiver (ferryd) ---- */

struct repl_receiver;

/* File volumes live in state_dir/volumes/NAME, RBD volumes in rbd:REPLICA_POOL/NAME
 * (replica_pool NULL: this site keeps no RBD volumes). Caller keeps catalog open while the
 * receiver lives. */
struct repl_receiver *repl_receiver_new(struct catalog *catalog, const char *state_dir,
					const char *replica_pool);
void repl_receiver_free(struct repl_receiver *receiver);

/* What a push (begin, commit, prune) says of its group: the protection group the volume
 * replicates in at the sending site and that site's generation of it. group NULL: the volume's
 * group as this site recorded it; generation 0: the first (a sender that names none). */
struct repl_push_group {
	const char *group;
	int64_t generation;
};

struct repl_begin_request {
	const char *volume;
	struct repl_push_group push;
	uint64_t size;
	uint64_t segment_size; /* 0: keep the current transfer's, or the default */
	const char *source_identity;
	const char *kind;		 /* where to keep it: "file" (NULL) or "rbd" */
	const char *base_identity;	 /* a delta: the source the volume must hold now */
	const struct range_set *members; /* a delta: the segments it carries */
	const char *snapshot;		 /* snapshot to take of an RBD volume when complete */
	bool restart;
};

/* Starts or resumes the transfer that fills volume; *out is the transfer (active or
 * complete). FERRY_ERR_CONFLICT when the volume was started from a different source;
 * FERRY_ERR_SPLIT_BRAIN (nothing changed) when the push is at a lower generation of its group
 * than this site (see repl_generation_check). */
int repl_receiver_begin(struct repl_receiver *receiver, const struct repl_begin_request *request,
			struct catalog_transfer *out);

/* Makes volume (rbd:REPLICA_POOL/volume, already at the point the other site calls identity)
 * this site's replica of that source again, as if it had been received: the next delta from
 * identity lands on it. Used when the direction is reversed (reprotect). */
int repl_receiver_adopt(struct repl_receiver *receiver, const char *volume, const char *identity,
			uint64_t size, const char *snapshot);

struct repl_segment_request {
	const char *volume;
	int64_t transfer_id;
	uint64_t index;
	uint64_t length; /* plain length */
	enum segment_encoding encoding;
	struct checksum checksum;
	const void *body;
	size_t body_length;
};

/* Verifies, writes, makes durable and records one segment; returns 0 only then. */
int repl_receiver_put_segment(struct repl_receiver *receiver,
			      const struct repl_segment_request *request);

/* Compares the sender's whole-volume digest with the receiver's and marks the transfer
 * complete when they match; FERRY_ERR_SPLIT_BRAIN (nothing changed) as for a begin. */
int repl_receiver_commit(struct repl_receiver *receiver, const char *volume, int64_t transfer_id,
			 const char *digest, const struct repl_push_group *push,
			 struct catalog_transfer *out);

/* Re-reads the received image (point > 0: its committed point N, snapshot ferry-N) and
 * recomputes its digest with segment_size. */
int repl_receiver_verify(struct repl_receiver *receiver, const char *volume, uint64_t segment_size,
			 int64_t point, char *digest_out);

/* Closes the receiver's open handle of RBD volume (and so lets go of its lock), e.g. before a
 * failover rolls it back. */
void repl_receiver_release(struct repl_receiver *receiver, const char *volume);

/* Removes the points (snapshots ferry-M) that retention does not keep of an RBD volume this
 * site keeps; FERRY_ERR_SPLIT_BRAIN (nothing removed) as for a begin. */
int repl_receiver_prune(struct repl_receiver *receiver, const char *volume,
			const struct repl_push_group *push, const struct repl_retention *retention,
			int *removed);

/* Runs each(context) with the receiver's lock held exclusively and its open handles closed: no
 * begin, segment, commit or prune runs meanwhile (a promote turns replicas into volumes this
 * site writes). Returns what each returns. */
int repl_receiver_exclusive(struct repl_receiver *receiver, int (*each)(void *context),
			    void *context);

/* ---- generations: one writer per group (replicator/generation.c) ---- */

/* A push's generation against this site's (the receiver's check, under its lock): the group is
 * push->group, else the one volume was recorded in (none: nothing to check). Lower than this
 * site's: FERRY_ERR_SPLIT_BRAIN, recorded (both sites' status show it), nothing else changed;
 * higher: adopted as this site's (a reversed direction takes over); equal: learnt. A group
 * name or generation that is not one is FERRY_ERR_INVALID. *generation (may be NULL) is this
 * site's generation of the group afterwards (0: no group). */
int repl_generation_check(struct catalog *catalog, const char *volume,
			  const struct repl_push_group *push, int64_t *generation);
/* Raises group's generation at this site, where its volumes are now written (a failover, a
 * migration's switch, a promote), and records it as an event. *generation (may be NULL) is the
 * new one. Call it once the replicas are promoted, before anything writes them. */
int repl_group_generation_raise(struct catalog *catalog, const char *group, int64_t *generation);

/* ferry group promote, at the replica site of a group without VMs. */
#define REPL_PROMOTE_VOLUMES_MAX 64
/* Without force, a promote is refused while the group's primary pushed here this recently: it
 * still writes, and two writers would be a split brain. */
#define REPL_PROMOTE_QUIET_MS (60 * 1000)
struct repl_promote_result {
	int64_t point;
	int64_t generation;
	int64_t peer_seen_ms; /* the primary's last push here (0: none recorded) */
	size_t volume_count;
	char volumes[REPL_PROMOTE_VOLUMES_MAX][VOLUME_NAME_MAX + 1];
};
/* Promotes the replicas of group kept here: each goes back to point (0: the newest point all of
 * them hold), is marked promoted (no delta lands on it any more) and the group's generation is
 * raised, so that a push from the old primary is refused as a split brain. Refused
 * (FERRY_ERR_CONFLICT) when the group has VMs here (that is ferry failover), when it is
 * promoted already, and without force while its primary pushed here within
 * REPL_PROMOTE_QUIET_MS. */
int repl_group_promote(struct repl_receiver *receiver, struct catalog *catalog, const char *group,
		       int64_t point, bool force, struct repl_promote_result *result);

/* ---- prediction: where a group's lag is heading (replicator/prediction.c) ---- */

#define REPL_PREDICTION_CYCLES	   6 /* the window: a group's last committed cycles */
#define REPL_PREDICTION_CYCLES_MIN 2 /* fewer: unknown (a fresh daemon has no history) */
#define REPL_PREDICTION_HORIZON	   3 /* a growing lag is predicted this many cycles ahead */
/* One committed cycle of a group: all its members' deltas of one group point. */
struct repl_cycle {
	double period_s;	/* from the group's previous point to this one */
	double ship_s;		/* from the cycle's start to its last member committed */
	uint64_t bytes_changed; /* the delta's changed extents (repl_copy_result) */
	uint64_t bytes_sent;	/* payload bytes put on the wire */
};
struct repl_cycle_window {
	struct repl_cycle cycles[REPL_PREDICTION_CYCLES]; /* oldest first */
	int count;
	/* The cycle in flight, from repl_cycle_window_begin() to _end(); started_ms 0: none. */
	int64_t inflight_started_ms;
	int64_t inflight_period_ms; /* 0: not a cycle of the schedule (a first copy) */
	struct repl_cycle inflight; /* the bytes of its members committed so far */
};
struct repl_prediction {
	bool known;		   /* false: too few cycles; the rest is 0 */
	int cycles;		   /* how many the figures are over */
	double change_rate;	   /* bytes changed per second */
	double ship_rate;	   /* bytes on the wire per second of shipping */
	double seconds_per_second; /* seconds of shipping per second of change; > 1 grows */
	bool grows;		   /* the backlog grows each cycle at these rates */
	double predicted_lag_s;	   /* where the lag settles, or (grows) its peak HORIZON ahead */
	bool at_risk;		   /* predicted_lag_s above the RPO target */
	char reason[512];	   /* the rates, the prediction and the target */
};
/* The window's moves, all pure (times in ms since the epoch): a cycle begins at started_ms
 * with its period (0: not one of the schedule), each member that commits adds its bytes, and
 * at its end it joins the window when it committed every member (the oldest leaving a full
 * window). repl_cycle_window_add() adds a finished cycle directly. */
void repl_cycle_window_begin(struct repl_cycle_window *window, int64_t started_ms,
			     int64_t period_ms);
void repl_cycle_window_member(struct repl_cycle_window *window, uint64_t bytes_changed,
			      uint64_t bytes_sent);
void repl_cycle_window_end(struct repl_cycle_window *window, int64_t now_ms, bool committed);
void repl_cycle_window_add(struct repl_cycle_window *window, const struct repl_cycle *cycle);
/* The group's prediction at now_ms from its window, its interval and RPO target (seconds). */
void repl_prediction_compute(const struct repl_cycle_window *window, int64_t now_ms,
			     int64_t interval_s, int64_t rpo_s, struct repl_prediction *prediction);

/* ---- scheduler (primary site) ---- */

struct repl_scheduler;

/* Starts the thread that takes and ships the points of every protected volume on its group's
 * interval (see scheduler.c). Caller keeps catalog open until repl_scheduler_stop(). */
struct repl_scheduler *repl_scheduler_start(struct catalog *catalog);
/* Stops after the cycle in progress, if any, and frees the scheduler. NULL is allowed. */
void repl_scheduler_stop(struct repl_scheduler *scheduler);
/* Asks for a cycle of group now, not at its next interval (a cutover's final point). */
void repl_scheduler_request(struct repl_scheduler *scheduler, const char *group);
/* Waits for the pass in progress to end and keeps the next from starting until release: the
 * protections can then be changed under the scheduler's feet (a reprotect). */
void repl_scheduler_hold(struct repl_scheduler *scheduler);
void repl_scheduler_release(struct repl_scheduler *scheduler);
/* Whether group's last cycle failed (1, else 0): then *failures, the cycles failed in a row,
 * and *next_retry_ms, when the next try is due (ms since the epoch; backoff, see scheduler.c). */
int repl_scheduler_retry(struct repl_scheduler *scheduler, const char *group,
			 int64_t *next_retry_ms, int *failures);
/* group's prediction now: repl_prediction_compute() over its last committed cycles and the
 * one in flight (unknown without a scheduler or before it has made enough: scheduler.c,
 * invariant 7). A change of its at-risk verdict is recorded as an event once, by whichever
 * caller sees it first: the scheduler after each cycle, or a reader of the status. */
void repl_scheduler_prediction(struct repl_scheduler *scheduler, const struct catalog_group *group,
			       int64_t now_ms, struct repl_prediction *prediction);
/* How the last push to each replica site went, and the segments sent again since the start. */
struct repl_site_contact {
	char site[VOLUME_NAME_MAX + 1];
	bool up; /* it answered (or refused); false: network or TLS failure */
	int64_t tried_ms;
};
int repl_scheduler_sites(struct repl_scheduler *scheduler, struct repl_site_contact *out, int max,
			 uint64_t *segments_resent);
/* Protects protection->source: checks that it opens, records it, and adds the image to its
 * group's RBD group (a group's images must share a pool). FERRY_ERR_CONFLICT when the source or
 * the replica is protected already. */
int repl_protection_add(struct catalog *catalog, const struct catalog_protection *protection);
/* Unprotects source: removes it from the catalog and its image from its group's RBD group (the
 * group goes with its last image). keep_point > 0 first leaves the image at that point (see
 * repl_point_reset), for a reprotect to ship only what changed since. A pass in progress
 * never puts the image back. FERRY_ERR_NOT_FOUND when it is not protected, unless group (may
 * be NULL) names its protection group: the image then still leaves that RBD group. */
int repl_protection_remove(struct catalog *catalog, const char *source, const char *group,
			   int64_t keep_point);

/* ---- sender (ferry copy) ---- */

struct repl_copy_options {
	const char *source;
	const char *name;
	const char *url;
	const char *token;
	const char *cacert;
	bool insecure;
	uint64_t segment_size; /* 0: the receiver's current one, else the default */
	int jobs;
	int zstd_level;
	bool restart;
	const char *target_kind;   /* "file" or "rbd"; NULL: the same kind as the source */
	const char *from_snapshot; /* ship only what changed since this snapshot of the source */
	bool progress;		   /* draw progress on stderr */
	uint64_t bandwidth_limit;  /* bytes per second on the wire, 0 for none */
	/* How long a passing failure (the link, the receiver restarting) is retried, with capped
	 * exponential backoff and jitter: 0 the default (REPL_COPY_RETRY_SECONDS), < 0 never
	 * (one try: the scheduler's next cycle resumes). */
	int retry_seconds;
	int stall_seconds;	   /* no byte for this long drops a connection; 0: the default */
	const atomic_bool *cancel; /* set: the copy stops at once (ferryd stopping); or NULL */
	struct catalog *catalog;   /* the CLI's own records */
	/* The protection group the copy replicates in, and this site's generation of it, sent
	 * with the begin and the commit (group NULL: a copy outside any group, none sent). */
	struct repl_push_group push;
};

#define REPL_COPY_RETRY_SECONDS 120

struct repl_copy_result {
	char name[VOLUME_NAME_MAX + 1];
	const char *status; /* "complete" or "failed" */
	uint64_t bytes_total;
	uint64_t bytes_sent;   /* payload bytes put on the wire */
	uint64_t bytes_resent; /* of those, for segments an earlier run had already sent */
	uint64_t bytes_read;   /* source bytes read */
	/* A delta: the bytes of its changed extents (written or discarded since the base, as the
	 * exact diff lists them) in the segments that hold data (one read as zeroes ships as a
	 * zero record); a whole copy: bytes_read. */
	uint64_t bytes_changed;
	uint64_t segments_total;
	uint64_t segments_delta;   /* a delta: the segments it carries */
	uint64_t segments_skipped; /* durable at the receiver when this run started */
	uint64_t segments_zero;
	uint64_t segments_sent;
	uint64_t retries;
	uint64_t segment_size;
	double seconds;
	char digest[DIGEST_STRING_SIZE];
	int64_t transfer_id;
	/* With options->push.group: the receiver's generation of the group, from its answer (a
	 * split brain's refusal too); 0 when it named none. */
	int64_t peer_generation;
};

/* Copies options->source to the receiver as volume options->name, resuming what the receiver
 * already holds. Returns 0 only when both sides' digests match and the copy is complete. */
int repl_copy_run(const struct repl_copy_options *options, struct repl_copy_result *result);

#endif
