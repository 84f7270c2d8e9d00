/* Transfers and their progress: the transfer rows, the ranges of segment indexes (durable,
 * attempted, member) and the checksum store in chunks of CATALOG_SUMS_CHUNK segments.
 * Statements follow the idiom of catalog_internal.h.
 *
 * States of a transfer (the column transfers.state):
 *
 *   (none)    -> ACTIVE      catalog_transfer_create()
 *   ACTIVE    -> COMPLETE    catalog_transfer_set_state(COMPLETE), the digests matched
 *   ACTIVE    -> ABANDONED   catalog_transfer_set_state(ABANDONED), --restart or source changed
 *   COMPLETE  -> ABANDONED   catalog_transfer_set_state(ABANDONED), a restart on purpose
 *
 * Invariants:
 *  1. An abandoned transfer never changes state again: the UPDATE is guarded by
 *     "state != 'abandoned' OR ?2 = 'abandoned'", and FERRY_ERR_CONFLICT says so.
 *  2. No transition leads back to ACTIVE (asserted in catalog_transfer_set_state()).
 *  3. An abandoned transfer keeps no checksums or ranges: they go in the transaction that
 *     abandons it.
 *  4. A segment index appears in at most one range row per (transfer, kind); ranges never
 *     touch (catalog_range_add() merges with both neighbours).
 *  5. A durable range row and the segment's checksum are written in one transaction.
 *  6. segments_total is ceil(size / segment_size), at most CATALOG_CHECKSUMS_MAX_BYTES /
 *     CHECKSUM_BYTES; a checksum chunk's rowid is id * CATALOG_SUMS_CHUNKS_MAX + chunk. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const char *const range_kind_names[] = {"durable", "attempted", "member"};
static const char *const role_names[] = {"send", "receive"};
static const char *const state_names[] = {"active", "complete", "abandoned"};

const char *
catalog_transfer_state_name(enum catalog_transfer_state state)
{
	assert(state >= CATALOG_TRANSFER_ACTIVE && state <= CATALOG_TRANSFER_ABANDONED);
	return state_names[state];
}

#define TRANSFER_COLUMNS                                                                           \
	"id, role, volume, peer, location, source_identity, remote_id, size, segment_size,"        \
	" segments_total, state, digest, created_ms, updated_ms,"                                  \
	" (SELECT COALESCE(SUM(last - first + 1), 0) FROM segment_ranges r"                        \
	"  WHERE r.transfer_id = transfers.id AND r.kind = 'durable'),"                            \
	" base_identity, snapshot, segments_member, generation"

/* A name the CHECK constraints allow, or the first one (a row written by hand). */
static int
catalog_transfer_name_index(const char *const *names, int count, const char *name)
{
	int index = catalog_name_index(names, count, name);

	return index < 0 ? 0 : index;
}

static void
catalog_transfer_from_row(sqlite3_stmt *stmt, struct catalog_transfer *out)
{
	memset(out, 0, sizeof(*out));
	out->id = sqlite3_column_int64(stmt, 0);
	out->role = (enum catalog_role)catalog_transfer_name_index(
		role_names, 2, (const char *)sqlite3_column_text(stmt, 1));
	catalog_copy_text(out->volume, sizeof(out->volume), stmt, 2);
	catalog_copy_text(out->peer, sizeof(out->peer), stmt, 3);
	catalog_copy_text(out->location, sizeof(out->location), stmt, 4);
	catalog_copy_text(out->source_identity, sizeof(out->source_identity), stmt, 5);
	out->remote_id = sqlite3_column_int64(stmt, 6);
	out->size = (uint64_t)sqlite3_column_int64(stmt, 7);
	out->segment_size = (uint64_t)sqlite3_column_int64(stmt, 8);
	out->segments_total = (uint64_t)sqlite3_column_int64(stmt, 9);
	out->state = (enum catalog_transfer_state)catalog_transfer_name_index(
		state_names, 3, (const char *)sqlite3_column_text(stmt, 10));
	catalog_copy_text(out->digest, sizeof(out->digest), stmt, 11);
	out->created_ms = sqlite3_column_int64(stmt, 12);
	out->updated_ms = sqlite3_column_int64(stmt, 13);
	out->segments_durable = (uint64_t)sqlite3_column_int64(stmt, 14);
	catalog_copy_text(out->base_identity, sizeof(out->base_identity), stmt, 15);
	catalog_copy_text(out->snapshot, sizeof(out->snapshot), stmt, 16);
	out->segments_member = (uint64_t)sqlite3_column_int64(stmt, 17);
	out->generation = sqlite3_column_int64(stmt, 18);
}

