/* Unit tests for the catalog's replication and cutover tables: replica sites, protection
 * groups, protections (with their stored states) and VM records with the promoted volumes.
 * Each test gets a fresh mkdtemp() folder holding a real catalog.db, removed afterwards. */
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

#include "tests/unit/catalog_fixture.h"

/* ---- helpers ---- */

static void
add_site(struct catalog *catalog, const char *name, const char *url)
{
	struct catalog_site site;

	memset(&site, 0, sizeof(site));
	snprintf(site.name, sizeof(site.name), "%s", name);
	snprintf(site.url, sizeof(site.url), "%s", url);
	snprintf(site.token_path, sizeof(site.token_path), "/etc/ferry/%s.token", name);
	assert_int_equal(catalog_site_put(catalog, &site), 0);
}

static void
add_group(struct catalog *catalog, const char *name, int64_t interval_s, int64_t keep)
{
	struct catalog_group group = {.interval_s = interval_s, .keep = keep};

	snprintf(group.name, sizeof(group.name), "%s", name);
	assert_int_equal(catalog_group_create(catalog, &group), 0);
}

static void
fill_protection(struct catalog_protection *protection, const char *source, const char *group,
		const char *site, const char *replica)
{
	memset(protection, 0, sizeof(*protection));
	snprintf(protection->source, sizeof(protection->source), "%s", source);
	snprintf(protection->group, sizeof(protection->group), "%s", group);
	snprintf(protection->site, sizeof(protection->site), "%s", site);
	snprintf(protection->replica, sizeof(protection->replica), "%s", replica);
}

struct names {
	char names[8][600];
	int count;
};

static int
collect_site(const struct catalog_site *site, void *context)
{
	struct names *names = context;

	if (names->count >= 8)
		return FERRY_ERR_INTERNAL;
	if (util_format(names->names[names->count++], sizeof(names->names[0]), "a site's line",
			"%s %s", site->name, site->url) < 0)
		return FERRY_ERR_TOO_LARGE;
	return 0;
}

static int
collect_group(const struct catalog_group *group, void *context)
{
	struct names *names = context;

	if (names->count >= 8)
		return FERRY_ERR_INTERNAL;
	snprintf(names->names[names->count++], sizeof(names->names[0]), "%s %lld", group->name,
		 (long long)group->interval_s);
	return 0;
}

static int
collect_protection(const struct catalog_protection *protection, void *context)
{
	struct names *names = context;

	if (names->count >= 8)
		return FERRY_ERR_INTERNAL;
	snprintf(names->names[names->count++], sizeof(names->names[0]), "%s %s", protection->source,
		 protection->state);
	return 0;
}

static int
collect_vm(const char *name, const char *role, const char *group, const char *record, void *context)
{
	struct names *names = context;

	(void)record;
	if (names->count >= 8)
		return FERRY_ERR_INTERNAL;
	snprintf(names->names[names->count++], sizeof(names->names[0]), "%s %s %s", name, role,
		 group);
	return 0;
}

static int
stop_at_first(const struct catalog_site *site, void *context)
{
	(void)site;
	(*(int *)context)++;
	return FERRY_ERR_CONFLICT;
}

/* ---- sites ---- */

static void
test_site_put_get_list(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_site got;
	struct names names = {.count = 0};
	int calls = 0;

	add_site(fixture->catalog, "dr2", "https://dr2:7443");
	add_site(fixture->catalog, "dr1", "https://dr1:7443");
	/* put on an existing name changes it */
	add_site(fixture->catalog, "dr2", "https://dr2-new:7443");

	memset(&got, 0xff, sizeof(got));
	assert_int_equal(catalog_site_get(fixture->catalog, "dr2", &got), 0);
	assert_string_equal(got.url, "https://dr2-new:7443");
	assert_string_equal(got.token_path, "/etc/ferry/dr2.token");
	assert_string_equal(got.cacert_path, "");
	assert_int_equal(catalog_site_get(fixture->catalog, "dr1", NULL), 0);

	assert_int_equal(catalog_site_list(fixture->catalog, collect_site, &names), 0);
	assert_int_equal(names.count, 2);
	assert_string_equal(names.names[0], "dr1 https://dr1:7443");
	assert_string_equal(names.names[1], "dr2 https://dr2-new:7443");

	/* a callback's error stops the listing and is returned */
	assert_int_equal(catalog_site_list(fixture->catalog, stop_at_first, &calls),
			 FERRY_ERR_CONFLICT);
	assert_int_equal(calls, 1);

	ferry_error_clear();
	assert_int_equal(catalog_site_get(fixture->catalog, "dr3", &got), FERRY_ERR_NOT_FOUND);
	assert_non_null(strstr(ferry_error_message(), "dr3"));
	assert_non_null(strstr(ferry_error_message(), "ferry site add"));
}

