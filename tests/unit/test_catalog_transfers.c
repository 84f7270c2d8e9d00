/* Unit tests for catalog/catalog's transfers: create, find, state and list; their progress
 * (durable and attempted segment ranges, checksums, transactions); a delta's members. Each test
 * gets a fresh mkdtemp() folder holding catalog.db, removed afterwards. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "catalog/catalog.h"
#include "common/error.h"

#define PATH_SIZE 512

#include "tests/unit/catalog_fixture.h"

/* ---- helpers ---- */

/* Progress is the part a crash must never corrupt, so besides the public getters the tests read
 * segment_ranges straight from SQLite: catalog_transfer_load_ranges() merges rows through a
 * range_set and would hide rows that overlap or touch, which invariant 4 of transfers.c forbids. */

/* Reads the (transfer, kind) range rows as stored, checks invariant 2 (sorted rows never
 * overlap or touch) and returns the number of rows; *total gets the number of indexes. */
static size_t
raw_range_rows(const char *path, int64_t id, const char *kind, uint64_t *total)
{
	sqlite3 *db = open_raw(path);
	sqlite3_stmt *stmt = NULL;
	size_t rows = 0;
	int64_t previous_last = -2;

	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT first, last FROM segment_ranges WHERE"
					    " transfer_id = ?1 AND kind = ?2 ORDER BY first",
					    -1, &stmt, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
	*total = 0;
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		int64_t first = sqlite3_column_int64(stmt, 0);
		int64_t last = sqlite3_column_int64(stmt, 1);

		assert_true(first <= last);
		if (first <= previous_last + 1)
			fail_msg("range rows [.., %lld] and [%lld, ..] overlap or touch",
				 (long long)previous_last, (long long)first);
		previous_last = last;
		*total += (uint64_t)(last - first + 1);
		rows++;
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return rows;
}

/* A sender-side transfer of `segments` segments of 4 MiB, the last one short. */
static int64_t
create_transfer(struct catalog *catalog, const char *volume, const char *peer, uint64_t segments)
{
	struct catalog_transfer transfer;

	memset(&transfer, 0, sizeof(transfer));
	transfer.role = CATALOG_ROLE_SEND;
	snprintf(transfer.volume, sizeof(transfer.volume), "%s", volume);
	snprintf(transfer.peer, sizeof(transfer.peer), "%s", peer);
	snprintf(transfer.location, sizeof(transfer.location), "/dev/vg0/%s", volume);
	snprintf(transfer.source_identity, sizeof(transfer.source_identity), "dev=253:1 ino=77");
	transfer.segment_size = 4u << 20;
	transfer.size = segments * transfer.segment_size - (segments ? 512 : 0);
	assert_int_equal(catalog_transfer_create(catalog, &transfer), 0);
	assert_true(transfer.id > 0);
	assert_true(transfer.segments_total == segments);
	return transfer.id;
}

static uint64_t
next_random(uint64_t *seed)
{
	uint64_t x = *seed;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*seed = x;
	return x * 2685821657736338717ull;
}

/* ---- transfers ---- */

