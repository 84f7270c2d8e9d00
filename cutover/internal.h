/* What the files of cutover/ share and nothing outside it sees: a run being executed, its steps,
 * the VM record helpers, and the pieces one run kind borrows from another. The public interface
 * is cutover.h. */
#ifndef FERRY_CUTOVER_INTERNAL_H
#define FERRY_CUTOVER_INTERNAL_H

#include "common/api_client.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "cutover/cutover.h"
#include "cutover/virt.h"
#include "replicator/repl.h"

#include <inttypes.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A run while it executes (engine.c); each kind's function fills vms and may say why it
 * stopped. */
struct cutover_run {
	const struct cutover_site *site;
	int64_t id;
	int64_t started_ms;
	json_t *vms; /* per-VM results */
	const char *kind;
	bool refused; /* stopped by a check, before anything changed */
	bool aborted; /* stopped by ferry run abort, the VM running at the source */
};

/* ---- engine.c: steps ---- */

/* Records step FORMAT as begun; returns its sequence number. */
int cutover_step_begin(struct cutover_run *run, const char *format, ...)
	__attribute__((format(printf, 2, 3)));
/* Ends step seq: "ok" with detail when rc is 0, else "failed" with the current error. Returns
 * rc, so that `return cutover_step_end(...)` reads well. */
int cutover_step_end(struct cutover_run *run, int seq, int rc, const char *format, ...)
	__attribute__((format(printf, 4, 5)));
/* ferry run abort came in time: recorded as a step, the VM left running at the source. */
int cutover_aborted(struct cutover_run *run, const char *name, const char *uri, const char *what);

/* ---- records.c: VM records ---- */

int cutover_record_load(struct catalog *catalog, const char *name, json_t **record);
int cutover_record_store(struct catalog *catalog, json_t *record, const char *role);
/* A key a record may carry from one site to the other (the rest is this site's own state). */
bool cutover_record_key_portable(const char *key);
/* FERRY_ERR_INVALID naming the first key of record that is not portable. */
int cutover_record_keys_check(json_t *record);
/* The string at key, or "" (never NULL). */
const char *cutover_text(json_t *object, const char *key);
/* A client of a peer site's ferryd; caller frees it with api_client_free(). */
int cutover_site_client(struct catalog *catalog, const char *site_name, struct api_client **out);
/* catalog_site_list() callback: the only site's name into context, or a refusal if several. */
int cutover_only_site(const struct catalog_site *site, void *context);
/* Held during a pass of the refresher; a run starts only between two passes. */
extern pthread_mutex_t cutover_refresh_lock;

/* ---- record.c: a VM record's state (the table of states and transitions is there) ---- */

enum cutover_vm_state {
	CUTOVER_VM_PROTECTED,
	CUTOVER_VM_UNSENT,
	CUTOVER_VM_MIGRATED,
	CUTOVER_VM_REPLICA,
	CUTOVER_VM_TESTING,
	CUTOVER_VM_PROMOTED,
	CUTOVER_VM_STATE_COUNT
};
/* The flags of a record, parsed; test_clones is borrowed from the record. */
struct cutover_vm_flags {
	int64_t promoted_point; /* > 0: runs here from its replicas since that point */
	bool migrated;		/* retired here by run migrated_by */
	int64_t migrated_by;
	bool unsent;
	int64_t reprotected_by, reprotect_point;
	bool testing;
	int64_t test_run, test_point;
	json_t *test_clones;
};
const char *cutover_vm_state_name(enum cutover_vm_state state);
void cutover_record_flags_read(json_t *record, struct cutover_vm_flags *flags);
enum cutover_vm_state cutover_record_state(json_t *record, const char *role);
int64_t cutover_record_promoted_point(json_t *record);
int64_t cutover_record_reprotected_by(json_t *record);
int64_t cutover_record_reprotect_point(json_t *record);
int cutover_record_mark_promoted(json_t *record, int64_t point);
int cutover_record_mark_migrated(json_t *record, int64_t run_id);
int cutover_record_mark_unsent(json_t *record);
int cutover_record_mark_test(json_t *record, int64_t run_id, int64_t point, json_t *clones);
void cutover_record_clear_test(json_t *record);
/* FERRY_ERR_INVALID naming the key when a record's portable part is not of its shape (invariant
 * 6 of record.c); its keys themselves are checked by cutover_vm_receive(). */
int cutover_record_schema_check(json_t *record);
/* reversed (a copy of original made for the other direction) keeps only reprotect's flags. */
int cutover_record_reverse(json_t *reversed, const json_t *original, int64_t run_id);

/* ---- activate.c: failover, test failover, activation ---- */

int cutover_activate(struct cutover_run *run, json_t *request);
int cutover_cleanup(struct cutover_run *run, json_t *request);
/* The VMs a request names (vm or group), ordered by their order, then name. */
int cutover_vms_of(struct catalog *catalog, json_t *request, json_t **out);
void cutover_replica_location(const struct cutover_site *site, json_t *disk, char *out,
			      size_t size);

/* ---- point_choice.c: which point each VM comes up from (pure) ---- */

/* The points all disks of one VM hold. */
struct cutover_point_set {
	const int64_t *points;
	size_t count;
};
struct cutover_point_choice {
	int64_t point; /* the point the VM comes up from */
	bool shares;   /* at the point the group shares */
};
bool cutover_point_held(const int64_t *points, size_t count, int64_t point);
/* Keeps in common (in place) the points that points holds too; returns how many are left. */
size_t cutover_point_intersect(int64_t *common, size_t common_count, const int64_t *points,
			       size_t count);
/* One choice per VM (the invariants at the top of point_choice.c); wanted 0: the best point.
 * FERRY_ERR_NOT_FOUND with *missing the index of a VM that lacks wanted or has no point; no
 * message is set (the caller names the VM). */
int cutover_point_choose(const struct cutover_point_set *sets, size_t vm_count, int64_t wanted,
			 struct cutover_point_choice *choices, int64_t *group_point,
			 size_t *missing);

/* ---- migrate_cold.c, migrate_live.c: planned migrations ---- */

int cutover_migrate_cold(struct cutover_run *run, json_t *request);
int cutover_migrate_live(struct cutover_run *run, json_t *request);
int cutover_check_replicas(const struct cutover_site *site, json_t *record, int64_t max_lag_s);
int cutover_check_destination(virConnectPtr destination, const char *uri, const char *name,
			      const char *xml);
int cutover_final_point(struct cutover_run *run, json_t *record, int64_t after_ms, bool catch_up,
			int64_t *point, int64_t *bytes);
void cutover_retire_disks(struct cutover_run *run, json_t *record, int64_t point);
int cutover_site_call(struct catalog *catalog, const char *site_name, const char *path,
		      json_t *request, json_t **reply);

/* ---- reprotect.c, rollback.c ---- */

int cutover_reprotect(struct cutover_run *run, json_t *request);
int cutover_rollback(struct cutover_run *run, json_t *request);

#endif
