/* Volume dispatch: picks the backend from the location's scheme and forwards each call.
 * "file:/path" and plain paths are files; later schemes (rbd:POOL/IMAGE) plug in here. */
#include "replicator/backend.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct repl_backend_ops *const repl_backends[] = {
	&repl_backend_file, &repl_backend_rbd, &repl_backend_disk};

static int
repl_backend_for(const char *location, const struct repl_backend_ops **ops, const char **path)
{
	const char *colon = strchr(location, ':');

	if (colon == NULL || location[0] == '/' || location[0] == '.') {
		*ops = &repl_backend_file;
		*path = location;
		return 0;
	}
	for (size_t i = 0; i < sizeof(repl_backends) / sizeof(repl_backends[0]); i++) {
		size_t length = strlen(repl_backends[i]->scheme);

		if ((size_t)(colon - location) == length &&
		    strncmp(location, repl_backends[i]->scheme, length) == 0) {
			*ops = repl_backends[i];
			*path = colon + 1;
			return 0;
		}
	}
	return ferry_error_set(FERRY_ERR_INVALID,
			       "unknown volume kind in '%s'; use file:/path or a plain path",
			       location);
}

int
repl_volume_open(const char *location, enum repl_open_mode mode, struct repl_volume **out)
{
	const struct repl_backend_ops *ops;
	struct repl_volume *volume;
	const char *path;
	int rc;

	rc = repl_backend_for(location, &ops, &path);
	if (rc < 0)
		return rc;
	volume = calloc(1, sizeof(*volume));
	if (volume == NULL)
		return ferry_error_no_memory();
	volume->ops = ops;
	snprintf(volume->location, sizeof(volume->location), "%s", path);
	rc = ops->open(volume, path, mode);
	if (rc < 0) {
		free(volume);
		return rc;
	}
	*out = volume;
	return 0;
}

int
repl_volume_create(const char *location, uint64_t size, bool truncate)
{
	const struct repl_backend_ops *ops;
	const char *path;
	int rc = repl_backend_for(location, &ops, &path);

	return rc < 0 ? rc : ops->create(path, size, truncate);
}

void
repl_volume_close(struct repl_volume *volume)
{
	if (volume == NULL)
		return;
	volume->ops->close(volume);
	free(volume);
}

uint64_t
repl_volume_size(const struct repl_volume *volume)
{
	return volume->size;
}

const char *
repl_volume_identity(const struct repl_volume *volume)
{
	return volume->identity;
}

const char *
repl_volume_kind(const struct repl_volume *volume)
{
	return volume->ops->scheme;
}

const char *
repl_volume_location(const struct repl_volume *volume)
{
	return volume->location;
}

int
repl_volume_read(struct repl_volume *volume, uint64_t offset, void *buffer, size_t length)
{
	return volume->ops->read(volume, offset, buffer, length);
}

int
repl_volume_read_batch(struct repl_volume *volume, const struct repl_io *ios, size_t count)
{
	for (size_t done = 0; done < count;) {
		size_t step = count - done < REPL_IO_BATCH_MAX ? count - done : REPL_IO_BATCH_MAX;
		int rc = 0;

		if (volume->ops->read_batch)
			rc = volume->ops->read_batch(volume, ios + done, step);
		for (size_t i = done; volume->ops->read_batch == NULL && rc == 0 && i < done + step;
		     i++)
			rc = volume->ops->read(volume, ios[i].offset, ios[i].buffer,
					       (size_t)ios[i].length);
		if (rc < 0)
			return rc;
		done += step;
	}
	return 0;
}

int
repl_volume_write_batch(struct repl_volume *volume, const struct repl_io *ios, size_t count)
{
	for (size_t done = 0; done < count;) {
		size_t step = count - done < REPL_IO_BATCH_MAX ? count - done : REPL_IO_BATCH_MAX;
		int rc = 0;

		if (volume->ops->write_batch)
			rc = volume->ops->write_batch(volume, ios + done, step);
		for (size_t i = done;
		     volume->ops->write_batch == NULL && rc == 0 && i < done + step; i++)
			rc = ios[i].buffer
				     ? volume->ops->write(volume, ios[i].offset, ios[i].buffer,
							  (size_t)ios[i].length)
				     : volume->ops->write_zeroes(volume, ios[i].offset,
								 ios[i].length);
		if (rc < 0)
			return rc;
		done += step;
	}
	return 0;
}

/* Pieces of writes gathered until a backend's batch is full, then handed over together. */
struct volume_write_queue {
	struct repl_io ios[REPL_IO_BATCH_MAX];
	size_t count;
};

