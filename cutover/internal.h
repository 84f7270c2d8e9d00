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

/* ---- records.c: registration, receipt and the refresher ---- */

/* A client of a peer site's ferryd; caller frees it with api_client_free(). */
int cutover_site_client(struct catalog *catalog, const char *site_name, struct api_client **out);
/* catalog_site_list() callback: the only site's name into context, or a refusal if several. */
int cutover_only_site(const struct catalog_site *site, void *context);
/* Held during a pass of the refresher; a run starts only between two passes. */
extern pthread_mutex_t cutover_refresh_lock;
/* The string at key, or "" (never NULL). */
const char *cutover_text(json_t *object, const char *key);

/* ---- record.c: the VM record (its table of states and transitions is there) ---- */

enum cutover_vm_state {
	CUTOVER_VM_PROTECTED,
	CUTOVER_VM_UNSENT,
	CUTOVER_VM_MIGRATED,
	CUTOVER_VM_REPLICA,
	CUTOVER_VM_TESTING,
	CUTOVER_VM_PROMOTED,
	CUTOVER_VM_STATE_COUNT
};

#define CUTOVER_VM_DISKS_MAX  64
#define CUTOVER_VM_TARGET_MAX 32

struct cutover_vm_disk {
	char target[CUTOVER_VM_TARGET_MAX + 1]; /* the guest's device: vda */
	char source[512];			/* rbd:POOL/IMAGE at the primary site */
	char replica[VOLUME_NAME_MAX + 1];	/* the image in the replica site's pool */
	char test_clone[VOLUME_NAME_MAX + 32];	/* TESTING: the clone the test VM runs from */
};

/* A VM record. The portable part is what the primary site sends; the rest is this site's
 * own state (invariant 4 of record.c). Free with cutover_record_free(). */
struct cutover_vm_record {
	char name[VOLUME_NAME_MAX + 1];
	char uri[CUTOVER_LIBVIRT_URI_MAX + 1];	    /* libvirt at the primary site */
	char dest_uri[CUTOVER_LIBVIRT_URI_MAX + 1]; /* libvirt at the replica site */
	char group[VOLUME_NAME_MAX + 1];
	char site[VOLUME_NAME_MAX + 1]; /* the replica site; "" in a reversed record */
	int64_t order;			/* recovery order, lowest first */
	int64_t delay;			/* seconds to wait after it comes up */
	json_t *network_map;		/* {"network here": "network there"}; owned, never NULL */
	struct cutover_vm_disk *disks;
	size_t disk_count;
	char *xml; /* the domain's definition at the primary site */
	/* This site's own state. */
	int64_t promoted_point; /* > 0: PROMOTED, runs here from its replicas since that point */
	bool migrated;		/* MIGRATED by run migrated_by */
	int64_t migrated_by;
	bool unsent; /* UNSENT */
	int64_t reprotected_by, reprotect_point;
	bool testing; /* TESTING: run test_run, from point test_point, on the disks' clones */
	int64_t test_run, test_point;
};

/* All of a request's VMs, in recovery order (cutover_vms_of()). */
struct cutover_vm_records {
	struct cutover_vm_record *items;
	size_t count;
};

/* Which keys cutover_record_json() writes. */
enum cutover_record_keys {
	CUTOVER_RECORD_ALL,	 /* the catalog's copy: portable keys and this site's state */
	CUTOVER_RECORD_PORTABLE, /* what crosses sites */
};

const char *cutover_vm_state_name(enum cutover_vm_state state);
/* Parses a record of this site's catalog into out; FERRY_ERR_INVALID naming the key that is not
 * of the record's shape. out is the caller's to free with cutover_record_free(), also after a
 * failure. */
int cutover_record_parse(json_t *object, struct cutover_vm_record *out);
/* A record from the other site: only portable keys (invariant 4), of the record's shape
 * (invariant 6). Freed as above. */
