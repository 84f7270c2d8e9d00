/* Activation at the replica site: failover, test failover and the last part of a cold
 * migration bring VMs up from one committed point; failover-cleanup removes test VMs. */
#include "cutover/internal.h"

struct cutover_vm_list {
	struct cutover_vm_records records;
	const char *name;
};

static int
cutover_vm_collect(const char *name, const char *role, const char *group, const char *text,
		   void *context)
{
	struct cutover_vm_list *list = context;
	struct cutover_vm_record *grown;
	json_t *parsed;
	int rc;

	(void)group;
	(void)role;
	if (list->name && strcmp(list->name, name) != 0)
		return 0;
	grown = realloc(list->records.items, (list->records.count + 1) * sizeof(*grown));
	if (grown == NULL)
		return ferry_error_no_memory();
	list->records.items = grown;
	parsed = json_loads(text, 0, NULL);
	rc = parsed ? cutover_record_parse(parsed, &grown[list->records.count])
		    : ferry_error_set(FERRY_ERR_INTERNAL, "the record of VM %s does not parse",
				      name);
	json_decref(parsed);
	if (rc < 0) {
		cutover_record_free(&grown[list->records.count]);
		return rc;
	}
	list->records.count++;
	return 0;
}

static int
cutover_order_compare(const void *a, const void *b)
{
	const struct cutover_vm_record *left = a, *right = b;

	if (left->order != right->order)
		return left->order < right->order ? -1 : 1;
	return strcmp(left->name, right->name);
}

/* The records of request's vm or group, in recovery order. */
int
cutover_vms_of(struct catalog *catalog, json_t *request, struct cutover_vm_records *out)
{
	struct cutover_vm_list list = {{NULL, 0}, NULL};
	const char *name = cutover_text(request, "vm"), *group = cutover_text(request, "group");
	int rc;

	*out = (struct cutover_vm_records){NULL, 0};
	list.name = name[0] ? name : NULL;
	rc = catalog_vm_list(catalog, group[0] ? group : NULL, cutover_vm_collect, &list);
	if (rc == 0 && list.records.count == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no protected VM %s%s at this site; register it with ferry vm "
				     "protect at the primary site",
				     name[0] ? name : "in group ", name[0] ? "" : group);
	if (rc < 0) {
		cutover_vm_records_free(&list.records);
		return rc;
	}
	qsort(list.records.items, list.records.count, sizeof(*list.records.items),
	      cutover_order_compare);
	*out = list.records;
	return 0;
}

/* Fencing keeps two copies from writing: the VM is destroyed at its primary site when that site
 * answers. The step records exactly what happened. A primary that answers but could not fence
 * the VM stops the failover before anything starts here (FERRY_ERR_CONFLICT), unless force:
 * then the step says it was forced. An unreachable primary is no refusal: that is the disaster
 * a failover is for. */
static int
cutover_fence(struct cutover_run *run, const struct cutover_vm_record *record, bool force)
{
	const char *name = record->name, *uri = record->uri;
	virConnectPtr connection = NULL;
	virDomainPtr domain = NULL;
	char failure[512] = "";
	int active, rc = 0, seq = cutover_step_begin(run, "fence %s at the primary site", name);

	if (cutover_virt_open(uri, &connection) < 0) {
		cutover_step_end(run, seq, 0, "primary site unreachable, not fenced: %s",
				 ferry_error_message());
		return 0;
	}
	if (cutover_virt_domain(connection, uri, name, &domain) < 0) {
		cutover_step_end(run, seq, 0, "not defined at %s", uri);
		goto out;
	}
	active = virDomainIsActive(domain);
#ifdef FERRY_FAULT_INJECTION
	/* Test hook: FERRY_FAULT_FENCE_FAIL=1 makes the destroy fail, as a libvirt that answers but
	 * cannot stop the domain (a hung QEMU, a denied call) would. */
	if (active == 1 && getenv("FERRY_FAULT_FENCE_FAIL")) {
		snprintf(failure, sizeof(failure), "FERRY_FAULT_FENCE_FAIL: the destroy failed");
		active = -1;
	}
#endif
	if (active == 0) {
		cutover_step_end(run, seq, 0, "was not running at %s", uri);
		goto out;
	}
	if (active == 1 && virDomainDestroy(domain) == 0) {
		cutover_step_end(run, seq, 0, "destroyed at %s", uri);
		goto out;
	}
	if (!failure[0])
		snprintf(failure, sizeof(failure), "%s", cutover_virt_message());
	if (force) {
		cutover_step_end(run, seq, 0,
				 "failed to destroy at %s (%s); going on as --force asked: it may "
				 "still be running there",
				 uri, failure);
		goto out;
	}
	rc = cutover_step_end(
		run, seq,
		ferry_error_set(
			FERRY_ERR_CONFLICT,
			"%s answers at %s but could not be fenced (%s): nothing was started "
			"here, so that two copies never write; stop it there, or give --force "
			"to fail over anyway",
			name, uri, failure[0] ? failure : "its state is unknown"),
		NULL);
	run->refused = true;
out:
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
	return rc;
}