static int
volume_write_queue_flush(struct repl_volume *volume, struct volume_write_queue *queue)
{
	int rc = repl_volume_write_batch(volume, queue->ios, queue->count);

	queue->count = 0;
	return rc;
}

static int
volume_write_queue_add(struct repl_volume *volume, struct volume_write_queue *queue,
		       uint64_t offset, uint64_t length, const void *data)
{
	if (queue->count == REPL_IO_BATCH_MAX) {
		int rc = volume_write_queue_flush(volume, queue);

		if (rc < 0)
			return rc;
	}
	queue->ios[queue->count++] = (struct repl_io){offset, length, (void *)data};
	return 0;
}

/* Queues runs of data as writes and runs of zero blocks as write_zeroes, block by block, so that
 * a volume stays as sparse as its source and re-writing a segment always leaves exactly its
 * bytes. Backends see plain writes and write_zeroes only. */
static int
volume_write_sparse(struct repl_volume *volume, struct volume_write_queue *queue, uint64_t offset,
		    const char *bytes, size_t length)
{
	size_t position = 0;

	while (position < length) {
		size_t block = length - position < SEGMENT_SPARSE_BLOCK ? length - position
									: SEGMENT_SPARSE_BLOCK;
		bool zero = segment_is_zero(bytes + position, block);
		size_t run = position + block;
		int rc;

		while (run < length) {
			size_t next = length - run < SEGMENT_SPARSE_BLOCK ? length - run
									  : SEGMENT_SPARSE_BLOCK;

			if (segment_is_zero(bytes + run, next) != zero)
				break;
			run += next;
		}
		rc = volume_write_queue_add(volume, queue, offset + position, run - position,
					    zero ? NULL : bytes + position);
		if (rc < 0)
			return rc;
		position = run;
	}
	return 0;
}

int
repl_volume_write(struct repl_volume *volume, uint64_t offset, const void *data, size_t length)
{
	struct volume_write_queue queue;
	int rc;

	queue.count = 0;
	rc = volume_write_sparse(volume, &queue, offset, data, length);
	if (rc == 0)
		rc = volume_write_queue_flush(volume, &queue);
	return rc;
}

int
repl_volume_write_ranges(struct repl_volume *volume, uint64_t offset, const void *data,
			 const struct segment_extent *ranges, size_t count)
{
	struct volume_write_queue queue;
	int rc = 0;

	queue.count = 0;
	for (size_t i = 0; rc == 0 && i < count; i++)
		rc = volume_write_sparse(volume, &queue, offset + ranges[i].offset,
					 (const char *)data + ranges[i].offset, ranges[i].length);
	if (rc == 0)
		rc = volume_write_queue_flush(volume, &queue);
	return rc;
}

int
repl_volume_write_zeroes(struct repl_volume *volume, uint64_t offset, uint64_t length)
{
	return volume->ops->write_zeroes(volume, offset, length);
}

int
repl_volume_is_hole(struct repl_volume *volume, uint64_t offset, uint64_t length, bool *hole)
{
	return volume->ops->is_hole(volume, offset, length, hole);
}

int
repl_volume_flush(struct repl_volume *volume)
{
	return volume->ops->flush(volume);
}

int
repl_volume_diff(struct repl_volume *volume, const char *from_snapshot, uint64_t offset,
		 uint64_t length, bool exact,
		 int (*each)(uint64_t offset, uint64_t length, void *context), void *context)
{
	if (volume->ops->diff == NULL)
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"%s volumes have no snapshots to compare (%s); copy it whole",
			volume->ops->scheme, volume->location);
	return volume->ops->diff(volume, from_snapshot, offset, length, exact, each, context);
}

int
repl_volume_snapshot_create(struct repl_volume *volume, const char *name)
{
	if (volume->ops->snapshot_create == NULL)
		return ferry_error_set(FERRY_ERR_INVALID, "%s volumes have no snapshots (%s)",
				       volume->ops->scheme, volume->location);
	return volume->ops->snapshot_create(volume, name);
}

int
repl_volume_snapshot_remove(struct repl_volume *volume, const char *name)
{
	if (volume->ops->snapshot_remove == NULL)
		return ferry_error_set(FERRY_ERR_INVALID, "%s volumes have no snapshots (%s)",
				       volume->ops->scheme, volume->location);
	return volume->ops->snapshot_remove(volume, name);
}

int
repl_volume_resize(struct repl_volume *volume, uint64_t size)
{
	if (volume->ops->resize == NULL)
		return ferry_error_set(FERRY_ERR_INVALID, "%s volumes cannot be resized (%s)",
				       volume->ops->scheme, volume->location);
	return volume->ops->resize(volume, size);
}