static void
test_transfer_create_get(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_transfer transfer, got;
	int64_t before = util_now_ms();

	memset(&transfer, 0, sizeof(transfer));
	transfer.role = CATALOG_ROLE_RECEIVE;
	snprintf(transfer.volume, sizeof(transfer.volume), "vm1");
	snprintf(transfer.location, sizeof(transfer.location), "/srv/ferry/volumes/vm1.img");
	snprintf(transfer.source_identity, sizeof(transfer.source_identity), "id-1");
	transfer.size = 10 * 4096 + 1; /* one byte into an 11th segment */
	transfer.segment_size = 4096;
	transfer.state = CATALOG_TRANSFER_ABANDONED; /* create must reset it */
	snprintf(transfer.digest, sizeof(transfer.digest), "stale");
	assert_int_equal(catalog_transfer_create(fixture->catalog, &transfer), 0);
	assert_true(transfer.id > 0);
	assert_true(transfer.segments_total == 11);
	assert_int_equal(transfer.state, CATALOG_TRANSFER_ACTIVE);
	assert_string_equal(transfer.digest, "");
	assert_true(transfer.created_ms >= before);
	assert_true(transfer.updated_ms == transfer.created_ms);

	memset(&got, 0xff, sizeof(got));
	assert_int_equal(catalog_transfer_get(fixture->catalog, transfer.id, &got), 0);
	assert_true(got.id == transfer.id);
	assert_int_equal(got.role, CATALOG_ROLE_RECEIVE);
	assert_string_equal(got.volume, "vm1");
	assert_string_equal(got.peer, "");
	assert_string_equal(got.location, "/srv/ferry/volumes/vm1.img");
	assert_string_equal(got.source_identity, "id-1");
	assert_true(got.remote_id == 0);
	assert_true(got.size == 10 * 4096 + 1);
	assert_true(got.segment_size == 4096);
	assert_true(got.segments_total == 11);
	assert_int_equal(got.state, CATALOG_TRANSFER_ACTIVE);
	assert_string_equal(got.digest, "");
	assert_true(got.created_ms == transfer.created_ms);
	assert_true(got.segments_durable == 0);

	assert_int_equal(catalog_transfer_set_remote(fixture->catalog, transfer.id, 99), 0);
	assert_int_equal(catalog_transfer_get(fixture->catalog, transfer.id, &got), 0);
	assert_true(got.remote_id == 99);

	assert_int_equal(catalog_transfer_get(fixture->catalog, transfer.id + 100, &got),
			 FERRY_ERR_NOT_FOUND);
}

static void
test_transfer_create_refuses_zero_segment_size(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_transfer transfer;

	memset(&transfer, 0, sizeof(transfer));
	snprintf(transfer.volume, sizeof(transfer.volume), "vm1");
	transfer.size = 4096;
	assert_int_equal(catalog_transfer_create(fixture->catalog, &transfer), FERRY_ERR_INVALID);
	assert_true(transfer.id == 0);
}

static int
count_transfer(const struct catalog_transfer *transfer, void *context)
{
	int *count = context;

	(void)transfer;
	(*count)++;
	return 0;
}

static void
test_transfer_too_many_segments(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_transfer transfer;
	const uint64_t limit = CATALOG_CHECKSUMS_MAX_BYTES / CHECKSUM_BYTES;
	int count = 0;

	memset(&transfer, 0, sizeof(transfer));
	snprintf(transfer.volume, sizeof(transfer.volume), "huge");
	transfer.segment_size = 4096;
	transfer.size = (limit + 1) * transfer.segment_size;
	ferry_error_clear();
	assert_int_equal(catalog_transfer_create(fixture->catalog, &transfer), FERRY_ERR_INVALID);
	assert_true(transfer.id == 0);
	/* The message names the volume and the way out. */
	assert_non_null(strstr(ferry_error_message(), "huge"));
	assert_non_null(strstr(ferry_error_message(), "--segment-size"));
	/* One byte over the limit is over the limit too. */
	transfer.size = limit * transfer.segment_size + 1;
	assert_int_equal(catalog_transfer_create(fixture->catalog, &transfer), FERRY_ERR_INVALID);
	/* Nothing was written. */
	assert_int_equal(catalog_transfer_list(fixture->catalog, true, count_transfer, &count), 0);
	assert_int_equal(count, 0);
}

static void
test_transfer_size_overflow_refused(void **state)
{
	/* A size near 2^64 must not wrap the segment count round to a small number: that would
	 * create a transfer with no segments that completes at once with nothing copied. */
	struct fixture *fixture = *state;
	struct catalog_transfer transfer;

	memset(&transfer, 0, sizeof(transfer));
	snprintf(transfer.volume, sizeof(transfer.volume), "wrapped");
	transfer.segment_size = 4u << 20;
	transfer.size = UINT64_MAX;
	if (catalog_transfer_create(fixture->catalog, &transfer) == 0)
		fail_msg("size %llu accepted with %llu segments of %llu bytes",
			 (unsigned long long)transfer.size,
			 (unsigned long long)transfer.segments_total,
			 (unsigned long long)transfer.segment_size);
}

