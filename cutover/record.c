/* The VM record (struct cutover_vm_record), parsed and written here only: its portable part
 * (name, uri, dest_uri, group, site, order, delay, network_map, disks [{target, source,
 * replica}], xml), which the primary site sends, and this site's own state, which never
 * crosses sites. The catalog keeps it as JSON (table vms); every other file works on the struct
 * and changes its state through the transitions below.
 *
 * States (enum cutover_vm_state; role is the catalog column):
 *   PROTECTED  role primary: replicated from here; the refresher keeps its definition current.
 *   UNSENT     role primary, "unsent": its newest definition did not reach the replica site.
 *   MIGRATED   role primary, "migrated": RUN: retired here by that migration; runs elsewhere.
 *   REPLICA    role replica: what a failover or migration brings up.
 *   TESTING    role replica, "test": {run, point, clones}: a test failover runs it from clones.
 *   PROMOTED   role replica, "promoted_point": P: runs here from its replicas, from point P.
 *
 * Transitions:
 *   (none)    -> PROTECTED   cutover_vm_protect()                  record stored, then sent
 *   (none)    -> REPLICA     cutover_vm_receive()                  a copy from the primary
 *   PROTECTED -> UNSENT      cutover_record_mark_unsent()          the send failed (refresher)
 *   UNSENT    -> PROTECTED   cutover_vm_protect()                  stored and sent again
 *   PROTECTED -> MIGRATED    cutover_record_mark_migrated()        cutover_retire_disks()
 *   REPLICA   -> TESTING     cutover_record_mark_test()            failover-test
 *   TESTING   -> REPLICA     cutover_record_clear_test()           failover-cleanup, rollback
 *   REPLICA   -> PROMOTED    cutover_record_mark_promoted()        failover, activate, promote
 *   PROMOTED  -> PROTECTED   cutover_record_reverse()              reprotect, at this site
 *   MIGRATED  -> REPLICA     cutover_vm_receive() of the reversed  reprotect, at the other site
 *
 * Invariants:
 *   1. A PROMOTED record is never replaced by a definition from the other site
 *      (cutover_vm_receive() refuses), nor forgotten on its say-so (cutover_vm_forget()).
 *   2. A MIGRATED record is never registered again by the refresher.
 *   3. A TESTING record names every clone its test made, until the clean-up removes them.
 *   4. No flag crosses sites: only the portable keys are sent (cutover_record_key_portable()).
 *   5. A promoted point and a test point are committed points (> 0).
 *   6. A record from the other site is of the record's shape (cutover_record_from_peer()):
 *      every key of the right type and length, before anything of it is used or stored;
 *      a record of this site's catalog is parsed by the same rules.
 *   7. A record has at most CUTOVER_VM_DISKS_MAX disks; a TESTING record's clones are its
 *      disks' test_clone, one per disk. */
#include "cutover/internal.h"

#include <assert.h>

static const char *const cutover_vm_state_names[CUTOVER_VM_STATE_COUNT] = {
	[CUTOVER_VM_PROTECTED] = "protected", [CUTOVER_VM_UNSENT] = "unsent",
	[CUTOVER_VM_MIGRATED] = "migrated",   [CUTOVER_VM_REPLICA] = "replica",
	[CUTOVER_VM_TESTING] = "testing",     [CUTOVER_VM_PROMOTED] = "promoted",
};

const char *
cutover_vm_state_name(enum cutover_vm_state state)
{
	return state < CUTOVER_VM_STATE_COUNT ? cutover_vm_state_names[state] : "unknown";
}

/* ---- states and transitions ---- */

enum cutover_vm_state
cutover_record_state(const struct cutover_vm_record *record, const char *role)
{
	if (strcmp(role, "primary") == 0)
		return record->migrated ? CUTOVER_VM_MIGRATED
		       : record->unsent ? CUTOVER_VM_UNSENT
					: CUTOVER_VM_PROTECTED;
	if (record->promoted_point > 0)
		return CUTOVER_VM_PROMOTED;
	return record->testing ? CUTOVER_VM_TESTING : CUTOVER_VM_REPLICA;
}

const char *
cutover_record_state_name(json_t *object, const char *role)
{
	struct cutover_vm_record record;
	const char *name = "unknown";

	if (cutover_record_parse(object, &record) == 0)
		name = cutover_vm_state_name(cutover_record_state(&record, role));
	cutover_record_free(&record);
	return name;
}

void
cutover_record_mark_promoted(struct cutover_vm_record *record, int64_t point)
{
	assert(point > 0); /* invariant 5 */
	record->promoted_point = point;
}

void
cutover_record_mark_migrated(struct cutover_vm_record *record, int64_t run_id)
{
	record->migrated = true;
	record->migrated_by = run_id;
}

