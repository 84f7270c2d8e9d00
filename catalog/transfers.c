/* Transfers and their progress: the transfer rows, the ranges of segment indexes (durable,
 * attempted, member) and the checksum store in chunks of CATALOG_SUMS_CHUNK segments. The
 * statements run through catalog.c's helpers and lock. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const range_kind_names[] = {"durable", "attempted", "member"};
static const char *const role_names[] = {"send", "receive"};
static const char *const state_names[] = {"active", "complete", "abandoned"};

const char *
catalog_transfer_state_name(enum catalog_transfer_state state)
{
	return state_names[state];
}

/* ---- transfers ---- */

#define TRANSFER_COLUMNS                                                                           \
	"id, role, volume, peer, location, source_identity, remote_id, size, segment_size,"        \
	" segments_total, state, digest, created_ms, updated_ms,"                                  \
	" (SELECT COALESCE(SUM(last - first + 1), 0) FROM segment_ranges r"                        \
	"  WHERE r.transfer_id = transfers.id AND r.kind = 'durable'),"                            \
	" base_identity, snapshot, segments_member"

static int
catalog_name_index(const char *const *names, int count, const char *name)
{
	for (int i = 0; i < count; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return 0;
}

static void
catalog_transfer_from_row(sqlite3_stmt *stmt, struct catalog_transfer *out)
{
	memset(out, 0, sizeof(*out));
	out->id = sqlite3_column_int64(stmt, 0);
	out->role = (enum catalog_role)catalog_name_index(
		role_names, 2, (const char *)sqlite3_column_text(stmt, 1));
	catalog_copy_text(out->volume, sizeof(out->volume), stmt, 2);
	catalog_copy_text(out->peer, sizeof(out->peer), stmt, 3);
	catalog_copy_text(out->location, sizeof(out->location), stmt, 4);
	catalog_copy_text(out->source_identity, sizeof(out->source_identity), stmt, 5);
	out->remote_id = sqlite3_column_int64(stmt, 6);
	out->size = (uint64_t)sqlite3_column_int64(stmt, 7);
	out->segment_size = (uint64_t)sqlite3_column_int64(stmt, 8);
	out->segments_total = (uint64_t)sqlite3_column_int64(stmt, 9);
	out->state = (enum catalog_transfer_state)catalog_name_index(
		state_names, 3, (const char *)sqlite3_column_text(stmt, 10));
	catalog_copy_text(out->digest, sizeof(out->digest), stmt, 11);
	out->created_ms = sqlite3_column_int64(stmt, 12);
	out->updated_ms = sqlite3_column_int64(stmt, 13);
	out->segments_durable = (uint64_t)sqlite3_column_int64(stmt, 14);
	catalog_copy_text(out->base_identity, sizeof(out->base_identity), stmt, 15);
	catalog_copy_text(out->snapshot, sizeof(out->snapshot), stmt, 16);
	out->segments_member = (uint64_t)sqlite3_column_int64(stmt, 17);
}

bool
catalog_transfer_has_member(struct catalog *catalog, int64_t id, uint64_t index)
{
	sqlite3_stmt *stmt = NULL;
	bool member = false;

	pthread_mutex_lock(&catalog->lock);
	if (catalog_prepare(
		    catalog,
		    "SELECT 1 FROM segment_ranges WHERE transfer_id = ?1 AND kind = 'member'"
		    " AND first <= ?2 AND last >= ?2 LIMIT 1",
		    &stmt) == 0) {
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_int64(stmt, 2, (int64_t)index);
		member = sqlite3_step(stmt) == SQLITE_ROW;
	}
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&catalog->lock);
	return member;
}

uint64_t
catalog_transfer_segments_carried(const struct catalog_transfer *transfer)
{
	/* A delta (it has a base) carries its members, possibly none; a full copy carries all. */
	return transfer->base_identity[0] ? transfer->segments_member : transfer->segments_total;
}

