/* The catalog: one SQLite file per ferryd site (DIR/catalog.db) and one per CLI user
 * (FERRY_STATE_DIR/catalog.db). It is the only module that speaks SQL.
 *
 * It records volumes, transfers with their segment progress, and an event log. Progress is kept
 * as ranges of segment indexes (kind "durable": acknowledged by the receiver and on its stable
 * storage; kind "attempted": put on the wire by a sender), plus the 16-byte checksum of every
 * durable segment, in rows of CATALOG_SUMS_CHUNK made as segments land and deleted with their
 * transfer when it is abandoned. A 16 TiB volume with 4 MiB segments is a handful of range
 * rows and 1024 checksum rows of 64 KiB, never millions of rows.
 *
 * Threads: one struct catalog may be shared; every call takes its lock. Writers run in
 * BEGIN IMMEDIATE; calls made between catalog_transaction_begin() and _commit() join that
 * transaction. Strings in the structs below are copies owned by the struct. */
#ifndef FERRY_CATALOG_H
#define FERRY_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/checksum.h"
#include "common/range_set.h"
#include "common/util.h"

#define CATALOG_SCHEMA_VERSION 10
/* Segments whose checksums share one row of the checksum store (64 KiB), and how many such
 * rows a transfer may have (the SQL of catalog.c spells 8192 out). */
#define CATALOG_SUMS_CHUNK	4096
#define CATALOG_SUMS_CHUNKS_MAX 8192
/* Largest checksum blob (16 bytes per segment) a transfer may need. */
#define CATALOG_CHECKSUMS_MAX_BYTES (512u << 20)

struct catalog;

enum catalog_sync { CATALOG_SYNC_NORMAL, CATALOG_SYNC_FULL };

/* Opens or creates the catalog at path and migrates it forward to CATALOG_SCHEMA_VERSION.
 * CATALOG_SYNC_FULL makes every commit durable before it returns (a receiver acknowledges
 * segments on it). Caller frees *out with catalog_close(). A catalog newer than this program
 * is refused. */
int catalog_open(const char *path, enum catalog_sync sync, struct catalog **out);
/* Same, but migrates only up to target_version: for tests of the migrations themselves. */
int catalog_open_at_version(const char *path, enum catalog_sync sync, int target_version,
			    struct catalog **out);
void catalog_close(struct catalog *catalog);
int catalog_schema_version(struct catalog *catalog);

int catalog_transaction_begin(struct catalog *catalog);
int catalog_transaction_commit(struct catalog *catalog);
void catalog_transaction_rollback(struct catalog *catalog);

/* Volumes (receiver side). name is unique. */
struct catalog_volume {
	int64_t id;
	char name[VOLUME_NAME_MAX + 1];
	char kind[16];	     /* "file" */
	char location[1024]; /* path of the image */
	uint64_t size;
	int64_t transfer_id; /* the transfer that fills it now, 0 if none */
	int64_t created_ms;
	char group[VOLUME_NAME_MAX + 1]; /* the protection group it replicates in; "" none */
};

/* Inserts or updates (by name); sets volume->id. An update with group "" keeps the group. */
int catalog_volume_put(struct catalog *catalog, struct catalog_volume *volume);
/* FERRY_ERR_NOT_FOUND when there is no such volume. */
int catalog_volume_get(struct catalog *catalog, const char *name, struct catalog_volume *out);
int catalog_volume_list(struct catalog *catalog,
			int (*each)(const struct catalog_volume *volume, void *context),
			void *context);

enum catalog_role { CATALOG_ROLE_SEND, CATALOG_ROLE_RECEIVE };

/* Transfer states and who moves them:
 *   active    --catalog_transfer_set_state(COMPLETE)--> complete   (digests matched)
 *   active    --catalog_transfer_set_state(ABANDONED)-> abandoned  (restart or source changed)
 *   complete  --catalog_transfer_set_state(ABANDONED)-> abandoned  (restart on purpose)
 * A volume's current transfer is never abandoned; an abandoned transfer never comes back. */
