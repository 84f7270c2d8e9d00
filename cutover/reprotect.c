/* Reprotect, run at the site the VMs moved to: the direction of replication reverses, and the
 * other site's images go back to the last point both sites share so that only what changed
 * since ships back. */
#include "cutover/internal.h"

/* record (a VM that now runs here from its replicas) as the other site's replica of it, into
 * reversed: its disks' sources are the images here, their replicas the images it came from
 * there. */
static int
cutover_record_reversed(const struct cutover_run *run, const struct cutover_vm_record *record,
			const char *site_name, const char *xml, struct cutover_vm_record *reversed)
{
	const struct cutover_site *site = run->site;
	json_t *map = json_object(), *value;
	const char *key;
	int rc = cutover_record_copy(record, reversed);

	for (size_t i = 0; rc == 0 && i < record->disk_count; i++) {
		const char *source = record->disks[i].source, *slash = strchr(source, '/');
		struct cutover_vm_disk *disk = &reversed->disks[i];

		rc = util_format(disk->source, sizeof(disk->source), "the location of a disk",
				 "rbd:%s/%s", site->replica_pool, record->disks[i].replica);
		if (rc == 0)
			rc = util_format(disk->replica, sizeof(disk->replica),
					 "the name of a replica", "%s", slash ? slash + 1 : source);
	}
	if (rc < 0)
		goto out;
	snprintf(reversed->uri, sizeof(reversed->uri), "%s", record->dest_uri);
	snprintf(reversed->dest_uri, sizeof(reversed->dest_uri), "%s", record->uri);
	snprintf(reversed->site, sizeof(reversed->site), "%s", site_name);
	/* The networks map back the other way. */
	json_object_foreach(record->network_map, key, value) {
		if (map && json_is_string(value))
			json_object_set_new(map, json_string_value(value), json_string(key));
	}
	free(reversed->xml);
	reversed->xml = strdup(xml);
	if (map == NULL || reversed->xml == NULL) {
		rc = ferry_error_set(FERRY_ERR_NO_MEMORY, "no memory for the reversed record of %s",
				     record->name);
		goto out;
	}
	json_decref(reversed->network_map);
	reversed->network_map = map;
	map = NULL;
	/* What a resumed reprotect recognises as done, and the point it started from. */
	cutover_record_reverse(reversed, record, run->id);
out:
	json_decref(map);
	return rc;
}

struct cutover_replica_of {
	const char *group, *replica;
	char source[512]; /* the protection's source: rbd:POOL/IMAGE */
};

static int
cutover_protection_of_replica(const struct catalog_protection *protection, void *context)
{
	struct cutover_replica_of *find = context;

	if (strcmp(protection->group, find->group) == 0 &&
	    strcmp(protection->replica, find->replica) == 0)
		snprintf(find->source, sizeof(find->source), "%s", protection->source);
	return 0;
}

/* A group without VMs names its disks by their replica at the other site (it knows no more of
 * them): each such disk gets the image here that this site protects into that replica, as its
 * volume and location. */
static int
cutover_prepare_resolve(const struct cutover_site *site, const char *group, json_t *disks)
{
	json_t *disk;
	size_t i;
	int rc = 0;

	json_array_foreach(disks, i, disk) {
		struct cutover_replica_of find = {group, cutover_text(disk, "replica"), ""};
		const char *slash;

		if (json_object_get(disk, "volume") != NULL)
			continue;
		if (!util_volume_name_valid(find.replica))
			return ferry_error_set(FERRY_ERR_INVALID,
					       "each disk needs a valid 'volume' or 'replica'");
		rc = catalog_protection_list(site->catalog, cutover_protection_of_replica, &find);
		if (rc < 0)
			return rc;
		slash = strchr(find.source, '/');
		if (strncmp(find.source, "rbd:", 4) != 0 || slash == NULL || !slash[1])
			return ferry_error_set(
				FERRY_ERR_NOT_FOUND,
				"group %s protects no RBD image here into replica %s: "
				"reprotect the group at the site that keeps its data",
				group, find.replica);
		if (json_object_set_new(disk, "volume", json_string(slash + 1)) != 0 ||
		    json_object_set_new(disk, "location", json_string(find.source)) != 0)
			return ferry_error_no_memory();
	}
	return 0;
}

/* The other site's side of a reprotect: each of its images named in request.disks goes back to
 * the point both sites share and becomes this site's replica of the image that now runs
 * there. Its own protections of them end; it takes no more points of them. */
