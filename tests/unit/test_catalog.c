/* Unit tests for catalog/catalog: opening, the schema and its migrations, volumes and the event
 * log. Each test gets a fresh mkdtemp() folder holding catalog.db, removed afterwards; transfers
 * and their progress are tested in test_catalog_transfers.c. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "catalog/catalog.h"
#include "common/error.h"

#define PATH_SIZE 512

#include "tests/unit/catalog_fixture.h"

/* ---- helpers ---- */

static int
raw_user_version(const char *path)
{
	sqlite3 *db = open_raw(path);
	sqlite3_stmt *stmt = NULL;
	int version;

	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	version = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return version;
}

/* ---- schema and migrations ---- */

static void
test_open_creates_schema(void **state)
{
	struct fixture *fixture = *state;
	sqlite3 *db;
	sqlite3_stmt *stmt = NULL;
	int tables = 0;

	assert_int_equal(catalog_open(fixture->path, CATALOG_SYNC_FULL, &fixture->catalog), 0);
	assert_non_null(fixture->catalog);
	assert_int_equal(catalog_schema_version(fixture->catalog), CATALOG_SCHEMA_VERSION);
	assert_int_equal(access(fixture->path, F_OK), 0);

	db = open_raw(fixture->path);
	assert_int_equal(
		sqlite3_prepare_v2(db,
				   "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
				   " AND name IN ('volumes', 'transfers', 'transfer_sums',"
				   " 'segment_ranges', 'events')",
				   -1, &stmt, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	tables = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	assert_int_equal(tables, 5);
	/* WAL mode is a property of the file, so a second connection sees it. */
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	sqlite3_close(db);

	/* Opening again leaves the version alone. */
	catalog_close(fixture->catalog);
	fixture->catalog = NULL;
	assert_int_equal(catalog_open(fixture->path, CATALOG_SYNC_NORMAL, &fixture->catalog), 0);
	assert_int_equal(catalog_schema_version(fixture->catalog), CATALOG_SCHEMA_VERSION);
}

static void
test_open_unwritable_folder(void **state)
{
	struct fixture *fixture = *state;
	char path[PATH_SIZE + 32];
	struct catalog *catalog = NULL;

	snprintf(path, sizeof(path), "%s/no-such-folder/catalog.db", fixture->folder);
	ferry_error_clear();
	assert_int_equal(catalog_open(path, CATALOG_SYNC_NORMAL, &catalog), FERRY_ERR_IO);
	assert_null(catalog);
	assert_non_null(strstr(ferry_error_message(), "no-such-folder"));
}

/* Writes what a version 1 ferry would have written: a send transfer of 3 segments with segment
 * 1 durable. Raw SQL, because today's catalog functions write today's columns. */
static int64_t
raw_insert_version_1_transfer(const char *path, const struct checksum *sum)
{
	sqlite3 *db = open_raw(path);
	sqlite3_stmt *stmt = NULL;
	uint8_t sums[3 * CHECKSUM_BYTES] = {0};
	char ranges[128];
	int64_t id;

	memcpy(sums + CHECKSUM_BYTES, sum->bytes, CHECKSUM_BYTES);
	assert_int_equal(
		sqlite3_exec(db,
			     "INSERT INTO transfers (role, volume, peer, location,"
			     " source_identity, remote_id, size, segment_size,"
			     " segments_total, state, digest, created_ms, updated_ms)"
			     " VALUES ('send', 'vm1', 'https://dr.example:7443',"
			     " '/dev/vg0/vm1', 'block:253:0:size=12288', 7, 12288, 4096, 3,"
			     " 'active', '', 1, 1)",
			     NULL, NULL, NULL),
		SQLITE_OK);
	id = sqlite3_last_insert_rowid(db);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO transfer_checksums VALUES (?1, ?2)",
					    -1, &stmt, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_blob(stmt, 2, sums, sizeof(sums), SQLITE_STATIC);
	assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
	sqlite3_finalize(stmt);
	snprintf(ranges, sizeof(ranges),
		 "INSERT INTO segment_ranges VALUES (%lld, 'durable', 1, 1)", (long long)id);
	assert_int_equal(sqlite3_exec(db, ranges, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	return id;
}

static void
test_migrate_from_version_1(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_transfer transfer;
	struct checksum sum, read_back[3];
	int64_t id;

	assert_int_equal(
		catalog_open_at_version(fixture->path, CATALOG_SYNC_NORMAL, 1, &fixture->catalog),
		0);
	assert_int_equal(catalog_schema_version(fixture->catalog), 1);
	/* Version 1 has no event log yet: proof that the migration really stopped there. */
	assert_true(catalog_event_add(fixture->catalog, "info", "test", "too early") < 0);

	catalog_close(fixture->catalog);
	fixture->catalog = NULL;
	make_checksum(1, &sum);
	id = raw_insert_version_1_transfer(fixture->path, &sum);
	assert_int_equal(raw_user_version(fixture->path), 1);

	assert_int_equal(catalog_open(fixture->path, CATALOG_SYNC_NORMAL, &fixture->catalog), 0);
	assert_int_equal(catalog_schema_version(fixture->catalog), CATALOG_SCHEMA_VERSION);
	assert_int_equal(raw_user_version(fixture->path), CATALOG_SCHEMA_VERSION);

	/* The row written at version 1 is there, found through version 2's index. */
	assert_int_equal(catalog_transfer_find_current(fixture->catalog, CATALOG_ROLE_SEND,
						       "https://dr.example:7443", "vm1", &transfer),
			 0);
	assert_true(transfer.id == id);
	assert_string_equal(transfer.location, "/dev/vg0/vm1");
	assert_true(transfer.segments_total == 3);
	assert_true(transfer.segments_durable == 1);
	assert_int_equal(
		catalog_transfer_read_checksums(fixture->catalog, id, (uint8_t *)read_back, 3), 0);
	assert_memory_equal(read_back[1].bytes, sum.bytes, CHECKSUM_BYTES);
	assert_true(checksum_is_unset(&read_back[0]));

	/* And version 2's table works, and version 3's delta columns read as "a full copy". */
	assert_int_equal(catalog_event_add(fixture->catalog, "info", "test", "migrated"), 0);
	assert_string_equal(transfer.base_identity, "");
	assert_true(catalog_transfer_segments_carried(&transfer) == 3);
	assert_int_equal(catalog_transfer_mark_durable(fixture->catalog, id, 2, &sum), 0);
}

static void
test_open_at_lower_version_does_not_downgrade(void **state)
{
	struct fixture *fixture = *state;

	assert_int_equal(catalog_open(fixture->path, CATALOG_SYNC_NORMAL, &fixture->catalog), 0);
	catalog_close(fixture->catalog);
	fixture->catalog = NULL;
	assert_int_equal(
		catalog_open_at_version(fixture->path, CATALOG_SYNC_NORMAL, 1, &fixture->catalog),
		0);
	assert_int_equal(catalog_schema_version(fixture->catalog), CATALOG_SCHEMA_VERSION);
}

static void
test_newer_catalog_refused(void **state)
{
	struct fixture *fixture = *state;
	sqlite3 *db = NULL;
	struct catalog *catalog = NULL;

	assert_int_equal(sqlite3_open_v2(fixture->path, &db,
					 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	ferry_error_clear();
	assert_int_equal(catalog_open(fixture->path, CATALOG_SYNC_NORMAL, &catalog),
			 FERRY_ERR_CONFLICT);
	assert_null(catalog);
	assert_non_null(strstr(ferry_error_message(), fixture->path));
	assert_non_null(strstr(ferry_error_message(), "99"));
	/* Refusing must not touch the newer catalog. */
	assert_int_equal(raw_user_version(fixture->path), 99);
}

/* ---- volumes ---- */

struct volume_names {
	char names[8][VOLUME_NAME_MAX + 1];
	int64_t ids[8];
	int count;
	int stop_after; /* return an error after this many, 0 for never */
};

static int
collect_volume(const struct catalog_volume *volume, void *context)
{
	struct volume_names *names = context;

	if (names->count >= 8)
		return FERRY_ERR_INTERNAL;
	snprintf(names->names[names->count], sizeof(names->names[0]), "%s", volume->name);
	names->ids[names->count] = volume->id;
	names->count++;
	if (names->stop_after && names->count == names->stop_after)
		return FERRY_ERR_CONFLICT;
	return 0;
}

static void
fill_volume(struct catalog_volume *volume, const char *name, uint64_t size)
{
	memset(volume, 0, sizeof(*volume));
	snprintf(volume->name, sizeof(volume->name), "%s", name);
	snprintf(volume->kind, sizeof(volume->kind), "file");
	snprintf(volume->location, sizeof(volume->location), "/srv/ferry/volumes/%s.img", name);
	volume->size = size;
}

static void
test_volume_put_get(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_volume volume, got;

	fill_volume(&volume, "vm1", 10ull << 30);
	volume.transfer_id = 42;
	assert_int_equal(catalog_volume_put(fixture->catalog, &volume), 0);
	assert_true(volume.id > 0);
	assert_true(volume.created_ms > 0);

	memset(&got, 0xff, sizeof(got));
	assert_int_equal(catalog_volume_get(fixture->catalog, "vm1", &got), 0);
	assert_true(got.id == volume.id);
	assert_string_equal(got.name, "vm1");
	assert_string_equal(got.kind, "file");
	assert_string_equal(got.location, "/srv/ferry/volumes/vm1.img");
	assert_true(got.size == 10ull << 30);
	assert_true(got.transfer_id == 42);
	assert_true(got.created_ms == volume.created_ms);

	ferry_error_clear();
	assert_int_equal(catalog_volume_get(fixture->catalog, "vm2", &got), FERRY_ERR_NOT_FOUND);
	assert_non_null(strstr(ferry_error_message(), "vm2"));
}

static void
test_volume_upsert(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_volume volume, again, got;
	struct volume_names names = {0};

	fill_volume(&volume, "vm1", 1 << 20);
	assert_int_equal(catalog_volume_put(fixture->catalog, &volume), 0);

	/* Same name: an update of the same row, not a second row. */
	fill_volume(&again, "vm1", 2 << 20);
	snprintf(again.location, sizeof(again.location), "/elsewhere/vm1.img");
	again.transfer_id = 7;
	assert_int_equal(catalog_volume_put(fixture->catalog, &again), 0);
	assert_true(again.id == volume.id);
	assert_int_equal(catalog_volume_get(fixture->catalog, "vm1", &got), 0);
	assert_true(got.size == 2 << 20);
	assert_string_equal(got.location, "/elsewhere/vm1.img");
	assert_true(got.transfer_id == 7);
	assert_int_equal(catalog_volume_list(fixture->catalog, collect_volume, &names), 0);
	assert_int_equal(names.count, 1);

	/* Back to no transfer. */
	again.transfer_id = 0;
	assert_int_equal(catalog_volume_put(fixture->catalog, &again), 0);
	assert_int_equal(catalog_volume_get(fixture->catalog, "vm1", &got), 0);
	assert_true(got.transfer_id == 0);
}

static void
test_volume_list(void **state)
{
	struct fixture *fixture = *state;
	static const char *const inserted[] = {"web", "app", "db", "cache"};
	struct catalog_volume volume;
	struct volume_names names = {0};

	assert_int_equal(catalog_volume_list(fixture->catalog, collect_volume, &names), 0);
	assert_int_equal(names.count, 0);
	for (size_t i = 0; i < 4; i++) {
		fill_volume(&volume, inserted[i], 4096 * (i + 1));
		assert_int_equal(catalog_volume_put(fixture->catalog, &volume), 0);
	}
	assert_int_equal(catalog_volume_list(fixture->catalog, collect_volume, &names), 0);
	assert_int_equal(names.count, 4);
	/* Ordered by name. */
	assert_string_equal(names.names[0], "app");
	assert_string_equal(names.names[1], "cache");
	assert_string_equal(names.names[2], "db");
	assert_string_equal(names.names[3], "web");

	/* A callback's error stops the walk and comes back to the caller. */
	memset(&names, 0, sizeof(names));
	names.stop_after = 2;
	assert_int_equal(catalog_volume_list(fixture->catalog, collect_volume, &names),
			 FERRY_ERR_CONFLICT);
	assert_int_equal(names.count, 2);
}

/* ---- events ---- */

struct event_log {
	struct catalog_event events[8];
	int count;
};

static int
collect_event(const struct catalog_event *event, void *context)
{
	struct event_log *log = context;

	if (log->count >= 8)
		return FERRY_ERR_INTERNAL;
	log->events[log->count++] = *event;
	return 0;
}

static void
test_events_newest_first(void **state)
{
	struct fixture *fixture = *state;
	struct event_log log = {0};
	int64_t before = util_now_ms();

	assert_int_equal(catalog_event_list(fixture->catalog, 10, collect_event, &log), 0);
	assert_int_equal(log.count, 0);
	assert_int_equal(
		catalog_event_add(fixture->catalog, "info", "volume vm1", "transfer %d started", 1),
		0);
	assert_int_equal(catalog_event_add(fixture->catalog, "warn", "volume vm1",
					   "peer %s unreachable, retrying", "dr1"),
			 0);
	assert_int_equal(catalog_event_add(fixture->catalog, "error", "volume vm2",
					   "checksum mismatch at segment %llu", 12ull),
			 0);

	assert_int_equal(catalog_event_list(fixture->catalog, 10, collect_event, &log), 0);
	assert_int_equal(log.count, 3);
	assert_string_equal(log.events[0].message, "checksum mismatch at segment 12");
	assert_string_equal(log.events[0].level, "error");
	assert_string_equal(log.events[0].object, "volume vm2");
	assert_string_equal(log.events[1].message, "peer dr1 unreachable, retrying");
	assert_string_equal(log.events[1].level, "warn");
	assert_string_equal(log.events[2].message, "transfer 1 started");
	assert_string_equal(log.events[2].object, "volume vm1");
	assert_true(log.events[0].id > log.events[1].id);
	assert_true(log.events[1].id > log.events[2].id);
	assert_true(log.events[2].time_ms >= before);

	/* The limit keeps the newest. */
	memset(&log, 0, sizeof(log));
	assert_int_equal(catalog_event_list(fixture->catalog, 2, collect_event, &log), 0);
	assert_int_equal(log.count, 2);
	assert_string_equal(log.events[0].message, "checksum mismatch at segment 12");
	assert_string_equal(log.events[1].message, "peer dr1 unreachable, retrying");
}

static void
test_event_long_message_truncated(void **state)
{
	struct fixture *fixture = *state;
	struct event_log log = {0};
	char *long_text = malloc(4000);

	assert_non_null(long_text);
	memset(long_text, 'x', 3999);
	long_text[3999] = '\0';
	assert_int_equal(catalog_event_add(fixture->catalog, "info", "test", "%s", long_text), 0);
	assert_int_equal(catalog_event_list(fixture->catalog, 1, collect_event, &log), 0);
	assert_int_equal(log.count, 1);
	assert_int_equal(strlen(log.events[0].message), sizeof(log.events[0].message) - 1);
	free(long_text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_schema, setup_folder, teardown),
		cmocka_unit_test_setup_teardown(test_open_unwritable_folder, setup_folder,
						teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_version_1, setup_folder,
						teardown),
		cmocka_unit_test_setup_teardown(test_open_at_lower_version_does_not_downgrade,
						setup_folder, teardown),
		cmocka_unit_test_setup_teardown(test_newer_catalog_refused, setup_folder, teardown),
		cmocka_unit_test_setup_teardown(test_volume_put_get, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_volume_upsert, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_volume_list, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_events_newest_first, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_event_long_message_truncated, setup_catalog,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
