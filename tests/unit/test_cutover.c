/* Unit tests for cutover's pure parts: reading a domain's RBD disks from its XML, rewriting the
 * XML for the other site (disks onto replicas, networks mapped or cut, name/UUID/MAC kept), the
 * monitor address of a ceph.conf, and the catalog's runs and steps. Real libvirt and QEMU are
 * exercised by tests/integration/14-cutover.t. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "catalog/catalog.h"
#include "common/error.h"
#include "common/util.h"
#include "cutover/internal.h"
#include "cutover/virt.h"

static const char domain_xml[] =
	"<domain type='qemu'><name>web1</name><uuid>5a1b2c3d-4e5f-4a6b-8c7d-000000000042</uuid>"
	"<memory unit='MiB'>128</memory><devices>"
	"<disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/>"
	"<auth username='admin'><secret type='ceph' usage='a'/></auth>"
	"<source protocol='rbd' name='rbd/web1-root'><host name='10.0.0.1' port='6789'/>"
	"<config file='/etc/ceph/a.conf'/></source><target dev='vda' bus='virtio'/></disk>"
	"<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
	"<source protocol='rbd' name='data/web1-data'><host name='10.0.0.1' port='6789'/></source>"
	"<target dev='vdb' bus='virtio'/></disk>"
	"<disk type='file' device='cdrom'><source file='/iso/x.iso'/><target dev='hdc'/></disk>"
	"<interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='prod'/>"
	"</interface><interface type='bridge'><mac address='52:54:00:aa:bb:cd'/>"
	"<source bridge='br-a'/></interface></devices></domain>";

static void
test_disks_lists_rbd_disks_and_skips_cdroms(void **state)
{
	json_t *disks = NULL;

	(void)state;
	assert_int_equal(cutover_xml_disks(domain_xml, &disks), 0);
	assert_int_equal(json_array_size(disks), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(disks, 0), "target")),
			    "vda");
	assert_string_equal(json_string_value(json_object_get(json_array_get(disks, 0), "source")),
			    "rbd:rbd/web1-root");
	assert_string_equal(json_string_value(json_object_get(json_array_get(disks, 1), "source")),
			    "rbd:data/web1-data");
	json_decref(disks);
}

static void
test_disks_refuses_a_file_disk(void **state)
{
	const char *xml =
		"<domain><name>x</name><devices><disk type='file' device='disk'>"
		"<source file='/var/x.img'/><target dev='vda'/></disk></devices></domain>";
	json_t *disks = NULL;

	(void)state;
	assert_int_equal(cutover_xml_disks(xml, &disks), FERRY_ERR_INVALID);
	assert_null(disks);
	assert_non_null(strstr(ferry_error_message(), "disk vda is not an RBD image"));
}

static void
test_disks_refuses_malformed_xml(void **state)
{
	json_t *disks = NULL;

	(void)state;
	assert_int_equal(cutover_xml_disks("<domain><devices>", &disks), FERRY_ERR_INVALID);
}

static void
test_remap_points_disks_at_replicas_and_keeps_identity(void **state)
{
	json_t *images =
		json_pack("{s:s, s:s}", "vda", "replicas/web1-root", "vdb", "replicas/web1-data");
	json_t *networks = json_pack("{s:s, s:s}", "prod", "dr-prod", "br-a", "br-b");
	char *out = NULL;

	(void)state;
	assert_int_equal(
		cutover_xml_remap(domain_xml,
				  &(struct cutover_remap){images, "127.0.0.2", "7300",
							  "/srv/b/ceph.conf", networks, false},
				  &out),
		0);
	assert_non_null(strstr(out, "name=\"replicas/web1-root\""));
	assert_non_null(strstr(out, "name=\"replicas/web1-data\""));
	assert_null(strstr(out, "rbd/web1-root"));
	assert_null(strstr(out, "10.0.0.1"));
	assert_null(strstr(out, "/etc/ceph/a.conf"));
	assert_null(strstr(out, "<auth"));
	assert_non_null(strstr(out, "<host name=\"127.0.0.2\" port=\"7300\"/>"));
	assert_non_null(strstr(out, "<config file=\"/srv/b/ceph.conf\"/>"));
	assert_non_null(strstr(out, "<name>web1</name>"));
	assert_non_null(strstr(out, "5a1b2c3d-4e5f-4a6b-8c7d-000000000042"));
	assert_non_null(strstr(out, "52:54:00:aa:bb:cc"));
	assert_non_null(strstr(out, "network=\"dr-prod\""));
	assert_non_null(strstr(out, "bridge=\"br-b\""));
	assert_non_null(strstr(out, "/iso/x.iso")); /* untouched */
	assert_null(strstr(out, "state=\"down\""));
	free(out);
	json_decref(images);
	json_decref(networks);
}

