/* The point scheduler of a primary site: one thread that, for every protection group whose
 * interval has passed, takes the group's point N through repl.h's point interface
 * (repl_group_point_take: for RBD images one RBD group snapshot ferry-N over all of them, so
 * they share one instant) and ships each image's delta from its last point to the group's
 * replica site, where the replica image takes ferry-N once every byte has landed and verified.
 *
 * Invariants:
 *  1. A point is taken once: its number is recorded as pending before it is shipped, and a
 *     failed or interrupted cycle resumes that same point instead of taking a new one.
 *  2. A point becomes the last point only after the replica committed it.
 *  3. Retention removes point M <= N - keep on both sides, only after point N committed,
 *     so the base of the next delta (point N) is never removed.
 *  4. Point numbers belong to the group: the images of a group move in step, and an image that
 *     joins while point N is pending waits for N + 1 (N's group snapshot does not hold it).
 *  5. A group whose cycle failed is tried again with capped exponential backoff and jitter
 *     (api_backoff_ms: its interval, then 2x, 4x ... up to SCHEDULER_RETRY_CAP_MS, never less
 *     than the interval), not at every interval: a dead cluster or peer costs a few tries a
 *     minute, not thousands. A success, or a point asked for, ends the backoff.
 *  6. Every push (begin, commit, prune) carries the group's generation at this site; a split
 *     brain (the replica site promoted them and is at a higher one) is refused there, recorded
 *     here (catalog_generation_learn) and retried only on the backoff of invariant 5: the
 *     pending point stays pending and is never applied there.
 *  7. A group's prediction (replicator/prediction.c) is over its last REPL_PREDICTION_CYCLES
 *     cycles that committed every member shipped, kept in memory: a restarted daemon knows
 *     none and predicts nothing (never at risk) until it has made some. A first copy is no
 *     cycle of the window (its period is not one of the schedule). A change of the at-risk
 *     verdict is recorded as an event once (repl_scheduler_prediction).
 * librbd diffs only from user snapshots, so each image also gets the user snapshot ferry-N-before
 * just before group snapshot N: the next delta starts there (see repl.h).
 * Stopping: repl_scheduler_stop() sets cancel, which cuts the transfer and peer calls in flight
 * and every wait of theirs; a librbd call in flight ends within the Ceph timeout. */
#include "replicator/backend.h"
#include "common/api_client.h"
#include "common/error.h"
#include "common/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCHEDULER_GROUPS_MAX   256
#define SCHEDULER_RETRY_CAP_MS (5 * 60 * 1000)

/* Held while an image joins or leaves a protection and its RBD group, and while a group's point
 * is taken: a pass works on rows copied from the catalog, and must not put an image that was
 * unprotected meanwhile back into the RBD group (nor into a group snapshot). One per process,
 * as the catalog and the RBD groups it describes are. */
static pthread_mutex_t scheduler_membership_lock = PTHREAD_MUTEX_INITIALIZER;

struct repl_scheduler {
	struct catalog *catalog;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_mutex_t pass_lock; /* held through a pass; repl_scheduler_hold() takes it too */
	pthread_cond_t wake;
	bool stopping;
	atomic_bool cancel; /* set with stopping: cuts the calls of the pass in flight */
	struct scheduler_due {
		char name[VOLUME_NAME_MAX + 1];
		int64_t next_due_ms;
		int failures;	       /* cycles failed in a row (invariant 5) */
		int64_t next_retry_ms; /* when the next try is due after a failure, else 0 */
		struct repl_cycle_window window; /* invariant 7: in memory only */
		bool at_risk;			 /* the verdict last recorded as an event */
	} due[SCHEDULER_GROUPS_MAX];
	uint64_t cycle_failures; /* scheduler_fail() calls, counted by the scheduler's thread */
	/* Whether each replica site answered at the last try (metrics, health). */
	struct repl_site_contact sites[SCHEDULER_GROUPS_MAX];
	int site_count;
	uint64_t segments_resent;
};

/* Records how the last push to a site went: a network or TLS failure says it is unreachable;
 * any answer, even a refusal, says it is up. */
static void
scheduler_site_contact(struct repl_scheduler *scheduler, const char *site, int rc,
		       const struct repl_copy_result *result)
{
	struct repl_site_contact *slot = NULL;

	pthread_mutex_lock(&scheduler->lock);
	scheduler->segments_resent +=
		result->retries +
		(result->segment_size ? result->bytes_resent / result->segment_size : 0);
	for (int i = 0; i < scheduler->site_count && slot == NULL; i++)
		if (strcmp(scheduler->sites[i].site, site) == 0)
			slot = &scheduler->sites[i];
	if (slot == NULL && scheduler->site_count < SCHEDULER_GROUPS_MAX) {
		slot = &scheduler->sites[scheduler->site_count++];
		snprintf(slot->site, sizeof(slot->site), "%s", site);
	}
	if (slot) {
		slot->up = rc != FERRY_ERR_NETWORK && rc != FERRY_ERR_TLS;
		slot->tried_ms = util_now_ms();
	}
	pthread_mutex_unlock(&scheduler->lock);
}

