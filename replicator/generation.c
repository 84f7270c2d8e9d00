/* Generations, one writer per protection group: the receiver's check of every push (begin,
 * commit, prune), the raise that a promotion makes, and `ferry group promote` at the replica
 * site of a group without VMs. The catalog keeps the numbers (catalog/generations.c); this file
 * decides what they mean.
 *
 * Invariants:
 *  1. A push at a lower generation of its group than this site's changes nothing but the record
 *     that it was refused (FERRY_ERR_SPLIT_BRAIN): no transfer begins, no point is taken, none
 *     is pruned. The receiver holds its lock exclusively through the check and what follows.
 *  2. A push at a higher generation is the other site taking over (a reversed direction): its
 *     generation becomes this site's, and any split brain seen is over.
 *  3. A promote marks its volumes promoted and raises the generation in one transaction, under
 *     the receiver's exclusive lock, before it rolls any image back: from then on no segment,
 *     commit or prune of the old direction lands, whatever is in flight. */
#include "replicator/repl.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Far above any number of promotions, far below what JSON integers and SQLite hold. */
#define REPL_GENERATION_MAX	(INT64_C(1) << 40)
#define REPL_PROMOTE_POINTS_MAX 1024
/* How stale peer_seen_ms may get before an agreeing push records it again. */
#define REPL_GENERATION_SEEN_MS 5000

static int
repl_push_group_valid(const struct repl_push_group *push)
{
	if (push == NULL)
		return 0;
	if (push->group && !util_volume_name_valid(push->group))
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"'group' must be a group name (1 to %d of A-Z a-z 0-9 . _ -, "
			"not starting with '.'), not '%.80s'",
			VOLUME_NAME_MAX, push->group);
	if (push->generation < 0 || push->generation > REPL_GENERATION_MAX ||
	    (push->generation > 0 && push->group == NULL))
		return ferry_error_set(FERRY_ERR_INVALID,
				       "'generation' must be a number from 1 to %" PRId64
				       ", given with the 'group' it belongs to",
				       REPL_GENERATION_MAX);
	return 0;
}

int
repl_generation_check(struct catalog *catalog, const char *volume,
		      const struct repl_push_group *push, int64_t *generation)
{
	struct catalog_volume record;
	struct catalog_generation own, recorded;
	const char *group;
	int64_t sender;
	int rc;

	if (generation)
		*generation = 0;
	rc = repl_push_group_valid(push);
	if (rc < 0)
		return rc;
	memset(&record, 0, sizeof(record));
	rc = catalog_volume_get(catalog, volume, &record);
	if (rc == FERRY_ERR_NOT_FOUND)
		rc = 0;
	if (rc < 0)
		return rc;
	/* A push that names no group is judged by the group this site recorded for the volume: a
	 * sender cannot step around its generation by leaving it out. */
	group = push && push->group ? push->group : record.group[0] ? record.group : NULL;
	if (group == NULL)
		return 0;
	sender = push && push->generation > 0 ? push->generation : 1;
	rc = catalog_generation_get(catalog, group, &own);
	/* Nor by naming another group: the one the volume was recorded in counts as well. */
	if (rc == 0 && record.group[0] && strcmp(record.group, group) != 0) {
		rc = catalog_generation_get(catalog, record.group, &recorded);
		if (rc == 0 && recorded.generation > own.generation)
			own = recorded;
	}
	if (rc < 0)
		return rc;
	if (generation)
		*generation = own.generation;
	if (sender < own.generation) {
		/* Invariant 1: only the refusal is recorded. */
		if (catalog_generation_learn(catalog, own.group, sender, true) == 0)
			catalog_event_add_kind(
				catalog, "state", "error", own.group,
				"split brain: a push to volume %s at generation %" PRId64
				" refused; this site is at generation %" PRId64,
				volume, sender, own.generation);
		return ferry_error_set(
			FERRY_ERR_SPLIT_BRAIN,
			"split brain: group %s is at generation %" PRId64 " at this site and the "
			"push to volume %s at generation %" PRId64 ": its replicas were promoted "
			"here (a failover, a migration or ferry group promote) and are written "
			"here, so nothing of the push is taken. Run ferry reprotect %s at the site "
			"whose data is kept; the other site's writes since the last common point "
			"are discarded",
			own.group, own.generation, volume, sender, own.group);
	}
	if (sender > own.generation) {
		/* Invariant 2. */
		rc = catalog_generation_adopt(catalog, group, sender);
		if (rc == 0)
			catalog_event_add_kind(catalog, "state", "info", group,
					       "generation %" PRId64
					       " of the site that pushes taken "
					       "over (this site was at %" PRId64 ")",
					       sender, own.generation);
		if (rc == 0 && generation)
			*generation = sender;
		return rc;
	}
	/* The receiver's catalog syncs every write: a push agreeing with what was learnt a
	 * moment ago changes nothing worth one (the promote's quiet time is a minute). */
	if (own.peer_generation == sender && own.split_brain_ms == 0 &&
	    util_now_ms() - own.peer_seen_ms < REPL_GENERATION_SEEN_MS)
		return 0;
	return catalog_generation_learn(catalog, group, sender, false);
}

