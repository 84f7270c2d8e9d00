/* Cutover runs and their ordered steps: created running, finished with a status, reopened
 * to resume, marked interrupted when ferryd starts. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct catalog_run_count_reader {
	int (*each)(const char *kind, const char *status, int64_t count, void *context);
	void *context;
};

static int
catalog_run_count_row(sqlite3_stmt *stmt, void *context)
{
	struct catalog_run_count_reader *reader = context;
	char kind[32], status[32];

	catalog_copy_text(kind, sizeof(kind), stmt, 0);
	catalog_copy_text(status, sizeof(status), stmt, 1);
	return reader->each(kind, status, sqlite3_column_int64(stmt, 2), reader->context);
}

int
catalog_run_counts(struct catalog *catalog,
		   int (*each)(const char *kind, const char *status, int64_t count, void *context),
		   void *context)
{
	struct catalog_run_count_reader reader = {each, context};
	int rows;

	return catalog_read_rows(catalog,
				 "SELECT kind, status, COUNT(*) FROM runs GROUP BY kind, status"
				 " ORDER BY kind, status",
				 NULL, "run counts", catalog_run_count_row, &reader, &rows);
}

int
catalog_run_create(struct catalog *catalog, const char *kind, const char *target,
		   const char *request, int64_t *id)
{
	int rc;

	/* The rowid belongs to the connection, which every thread shares: another thread's insert
	 * between ours and the read would hand out its id. The lock is recursive, so holding it
	 * across both keeps them together. */
	pthread_mutex_lock(&catalog->lock);
	rc = catalog_write_values(catalog,
				  "INSERT INTO runs (kind, target, request, status, started_ms)"
				  " VALUES (?1, ?2, ?3, 'running', ?4)",
				  "run create", false, "ttti", kind, target, request,
				  (int64_t)util_now_ms());
	if (rc == 0)
		*id = sqlite3_last_insert_rowid(catalog->db);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

int
catalog_run_finish(struct catalog *catalog, int64_t id, const char *status, const char *reason,
		   const char *result)
{
	return catalog_write_values(catalog,
				    "UPDATE runs SET status = ?2, reason = ?3, result = ?4,"
				    " ended_ms = ?5 WHERE id = ?1",
				    "run finish", true, "ittti", id, status, reason, result,
				    (int64_t)util_now_ms());
}

int
catalog_run_reopen(struct catalog *catalog, int64_t id)
{
	/* Only from a status a run is resumed from: of two resumes at once, one reopens it. */
	int rc =
		catalog_write_values(catalog,
				     "UPDATE runs SET status = 'running', reason = '', ended_ms = 0"
				     " WHERE id = ?1 AND status IN ('interrupted', 'failed')",
				     "run reopen", true, "i", id);

	if (rc == FERRY_ERR_NOT_FOUND)
		rc = ferry_error_set(
			FERRY_ERR_CONFLICT,
			"run %lld is no longer interrupted or failed: another resume or "
			"rollback took it (ferry run show %lld)",
			(long long)id, (long long)id);
	return rc;
}

int
catalog_run_mark_interrupted(struct catalog *catalog)
{
	int rc = catalog_write_values(catalog,
				      "UPDATE run_steps SET result = 'interrupted', ended_ms = ?1"
				      " WHERE result = 'running'",
				      "run steps interrupted", false, "i", (int64_t)util_now_ms());

	if (rc == 0)
		rc = catalog_write_values(
			catalog,
			"UPDATE runs SET status = 'interrupted', reason = 'ferryd "
			"stopped during the run; ferry run resume or rollback', "
			"ended_ms = ?1 WHERE status = 'running'",
			"runs interrupted", false, "i", (int64_t)util_now_ms());
	return rc;
}

int
catalog_run_step_begin(struct catalog *catalog, int64_t run_id, const char *name, int *seq)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	/* Held across the insert and the read, as in catalog_run_create: the number read back must
	 * be the one this call inserted. */
	pthread_mutex_lock(&catalog->lock);
	rc = catalog_write_values(
		catalog,
		"INSERT INTO run_steps (run_id, seq, name, result, started_ms) VALUES (?1,"
		" (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_steps WHERE run_id = ?1), ?2,"
		" 'running', ?3)",
		"run step begin", false, "iti", run_id, name, (int64_t)util_now_ms());
	if (rc == 0)
		rc = catalog_prepare(catalog, "SELECT MAX(seq) FROM run_steps WHERE run_id = ?1",
				     &stmt);
	if (rc == 0) {
		sqlite3_bind_int64(stmt, 1, run_id);
		*seq = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
	}
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

