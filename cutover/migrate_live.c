/* Planned live migration, run at the primary site: libvirt moves memory while replication
 * keeps the disks current; the guest is frozen only for the final delta and the switch.
 * With dry_run (kind migrate-check), only the checks and the prediction. */
#include "cutover/internal.h"

/* A site-to-site call that answers JSON. */
int
cutover_site_call(struct catalog *catalog, const char *site_name, const char *path, json_t *request,
		  json_t **reply)
{
	struct api_client *client = NULL;
	int rc = cutover_site_client(catalog, site_name, &client);

	if (rc == 0)
		rc = api_client_json(client, "POST", path, request, reply);
	api_client_free(client);
	return rc;
}

/* The destination must be able to run the domain as it is: its CPU model and machine type. */
int
cutover_check_destination(virConnectPtr destination, const char *uri, const char *name,
			  const char *xml)
{
	const char *cpu = strstr(xml, "<cpu"), *cpu_end = cpu ? strstr(cpu, "</cpu>") : NULL;
	const char *machine = strstr(xml, "machine='"), *type = strstr(xml, "<domain type='");
	char machine_name[128] = "", virt_type[32] = "kvm", *capabilities = NULL;
	int rc = 0;

	if (machine)
		sscanf(machine + 9, "%127[^']", machine_name);
	if (type)
		sscanf(type + 14, "%31[^']", virt_type);
	capabilities = virConnectGetDomainCapabilities(
		destination, NULL, NULL, machine_name[0] ? machine_name : NULL, virt_type, 0);
	if (capabilities == NULL)
		return ferry_error_set(
			FERRY_ERR_CONFLICT,
			"%s cannot run %s: no machine type '%s' with '%s' there (%s)", uri, name,
			machine_name, virt_type, cutover_virt_message());
	free(capabilities);
	if (cpu && cpu_end) {
		char *cpu_xml = strndup(cpu, (size_t)(cpu_end - cpu) + 6);
		int compared = cpu_xml ? virConnectCompareHypervisorCPU(destination, NULL, NULL,
									NULL, virt_type, cpu_xml, 0)
				       : VIR_CPU_COMPARE_ERROR;

		if (compared == VIR_CPU_COMPARE_INCOMPATIBLE || compared == VIR_CPU_COMPARE_ERROR)
			rc = ferry_error_set(
				FERRY_ERR_CONFLICT,
				"%s cannot run the CPU of %s (%s); choose a destination "
				"host whose CPU can, or change the VM's CPU model",
				uri, name,
				compared == VIR_CPU_COMPARE_ERROR ? cutover_virt_message()
								  : "incompatible");
		free(cpu_xml);
	}
	return rc;
}

struct cutover_abort {
	virDomainPtr domain;
	int64_t limit_ms;
	bool done;
	bool aborted;
	bool by_operator; /* ferry run abort, not the time limit */
	pthread_mutex_t lock;
	pthread_cond_t wake;
};

/* ferry run abort during the memory copy: the job stops now, the VM runs on at the source. */
static void
cutover_abort_now(void *context)
{
	struct cutover_abort *watch = context;

	pthread_mutex_lock(&watch->lock);
	if (!watch->done && !watch->aborted) {
		watch->aborted = virDomainAbortJob(watch->domain) == 0;
		watch->by_operator = watch->aborted;
	}
	pthread_mutex_unlock(&watch->lock);
}

/* A guest that dirties memory faster than the link carries never converges: after the time
 * limit the migration is aborted and the VM keeps running at the source. */
static void *
cutover_abort_watch(void *argument)
{
	struct cutover_abort *watch = argument;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += watch->limit_ms / 1000;
	pthread_mutex_lock(&watch->lock);
	while (!watch->done)
		if (pthread_cond_timedwait(&watch->wake, &watch->lock, &until) != 0)
			break;
	if (!watch->done && !watch->aborted)
		watch->aborted = virDomainAbortJob(watch->domain) == 0;
	pthread_mutex_unlock(&watch->lock);
	return NULL;
}

