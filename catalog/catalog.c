/* SQLite catalog: schema, forward migrations and every statement of the project.
 *
 * Invariants:
 *  1. PRAGMA user_version is the number of migrations applied; each migration runs in its own
 *     transaction with the version bump, so a crash leaves the catalog at one version or the next.
 *  2. A segment index appears in at most one range row per (transfer, kind); ranges never touch.
 *  3. A durable range row and the segment's checksum in the blob are written in one transaction.
 */
#include "catalog/catalog.h"
#include "common/error.h"
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

struct catalog {
	sqlite3 *db;
	char path[4096];
	pthread_mutex_t lock;
};

static const char *const catalog_migrations[CATALOG_SCHEMA_VERSION] = {
	/* 1: volumes, transfers, their progress */
	"CREATE TABLE volumes ("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" kind TEXT NOT NULL,"
	" location TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" transfer_id INTEGER,"
	" created_ms INTEGER NOT NULL);"
	"CREATE TABLE transfers ("
	" id INTEGER PRIMARY KEY,"
	" role TEXT NOT NULL CHECK (role IN ('send', 'receive')),"
	" volume TEXT NOT NULL,"
	" peer TEXT NOT NULL DEFAULT '',"
	" location TEXT NOT NULL,"
	" source_identity TEXT NOT NULL,"
	" remote_id INTEGER NOT NULL DEFAULT 0,"
	" size INTEGER NOT NULL,"
	" segment_size INTEGER NOT NULL,"
	" segments_total INTEGER NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('active', 'complete', 'abandoned')),"
	" digest TEXT NOT NULL DEFAULT '',"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL);"
	"CREATE TABLE transfer_checksums ("
	" transfer_id INTEGER PRIMARY KEY REFERENCES transfers(id) ON DELETE CASCADE,"
	" sums BLOB NOT NULL);"
	"CREATE TABLE segment_ranges ("
	" transfer_id INTEGER NOT NULL REFERENCES transfers(id) ON DELETE CASCADE,"
	" kind TEXT NOT NULL CHECK (kind IN ('durable', 'attempted')),"
	" first INTEGER NOT NULL,"
	" last INTEGER NOT NULL,"
	" PRIMARY KEY (transfer_id, kind, first));",
	/* 2: event log, and finding a volume's current transfer without a scan */
	"CREATE TABLE events ("
	" id INTEGER PRIMARY KEY,"
	" time_ms INTEGER NOT NULL,"
	" level TEXT NOT NULL,"
	" object TEXT NOT NULL,"
	" message TEXT NOT NULL);"
	"CREATE INDEX transfers_by_volume ON transfers (role, peer, volume, state);",
	/* 3: delta transfers (a base, a subset of segments, a snapshot to take when complete) */
	"CREATE TABLE segment_ranges_3 ("
	" transfer_id INTEGER NOT NULL REFERENCES transfers(id) ON DELETE CASCADE,"
	" kind TEXT NOT NULL CHECK (kind IN ('durable', 'attempted', 'member')),"
	" first INTEGER NOT NULL,"
	" last INTEGER NOT NULL,"
	" PRIMARY KEY (transfer_id, kind, first));"
	"INSERT INTO segment_ranges_3 SELECT transfer_id, kind, first, last FROM segment_ranges;"
	"DROP TABLE segment_ranges;"
	"ALTER TABLE segment_ranges_3 RENAME TO segment_ranges;"
	"ALTER TABLE transfers ADD COLUMN base_identity TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE transfers ADD COLUMN snapshot TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE transfers ADD COLUMN segments_member INTEGER NOT NULL DEFAULT 0;",
	/* 4: continuous replication: replica sites, protection groups, protected volumes */
	"CREATE TABLE sites ("
	" name TEXT PRIMARY KEY,"
	" url TEXT NOT NULL,"
	" token_path TEXT NOT NULL,"
	" cacert_path TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE groups ("
	" name TEXT PRIMARY KEY,"
	" interval_s INTEGER NOT NULL CHECK (interval_s >= 1),"
	" keep INTEGER NOT NULL CHECK (keep >= 1));"
	"CREATE TABLE protections ("
	" source TEXT PRIMARY KEY,"
	" group_name TEXT NOT NULL REFERENCES groups(name),"
	" site TEXT NOT NULL REFERENCES sites(name),"
	" replica TEXT NOT NULL,"
	" last_point INTEGER NOT NULL DEFAULT 0,"
	" last_point_ms INTEGER NOT NULL DEFAULT 0,"
	" pending_point INTEGER NOT NULL DEFAULT 0,"
	" pending_point_ms INTEGER NOT NULL DEFAULT 0,"
	" last_bytes_changed INTEGER NOT NULL DEFAULT 0,"
	" last_bytes_sent INTEGER NOT NULL DEFAULT 0,"
	" last_seconds REAL NOT NULL DEFAULT 0,"
	" state TEXT NOT NULL DEFAULT 'syncing',"
	" reason TEXT NOT NULL DEFAULT '',"
	" UNIQUE (site, replica));",
	/* 5: cutover: protected VMs (a JSON record each), runs and their ordered steps */
	"CREATE TABLE vms ("
	" name TEXT PRIMARY KEY,"
	" role TEXT NOT NULL CHECK (role IN ('primary', 'replica')),"
	" group_name TEXT NOT NULL,"
	" record TEXT NOT NULL,"
	" updated_ms INTEGER NOT NULL);"
	"CREATE TABLE runs ("
	" id INTEGER PRIMARY KEY,"
	" kind TEXT NOT NULL,"
	" target TEXT NOT NULL,"
	" request TEXT NOT NULL DEFAULT '',"
	" status TEXT NOT NULL,"
	" reason TEXT NOT NULL DEFAULT '',"
	" result TEXT NOT NULL DEFAULT '',"
	" started_ms INTEGER NOT NULL,"
	" ended_ms INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE run_steps ("
	" run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	" seq INTEGER NOT NULL,"
	" name TEXT NOT NULL,"
	" result TEXT NOT NULL,"
	" detail TEXT NOT NULL DEFAULT '',"
	" started_ms INTEGER NOT NULL,"
	" ended_ms INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (run_id, seq));"
	"CREATE TABLE promoted ("
	" volume TEXT PRIMARY KEY,"
	" run_id INTEGER NOT NULL,"
	" time_ms INTEGER NOT NULL);",
	/* 6: API tokens with roles (stored hashed), the audit log, and which peer token owns a
	 * received volume or VM record (catalog/access.c) */
	"CREATE TABLE tokens ("
	" name TEXT PRIMARY KEY,"
	" role TEXT NOT NULL,"
	" hash TEXT NOT NULL UNIQUE,"
	" created_ms INTEGER NOT NULL,"
	" last_used_ms INTEGER NOT NULL DEFAULT 0,"
	" expires_ms INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE audit ("
	" id INTEGER PRIMARY KEY,"
	" time_ms INTEGER NOT NULL,"
	" token TEXT NOT NULL,"
	" role TEXT NOT NULL,"
	" client TEXT NOT NULL,"
	" method TEXT NOT NULL,"
	" path TEXT NOT NULL,"
	" object TEXT NOT NULL,"
	" status INTEGER NOT NULL);"
	"CREATE INDEX audit_time ON audit (time_ms);"
	"CREATE TABLE owners ("
	" kind TEXT NOT NULL,"
	" name TEXT NOT NULL,"
	" token TEXT NOT NULL,"
	" PRIMARY KEY (kind, name));",
	/* 7: checksums in chunks of 4096 segments (64 KiB), made when a segment of theirs is
	 * first durable: the store grows with the data received, not with the declared size
	 * (one blob per transfer was written in full, up to 512 MiB, at its begin). A chunk's
	 * rowid is transfer id * 8192 + chunk (CATALOG_SUMS_CHUNKS_MAX), so it is never looked
	 * up. Chunks of the old blobs that hold no checksum are not kept. */
	"CREATE TABLE transfer_sums ("
	" id INTEGER PRIMARY KEY,"
	" sums BLOB NOT NULL);"
	"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 8191)"
	" INSERT INTO transfer_sums (id, sums)"
	" SELECT transfer_id * 8192 + i, part || zeroblob(65536 - length(part)) FROM"
	" (SELECT c.transfer_id, n.i, substr(c.sums, n.i * 65536 + 1, 65536) AS part"
	" FROM transfer_checksums c JOIN n ON n.i * 65536 < length(c.sums))"
	" WHERE part != zeroblob(length(part));"
	"DROP TABLE transfer_checksums;",
	/* 8: the operator's surface: a group's RPO target (0: two intervals and a minute) and
	 * when it was paused (0: running); counters of each protection for its metrics. */
	"ALTER TABLE groups ADD COLUMN rpo_s INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE groups ADD COLUMN paused_ms INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE protections ADD COLUMN points_committed INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE protections ADD COLUMN bytes_shipped INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE protections ADD COLUMN errors INTEGER NOT NULL DEFAULT 0;"
	/* and what an event is about, for the event stream: point, state, step, error, info */
	"ALTER TABLE events ADD COLUMN kind TEXT NOT NULL DEFAULT 'info';",
};