int
repl_group_generation_raise(struct catalog *catalog, const char *group, int64_t *generation)
{
	int64_t raised = 0;
	int rc;

	if (!util_volume_name_valid(group))
		return ferry_error_set(FERRY_ERR_INVALID, "'%.80s' is not a group name",
				       group ? group : "");
	rc = catalog_generation_raise(catalog, group, &raised);
	if (rc == 0)
		rc = catalog_event_add_kind(
			catalog, "state", "warn", group,
			"generation raised to %" PRId64 ": this site writes the "
			"group's volumes now, and a push at a lower generation is "
			"refused as a split brain",
			raised);
	if (rc == 0)
		log_info("group %s: generation raised to %" PRId64, group, raised);
	if (rc == 0 && generation)
		*generation = raised;
	return rc;
}

/* ---- ferry group promote ---- */

struct repl_promote {
	struct repl_receiver *receiver;
	struct catalog *catalog;
	const char *group;
	struct catalog_volume *volumes; /* the group's volumes here, REPL_PROMOTE_VOLUMES_MAX */
	size_t count;
	int vms;
	int64_t point;
	struct repl_promote_result *result;
};

static int
repl_promote_volume_row(const struct catalog_volume *volume, void *context)
{
	struct repl_promote *promote = context;

	if (strcmp(volume->group, promote->group) != 0)
		return 0;
	if (promote->count == REPL_PROMOTE_VOLUMES_MAX)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "group %s has more than %d volumes at this site; promote "
				       "them with ferry failover",
				       promote->group, REPL_PROMOTE_VOLUMES_MAX);
	promote->volumes[promote->count++] = *volume;
	return 0;
}

static int
repl_promote_vm_row(const char *name, const char *role, const char *group, const char *record,
		    void *context)
{
	(void)name, (void)role, (void)group, (void)record;
	((struct repl_promote *)context)->vms++;
	return 0;
}

/* Keeps the points of common that points holds too; returns how many are left. */
static size_t
repl_points_intersect(int64_t *common, size_t common_count, const int64_t *points, size_t count)
{
	size_t kept = 0;

	for (size_t i = 0; i < common_count; i++)
		for (size_t j = 0; j < count; j++)
			if (common[i] == points[j]) {
				common[kept++] = common[i];
				break;
			}
	return kept;
}

/* The point to promote to: the one asked for, which every volume must hold, else the newest
 * one all of them hold. */
static int
repl_promote_point(struct repl_promote *promote, int64_t wanted)
{
	int64_t *common = calloc(REPL_PROMOTE_POINTS_MAX, sizeof(*common));
	int64_t *points = calloc(REPL_PROMOTE_POINTS_MAX, sizeof(*points));
	size_t common_count = 0, count;
	int64_t newest_time;
	int rc = 0;

	if (common == NULL || points == NULL) {
		rc = ferry_error_no_memory();
		goto out;
	}
	for (size_t v = 0; v < promote->count && rc == 0; v++) {
		rc = repl_point_list(promote->volumes[v].location, points, REPL_PROMOTE_POINTS_MAX,
				     &count, &newest_time);
		if (rc < 0)
			break;
		if (v == 0) {
			memcpy(common, points, count * sizeof(*points));
			common_count = count;
		} else {
			common_count = repl_points_intersect(common, common_count, points, count);
		}
		if (common_count == 0)
			rc = ferry_error_set(
				FERRY_ERR_NOT_FOUND,
				"group %s: no committed point is held by all of its "
				"volumes here (%s has %zu point(s)); nothing to promote "
				"to",
				promote->group, promote->volumes[v].name, count);
	}
	if (rc < 0)
		goto out;
	promote->point = 0;
	for (size_t i = 0; i < common_count; i++)
		if (wanted ? common[i] == wanted : common[i] > promote->point)
			promote->point = common[i];
	if (promote->point == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "group %s: point %" PRId64
				     " is not held by every volume of the "
				     "group here; leave out --point for the newest one they share",
				     promote->group, wanted);
out:
	free(common);
	free(points);
	return rc;
}

/* Invariant 3, under the receiver's exclusive lock. */
static int
repl_promote_locked(void *context)
{
	struct repl_promote *promote = context;
	struct catalog *catalog = promote->catalog;
	struct catalog_transfer current;
	int rc;

	rc = catalog_transaction_begin(catalog);
	if (rc < 0)
		return rc;
	for (size_t v = 0; v < promote->count && rc == 0; v++) {
		const char *name = promote->volumes[v].name;
		int found = catalog_transfer_find_current(catalog, CATALOG_ROLE_RECEIVE, "", name,
							  &current);

		/* A delta half landed never completes now: its segments and commit are refused. */
		if (found == 0 && current.state == CATALOG_TRANSFER_ACTIVE)
			rc = catalog_transfer_set_state(catalog, current.id,
							CATALOG_TRANSFER_ABANDONED, NULL);
		else if (found < 0 && found != FERRY_ERR_NOT_FOUND)
			rc = found;
		if (rc == 0)
			rc = catalog_promoted_put(catalog, name, CATALOG_PROMOTED_NO_RUN);
		/* The point both sites share, where a reprotect starts from. */
		if (rc == 0)
			rc = catalog_promoted_set_point(catalog, name, promote->point);
	}
	if (rc == 0)
		rc = repl_group_generation_raise(catalog, promote->group,
						 &promote->result->generation);
	if (rc < 0) {
		catalog_transaction_rollback(catalog);
		return rc;
	}
	rc = catalog_transaction_commit(catalog);
	for (size_t v = 0; v < promote->count && rc == 0; v++) {
		rc = repl_point_rollback(promote->volumes[v].location, promote->point);
		if (rc == 0)
			catalog_event_add_kind(
				catalog, "state", "warn", promote->volumes[v].name,
				"promoted at point %" PRId64 " (group %s, generation "
				"%" PRId64 "): written at this site from now on",
				promote->point, promote->group, promote->result->generation);
	}
	return rc;
}

