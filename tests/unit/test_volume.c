/* Unit tests for replicator/volume.c's batched writes and reads: what the receiver uses to lay a
 * delta's changed extents over a volume with many writes in flight. A recording backend checks
 * how the pieces reach a backend (never more than REPL_IO_BATCH_MAX at once, zero blocks as
 * write_zeroes, data with its bytes); a real file volume checks the bytes that land. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "common/util.h"
#include "replicator/backend.h"

#define IMAGE_SIZE (2u << 20)

/* The recording backend: an image in memory, and what each batch call looked like. */
static uint8_t recorded_image[IMAGE_SIZE];
static size_t recorded_batches;
static size_t recorded_pieces;
static size_t recorded_largest_batch;
static size_t recorded_zero_pieces;

static int
recording_write_batch(struct repl_volume *volume, const struct repl_io *ios, size_t count)
{
	(void)volume;
	recorded_batches++;
	recorded_pieces += count;
	if (count > recorded_largest_batch)
		recorded_largest_batch = count;
	for (size_t i = 0; i < count; i++) {
		assert_true(ios[i].offset + ios[i].length <= IMAGE_SIZE);
		if (ios[i].buffer == NULL) {
			recorded_zero_pieces++;
			memset(recorded_image + ios[i].offset, 0, (size_t)ios[i].length);
		} else {
			assert_false(segment_is_zero(ios[i].buffer, (size_t)ios[i].length));
			memcpy(recorded_image + ios[i].offset, ios[i].buffer,
			       (size_t)ios[i].length);
		}
	}
	return 0;
}

static int
recording_read_batch(struct repl_volume *volume, const struct repl_io *ios, size_t count)
{
	(void)volume;
	assert_true(count <= REPL_IO_BATCH_MAX);
	for (size_t i = 0; i < count; i++)
		memcpy(ios[i].buffer, recorded_image + ios[i].offset, (size_t)ios[i].length);
	return 0;
}

static const struct repl_backend_ops recording_ops = {
	.scheme = "recording",
	.read_batch = recording_read_batch,
	.write_batch = recording_write_batch,
};

static void
recording_reset(void)
{
	memset(recorded_image, 0xee, sizeof(recorded_image));
	recorded_batches = recorded_pieces = recorded_largest_batch = recorded_zero_pieces = 0;
}

/* A segment of alternating data and zero blocks: one piece per block, more than one batch. */
static void
test_write_ranges_batches_pieces(void **state)
{
	struct repl_volume volume = {.ops = &recording_ops, .size = IMAGE_SIZE};
	struct segment_extent range = {0, IMAGE_SIZE / 4 * 3};
	uint64_t offset = IMAGE_SIZE / 8;
	uint8_t *data = malloc(range.length);
	size_t blocks = range.length / SEGMENT_SPARSE_BLOCK;

	(void)state;
	assert_non_null(data);
	recording_reset();
	for (size_t block = 0; block < blocks; block++)
		memset(data + block * SEGMENT_SPARSE_BLOCK, block % 2 ? 0 : (int)(block % 251) + 1,
		       SEGMENT_SPARSE_BLOCK);
	assert_int_equal(repl_volume_write_ranges(&volume, offset, data, &range, 1), 0);
	assert_int_equal(recorded_pieces, blocks);
	assert_int_equal(recorded_zero_pieces, blocks / 2);
	assert_int_equal(recorded_largest_batch, REPL_IO_BATCH_MAX);
	assert_int_equal(recorded_batches, (blocks + REPL_IO_BATCH_MAX - 1) / REPL_IO_BATCH_MAX);
	assert_memory_equal(recorded_image + offset, data, range.length);
	assert_int_equal(recorded_image[offset - 1], 0xee);
	assert_int_equal(recorded_image[offset + range.length], 0xee);
	free(data);
}

/* Only the ranges are written; the bytes between them stay as they were. A run of data blocks
 * is one piece, and a zero run inside a range one write_zeroes. */
