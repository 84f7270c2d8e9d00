/* Replica sites a primary pushes to: their URL and the files holding the token and CA. A site
 * that protected images replicate to is not removed. Statements follow the idiom of
 * catalog_internal.h. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <string.h>

int
catalog_site_put(struct catalog *catalog, const struct catalog_site *site)
{
	return catalog_write(catalog, "site put", NULL,
			     "INSERT INTO sites (name, url, token_path, cacert_path)"
			     " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET"
			     " url = ?2, token_path = ?3, cacert_path = ?4",
			     "tttt", site->name, site->url, site->token_path, site->cacert_path);
}

/* Hands each site (the one named name, or all when name is NULL) to each(); *rows counts them. */
static int
catalog_site_select(struct catalog *catalog, const char *name,
		    int (*each)(const struct catalog_site *site, void *context), void *context,
		    int *rows)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_site site;
	int rc;

	*rows = 0;
	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT name, url, token_path, cacert_path FROM sites"
			       " WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
			       "z", name);
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "site list")) == CATALOG_ROW) {
		memset(&site, 0, sizeof(site));
		catalog_copy_text(site.name, sizeof(site.name), stmt, 0);
		catalog_copy_text(site.url, sizeof(site.url), stmt, 1);
		catalog_copy_text(site.token_path, sizeof(site.token_path), stmt, 2);
		catalog_copy_text(site.cacert_path, sizeof(site.cacert_path), stmt, 3);
		(*rows)++;
		rc = each(&site, context);
		if (rc < 0)
			goto out;
	}
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
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
	int rows, rc;

	rc = catalog_site_select(catalog, name, catalog_site_copy, out, &rows);
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
	int rows;

	return catalog_site_select(catalog, NULL, each, context, &rows);
}

int
catalog_site_remove(struct catalog *catalog, const char *name)
{
	int64_t changes = 0;
	int rc;

	rc = catalog_write(catalog, "site remove", &changes,
			   "DELETE FROM sites WHERE name = ?1 AND NOT EXISTS (SELECT 1"
			   " FROM protections WHERE site = ?1)",
			   "t", name);
	if (rc < 0 || changes > 0)
		return rc;
	if (catalog_site_get(catalog, name, NULL) == 0)
		return ferry_error_set(FERRY_ERR_CONFLICT,
				       "site %s still receives protected images: ferry unprotect "
				       "each image that replicates there first (ferry status lists "
				       "them)",
				       name);
	return ferry_error_set(FERRY_ERR_NOT_FOUND, "no replica site named '%s'", name);
}