int cutover_record_from_peer(json_t *object, struct cutover_vm_record *out);
/* The record as JSON (new reference); NULL with the message set when memory ran out. */
json_t *cutover_record_json(const struct cutover_vm_record *record, enum cutover_record_keys keys);
/* A copy of from into to (freed as above). */
int cutover_record_copy(const struct cutover_vm_record *from, struct cutover_vm_record *to);
void cutover_record_free(struct cutover_vm_record *record);
int cutover_record_load(struct catalog *catalog, const char *name, struct cutover_vm_record *out);
int cutover_record_store(struct catalog *catalog, const struct cutover_vm_record *record,
			 const char *role);
/* A key a record may carry from one site to the other (the rest is this site's own state). */
bool cutover_record_key_portable(const char *key);
void cutover_vm_records_free(struct cutover_vm_records *records);

/* The transitions of the table at the top of record.c. */
enum cutover_vm_state cutover_record_state(const struct cutover_vm_record *record,
					   const char *role);
void cutover_record_mark_promoted(struct cutover_vm_record *record, int64_t point);
void cutover_record_mark_migrated(struct cutover_vm_record *record, int64_t run_id);
void cutover_record_mark_unsent(struct cutover_vm_record *record);
/* Every disk's test_clone is set before (invariant 3). */
void cutover_record_mark_test(struct cutover_vm_record *record, int64_t run_id, int64_t point);
void cutover_record_clear_test(struct cutover_vm_record *record);
/* reversed (a copy of original made for the other direction) keeps only reprotect's state. */
void cutover_record_reverse(struct cutover_vm_record *reversed,
			    const struct cutover_vm_record *original, int64_t run_id);

/* ---- activate.c: failover, test failover, activation ---- */

int cutover_activate(struct cutover_run *run, json_t *request);
int cutover_cleanup(struct cutover_run *run, json_t *request);
/* The VMs a request names (vm or group), ordered by their order, then name. */
int cutover_vms_of(struct catalog *catalog, json_t *request, struct cutover_vm_records *out);
void cutover_replica_location(const struct cutover_site *site, const struct cutover_vm_disk *disk,
			      char *out, size_t size);

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

/* ---- predict.c: a live migration's prediction ---- */

/* Starts QEMU's 1 s dirty-rate sample of domain; its start time, or -1 when it cannot. */
int64_t cutover_dirty_rate_start(virDomainPtr domain);
/* The prediction of record's live migration (its inputs, and where each came from), from the
 * sample started at dirty_started_ms and this site's last measured migrations; NULL: no
 * memory. */
json_t *cutover_predict_live(struct cutover_run *run, const struct cutover_vm_record *record,
			     virDomainPtr domain, const char *name, int64_t dirty_started_ms);
int cutover_check_replicas(const struct cutover_site *site, const struct cutover_vm_record *record,
			   int64_t max_lag_s);
int cutover_check_destination(virConnectPtr destination, const char *uri, const char *name,
			      const char *xml);
int cutover_final_point(struct cutover_run *run, const struct cutover_vm_record *record,
			int64_t after_ms, bool catch_up, int64_t *point, int64_t *bytes);
void cutover_retire_disks(struct cutover_run *run, struct cutover_vm_record *record, int64_t point);
int cutover_site_call(struct catalog *catalog, const char *site_name, const char *path,
		      json_t *request, json_t **reply);

/* ---- validate.c: the last step of every cutover ---- */

/* Records a step that proves record's VM runs at uri (its CPU time advances) and, with
 * compare_disks (a planned migration, at the source), that each disk's point at the replica site
 * reads back equal to the source's own point; a failure fails the run with what did not match. */
int cutover_validate(struct cutover_run *run, const struct cutover_vm_record *record,
		     const char *uri, int64_t point, bool compare_disks);

/* ---- reprotect.c, rollback.c ---- */

int cutover_reprotect(struct cutover_run *run, json_t *request);
/* The site to protect towards: request.site, or the only one this site knows. */
int cutover_reprotect_site(struct cutover_run *run, json_t *request, char *site_name);
/* reprotect_group.c: a group without VMs whose volumes ferry group promote promoted here. */
bool cutover_group_promoted_here(struct catalog *catalog, const char *group);
int cutover_reprotect_volumes(struct cutover_run *run, json_t *request);
int cutover_rollback(struct cutover_run *run, json_t *request);

#endif