int
repl_scheduler_sites(struct repl_scheduler *scheduler, struct repl_site_contact *out, int max,
		     uint64_t *segments_resent)
{
	int count;

	if (scheduler == NULL) {
		*segments_resent = 0;
		return 0;
	}
	pthread_mutex_lock(&scheduler->lock);
	count = scheduler->site_count < max ? scheduler->site_count : max;
	memcpy(out, scheduler->sites, (size_t)count * sizeof(*out));
	*segments_resent = scheduler->segments_resent;
	pthread_mutex_unlock(&scheduler->lock);
	return count;
}

static int
scheduler_prune_replica(const struct catalog_site *site, const char *token, const char *replica,
			const struct repl_push_group *push, const struct repl_retention *retention,
			const atomic_bool *cancel)
{
	struct api_client *client;
	json_t *request = NULL, *also;
	char path[256];
	int rc;

	client = api_client_new(&(struct api_client_options){
		.url = site->url,
		.token = token,
		.cacert = site->cacert_path[0] ? site->cacert_path : NULL,
		.cancel = cancel,
	});
	if (client == NULL)
		return ferry_error_last_code();
	snprintf(path, sizeof(path), "/v1/volumes/%s/prune", replica);
	also = json_array();
	for (size_t i = 0; i < retention->also_count; i++)
		json_array_append_new(also, json_integer(retention->also[i]));
	request = json_pack("{s:I, s:o, s:s, s:I}", "keep_from", (json_int_t)retention->keep_from,
			    "also_keep", also, "group", push->group, "generation",
			    (json_int_t)push->generation);
	rc = api_client_json(client, "POST", path, request, NULL);
	json_decref(request);
	api_client_free(client);
	return rc;
}

/* A pending point given up leaves its ferry-N-before behind, which only a delta from point N
 * would use: one a pass while the image is in error, so it goes at once. */
static void
scheduler_drop_before(const struct catalog_protection *protection)
{
	struct repl_volume *source = NULL;
	char before[48];

	snprintf(before, sizeof(before), "ferry-%" PRId64 "-before", protection->pending_point);
	if (repl_volume_open(protection->source, REPL_OPEN_WRITE, &source) == 0)
		repl_volume_snapshot_remove(source, before);
	repl_volume_close(source);
}

/* A replica is never shrunk. An image that shrank since its last point gives up its pending
 * point, so that the next one is taken afresh: once the image is grown back, it goes on. */
static int
scheduler_check_shrink(struct catalog_protection *protection, const char *source_point)
{
	struct repl_volume *point = NULL, *base = NULL;
	char base_point[600];
	int rc;

	snprintf(base_point, sizeof(base_point), "%s@ferry-%" PRId64, protection->source,
		 protection->last_point);
	rc = repl_volume_open(source_point, REPL_OPEN_READ, &point);
	if (rc == 0)
		rc = repl_volume_open(base_point, REPL_OPEN_READ, &base);
	if (rc == 0 && repl_volume_size(point) < repl_volume_size(base)) {
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "%s shrank from %llu to %llu bytes at point %lld; ferry "
				     "never shrinks a replica (its points would lose data): grow "
				     "the image back to %llu bytes and replication goes on",
				     protection->source, (unsigned long long)repl_volume_size(base),
				     (unsigned long long)repl_volume_size(point),
				     (long long)protection->pending_point,
				     (unsigned long long)repl_volume_size(base));
		scheduler_drop_before(protection);
		protection->pending_point = 0;
		protection->pending_point_ms = 0;
	}
	repl_volume_close(point);
	repl_volume_close(base);
	return rc;
}

static bool scheduler_asked(struct repl_scheduler *scheduler, const char *group);

struct scheduler_retention_walk {
	const char *group;
	struct repl_retention *retention;
};

static int
scheduler_retention_row(const struct catalog_protection *protection, void *context)
{
	struct scheduler_retention_walk *walk = context;

	if (strcmp(protection->group, walk->group) == 0 && protection->last_point > 0)
		repl_retention_also(walk->retention, protection->last_point);
	return 0;
}

/* What retention keeps of a group's points, counted from newest: the last keep points, and
 * the last point of every member, so that a member behind (in error, say) keeps one point that
 * all of the group hold, for a failover of the whole group, without holding every later point
 * of the others as well. Returns false when the catalog cannot tell: prune nothing then. */