int
cutover_reprotect_prepare(const struct cutover_site *site, json_t *request, json_t **reply)
{
	const char *group_name = cutover_text(request, "group");
	json_t *disks = json_object_get(request, "disks"), *disk, *record;
	struct catalog_group group;
	size_t i;
	int rc = 0;

	*reply = NULL;
	if (!group_name[0] || !json_is_array(disks) || json_array_size(disks) == 0 ||
	    !json_is_array(json_object_get(request, "records")))
		return ferry_error_set(FERRY_ERR_INVALID, "give the 'group', its 'disks' and "
							  "'records'");
	if (site->ceph_conf == NULL || site->replica_pool == NULL)
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"this site has no Ceph settings (--ceph-conf): it cannot keep "
			"the replicas of group %s",
			group_name);
	rc = cutover_prepare_resolve(site, group_name, disks);
	if (rc < 0)
		return rc;
	json_array_foreach(disks, i, disk) {
		char pool[128];
		const char *volume = cutover_text(disk, "volume");

		if (!util_volume_name_valid(volume) ||
		    json_integer_value(json_object_get(disk, "point")) < 1 ||
		    !cutover_text(disk, "identity")[0])
			return ferry_error_set(FERRY_ERR_INVALID,
					       "each disk needs a valid 'volume', its 'point' and "
					       "'identity'");
		if (repl_group_place(cutover_text(disk, "location"), pool, sizeof(pool)) == 0 &&
		    strcmp(pool, site->replica_pool) != 0)
			return ferry_error_set(FERRY_ERR_INVALID,
					       "%s is in pool %s, but this site keeps its replicas "
					       "in pool %s (--replica-pool): it cannot take deltas "
					       "for it there",
					       cutover_text(disk, "location"), pool,
					       site->replica_pool);
	}
	/* The scheduler must not take a point of these images while they change roles, nor the
	 * refresher register their VMs again. */
	pthread_mutex_lock(&cutover_refresh_lock);
	repl_scheduler_hold(site->scheduler);
	json_array_foreach(disks, i, disk) {
		char location[600];

		snprintf(location, sizeof(location), "rbd:%s/%s", site->replica_pool,
			 cutover_text(disk, "volume"));
		repl_receiver_release(site->receiver, cutover_text(disk, "volume"));
		rc = repl_point_restore(location, group_name,
					json_integer_value(json_object_get(disk, "point")));
		if (rc < 0)
			goto out;
		catalog_protection_remove(site->catalog, location);
		/* Once every image is back at its point, their group here goes (any member says
		 * where it lives). */
		if (i + 1 == json_array_size(disks))
			rc = repl_group_dissolve(location, group_name);
	}
	json_array_foreach(disks, i, disk) {
		char location[600], snapshot[32];
		int64_t point = json_integer_value(json_object_get(disk, "point"));

		if (rc < 0)
			break;
		snprintf(location, sizeof(location), "rbd:%s/%s", site->replica_pool,
			 cutover_text(disk, "volume"));
		snprintf(snapshot, sizeof(snapshot), "ferry-%lld", (long long)point);
		rc = repl_point_reset(location, point);
		if (rc == 0)
			rc = repl_receiver_adopt(
				site->receiver, cutover_text(disk, "volume"),
				cutover_text(disk, "identity"),
				(uint64_t)json_integer_value(json_object_get(disk, "size")),
				snapshot);
	}
	json_array_foreach(json_object_get(request, "records"), i, record) {
		if (rc == 0)
			rc = cutover_vm_receive(site, record);
	}
	if (rc < 0)
		goto out;
	if (catalog_group_get(site->catalog, group_name, &group) < 0) {
		group.interval_s = 0;
		group.keep = 0;
	}
	/* Which image here each disk is: the other site protects into it from now on. */
	*reply = json_pack("{s:I, s:I, s:O}", "interval", (json_int_t)group.interval_s, "keep",
			   (json_int_t)group.keep, "disks", disks);
	catalog_event_add(site->catalog, "info", group_name,
			  "%zu image(s) are replicas again, of the site the VMs run at",
			  json_array_size(disks));
out:
	repl_scheduler_release(site->scheduler);
	pthread_mutex_unlock(&cutover_refresh_lock);
	return rc;
}