void
cutover_record_mark_unsent(struct cutover_vm_record *record)
{
	record->unsent = true;
}

void
cutover_record_mark_test(struct cutover_vm_record *record, int64_t run_id, int64_t point)
{
	assert(point > 0); /* invariant 5 */
	for (size_t i = 0; i < record->disk_count; i++)
		assert(record->disks[i].test_clone[0]); /* invariant 3 */
	record->testing = true;
	record->test_run = run_id;
	record->test_point = point;
}

void
cutover_record_clear_test(struct cutover_vm_record *record)
{
	record->testing = false;
	record->test_run = 0;
	record->test_point = 0;
	for (size_t i = 0; i < record->disk_count; i++)
		record->disks[i].test_clone[0] = '\0';
}

/* Only what reprotect recognises as its own: the run that reversed the record, and the point it
 * started from (the promoted point). Every other state goes. */
void
cutover_record_reverse(struct cutover_vm_record *reversed, const struct cutover_vm_record *original,
		       int64_t run_id)
{
	int64_t point = original->promoted_point;

	cutover_record_clear_test(reversed);
	reversed->migrated = false;
	reversed->migrated_by = 0;
	reversed->unsent = false;
	reversed->promoted_point = 0;
	reversed->reprotected_by = run_id;
	reversed->reprotect_point = point;
}

/* ---- parsing (invariants 6 and 7) ---- */

static int
cutover_record_type_error(const char *name, const char *key, const char *wanted)
{
	return ferry_error_set(FERRY_ERR_INVALID,
			       "VM record %.80s: '%s' must be %s; the primary site sends records "
			       "of this shape (ferry vm protect there)",
			       name, key, wanted);
}

/* The string at key of object into out (size bytes); a missing key leaves "". */
static int
cutover_record_string(const char *name, json_t *object, const char *key, char *out, size_t size)
{
	json_t *value = json_object_get(object, key);

	out[0] = '\0';
	if (value == NULL)
		return 0;
	if (!json_is_string(value))
		return cutover_record_type_error(name, key, "a string");
	if (json_string_length(value) >= size)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "VM record %.80s: '%s' is longer than %zu characters", name,
				       key, size - 1);
	memcpy(out, json_string_value(value), json_string_length(value) + 1);
	return 0;
}

/* order and delay: a whole number from 0 to 86400 (a delay of years would hold a failover);
 * missing or null is 0. */
static int
cutover_record_seconds(const char *name, json_t *object, const char *key, int64_t *out)
{
	json_t *value = json_object_get(object, key);

	*out = 0;
	if (value == NULL || json_is_null(value))
		return 0;
	if (!json_is_integer(value) || json_integer_value(value) < 0 ||
	    json_integer_value(value) > 86400)
		return cutover_record_type_error(name, key, "a whole number from 0 to 86400");
	*out = json_integer_value(value);
	return 0;
}

static int
cutover_record_network_map(const char *name, json_t *object, struct cutover_vm_record *out)
{
	json_t *value = json_object_get(object, "network_map"), *to;
	const char *key;

	if (value != NULL && !json_is_null(value)) {
		if (!json_is_object(value))
			return cutover_record_type_error(name, "network_map",
							 "an object of network names");
		json_object_foreach(value, key, to) {
			if (!json_is_string(to))
				return cutover_record_type_error(name, "network_map",
								 "an object of network names");
		}
		out->network_map = json_deep_copy(value);
	} else {
		out->network_map = json_object();
	}
	return out->network_map ? 0 : ferry_error_no_memory();
}

static int
cutover_record_disks(const char *name, json_t *object, struct cutover_vm_record *out)
{
	static const char *const wanted = "disks each with a target, source and replica (strings)";
	json_t *disks = json_object_get(object, "disks"), *disk;
	size_t i;
	int rc = 0;

	if (disks == NULL)
		return 0;
	if (!json_is_array(disks))
		return cutover_record_type_error(name, "disks", "an array of disks");
	if (json_array_size(disks) > CUTOVER_VM_DISKS_MAX)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "VM record %.80s: %zu disks, more than the %d a VM record "
				       "may have",
				       name, json_array_size(disks), CUTOVER_VM_DISKS_MAX);
	out->disks = calloc(json_array_size(disks) + 1, sizeof(*out->disks));
	if (out->disks == NULL)
		return ferry_error_no_memory();
	json_array_foreach(disks, i, disk) {
		struct cutover_vm_disk *entry = &out->disks[i];
		static const char *const keys[] = {"target", "source", "replica"};

		if (!json_is_object(disk))
			return cutover_record_type_error(name, "disks", "an array of disk objects");
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			json_t *field = json_object_get(disk, keys[k]);

			if (!json_is_string(field) || json_string_length(field) == 0)
				return cutover_record_type_error(name, "disks", wanted);
		}
		rc = cutover_record_string(name, disk, "target", entry->target,
					   sizeof(entry->target));
		if (rc == 0)
			rc = cutover_record_string(name, disk, "source", entry->source,
						   sizeof(entry->source));
		if (rc == 0)
			rc = cutover_record_string(name, disk, "replica", entry->replica,
						   sizeof(entry->replica));
		if (rc < 0)
			return rc;
		out->disk_count++;
	}
	return 0;
}

