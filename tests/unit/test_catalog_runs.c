/* Unit tests for the catalog's cutover runs: the status, step result names and their parsers,
 * finish, reopen and mark-interrupted, and the guarded transition, raced by threads on one
 * shared catalog and on two connections to one file: of two moves from the same status,
 * exactly one succeeds. Each test gets a fresh mkdtemp() folder with a real catalog.db. */
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "catalog/catalog.h"
#include "common/error.h"

#include "tests/unit/catalog_fixture.h"

static int
copy_run(const struct catalog_run *run, void *context)
{
	struct catalog_run *out = context;

	*out = *run;
	out->request = out->result = NULL; /* valid during the callback only */
	return 0;
}

static struct catalog_run
get_run(struct catalog *catalog, int64_t id)
{
	struct catalog_run run;

	memset(&run, 0, sizeof(run));
	assert_int_equal(catalog_run_list(catalog, id, 1, copy_run, &run), 0);
	return run;
}

static int64_t
make_run(struct catalog *catalog, const char *status)
{
	int64_t id = 0;

	assert_int_equal(
		catalog_run_create(catalog, "migrate-cold", "vm1", "{\"vm\":\"vm1\"}", &id), 0);
	assert_true(id > 0);
	if (strcmp(status, "running") != 0)
		assert_int_equal(catalog_run_finish(catalog, id, status, "it broke", "{}"), 0);
	return id;
}

#define RESUMABLE (CATALOG_RUN_MASK(CATALOG_RUN_INTERRUPTED) | CATALOG_RUN_MASK(CATALOG_RUN_FAILED))

/* ---- names ---- */

static void
test_run_status_names(void **state)
{
	static const char *const written[] = {"running", "completed",	"failed",     "refused",
					      "aborted", "interrupted", "rolled-back"};
	enum catalog_run_status status;
	enum catalog_step_result result;

	(void)state;
	/* every status cutover/ writes today parses, and back to the same name */
	for (size_t i = 0; i < sizeof(written) / sizeof(written[0]); i++) {
		assert_int_equal(catalog_run_status_parse(written[i], &status), 0);
		assert_string_equal(catalog_run_status_name(status), written[i]);
	}
	assert_int_equal(CATALOG_RUN_STATUS_COUNT, sizeof(written) / sizeof(written[0]));
	assert_string_equal(catalog_run_status_name(CATALOG_RUN_ROLLED_BACK), "rolled-back");
	ferry_error_clear();
	assert_int_equal(catalog_run_status_parse("done", &status), FERRY_ERR_INVALID);
	assert_non_null(strstr(ferry_error_message(), "done"));
	assert_int_equal(catalog_run_status_parse(NULL, &status), FERRY_ERR_INVALID);

	assert_int_equal(catalog_step_result_parse("ok", &result), 0);
	assert_int_equal(result, CATALOG_STEP_OK);
	assert_int_equal(catalog_step_result_parse("interrupted", &result), 0);
	assert_int_equal(result, CATALOG_STEP_INTERRUPTED);
	assert_string_equal(catalog_step_result_name(CATALOG_STEP_FAILED), "failed");
	assert_int_equal(catalog_step_result_parse("skipped", &result), FERRY_ERR_INVALID);
}

/* ---- runs and steps ---- */

static void
test_run_finish_and_steps(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_run run;
	int64_t id = make_run(fixture->catalog, "running");
	int seq1 = 0, seq2 = 0;

	run = get_run(fixture->catalog, id);
	assert_string_equal(run.status, "running");
	assert_int_equal(run.ended_ms, 0);
	assert_string_equal(run.kind, "migrate-cold");

	assert_int_equal(catalog_run_step_begin(fixture->catalog, id, "stop vm1", &seq1), 0);
	assert_int_equal(catalog_run_step_begin(fixture->catalog, id, "copy vda", &seq2), 0);
	assert_int_equal(seq1, 1);
	assert_int_equal(seq2, 2);
	assert_int_equal(catalog_run_step_end(fixture->catalog, id, seq1, "ok", "stopped"), 0);
	ferry_error_clear();
	assert_int_equal(catalog_run_step_end(fixture->catalog, id, 9, "ok", ""),
			 FERRY_ERR_NOT_FOUND);
	assert_non_null(strstr(ferry_error_message(), "step 9"));

	assert_int_equal(catalog_run_finish(fixture->catalog, id, "completed", "", "{\"a\":1}"), 0);
	run = get_run(fixture->catalog, id);
	assert_string_equal(run.status, "completed");
	assert_true(run.ended_ms >= run.started_ms);
	assert_true(run.ended_ms > 0);

	ferry_error_clear();
	assert_int_equal(catalog_run_finish(fixture->catalog, id + 100, "failed", "", "{}"),
			 FERRY_ERR_NOT_FOUND);
	assert_int_equal(catalog_run_list(fixture->catalog, id + 100, 1, copy_run, &run),
			 FERRY_ERR_NOT_FOUND);
}

