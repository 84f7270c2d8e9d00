/* SQLite catalog: schema, forward migrations, opening and closing, transactions and the one
 * statement idiom (catalog_internal.h) that the other files of catalog/, one per table family,
 * run through.
 *
 * Invariants:
 *  1. PRAGMA user_version is the number of migrations applied; each migration runs in its own
 *     transaction with the version bump, so a crash leaves the catalog at one version or the next.
 *  2. Every call holds catalog->lock while it uses the connection; a write runs in one
 *     transaction, the caller's (catalog_transaction_begin) or its own.
 *  3. Outside a caller's transaction the connection is in autocommit: a write never joins a
 *     transaction left open by a failure (catalog_rollback() ends the process first).
 *  4. Every catalog file goes through the "ferry" VFS (fault.c): a failed fsync ends the
 *     process, never retried.
 */
#include "catalog/catalog_internal.h"
#include "common/error.h"
#include "common/log.h"

#include <assert.h>
#include <unistd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

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
	/* 9: generations, one writer per group (catalog/generations.c): this site's generation of
	 * each group it writes or keeps replicas of (none: 1), what it last learnt of the other
	 * site's and when, when it last raised its own, and when it saw a split brain (0: not
	 * now); the group a received volume replicates in, and the generation each transfer (so
	 * each point) was made at (0: a copy outside any group). */
	"CREATE TABLE generations ("
	" group_name TEXT PRIMARY KEY,"
	" generation INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1),"
	" peer_generation INTEGER NOT NULL DEFAULT 0,"
	" peer_seen_ms INTEGER NOT NULL DEFAULT 0,"
	" raised_ms INTEGER NOT NULL DEFAULT 0,"
	" split_brain_ms INTEGER NOT NULL DEFAULT 0);"
	"ALTER TABLE volumes ADD COLUMN group_name TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE transfers ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;",
	/* 10: the point a promoted volume was promoted at, the last one both sites share, which
	 * a reprotect of a group without VMs starts from (0: not recorded). */
	"ALTER TABLE promoted ADD COLUMN point INTEGER NOT NULL DEFAULT 0;",
};

_Static_assert(CATALOG_SUMS_CHUNKS_MAX *CATALOG_SUMS_CHUNK *CHECKSUM_BYTES ==
		       CATALOG_CHECKSUMS_MAX_BYTES,
	       "the largest transfer fills exactly CATALOG_SUMS_CHUNKS_MAX chunks");

int
catalog_sqlite_error(struct catalog *catalog, int sqlite_rc, const char *what)
{
	int code = FERRY_ERR_INTERNAL;
	const char *slash = strrchr(catalog->path, '/');

	/* A full catalog names the folder to free space in (the state folder, for ferryd). */
	if ((sqlite_rc & 0xff) == SQLITE_FULL)
		return ferry_error_set(
			FERRY_ERR_NO_SPACE,
			"catalog %s: %s: %s; the filesystem of its folder %.*s has no "
			"room: free space there (new work is refused until then; "
			"nothing acknowledged is lost)",
			catalog->path, what, sqlite3_errmsg(catalog->db),
			slash ? (int)(slash - catalog->path) + (slash == catalog->path) : 1,
			slash ? catalog->path : ".");
	switch (sqlite_rc & 0xff) {
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
	case SQLITE_CORRUPT:
	case SQLITE_BUSY: code = FERRY_ERR_IO; break;
	case SQLITE_CONSTRAINT: code = FERRY_ERR_CONFLICT; break;
	case SQLITE_NOMEM: code = FERRY_ERR_NO_MEMORY; break; /* lint: maps codes */
	}
	return ferry_error_set(code, "catalog %s: %s: %s", catalog->path, what,
			       sqlite3_errmsg(catalog->db));
}

int
catalog_prepare(struct catalog *catalog, const char *sql, sqlite3_stmt **stmt)
{
	int rc = sqlite3_prepare_v2(catalog->db, sql, -1, stmt, NULL);

	if (rc != SQLITE_OK)
		return catalog_sqlite_error(catalog, rc, "prepare");
	return 0;
}