static void
test_write_ranges_leaves_gaps(void **state)
{
	struct repl_volume volume = {.ops = &recording_ops, .size = IMAGE_SIZE};
	struct segment_extent ranges[] = {{0, 8192}, {20480, 3 * 4096}, {65536, 100}};
	uint8_t *segment = malloc(IMAGE_SIZE);
	uint8_t *expected = malloc(IMAGE_SIZE);

	(void)state;
	assert_non_null(segment);
	assert_non_null(expected);
	recording_reset();
	memset(segment, 0x5a, IMAGE_SIZE);
	memset(segment + 20480 + 4096, 0, 4096); /* the middle block of the second range */
	memcpy(expected, recorded_image, IMAGE_SIZE);
	for (size_t i = 0; i < 3; i++)
		memcpy(expected + ranges[i].offset, segment + ranges[i].offset, ranges[i].length);
	assert_int_equal(repl_volume_write_ranges(&volume, 0, segment, ranges, 3), 0);
	assert_memory_equal(recorded_image, expected, IMAGE_SIZE);
	assert_int_equal(recorded_pieces, 5); /* 1 + (data, zero, data) + 1 */
	assert_int_equal(recorded_zero_pieces, 1);
	assert_int_equal(recorded_batches, 1);
	free(segment);
	free(expected);
}

static void
test_read_batch_many(void **state)
{
	struct repl_volume volume = {.ops = &recording_ops, .size = IMAGE_SIZE};
	struct repl_io ios[300];
	uint8_t *buffer = malloc(300 * 512);

	(void)state;
	assert_non_null(buffer);
	recording_reset();
	for (size_t i = 0; i < IMAGE_SIZE; i++)
		recorded_image[i] = (uint8_t)(i * 7 + i / 4096);
	for (size_t i = 0; i < 300; i++)
		ios[i] = (struct repl_io){i * 3000, 512, buffer + i * 512};
	assert_int_equal(repl_volume_read_batch(&volume, ios, 300), 0);
	for (size_t i = 0; i < 300; i++)
		assert_memory_equal(buffer + i * 512, recorded_image + i * 3000, 512);
	free(buffer);
}

/* The file backend has no batch calls: the same ranges go through its write and write_zeroes. */
static void
test_file_volume_write_ranges(void **state)
{
	char folder[] = "/tmp/ferry-test-volume-XXXXXX", path[64];
	struct segment_extent ranges[] = {{4096, 3 * 4096}, {32768, 5000}};
	struct repl_volume *volume = NULL;
	uint8_t *segment = malloc(65536), *base = malloc(65536), *back = malloc(65536);

	(void)state;
	assert_non_null(segment);
	assert_non_null(base);
	assert_non_null(back);
	assert_non_null(mkdtemp(folder));
	snprintf(path, sizeof(path), "%s/image", folder);
	assert_int_equal(repl_volume_create(path, 65536, false), 0);
	assert_int_equal(repl_volume_open(path, REPL_OPEN_WRITE, &volume), 0);
	memset(base, 0x11, 65536);
	assert_int_equal(repl_volume_write(volume, 0, base, 65536), 0);
	memset(segment, 0x22, 65536);
	memset(segment + 8192, 0, 4096); /* zeroed inside the first range */
	assert_int_equal(repl_volume_write_ranges(volume, 0, segment, ranges, 2), 0);
	assert_int_equal(repl_volume_flush(volume), 0);
	for (size_t i = 0; i < 2; i++)
		memcpy(base + ranges[i].offset, segment + ranges[i].offset, ranges[i].length);
	assert_int_equal(repl_volume_read(volume, 0, back, 65536), 0);
	assert_memory_equal(back, base, 65536);
	repl_volume_close(volume);
	unlink(path);
	rmdir(folder);
	free(segment);
	free(base);
	free(back);
}

/* A backend with snapshots ferry-1 .. ferry-SNAPSHOTS_MAX-1 and their -before: which remain. */
#define SNAPSHOTS_MAX 200
static bool snapshot_present[SNAPSHOTS_MAX][2];