/* Refusals before anything changes: VMs (a failover's), promoted already, the primary still
 * pushing (without force). */
static int
repl_promote_check(struct repl_promote *promote, bool force)
{
	struct catalog_generation generation;
	size_t promoted = 0;
	int64_t now = util_now_ms();
	int rc;

	rc = catalog_vm_list(promote->catalog, promote->group, repl_promote_vm_row, promote);
	if (rc == 0 && promote->vms > 0)
		return ferry_error_set(FERRY_ERR_CONFLICT,
				       "group %s has %d VM(s) at this site: bring them up with "
				       "ferry failover --group %s, which promotes their disks",
				       promote->group, promote->vms, promote->group);
	if (rc == 0)
		rc = catalog_volume_list(promote->catalog, repl_promote_volume_row, promote);
	if (rc == 0 && promote->count == 0)
		return ferry_error_set(FERRY_ERR_NOT_FOUND,
				       "no replica of group %s at this site: promote runs at the "
				       "site its primary pushes to",
				       promote->group);
	for (size_t v = 0; v < promote->count && rc == 0; v++) {
		int64_t run_id = 0;

		rc = catalog_promoted_get(promote->catalog, promote->volumes[v].name, &run_id);
		promoted += run_id != 0;
	}
	if (rc == 0)
		rc = catalog_generation_get(promote->catalog, promote->group, &generation);
	if (rc < 0)
		return rc;
	promote->result->peer_seen_ms = generation.peer_seen_ms;
	if (promoted == promote->count)
		return ferry_error_set(FERRY_ERR_CONFLICT,
				       "group %s is promoted at this site already (generation "
				       "%" PRId64 "): its volumes are written here",
				       promote->group, generation.generation);
	if (!force && generation.peer_seen_ms > 0 &&
	    now - generation.peer_seen_ms < REPL_PROMOTE_QUIET_MS)
		return ferry_error_set(
			FERRY_ERR_CONFLICT,
			"group %s: its primary pushed here %" PRId64 " s ago, so it still runs "
			"and writes; promoting now makes two writers. Stop it there first (ferry "
			"group pause %s, or stop its ferryd) and wait %d s, or promote anyway with "
			"--force: its next push is then refused as a split brain",
			promote->group, (now - generation.peer_seen_ms) / 1000, promote->group,
			REPL_PROMOTE_QUIET_MS / 1000);
	return 0;
}

int
repl_group_promote(struct repl_receiver *receiver, struct catalog *catalog, const char *group,
		   int64_t point, bool force, struct repl_promote_result *result)
{
	struct repl_promote promote = {receiver, catalog, group, NULL, 0, 0, 0, result};
	int rc;

	memset(result, 0, sizeof(*result));
	if (!util_volume_name_valid(group))
		return ferry_error_set(FERRY_ERR_INVALID, "'%.80s' is not a group name",
				       group ? group : "");
	if (point < 0 || point > REPL_GENERATION_MAX)
		return ferry_error_set(FERRY_ERR_INVALID, "'point' must be a point number");
	if (receiver == NULL)
		return ferry_error_set(FERRY_ERR_INVALID, "this daemon keeps no replicas");
	promote.volumes = calloc(REPL_PROMOTE_VOLUMES_MAX, sizeof(*promote.volumes));
	if (promote.volumes == NULL)
		return ferry_error_no_memory();
	rc = repl_promote_check(&promote, force);
	if (rc == 0)
		rc = repl_promote_point(&promote, point);
	if (rc == 0)
		rc = repl_receiver_exclusive(receiver, repl_promote_locked, &promote);
	if (rc == 0) {
		result->point = promote.point;
		result->volume_count = promote.count;
		for (size_t v = 0; v < promote.count; v++)
			snprintf(result->volumes[v], sizeof(result->volumes[v]), "%s",
				 promote.volumes[v].name);
		catalog_event_add_kind(catalog, "state", "warn", group,
				       "promoted at point %" PRId64 ", generation %" PRId64
				       "%s: %zu volume(s) are written at this site",
				       promote.point, result->generation, force ? " (--force)" : "",
				       promote.count);
		log_info("group %s promoted at point %" PRId64 ", generation %" PRId64, group,
			 promote.point, result->generation);
	}
	free(promote.volumes);
	return rc;
}