static void
test_site_remove(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_protection protection;

	add_site(fixture->catalog, "dr1", "https://dr1:7443");
	add_site(fixture->catalog, "dr2", "https://dr2:7443");
	add_group(fixture->catalog, "g", 60, 3);
	fill_protection(&protection, "rbd:pool/vm1", "g", "dr1", "vm1");
	assert_int_equal(catalog_protection_add(fixture->catalog, &protection), 0);

	/* a site that receives a protected image stays, and says what to do */
	ferry_error_clear();
	assert_int_equal(catalog_site_remove(fixture->catalog, "dr1"), FERRY_ERR_CONFLICT);
	assert_non_null(strstr(ferry_error_message(), "ferry unprotect"));
	assert_int_equal(catalog_site_get(fixture->catalog, "dr1", NULL), 0);

	assert_int_equal(catalog_site_remove(fixture->catalog, "dr2"), 0);
	assert_int_equal(catalog_site_get(fixture->catalog, "dr2", NULL), FERRY_ERR_NOT_FOUND);
	ferry_error_clear();
	assert_int_equal(catalog_site_remove(fixture->catalog, "dr2"), FERRY_ERR_NOT_FOUND);
	assert_non_null(strstr(ferry_error_message(), "dr2"));

	assert_int_equal(catalog_protection_remove(fixture->catalog, "rbd:pool/vm1"), 0);
	assert_int_equal(catalog_site_remove(fixture->catalog, "dr1"), 0);
}

/* ---- groups ---- */

static void
test_group_create_put_get(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_group group = {.interval_s = 300, .keep = 5, .rpo_s = 900}, got;
	struct names names = {.count = 0};

	snprintf(group.name, sizeof(group.name), "gold");
	assert_int_equal(catalog_group_create(fixture->catalog, &group), 0);

	ferry_error_clear();
	assert_int_equal(catalog_group_create(fixture->catalog, &group), FERRY_ERR_CONFLICT);
	assert_non_null(strstr(ferry_error_message(), "ferry group set gold"));

	memset(&got, 0, sizeof(got));
	assert_int_equal(catalog_group_get(fixture->catalog, "gold", &got), 0);
	assert_int_equal(got.interval_s, 300);
	assert_int_equal(got.keep, 5);
	assert_int_equal(got.rpo_s, 900);
	assert_int_equal(got.paused_ms, 0);
	assert_int_equal(catalog_group_rpo_target(&got), 900);

	/* put changes it: paused, RPO back to the default of two intervals and a minute */
	group.rpo_s = 0;
	group.paused_ms = 1234;
	group.interval_s = 60;
	assert_int_equal(catalog_group_put(fixture->catalog, &group), 0);
	assert_int_equal(catalog_group_get(fixture->catalog, "gold", &got), 0);
	assert_int_equal(got.paused_ms, 1234);
	assert_int_equal(got.interval_s, 60);
	assert_int_equal(catalog_group_rpo_target(&got), 180);

	add_group(fixture->catalog, "bronze", 3600, 2);
	assert_int_equal(catalog_group_list(fixture->catalog, collect_group, &names), 0);
	assert_int_equal(names.count, 2);
	assert_string_equal(names.names[0], "bronze 3600");
	assert_string_equal(names.names[1], "gold 60");

	ferry_error_clear();
	assert_int_equal(catalog_group_get(fixture->catalog, "silver", NULL), FERRY_ERR_NOT_FOUND);
	assert_non_null(strstr(ferry_error_message(), "silver"));
}

