/* Protected VMs (a JSON record each, owned by cutover/, which parses and writes it) and the
 * replica volumes a failover promoted, on which no delta may land. Statements follow the idiom
 * of catalog_internal.h. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
catalog_vm_put(struct catalog *catalog, const char *name, const char *role, const char *group,
	       const char *record)
{
	return catalog_write(catalog, "vm put", NULL,
			     "INSERT INTO vms (name, role, group_name, record, updated_ms)"
			     " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET"
			     " role = ?2, group_name = ?3, record = ?4, updated_ms = ?5",
			     "tttti", name, role, group, record, util_now_ms());
}

/* Hands each VM (named name, else of group, else all) to each(); *rows counts them. */
static int
catalog_vm_select(struct catalog *catalog, const char *name, const char *group,
		  int (*each)(const char *name, const char *role, const char *group,
			      const char *record, void *context),
		  void *context, int *rows)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	*rows = 0;
	catalog_read_begin(catalog);
	rc = catalog_statement(
		catalog, &stmt,
		"SELECT name, role, group_name, record FROM vms"
		" WHERE (?1 IS NULL OR name = ?1) AND (?2 IS NULL OR group_name = ?2)"
		" ORDER BY name",
		"zz", name, group);
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "vm list")) == CATALOG_ROW) {
		(*rows)++;
		rc = each((const char *)sqlite3_column_text(stmt, 0),
			  (const char *)sqlite3_column_text(stmt, 1),
			  (const char *)sqlite3_column_text(stmt, 2),
			  (const char *)sqlite3_column_text(stmt, 3), context);
		if (rc < 0)
			goto out;
	}
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
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

	(void)group;
	copy->record = strdup(record);
	if (copy->record == NULL)
		return ferry_error_set(FERRY_ERR_NO_MEMORY, "VM %s: no memory for its record",
				       name);
	if (copy->role)
		snprintf(copy->role, 16, "%s", role);
	return 0;
}

int
catalog_vm_get(struct catalog *catalog, const char *name, char **record, char *role)
{
	struct catalog_vm_copy copy = {NULL, role};
	int rows, rc;

	rc = catalog_vm_select(catalog, name, NULL, catalog_vm_copy, &copy, &rows);
	if (rc == 0 && rows == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no protected VM named '%s' at this site; register it with "
				     "ferry vm protect",
				     name);
	if (rc < 0)
		goto out;
	*record = copy.record;
	copy.record = NULL;
out:
	free(copy.record);
	return rc;
}

int
catalog_vm_remove(struct catalog *catalog, const char *name)
{
	int64_t changes = 0;
	int rc = catalog_write(catalog, "vm remove", &changes, "DELETE FROM vms WHERE name = ?1",
			       "t", name);

	if (rc == 0 && changes == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "no protected VM named '%s' at this site",
				     name);
	return rc;
}

int
catalog_vm_list(struct catalog *catalog, const char *group,
		int (*each)(const char *name, const char *role, const char *group,
			    const char *record, void *context),
		void *context)
{
	int rows;

	return catalog_vm_select(catalog, NULL, group, each, context, &rows);
}

/* ---- promoted replica volumes ---- */

int
catalog_promoted_put(struct catalog *catalog, const char *volume, int64_t run_id)
{
	return catalog_write(catalog, "promoted put", NULL,
			     "INSERT OR REPLACE INTO promoted (volume, run_id, time_ms)"
			     " VALUES (?1, ?2, ?3)",
			     "tii", volume, run_id, util_now_ms());
}

int
catalog_promoted_get(struct catalog *catalog, const char *volume, int64_t *run_id)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	*run_id = 0;
	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt, "SELECT run_id FROM promoted WHERE volume = ?1", "t",
			       volume);
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "promoted get");
	if (rc == CATALOG_ROW)
		*run_id = sqlite3_column_int64(stmt, 0);
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}

int
catalog_promoted_remove(struct catalog *catalog, const char *volume)
{
	return catalog_write(catalog, "promoted remove", NULL,
			     "DELETE FROM promoted WHERE volume = ?1", "t", volume);
}

int
catalog_promoted_set_point(struct catalog *catalog, const char *volume, int64_t point)
{
	int64_t changes = 0;
	int rc = catalog_write(catalog, "promoted point", &changes,
			       "UPDATE promoted SET point = ?2 WHERE volume = ?1", "ti", volume,
			       point);

	if (rc == 0 && changes == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "volume %s is not promoted here", volume);
	return rc;
}

int
catalog_promoted_point(struct catalog *catalog, const char *volume, int64_t *point)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	*point = 0;
	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt, "SELECT point FROM promoted WHERE volume = ?1", "t",
			       volume);
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "promoted point");
	if (rc == CATALOG_ROW)
		*point = sqlite3_column_int64(stmt, 0);
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}