static bool
scheduler_group_retention(struct catalog *catalog, const struct catalog_group *group,
			  int64_t newest, struct repl_retention *retention)
{
	struct scheduler_retention_walk walk = {group->name, retention};

	memset(retention, 0, sizeof(*retention));
	retention->keep_from = newest - group->keep + 1;
	return catalog_protection_list(catalog, scheduler_retention_row, &walk) == 0;
}

/* Invariant 6: what the replica site's answer says of its generation of the group. A split
 * brain is recorded, so that ferry status shows it with both generations. */
static void
scheduler_learn_generation(struct catalog *catalog, const struct repl_push_group *push, int rc,
			   const struct repl_copy_result *result)
{
	int64_t peer = result->peer_generation;

	if (rc == FERRY_ERR_SPLIT_BRAIN)
		catalog_generation_learn(catalog, push->group,
					 peer > push->generation ? peer : push->generation + 1,
					 true);
	else if (rc == 0 && peer > 0)
		catalog_generation_learn(catalog, push->group, peer, false);
}

static int scheduler_slot(struct repl_scheduler *scheduler, const char *group);

/* Invariant 7: a member of the cycle in flight committed; its bytes count in the cycle. */
static void
scheduler_cycle_add(struct repl_scheduler *scheduler, const char *group,
		    const struct repl_copy_result *result)
{
	int slot;

	pthread_mutex_lock(&scheduler->lock);
	slot = scheduler_slot(scheduler, group);
	if (slot >= 0)
		repl_cycle_window_member(&scheduler->due[slot].window, result->bytes_changed,
					 result->bytes_sent);
	pthread_mutex_unlock(&scheduler->lock);
}

/* Ships the pending point of one protection; on success it becomes the last point. */
static int
scheduler_ship(struct repl_scheduler *scheduler, const struct catalog_group *group,
	       struct catalog_protection *protection)
{
	struct catalog *catalog = scheduler->catalog;
	struct catalog_site site;
	struct catalog_generation generation;
	struct repl_push_group push = {group->name, 1};
	struct repl_copy_result result = {0};
	struct repl_volume *source = NULL;
	struct repl_retention retention;
	char source_point[600], base[32], *token = NULL;
	int rc;

	rc = catalog_site_get(catalog, protection->site, &site);
	if (rc == 0)
		rc = catalog_generation_get(catalog, group->name, &generation);
	if (rc == 0)
		push.generation = generation.generation;
	if (rc == 0)
		rc = util_read_token_file(site.token_path, &token);
	if (rc < 0)
		return rc;
	snprintf(source_point, sizeof(source_point), "%s@ferry-%" PRId64, protection->source,
		 protection->pending_point);
	snprintf(base, sizeof(base), "ferry-%" PRId64, protection->last_point);
	if (protection->last_point) {
		rc = scheduler_check_shrink(protection, source_point);
		if (rc < 0)
			goto out;
	}
	rc = repl_copy_run(
		&(struct repl_copy_options){
			.source = source_point,
			.name = protection->replica,
			.url = site.url,
			.token = token,
			.cacert = site.cacert_path[0] ? site.cacert_path : NULL,
			.jobs = 4,
			.zstd_level = 1,
			.target_kind = "rbd",
			.from_snapshot = protection->last_point ? base : NULL,
			.catalog = catalog,
			/* The next cycle resumes anyway (after a backoff, invariant 5): a failure
			 * shows in the status at once. */
			.retry_seconds = -1,
			.cancel = &scheduler->cancel,
			.push = push,
		},
		&result);
	scheduler_site_contact(scheduler, protection->site, rc, &result);
	scheduler_learn_generation(catalog, &push, rc, &result);
	if (rc < 0)
		goto out;
	scheduler_cycle_add(scheduler, group->name, &result);
	/* Invariant 2: committed at the replica, so it is the last point now. */
	protection->last_point = protection->pending_point;
	protection->last_point_ms = protection->pending_point_ms;
	protection->pending_point = 0;
	protection->pending_point_ms = 0;
	protection->last_bytes_changed = (int64_t)result.bytes_read; /* the changed segments */
	protection->last_bytes_sent = (int64_t)result.bytes_sent;
	protection->last_seconds = result.seconds;
	protection->points_committed++;
	protection->bytes_shipped += (int64_t)result.bytes_sent;
	if (strcmp(protection->state, "error") == 0)
		catalog_event_add_kind(catalog, "state", "info", protection->source,
				       "in-sync again at point %" PRId64, protection->last_point);
	snprintf(protection->state, sizeof(protection->state), "in-sync");
	protection->reason[0] = '\0';
	rc = catalog_protection_update(catalog, protection);
	if (rc < 0)
		goto out;
	catalog_event_add_kind(catalog, "point", "info", protection->source,
			       "point %" PRId64 " committed at site %s (%" PRId64
			       " bytes sent, %.2f s)",
			       protection->last_point, protection->site,
			       protection->last_bytes_sent, protection->last_seconds);
	log_info("%s: point %" PRId64 " committed at site %s (%" PRId64 " bytes sent, %.2f s)",
		 protection->source, protection->last_point, protection->site,
		 protection->last_bytes_sent, protection->last_seconds);
	/* Invariant 3: retention after the commit, on both sides; it keeps the last point of
	 * every member, so that a failover always finds a point all of them hold. Unless a point
	 * is asked for meanwhile (a cutover's final delta, the guest frozen): that comes first,
	 * and the next cycle prunes. */
	if (scheduler_group_retention(catalog, group, protection->last_point, &retention) &&
	    retention.keep_from > 1 && !scheduler_asked(scheduler, group->name)) {
		if (repl_volume_open(protection->source, REPL_OPEN_WRITE, &source) == 0 &&
		    repl_volume_prune_points(source, &retention) < 0)
			log_warn("%s: retention: %s", protection->source, ferry_error_message());
		if (scheduler_prune_replica(&site, token, protection->replica, &push, &retention,
					    &scheduler->cancel) < 0)
			log_warn("%s: retention at site %s: %s", protection->source,
				 protection->site, ferry_error_message());
	}
out:
	repl_volume_close(source);
	free(token);
	return rc;
}

