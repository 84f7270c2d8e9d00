/* Protection groups: one schedule, retention and RPO target for volumes that must stay
 * consistent. A group that protects images or VMs is not removed. Statements follow the idiom
 * of catalog_internal.h. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <string.h>

#define GROUP_INSERT                                                                               \
	"INSERT INTO groups (name, interval_s, keep, rpo_s, paused_ms) VALUES (?1, ?2, ?3, ?4, "   \
	"?5)"

int
catalog_group_put(struct catalog *catalog, const struct catalog_group *group)
{
	return catalog_write(catalog, "group put", NULL,
			     GROUP_INSERT " ON CONFLICT (name) DO UPDATE SET interval_s = ?2,"
					  " keep = ?3, rpo_s = ?4, paused_ms = ?5",
			     "tiiii", group->name, group->interval_s, group->keep, group->rpo_s,
			     group->paused_ms);
}

int
catalog_group_create(struct catalog *catalog, const struct catalog_group *group)
{
	int rc = catalog_write(catalog, "group create", NULL, GROUP_INSERT, "tiiii", group->name,
			       group->interval_s, group->keep, group->rpo_s, group->paused_ms);

	if (rc == FERRY_ERR_CONFLICT)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "group %s exists already; change it with ferry group set %s "
				     "[--interval S] [--keep K] [--rpo S]",
				     group->name, group->name);
	return rc;
}

int
catalog_group_remove(struct catalog *catalog, const char *name)
{
	int64_t changes = 0;
	int rc;

	rc = catalog_write(catalog, "group delete", &changes,
			   "DELETE FROM groups WHERE name = ?1 AND NOT EXISTS (SELECT 1"
			   " FROM protections WHERE group_name = ?1) AND NOT EXISTS"
			   " (SELECT 1 FROM vms WHERE group_name = ?1)",
			   "t", name);
	if (rc < 0 || changes > 0)
		return rc;
	if (catalog_group_get(catalog, name, NULL) == 0)
		return ferry_error_set(
			FERRY_ERR_CONFLICT,
			"group %s still has protected images or VMs: ferry unprotect "
			"each image (ferry status lists them) and ferry vm unprotect "
			"its VMs first",
			name);
	return ferry_error_set(FERRY_ERR_NOT_FOUND, "no protection group named '%s'", name);
}

/* Hands each group (the one named name, or all when name is NULL) to each(); *rows counts
 * them. */
static int
catalog_group_select(struct catalog *catalog, const char *name,
		     int (*each)(const struct catalog_group *group, void *context), void *context,
		     int *rows)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_group group;
	int rc;

	*rows = 0;
	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT name, interval_s, keep, rpo_s, paused_ms FROM groups"
			       " WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
			       "z", name);
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "group list")) == CATALOG_ROW) {
		memset(&group, 0, sizeof(group));
		catalog_copy_text(group.name, sizeof(group.name), stmt, 0);
		group.interval_s = sqlite3_column_int64(stmt, 1);
		group.keep = sqlite3_column_int64(stmt, 2);
		group.rpo_s = sqlite3_column_int64(stmt, 3);
		group.paused_ms = sqlite3_column_int64(stmt, 4);
		(*rows)++;
		rc = each(&group, context);
		if (rc < 0)
			goto out;
	}
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
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
	int rows, rc;

	rc = catalog_group_select(catalog, name, catalog_group_copy, out, &rows);
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
	int rows;

	return catalog_group_select(catalog, NULL, each, context, &rows);
}
