/* The last step of every cutover: proof that the VM runs, and runs on the right bytes. "The
 * domain started" is not enough: the guest must be running and making progress, and after a
 * planned migration each disk's committed point at the destination must read back equal to the
 * source's own point, each digest computed at its own site. */
#include "cutover/internal.h"

#include "common/checksum.h"
#include "common/segment.h"

/* How long the guest's CPU time is watched for progress: an idle guest under TCG on a busy host
 * may take seconds to use a clock tick's worth (libvirt counts in ticks of 10 ms). */
#define CUTOVER_VALIDATE_WATCH_MS 10000

/* The guest runs at uri and its CPU time advances within the watch; *advanced_ms says by how
 * much. */
static int
cutover_validate_running(const char *uri, const char *name, int64_t *advanced_ms)
{
	virConnectPtr connection = NULL;
	virDomainPtr domain = NULL;
	virDomainInfo first, now;
	int64_t until = util_now_ms() + CUTOVER_VALIDATE_WATCH_MS;
	int rc;

	*advanced_ms = 0;
	rc = cutover_virt_open(uri, &connection);
	if (rc == 0)
		rc = cutover_virt_domain(connection, uri, name, &domain);
	if (rc == 0 && virDomainGetInfo(domain, &first) < 0)
		rc = ferry_error_set(FERRY_ERR_IO, "cannot read the state of %s at %s: %s", name,
				     uri, cutover_virt_message());
	while (rc == 0) {
		if (first.state != VIR_DOMAIN_RUNNING) {
			rc = ferry_error_set(
				FERRY_ERR_CONFLICT,
				"%s is not running at %s after the cutover (libvirt "
				"state %d): see its log at the destination, then start "
				"it there or roll back",
				name, uri, (int)first.state);
			break;
		}
		nanosleep(&(struct timespec){0, 250 * 1000000L}, NULL);
		if (virDomainGetInfo(domain, &now) < 0) {
			rc = ferry_error_set(FERRY_ERR_IO, "cannot read the state of %s at %s: %s",
					     name, uri, cutover_virt_message());
			break;
		}
		first.state = now.state;
#ifdef FERRY_FAULT_INJECTION
		/* Test hook: FERRY_FAULT_VALIDATE_STUCK=1 shows a guest whose CPU time stands
		 * still. */
		if (getenv("FERRY_FAULT_VALIDATE_STUCK"))
			now.cpuTime = first.cpuTime;
#endif
		if (now.cpuTime > first.cpuTime) {
			*advanced_ms = (int64_t)((now.cpuTime - first.cpuTime) / 1000000);
			break;
		}
		if (util_now_ms() > until)
			rc = ferry_error_set(FERRY_ERR_CONFLICT,
					     "%s runs at %s but its CPU time did not advance in %d "
					     "s: the guest is stuck; look at its console there",
					     name, uri, CUTOVER_VALIDATE_WATCH_MS / 1000);
	}
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
	return rc;
}

/* Each disk's point at site_name (the replica's snapshot ferry-N, digested there) against the
 * source's own point here (its group snapshot), digested here. */
static int
cutover_validate_disks(struct cutover_run *run, const struct cutover_vm_record *record,
		       int64_t point, size_t *compared)
{
	int rc = 0;

	*compared = 0;
	for (size_t i = 0; rc == 0 && i < record->disk_count; i++) {
		const struct cutover_vm_disk *disk = &record->disks[i];
		char here[DIGEST_STRING_SIZE], at_point[600], path[VOLUME_NAME_MAX + 32];
		json_t *ask = NULL, *reply = NULL;
		const char *there;

		snprintf(at_point, sizeof(at_point), "%s@ferry-%lld", disk->source,
			 (long long)point);
		rc = repl_volume_verify(at_point, SEGMENT_SIZE_DEFAULT, here);
		if (rc < 0)
			break;
		snprintf(path, sizeof(path), "/v1/volumes/%s/verify", disk->replica);
		ask = json_pack("{s:I, s:I}", "segment_size", (json_int_t)SEGMENT_SIZE_DEFAULT,
				"point", (json_int_t)point);
		rc = ask ? cutover_site_call(run->site->catalog, record->site, path, ask, &reply)
			 : ferry_error_no_memory();
		there = cutover_text(reply, "digest");
#ifdef FERRY_FAULT_INJECTION
		/* Test hook: FERRY_FAULT_VALIDATE_DIGEST=1 makes the source's digest differ, as a
		 * replica that does not hold the point's bytes would. */
		if (getenv("FERRY_FAULT_VALIDATE_DIGEST") && here[0]) {
			size_t last = strlen(here) - 1;

			here[last] = here[last] == '0' ? '1' : '0';
		}
#endif
		if (rc == 0 && strcmp(here, there) != 0)
			rc = ferry_error_set(
				FERRY_ERR_CHECKSUM,
				"disk %s of %s at site %s differs from point %lld (%s "
				"there, %s here): the VM does not run on the committed "
				"point; stop it there and compare the images (ferry "
				"verify) before it writes more",
				disk->target, record->name, record->site, (long long)point, there,
				here);
		json_decref(ask);
		json_decref(reply);
		if (rc == 0)
			(*compared)++;
	}
	return rc;
}

int
cutover_validate(struct cutover_run *run, const struct cutover_vm_record *record, const char *uri,
		 int64_t point, bool compare_disks)
{
	int64_t advanced_ms = 0;
	size_t compared = 0;
	int rc, seq = cutover_step_begin(run, "validate %s at %s", record->name, uri);

	rc = cutover_validate_running(uri, record->name, &advanced_ms);
	if (rc == 0 && compare_disks)
		rc = cutover_validate_disks(run, record, point, &compared);
	if (rc < 0)
		return cutover_step_end(run, seq, rc, NULL);
	if (compare_disks)
		return cutover_step_end(run, seq, 0,
					"running, CPU time advancing (+%lld ms); %zu disk(s) at "
					"site %s equal to point %lld here (digests)",
					(long long)advanced_ms, compared, record->site,
					(long long)point);
	return cutover_step_end(run, seq, 0, "running, CPU time advancing (+%lld ms)",
				(long long)advanced_ms);
}
