/* RBD points: a volume's points are its snapshots ferry-N, a protection group's points are
 * RBD group snapshots ferry-N of the RBD group that holds its images; rollback, clones for a
 * test failover and the point functions of a reprotect. The cluster connection and the image
 * helpers are backend_rbd.c's (backend_rbd.h). */
#include "replicator/backend_rbd.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- RBD groups ---- */

/* Whether name is exactly ferry-N, a point (N >= 1, through the one strict number parser). */
static bool
rbd_point_number(const char *name, int64_t *point)
{
	return strncmp(name, "ferry-", 6) == 0 &&
	       util_parse_int64(name + 6, 1, INT64_MAX, point) == 0;
}

/* The pool of rbd:POOL/IMAGE (or POOL/IMAGE) into pool. */
static int
repl_rbd_pool_of(const char *location, char *pool, size_t size)
{
	const char *path = location + (strncmp(location, "rbd:", 4) == 0 ? 4 : 0);
	const char *slash = strchr(path, '/');

	if (slash == NULL || slash == path || (size_t)(slash - path) >= size)
		return ferry_error_set(FERRY_ERR_INVALID, "'%s' is not rbd:POOL/IMAGE", location);
	snprintf(pool, size, "%.*s", (int)(slash - path), path);
	return 0;
}

/* Opens pool and, when image_location is given, that image (rbd:POOL/IMAGE) in it. */
static int
rbd_group_open(const char *pool, const char *image_location, struct rbd_volume *image)
{
	int rc;

	memset(image, 0, sizeof(*image));
	if (image_location) {
		if (strncmp(image_location, "rbd:", 4) != 0)
			return ferry_error_set(FERRY_ERR_INVALID, "%s is not an RBD image",
					       image_location);
		rc = rbd_parse(image_location + 4, image);
		if (rc < 0)
			return rc;
		if (strcmp(image->pool, pool) != 0)
			return ferry_error_set(FERRY_ERR_INVALID,
					       "%s is not in pool %s, where the other images of "
					       "its group are: an RBD group snapshot covers one "
					       "pool; protect it in a group of its own",
					       image_location, pool);
	}
	rc = rbd_ioctx_open(pool, image_location ? image_location : pool, &image->ioctx);
	if (rc < 0 || image_location == NULL)
		return rc;
	rc = rbd_open(image->ioctx, image->name, &image->image, NULL);
	if (rc < 0) {
		rados_ioctx_destroy(image->ioctx);
		image->ioctx = NULL;
		return rbd_error(rc, "cannot open RBD image", image_location);
	}
	return 0;
}

static void
rbd_group_close(struct rbd_volume *image)
{
	if (image->image)
		rbd_close(image->image);
	if (image->ioctx)
		rados_ioctx_destroy(image->ioctx);
}

/* Adds the image (rbd:POOL/IMAGE) to the group, creating the group if needed;
 * FERRY_ERR_CONFLICT when it is in another group. */
static int
repl_rbd_group_join(const char *pool, const char *group, const char *image_location)
{
	struct rbd_volume image;
	rbd_group_info_t info = {0};
	int rc;

	rc = rbd_group_open(pool, image_location, &image);
	if (rc < 0)
		goto out;
	rc = rbd_get_group(image.image, &info, sizeof(info));
	if (rc < 0) {
		rc = rbd_error(rc, "cannot read the RBD group of", image_location);
		goto out;
	}
	if (info.pool >= 0) {
		if (strcmp(info.name, group) == 0 && info.pool == rados_ioctx_get_id(image.ioctx))
			goto out; /* joined already */
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "%s is in RBD group %s already; ferry keeps the images of a "
				     "protection group in an RBD group of its own (%s/%s) so that "
				     "they share one instant: remove it from %s (rbd group image "
				     "remove) first",
				     image_location, info.name, pool, group, info.name);
		goto out;
	}
	rc = rbd_group_create(image.ioctx, group);
	if (rc < 0 && rc != -EEXIST) {
		rc = rbd_error(rc, "cannot create the RBD group for", image_location);
		goto out;
	}
	rc = rbd_group_image_add(image.ioctx, group, image.ioctx, image.name);
	if (rc < 0)
		rc = rbd_error(rc, "cannot add to its RBD group", image_location);