/* The VMs of request.group that run here from their replicas, with the point each runs on. */
static int
cutover_reprotect_check(struct cutover_run *run, const struct cutover_vm_records *vms)
{
	for (size_t i = 0; i < vms->count; i++) {
		const struct cutover_vm_record *record = &vms->items[i];
		int64_t promoted_by = 0;

		if (cutover_record_state(record, "replica") != CUTOVER_VM_PROMOTED)
			return ferry_error_set(
				FERRY_ERR_CONFLICT,
				"VM %s of group %s does not run here from its replicas (no "
				"failover "
				"or migration brought it here): ferry reprotect runs at the site "
				"the "
				"VMs moved to, once all of the group's VMs are there",
				record->name, record->group);
		for (size_t j = 0; j < record->disk_count; j++) {
			catalog_promoted_get(run->site->catalog, record->disks[j].replica,
					     &promoted_by);
			if (promoted_by == 0)
				return ferry_error_set(FERRY_ERR_CONFLICT,
						       "disk %s of VM %s is a replica here, not "
						       "the disk the VM runs "
						       "from; fail the VM over or migrate it first",
						       record->disks[j].replica, record->name);
		}
	}
	return 0;
}

/* Refuses when a VM still runs at the other site: two copies must never both write. The
 * other site's libvirt unreachable is fine here; its ferryd must answer anyway. */
static int
cutover_reprotect_not_running(const struct cutover_vm_record *record)
{
	const char *name = record->name, *uri = record->uri;
	virConnectPtr connection = NULL;
	virDomainPtr domain = NULL;
	int rc = 0;

	if (cutover_virt_open(uri, &connection) < 0)
		return 0;
	if (cutover_virt_domain(connection, uri, name, &domain) == 0 &&
	    virDomainIsActive(domain) == 1)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "%s runs at %s too: shut it down there first, so that only "
				     "one copy writes; then reprotect",
				     name, uri);
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
	return rc;
}

/* After the other site took its images back as replicas, the VM's definition there goes:
 * starting it would write into a replica. */
static void
cutover_reprotect_undefine(struct cutover_run *run, const char *name, const char *uri)
{
	virConnectPtr connection = NULL;
	virDomainPtr domain = NULL;
	int seq = cutover_step_begin(run, "undefine %s at %s", name, uri);

	if (cutover_virt_open(uri, &connection) < 0)
		cutover_step_end(run, seq, 0, "unreachable: %s", ferry_error_message());
	else if (cutover_virt_domain(connection, uri, name, &domain) < 0)
		cutover_step_end(run, seq, 0, "not defined there");
	else if (virDomainIsActive(domain) != 1 && virDomainUndefine(domain) == 0)
		cutover_step_end(run, seq, 0, "undefined");
	else
		cutover_step_end(run, seq, 0, "left alone: %s", cutover_virt_message());
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
}

/* Each disk of record, kept at its promoted point, as the other site's prepare asks for it. */
static int
cutover_reprotect_plan_disks(struct cutover_run *run, const struct cutover_vm_record *record,
			     json_t *prepare)
{
	int64_t point = record->promoted_point;
	int rc = 0;

	for (size_t j = 0; rc == 0 && j < record->disk_count; j++) {
		char location[600], at_point[640];
		struct repl_volume *volume = NULL;
		const char *source = record->disks[j].source, *slash = strchr(source, '/');

		cutover_replica_location(run->site, &record->disks[j], location, sizeof(location));
		/* Points after the shared one were never the other site's. */
		rc = repl_point_reset(location, point);
		snprintf(at_point, sizeof(at_point), "%s@ferry-%lld", location, (long long)point);
		if (rc == 0)
			rc = repl_volume_open(at_point, REPL_OPEN_READ, &volume);
		if (rc == 0 &&
		    json_array_append_new(json_object_get(prepare, "disks"),
					  json_pack("{s:s, s:s, s:I, s:s, s:I}", "volume",
						    slash ? slash + 1 : source, "location", source,
						    "point", (json_int_t)point, "identity",
						    repl_volume_identity(volume), "size",
						    (json_int_t)repl_volume_size(volume))) != 0)
			rc = ferry_error_no_memory();
		repl_volume_close(volume);
	}
	return rc;
}

/* The request to the other site and the records this site keeps (primaries, one per VM of
 * vms). */
