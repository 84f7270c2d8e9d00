/* Unit tests for generations, one writer per group: the catalog's table (catalog/generations.c)
 * and the receiver's check of a push (replicator/generation.c: refused below, adopted above,
 * learnt when equal; hostile group names and generations refused), with a real catalog.db in a
 * fresh folder and no storage behind it. */
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

#include "catalog/catalog.h"
#include "common/error.h"
#include "common/util.h"
#include "replicator/repl.h"

#include "tests/unit/catalog_fixture.h"

static void
test_generation_table(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_generation generation;
	int64_t raised = 0;

	/* No row: generation 1, nothing learnt. */
	assert_int_equal(catalog_generation_get(fixture->catalog, "db", &generation), 0);
	assert_string_equal(generation.group, "db");
	assert_int_equal(generation.generation, 1);
	assert_int_equal(generation.peer_generation, 0);
	assert_int_equal(generation.split_brain_ms, 0);

	assert_int_equal(catalog_generation_learn(fixture->catalog, "db", 1, false), 0);
	assert_int_equal(catalog_generation_get(fixture->catalog, "db", &generation), 0);
	assert_int_equal(generation.generation, 1);
	assert_int_equal(generation.peer_generation, 1);
	assert_true(generation.peer_seen_ms > 0);

	/* A raise goes one above both this site's and the peer's. */
	assert_int_equal(catalog_generation_raise(fixture->catalog, "db", &raised), 0);
	assert_int_equal(raised, 2);
	assert_int_equal(catalog_generation_learn(fixture->catalog, "db", 5, false), 0);
	assert_int_equal(catalog_generation_raise(fixture->catalog, "db", &raised), 0);
	assert_int_equal(raised, 6);
	assert_int_equal(catalog_generation_get(fixture->catalog, "db", &generation), 0);
	assert_true(generation.raised_ms > 0);

	/* A split brain keeps when it was first seen, until the two agree again. */
	assert_int_equal(catalog_generation_learn(fixture->catalog, "db", 1, true), 0);
	assert_int_equal(catalog_generation_get(fixture->catalog, "db", &generation), 0);
	assert_true(generation.split_brain_ms > 0);
	{
		int64_t first = generation.split_brain_ms;

		assert_int_equal(catalog_generation_learn(fixture->catalog, "db", 1, true), 0);
		assert_int_equal(catalog_generation_get(fixture->catalog, "db", &generation), 0);
		assert_int_equal(generation.split_brain_ms, first);
	}
	assert_int_equal(catalog_generation_learn(fixture->catalog, "db", 6, false), 0);
	assert_int_equal(catalog_generation_get(fixture->catalog, "db", &generation), 0);
	assert_int_equal(generation.split_brain_ms, 0);

	/* Adopting never goes down (invariant 1), and ends a split brain. */
	assert_int_equal(catalog_generation_learn(fixture->catalog, "db", 1, true), 0);
	assert_int_equal(catalog_generation_adopt(fixture->catalog, "db", 3), 0);
	assert_int_equal(catalog_generation_get(fixture->catalog, "db", &generation), 0);
	assert_int_equal(generation.generation, 6);
	assert_int_equal(generation.split_brain_ms, 0);
	assert_int_equal(catalog_generation_adopt(fixture->catalog, "web", 4), 0);
	assert_int_equal(catalog_generation_get(fixture->catalog, "web", &generation), 0);
	assert_int_equal(generation.generation, 4);
	assert_int_equal(generation.peer_generation, 4);
	assert_int_equal(catalog_generation_adopt(fixture->catalog, "web", 0), FERRY_ERR_INVALID);
}

static int
count_generation(const struct catalog_generation *generation, void *context)
{
	(void)generation;
	(*(int *)context)++;
	return 0;
}

static void
test_generation_list_and_volume_group(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_volume volume = {0}, got;
	int rows = 0;

	assert_int_equal(catalog_generation_raise(fixture->catalog, "a", NULL), 0);
	assert_int_equal(catalog_generation_learn(fixture->catalog, "b", 1, false), 0);
	assert_int_equal(catalog_generation_list(fixture->catalog, count_generation, &rows), 0);
	assert_int_equal(rows, 2);

	/* A volume's group is kept when an update names none (a reprotect's adopt). */
	snprintf(volume.name, sizeof(volume.name), "db1");
	snprintf(volume.kind, sizeof(volume.kind), "rbd");
	snprintf(volume.location, sizeof(volume.location), "rbd:rbd/db1");
	snprintf(volume.group, sizeof(volume.group), "a");
	assert_int_equal(catalog_volume_put(fixture->catalog, &volume), 0);
	volume.group[0] = '\0';
	assert_int_equal(catalog_volume_put(fixture->catalog, &volume), 0);
	assert_string_equal(volume.group, "a");
	assert_int_equal(catalog_volume_get(fixture->catalog, "db1", &got), 0);
	assert_string_equal(got.group, "a");
}