static void
test_remap_isolates_a_test_failover(void **state)
{
	json_t *images = json_pack("{s:s, s:s}", "vda", "r/a", "vdb", "r/b");
	char *out = NULL, *first, *second;

	(void)state;
	assert_int_equal(cutover_xml_remap(
				 domain_xml,
				 &(struct cutover_remap){images, "h", "1", "/c", NULL, true}, &out),
			 0);
	first = strstr(out, "<link state=\"down\"/>");
	assert_non_null(first);
	second = strstr(first + 1, "<link state=\"down\"/>");
	assert_non_null(second);			  /* both interfaces */
	assert_non_null(strstr(out, "network=\"prod\"")); /* no map: kept */
	free(out);
	json_decref(images);
}

static void
test_remap_refuses_a_disk_without_replica(void **state)
{
	json_t *images = json_pack("{s:s}", "vda", "r/a");
	char *out = NULL;

	(void)state;
	assert_int_equal(
		cutover_xml_remap(domain_xml,
				  &(struct cutover_remap){images, "h", "1", "/c", NULL, false},
				  &out),
		FERRY_ERR_INVALID);
	assert_null(out);
	assert_non_null(strstr(ferry_error_message(), "disk vdb has no replica"));
	json_decref(images);
}

static void
test_ceph_mon_reads_the_first_monitor(void **state)
{
	char path[] = "/tmp/ferry-test-conf-XXXXXX", host[64], port[16];
	int fd = mkstemp(path);
	FILE *file = fdopen(fd, "w");

	(void)state;
	fprintf(file, "[global]\nfsid = x\nmon host = [v2:127.0.0.1:7100]\nkeyring = /k\n");
	fclose(file);
	assert_int_equal(cutover_ceph_mon(path, host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_string_equal(port, "7100");
	file = fopen(path, "w");
	fprintf(file, "[global]\nmon_host = 10.1.2.3:6789,10.1.2.4:6789\n");
	fclose(file);
	assert_int_equal(cutover_ceph_mon(path, host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "10.1.2.3");
	assert_string_equal(port, "6789");
	file = fopen(path, "w");
	fprintf(file, "[global]\nfsid = x\n");
	fclose(file);
	assert_int_equal(cutover_ceph_mon(path, host, sizeof(host), port, sizeof(port)),
			 FERRY_ERR_INVALID);
	unlink(path);
}

struct steps_seen {
	int count;
	char last_result[16];
	char last_name[128];
};

static int
count_step(const struct catalog_run_step *step, void *context)
{
	struct steps_seen *seen = context;

	seen->count++;
	snprintf(seen->last_result, sizeof(seen->last_result), "%s", step->result);
	snprintf(seen->last_name, sizeof(seen->last_name), "%s", step->name);
	return 0;
}

static int
copy_status(const struct catalog_run *run, void *context)
{
	snprintf(context, 16, "%s", run->status);
	return 0;
}

static void
test_catalog_runs_steps_and_interruption(void **state)
{
	char path[] = "/tmp/ferry-test-catalog-XXXXXX", db[300], status[16] = "";
	struct catalog *catalog = NULL;
	struct steps_seen seen = {0, "", ""};
	int64_t id = 0, promoted = 0;
	int seq1 = 0, seq2 = 0;

	(void)state;
	assert_non_null(mkdtemp(path));
	snprintf(db, sizeof(db), "%s/catalog.db", path);
	assert_int_equal(catalog_open(db, CATALOG_SYNC_NORMAL, &catalog), 0);
	assert_int_equal(catalog_run_create(catalog, "failover", "web1", "{\"vm\":\"web1\"}", &id),
			 0);
	assert_true(id > 0);
	assert_int_equal(catalog_run_step_begin(catalog, id, "choose the point", &seq1), 0);
	assert_int_equal(catalog_run_step_end(catalog, id, seq1, "ok", "point 7"), 0);
	assert_int_equal(catalog_run_step_begin(catalog, id, "start web1", &seq2), 0);
	assert_int_equal(seq2, seq1 + 1);
	/* ferryd killed here; the next start marks the run. */
	assert_int_equal(catalog_run_mark_interrupted(catalog), 0);
	assert_int_equal(catalog_run_list(catalog, id, 1, copy_status, status), 0);
	assert_string_equal(status, "interrupted");
	assert_int_equal(catalog_run_steps(catalog, id, count_step, &seen), 0);
	assert_int_equal(seen.count, 2);
	assert_string_equal(seen.last_result, "interrupted");
	assert_string_equal(seen.last_name, "start web1");
	assert_int_equal(catalog_run_reopen(catalog, id), 0);
	assert_int_equal(catalog_run_finish(catalog, id, "completed", "", "{}"), 0);
	assert_int_equal(catalog_run_list(catalog, id, 1, copy_status, status), 0);
	assert_string_equal(status, "completed");
	assert_int_equal(catalog_run_list(catalog, id + 100, 1, copy_status, status),
			 FERRY_ERR_NOT_FOUND);
	assert_int_equal(catalog_promoted_get(catalog, "web1-root", &promoted), 0);
	assert_int_equal(promoted, 0);
	assert_int_equal(catalog_promoted_put(catalog, "web1-root", id), 0);
	assert_int_equal(catalog_promoted_get(catalog, "web1-root", &promoted), 0);
	assert_int_equal(promoted, id);
	catalog_close(catalog);
	unlink(db);
	snprintf(db, sizeof(db), "%s/catalog.db-wal", path);
	unlink(db);
	snprintf(db, sizeof(db), "%s/catalog.db-shm", path);
	unlink(db);
	rmdir(path);
}

static int
copy_target(const struct catalog_run *run, void *context)
{
	return util_format(context, 64, "a run's target", "%s", run->target);
}

struct event_writer {
	struct catalog *catalog;
	volatile int stop;
};

static void *
write_events(void *argument)
{
	struct event_writer *writer = argument;

	while (!writer->stop)
		catalog_event_add(writer->catalog, "info", "noise", "an insert on another thread");
	return NULL;
}

/* The daemon shares one connection between threads (scheduler, receiver, runs): the id handed
 * back for a new run must be that run's, even while another thread inserts rows. */
static void
test_catalog_run_ids_hold_under_concurrent_inserts(void **state)
{
	char path[] = "/tmp/ferry-test-catalog-XXXXXX", db[300], target[64], expected[64];
	struct catalog *catalog = NULL;
	struct event_writer writer = {NULL, 0};
	pthread_t thread;

	(void)state;
	assert_non_null(mkdtemp(path));
	snprintf(db, sizeof(db), "%s/catalog.db", path);
	assert_int_equal(catalog_open(db, CATALOG_SYNC_NORMAL, &catalog), 0);
	writer.catalog = catalog;
	assert_int_equal(pthread_create(&thread, NULL, write_events, &writer), 0);
	for (int i = 0; i < 300; i++) {
		int64_t id = 0;
		int seq = 0;

		snprintf(expected, sizeof(expected), "vm%d", i);
		assert_int_equal(catalog_run_create(catalog, "failover", expected, "{}", &id), 0);
		assert_int_equal(catalog_run_list(catalog, id, 1, copy_target, target), 0);
		assert_string_equal(target, expected);
		assert_int_equal(catalog_run_step_begin(catalog, id, "one step", &seq), 0);
		assert_int_equal(seq, 1);
	}
	writer.stop = 1;
	pthread_join(thread, NULL);
	catalog_close(catalog);
	snprintf(db, sizeof(db), "rm -rf '%s'", path);
	assert_int_equal(system(db), 0);
}

/* A record with one disk, parsed from JSON the way the catalog keeps it. */
static void
record_example(struct cutover_vm_record *record)
{
	json_t *object = json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:{s:s}, s:[{s:s, s:s, s:s}], s:s}", "name",
		"web1", "uri", "qemu:///a", "dest_uri", "qemu:///b", "group", "g1", "site", "b",
		"order", 2, "delay", 5, "network_map", "lan", "dr-lan", "disks", "target", "vda",
		"source", "rbd:a/web1-root", "replica", "web1-root", "xml", "<domain/>");

	assert_int_equal(cutover_record_parse(object, record), 0);
	json_decref(object);
}

/* A record's state follows its flags and role; each transition makes the state its table says. */
static void
test_record_state_transitions(void **state)
{
	struct cutover_vm_record record, reversed;
	json_t *object;

	(void)state;
	record_example(&record);
	assert_int_equal(cutover_record_state(&record, "primary"), CUTOVER_VM_PROTECTED);
	assert_int_equal(cutover_record_state(&record, "replica"), CUTOVER_VM_REPLICA);
	cutover_record_mark_unsent(&record);
	assert_int_equal(cutover_record_state(&record, "primary"), CUTOVER_VM_UNSENT);
	cutover_record_mark_migrated(&record, 12);
	assert_int_equal(cutover_record_state(&record, "primary"), CUTOVER_VM_MIGRATED);
	object = cutover_record_json(&record, CUTOVER_RECORD_ALL);
	assert_non_null(object);
	assert_string_equal(cutover_record_state_name(object, "primary"), "migrated");
	assert_int_equal(json_integer_value(json_object_get(object, "migrated")), 12);
	json_decref(object);
	cutover_record_free(&record);

	record_example(&record);
	snprintf(record.disks[0].test_clone, sizeof(record.disks[0].test_clone),
		 "web1-root-test-7");
	cutover_record_mark_test(&record, 7, 4);
	assert_int_equal(cutover_record_state(&record, "replica"), CUTOVER_VM_TESTING);
	cutover_record_clear_test(&record);
	assert_int_equal(cutover_record_state(&record, "replica"), CUTOVER_VM_REPLICA);
	assert_string_equal(record.disks[0].test_clone, "");

	cutover_record_mark_promoted(&record, 9);
	assert_int_equal(cutover_record_state(&record, "replica"), CUTOVER_VM_PROMOTED);

	/* Reversed for the other direction: only reprotect's own state, the point it started
	 * from. */
	assert_int_equal(cutover_record_copy(&record, &reversed), 0);
	reversed.unsent = true;
	cutover_record_reverse(&reversed, &record, 31);
	assert_int_equal(cutover_record_state(&reversed, "primary"), CUTOVER_VM_PROTECTED);
	assert_int_equal(reversed.promoted_point, 0);
	assert_int_equal(reversed.reprotected_by, 31);
	assert_int_equal(reversed.reprotect_point, 9);
	/* The copy is its own: changing it leaves the original alone. */
	snprintf(reversed.disks[0].replica, sizeof(reversed.disks[0].replica), "other");
	assert_string_equal(record.disks[0].replica, "web1-root");
	assert_false(cutover_record_key_portable("promoted_point"));
	assert_false(cutover_record_key_portable("reprotected_by"));
	assert_true(cutover_record_key_portable("disks"));
	cutover_record_free(&reversed);
	cutover_record_free(&record);
}

/* Written and parsed again, a record is the same; the portable form carries none of this
 * site's state, and a peer's record that carries some is refused. */
static void
test_record_round_trip(void **state)
{
	struct cutover_vm_record record, again;
	json_t *all, *portable;

	(void)state;
	record_example(&record);
	snprintf(record.disks[0].test_clone, sizeof(record.disks[0].test_clone),
		 "web1-root-test-3");
	cutover_record_mark_test(&record, 3, 2);
	all = cutover_record_json(&record, CUTOVER_RECORD_ALL);
	portable = cutover_record_json(&record, CUTOVER_RECORD_PORTABLE);
	assert_non_null(all);
	assert_non_null(portable);
	assert_int_equal(cutover_record_parse(all, &again), 0);
	assert_string_equal(again.name, "web1");
	assert_string_equal(again.dest_uri, "qemu:///b");
	assert_string_equal(again.site, "b");
	assert_int_equal(again.order, 2);
	assert_int_equal(again.delay, 5);
	assert_string_equal(json_string_value(json_object_get(again.network_map, "lan")), "dr-lan");
	assert_int_equal(again.disk_count, 1);
	assert_string_equal(again.disks[0].target, "vda");
	assert_string_equal(again.disks[0].source, "rbd:a/web1-root");
	assert_string_equal(again.disks[0].replica, "web1-root");
	assert_string_equal(again.disks[0].test_clone, "web1-root-test-3");
	assert_string_equal(again.xml, "<domain/>");
	assert_true(again.testing);
	assert_int_equal(again.test_run, 3);
	assert_int_equal(again.test_point, 2);
	cutover_record_free(&again);

	assert_null(json_object_get(portable, "test"));
	assert_int_equal(cutover_record_from_peer(portable, &again), 0);
	assert_false(again.testing);
	cutover_record_free(&again);
	assert_int_not_equal(cutover_record_from_peer(all, &again), 0);
	assert_non_null(strstr(ferry_error_message(), "unknown key 'test'"));
	cutover_record_free(&again);
	json_decref(all);
	json_decref(portable);
	cutover_record_free(&record);
}

/* A record not of its shape is refused, naming the key. */
static void
test_record_shape_refused(void **state)
{
	static const struct {
		const char *json, *named;
	} cases[] = {
		{"{\"name\": \"v\", \"order\": 86401}", "'order'"},
		{"{\"name\": \"v\", \"delay\": -1}", "'delay'"},
		{"{\"name\": \"v\", \"delay\": \"5\"}", "'delay'"},
		{"{\"name\": \"v\", \"uri\": 7}", "'uri'"},
		{"{\"name\": \"v\", \"xml\": []}", "'xml'"},
		{"{\"name\": \"v\", \"network_map\": {\"a\": 1}}", "'network_map'"},
		{"{\"name\": \"v\", \"disks\": {}}", "'disks'"},
		{"{\"name\": \"v\", \"disks\": [{\"target\": \"vda\", \"source\": \"rbd:a/b\"}]}",
		 "'disks'"},
		{"{\"name\": \"v\", \"disks\": [7]}", "'disks'"},
	};
	struct cutover_vm_record record;
	char long_uri[700];
	json_t *object;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		object = json_loads(cases[i].json, 0, NULL);
		assert_non_null(object);
		assert_int_equal(cutover_record_parse(object, &record), FERRY_ERR_INVALID);
		if (strstr(ferry_error_message(), cases[i].named) == NULL)
			fail_msg("%s: '%s' does not name %s", cases[i].json, ferry_error_message(),
				 cases[i].named);
		cutover_record_free(&record);
		json_decref(object);
	}
	/* Too long for its field: refused, never cut to fit. */
	memset(long_uri, 'u', sizeof(long_uri) - 1);
	long_uri[sizeof(long_uri) - 1] = '\0';
	object = json_pack("{s:s, s:s}", "name", "v", "dest_uri", long_uri);
	assert_int_equal(cutover_record_parse(object, &record), FERRY_ERR_INVALID);
	assert_non_null(strstr(ferry_error_message(), "'dest_uri' is longer than"));
	cutover_record_free(&record);
	json_decref(object);
	/* More disks than a record may have (invariant 7). */
	object = json_pack("{s:s, s:[]}", "name", "v", "disks");
	for (int i = 0; i <= CUTOVER_VM_DISKS_MAX; i++)
		json_array_append_new(json_object_get(object, "disks"),
				      json_pack("{s:s, s:s, s:s}", "target", "vda", "source",
						"rbd:a/b", "replica", "b"));
	assert_int_equal(cutover_record_parse(object, &record), FERRY_ERR_INVALID);
	assert_non_null(strstr(ferry_error_message(), "disks, more than"));
	cutover_record_free(&record);
	json_decref(object);
}