/* This site's own state: written by this file only, read as written. */
static int
cutover_record_state_parse(json_t *object, struct cutover_vm_record *out)
{
	json_t *test = json_object_get(object, "test"), *clone;
	size_t i;

	out->promoted_point = json_integer_value(json_object_get(object, "promoted_point"));
	out->migrated = json_object_get(object, "migrated") != NULL;
	out->migrated_by = json_integer_value(json_object_get(object, "migrated"));
	out->unsent = json_is_true(json_object_get(object, "unsent"));
	out->reprotected_by = json_integer_value(json_object_get(object, "reprotected_by"));
	out->reprotect_point = json_integer_value(json_object_get(object, "reprotect_point"));
	out->testing = test != NULL;
	out->test_run = json_integer_value(json_object_get(test, "run"));
	out->test_point = json_integer_value(json_object_get(test, "point"));
	json_array_foreach(json_object_get(test, "clones"), i, clone) {
		if (i >= out->disk_count)
			break;
		if (json_string_length(clone) >= sizeof(out->disks[i].test_clone))
			return ferry_error_set(FERRY_ERR_INVALID,
					       "VM record %s: test clone %zu has too long a name",
					       out->name, i);
		snprintf(out->disks[i].test_clone, sizeof(out->disks[i].test_clone), "%s",
			 json_string_value(clone) ? json_string_value(clone) : "");
	}
	return 0;
}

int
cutover_record_parse(json_t *object, struct cutover_vm_record *out)
{
	const char *name = json_string_value(json_object_get(object, "name"));
	json_t *xml = json_object_get(object, "xml");
	int rc;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(object))
		return ferry_error_set(FERRY_ERR_INVALID, "a VM record is a JSON object");
	name = name ? name : "(no name)";
	rc = cutover_record_string(name, object, "name", out->name, sizeof(out->name));
	if (rc == 0)
		rc = cutover_record_string(name, object, "uri", out->uri, sizeof(out->uri));
	if (rc == 0)
		rc = cutover_record_string(name, object, "dest_uri", out->dest_uri,
					   sizeof(out->dest_uri));
	if (rc == 0)
		rc = cutover_record_string(name, object, "group", out->group, sizeof(out->group));
	if (rc == 0)
		rc = cutover_record_string(name, object, "site", out->site, sizeof(out->site));
	if (rc == 0 && xml && !json_is_string(xml))
		rc = cutover_record_type_error(name, "xml", "a string");
	if (rc == 0 && xml && (out->xml = strdup(json_string_value(xml))) == NULL)
		rc = ferry_error_no_memory();
	if (rc == 0)
		rc = cutover_record_seconds(name, object, "order", &out->order);
	if (rc == 0)
		rc = cutover_record_seconds(name, object, "delay", &out->delay);
	if (rc == 0)
		rc = cutover_record_network_map(name, object, out);
	if (rc == 0)
		rc = cutover_record_disks(name, object, out);
	if (rc == 0)
		rc = cutover_record_state_parse(object, out);
	return rc;
}

int
cutover_record_from_peer(json_t *object, struct cutover_vm_record *out)
{
	const char *key;
	json_t *value;

	memset(out, 0, sizeof(*out));
	json_object_foreach(object, key, value) {
		(void)value;
		if (!cutover_record_key_portable(key))
			return ferry_error_set(FERRY_ERR_INVALID,
					       "VM %.80s: unknown key '%.64s' in the VM record",
					       cutover_text(object, "name"), key);
	}
	return cutover_record_parse(object, out);
}

void
cutover_record_free(struct cutover_vm_record *record)
{
	free(record->disks);
	free(record->xml);
	json_decref(record->network_map);
	record->disks = NULL;
	record->xml = NULL;
	record->network_map = NULL;
	record->disk_count = 0;
}

int
cutover_record_copy(const struct cutover_vm_record *from, struct cutover_vm_record *to)
{
	*to = *from;
	to->disks = calloc(from->disk_count + 1, sizeof(*to->disks));
	to->xml = from->xml ? strdup(from->xml) : NULL;
	to->network_map = json_deep_copy(from->network_map ? from->network_map : json_object());
	if (to->disks == NULL || (from->xml && to->xml == NULL) || to->network_map == NULL) {
		cutover_record_free(to);
		return ferry_error_no_memory();
	}
	if (from->disk_count)
		memcpy(to->disks, from->disks, from->disk_count * sizeof(*to->disks));
	return 0;
}