enum catalog_transfer_state {
	CATALOG_TRANSFER_ACTIVE,
	CATALOG_TRANSFER_COMPLETE,
	CATALOG_TRANSFER_ABANDONED,
};

/* durable: acknowledged by the receiver; attempted: put on the wire by a sender; member: the
 * segments a delta transfer carries (a transfer without members carries every segment). */
enum catalog_range_kind { CATALOG_RANGE_DURABLE, CATALOG_RANGE_ATTEMPTED, CATALOG_RANGE_MEMBER };

struct catalog_transfer {
	int64_t id;
	enum catalog_role role;
	char volume[VOLUME_NAME_MAX + 1];
	char peer[512];	     /* sender: the receiver's URL; receiver: "" */
	char location[1024]; /* sender: the source path; receiver: the image path */
	char source_identity[256];
	char base_identity[256];  /* a delta: the source the volume held before it; "" otherwise */
	char snapshot[128];	  /* receiver: the snapshot to take of the volume when complete */
	uint64_t segments_member; /* a delta: how many segments it carries */
	int64_t remote_id;	  /* sender: the receiver's transfer id */
	uint64_t size;
	uint64_t segment_size;
	uint64_t segments_total;
	enum catalog_transfer_state state;
	char digest[DIGEST_STRING_SIZE]; /* set when complete */
	int64_t created_ms;
	int64_t updated_ms;
	uint64_t segments_durable; /* filled by the getters */
	int64_t generation; /* its group's generation when it was made; 0: outside any group */
};

const char *catalog_transfer_state_name(enum catalog_transfer_state state);

/* Creates a transfer and its zeroed checksum blob from transfer's fields; sets transfer->id,
 * segments_total and the times. FERRY_ERR_INVALID when the volume needs too many segments. */
int catalog_transfer_create(struct catalog *catalog, struct catalog_transfer *transfer);
int catalog_transfer_get(struct catalog *catalog, int64_t id, struct catalog_transfer *out);
/* The newest transfer of that role, peer and volume that is not abandoned. */
int catalog_transfer_find_current(struct catalog *catalog, enum catalog_role role, const char *peer,
				  const char *volume, struct catalog_transfer *out);
int catalog_transfer_set_state(struct catalog *catalog, int64_t id,
			       enum catalog_transfer_state state, const char *digest);
int catalog_transfer_set_remote(struct catalog *catalog, int64_t id, int64_t remote_id);
/* Makes the transfer a delta carrying exactly the segments in members (and sets its
 * segments_member). Call once, right after catalog_transfer_create(), in its transaction. */
int catalog_transfer_set_members(struct catalog *catalog, int64_t id,
				 const struct range_set *members);
/* True when index is one of the delta's members (false on any error). */
bool catalog_transfer_has_member(struct catalog *catalog, int64_t id, uint64_t index);
/* How many segments the transfer carries: its members, or all of them. */
uint64_t catalog_transfer_segments_carried(const struct catalog_transfer *transfer);
/* Records segment `index` as durable with its checksum, in one transaction. */
int catalog_transfer_mark_durable(struct catalog *catalog, int64_t id, uint64_t index,
				  const struct checksum *sum);
int catalog_transfer_mark_attempted(struct catalog *catalog, int64_t id, uint64_t index);
/* Replaces the contents of *out (initialised by the caller) with the transfer's ranges. */
int catalog_transfer_load_ranges(struct catalog *catalog, int64_t id, enum catalog_range_kind kind,
				 struct range_set *out);
/* Copies the transfer's checksums (16 * segments_total bytes) into sums. */
int catalog_transfer_read_checksums(struct catalog *catalog, int64_t id, uint8_t *sums,
				    uint64_t segments_total);
int catalog_transfer_list(struct catalog *catalog, bool include_abandoned,
			  int (*each)(const struct catalog_transfer *transfer, void *context),
			  void *context);

/* ---- continuous replication (primary site) ---- */