static void
test_group_check_constraints(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_group group = {.interval_s = 0, .keep = 1};

	/* the schema refuses an interval or a retention below 1 */
	snprintf(group.name, sizeof(group.name), "bad");
	assert_int_equal(catalog_group_create(fixture->catalog, &group), FERRY_ERR_CONFLICT);
	group.interval_s = 1;
	group.keep = 0;
	assert_int_equal(catalog_group_put(fixture->catalog, &group), FERRY_ERR_CONFLICT);
	assert_int_equal(catalog_group_get(fixture->catalog, "bad", NULL), FERRY_ERR_NOT_FOUND);
}

static void
test_group_remove(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_protection protection;

	add_site(fixture->catalog, "dr1", "https://dr1:7443");
	add_group(fixture->catalog, "images", 60, 3);
	add_group(fixture->catalog, "vms", 60, 3);
	add_group(fixture->catalog, "empty", 60, 3);
	fill_protection(&protection, "rbd:pool/a", "images", "dr1", "a");
	assert_int_equal(catalog_protection_add(fixture->catalog, &protection), 0);
	assert_int_equal(catalog_vm_put(fixture->catalog, "vm1", "primary", "vms", "{}"), 0);

	ferry_error_clear();
	assert_int_equal(catalog_group_remove(fixture->catalog, "images"), FERRY_ERR_CONFLICT);
	assert_non_null(strstr(ferry_error_message(), "images"));
	assert_int_equal(catalog_group_remove(fixture->catalog, "vms"), FERRY_ERR_CONFLICT);
	assert_int_equal(catalog_group_remove(fixture->catalog, "empty"), 0);
	assert_int_equal(catalog_group_get(fixture->catalog, "empty", NULL), FERRY_ERR_NOT_FOUND);
	ferry_error_clear();
	assert_int_equal(catalog_group_remove(fixture->catalog, "empty"), FERRY_ERR_NOT_FOUND);
	assert_non_null(strstr(ferry_error_message(), "no protection group named 'empty'"));

	assert_int_equal(catalog_vm_remove(fixture->catalog, "vm1"), 0);
	assert_int_equal(catalog_group_remove(fixture->catalog, "vms"), 0);
	assert_int_equal(catalog_protection_remove(fixture->catalog, "rbd:pool/a"), 0);
	assert_int_equal(catalog_group_remove(fixture->catalog, "images"), 0);
}

/* ---- protections ---- */

static void
test_protection_add_get_update(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_protection protection, got;
	struct names names = {.count = 0};

	add_site(fixture->catalog, "dr1", "https://dr1:7443");
	add_group(fixture->catalog, "g", 60, 3);
	fill_protection(&protection, "rbd:pool/b", "g", "dr1", "b");
	assert_int_equal(catalog_protection_add(fixture->catalog, &protection), 0);

	/* a new protection is syncing, with no point */
	assert_int_equal(catalog_protection_get(fixture->catalog, "rbd:pool/b", &got), 0);
	assert_string_equal(got.state, "syncing");
	assert_int_equal(got.last_point, 0);
	assert_int_equal(got.pending_point, 0);
	assert_string_equal(got.replica, "b");

	/* a point taken, then committed */
	protection.pending_point = 7;
	protection.pending_point_ms = 1000;
	assert_int_equal(catalog_protection_update(fixture->catalog, &protection), 0);
	assert_int_equal(catalog_protection_get(fixture->catalog, "rbd:pool/b", &got), 0);
	assert_int_equal(got.pending_point, 7);
	protection.last_point = 7;
	protection.last_point_ms = 1000;
	protection.pending_point = 0;
	protection.pending_point_ms = 0;
	protection.last_seconds = 1.5;
	protection.points_committed = 4;
	protection.bytes_shipped = 1 << 20;
	snprintf(protection.state, sizeof(protection.state), "in-sync");
	assert_int_equal(catalog_protection_update(fixture->catalog, &protection), 0);
	assert_int_equal(catalog_protection_get(fixture->catalog, "rbd:pool/b", &got), 0);
	assert_int_equal(got.last_point, 7);
	assert_int_equal(got.pending_point, 0);
	assert_string_equal(got.state, "in-sync");
	assert_true(got.last_seconds == 1.5);
	assert_int_equal(got.points_committed, 4);

	/* invariant 4: counters never go down */
	protection.points_committed = 1;
	protection.bytes_shipped = 0;
	protection.errors = 2;
	snprintf(protection.state, sizeof(protection.state), "error");
	snprintf(protection.reason, sizeof(protection.reason), "site dr1 unreachable");
	assert_int_equal(catalog_protection_update(fixture->catalog, &protection), 0);
	assert_int_equal(catalog_protection_get(fixture->catalog, "rbd:pool/b", &got), 0);
	assert_int_equal(got.points_committed, 4);
	assert_int_equal(got.bytes_shipped, 1 << 20);
	assert_int_equal(got.errors, 2);
	assert_string_equal(got.state, "error");
	assert_string_equal(got.reason, "site dr1 unreachable");

	fill_protection(&protection, "rbd:pool/a", "g", "dr1", "a");
	assert_int_equal(catalog_protection_add(fixture->catalog, &protection), 0);
	assert_int_equal(catalog_protection_list(fixture->catalog, collect_protection, &names), 0);
	assert_int_equal(names.count, 2);
	assert_string_equal(names.names[0], "rbd:pool/a syncing");
	assert_string_equal(names.names[1], "rbd:pool/b error");
}