out:
	if (info.name)
		rbd_group_info_cleanup(&info, sizeof(info));
	rbd_group_close(&image);
	return rc < 0 ? rc : 0;
}

/* Removes the image from the group; the last one out removes the group. */
static int
repl_rbd_group_leave(const char *pool, const char *group, const char *image_location)
{
	struct rbd_volume image;
	size_t count = 0;
	int rc;

	rc = rbd_group_open(pool, NULL, &image);
	if (rc < 0)
		return rc;
	rc = rbd_parse(image_location + (strncmp(image_location, "rbd:", 4) ? 0 : 4), &image);
	if (rc < 0)
		goto out;
	rc = rbd_group_image_remove(image.ioctx, group, image.ioctx, image.name);
	if (rc < 0 && rc != -ENOENT) {
		rc = rbd_error(rc, "cannot remove from its RBD group", image_location);
		goto out;
	}
	/* The last image gone, the group and its snapshots go too; never while another image
	 * is in it: its points are the group's snapshots. (librbd answers -ERANGE with a count
	 * of 0 to a list call without room for one entry, so the call has room for one.) */
	{
		rbd_group_image_info_t one;

		count = 1;
		rc = rbd_group_image_list(image.ioctx, group, &one, sizeof(one), &count);
		if (rc >= 0 && count > 0)
			rbd_group_image_list_cleanup(&one, sizeof(one), count);
		if (rc >= 0 && count == 0)
			rbd_group_remove(image.ioctx, group);
	}
	rc = 0;
out:
	rbd_group_close(&image);
	return rc;
}

/* Lists the group's snapshots; calls each(name, complete, context) for every one. */
static int
rbd_group_snapshots(rados_ioctx_t ioctx, const char *group,
		    int (*each)(const char *name, bool complete, void *context), void *context)
{
	rbd_group_snap_info_t *snapshots = NULL;
	size_t count = 32;
	int rc;

	for (;;) {
		free(snapshots);
		snapshots = calloc(count, sizeof(*snapshots));
		if (snapshots == NULL)
			return ferry_error_no_memory();
		rc = rbd_group_snap_list(ioctx, group, snapshots, sizeof(*snapshots), &count);
		if (rc != -ERANGE)
			break;
	}
	if (rc < 0) {
		free(snapshots);
		return rc;
	}
	rc = 0; /* librbd answers the number of entries */
	for (size_t i = 0; i < count && rc == 0; i++)
		rc = each(snapshots[i].name, snapshots[i].state == RBD_GROUP_SNAP_STATE_COMPLETE,
			  context);
	rbd_group_snap_list_cleanup(snapshots, sizeof(*snapshots), count);
	free(snapshots);
	return rc;
}

struct rbd_group_find {
	const char *name;
	int found; /* 0 none, 1 incomplete, 2 complete */
};

static int
rbd_group_find_snapshot(const char *name, bool complete, void *context)
{
	struct rbd_group_find *find = context;

	if (strcmp(name, find->name) == 0)
		find->found = complete ? 2 : 1;
	return 0;
}

/* Finds group snapshot name: 0 none, 1 incomplete, 2 complete; or a negative error. */
static int
rbd_group_snapshot_state(rados_ioctx_t ioctx, const char *pool, const char *group, const char *name)
{
	struct rbd_group_find find = {name, 0};
	char location[600];
	int rc;

	rc = rbd_group_snapshots(ioctx, group, rbd_group_find_snapshot, &find);
	if (rc == -ENOENT)
		return 0; /* no group yet: no snapshot either */
	if (rc < 0) {
		snprintf(location, sizeof(location), "RBD group %s/%s", pool, group);
		return rbd_error(rc, "cannot list the snapshots of", location);
	}
	return find.found;
}

