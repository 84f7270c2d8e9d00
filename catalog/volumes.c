/* Volumes (receiver side): one row per received volume, naming its image and the transfer that
 * fills it now. The statements run through catalog.c's helpers and lock. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