/* A replica site this daemon pushes to. The token and CA live in files only the daemon reads. */
struct catalog_site {
	char name[VOLUME_NAME_MAX + 1];
	char url[512];
	char token_path[1024];
	char cacert_path[1024]; /* "" for the system's CAs */
};
int catalog_site_put(struct catalog *catalog, const struct catalog_site *site);
/* out may be NULL (does it exist?). */
int catalog_site_get(struct catalog *catalog, const char *name, struct catalog_site *out);
/* Removes a site no image replicates to; FERRY_ERR_CONFLICT otherwise. */
int catalog_site_remove(struct catalog *catalog, const char *name);
int catalog_site_list(struct catalog *catalog,
		      int (*each)(const struct catalog_site *site, void *context), void *context);

/* A protection group: one schedule and retention for volumes that must stay consistent. */
struct catalog_group {
	char name[VOLUME_NAME_MAX + 1];
	int64_t interval_s;
	int64_t keep;
	int64_t rpo_s;	   /* the RPO target; 0: two intervals and a minute */
	int64_t paused_ms; /* when the operator paused it; 0: running */
};
/* The group's RPO target in seconds: its own, else two intervals and a minute. */
static inline int64_t
catalog_group_rpo_target(const struct catalog_group *group)
{
	return group->rpo_s > 0 ? group->rpo_s : 2 * group->interval_s + 60;
}
/* Creates or changes a group. */
int catalog_group_put(struct catalog *catalog, const struct catalog_group *group);
/* Creates a group; FERRY_ERR_CONFLICT (naming ferry group set) when it exists. */
int catalog_group_create(struct catalog *catalog, const struct catalog_group *group);
/* Removes a group that nothing is protected in; FERRY_ERR_CONFLICT otherwise. */
int catalog_group_remove(struct catalog *catalog, const char *name);
/* out may be NULL (does it exist?). */
int catalog_group_get(struct catalog *catalog, const char *name, struct catalog_group *out);
int catalog_group_list(struct catalog *catalog,
		       int (*each)(const struct catalog_group *group, void *context),
		       void *context);

/* A protection's stored state (catalog/protections.c has its transitions). "lagging" and
 * "paused" are not stored: readers compute them from the times and the group. */
enum catalog_protection_state {
	CATALOG_PROTECTION_SYNCING, /* "syncing": no point committed since it began or changed */
	CATALOG_PROTECTION_IN_SYNC, /* "in-sync": the last cycle committed a point */
	CATALOG_PROTECTION_ERROR,   /* "error": the last cycle failed; reason says why */
};
const char *catalog_protection_state_name(enum catalog_protection_state state);
/* FERRY_ERR_INVALID (recorded) when name is none of the names above. */
int catalog_protection_state_parse(const char *name, enum catalog_protection_state *out);

/* A protected volume and where its replication stands. Points are numbered 1, 2, ...; point N
 * is snapshot ferry-N of the source and, once committed, of the replica. pending_point is a
 * point taken but not yet committed (resumed, never re-taken). */
struct catalog_protection {
	char source[512]; /* rbd:POOL/IMAGE */
	char group[VOLUME_NAME_MAX + 1];
	char site[VOLUME_NAME_MAX + 1];
	char replica[VOLUME_NAME_MAX + 1];
	int64_t last_point;
	int64_t last_point_ms; /* source time of the last committed point */
	int64_t pending_point;
	int64_t pending_point_ms;
	int64_t last_bytes_changed;
	int64_t last_bytes_sent;
	double last_seconds;
	char state[16]; /* catalog_protection_state_name(): syncing, in-sync, error */
	char reason[512];
	/* Counters since the protection began (metrics). */
	int64_t points_committed;
	int64_t bytes_shipped;
	int64_t errors;
};
/* Lagging, the one definition: the last point is older than the group's RPO target at now_ms.
 * ferry status, the metrics and the migration gates all judge by it. */
