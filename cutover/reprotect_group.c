/* Reprotect of a group without VMs, run at the site that ferry group promote made its writer:
 * the other site's images go back to the point the promote started from and become replicas
 * of the volumes here, which this site protects towards it from now on. Like the VMs' reprotect
 * (reprotect.c), it keeps this site's data and drops the other site's writes since that point:
 * the way out of a split brain. */
#include "cutover/internal.h"

/* The volumes of a group kept here, as listed from the catalog. */
struct cutover_group_volumes_here {
	struct catalog *catalog;
	const char *group;
	char (*names)[VOLUME_NAME_MAX + 1];
	int64_t *points; /* the point each was promoted at; 0: not promoted */
	size_t count;
};

static int
cutover_group_volume_here(const struct catalog_volume *volume, void *context)
{
	struct cutover_group_volumes_here *here = context;
	int rc;

	if (strcmp(volume->group, here->group) != 0)
		return 0;
	if (here->count >= CUTOVER_VM_DISKS_MAX)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "group %s has more than %d volumes here: reprotect them "
				       "through their VMs",
				       here->group, CUTOVER_VM_DISKS_MAX);
	snprintf(here->names[here->count], sizeof(here->names[0]), "%s", volume->name);
	rc = catalog_promoted_point(here->catalog, volume->name, &here->points[here->count]);
	if (rc == 0)
		here->count++;
	return rc;
}

static int
cutover_group_volumes_list(struct catalog *catalog, const char *group,
			   struct cutover_group_volumes_here *here)
{
	*here = (struct cutover_group_volumes_here){catalog, group, NULL, NULL, 0};
	here->names = calloc(CUTOVER_VM_DISKS_MAX, sizeof(*here->names));
	here->points = calloc(CUTOVER_VM_DISKS_MAX, sizeof(*here->points));
	if (here->names == NULL || here->points == NULL)
		return ferry_error_no_memory();
	return catalog_volume_list(catalog, cutover_group_volume_here, here);
}

static void
cutover_group_volumes_free(struct cutover_group_volumes_here *here)
{
	free(here->names);
	free(here->points);
}

bool
cutover_group_promoted_here(struct catalog *catalog, const char *group)
{
	struct cutover_group_volumes_here here;
	bool promoted = cutover_group_volumes_list(catalog, group, &here) == 0 && here.count > 0;

	for (size_t i = 0; promoted && i < here.count; i++)
		promoted = here.points[i] > 0;
	cutover_group_volumes_free(&here);
	return promoted;
}

/* Each volume back at point (later points were never the other site's), described as the other
 * site's prepare asks: by its replica there, which is this volume's name. */
static int
cutover_reprotect_volumes_plan(struct cutover_run *run,
			       const struct cutover_group_volumes_here *here, int64_t point,
			       json_t *prepare)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < here->count; i++) {
		struct repl_volume *volume = NULL;
		char location[600], at_point[640];

		rc = util_format(location, sizeof(location), "the location of a volume",
				 "rbd:%s/%s", run->site->replica_pool, here->names[i]);
		if (rc == 0)
			rc = repl_point_reset(location, point);
		snprintf(at_point, sizeof(at_point), "%s@ferry-%lld", location, (long long)point);
		if (rc == 0)
			rc = repl_volume_open(at_point, REPL_OPEN_READ, &volume);
		if (rc == 0 &&
		    json_array_append_new(
			    json_object_get(prepare, "disks"),
			    json_pack("{s:s, s:I, s:s, s:I}", "replica", here->names[i], "point",
				      (json_int_t)point, "identity", repl_volume_identity(volume),
				      "size", (json_int_t)repl_volume_size(volume))) != 0)
			rc = ferry_error_no_memory();
		repl_volume_close(volume);
	}
	return rc;
}

/* This site protects each volume towards site_name, into the image the other site named for it
 * in its answer (reply.disks: {replica: the volume here, volume: the image there}). */
