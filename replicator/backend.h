/* Volume backends: a small table of functions per kind of volume. Internal to replicator/;
 * everyone else goes through repl.h. A backend fills in size and identity on open. */
#ifndef FERRY_REPLICATOR_BACKEND_H
#define FERRY_REPLICATOR_BACKEND_H

#include "replicator/repl.h"

/* One piece of a batch of I/O: a read into buffer, or a write of buffer (NULL: of zeroes). The
 * buffer stays the caller's and must live until the batch call returns. */
struct repl_io {
	uint64_t offset;
	uint64_t length;
	void *buffer;
};

/* Most pieces a backend is handed at once (and so at most in flight). */
#define REPL_IO_BATCH_MAX 128

/* A kind's points and groups of points (repl.h's repl_point_* and repl_group_* say what each
 * call does; points.c checks the arguments and picks the table by the location's scheme).
 * location is always the whole one ("rbd:POOL/IMAGE"), so that messages can name it; a point
 * is its number N; group is a protection group's name, which the kind maps onto a group of its
 * own (RBD: the RBD group ferry-GROUP in the image's pool). Every call checks location in full
 * before it reaches the storage. */
struct repl_point_ops {
	int (*list)(const char *location, int64_t *points, size_t max, size_t *count,
		    int64_t *newest_time);
	int (*rollback)(const char *location, int64_t point);
	int (*clone)(const char *location, int64_t point, const char *clone_name);
	int (*clone_remove)(const char *location, int64_t point, const char *clone_name);
	int (*restore)(const char *location, const char *group, int64_t point);
	int (*reset)(const char *location, int64_t point);
	int (*group_place)(const char *location, char *place, size_t size);
	int (*group_join)(const char *location, const char *group, const char *member);
	int (*group_leave)(const char *location, const char *group);
	int (*group_point_exists)(const char *location, const char *group, int64_t point);
	int (*group_point_take)(const char *location, const char *group, int64_t point,
				bool *taken);
	int (*group_point_remove)(const char *location, const char *group, int64_t point);
	int (*group_prune)(const char *location, const char *group,
			   const struct repl_retention *retention);
	int (*group_dissolve)(const char *location, const char *group);
};

struct repl_backend_ops {
	const char *scheme; /* the "file" of "file:/path" */
	/* Optional (NULL: the kind has no points, and repl_point_* refuse its volumes). */
	const struct repl_point_ops *points;
	int (*open)(struct repl_volume *volume, const char *path, enum repl_open_mode mode);
	int (*create)(const char *path, uint64_t size, bool truncate);
	void (*close)(struct repl_volume *volume);
	int (*read)(struct repl_volume *volume, uint64_t offset, void *buffer, size_t length);
	/* Plain writes: keeping zero runs sparse is done above the backends. */
	int (*write)(struct repl_volume *volume, uint64_t offset, const void *data, size_t length);
	int (*write_zeroes)(struct repl_volume *volume, uint64_t offset, uint64_t length);
	int (*is_hole)(struct repl_volume *volume, uint64_t offset, uint64_t length, bool *hole);
	int (*flush)(struct repl_volume *volume);
	/* Optional: at most REPL_IO_BATCH_MAX pieces at once, all in flight together (a round
	 * trip each would otherwise be paid one after the other); returns once every piece is
	 * done, with the first error. Writes are not flushed. NULL: read/write, one by one. */
	int (*read_batch)(struct repl_volume *volume, const struct repl_io *ios, size_t count);
	int (*write_batch)(struct repl_volume *volume, const struct repl_io *ios, size_t count);
	/* Optional (NULL: the kind has no snapshots): extents changed since from_snapshot. */
	int (*diff)(struct repl_volume *volume, const char *from_snapshot, uint64_t offset,
		    uint64_t length, bool exact,
		    int (*each)(uint64_t offset, uint64_t length, void *context), void *context);
	/* Optional: takes a snapshot; one that already exists is not an error. */
	int (*snapshot_create)(struct repl_volume *volume, const char *name);
	/* Optional: removes a snapshot; FERRY_ERR_NOT_FOUND when there is none of that name. */
	int (*snapshot_remove)(struct repl_volume *volume, const char *name);
	/* Optional: calls each(name, context) for every snapshot of the volume; an error from
	 * each ends the walk and is returned. */
	int (*snapshot_list)(struct repl_volume *volume,
			     int (*each)(const char *name, void *context), void *context);
	/* Optional: grows the volume to size bytes. */
	int (*resize)(struct repl_volume *volume, uint64_t size);
};

struct repl_volume {
	const struct repl_backend_ops *ops;
	char location[1024];
	uint64_t size;
	char identity[256];
	void *backend_data;
};

/* Batches for the replicator's own use (repl.h has the one-piece calls): any number of pieces,
 * handed to the backend REPL_IO_BATCH_MAX at a time. */
int repl_volume_read_batch(struct repl_volume *volume, const struct repl_io *ios, size_t count);
int repl_volume_write_batch(struct repl_volume *volume, const struct repl_io *ios, size_t count);
/* Writes the ranges [offset + ranges[i].offset, + ranges[i].length) from data (the bytes of
 * [offset, ...)), sorted, not overlapping; all-zero blocks stay sparse as in
 * repl_volume_write(). Many writes are in flight at once; none is flushed. */
int repl_volume_write_ranges(struct repl_volume *volume, uint64_t offset, const void *data,
			     const struct segment_extent *ranges, size_t count);

/* Per-thread decoding scratch: a connection's thread keeps its codec across segments; the plain
 * and packed buffers live for one request only (sized by that transfer's segment). */
struct receiver_scratch {
	struct segment_codec *codec;
	char *plain;
	size_t capacity;
	/* extents segments: their packed form and table */
	uint8_t *packed;
	size_t packed_capacity;
	struct segment_extent extents[SEGMENT_EXTENTS_MAX];
};
/* This thread's scratch with room for `length` plain bytes and `packed_length` bytes of packed
 * extents, or NULL when memory runs out (receiver_scratch.c). */
struct receiver_scratch *receiver_scratch_get(size_t length, size_t packed_length);

/* FERRY_ERR_NO_SPACE, reported, when writing `bytes` into the volume at `location`, a file in
 * the receiver's `folder`, would leave too little room there for the catalog
 * (receiver_space.c); 0 for volumes elsewhere. */
int receiver_check_headroom(const char *folder, const char *location, uint64_t bytes);

extern const struct repl_backend_ops repl_backend_file;
extern const struct repl_backend_ops repl_backend_rbd;
/* disk:FORMAT:/path, read through qemu-nbd (backend_disk.c); FORMAT one of raw, qcow2, vmdk,
 * vhdx, vpc. */
extern const struct repl_backend_ops repl_backend_disk;
extern const struct repl_point_ops repl_points_rbd;

#endif