static inline bool
catalog_protection_lagging(const struct catalog_protection *protection,
			   const struct catalog_group *group, int64_t now_ms)
{
	return now_ms - protection->last_point_ms > catalog_group_rpo_target(group) * 1000;
}
/* Adds a protection; FERRY_ERR_CONFLICT when the source or the replica is protected already. */
int catalog_protection_add(struct catalog *catalog, const struct catalog_protection *protection);
int catalog_protection_remove(struct catalog *catalog, const char *source);
int catalog_protection_get(struct catalog *catalog, const char *source,
			   struct catalog_protection *out);
/* Writes back the replication fields (points, last cycle, state, reason). */
int catalog_protection_update(struct catalog *catalog, const struct catalog_protection *protection);
int catalog_protection_list(struct catalog *catalog,
			    int (*each)(const struct catalog_protection *protection, void *context),
			    void *context);

/* ---- cutover: protected VMs, runs and their steps ---- */

/* A protected VM: role "primary" on the site that runs it, "replica" on the site that would
 * bring it up; record is a JSON document owned by cutover/ (libvirt XML, disks, mapping). */
int catalog_vm_put(struct catalog *catalog, const char *name, const char *role, const char *group,
		   const char *record);
/* Sets *record (caller frees) and, when role is not NULL, role (16 bytes). */
int catalog_vm_get(struct catalog *catalog, const char *name, char **record, char *role);
int catalog_vm_remove(struct catalog *catalog, const char *name);
/* Every VM (group NULL) or those of one group; record is valid during the call only. */
int catalog_vm_list(struct catalog *catalog, const char *group,
		    int (*each)(const char *name, const char *role, const char *group,
				const char *record, void *context),
		    void *context);

/* A run's status (catalog/runs.c has its transitions and invariants). */
enum catalog_run_status {
	CATALOG_RUN_RUNNING,	 /* "running": a thread executes it */
	CATALOG_RUN_COMPLETED,	 /* "completed" */
	CATALOG_RUN_FAILED,	 /* "failed": resumable or rolled back */
	CATALOG_RUN_REFUSED,	 /* "refused": a check failed before anything changed */
	CATALOG_RUN_ABORTED,	 /* "aborted": the operator aborted it */
	CATALOG_RUN_INTERRUPTED, /* "interrupted": ferryd stopped during it */
	CATALOG_RUN_ROLLED_BACK, /* "rolled-back": a later rollback run undid it */
};
#define CATALOG_RUN_STATUS_COUNT 7
/* The bit of a status in a from_mask of catalog_run_transition(). */
#define CATALOG_RUN_MASK(status) (1u << (status))
const char *catalog_run_status_name(enum catalog_run_status status);
/* FERRY_ERR_INVALID (recorded) when name is no status. */
int catalog_run_status_parse(const char *name, enum catalog_run_status *out);

/* A step's result. */
enum catalog_step_result {
	CATALOG_STEP_RUNNING,	  /* "running" */
	CATALOG_STEP_OK,	  /* "ok" */
	CATALOG_STEP_FAILED,	  /* "failed" */
	CATALOG_STEP_INTERRUPTED, /* "interrupted": ferryd stopped during it */
};
const char *catalog_step_result_name(enum catalog_step_result result);
int catalog_step_result_parse(const char *name, enum catalog_step_result *out);

struct catalog_run {
	int64_t id;
	char kind[32];
	char target[256];
	char status[16]; /* catalog_run_status_name() */
	char reason[1024];
	int64_t started_ms;
	int64_t ended_ms;
	const char *request; /* JSON; valid during a list or get callback only */
	const char *result;  /* JSON; same */
};
struct catalog_run_step {
	int64_t run_id;
	int seq;
	char name[128];
	char result[16]; /* catalog_step_result_name() */
	char detail[1024];
	int64_t started_ms;
	int64_t ended_ms;
};
int catalog_run_create(struct catalog *catalog, const char *kind, const char *target,
		       const char *request, int64_t *id);
int catalog_run_finish(struct catalog *catalog, int64_t id, const char *status, const char *reason,
		       const char *result);