static int
cutover_reprotect_volumes_protect(struct cutover_run *run, const char *group_name,
				  const char *site_name, int64_t point, json_t *reply)
{
	json_t *disk;
	size_t i;
	int rc = 0;

	json_array_foreach(json_object_get(reply, "disks"), i, disk) {
		struct catalog_protection protection, existing;

		if (rc < 0)
			break;
		memset(&protection, 0, sizeof(protection));
		rc = util_format(protection.source, sizeof(protection.source),
				 "the location of a volume", "rbd:%s/%s", run->site->replica_pool,
				 cutover_text(disk, "replica"));
		if (rc == 0)
			rc = util_format(protection.replica, sizeof(protection.replica),
					 "the name of a replica", "%s",
					 cutover_text(disk, "volume"));
		if (rc < 0)
			break;
		snprintf(protection.group, sizeof(protection.group), "%s", group_name);
		snprintf(protection.site, sizeof(protection.site), "%s", site_name);
		protection.last_point = point;
		protection.last_point_ms = util_now_ms();
		snprintf(protection.state, sizeof(protection.state), "syncing");
		if (catalog_protection_get(run->site->catalog, protection.source, &existing) == 0)
			continue; /* a resumed run */
		rc = repl_protection_add(run->site->catalog, &protection);
	}
	return rc;
}

int
cutover_reprotect_volumes(struct cutover_run *run, json_t *request)
{
	const char *group_name = cutover_text(request, "group");
	char site_name[VOLUME_NAME_MAX + 1] = "";
	struct cutover_group_volumes_here here = {0};
	struct catalog_group group;
	json_t *prepare = NULL, *reply = NULL;
	int64_t point = 0;
	int rc, seq = cutover_step_begin(run, "find the promoted volumes of group %s", group_name);

	rc = cutover_group_volumes_list(run->site->catalog, group_name, &here);
	for (size_t i = 0; rc == 0 && i < here.count; i++) {
		if (point == 0)
			point = here.points[i];
		if (here.points[i] != point)
			rc = ferry_error_set(FERRY_ERR_CONFLICT,
					     "the volumes of group %s were promoted at different "
					     "points (%s at %lld, others at %lld): no one point is "
					     "shared to reprotect from",
					     group_name, here.names[i], (long long)here.points[i],
					     (long long)point);
	}
	if (rc == 0 && (here.count == 0 || point < 1))
		rc = ferry_error_set(
			FERRY_ERR_CONFLICT,
			"group %s has no volume promoted here: ferry reprotect runs at "
			"the site whose data is kept (after ferry group promote there)",
			group_name);
	if (rc == 0)
		rc = cutover_reprotect_site(run, request, site_name);
	cutover_step_end(run, seq, rc, "%zu volume(s) at point %lld, towards site %s", here.count,
			 (long long)point, site_name);
	if (rc < 0) {
		run->refused = true;
		goto out;
	}
	seq = cutover_step_begin(run, "keep point %lld here, drop the later ones",
				 (long long)point);
	prepare = json_pack("{s:s, s:[], s:[]}", "group", group_name, "disks", "records");
	rc = prepare ? cutover_reprotect_volumes_plan(run, &here, point, prepare)
		     : ferry_error_no_memory();
	cutover_step_end(run, seq, rc, "%zu volume(s)", here.count);
	if (rc < 0)
		goto out;
	seq = cutover_step_begin(run, "make site %s's images replicas from point %lld", site_name,
				 (long long)point);
	rc = cutover_site_call(run->site->catalog, site_name, "/v1/reprotect/prepare", prepare,
			       &reply);
	cutover_step_end(run, seq, rc, "done; its writes since point %lld are gone",
			 (long long)point);
	if (rc < 0)
		goto out;
	seq = cutover_step_begin(run, "protect the volumes here, towards site %s", site_name);
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
		rc = cutover_reprotect_volumes_protect(run, group_name, site_name, point, reply);
	cutover_step_end(run, seq, rc, "group %s, every %lld s", group_name,
			 (long long)group.interval_s);
	if (rc == 0)
		repl_scheduler_request(run->site->scheduler, group_name);
out:
	json_decref(reply);
	json_decref(prepare);
	cutover_group_volumes_free(&here);
	return rc;
}