/* 1 when the group holds a complete snapshot name, else 0; or a negative error. */
static int
repl_rbd_group_snapshot_exists(const char *pool, const char *group, const char *name)
{
	struct rbd_volume handle;
	int rc;

	rc = rbd_group_open(pool, NULL, &handle);
	if (rc < 0)
		return rc;
	rc = rbd_group_snapshot_state(handle.ioctx, pool, group, name);
	rbd_group_close(&handle);
	return rc < 0 ? rc : rc == 2;
}

/* Takes group snapshot name unless a complete one exists (an incomplete one is taken again);
 * *taken says whether it was taken now. */
static int
repl_rbd_group_snapshot_create(const char *pool, const char *group, const char *name, bool *taken)
{
	struct rbd_volume handle;
	char location[600];
	int rc, state;

	snprintf(location, sizeof(location), "RBD group %s/%s", pool, group);
	*taken = false;
	rc = rbd_group_open(pool, NULL, &handle);
	if (rc < 0)
		return rc;
	rc = state = rbd_group_snapshot_state(handle.ioctx, pool, group, name);
	if (rc < 0)
		goto out;
	rc = 0;
	if (state == 2)
		goto out;
	/* A creation cut short leaves an incomplete snapshot: never a point, so start it over. */
	if (state == 1)
		rbd_group_snap_remove(handle.ioctx, group, name);
	rc = rbd_group_snap_create(handle.ioctx, group, name);
	if (rc < 0) {
		rc = rbd_error(rc, "cannot take a group snapshot of", location);
		goto out;
	}
	*taken = true;
out:
	rbd_group_close(&handle);
	return rc;
}

static int
repl_rbd_group_snapshot_remove(const char *pool, const char *group, const char *name)
{
	struct rbd_volume handle;
	char location[600];
	int rc;

	rc = rbd_group_open(pool, NULL, &handle);
	if (rc < 0)
		return rc;
	rc = rbd_group_snap_remove(handle.ioctx, group, name);
	if (rc < 0 && rc != -ENOENT) {
		snprintf(location, sizeof(location), "RBD group %s/%s", pool, group);
		rc = rbd_error(rc, "cannot remove a snapshot of", location);
	} else {
		rc = 0;
	}
	rbd_group_close(&handle);
	return rc;
}

struct rbd_group_prune {
	rados_ioctx_t ioctx;
	const char *group;
	const struct repl_retention *retention;
	int removed;
};

static int
rbd_group_prune_snapshot(const char *name, bool complete, void *context)
{
	struct rbd_group_prune *prune = context;
	int64_t point;

	(void)complete;
	if (!rbd_point_number(name, &point) || repl_retention_keeps(prune->retention, point))
		return 0;
	if (rbd_group_snap_remove(prune->ioctx, prune->group, name) == 0)
		prune->removed++;
	return 0;
}

/* Removes the group snapshots ferry-M that retention does not keep; returns how many. */
static int
repl_rbd_group_prune_points(const char *pool, const char *group,
			    const struct repl_retention *retention)
{
	struct rbd_volume handle;
	struct rbd_group_prune prune = {NULL, group, retention, 0};
	char location[600];
	int rc;

	snprintf(location, sizeof(location), "RBD group %s/%s", pool, group);
	rc = rbd_group_open(pool, NULL, &handle);
	if (rc < 0)
		return rc;
	prune.ioctx = handle.ioctx;
	rc = rbd_group_snapshots(handle.ioctx, group, rbd_group_prune_snapshot, &prune);
	if (rc < 0)
		rc = rbd_error(rc, "cannot list the snapshots of", location);
	rbd_group_close(&handle);
	return rc < 0 ? rc : prune.removed;
}

/* ---- replica points, for failover ---- */

/* Opens rbd:POOL/IMAGE (write mode) for the calls below. */
static int
rbd_point_open(const char *location, struct rbd_volume *image)
{
	char pool[128];
	int rc = repl_rbd_pool_of(location, pool, sizeof(pool));

	return rc < 0 ? rc : rbd_group_open(pool, location, image);
}

/* Replica points of rbd:POOL/IMAGE (its snapshots ferry-N), at most max of them, in no order;
 * *newest_time is when the newest was taken (Unix seconds). */