int
catalog_transfer_create(struct catalog *catalog, struct catalog_transfer *transfer)
{
	sqlite3_stmt *stmt = NULL;
	bool owned;
	int rc;

	if (transfer->segment_size == 0)
		return ferry_error_set(FERRY_ERR_INVALID, "segment size must not be 0");
	if (transfer->size > INT64_MAX)
		return ferry_error_set(FERRY_ERR_INVALID, "volume %s: size %llu is too large",
				       transfer->volume, (unsigned long long)transfer->size);
	transfer->segments_total = transfer->size / transfer->segment_size +
				   (transfer->size % transfer->segment_size != 0);
	if (transfer->segments_total > CATALOG_CHECKSUMS_MAX_BYTES / CHECKSUM_BYTES)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "volume %s of %llu bytes needs %llu segments of %llu bytes, "
				       "more than %u; use a larger --segment-size",
				       transfer->volume, (unsigned long long)transfer->size,
				       (unsigned long long)transfer->segments_total,
				       (unsigned long long)transfer->segment_size,
				       CATALOG_CHECKSUMS_MAX_BYTES / CHECKSUM_BYTES);
	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	transfer->created_ms = transfer->updated_ms = util_now_ms();
	transfer->state = CATALOG_TRANSFER_ACTIVE;
	transfer->digest[0] = '\0';
	transfer->segments_durable = 0;
	rc = catalog_prepare(catalog,
			     "INSERT INTO transfers (role, volume, peer, location, source_identity,"
			     " remote_id, size, segment_size, segments_total, state, created_ms,"
			     " updated_ms, base_identity, snapshot) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
			     " ?7, ?8, ?9, 'active', ?10, ?10, ?11, ?12)",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, role_names[transfer->role], -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, transfer->volume, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, transfer->peer, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, transfer->location, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, transfer->source_identity, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, transfer->remote_id);
	sqlite3_bind_int64(stmt, 7, (int64_t)transfer->size);
	sqlite3_bind_int64(stmt, 8, (int64_t)transfer->segment_size);
	sqlite3_bind_int64(stmt, 9, (int64_t)transfer->segments_total);
	sqlite3_bind_int64(stmt, 10, transfer->created_ms);
	sqlite3_bind_text(stmt, 11, transfer->base_identity, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 12, transfer->snapshot, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		rc = catalog_sqlite_error(catalog, sqlite3_errcode(catalog->db), "transfer create");
		goto out;
	}
	transfer->id = sqlite3_last_insert_rowid(catalog->db);
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_transfer_get(struct catalog *catalog, int64_t id, struct catalog_transfer *out)
{
	sqlite3_stmt *stmt = NULL;
	int rc, step;

	pthread_mutex_lock(&catalog->lock);
	rc = catalog_prepare(catalog, "SELECT " TRANSFER_COLUMNS " FROM transfers WHERE id = ?1",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		catalog_transfer_from_row(stmt, out);
	else if (step == SQLITE_DONE)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "no transfer %lld", (long long)id);
	else
		rc = catalog_sqlite_error(catalog, step, "transfer get");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

int
catalog_transfer_find_current(struct catalog *catalog, enum catalog_role role, const char *peer,
			      const char *volume, struct catalog_transfer *out)
{
	sqlite3_stmt *stmt = NULL;
	int rc, step;

	pthread_mutex_lock(&catalog->lock);
	rc = catalog_prepare(catalog,
			     "SELECT " TRANSFER_COLUMNS " FROM transfers WHERE role = ?1 AND"
			     " peer = ?2 AND volume = ?3 AND state != 'abandoned'"
			     " ORDER BY id DESC LIMIT 1",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, role_names[role], -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, peer, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, volume, -1, SQLITE_STATIC);
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		catalog_transfer_from_row(stmt, out);
	else if (step == SQLITE_DONE)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "no current transfer of volume %s",
				     volume);
	else
		rc = catalog_sqlite_error(catalog, step, "transfer find");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

int
catalog_transfer_set_state(struct catalog *catalog, int64_t id, enum catalog_transfer_state state,
			   const char *digest)
{
	sqlite3_stmt *stmt = NULL;
	bool owned;
	int rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_prepare(catalog,
			     "UPDATE transfers SET state = ?2, digest = COALESCE(?3, digest),"
			     " updated_ms = ?4 WHERE id = ?1 AND"
			     " (state != 'abandoned' OR ?2 = 'abandoned')",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, state_names[state], -1, SQLITE_STATIC);
	if (digest)
		sqlite3_bind_text(stmt, 3, digest, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, util_now_ms());
	if (sqlite3_step(stmt) != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, sqlite3_errcode(catalog->db), "transfer state");
	else if (sqlite3_changes(catalog->db) == 0) {
		struct catalog_transfer existing;

		rc = catalog_transfer_get(catalog, id, &existing);
		if (rc == 0)
			rc = ferry_error_set(FERRY_ERR_CONFLICT,
					     "transfer %lld was abandoned and stays so",
					     (long long)id);
	} else if (state == CATALOG_TRANSFER_ABANDONED) {
		/* Nothing will read an abandoned transfer's checksums or ranges again. */
		char sql[200];

		snprintf(sql, sizeof(sql),
			 "DELETE FROM transfer_sums WHERE id BETWEEN %lld AND %lld;"
			 "DELETE FROM segment_ranges WHERE transfer_id = %lld;",
			 (long long)(id * CATALOG_SUMS_CHUNKS_MAX),
			 (long long)(id * CATALOG_SUMS_CHUNKS_MAX + CATALOG_SUMS_CHUNKS_MAX - 1),
			 (long long)id);
		rc = catalog_exec(catalog, sql);
	}
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_transfer_set_remote(struct catalog *catalog, int64_t id, int64_t remote_id)
{
	sqlite3_stmt *stmt = NULL;
	bool owned;
	int rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_prepare(catalog,
			     "UPDATE transfers SET remote_id = ?2, updated_ms = ?3 WHERE id = ?1",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, remote_id);
	sqlite3_bind_int64(stmt, 3, util_now_ms());
	if (sqlite3_step(stmt) != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, sqlite3_errcode(catalog->db), "transfer remote");
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

/* Adds index to the (transfer, kind) ranges, merging with its neighbours. Runs inside the
 * caller's write transaction. */
static int
catalog_range_add(struct catalog *catalog, int64_t id, const char *kind, uint64_t index)
{
	sqlite3_stmt *stmt = NULL;
	int64_t first = (int64_t)index, last = (int64_t)index;
	int64_t neighbours[2];
	int found = 0, rc, step;

	rc = catalog_prepare(catalog,
			     "SELECT first, last FROM segment_ranges WHERE transfer_id = ?1 AND"
			     " kind = ?2 AND last >= ?3 - 1 AND first <= ?3 + 1",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, (int64_t)index);
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		int64_t row_first = sqlite3_column_int64(stmt, 0);
		int64_t row_last = sqlite3_column_int64(stmt, 1);

		if (row_first <= (int64_t)index && row_last >= (int64_t)index)
			goto out; /* already recorded: nothing to change */
		if (found < 2)
			neighbours[found++] = row_first;
		if (row_first < first)
			first = row_first;
		if (row_last > last)
			last = row_last;
	}
	if (step != SQLITE_DONE) {
		rc = catalog_sqlite_error(catalog, step, "range lookup");
		goto out;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (found > 0) {
		rc = catalog_prepare(catalog,
				     "DELETE FROM segment_ranges WHERE transfer_id = ?1 AND"
				     " kind = ?2 AND first IN (?3, ?4)",
				     &stmt);
		if (rc < 0)
			goto out;
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 3, neighbours[0]);
		sqlite3_bind_int64(stmt, 4, neighbours[found - 1]);
		if (sqlite3_step(stmt) != SQLITE_DONE) {
			rc = catalog_sqlite_error(catalog, sqlite3_errcode(catalog->db),
						  "range merge");
			goto out;
		}
		sqlite3_finalize(stmt);
		stmt = NULL;
	}
	rc = catalog_prepare(catalog,
			     "INSERT INTO segment_ranges (transfer_id, kind, first, last)"
			     " VALUES (?1, ?2, ?3, ?4)",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, first);
	sqlite3_bind_int64(stmt, 4, last);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, sqlite3_errcode(catalog->db), "range insert");
out:
	sqlite3_finalize(stmt);
	return rc;
}

/* Called with the lock held (inside a write or a read). */
static int
catalog_transfer_segments_total(struct catalog *catalog, int64_t id, int64_t *total)
{
	sqlite3_stmt *stmt = NULL;
	int rc = catalog_prepare(catalog, "SELECT segments_total FROM transfers WHERE id = ?1",
				 &stmt),
	    step;

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(stmt, 1, id);
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		*total = sqlite3_column_int64(stmt, 0);
	else if (step == SQLITE_DONE)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "no transfer %lld", (long long)id);
	else
		rc = catalog_sqlite_error(catalog, step, "transfer size");
	sqlite3_finalize(stmt);
	return rc;
}