static int
cutover_reprotect_plan(struct cutover_run *run, const struct cutover_vm_records *vms,
		       const char *site_name, json_t *prepare, struct cutover_vm_records *primaries)
{
	int rc = 0;

	primaries->items = calloc(vms->count + 1, sizeof(*primaries->items));
	if (primaries->items == NULL)
		return ferry_error_no_memory();
	for (size_t i = 0; i < vms->count; i++) {
		const struct cutover_vm_record *record = &vms->items[i];
		virConnectPtr connection = NULL;
		virDomainPtr domain = NULL;
		char *xml = NULL;

		rc = cutover_virt_open(record->dest_uri, &connection);
		if (rc == 0)
			rc = cutover_virt_domain(connection, record->dest_uri, record->name,
						 &domain);
		if (rc == 0)
			rc = cutover_virt_domain_xml(domain, record->name, &xml);
		if (domain)
			virDomainFree(domain);
		cutover_virt_close(connection);
		if (rc == 0)
			rc = cutover_record_reversed(run, record, site_name, xml,
						     &primaries->items[i]);
		free(xml);
		if (rc < 0)
			return rc;
		primaries->count++;
		rc = cutover_reprotect_plan_disks(run, record, prepare);
		if (rc < 0)
			return rc;
	}
	/* The other site keeps each VM's record as its replica: what it would bring up. Only what
	 * a primary sends; the other site has no say in this site's runs. */
	for (size_t i = 0; i < primaries->count; i++) {
		json_t *copy = cutover_record_json(&primaries->items[i], CUTOVER_RECORD_PORTABLE);

		if (copy == NULL)
			return ferry_error_last_code();
		json_object_del(copy, "site");
		json_array_append_new(json_object_get(prepare, "records"), copy);
	}
	return 0;
}

/* Whether every VM of vms is a primary here by this very run: it was resumed after storing
 * its records. */
static bool
cutover_reprotect_done_here(const struct cutover_run *run, const struct cutover_vm_records *vms)
{
	for (size_t i = 0; i < vms->count; i++)
		if (vms->items[i].reprotected_by != run->id)
			return false;
	return vms->count > 0;
}

/* The last steps: each VM's definition goes at the other site, and the group's first point
 * from here is asked for. vms are the records as the run found them: the VMs' replica records
 * (the other site is their uri), or, resumed, the primary records it stored (dest_uri). */
static void
cutover_reprotect_finish(struct cutover_run *run, const struct cutover_vm_records *vms,
			 const char *group_name, bool resumed)
{
	for (size_t i = 0; i < vms->count; i++) {
		const struct cutover_vm_record *record = &vms->items[i];

		cutover_reprotect_undefine(run, record->name,
					   resumed ? record->dest_uri : record->uri);
		json_array_append_new(run->vms,
				      json_pack("{s:s, s:I, s:I}", "name", record->name, "point",
						(json_int_t)(resumed ? record->reprotect_point
								     : record->promoted_point),
						"final_delta_bytes", (json_int_t)0));
	}
	repl_scheduler_request(run->site->scheduler, group_name);
}

/* This site protects the disks of primaries towards site_name, from the points the VMs run
 * on (vms), and stores their records as primaries. */
static int
cutover_reprotect_protect(struct cutover_run *run, const struct cutover_vm_records *vms,
			  const struct cutover_vm_records *primaries, const char *group_name,
			  const char *site_name)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < primaries->count; i++) {
		const struct cutover_vm_record *record = &primaries->items[i];
		int64_t point = vms->items[i].promoted_point;

		for (size_t j = 0; rc == 0 && j < record->disk_count; j++) {
			struct catalog_protection protection, existing;

			memset(&protection, 0, sizeof(protection));
			snprintf(protection.source, sizeof(protection.source), "%s",
				 record->disks[j].source);
			snprintf(protection.group, sizeof(protection.group), "%s", group_name);
			snprintf(protection.site, sizeof(protection.site), "%s", site_name);
			snprintf(protection.replica, sizeof(protection.replica), "%s",
				 record->disks[j].replica);
			protection.last_point = point;
			protection.last_point_ms = util_now_ms();
			snprintf(protection.state, sizeof(protection.state), "syncing");
			if (catalog_protection_get(run->site->catalog, protection.source,
						   &existing) == 0)
				continue; /* a resumed run */
			rc = repl_protection_add(run->site->catalog, &protection);
		}
		if (rc == 0)
			rc = cutover_record_store(run->site->catalog, record, "primary");
	}
	return rc;
}