static int
repl_rbd_points(const char *location, int64_t *points, size_t max, size_t *count,
		int64_t *newest_time)
{
	struct rbd_volume image;
	rbd_snap_info_t *snapshots = NULL;
	long long newest = 0;
	int found = 64, rc;

	*count = 0;
	*newest_time = 0;
	rc = rbd_point_open(location, &image);
	if (rc < 0)
		return rc;
	for (;;) {
		free(snapshots);
		snapshots = calloc((size_t)found, sizeof(*snapshots));
		if (snapshots == NULL) {
			rc = ferry_error_no_memory();
			goto out;
		}
		rc = rbd_snap_list(image.image, snapshots, &found);
		if (rc != -ERANGE)
			break;
	}
	if (rc < 0) {
		rc = rbd_error(rc, "cannot list the snapshots of", location);
		goto out;
	}
	found = rc;
	rc = 0;
	for (int i = 0; i < found; i++) {
		int64_t point;

		if (!rbd_point_number(snapshots[i].name, &point))
			continue;
		if (*count < max)
			points[(*count)++] = point;
		if (point > newest) {
			struct timespec taken = {0, 0};

			newest = point;
			if (rbd_snap_get_timestamp(image.image, snapshots[i].id, &taken) == 0)
				*newest_time = taken.tv_sec;
		}
	}
	rbd_snap_list_end(snapshots);
out:
	free(snapshots);
	rbd_group_close(&image);
	return rc;
}

/* Whether the image has a user snapshot called name: 1 yes, 0 no, or a negative error. */
static int
rbd_snapshot_present(struct rbd_volume *image, const char *location, const char *name)
{
	rbd_snap_info_t *snapshots = NULL;
	int count = 0, rc = rbd_snapshots_of(image, location, &snapshots, &count);

	if (rc < 0)
		return rc;
	for (int i = 0; i < count && rc == 0; i++)
		rc = strcmp(snapshots[i].name, name) == 0;
	rbd_snapshots_free(snapshots);
	return rc;
}

/* A rollback rewrites every object it restores, so a diff from the point afterwards lists
 * them all as changed although their bytes equal the point's: the next delta (a reprotect's,
 * after a disaster that left half a delta landed) would re-read most of the disk. The point is
 * therefore taken again right after the rollback, with the same bytes and the same name:
 * first as snapshot-rebase, which then replaces the old one. Every step leaves one snapshot of
 * the point's bytes that the next call finds, so a crash between them loses nothing. */
static int
rbd_rollback_rebase(struct rbd_volume *image, const char *location, const char *snapshot)
{
	char rebase[64];
	int rc;

	snprintf(rebase, sizeof(rebase), "%s-rebase", snapshot);
	rc = rbd_snapshot_present(image, location, snapshot);
	if (rc == 0) {
		/* Cut short after the old snapshot went: the rebase one is the point. */
		rc = rbd_snap_rename(image->image, rebase, snapshot);
		return rc < 0 ? rbd_error(rc, "holds neither the point nor its rebased snapshot:",
					  location)
			      : 0;
	}
	if (rc < 0)
		return rc;
	rc = rbd_snap_rollback(image->image, snapshot);
	if (rc < 0)
		return rbd_error(rc, "cannot roll back to its point", location);
	rc = rbd_snapshot_present(image, location, rebase);
	if (rc == 1)
		rc = rbd_snap_remove(image->image, rebase);
	if (rc == 0)
		rc = rbd_snap_create(image->image, rebase);
	if (rc < 0)
		return rbd_error(rc, "cannot take the rebased point of", location);
	rc = rbd_snap_remove(image->image, snapshot);
	if (rc == -EBUSY) {
		/* A test failover's clone still uses the point: keep it. The next delta is larger
		 * but still exact. */
		log_warn("%s: %s is in use by a clone, so the next delta will also list what the "
			 "rollback restored",
			 location, snapshot);
		rbd_snap_remove(image->image, rebase);
		return 0;
	}
	if (rc == 0)
		rc = rbd_snap_rename(image->image, rebase, snapshot);
	return rc < 0 ? rbd_error(rc, "cannot replace the point with its rebased snapshot on",
				  location)
		      : 0;
}

