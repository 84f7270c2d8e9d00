/* Planned cold migration, run at the primary site: the VM is shut down, its final delta
 * shipped and committed, and it is started at the replica site from that point. */
#include "cutover/internal.h"

struct cutover_progress {
	const char *group;
	int64_t after_ms;
	const struct cutover_vm_record *record;
	int64_t bytes_sent;
	int64_t point;
	int done, total;
};

static int
cutover_progress_entry(const struct catalog_protection *protection, void *context)
{
	struct cutover_progress *progress = context;

	for (size_t i = 0; i < progress->record->disk_count; i++) {
		if (strcmp(progress->record->disks[i].source, protection->source) != 0)
			continue;
		progress->total++;
		if (protection->last_point_ms >= progress->after_ms &&
		    protection->pending_point == 0) {
			progress->done++;
			progress->bytes_sent += protection->last_bytes_sent;
			progress->point = protection->last_point;
		}
	}
	return 0;
}

/* Waits until every disk has a committed point taken after after_ms: the final delta, or with
 * catch_up the point that brings the replicas up to date before a live migration's memory copy
 * (each its own step name, so that a run's steps say which is which). */
int
cutover_final_point(struct cutover_run *run, const struct cutover_vm_record *record,
		    int64_t after_ms, bool catch_up, int64_t *point, int64_t *bytes)
{
	const char *group = record->group;
	int64_t until = util_now_ms() + 600 * 1000;
	unsigned polls = 0;
	int seq = cutover_step_begin(run,
				     catch_up ? "catch up group %s before the memory copy"
					      : "ship the final delta of group %s",
				     group);

	for (;;) {
		struct cutover_progress progress = {group, after_ms, record, 0, 0, 0, 0};
		int rc;

		/* Polled often: the guest may be frozen meanwhile. */
		if (polls++ % 10 == 0)
			repl_scheduler_request(run->site->scheduler, group);
		rc = catalog_protection_list(run->site->catalog, cutover_progress_entry, &progress);
		if (rc < 0)
			return cutover_step_end(run, seq, rc, NULL);
		if (progress.total == 0)
			return cutover_step_end(
				run, seq,
				ferry_error_set(FERRY_ERR_CONFLICT,
						"the disks of %s are no longer protected here",
						record->name),
				NULL);
		if (progress.done == progress.total) {
			*point = progress.point;
			*bytes = progress.bytes_sent;
			return cutover_step_end(run, seq, 0, "point %lld committed, %lld bytes",
						(long long)progress.point,
						(long long)progress.bytes_sent);
		}
		if (util_now_ms() > until)
			return cutover_step_end(
				run, seq,
				ferry_error_set(FERRY_ERR_NETWORK,
						"the final delta did not commit within 10 minutes; "
						"see ferry status"),
				NULL);
		nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
	}
}

/* Starts the activation of a VM at the replica site (the peer route, so that a peer token
 * suffices) and waits for its end. */
static int
cutover_remote_run(struct cutover_run *run, const char *site_name, json_t *request, json_t **result)
{
	struct api_client *client = NULL;
	json_t *reply = NULL;
	char path[64];
	int rc;

	*result = NULL;
	rc = cutover_site_client(run->site->catalog, site_name, &client);
	if (rc == 0)
		rc = api_client_json(client, "POST", "/v1/vms/activate", request, &reply);
	if (rc < 0)
		goto out;
	snprintf(path, sizeof(path), "/v1/runs/%lld",
		 (long long)json_integer_value(json_object_get(reply, "run")));
	for (;;) {
		const char *status;

		json_decref(reply);
		reply = NULL;
		rc = api_client_json(client, "GET", path, NULL, &reply);
		if (rc < 0)
			goto out;
		status = cutover_text(reply, "status");
		if (strcmp(status, catalog_run_status_name(CATALOG_RUN_RUNNING)) != 0) {
			if (strcmp(status, catalog_run_status_name(CATALOG_RUN_COMPLETED)) != 0)
				rc = ferry_error_set(FERRY_ERR_REMOTE, "run %s at site %s %s: %s",
						     path + 9, site_name, status,
						     cutover_text(reply, "reason"));
			break;
		}
		nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);
	}
	*result = json_incref(reply);
out:
	json_decref(reply);
	api_client_free(client);
	return rc;
}