static void
test_transfer_find_current(void **state)
{
	struct fixture *fixture = *state;
	struct catalog *catalog = fixture->catalog;
	struct catalog_transfer found;
	int64_t older, newer, other_peer, other_volume;

	ferry_error_clear();
	assert_int_equal(
		catalog_transfer_find_current(catalog, CATALOG_ROLE_SEND, "peer-a", "vm1", &found),
		FERRY_ERR_NOT_FOUND);

	older = create_transfer(catalog, "vm1", "peer-a", 4);
	newer = create_transfer(catalog, "vm1", "peer-a", 4);
	other_peer = create_transfer(catalog, "vm1", "peer-b", 4);
	other_volume = create_transfer(catalog, "vm2", "peer-a", 4);
	assert_true(older < newer);

	/* The newest one that is not abandoned. */
	assert_int_equal(
		catalog_transfer_find_current(catalog, CATALOG_ROLE_SEND, "peer-a", "vm1", &found),
		0);
	assert_true(found.id == newer);

	/* A complete transfer is still current (it is what a cutover restores from). */
	assert_int_equal(catalog_transfer_set_state(catalog, newer, CATALOG_TRANSFER_COMPLETE,
						    "xxh3-128:00000000000000000000000000000000"),
			 0);
	assert_int_equal(
		catalog_transfer_find_current(catalog, CATALOG_ROLE_SEND, "peer-a", "vm1", &found),
		0);
	assert_true(found.id == newer);
	assert_int_equal(found.state, CATALOG_TRANSFER_COMPLETE);

	/* Abandoned ones are skipped, falling back to the older one. */
	assert_int_equal(
		catalog_transfer_set_state(catalog, newer, CATALOG_TRANSFER_ABANDONED, NULL), 0);
	assert_int_equal(
		catalog_transfer_find_current(catalog, CATALOG_ROLE_SEND, "peer-a", "vm1", &found),
		0);
	assert_true(found.id == older);
	assert_int_equal(
		catalog_transfer_set_state(catalog, older, CATALOG_TRANSFER_ABANDONED, NULL), 0);
	assert_int_equal(
		catalog_transfer_find_current(catalog, CATALOG_ROLE_SEND, "peer-a", "vm1", &found),
		FERRY_ERR_NOT_FOUND);

	/* Role, peer and volume all take part in the match. */
	assert_int_equal(
		catalog_transfer_find_current(catalog, CATALOG_ROLE_SEND, "peer-b", "vm1", &found),
		0);
	assert_true(found.id == other_peer);
	assert_int_equal(
		catalog_transfer_find_current(catalog, CATALOG_ROLE_SEND, "peer-a", "vm2", &found),
		0);
	assert_true(found.id == other_volume);
	assert_int_equal(catalog_transfer_find_current(catalog, CATALOG_ROLE_RECEIVE, "peer-a",
						       "vm2", &found),
			 FERRY_ERR_NOT_FOUND);
}

static void
test_transfer_set_state_and_digest(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_transfer got;
	const char *digest = "xxh3-128:0123456789abcdef0123456789abcdef";
	int64_t id = create_transfer(fixture->catalog, "vm1", "peer", 2);

	assert_int_equal(
		catalog_transfer_set_state(fixture->catalog, id, CATALOG_TRANSFER_COMPLETE, digest),
		0);
	assert_int_equal(catalog_transfer_get(fixture->catalog, id, &got), 0);
	assert_int_equal(got.state, CATALOG_TRANSFER_COMPLETE);
	assert_string_equal(got.digest, digest);
	assert_true(got.updated_ms >= got.created_ms);

	/* No digest given: the recorded one stays. */
	assert_int_equal(
		catalog_transfer_set_state(fixture->catalog, id, CATALOG_TRANSFER_ABANDONED, NULL),
		0);
	assert_int_equal(catalog_transfer_get(fixture->catalog, id, &got), 0);
	assert_int_equal(got.state, CATALOG_TRANSFER_ABANDONED);
	assert_string_equal(got.digest, digest);

	assert_int_equal(catalog_transfer_set_state(fixture->catalog, id + 1000,
						    CATALOG_TRANSFER_COMPLETE, digest),
			 FERRY_ERR_NOT_FOUND);

	assert_string_equal(catalog_transfer_state_name(CATALOG_TRANSFER_ACTIVE), "active");
	assert_string_equal(catalog_transfer_state_name(CATALOG_TRANSFER_COMPLETE), "complete");
	assert_string_equal(catalog_transfer_state_name(CATALOG_TRANSFER_ABANDONED), "abandoned");
}