_Static_assert(CATALOG_SUMS_CHUNKS_MAX *CATALOG_SUMS_CHUNK *CHECKSUM_BYTES ==
		       CATALOG_CHECKSUMS_MAX_BYTES,
	       "the largest transfer fills exactly CATALOG_SUMS_CHUNKS_MAX chunks");

static const char *const range_kind_names[] = {"durable", "attempted", "member"};
static const char *const role_names[] = {"send", "receive"};
static const char *const state_names[] = {"active", "complete", "abandoned"};

const char *
catalog_transfer_state_name(enum catalog_transfer_state state)
{
	return state_names[state];
}

static int
catalog_sqlite_error(struct catalog *catalog, int sqlite_rc, const char *what)
{
	int code = FERRY_ERR_INTERNAL;

	switch (sqlite_rc & 0xff) {
	case SQLITE_FULL: code = FERRY_ERR_NO_SPACE; break;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
	case SQLITE_CORRUPT:
	case SQLITE_BUSY: code = FERRY_ERR_IO; break;
	case SQLITE_CONSTRAINT: code = FERRY_ERR_CONFLICT; break;
	}
	return ferry_error_set(code, "catalog %s: %s: %s", catalog->path, what,
			       sqlite3_errmsg(catalog->db));
}

static int
catalog_prepare(struct catalog *catalog, const char *sql, sqlite3_stmt **stmt)
{
	int rc = sqlite3_prepare_v2(catalog->db, sql, -1, stmt, NULL);

	if (rc != SQLITE_OK)
		return catalog_sqlite_error(catalog, rc, "prepare");
	return 0;
}