/* Brings the image back to snapshot (a failover onto a point) and takes that snapshot again
 * with the same bytes, so that a diff from it lists only what is written afterwards. */
static int
repl_rbd_rollback(const char *location, const char *snapshot)
{
	struct rbd_volume image;
	int rc = rbd_point_open(location, &image);

	if (rc < 0)
		return rc;
	rc = rbd_rollback_rebase(&image, location, snapshot);
	rbd_group_close(&image);
	return rc;
}

/* Clones snapshot of the image into clone_name in the same pool (a test failover), and
 * removes such a clone again. */
static int
repl_rbd_clone(const char *location, const char *snapshot, const char *clone_name)
{
	struct rbd_volume image;
	int order = 0, is_protected = 0, rc = rbd_point_open(location, &image);

	if (rc < 0)
		return rc;
	/* Format 1 clones need a protected parent snapshot; it also keeps retention off it. */
	rc = rbd_snap_is_protected(image.image, snapshot, &is_protected);
	if (rc == 0 && !is_protected)
		rc = rbd_snap_protect(image.image, snapshot);
	if (rc == 0 || rc == -EBUSY)
		rc = rbd_clone(image.ioctx, image.name, snapshot, image.ioctx, clone_name,
			       RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK, &order);
	if (rc == -EEXIST)
		rc = 0;
	if (rc < 0)
		rc = rbd_error(rc, "cannot clone the point of", location);
	rbd_group_close(&image);
	return rc;
}

static int
repl_rbd_remove_clone(const char *location, const char *snapshot, const char *clone_name)
{
	struct rbd_volume image;
	int rc = rbd_point_open(location, &image);

	if (rc < 0)
		return rc;
	rc = rbd_remove(image.ioctx, clone_name);
	if (rc < 0 && rc != -ENOENT) {
		rc = rbd_error(rc, "cannot remove the test clone of", location);
		goto out;
	}
	/* Unprotecting fails while another clone still uses the snapshot: it stays protected. */
	rbd_snap_unprotect(image.image, snapshot);
	rc = 0;
out:
	rbd_group_close(&image);
	return rc;
}

/* ---- reversing the direction (reprotect) ---- */

/* Opens the image at location (in pool) and lists its snapshots, for the point functions
 * below. On success *snapshots is the caller's to free (rbd_snapshots_free) and image to
 * close; on failure nothing is left open. */
static int
rbd_point_snapshots(const char *location, char *pool, size_t pool_size, struct rbd_volume *image,
		    rbd_snap_info_t **snapshots, int *count)
{
	int rc = repl_rbd_pool_of(location, pool, pool_size);

	*snapshots = NULL;
	*count = 0;
	if (rc == 0)
		rc = rbd_group_open(pool, location, image);
	if (rc < 0)
		return rc;
	rc = rbd_snapshots_of(image, location, snapshots, count);
	if (rc < 0)
		rbd_group_close(image);
	return rc;
}

/* Brings the image back to point N: its user snapshot ferry-N, else group snapshot ferry-N of
 * RBD group group (which rolls back every image of that group); FERRY_ERR_NOT_FOUND when
 * neither is left. */
static int
repl_rbd_point_restore(const char *location, const char *group, int64_t point)
{
	struct rbd_volume image;
	char name[32], pool[128];
	rbd_snap_info_t *snapshots = NULL;
	bool user = false;
	int count = 0, rc;

	snprintf(name, sizeof(name), "ferry-%lld", (long long)point);
	rc = rbd_point_snapshots(location, pool, sizeof(pool), &image, &snapshots, &count);
	if (rc < 0)
		return rc;
	for (int i = 0; rc == 0 && i < count; i++)
		user = user || strcmp(snapshots[i].name, name) == 0;
	rbd_snapshots_free(snapshots);
	if (rc == 0 && user) {
		rc = rbd_snap_rollback(image.image, name);
		if (rc < 0)
			rc = rbd_error(rc, "cannot roll back to its point", location);
		goto out;
	}
	if (rc < 0)
		goto out;
	/* A primary's point is a group snapshot; rolling the group back moves every image of it
	 * to that one instant, which is what each of them needs. */
	rc = repl_rbd_group_snapshot_exists(pool, group, name);
	if (rc == 1) {
		rc = rbd_group_snap_rollback(image.ioctx, group, name);
		if (rc < 0)
			rc = rbd_error(rc, "cannot roll back its RBD group to a point:", location);
	} else if (rc == 0) {
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "%s no longer holds point %lld (no snapshot %s, nor in RBD "
				     "group %s): the last point both sites share is gone, so "
				     "only a full copy could reverse it",
				     location, (long long)point, name, group);
	}
