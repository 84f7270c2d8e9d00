/* Protected volumes and where their replication stands: the points committed and pending, the
 * last cycle, the state and counters since the protection began. Statements follow the idiom
 * of catalog_internal.h; replicator/scheduler.c makes every move below through
 * catalog_protection_update().
 *
 * States of a protection (the column protections.state; "lagging" and "paused" are computed
 * by the readers from the times and the group, never stored):
 *
 *   (none)                   -> SYNCING    catalog_protection_add()
 *   SYNCING|IN_SYNC|ERROR    -> IN_SYNC    catalog_protection_update(), a point committed
 *   SYNCING|IN_SYNC|ERROR    -> ERROR      catalog_protection_update(), a cycle failed
 *   IN_SYNC|ERROR            -> SYNCING    catalog_protection_update(), reprotect (cutover/)
 *   any                      -> (none)     catalog_protection_remove()
 *
 * Points of a protection: point N is snapshot ferry-N of the source and, once committed, of
 * the replica.
 *
 *   (none)    -> PENDING     catalog_protection_update(pending_point = N), a point taken
 *   PENDING   -> COMMITTED   catalog_protection_update(last_point = N, pending_point = 0)
 *   PENDING   -> (none)      catalog_protection_update(pending_point = 0), a point given up
 *
 * Invariants:
 *  1. The stored state is one of catalog_protection_state's names (asserted on every write).
 *  2. A source is protected once, and a replica on a site has one source: the primary key and
 *     UNIQUE (site, replica), whose failure is FERRY_ERR_CONFLICT naming both.
 *  3. A pending point is resumed, never taken again; at most one point is pending.
 *  4. The counters (points_committed, bytes_shipped, errors) never go down: the UPDATE keeps
 *     the larger of the stored and the written value.
 *  5. catalog_protection_update() of a protection removed meanwhile is FERRY_ERR_NOT_FOUND,
 *     so that the scheduler leaves it out of the point. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <assert.h>
#include <string.h>

static const char *const protection_state_names[] = {
	[CATALOG_PROTECTION_SYNCING] = "syncing",
	[CATALOG_PROTECTION_IN_SYNC] = "in-sync",
	[CATALOG_PROTECTION_ERROR] = "error",
};
#define PROTECTION_STATES                                                                          \
	((int)(sizeof(protection_state_names) / sizeof(protection_state_names[0])))

const char *
catalog_protection_state_name(enum catalog_protection_state state)
{
	assert((int)state >= 0 && (int)state < PROTECTION_STATES);
	return protection_state_names[state];
}

int
catalog_protection_state_parse(const char *name, enum catalog_protection_state *out)
{
	int index = catalog_name_index(protection_state_names, PROTECTION_STATES, name);

	if (index < 0)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "'%s' is not a protection state (syncing, in-sync, error)",
				       name ? name : "");
	*out = (enum catalog_protection_state)index;
	return 0;
}

#define PROTECTION_COLUMNS                                                                         \
	"source, group_name, site, replica, last_point, last_point_ms, pending_point,"             \
	" pending_point_ms, last_bytes_changed, last_bytes_sent, last_seconds, state, reason,"     \
	" points_committed, bytes_shipped, errors"

/* One write of a protection's 16 columns, in PROTECTION_COLUMNS order. */
static int
catalog_protection_write(struct catalog *catalog, const char *what, int64_t *changes,
			 const char *sql, const struct catalog_protection *protection)
{
	const char *state = protection->state[0] ? protection->state : "syncing";
	enum catalog_protection_state parsed;

	/* Invariant 1. */
	assert(catalog_protection_state_parse(state, &parsed) == 0);
	(void)parsed;
	return catalog_write(
		catalog, what, changes, sql, "ttttiiiiiidttiii", protection->source,
		protection->group, protection->site, protection->replica, protection->last_point,
		protection->last_point_ms, protection->pending_point, protection->pending_point_ms,
		protection->last_bytes_changed, protection->last_bytes_sent,
		protection->last_seconds, state, protection->reason, protection->points_committed,
		protection->bytes_shipped, protection->errors);
}