int
catalog_exec(struct catalog *catalog, const char *sql)
{
	int rc = sqlite3_exec(catalog->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return catalog_sqlite_error(catalog, rc, sql);
	return 0;
}

/* Rolls the connection's transaction back. Should it stay open (a ROLLBACK that failed), every
 * later write would join it as the caller's own and never be committed, yet be answered as
 * done: the process ends instead (invariant 3), and a restart recovers from the WAL. */
static void
catalog_rollback(struct catalog *catalog)
{
	sqlite3_exec(catalog->db, "ROLLBACK", NULL, NULL, NULL);
	if (sqlite3_get_autocommit(catalog->db) == 0) {
		log_error("catalog %s: a failed transaction cannot be rolled back (%s); this "
			  "process stops now (exit %d) rather than record later work in it; start "
			  "it again: the catalog recovers from its WAL",
			  catalog->path, sqlite3_errmsg(catalog->db), CATALOG_EXIT_FATAL);
		_exit(CATALOG_EXIT_FATAL);
	}
}

/* Starts a write transaction unless the caller already holds one; *owned says which. */
int
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

int
catalog_write_end(struct catalog *catalog, bool owned, int rc)
{
	if (owned) {
		if (rc >= 0)
			rc = catalog_exec(catalog, "COMMIT");
		if (rc < 0)
			catalog_rollback(catalog);
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
		catalog_rollback(catalog);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

void
catalog_transaction_rollback(struct catalog *catalog)
{
	catalog_rollback(catalog);
	pthread_mutex_unlock(&catalog->lock);
}

static int
catalog_user_version(struct catalog *catalog, int *version)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	rc = catalog_statement(catalog, &stmt, "PRAGMA user_version", "");
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "user_version");
	if (rc < 0)
		goto out;
	*version = rc == CATALOG_ROW ? sqlite3_column_int(stmt, 0) : 0;
	rc = 0;
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
			catalog_rollback(catalog);
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
		return ferry_error_set(FERRY_ERR_NO_MEMORY, "cannot open catalog %s: out of memory",
				       path);
	snprintf(catalog->path, sizeof(catalog->path), "%s", path);
	pthread_mutexattr_init(&attributes);
	pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&catalog->lock, &attributes);
	pthread_mutexattr_destroy(&attributes);
	rc = catalog_vfs_register(path);
	if (rc < 0)
		goto out;
	rc = sqlite3_open_v2(path, &catalog->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			     CATALOG_VFS_NAME);
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

/* ---- the statement idiom (catalog_internal.h) ---- */

void
catalog_read_begin(struct catalog *catalog)
{
	pthread_mutex_lock(&catalog->lock);
}

int
catalog_read_end(struct catalog *catalog, int rc)
{
	pthread_mutex_unlock(&catalog->lock);
	return rc < 0 ? rc : 0;
}

int
catalog_statement_v(struct catalog *catalog, sqlite3_stmt **stmt, const char *sql,
		    const char *types, va_list args)
{
	int rc, bound = SQLITE_OK;

	rc = catalog_prepare(catalog, sql, stmt);
	if (rc < 0)
		return rc;
	/* One letter per parameter of the SQL, no more, no fewer. */
	assert((int)strlen(types) == sqlite3_bind_parameter_count(*stmt));
	if ((int)strlen(types) != sqlite3_bind_parameter_count(*stmt))
		return ferry_error_set(FERRY_ERR_INTERNAL,
				       "catalog: \"%s\" has %d parameters, not %zu", sql,
				       sqlite3_bind_parameter_count(*stmt), strlen(types));
	for (int i = 0; types[i] && bound == SQLITE_OK; i++) {
		const char *text;

		switch (types[i]) {
		case 't':
			text = va_arg(args, const char *);
			bound = sqlite3_bind_text(*stmt, i + 1, text ? text : "", -1,
						  SQLITE_STATIC);
			break;
		case 'z':
			text = va_arg(args, const char *);
			bound = text ? sqlite3_bind_text(*stmt, i + 1, text, -1, SQLITE_STATIC)
				     : sqlite3_bind_null(*stmt, i + 1);
			break;
		case 'i': bound = sqlite3_bind_int64(*stmt, i + 1, va_arg(args, int64_t)); break;
		case 'd': bound = sqlite3_bind_double(*stmt, i + 1, va_arg(args, double)); break;
		default:
			assert(!"catalog_statement: unknown parameter type");
			return ferry_error_set(FERRY_ERR_INTERNAL,
					       "catalog: parameter type '%c' of \"%s\" is unknown",
					       types[i], sql);
		}
	}
	if (bound != SQLITE_OK)
		return catalog_sqlite_error(catalog, bound, "bind");
	return 0;
}

int
catalog_statement(struct catalog *catalog, sqlite3_stmt **stmt, const char *sql, const char *types,
		  ...)
{
	va_list args;
	int rc;

	va_start(args, types);
	rc = catalog_statement_v(catalog, stmt, sql, types, args);
	va_end(args);
	return rc;
}

int
catalog_step(struct catalog *catalog, sqlite3_stmt *stmt, const char *what)
{
	int step = sqlite3_step(stmt);

	if (step == SQLITE_ROW)
		return CATALOG_ROW;
	if (step == SQLITE_DONE)
		return 0;
	return catalog_sqlite_error(catalog, step, what);
}

int
catalog_write(struct catalog *catalog, const char *what, int64_t *changes, const char *sql,
	      const char *types, ...)
{
	sqlite3_stmt *stmt = NULL;
	va_list args;
	bool owned = false;
	int rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	va_start(args, types);
	rc = catalog_statement_v(catalog, &stmt, sql, types, args);
	va_end(args);
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, what);
	if (rc < 0)
		goto out;
	rc = 0;
	if (changes)
		*changes = sqlite3_changes(catalog->db);
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_name_index(const char *const *names, int count, const char *name)
{
	for (int i = 0; name && i < count; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}