static void
test_protection_conflicts_and_removal(void **state)
{
	struct fixture *fixture = *state;
	struct catalog_protection protection, got;

	add_site(fixture->catalog, "dr1", "https://dr1:7443");
	add_group(fixture->catalog, "g", 60, 3);
	fill_protection(&protection, "rbd:pool/a", "g", "dr1", "a");
	assert_int_equal(catalog_protection_add(fixture->catalog, &protection), 0);

	/* invariant 2: a source once, a replica one source */
	ferry_error_clear();
	assert_int_equal(catalog_protection_add(fixture->catalog, &protection), FERRY_ERR_CONFLICT);
	assert_non_null(strstr(ferry_error_message(), "one primary per replica"));
	fill_protection(&protection, "rbd:pool/other", "g", "dr1", "a");
	assert_int_equal(catalog_protection_add(fixture->catalog, &protection), FERRY_ERR_CONFLICT);
	/* an unknown group or site is refused by the schema */
	fill_protection(&protection, "rbd:pool/c", "nogroup", "dr1", "c");
	assert_int_equal(catalog_protection_add(fixture->catalog, &protection), FERRY_ERR_CONFLICT);
	fill_protection(&protection, "rbd:pool/c", "g", "nosite", "c");
	assert_int_equal(catalog_protection_add(fixture->catalog, &protection), FERRY_ERR_CONFLICT);

	assert_int_equal(catalog_protection_remove(fixture->catalog, "rbd:pool/a"), 0);
	ferry_error_clear();
	assert_int_equal(catalog_protection_get(fixture->catalog, "rbd:pool/a", &got),
			 FERRY_ERR_NOT_FOUND);
	assert_non_null(strstr(ferry_error_message(), "rbd:pool/a"));
	assert_int_equal(catalog_protection_remove(fixture->catalog, "rbd:pool/a"),
			 FERRY_ERR_NOT_FOUND);
	/* invariant 5: the scheduler's update of a removed protection is NOT_FOUND */
	fill_protection(&protection, "rbd:pool/a", "g", "dr1", "a");
	assert_int_equal(catalog_protection_update(fixture->catalog, &protection),
			 FERRY_ERR_NOT_FOUND);
	/* the replica is free again */
	fill_protection(&protection, "rbd:pool/other", "g", "dr1", "a");
	assert_int_equal(catalog_protection_add(fixture->catalog, &protection), 0);
}

static void
test_protection_state_names(void **state)
{
	enum catalog_protection_state parsed;

	(void)state;
	for (int s = CATALOG_PROTECTION_SYNCING; s <= CATALOG_PROTECTION_ERROR; s++) {
		const char *name = catalog_protection_state_name((enum catalog_protection_state)s);

		assert_int_equal(catalog_protection_state_parse(name, &parsed), 0);
		assert_int_equal(parsed, s);
	}
	assert_string_equal(catalog_protection_state_name(CATALOG_PROTECTION_IN_SYNC), "in-sync");
	ferry_error_clear();
	assert_int_equal(catalog_protection_state_parse("lagging", &parsed), FERRY_ERR_INVALID);
	assert_non_null(strstr(ferry_error_message(), "lagging"));
	assert_int_equal(catalog_protection_state_parse(NULL, &parsed), FERRY_ERR_INVALID);
}

