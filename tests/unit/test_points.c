/* Unit tests for replicator/points.c, the dispatch of point operations by the location's scheme,
 * with no Ceph: this process never configures a cluster, so a call that reached Ceph would fail
 * with "no Ceph settings". Every operation is tried on a file volume (refused, naming it and
 * saying that points need an RBD volume), an unknown scheme (refused) and malformed rbd:
 * locations (refused before any Ceph call); a well-formed rbd: location gets as far as Ceph. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "replicator/repl.h"

#define NO_CEPH "no Ceph settings"

/* Each public point operation, called on one location with arguments that are otherwise fine. */
static int
call_list(const char *location)
{
	int64_t points[4], newest_time = -1;
	size_t count = 99;
	int rc = repl_point_list(location, points, 4, &count, &newest_time);

	if (rc < 0) {
		assert_int_equal(count, 0);
		assert_int_equal(newest_time, 0);
	}
	return rc;
}

static int
call_rollback(const char *location)
{
	return repl_point_rollback(location, 3);
}

static int
call_clone(const char *location)
{
	return repl_point_clone(location, 3, "vm1-test-7");
}

static int
call_clone_remove(const char *location)
{
	return repl_point_clone_remove(location, 3, "vm1-test-7");
}

static int
call_restore(const char *location)
{
	return repl_point_restore(location, "db", 3);
}

static int
call_reset(const char *location)
{
	return repl_point_reset(location, 3);
}

static int
call_group_place(const char *location)
{
	char place[128];

	return repl_group_place(location, place, sizeof(place));
}

static int
call_group_join(const char *location)
{
	return repl_group_join(location, "db", NULL);
}

static int
call_group_leave(const char *location)
{
	return repl_group_leave(location, "db");
}

static int
call_group_point_exists(const char *location)
{
	return repl_group_point_exists(location, "db", 3);
}

static int
call_group_point_take(const char *location)
{
	bool taken = true;
	int rc = repl_group_point_take(location, "db", 3, &taken);

	if (rc < 0)
		assert_false(taken);
	return rc;
}

static int
call_group_point_remove(const char *location)
{
	return repl_group_point_remove(location, "db", 3);
}

static int
call_group_prune(const char *location)
{
	return repl_group_prune(location, "db", &(struct repl_retention){.keep_from = 5});
}

static int
call_group_dissolve(const char *location)
{
	return repl_group_dissolve(location, "db");
}

static const struct {
	const char *name;
	int (*call)(const char *location);
} operations[] = {
	{"repl_point_list", call_list},
	{"repl_point_rollback", call_rollback},
	{"repl_point_clone", call_clone},
	{"repl_point_clone_remove", call_clone_remove},
	{"repl_point_restore", call_restore},
	{"repl_point_reset", call_reset},
	{"repl_group_place", call_group_place},
	{"repl_group_join", call_group_join},
	{"repl_group_leave", call_group_leave},
	{"repl_group_point_exists", call_group_point_exists},
	{"repl_group_point_take", call_group_point_take},
	{"repl_group_point_remove", call_group_point_remove},
	{"repl_group_prune", call_group_prune},
	{"repl_group_dissolve", call_group_dissolve},
};

#define OPERATION_COUNT (sizeof(operations) / sizeof(operations[0]))

/* Every operation on location fails with code, and its message holds each of the texts. */
static void
expect_refused(const char *location, int code, const char *text1, const char *text2)
{
	for (size_t i = 0; i < OPERATION_COUNT; i++) {
		int rc;

		ferry_error_clear();
		rc = operations[i].call(location);
		if (rc != code || strstr(ferry_error_message(), NO_CEPH) ||
		    (text1 && !strstr(ferry_error_message(), text1)) ||
		    (text2 && !strstr(ferry_error_message(), text2)))
			fail_msg("%s(\"%s\"): %d, \"%s\"; expected %d with \"%s\" and \"%s\"",
				 operations[i].name, location, rc, ferry_error_message(), code,
				 text1 ? text1 : "", text2 ? text2 : "");
	}
}

