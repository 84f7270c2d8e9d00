/* Unit tests for a group's predicted RPO (replicator/prediction.c): rates over the window of
 * cycles, where the lag settles or how it grows, the cycle in flight, the at-risk verdict and
 * its reason, and the window's ring. Pure numbers, no catalog and no clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "replicator/repl.h"

#define MIB (1024.0 * 1024.0)
#define NOW ((int64_t)1800000000000) /* ms since the epoch */

/* The cycle in flight began seconds before NOW, with a period of period_s. */
static void
in_flight(struct repl_cycle_window *window, double period_s, double seconds)
{
	window->inflight_started_ms = NOW - (int64_t)(seconds * 1000);
	window->inflight_period_ms = (int64_t)(period_s * 1000);
}

/* A window of count cycles alike. */
static struct repl_cycle_window
window_of(int count, double period_s, double ship_s, double changed, double sent)
{
	struct repl_cycle_window window;

	memset(&window, 0, sizeof(window));
	for (int i = 0; i < count; i++)
		repl_cycle_window_add(
			&window,
			&(struct repl_cycle){period_s, ship_s, (uint64_t)changed, (uint64_t)sent});
	return window;
}

static bool
near(double a, double b)
{
	return a > b - 1e-6 * (b > 1 ? b : 1) && a < b + 1e-6 * (b > 1 ? b : 1);
}

/* Invariant 1: a fresh daemon (no cycle, one cycle) knows nothing and is never at risk. */
static void
test_prediction_unknown(void **state)
{
	struct repl_cycle_window window = window_of(1, 2, 60, 64 * MIB, 64 * MIB);
	struct repl_prediction prediction;

	(void)state;
	repl_prediction_compute(&window, NOW, 2, 8, &prediction);
	assert_false(prediction.known);
	assert_false(prediction.at_risk);
	assert_int_equal(prediction.cycles, 0);
	window.count = 0;
	in_flight(&window, 2, 100);
	repl_prediction_compute(&window, NOW, 2, 8, &prediction);
	assert_false(prediction.known);
	assert_false(prediction.at_risk);
}

/* An idle group: a small cost per cycle, the lag settles at interval + one cycle's shipping. */
static void
test_prediction_settles(void **state)
{
	struct repl_cycle_window window = window_of(5, 2, 0.3, 4 * MIB, 0.125 * MIB);
	struct repl_prediction prediction;

	(void)state;
	repl_prediction_compute(&window, NOW, 2, 8, &prediction);
	assert_true(prediction.known);
	assert_int_equal(prediction.cycles, 5);
	assert_true(near(prediction.change_rate, 2 * MIB));
	assert_true(near(prediction.ship_rate, 0.125 * MIB / 0.3));
	assert_true(near(prediction.seconds_per_second, 0.15));
	assert_false(prediction.grows);
	assert_true(near(prediction.predicted_lag_s, 2.3));
	assert_false(prediction.at_risk);
	assert_non_null(strstr(prediction.reason, "within the RPO target of 8 s"));
}

/* Like with like: the change rate in changed bytes, the ship rate on the wire; 4 MiB changed
 * per 2 s ships as 1 MiB at 512 KiB/s, 2 s: one second of shipping per second of change. */
static void
test_prediction_compares_like_with_like(void **state)
{
	struct repl_cycle_window window = window_of(4, 2, 2, 4 * MIB, 1 * MIB);
	struct repl_prediction prediction;

	(void)state;
	repl_prediction_compute(&window, NOW, 2, 8, &prediction);
	assert_true(near(prediction.change_rate, 2 * MIB));
	assert_true(near(prediction.ship_rate, 0.5 * MIB));
	assert_true(near(prediction.seconds_per_second, 1.0));
	assert_false(prediction.grows);
	assert_true(near(prediction.predicted_lag_s, 4.0));
	assert_false(prediction.at_risk);
	assert_non_null(strstr(prediction.reason, "2.0 MiB/s"));
	assert_non_null(strstr(prediction.reason, "512"));
}

/* Change faster than the link: the backlog grows by u per cycle, predicted HORIZON cycles out. */
static void
test_prediction_grows(void **state)
{
	struct repl_cycle_window window = window_of(3, 2, 4, 8 * MIB, 2 * MIB);
	struct repl_prediction prediction;

	(void)state;
	repl_prediction_compute(&window, NOW, 2, 8, &prediction);
	assert_true(near(prediction.seconds_per_second, 2.0));
	assert_true(prediction.grows);
	/* (1 + u) * P * u^3 = 3 * 2 * 8 */
	assert_true(near(prediction.predicted_lag_s, 48.0));
	assert_true(prediction.at_risk);
	assert_non_null(strstr(prediction.reason, "change rate 4.0 MiB/s"));
	assert_non_null(strstr(prediction.reason, "ship rate of 512"));
	assert_non_null(strstr(prediction.reason, "the backlog grows"));
	assert_non_null(strstr(prediction.reason, "above the RPO target of 8 s"));
}

