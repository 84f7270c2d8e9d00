/* Cutover runs and their ordered steps: created running, finished with a status, reopened to
 * resume, marked interrupted when ferryd starts. Statements follow the idiom of
 * catalog_internal.h; cutover/ decides, this file records.
 *
 * Statuses of a run (the column runs.status, enum catalog_run_status):
 *
 *   (none)              -> RUNNING                      catalog_run_create()
 *   RUNNING             -> COMPLETED|FAILED|REFUSED|ABORTED
 *                                                       catalog_run_finish(), from
 *                                                       cutover_run_execute()
 *   RUNNING             -> INTERRUPTED                  catalog_run_mark_interrupted(), when
 *                                                       ferryd starts
 *   INTERRUPTED|FAILED  -> RUNNING                      catalog_run_reopen(), to resume it
 *   INTERRUPTED|FAILED  -> ROLLED_BACK                  catalog_run_finish(), by the rollback
 *                                                       run that undid it
 *   any guarded move                                    catalog_run_transition()
 *
 * Results of a step (run_steps.result, enum catalog_step_result):
 *
 *   (none)   -> RUNNING       catalog_run_step_begin()
 *   RUNNING  -> OK|FAILED     catalog_run_step_end()
 *   RUNNING  -> INTERRUPTED   catalog_run_mark_interrupted()
 *
 * Invariants:
 *  1. Of two moves of one run from the same status at once, exactly one changes the row: a
 *     guarded move is one UPDATE ... WHERE id = ? AND status IN (...) (catalog_run_transition,
 *     catalog_run_reopen), and the other gets FERRY_ERR_CONFLICT.
 *  2. A running run has ended_ms 0; any other has its end time (set by each move).
 *  3. Every status and step result written is one of the names of the tables below (asserted).
 *  4. A step's seq is one more than the run's last step's; steps are never renumbered.
 *  5. A refused run changed nothing (cutover/'s promise, recorded here for the reader). */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const char *const run_status_names[CATALOG_RUN_STATUS_COUNT] = {
	[CATALOG_RUN_RUNNING] = "running",	   [CATALOG_RUN_COMPLETED] = "completed",
	[CATALOG_RUN_FAILED] = "failed",	   [CATALOG_RUN_REFUSED] = "refused",
	[CATALOG_RUN_ABORTED] = "aborted",	   [CATALOG_RUN_INTERRUPTED] = "interrupted",
	[CATALOG_RUN_ROLLED_BACK] = "rolled-back",
};

static const char *const step_result_names[] = {
	[CATALOG_STEP_RUNNING] = "running",
	[CATALOG_STEP_OK] = "ok",
	[CATALOG_STEP_FAILED] = "failed",
	[CATALOG_STEP_INTERRUPTED] = "interrupted",
};
#define STEP_RESULTS ((int)(sizeof(step_result_names) / sizeof(step_result_names[0])))

const char *
catalog_run_status_name(enum catalog_run_status status)
{
	assert((int)status >= 0 && (int)status < CATALOG_RUN_STATUS_COUNT);
	return run_status_names[status];
}

int
catalog_run_status_parse(const char *name, enum catalog_run_status *out)
{
	int index = catalog_name_index(run_status_names, CATALOG_RUN_STATUS_COUNT, name);

	if (index < 0)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "'%s' is not a run status (running, completed, failed, "
				       "refused, aborted, interrupted, rolled-back)",
				       name ? name : "");
	*out = (enum catalog_run_status)index;
	return 0;
}

const char *
catalog_step_result_name(enum catalog_step_result result)
{
	assert((int)result >= 0 && (int)result < STEP_RESULTS);
	return step_result_names[result];
}

int
catalog_step_result_parse(const char *name, enum catalog_step_result *out)
{
	int index = catalog_name_index(step_result_names, STEP_RESULTS, name);

	if (index < 0)
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"'%s' is not a step result (running, ok, failed, interrupted)",
			name ? name : "");
	*out = (enum catalog_step_result)index;
	return 0;
}

/* True when name is one of names (invariant 3; for asserts). */
static bool
catalog_run_name_known(const char *const *names, int count, const char *name)
{
	return catalog_name_index(names, count, name) >= 0;
}

