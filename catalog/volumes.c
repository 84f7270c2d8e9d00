/* Volumes (receiver side): one row per received volume, naming its image and the transfer that
 * fills it now. Statements follow the idiom of catalog_internal.h. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <string.h>

#define VOLUME_COLUMNS "id, name, kind, location, size, transfer_id, created_ms, group_name"

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
	catalog_copy_text(out->group, sizeof(out->group), stmt, 7);
}

int
catalog_volume_put(struct catalog *catalog, struct catalog_volume *volume)
{
	sqlite3_stmt *stmt = NULL;
	bool owned = false;
	int rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	if (volume->created_ms == 0)
		volume->created_ms = util_now_ms();
	rc = catalog_statement(
		catalog, &stmt,
		"INSERT INTO volumes (name, kind, location, size, transfer_id, created_ms,"
		" group_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
		" ON CONFLICT (name) DO UPDATE SET kind = ?2, location = ?3, size = ?4,"
		" transfer_id = ?5, group_name = CASE ?7 WHEN '' THEN group_name ELSE ?7 END"
		" RETURNING id, created_ms, group_name",
		"tttiiit", volume->name, volume->kind, volume->location, (int64_t)volume->size,
		volume->transfer_id, volume->created_ms, volume->group);
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "volume put");
	if (rc == 0)
		rc = ferry_error_set(FERRY_ERR_INTERNAL, "catalog %s: volume put returned no row",
				     catalog->path);
	if (rc < 0)
		goto out;
	volume->id = sqlite3_column_int64(stmt, 0);
	volume->created_ms = sqlite3_column_int64(stmt, 1);
	catalog_copy_text(volume->group, sizeof(volume->group), stmt, 2);
	rc = catalog_step(catalog, stmt, "volume put");
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_volume_get(struct catalog *catalog, const char *name, struct catalog_volume *out)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT " VOLUME_COLUMNS " FROM volumes WHERE name = ?1", "t", name);
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "volume get");
	if (rc == CATALOG_ROW)
		catalog_volume_from_row(stmt, out);
	else if (rc == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "no volume named '%s'", name);
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}

int
catalog_volume_list(struct catalog *catalog,
		    int (*each)(const struct catalog_volume *volume, void *context), void *context)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_volume volume;
	int rc;

	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT " VOLUME_COLUMNS " FROM volumes ORDER BY name", "");
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "volume list")) == CATALOG_ROW) {
		catalog_volume_from_row(stmt, &volume);
		rc = each(&volume, context);
		if (rc < 0)
			goto out;
	}
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}