void
repl_retention_also(struct repl_retention *retention, int64_t point)
{
	if (repl_retention_keeps(retention, point))
		return;
	if (retention->also_count == REPL_RETENTION_ALSO_MAX) {
		retention->keep_from = point;
		return;
	}
	retention->also[retention->also_count++] = point;
}

bool
repl_retention_keeps(const struct repl_retention *retention, int64_t point)
{
	if (point >= retention->keep_from)
		return true;
	for (size_t i = 0; i < retention->also_count; i++)
		if (retention->also[i] == point)
			return true;
	return false;
}

struct volume_prune_list {
	const struct repl_retention *retention;
	char (*names)[48];
	size_t count;
	size_t capacity;
};

/* Collects the ferry-M and ferry-M-before that retention does not keep. */
static int
volume_prune_collect(const char *name, void *context)
{
	struct volume_prune_list *list = context;
	char digits[24];
	size_t length;
	int64_t point = 0;

	if (strncmp(name, "ferry-", 6) != 0 || strlen(name) >= sizeof(list->names[0]))
		return 0;
	/* ferry-N or ferry-N-before */
	length = strspn(name + 6, "0123456789");
	if (length == 0 || length >= sizeof(digits) ||
	    (name[6 + length] != '\0' && strcmp(name + 6 + length, "-before") != 0))
		return 0;
	memcpy(digits, name + 6, length);
	digits[length] = '\0';
	if (util_parse_int64(digits, 1, INT64_MAX, &point) < 0 ||
	    repl_retention_keeps(list->retention, point))
		return 0;
	if (list->count == list->capacity) {
		size_t capacity = list->capacity ? list->capacity * 2 : 64;
		void *grown = realloc(list->names, capacity * sizeof(list->names[0]));

		if (grown == NULL)
			return ferry_error_no_memory();
		list->names = grown;
		list->capacity = capacity;
	}
	snprintf(list->names[list->count++], sizeof(list->names[0]), "%s", name);
	return 0;
}

int
repl_volume_prune_points(struct repl_volume *volume, const struct repl_retention *retention)
{
	struct volume_prune_list list = {retention, NULL, 0, 0};
	int removed = 0, rc;

	if (volume->ops->snapshot_list == NULL)
		return ferry_error_set(FERRY_ERR_INVALID, "%s volumes have no points (%s)",
				       volume->ops->scheme, volume->location);
	/* Listed rather than counted down from keep_from: a point that retention kept for a
	 * while (a lagging member's) goes too once it is no longer kept, however far behind. */
	rc = volume->ops->snapshot_list(volume, volume_prune_collect, &list);
	for (size_t i = 0; rc == 0 && i < list.count; i++) {
		rc = repl_volume_snapshot_remove(volume, list.names[i]);
		if (rc == FERRY_ERR_NOT_FOUND)
			rc = 0;
		else if (rc == 0)
			removed++;
	}
	free(list.names);
	return rc < 0 ? rc : removed;
}

int
repl_volume_digest(struct repl_volume *volume, uint64_t segment_size, uint8_t *sums,
		   char *digest_out)
{
	uint64_t count = (volume->size + segment_size - 1) / segment_size;
	char *buffer = NULL;
	int rc = 0;

	buffer = malloc(segment_size);
	if (buffer == NULL)
		return ferry_error_no_memory();
	for (uint64_t index = 0; index < count; index++) {
		uint64_t offset = index * segment_size;
		size_t length =
			(size_t)(volume->size - offset < segment_size ? volume->size - offset
								      : segment_size);
		struct checksum sum;
		bool hole = false;

		rc = repl_volume_is_hole(volume, offset, length, &hole);
		if (rc < 0)
			goto out;
		if (hole) {
			checksum_of_zeroes(length, &sum);
		} else {
			rc = repl_volume_read(volume, offset, buffer, length);
			if (rc < 0)
				goto out;
			checksum_compute(buffer, length, &sum);
		}
		memcpy(sums + index * CHECKSUM_BYTES, sum.bytes, CHECKSUM_BYTES);
	}
	checksum_digest(sums, count, digest_out);
out:
	free(buffer);
	return rc;
}

int
repl_volume_verify(const char *location, uint64_t segment_size, char *digest_out)
{
	struct repl_volume *image = NULL;
	uint8_t *sums = NULL;
	int rc = repl_volume_open(location, REPL_OPEN_READ, &image);

	if (rc < 0)
		goto out;
	sums = malloc((repl_volume_size(image) / segment_size + 1) * CHECKSUM_BYTES);
	if (sums == NULL) {
		rc = ferry_error_no_memory();
		goto out;
	}
	rc = repl_volume_digest(image, segment_size, sums, digest_out);
out:
	free(sums);
	repl_volume_close(image);
	return rc;
}
