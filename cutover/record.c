/* The state of a VM record: the flags a record carries besides its portable keys (name, uri,
 * disks, xml...), parsed and written here only. The record itself stays JSON in the catalog
 * (table vms); every other file reads its state through cutover_record_flags_read() and changes
 * it through the transitions below.
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
 *   6. A record from the other site fits the schema below (cutover_record_schema_check()):
 *      every key of the right type, before anything of it is used or stored. */
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

void
cutover_record_flags_read(json_t *record, struct cutover_vm_flags *flags)
{
	json_t *test = json_object_get(record, "test");

	*flags = (struct cutover_vm_flags){
		.promoted_point = cutover_record_promoted_point(record),
		.migrated_by = json_integer_value(json_object_get(record, "migrated")),
		.migrated = json_object_get(record, "migrated") != NULL,
		.unsent = json_is_true(json_object_get(record, "unsent")),
		.reprotected_by = cutover_record_reprotected_by(record),
		.reprotect_point = cutover_record_reprotect_point(record),
		.testing = test != NULL,
		.test_run = json_integer_value(json_object_get(test, "run")),
		.test_point = json_integer_value(json_object_get(test, "point")),
		.test_clones = json_object_get(test, "clones"),
	};
}

int64_t
cutover_record_promoted_point(json_t *record)
{
	return json_integer_value(json_object_get(record, "promoted_point"));
}

int64_t
cutover_record_reprotected_by(json_t *record)
{
	return json_integer_value(json_object_get(record, "reprotected_by"));
}

int64_t
cutover_record_reprotect_point(json_t *record)
{
	return json_integer_value(json_object_get(record, "reprotect_point"));
}

enum cutover_vm_state
cutover_record_state(json_t *record, const char *role)
{
	struct cutover_vm_flags flags;

	cutover_record_flags_read(record, &flags);
	if (strcmp(role, "primary") == 0)
		return flags.migrated ? CUTOVER_VM_MIGRATED
		       : flags.unsent ? CUTOVER_VM_UNSENT
				      : CUTOVER_VM_PROTECTED;
	if (flags.promoted_point > 0)
		return CUTOVER_VM_PROMOTED;
	return flags.testing ? CUTOVER_VM_TESTING : CUTOVER_VM_REPLICA;
}

const char *
cutover_record_state_name(json_t *record, const char *role)
{
	return cutover_vm_state_name(cutover_record_state(record, role));
}

int
cutover_record_mark_promoted(json_t *record, int64_t point)
{
	assert(point > 0); /* invariant 5 */
	return json_object_set_new(record, "promoted_point", json_integer(point)) == 0
		       ? 0
		       : ferry_error_set(FERRY_ERR_NO_MEMORY, "no memory to mark %s promoted",
					 cutover_text(record, "name"));
}

int
cutover_record_mark_migrated(json_t *record, int64_t run_id)
{
	return json_object_set_new(record, "migrated", json_integer(run_id)) == 0
		       ? 0
		       : ferry_error_set(FERRY_ERR_NO_MEMORY, "no memory to mark %s migrated",
					 cutover_text(record, "name"));
}

int
cutover_record_mark_unsent(json_t *record)
{
	return json_object_set_new(record, "unsent", json_true()) == 0
		       ? 0
		       : ferry_error_set(FERRY_ERR_NO_MEMORY, "no memory to mark %s unsent",
					 cutover_text(record, "name"));
}

int
cutover_record_mark_test(json_t *record, int64_t run_id, int64_t point, json_t *clones)
{
	json_t *test = json_pack("{s:I, s:I, s:O}", "run", (json_int_t)run_id, "point",
				 (json_int_t)point, "clones", clones);

	assert(point > 0); /* invariant 5 */
	if (test == NULL || json_object_set_new(record, "test", test) != 0)
		return ferry_error_set(FERRY_ERR_NO_MEMORY, "no memory to record the test of %s",
				       cutover_text(record, "name"));
	return 0;
}

void
cutover_record_clear_test(json_t *record)
{
	json_object_del(record, "test");
}

/* Only what reprotect recognises as its own: the run that reversed the record, and the point it
 * started from (the promoted point). Every other flag goes. */