/* --dry-run, and the start of every live migration: the prediction (predict.c) as a step. */
static int
cutover_predict(struct cutover_run *run, const struct cutover_vm_record *record,
		virDomainPtr domain, const char *name, int64_t dirty_started_ms, json_t **out)
{
	int seq = cutover_step_begin(run, "predict the migration of %s", name);
	json_t *prediction = cutover_predict_live(run, record, domain, name, dirty_started_ms);

	if (prediction == NULL)
		return cutover_step_end(run, seq, ferry_error_no_memory(), NULL);
	*out = prediction;
	return cutover_step_end(
		run, seq, 0,
		"%s: %lld ms in all, %lld ms frozen; memory %.0f MiB, dirty %.1f MB/s, "
		"memory moves at %.1f MB/s, lag %lld s",
		cutover_text(prediction, "strategy"),
		(long long)json_integer_value(json_object_get(prediction, "predicted_total_ms")),
		(long long)json_integer_value(json_object_get(prediction, "predicted_frozen_ms")),
		json_number_value(json_object_get(prediction, "memory_bytes")) / 1048576.0,
		json_number_value(json_object_get(prediction, "dirty_bytes_per_second")) / 1e6,
		json_number_value(json_object_get(prediction, "memory_bytes_per_second")) / 1e6,
		(long long)json_integer_value(json_object_get(prediction, "lag_seconds")));
}

/* One live migration's state, shared by its steps. */
struct cutover_live {
	const char *name, *uri, *dest_uri, *site_name, *on_timeout;
	virConnectPtr connection, destination;
	virDomainPtr domain, moved;
	struct cutover_vm_record record;
	json_t *remap;
	char *live_xml, *persistent_xml;
	int64_t point, bytes, returned_ms;
	bool go_cold;	   /* it did not converge: it moves cold instead */
	json_t *predicted; /* the prediction made at its start */
	json_t *entry;	   /* its entry in run->vms, once it has switched */
	/* what it measured, part by part, for the next predictions */
	int64_t memory_ms, final_delta_ms, promote_ms, resume_ms;
	unsigned long long memory_processed, memory_bps, qemu_downtime_ms;
};

/* The checks before anything moves; a failure marks the run refused. */
static int
cutover_live_check(struct cutover_run *run, json_t *request, struct cutover_live *live)
{
	const char *on_timeout = live->on_timeout;
	int rc, seq;

	seq = cutover_step_begin(run, "check %s, the destination and the replicas", live->name);
	rc = on_timeout[0] && strcmp(on_timeout, "abort") != 0 && strcmp(on_timeout, "cold") != 0
		     ? ferry_error_set(FERRY_ERR_INVALID,
				       "on_timeout is abort or cold, not '%s' (post-copy would run "
				       "the VM at the destination before its final delta lands)",
				       on_timeout)
		     : cutover_record_load(run->site->catalog, live->name, &live->record);
	if (rc == 0) {
		live->uri = live->record.uri;
		live->dest_uri = live->record.dest_uri;
		live->site_name = live->record.site;
		rc = cutover_virt_open(live->uri, &live->connection);
	}
	if (rc == 0)
		rc = cutover_virt_domain(live->connection, live->uri, live->name, &live->domain);
	if (rc == 0 && virDomainIsActive(live->domain) != 1)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "%s is not running at %s; migrate it with --cold", live->name,
				     live->uri);
	if (rc == 0)
		rc = cutover_check_replicas(
			run->site, &live->record,
			json_integer_value(json_object_get(request, "max_lag")));
	if (rc == 0)
		rc = cutover_virt_open(live->dest_uri, &live->destination);
	if (rc == 0) {
		live->live_xml = virDomainGetXMLDesc(
			live->domain, VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_MIGRATABLE);
		live->persistent_xml = virDomainGetXMLDesc(
			live->domain, VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_INACTIVE |
					      VIR_DOMAIN_XML_MIGRATABLE);
		if (live->live_xml == NULL || live->persistent_xml == NULL)
			rc = ferry_error_set(FERRY_ERR_IO, "cannot read the XML of %s: %s",
					     live->name, cutover_virt_message());
	}
	if (rc == 0)
		rc = cutover_check_destination(live->destination, live->dest_uri, live->name,
					       live->live_xml);
	if (rc == 0) {
		json_t *ask = json_pack("{s:s, s:s, s:s}", "name", live->name, "xml",
					live->live_xml, "persistent_xml", live->persistent_xml);

		rc = ask ? cutover_site_call(run->site->catalog, live->site_name, "/v1/vms/remap",
					     ask, &live->remap)
			 : ferry_error_no_memory();
		json_decref(ask);
	}
	cutover_step_end(run, seq, rc, "%s can run %s; its replicas are at site %s", live->dest_uri,
			 live->name, live->site_name);
	if (rc < 0)
		run->refused = true;
	return rc;
}

/* libvirt moves the memory, the guest paused at the destination when it ends; a watcher stops
 * a copy that does not converge in time or that the operator aborts. */