void
cutover_replica_location(const struct cutover_site *site, const struct cutover_vm_disk *disk,
			 char *out, size_t size)
{
	snprintf(out, size, "rbd:%s/%s", site->replica_pool, disk->replica);
}

#define CUTOVER_POINTS_MAX 1024

/* The points all of one VM's disks hold (they share one RBD group snapshot each time), and
 * the time of the oldest newest one, for the RPO. */
static int
cutover_vm_points(struct cutover_run *run, const struct cutover_vm_record *record, int64_t *common,
		  size_t *common_count, int64_t *point_time)
{
	int64_t *points = calloc(CUTOVER_POINTS_MAX, sizeof(*points));
	bool first = true;
	int rc = 0;

	if (points == NULL)
		return ferry_error_no_memory();
	*common_count = 0;
	*point_time = 0;
	for (size_t j = 0; j < record->disk_count; j++) {
		int64_t newest_time = 0;
		size_t count = 0, kept = 0;
		char location[600];

		cutover_replica_location(run->site, &record->disks[j], location, sizeof(location));
		rc = repl_point_list(location, points, CUTOVER_POINTS_MAX, &count, &newest_time);
		if (rc < 0)
			break;
		if (count == 0) {
			rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
					     "%s has no committed point yet: nothing to fail over "
					     "to",
					     location);
			break;
		}
		if (*point_time == 0 || newest_time < *point_time)
			*point_time = newest_time;
		if (first) {
			memcpy(common, points, count * sizeof(points[0]));
			*common_count = count;
			first = false;
			continue;
		}
		kept = cutover_point_intersect(common, *common_count, points, count);
		*common_count = kept;
		if (kept == 0) {
			rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
					     "%s holds none of the points the other disks of VM %s "
					     "hold (see their snapshots ferry-N): no instant is "
					     "common to them all",
					     location, record->name);
			break;
		}
	}
	free(points);
	return rc;
}

/* Picks the point each VM comes up from (cutover_point_choose() says how) and records the
 * choice as a step. A VM that joined its group moments before the primary was lost may share
 * no point with the rest (its first point had landed, theirs not yet): it comes up from its own
 * newest point, all its disks at one instant still, and the run says so; refusing would leave
 * it down. */
struct cutover_vm_choice {
	int64_t point;	    /* the point the VM comes up from */
	int64_t point_time; /* for its RPO */
	bool shares;	    /* at the point the group shares */
};

static int
cutover_choose_points(struct cutover_run *run, const struct cutover_vm_records *vms, int64_t wanted,
		      struct cutover_vm_choice *choices)
{
	size_t vm_count = vms->count, apart = 0, missing = 0, i;
	int64_t(*points)[CUTOVER_POINTS_MAX] = calloc(vm_count + 1, sizeof(*points));
	struct cutover_point_set *sets = calloc(vm_count + 1, sizeof(*sets));
	struct cutover_point_choice *chosen = calloc(vm_count + 1, sizeof(*chosen));
	int64_t best = 0;
	char apart_names[512] = "";
	int rc = 0, seq = cutover_step_begin(run, "choose the point");

