/* What the RBD backend (backend_rbd.c: the cluster connection, images as volumes) shares with
 * the RBD points (points_rbd.c: snapshots, groups, rollback, clones). Internal to replicator/. */
#ifndef FERRY_REPLICATOR_BACKEND_RBD_H
#define FERRY_REPLICATOR_BACKEND_RBD_H

#include "replicator/backend.h"

#include <rados/librados.h>
#include <rbd/librbd.h>

struct rbd_volume {
	rados_ioctx_t ioctx;
	rbd_image_t image;
	char pool[128];
	char name[256];
	char snapshot[256];
};

/* Records the message for a failed librbd/librados call (a negative errno) on location, with
 * a hint for the operator, and returns the ferry code. */
int rbd_error(int negative_errno, const char *what, const char *location);
/* Splits "POOL/IMAGE[@SNAP]" into out. */
int rbd_parse(const char *path, struct rbd_volume *out);
/* Opens an I/O context on pool, connecting the cluster first if needed. */
int rbd_ioctx_open(const char *pool, const char *location, rados_ioctx_t *ioctx);
/* The image's user snapshots, listed; caller frees with rbd_snapshots_free(). */
int rbd_snapshots_of(struct rbd_volume *image, const char *location, rbd_snap_info_t **out,
		     int *count);
void rbd_snapshots_free(rbd_snap_info_t *snapshots);

#endif