/* After the switch: the source's disks leave replication and their RBD group; the record
 * says where the VM went. */
void
cutover_retire_disks(struct cutover_run *run, struct cutover_vm_record *record, int64_t point)
{
	for (size_t i = 0; i < record->disk_count; i++) {
		const char *source = record->disks[i].source;

		if (strncmp(source, "rbd:", 4) != 0)
			continue;
		/* The image stays as it was at the final point, which the other site holds too:
		 * kept as a snapshot of its own, a later reprotect ships back only what changed
		 * since. */
		if (repl_protection_remove(run->site->catalog, source, record->group, point) < 0)
			log_warn("%s: %s", source, ferry_error_message());
	}
	cutover_record_mark_migrated(record, run->id);
	if (cutover_record_store(run->site->catalog, record, "primary") < 0)
		log_warn("VM %s: %s", record->name, ferry_error_message());
}

/* Every disk of the VM has a committed point at the replica site, its replication works and
 * it is not lagging (catalog_protection_lagging(): its group's RPO target), or lags at most
 * max_lag_s when the operator gives it: else the final delta could not land, or would take long
 * while the guest waits. */
int
cutover_check_replicas(const struct cutover_site *site, const struct cutover_vm_record *record,
		       int64_t max_lag_s)
{
	const char *name = record->name;
	struct catalog_group group;

	if (max_lag_s <= 0)
		max_lag_s = catalog_group_get(site->catalog, record->group, &group) == 0
				    ? catalog_group_rpo_target(&group)
				    : 300;
	for (size_t i = 0; i < record->disk_count; i++) {
		struct catalog_protection protection;
		const char *source = record->disks[i].source;
		int64_t lag_s;

		if (catalog_protection_get(site->catalog, source, &protection) < 0)
			return ferry_error_set(FERRY_ERR_CONFLICT,
					       "disk %s of %s is not replicated from here; protect "
					       "the VM again (ferry vm protect)",
					       source, name);
		if (protection.last_point < 1)
			return ferry_error_set(FERRY_ERR_CONFLICT,
					       "disk %s of %s has no committed point at site %s "
					       "yet; wait for its first point (ferry status)",
					       source, name, protection.site);
		if (strcmp(protection.state, "error") == 0)
			return ferry_error_set(
				FERRY_ERR_CONFLICT,
				"replication of disk %s of %s to site %s fails (%s); "
				"fix that first (ferry status)",
				source, name, protection.site, protection.reason);
		lag_s = (util_now_ms() - protection.last_point_ms) / 1000;
		if (lag_s > max_lag_s)
			return ferry_error_set(FERRY_ERR_CONFLICT,
					       "disk %s of %s lags %lld s behind at site %s, more "
					       "than %lld s (--max-lag); let replication catch up "
					       "(ferry status) or allow more with --max-lag",
					       source, name, (long long)lag_s, protection.site,
					       (long long)max_lag_s);
	}
	return 0;
}