bool
catalog_transfer_has_member(struct catalog *catalog, int64_t id, uint64_t index)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT 1 FROM segment_ranges WHERE transfer_id = ?1 AND"
			       " kind = 'member' AND first <= ?2 AND last >= ?2 LIMIT 1",
			       "ii", id, (int64_t)index);
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "member lookup");
out:
	sqlite3_finalize(stmt);
	catalog_read_end(catalog, rc);
	return rc == CATALOG_ROW;
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
	bool owned = false;
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
	rc = catalog_statement(
		catalog, &stmt,
		"INSERT INTO transfers (role, volume, peer, location, source_identity, remote_id,"
		" size, segment_size, segments_total, state, created_ms, updated_ms, base_identity,"
		" snapshot, generation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'active', ?10,"
		" ?10, ?11, ?12, ?13)"
		" RETURNING id",
		"tttttiiiiitti", role_names[transfer->role], transfer->volume, transfer->peer,
		transfer->location, transfer->source_identity, transfer->remote_id,
		(int64_t)transfer->size, (int64_t)transfer->segment_size,
		(int64_t)transfer->segments_total, transfer->created_ms, transfer->base_identity,
		transfer->snapshot, transfer->generation);
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "transfer create");
	if (rc == CATALOG_ROW)
		transfer->id = sqlite3_column_int64(stmt, 0);
	if (rc == CATALOG_ROW)
		rc = catalog_step(catalog, stmt, "transfer create");
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

/* The one transfer that sql (TRANSFER_COLUMNS, parameters of types) finds; FERRY_ERR_NOT_FOUND
 * with not_found otherwise. */
static int
catalog_transfer_select(struct catalog *catalog, struct catalog_transfer *out,
			const char *not_found, const char *sql, const char *types, ...)
{
	sqlite3_stmt *stmt = NULL;
	va_list args;
	int rc;

	catalog_read_begin(catalog);
	va_start(args, types);
	rc = catalog_statement_v(catalog, &stmt, sql, types, args);
	va_end(args);
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "transfer get");
	if (rc == CATALOG_ROW)
		catalog_transfer_from_row(stmt, out);
	else if (rc == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "%s", not_found);
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}

int
catalog_transfer_get(struct catalog *catalog, int64_t id, struct catalog_transfer *out)
{
	char not_found[64];

	snprintf(not_found, sizeof(not_found), "no transfer %lld", (long long)id);
	return catalog_transfer_select(catalog, out, not_found,
				       "SELECT " TRANSFER_COLUMNS " FROM transfers WHERE id = ?1",
				       "i", id);
}

int
catalog_transfer_find_current(struct catalog *catalog, enum catalog_role role, const char *peer,
			      const char *volume, struct catalog_transfer *out)
{
	char not_found[VOLUME_NAME_MAX + 64];

	snprintf(not_found, sizeof(not_found), "no current transfer of volume %s", volume);
	return catalog_transfer_select(catalog, out, not_found,
				       "SELECT " TRANSFER_COLUMNS " FROM transfers WHERE role = ?1"
				       " AND peer = ?2 AND volume = ?3 AND state != 'abandoned'"
				       " ORDER BY id DESC LIMIT 1",
				       "ttt", role_names[role], peer, volume);
}