struct step_results {
	char results[4][16];
	int count;
};

static int
collect_step(const struct catalog_run_step *step, void *context)
{
	struct step_results *steps = context;

	if (steps->count >= 4)
		return FERRY_ERR_INTERNAL;
	snprintf(steps->results[steps->count++], sizeof(steps->results[0]), "%s", step->result);
	return 0;
}

static void
test_run_mark_interrupted(void **state)
{
	struct fixture *fixture = *state;
	int64_t running = make_run(fixture->catalog, "running");
	int64_t completed = make_run(fixture->catalog, "completed");
	struct step_results steps = {.count = 0};
	struct catalog_run run;
	int seq = 0;

	assert_int_equal(catalog_run_step_begin(fixture->catalog, running, "copy", &seq), 0);
	assert_int_equal(catalog_run_mark_interrupted(fixture->catalog), 0);
	run = get_run(fixture->catalog, running);
	assert_string_equal(run.status, "interrupted");
	assert_non_null(strstr(run.reason, "ferry run resume"));
	assert_true(run.ended_ms > 0);
	run = get_run(fixture->catalog, completed);
	assert_string_equal(run.status, "completed");
	assert_int_equal(catalog_run_steps(fixture->catalog, running, collect_step, &steps), 0);
	assert_int_equal(steps.count, 1);
	assert_string_equal(steps.results[0], "interrupted");
}

/* ---- the guarded transition ---- */

static void
test_run_transition_guards(void **state)
{
	struct fixture *fixture = *state;
	int64_t failed = make_run(fixture->catalog, "failed");
	int64_t completed = make_run(fixture->catalog, "completed");
	struct catalog_run run;

	/* from a status in the mask: moves, clears ended_ms and (reason "") the reason */
	assert_int_equal(catalog_run_transition(fixture->catalog, failed, RESUMABLE,
						CATALOG_RUN_RUNNING, ""),
			 0);
	run = get_run(fixture->catalog, failed);
	assert_string_equal(run.status, "running");
	assert_int_equal(run.ended_ms, 0);
	assert_string_equal(run.reason, "");

	/* from a status not in the mask: refused, the row unchanged, the message names both */
	ferry_error_clear();
	assert_int_equal(catalog_run_transition(fixture->catalog, completed, RESUMABLE,
						CATALOG_RUN_RUNNING, ""),
			 FERRY_ERR_CONFLICT);
	assert_non_null(strstr(ferry_error_message(), "is completed"));
	assert_non_null(strstr(ferry_error_message(), "not failed or interrupted"));
	run = get_run(fixture->catalog, completed);
	assert_string_equal(run.status, "completed");

	/* reason NULL keeps the stored one; a move out of running sets ended_ms */
	assert_int_equal(catalog_run_transition(fixture->catalog, failed,
						CATALOG_RUN_MASK(CATALOG_RUN_RUNNING),
						CATALOG_RUN_ABORTED, "operator abort"),
			 0);
	assert_int_equal(catalog_run_transition(fixture->catalog, failed,
						CATALOG_RUN_MASK(CATALOG_RUN_ABORTED),
						CATALOG_RUN_ROLLED_BACK, NULL),
			 0);
	run = get_run(fixture->catalog, failed);
	assert_string_equal(run.status, "rolled-back");
	assert_string_equal(run.reason, "operator abort");
	assert_true(run.ended_ms > 0);

	ferry_error_clear();
	assert_int_equal(
		catalog_run_transition(fixture->catalog, 999, RESUMABLE, CATALOG_RUN_RUNNING, ""),
		FERRY_ERR_NOT_FOUND);
	assert_non_null(strstr(ferry_error_message(), "999"));
}