	if (points == NULL || sets == NULL || chosen == NULL) {
		rc = ferry_error_set(FERRY_ERR_NO_MEMORY,
				     "no memory to choose the point of %zu VMs", vm_count);
		goto out;
	}
	for (i = 0; i < vm_count; i++) {
		rc = cutover_vm_points(run, &vms->items[i], points[i], &sets[i].count,
				       &choices[i].point_time);
		if (rc < 0)
			goto out;
		sets[i].points = points[i];
	}
	rc = cutover_point_choose(sets, vm_count, wanted, chosen, &best, &missing);
	if (rc < 0) {
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "point %lld is not held by every disk (not by those of "
				     "%s); see their snapshots ferry-N for the points kept",
				     (long long)wanted,
				     missing < vm_count ? vms->items[missing].name : "?");
		goto out;
	}
	for (i = 0; i < vm_count; i++) {
		choices[i].point = chosen[i].point;
		choices[i].shares = chosen[i].shares;
		if (chosen[i].shares)
			continue;
		apart++;
		snprintf(apart_names + strlen(apart_names),
			 sizeof(apart_names) - strlen(apart_names), "%s%s at %lld",
			 apart > 1 ? ", " : "", vms->items[i].name, (long long)choices[i].point);
	}
	if (apart > 0)
		log_warn("run %" PRId64
			 ": no point is common to all %zu VMs; %zu come up from point "
			 "%lld, and from their own newest point: %s",
			 run->id, vm_count, vm_count - apart, (long long)best, apart_names);
out:
	free(points);
	free(sets);
	free(chosen);
	if (rc < 0)
		return cutover_step_end(run, seq, rc, NULL);
	if (apart > 0)
		return cutover_step_end(run, seq, 0,
					"point %lld for %zu of %zu VMs; no point is common to all: "
					"%s (its own newest, not the same instant as the rest)",
					(long long)best, vm_count - apart, vm_count, apart_names);
	return cutover_step_end(run, seq, 0, "point %lld", (long long)best);
}

