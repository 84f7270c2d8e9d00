/* Activation at the replica site: failover, test failover and the last part of a cold
 * migration bring VMs up from one committed point; failover-cleanup removes test VMs. */
#include "cutover/internal.h"

struct cutover_vm_list {
	json_t *records; /* sorted by order, then name */
	const char *group;
	const char *name;
};

static int
cutover_vm_collect(const char *name, const char *role, const char *group, const char *record,
		   void *context)
{
	struct cutover_vm_list *list = context;
	json_t *parsed;

	(void)group;
	if (list->name && strcmp(list->name, name) != 0)
		return 0;
	(void)role;
	parsed = json_loads(record, 0, NULL);
	if (parsed)
		json_array_append_new(list->records, parsed);
	return 0;
}

static int
cutover_order_compare(const void *a, const void *b)
{
	json_t *left = *(json_t *const *)a, *right = *(json_t *const *)b;
	json_int_t x = json_integer_value(json_object_get(left, "order"));
	json_int_t y = json_integer_value(json_object_get(right, "order"));

	if (x != y)
		return x < y ? -1 : 1;
	return strcmp(cutover_text(left, "name"), cutover_text(right, "name"));
}

/* The records of request's vm or group, in recovery order. */
int
cutover_vms_of(struct catalog *catalog, json_t *request, json_t **out)
{
	struct cutover_vm_list list = {json_array(), NULL, NULL};
	const char *name = cutover_text(request, "vm"), *group = cutover_text(request, "group");
	json_t **items;
	size_t count;
	int rc;

	list.name = name[0] ? name : NULL;
	rc = catalog_vm_list(catalog, group[0] ? group : NULL, cutover_vm_collect, &list);
	count = json_array_size(list.records);
	if (rc == 0 && count == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no protected VM %s%s at this site; register it with ferry vm "
				     "protect at the primary site",
				     name[0] ? name : "in group ", name[0] ? "" : group);
	if (rc < 0) {
		json_decref(list.records);
		return rc;
	}
	items = calloc(count, sizeof(*items));
	if (items == NULL) {
		json_decref(list.records);
		return ferry_error_no_memory();
	}
	for (size_t i = 0; i < count; i++)
		items[i] = json_incref(json_array_get(list.records, i));
	qsort(items, count, sizeof(*items), cutover_order_compare);
	json_array_clear(list.records);
	for (size_t i = 0; i < count; i++)
		json_array_append_new(list.records, items[i]);
	free(items);
	*out = list.records;
	return 0;
}

/* Fencing keeps two copies from writing: the VM is destroyed at its primary site when that site
 * answers. The step records exactly what happened. A primary that answers but could not fence
 * the VM stops the failover before anything starts here (FERRY_ERR_CONFLICT), unless force:
 * then the step says it was forced. An unreachable primary is no refusal: that is the disaster
 * a failover is for. */