static void
test_file_volume_is_refused(void **state)
{
	(void)state;
	assert_false(repl_ceph_configured());
	expect_refused("file:/var/lib/ferry/volumes/vm1", FERRY_ERR_INVALID,
		       "file:/var/lib/ferry/volumes/vm1 has no points (a file volume)",
		       "points need an RBD volume (rbd:POOL/IMAGE)");
	/* A plain path is a file too. */
	expect_refused("/dev/vg0/vm1", FERRY_ERR_INVALID, "/dev/vg0/vm1 has no points (a file",
		       "points need an RBD volume");
	assert_false(repl_point_supported("file:/var/lib/ferry/volumes/vm1"));
	assert_false(repl_point_supported("/dev/vg0/vm1"));
	assert_true(repl_point_supported("rbd:rbd/vm1"));
}

static void
test_unknown_scheme_is_refused(void **state)
{
	(void)state;
	expect_refused("nbd:host/vm1", FERRY_ERR_INVALID,
		       "nbd:host/vm1 is of an unknown volume kind", "points need an RBD volume");
	expect_refused("", FERRY_ERR_INVALID, "no volume named", "points need an RBD volume");
	assert_false(repl_point_supported("nbd:host/vm1"));
	assert_false(repl_point_supported(""));
	assert_false(repl_point_supported(NULL));
}

static void
test_malformed_rbd_location_is_refused_before_ceph(void **state)
{
	static const char *const malformed[] = {
		"rbd:", "rbd:pool", "rbd:/vm1", "rbd:pool/", "rbd:pool/a/b", "rbd:pool/vm1@ferry-3",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		expect_refused(malformed[i], FERRY_ERR_INVALID, malformed[i] + 4, NULL);
	/* The point number and the group are checked before the kind sees the call. */
	ferry_error_clear();
	assert_int_equal(repl_point_rollback("rbd:rbd/vm1", 0), FERRY_ERR_INVALID);
	assert_non_null(strstr(ferry_error_message(), "numbered from 1"));
	assert_int_equal(repl_point_clone("rbd:rbd/vm1", -1, "c"), FERRY_ERR_INVALID);
	assert_int_equal(repl_point_clone("rbd:rbd/vm1", 2, ""), FERRY_ERR_INVALID);
	assert_int_equal(repl_point_restore("rbd:rbd/vm1", "", 2), FERRY_ERR_INVALID);
	assert_int_equal(repl_group_point_take("rbd:rbd/vm1", NULL, 2, &(bool){false}),
			 FERRY_ERR_INVALID);
	assert_null(strstr(ferry_error_message(), NO_CEPH));
}

static void
test_group_members_must_share_points(void **state)
{
	(void)state;
	ferry_error_clear();
	assert_int_equal(repl_group_join("rbd:rbd/vm1", "db", "file:/srv/vm2"), FERRY_ERR_INVALID);
	assert_non_null(strstr(ferry_error_message(), "of another kind than rbd:rbd/vm1"));
	ferry_error_clear();
	assert_int_equal(repl_group_join("rbd:fast/vm1", "db", "rbd:slow/vm2"), FERRY_ERR_INVALID);
	assert_non_null(strstr(ferry_error_message(),
			       "group db protects images of pool slow; rbd:fast/vm1 is in pool "
			       "fast"));
}

static void
test_rbd_location_reaches_its_backend(void **state)
{
	char place[16];

	(void)state;
	/* Well-formed: the RBD table takes it, and only Ceph (not configured here) says no. */
	for (size_t i = 0; i < OPERATION_COUNT; i++) {
		if (operations[i].call == call_group_place)
			continue;
		ferry_error_clear();
		if (operations[i].call("rbd:rbd/vm1") != FERRY_ERR_INVALID ||
		    !strstr(ferry_error_message(), NO_CEPH))
			fail_msg("%s(\"rbd:rbd/vm1\"): \"%s\"; expected it to reach Ceph",
				 operations[i].name, ferry_error_message());
	}
	assert_int_equal(repl_group_place("rbd:replicas/vm1", place, sizeof(place)), 0);
	assert_string_equal(place, "replicas");
	assert_int_equal(repl_group_place("rbd:replicas/vm1", place, 4), FERRY_ERR_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_volume_is_refused),
		cmocka_unit_test(test_unknown_scheme_is_refused),
		cmocka_unit_test(test_malformed_rbd_location_is_refused_before_ceph),
		cmocka_unit_test(test_group_members_must_share_points),
		cmocka_unit_test(test_rbd_location_reaches_its_backend),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