out:
	rbd_group_close(&image);
	return rc;
}

/* Leaves the image as a replica at point N: removes its snapshots ferry-M for M > N and every
 * ferry-M-before, and takes ferry-N unless it exists. */
static int
repl_rbd_points_reset(const char *location, int64_t point)
{
	struct rbd_volume image;
	char name[32], pool[128];
	rbd_snap_info_t *snapshots = NULL;
	bool has_point = false;
	int count = 0, rc;

	snprintf(name, sizeof(name), "ferry-%lld", (long long)point);
	rc = rbd_point_snapshots(location, pool, sizeof(pool), &image, &snapshots, &count);
	if (rc < 0)
		return rc;
	for (int i = 0; rc == 0 && i < count; i++) {
		const char *snapshot = snapshots[i].name;
		int64_t number = 0;
		bool exact;

		if (strncmp(snapshot, "ferry-", 6) != 0)
			continue;
		exact = rbd_point_number(snapshot, &number);
		if (exact && number == point) {
			has_point = true;
			continue;
		}
		/* Points after the shared one hold writes the other site never saw; a -before
		 * snapshot belongs to a primary's group point. Neither may stay on a replica. */
		if (exact && number < point)
			continue;
		rc = rbd_snap_remove(image.image, snapshot);
		if (rc < 0)
			rc = rbd_error(rc, "cannot remove a snapshot of", location);
	}
	rbd_snapshots_free(snapshots);
	if (rc == 0 && !has_point) {
		rc = rbd_snap_create(image.image, name);
		if (rc < 0)
			rc = rbd_error(rc, "cannot take the shared point's snapshot on", location);
	}
	rbd_group_close(&image);
	return rc;
}

/* Removes RBD group group of pool with its snapshots; the images stay. No group: 0. */
static int
repl_rbd_group_dissolve(const char *pool, const char *group)
{
	struct rbd_volume handle;
	rbd_group_image_info_t *images = NULL;
	char location[600];
	size_t count = 16;
	int rc;

	snprintf(location, sizeof(location), "RBD group %s/%s", pool, group);
	rc = rbd_group_open(pool, NULL, &handle);
	if (rc < 0)
		return rc;
	for (;;) {
		free(images);
		images = calloc(count, sizeof(*images));
		if (images == NULL) {
			rc = ferry_error_no_memory();
			goto out;
		}
		rc = rbd_group_image_list(handle.ioctx, group, images, sizeof(*images), &count);
		if (rc != -ERANGE)
			break;
	}
	if (rc == -ENOENT) {
		rc = 0; /* no group: nothing to dissolve */
		count = 0;
		goto out;
	}
	if (rc < 0) {
		rc = rbd_error(rc, "cannot list the images of", location);
		goto out;
	}
	rc = repl_rbd_group_prune_points(pool, group,
					 &(struct repl_retention){.keep_from = INT64_MAX});
	for (size_t i = 0; rc >= 0 && i < count; i++) {
		rc = rbd_group_image_remove(handle.ioctx, group, handle.ioctx, images[i].name);
		if (rc < 0 && rc != -ENOENT)
			rc = rbd_error(rc, "cannot remove an image from", location);
		else
			rc = 0;
	}
	if (rc >= 0) {
		rc = rbd_group_remove(handle.ioctx, group);
		rc = rc == -ENOENT ? 0 : rc < 0 ? rbd_error(rc, "cannot remove", location) : 0;
	}
out:
	if (images)
		rbd_group_image_list_cleanup(images, sizeof(*images), count);
	free(images);
	rbd_group_close(&handle);
	return rc < 0 ? rc : 0;
}

