/* The run engine: libvirt's set-up, runs and their steps, the threads that execute them, resume
 * and rollback claims, and a run as JSON. Every run is a row in the catalog with ordered steps;
 * each step is recorded before it starts and when it ends, so that a run cut short by a killed
 * ferryd shows exactly where it stopped, and can be resumed: every step is written so that doing
 * it again is harmless (a rollback to the same point, a define of the same XML, a start of a
 * running domain). */
#include "cutover/internal.h"

static void
cutover_libvirt_quiet(void *context, virErrorPtr error)
{
	(void)context;
	(void)error; /* kept per thread for cutover_virt_message(); never printed */
}

static void *
cutover_event_loop(void *argument)
{
	(void)argument;
	for (;;)
		virEventRunDefaultImpl();
	return NULL;
}

int
cutover_init(void)
{
	pthread_t thread;

	virSetErrorFunc(NULL, cutover_libvirt_quiet);
	if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0)
		return ferry_error_set(FERRY_ERR_INTERNAL, "cannot initialise libvirt");
	if (pthread_create(&thread, NULL, cutover_event_loop, NULL) != 0)
		return ferry_error_set(FERRY_ERR_INTERNAL, "cannot start libvirt's event loop");
	pthread_detach(thread);
	return 0;
}

int
cutover_step_begin(struct cutover_run *run, const char *format, ...)
{
	char name[128];
	va_list args;
	int seq = 0;

	va_start(args, format);
	vsnprintf(name, sizeof(name), format, args);
	va_end(args);
#ifdef FERRY_FAULT_INJECTION
	{
		/* Test hook: FERRY_FAULT_EXIT_AT_STEP=PREFIX ends the daemon as kill -9 would, just
		 * before a step whose name starts with PREFIX begins. */
		const char *prefix = getenv("FERRY_FAULT_EXIT_AT_STEP");

		if (prefix && prefix[0] && strncmp(name, prefix, strlen(prefix)) == 0) {
			log_warn("run %" PRId64 ": FERRY_FAULT_EXIT_AT_STEP: exiting before '%s'",
				 run->id, name);
			_exit(137);
		}
	}
#endif
	if (catalog_run_step_begin(run->site->catalog, run->id, name, &seq) < 0)
		log_warn("run %" PRId64 ": cannot record step '%s': %s", run->id, name,
			 ferry_error_message());
	log_info("run %" PRId64 ": %s", run->id, name);
	{
		char object[32];

		snprintf(object, sizeof(object), "run %" PRId64, run->id);
		catalog_event_add_kind(run->site->catalog, "step", "info", object,
				       "step %d began: %s", seq, name);
	}
	return seq;
}

/* Ends step seq: "ok" with detail when rc is 0, else "failed" with the current error. Returns
 * rc, so that `return cutover_step_end(...)` reads well. */
int
cutover_step_end(struct cutover_run *run, int seq, int rc, const char *format, ...)
{
	char detail[1024] = "";
	va_list args;

	if (rc < 0) {
		snprintf(detail, sizeof(detail), "%s", ferry_error_message());
	} else if (format) {
		va_start(args, format);
		vsnprintf(detail, sizeof(detail), format, args);
		va_end(args);
	}
	if (catalog_run_step_end(
		    run->site->catalog, run->id, seq,
		    catalog_step_result_name(rc < 0 ? CATALOG_STEP_FAILED : CATALOG_STEP_OK),
		    detail) < 0)
		log_warn("run %" PRId64 ": cannot record the end of step %d: %s", run->id, seq,
			 ferry_error_message());
	{
		char object[32];

		snprintf(object, sizeof(object), "run %" PRId64, run->id);
		catalog_event_add_kind(run->site->catalog, "step", rc < 0 ? "error" : "info",
				       object, "step %d %s: %s", seq, rc < 0 ? "failed" : "ended",
				       detail);
	}
	if (rc < 0)
		ferry_error_set(rc, "%s", detail); /* the step's error stays the current one */
	return rc;
}