/* No growth, but an interval long against its target: settles above it, at risk all the same. */
static void
test_prediction_settles_above_target(void **state)
{
	struct repl_cycle_window window = window_of(6, 10, 5, 10 * MIB, 10 * MIB);
	struct repl_prediction prediction;

	(void)state;
	repl_prediction_compute(&window, NOW, 10, 12, &prediction);
	assert_false(prediction.grows);
	assert_true(near(prediction.predicted_lag_s, 15.0));
	assert_true(prediction.at_risk);
	assert_non_null(strstr(prediction.reason, "settle at 15 s"));
	repl_prediction_compute(&window, NOW, 10, 15, &prediction);
	assert_false(prediction.at_risk); /* invariant 2: above, not at */
}

/* The cycle in flight is no evidence of a rate (its bytes are not known yet, and a slow call
 * looks the same): it only delays the next cycle, so the lag settles later. */
static void
test_prediction_inflight(void **state)
{
	struct repl_cycle_window window = window_of(5, 2, 0.3, 1 * MIB, 0.125 * MIB);
	struct repl_prediction prediction;

	(void)state;
	in_flight(&window, 2, 0.5);
	repl_prediction_compute(&window, NOW, 2, 8, &prediction);
	assert_true(near(prediction.seconds_per_second, 0.15));
	assert_true(near(prediction.predicted_lag_s, 2.3));
	in_flight(&window, 2, 5);
	repl_prediction_compute(&window, NOW, 2, 8, &prediction);
	assert_true(near(prediction.seconds_per_second, 0.15));
	assert_false(prediction.grows);
	assert_true(near(prediction.predicted_lag_s, 1.15 * 5));
	assert_false(prediction.at_risk);
	/* A cycle stuck for a minute: the lag is going there whatever the rates. */
	in_flight(&window, 2, 60);
	repl_prediction_compute(&window, NOW, 2, 30, &prediction);
	assert_true(near(prediction.predicted_lag_s, 1.15 * 60));
	assert_true(prediction.at_risk);
}

/* A cycle slow for a fixed cost (a slow snapshot, a retried call) with little to send is no
 * backlog; the same cycle with its seconds spent on bytes is one. */
static void
test_prediction_fixed_cost(void **state)
{
	struct repl_cycle_window window = window_of(5, 1, 0.3, 64 * 1024, 10000);
	struct repl_prediction prediction;

	(void)state;
	repl_cycle_window_add(&window, &(struct repl_cycle){1, 2.6, 64 * 1024, 10000});
	repl_prediction_compute(&window, NOW, 1, 62, &prediction);
	assert_true(near(prediction.seconds_per_second, 4.1 / 6));
	assert_false(prediction.grows);
	/* settles at the newest cycle's 2.6 s of shipping, plus u of it */
	assert_true(near(prediction.predicted_lag_s, (1 + 4.1 / 6) * 2.6));
	assert_false(prediction.at_risk);
	window = window_of(5, 1, 0.3, 64 * 1024, 10000);
	repl_cycle_window_add(&window, &(struct repl_cycle){1, 2.6, 4 * MIB, 300000});
	repl_prediction_compute(&window, NOW, 1, 62, &prediction);
	assert_true(near(prediction.seconds_per_second, 300000 * 4.1 / 350000));
	assert_true(prediction.grows);
	assert_true(prediction.at_risk);
}

/* A quiet window does not hide the newest cycle, which outgrew the link. */
static void
test_prediction_newest_cycle(void **state)
{
	struct repl_cycle_window window = window_of(5, 2, 0.3, 1 * MIB, 0.125 * MIB);
	struct repl_prediction prediction;

	(void)state;
	repl_cycle_window_add(&window, &(struct repl_cycle){2, 6, 8 * MIB, 3 * MIB});
	repl_prediction_compute(&window, NOW, 2, 8, &prediction);
	assert_int_equal(prediction.cycles, REPL_PREDICTION_CYCLES);
	/* its 3 MiB at the window's 3.625 MiB per 7.5 s, over its 2 s */
	assert_true(near(prediction.seconds_per_second, 3.0 * 7.5 / 3.625 / 2));
	assert_true(prediction.grows);
	assert_true(prediction.at_risk);
	assert_non_null(strstr(prediction.reason, "(the newest cycle)"));
	/* The rates stay those of the window. */
	assert_true(near(prediction.change_rate, 13 * MIB / 12.0));
}