static int
cutover_live_copy_memory(struct cutover_run *run, json_t *request, struct cutover_live *live)
{
	json_int_t max_time = json_integer_value(json_object_get(request, "max_time"));
	json_int_t bandwidth = json_integer_value(json_object_get(request, "bandwidth"));
	virTypedParameterPtr params = NULL;
	int nparams = 0, maxparams = 0, rc, seq;
	struct cutover_abort watch = {.lock = PTHREAD_MUTEX_INITIALIZER,
				      .wake = PTHREAD_COND_INITIALIZER};
	pthread_t watcher;
	unsigned int flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PAUSED |
			     VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE |
			     VIR_MIGRATE_AUTO_CONVERGE;

	seq = cutover_step_begin(run, "migrate the memory of %s to %s", live->name, live->dest_uri);
	virTypedParamsAddString(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_DEST_XML,
				cutover_text(live->remap, "xml"));
	virTypedParamsAddString(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_PERSIST_XML,
				cutover_text(live->remap, "persistent_xml"));
	if (strncmp(live->dest_uri, "qemu+unix:", 10) == 0 || strstr(live->dest_uri, "127.0.0.1")) {
		/* Both daemons on one host (a test bed): migrate over loopback. */
		virTypedParamsAddString(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_URI,
					"tcp://127.0.0.1");
		virTypedParamsAddString(&params, &nparams, &maxparams,
					VIR_MIGRATE_PARAM_LISTEN_ADDRESS, "127.0.0.1");
	}
	if (bandwidth > 0) /* MiB/s, for a link the replication shares */
		virTypedParamsAddULLong(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_BANDWIDTH,
					(unsigned long long)bandwidth);
	watch.domain = live->domain;
	live->memory_ms = util_now_ms();
	watch.limit_ms = (max_time > 0 ? max_time : 600) * 1000;
	if (pthread_create(&watcher, NULL, cutover_abort_watch, &watch) != 0) {
		cutover_abort_close(run->id);
		rc = cutover_step_end(run, seq,
				      ferry_error_set(FERRY_ERR_INTERNAL,
						      "cannot start the watcher of the memory copy "
						      "of %s; it keeps running at %s",
						      live->name, live->uri),
				      NULL);
		goto out;
	}
	cutover_abort_job(run->id, cutover_abort_now, &watch);
	rc = virDomainMigrateToURI3(live->domain, live->dest_uri, params, (unsigned int)nparams,
				    flags);
	cutover_abort_job(run->id, NULL, NULL);
	pthread_mutex_lock(&watch.lock);
	watch.done = true;
	pthread_cond_signal(&watch.wake);
	pthread_mutex_unlock(&watch.lock);
	pthread_join(watcher, NULL);
	live->returned_ms = util_now_ms();
	live->memory_ms = live->returned_ms - live->memory_ms;
	/* The memory has moved (the guest is paused) or the copy stopped: no abort from here. */
	if (cutover_abort_close(run->id) && rc < 0 && watch.by_operator) {
		cutover_step_end(run, seq, 0, "stopped: the operator aborted the run");
		rc = cutover_aborted(run, live->name, live->uri, "during the memory copy");
		goto out;
	}
	if (rc < 0 && watch.aborted && strcmp(live->on_timeout, "cold") == 0 &&
	    virDomainIsActive(live->domain) == 1) {
		cutover_step_end(run, seq, 0,
				 "did not converge within %lld s: aborted, %s runs at the source; "
				 "moving it cold instead (--on-timeout cold)",
				 (long long)(watch.limit_ms / 1000), live->name);
		live->go_cold = true;
		rc = 0;
		goto out;
	}
	if (rc < 0) {
		char cause[512];

		/* libvirt's message before the next call (virDomainIsActive) clears it. */
		snprintf(cause, sizeof(cause), "%s", cutover_virt_message());
		if (watch.aborted)
			rc = ferry_error_set(FERRY_ERR_IO,
					     "%s did not converge within %lld s and was aborted: "
					     "it keeps running at %s; migrate it with --cold (or "
					     "--on-timeout cold), or give it more time with "
					     "--max-time",
					     live->name, (long long)(watch.limit_ms / 1000),
					     live->uri);
		else if (virDomainIsActive(live->domain) == 1)
			rc = ferry_error_set(FERRY_ERR_IO,
					     "live migration of %s failed; it keeps running at %s "
					     "(%s)",
					     live->name, live->uri, cause);
		else
			/* Its QEMU went away during the copy: say so, never that it runs on. */
			rc = ferry_error_set(
				FERRY_ERR_IO,
				"live migration of %s failed and it is no longer running "
				"at %s (%s); start it there again (virsh start) or fail "
				"it over (ferry failover at the replica site)",
				live->name, live->uri, cause);
		cutover_step_end(run, seq, rc, NULL);
		goto out;
	}
	cutover_step_end(run, seq, 0, "memory moved; paused at %s, the source QEMU has stopped",
			 live->dest_uri);
out:
	virTypedParamsFree(params, nparams);
	return rc;
}