static int
catalog_exec(struct catalog *catalog, const char *sql)
{
	int rc = sqlite3_exec(catalog->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return catalog_sqlite_error(catalog, rc, sql);
	return 0;
}

/* Starts a write transaction unless the caller already holds one; *owned says which. */
static int
catalog_write_begin(struct catalog *catalog, bool *owned)
{
	pthread_mutex_lock(&catalog->lock);
	*owned = sqlite3_get_autocommit(catalog->db) != 0;
	if (*owned && catalog_exec(catalog, "BEGIN IMMEDIATE") < 0) {
		pthread_mutex_unlock(&catalog->lock);
		return ferry_error_last_code();
	}
	return 0;
}

static int
catalog_write_end(struct catalog *catalog, bool owned, int rc)
{
	if (owned) {
		if (rc == 0)
			rc = catalog_exec(catalog, "COMMIT");
		if (rc < 0)
			sqlite3_exec(catalog->db, "ROLLBACK", NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

int
catalog_transaction_begin(struct catalog *catalog)
{
	bool owned;
	int rc = catalog_write_begin(catalog, &owned);

	/* The lock stays held until commit or rollback: the transaction belongs to this thread. */
	if (rc == 0 && !owned) {
		pthread_mutex_unlock(&catalog->lock);
		return ferry_error_set(FERRY_ERR_INTERNAL, "catalog: nested transaction");
	}
	return rc;
}

int
catalog_transaction_commit(struct catalog *catalog)
{
	int rc = catalog_exec(catalog, "COMMIT");

	if (rc < 0)
		sqlite3_exec(catalog->db, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

void
catalog_transaction_rollback(struct catalog *catalog)
{
	sqlite3_exec(catalog->db, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&catalog->lock);
}

static int
catalog_user_version(struct catalog *catalog, int *version)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	rc = catalog_prepare(catalog, "PRAGMA user_version", &stmt);
	if (rc < 0)
		goto out;
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		rc = catalog_sqlite_error(catalog, sqlite3_errcode(catalog->db), "user_version");
		goto out;
	}
	*version = sqlite3_column_int(stmt, 0);
out:
	sqlite3_finalize(stmt);
	return rc;
}

static int
catalog_migrate(struct catalog *catalog, int target_version)
{
	int version = 0, rc;
	char bump[64];

	rc = catalog_user_version(catalog, &version);
	if (rc < 0)
		return rc;
	if (target_version < 0 || target_version > CATALOG_SCHEMA_VERSION)
		return ferry_error_set(FERRY_ERR_INVALID, "catalog %s: no schema version %d",
				       catalog->path, target_version);
	if (version > CATALOG_SCHEMA_VERSION)
		return ferry_error_set(FERRY_ERR_CONFLICT,
				       "catalog %s has schema version %d, newer than this ferry "
				       "(%d); run the newer ferry or restore an older catalog",
				       catalog->path, version, CATALOG_SCHEMA_VERSION);
	while (version < target_version) {
		rc = catalog_exec(catalog, "BEGIN IMMEDIATE");
		if (rc < 0)
			return rc;
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", version + 1);
		rc = catalog_exec(catalog, catalog_migrations[version]);
		if (rc == 0)
			rc = catalog_exec(catalog, bump);
		if (rc == 0)
			rc = catalog_exec(catalog, "COMMIT");
		if (rc < 0) {
			sqlite3_exec(catalog->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		version++;
	}
	return 0;
}

int
catalog_open_at_version(const char *path, enum catalog_sync sync, int target_version,
			struct catalog **out)
{
	struct catalog *catalog = NULL;
	pthread_mutexattr_t attributes;
	int rc;

	catalog = calloc(1, sizeof(*catalog));
	if (catalog == NULL)
		return FERRY_ERR_NO_MEMORY;
	snprintf(catalog->path, sizeof(catalog->path), "%s", path);
	pthread_mutexattr_init(&attributes);
	pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&catalog->lock, &attributes);
	pthread_mutexattr_destroy(&attributes);
	rc = sqlite3_open_v2(path, &catalog->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		rc = ferry_error_set(FERRY_ERR_IO, "cannot open catalog %s: %s", path,
				     catalog->db ? sqlite3_errmsg(catalog->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(catalog->db, 10000);
	rc = catalog_exec(catalog, "PRAGMA journal_mode = WAL");
	if (rc == 0)
		rc = catalog_exec(catalog, "PRAGMA foreign_keys = ON");
	if (rc == 0)
		rc = catalog_exec(catalog, sync == CATALOG_SYNC_FULL
						   ? "PRAGMA synchronous = FULL"
						   : "PRAGMA synchronous = NORMAL");
	if (rc == 0)
		rc = catalog_migrate(catalog, target_version);
	if (rc < 0)
		goto out;
	*out = catalog;
	catalog = NULL;
out:
	catalog_close(catalog);
	return rc;
}

int
catalog_open(const char *path, enum catalog_sync sync, struct catalog **out)
{
	return catalog_open_at_version(path, sync, CATALOG_SCHEMA_VERSION, out);
}

void
catalog_close(struct catalog *catalog)
{
	if (catalog == NULL)
		return;
	sqlite3_close(catalog->db);
	pthread_mutex_destroy(&catalog->lock);
	free(catalog);
}

int
catalog_schema_version(struct catalog *catalog)
{
	int version = -1;

	pthread_mutex_lock(&catalog->lock);
	catalog_user_version(catalog, &version);
	pthread_mutex_unlock(&catalog->lock);
	return version;
}

void
catalog_copy_text(char *out, size_t size, sqlite3_stmt *stmt, int column)
{
	const unsigned char *text = sqlite3_column_text(stmt, column);
	size_t length;

	snprintf(out, size, "%s", text ? (const char *)text : "");
	/* Cut on a character boundary: half a UTF-8 sequence would make every listing that holds
	 * this row unencodable as JSON. */
	length = strlen(out);
	if (text && length + 1 == size && strlen((const char *)text) > length) {
		while (length > 0 && ((unsigned char)out[length - 1] & 0xc0) == 0x80)
			length--;
		if (length > 0 && ((unsigned char)out[length - 1] & 0xc0) == 0xc0)
			length--;
		out[length] = '\0';
	}
	/* Whatever a row holds (written before this check, or by hand), one bad row must not
	 * make a whole listing unencodable. */
	util_utf8_sanitize(out);
}

/* ---- volumes ---- */

#define VOLUME_COLUMNS "id, name, kind, location, size, transfer_id, created_ms"

static void
catalog_volume_from_row(sqlite3_stmt *stmt, struct catalog_volume *out)
{
	memset(out, 0, sizeof(*out));
	out->id = sqlite3_column_int64(stmt, 0);
	catalog_copy_text(out->name, sizeof(out->name), stmt, 1);
	catalog_copy_text(out->kind, sizeof(out->kind), stmt, 2);
	catalog_copy_text(out->location, sizeof(out->location), stmt, 3);
	out->size = (uint64_t)sqlite3_column_int64(stmt, 4);
	out->transfer_id = sqlite3_column_int64(stmt, 5);
	out->created_ms = sqlite3_column_int64(stmt, 6);
}

int
catalog_volume_put(struct catalog *catalog, struct catalog_volume *volume)
{
	sqlite3_stmt *stmt = NULL;
	bool owned;
	int rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	if (volume->created_ms == 0)
		volume->created_ms = util_now_ms();
	rc = catalog_prepare(
		catalog,
		"INSERT INTO volumes (name, kind, location, size, transfer_id, created_ms)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
		" ON CONFLICT (name) DO UPDATE SET kind = ?2, location = ?3, size = ?4,"
		" transfer_id = ?5 RETURNING id, created_ms",
		&stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, volume->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, volume->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, volume->location, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, (int64_t)volume->size);
	sqlite3_bind_int64(stmt, 5, volume->transfer_id);
	sqlite3_bind_int64(stmt, 6, volume->created_ms);
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		rc = catalog_sqlite_error(catalog, sqlite3_errcode(catalog->db), "volume put");
		goto out;
	}
	volume->id = sqlite3_column_int64(stmt, 0);
	volume->created_ms = sqlite3_column_int64(stmt, 1);
	sqlite3_step(stmt);
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_volume_get(struct catalog *catalog, const char *name, struct catalog_volume *out)
{
	sqlite3_stmt *stmt = NULL;
	int rc, step;

	pthread_mutex_lock(&catalog->lock);
	rc = catalog_prepare(catalog, "SELECT " VOLUME_COLUMNS " FROM volumes WHERE name = ?1",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		catalog_volume_from_row(stmt, out);
	else if (step == SQLITE_DONE)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "no volume named '%s'", name);
	else
		rc = catalog_sqlite_error(catalog, step, "volume get");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

int
catalog_volume_list(struct catalog *catalog,
		    int (*each)(const struct catalog_volume *volume, void *context), void *context)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_volume volume;
	int rc, step;

	pthread_mutex_lock(&catalog->lock);
	rc = catalog_prepare(catalog, "SELECT " VOLUME_COLUMNS " FROM volumes ORDER BY name",
			     &stmt);
	if (rc < 0)
		goto out;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		catalog_volume_from_row(stmt, &volume);
		rc = each(&volume, context);
		if (rc < 0)
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, step, "volume list");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
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

/* ---- events ---- */

static int
catalog_event_vadd(struct catalog *catalog, const char *kind, const char *level, const char *object,
		   const char *format, va_list args)
{
	sqlite3_stmt *stmt = NULL;
	char message[1024];
	bool owned;
	int rc;

	vsnprintf(message, sizeof(message), format, args);
	/* A message quotes what callers sent: stored as valid text, or no listing could show it. */
	util_utf8_sanitize(message);
	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_prepare(catalog,
			     "INSERT INTO events (time_ms, level, object, message, kind)"
			     " VALUES (?1, ?2, ?3, ?4, ?5)",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, util_now_ms());
	sqlite3_bind_text(stmt, 2, level, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, object, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, message, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, kind, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, sqlite3_errcode(catalog->db), "event add");
	else if (sqlite3_last_insert_rowid(catalog->db) % 1000 == 0)
		/* The newest 100,000 are kept: a point a second for a year would be tens of
		 * millions of rows. */
		sqlite3_exec(catalog->db,
			     "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - 100000",
			     NULL, NULL, NULL);
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_event_add(struct catalog *catalog, const char *level, const char *object,
		  const char *format, ...)
{
	va_list args;
	int rc;

	va_start(args, format);
	rc = catalog_event_vadd(catalog, strcmp(level, "error") == 0 ? "error" : "info", level,
				object, format, args);
	va_end(args);
	return rc;
}

int
catalog_event_add_kind(struct catalog *catalog, const char *kind, const char *level,
		       const char *object, const char *format, ...)
{
	va_list args;
	int rc;

	va_start(args, format);
	rc = catalog_event_vadd(catalog, kind, level, object, format, args);
	va_end(args);
	return rc;
}

static int
catalog_event_select(struct catalog *catalog, int64_t after_id, int limit,
		     int (*each)(const struct catalog_event *event, void *context), void *context)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_event event;
	int rc, step;

	pthread_mutex_lock(&catalog->lock);
	rc = catalog_prepare(catalog,
			     after_id < 0 ? "SELECT id, time_ms, level, object, message, kind FROM"
					    " events ORDER BY id DESC LIMIT ?1"
					  : "SELECT id, time_ms, level, object, message, kind FROM"
					    " events WHERE id > ?2 ORDER BY id LIMIT ?1",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_int(stmt, 1, limit);
	if (after_id >= 0)
		sqlite3_bind_int64(stmt, 2, after_id);
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		memset(&event, 0, sizeof(event));
		event.id = sqlite3_column_int64(stmt, 0);
		event.time_ms = sqlite3_column_int64(stmt, 1);
		catalog_copy_text(event.level, sizeof(event.level), stmt, 2);
		catalog_copy_text(event.object, sizeof(event.object), stmt, 3);
		catalog_copy_text(event.message, sizeof(event.message), stmt, 4);
		catalog_copy_text(event.kind, sizeof(event.kind), stmt, 5);
		rc = each(&event, context);
		if (rc < 0)
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, step, "event list");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

int
catalog_event_list(struct catalog *catalog, int limit,
		   int (*each)(const struct catalog_event *event, void *context), void *context)
{
	return catalog_event_select(catalog, -1, limit, each, context);
}

int
catalog_event_list_after(struct catalog *catalog, int64_t after_id, int limit,
			 int (*each)(const struct catalog_event *event, void *context),
			 void *context)
{
	return catalog_event_select(catalog, after_id < 0 ? 0 : after_id, limit, each, context);
}

/* ---- continuous replication ---- */

/* Runs one write statement with text and integer parameters bound by bind(). */
int
catalog_write_one(struct catalog *catalog, const char *sql, const char *what,
		  void (*bind)(sqlite3_stmt *stmt, const void *row), const void *row,
		  bool must_change)
{
	sqlite3_stmt *stmt = NULL;
	bool owned;
	int rc, step;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_prepare(catalog, sql, &stmt);
	if (rc < 0)
		goto out;
	bind(stmt, row);
	step = sqlite3_step(stmt);
	if (step != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, step, what);
	else if (must_change && sqlite3_changes(catalog->db) == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "%s: nothing by that name", what);
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

/* Runs a query with one text parameter (NULL: none) and hands each row to each(). */
int
catalog_read_rows(struct catalog *catalog, const char *sql, const char *key, const char *what,
		  int (*each)(sqlite3_stmt *stmt, void *context), void *context, int *rows)
{
	sqlite3_stmt *stmt = NULL;
	int rc, step;

	*rows = 0;
	pthread_mutex_lock(&catalog->lock);
	rc = catalog_prepare(catalog, sql, &stmt);
	if (rc < 0)
		goto out;
	if (key)
		sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		(*rows)++;
		rc = each(stmt, context);
		if (rc < 0)
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, step, what);
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

static void
catalog_site_bind(sqlite3_stmt *stmt, const void *row)
{
	const struct catalog_site *site = row;

	sqlite3_bind_text(stmt, 1, site->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, site->url, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, site->token_path, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, site->cacert_path, -1, SQLITE_STATIC);
}

int
catalog_site_put(struct catalog *catalog, const struct catalog_site *site)
{
	return catalog_write_one(catalog,
				 "INSERT INTO sites (name, url, token_path, cacert_path)"
				 " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET"
				 " url = ?2, token_path = ?3, cacert_path = ?4",
				 "site put", catalog_site_bind, site, false);
}

struct catalog_site_reader {
	int (*each)(const struct catalog_site *site, void *context);
	void *context;
};

static int
catalog_site_row(sqlite3_stmt *stmt, void *context)
{
	struct catalog_site_reader *reader = context;
	struct catalog_site site;

	catalog_copy_text(site.name, sizeof(site.name), stmt, 0);
	catalog_copy_text(site.url, sizeof(site.url), stmt, 1);
	catalog_copy_text(site.token_path, sizeof(site.token_path), stmt, 2);
	catalog_copy_text(site.cacert_path, sizeof(site.cacert_path), stmt, 3);
	return reader->each(&site, reader->context);
}

static int
catalog_site_copy(const struct catalog_site *site, void *context)
{
	if (context)
		*(struct catalog_site *)context = *site;
	return 0;
}

int
catalog_site_get(struct catalog *catalog, const char *name, struct catalog_site *out)
{
	struct catalog_site_reader reader = {catalog_site_copy, out};
	int rows, rc;

	rc = catalog_read_rows(
		catalog, "SELECT name, url, token_path, cacert_path FROM sites WHERE name = ?1",
		name, "site get", catalog_site_row, &reader, &rows);
	if (rc == 0 && rows == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no replica site named '%s'; add it with ferry site add",
				     name);
	return rc;
}

int
catalog_site_list(struct catalog *catalog,
		  int (*each)(const struct catalog_site *site, void *context), void *context)
{
	struct catalog_site_reader reader = {each, context};
	int rows;

	return catalog_read_rows(
		catalog, "SELECT name, url, token_path, cacert_path FROM sites ORDER BY name", NULL,
		"site list", catalog_site_row, &reader, &rows);
}

static void
catalog_group_bind(sqlite3_stmt *stmt, const void *row)
{
	const struct catalog_group *group = row;

	sqlite3_bind_text(stmt, 1, group->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, group->interval_s);
	sqlite3_bind_int64(stmt, 3, group->keep);
	sqlite3_bind_int64(stmt, 4, group->rpo_s);
	sqlite3_bind_int64(stmt, 5, group->paused_ms);
}

int
catalog_group_put(struct catalog *catalog, const struct catalog_group *group)
{
	return catalog_write_one(catalog,
				 "INSERT INTO groups (name, interval_s, keep, rpo_s, paused_ms)"
				 " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET"
				 " interval_s = ?2, keep = ?3, rpo_s = ?4, paused_ms = ?5",
				 "group put", catalog_group_bind, group, false);
}

int
catalog_group_create(struct catalog *catalog, const struct catalog_group *group)
{
	int rc = catalog_write_one(catalog,
				   "INSERT INTO groups (name, interval_s, keep, rpo_s, paused_ms)"
				   " VALUES (?1, ?2, ?3, ?4, ?5)",
				   "group create", catalog_group_bind, group, false);

	if (rc == FERRY_ERR_CONFLICT)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "group %s exists already; change it with ferry group set %s "
				     "[--interval S] [--keep K] [--rpo S]",
				     group->name, group->name);
	return rc;
}

static void
catalog_name_bind(sqlite3_stmt *stmt, const void *row)
{
	sqlite3_bind_text(stmt, 1, row, -1, SQLITE_STATIC);
}

int
catalog_group_remove(struct catalog *catalog, const char *name)
{
	int rc = catalog_write_one(catalog,
				   "DELETE FROM groups WHERE name = ?1 AND NOT EXISTS (SELECT 1"
				   " FROM protections WHERE group_name = ?1) AND NOT EXISTS"
				   " (SELECT 1 FROM vms WHERE group_name = ?1)",
				   "group delete", catalog_name_bind, name, true);

	if (rc == FERRY_ERR_NOT_FOUND && catalog_group_get(catalog, name, NULL) == 0)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "group %s still has protected images or VMs: ferry unprotect "
				     "each image (ferry status lists them) and ferry vm unprotect "
				     "its VMs first",
				     name);
	else if (rc == FERRY_ERR_NOT_FOUND)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "no protection group named '%s'", name);
	return rc;
}

int
catalog_site_remove(struct catalog *catalog, const char *name)
{
	int rc = catalog_write_one(catalog,
				   "DELETE FROM sites WHERE name = ?1 AND NOT EXISTS (SELECT 1"
				   " FROM protections WHERE site = ?1)",
				   "site remove", catalog_name_bind, name, true);

	if (rc == FERRY_ERR_NOT_FOUND && catalog_site_get(catalog, name, NULL) == 0)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "site %s still receives protected images: ferry unprotect "
				     "each image that replicates there first (ferry status lists "
				     "them)",
				     name);
	else if (rc == FERRY_ERR_NOT_FOUND)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "no replica site named '%s'", name);
	return rc;
}

struct catalog_group_reader {
	int (*each)(const struct catalog_group *group, void *context);
	void *context;
};

static int
catalog_group_row(sqlite3_stmt *stmt, void *context)
{
	struct catalog_group_reader *reader = context;
	struct catalog_group group;

	catalog_copy_text(group.name, sizeof(group.name), stmt, 0);
	group.interval_s = sqlite3_column_int64(stmt, 1);
	group.keep = sqlite3_column_int64(stmt, 2);
	group.rpo_s = sqlite3_column_int64(stmt, 3);
	group.paused_ms = sqlite3_column_int64(stmt, 4);
	return reader->each(&group, reader->context);
}

static int
catalog_group_copy(const struct catalog_group *group, void *context)
{
	if (context)
		*(struct catalog_group *)context = *group;
	return 0;
}

int
catalog_group_get(struct catalog *catalog, const char *name, struct catalog_group *out)
{
	struct catalog_group_reader reader = {catalog_group_copy, out};
	int rows, rc;

	rc = catalog_read_rows(catalog,
			       "SELECT name, interval_s, keep, rpo_s, paused_ms FROM groups"
			       " WHERE name = ?1",
			       name, "group get", catalog_group_row, &reader, &rows);
	if (rc == 0 && rows == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no protection group named '%s'; create it with ferry group "
				     "create",
				     name);
	return rc;
}

int
catalog_group_list(struct catalog *catalog,
		   int (*each)(const struct catalog_group *group, void *context), void *context)
{
	struct catalog_group_reader reader = {each, context};
	int rows;

	return catalog_read_rows(catalog,
				 "SELECT name, interval_s, keep, rpo_s, paused_ms FROM groups"
				 " ORDER BY name",
				 NULL, "group list", catalog_group_row, &reader, &rows);
}

#define PROTECTION_COLUMNS                                                                         \
	"source, group_name, site, replica, last_point, last_point_ms, pending_point,"             \
	" pending_point_ms, last_bytes_changed, last_bytes_sent, last_seconds, state, reason,"     \
	" points_committed, bytes_shipped, errors"

static void
catalog_protection_bind(sqlite3_stmt *stmt, const void *row)
{
	const struct catalog_protection *protection = row;

	sqlite3_bind_text(stmt, 1, protection->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, protection->group, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, protection->site, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, protection->replica, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, protection->last_point);
	sqlite3_bind_int64(stmt, 6, protection->last_point_ms);
	sqlite3_bind_int64(stmt, 7, protection->pending_point);
	sqlite3_bind_int64(stmt, 8, protection->pending_point_ms);
	sqlite3_bind_int64(stmt, 9, protection->last_bytes_changed);
	sqlite3_bind_int64(stmt, 10, protection->last_bytes_sent);
	sqlite3_bind_double(stmt, 11, protection->last_seconds);
	sqlite3_bind_text(stmt, 12, protection->state[0] ? protection->state : "syncing", -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(stmt, 13, protection->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 14, protection->points_committed);
	sqlite3_bind_int64(stmt, 15, protection->bytes_shipped);
	sqlite3_bind_int64(stmt, 16, protection->errors);
}

int
catalog_protection_add(struct catalog *catalog, const struct catalog_protection *protection)
{
	int rc =
		catalog_write_one(catalog,
				  "INSERT INTO protections (" PROTECTION_COLUMNS ") VALUES (?1, ?2,"
				  " ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
				  "protect", catalog_protection_bind, protection, false);

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
	return catalog_write_one(
		catalog,
		"UPDATE protections SET last_point = ?5, last_point_ms = ?6,"
		" pending_point = ?7, pending_point_ms = ?8, last_bytes_changed = ?9,"
		" last_bytes_sent = ?10, last_seconds = ?11, state = ?12, reason = ?13,"
		" points_committed = MAX(points_committed, ?14), bytes_shipped = MAX(bytes_shipped,"
		" ?15), errors = MAX(errors, ?16) WHERE source = ?1",
		"protection update", catalog_protection_bind, protection, true);
}

static void
catalog_source_bind(sqlite3_stmt *stmt, const void *row)
{
	sqlite3_bind_text(stmt, 1, row, -1, SQLITE_STATIC);
}

int
catalog_protection_remove(struct catalog *catalog, const char *source)
{
	int rc = catalog_write_one(catalog, "DELETE FROM protections WHERE source = ?1",
				   "unprotect", catalog_source_bind, source, true);

	if (rc == FERRY_ERR_NOT_FOUND)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "%s is not protected", source);
	return rc;
}

struct catalog_protection_reader {
	int (*each)(const struct catalog_protection *protection, void *context);
	void *context;
};

static int
catalog_protection_row(sqlite3_stmt *stmt, void *context)
{
	struct catalog_protection_reader *reader = context;
	struct catalog_protection protection;

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
	return reader->each(&protection, reader->context);
}

struct catalog_run_count_reader {
	int (*each)(const char *kind, const char *status, int64_t count, void *context);
	void *context;
};

static int
catalog_run_count_row(sqlite3_stmt *stmt, void *context)
{
	struct catalog_run_count_reader *reader = context;
	char kind[32], status[32];

	catalog_copy_text(kind, sizeof(kind), stmt, 0);
	catalog_copy_text(status, sizeof(status), stmt, 1);
	return reader->each(kind, status, sqlite3_column_int64(stmt, 2), reader->context);
}

int
catalog_run_counts(struct catalog *catalog,
		   int (*each)(const char *kind, const char *status, int64_t count, void *context),
		   void *context)
{
	struct catalog_run_count_reader reader = {each, context};
	int rows;

	return catalog_read_rows(catalog,
				 "SELECT kind, status, COUNT(*) FROM runs GROUP BY kind, status"
				 " ORDER BY kind, status",
				 NULL, "run counts", catalog_run_count_row, &reader, &rows);
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
	struct catalog_protection_reader reader = {catalog_protection_copy, out};
	int rows, rc;

	rc = catalog_read_rows(catalog,
			       "SELECT " PROTECTION_COLUMNS " FROM protections WHERE source = ?1",
			       source, "protection get", catalog_protection_row, &reader, &rows);
	if (rc == 0 && rows == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "%s is not protected", source);
	return rc;
}

int
catalog_protection_list(struct catalog *catalog,
			int (*each)(const struct catalog_protection *protection, void *context),
			void *context)
{
	struct catalog_protection_reader reader = {each, context};
	int rows;

	return catalog_read_rows(catalog,
				 "SELECT " PROTECTION_COLUMNS " FROM protections ORDER BY source",
				 NULL, "protection list", catalog_protection_row, &reader, &rows);
}

/* ---- cutover: VMs, runs, steps ---- */

/* Runs one write statement with up to 8 text or integer parameters: "t" text, "i" int64. */
static int
catalog_write_values(struct catalog *catalog, const char *sql, const char *what, bool must_change,
		     const char *types, ...)
{
	sqlite3_stmt *stmt = NULL;
	va_list args;
	bool owned;
	int rc, step;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_prepare(catalog, sql, &stmt);
	if (rc < 0)
		goto out;
	va_start(args, types);
	for (int i = 0; types[i]; i++) {
		if (types[i] == 't') {
			const char *text = va_arg(args, const char *);

			sqlite3_bind_text(stmt, i + 1, text ? text : "", -1, SQLITE_TRANSIENT);
		} else {
			sqlite3_bind_int64(stmt, i + 1, va_arg(args, int64_t));
		}
	}
	va_end(args);
	step = sqlite3_step(stmt);
	if (step != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, step, what);
	else if (must_change && sqlite3_changes(catalog->db) == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "%s: nothing by that name", what);
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_vm_put(struct catalog *catalog, const char *name, const char *role, const char *group,
	       const char *record)
{
	return catalog_write_values(catalog,
				    "INSERT INTO vms (name, role, group_name, record, updated_ms)"
				    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET"
				    " role = ?2, group_name = ?3, record = ?4, updated_ms = ?5",
				    "vm put", false, "ttttii", name, role, group, record,
				    (int64_t)util_now_ms());
}

struct catalog_vm_reader {
	int (*each)(const char *name, const char *role, const char *group, const char *record,
		    void *context);
	void *context;
	const char *group;
};

static int
catalog_vm_row(sqlite3_stmt *stmt, void *context)
{
	struct catalog_vm_reader *reader = context;
	const char *group = (const char *)sqlite3_column_text(stmt, 2);

	if (reader->group && strcmp(reader->group, group) != 0)
		return 0;
	return reader->each((const char *)sqlite3_column_text(stmt, 0),
			    (const char *)sqlite3_column_text(stmt, 1), group,
			    (const char *)sqlite3_column_text(stmt, 3), reader->context);
}

struct catalog_vm_copy {
	char *record;
	char *role;
};

static int
catalog_vm_copy(const char *name, const char *role, const char *group, const char *record,
		void *context)
{
	struct catalog_vm_copy *copy = context;

	(void)name;
	(void)group;
	copy->record = strdup(record);
	if (copy->role)
		snprintf(copy->role, 16, "%s", role);
	return copy->record ? 0 : FERRY_ERR_NO_MEMORY;
}

int
catalog_vm_get(struct catalog *catalog, const char *name, char **record, char *role)
{
	struct catalog_vm_copy copy = {NULL, role};
	struct catalog_vm_reader reader = {catalog_vm_copy, &copy, NULL};
	int rows, rc;

	rc = catalog_read_rows(catalog,
			       "SELECT name, role, group_name, record FROM vms WHERE name = ?1",
			       name, "vm get", catalog_vm_row, &reader, &rows);
	if (rc == 0 && rows == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no protected VM named '%s' at this site; register it with "
				     "ferry vm protect",
				     name);
	if (rc < 0) {
		free(copy.record);
		return rc;
	}
	*record = copy.record;
	return 0;
}

int
catalog_vm_remove(struct catalog *catalog, const char *name)
{
	return catalog_write_values(catalog, "DELETE FROM vms WHERE name = ?1", "vm remove", true,
				    "t", name);
}

int
catalog_vm_list(struct catalog *catalog, const char *group,
		int (*each)(const char *name, const char *role, const char *group,
			    const char *record, void *context),
		void *context)
{
	struct catalog_vm_reader reader = {each, context, group};
	int rows;

	return catalog_read_rows(catalog,
				 "SELECT name, role, group_name, record FROM vms ORDER BY name",
				 NULL, "vm list", catalog_vm_row, &reader, &rows);
}

int
catalog_run_create(struct catalog *catalog, const char *kind, const char *target,
		   const char *request, int64_t *id)
{
	int rc;

	/* The rowid belongs to the connection, which every thread shares: another thread's insert
	 * between ours and the read would hand out its id. The lock is recursive, so holding it
	 * across both keeps them together. */
	pthread_mutex_lock(&catalog->lock);
	rc = catalog_write_values(catalog,
				  "INSERT INTO runs (kind, target, request, status, started_ms)"
				  " VALUES (?1, ?2, ?3, 'running', ?4)",
				  "run create", false, "ttti", kind, target, request,
				  (int64_t)util_now_ms());
	if (rc == 0)
		*id = sqlite3_last_insert_rowid(catalog->db);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

int
catalog_run_finish(struct catalog *catalog, int64_t id, const char *status, const char *reason,
		   const char *result)
{
	return catalog_write_values(catalog,
				    "UPDATE runs SET status = ?2, reason = ?3, result = ?4,"
				    " ended_ms = ?5 WHERE id = ?1",
				    "run finish", true, "ittti", id, status, reason, result,
				    (int64_t)util_now_ms());
}

int
catalog_run_reopen(struct catalog *catalog, int64_t id)
{
	/* Only from a status a run is resumed from: of two resumes at once, one reopens it. */
	int rc =
		catalog_write_values(catalog,
				     "UPDATE runs SET status = 'running', reason = '', ended_ms = 0"
				     " WHERE id = ?1 AND status IN ('interrupted', 'failed')",
				     "run reopen", true, "i", id);

	if (rc == FERRY_ERR_NOT_FOUND)
		rc = ferry_error_set(
			FERRY_ERR_CONFLICT,
			"run %lld is no longer interrupted or failed: another resume or "
			"rollback took it (ferry run show %lld)",
			(long long)id, (long long)id);
	return rc;
}

int
catalog_run_mark_interrupted(struct catalog *catalog)
{
	int rc = catalog_write_values(catalog,
				      "UPDATE run_steps SET result = 'interrupted', ended_ms = ?1"
				      " WHERE result = 'running'",
				      "run steps interrupted", false, "i", (int64_t)util_now_ms());

	if (rc == 0)
		rc = catalog_write_values(
			catalog,
			"UPDATE runs SET status = 'interrupted', reason = 'ferryd "
			"stopped during the run; ferry run resume or rollback', "
			"ended_ms = ?1 WHERE status = 'running'",
			"runs interrupted", false, "i", (int64_t)util_now_ms());
	return rc;
}

int
catalog_run_step_begin(struct catalog *catalog, int64_t run_id, const char *name, int *seq)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	/* Held across the insert and the read, as in catalog_run_create: the number read back must
	 * be the one this call inserted. */
	pthread_mutex_lock(&catalog->lock);
	rc = catalog_write_values(
		catalog,
		"INSERT INTO run_steps (run_id, seq, name, result, started_ms) VALUES (?1,"
		" (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_steps WHERE run_id = ?1), ?2,"
		" 'running', ?3)",
		"run step begin", false, "iti", run_id, name, (int64_t)util_now_ms());
	if (rc == 0)
		rc = catalog_prepare(catalog, "SELECT MAX(seq) FROM run_steps WHERE run_id = ?1",
				     &stmt);
	if (rc == 0) {
		sqlite3_bind_int64(stmt, 1, run_id);
		*seq = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
	}
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

int
catalog_run_step_end(struct catalog *catalog, int64_t run_id, int seq, const char *result,
		     const char *detail)
{
	return catalog_write_values(catalog,
				    "UPDATE run_steps SET result = ?3, detail = ?4, ended_ms = ?5"
				    " WHERE run_id = ?1 AND seq = ?2",
				    "run step end", true, "iitti", run_id, (int64_t)seq, result,
				    detail, (int64_t)util_now_ms());
}

struct catalog_run_reader {
	int (*each)(const struct catalog_run *run, void *context);
	void *context;
};

static int
catalog_run_row(sqlite3_stmt *stmt, void *context)
{
	struct catalog_run_reader *reader = context;
	struct catalog_run run;

	memset(&run, 0, sizeof(run));
	run.id = sqlite3_column_int64(stmt, 0);
	catalog_copy_text(run.kind, sizeof(run.kind), stmt, 1);
	catalog_copy_text(run.target, sizeof(run.target), stmt, 2);
	run.request = (const char *)sqlite3_column_text(stmt, 3);
	catalog_copy_text(run.status, sizeof(run.status), stmt, 4);
	catalog_copy_text(run.reason, sizeof(run.reason), stmt, 5);
	run.result = (const char *)sqlite3_column_text(stmt, 6);
	run.started_ms = sqlite3_column_int64(stmt, 7);
	run.ended_ms = sqlite3_column_int64(stmt, 8);
	return reader->each(&run, reader->context);
}

int
catalog_run_list(struct catalog *catalog, int64_t id, int limit,
		 int (*each)(const struct catalog_run *run, void *context), void *context)
{
	struct catalog_run_reader reader = {each, context};
	char sql[256], key[32];
	int rows, rc;

	snprintf(key, sizeof(key), "%lld", (long long)id);
	snprintf(sql, sizeof(sql),
		 "SELECT id, kind, target, request, status, reason, result, started_ms, ended_ms"
		 " FROM runs %s ORDER BY id DESC LIMIT %d",
		 id ? "WHERE id = CAST(?1 AS INTEGER)" : "", limit > 0 ? limit : -1);
	rc = catalog_read_rows(catalog, sql, id ? key : NULL, "run list", catalog_run_row, &reader,
			       &rows);
	if (rc == 0 && id && rows == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no run %lld at this site; see ferry runs", (long long)id);
	return rc;
}

struct catalog_step_reader {
	int (*each)(const struct catalog_run_step *step, void *context);
	void *context;
};

static int
catalog_step_row(sqlite3_stmt *stmt, void *context)
{
	struct catalog_step_reader *reader = context;
	struct catalog_run_step step;

	memset(&step, 0, sizeof(step));
	step.run_id = sqlite3_column_int64(stmt, 0);
	step.seq = sqlite3_column_int(stmt, 1);
	catalog_copy_text(step.name, sizeof(step.name), stmt, 2);
	catalog_copy_text(step.result, sizeof(step.result), stmt, 3);
	catalog_copy_text(step.detail, sizeof(step.detail), stmt, 4);
	step.started_ms = sqlite3_column_int64(stmt, 5);
	step.ended_ms = sqlite3_column_int64(stmt, 6);
	return reader->each(&step, reader->context);
}

int
catalog_run_steps(struct catalog *catalog, int64_t run_id,
		  int (*each)(const struct catalog_run_step *step, void *context), void *context)
{
	struct catalog_step_reader reader = {each, context};
	char key[32];
	int rows;

	snprintf(key, sizeof(key), "%lld", (long long)run_id);
	return catalog_read_rows(catalog,
				 "SELECT run_id, seq, name, result, detail, started_ms, ended_ms"
				 " FROM run_steps WHERE run_id = CAST(?1 AS INTEGER) ORDER BY seq",
				 key, "run steps", catalog_step_row, &reader, &rows);
}

int
catalog_promoted_put(struct catalog *catalog, const char *volume, int64_t run_id)
{
	return catalog_write_values(catalog,
				    "INSERT OR REPLACE INTO promoted (volume, run_id, time_ms)"
				    " VALUES (?1, ?2, ?3)",
				    "promoted put", false, "tii", volume, run_id,
				    (int64_t)util_now_ms());
}

static int
catalog_promoted_row(sqlite3_stmt *stmt, void *context)
{
	*(int64_t *)context = sqlite3_column_int64(stmt, 0);
	return 0;
}

int
catalog_promoted_get(struct catalog *catalog, const char *volume, int64_t *run_id)
{
	int rows;

	*run_id = 0;
	return catalog_read_rows(catalog, "SELECT run_id FROM promoted WHERE volume = ?1", volume,
				 "promoted get", catalog_promoted_row, run_id, &rows);
}

int
catalog_promoted_remove(struct catalog *catalog, const char *volume)
{
	return catalog_write_values(catalog, "DELETE FROM promoted WHERE volume = ?1",
				    "promoted remove", false, "t", volume);
}