/* ---- VM records and promoted volumes ---- */

static void
test_vm_put_get_list_remove(void **state)
{
	struct fixture *fixture = *state;
	struct names names = {.count = 0};
	char *record = NULL;
	char role[16] = "";

	assert_int_equal(
		catalog_vm_put(fixture->catalog, "web", "primary", "g1", "{\"disks\":[\"vda\"]}"),
		0);
	assert_int_equal(catalog_vm_put(fixture->catalog, "db", "replica", "g2", "{}"), 0);
	assert_int_equal(catalog_vm_put(fixture->catalog, "app", "primary", "g1", "{}"), 0);

	assert_int_equal(catalog_vm_get(fixture->catalog, "web", &record, role), 0);
	assert_string_equal(record, "{\"disks\":[\"vda\"]}");
	assert_string_equal(role, "primary");
	free(record);
	record = NULL;

	/* put on an existing name replaces role, group and record */
	assert_int_equal(catalog_vm_put(fixture->catalog, "web", "replica", "g2", "{\"v\":2}"), 0);
	assert_int_equal(catalog_vm_get(fixture->catalog, "web", &record, NULL), 0);
	assert_string_equal(record, "{\"v\":2}");
	free(record);
	record = NULL;

	assert_int_equal(catalog_vm_list(fixture->catalog, NULL, collect_vm, &names), 0);
	assert_int_equal(names.count, 3);
	assert_string_equal(names.names[0], "app primary g1");
	assert_string_equal(names.names[1], "db replica g2");
	assert_string_equal(names.names[2], "web replica g2");
	names.count = 0;
	assert_int_equal(catalog_vm_list(fixture->catalog, "g2", collect_vm, &names), 0);
	assert_int_equal(names.count, 2);
	assert_string_equal(names.names[0], "db replica g2");
	assert_string_equal(names.names[1], "web replica g2");

	/* the schema knows two roles only */
	assert_int_equal(catalog_vm_put(fixture->catalog, "x", "standby", "g1", "{}"),
			 FERRY_ERR_CONFLICT);

	assert_int_equal(catalog_vm_remove(fixture->catalog, "db"), 0);
	ferry_error_clear();
	assert_int_equal(catalog_vm_get(fixture->catalog, "db", &record, role),
			 FERRY_ERR_NOT_FOUND);
	assert_null(record);
	assert_non_null(strstr(ferry_error_message(), "ferry vm protect"));
	ferry_error_clear();
	assert_int_equal(catalog_vm_remove(fixture->catalog, "db"), FERRY_ERR_NOT_FOUND);
	assert_non_null(strstr(ferry_error_message(), "db"));
}

static void
test_promoted(void **state)
{
	struct fixture *fixture = *state;
	int64_t run_id = -1;

	assert_int_equal(catalog_promoted_get(fixture->catalog, "vm1-disk", &run_id), 0);
	assert_int_equal(run_id, 0);
	assert_int_equal(catalog_promoted_put(fixture->catalog, "vm1-disk", 12), 0);
	assert_int_equal(catalog_promoted_get(fixture->catalog, "vm1-disk", &run_id), 0);
	assert_int_equal(run_id, 12);
	/* promoted again by a later run */
	assert_int_equal(catalog_promoted_put(fixture->catalog, "vm1-disk", 15), 0);
	assert_int_equal(catalog_promoted_get(fixture->catalog, "vm1-disk", &run_id), 0);
	assert_int_equal(run_id, 15);
	assert_int_equal(catalog_promoted_get(fixture->catalog, "vm2-disk", &run_id), 0);
	assert_int_equal(run_id, 0);
	assert_int_equal(catalog_promoted_remove(fixture->catalog, "vm1-disk"), 0);
	assert_int_equal(catalog_promoted_get(fixture->catalog, "vm1-disk", &run_id), 0);
	assert_int_equal(run_id, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_site_put_get_list, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_site_remove, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_group_create_put_get, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_group_check_constraints, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_group_remove, setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_protection_add_get_update, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_protection_conflicts_and_removal,
						setup_catalog, teardown),
		cmocka_unit_test_setup_teardown(test_protection_state_names, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_vm_put_get_list_remove, setup_catalog,
						teardown),
		cmocka_unit_test_setup_teardown(test_promoted, setup_catalog, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