static void
test_run_reopen_keeps_its_behaviour(void **state)
{
	struct fixture *fixture = *state;
	int64_t interrupted = make_run(fixture->catalog, "interrupted");
	int64_t refused = make_run(fixture->catalog, "refused");

	assert_int_equal(catalog_run_reopen(fixture->catalog, interrupted), 0);
	assert_string_equal(get_run(fixture->catalog, interrupted).status, "running");
	/* a second reopen finds it running: a conflict, with the message resume shows */
	ferry_error_clear();
	assert_int_equal(catalog_run_reopen(fixture->catalog, interrupted), FERRY_ERR_CONFLICT);
	assert_non_null(strstr(ferry_error_message(), "no longer interrupted or failed"));
	assert_int_equal(catalog_run_reopen(fixture->catalog, refused), FERRY_ERR_CONFLICT);
	assert_string_equal(get_run(fixture->catalog, refused).status, "refused");
	/* as before, a run that does not exist is a conflict too */
	assert_int_equal(catalog_run_reopen(fixture->catalog, 12345), FERRY_ERR_CONFLICT);
}

struct racer {
	struct catalog *catalog;
	int64_t run_id;
	enum catalog_run_status to;
	pthread_barrier_t *start;
	int rc;
	char message[1024];
};

static void *
race(void *context)
{
	struct racer *racer = context;

	pthread_barrier_wait(racer->start);
	racer->rc =
		catalog_run_transition(racer->catalog, racer->run_id, RESUMABLE, racer->to, NULL);
	snprintf(racer->message, sizeof(racer->message), "%s", ferry_error_message());
	return NULL;
}

/* Two moves of one run from the same status at once, as a resume and a rollback: one wins. */
static void
race_once(struct catalog *first, struct catalog *second, int64_t run_id)
{
	pthread_barrier_t start;
	struct racer racers[2] = {
		{first, run_id, CATALOG_RUN_RUNNING, &start, 1, ""},
		{second, run_id, CATALOG_RUN_ROLLED_BACK, &start, 1, ""},
	};
	pthread_t threads[2];
	struct catalog_run run;
	int winner;

	assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	pthread_barrier_destroy(&start);

	assert_true((racers[0].rc == 0) != (racers[1].rc == 0));
	winner = racers[0].rc == 0 ? 0 : 1;
	assert_int_equal(racers[1 - winner].rc, FERRY_ERR_CONFLICT);
	/* the loser is told what the run became */
	assert_non_null(
		strstr(racers[1 - winner].message, catalog_run_status_name(racers[winner].to)));
	run = get_run(first, run_id);
	assert_string_equal(run.status, catalog_run_status_name(racers[winner].to));
}

static void
test_run_transition_race_shared_catalog(void **state)
{
	struct fixture *fixture = *state;

	for (int i = 0; i < 20; i++)
		race_once(fixture->catalog, fixture->catalog,
			  make_run(fixture->catalog, i % 2 ? "failed" : "interrupted"));
}

static void
test_run_transition_race_two_connections(void **state)
{
	struct fixture *fixture = *state;
	struct catalog *other = NULL;

	/* two processes on one catalog file: the file's write lock decides, not our mutex */
	assert_int_equal(catalog_open(fixture->path, CATALOG_SYNC_NORMAL, &other), 0);
	for (int i = 0; i < 20; i++)
		race_once(fixture->catalog, other,
			  make_run(fixture->catalog, i % 2 ? "failed" : "interrupted"));
	catalog_close(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_run_status_names, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_run_finish_and_steps, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_run_mark_interrupted, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_run_transition_guards, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_run_reopen_keeps_its_behaviour, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_run_transition_race_shared_catalog,
						setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_run_transition_race_two_connections,
						setup_catalog, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