int
catalog_run_create(struct catalog *catalog, const char *kind, const char *target,
		   const char *request, int64_t *id)
{
	sqlite3_stmt *stmt = NULL;
	bool owned = false;
	int rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_statement(catalog, &stmt,
			       "INSERT INTO runs (kind, target, request, status, started_ms)"
			       " VALUES (?1, ?2, ?3, 'running', ?4) RETURNING id",
			       "ttti", kind, target, request, util_now_ms());
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "run create");
	if (rc == CATALOG_ROW)
		*id = sqlite3_column_int64(stmt, 0);
	if (rc == CATALOG_ROW)
		rc = catalog_step(catalog, stmt, "run create");
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_run_finish(struct catalog *catalog, int64_t id, const char *status, const char *reason,
		   const char *result)
{
	int64_t changes = 0;
	int rc;

	assert(catalog_run_name_known(run_status_names, CATALOG_RUN_STATUS_COUNT, status));
	rc = catalog_write(catalog, "run finish", &changes,
			   "UPDATE runs SET status = ?2, reason = ?3, result = ?4, ended_ms = ?5"
			   " WHERE id = ?1",
			   "ittti", id, status, reason, result, util_now_ms());
	if (rc == 0 && changes == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no run %lld at this site; see ferry runs", (long long)id);
	return rc;
}

/* "interrupted or failed" for a mask of those two. */
static void
catalog_run_mask_text(unsigned mask, char *out, size_t size)
{
	size_t used = 0;
	int listed = 0, total = 0;

	for (int i = 0; i < CATALOG_RUN_STATUS_COUNT; i++)
		total += (mask & CATALOG_RUN_MASK(i)) != 0;
	out[0] = '\0';
	for (int i = 0; i < CATALOG_RUN_STATUS_COUNT && used < size; i++) {
		if (!(mask & CATALOG_RUN_MASK(i)))
			continue;
		listed++;
		used += (size_t)snprintf(out + used, size - used, "%s%s",
					 listed == 1	   ? ""
					 : listed == total ? " or "
							   : ", ",
					 run_status_names[i]);
	}
}

/* The status run id has now into status (16 bytes); FERRY_ERR_NOT_FOUND when there is none. */
static int
catalog_run_status_get(struct catalog *catalog, int64_t id, char *status)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt, "SELECT status FROM runs WHERE id = ?1", "i", id);
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "run status");
	if (rc == CATALOG_ROW)
		catalog_copy_text(status, 16, stmt, 0);
	else if (rc == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no run %lld at this site; see ferry runs", (long long)id);
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}

int
catalog_run_transition(struct catalog *catalog, int64_t run_id, unsigned from_mask,
		       enum catalog_run_status to, const char *reason)
{
	char sql[512], from[160], status[16] = "";
	size_t used;
	int64_t changes = 0;
	bool owned = false;
	int rc;

	assert((int)to >= 0 && (int)to < CATALOG_RUN_STATUS_COUNT);
	assert(from_mask != 0 && (from_mask >> CATALOG_RUN_STATUS_COUNT) == 0);
	if (from_mask == 0 || (from_mask >> CATALOG_RUN_STATUS_COUNT) != 0)
		return ferry_error_set(FERRY_ERR_INTERNAL, "run %lld: no status to move from (%#x)",
				       (long long)run_id, from_mask);
	/* The names are this file's constants, never input: they may be spelled into the SQL. */
	used = (size_t)snprintf(sql, sizeof(sql),
				"UPDATE runs SET status = ?2, reason = COALESCE(?3, reason),"
				" ended_ms = ?4 WHERE id = ?1 AND status IN (");
	for (int i = 0, first = 1; i < CATALOG_RUN_STATUS_COUNT; i++)
		if (from_mask & CATALOG_RUN_MASK(i)) {
			used += (size_t)snprintf(sql + used, sizeof(sql) - used, "%s'%s'",
						 first ? "" : ", ", run_status_names[i]);
			first = 0;
		}
	snprintf(sql + used, sizeof(sql) - used, ")");
	catalog_run_mask_text(from_mask, from, sizeof(from));

	/* Invariant 1: the UPDATE decides; the status read after it only explains a refusal. */
	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_write(catalog, "run transition", &changes, sql, "itzi", run_id,
			   run_status_names[to], reason,
			   to == CATALOG_RUN_RUNNING ? (int64_t)0 : util_now_ms());
	if (rc == 0 && changes == 0) {
		rc = catalog_run_status_get(catalog, run_id, status);
		if (rc == 0)
			rc = ferry_error_set(FERRY_ERR_CONFLICT,
					     "run %lld is %s, not %s, so it cannot become %s "
					     "(another request moved it first?); see ferry run "
					     "show %lld",
					     (long long)run_id, status, from, run_status_names[to],
					     (long long)run_id);
	}
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_run_reopen(struct catalog *catalog, int64_t id)
{
	/* Only from a status a run is resumed from: of two resumes at once, one reopens it. */
	int rc = catalog_run_transition(catalog, id,
					CATALOG_RUN_MASK(CATALOG_RUN_INTERRUPTED) |
						CATALOG_RUN_MASK(CATALOG_RUN_FAILED),
					CATALOG_RUN_RUNNING, "");

	if (rc == FERRY_ERR_CONFLICT || rc == FERRY_ERR_NOT_FOUND)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "run %lld is no longer interrupted or failed: another resume "
				     "or rollback took it (ferry run show %lld)",
				     (long long)id, (long long)id);
	return rc;
}