/* ---- the point table of rbd: volumes (struct repl_point_ops, called through points.c) ---- */

/* Checks rbd:POOL/IMAGE in full, before any call reaches Ceph; sets the pool. */
static int
rbd_points_location(const char *location, char *pool, size_t size)
{
	struct rbd_volume parsed = {0};
	int rc;

	if (strncmp(location, "rbd:", 4) != 0)
		return ferry_error_set(FERRY_ERR_INVALID, "%s is not an RBD image", location);
	rc = rbd_parse(location + 4, &parsed);
	if (rc < 0)
		return rc;
	if (parsed.snapshot[0])
		return ferry_error_set(FERRY_ERR_INVALID,
				       "'%s' names a snapshot; points are of the image itself: "
				       "give rbd:POOL/IMAGE",
				       location);
	return repl_rbd_pool_of(location, pool, size);
}

/* The RBD group that holds a protection group's images: ferry-GROUP in the images' pool. */
static int
rbd_points_group(const char *location, const char *group, char *pool, size_t pool_size,
		 char *rbd_group, size_t rbd_group_size)
{
	int rc = rbd_points_location(location, pool, pool_size);

	if (rc == 0 &&
	    (size_t)snprintf(rbd_group, rbd_group_size, "ferry-%s", group) >= rbd_group_size)
		rc = ferry_error_set(FERRY_ERR_INVALID, "group name '%s' is too long", group);
	return rc;
}

static void
rbd_points_name(int64_t point, char *name, size_t size)
{
	snprintf(name, size, "ferry-%lld", (long long)point);
}

static int
rbd_points_list(const char *location, int64_t *points, size_t max, size_t *count,
		int64_t *newest_time)
{
	char pool[128];
	int rc = rbd_points_location(location, pool, sizeof(pool));

	return rc < 0 ? rc : repl_rbd_points(location, points, max, count, newest_time);
}

static int
rbd_points_rollback(const char *location, int64_t point)
{
	char pool[128], name[32];
	int rc = rbd_points_location(location, pool, sizeof(pool));

	rbd_points_name(point, name, sizeof(name));
	return rc < 0 ? rc : repl_rbd_rollback(location, name);
}

static int
rbd_points_clone(const char *location, int64_t point, const char *clone_name)
{
	char pool[128], name[32];
	int rc = rbd_points_location(location, pool, sizeof(pool));

	rbd_points_name(point, name, sizeof(name));
	return rc < 0 ? rc : repl_rbd_clone(location, name, clone_name);
}

static int
rbd_points_clone_remove(const char *location, int64_t point, const char *clone_name)
{
	char pool[128], name[32] = "";
	int rc = rbd_points_location(location, pool, sizeof(pool));

	if (point > 0)
		rbd_points_name(point, name, sizeof(name));
	return rc < 0 ? rc : repl_rbd_remove_clone(location, name, clone_name);
}

static int
rbd_points_restore(const char *location, const char *group, int64_t point)
{
	char pool[128], rbd_group[VOLUME_NAME_MAX + 8];
	int rc =
		rbd_points_group(location, group, pool, sizeof(pool), rbd_group, sizeof(rbd_group));

	return rc < 0 ? rc : repl_rbd_point_restore(location, rbd_group, point);
}

static int
rbd_points_reset(const char *location, int64_t point)
{
	char pool[128];
	int rc = rbd_points_location(location, pool, sizeof(pool));

	return rc < 0 ? rc : repl_rbd_points_reset(location, point);
}

static int
rbd_points_group_place(const char *location, char *place, size_t size)
{
	char pool[128];
	int rc = rbd_points_location(location, pool, sizeof(pool));

	if (rc == 0 && (size_t)snprintf(place, size, "%s", pool) >= size)
		rc = ferry_error_set(FERRY_ERR_INVALID, "the pool name of %s is too long",
				     location);
	return rc;
}