/* ferry run abort came in time: recorded as a step, the VM left running at the source. */
int
cutover_aborted(struct cutover_run *run, const char *name, const char *uri, const char *what)
{
	int seq = cutover_step_begin(run, "abort, as the operator asked");

	cutover_step_end(run, seq, 0, "%s; %s keeps running at %s", what, name, uri);
	run->aborted = true;
	return ferry_error_set(FERRY_ERR_CONFLICT,
			       "aborted by the operator (%s); %s keeps running at %s", what, name,
			       uri);
}

/* ---- run status ---- */

/* The runs that may be resumed or rolled back: cut short, or failed. */
#define CUTOVER_RUN_ENDED_SHORT                                                                    \
	(CATALOG_RUN_MASK(CATALOG_RUN_INTERRUPTED) | CATALOG_RUN_MASK(CATALOG_RUN_FAILED))

static bool
cutover_status_in(const char *name, unsigned mask)
{
	enum catalog_run_status status;

	return catalog_run_status_parse(name, &status) == 0 && (CATALOG_RUN_MASK(status) & mask);
}

static bool
cutover_run_status_in(const struct catalog_run *run, unsigned mask)
{
	return cutover_status_in(run->status, mask);
}

/* ---- the kinds of run ---- */

/* A check of a live migration: its checks and prediction, nothing moved. */
static int
cutover_migrate_check(struct cutover_run *run, json_t *request)
{
	json_object_set_new(request, "dry_run", json_true());
	return cutover_migrate_live(run, request);
}

/* Every kind of run, once. A kind not here is not run, resumed or rolled back; the help texts
 * and the refusals list kinds from here. */
static const struct cutover_kind cutover_kinds[] = {
	/* name          execute                startable resumable rollbackable abortable admin
	 * target site */
	{"migrate-cold", cutover_migrate_cold, true, true, true, true, false, true, "primary"},
	{"migrate-live", cutover_migrate_live, true, true, true, true, false, true, "primary"},
	{"migrate-check", cutover_migrate_check, true, false, false, false, false, true, "primary"},
	{"failover", cutover_activate, true, true, false, false, true, true, "replica"},
	{"failover-test", cutover_activate, true, true, true, false, false, true, "replica"},
	{"failover-cleanup", cutover_cleanup, true, true, false, false, false, false, "replica"},
	/* The last part of a cold migration, asked for by the primary site. */
	{"activate", cutover_activate, true, true, false, false, true, true, "replica"},
	{"reprotect", cutover_reprotect, true, true, false, false, true, true, "where the VMs run"},
	/* Started by cutover_run_rollback(), at the site of the run it rolls back. */
	{"rollback", cutover_rollback, false, true, false, false, false, true, "the run's site"},
};

const struct cutover_kind *
cutover_kind_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(cutover_kinds) / sizeof(cutover_kinds[0]); i++)
		if (strcmp(cutover_kinds[i].name, name) == 0)
			return &cutover_kinds[i];
	return NULL;
}

int
cutover_kind_list(char *out, size_t size, bool startable_only)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(cutover_kinds) / sizeof(cutover_kinds[0]); i++) {
		if (startable_only && !cutover_kinds[i].startable)
			continue;
		int written = snprintf(out + used, size - used, "%s%s", used ? ", " : "",
				       cutover_kinds[i].name);

		if (written < 0 || (size_t)written >= size - used)
			return ferry_error_set(FERRY_ERR_INTERNAL, "the list of run kinds is cut");
		used += (size_t)written;
	}
	return 0;
}

/* ---- run threads ---- */