/* What this migration measured, beside what was predicted for it: the next prediction to the
 * same destination starts from these (predict.c). */
static void
cutover_live_record(struct cutover_run *run, struct cutover_live *live, int64_t frozen_ms)
{
	json_t *entry = json_pack("{s:s, s:I, s:I, s:I}", "name", live->name, "point",
				  (json_int_t)live->point, "frozen_ms", (json_int_t)frozen_ms,
				  "final_delta_bytes", (json_int_t)live->bytes);
	json_t *measured = json_pack(
		"{s:s, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "dest_uri",
		live->dest_uri, "memory_bytes",
		json_integer_value(json_object_get(live->predicted, "memory_bytes")),
		"memory_processed_bytes", (json_int_t)live->memory_processed,
		"dirty_bytes_per_second",
		json_number_value(json_object_get(live->predicted, "dirty_bytes_per_second")),
		"memory_ms", (json_int_t)live->memory_ms, "qemu_downtime_ms",
		(json_int_t)live->qemu_downtime_ms, "final_delta_ms",
		(json_int_t)live->final_delta_ms, "final_delta_bytes", (json_int_t)live->bytes,
		"promote_ms", (json_int_t)live->promote_ms, "resume_ms",
		(json_int_t)live->resume_ms, "frozen_ms", (json_int_t)frozen_ms);

	/* QEMU's own measure of the link while memory moved, set-up excluded */
	if (measured && live->memory_bps)
		json_object_set_new(measured, "memory_link_bytes_per_second",
				    json_integer((json_int_t)live->memory_bps));
	if (entry == NULL || measured == NULL) {
		json_decref(entry);
		json_decref(measured);
		log_warn("run %lld: cannot record what the migration of %s measured (no memory)",
			 (long long)run->id, live->name);
		return;
	}
	json_object_set_new(entry, "measured", measured);
	if (live->predicted) {
		json_object_set(entry, "predicted", live->predicted);
		json_object_set(entry, "predicted_total_ms",
				json_object_get(live->predicted, "predicted_total_ms"));
		json_object_set(entry, "predicted_frozen_ms",
				json_object_get(live->predicted, "predicted_frozen_ms"));
	}
	live->entry = entry;
	json_array_append_new(run->vms, entry);
}

/* The run's whole length, once it has validated, completes the record: the part neither the
 * memory copy nor the switch took is what the next prediction adds for checks and validation. */
static void
cutover_live_record_total(struct cutover_run *run, struct cutover_live *live)
{
	int64_t total_ms = util_now_ms() - run->started_ms;
	int64_t switch_ms = live->final_delta_ms + live->promote_ms + live->resume_ms;
	json_t *measured;

	if (live->entry == NULL)
		return;
	measured = json_object_get(live->entry, "measured");
	json_object_set_new(live->entry, "total_ms", json_integer(total_ms));
	json_object_set_new(measured, "total_ms", json_integer(total_ms));
	json_object_set_new(measured, "other_ms",
			    json_integer(total_ms - live->memory_ms - switch_ms));
}

/* The guest is paused at the destination: its final delta lands, the replicas are promoted,
 * it resumes there, and the source lets go of its disks. */