/* Rows are copied out of the catalog before anything slow runs: the catalog's lock is held
 * while its list callbacks run, and a transfer's workers need that lock. */
struct scheduler_rows {
	void *rows;
	size_t count;
	size_t capacity;
	size_t size;
};

static int
scheduler_rows_add(struct scheduler_rows *rows, const void *row)
{
	if (rows->count == rows->capacity) {
		size_t capacity = rows->capacity ? rows->capacity * 2 : 16;
		void *grown = realloc(rows->rows, capacity * rows->size);

		if (grown == NULL)
			return ferry_error_no_memory();
		rows->rows = grown;
		rows->capacity = capacity;
	}
	memcpy((char *)rows->rows + rows->count++ * rows->size, row, rows->size);
	return 0;
}

static int
scheduler_group_row(const struct catalog_group *group, void *context)
{
	return scheduler_rows_add(context, group);
}

static int
scheduler_protection_row(const struct catalog_protection *protection, void *context)
{
	return scheduler_rows_add(context, protection);
}

/* Records why this cycle of a protection failed; the next cycle retries the same point. */
static void
scheduler_fail(struct repl_scheduler *scheduler, struct catalog_protection *protection)
{
	snprintf(protection->reason, sizeof(protection->reason), "%s", ferry_error_message());
	snprintf(protection->state, sizeof(protection->state), "error");
	protection->errors++;
	scheduler->cycle_failures++;
	log_warn("%s: %s", protection->source, protection->reason);
	catalog_protection_update(scheduler->catalog, protection);
	catalog_event_add(scheduler->catalog, "error", protection->source, "%s",
			  protection->reason);
}

struct scheduler_group_member {
	const char *group;
	const char *source; /* the image being protected, not counted */
	char member[sizeof(((struct catalog_protection *)0)->source)]; /* another one, or "" */
};

static int
scheduler_group_member_entry(const struct catalog_protection *protection, void *context)
{
	struct scheduler_group_member *find = context;

	if (strcmp(protection->group, find->group) == 0 &&
	    strcmp(protection->source, find->source) != 0 && find->member[0] == '\0')
		snprintf(find->member, sizeof(find->member), "%s", protection->source);
	return 0;
}

/* A protection group's images share group points, so they must be able to (RBD: share a
 * pool); the image joins the group (RBD: the RBD group ferry-GROUP) now, so that a conflict
 * shows at once. */
static int
scheduler_protect_join(struct catalog *catalog, const struct catalog_protection *protection)
{
	struct scheduler_group_member find = {protection->group, protection->source, ""};
	int rc;

	rc = catalog_protection_list(catalog, scheduler_group_member_entry, &find);
	if (rc < 0)
		return rc;
	return repl_group_join(protection->source, protection->group,
			       find.member[0] ? find.member : NULL);
}

int
repl_protection_add(struct catalog *catalog, const struct catalog_protection *protection)
{
	struct repl_volume *source = NULL;
	int rc;

	/* The image must be there and readable with this site's Ceph settings. */
	rc = repl_volume_open(protection->source, REPL_OPEN_READ, &source);
	repl_volume_close(source);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&scheduler_membership_lock);
	rc = catalog_protection_add(catalog, protection);
	if (rc == 0) {
		rc = scheduler_protect_join(catalog, protection);
		if (rc < 0)
			catalog_protection_remove(catalog, protection->source);
	}
	pthread_mutex_unlock(&scheduler_membership_lock);
	return rc;
}

