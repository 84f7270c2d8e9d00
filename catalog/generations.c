/* Generations: one writer per protection group. Each site keeps its own generation of every
 * group it writes or keeps replicas of, what it last learnt of the other site's, and when it saw
 * a split brain. Statements follow the idiom of catalog_internal.h.
 *
 * Moves, and who makes them (replicator/generation.c decides when):
 *   generation G   -> max(G, peer) + 1          catalog_generation_raise(): a promote here
 *   generation G   -> H > G                     catalog_generation_adopt(): a push at H
 *   split_brain 0  -> now                       catalog_generation_learn(split_brain)
 *   split_brain T  -> 0                         catalog_generation_learn(!split_brain), adopt
 * Invariants:
 *  1. A generation never goes down: every write takes the larger of the stored and the new.
 *  2. A group without a row is at generation 1 with nothing learnt; the first write makes it. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <stdio.h>
#include <string.h>

#define GENERATION_COLUMNS                                                                         \
	"group_name, generation, peer_generation, peer_seen_ms, raised_ms, split_brain_ms"

static void
catalog_generation_from_row(sqlite3_stmt *stmt, struct catalog_generation *out)
{
	memset(out, 0, sizeof(*out));
	catalog_copy_text(out->group, sizeof(out->group), stmt, 0);
	out->generation = sqlite3_column_int64(stmt, 1);
	out->peer_generation = sqlite3_column_int64(stmt, 2);
	out->peer_seen_ms = sqlite3_column_int64(stmt, 3);
	out->raised_ms = sqlite3_column_int64(stmt, 4);
	out->split_brain_ms = sqlite3_column_int64(stmt, 5);
}

int
catalog_generation_get(struct catalog *catalog, const char *group, struct catalog_generation *out)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->group, sizeof(out->group), "%s", group);
	out->generation = 1; /* invariant 2 */
	catalog_read_begin(catalog);
	rc = catalog_statement(
		catalog, &stmt,
		"SELECT " GENERATION_COLUMNS " FROM generations WHERE group_name = ?1", "t", group);
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "generation get");
	if (rc == CATALOG_ROW)
		catalog_generation_from_row(stmt, out);
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}

int
catalog_generation_raise(struct catalog *catalog, const char *group, int64_t *generation)
{
	sqlite3_stmt *stmt = NULL;
	bool owned = false;
	int rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	/* One above what either site is known to hold, so that the other site, once it learns of
	 * it, is the lower one (invariant 1). */
	rc = catalog_statement(
		catalog, &stmt,
		"INSERT INTO generations (group_name, generation, raised_ms) VALUES (?1, 2, ?2)"
		" ON CONFLICT (group_name) DO UPDATE SET generation ="
		" MAX(generation, peer_generation) + 1, raised_ms = ?2 RETURNING generation",
		"ti", group, util_now_ms());
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "generation raise");
	if (rc == 0)
		rc = ferry_error_set(FERRY_ERR_INTERNAL,
				     "catalog %s: generation raise returned no row", catalog->path);
	if (rc < 0)
		goto out;
	if (generation)
		*generation = sqlite3_column_int64(stmt, 0);
	rc = catalog_step(catalog, stmt, "generation raise");
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_generation_learn(struct catalog *catalog, const char *group, int64_t peer_generation,
			 bool split_brain)
{
	int64_t now = util_now_ms();

	return catalog_write(
		catalog, "generation learn", NULL,
		"INSERT INTO generations (group_name, peer_generation, peer_seen_ms, "
		"split_brain_ms)"
		" VALUES (?1, ?2, ?3, ?4) ON CONFLICT (group_name) DO UPDATE SET"
		" peer_generation = ?2, peer_seen_ms = ?3, split_brain_ms = CASE WHEN ?4 = 0 THEN 0"
		" WHEN split_brain_ms > 0 THEN split_brain_ms ELSE ?4 END",
		"tiii", group, peer_generation, now, split_brain ? now : (int64_t)0);
}

int
catalog_generation_adopt(struct catalog *catalog, const char *group, int64_t generation)
{
	if (generation < 1)
		return ferry_error_set(FERRY_ERR_INVALID, "group %s: generation %lld is not one",
				       group, (long long)generation);
	return catalog_write(catalog, "generation adopt", NULL,
			     "INSERT INTO generations (group_name, generation, peer_generation,"
			     " peer_seen_ms) VALUES (?1, ?2, ?2, ?3) ON CONFLICT (group_name) DO"
			     " UPDATE SET generation = MAX(generation, ?2), peer_generation = ?2,"
			     " peer_seen_ms = ?3, split_brain_ms = 0",
			     "tii", group, generation, util_now_ms());
}

int
catalog_generation_list(struct catalog *catalog,
			int (*each)(const struct catalog_generation *generation, void *context),
			void *context)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_generation generation;
	int rc;

	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT " GENERATION_COLUMNS " FROM generations ORDER BY group_name",
			       "");
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "generation list")) == CATALOG_ROW) {
		catalog_generation_from_row(stmt, &generation);
		rc = each(&generation, context);
		if (rc < 0)
			goto out;
	}
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}