struct transfer_ids {
	int64_t ids[8];
	int count;
};

static int
collect_transfer(const struct catalog_transfer *transfer, void *context)
{
	struct transfer_ids *ids = context;

	if (ids->count >= 8)
		return FERRY_ERR_INTERNAL;
	ids->ids[ids->count++] = transfer->id;
	return 0;
}

static void
test_transfer_list(void **state)
{
	struct fixture *fixture = *state;
	struct transfer_ids ids = {0};
	int64_t first = create_transfer(fixture->catalog, "vm1", "peer", 1);
	int64_t second = create_transfer(fixture->catalog, "vm2", "peer", 1);

	assert_int_equal(catalog_transfer_set_state(fixture->catalog, first,
						    CATALOG_TRANSFER_ABANDONED, NULL),
			 0);
	assert_int_equal(catalog_transfer_list(fixture->catalog, false, collect_transfer, &ids), 0);
	assert_int_equal(ids.count, 1);
	assert_true(ids.ids[0] == second);
	memset(&ids, 0, sizeof(ids));
	assert_int_equal(catalog_transfer_list(fixture->catalog, true, collect_transfer, &ids), 0);
	assert_int_equal(ids.count, 2);
	assert_true(ids.ids[0] == first);
	assert_true(ids.ids[1] == second);
}

/* ---- progress ---- */

static void
test_mark_durable_reverse_order_merges(void **state)
{
	struct fixture *fixture = *state;
	struct range_set ranges;
	struct catalog_transfer got;
	struct checksum sum;
	uint64_t total = 0;
	int64_t id = create_transfer(fixture->catalog, "vm1", "peer", 50);

	range_set_init(&ranges);
	for (uint64_t i = 50; i-- > 0;) {
		make_checksum(i, &sum);
		assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, i, &sum), 0);
	}
	assert_int_equal(
		catalog_transfer_load_ranges(fixture->catalog, id, CATALOG_RANGE_DURABLE, &ranges),
		0);
	assert_int_equal(ranges.count, 1);
	assert_true(ranges.ranges[0].first == 0 && ranges.ranges[0].last == 49);
	assert_int_equal(raw_range_rows(fixture->path, id, "durable", &total), 1);
	assert_true(total == 50);
	assert_int_equal(catalog_transfer_get(fixture->catalog, id, &got), 0);
	assert_true(got.segments_durable == 50);
	range_set_free(&ranges);
}

static void
test_mark_durable_out_of_order(void **state)
{
	struct fixture *fixture = *state;
	static const uint64_t order[] = {5, 9, 7, 0, 2, 8, 1, 6};
	struct range_set ranges;
	struct catalog_transfer got;
	struct checksum sum;
	uint64_t total = 0;
	int64_t id = create_transfer(fixture->catalog, "vm1", "peer", 12);

	range_set_init(&ranges);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		make_checksum(order[i], &sum);
		assert_int_equal(
			catalog_transfer_mark_durable(fixture->catalog, id, order[i], &sum), 0);
	}
	/* 0,1,2 and 5..9 with 3, 4, 10, 11 missing. */
	assert_int_equal(
		catalog_transfer_load_ranges(fixture->catalog, id, CATALOG_RANGE_DURABLE, &ranges),
		0);
	assert_int_equal(ranges.count, 2);
	assert_true(ranges.ranges[0].first == 0 && ranges.ranges[0].last == 2);
	assert_true(ranges.ranges[1].first == 5 && ranges.ranges[1].last == 9);
	assert_int_equal(raw_range_rows(fixture->path, id, "durable", &total), 2);
	assert_true(total == 8);
	assert_int_equal(catalog_transfer_get(fixture->catalog, id, &got), 0);
	assert_true(got.segments_durable == 8);

	/* Filling 3 and 4 bridges the two rows; marking 4 twice changes nothing. */
	make_checksum(4, &sum);
	assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, 4, &sum), 0);
	assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, 4, &sum), 0);
	make_checksum(3, &sum);
	assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, 3, &sum), 0);
	assert_int_equal(
		catalog_transfer_load_ranges(fixture->catalog, id, CATALOG_RANGE_DURABLE, &ranges),
		0);
	assert_int_equal(ranges.count, 1);
	assert_true(ranges.ranges[0].first == 0 && ranges.ranges[0].last == 9);
	assert_int_equal(raw_range_rows(fixture->path, id, "durable", &total), 1);
	assert_true(total == 10);
	assert_int_equal(catalog_transfer_get(fixture->catalog, id, &got), 0);
	assert_true(got.segments_durable == 10);
	range_set_free(&ranges);
}