int
repl_protection_remove(struct catalog *catalog, const char *source, const char *group,
		       int64_t keep_point)
{
	struct catalog_protection protection = {0};
	int rc;

	pthread_mutex_lock(&scheduler_membership_lock);
	rc = catalog_protection_get(catalog, source, &protection);
	if (rc == 0)
		rc = catalog_protection_remove(catalog, source);
	/* Gone from the catalog already (a step done again after a restart): the image's RBD
	 * group is still left, when the caller names it. */
	if (rc == FERRY_ERR_NOT_FOUND && group != NULL) {
		snprintf(protection.source, sizeof(protection.source), "%s", source);
		snprintf(protection.group, sizeof(protection.group), "%s", group);
		rc = 0;
	}
	if (rc < 0 || !repl_point_supported(source))
		goto out;
	/* Still in the group here: its part of the group's point N is there to keep. */
	if (keep_point > 0 && repl_point_reset(source, keep_point) < 0)
		log_warn("%s: %s", source, ferry_error_message());
	if (repl_group_leave(source, protection.group) < 0)
		log_warn("%s: %s", source, ferry_error_message());
out:
	pthread_mutex_unlock(&scheduler_membership_lock);
	return rc;
}

/* Takes (or finds again, invariant 1) the group's pending point: every member is recorded as
 * pending, gets ferry-N-before, then the group snapshot ferry-N is taken. ship[p] says whether
 * member p is part of this point and is shipped in this cycle. */
static void
scheduler_take_group_point(struct repl_scheduler *scheduler, struct catalog_protection *members,
			   size_t count, bool *ship)
{
	const char *group, *where;
	char before[48];
	int64_t point = 0, newest = 0;
	bool taken = false;
	int rc;

	for (size_t p = 0; p < count; p++) {
		ship[p] = true;
		if (members[p].pending_point > point)
			point = members[p].pending_point;
		if (members[p].last_point > newest)
			newest = members[p].last_point;
	}
	if (count == 0)
		return;
	/* Any member says where the group lives; the first one is the others' yardstick. */
	group = members[0].group;
	where = members[0].source;
	if (point == 0)
		point = newest + 1;
	snprintf(before, sizeof(before), "ferry-%" PRId64 "-before", point);
	rc = repl_group_point_exists(where, group, point);
	for (size_t p = 0; rc == 1 && p < count; p++)
		if (members[p].pending_point == point) {
			/* Resumed: it holds the members that were pending when it was taken. */
			for (size_t q = 0; q < count; q++)
				ship[q] = members[q].pending_point == point;
			return;
		}
	if (rc == 1) {
		/* Not ours to resume: left by an earlier life of this group (its catalog gone).
		 * Never a point of this one: take it anew. */
		log_warn("group %s: its group point %" PRId64 " is not a point of this site's "
			 "catalog; taking it again",
			 group, point);
		repl_group_point_remove(where, group, point);
	}
	rc = 0;
	pthread_mutex_lock(&scheduler_membership_lock);
	for (size_t p = 0; p < count && rc == 0; p++) {
		struct catalog_protection *member = &members[p];
		struct repl_volume *source = NULL;
		int64_t pending = member->pending_point, pending_ms = member->pending_point_ms;

		if (member->pending_point != point) {
			member->pending_point = point;
			member->pending_point_ms = util_now_ms();
		}
		/* Recorded first: a member unprotected since the pass began is no longer in the
		 * catalog, and stays out of the RBD group and of this point. */
		rc = catalog_protection_update(scheduler->catalog, member);
		if (rc == FERRY_ERR_NOT_FOUND) {
			ship[p] = false;
			rc = 0;
			continue;
		}
		if (rc == 0)
			rc = repl_group_join(member->source, group, where);
		if (rc == 0)
			rc = repl_volume_open(member->source, REPL_OPEN_WRITE, &source);
		if (rc == 0)
			rc = repl_volume_snapshot_create(source, before);
		repl_volume_close(source);
		if (rc < 0) {
			/* This member cannot be part of the point; the others go on without it. */
			member->pending_point = pending;
			member->pending_point_ms = pending_ms;
			scheduler_fail(scheduler, member);
			ship[p] = false;
			rc = 0;
		}
	}
	rc = repl_group_point_take(where, group, point, &taken);
	pthread_mutex_unlock(&scheduler_membership_lock);
	if (rc == 0 && taken)
		log_info("group %s: point %" PRId64 " taken, one instant of its images", group,
			 point);
	if (rc < 0)
		for (size_t p = 0; p < count; p++)
			if (ship[p]) {
				scheduler_fail(scheduler, &members[p]);
				ship[p] = false;
			}
}

/* Retention of the group snapshots: the last keep points and every member's last point (the
 * base of its next delta). */
static void
scheduler_prune_group(struct repl_scheduler *scheduler, const struct catalog_group *group,
		      struct catalog_protection *members, size_t count)
{
	struct repl_retention retention;
	int64_t newest = 0;