int
catalog_run_mark_interrupted(struct catalog *catalog)
{
	bool owned = false;
	int64_t now = util_now_ms();
	int rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_write(catalog, "run steps interrupted", NULL,
			   "UPDATE run_steps SET result = 'interrupted', ended_ms = ?1"
			   " WHERE result = 'running'",
			   "i", now);
	if (rc == 0)
		rc = catalog_write(
			catalog, "runs interrupted", NULL,
			"UPDATE runs SET status = 'interrupted', reason = 'ferryd stopped"
			" during the run; ferry run resume or rollback', ended_ms = ?1"
			" WHERE status = 'running'",
			"i", now);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_run_step_begin(struct catalog *catalog, int64_t run_id, const char *name, int *seq)
{
	sqlite3_stmt *stmt = NULL;
	bool owned = false;
	int rc;

	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	/* Invariant 4: the number is made and read back by one statement. */
	rc = catalog_statement(
		catalog, &stmt,
		"INSERT INTO run_steps (run_id, seq, name, result, started_ms) VALUES (?1,"
		" (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_steps WHERE run_id = ?1), ?2,"
		" 'running', ?3) RETURNING seq",
		"iti", run_id, name, util_now_ms());
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "run step begin");
	if (rc == CATALOG_ROW)
		*seq = sqlite3_column_int(stmt, 0);
	if (rc == CATALOG_ROW)
		rc = catalog_step(catalog, stmt, "run step begin");
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_run_step_end(struct catalog *catalog, int64_t run_id, int seq, const char *result,
		     const char *detail)
{
	int64_t changes = 0;
	int rc;

	assert(catalog_run_name_known(step_result_names, STEP_RESULTS, result));
	rc = catalog_write(catalog, "run step end", &changes,
			   "UPDATE run_steps SET result = ?3, detail = ?4, ended_ms = ?5"
			   " WHERE run_id = ?1 AND seq = ?2",
			   "iitti", run_id, (int64_t)seq, result, detail, util_now_ms());
	if (rc == 0 && changes == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "run %lld has no step %d",
				     (long long)run_id, seq);
	return rc;
}

int
catalog_run_counts(struct catalog *catalog,
		   int (*each)(const char *kind, const char *status, int64_t count, void *context),
		   void *context)
{
	sqlite3_stmt *stmt = NULL;
	char kind[32], status[32];
	int rc;

	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT kind, status, COUNT(*) FROM runs GROUP BY kind, status"
			       " ORDER BY kind, status",
			       "");
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "run counts")) == CATALOG_ROW) {
		catalog_copy_text(kind, sizeof(kind), stmt, 0);
		catalog_copy_text(status, sizeof(status), stmt, 1);
		rc = each(kind, status, sqlite3_column_int64(stmt, 2), context);
		if (rc < 0)
			goto out;
	}
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}

int
catalog_run_list(struct catalog *catalog, int64_t id, int limit,
		 int (*each)(const struct catalog_run *run, void *context), void *context)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_run run;
	int rows = 0, rc;

	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT id, kind, target, request, status, reason, result,"
			       " started_ms, ended_ms FROM runs WHERE ?1 = 0 OR id = ?1"
			       " ORDER BY id DESC LIMIT ?2",
			       "ii", id, (int64_t)(limit > 0 ? limit : -1));
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "run list")) == CATALOG_ROW) {
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
		rows++;
		rc = each(&run, context);
		if (rc < 0)
			goto out;
	}
	if (rc == 0 && id && rows == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no run %lld at this site; see ferry runs", (long long)id);
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}

int
catalog_run_steps(struct catalog *catalog, int64_t run_id,
		  int (*each)(const struct catalog_run_step *step, void *context), void *context)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_run_step step;
	int rc;

	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT run_id, seq, name, result, detail, started_ms, ended_ms"
			       " FROM run_steps WHERE run_id = ?1 ORDER BY seq",
			       "i", run_id);
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "run steps")) == CATALOG_ROW) {
		memset(&step, 0, sizeof(step));
		step.run_id = sqlite3_column_int64(stmt, 0);
		step.seq = sqlite3_column_int(stmt, 1);
		catalog_copy_text(step.name, sizeof(step.name), stmt, 2);
		catalog_copy_text(step.result, sizeof(step.result), stmt, 3);
		catalog_copy_text(step.detail, sizeof(step.detail), stmt, 4);
		step.started_ms = sqlite3_column_int64(stmt, 5);
		step.ended_ms = sqlite3_column_int64(stmt, 6);
		rc = each(&step, context);
		if (rc < 0)
			goto out;
	}
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}