static void
put_volume(struct catalog *catalog, const char *name, const char *group)
{
	struct catalog_volume volume = {0};

	snprintf(volume.name, sizeof(volume.name), "%s", name);
	snprintf(volume.kind, sizeof(volume.kind), "rbd");
	snprintf(volume.location, sizeof(volume.location), "rbd:rbd/%s", name);
	snprintf(volume.group, sizeof(volume.group), "%s", group);
	assert_int_equal(catalog_volume_put(catalog, &volume), 0);
}

static void
test_generation_check(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_generation generation;
	int64_t own = 0;

	put_volume(fixture->catalog, "db1", "db");
	/* Equal: learnt. */
	assert_int_equal(repl_generation_check(fixture->catalog, "db1",
					       &(struct repl_push_group){"db", 1}, &own),
			 0);
	assert_int_equal(own, 1);
	/* Promoted here: a push at 1 is a split brain, recorded with both generations. */
	assert_int_equal(catalog_generation_raise(fixture->catalog, "db", NULL), 0);
	ferry_error_clear();
	assert_int_equal(repl_generation_check(fixture->catalog, "db1",
					       &(struct repl_push_group){"db", 1}, &own),
			 FERRY_ERR_SPLIT_BRAIN);
	assert_int_equal(own, 2);
	assert_non_null(strstr(ferry_error_message(), "ferry reprotect db"));
	assert_int_equal(catalog_generation_get(fixture->catalog, "db", &generation), 0);
	assert_true(generation.split_brain_ms > 0);
	assert_int_equal(generation.peer_generation, 1);
	/* Leaving the group out, or naming another one, does not step around it. */
	assert_int_equal(repl_generation_check(fixture->catalog, "db1", NULL, NULL),
			 FERRY_ERR_SPLIT_BRAIN);
	assert_int_equal(repl_generation_check(fixture->catalog, "db1",
					       &(struct repl_push_group){NULL, 0}, NULL),
			 FERRY_ERR_SPLIT_BRAIN);
	assert_int_equal(repl_generation_check(fixture->catalog, "db1",
					       &(struct repl_push_group){"other", 1}, NULL),
			 FERRY_ERR_SPLIT_BRAIN);
	/* Higher: the other site takes over, the split brain is over. */
	assert_int_equal(repl_generation_check(fixture->catalog, "db1",
					       &(struct repl_push_group){"db", 3}, &own),
			 0);
	assert_int_equal(own, 3);
	assert_int_equal(catalog_generation_get(fixture->catalog, "db", &generation), 0);
	assert_int_equal(generation.generation, 3);
	assert_int_equal(generation.split_brain_ms, 0);
	/* A volume of no group with a push of none: nothing to check. */
	assert_int_equal(repl_generation_check(fixture->catalog, "copy1", NULL, &own), 0);
	assert_int_equal(own, 0);
}

static void
test_generation_check_hostile(void **state)
{
	struct fixture *fixture = *state;
	char long_name[300];

	memset(long_name, 'g', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(repl_generation_check(fixture->catalog, "v",
					       &(struct repl_push_group){long_name, 1}, NULL),
			 FERRY_ERR_INVALID);
	assert_int_equal(repl_generation_check(fixture->catalog, "v",
					       &(struct repl_push_group){"../x", 1}, NULL),
			 FERRY_ERR_INVALID);
	assert_int_equal(repl_generation_check(fixture->catalog, "v",
					       &(struct repl_push_group){"db", -1}, NULL),
			 FERRY_ERR_INVALID);
	assert_int_equal(repl_generation_check(fixture->catalog, "v",
					       &(struct repl_push_group){"db", INT64_MAX}, NULL),
			 FERRY_ERR_INVALID);
	assert_int_equal(repl_generation_check(fixture->catalog, "v",
					       &(struct repl_push_group){NULL, 2}, NULL),
			 FERRY_ERR_INVALID);
	assert_string_equal(ferry_error_name(FERRY_ERR_SPLIT_BRAIN), "split_brain");
	assert_int_equal(ferry_error_from_name("split_brain"), FERRY_ERR_SPLIT_BRAIN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_generation_table, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_generation_list_and_volume_group,
						setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_generation_check, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_generation_check_hostile, setup_catalog,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