static int
snapshots_remove(struct repl_volume *volume, const char *name)
{
	char digits[24];
	const char *dash;
	int64_t point;
	int kind;

	(void)volume;
	assert_memory_equal(name, "ferry-", 6);
	dash = strchr(name + 6, '-');
	kind = dash != NULL && strcmp(dash, "-before") == 0;
	assert_true(kind || dash == NULL);
	assert_int_equal(
		util_format(digits, sizeof(digits), "a snapshot's point", "%.*s",
			    (int)(dash != NULL ? (size_t)(dash - (name + 6)) : strlen(name + 6)),
			    name + 6),
		0);
	assert_int_equal(util_parse_int64(digits, 1, SNAPSHOTS_MAX - 1, &point), 0);
	if (!snapshot_present[point][kind])
		return FERRY_ERR_NOT_FOUND;
	snapshot_present[point][kind] = false;
	return 0;
}

static int
snapshots_list(struct repl_volume *volume, int (*each)(const char *name, void *context),
	       void *context)
{
	char name[48];
	int rc = 0;

	(void)volume;
	rc = each("someone-elses", context);
	for (int point = 1; point < SNAPSHOTS_MAX && rc == 0; point++)
		for (int kind = 0; kind < 2 && rc == 0; kind++)
			if (snapshot_present[point][kind]) {
				snprintf(name, sizeof(name), "ferry-%d%s", point,
					 kind ? "-before" : "");
				rc = each(name, context);
			}
	return rc;
}

static const struct repl_backend_ops snapshots_ops = {
	.scheme = "snapshots",
	.snapshot_remove = snapshots_remove,
	.snapshot_list = snapshots_list,
};

/* A group member stuck at point 27 while the others reach 150, keep 10: the others keep their
 * last ten and point 27, which the whole group shares; nothing in between stays. */
static void
test_prune_keeps_the_point_a_lagging_member_holds(void **state)
{
	struct repl_volume volume = {.ops = &snapshots_ops, .location = "snapshots:one"};
	struct repl_retention retention = {.keep_from = 141};
	int removed;

	(void)state;
	for (int point = 1; point <= 150; point++)
		snapshot_present[point][0] = snapshot_present[point][1] = true;
	repl_retention_also(&retention, 150); /* within the window: nothing to add */
	repl_retention_also(&retention, 27);
	repl_retention_also(&retention, 27);
	assert_int_equal(retention.also_count, 1);
	removed = repl_volume_prune_points(&volume, &retention);
	assert_int_equal(removed, 2 * (150 - 10 - 1));
	for (int point = 1; point <= 150; point++)
		assert_int_equal(snapshot_present[point][0], point == 27 || point >= 141);
	/* Once the member moves on, the old point goes on the next pass. */
	retention.also_count = 0;
	assert_int_equal(repl_volume_prune_points(&volume, &retention), 2);
	assert_false(snapshot_present[27][0] || snapshot_present[27][1]);
}

/* Full: keep_from comes down instead, which keeps more, never less. */
static void
test_retention_also_full_keeps_more(void **state)
{
	struct repl_retention retention = {.keep_from = 1000};

	(void)state;
	for (int64_t point = 900; point > 900 - REPL_RETENTION_ALSO_MAX; point--)
		repl_retention_also(&retention, point);
	assert_int_equal(retention.keep_from, 1000);
	repl_retention_also(&retention, 5);
	assert_int_equal(retention.keep_from, 5);
	for (int64_t point = 5; point < 1000; point++)
		assert_true(repl_retention_keeps(&retention, point));
	assert_false(repl_retention_keeps(&retention, 4));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_ranges_batches_pieces),
		cmocka_unit_test(test_write_ranges_leaves_gaps),
		cmocka_unit_test(test_read_batch_many),
		cmocka_unit_test(test_file_volume_write_ranges),
		cmocka_unit_test(test_prune_keeps_the_point_a_lagging_member_holds),
		cmocka_unit_test(test_retention_also_full_keeps_more),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
