/* Where a protection group's lag is heading: a pure function of its recent cycles (the
 * scheduler keeps them, repl_scheduler_prediction() hands them here), with no catalog and no
 * clock, so that it is tested from numbers alone (tests/unit/test_prediction.c).
 *
 * The model. A cycle ships the change of one period (from the group's previous point to this
 * one). Over the window, the change rate is bytes changed per second of period and the ship rate
 * bytes on the wire per second of shipping; the two compare like with like through the ratio
 * sent/changed (compression, zero runs, the extents of a changed segment): the seconds it takes
 * to ship one second of change are
 *     u = change_rate * (sent / changed) / ship_rate  =  sum(ship seconds) / sum(period seconds),
 * the second form also holding when nothing changed (then u is the cycle's fixed cost); a
 * period shorter than the interval counts as the interval (prediction_span). The
 * newest evidence wins when it says worse: the newest cycle's u, its bytes shipped at the
 * window's ship rate over its period, so that a change rate that outgrew the link shows at the
 * first cycle that carried it, and quiet cycles left in the window neither hide it nor make the
 * verdict come and go; by its bytes, not its seconds, so that a cycle slow for a fixed cost (a
 * slow snapshot, a retried call) with little to send reads as no backlog. The cycle in flight
 * is no evidence of a rate: its bytes are not known until it ends, and its seconds alone cannot
 * tell a backlog from a slow call; it only delays the next cycle.
 *  - u < 1: the lag peaks just before each commit at P + u * P and settles there, P the
 *    interval I, or the newest cycle's shipping time or the seconds of the cycle in flight when
 *    longer (the next cycle cannot start before).
 *  - u > 1: each cycle starts when the last ends and ships u times its period, so the period
 *    and the lag grow by u per cycle without bound: the prediction is the peak lag
 *    REPL_PREDICTION_HORIZON cycles from now, (1 + u) * P * u^HORIZON, P the newest period.
 * The window itself is a small state machine kept by the scheduler under its lock: begin (a
 * cycle starts, with its period), member (one committed: its bytes), end (it joins the window
 * if it committed every member and is one of the schedule), and nothing in flight again.
 * Invariants:
 *  1. Fewer than REPL_PREDICTION_CYCLES_MIN committed cycles (a fresh daemon, a new group):
 *     unknown, never at risk.
 *  2. At risk exactly when the predicted lag exceeds the RPO target; the reason names the
 *     rates, the predicted lag and the target. */
#include "replicator/repl.h"
#include "common/util.h"

#include <stdio.h>
#include <string.h>

/* A predicted lag beyond this is reported as this: a day is far past any RPO target, and the
 * number stays finite for JSON. */
#define PREDICTION_LAG_CAP_S (24.0 * 3600.0)

/* Names the rates and the model's verdict in prediction->reason. */
static void
prediction_reason(struct repl_prediction *prediction, double wire_rate, int64_t interval_s,
		  int64_t rpo_s, bool newest_counts)
{
	char change[32], wire[32], ship[32], verdict[256];

	util_format_bytes(prediction->change_rate, change, sizeof(change));
	util_format_bytes(wire_rate, wire, sizeof(wire));
	util_format_bytes(prediction->ship_rate, ship, sizeof(ship));
	if (prediction->grows)
		snprintf(verdict, sizeof(verdict),
			 "the backlog grows each cycle: lag predicted %.0f s in %d cycles",
			 prediction->predicted_lag_s, REPL_PREDICTION_HORIZON);
	else
		snprintf(verdict, sizeof(verdict),
			 "lag predicted to settle at %.0f s (interval %lld s)",
			 prediction->predicted_lag_s, (long long)interval_s);
	snprintf(prediction->reason, sizeof(prediction->reason),
		 "change rate %s/s (%s/s on the wire) against a ship rate of %s/s over %d cycles: "
		 "%.2f s of shipping per second of change (%s); %.96s, %s the RPO target of %lld s",
		 change, wire, ship, prediction->cycles, prediction->seconds_per_second,
		 newest_counts ? "the newest cycle" : "over the window", verdict,
		 prediction->at_risk ? "above" : "within", (long long)rpo_s);
}

/* The seconds a cycle's cost is spread over: its period, but at least the interval. A point
 * asked for early (ferry group sync, a cutover's catch-up) covers less change for the same
 * fixed cost, which on the schedule would have been spread over an interval: it must not read
 * as a backlog. A period of a cycle that began late (the one before it took longer) is its own. */
static double
prediction_span(double period_s, double interval_s)
{
	return period_s > interval_s ? period_s : interval_s;
}

