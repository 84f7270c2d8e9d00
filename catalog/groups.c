/* Protection groups: one schedule, retention and RPO target for volumes that must stay
 * consistent. A group that protects images or VMs is not removed. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