static void
test_mark_durable_random_against_model(void **state)
{
	/* Marks a random half of 400 segments in random order and compares, after each mark,
	 * the stored rows with a range_set fed the same indexes. */
	enum { SEGMENTS = 400, MARKS = 200 };
	struct fixture *fixture = *state;
	struct range_set model, loaded;
	struct checksum sum;
	uint64_t order[SEGMENTS], seed = 0xca7a1065ull, total = 0;
	int64_t id = create_transfer(fixture->catalog, "vm1", "peer", SEGMENTS);

	for (uint64_t i = 0; i < SEGMENTS; i++)
		order[i] = i;
	for (uint64_t i = SEGMENTS - 1; i > 0; i--) {
		uint64_t j = next_random(&seed) % (i + 1), swap = order[i];

		order[i] = order[j];
		order[j] = swap;
	}
	range_set_init(&model);
	range_set_init(&loaded);
	for (int i = 0; i < MARKS; i++) {
		make_checksum(order[i], &sum);
		assert_int_equal(
			catalog_transfer_mark_durable(fixture->catalog, id, order[i], &sum), 0);
		assert_int_equal(range_set_add(&model, order[i], order[i]), 0);
		if (i % 10 != 9)
			continue;
		assert_int_equal(raw_range_rows(fixture->path, id, "durable", &total), model.count);
		assert_true(total == range_set_size(&model));
		assert_int_equal(catalog_transfer_load_ranges(fixture->catalog, id,
							      CATALOG_RANGE_DURABLE, &loaded),
				 0);
		assert_int_equal(loaded.count, model.count);
		assert_memory_equal(loaded.ranges, model.ranges,
				    model.count * sizeof(model.ranges[0]));
	}
	range_set_free(&model);
	range_set_free(&loaded);
}

static void
test_checksums_at_their_offsets(void **state)
{
	struct fixture *fixture = *state;
	static const uint64_t marked[] = {6, 0, 3, 7};
	struct checksum sums[8], expected;
	int64_t id = create_transfer(fixture->catalog, "vm1", "peer", 8);

	assert_int_equal(catalog_transfer_read_checksums(fixture->catalog, id, (uint8_t *)sums, 8),
			 0);
	for (int i = 0; i < 8; i++)
		assert_true(checksum_is_unset(&sums[i]));
	for (size_t i = 0; i < sizeof(marked) / sizeof(marked[0]); i++) {
		make_checksum(marked[i], &expected);
		assert_int_equal(
			catalog_transfer_mark_durable(fixture->catalog, id, marked[i], &expected),
			0);
	}
	memset(sums, 0xee, sizeof(sums));
	assert_int_equal(catalog_transfer_read_checksums(fixture->catalog, id, (uint8_t *)sums, 8),
			 0);
	for (uint64_t i = 0; i < 8; i++) {
		if (i == 0 || i == 3 || i == 6 || i == 7) {
			make_checksum(i, &expected);
			assert_memory_equal(sums[i].bytes, expected.bytes, CHECKSUM_BYTES);
		} else {
			assert_true(checksum_is_unset(&sums[i]));
		}
	}
	/* Asking with the wrong segment count is refused rather than read short or long. */
	assert_true(catalog_transfer_read_checksums(fixture->catalog, id, (uint8_t *)sums, 7) < 0);
}