	for (size_t p = 0; p < count; p++)
		if (members[p].last_point > newest)
			newest = members[p].last_point;
	if (count == 0 || newest == 0 ||
	    !scheduler_group_retention(scheduler->catalog, group, newest, &retention) ||
	    retention.keep_from <= 1)
		return;
	if (repl_group_prune(members[0].source, group->name, &retention) < 0)
		log_warn("group %s: retention: %s", group->name, ferry_error_message());
}

static void
scheduler_protection_cycle(struct repl_scheduler *scheduler, const struct catalog_group *group,
			   struct catalog_protection *protection)
{
	struct catalog_protection current;

	/* Unprotected since its point was taken: nothing to ship, nothing to record. */
	if (catalog_protection_get(scheduler->catalog, protection->source, &current) ==
	    FERRY_ERR_NOT_FOUND)
		return;
	if (scheduler_ship(scheduler, group, protection) < 0)
		scheduler_fail(scheduler, protection);
}

/* The slot of group in scheduler->due (made on first use), or -1 when all are taken. Called
 * with scheduler->lock held. */
static int
scheduler_slot(struct repl_scheduler *scheduler, const char *group)
{
	for (int i = 0; i < SCHEDULER_GROUPS_MAX; i++) {
		if (strcmp(scheduler->due[i].name, group) == 0)
			return i;
		if (scheduler->due[i].name[0] == '\0') {
			snprintf(scheduler->due[i].name, sizeof(scheduler->due[i].name), "%s",
				 group);
			scheduler->due[i].next_due_ms = 0;
			scheduler->due[i].failures = 0;
			scheduler->due[i].next_retry_ms = 0;
			memset(&scheduler->due[i].window, 0, sizeof(scheduler->due[i].window));
			scheduler->due[i].at_risk = false;
			return i;
		}
	}
	return -1;
}

static int64_t *
scheduler_due_slot(struct repl_scheduler *scheduler, const char *group)
{
	int slot = scheduler_slot(scheduler, group);

	return slot < 0 ? NULL : &scheduler->due[slot].next_due_ms;
}

/* Whether a point of group was asked for (repl_scheduler_request) and not yet taken. */
static bool
scheduler_asked(struct repl_scheduler *scheduler, const char *group)
{
	int64_t *due;
	bool asked;

	pthread_mutex_lock(&scheduler->lock);
	due = scheduler_due_slot(scheduler, group);
	asked = due != NULL && *due == 0;
	pthread_mutex_unlock(&scheduler->lock);
	return asked;
}

/* Invariant 5: after a cycle of group, the time of its next one. A success keeps the interval
 * the pass set; a failure puts the next try a backoff away from now. */
static void
scheduler_backoff(struct repl_scheduler *scheduler, const struct catalog_group *group, bool failed)
{
	int64_t interval_ms = group->interval_s * 1000, wait_ms = 0;
	int failures = 0, slot;

	pthread_mutex_lock(&scheduler->lock);
	slot = scheduler_slot(scheduler, group->name);
	if (slot >= 0) {
		failures = failed ? scheduler->due[slot].failures + 1 : 0;
		scheduler->due[slot].failures = failures;
		scheduler->due[slot].next_retry_ms = 0;
		if (failed) {
			wait_ms = api_backoff_ms(failures, interval_ms > 0 ? interval_ms : 1000,
						 interval_ms > SCHEDULER_RETRY_CAP_MS
							 ? interval_ms
							 : SCHEDULER_RETRY_CAP_MS);
			if (wait_ms < interval_ms)
				wait_ms = interval_ms;
			scheduler->due[slot].next_retry_ms = util_now_ms() + wait_ms;
			/* A point asked for meanwhile (0) stays asked. */
			if (scheduler->due[slot].next_due_ms != 0)
				scheduler->due[slot].next_due_ms =
					scheduler->due[slot].next_retry_ms;
		}
	}
	pthread_mutex_unlock(&scheduler->lock);
	if (failed)
		log_warn("group %s: cycle failed (%d in a row); next try in %.1f s", group->name,
			 failures, (double)wait_ms / 1000.0);
}

int
repl_scheduler_retry(struct repl_scheduler *scheduler, const char *group, int64_t *next_retry_ms,
		     int *failures)
{
	int found = 0;

	*next_retry_ms = 0;
	*failures = 0;
	if (scheduler == NULL)
		return 0;
	pthread_mutex_lock(&scheduler->lock);
	for (int i = 0; i < SCHEDULER_GROUPS_MAX && scheduler->due[i].name[0]; i++)
		if (strcmp(scheduler->due[i].name, group) == 0) {
			*next_retry_ms = scheduler->due[i].next_retry_ms;
			*failures = scheduler->due[i].failures;
			found = *failures > 0;
			break;
		}
	pthread_mutex_unlock(&scheduler->lock);
	return found;
}