/* One RBD group snapshot covers one pool: a member of another pool is refused. */
static int
rbd_points_group_join(const char *location, const char *group, const char *member)
{
	char pool[128], member_pool[128], rbd_group[VOLUME_NAME_MAX + 8];
	int rc =
		rbd_points_group(location, group, pool, sizeof(pool), rbd_group, sizeof(rbd_group));

	if (rc == 0 && member != NULL) {
		rc = rbd_points_location(member, member_pool, sizeof(member_pool));
		if (rc == 0 && strcmp(member_pool, pool) != 0)
			rc = ferry_error_set(FERRY_ERR_INVALID,
					     "group %s protects images of pool %s; %s is in pool "
					     "%s, and one group snapshot covers one pool: protect "
					     "it in another group",
					     group, member_pool, location, pool);
	}
	return rc < 0 ? rc : repl_rbd_group_join(pool, rbd_group, location);
}

static int
rbd_points_group_leave(const char *location, const char *group)
{
	char pool[128], rbd_group[VOLUME_NAME_MAX + 8];
	int rc =
		rbd_points_group(location, group, pool, sizeof(pool), rbd_group, sizeof(rbd_group));

	return rc < 0 ? rc : repl_rbd_group_leave(pool, rbd_group, location);
}

static int
rbd_points_group_point_exists(const char *location, const char *group, int64_t point)
{
	char pool[128], rbd_group[VOLUME_NAME_MAX + 8], name[32];
	int rc =
		rbd_points_group(location, group, pool, sizeof(pool), rbd_group, sizeof(rbd_group));

	rbd_points_name(point, name, sizeof(name));
	return rc < 0 ? rc : repl_rbd_group_snapshot_exists(pool, rbd_group, name);
}

static int
rbd_points_group_point_take(const char *location, const char *group, int64_t point, bool *taken)
{
	char pool[128], rbd_group[VOLUME_NAME_MAX + 8], name[32];
	int rc =
		rbd_points_group(location, group, pool, sizeof(pool), rbd_group, sizeof(rbd_group));

	rbd_points_name(point, name, sizeof(name));
	if (rc == 0)
		rc = repl_rbd_group_snapshot_create(pool, rbd_group, name, taken);
	if (rc == 0 && *taken)
		log_debug("group %s: RBD group snapshot %s/%s@%s taken", group, pool, rbd_group,
			  name);
	return rc;
}

static int
rbd_points_group_point_remove(const char *location, const char *group, int64_t point)
{
	char pool[128], rbd_group[VOLUME_NAME_MAX + 8], name[32];
	int rc =
		rbd_points_group(location, group, pool, sizeof(pool), rbd_group, sizeof(rbd_group));

	rbd_points_name(point, name, sizeof(name));
	return rc < 0 ? rc : repl_rbd_group_snapshot_remove(pool, rbd_group, name);
}

static int
rbd_points_group_prune(const char *location, const char *group,
		       const struct repl_retention *retention)
{
	char pool[128], rbd_group[VOLUME_NAME_MAX + 8];
	int rc =
		rbd_points_group(location, group, pool, sizeof(pool), rbd_group, sizeof(rbd_group));

	return rc < 0 ? rc : repl_rbd_group_prune_points(pool, rbd_group, retention);
}

static int
rbd_points_group_dissolve(const char *location, const char *group)
{
	char pool[128], rbd_group[VOLUME_NAME_MAX + 8];
	int rc =
		rbd_points_group(location, group, pool, sizeof(pool), rbd_group, sizeof(rbd_group));

	return rc < 0 ? rc : repl_rbd_group_dissolve(pool, rbd_group);
}

const struct repl_point_ops repl_points_rbd = {
	.list = rbd_points_list,
	.rollback = rbd_points_rollback,
	.clone = rbd_points_clone,
	.clone_remove = rbd_points_clone_remove,
	.restore = rbd_points_restore,
	.reset = rbd_points_reset,
	.group_place = rbd_points_group_place,
	.group_join = rbd_points_group_join,
	.group_leave = rbd_points_group_leave,
	.group_point_exists = rbd_points_group_point_exists,
	.group_point_take = rbd_points_group_point_take,
	.group_point_remove = rbd_points_group_point_remove,
	.group_prune = rbd_points_group_prune,
	.group_dissolve = rbd_points_group_dissolve,
};