static void
test_checksums_per_transfer(void **state)
{
	/* Two transfers' blobs are separate rows: marking one leaves the other unset. */
	struct fixture *fixture = *state;
	struct checksum sum, sums[2];
	int64_t first = create_transfer(fixture->catalog, "vm1", "peer", 2);
	int64_t second = create_transfer(fixture->catalog, "vm2", "peer", 2);

	make_checksum(1, &sum);
	assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, second, 1, &sum), 0);
	assert_int_equal(
		catalog_transfer_read_checksums(fixture->catalog, first, (uint8_t *)sums, 2), 0);
	assert_true(checksum_is_unset(&sums[1]));
	assert_int_equal(
		catalog_transfer_read_checksums(fixture->catalog, second, (uint8_t *)sums, 2), 0);
	assert_memory_equal(sums[1].bytes, sum.bytes, CHECKSUM_BYTES);
}

static int64_t
count_rows(const char *path, const char *sql)
{
	sqlite3 *db = open_raw(path);
	sqlite3_stmt *stmt;
	int64_t count;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	count = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return count;
}

static void
test_checksum_store_grows_with_data_not_declared_size(void **state)
{
	/* The largest transfer there is (2^25 segments, 128 TiB) writes no checksum at its begin,
	 * one 64 KiB chunk once a segment lands, and none once it is abandoned. */
	struct fixture *fixture = *state;
	struct checksum sum;
	int64_t id = create_transfer(fixture->catalog, "huge", "peer",
				     CATALOG_CHECKSUMS_MAX_BYTES / CHECKSUM_BYTES);

	assert_int_equal(count_rows(fixture->path, "SELECT count(*) FROM transfer_sums"), 0);
	make_checksum(3, &sum);
	assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, 5000000, &sum), 0);
	assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, 5000001, &sum), 0);
	assert_int_equal(count_rows(fixture->path, "SELECT count(*) FROM transfer_sums"), 1);
	assert_int_equal(count_rows(fixture->path, "SELECT max(length(sums)) FROM transfer_sums"),
			 CATALOG_SUMS_CHUNK * CHECKSUM_BYTES);
	assert_int_equal(
		catalog_transfer_set_state(fixture->catalog, id, CATALOG_TRANSFER_ABANDONED, NULL),
		0);
	assert_int_equal(count_rows(fixture->path, "SELECT count(*) FROM transfer_sums"), 0);
	assert_int_equal(count_rows(fixture->path, "SELECT count(*) FROM segment_ranges"), 0);
}

static void
test_mark_durable_beyond_end_refused(void **state)
{
	struct fixture *fixture = *state;
	struct range_set ranges;
	struct checksum sum;
	int64_t id = create_transfer(fixture->catalog, "vm1", "peer", 4);

	make_checksum(4, &sum);
	ferry_error_clear();
	assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, 4, &sum),
			 FERRY_ERR_INVALID);
	assert_non_null(strstr(ferry_error_message(), "beyond"));
	assert_true(catalog_transfer_mark_durable(fixture->catalog, id + 50, 0, &sum) < 0);
	range_set_init(&ranges);
	assert_int_equal(
		catalog_transfer_load_ranges(fixture->catalog, id, CATALOG_RANGE_DURABLE, &ranges),
		0);
	assert_int_equal(ranges.count, 0);
	range_set_free(&ranges);
}

static void
test_mark_durable_huge_index_refused(void **state)
{
	/* An index whose byte offset (index * 16) does not fit in 64 bits must be refused like
	 * any other index past the end, not wrap round onto segment 0's checksum. */
	struct fixture *fixture = *state;
	struct checksum sum, kept, sums[4];
	struct range_set ranges;
	const uint64_t index = 1ull << 60;
	int64_t id = create_transfer(fixture->catalog, "vm1", "peer", 4);
	size_t range_count;
	bool overwritten;
	int rc;

	make_checksum(0, &kept);
	assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, 0, &kept), 0);
	make_checksum(index, &sum);
	rc = catalog_transfer_mark_durable(fixture->catalog, id, index, &sum);
	assert_int_equal(catalog_transfer_read_checksums(fixture->catalog, id, (uint8_t *)sums, 4),
			 0);
	overwritten = memcmp(sums[0].bytes, kept.bytes, CHECKSUM_BYTES) != 0;
	range_set_init(&ranges);
	assert_int_equal(
		catalog_transfer_load_ranges(fixture->catalog, id, CATALOG_RANGE_DURABLE, &ranges),
		0);
	range_count = ranges.count;
	range_set_free(&ranges);
	if (rc != FERRY_ERR_INVALID || overwritten || range_count != 1)
		fail_msg(
			"mark_durable(index 2^60) of a 4-segment transfer returned %d; segment 0's "
			"checksum %s; durable ranges: %zu (expected %d, intact, 1)",
			rc, overwritten ? "was overwritten" : "is intact", range_count,
			FERRY_ERR_INVALID);
}