/* Reopens an interrupted or failed run (status running) to resume it; FERRY_ERR_CONFLICT when
 * it is neither (any more). */
int catalog_run_reopen(struct catalog *catalog, int64_t id);
/* The one guarded move of a run: to `to` (with reason; NULL keeps the stored one) when its
 * status is one of from_mask (CATALOG_RUN_MASK() bits), in one UPDATE ... WHERE id = ? AND
 * status IN (...). Of two moves from the same status at once, exactly one succeeds; the other
 * gets FERRY_ERR_CONFLICT naming the status the run has now. FERRY_ERR_NOT_FOUND when there is
 * no such run. A move to running clears ended_ms; any other sets it. */
int catalog_run_transition(struct catalog *catalog, int64_t run_id, unsigned from_mask,
			   enum catalog_run_status to, const char *reason);
/* Marks every run still running (and its running step) as interrupted; 0 or an error. */
int catalog_run_mark_interrupted(struct catalog *catalog);
int catalog_run_step_begin(struct catalog *catalog, int64_t run_id, const char *name, int *seq);
int catalog_run_step_end(struct catalog *catalog, int64_t run_id, int seq, const char *result,
			 const char *detail);
/* How many runs there are of each kind and status. */
int catalog_run_counts(struct catalog *catalog,
		       int (*each)(const char *kind, const char *status, int64_t count,
				   void *context),
		       void *context);
/* Newest first (id 0: all, limit 0: no limit), or the one run id. */
int catalog_run_list(struct catalog *catalog, int64_t id, int limit,
		     int (*each)(const struct catalog_run *run, void *context), void *context);
int catalog_run_steps(struct catalog *catalog, int64_t run_id,
		      int (*each)(const struct catalog_run_step *step, void *context),
		      void *context);

/* A replica volume a failover brought up: its VM writes it now, and no delta may land on it. */
int catalog_promoted_put(struct catalog *catalog, const char *volume, int64_t run_id);
/* The run id of a volume that `ferry group promote` promoted: no run, but never 0. */
#define CATALOG_PROMOTED_NO_RUN (-1)
/* Sets *run_id to the run that promoted volume (CATALOG_PROMOTED_NO_RUN: a group promote), 0
 * when it is not promoted. */
int catalog_promoted_get(struct catalog *catalog, const char *volume, int64_t *run_id);
int catalog_promoted_remove(struct catalog *catalog, const char *volume);
/* Records the point volume was promoted at (after catalog_promoted_put()). */
int catalog_promoted_set_point(struct catalog *catalog, const char *volume, int64_t point);
/* *point: the point volume was promoted at; 0 when not promoted or not recorded. */
int catalog_promoted_point(struct catalog *catalog, const char *volume, int64_t *point);

/* ---- generations: one writer per group (catalog/generations.c) ----
 * Each site keeps its own generation of every group it writes or keeps replicas of; promoting
 * replicas raises it at the site that now writes, and a push from a site at a lower one is a
 * split brain, refused. A group without a row is at generation 1, with nothing learnt. */
struct catalog_generation {
	char group[VOLUME_NAME_MAX + 1];
	int64_t generation;	 /* this site's, 1 or more */
	int64_t peer_generation; /* the other site's, as last learnt; 0: nothing learnt yet */
	int64_t peer_seen_ms;	 /* when it was learnt (a push from it, or its answer to one) */
	int64_t raised_ms;	 /* when this site last raised it (a promote); 0: never */
	int64_t split_brain_ms;	 /* since when a push across generations is refused; 0: none */
};
/* Fills out (group's row, or generation 1 with nothing learnt); never FERRY_ERR_NOT_FOUND. */
int catalog_generation_get(struct catalog *catalog, const char *group,
			   struct catalog_generation *out);
/* Raises group's generation here to one above both its own and the peer's last learnt, now
 * (raised_ms); sets *generation (may be NULL) to the new one. */