int
catalog_run_step_end(struct catalog *catalog, int64_t run_id, int seq, const char *result,
		     const char *detail)
{
	return catalog_write_values(catalog,
				    "UPDATE run_steps SET result = ?3, detail = ?4, ended_ms = ?5"
				    " WHERE run_id = ?1 AND seq = ?2",
				    "run step end", true, "iitti", run_id, (int64_t)seq, result,
				    detail, (int64_t)util_now_ms());
}

struct catalog_run_reader {
	int (*each)(const struct catalog_run *run, void *context);
	void *context;
};

static int
catalog_run_row(sqlite3_stmt *stmt, void *context)
{
	struct catalog_run_reader *reader = context;
	struct catalog_run run;

	memset(&run, 0, sizeof(run));
	run.id = sqlite3_column_int64(stmt, 0);
	catalog_copy_text(run.kind, sizeof(run.kind), stmt, 1);
	catalog_copy_text(run.target, sizeof(run.target), stmt, 2);
	run.request = (const char *)sqlite3_column_text(stmt, 3);
	catalog_copy_text(run.status, sizeof(run.status), stmt, 4);
	catalog_copy_text(run.reason, sizeof(run.reason), stmt, 5);
	run.result = (const char *)sqlite3_column_text(stmt, 6);
	run.started_ms = sqlite3_column_int64(stmt, 7);
	run.ended_ms = sqlite3_column_int64(stmt, 8);
	return reader->each(&run, reader->context);
}

int
catalog_run_list(struct catalog *catalog, int64_t id, int limit,
		 int (*each)(const struct catalog_run *run, void *context), void *context)
{
	struct catalog_run_reader reader = {each, context};
	char sql[256], key[32];
	int rows, rc;

	snprintf(key, sizeof(key), "%lld", (long long)id);
	snprintf(sql, sizeof(sql),
		 "SELECT id, kind, target, request, status, reason, result, started_ms, ended_ms"
		 " FROM runs %s ORDER BY id DESC LIMIT %d",
		 id ? "WHERE id = CAST(?1 AS INTEGER)" : "", limit > 0 ? limit : -1);
	rc = catalog_read_rows(catalog, sql, id ? key : NULL, "run list", catalog_run_row, &reader,
			       &rows);
	if (rc == 0 && id && rows == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no run %lld at this site; see ferry runs", (long long)id);
	return rc;
}

struct catalog_step_reader {
	int (*each)(const struct catalog_run_step *step, void *context);
	void *context;
};

static int
catalog_step_row(sqlite3_stmt *stmt, void *context)
{
	struct catalog_step_reader *reader = context;
	struct catalog_run_step step;

	memset(&step, 0, sizeof(step));
	step.run_id = sqlite3_column_int64(stmt, 0);
	step.seq = sqlite3_column_int(stmt, 1);
	catalog_copy_text(step.name, sizeof(step.name), stmt, 2);
	catalog_copy_text(step.result, sizeof(step.result), stmt, 3);
	catalog_copy_text(step.detail, sizeof(step.detail), stmt, 4);
	step.started_ms = sqlite3_column_int64(stmt, 5);
	step.ended_ms = sqlite3_column_int64(stmt, 6);
	return reader->each(&step, reader->context);
}

int
catalog_run_steps(struct catalog *catalog, int64_t run_id,
		  int (*each)(const struct catalog_run_step *step, void *context), void *context)
{
	struct catalog_step_reader reader = {each, context};
	char key[32];
	int rows;

	snprintf(key, sizeof(key), "%lld", (long long)run_id);
	return catalog_read_rows(catalog,
				 "SELECT run_id, seq, name, result, detail, started_ms, ended_ms"
				 " FROM run_steps WHERE run_id = CAST(?1 AS INTEGER) ORDER BY seq",
				 key, "run steps", catalog_step_row, &reader, &rows);
}
