/* Protected volumes and where their replication stands: the points committed and pending,
 * the last cycle, the state and counters since the protection began. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