int
catalog_transfer_set_state(struct catalog *catalog, int64_t id, enum catalog_transfer_state state,
			   const char *digest)
{
	sqlite3_stmt *stmt = NULL;
	bool owned = false;
	int rc;

	/* Invariant 2: nothing leads back to active. */
	assert(state == CATALOG_TRANSFER_COMPLETE || state == CATALOG_TRANSFER_ABANDONED);
	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	/* Invariant 1. */
	rc = catalog_statement(catalog, &stmt,
			       "UPDATE transfers SET state = ?2, digest = COALESCE(?3, digest),"
			       " updated_ms = ?4 WHERE id = ?1 AND"
			       " (state != 'abandoned' OR ?2 = 'abandoned')",
			       "itzi", id, state_names[state], digest, util_now_ms());
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "transfer state");
	if (rc < 0)
		goto out;
	if (sqlite3_changes(catalog->db) == 0) {
		struct catalog_transfer existing;

		rc = catalog_transfer_get(catalog, id, &existing);
		if (rc == 0)
			rc = ferry_error_set(FERRY_ERR_CONFLICT,
					     "transfer %lld was abandoned and stays so",
					     (long long)id);
		goto out;
	}
	if (state != CATALOG_TRANSFER_ABANDONED)
		goto out;
	/* Invariant 3: nothing will read an abandoned transfer's checksums or ranges again. */
	rc = catalog_write(catalog, "transfer checksums delete", NULL,
			   "DELETE FROM transfer_sums WHERE id BETWEEN ?1 AND ?2", "ii",
			   id * CATALOG_SUMS_CHUNKS_MAX,
			   id * CATALOG_SUMS_CHUNKS_MAX + CATALOG_SUMS_CHUNKS_MAX - 1);
	if (rc == 0)
		rc = catalog_write(catalog, "transfer ranges delete", NULL,
				   "DELETE FROM segment_ranges WHERE transfer_id = ?1", "i", id);
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_transfer_set_remote(struct catalog *catalog, int64_t id, int64_t remote_id)
{
	return catalog_write(catalog, "transfer remote", NULL,
			     "UPDATE transfers SET remote_id = ?2, updated_ms = ?3 WHERE id = ?1",
			     "iii", id, remote_id, util_now_ms());
}

/* Adds index to the (transfer, kind) ranges, merging with its neighbours (invariant 4). Runs
 * inside the caller's write transaction. */
static int
catalog_range_add(struct catalog *catalog, int64_t id, const char *kind, uint64_t index)
{
	sqlite3_stmt *stmt = NULL;
	int64_t first = (int64_t)index, last = (int64_t)index;
	int64_t neighbours[2] = {0, 0};
	int found = 0, rc;

	rc = catalog_statement(catalog, &stmt,
			       "SELECT first, last FROM segment_ranges WHERE transfer_id = ?1 AND"
			       " kind = ?2 AND last >= ?3 - 1 AND first <= ?3 + 1",
			       "iti", id, kind, (int64_t)index);
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "range lookup")) == CATALOG_ROW) {
		int64_t row_first = sqlite3_column_int64(stmt, 0);
		int64_t row_last = sqlite3_column_int64(stmt, 1);

		if (row_first <= (int64_t)index && row_last >= (int64_t)index) {
			rc = 0;
			goto out; /* already recorded: nothing to change */
		}
		if (found < 2)
			neighbours[found++] = row_first;
		if (row_first < first)
			first = row_first;
		if (row_last > last)
			last = row_last;
	}
	if (rc == 0 && found > 0)
		rc = catalog_write(catalog, "range merge", NULL,
				   "DELETE FROM segment_ranges WHERE transfer_id = ?1 AND"
				   " kind = ?2 AND first IN (?3, ?4)",
				   "itii", id, kind, neighbours[0], neighbours[found - 1]);
	if (rc == 0)
		rc = catalog_write(catalog, "range insert", NULL,
				   "INSERT INTO segment_ranges (transfer_id, kind, first, last)"
				   " VALUES (?1, ?2, ?3, ?4)",
				   "itii", id, kind, first, last);
out:
	sqlite3_finalize(stmt);
	return rc;
}

/* Called with the lock held (inside a write or a read). */
static int
catalog_transfer_segments_total(struct catalog *catalog, int64_t id, int64_t *total)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	rc = catalog_statement(catalog, &stmt, "SELECT segments_total FROM transfers WHERE id = ?1",
			       "i", id);
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "transfer size");
	if (rc == CATALOG_ROW) {
		*total = sqlite3_column_int64(stmt, 0);
		rc = 0;
	} else if (rc == 0) {
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "no transfer %lld", (long long)id);
	}
out:
	sqlite3_finalize(stmt);
	return rc;
}