int catalog_generation_raise(struct catalog *catalog, const char *group, int64_t *generation);
/* Records what this site learnt of the other site's generation now: with split_brain, that a
 * push across generations was refused (split_brain_ms keeps when that was first seen); without,
 * that the two agree again (split_brain_ms 0). */
int catalog_generation_learn(struct catalog *catalog, const char *group, int64_t peer_generation,
			     bool split_brain);
/* Takes the higher generation that a push from the other site carries as this site's own (a
 * reversed direction taking over): generation and peer_generation become it, no split brain. */
int catalog_generation_adopt(struct catalog *catalog, const char *group, int64_t generation);
int catalog_generation_list(struct catalog *catalog,
			    int (*each)(const struct catalog_generation *generation, void *context),
			    void *context);

/* Event log: every operator-visible change. level is "info", "warn" or "error". */
int catalog_event_add(struct catalog *catalog, const char *level, const char *object,
		      const char *format, ...) __attribute__((format(printf, 4, 5)));
/* The same with what the event is about: point (committed), state (a protection's changed),
 * step (of a run, begun or ended), error, info. */
int catalog_event_add_kind(struct catalog *catalog, const char *kind, const char *level,
			   const char *object, const char *format, ...)
	__attribute__((format(printf, 5, 6)));
struct catalog_event {
	int64_t id;
	int64_t time_ms;
	char level[8];
	char object[256];
	char message[1024];
	char kind[16];
};
/* Newest first, at most limit events. */
int catalog_event_list(struct catalog *catalog, int limit,
		       int (*each)(const struct catalog_event *event, void *context),
		       void *context);
/* Oldest first, the events after after_id (an event stream resuming), at most limit. */
int catalog_event_list_after(struct catalog *catalog, int64_t after_id, int limit,
			     int (*each)(const struct catalog_event *event, void *context),
			     void *context);

/* ---- API tokens, owners and the audit log (catalog/access.c) ---- */

/* A token is stored as the hex SHA-256 of its secret, never the secret. expires_ms 0: never. */
struct catalog_token {
	char name[65];
	char role[16];
	char hash[65];
	int64_t created_ms;
	int64_t last_used_ms;
	int64_t expires_ms;
};
/* FERRY_ERR_CONFLICT when the name is taken. */
int catalog_token_add(struct catalog *catalog, const struct catalog_token *token);
/* FERRY_ERR_NOT_FOUND when no token has that hash. */
int catalog_token_find(struct catalog *catalog, const char *hash, struct catalog_token *out);
int catalog_token_list(struct catalog *catalog,
		       int (*each)(const struct catalog_token *token, void *context),
		       void *context);
/* FERRY_ERR_NOT_FOUND when there is no such token. */
int catalog_token_revoke(struct catalog *catalog, const char *name);
int catalog_token_touch(struct catalog *catalog, const char *name, int64_t now_ms);

/* Which peer token pushed an object (kind "volume" or "vm"): "" when none did, so that a peer
 * may change only what it pushed. */
int catalog_owner_get(struct catalog *catalog, const char *kind, const char *name, char *token,
		      size_t size);
int catalog_owner_set(struct catalog *catalog, const char *kind, const char *name,
		      const char *token);

struct catalog_audit_entry {
	int64_t id;
	int64_t time_ms;
	char token[65];
	char role[16];
	char client[64];
	char method[16];
	char path[512];
	char object[256];
	int status;
};
/* *id (may be NULL) is the new entry's. An entry of status 0 is a request that began and has no
 * answer recorded yet (catalog_audit_finish()). */
int catalog_audit_add(struct catalog *catalog, const struct catalog_audit_entry *entry,
		      int64_t *id);
int catalog_audit_finish(struct catalog *catalog, int64_t id, int status);
/* Oldest first, from since_ms on, at most limit entries (the newest ones). */
int catalog_audit_list(struct catalog *catalog, int64_t since_ms, int limit,
		       int (*each)(const struct catalog_audit_entry *entry, void *context),
		       void *context);

#endif
