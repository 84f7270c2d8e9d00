/* Replica sites a primary pushes to: their URL and the files holding the token and CA. A site
 * that protected images replicate to is not removed. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
catalog_name_bind(sqlite3_stmt *stmt, const void *row)
{
	sqlite3_bind_text(stmt, 1, row, -1, SQLITE_STATIC);
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