int
cutover_reprotect_site(struct cutover_run *run, json_t *request, char *site_name)
{
	int rc = 0;

	snprintf(site_name, VOLUME_NAME_MAX + 1, "%s", cutover_text(request, "site"));
	if (site_name[0] == '\0') {
		rc = catalog_site_list(run->site->catalog, cutover_only_site, site_name);
		if (rc == 0 && site_name[0] == '\0')
			rc = ferry_error_set(FERRY_ERR_INVALID,
					     "this site knows no other site to protect group %s "
					     "towards: add the site the data came from with ferry "
					     "site add",
					     cutover_text(request, "group"));
	}
	return rc;
}

int
cutover_reprotect(struct cutover_run *run, json_t *request)
{
	const char *group_name = cutover_text(request, "group");
	char site_name[VOLUME_NAME_MAX + 1] = "";
	struct cutover_vm_records vms = {NULL, 0}, primaries = {NULL, 0};
	json_t *prepare = NULL, *reply = NULL;
	struct catalog_group group;
	int rc, seq;

	seq = cutover_step_begin(run, "find the VMs of group %s running here", group_name);
	rc = group_name[0] ? cutover_vms_of(run->site->catalog, request, &vms)
			   : ferry_error_set(FERRY_ERR_INVALID, "name the 'group' to reprotect");
	if (rc == FERRY_ERR_NOT_FOUND && !cutover_text(request, "vm")[0] &&
	    cutover_group_promoted_here(run->site->catalog, group_name)) {
		/* A group without VMs, promoted here (ferry group promote): its volumes. */
		cutover_step_end(run, seq, 0, "no VMs: the volumes of group %s promoted here",
				 group_name);
		return cutover_reprotect_volumes(run, request);
	}
	if (rc == 0 && cutover_reprotect_done_here(run, &vms)) {
		/* Resumed after its records were stored here: only the undefines are left. */
		cutover_step_end(run, seq, 0,
				 "%zu VM(s), protected here by this run already; what is left is "
				 "their undefine at the other site",
				 vms.count);
		cutover_reprotect_finish(run, &vms, group_name, true);
		goto out;
	}
	if (rc == 0)
		rc = cutover_reprotect_check(run, &vms);
	if (rc == 0)
		rc = cutover_reprotect_site(run, request, site_name);
	for (size_t i = 0; rc == 0 && i < vms.count; i++)
		rc = cutover_reprotect_not_running(&vms.items[i]);
	cutover_step_end(run, seq, rc, "%zu VM(s), towards site %s", vms.count, site_name);
	if (rc < 0) {
		run->refused = true;
		goto out;
	}
	seq = cutover_step_begin(run, "keep the shared points here, drop the later ones");
	prepare = json_pack("{s:s, s:[], s:[]}", "group", group_name, "disks", "records");
	rc = prepare ? cutover_reprotect_plan(run, &vms, site_name, prepare, &primaries)
		     : ferry_error_no_memory();
	cutover_step_end(run, seq, rc, "%zu disk(s)",
			 json_array_size(json_object_get(prepare, "disks")));
	if (rc < 0)
		goto out;
	seq = cutover_step_begin(run, "make site %s's images replicas from the shared points",
				 site_name);
	rc = cutover_site_call(run->site->catalog, site_name, "/v1/reprotect/prepare", prepare,
			       &reply);
	cutover_step_end(run, seq, rc, "done");
	if (rc < 0)
		goto out;
	seq = cutover_step_begin(run, "protect the disks here, towards site %s", site_name);
	if (catalog_group_get(run->site->catalog, group_name, &group) < 0) {
		memset(&group, 0, sizeof(group));
		snprintf(group.name, sizeof(group.name), "%s", group_name);
		group.interval_s = json_integer_value(json_object_get(reply, "interval"));
		group.keep = json_integer_value(json_object_get(reply, "keep"));
		if (group.interval_s < 1)
			group.interval_s = 60;
		if (group.keep < 1)
			group.keep = 3;
		rc = catalog_group_put(run->site->catalog, &group);
	}
	if (rc == 0)
		rc = cutover_reprotect_protect(run, &vms, &primaries, group_name, site_name);
	cutover_step_end(run, seq, rc, "group %s, every %lld s", group_name,
			 (long long)group.interval_s);
	if (rc == 0)
		cutover_reprotect_finish(run, &vms, group_name, false);
out:
	json_decref(reply);
	json_decref(prepare);
	cutover_vm_records_free(&primaries);
	cutover_vm_records_free(&vms);
	return rc;
}