void
repl_cycle_window_add(struct repl_cycle_window *window, const struct repl_cycle *cycle)
{
	if (window->count >= REPL_PREDICTION_CYCLES) {
		memmove(window->cycles, window->cycles + 1,
			(REPL_PREDICTION_CYCLES - 1) * sizeof(window->cycles[0]));
		window->count = REPL_PREDICTION_CYCLES - 1;
	}
	window->cycles[window->count++] = *cycle;
}

void
repl_cycle_window_begin(struct repl_cycle_window *window, int64_t started_ms, int64_t period_ms)
{
	window->inflight_started_ms = started_ms;
	window->inflight_period_ms = period_ms > 0 ? period_ms : 0;
	memset(&window->inflight, 0, sizeof(window->inflight));
}

void
repl_cycle_window_member(struct repl_cycle_window *window, uint64_t bytes_changed,
			 uint64_t bytes_sent)
{
	window->inflight.bytes_changed += bytes_changed;
	window->inflight.bytes_sent += bytes_sent;
}

void
repl_cycle_window_end(struct repl_cycle_window *window, int64_t now_ms, bool committed)
{
	struct repl_cycle cycle = window->inflight;

	cycle.period_s = (double)window->inflight_period_ms / 1000.0;
	cycle.ship_s = (double)(now_ms - window->inflight_started_ms) / 1000.0;
	if (committed && window->inflight_started_ms > 0 && window->inflight_period_ms > 0)
		repl_cycle_window_add(window, &cycle);
	repl_cycle_window_begin(window, 0, 0);
}

void
repl_prediction_compute(const struct repl_cycle_window *window, int64_t now_ms, int64_t interval_s,
			int64_t rpo_s, struct repl_prediction *prediction)
{
	double period = 0, scheduled = 0, ship = 0, changed = 0, sent = 0, u, u_newest = 0;
	double settle, next;
	const struct repl_cycle *last;
	bool newest_counts;
	double interval = interval_s > 0 ? (double)interval_s : 1.0;
	int count = window->count < REPL_PREDICTION_CYCLES ? window->count : REPL_PREDICTION_CYCLES;

	memset(prediction, 0, sizeof(*prediction));
	/* Invariant 1. */
	if (count < REPL_PREDICTION_CYCLES_MIN)
		return;
	for (int i = 0; i < count; i++) {
		const struct repl_cycle *cycle = &window->cycles[i];

		period += cycle->period_s > 0 ? cycle->period_s : 0;
		scheduled += prediction_span(cycle->period_s, interval);
		ship += cycle->ship_s > 0 ? cycle->ship_s : 0;
		changed += (double)cycle->bytes_changed;
		sent += (double)cycle->bytes_sent;
	}
	if (period <= 0)
		return;
	last = &window->cycles[count - 1];
	prediction->known = true;
	prediction->cycles = count;
	prediction->change_rate = changed / period;
	prediction->ship_rate = ship > 0 ? sent / ship : 0;
	u = ship / scheduled;
	/* The newest cycle by its bytes, at the window's ship rate: a cycle slow for a fixed cost
	 * (a slow snapshot, a retry) with little to send is no backlog. */
	if (sent > 0)
		u_newest = (double)last->bytes_sent * ship / sent /
			   prediction_span(last->period_s, interval);
	newest_counts = u_newest > u;
	if (newest_counts)
		u = u_newest;
	prediction->seconds_per_second = u;
	/* The period the next cycles start from: at least the interval, and at least what the
	 * newest cycle took to ship and the one in flight has taken so far (the next one cannot
	 * begin before). */
	settle = prediction_span(last->ship_s, interval);
	if (window->inflight_started_ms > 0)
		settle = prediction_span((double)(now_ms - window->inflight_started_ms) / 1000.0,
					 settle);
	prediction->grows = u > 1.0;
	if (prediction->grows) {
		next = prediction_span(last->period_s, interval);
		for (int h = 0; h < REPL_PREDICTION_HORIZON; h++)
			next *= u;
		prediction->predicted_lag_s = (1.0 + u) * prediction_span(next, settle);
	} else {
		prediction->predicted_lag_s = (1.0 + u) * settle;
	}
	if (!(prediction->predicted_lag_s < PREDICTION_LAG_CAP_S))
		prediction->predicted_lag_s = PREDICTION_LAG_CAP_S;
	/* Invariant 2. */
	prediction->at_risk = prediction->predicted_lag_s > (double)rpo_s;
	prediction_reason(prediction, changed > 0 ? prediction->change_rate * sent / changed : 0,
			  interval_s, rpo_s, newest_counts);
}