int
cutover_record_reverse(json_t *reversed, const json_t *original, int64_t run_id)
{
	struct cutover_vm_flags flags;

	cutover_record_flags_read((json_t *)original, &flags);
	json_object_del(reversed, "migrated");
	json_object_del(reversed, "test");
	json_object_del(reversed, "unsent");
	json_object_del(reversed, "promoted_point");
	if (json_object_set_new(reversed, "reprotected_by", json_integer(run_id)) != 0 ||
	    json_object_set_new(reversed, "reprotect_point", json_integer(flags.promoted_point)) !=
		    0)
		return ferry_error_set(FERRY_ERR_NO_MEMORY, "no memory to reverse the record of %s",
				       cutover_text(reversed, "name"));
	return 0;
}

/* ---- the schema of a record's portable part ---- */

static int
cutover_record_type_error(const char *name, const char *key, const char *wanted)
{
	return ferry_error_set(FERRY_ERR_INVALID,
			       "VM record %.80s: '%s' must be %s; the primary site sends records "
			       "of this shape (ferry vm protect there)",
			       name, key, wanted);
}

int
cutover_record_schema_check(json_t *record)
{
	static const char *const strings[] = {"name", "uri", "dest_uri", "group", "site", "xml"};
	static const char *const disk_strings[] = {"target", "source", "replica"};
	const char *name = json_string_value(json_object_get(record, "name"));
	json_t *value, *disk;
	const char *key;
	size_t i;

	if (!json_is_object(record))
		return ferry_error_set(FERRY_ERR_INVALID, "a VM record is a JSON object");
	name = name ? name : "(no name)";
	for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		value = json_object_get(record, strings[i]);
		if (value && !json_is_string(value))
			return cutover_record_type_error(name, strings[i], "a string");
	}
	for (i = 0; i < 2; i++) {
		key = i == 0 ? "order" : "delay";
		value = json_object_get(record, key);
		if (value && !json_is_null(value) &&
		    (!json_is_integer(value) || json_integer_value(value) < 0 ||
		     json_integer_value(value) > 86400))
			return cutover_record_type_error(name, key,
							 "a whole number from 0 to 86400");
	}
	value = json_object_get(record, "network_map");
	if (value && !json_is_null(value)) {
		json_t *to;

		if (!json_is_object(value))
			return cutover_record_type_error(name, "network_map",
							 "an object of network names");
		json_object_foreach(value, key, to) {
			if (!json_is_string(to))
				return cutover_record_type_error(name, "network_map",
								 "an object of network names");
		}
	}
	value = json_object_get(record, "disks");
	if (value && !json_is_array(value))
		return cutover_record_type_error(name, "disks", "an array of disks");
	json_array_foreach(value, i, disk) {
		if (!json_is_object(disk))
			return cutover_record_type_error(name, "disks", "an array of disk objects");
		for (size_t k = 0; k < sizeof(disk_strings) / sizeof(disk_strings[0]); k++) {
			json_t *field = json_object_get(disk, disk_strings[k]);

			if (!json_is_string(field) || !json_string_value(field)[0])
				return cutover_record_type_error(
					name, "disks",
					"disks each with a target, source and replica (strings)");
		}
	}
	return 0;
}

/* ---- the catalog's copy, and what crosses sites ---- */

int
cutover_record_load(struct catalog *catalog, const char *name, json_t **record)
{
	json_error_t error;
	char *text = NULL;
	int rc = catalog_vm_get(catalog, name, &text, NULL);

	if (rc < 0)
		return rc;
	*record = json_loads(text, 0, &error);
	free(text);
	if (*record == NULL)
		return ferry_error_set(FERRY_ERR_INTERNAL, "the record of VM %s does not parse: %s",
				       name, error.text);
	return 0;
}

int
cutover_record_store(struct catalog *catalog, json_t *record, const char *role)
{
	char *text = json_dumps(record, JSON_COMPACT);
	int rc;

	if (text == NULL)
		return ferry_error_no_memory();
	rc = catalog_vm_put(catalog, json_string_value(json_object_get(record, "name")), role,
			    json_string_value(json_object_get(record, "group")), text);
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

int
cutover_record_keys_check(json_t *record)
{
	const char *key;
	json_t *value;

	json_object_foreach(record, key, value) {
		(void)value;
		if (!cutover_record_key_portable(key))
			return ferry_error_set(FERRY_ERR_INVALID,
					       "unknown key '%.64s' in the VM record", key);
	}
	return 0;
}