int
cutover_run_execute(const struct cutover_site *site, int64_t run_id, const char *kind_name,
		    json_t *request)
{
	const struct cutover_kind *kind = cutover_kind_find(kind_name);
	struct cutover_run run = {site,	     run_id, util_now_ms(), json_array(),
				  kind_name, false,  false};
	enum catalog_run_status status = CATALOG_RUN_COMPLETED;
	json_t *result;
	char *text;
	int rc;

	if (kind == NULL) {
		rc = ferry_error_set(FERRY_ERR_INVALID, "unknown kind of run '%s'", kind_name);
	} else {
		if (kind->abortable)
			cutover_abort_open(run_id);
		rc = kind->execute(&run, request);
		if (kind->abortable)
			cutover_abort_close(run_id);
	}
	if (rc < 0)
		status = run.aborted   ? CATALOG_RUN_ABORTED
			 : run.refused ? CATALOG_RUN_REFUSED
				       : CATALOG_RUN_FAILED;
	result = json_pack("{s:O, s:I}", "vms", run.vms, "total_ms",
			   (json_int_t)(util_now_ms() - run.started_ms));
	text = json_dumps(result, JSON_COMPACT);
	if (catalog_run_finish(site->catalog, run_id, catalog_run_status_name(status),
			       rc < 0 ? ferry_error_message() : "", text ? text : "{}") < 0)
		log_error("run %" PRId64 " (%s) ended %s, but the catalog did not record it (%s); "
			  "it shows as interrupted after a restart of ferryd",
			  run_id, kind_name, catalog_run_status_name(status),
			  ferry_error_message());
	catalog_event_add(site->catalog, rc < 0 ? "error" : "info", kind_name, "run %lld %s%s%s",
			  (long long)run_id, catalog_run_status_name(status), rc < 0 ? ": " : "",
			  rc < 0 ? ferry_error_message() : "");
	log_info("run %" PRId64 " (%s) %s", run_id, kind_name, catalog_run_status_name(status));
	free(text);
	json_decref(result);
	json_decref(run.vms);
	return rc;
}

static pthread_mutex_t cutover_active_lock = PTHREAD_MUTEX_INITIALIZER;
static int cutover_active;

int
cutover_runs_active(void)
{
	int active;

	pthread_mutex_lock(&cutover_active_lock);
	active = cutover_active;
	pthread_mutex_unlock(&cutover_active_lock);
	return active;
}

static void
cutover_active_add(int delta)
{
	/* A run starts only between two registrations of the refresher, never during one. */
	if (delta > 0)
		pthread_mutex_lock(&cutover_refresh_lock);
	pthread_mutex_lock(&cutover_active_lock);
	cutover_active += delta;
	pthread_mutex_unlock(&cutover_active_lock);
	if (delta > 0)
		pthread_mutex_unlock(&cutover_refresh_lock);
}

struct cutover_thread {
	struct cutover_site site;
	int64_t id;
	char kind[32];
	json_t *request;
};

static void *
cutover_thread_main(void *argument)
{
	struct cutover_thread *thread = argument;

	cutover_run_execute(&thread->site, thread->id, thread->kind, thread->request);
	json_decref(thread->request);
	free(thread);
	cutover_active_add(-1);
	return NULL;
}

static int
cutover_thread_start(const struct cutover_site *site, int64_t id, const char *kind, json_t *request)
{
	struct cutover_thread *thread = calloc(1, sizeof(*thread));
	pthread_t handle;

	if (thread == NULL)
		return ferry_error_no_memory();
	thread->site = *site;
	thread->id = id;
	snprintf(thread->kind, sizeof(thread->kind), "%s", kind);
	thread->request = json_incref(request);
	cutover_active_add(1);
	if (pthread_create(&handle, NULL, cutover_thread_main, thread) != 0) {
		cutover_active_add(-1);
		json_decref(thread->request);
		free(thread);
		return ferry_error_set(FERRY_ERR_INTERNAL, "cannot start a thread for run %lld",
				       (long long)id);
	}
	pthread_detach(handle);
	return 0;
}