int
catalog_protection_add(struct catalog *catalog, const struct catalog_protection *protection)
{
	int rc = catalog_protection_write(catalog, "protect", NULL,
					  "INSERT INTO protections (" PROTECTION_COLUMNS ") VALUES"
					  " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
					  " ?13, ?14, ?15, ?16)",
					  protection);

	/* Invariant 2. */
	if (rc == FERRY_ERR_CONFLICT)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "%s is protected already, or replica %s on site %s is the "
				     "replica of another source; one primary per replica",
				     protection->source, protection->replica, protection->site);
	return rc;
}

int
catalog_protection_update(struct catalog *catalog, const struct catalog_protection *protection)
{
	int64_t changes = 0;
	int rc;

	/* Invariant 4: MAX() keeps the counters from going down. */
	rc = catalog_protection_write(
		catalog, "protection update", &changes,
		"UPDATE protections SET last_point = ?5, last_point_ms = ?6,"
		" pending_point = ?7, pending_point_ms = ?8, last_bytes_changed = ?9,"
		" last_bytes_sent = ?10, last_seconds = ?11, state = ?12, reason = ?13,"
		" points_committed = MAX(points_committed, ?14), bytes_shipped = MAX(bytes_shipped,"
		" ?15), errors = MAX(errors, ?16) WHERE source = ?1",
		protection);
	/* Invariant 5. */
	if (rc == 0 && changes == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "%s is not protected (any more)",
				     protection->source);
	return rc;
}

int
catalog_protection_remove(struct catalog *catalog, const char *source)
{
	int64_t changes = 0;
	int rc = catalog_write(catalog, "unprotect", &changes,
			       "DELETE FROM protections WHERE source = ?1", "t", source);

	if (rc == 0 && changes == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "%s is not protected", source);
	return rc;
}

/* Hands each protection (of source, or all when source is NULL) to each(); *rows counts them. */
static int
catalog_protection_select(struct catalog *catalog, const char *source,
			  int (*each)(const struct catalog_protection *protection, void *context),
			  void *context, int *rows)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_protection protection;
	int rc;

	*rows = 0;
	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT " PROTECTION_COLUMNS " FROM protections"
			       " WHERE ?1 IS NULL OR source = ?1 ORDER BY source",
			       "z", source);
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "protection list")) == CATALOG_ROW) {
		memset(&protection, 0, sizeof(protection));
		catalog_copy_text(protection.source, sizeof(protection.source), stmt, 0);
		catalog_copy_text(protection.group, sizeof(protection.group), stmt, 1);
		catalog_copy_text(protection.site, sizeof(protection.site), stmt, 2);
		catalog_copy_text(protection.replica, sizeof(protection.replica), stmt, 3);
		protection.last_point = sqlite3_column_int64(stmt, 4);
		protection.last_point_ms = sqlite3_column_int64(stmt, 5);
		protection.pending_point = sqlite3_column_int64(stmt, 6);
		protection.pending_point_ms = sqlite3_column_int64(stmt, 7);
		protection.last_bytes_changed = sqlite3_column_int64(stmt, 8);
		protection.last_bytes_sent = sqlite3_column_int64(stmt, 9);
		protection.last_seconds = sqlite3_column_double(stmt, 10);
		catalog_copy_text(protection.state, sizeof(protection.state), stmt, 11);
		catalog_copy_text(protection.reason, sizeof(protection.reason), stmt, 12);
		protection.points_committed = sqlite3_column_int64(stmt, 13);
		protection.bytes_shipped = sqlite3_column_int64(stmt, 14);
		protection.errors = sqlite3_column_int64(stmt, 15);
		(*rows)++;
		rc = each(&protection, context);
		if (rc < 0)
			goto out;
	}
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}

static int
catalog_protection_copy(const struct catalog_protection *protection, void *context)
{
	*(struct catalog_protection *)context = *protection;
	return 0;
}

int
catalog_protection_get(struct catalog *catalog, const char *source, struct catalog_protection *out)
{
	int rows, rc;

	rc = catalog_protection_select(catalog, source, catalog_protection_copy, out, &rows);
	if (rc == 0 && rows == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "%s is not protected", source);
	return rc;
}

int
catalog_protection_list(struct catalog *catalog,
			int (*each)(const struct catalog_protection *protection, void *context),
			void *context)
{
	int rows;

	return catalog_protection_select(catalog, NULL, each, context, &rows);
}