static int
cutover_live_switch(struct cutover_run *run, struct cutover_live *live)
{
	unsigned long long job_downtime = 0;
	int64_t downtime_ms = 0, started_ms = util_now_ms();
	json_t *reply = NULL;
	int rc, seq;

	/* From here the source writes nothing: the final delta is the last word. */
	rc = cutover_final_point(run, &live->record, live->returned_ms, false, &live->point,
				 &live->bytes);
	live->final_delta_ms = util_now_ms() - started_ms;
	if (rc == 0) {
		json_t *ask = json_pack("{s:s, s:I, s:I}", "name", live->name, "run",
					(json_int_t)run->id, "point", (json_int_t)live->point);

		started_ms = util_now_ms();
		seq = cutover_step_begin(run, "promote the replicas of %s", live->name);
		rc = ask ? cutover_site_call(run->site->catalog, live->site_name, "/v1/vms/promote",
					     ask, &reply)
			 : ferry_error_no_memory();
		cutover_step_end(run, seq, rc, "point %lld is the disks' last word",
				 (long long)live->point);
		json_decref(ask);
		json_decref(reply);
		live->promote_ms = util_now_ms() - started_ms;
	}
	if (rc < 0)
		return ferry_error_set(rc,
				       "%s is paused at %s, but its final delta did not land (%s); "
				       "do not resume it by hand: ferry run resume %lld retries",
				       live->name, live->dest_uri, ferry_error_message(),
				       (long long)run->id);
	started_ms = util_now_ms();
	seq = cutover_step_begin(run, "resume %s at %s", live->name, live->dest_uri);
	rc = cutover_virt_domain(live->destination, live->dest_uri, live->name, &live->moved);
	if (rc == 0 && virDomainResume(live->moved) < 0)
		rc = ferry_error_set(FERRY_ERR_IO, "cannot resume %s at %s: %s", live->name,
				     live->dest_uri, cutover_virt_message());
	if (rc == 0) {
		virTypedParameterPtr stats = NULL;
		int type, count = 0;

		downtime_ms = util_now_ms() - live->returned_ms;
		live->resume_ms = util_now_ms() - started_ms;
		/* The destination's completed job carries the source's statistics. */
		if (virDomainGetJobStats(live->moved, &type, &stats, &count,
					 VIR_DOMAIN_JOB_STATS_COMPLETED) == 0) {
			virTypedParamsGetULLong(stats, count, VIR_DOMAIN_JOB_DOWNTIME,
						&job_downtime);
			virTypedParamsGetULLong(stats, count, VIR_DOMAIN_JOB_MEMORY_BPS,
						&live->memory_bps);
			if (virTypedParamsGetULLong(stats, count, VIR_DOMAIN_JOB_MEMORY_PROCESSED,
						    &live->memory_processed) != 1)
				virTypedParamsGetULLong(stats, count, VIR_DOMAIN_JOB_DATA_PROCESSED,
							&live->memory_processed);
		}
		virTypedParamsFree(stats, count);
		live->qemu_downtime_ms = job_downtime;
	}
	cutover_step_end(run, seq, rc, "running at %s", live->dest_uri);
	if (rc < 0)
		return rc;
	cutover_live_record(run, live, downtime_ms + (int64_t)job_downtime);
	seq = cutover_step_begin(run, "retire %s at the source", live->name);
	cutover_retire_disks(run, &live->record, live->point);
	cutover_step_end(run, seq, 0, "disks no longer replicated from here");
	rc = cutover_validate(run, &live->record, live->dest_uri, live->point, true);
	if (rc == 0)
		cutover_live_record_total(run, live);
	return rc;
}

int
cutover_migrate_live(struct cutover_run *run, json_t *request)
{
	struct cutover_live live = {
		.name = cutover_text(request, "vm"),
		.on_timeout = cutover_text(request, "on_timeout"),
		.uri = "",
		.dest_uri = "",
		.site_name = "",
	};
	int64_t dirty_started_ms;
	int rc = cutover_live_check(run, request, &live);

	if (rc < 0)
		goto out;
	dirty_started_ms = cutover_dirty_rate_start(live.domain);
	if (json_is_true(json_object_get(request, "dry_run"))) {
		rc = cutover_predict(run, &live.record, live.domain, live.name, dirty_started_ms,
				     &live.predicted);
		if (rc == 0)
			json_array_append(run->vms, live.predicted);
		goto out;
	}
	/* Catch up first, so that the final delta, shipped while the guest is frozen, is small;
	 * QEMU samples the dirty rate meanwhile. */
	rc = cutover_final_point(run, &live.record, util_now_ms(), true, &live.point, &live.bytes);
	if (rc == 0)
		rc = cutover_predict(run, &live.record, live.domain, live.name, dirty_started_ms,
				     &live.predicted);
	if (rc < 0)
		goto out;
	if (cutover_abort_requested(run->id)) {
		cutover_abort_close(run->id);
		rc = cutover_aborted(run, live.name, live.uri, "before the memory copy");
		goto out;
	}
	rc = cutover_live_copy_memory(run, request, &live);
	if (rc == 0 && !live.go_cold)
		rc = cutover_live_switch(run, &live);
out:
	free(live.live_xml);
	free(live.persistent_xml);
	json_decref(live.remap);
	json_decref(live.predicted);
	cutover_record_free(&live.record);
	if (live.moved)
		virDomainFree(live.moved);
	if (live.domain)
		virDomainFree(live.domain);
	cutover_virt_close(live.destination);
	cutover_virt_close(live.connection);
	if (live.go_cold)
		rc = cutover_migrate_cold(run, request);
	return rc;
}