int
cutover_run_start(const struct cutover_site *site, const char *kind, json_t *request,
		  int64_t *run_id)
{
	const struct cutover_kind *known = cutover_kind_find(kind);
	const char *target = cutover_text(request, "vm");
	char *text = NULL, kinds[256];
	int rc;

	if (known == NULL || !known->startable) {
		if (cutover_kind_list(kinds, sizeof(kinds), true) < 0)
			return ferry_error_last_code();
		return ferry_error_set(FERRY_ERR_INVALID, "unknown kind of run '%s' (%s)", kind,
				       kinds);
	}
	if (!target[0])
		target = cutover_text(request, "group");
	if (!target[0] && known->needs_target)
		return ferry_error_set(FERRY_ERR_INVALID, "name the VM ('vm') or the 'group'");
	text = json_dumps(request, JSON_COMPACT);
	rc = catalog_run_create(site->catalog, kind, target[0] ? target : "*", text ? text : "{}",
				run_id);
	free(text);
	if (rc == 0)
		rc = cutover_thread_start(site, *run_id, kind, request);
	return rc;
}

struct cutover_resume {
	char kind[32];
	json_t *request;
	char status[16];
};

static int
cutover_resume_row(const struct catalog_run *run, void *context)
{
	struct cutover_resume *resume = context;

	snprintf(resume->kind, sizeof(resume->kind), "%s", run->kind);
	snprintf(resume->status, sizeof(resume->status), "%s", run->status);
	resume->request = json_loads(run->request ? run->request : "{}", 0, NULL);
	return 0;
}

static int cutover_run_resume_claimed(const struct cutover_site *site, int64_t run_id);
static int cutover_run_rollback_claimed(const struct cutover_site *site, int64_t run_id,
					int64_t *rollback_id);

/* A resume and a rollback each decide from a run's status, then change it: one at a time, so
 * that two of them at once never both act on one run. */
static pthread_mutex_t cutover_claim_lock = PTHREAD_MUTEX_INITIALIZER;

struct cutover_rollback_search {
	int64_t of;
	int64_t found;
};

static int
cutover_rollback_running(const struct catalog_run *run, void *context)
{
	struct cutover_rollback_search *search = context;
	json_t *request;

	if (strcmp(run->kind, "rollback") != 0 ||
	    !cutover_run_status_in(run, CATALOG_RUN_MASK(CATALOG_RUN_RUNNING)))
		return 0;
	request = json_loads(run->request ? run->request : "{}", 0, NULL);
	if (json_integer_value(json_object_get(request, "run")) == search->of)
		search->found = run->id;
	json_decref(request);
	return 0;
}

/* FERRY_ERR_CONFLICT while a rollback of run_id is running: it is neither resumed nor rolled
 * back again meanwhile. */
static int
cutover_rollback_refuse(const struct cutover_site *site, int64_t run_id)
{
	struct cutover_rollback_search search = {run_id, 0};
	int rc = catalog_run_list(site->catalog, 0, 0, cutover_rollback_running, &search);

	if (rc == 0 && search.found)
		rc = ferry_error_set(
			FERRY_ERR_CONFLICT,
			"run %lld is being rolled back by run %lld: wait for it to end "
			"(ferry run show %lld)",
			(long long)run_id, (long long)search.found, (long long)search.found);
	return rc;
}

int
cutover_run_resume(const struct cutover_site *site, int64_t run_id)
{
	int rc;

	pthread_mutex_lock(&cutover_claim_lock);
	rc = cutover_rollback_refuse(site, run_id);
	if (rc == 0)
		rc = cutover_run_resume_claimed(site, run_id);
	pthread_mutex_unlock(&cutover_claim_lock);
	return rc;
}

int
cutover_run_rollback(const struct cutover_site *site, int64_t run_id, int64_t *rollback_id)
{
	int rc;

	pthread_mutex_lock(&cutover_claim_lock);
	rc = cutover_rollback_refuse(site, run_id);
	if (rc == 0)
		rc = cutover_run_rollback_claimed(site, run_id, rollback_id);
	pthread_mutex_unlock(&cutover_claim_lock);
	return rc;
}