/* Every kind the table holds is found by name; the table answers what the engine asks. */
static void
test_run_kinds_table(void **state)
{
	char kinds[256];

	(void)state;
	assert_null(cutover_kind_find("migrate-warm"));
	assert_null(cutover_kind_find(NULL));
	assert_true(cutover_kind_find("migrate-live")->abortable);
	assert_true(cutover_kind_find("failover-test")->rollbackable);
	assert_false(cutover_kind_find("failover")->rollbackable);
	assert_true(cutover_kind_find("failover")->admin);
	assert_false(cutover_kind_find("migrate-cold")->admin);
	assert_false(cutover_kind_find("rollback")->startable);
	assert_false(cutover_kind_find("failover-cleanup")->needs_target);
	assert_int_equal(cutover_kind_list(kinds, sizeof(kinds), true), 0);
	assert_non_null(strstr(kinds, "migrate-check"));
	assert_null(strstr(kinds, "rollback"));
	assert_int_equal(cutover_kind_list(kinds, 8, false), FERRY_ERR_INTERNAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disks_lists_rbd_disks_and_skips_cdroms),
		cmocka_unit_test(test_disks_refuses_a_file_disk),
		cmocka_unit_test(test_disks_refuses_malformed_xml),
		cmocka_unit_test(test_remap_points_disks_at_replicas_and_keeps_identity),
		cmocka_unit_test(test_remap_isolates_a_test_failover),
		cmocka_unit_test(test_remap_refuses_a_disk_without_replica),
		cmocka_unit_test(test_ceph_mon_reads_the_first_monitor),
		cmocka_unit_test(test_catalog_runs_steps_and_interruption),
		cmocka_unit_test(test_catalog_run_ids_hold_under_concurrent_inserts),
		cmocka_unit_test(test_record_state_transitions),
		cmocka_unit_test(test_record_round_trip),
		cmocka_unit_test(test_record_shape_refused),
		cmocka_unit_test(test_run_kinds_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
