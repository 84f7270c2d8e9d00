/* Rollback of an interrupted or failed run: a planned migration that never got the VM running
 * at the destination starts it again at the source; a test failover is cleaned up. */
#include "cutover/internal.h"

/* A planned migration cut short before the VM ran at the destination: the VM goes back to
 * running at the source, whose disks are still replicated. Anything else is refused with what
 * to do instead. */
static int
cutover_rollback_migration(struct cutover_run *run, json_t *request, int seq)
{
	const char *of = cutover_text(request, "of");
	json_t *original = json_object_get(request, "request");
	int64_t original_id = json_integer_value(json_object_get(request, "run"));
	const char *name = cutover_text(original, "vm"), *uri = "", *dest_uri = "";
	virConnectPtr connection = NULL, destination = NULL;
	virDomainPtr domain = NULL, moved = NULL;
	struct cutover_vm_record record = {0};
	int rc = 0;

	if (cutover_kind_find(of) == NULL || !cutover_kind_find(of)->rollbackable) {
		rc = ferry_error_set(
			FERRY_ERR_CONFLICT,
			"a run of kind %s is not rolled back: finish it with ferry run "
			"resume %lld (after a failover, ferry reprotect and a migration "
			"bring the VMs back)",
			of, (long long)original_id);
		goto checked;
	}
	rc = cutover_record_load(run->site->catalog, name, &record);
	if (rc == 0 && cutover_record_state(&record, "primary") == CUTOVER_VM_MIGRATED)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "%s was retired here by that run: it runs at the destination; "
				     "finish with ferry run resume %lld",
				     name, (long long)original_id);
	if (rc == 0) {
		uri = record.uri;
		dest_uri = record.dest_uri;
		/* The destination may not answer: then nothing runs there that this site started.
		 */
		if (cutover_virt_open(dest_uri, &destination) == 0 &&
		    cutover_virt_domain(destination, dest_uri, name, &moved) == 0 &&
		    virDomainIsActive(moved) == 1)
			rc = ferry_error_set(
				FERRY_ERR_CONFLICT,
				"%s is already active at %s: the migration got that far; "
				"finish it with ferry run resume %lld",
				name, dest_uri, (long long)original_id);
	}
	if (rc == 0)
		rc = cutover_virt_open(uri, &connection);
	if (rc == 0)
		rc = cutover_virt_domain(connection, uri, name, &domain);
checked:
	cutover_step_end(run, seq, rc, "%s never ran at the destination", name);
	if (rc < 0) {
		run->refused = true;
		goto out;
	}
	seq = cutover_step_begin(run, "start %s again at %s", name, uri);
	if (virDomainIsActive(domain) == 1)
		cutover_step_end(run, seq, 0, "it still runs there");
	else if (virDomainCreate(domain) == 0)
		cutover_step_end(run, seq, 0, "running");
	else
		rc = cutover_step_end(run, seq,
				      ferry_error_set(FERRY_ERR_IO, "cannot start %s at %s: %s",
						      name, uri, cutover_virt_message()),
				      NULL);
	json_array_append_new(run->vms, json_pack("{s:s}", "name", name));
out:
	cutover_record_free(&record);
	if (moved)
		virDomainFree(moved);
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(destination);
	cutover_virt_close(connection);
	return rc;
}

int
cutover_rollback(struct cutover_run *run, json_t *request)
{
	const char *of = cutover_text(request, "of");
	int64_t original_id = json_integer_value(json_object_get(request, "run"));
	int rc, seq;

	seq = cutover_step_begin(run, "check run %lld (%s) can be rolled back",
				 (long long)original_id, of);
	if (strcmp(of, "failover-test") == 0) {
		cutover_step_end(run, seq, 0, "a test failover: its clean-up");
		rc = cutover_cleanup(run, json_object_get(request, "request"));
	} else {
		rc = cutover_rollback_migration(run, request, seq);
	}
	if (rc == 0 &&
	    catalog_run_transition(run->site->catalog, original_id,
				   CATALOG_RUN_MASK(CATALOG_RUN_INTERRUPTED) |
					   CATALOG_RUN_MASK(CATALOG_RUN_FAILED),
				   CATALOG_RUN_ROLLED_BACK, "rolled back by a later run") < 0)
		rc = ferry_error_set(ferry_error_last_code(),
				     "run %lld was rolled back, but its status could not be "
				     "recorded: %s",
				     (long long)original_id, ferry_error_message());
	return rc;
}
