/* Cutover: moving protected VMs to the other site with libvirt. Registration of a VM (its domain
 * XML, disks and mapping), planned cold migration, failover and test failover, each recorded as
 * a run with ordered steps in the catalog. ferryd's web layer starts runs; each runs in its own
 * thread and the CLI follows it through GET /v1/runs/ID.
 *
 * Ownership: the caller owns every string and JSON value it passes in; functions that hand back
 * JSON give the caller a new reference. */
#ifndef FERRY_CUTOVER_CUTOVER_H
#define FERRY_CUTOVER_CUTOVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"

/* What a site knows of itself that cutover needs. */
struct repl_scheduler;
struct repl_receiver;

struct cutover_site {
	struct catalog *catalog;
	struct repl_scheduler *scheduler; /* NULL: this site takes no points */
	struct repl_receiver *receiver;	  /* its open replica images are let go before a failover */
	const char *ceph_conf;		  /* this site's ceph.conf (NULL: no Ceph) */
	const char *replica_pool;	  /* where this site keeps replicas */
};

/* The libvirt connections a daemon may open, from its configuration ([libvirt] NAME = URI,
 * --libvirt NAME=URI); call at start, before any thread. A request names one of them or gives
 * its exact URI; cutover_virt_resolve() turns either into the URI, or refuses
 * (FERRY_ERR_INVALID, listing the names). The ext transport is refused even here. */
#define CUTOVER_LIBVIRT_NAME_MAX 64
#define CUTOVER_LIBVIRT_URI_MAX	 512
int cutover_virt_allow(const char *name, const char *uri);
void cutover_virt_allow_reset(void);
/* Replaces the whole list (a reload): all or nothing, the old list stays on an error. */
int cutover_virt_allow_replace(char *const *names, char *const *uris, int count);
/* "NAME = URI" lines of the list into out; returns how many. */
int cutover_virt_allowed_list(char *out, size_t size);
int cutover_virt_resolve(const char *given, char *uri, size_t size);
/* The allow-list for a domain definition from a peer or the API (cutover/domain_check.c): 0,
 * or FERRY_ERR_INVALID naming the element that failed. Character devices may write files only
 * in the folders given to cutover_domain_allow_file_dir() at start. */
int cutover_domain_check(const char *xml);
int cutover_domain_allow_file_dir(const char *directory);
void cutover_domain_allow_reset(void);
int cutover_domain_allow_replace(char *const *directories, int count);

/* Process-wide set-up of libvirt (error handler, event loop); call once before anything else. */
int cutover_init(void);
/* How many runs are executing in this process now. */
int cutover_runs_active(void);

/* ---- registration (primary site) ---- */

/* Registers domain request.name on request.uri: reads its XML, protects each RBD disk in
 * request.group (site: request.site or the only site), stores the record and sends a copy to
 * the replica site. *record_out (new reference) is the stored record. */
int cutover_vm_protect(const struct cutover_site *site, json_t *request, json_t **record_out);

/* Stores a record sent by the primary site (replica side); refused for a VM that a failover
 * or migration brought up here. */
int cutover_vm_receive(const struct cutover_site *site, json_t *record);
/* ferry vm unprotect: its disks stop replicating and its record goes, at the replica site first
 * (cutover_vm_forget there), then here. */
int cutover_vm_unprotect(const struct cutover_site *site, json_t *request, json_t **reply);
int cutover_vm_forget(const struct cutover_site *site, json_t *request, json_t **reply);

/* The state of a VM record (protected, unsent, migrated, replica, testing, promoted; the table
 * is in cutover/record.c), for listings. */
const char *cutover_record_state_name(json_t *record, const char *role);

/* Keeps the stored definitions current: a VM of this site (role primary) whose libvirt
 * definition changed is registered again (new disks protected, the record sent to the
 * replica site). One pass returns how many changed; the refresher makes a pass every
 * interval_s seconds in a thread of its own until it is stopped (NULL: it did not start). */