/* Makes a transfer's checksum chunk (all unset) unless it exists; its rowid is derived. */
static int
catalog_sums_chunk_make(struct catalog *catalog, int64_t row)
{
	sqlite3_stmt *stmt = NULL;
	int rc = catalog_prepare(catalog,
				 "INSERT INTO transfer_sums (id, sums) VALUES (?1, zeroblob(?2))"
				 " ON CONFLICT DO NOTHING",
				 &stmt),
	    step;

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(stmt, 1, row);
	sqlite3_bind_int(stmt, 2, CATALOG_SUMS_CHUNK * CHECKSUM_BYTES);
	step = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return step == SQLITE_DONE ? 0 : catalog_sqlite_error(catalog, step, "checksum chunk");
}

int
catalog_transfer_mark_durable(struct catalog *catalog, int64_t id, uint64_t index,
			      const struct checksum *sum)
{
	sqlite3_blob *blob = NULL;
	int64_t total = 0;
	int64_t chunk_row = id * CATALOG_SUMS_CHUNKS_MAX + (int64_t)(index / CATALOG_SUMS_CHUNK);
	bool owned;
	int rc, sqlite_rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_transfer_segments_total(catalog, id, &total);
	if (rc == 0 && index >= (uint64_t)total)
		rc = ferry_error_set(FERRY_ERR_INVALID, "segment %llu is beyond transfer %lld",
				     (unsigned long long)index, (long long)id);
	if (rc == 0)
		rc = catalog_sums_chunk_make(catalog, chunk_row);
	if (rc < 0)
		goto out;
	sqlite_rc = sqlite3_blob_open(catalog->db, "main", "transfer_sums", "sums", chunk_row, 1,
				      &blob);
	if (sqlite_rc != SQLITE_OK) {
		rc = catalog_sqlite_error(catalog, sqlite_rc, "checksum blob open");
		goto out;
	}
	sqlite_rc = sqlite3_blob_write(blob, sum->bytes, CHECKSUM_BYTES,
				       (int)(index % CATALOG_SUMS_CHUNK * CHECKSUM_BYTES));
	if (sqlite_rc != SQLITE_OK) {
		rc = catalog_sqlite_error(catalog, sqlite_rc, "checksum write");
		goto out;
	}
	rc = catalog_range_add(catalog, id, range_kind_names[CATALOG_RANGE_DURABLE], index);
out:
	sqlite3_blob_close(blob);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_transfer_set_members(struct catalog *catalog, int64_t id, const struct range_set *members)
{
	sqlite3_stmt *stmt = NULL;
	bool owned;
	int rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_prepare(catalog,
			     "INSERT INTO segment_ranges (transfer_id, kind, first, last)"
			     " VALUES (?1, 'member', ?2, ?3)",
			     &stmt);
	for (size_t i = 0; rc == 0 && i < members->count; i++) {
		sqlite3_reset(stmt);
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_int64(stmt, 2, (int64_t)members->ranges[i].first);
		sqlite3_bind_int64(stmt, 3, (int64_t)members->ranges[i].last);
		if (sqlite3_step(stmt) != SQLITE_DONE)
			rc = catalog_sqlite_error(catalog, sqlite3_errcode(catalog->db), "members");
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (rc == 0)
		rc = catalog_prepare(
			catalog, "UPDATE transfers SET segments_member = ?2 WHERE id = ?1", &stmt);
	if (rc == 0) {
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_int64(stmt, 2, (int64_t)range_set_size(members));
		if (sqlite3_step(stmt) != SQLITE_DONE)
			rc = catalog_sqlite_error(catalog, sqlite3_errcode(catalog->db), "members");
	}
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_transfer_mark_attempted(struct catalog *catalog, int64_t id, uint64_t index)
{
	bool owned;
	int rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_range_add(catalog, id, range_kind_names[CATALOG_RANGE_ATTEMPTED], index);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_transfer_load_ranges(struct catalog *catalog, int64_t id, enum catalog_range_kind kind,
			     struct range_set *out)
{
	sqlite3_stmt *stmt = NULL;
	int rc, step;

	range_set_clear(out);
	pthread_mutex_lock(&catalog->lock);
	rc = catalog_prepare(catalog,
			     "SELECT first, last FROM segment_ranges WHERE transfer_id = ?1 AND"
			     " kind = ?2 ORDER BY first",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, range_kind_names[kind], -1, SQLITE_STATIC);
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		rc = range_set_add(out, (uint64_t)sqlite3_column_int64(stmt, 0),
				   (uint64_t)sqlite3_column_int64(stmt, 1));
		if (rc < 0)
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, step, "range load");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

int
catalog_transfer_read_checksums(struct catalog *catalog, int64_t id, uint8_t *sums,
				uint64_t segments_total)
{
	sqlite3_stmt *stmt = NULL;
	int64_t total = 0;
	int rc, step;

	pthread_mutex_lock(&catalog->lock);
	rc = catalog_transfer_segments_total(catalog, id, &total);
	if (rc == 0 && (uint64_t)total != segments_total)
		rc = ferry_error_set(FERRY_ERR_INTERNAL,
				     "transfer %lld has %lld segments, not %llu", (long long)id,
				     (long long)total, (unsigned long long)segments_total);
	if (rc == 0)
		rc = catalog_prepare(catalog,
				     "SELECT id - ?1 * 8192, sums FROM transfer_sums"
				     " WHERE id BETWEEN ?1 * 8192 AND ?1 * 8192 + 8191",
				     &stmt);
	if (rc < 0)
		goto out;
	/* A chunk never made holds no durable segment: its checksums stay unset (zero). */
	memset(sums, 0, segments_total * CHECKSUM_BYTES);
	sqlite3_bind_int64(stmt, 1, id);
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		uint64_t first = (uint64_t)sqlite3_column_int64(stmt, 0) * CATALOG_SUMS_CHUNK;
		uint64_t bytes = (uint64_t)sqlite3_column_bytes(stmt, 1);

		if (first >= segments_total)
			continue;
		if (bytes > (segments_total - first) * CHECKSUM_BYTES)
			bytes = (segments_total - first) * CHECKSUM_BYTES;
		memcpy(sums + first * CHECKSUM_BYTES, sqlite3_column_blob(stmt, 1), bytes);
	}
	if (step != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, step, "checksum read");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

int
catalog_transfer_list(struct catalog *catalog, bool include_abandoned,
		      int (*each)(const struct catalog_transfer *transfer, void *context),
		      void *context)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_transfer transfer;
	int rc, step;

	pthread_mutex_lock(&catalog->lock);
	rc = catalog_prepare(catalog,
			     "SELECT " TRANSFER_COLUMNS " FROM transfers WHERE ?1 OR"
			     " state != 'abandoned' ORDER BY id",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_int(stmt, 1, include_abandoned);
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		catalog_transfer_from_row(stmt, &transfer);
		rc = each(&transfer, context);
		if (rc < 0)
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, step, "transfer list");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}