/* Rewrites xml (a domain of record) for this site: disks onto images, this site's Ceph. */
static int
cutover_remap_here(const struct cutover_site *site, const struct cutover_vm_record *record,
		   json_t *images, bool isolate, const char *xml, char **out)
{
	char host[256], port[16];
	int rc;

	rc = cutover_ceph_mon(site->ceph_conf ? site->ceph_conf : "", host, sizeof(host), port,
			      sizeof(port));
	if (rc == 0)
		rc = cutover_xml_remap(xml,
				       &(struct cutover_remap){
					       .images = images,
					       .mon_host = host,
					       .mon_port = port,
					       .ceph_conf = site->ceph_conf,
					       .network_map = record->network_map,
					       .isolate = isolate,
				       },
				       out);
	/* What this site's libvirt is given to define must pass the allow-list, whoever sent
	 * it: a record stored before the check existed too. */
	if (rc == 0 && (rc = cutover_domain_check(*out)) < 0) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

/* The replica images of record's disks at this site: {"vda": "POOL/IMAGE"}. */
static json_t *
cutover_replica_images(const struct cutover_site *site, const struct cutover_vm_record *record)
{
	json_t *images = json_object();
	char image[400];

	for (size_t i = 0; images && i < record->disk_count; i++) {
		snprintf(image, sizeof(image), "%s/%s", site->replica_pool,
			 record->disks[i].replica);
		json_object_set_new(images, record->disks[i].target, json_string(image));
	}
	return images;
}

int
cutover_vm_remap(const struct cutover_site *site, json_t *request, json_t **reply)
{
	const char *name = cutover_text(request, "name");
	struct cutover_vm_record record = {0};
	json_t *images = NULL;
	char *xml = NULL, *persistent = NULL;
	int rc;

	*reply = NULL;
	rc = cutover_record_load(site->catalog, name, &record);
	if (rc == 0 && (!json_is_string(json_object_get(request, "xml")) ||
			!json_is_string(json_object_get(request, "persistent_xml"))))
		rc = ferry_error_set(FERRY_ERR_INVALID, "give the 'xml' and 'persistent_xml'");
	if (rc < 0)
		goto out;
	images = cutover_replica_images(site, &record);
	rc = cutover_remap_here(site, &record, images, false, cutover_text(request, "xml"), &xml);
	if (rc == 0)
		rc = cutover_remap_here(site, &record, images, false,
					cutover_text(request, "persistent_xml"), &persistent);
	if (rc == 0)
		*reply = json_pack("{s:s, s:s}", "xml", xml, "persistent_xml", persistent);
out:
	free(xml);
	free(persistent);
	json_decref(images);
	cutover_record_free(&record);
	return rc;
}

/* Whether VM index is the last of vms in its group. */
static bool
cutover_group_last(const struct cutover_vm_records *vms, size_t index)
{
	for (size_t i = index + 1; i < vms->count; i++)
		if (strcmp(vms->items[i].group, vms->items[index].group) == 0)
			return false;
	return true;
}

struct cutover_group_volumes {
	struct catalog *catalog;
	const char *group;
	size_t kept, promoted;
};

static int
cutover_group_volume(const struct catalog_volume *volume, void *context)
{
	struct cutover_group_volumes *count = context;
	int64_t promoted_by = 0;

	if (strcmp(volume->group, count->group) != 0)
		return 0;
	count->kept++;
	if (catalog_promoted_get(count->catalog, volume->name, &promoted_by) == 0 && promoted_by)
		count->promoted++;
	return 0;
}

/* Once every replica of group kept here is promoted, the group has moved here and this site is
 * its one writer: its generation rises, so that a push from the old primary is a split brain.
 * While some still are replicas (a migration of one VM of the group, the others still running
 * at the primary), the old primary writes those legitimately and the promoted marks alone
 * guard the moved ones. */
static int
cutover_group_moved_here(struct catalog *catalog, const char *group)
{
	struct cutover_group_volumes count = {catalog, group, 0, 0};
	int rc = catalog_volume_list(catalog, cutover_group_volume, &count);

	if (rc == 0 && count.kept > 0 && count.promoted == count.kept)
		rc = repl_group_generation_raise(catalog, group, NULL);
	return rc;
}

int
cutover_vm_promote(const struct cutover_site *site, const char *name, int64_t run_id, int64_t point)
{
	struct cutover_vm_record record = {0};
	int rc = cutover_record_load(site->catalog, name, &record);

	for (size_t i = 0; rc == 0 && i < record.disk_count; i++)
		rc = catalog_promoted_put(site->catalog, record.disks[i].replica, run_id);
	for (size_t i = 0; rc == 0 && point > 0 && i < record.disk_count; i++)
		rc = catalog_promoted_set_point(site->catalog, record.disks[i].replica, point);
	/* A live migration's switch; the last VM of its group makes the group this site's. */
	if (rc == 0)
		rc = cutover_group_moved_here(site->catalog, record.group);
	/* The point the VM runs on from here: the last one both sites share (reprotect). */
	if (rc == 0 && point > 0) {
		cutover_record_mark_promoted(&record, point);
		rc = cutover_record_store(site->catalog, &record, "replica");
	}
	cutover_record_free(&record);
	return rc;
}

static int
cutover_define_start(struct cutover_run *run, const struct cutover_vm_record *record,
		     json_t *images, bool isolate, bool start)
{
	const char *name = record->name, *uri = record->dest_uri;
	char *xml = NULL;
	virConnectPtr connection = NULL;
	virDomainPtr domain = NULL;
	int rc, seq = cutover_step_begin(run, "define %s at %s", name, uri);

	rc = cutover_remap_here(run->site, record, images, isolate, record->xml ? record->xml : "",
				&xml);
	if (rc == 0)
		rc = cutover_virt_open(uri, &connection);
	if (rc == 0) {
		domain = virDomainDefineXML(connection, xml);
		if (domain == NULL)
			rc = ferry_error_set(FERRY_ERR_IO, "cannot define %s at %s: %s", name, uri,
					     cutover_virt_message());
	}
	cutover_step_end(run, seq, rc, "defined with its disks on this site's replicas");
	if (rc < 0 || !start)
		goto out;
	seq = cutover_step_begin(run, "start %s", name);
	if (virDomainIsActive(domain) != 1 && virDomainCreate(domain) < 0)
		rc = ferry_error_set(FERRY_ERR_IO, "cannot start %s at %s: %s", name, uri,
				     cutover_virt_message());
	cutover_step_end(run, seq, rc, "running at %s", uri);
out:
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
	free(xml);
	return rc;
}

/* Rolls back (or, for a test, clones) the disks of record to point and gives the images the
 * VM comes up from: {"vda": "POOL/IMAGE"}. */
static int
cutover_activate_disks(struct cutover_run *run, struct cutover_vm_record *record, int64_t point,
		       bool test, json_t *images)
{
	int rc = 0;

	for (size_t j = 0; rc == 0 && j < record->disk_count; j++) {
		struct cutover_vm_disk *disk = &record->disks[j];
		char location[600], image[400];
		const char *runs_on = disk->replica;

		cutover_replica_location(run->site, disk, location, sizeof(location));
		repl_receiver_release(run->site->receiver, disk->replica);
		if (test) {
			rc = util_format(disk->test_clone, sizeof(disk->test_clone),
					 "the name of a test clone", "%s-test-%lld", disk->replica,
					 (long long)run->id);
			if (rc == 0)
				rc = repl_point_clone(location, point, disk->test_clone);
			runs_on = disk->test_clone;
		} else {
			rc = catalog_promoted_put(run->site->catalog, disk->replica, run->id);
			if (rc == 0)
				rc = catalog_promoted_set_point(run->site->catalog, disk->replica,
								point);
			if (rc == 0)
				rc = repl_point_rollback(location, point);
		}
		snprintf(image, sizeof(image), "%s/%s", run->site->replica_pool, runs_on);
		if (json_object_set_new(images, disk->target, json_string(image)) != 0 && rc == 0)
			rc = ferry_error_no_memory();
	}
	return rc;
}

/* Failover, test failover, or the last part of a cold migration: brings the VMs up here from
 * one point. mode: "failover", "failover-test" or "activate". */
int
cutover_activate(struct cutover_run *run, json_t *request)
{
	bool test = strcmp(run->kind, "failover-test") == 0;
	bool fence = strcmp(run->kind, "failover") == 0;
	struct cutover_vm_choice *choices = NULL;
	struct cutover_vm_records vms = {NULL, 0};
	size_t i;
	int rc, seq;

	seq = cutover_step_begin(run, "find the VMs");
	rc = cutover_vms_of(run->site->catalog, request, &vms);
	cutover_step_end(run, seq, rc, "%zu VM(s)", vms.count);
	if (rc < 0)
		return rc;
	if (run->site->ceph_conf == NULL) {
		rc = ferry_error_set(FERRY_ERR_INVALID,
				     "this site has no Ceph settings (--ceph-conf), so it keeps no "
				     "replicas to bring VMs up from");
		goto out;
	}
	/* Every VM is fenced before any comes up here: one that could not be stops them all. */
	for (i = 0; fence && rc == 0 && i < vms.count; i++)
		rc = cutover_fence(run, &vms.items[i],
				   json_is_true(json_object_get(request, "force")));
	if (rc < 0)
		goto out;
	choices = calloc(vms.count + 1, sizeof(*choices));
	rc = choices ? cutover_choose_points(run, &vms,
					     json_integer_value(json_object_get(request, "point")),
					     choices)
		     : ferry_error_no_memory();
	if (rc < 0)
		goto out;
	for (i = 0; i < vms.count; i++) {
		struct cutover_vm_record *record = &vms.items[i];
		json_t *images = json_object();
		int64_t point = choices[i].point, point_time = choices[i].point_time;

		seq = cutover_step_begin(run, "%s the disks of %s at point %lld",
					 test ? "clone" : "roll back", record->name,
					 (long long)point);
		rc = images ? cutover_activate_disks(run, record, point, test, images)
			    : ferry_error_no_memory();
		cutover_step_end(run, seq, rc, "%zu disk(s)", json_object_size(images));
		/* Before the VM starts: once the group's last VM here is promoted, this site is
		 * the group's writer. */
		if (rc == 0 && !test && cutover_group_last(&vms, i))
			rc = cutover_group_moved_here(run->site->catalog, record->group);
		if (rc == 0 && !test)
			cutover_record_mark_promoted(record, point);
		/* Clean-up finds the clones in the record. */
		if (rc == 0 && test)
			cutover_record_mark_test(record, run->id, point);
		if (rc == 0)
			rc = cutover_record_store(run->site->catalog, record, "replica");
		if (rc == 0)
			rc = cutover_define_start(run, record, images, test, true);
		json_decref(images);
		if (rc < 0)
			goto out;
		json_array_append_new(
			run->vms,
			json_pack("{s:s, s:I, s:f, s:I, s:I, s:I, s:I, s:b}", "name", record->name,
				  "point", (json_int_t)point, "rto_seconds",
				  (double)(util_now_ms() - run->started_ms) / 1000.0, "rto_ms",
				  (json_int_t)(util_now_ms() - run->started_ms), "rpo_seconds",
				  (json_int_t)(point_time ? time(NULL) - point_time : 0), "rpo_ms",
				  (json_int_t)(point_time ? util_now_ms() - point_time * 1000 : 0),
				  "final_delta_bytes", (json_int_t)0, "shares_group_point",
				  choices[i].shares));
		/* After the RTO is taken: the VM is up; this proves it runs. */
		rc = cutover_validate(run, record, record->dest_uri, point, false);
		if (rc < 0)
			goto out;
		if (record->delay > 0) {
			seq = cutover_step_begin(run, "wait %lld s before the next VM",
						 (long long)record->delay);
			sleep((unsigned)record->delay);
			cutover_step_end(run, seq, 0, NULL);
		}
	}
out:
	free(choices);
	cutover_vm_records_free(&vms);
	return rc;
}

/* One test VM of a clean-up: its domain at the destination, then its clones. */
static int
cutover_cleanup_one(struct cutover_run *run, struct cutover_vm_record *record)
{
	const char *name = record->name, *uri = record->dest_uri;
	virConnectPtr connection = NULL;
	virDomainPtr domain = NULL;
	size_t clones = 0;
	int rc, seq = cutover_step_begin(run, "remove test VM %s", name);

	rc = cutover_virt_open(uri, &connection);
	if (rc == 0 && cutover_virt_domain(connection, uri, name, &domain) == 0) {
		if (virDomainIsActive(domain) == 1)
			virDomainDestroy(domain);
		if (virDomainUndefine(domain) < 0)
			rc = ferry_error_set(FERRY_ERR_IO, "cannot undefine %s at %s: %s", name,
					     uri, cutover_virt_message());
		virDomainFree(domain);
	}
	cutover_virt_close(connection);
	for (size_t j = 0; rc == 0 && j < record->disk_count; j++) {
		char location[600];

		if (!record->disks[j].test_clone[0])
			continue;
		cutover_replica_location(run->site, &record->disks[j], location, sizeof(location));
		rc = repl_point_clone_remove(location, record->test_point,
					     record->disks[j].test_clone);
		clones++;
	}
	if (rc == 0) {
		cutover_record_clear_test(record);
		rc = cutover_record_store(run->site->catalog, record, "replica");
	}
	return cutover_step_end(run, seq, rc, "domain and %zu clone(s) removed", clones);
}

/* Removes every trace of test failovers: their domains at the destination and their clones. */
int
cutover_cleanup(struct cutover_run *run, json_t *request)
{
	struct cutover_vm_records vms = {NULL, 0};
	int rc, failures = 0, cleaned = 0;

	rc = cutover_vms_of(run->site->catalog, request, &vms);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < vms.count; i++) {
		if (!vms.items[i].testing)
			continue;
		if (cutover_cleanup_one(run, &vms.items[i]) < 0)
			failures++;
		else
			cleaned++;
	}
	cutover_vm_records_free(&vms);
	if (failures)
		return ferry_error_set(FERRY_ERR_IO,
				       "%d test VM(s) could not be removed; see the "
				       "run's steps",
				       failures);
	log_info("run %" PRId64 ": %d test VM(s) removed", run->id, cleaned);
	return 0;
}
