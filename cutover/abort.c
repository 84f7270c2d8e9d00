/* Aborting a planned migration (ferry run abort ID): a run stays abortable until its point of
 * no return, the moment the VM stops running at the source (the shutdown of a cold move, the
 * pause that ends a live one's memory copy). Before that an abort stops it at the next safe
 * point with the VM left running where it was; after it, the abort is refused. */
#include "cutover/cutover.h"
#include "common/error.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define CUTOVER_ABORTABLE_MAX 64

static struct {
	int64_t run_id; /* 0: free */
	bool requested;
	void (*abort_now)(void *context); /* a job in progress that can stop at once */
	void *context;
} cutover_abortable[CUTOVER_ABORTABLE_MAX];
static pthread_mutex_t cutover_abort_lock = PTHREAD_MUTEX_INITIALIZER;

static int
cutover_abort_slot(int64_t run_id)
{
	for (int i = 0; i < CUTOVER_ABORTABLE_MAX; i++)
		if (cutover_abortable[i].run_id == run_id)
			return i;
	return -1;
}

void
cutover_abort_open(int64_t run_id)
{
	pthread_mutex_lock(&cutover_abort_lock);
	for (int i = 0; i < CUTOVER_ABORTABLE_MAX; i++)
		if (cutover_abortable[i].run_id == 0) {
			cutover_abortable[i].run_id = run_id;
			cutover_abortable[i].requested = false;
			cutover_abortable[i].abort_now = NULL;
			break;
		}
	pthread_mutex_unlock(&cutover_abort_lock);
}

void
cutover_abort_job(int64_t run_id, void (*abort_now)(void *context), void *context)
{
	int slot;

	pthread_mutex_lock(&cutover_abort_lock);
	slot = cutover_abort_slot(run_id);
	if (slot >= 0) {
		cutover_abortable[slot].abort_now = abort_now;
		cutover_abortable[slot].context = context;
		/* Asked for before the job began: stop it as soon as it starts. */
		if (abort_now && cutover_abortable[slot].requested)
			abort_now(context);
	}
	pthread_mutex_unlock(&cutover_abort_lock);
}

bool
cutover_abort_requested(int64_t run_id)
{
	bool requested;
	int slot;

	pthread_mutex_lock(&cutover_abort_lock);
	slot = cutover_abort_slot(run_id);
	requested = slot >= 0 && cutover_abortable[slot].requested;
	pthread_mutex_unlock(&cutover_abort_lock);
	return requested;
}

bool
cutover_abort_close(int64_t run_id)
{
	bool requested = false;
	int slot;

	pthread_mutex_lock(&cutover_abort_lock);
	slot = cutover_abort_slot(run_id);
	if (slot >= 0) {
		requested = cutover_abortable[slot].requested;
		cutover_abortable[slot].run_id = 0;
	}
	pthread_mutex_unlock(&cutover_abort_lock);
	return requested;
}

static int
cutover_abort_run_row(const struct catalog_run *run, void *context)
{
	struct catalog_run *copy = context;

	*copy = *run;
	copy->request = copy->result = NULL;
	return 0;
}

int
cutover_run_abort(const struct cutover_site *site, int64_t run_id)
{
	struct catalog_run run = {0};
	int slot, rc = 0;

	rc = catalog_run_list(site->catalog, run_id, 1, cutover_abort_run_row, &run);
	if (rc < 0)
		return rc;
	if (run.id != run_id)
		return ferry_error_set(FERRY_ERR_NOT_FOUND,
				       "no run %lld here (ferry runs lists them)",
				       (long long)run_id);
	if (cutover_kind_find(run.kind) == NULL || !cutover_kind_find(run.kind)->abortable)
		return ferry_error_set(FERRY_ERR_CONFLICT,
				       "run %lld is a %s: only a planned migration can be aborted "
				       "(a failover or reprotect is rolled back or resumed)",
				       (long long)run_id, run.kind);
	pthread_mutex_lock(&cutover_abort_lock);
	slot = cutover_abort_slot(run_id);
	if (slot < 0) {
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "run %lld cannot be aborted now: it is %s, or past the point "
				     "where the VM could stay at the source (ferry run show %lld)",
				     (long long)run_id, run.status, (long long)run_id);
	} else {
		cutover_abortable[slot].requested = true;
		if (cutover_abortable[slot].abort_now)
			cutover_abortable[slot].abort_now(cutover_abortable[slot].context);
	}
	pthread_mutex_unlock(&cutover_abort_lock);
	if (rc == 0)
		catalog_event_add_kind(site->catalog, "step", "warn", run.target,
				       "run %lld: abort asked for; it stops at the next safe point",
				       (long long)run_id);
	return rc;
}