/* Invariant 7: the cycle of group that starts at started_ms, shipping the members ship says;
 * its period runs from the group's previous point (the members' last) to the one taken. */
static void
scheduler_cycle_begin(struct repl_scheduler *scheduler, const char *group,
		      const struct catalog_protection *members, size_t count, const bool *ship,
		      int64_t started_ms)
{
	int64_t point_ms = 0, previous_ms = 0;
	bool first = false;
	int slot;

	for (size_t p = 0; p < count; p++) {
		if (!ship[p])
			continue;
		if (members[p].pending_point_ms > point_ms)
			point_ms = members[p].pending_point_ms;
		if (members[p].last_point == 0)
			first = true;
		else if (members[p].last_point_ms > previous_ms)
			previous_ms = members[p].last_point_ms;
	}
	pthread_mutex_lock(&scheduler->lock);
	slot = scheduler_slot(scheduler, group);
	if (slot >= 0)
		repl_cycle_window_begin(&scheduler->due[slot].window, started_ms,
					!first && previous_ms > 0 ? point_ms - previous_ms : 0);
	pthread_mutex_unlock(&scheduler->lock);
}

/* The cycle begun above ended: one that committed every member it shipped joins the window. */
static void
scheduler_cycle_end(struct repl_scheduler *scheduler, const struct catalog_group *group,
		    bool failed)
{
	struct repl_prediction prediction;
	int64_t now = util_now_ms();
	int slot;

	pthread_mutex_lock(&scheduler->lock);
	slot = scheduler_slot(scheduler, group->name);
	if (slot >= 0)
		repl_cycle_window_end(&scheduler->due[slot].window, now,
				      !failed && !scheduler->stopping);
	pthread_mutex_unlock(&scheduler->lock);
	repl_scheduler_prediction(scheduler, group, now, &prediction);
}

void
repl_scheduler_prediction(struct repl_scheduler *scheduler, const struct catalog_group *group,
			  int64_t now_ms, struct repl_prediction *prediction)
{
	struct scheduler_due *due;
	bool changed = false;
	int slot;

	memset(prediction, 0, sizeof(*prediction));
	if (scheduler == NULL)
		return;
	pthread_mutex_lock(&scheduler->lock);
	slot = scheduler_slot(scheduler, group->name);
	if (slot >= 0) {
		due = &scheduler->due[slot];
		repl_prediction_compute(&due->window, now_ms, group->interval_s,
					catalog_group_rpo_target(group), prediction);
		/* A paused group takes no point: its lag grows by choice, not at risk. */
		if (group->paused_ms > 0)
			prediction->at_risk = false;
		changed = prediction->at_risk != due->at_risk;
		due->at_risk = prediction->at_risk;
	}
	pthread_mutex_unlock(&scheduler->lock);
	if (changed && prediction->at_risk)
		catalog_event_add_kind(scheduler->catalog, "state", "warn", group->name,
				       "group %s is at risk of missing its RPO target: %s",
				       group->name, prediction->reason);
	else if (changed)
		catalog_event_add_kind(scheduler->catalog, "state", "info", group->name,
				       "group %s is no longer at risk: lag predicted %.0f s, "
				       "within the RPO target of %lld s",
				       group->name, prediction->predicted_lag_s,
				       (long long)catalog_group_rpo_target(group));
}

/* One pass: every group whose interval has passed gets a cycle. First every volume of the
 * group gets its point, as close together as possible, then each point is shipped. */