static void
test_mark_attempted_separate(void **state)
{
	struct fixture *fixture = *state;
	struct range_set durable, attempted;
	struct catalog_transfer got;
	struct checksum sum, sums[10];
	uint64_t total = 0;
	int64_t id = create_transfer(fixture->catalog, "vm1", "peer", 10);

	range_set_init(&durable);
	range_set_init(&attempted);
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(catalog_transfer_mark_attempted(fixture->catalog, id, i), 0);
	for (uint64_t i = 2; i < 5; i++) {
		make_checksum(i, &sum);
		assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, i, &sum), 0);
	}
	assert_int_equal(catalog_transfer_load_ranges(fixture->catalog, id, CATALOG_RANGE_ATTEMPTED,
						      &attempted),
			 0);
	assert_int_equal(attempted.count, 1);
	assert_true(attempted.ranges[0].first == 0 && attempted.ranges[0].last == 7);
	assert_int_equal(
		catalog_transfer_load_ranges(fixture->catalog, id, CATALOG_RANGE_DURABLE, &durable),
		0);
	assert_int_equal(durable.count, 1);
	assert_true(durable.ranges[0].first == 2 && durable.ranges[0].last == 4);
	assert_int_equal(raw_range_rows(fixture->path, id, "attempted", &total), 1);
	assert_true(total == 8);

	/* Only durable segments count as progress, and attempts write no checksum. */
	assert_int_equal(catalog_transfer_get(fixture->catalog, id, &got), 0);
	assert_true(got.segments_durable == 3);
	assert_int_equal(catalog_transfer_read_checksums(fixture->catalog, id, (uint8_t *)sums, 10),
			 0);
	assert_true(checksum_is_unset(&sums[0]));
	assert_true(checksum_is_unset(&sums[7]));
	assert_false(checksum_is_unset(&sums[2]));

	/* load_ranges replaces what the set held before. */
	assert_int_equal(catalog_transfer_load_ranges(fixture->catalog, id, CATALOG_RANGE_DURABLE,
						      &attempted),
			 0);
	assert_int_equal(attempted.count, 1);
	assert_true(attempted.ranges[0].first == 2);
	range_set_free(&durable);
	range_set_free(&attempted);
}

static void
test_transaction_rollback_and_commit(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_transfer got;
	struct checksum sum, sums[4];
	int64_t id = create_transfer(fixture->catalog, "vm1", "peer", 4);

	/* Calls made inside a transaction join it, so a rollback undoes all of them. */
	assert_int_equal(catalog_transaction_begin(fixture->catalog), 0);
	make_checksum(0, &sum);
	assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, 0, &sum), 0);
	assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, 1, &sum), 0);
	assert_int_equal(catalog_transaction_begin(fixture->catalog), FERRY_ERR_INTERNAL);
	catalog_transaction_rollback(fixture->catalog);
	assert_int_equal(catalog_transfer_get(fixture->catalog, id, &got), 0);
	assert_true(got.segments_durable == 0);
	assert_int_equal(catalog_transfer_read_checksums(fixture->catalog, id, (uint8_t *)sums, 4),
			 0);
	assert_true(checksum_is_unset(&sums[0]));

	assert_int_equal(catalog_transaction_begin(fixture->catalog), 0);
	assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, 2, &sum), 0);
	assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, 3, &sum), 0);
	assert_int_equal(catalog_transaction_commit(fixture->catalog), 0);
	assert_int_equal(catalog_transfer_get(fixture->catalog, id, &got), 0);
	assert_true(got.segments_durable == 2);
}