static int
cutover_run_resume_claimed(const struct cutover_site *site, int64_t run_id)
{
	struct cutover_resume resume = {"", NULL, ""};
	int rc = catalog_run_list(site->catalog, run_id, 1, cutover_resume_row, &resume);

	if (rc == 0 && !cutover_status_in(resume.status, CUTOVER_RUN_ENDED_SHORT))
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "run %lld is %s; only an interrupted or failed run is resumed",
				     (long long)run_id, resume.status);
	if (rc == 0 &&
	    (cutover_kind_find(resume.kind) == NULL || !cutover_kind_find(resume.kind)->resumable))
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "run %lld is a %s, which is not resumed: start it again",
				     (long long)run_id, resume.kind);
	if (rc == 0 && resume.request == NULL)
		rc = ferry_error_set(FERRY_ERR_INTERNAL, "run %lld has no request to resume",
				     (long long)run_id);
	if (rc == 0)
		rc = catalog_run_reopen(site->catalog, run_id);
	if (rc == 0)
		rc = cutover_thread_start(site, run_id, resume.kind, resume.request);
	json_decref(resume.request);
	return rc;
}

static int
cutover_run_rollback_claimed(const struct cutover_site *site, int64_t run_id, int64_t *rollback_id)
{
	struct cutover_resume original = {"", NULL, ""};
	json_t *request = NULL;
	char *text = NULL;
	const char *target;
	int rc = catalog_run_list(site->catalog, run_id, 1, cutover_resume_row, &original);

	if (rc == 0 && !original.kind[0])
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "no run %lld", (long long)run_id);
	if (rc == 0 && !cutover_status_in(original.status, CUTOVER_RUN_ENDED_SHORT))
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "run %lld is %s; only an interrupted or failed run is rolled "
				     "back",
				     (long long)run_id, original.status);
	if (rc == 0) {
		request =
			json_pack("{s:I, s:s, s:O}", "run", (json_int_t)run_id, "of", original.kind,
				  "request", original.request ? original.request : json_null());
		target = cutover_text(original.request, "vm");
		if (!target[0])
			target = cutover_text(original.request, "group");
		text = request ? json_dumps(request, JSON_COMPACT) : NULL;
		rc = text ? catalog_run_create(site->catalog, "rollback", target[0] ? target : "*",
					       text, rollback_id)
			  : ferry_error_no_memory();
	}
	if (rc == 0)
		rc = cutover_thread_start(site, *rollback_id, "rollback", request);
	free(text);
	json_decref(request);
	json_decref(original.request);
	return rc;
}

static int
cutover_step_json(const struct catalog_run_step *step, void *context)
{
	return json_array_append_new(
		context,
		json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:I}", "seq", step->seq, "name",
			  step->name, "result", step->result, "detail", step->detail, "started_ms",
			  (json_int_t)step->started_ms, "ended_ms", (json_int_t)step->ended_ms,
			  "duration_ms",
			  (json_int_t)(step->ended_ms ? step->ended_ms - step->started_ms : 0)));
}

json_t *
cutover_run_json(struct catalog *catalog, const struct catalog_run *run)
{
	json_t *result = json_loads(run->result && run->result[0] ? run->result : "{}", 0, NULL);
	json_t *steps = json_array(), *vms = json_object_get(result, "vms"), *out;

	catalog_run_steps(catalog, run->id, cutover_step_json, steps);
	out = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o}", "run",
			(json_int_t)run->id, "kind", run->kind, "target", run->target, "status",
			run->status, "reason", run->reason, "started_ms",
			(json_int_t)run->started_ms, "ended_ms", (json_int_t)run->ended_ms,
			"total_ms",
			(json_int_t)(run->ended_ms ? run->ended_ms - run->started_ms
						   : util_now_ms() - run->started_ms),
			"vms", vms ? json_incref(vms) : json_array(), "steps", steps);
	json_decref(result);
	return out;
}