static void
scheduler_pass(struct repl_scheduler *scheduler)
{
	struct scheduler_rows groups = {.size = sizeof(struct catalog_group)};
	struct scheduler_rows protections = {.size = sizeof(struct catalog_protection)};
	struct catalog_protection swap;
	bool *ship = NULL;
	size_t count;

	if (catalog_group_list(scheduler->catalog, scheduler_group_row, &groups) < 0 ||
	    catalog_protection_list(scheduler->catalog, scheduler_protection_row, &protections) < 0)
		goto out;
	ship = calloc(protections.count + 1, sizeof(*ship));
	if (ship == NULL)
		goto out;
	for (size_t g = 0; g < groups.count && !scheduler->stopping; g++) {
		struct catalog_group *rows = (struct catalog_group *)groups.rows;
		struct catalog_protection *members = protections.rows;
		const struct catalog_group *group;
		int64_t *due, started;
		uint64_t failures_before;

		/* A group whose point was asked for (a cutover waits, maybe with a guest frozen)
		 * goes next, before those merely due. */
		for (size_t later = g + 1; later < groups.count; later++)
			if (scheduler_asked(scheduler, rows[later].name)) {
				struct catalog_group first = rows[later];

				rows[later] = rows[g];
				rows[g] = first;
				break;
			}
		group = rows + g;
		started = util_now_ms();

		pthread_mutex_lock(&scheduler->lock); /* repl_scheduler_request() writes it too */
		due = scheduler_due_slot(scheduler, group->name);
		/* A paused group takes no point on its schedule; one asked for (ferry group sync,
		 * a cutover's final delta) is taken all the same. */
		if (due == NULL || started < *due || (group->paused_ms > 0 && *due != 0)) {
			pthread_mutex_unlock(&scheduler->lock);
			continue;
		}
		/* This group's members to the front. */
		count = 0;
		for (size_t p = 0; p < protections.count; p++) {
			if (strcmp(members[p].group, group->name) != 0)
				continue;
			swap = members[count];
			members[count++] = members[p];
			members[p] = swap;
		}
		/* A group without members yet stays due: its first image gets its first point
		 * on the next pass, not an interval later. */
		if (count > 0)
			*due = started + group->interval_s * 1000;
		pthread_mutex_unlock(&scheduler->lock);
		if (count == 0)
			continue;
		log_debug("group %s: taking a point of its %zu image(s)%s", group->name, count,
			  group->paused_ms > 0 ? " (asked for while paused)" : "");
		failures_before = scheduler->cycle_failures;
		scheduler_take_group_point(scheduler, members, count, ship);
		scheduler_cycle_begin(scheduler, group->name, members, count, ship, started);
		for (size_t p = 0; p < count && !scheduler->stopping; p++)
			if (ship[p])
				scheduler_protection_cycle(scheduler, group, &members[p]);
		scheduler_cycle_end(scheduler, group, scheduler->cycle_failures != failures_before);
		scheduler_backoff(scheduler, group, scheduler->cycle_failures != failures_before);
		/* A point asked for meanwhile comes first; the next pass prunes. */
		if (!scheduler_asked(scheduler, group->name))
			scheduler_prune_group(scheduler, group, members, count);
	}
out:
	free(ship);
	free(groups.rows);
	free(protections.rows);
}

static void *
scheduler_main(void *argument)
{
	struct repl_scheduler *scheduler = argument;

	pthread_mutex_lock(&scheduler->lock);
	while (!scheduler->stopping) {
		struct timespec until;

		pthread_mutex_unlock(&scheduler->lock);
		pthread_mutex_lock(&scheduler->pass_lock);
		scheduler_pass(scheduler);
		pthread_mutex_unlock(&scheduler->pass_lock);
		pthread_mutex_lock(&scheduler->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 200 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (!scheduler->stopping)
			pthread_cond_timedwait(&scheduler->wake, &scheduler->lock, &until);
	}
	pthread_mutex_unlock(&scheduler->lock);
	return NULL;
}

struct repl_scheduler *
repl_scheduler_start(struct catalog *catalog)
{
	struct repl_scheduler *scheduler = calloc(1, sizeof(*scheduler));

	if (scheduler == NULL)
		return NULL;
	scheduler->catalog = catalog;
	pthread_mutex_init(&scheduler->lock, NULL);
	pthread_mutex_init(&scheduler->pass_lock, NULL);
	pthread_cond_init(&scheduler->wake, NULL);
	if (pthread_create(&scheduler->thread, NULL, scheduler_main, scheduler) != 0) {
		ferry_error_set(FERRY_ERR_INTERNAL, "cannot start the point scheduler");
		free(scheduler);
		return NULL;
	}
	return scheduler;
}

void
repl_scheduler_stop(struct repl_scheduler *scheduler)
{
	if (scheduler == NULL)
		return;
	pthread_mutex_lock(&scheduler->lock);
	scheduler->stopping = true;
	atomic_store(&scheduler->cancel, true);
	pthread_cond_signal(&scheduler->wake);
	pthread_mutex_unlock(&scheduler->lock);
	pthread_join(scheduler->thread, NULL);
	pthread_cond_destroy(&scheduler->wake);
	pthread_mutex_destroy(&scheduler->lock);
	pthread_mutex_destroy(&scheduler->pass_lock);
	free(scheduler);
}

void
repl_scheduler_request(struct repl_scheduler *scheduler, const char *group)
{
	int64_t *due;

	if (scheduler == NULL)
		return;
	pthread_mutex_lock(&scheduler->lock);
	due = scheduler_due_slot(scheduler, group);
	if (due)
		*due = 0;
	pthread_cond_signal(&scheduler->wake);
	pthread_mutex_unlock(&scheduler->lock);
}

void
repl_scheduler_hold(struct repl_scheduler *scheduler)
{
	if (scheduler)
		pthread_mutex_lock(&scheduler->pass_lock);
}

void
repl_scheduler_release(struct repl_scheduler *scheduler)
{
	if (scheduler)
		pthread_mutex_unlock(&scheduler->pass_lock);
}