static int
cutover_fence(struct cutover_run *run, json_t *record, bool force)
{
	const char *name = cutover_text(record, "name"), *uri = cutover_text(record, "uri");
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
cutover_replica_location(const struct cutover_site *site, json_t *disk, char *out, size_t size)
{
	snprintf(out, size, "rbd:%s/%s", site->replica_pool, cutover_text(disk, "replica"));
}

#define CUTOVER_POINTS_MAX 1024

/* The points all of one VM's disks hold (they share one RBD group snapshot each time), and
 * the time of the oldest newest one, for the RPO. */
static int
cutover_vm_points(struct cutover_run *run, json_t *record, int64_t *common, size_t *common_count,
		  int64_t *point_time)
{
	int64_t *points = calloc(CUTOVER_POINTS_MAX, sizeof(*points));
	bool first = true;
	json_t *disk;
	size_t j;
	int rc = 0;

	if (points == NULL)
		return ferry_error_no_memory();
	*common_count = 0;
	*point_time = 0;
	json_array_foreach(json_object_get(record, "disks"), j, disk) {
		int64_t newest_time = 0;
		size_t count = 0, kept = 0;
		char location[600];

		cutover_replica_location(run->site, disk, location, sizeof(location));
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
					     location, cutover_text(record, "name"));
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
cutover_choose_points(struct cutover_run *run, json_t *vms, int64_t wanted,
		      struct cutover_vm_choice *choices)
{
	size_t vm_count = json_array_size(vms), apart = 0, missing = 0, i;
	int64_t(*points)[CUTOVER_POINTS_MAX] = calloc(vm_count + 1, sizeof(*points));
	struct cutover_point_set *sets = calloc(vm_count + 1, sizeof(*sets));
	struct cutover_point_choice *chosen = calloc(vm_count + 1, sizeof(*chosen));
	int64_t best = 0;
	char apart_names[512] = "";
	json_t *record;
	int rc = 0, seq = cutover_step_begin(run, "choose the point");

	if (points == NULL || sets == NULL || chosen == NULL) {
		rc = ferry_error_set(FERRY_ERR_NO_MEMORY,
				     "no memory to choose the point of %zu VMs", vm_count);
		goto out;
	}
	json_array_foreach(vms, i, record) {
		rc = cutover_vm_points(run, record, points[i], &sets[i].count,
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
				     cutover_text(json_array_get(vms, missing), "name"));
		goto out;
	}
	json_array_foreach(vms, i, record) {
		choices[i].point = chosen[i].point;
		choices[i].shares = chosen[i].shares;
		if (chosen[i].shares)
			continue;
		apart++;
		snprintf(apart_names + strlen(apart_names),
			 sizeof(apart_names) - strlen(apart_names), "%s%s at %lld",
			 apart > 1 ? ", " : "", cutover_text(record, "name"),
			 (long long)choices[i].point);
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
cutover_remap_here(const struct cutover_site *site, json_t *record, json_t *images, bool isolate,
		   const char *xml, char **out)
{
	char host[256], port[16];
	int rc;

	rc = cutover_ceph_mon(site->ceph_conf ? site->ceph_conf : "", host, sizeof(host), port,
			      sizeof(port));
	if (rc == 0)
		rc = cutover_xml_remap(
			xml,
			&(struct cutover_remap){
				.images = images,
				.mon_host = host,
				.mon_port = port,
				.ceph_conf = site->ceph_conf,
				.network_map = json_object_get(record, "network_map"),
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
cutover_replica_images(const struct cutover_site *site, json_t *record)
{
	json_t *images = json_object(), *disk;
	char image[400];
	size_t i;

	json_array_foreach(json_object_get(record, "disks"), i, disk) {
		snprintf(image, sizeof(image), "%s/%s", site->replica_pool,
			 cutover_text(disk, "replica"));
		json_object_set_new(images, cutover_text(disk, "target"), json_string(image));
	}
	return images;
}

int
cutover_vm_remap(const struct cutover_site *site, json_t *request, json_t **reply)
{
	const char *name = cutover_text(request, "name");
	json_t *record = NULL, *images = NULL;
	char *xml = NULL, *persistent = NULL;
	int rc;

	*reply = NULL;
	rc = cutover_record_load(site->catalog, name, &record);
	if (rc == 0 && (!json_is_string(json_object_get(request, "xml")) ||
			!json_is_string(json_object_get(request, "persistent_xml"))))
		rc = ferry_error_set(FERRY_ERR_INVALID, "give the 'xml' and 'persistent_xml'");
	if (rc < 0)
		goto out;
	images = cutover_replica_images(site, record);
	rc = cutover_remap_here(site, record, images, false, cutover_text(request, "xml"), &xml);
	if (rc == 0)
		rc = cutover_remap_here(site, record, images, false,
					cutover_text(request, "persistent_xml"), &persistent);
	if (rc == 0)
		*reply = json_pack("{s:s, s:s}", "xml", xml, "persistent_xml", persistent);
out:
	free(xml);
	free(persistent);
	json_decref(images);
	json_decref(record);
	return rc;
}

int
cutover_vm_promote(const struct cutover_site *site, const char *name, int64_t run_id, int64_t point)
{
	json_t *record = NULL, *disk;
	size_t i;
	int rc = cutover_record_load(site->catalog, name, &record);

	if (rc < 0)
		return rc;
	json_array_foreach(json_object_get(record, "disks"), i, disk) {
		if (rc == 0)
			rc = catalog_promoted_put(site->catalog, cutover_text(disk, "replica"),
						  run_id);
	}
	/* The point the VM runs on from here: the last one both sites share (reprotect). */
	if (rc == 0 && point > 0)
		rc = cutover_record_mark_promoted(record, point);
	if (rc == 0 && point > 0)
		rc = cutover_record_store(site->catalog, record, "replica");
	json_decref(record);
	return rc;
}

static int
cutover_define_start(struct cutover_run *run, json_t *record, json_t *images, bool isolate,
		     bool start)
{
	const char *name = cutover_text(record, "name"), *uri = cutover_text(record, "dest_uri");
	char *xml = NULL;
	virConnectPtr connection = NULL;
	virDomainPtr domain = NULL;
	int rc, seq = cutover_step_begin(run, "define %s at %s", name, uri);

	rc = cutover_remap_here(run->site, record, images, isolate, cutover_text(record, "xml"),
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

/* Failover, test failover, or the last part of a cold migration: brings the VMs up here from
 * one point. mode: "failover", "failover-test" or "activate". */
int
cutover_activate(struct cutover_run *run, json_t *request)
{
	bool test = strcmp(run->kind, "failover-test") == 0;
	bool fence = strcmp(run->kind, "failover") == 0;
	struct cutover_vm_choice *choices = NULL;
	json_t *vms = NULL, *record, *disk;
	size_t i, j;
	int rc, seq;

	seq = cutover_step_begin(run, "find the VMs");
	rc = cutover_vms_of(run->site->catalog, request, &vms);
	cutover_step_end(run, seq, rc, "%zu VM(s)", vms ? json_array_size(vms) : 0);
	if (rc < 0)
		return rc;
	if (run->site->ceph_conf == NULL) {
		rc = ferry_error_set(FERRY_ERR_INVALID,
				     "this site has no Ceph settings (--ceph-conf), so it keeps no "
				     "replicas to bring VMs up from");
		goto out;
	}
	/* Every VM is fenced before any comes up here: one that could not be stops them all. */
	json_array_foreach(vms, i, record) {
		if (fence && rc == 0)
			rc = cutover_fence(run, record,
					   json_is_true(json_object_get(request, "force")));
	}
	if (rc < 0)
		goto out;
	choices = calloc(json_array_size(vms) + 1, sizeof(*choices));
	rc = choices ? cutover_choose_points(run, vms,
					     json_integer_value(json_object_get(request, "point")),
					     choices)
		     : ferry_error_no_memory();
	if (rc < 0)
		goto out;
	json_array_foreach(vms, i, record) {
		const char *name = cutover_text(record, "name");
		json_t *images = json_object(), *clones = json_array();
		int64_t point = choices[i].point, point_time = choices[i].point_time;

		seq = cutover_step_begin(run, "%s the disks of %s at point %lld",
					 test ? "clone" : "roll back", name, (long long)point);
		json_array_foreach(json_object_get(record, "disks"), j, disk) {
			char location[600], clone[300], image[400];

			cutover_replica_location(run->site, disk, location, sizeof(location));
			repl_receiver_release(run->site->receiver, cutover_text(disk, "replica"));
			if (test) {
				snprintf(clone, sizeof(clone), "%s-test-%lld",
					 cutover_text(disk, "replica"), (long long)run->id);
				rc = repl_point_clone(location, point, clone);
				json_array_append_new(clones, json_string(clone));
			} else {
				snprintf(clone, sizeof(clone), "%s", cutover_text(disk, "replica"));
				rc = catalog_promoted_put(run->site->catalog, clone, run->id);
				if (rc == 0)
					rc = repl_point_rollback(location, point);
			}
			snprintf(image, sizeof(image), "%s/%s", run->site->replica_pool, clone);
			json_object_set_new(images, cutover_text(disk, "target"),
					    json_string(image));
			if (rc < 0)
				break;
		}
		cutover_step_end(run, seq, rc, "%zu disk(s)", json_object_size(images));
		if (rc == 0 && !test)
			rc = cutover_record_mark_promoted(record, point);
		/* Clean-up finds the clones in the record. */
		if (rc == 0 && test)
			rc = cutover_record_mark_test(record, run->id, point, clones);
		if (rc == 0)
			rc = cutover_record_store(run->site->catalog, record, "replica");
		if (rc == 0)
			rc = cutover_define_start(run, record, images, test, true);
		json_decref(images);
		json_decref(clones);
		if (rc < 0)
			goto out;
		json_array_append_new(
			run->vms,
			json_pack("{s:s, s:I, s:f, s:I, s:I, s:I, s:I, s:b}", "name", name, "point",
				  (json_int_t)point, "rto_seconds",
				  (double)(util_now_ms() - run->started_ms) / 1000.0, "rto_ms",
				  (json_int_t)(util_now_ms() - run->started_ms), "rpo_seconds",
				  (json_int_t)(point_time ? time(NULL) - point_time : 0), "rpo_ms",
				  (json_int_t)(point_time ? util_now_ms() - point_time * 1000 : 0),
				  "final_delta_bytes", (json_int_t)0, "shares_group_point",
				  choices[i].shares));
		if (json_integer_value(json_object_get(record, "delay")) > 0) {
			seq = cutover_step_begin(
				run, "wait %lld s before the next VM",
				(long long)json_integer_value(json_object_get(record, "delay")));
			sleep((unsigned)json_integer_value(json_object_get(record, "delay")));
			cutover_step_end(run, seq, 0, NULL);
		}
	}
out:
	free(choices);
	json_decref(vms);
	return rc;
}

/* Removes every trace of test failovers: their domains at the destination and their clones. */
int
cutover_cleanup(struct cutover_run *run, json_t *request)
{
	json_t *vms = NULL, *record, *clone, *disk;
	size_t i, j;
	int rc, failures = 0, cleaned = 0;

	rc = cutover_vms_of(run->site->catalog, request, &vms);
	if (rc < 0)
		return rc;
	json_array_foreach(vms, i, record) {
		const char *name = cutover_text(record, "name"),
			   *uri = cutover_text(record, "dest_uri");
		virConnectPtr connection = NULL;
		virDomainPtr domain = NULL;
		struct cutover_vm_flags flags;
		size_t clones;
		int seq;

		cutover_record_flags_read(record, &flags);
		if (!flags.testing)
			continue;
		seq = cutover_step_begin(run, "remove test VM %s", name);
		rc = cutover_virt_open(uri, &connection);
		if (rc == 0 && cutover_virt_domain(connection, uri, name, &domain) == 0) {
			if (virDomainIsActive(domain) == 1)
				virDomainDestroy(domain);
			if (virDomainUndefine(domain) < 0)
				rc = ferry_error_set(FERRY_ERR_IO, "cannot undefine %s at %s: %s",
						     name, uri, cutover_virt_message());
			virDomainFree(domain);
		}
		cutover_virt_close(connection);
		json_array_foreach(flags.test_clones, j, clone) {
			disk = json_array_get(json_object_get(record, "disks"), j);
			if (rc == 0 && disk) {
				char location[600];

				cutover_replica_location(run->site, disk, location,
							 sizeof(location));
				rc = repl_point_clone_remove(location, flags.test_point,
							     json_string_value(clone));
			}
		}
		/* Counted before the clean-up frees the record's test, and its clones with it. */
		clones = json_array_size(flags.test_clones);
		if (rc == 0) {
			cutover_record_clear_test(record);
			rc = cutover_record_store(run->site->catalog, record, "replica");
		}
		cutover_step_end(run, seq, rc, "domain and %zu clone(s) removed", clones);
		if (rc < 0)
			failures++;
		else
			cleaned++;
		rc = 0;
	}
	json_decref(vms);
	if (failures)
		return ferry_error_set(FERRY_ERR_IO,
				       "%d test VM(s) could not be removed; see the "
				       "run's steps",
				       failures);
	log_info("run %" PRId64 ": %d test VM(s) removed", run->id, cleaned);
	return 0;
}