/* A delta carries exactly its members: they are stored, found, counted, and kept apart from
 * the durable and attempted ranges; a full copy carries every segment. */
static void
test_delta_members(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_transfer transfer, got;
	struct range_set members, loaded;

	range_set_init(&members);
	range_set_init(&loaded);
	memset(&transfer, 0, sizeof(transfer));
	transfer.role = CATALOG_ROLE_RECEIVE;
	snprintf(transfer.volume, sizeof(transfer.volume), "vm1");
	snprintf(transfer.location, sizeof(transfer.location), "rbd:rbd/vm1");
	snprintf(transfer.source_identity, sizeof(transfer.source_identity), "rbd:rbd/vm1@p2");
	snprintf(transfer.base_identity, sizeof(transfer.base_identity), "rbd:rbd/vm1@p1");
	snprintf(transfer.snapshot, sizeof(transfer.snapshot), "p2");
	transfer.segment_size = 4u << 20;
	transfer.size = 100ull << 20;
	assert_int_equal(catalog_transfer_create(fixture->catalog, &transfer), 0);
	assert_int_equal(range_set_add(&members, 3, 5), 0);
	assert_int_equal(range_set_add(&members, 20, 20), 0);
	assert_int_equal(catalog_transfer_set_members(fixture->catalog, transfer.id, &members), 0);

	assert_int_equal(catalog_transfer_get(fixture->catalog, transfer.id, &got), 0);
	assert_true(got.segments_total == 25);
	assert_true(got.segments_member == 4);
	assert_true(catalog_transfer_segments_carried(&got) == 4);
	assert_string_equal(got.base_identity, "rbd:rbd/vm1@p1");
	assert_string_equal(got.snapshot, "p2");
	assert_true(catalog_transfer_has_member(fixture->catalog, transfer.id, 4));
	assert_true(catalog_transfer_has_member(fixture->catalog, transfer.id, 20));
	assert_false(catalog_transfer_has_member(fixture->catalog, transfer.id, 6));
	assert_false(catalog_transfer_has_member(fixture->catalog, transfer.id, 0));
	assert_int_equal(catalog_transfer_load_ranges(fixture->catalog, transfer.id,
						      CATALOG_RANGE_MEMBER, &loaded),
			 0);
	assert_true(loaded.count == 2 && range_set_size(&loaded) == 4);
	assert_int_equal(catalog_transfer_load_ranges(fixture->catalog, transfer.id,
						      CATALOG_RANGE_DURABLE, &loaded),
			 0);
	assert_true(loaded.count == 0);

	/* An empty delta carries nothing; a full copy carries all. */
	range_set_clear(&members);
	transfer.id = 0;
	assert_int_equal(catalog_transfer_create(fixture->catalog, &transfer), 0);
	assert_int_equal(catalog_transfer_set_members(fixture->catalog, transfer.id, &members), 0);
	assert_int_equal(catalog_transfer_get(fixture->catalog, transfer.id, &got), 0);
	assert_true(catalog_transfer_segments_carried(&got) == 0);
	assert_true(catalog_transfer_segments_carried(
			    &(struct catalog_transfer){.segments_total = 25}) == 25);
	range_set_free(&members);
	range_set_free(&loaded);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_transfer_create_get, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_transfer_create_refuses_zero_segment_size,
						setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_transfer_too_many_segments, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_transfer_size_overflow_refused, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_transfer_find_current, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_transfer_set_state_and_digest, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_transfer_list, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_mark_durable_reverse_order_merges,
						setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_mark_durable_out_of_order, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_mark_durable_random_against_model,
						setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_checksums_at_their_offsets, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_checksum_store_grows_with_data_not_declared_size, setup_catalog,
			teardown),
		cmocka_unit_test_setup_teardown(test_checksums_per_transfer, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_mark_durable_beyond_end_refused, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_mark_durable_huge_index_refused, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_mark_attempted_separate, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_transaction_rollback_and_commit, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_delta_members, setup_catalog, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