int
cutover_migrate_cold(struct cutover_run *run, json_t *request)
{
	const char *name = cutover_text(request, "vm");
	json_int_t timeout_s = json_integer_value(json_object_get(request, "shutdown_timeout"));
	bool force = json_is_true(json_object_get(request, "force"));
	virConnectPtr connection = NULL, destination = NULL;
	virDomainPtr domain = NULL;
	struct cutover_vm_record record = {0};
	json_t *remote = NULL;
	int64_t off_ms = 0, point = 0, bytes = 0, stopped_ms;
	bool was_running = false, restart = false;
	const char *uri;
	int rc, seq;

	seq = cutover_step_begin(run, "check %s, the destination and the replicas", name);
	rc = cutover_record_load(run->site->catalog, name, &record);
	uri = record.uri;
	if (rc == 0)
		rc = cutover_check_replicas(
			run->site, &record,
			json_integer_value(json_object_get(request, "max_lag")));
	if (rc == 0)
		rc = cutover_virt_open(uri, &connection);
	if (rc == 0)
		rc = cutover_virt_domain(connection, uri, name, &domain);
	if (rc == 0)
		rc = cutover_virt_open(record.dest_uri, &destination);
	if (rc == 0) {
		/* Refused here, while the VM still runs: after the shutdown it would not start.
		 * The saved definition is what the destination will start. */
		char *xml = virDomainGetXMLDesc(domain,
						VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_INACTIVE);

		rc = xml ? cutover_check_destination(destination, record.dest_uri, name, xml)
			 : ferry_error_set(FERRY_ERR_IO, "cannot read the XML of %s: %s", name,
					   cutover_virt_message());
		free(xml);
	}
	cutover_virt_close(destination);
	cutover_step_end(run, seq, rc, "ready");
	if (rc < 0) {
		run->refused = true;
		goto out;
	}
	/* The point of no return: once asked to shut down, the VM is on its way. */
	if (cutover_abort_close(run->id)) {
		rc = cutover_aborted(run, name, uri, "before the shutdown");
		goto out;
	}
	if (timeout_s <= 0)
		timeout_s = 120;
	stopped_ms = util_now_ms();
	was_running = virDomainIsActive(domain) == 1;
	seq = cutover_step_begin(run, "shut %s down (at most %lld s)", name, (long long)timeout_s);
	if (was_running) {
		if (virDomainShutdown(domain) < 0 && !force)
			rc = ferry_error_set(FERRY_ERR_IO, "cannot ask %s to shut down: %s", name,
					     cutover_virt_message());
		if (rc == 0)
			rc = cutover_virt_wait_off(domain, name, timeout_s * 1000);
		if (rc < 0 && force) {
			rc = virDomainDestroy(domain) == 0
				     ? 0
				     : ferry_error_set(FERRY_ERR_IO, "cannot power %s off: %s",
						       name, cutover_virt_message());
			if (rc == 0)
				cutover_step_end(run, seq, 0,
						 "did not shut down in time: powered "
						 "off (--force)");
		} else if (rc < 0) {
			ferry_error_set(rc,
					"%s did not shut down within %lld s and keeps running "
					"here: shut it down from inside, or re-run with --force "
					"to power it off after the timeout",
					name, (long long)timeout_s);
			cutover_step_end(run, seq, rc, NULL);
			goto out;
		} else {
			cutover_step_end(run, seq, 0, "shut off");
		}
	} else {
		cutover_step_end(run, seq, 0, "was not running");
	}
	if (rc < 0)
		goto out;
	restart = was_running;
	off_ms = util_now_ms();
	rc = cutover_final_point(run, &record, off_ms, false, &point, &bytes);
	if (rc < 0)
		goto out;
	seq = cutover_step_begin(run, "start %s at site %s from point %lld", name, record.site,
				 (long long)point);
	{
		json_t *activate = json_pack("{s:s, s:s, s:I}", "kind", "activate", "vm", name,
					     "point", (json_int_t)point);

		rc = cutover_remote_run(run, record.site, activate, &remote);
		json_decref(activate);
	}
	cutover_step_end(run, seq, rc, "running at %s", record.dest_uri);
	if (rc < 0)
		goto out;
	restart = false; /* the switch: from here on the VM lives at the destination */
	json_array_append_new(run->vms, json_pack("{s:s, s:I, s:I, s:I}", "name", name, "point",
						  (json_int_t)point, "downtime_ms",
						  (json_int_t)(util_now_ms() - stopped_ms),
						  "final_delta_bytes", (json_int_t)bytes));
	seq = cutover_step_begin(run, "retire %s at the source", name);
	if (virDomainUndefine(domain) < 0)
		log_warn("%s: cannot undefine at %s: %s", name, uri, cutover_virt_message());
	cutover_retire_disks(run, &record, point);
	cutover_step_end(run, seq, 0, "undefined here, disks no longer replicated from here");
	rc = cutover_validate(run, &record, record.dest_uri, point, true);
out:
	if (restart && domain) {
		/* Before the switch a failure leaves the VM where it was: running at the source. */
		int restart_seq = cutover_step_begin(run, "start %s again at the source", name);
		int saved = ferry_error_last_code();
		char message[1024];

		snprintf(message, sizeof(message), "%s", ferry_error_message());
		cutover_step_end(
			run, restart_seq,
			virDomainCreate(domain) == 0
				? 0
				: ferry_error_set(FERRY_ERR_IO, "%s", cutover_virt_message()),
			"running at %s", uri);
		ferry_error_set(saved, "%s", message);
	}
	json_decref(remote);
	cutover_record_free(&record);
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
	return rc;
}