void
cutover_vm_records_free(struct cutover_vm_records *records)
{
	for (size_t i = 0; i < records->count; i++)
		cutover_record_free(&records->items[i]);
	free(records->items);
	records->items = NULL;
	records->count = 0;
}

/* ---- writing ---- */

static int
cutover_record_state_write(const struct cutover_vm_record *record, json_t *object)
{
	int rc = 0;

	if (record->promoted_point > 0)
		rc |= json_object_set_new(object, "promoted_point",
					  json_integer(record->promoted_point));
	if (record->migrated)
		rc |= json_object_set_new(object, "migrated", json_integer(record->migrated_by));
	if (record->unsent)
		rc |= json_object_set_new(object, "unsent", json_true());
	if (record->reprotected_by > 0) {
		rc |= json_object_set_new(object, "reprotected_by",
					  json_integer(record->reprotected_by));
		rc |= json_object_set_new(object, "reprotect_point",
					  json_integer(record->reprotect_point));
	}
	if (record->testing) {
		json_t *clones = json_array();

		for (size_t i = 0; clones && i < record->disk_count; i++)
			rc |= json_array_append_new(clones,
						    json_string(record->disks[i].test_clone));
		rc |= json_object_set_new(
			object, "test",
			json_pack("{s:I, s:I, s:o*}", "run", (json_int_t)record->test_run, "point",
				  (json_int_t)record->test_point, "clones", clones));
	}
	return rc;
}

json_t *
cutover_record_json(const struct cutover_vm_record *record, enum cutover_record_keys keys)
{
	json_t *object, *disks = json_array();
	int rc = disks ? 0 : -1;

	for (size_t i = 0; rc == 0 && i < record->disk_count; i++)
		rc = json_array_append_new(disks, json_pack("{s:s, s:s, s:s}", "target",
							    record->disks[i].target, "source",
							    record->disks[i].source, "replica",
							    record->disks[i].replica));
	object = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:O, s:o*}", "name", record->name, "uri",
			   record->uri, "dest_uri", record->dest_uri, "group", record->group,
			   "order", (json_int_t)record->order, "delay", (json_int_t)record->delay,
			   "network_map", record->network_map ? record->network_map : json_object(),
			   "disks", disks);
	if (object == NULL)
		rc = -1;
	if (rc == 0 && record->site[0])
		rc = json_object_set_new(object, "site", json_string(record->site));
	if (rc == 0 && record->xml)
		rc = json_object_set_new(object, "xml", json_string(record->xml));
	if (rc == 0 && keys == CUTOVER_RECORD_ALL)
		rc = cutover_record_state_write(record, object);
	if (rc != 0) {
		json_decref(object);
		ferry_error_set(FERRY_ERR_NO_MEMORY, "no memory to write the record of VM %s",
				record->name);
		return NULL;
	}
	return object;
}

/* ---- the catalog's copy ---- */

int
cutover_record_load(struct catalog *catalog, const char *name, struct cutover_vm_record *out)
{
	json_error_t error;
	char *text = NULL;
	json_t *object;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = catalog_vm_get(catalog, name, &text, NULL);
	if (rc < 0)
		return rc;
	object = json_loads(text, 0, &error);
	free(text);
	if (object == NULL)
		return ferry_error_set(FERRY_ERR_INTERNAL, "the record of VM %s does not parse: %s",
				       name, error.text);
	rc = cutover_record_parse(object, out);
	json_decref(object);
	return rc;
}

int
cutover_record_store(struct catalog *catalog, const struct cutover_vm_record *record,
		     const char *role)
{
	json_t *object = cutover_record_json(record, CUTOVER_RECORD_ALL);
	char *text;
	int rc;

	if (object == NULL)
		return ferry_error_last_code();
	text = json_dumps(object, JSON_COMPACT);
	json_decref(object);
	if (text == NULL)
		return ferry_error_no_memory();
	rc = catalog_vm_put(catalog, record->name, role, record->group, text);
	free(text);
	return rc;
}

static const char *const cutover_record_portable_keys[] = {
	"name",	 "uri",		"dest_uri", "group", "site", "order",
	"delay", "network_map", "disks",    "xml",   NULL};

bool
cutover_record_key_portable(const char *key)
{
	for (int i = 0; cutover_record_portable_keys[i]; i++)
		if (strcmp(key, cutover_record_portable_keys[i]) == 0)
			return true;
	return false;
}