int cutover_vm_refresh(const struct cutover_site *site);
struct cutover_refresher;
struct cutover_refresher *cutover_refresher_start(const struct cutover_site *site, int interval_s);
void cutover_refresher_stop(struct cutover_refresher *refresher);

/* Replica side of a live migration: the migratable and the persistent XML of a VM rewritten
 * for this site (*reply: {"xml", "persistent_xml"}); and, once its final delta is committed,
 * its disks promoted (no more deltas land on them). */
int cutover_vm_remap(const struct cutover_site *site, json_t *request, json_t **reply);
int cutover_vm_promote(const struct cutover_site *site, const char *name, int64_t run_id,
		       int64_t point);

/* The other site's side of a reprotect (a run of kind "reprotect" at the site the VMs moved
 * to): request {"group", "disks": [{"volume", "location", "point", "identity", "size"}],
 * "records": [...]}; each image goes back to the shared point and becomes this site's replica;
 * *reply (new reference) is {"interval", "keep"} of the group here (0 when unknown). */
int cutover_reprotect_prepare(const struct cutover_site *site, json_t *request, json_t **reply);

/* ---- runs ---- */

/* What a kind of run is (engine.c holds the one table of them). */
struct cutover_run;
struct cutover_kind {
	const char *name;
	int (*execute)(struct cutover_run *run, json_t *request);
	bool startable;	   /* by cutover_run_start(); a rollback is started from its run */
	bool resumable;	   /* an interrupted or failed run of it may be resumed */
	bool rollbackable; /* ... or rolled back */
	bool abortable;	   /* ferry run abort may stop it before its point of no return */
	bool admin;	   /* it takes over or gives away a site's disks: admin role only */
	bool needs_target; /* names a VM or a group */
	const char *site;  /* where it runs, for the documentation */
};
/* The kind of that name, or NULL. */
const struct cutover_kind *cutover_kind_find(const char *name);
/* "migrate-cold, migrate-live, ..." into out (only the startable ones when asked). */
int cutover_kind_list(char *out, size_t size, bool startable_only);

/* Starts a run of a startable kind (the table in engine.c) described by request, in a thread of its
 * own; *run_id says which. A refusal found before anything changes is recorded as a run with status
 * "refused". */
int cutover_run_start(const struct cutover_site *site, const char *kind, json_t *request,
		      int64_t *run_id);
/* Resumes an interrupted run from its request: steps already done are done again only where
 * that is harmless; the others are skipped. */
int cutover_run_resume(const struct cutover_site *site, int64_t run_id);
/* Rolls an interrupted or failed run back, as a run of kind "rollback" (*rollback_id): a
 * planned migration that never got the VM running at the destination starts it again at the
 * source; a test failover is cleaned up; other kinds are refused (resume them). The original
 * run's status becomes "rolled-back". */
int cutover_run_rollback(const struct cutover_site *site, int64_t run_id, int64_t *rollback_id);
/* Aborts a planned migration before its point of no return (cutover/abort.c): 0 when it will
 * stop at the next safe point with the VM running at the source, FERRY_ERR_CONFLICT when it
 * cannot (another kind, ended, or past that point). */
int cutover_run_abort(const struct cutover_site *site, int64_t run_id);
/* For the migrations: a run is abortable between open and close; close says whether an abort
 * was asked for. A job that can stop at once (the memory copy) registers how. */
void cutover_abort_open(int64_t run_id);
void cutover_abort_job(int64_t run_id, void (*abort_now)(void *context), void *context);
bool cutover_abort_requested(int64_t run_id);
bool cutover_abort_close(int64_t run_id);
/* Runs synchronously (used by the threads above and by the primary asking the replica site). */
int cutover_run_execute(const struct cutover_site *site, int64_t run_id, const char *kind,
			json_t *request);
/* The run as JSON: run, kind, status, reason, total_ms, vms, steps. */
json_t *cutover_run_json(struct catalog *catalog, const struct catalog_run *run);

#endif