/* Points asked for early (a cutover's catch-up, ferry group sync) cost their fixed cost over a
 * short period: that is no backlog; their cost counts over an interval. */
static void
test_prediction_asked_points(void **state)
{
	struct repl_cycle_window window = window_of(6, 0.4, 0.3, 1 * MIB, 0.125 * MIB);
	struct repl_prediction prediction;

	(void)state;
	in_flight(&window, 0.2, 0.5);
	repl_prediction_compute(&window, NOW, 2, 8, &prediction);
	assert_true(near(prediction.change_rate, 2.5 * MIB));
	assert_true(near(prediction.seconds_per_second, 0.15));
	assert_true(near(prediction.predicted_lag_s, 2.3));
	assert_false(prediction.grows);
	assert_false(prediction.at_risk);
}

/* A link gone for hours gives a finite number (JSON has no infinity). */
static void
test_prediction_capped(void **state)
{
	struct repl_cycle_window window = window_of(3, 2, 2000, 1 * MIB, 1 * MIB);
	struct repl_prediction prediction;

	(void)state;
	repl_prediction_compute(&window, NOW, 2, 8, &prediction);
	assert_true(prediction.at_risk);
	assert_true(near(prediction.predicted_lag_s, 24 * 3600.0));
}

/* Nothing changed, nothing sent: the cycle's fixed cost alone; no division by zero. */
static void
test_prediction_nothing_changed(void **state)
{
	struct repl_cycle_window window = window_of(3, 2, 0.2, 0, 0);
	struct repl_prediction prediction;

	(void)state;
	repl_prediction_compute(&window, NOW, 2, 8, &prediction);
	assert_true(prediction.known);
	assert_true(near(prediction.change_rate, 0));
	assert_true(near(prediction.ship_rate, 0));
	assert_true(near(prediction.predicted_lag_s, 2.2));
	assert_false(prediction.at_risk);
}

/* The window keeps the newest REPL_PREDICTION_CYCLES, oldest first. */
static void
test_cycle_window_ring(void **state)
{
	struct repl_cycle_window window;

	(void)state;
	memset(&window, 0, sizeof(window));
	for (int i = 1; i <= REPL_PREDICTION_CYCLES + 3; i++)
		repl_cycle_window_add(&window, &(struct repl_cycle){(double)i, 1, 0, 0});
	assert_int_equal(window.count, REPL_PREDICTION_CYCLES);
	assert_true(near(window.cycles[0].period_s, 4));
	assert_true(near(window.cycles[REPL_PREDICTION_CYCLES - 1].period_s,
			 REPL_PREDICTION_CYCLES + 3));
}

/* The window's moves: a cycle begun, its members' bytes, its end; a failed or unscheduled one
 * (a first copy) does not join, and nothing is in flight afterwards. */
static void
test_cycle_window_moves(void **state)
{
	struct repl_cycle_window window;

	(void)state;
	memset(&window, 0, sizeof(window));
	repl_cycle_window_begin(&window, NOW, 2500);
	repl_cycle_window_member(&window, 1000, 300);
	repl_cycle_window_member(&window, 500, 200);
	repl_cycle_window_end(&window, NOW + 1500, true);
	assert_int_equal(window.count, 1);
	assert_true(near(window.cycles[0].period_s, 2.5));
	assert_true(near(window.cycles[0].ship_s, 1.5));
	assert_int_equal(window.cycles[0].bytes_changed, 1500);
	assert_int_equal(window.cycles[0].bytes_sent, 500);
	assert_int_equal(window.inflight_started_ms, 0);
	repl_cycle_window_begin(&window, NOW, 2000);
	repl_cycle_window_member(&window, 1000, 300);
	repl_cycle_window_end(&window, NOW + 1000, false); /* a member failed */
	repl_cycle_window_begin(&window, NOW, 0);
	repl_cycle_window_end(&window, NOW + 9000, true); /* a first copy */
	assert_int_equal(window.count, 1);
	assert_int_equal(window.inflight.bytes_changed, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prediction_unknown),
		cmocka_unit_test(test_prediction_settles),
		cmocka_unit_test(test_prediction_compares_like_with_like),
		cmocka_unit_test(test_prediction_grows),
		cmocka_unit_test(test_prediction_settles_above_target),
		cmocka_unit_test(test_prediction_inflight),
		cmocka_unit_test(test_prediction_newest_cycle),
		cmocka_unit_test(test_prediction_fixed_cost),
		cmocka_unit_test(test_prediction_asked_points),
		cmocka_unit_test(test_prediction_capped),
		cmocka_unit_test(test_prediction_nothing_changed),
		cmocka_unit_test(test_cycle_window_ring),
		cmocka_unit_test(test_cycle_window_moves),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