int
catalog_transfer_mark_durable(struct catalog *catalog, int64_t id, uint64_t index,
			      const struct checksum *sum)
{
	sqlite3_blob *blob = NULL;
	int64_t total = 0;
	int64_t chunk_row = id * CATALOG_SUMS_CHUNKS_MAX + (int64_t)(index / CATALOG_SUMS_CHUNK);
	bool owned = false;
	int rc, sqlite_rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_transfer_segments_total(catalog, id, &total);
	if (rc == 0 && index >= (uint64_t)total)
		rc = ferry_error_set(FERRY_ERR_INVALID, "segment %llu is beyond transfer %lld",
				     (unsigned long long)index, (long long)id);
	/* The chunk, all unset, unless it exists (invariant 6). */
	if (rc == 0)
		rc = catalog_write(catalog, "checksum chunk", NULL,
				   "INSERT INTO transfer_sums (id, sums) VALUES (?1, zeroblob(?2))"
				   " ON CONFLICT DO NOTHING",
				   "ii", chunk_row, (int64_t)CATALOG_SUMS_CHUNK * CHECKSUM_BYTES);
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
	/* Invariant 5: the range row in the same transaction. */
	rc = catalog_range_add(catalog, id, range_kind_names[CATALOG_RANGE_DURABLE], index);
out:
	sqlite3_blob_close(blob);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_transfer_set_members(struct catalog *catalog, int64_t id, const struct range_set *members)
{
	bool owned = false;
	int rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < members->count; i++)
		rc = catalog_write(catalog, "members", NULL,
				   "INSERT INTO segment_ranges (transfer_id, kind, first, last)"
				   " VALUES (?1, 'member', ?2, ?3)",
				   "iii", id, (int64_t)members->ranges[i].first,
				   (int64_t)members->ranges[i].last);
	if (rc == 0)
		rc = catalog_write(catalog, "members", NULL,
				   "UPDATE transfers SET segments_member = ?2 WHERE id = ?1", "ii",
				   id, (int64_t)range_set_size(members));
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_transfer_mark_attempted(struct catalog *catalog, int64_t id, uint64_t index)
{
	bool owned = false;
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
	int rc;

	range_set_clear(out);
	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT first, last FROM segment_ranges WHERE transfer_id = ?1 AND"
			       " kind = ?2 ORDER BY first",
			       "it", id, range_kind_names[kind]);
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "range load")) == CATALOG_ROW) {
		rc = range_set_add(out, (uint64_t)sqlite3_column_int64(stmt, 0),
				   (uint64_t)sqlite3_column_int64(stmt, 1));
		if (rc < 0) {
			rc = ferry_error_set(rc, "transfer %lld: cannot hold its %s ranges: %s",
					     (long long)id, range_kind_names[kind],
					     rc == FERRY_ERR_NO_MEMORY ? "out of memory"
								       : ferry_error_message());
			goto out;
		}
	}
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}

int
catalog_transfer_read_checksums(struct catalog *catalog, int64_t id, uint8_t *sums,
				uint64_t segments_total)
{
	sqlite3_stmt *stmt = NULL;
	int64_t total = 0;
	int rc;

	catalog_read_begin(catalog);
	rc = catalog_transfer_segments_total(catalog, id, &total);
	if (rc == 0 && (uint64_t)total != segments_total)
		rc = ferry_error_set(FERRY_ERR_INTERNAL,
				     "transfer %lld has %lld segments, not %llu", (long long)id,
				     (long long)total, (unsigned long long)segments_total);
	if (rc == 0)
		rc = catalog_statement(catalog, &stmt,
				       "SELECT id - ?1 * 8192, sums FROM transfer_sums"
				       " WHERE id BETWEEN ?1 * 8192 AND ?1 * 8192 + 8191",
				       "i", id);
	if (rc < 0)
		goto out;
	/* A chunk never made holds no durable segment: its checksums stay unset (zero). */
	memset(sums, 0, segments_total * CHECKSUM_BYTES);
	while ((rc = catalog_step(catalog, stmt, "checksum read")) == CATALOG_ROW) {
		uint64_t first = (uint64_t)sqlite3_column_int64(stmt, 0) * CATALOG_SUMS_CHUNK;
		uint64_t bytes = (uint64_t)sqlite3_column_bytes(stmt, 1);

		if (first >= segments_total)
			continue;
		if (bytes > (segments_total - first) * CHECKSUM_BYTES)
			bytes = (segments_total - first) * CHECKSUM_BYTES;
		memcpy(sums + first * CHECKSUM_BYTES, sqlite3_column_blob(stmt, 1), bytes);
	}
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}

int
catalog_transfer_list(struct catalog *catalog, bool include_abandoned,
		      int (*each)(const struct catalog_transfer *transfer, void *context),
		      void *context)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_transfer transfer;
	int rc;

	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT " TRANSFER_COLUMNS " FROM transfers WHERE ?1 OR"
			       " state != 'abandoned' ORDER BY id",
			       "i", (int64_t)include_abandoned);
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "transfer list")) == CATALOG_ROW) {
		catalog_transfer_from_row(stmt, &transfer);
		rc = each(&transfer, context);
		if (rc < 0)
			goto out;
	}
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}
