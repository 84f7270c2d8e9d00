/* Protected VMs (a JSON record each, owned by cutover/) and the replica volumes a failover
 * promoted, on which no delta may land. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
