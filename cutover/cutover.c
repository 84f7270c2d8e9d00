/* Cutover runs: registration of VMs, planned cold migration (primary site), failover, test
 * failover and its clean-up (replica site). Every run is a row in the catalog with ordered steps;
 * each step is recorded before it starts and when it ends, so that a run cut short by a killed
 * ferryd shows exactly where it stopped, and can be resumed: every step is written so that doing
 * it again is harmless (a rollback to the same point, a define of the same XML, a start of a
 * running domain).
 *
 * A VM record (catalog table vms) is JSON: name, uri (primary libvirt), dest_uri (replica
 * libvirt), group, site, order, delay, network_map, disks [{target, source, replica}], xml. */
#include "cutover/cutover.h"
#include "common/api_client.h"
#include "common/error.h"
#include "common/log.h"
#include "cutover/virt.h"
#include "replicator/repl.h"

#include <inttypes.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
cutover_libvirt_quiet(void *context, virErrorPtr error)
{
	(void)context;
	(void)error; /* kept per thread for cutover_virt_message(); never printed */
}

static void *
cutover_event_loop(void *argument)
{
	(void)argument;
	for (;;)
		virEventRunDefaultImpl();
	return NULL;
}

int
cutover_init(void)
{
	pthread_t thread;

	virSetErrorFunc(NULL, cutover_libvirt_quiet);
	if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0)
		return ferry_error_set(FERRY_ERR_INTERNAL, "cannot initialise libvirt");
	if (pthread_create(&thread, NULL, cutover_event_loop, NULL) != 0)
		return ferry_error_set(FERRY_ERR_INTERNAL, "cannot start libvirt's event loop");
	pthread_detach(thread);
	return 0;
}

/* ---- runs and steps ---- */

struct cutover_run {
	const struct cutover_site *site;
	int64_t id;
	int64_t started_ms;
	json_t *vms; /* per-VM results */
	const char *kind;
	bool refused; /* stopped by a check, before anything changed */
	bool aborted; /* stopped by ferry run abort, the VM running at the source */
};

static int cutover_step_begin(struct cutover_run *run, const char *format, ...)
	__attribute__((format(printf, 2, 3)));
static int
cutover_step_begin(struct cutover_run *run, const char *format, ...)
{
	char name[128];
	va_list args;
	int seq = 0;

	va_start(args, format);
	vsnprintf(name, sizeof(name), format, args);
	va_end(args);
#ifdef FERRY_FAULT_INJECTION
	{
		/* Test hook: FERRY_FAULT_EXIT_AT_STEP=PREFIX ends the daemon as kill -9 would, just
		 * before a step whose name starts with PREFIX begins. */
		const char *prefix = getenv("FERRY_FAULT_EXIT_AT_STEP");

		if (prefix && prefix[0] && strncmp(name, prefix, strlen(prefix)) == 0) {
			log_warn("run %" PRId64 ": FERRY_FAULT_EXIT_AT_STEP: exiting before '%s'",
				 run->id, name);
			_exit(137);
		}
	}
#endif
	if (catalog_run_step_begin(run->site->catalog, run->id, name, &seq) < 0)
		log_warn("run %" PRId64 ": cannot record step '%s': %s", run->id, name,
			 ferry_error_message());
	log_info("run %" PRId64 ": %s", run->id, name);
	{
		char object[32];

		snprintf(object, sizeof(object), "run %" PRId64, run->id);
		catalog_event_add_kind(run->site->catalog, "step", "info", object,
				       "step %d began: %s", seq, name);
	}
	return seq;
}

/* Ends step seq: "ok" with detail when rc is 0, else "failed" with the current error. Returns
 * rc, so that `return cutover_step_end(...)` reads well. */
static int cutover_step_end(struct cutover_run *run, int seq, int rc, const char *format, ...)
	__attribute__((format(printf, 4, 5)));
static int
cutover_step_end(struct cutover_run *run, int seq, int rc, const char *format, ...)
{
	char detail[1024] = "";
	va_list args;

	if (rc < 0) {
		snprintf(detail, sizeof(detail), "%s", ferry_error_message());
	} else if (format) {
		va_start(args, format);
		vsnprintf(detail, sizeof(detail), format, args);
		va_end(args);
	}
	catalog_run_step_end(run->site->catalog, run->id, seq, rc < 0 ? "failed" : "ok", detail);
	{
		char object[32];

		snprintf(object, sizeof(object), "run %" PRId64, run->id);
		catalog_event_add_kind(run->site->catalog, "step", rc < 0 ? "error" : "info",
				       object, "step %d %s: %s", seq, rc < 0 ? "failed" : "ended",
				       detail);
	}
	if (rc < 0)
		ferry_error_set(rc, "%s", detail); /* the step's error stays the current one */
	return rc;
}

/* ferry run abort came in time: recorded as a step, the VM left running at the source. */
static int
cutover_aborted(struct cutover_run *run, const char *name, const char *uri, const char *what)
{
	int seq = cutover_step_begin(run, "abort, as the operator asked");

	cutover_step_end(run, seq, 0, "%s; %s keeps running at %s", what, name, uri);
	run->aborted = true;
	return ferry_error_set(FERRY_ERR_CONFLICT,
			       "aborted by the operator (%s); %s keeps running at %s", what, name,
			       uri);
}

/* ---- VM records ---- */

static int
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

static int
cutover_record_store(struct catalog *catalog, json_t *record, const char *role)
{
	char *text = json_dumps(record, JSON_COMPACT);
	int rc;

	if (text == NULL)
		return FERRY_ERR_NO_MEMORY;
	rc = catalog_vm_put(catalog, json_string_value(json_object_get(record, "name")), role,
			    json_string_value(json_object_get(record, "group")), text);
	free(text);
	return rc;
}

static const char *
cutover_text(json_t *object, const char *key)
{
	const char *value = json_string_value(json_object_get(object, key));

	return value ? value : "";
}

/* A client of a peer site's ferryd; caller frees it with api_client_free(). */
static int
cutover_site_client(struct catalog *catalog, const char *site_name, struct api_client **out)
{
	struct catalog_site site;
	char *token = NULL;
	int rc;

	rc = catalog_site_get(catalog, site_name, &site);
	if (rc == 0)
		rc = util_read_token_file(site.token_path, &token);
	if (rc < 0)
		return rc;
	*out = api_client_new(&(struct api_client_options){
		.url = site.url,
		.token = token,
		.cacert = site.cacert_path[0] ? site.cacert_path : NULL,
	});
	free(token);
	return *out ? 0 : ferry_error_last_code();
}

static int
cutover_only_site(const struct catalog_site *site, void *context)
{
	char *name = context;

	if (name[0])
		return ferry_error_set(FERRY_ERR_INVALID,
				       "this site pushes to several sites; say which with --site");
	snprintf(name, VOLUME_NAME_MAX + 1, "%s", site->name);
	return 0;
}

int
cutover_vm_protect(const struct cutover_site *site, json_t *request, json_t **record_out)
{
	const char *name = cutover_text(request, "name"), *uri = cutover_text(request, "uri");
	const char *group_name = cutover_text(request, "group");
	char site_name[VOLUME_NAME_MAX + 1] = "", *xml = NULL;
	char source_uri[CUTOVER_LIBVIRT_URI_MAX + 1], dest_uri[CUTOVER_LIBVIRT_URI_MAX + 1];
	struct api_client *client = NULL;
	struct catalog_group group;
	virConnectPtr connection = NULL;
	virDomainPtr domain = NULL;
	json_t *disks = NULL, *record = NULL, *disk, *network_map;
	size_t index;
	int rc;

	*record_out = NULL;
	if (!name[0] || !uri[0] || !cutover_text(request, "dest_uri")[0] || !group_name[0])
		return ferry_error_set(FERRY_ERR_INVALID,
				       "give the domain's name, --uri, --dest-uri and --group");
	/* Both are opened from this site (the destination by a live migration): each must be a
	 * connection configured here. The record keeps the URIs. */
	rc = cutover_virt_resolve(uri, source_uri, sizeof(source_uri));
	if (rc == 0)
		rc = cutover_virt_resolve(cutover_text(request, "dest_uri"), dest_uri,
					  sizeof(dest_uri));
	if (rc < 0)
		return rc;
	uri = source_uri;
	rc = catalog_group_get(site->catalog, group_name, &group);
	if (rc < 0)
		return rc;
	snprintf(site_name, sizeof(site_name), "%s", cutover_text(request, "site"));
	if (site_name[0] == '\0') {
		rc = catalog_site_list(site->catalog, cutover_only_site, site_name);
		if (rc == 0 && site_name[0] == '\0')
			rc = ferry_error_set(FERRY_ERR_INVALID,
					     "no replica site yet; add one with ferry site add");
		if (rc < 0)
			return rc;
	}
	rc = cutover_virt_open(uri, &connection);
	if (rc == 0)
		rc = cutover_virt_domain(connection, uri, name, &domain);
	if (rc == 0)
		rc = cutover_virt_domain_xml(domain, name, &xml);
	if (rc == 0)
		rc = cutover_domain_check(xml);
	if (rc == 0)
		rc = cutover_xml_disks(xml, &disks);
	if (rc < 0)
		goto out;
	if (json_array_size(disks) == 0) {
		rc = ferry_error_set(FERRY_ERR_INVALID,
				     "domain %s has no RBD disk; ferry moves VMs whose disks it "
				     "replicates",
				     name);
		goto out;
	}
	json_array_foreach(disks, index, disk)
	{
		struct catalog_protection protection, existing;
		const char *source = cutover_text(disk, "source");
		const char *image = strchr(source, '/') + 1;

		memset(&protection, 0, sizeof(protection));
		snprintf(protection.source, sizeof(protection.source), "%s", source);
		snprintf(protection.group, sizeof(protection.group), "%s", group_name);
		snprintf(protection.site, sizeof(protection.site), "%s", site_name);
		snprintf(protection.replica, sizeof(protection.replica), "%s", image);
		if (catalog_protection_get(site->catalog, source, &existing) == 0) {
			if (strcmp(existing.group, group_name) != 0) {
				rc = ferry_error_set(
					FERRY_ERR_CONFLICT,
					"disk %s of %s is protected in group %s, not %s", source,
					name, existing.group, group_name);
				goto out;
			}
			snprintf(protection.replica, sizeof(protection.replica), "%s",
				 existing.replica);
		} else {
			rc = repl_protection_add(site->catalog, &protection);
			if (rc < 0)
				goto out;
		}
		json_object_set_new(disk, "replica", json_string(protection.replica));
	}
	network_map = json_object_get(request, "network_map");
	network_map = json_is_object(network_map) ? json_incref(network_map) : json_object();
	record = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:O, s:s}", "name", name,
			   "uri", uri, "dest_uri", dest_uri, "group", group_name, "site", site_name,
			   "order", json_integer_value(json_object_get(request, "order")), "delay",
			   json_integer_value(json_object_get(request, "delay")), "network_map",
			   network_map, "disks", disks, "xml", xml);
	if (record == NULL) {
		rc = FERRY_ERR_NO_MEMORY;
		goto out;
	}
	rc = cutover_record_store(site->catalog, record, "primary");
	/* The record travels to the replica site now, so that a failover run there works when
	 * this site is gone. */
	if (rc == 0)
		rc = cutover_site_client(site->catalog, site_name, &client);
	if (rc == 0)
		rc = api_client_json(client, "POST", "/v1/vms/receive", record, NULL);
	if (rc < 0)
		goto out;
	catalog_event_add(site->catalog, "info", name, "VM protected in group %s, %zu disk(s)",
			  group_name, json_array_size(disks));
	*record_out = json_incref(record);
out:
	api_client_free(client);
	json_decref(record);
	json_decref(disks);
	free(xml);
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
	return rc;
}

static const char *const cutover_record_portable_keys[] = {
	"name",	 "uri",		"dest_uri", "group", "site", "order",
	"delay", "network_map", "disks",    "xml",   NULL};

static bool
cutover_record_key_portable(const char *key)
{
	for (int i = 0; cutover_record_portable_keys[i]; i++)
		if (strcmp(key, cutover_record_portable_keys[i]) == 0)
			return true;
	return false;
}

static int
cutover_record_keys_check(json_t *record)
{
	const char *key;
	json_t *value;

	json_object_foreach(record, key, value)
	{
		(void)value;
		if (!cutover_record_key_portable(key))
			return ferry_error_set(FERRY_ERR_INVALID,
					       "unknown key '%.64s' in the VM record", key);
	}
	return 0;
}

int
cutover_vm_receive(const struct cutover_site *site, json_t *record)
{
	const char *name = cutover_text(record, "name");
	char dest_uri[CUTOVER_LIBVIRT_URI_MAX + 1];
	int rc;

	if (!util_volume_name_valid(name) || !json_is_string(json_object_get(record, "xml")) ||
	    !json_is_array(json_object_get(record, "disks")) || !cutover_text(record, "group")[0])
		return ferry_error_set(FERRY_ERR_INVALID,
				       "a VM record needs a valid name, its xml, disks and group");
	/* A record from a peer holds only what a primary sends: the keys this site keeps about
	 * its own runs (promoted_point, migrated, ...) are never taken from the other side. */
	rc = cutover_record_keys_check(record);
	if (rc < 0)
		return ferry_error_set(rc, "VM %s: %s", name, ferry_error_message());
	/* This site opens dest_uri at a failover, and defines the XML: both must be allowed here,
	 * before anything is stored. */
	rc = cutover_virt_resolve(cutover_text(record, "dest_uri"), dest_uri, sizeof(dest_uri));
	if (rc == 0)
		rc = cutover_domain_check(cutover_text(record, "xml"));
	if (rc < 0) {
		char cause[600];

		snprintf(cause, sizeof(cause), "%s", ferry_error_message());
		return ferry_error_set(rc, "VM %s: %s", name, cause);
	}
	json_object_set_new(record, "dest_uri", json_string(dest_uri));
	{
		/* A VM that a failover or migration brought up here runs from these images now:
		 * the old primary's view of it must not replace what reprotect will need. */
		json_t *existing = NULL;
		int64_t promoted = 0;

		if (cutover_record_load(site->catalog, name, &existing) == 0)
			promoted = json_integer_value(json_object_get(existing, "promoted_point"));
		json_decref(existing);
		if (promoted > 0)
			return ferry_error_set(
				FERRY_ERR_CONFLICT,
				"VM %s runs at this site from point %lld since a "
				"failover or migration; its definition from the other "
				"site is refused (ferry reprotect reverses the direction)",
				name, (long long)promoted);
	}
	return cutover_record_store(site->catalog, record, "replica");
}

/* ferry vm unprotect DOMAIN (primary site): the VM's disks stop replicating, its record goes
 * at both sites. Refused while a run is in progress, or where the VM is not the primary. */
int
cutover_vm_unprotect(const struct cutover_site *site, json_t *request, json_t **reply)
{
	const char *name = cutover_text(request, "name");
	struct api_client *client = NULL;
	json_t *record = NULL, *disk;
	bool replica_forgot = false;
	char role[16] = "";
	char *text = NULL;
	size_t i;
	int rc;

	*reply = NULL;
	if (!util_volume_name_valid(name))
		return ferry_error_set(FERRY_ERR_INVALID, "give the VM's 'name'");
	if (cutover_runs_active() > 0)
		return ferry_error_set(FERRY_ERR_CONFLICT,
				       "a cutover run is in progress: wait for it to end (or ferry "
				       "run abort it), then unprotect %s",
				       name);
	rc = catalog_vm_get(site->catalog, name, &text, role);
	free(text);
	if (rc == 0 && strcmp(role, "primary") != 0)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "%s is a replica here: unprotect it at the site that runs it "
				     "(its primary)",
				     name);
	if (rc == 0)
		rc = cutover_record_load(site->catalog, name, &record);
	if (rc < 0)
		goto out;
	/* The replica site forgets it first: were it unreachable, nothing here has changed. */
	rc = cutover_site_client(site->catalog, cutover_text(record, "site"), &client);
	if (rc == 0) {
		json_t *forget = json_pack("{s:s}", "name", name);

		rc = api_client_json(client, "POST", "/v1/vms/forget", forget, NULL);
		json_decref(forget);
	}
	if (rc == FERRY_ERR_NOT_FOUND)
		rc = 0; /* it never had it, or forgot it already */
	if (rc < 0) {
		char cause[800];

		snprintf(cause, sizeof(cause), "%s", ferry_error_message());
		rc = ferry_error_set(
			rc,
			"%s stays protected: replica site %s could not forget it (%s); "
			"try again once it answers",
			name, cutover_text(record, "site"), cause);
		goto out;
	}
	replica_forgot = true;
	json_array_foreach(json_object_get(record, "disks"), i, disk)
	{
		const char *source = cutover_text(disk, "source");

		if (repl_protection_remove(site->catalog, source, NULL, 0) < 0)
			log_warn("VM %s: disk %s: %s", name, source, ferry_error_message());
	}
	rc = catalog_vm_remove(site->catalog, name);
	if (rc == 0) {
		catalog_event_add(site->catalog, "info", name,
				  "VM unprotected: %zu disk(s) no longer replicated",
				  json_array_size(json_object_get(record, "disks")));
		*reply = json_pack("{s:s, s:b, s:I}", "name", name, "replica_forgot",
				   replica_forgot, "disks",
				   (json_int_t)json_array_size(json_object_get(record, "disks")));
	}
out:
	api_client_free(client);
	json_decref(record);
	return rc;
}

/* The replica site's side: the peer's record goes, unless the VM runs here now. */
int
cutover_vm_forget(const struct cutover_site *site, json_t *request, json_t **reply)
{
	const char *name = cutover_text(request, "name");
	json_t *record = NULL;
	int rc;

	*reply = NULL;
	rc = cutover_record_load(site->catalog, name, &record);
	if (rc == 0 && json_integer_value(json_object_get(record, "promoted_point")) > 0)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "%s runs at this site since a failover or migration: it is "
				     "not unprotected from the other site",
				     name);
	if (rc == 0)
		rc = catalog_vm_remove(site->catalog, name);
	if (rc == 0) {
		catalog_event_add(site->catalog, "info", name,
				  "the VM's record is gone: its primary unprotected it");
		*reply = json_pack("{s:s, s:b}", "name", name, "forgotten", 1);
	}
	json_decref(record);
	return rc;
}

/* ---- keeping the stored definitions current (primary site) ---- */

static pthread_mutex_t cutover_refresh_lock = PTHREAD_MUTEX_INITIALIZER;

static int
cutover_refresh_collect(const char *name, const char *role, const char *group, const char *record,
			void *context)
{
	json_t *parsed;

	(void)name;
	(void)group;
	if (strcmp(role, "primary") != 0)
		return 0;
	parsed = json_loads(record, 0, NULL);
	if (parsed && json_object_get(parsed, "migrated") == NULL)
		json_array_append(context, parsed);
	json_decref(parsed);
	return 0;
}

/* One VM: registered again when libvirt's definition differs from the stored one, or when the
 * last one could not be sent. Returns 1 when it changed, 0 when not, or a negative error. */
static int
cutover_refresh_one(const struct cutover_site *site, json_t *record)
{
	const char *name = cutover_text(record, "name"), *uri = cutover_text(record, "uri");
	bool unsent = json_is_true(json_object_get(record, "unsent"));
	virConnectPtr connection = NULL;
	virDomainPtr domain = NULL;
	json_t *request = NULL, *stored = NULL;
	char *xml = NULL;
	int rc;

	/* A VM that cannot be read now (libvirt down, domain undefined) keeps its definition. */
	if (cutover_virt_open(uri, &connection) < 0)
		return 0;
	rc = cutover_virt_domain(connection, uri, name, &domain);
	if (rc == 0)
		rc = cutover_virt_domain_xml(domain, name, &xml);
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
	if (rc < 0 || (!unsent && strcmp(xml, cutover_text(record, "xml")) == 0)) {
		free(xml);
		return 0;
	}
	free(xml);
	pthread_mutex_lock(&cutover_refresh_lock);
	{
		/* A run owns the records now, or one changed this VM's role since the list was
		 * read (a reprotect made it a replica here): the next pass looks again. */
		char role[16] = "", *text = NULL;

		if (cutover_runs_active() > 0 ||
		    catalog_vm_get(site->catalog, name, &text, role) < 0 ||
		    strcmp(role, "primary") != 0 || strstr(text, "\"migrated\"") != NULL) {
			free(text);
			pthread_mutex_unlock(&cutover_refresh_lock);
			return 0;
		}
		free(text);
	}
	request = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:O, s:O}", "name", name, "uri", uri,
			    "dest_uri", cutover_text(record, "dest_uri"), "group",
			    cutover_text(record, "group"), "site", cutover_text(record, "site"),
			    "order", json_object_get(record, "order"), "delay",
			    json_object_get(record, "delay"), "network_map",
			    json_object_get(record, "network_map"));
	rc = request ? cutover_vm_protect(site, request, &stored) : FERRY_ERR_NO_MEMORY;
	if (rc == 0) {
		catalog_event_add(site->catalog, "info", name,
				  "the domain's definition changed in libvirt: stored again and "
				  "sent to site %s",
				  cutover_text(record, "site"));
		rc = 1;
	} else {
		json_t *kept = NULL;
		char message[1024];

		snprintf(message, sizeof(message), "%s", ferry_error_message());
		/* protect stores before it sends: mark the record so that it is sent again. */
		if (cutover_record_load(site->catalog, name, &kept) == 0) {
			json_object_set_new(kept, "unsent", json_true());
			cutover_record_store(site->catalog, kept, "primary");
		}
		json_decref(kept);
		if (!unsent)
			catalog_event_add(site->catalog, "warn", name,
					  "the domain's definition changed but could not be "
					  "registered again (%s); ferryd retries",
					  message);
	}
	pthread_mutex_unlock(&cutover_refresh_lock);
	json_decref(stored);
	json_decref(request);
	return rc;
}

int
cutover_vm_refresh(const struct cutover_site *site)
{
	json_t *records = json_array(), *record;
	size_t i;
	int changed = 0, rc;

	if (records == NULL)
		return FERRY_ERR_NO_MEMORY;
	rc = catalog_vm_list(site->catalog, NULL, cutover_refresh_collect, records);
	json_array_foreach(records, i, record) if (rc >= 0)
	{
		int one = cutover_refresh_one(site, record);

		if (one > 0)
			changed++;
	}
	json_decref(records);
	return rc < 0 ? rc : changed;
}

struct cutover_refresher {
	struct cutover_site site;
	int interval_s;
	bool stop;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
};

static void *
cutover_refresher_main(void *argument)
{
	struct cutover_refresher *refresher = argument;

	pthread_mutex_lock(&refresher->lock);
	while (!refresher->stop) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += refresher->interval_s;
		while (!refresher->stop &&
		       pthread_cond_timedwait(&refresher->wake, &refresher->lock, &until) == 0)
			;
		if (refresher->stop)
			break;
		pthread_mutex_unlock(&refresher->lock);
		cutover_vm_refresh(&refresher->site);
		pthread_mutex_lock(&refresher->lock);
	}
	pthread_mutex_unlock(&refresher->lock);
	return NULL;
}

struct cutover_refresher *
cutover_refresher_start(const struct cutover_site *site, int interval_s)
{
	struct cutover_refresher *refresher = calloc(1, sizeof(*refresher));

	if (refresher == NULL)
		return NULL;
	refresher->site = *site;
	refresher->interval_s = interval_s > 0 ? interval_s : 30;
	pthread_mutex_init(&refresher->lock, NULL);
	pthread_cond_init(&refresher->wake, NULL);
	if (pthread_create(&refresher->thread, NULL, cutover_refresher_main, refresher) != 0) {
		free(refresher);
		ferry_error_set(FERRY_ERR_INTERNAL, "cannot start the VM definition refresher");
		return NULL;
	}
	return refresher;
}

void
cutover_refresher_stop(struct cutover_refresher *refresher)
{
	if (refresher == NULL)
		return;
	pthread_mutex_lock(&refresher->lock);
	refresher->stop = true;
	pthread_cond_signal(&refresher->wake);
	pthread_mutex_unlock(&refresher->lock);
	pthread_join(refresher->thread, NULL);
	pthread_mutex_destroy(&refresher->lock);
	pthread_cond_destroy(&refresher->wake);
	free(refresher);
}

/* ---- activation at the replica site: failover, test failover, end of a cold migration ---- */

struct cutover_vm_list {
	json_t *records; /* sorted by order, then name */
	const char *group;
	const char *name;
};

static int
cutover_vm_collect(const char *name, const char *role, const char *group, const char *record,
		   void *context)
{
	struct cutover_vm_list *list = context;
	json_t *parsed;

	(void)group;
	if (list->name && strcmp(list->name, name) != 0)
		return 0;
	(void)role;
	parsed = json_loads(record, 0, NULL);
	if (parsed)
		json_array_append_new(list->records, parsed);
	return 0;
}

static int
cutover_order_compare(const void *a, const void *b)
{
	json_t *left = *(json_t *const *)a, *right = *(json_t *const *)b;
	json_int_t x = json_integer_value(json_object_get(left, "order"));
	json_int_t y = json_integer_value(json_object_get(right, "order"));

	if (x != y)
		return x < y ? -1 : 1;
	return strcmp(cutover_text(left, "name"), cutover_text(right, "name"));
}

/* The records of request's vm or group, in recovery order. */
static int
cutover_vms_of(struct catalog *catalog, json_t *request, json_t **out)
{
	struct cutover_vm_list list = {json_array(), NULL, NULL};
	const char *name = cutover_text(request, "vm"), *group = cutover_text(request, "group");
	json_t **items;
	size_t count;
	int rc;

	list.name = name[0] ? name : NULL;
	rc = catalog_vm_list(catalog, group[0] ? group : NULL, cutover_vm_collect, &list);
	count = json_array_size(list.records);
	if (rc == 0 && count == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no protected VM %s%s at this site; register it with ferry vm "
				     "protect at the primary site",
				     name[0] ? name : "in group ", name[0] ? "" : group);
	if (rc < 0) {
		json_decref(list.records);
		return rc;
	}
	items = calloc(count, sizeof(*items));
	if (items == NULL) {
		json_decref(list.records);
		return FERRY_ERR_NO_MEMORY;
	}
	for (size_t i = 0; i < count; i++)
		items[i] = json_incref(json_array_get(list.records, i));
	qsort(items, count, sizeof(*items), cutover_order_compare);
	json_array_clear(list.records);
	for (size_t i = 0; i < count; i++)
		json_array_append_new(list.records, items[i]);
	free(items);
	*out = list.records;
	return 0;
}

/* Destroys the VM at its primary site when that site answers (fencing); never fails. */
static void
cutover_fence(struct cutover_run *run, json_t *record)
{
	const char *name = cutover_text(record, "name"), *uri = cutover_text(record, "uri");
	virConnectPtr connection = NULL;
	virDomainPtr domain = NULL;
	int seq = cutover_step_begin(run, "fence %s at the primary site", name);

	if (cutover_virt_open(uri, &connection) < 0) {
		cutover_step_end(run, seq, 0, "primary site unreachable, not fenced: %s",
				 ferry_error_message());
		return;
	}
	if (cutover_virt_domain(connection, uri, name, &domain) < 0)
		cutover_step_end(run, seq, 0, "not defined at %s", uri);
	else if (virDomainIsActive(domain) == 1 && virDomainDestroy(domain) == 0)
		cutover_step_end(run, seq, 0, "destroyed at %s", uri);
	else
		cutover_step_end(run, seq, 0, "not running at %s", uri);
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
}

static void
cutover_replica_location(const struct cutover_site *site, json_t *disk, char *out, size_t size)
{
	snprintf(out, size, "rbd:%s/%s", site->replica_pool, cutover_text(disk, "replica"));
}

#define CUTOVER_POINTS_MAX 1024

/* The points all of one VM's disks hold (they share one RBD group snapshot each time), and
 * the time of the oldest newest one, for the RPO. */
static int
cutover_vm_points(struct cutover_run *run, json_t *record, int64_t *common, size_t *common_count,
		  int64_t *point_time)
{
	int64_t *points = calloc(CUTOVER_POINTS_MAX, sizeof(*points));
	bool first = true;
	json_t *disk;
	size_t j;
	int rc = 0;

	if (points == NULL)
		return FERRY_ERR_NO_MEMORY;
	*common_count = 0;
	*point_time = 0;
	json_array_foreach(json_object_get(record, "disks"), j, disk)
	{
		int64_t newest_time = 0;
		size_t count = 0, kept = 0;
		char location[600];

		cutover_replica_location(run->site, disk, location, sizeof(location));
		rc = repl_rbd_points(location, points, CUTOVER_POINTS_MAX, &count, &newest_time);
		if (rc < 0)
			break;
		if (count == 0) {
			rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
					     "%s has no committed point yet: nothing to fail over "
					     "to",
					     location);
			break;
		}
		if (*point_time == 0 || newest_time < *point_time)
			*point_time = newest_time;
		if (first) {
			memcpy(common, points, count * sizeof(points[0]));
			*common_count = count;
			first = false;
			continue;
		}
		for (size_t c = 0; c < *common_count; c++)
			for (size_t k = 0; k < count; k++)
				if (points[k] == common[c]) {
					common[kept++] = common[c];
					break;
				}
		*common_count = kept;
		if (kept == 0) {
			rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
					     "%s holds none of the points the other disks of VM %s "
					     "hold (see their snapshots ferry-N): no instant is "
					     "common to them all",
					     location, cutover_text(record, "name"));
			break;
		}
	}
	free(points);
	return rc;
}

static bool
cutover_holds(const int64_t *points, size_t count, int64_t point)
{
	for (size_t k = 0; k < count; k++)
		if (points[k] == point)
			return true;
	return false;
}

/* Picks the point each VM comes up from: the newest one every disk of every VM holds (or the
 * requested one, which all must hold). A VM that joined its group moments before the primary
 * was lost may share none with the rest (its first point had landed, theirs not yet): then the
 * point most VMs share is theirs, and a VM without it comes up from its own newest point, all
 * its disks at one instant still, and the run says so; refusing would leave it down. */
struct cutover_vm_choice {
	int64_t point;	    /* the point the VM comes up from */
	int64_t point_time; /* for its RPO */
	bool shares;	    /* at the point the group shares */
};

static int
cutover_choose_points(struct cutover_run *run, json_t *vms, int64_t wanted,
		      struct cutover_vm_choice *choices)
{
	size_t vm_count = json_array_size(vms), best_count = 0, apart = 0, i;
	int64_t(*sets)[CUTOVER_POINTS_MAX] = calloc(vm_count + 1, sizeof(*sets));
	size_t *set_counts = calloc(vm_count + 1, sizeof(*set_counts));
	int64_t best = 0;
	char apart_names[512] = "";
	json_t *record;
	int rc = 0, seq = cutover_step_begin(run, "choose the point");

	if (sets == NULL || set_counts == NULL) {
		rc = FERRY_ERR_NO_MEMORY;
		goto out;
	}
	json_array_foreach(vms, i, record)
	{
		rc = cutover_vm_points(run, record, sets[i], &set_counts[i],
				       &choices[i].point_time);
		if (rc < 0)
			goto out;
	}
	if (wanted != 0) {
		json_array_foreach(vms, i,
				   record) if (rc == 0 &&
					       !cutover_holds(sets[i], set_counts[i], wanted)) rc =
			ferry_error_set(FERRY_ERR_NOT_FOUND,
					"point %lld is not held by every disk (not by those of "
					"%s); see their snapshots ferry-N for the points kept",
					(long long)wanted, cutover_text(record, "name"));
		best = wanted;
	} else {
		/* Candidates are the points of any VM; the one most VMs hold wins, the newer on
		 * a tie. When one is common to all, that is the newest common point. */
		for (i = 0; i < vm_count; i++)
			for (size_t k = 0; k < set_counts[i]; k++) {
				int64_t candidate = sets[i][k];
				size_t holders = 0;

				for (size_t other = 0; other < vm_count; other++)
					holders += cutover_holds(sets[other], set_counts[other],
								 candidate);
				if (holders > best_count ||
				    (holders == best_count && candidate > best)) {
					best_count = holders;
					best = candidate;
				}
			}
	}
	if (rc < 0)
		goto out;
	json_array_foreach(vms, i, record)
	{
		choices[i].shares = cutover_holds(sets[i], set_counts[i], best);
		choices[i].point = best;
		if (choices[i].shares)
			continue;
		choices[i].point = 0;
		for (size_t k = 0; k < set_counts[i]; k++)
			if (sets[i][k] > choices[i].point)
				choices[i].point = sets[i][k];
		apart++;
		snprintf(apart_names + strlen(apart_names),
			 sizeof(apart_names) - strlen(apart_names), "%s%s at %lld",
			 apart > 1 ? ", " : "", cutover_text(record, "name"),
			 (long long)choices[i].point);
	}
	if (apart > 0)
		log_warn("run %" PRId64
			 ": no point is common to all %zu VMs; %zu come up from point "
			 "%lld, and from their own newest point: %s",
			 run->id, vm_count, vm_count - apart, (long long)best, apart_names);
out:
	free(sets);
	free(set_counts);
	if (rc < 0)
		return cutover_step_end(run, seq, rc, NULL);
	if (apart > 0)
		return cutover_step_end(run, seq, 0,
					"point %lld for %zu of %zu VMs; no point is common to all: "
					"%s (its own newest, not the same instant as the rest)",
					(long long)best, vm_count - apart, vm_count, apart_names);
	return cutover_step_end(run, seq, 0, "point %lld", (long long)best);
}

/* Rewrites xml (a domain of record) for this site: disks onto images, this site's Ceph. */
static int
cutover_remap_here(const struct cutover_site *site, json_t *record, json_t *images, bool isolate,
		   const char *xml, char **out)
{
	char host[256], port[16];
	int rc;

	rc = cutover_ceph_mon(site->ceph_conf ? site->ceph_conf : "", host, sizeof(host), port,
			      sizeof(port));
	if (rc == 0)
		rc = cutover_xml_remap(
			xml,
			&(struct cutover_remap){
				.images = images,
				.mon_host = host,
				.mon_port = port,
				.ceph_conf = site->ceph_conf,
				.network_map = json_object_get(record, "network_map"),
				.isolate = isolate,
			},
			out);
	/* What this site's libvirt is given to define must pass the allow-list, whoever sent
	 * it: a record stored before the check existed too. */
	if (rc == 0 && (rc = cutover_domain_check(*out)) < 0) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

/* The replica images of record's disks at this site: {"vda": "POOL/IMAGE"}. */
static json_t *
cutover_replica_images(const struct cutover_site *site, json_t *record)
{
	json_t *images = json_object(), *disk;
	char image[400];
	size_t i;

	json_array_foreach(json_object_get(record, "disks"), i, disk)
	{
		snprintf(image, sizeof(image), "%s/%s", site->replica_pool,
			 cutover_text(disk, "replica"));
		json_object_set_new(images, cutover_text(disk, "target"), json_string(image));
	}
	return images;
}

int
cutover_vm_remap(const struct cutover_site *site, json_t *request, json_t **reply)
{
	const char *name = cutover_text(request, "name");
	json_t *record = NULL, *images = NULL;
	char *xml = NULL, *persistent = NULL;
	int rc;

	*reply = NULL;
	rc = cutover_record_load(site->catalog, name, &record);
	if (rc == 0 && (!json_is_string(json_object_get(request, "xml")) ||
			!json_is_string(json_object_get(request, "persistent_xml"))))
		rc = ferry_error_set(FERRY_ERR_INVALID, "give the 'xml' and 'persistent_xml'");
	if (rc < 0)
		goto out;
	images = cutover_replica_images(site, record);
	rc = cutover_remap_here(site, record, images, false, cutover_text(request, "xml"), &xml);
	if (rc == 0)
		rc = cutover_remap_here(site, record, images, false,
					cutover_text(request, "persistent_xml"), &persistent);
	if (rc == 0)
		*reply = json_pack("{s:s, s:s}", "xml", xml, "persistent_xml", persistent);
out:
	free(xml);
	free(persistent);
	json_decref(images);
	json_decref(record);
	return rc;
}

int
cutover_vm_promote(const struct cutover_site *site, const char *name, int64_t run_id, int64_t point)
{
	json_t *record = NULL, *disk;
	size_t i;
	int rc = cutover_record_load(site->catalog, name, &record);

	if (rc < 0)
		return rc;
	json_array_foreach(json_object_get(record, "disks"), i, disk) if (rc == 0) rc =
		catalog_promoted_put(site->catalog, cutover_text(disk, "replica"), run_id);
	/* The point the VM runs on from here: the last one both sites share (reprotect). */
	if (rc == 0 && point > 0) {
		json_object_set_new(record, "promoted_point", json_integer(point));
		rc = cutover_record_store(site->catalog, record, "replica");
	}
	json_decref(record);
	return rc;
}

static int
cutover_define_start(struct cutover_run *run, json_t *record, json_t *images, bool isolate,
		     bool start)
{
	const char *name = cutover_text(record, "name"), *uri = cutover_text(record, "dest_uri");
	char *xml = NULL;
	virConnectPtr connection = NULL;
	virDomainPtr domain = NULL;
	int rc, seq = cutover_step_begin(run, "define %s at %s", name, uri);

	rc = cutover_remap_here(run->site, record, images, isolate, cutover_text(record, "xml"),
				&xml);
	if (rc == 0)
		rc = cutover_virt_open(uri, &connection);
	if (rc == 0) {
		domain = virDomainDefineXML(connection, xml);
		if (domain == NULL)
			rc = ferry_error_set(FERRY_ERR_IO, "cannot define %s at %s: %s", name, uri,
					     cutover_virt_message());
	}
	cutover_step_end(run, seq, rc, "defined with its disks on this site's replicas");
	if (rc < 0 || !start)
		goto out;
	seq = cutover_step_begin(run, "start %s", name);
	if (virDomainIsActive(domain) != 1 && virDomainCreate(domain) < 0)
		rc = ferry_error_set(FERRY_ERR_IO, "cannot start %s at %s: %s", name, uri,
				     cutover_virt_message());
	cutover_step_end(run, seq, rc, "running at %s", uri);
out:
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
	free(xml);
	return rc;
}

/* Failover, test failover, or the last part of a cold migration: brings the VMs up here from
 * one point. mode: "failover", "failover-test" or "activate". */
static int
cutover_activate(struct cutover_run *run, json_t *request)
{
	bool test = strcmp(run->kind, "failover-test") == 0;
	bool fence = strcmp(run->kind, "failover") == 0;
	struct cutover_vm_choice *choices = NULL;
	json_t *vms = NULL, *record, *disk;
	size_t i, j;
	int rc, seq;

	seq = cutover_step_begin(run, "find the VMs");
	rc = cutover_vms_of(run->site->catalog, request, &vms);
	cutover_step_end(run, seq, rc, "%zu VM(s)", vms ? json_array_size(vms) : 0);
	if (rc < 0)
		return rc;
	if (run->site->ceph_conf == NULL) {
		rc = ferry_error_set(FERRY_ERR_INVALID,
				     "this site has no Ceph settings (--ceph-conf), so it keeps no "
				     "replicas to bring VMs up from");
		goto out;
	}
	if (fence)
		json_array_foreach(vms, i, record) cutover_fence(run, record);
	choices = calloc(json_array_size(vms) + 1, sizeof(*choices));
	rc = choices ? cutover_choose_points(run, vms,
					     json_integer_value(json_object_get(request, "point")),
					     choices)
		     : FERRY_ERR_NO_MEMORY;
	if (rc < 0)
		goto out;
	json_array_foreach(vms, i, record)
	{
		const char *name = cutover_text(record, "name");
		json_t *images = json_object(), *clones = json_array();
		int64_t point = choices[i].point, point_time = choices[i].point_time;
		char snapshot[32];

		snprintf(snapshot, sizeof(snapshot), "ferry-%lld", (long long)point);
		seq = cutover_step_begin(run, "%s the disks of %s at point %lld",
					 test ? "clone" : "roll back", name, (long long)point);
		json_array_foreach(json_object_get(record, "disks"), j, disk)
		{
			char location[600], clone[300], image[400];

			cutover_replica_location(run->site, disk, location, sizeof(location));
			repl_receiver_release(run->site->receiver, cutover_text(disk, "replica"));
			if (test) {
				snprintf(clone, sizeof(clone), "%s-test-%lld",
					 cutover_text(disk, "replica"), (long long)run->id);
				rc = repl_rbd_clone(location, snapshot, clone);
				json_array_append_new(clones, json_string(clone));
			} else {
				snprintf(clone, sizeof(clone), "%s", cutover_text(disk, "replica"));
				rc = catalog_promoted_put(run->site->catalog, clone, run->id);
				if (rc == 0)
					rc = repl_rbd_rollback(location, snapshot);
			}
			snprintf(image, sizeof(image), "%s/%s", run->site->replica_pool, clone);
			json_object_set_new(images, cutover_text(disk, "target"),
					    json_string(image));
			if (rc < 0)
				break;
		}
		cutover_step_end(run, seq, rc, "%zu disk(s)", json_object_size(images));
		if (rc == 0 && !test) {
			json_object_set_new(record, "promoted_point", json_integer(point));
			rc = cutover_record_store(run->site->catalog, record, "replica");
		}
		if (rc == 0 && test) {
			/* Clean-up finds the clones in the record. */
			json_object_set_new(record, "test",
					    json_pack("{s:I, s:I, s:O}", "run", (json_int_t)run->id,
						      "point", (json_int_t)point, "clones",
						      clones));
			rc = cutover_record_store(run->site->catalog, record, "replica");
		}
		if (rc == 0)
			rc = cutover_define_start(run, record, images, test, true);
		json_decref(images);
		json_decref(clones);
		if (rc < 0)
			goto out;
		json_array_append_new(
			run->vms,
			json_pack("{s:s, s:I, s:f, s:I, s:I, s:I, s:I, s:b}", "name", name, "point",
				  (json_int_t)point, "rto_seconds",
				  (double)(util_now_ms() - run->started_ms) / 1000.0, "rto_ms",
				  (json_int_t)(util_now_ms() - run->started_ms), "rpo_seconds",
				  (json_int_t)(point_time ? time(NULL) - point_time : 0), "rpo_ms",
				  (json_int_t)(point_time ? util_now_ms() - point_time * 1000 : 0),
				  "final_delta_bytes", (json_int_t)0, "shares_group_point",
				  choices[i].shares));
		if (json_integer_value(json_object_get(record, "delay")) > 0) {
			seq = cutover_step_begin(
				run, "wait %lld s before the next VM",
				(long long)json_integer_value(json_object_get(record, "delay")));
			sleep((unsigned)json_integer_value(json_object_get(record, "delay")));
			cutover_step_end(run, seq, 0, NULL);
		}
	}
out:
	free(choices);
	json_decref(vms);
	return rc;
}

/* Removes every trace of test failovers: their domains at the destination and their clones. */
static int
cutover_cleanup(struct cutover_run *run, json_t *request)
{
	json_t *vms = NULL, *record, *test, *clone, *disk;
	size_t i, j;
	int rc, failures = 0, cleaned = 0;

	rc = cutover_vms_of(run->site->catalog, request, &vms);
	if (rc < 0)
		return rc;
	json_array_foreach(vms, i, record)
	{
		const char *name = cutover_text(record, "name"),
			   *uri = cutover_text(record, "dest_uri");
		virConnectPtr connection = NULL;
		virDomainPtr domain = NULL;
		int seq;

		test = json_object_get(record, "test");
		if (test == NULL)
			continue;
		seq = cutover_step_begin(run, "remove test VM %s", name);
		rc = cutover_virt_open(uri, &connection);
		if (rc == 0 && cutover_virt_domain(connection, uri, name, &domain) == 0) {
			if (virDomainIsActive(domain) == 1)
				virDomainDestroy(domain);
			if (virDomainUndefine(domain) < 0)
				rc = ferry_error_set(FERRY_ERR_IO, "cannot undefine %s at %s: %s",
						     name, uri, cutover_virt_message());
			virDomainFree(domain);
		}
		cutover_virt_close(connection);
		json_array_foreach(json_object_get(test, "clones"), j, clone)
		{
			disk = json_array_get(json_object_get(record, "disks"), j);
			if (rc == 0 && disk) {
				char location[600], snapshot[32];
				json_int_t point;

				cutover_replica_location(run->site, disk, location,
							 sizeof(location));
				point = json_integer_value(json_object_get(test, "point"));
				snprintf(snapshot, sizeof(snapshot), "ferry-%lld",
					 (long long)point);
				rc = repl_rbd_remove_clone(location, point ? snapshot : "",
							   json_string_value(clone));
			}
		}
		/* Counted before the record's "test" (and test with it) is freed. */
		size_t clones = json_array_size(json_object_get(test, "clones"));

		if (rc == 0) {
			json_object_del(record, "test");
			rc = cutover_record_store(run->site->catalog, record, "replica");
		}
		cutover_step_end(run, seq, rc, "domain and %zu clone(s) removed", clones);
		if (rc < 0)
			failures++;
		else
			cleaned++;
		rc = 0;
	}
	json_decref(vms);
	if (failures)
		return ferry_error_set(FERRY_ERR_IO,
				       "%d test VM(s) could not be removed; see the "
				       "run's steps",
				       failures);
	log_info("run %" PRId64 ": %d test VM(s) removed", run->id, cleaned);
	return 0;
}

/* ---- planned cold migration (primary site) ---- */

struct cutover_progress {
	const char *group;
	int64_t after_ms;
	json_t *disks;
	int64_t bytes_sent;
	int64_t point;
	int done, total;
};

static int
cutover_progress_entry(const struct catalog_protection *protection, void *context)
{
	struct cutover_progress *progress = context;
	json_t *disk;
	size_t i;

	json_array_foreach(progress->disks, i, disk)
	{
		if (strcmp(cutover_text(disk, "source"), protection->source) != 0)
			continue;
		progress->total++;
		if (protection->last_point_ms >= progress->after_ms &&
		    protection->pending_point == 0) {
			progress->done++;
			progress->bytes_sent += protection->last_bytes_sent;
			progress->point = protection->last_point;
		}
	}
	return 0;
}

/* Waits until every disk has a committed point taken after after_ms (the final delta). */
static int
cutover_final_point(struct cutover_run *run, json_t *record, int64_t after_ms, int64_t *point,
		    int64_t *bytes)
{
	const char *group = cutover_text(record, "group");
	int64_t until = util_now_ms() + 600 * 1000;
	unsigned polls = 0;
	int seq = cutover_step_begin(run, "ship the final delta of group %s", group);

	for (;;) {
		struct cutover_progress progress = {
			group, after_ms, json_object_get(record, "disks"), 0, 0, 0, 0};
		int rc;

		/* Polled often: the guest may be frozen meanwhile. */
		if (polls++ % 10 == 0)
			repl_scheduler_request(run->site->scheduler, group);
		rc = catalog_protection_list(run->site->catalog, cutover_progress_entry, &progress);
		if (rc < 0)
			return cutover_step_end(run, seq, rc, NULL);
		if (progress.total == 0)
			return cutover_step_end(
				run, seq,
				ferry_error_set(FERRY_ERR_CONFLICT,
						"the disks of %s are no longer protected here",
						cutover_text(record, "name")),
				NULL);
		if (progress.done == progress.total) {
			*point = progress.point;
			*bytes = progress.bytes_sent;
			return cutover_step_end(run, seq, 0, "point %lld committed, %lld bytes",
						(long long)progress.point,
						(long long)progress.bytes_sent);
		}
		if (util_now_ms() > until)
			return cutover_step_end(
				run, seq,
				ferry_error_set(FERRY_ERR_NETWORK,
						"the final delta did not commit within 10 minutes; "
						"see ferry status"),
				NULL);
		nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
	}
}

/* Starts the activation of a VM at the replica site (the peer route, so that a peer token
 * suffices) and waits for its end. */
static int
cutover_remote_run(struct cutover_run *run, const char *site_name, json_t *request, json_t **result)
{
	struct api_client *client = NULL;
	json_t *reply = NULL;
	char path[64];
	int rc;

	*result = NULL;
	rc = cutover_site_client(run->site->catalog, site_name, &client);
	if (rc == 0)
		rc = api_client_json(client, "POST", "/v1/vms/activate", request, &reply);
	if (rc < 0)
		goto out;
	snprintf(path, sizeof(path), "/v1/runs/%lld",
		 (long long)json_integer_value(json_object_get(reply, "run")));
	for (;;) {
		const char *status;

		json_decref(reply);
		reply = NULL;
		rc = api_client_json(client, "GET", path, NULL, &reply);
		if (rc < 0)
			goto out;
		status = cutover_text(reply, "status");
		if (strcmp(status, "running") != 0) {
			if (strcmp(status, "completed") != 0)
				rc = ferry_error_set(FERRY_ERR_REMOTE, "run %s at site %s %s: %s",
						     path + 9, site_name, status,
						     cutover_text(reply, "reason"));
			break;
		}
		nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);
	}
	*result = json_incref(reply);
out:
	json_decref(reply);
	api_client_free(client);
	return rc;
}

/* After the switch: the source's disks leave replication and their RBD group; the record
 * says where the VM went. */
static void
cutover_retire_disks(struct cutover_run *run, json_t *record, int64_t point)
{
	json_t *disk;
	size_t i;

	json_array_foreach(json_object_get(record, "disks"), i, disk)
	{
		const char *source = cutover_text(disk, "source");

		if (strncmp(source, "rbd:", 4) != 0)
			continue;
		/* The image stays as it was at the final point, which the other site holds too:
		 * kept as a snapshot of its own, a later reprotect ships back only what changed
		 * since. */
		if (repl_protection_remove(run->site->catalog, source,
					   cutover_text(record, "group"), point) < 0)
			log_warn("%s: %s", source, ferry_error_message());
	}
	json_object_set_new(record, "migrated", json_integer(run->id));
	cutover_record_store(run->site->catalog, record, "primary");
}

static int cutover_check_destination(virConnectPtr destination, const char *uri, const char *name,
				     const char *xml);

/* Every disk of the VM has a committed point at the replica site, its replication works and
 * lags at most max_lag_s (0: three intervals of its group and a minute): else the final delta
 * could not land, or would take long while the guest waits. */
static int
cutover_check_replicas(const struct cutover_site *site, json_t *record, int64_t max_lag_s)
{
	const char *name = cutover_text(record, "name");
	struct catalog_group group;
	json_t *disk;
	size_t i;

	if (max_lag_s <= 0)
		max_lag_s =
			catalog_group_get(site->catalog, cutover_text(record, "group"), &group) == 0
				? 3 * group.interval_s + 60
				: 300;
	json_array_foreach(json_object_get(record, "disks"), i, disk)
	{
		struct catalog_protection protection;
		const char *source = cutover_text(disk, "source");
		int64_t lag_s;

		if (catalog_protection_get(site->catalog, source, &protection) < 0)
			return ferry_error_set(FERRY_ERR_CONFLICT,
					       "disk %s of %s is not replicated from here; protect "
					       "the VM again (ferry vm protect)",
					       source, name);
		if (protection.last_point < 1)
			return ferry_error_set(FERRY_ERR_CONFLICT,
					       "disk %s of %s has no committed point at site %s "
					       "yet; wait for its first point (ferry status)",
					       source, name, protection.site);
		if (strcmp(protection.state, "error") == 0)
			return ferry_error_set(
				FERRY_ERR_CONFLICT,
				"replication of disk %s of %s to site %s fails (%s); "
				"fix that first (ferry status)",
				source, name, protection.site, protection.reason);
		lag_s = (util_now_ms() - protection.last_point_ms) / 1000;
		if (lag_s > max_lag_s)
			return ferry_error_set(FERRY_ERR_CONFLICT,
					       "disk %s of %s lags %lld s behind at site %s, more "
					       "than %lld s (--max-lag); let replication catch up "
					       "(ferry status) or allow more with --max-lag",
					       source, name, (long long)lag_s, protection.site,
					       (long long)max_lag_s);
	}
	return 0;
}

static int
cutover_migrate_cold(struct cutover_run *run, json_t *request)
{
	const char *name = cutover_text(request, "vm");
	json_int_t timeout_s = json_integer_value(json_object_get(request, "shutdown_timeout"));
	bool force = json_is_true(json_object_get(request, "force"));
	virConnectPtr connection = NULL, destination = NULL;
	virDomainPtr domain = NULL;
	json_t *record = NULL, *remote = NULL;
	int64_t off_ms = 0, point = 0, bytes = 0, stopped_ms;
	bool was_running = false, restart = false;
	const char *uri;
	int rc, seq;

	seq = cutover_step_begin(run, "check %s, the destination and the replicas", name);
	rc = cutover_record_load(run->site->catalog, name, &record);
	uri = record ? cutover_text(record, "uri") : "";
	if (rc == 0)
		rc = cutover_check_replicas(
			run->site, record, json_integer_value(json_object_get(request, "max_lag")));
	if (rc == 0)
		rc = cutover_virt_open(uri, &connection);
	if (rc == 0)
		rc = cutover_virt_domain(connection, uri, name, &domain);
	if (rc == 0)
		rc = cutover_virt_open(cutover_text(record, "dest_uri"), &destination);
	if (rc == 0) {
		/* Refused here, while the VM still runs: after the shutdown it would not start.
		 * The saved definition is what the destination will start. */
		char *xml = virDomainGetXMLDesc(domain,
						VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_INACTIVE);

		rc = xml ? cutover_check_destination(destination, cutover_text(record, "dest_uri"),
						     name, xml)
			 : ferry_error_set(FERRY_ERR_IO, "cannot read the XML of %s: %s", name,
					   cutover_virt_message());
		free(xml);
	}
	cutover_virt_close(destination);
	cutover_step_end(run, seq, rc, "ready");
	if (rc < 0) {
		run->refused = true;
		goto out;
	}
	/* The point of no return: once asked to shut down, the VM is on its way. */
	if (cutover_abort_close(run->id)) {
		rc = cutover_aborted(run, name, uri, "before the shutdown");
		goto out;
	}
	if (timeout_s <= 0)
		timeout_s = 120;
	stopped_ms = util_now_ms();
	was_running = virDomainIsActive(domain) == 1;
	seq = cutover_step_begin(run, "shut %s down (at most %lld s)", name, (long long)timeout_s);
	if (was_running) {
		if (virDomainShutdown(domain) < 0 && !force)
			rc = ferry_error_set(FERRY_ERR_IO, "cannot ask %s to shut down: %s", name,
					     cutover_virt_message());
		if (rc == 0)
			rc = cutover_virt_wait_off(domain, name, timeout_s * 1000);
		if (rc < 0 && force) {
			rc = virDomainDestroy(domain) == 0
				     ? 0
				     : ferry_error_set(FERRY_ERR_IO, "cannot power %s off: %s",
						       name, cutover_virt_message());
			if (rc == 0)
				cutover_step_end(run, seq, 0,
						 "did not shut down in time: powered "
						 "off (--force)");
		} else if (rc < 0) {
			ferry_error_set(rc,
					"%s did not shut down within %lld s and keeps running "
					"here: shut it down from inside, or re-run with --force "
					"to power it off after the timeout",
					name, (long long)timeout_s);
			cutover_step_end(run, seq, rc, NULL);
			goto out;
		} else {
			cutover_step_end(run, seq, 0, "shut off");
		}
	} else {
		cutover_step_end(run, seq, 0, "was not running");
	}
	if (rc < 0)
		goto out;
	restart = was_running;
	off_ms = util_now_ms();
	rc = cutover_final_point(run, record, off_ms, &point, &bytes);
	if (rc < 0)
		goto out;
	seq = cutover_step_begin(run, "start %s at site %s from point %lld", name,
				 cutover_text(record, "site"), (long long)point);
	{
		json_t *activate = json_pack("{s:s, s:s, s:I}", "kind", "activate", "vm", name,
					     "point", (json_int_t)point);

		rc = cutover_remote_run(run, cutover_text(record, "site"), activate, &remote);
		json_decref(activate);
	}
	cutover_step_end(run, seq, rc, "running at %s", cutover_text(record, "dest_uri"));
	if (rc < 0)
		goto out;
	restart = false; /* the switch: from here on the VM lives at the destination */
	json_array_append_new(run->vms, json_pack("{s:s, s:I, s:I, s:I}", "name", name, "point",
						  (json_int_t)point, "downtime_ms",
						  (json_int_t)(util_now_ms() - stopped_ms),
						  "final_delta_bytes", (json_int_t)bytes));
	seq = cutover_step_begin(run, "retire %s at the source", name);
	if (virDomainUndefine(domain) < 0)
		log_warn("%s: cannot undefine at %s: %s", name, uri, cutover_virt_message());
	cutover_retire_disks(run, record, point);
	cutover_step_end(run, seq, 0, "undefined here, disks no longer replicated from here");
out:
	if (restart && domain) {
		/* Before the switch a failure leaves the VM where it was: running at the source. */
		int restart_seq = cutover_step_begin(run, "start %s again at the source", name);
		int saved = ferry_error_last_code();
		char message[1024];

		snprintf(message, sizeof(message), "%s", ferry_error_message());
		cutover_step_end(
			run, restart_seq,
			virDomainCreate(domain) == 0
				? 0
				: ferry_error_set(FERRY_ERR_IO, "%s", cutover_virt_message()),
			"running at %s", uri);
		ferry_error_set(saved, "%s", message);
	}
	json_decref(remote);
	json_decref(record);
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
	return rc;
}

/* ---- planned live migration (primary site) ---- */

/* A site-to-site call that answers JSON. */
static int
cutover_site_call(struct catalog *catalog, const char *site_name, const char *path, json_t *request,
		  json_t **reply)
{
	struct api_client *client = NULL;
	int rc = cutover_site_client(catalog, site_name, &client);

	if (rc == 0)
		rc = api_client_json(client, "POST", path, request, reply);
	api_client_free(client);
	return rc;
}

/* The destination must be able to run the domain as it is: its CPU model and machine type. */
static int
cutover_check_destination(virConnectPtr destination, const char *uri, const char *name,
			  const char *xml)
{
	const char *cpu = strstr(xml, "<cpu"), *cpu_end = cpu ? strstr(cpu, "</cpu>") : NULL;
	const char *machine = strstr(xml, "machine='"), *type = strstr(xml, "<domain type='");
	char machine_name[128] = "", virt_type[32] = "kvm", *capabilities = NULL;
	int rc = 0;

	if (machine)
		sscanf(machine + 9, "%127[^']", machine_name);
	if (type)
		sscanf(type + 14, "%31[^']", virt_type);
	capabilities = virConnectGetDomainCapabilities(
		destination, NULL, NULL, machine_name[0] ? machine_name : NULL, virt_type, 0);
	if (capabilities == NULL)
		return ferry_error_set(
			FERRY_ERR_CONFLICT,
			"%s cannot run %s: no machine type '%s' with '%s' there (%s)", uri, name,
			machine_name, virt_type, cutover_virt_message());
	free(capabilities);
	if (cpu && cpu_end) {
		char *cpu_xml = strndup(cpu, (size_t)(cpu_end - cpu) + 6);
		int compared = cpu_xml ? virConnectCompareHypervisorCPU(destination, NULL, NULL,
									NULL, virt_type, cpu_xml, 0)
				       : VIR_CPU_COMPARE_ERROR;

		if (compared == VIR_CPU_COMPARE_INCOMPATIBLE || compared == VIR_CPU_COMPARE_ERROR)
			rc = ferry_error_set(
				FERRY_ERR_CONFLICT,
				"%s cannot run the CPU of %s (%s); choose a destination "
				"host whose CPU can, or change the VM's CPU model",
				uri, name,
				compared == VIR_CPU_COMPARE_ERROR ? cutover_virt_message()
								  : "incompatible");
		free(cpu_xml);
	}
	return rc;
}

struct cutover_abort {
	virDomainPtr domain;
	int64_t limit_ms;
	bool done;
	bool aborted;
	bool by_operator; /* ferry run abort, not the time limit */
	pthread_mutex_t lock;
	pthread_cond_t wake;
};

/* ferry run abort during the memory copy: the job stops now, the VM runs on at the source. */
static void
cutover_abort_now(void *context)
{
	struct cutover_abort *watch = context;

	pthread_mutex_lock(&watch->lock);
	if (!watch->done && !watch->aborted) {
		watch->aborted = virDomainAbortJob(watch->domain) == 0;
		watch->by_operator = watch->aborted;
	}
	pthread_mutex_unlock(&watch->lock);
}

/* A guest that dirties memory faster than the link carries never converges: after the time
 * limit the migration is aborted and the VM keeps running at the source. */
static void *
cutover_abort_watch(void *argument)
{
	struct cutover_abort *watch = argument;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += watch->limit_ms / 1000;
	pthread_mutex_lock(&watch->lock);
	while (!watch->done)
		if (pthread_cond_timedwait(&watch->wake, &watch->lock, &until) != 0)
			break;
	if (!watch->done && !watch->aborted)
		watch->aborted = virDomainAbortJob(watch->domain) == 0;
	pthread_mutex_unlock(&watch->lock);
	return NULL;
}

struct cutover_link {
	json_t *disks;
	int64_t lag_ms;
	double bytes_per_second;
	double cycle_seconds;
	int64_t bytes_changed;
};

static int
cutover_link_entry(const struct catalog_protection *protection, void *context)
{
	struct cutover_link *link = context;
	json_t *disk;
	size_t i;

	json_array_foreach(link->disks, i, disk)
	{
		if (strcmp(cutover_text(disk, "source"), protection->source) != 0)
			continue;
		if (protection->last_point_ms &&
		    util_now_ms() - protection->last_point_ms > link->lag_ms)
			link->lag_ms = util_now_ms() - protection->last_point_ms;
		if (protection->last_seconds > link->cycle_seconds)
			link->cycle_seconds = protection->last_seconds;
		/* A small cycle's rate says little about the link: only sizeable ones count. */
		if (protection->last_seconds > 0 && protection->last_bytes_sent >= (4 << 20) &&
		    (link->bytes_per_second == 0 ||
		     protection->last_bytes_sent / protection->last_seconds <
			     link->bytes_per_second))
			link->bytes_per_second =
				(double)protection->last_bytes_sent / protection->last_seconds;
		link->bytes_changed += protection->last_bytes_changed;
	}
	return 0;
}

/* --dry-run: predicts a live and a cold migration from the VM's memory and dirty rate, the
 * replication lag and the link rate measured by the last cycles, and says which fits. */
static int
cutover_predict(struct cutover_run *run, json_t *record, virDomainPtr domain, const char *name)
{
	struct cutover_link link = {json_object_get(record, "disks"), 0, 0, 0, 0};
	virDomainStatsRecordPtr *stats = NULL;
	virDomainPtr domains[2] = {domain, NULL};
	virDomainInfo info;
	unsigned long long dirty_mib = 0;
	double rate, memory, dirty, memory_s, live_ms, frozen_ms, cold_ms;
	const char *strategy;
	int seq = cutover_step_begin(run, "predict the migration of %s", name);
	int count;

	catalog_protection_list(run->site->catalog, cutover_link_entry, &link);
	memset(&info, 0, sizeof(info));
	virDomainGetInfo(domain, &info);
	/* The dirty rate is sampled over one second by QEMU. */
	if (virDomainStartDirtyRateCalc(domain, 1, 0) == 0) {
		sleep(2);
		count = virDomainListGetStats(domains, VIR_DOMAIN_STATS_DIRTYRATE, &stats, 0);
		if (count > 0)
			virTypedParamsGetULLong(stats[0]->params, stats[0]->nparams,
						"dirtyrate.megabytes_per_second", &dirty_mib);
		virDomainStatsRecordListFree(stats);
	}
	/* The link rate is what replication reached; 100 MB/s when no cycle was sizeable. */
	rate = link.bytes_per_second > 0 ? link.bytes_per_second : 100e6;
	memory = (double)info.memory * 1024.0;
	dirty = (double)dirty_mib * 1048576.0;
	memory_s = dirty < 0.8 * rate ? memory / (rate - dirty) : -1;
	frozen_ms = 300 + 1000 * link.cycle_seconds;
	live_ms = memory_s < 0 ? -1 : 1000 * link.cycle_seconds + 1000 * memory_s + frozen_ms;
	cold_ms = 1000 * (double)json_integer_value(json_object_get(record, "shutdown_s")) + 30000 +
		  1000 * link.cycle_seconds + 1000;
	strategy = memory_s >= 0 ? "live" : "cold";
	json_array_append_new(
		run->vms,
		json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I}", "name", name,
			  "strategy", strategy, "predicted_total_ms",
			  (json_int_t)(live_ms >= 0 ? live_ms : cold_ms), "predicted_frozen_ms",
			  (json_int_t)(live_ms >= 0 ? frozen_ms : cold_ms),
			  "predicted_cold_downtime_ms", (json_int_t)cold_ms, "memory_bytes",
			  (json_int_t)memory, "dirty_bytes_per_second", dirty,
			  "link_bytes_per_second", rate, "lag_seconds",
			  (json_int_t)(link.lag_ms / 1000), "lag_ms", (json_int_t)link.lag_ms,
			  "final_delta_bytes", (json_int_t)link.bytes_changed));
	return cutover_step_end(run, seq, 0,
				"%s fits: memory %.0f MiB, dirty %.1f MB/s, link %.1f MB/s, lag "
				"%lld s",
				strategy, memory / 1048576.0, dirty / 1e6, rate / 1e6,
				(long long)(link.lag_ms / 1000));
}

static int
cutover_migrate_live(struct cutover_run *run, json_t *request)
{
	const char *name = cutover_text(request, "vm");
	json_int_t max_time = json_integer_value(json_object_get(request, "max_time"));
	json_int_t bandwidth = json_integer_value(json_object_get(request, "bandwidth"));
	const char *on_timeout = cutover_text(request, "on_timeout");
	bool go_cold = false;
	virConnectPtr connection = NULL, destination = NULL;
	virDomainPtr domain = NULL, moved = NULL;
	virTypedParameterPtr params = NULL;
	json_t *record = NULL, *remap = NULL, *reply = NULL;
	char *live_xml = NULL, *persistent_xml = NULL;
	const char *uri = "", *dest_uri = "", *site_name = "";
	int64_t point = 0, bytes = 0, returned_ms = 0, downtime_ms = 0;
	unsigned long long job_downtime = 0;
	int nparams = 0, maxparams = 0, rc, seq;
	struct cutover_abort watch = {.lock = PTHREAD_MUTEX_INITIALIZER,
				      .wake = PTHREAD_COND_INITIALIZER};
	pthread_t watcher;
	unsigned int flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PAUSED |
			     VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE |
			     VIR_MIGRATE_AUTO_CONVERGE;

	seq = cutover_step_begin(run, "check %s, the destination and the replicas", name);
	rc = on_timeout[0] && strcmp(on_timeout, "abort") != 0 && strcmp(on_timeout, "cold") != 0
		     ? ferry_error_set(FERRY_ERR_INVALID,
				       "on_timeout is abort or cold, not '%s' (post-copy would run "
				       "the VM at the destination before its final delta lands)",
				       on_timeout)
		     : cutover_record_load(run->site->catalog, name, &record);
	if (rc == 0) {
		uri = cutover_text(record, "uri");
		dest_uri = cutover_text(record, "dest_uri");
		site_name = cutover_text(record, "site");
		rc = cutover_virt_open(uri, &connection);
	}
	if (rc == 0)
		rc = cutover_virt_domain(connection, uri, name, &domain);
	if (rc == 0 && virDomainIsActive(domain) != 1)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "%s is not running at %s; migrate it with --cold", name, uri);
	if (rc == 0)
		rc = cutover_check_replicas(
			run->site, record, json_integer_value(json_object_get(request, "max_lag")));
	if (rc == 0)
		rc = cutover_virt_open(dest_uri, &destination);
	if (rc == 0) {
		live_xml = virDomainGetXMLDesc(domain,
					       VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_MIGRATABLE);
		persistent_xml = virDomainGetXMLDesc(domain, VIR_DOMAIN_XML_SECURE |
								     VIR_DOMAIN_XML_INACTIVE |
								     VIR_DOMAIN_XML_MIGRATABLE);
		if (live_xml == NULL || persistent_xml == NULL)
			rc = ferry_error_set(FERRY_ERR_IO, "cannot read the XML of %s: %s", name,
					     cutover_virt_message());
	}
	if (rc == 0)
		rc = cutover_check_destination(destination, dest_uri, name, live_xml);
	if (rc == 0) {
		json_t *ask = json_pack("{s:s, s:s, s:s}", "name", name, "xml", live_xml,
					"persistent_xml", persistent_xml);

		rc = cutover_site_call(run->site->catalog, site_name, "/v1/vms/remap", ask, &remap);
		json_decref(ask);
	}
	cutover_step_end(run, seq, rc, "%s can run %s; its replicas are at site %s", dest_uri, name,
			 site_name);
	if (rc < 0) {
		run->refused = true;
		goto out;
	}
	if (json_is_true(json_object_get(request, "dry_run"))) {
		rc = cutover_predict(run, record, domain, name);
		goto out;
	}
	/* Catch up first, so that the final delta, shipped while the guest is frozen, is small. */
	rc = cutover_final_point(run, record, util_now_ms(), &point, &bytes);
	if (rc < 0)
		goto out;
	if (cutover_abort_requested(run->id)) {
		cutover_abort_close(run->id);
		rc = cutover_aborted(run, name, uri, "before the memory copy");
		goto out;
	}

	seq = cutover_step_begin(run, "migrate the memory of %s to %s", name, dest_uri);
	virTypedParamsAddString(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_DEST_XML,
				cutover_text(remap, "xml"));
	virTypedParamsAddString(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_PERSIST_XML,
				cutover_text(remap, "persistent_xml"));
	if (strncmp(dest_uri, "qemu+unix:", 10) == 0 || strstr(dest_uri, "127.0.0.1")) {
		/* Both daemons on one host (a test bed): migrate over loopback. */
		virTypedParamsAddString(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_URI,
					"tcp://127.0.0.1");
		virTypedParamsAddString(&params, &nparams, &maxparams,
					VIR_MIGRATE_PARAM_LISTEN_ADDRESS, "127.0.0.1");
	}
	if (bandwidth > 0) /* MiB/s, for a link the replication shares */
		virTypedParamsAddULLong(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_BANDWIDTH,
					(unsigned long long)bandwidth);
	watch.domain = domain;
	watch.limit_ms = (max_time > 0 ? max_time : 600) * 1000;
	pthread_create(&watcher, NULL, cutover_abort_watch, &watch);
	cutover_abort_job(run->id, cutover_abort_now, &watch);
	rc = virDomainMigrateToURI3(domain, dest_uri, params, (unsigned int)nparams, flags);
	cutover_abort_job(run->id, NULL, NULL);
	pthread_mutex_lock(&watch.lock);
	watch.done = true;
	pthread_cond_signal(&watch.wake);
	pthread_mutex_unlock(&watch.lock);
	pthread_join(watcher, NULL);
	returned_ms = util_now_ms();
	/* The memory has moved (the guest is paused) or the copy stopped: no abort from here. */
	if (cutover_abort_close(run->id) && rc < 0 && watch.by_operator) {
		cutover_step_end(run, seq, 0, "stopped: the operator aborted the run");
		rc = cutover_aborted(run, name, uri, "during the memory copy");
		goto out;
	}
	if (rc < 0 && watch.aborted && strcmp(on_timeout, "cold") == 0 &&
	    virDomainIsActive(domain) == 1) {
		cutover_step_end(run, seq, 0,
				 "did not converge within %lld s: aborted, %s runs at the source; "
				 "moving it cold instead (--on-timeout cold)",
				 (long long)(watch.limit_ms / 1000), name);
		go_cold = true;
		rc = 0;
		goto out;
	}
	if (rc < 0) {
		if (watch.aborted)
			rc = ferry_error_set(FERRY_ERR_IO,
					     "%s did not converge within %lld s and was aborted: "
					     "it keeps running at %s; migrate it with --cold (or "
					     "--on-timeout cold), or give it more time with "
					     "--max-time",
					     name, (long long)(watch.limit_ms / 1000), uri);
		else
			rc = ferry_error_set(FERRY_ERR_IO,
					     "live migration of %s failed; it keeps running at %s "
					     "(%s)",
					     name, uri, cutover_virt_message());
		cutover_step_end(run, seq, rc, NULL);
		goto out;
	}
	cutover_step_end(run, seq, 0, "memory moved; paused at %s, the source QEMU has stopped",
			 dest_uri);
	/* From here the source writes nothing: the final delta is the last word. */
	rc = cutover_final_point(run, record, returned_ms, &point, &bytes);
	if (rc == 0) {
		json_t *ask = json_pack("{s:s, s:I, s:I}", "name", name, "run", (json_int_t)run->id,
					"point", (json_int_t)point);

		seq = cutover_step_begin(run, "promote the replicas of %s", name);
		rc = cutover_site_call(run->site->catalog, site_name, "/v1/vms/promote", ask,
				       &reply);
		cutover_step_end(run, seq, rc, "point %lld is the disks' last word",
				 (long long)point);
		json_decref(ask);
	}
	if (rc < 0) {
		ferry_error_set(rc,
				"%s is paused at %s, but its final delta did not land (%s); do not "
				"resume it by hand: ferry run resume %lld retries",
				name, dest_uri, ferry_error_message(), (long long)run->id);
		goto out;
	}
	seq = cutover_step_begin(run, "resume %s at %s", name, dest_uri);
	rc = cutover_virt_domain(destination, dest_uri, name, &moved);
	if (rc == 0 && virDomainResume(moved) < 0)
		rc = ferry_error_set(FERRY_ERR_IO, "cannot resume %s at %s: %s", name, dest_uri,
				     cutover_virt_message());
	if (rc == 0) {
		virTypedParameterPtr stats = NULL;
		int type, count = 0;

		downtime_ms = util_now_ms() - returned_ms;
		if (virDomainGetJobStats(moved, &type, &stats, &count,
					 VIR_DOMAIN_JOB_STATS_COMPLETED) == 0)
			virTypedParamsGetULLong(stats, count, VIR_DOMAIN_JOB_DOWNTIME,
						&job_downtime);
		virTypedParamsFree(stats, count);
	}
	cutover_step_end(run, seq, rc, "running at %s", dest_uri);
	if (rc < 0)
		goto out;
	json_array_append_new(run->vms, json_pack("{s:s, s:I, s:I, s:I}", "name", name, "point",
						  (json_int_t)point, "frozen_ms",
						  (json_int_t)(downtime_ms + (int64_t)job_downtime),
						  "final_delta_bytes", (json_int_t)bytes));
	seq = cutover_step_begin(run, "retire %s at the source", name);
	cutover_retire_disks(run, record, point);
	cutover_step_end(run, seq, 0, "disks no longer replicated from here");
out:
	virTypedParamsFree(params, nparams);
	free(live_xml);
	free(persistent_xml);
	json_decref(remap);
	json_decref(reply);
	json_decref(record);
	if (moved)
		virDomainFree(moved);
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(destination);
	cutover_virt_close(connection);
	if (go_cold)
		rc = cutover_migrate_cold(run, request);
	return rc;
}

/* ---- reprotect: reversing the direction (at the site the VMs moved to) ---- */

/* record (a VM that now runs here from its replicas) as the other site's replica of it: its
 * disks' sources are the images here, their replicas the images it came from there. */
static json_t *
cutover_record_reversed(const struct cutover_run *run, json_t *record, const char *site_name,
			const char *xml)
{
	const struct cutover_site *site = run->site;
	json_t *reversed = json_deep_copy(record), *disks = json_array(), *disk;
	size_t i;

	json_array_foreach(json_object_get(record, "disks"), i, disk)
	{
		const char *source = cutover_text(disk, "source"), *slash = strchr(source, '/');
		char here[600];

		snprintf(here, sizeof(here), "rbd:%s/%s", site->replica_pool,
			 cutover_text(disk, "replica"));
		json_array_append_new(disks, json_pack("{s:s, s:s, s:s}", "target",
						       cutover_text(disk, "target"), "source", here,
						       "replica", slash ? slash + 1 : source));
	}
	json_object_set_new(reversed, "uri", json_string(cutover_text(record, "dest_uri")));
	json_object_set_new(reversed, "dest_uri", json_string(cutover_text(record, "uri")));
	json_object_set_new(reversed, "site", json_string(site_name));
	json_object_set_new(reversed, "disks", disks);
	{
		/* The networks map back the other way. */
		json_t *map = json_object(), *value;
		const char *key;

		json_object_foreach(json_object_get(record, "network_map"), key,
				    value) if (json_is_string(value))
			json_object_set_new(map, json_string_value(value), json_string(key));
		json_object_set_new(reversed, "network_map", map);
	}
	json_object_set_new(reversed, "xml", json_string(xml));
	json_object_del(reversed, "migrated");
	json_object_del(reversed, "test");
	/* What a resumed reprotect recognises as done, and the point it started from. */
	json_object_set_new(reversed, "reprotected_by", json_integer(run->id));
	json_object_set(reversed, "reprotect_point", json_object_get(record, "promoted_point"));
	json_object_del(reversed, "promoted_point");
	return reversed;
}

/* The other site's side of a reprotect: each of its images named in request.disks goes back to
 * the point both sites share and becomes this site's replica of the image that now runs
 * there. Its own protections of them end; it takes no more points of them. */
int
cutover_reprotect_prepare(const struct cutover_site *site, json_t *request, json_t **reply)
{
	const char *group_name = cutover_text(request, "group");
	json_t *disks = json_object_get(request, "disks"), *disk, *record;
	char rbd_group[VOLUME_NAME_MAX + 8];
	struct catalog_group group;
	size_t i;
	int rc = 0;

	*reply = NULL;
	if (!group_name[0] || !json_is_array(disks) || json_array_size(disks) == 0 ||
	    !json_is_array(json_object_get(request, "records")))
		return ferry_error_set(FERRY_ERR_INVALID, "give the 'group', its 'disks' and "
							  "'records'");
	if (site->ceph_conf == NULL || site->replica_pool == NULL)
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"this site has no Ceph settings (--ceph-conf): it cannot keep "
			"the replicas of group %s",
			group_name);
	json_array_foreach(disks, i, disk)
	{
		char pool[128];
		const char *volume = cutover_text(disk, "volume");

		if (!util_volume_name_valid(volume) ||
		    json_integer_value(json_object_get(disk, "point")) < 1 ||
		    !cutover_text(disk, "identity")[0])
			return ferry_error_set(FERRY_ERR_INVALID,
					       "each disk needs a valid 'volume', its 'point' and "
					       "'identity'");
		if (repl_rbd_pool_of(cutover_text(disk, "location"), pool, sizeof(pool)) == 0 &&
		    strcmp(pool, site->replica_pool) != 0)
			return ferry_error_set(FERRY_ERR_INVALID,
					       "%s is in pool %s, but this site keeps its replicas "
					       "in pool %s (--replica-pool): it cannot take deltas "
					       "for it there",
					       cutover_text(disk, "location"), pool,
					       site->replica_pool);
	}
	snprintf(rbd_group, sizeof(rbd_group), "ferry-%s", group_name);
	/* The scheduler must not take a point of these images while they change roles, nor the
	 * refresher register their VMs again. */
	pthread_mutex_lock(&cutover_refresh_lock);
	repl_scheduler_hold(site->scheduler);
	json_array_foreach(disks, i, disk)
	{
		char location[600];

		snprintf(location, sizeof(location), "rbd:%s/%s", site->replica_pool,
			 cutover_text(disk, "volume"));
		repl_receiver_release(site->receiver, cutover_text(disk, "volume"));
		rc = repl_rbd_point_restore(location, rbd_group,
					    json_integer_value(json_object_get(disk, "point")));
		if (rc < 0)
			goto out;
		catalog_protection_remove(site->catalog, location);
	}
	rc = repl_rbd_group_dissolve(site->replica_pool, rbd_group);
	json_array_foreach(disks, i, disk)
	{
		char location[600], snapshot[32];
		int64_t point = json_integer_value(json_object_get(disk, "point"));

		if (rc < 0)
			break;
		snprintf(location, sizeof(location), "rbd:%s/%s", site->replica_pool,
			 cutover_text(disk, "volume"));
		snprintf(snapshot, sizeof(snapshot), "ferry-%lld", (long long)point);
		rc = repl_rbd_points_reset(location, point);
		if (rc == 0)
			rc = repl_receiver_adopt(
				site->receiver, cutover_text(disk, "volume"),
				cutover_text(disk, "identity"),
				(uint64_t)json_integer_value(json_object_get(disk, "size")),
				snapshot);
	}
	json_array_foreach(json_object_get(request, "records"), i, record) if (rc == 0) rc =
		cutover_vm_receive(site, record);
	if (rc < 0)
		goto out;
	if (catalog_group_get(site->catalog, group_name, &group) < 0) {
		group.interval_s = 0;
		group.keep = 0;
	}
	*reply = json_pack("{s:I, s:I}", "interval", (json_int_t)group.interval_s, "keep",
			   (json_int_t)group.keep);
	catalog_event_add(site->catalog, "info", group_name,
			  "%zu image(s) are replicas again, of the site the VMs run at",
			  json_array_size(disks));
out:
	repl_scheduler_release(site->scheduler);
	pthread_mutex_unlock(&cutover_refresh_lock);
	return rc;
}

/* The VMs of request.group that run here from their replicas, with the point each runs on. */
static int
cutover_reprotect_check(struct cutover_run *run, json_t *vms)
{
	json_t *record, *disk;
	size_t i, j;

	json_array_foreach(vms, i, record)
	{
		int64_t promoted_by = 0;

		if (json_integer_value(json_object_get(record, "promoted_point")) < 1)
			return ferry_error_set(
				FERRY_ERR_CONFLICT,
				"VM %s of group %s does not run here from its replicas (no "
				"failover "
				"or migration brought it here): ferry reprotect runs at the site "
				"the "
				"VMs moved to, once all of the group's VMs are there",
				cutover_text(record, "name"), cutover_text(record, "group"));
		json_array_foreach(json_object_get(record, "disks"), j, disk)
		{
			catalog_promoted_get(run->site->catalog, cutover_text(disk, "replica"),
					     &promoted_by);
			if (promoted_by == 0)
				return ferry_error_set(FERRY_ERR_CONFLICT,
						       "disk %s of VM %s is a replica here, not "
						       "the disk the VM runs "
						       "from; fail the VM over or migrate it first",
						       cutover_text(disk, "replica"),
						       cutover_text(record, "name"));
		}
	}
	return 0;
}

/* Refuses when a VM still runs at the other site: two copies must never both write. The
 * other site's libvirt unreachable is fine here; its ferryd must answer anyway. */
static int
cutover_reprotect_not_running(json_t *record)
{
	const char *name = cutover_text(record, "name"), *uri = cutover_text(record, "uri");
	virConnectPtr connection = NULL;
	virDomainPtr domain = NULL;
	int rc = 0;

	if (cutover_virt_open(uri, &connection) < 0)
		return 0;
	if (cutover_virt_domain(connection, uri, name, &domain) == 0 &&
	    virDomainIsActive(domain) == 1)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "%s runs at %s too: shut it down there first, so that only "
				     "one copy writes; then reprotect",
				     name, uri);
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
	return rc;
}

/* After the other site took its images back as replicas, the VM's definition there goes:
 * starting it would write into a replica. */
static void
cutover_reprotect_undefine(struct cutover_run *run, const char *name, const char *uri)
{
	virConnectPtr connection = NULL;
	virDomainPtr domain = NULL;
	int seq = cutover_step_begin(run, "undefine %s at %s", name, uri);

	if (cutover_virt_open(uri, &connection) < 0)
		cutover_step_end(run, seq, 0, "unreachable: %s", ferry_error_message());
	else if (cutover_virt_domain(connection, uri, name, &domain) < 0)
		cutover_step_end(run, seq, 0, "not defined there");
	else if (virDomainIsActive(domain) != 1 && virDomainUndefine(domain) == 0)
		cutover_step_end(run, seq, 0, "undefined");
	else
		cutover_step_end(run, seq, 0, "left alone: %s", cutover_virt_message());
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
}

/* The request to the other site and the records this site keeps, for every VM of vms. */
static int
cutover_reprotect_plan(struct cutover_run *run, json_t *vms, const char *site_name, json_t *prepare,
		       json_t *primaries)
{
	json_t *record, *disk;
	size_t i, j;
	int rc = 0;

	json_array_foreach(vms, i, record)
	{
		const char *name = cutover_text(record, "name");
		int64_t point = json_integer_value(json_object_get(record, "promoted_point"));
		virConnectPtr connection = NULL;
		virDomainPtr domain = NULL;
		char *xml = NULL;

		rc = cutover_virt_open(cutover_text(record, "dest_uri"), &connection);
		if (rc == 0)
			rc = cutover_virt_domain(connection, cutover_text(record, "dest_uri"), name,
						 &domain);
		if (rc == 0)
			rc = cutover_virt_domain_xml(domain, name, &xml);
		if (domain)
			virDomainFree(domain);
		cutover_virt_close(connection);
		if (rc < 0)
			return rc;
		json_array_append_new(primaries,
				      cutover_record_reversed(run, record, site_name, xml));
		free(xml);
		json_array_foreach(json_object_get(record, "disks"), j, disk)
		{
			char location[600], at_point[640];
			struct repl_volume *volume = NULL;
			const char *source = cutover_text(disk, "source"),
				   *slash = strchr(source, '/');

			cutover_replica_location(run->site, disk, location, sizeof(location));
			/* Points after the shared one were never the other site's. */
			rc = repl_rbd_points_reset(location, point);
			snprintf(at_point, sizeof(at_point), "%s@ferry-%lld", location,
				 (long long)point);
			if (rc == 0)
				rc = repl_volume_open(at_point, REPL_OPEN_READ, &volume);
			if (rc == 0)
				json_array_append_new(
					json_object_get(prepare, "disks"),
					json_pack("{s:s, s:s, s:I, s:s, s:I}", "volume",
						  slash ? slash + 1 : source, "location", source,
						  "point", (json_int_t)point, "identity",
						  repl_volume_identity(volume), "size",
						  (json_int_t)repl_volume_size(volume)));
			repl_volume_close(volume);
			if (rc < 0)
				return rc;
		}
	}
	/* The other site keeps each VM's record as its replica: what it would bring up. */
	json_array_foreach(primaries, i, record)
	{
		json_t *copy = json_object();
		const char *key;
		json_t *value;

		/* Only what a primary sends; the other site has no say in this site's runs. */
		json_object_foreach(record, key, value) if (cutover_record_key_portable(key) &&
							    strcmp(key, "site") != 0)
			json_object_set(copy, key, value);
		json_array_append_new(json_object_get(prepare, "records"), copy);
	}
	return 0;
}

/* Whether every VM of vms is a primary here by this very run: it was resumed after storing
 * its records. */
static bool
cutover_reprotect_done_here(const struct cutover_run *run, json_t *vms)
{
	json_t *record;
	size_t i;

	json_array_foreach(vms, i, record)
	{
		if (json_integer_value(json_object_get(record, "reprotected_by")) != run->id)
			return false;
	}
	return json_array_size(vms) > 0;
}

/* The last steps: each VM's definition goes at the other site, and the group's first point
 * from here is asked for. vms are the records as the run found them: the VMs' replica records
 * (the other site is their uri), or, resumed, the primary records it stored (dest_uri). */
static void
cutover_reprotect_finish(struct cutover_run *run, json_t *vms, const char *group_name, bool resumed)
{
	json_t *record;
	size_t i;

	json_array_foreach(vms, i, record)
	{
		cutover_reprotect_undefine(run, cutover_text(record, "name"),
					   cutover_text(record, resumed ? "dest_uri" : "uri"));
		json_array_append_new(
			run->vms,
			json_pack("{s:s, s:I, s:I}", "name", cutover_text(record, "name"), "point",
				  json_integer_value(json_object_get(
					  record, resumed ? "reprotect_point" : "promoted_point")),
				  "final_delta_bytes", (json_int_t)0));
	}
	repl_scheduler_request(run->site->scheduler, group_name);
}

static int
cutover_reprotect(struct cutover_run *run, json_t *request)
{
	const char *group_name = cutover_text(request, "group");
	char site_name[VOLUME_NAME_MAX + 1] = "";
	json_t *vms = NULL, *prepare = NULL, *primaries = json_array(), *reply = NULL, *record,
	       *disk;
	struct catalog_group group;
	size_t i, j;
	int rc, seq;

	seq = cutover_step_begin(run, "find the VMs of group %s running here", group_name);
	rc = group_name[0] ? cutover_vms_of(run->site->catalog, request, &vms)
			   : ferry_error_set(FERRY_ERR_INVALID, "name the 'group' to reprotect");
	if (rc == 0 && cutover_reprotect_done_here(run, vms)) {
		/* Resumed after its records were stored here: only the undefines are left. */
		cutover_step_end(run, seq, 0,
				 "%zu VM(s), protected here by this run already; what is left is "
				 "their undefine at the other site",
				 json_array_size(vms));
		cutover_reprotect_finish(run, vms, group_name, true);
		goto out;
	}
	if (rc == 0)
		rc = cutover_reprotect_check(run, vms);
	snprintf(site_name, sizeof(site_name), "%s", cutover_text(request, "site"));
	if (rc == 0 && site_name[0] == '\0') {
		rc = catalog_site_list(run->site->catalog, cutover_only_site, site_name);
		if (rc == 0 && site_name[0] == '\0')
			rc = ferry_error_set(FERRY_ERR_INVALID,
					     "this site knows no other site to protect group %s "
					     "towards: add the site the VMs came from with ferry "
					     "site add",
					     group_name);
	}
	json_array_foreach(vms, i, record) if (rc == 0) rc = cutover_reprotect_not_running(record);
	cutover_step_end(run, seq, rc, "%zu VM(s), towards site %s", vms ? json_array_size(vms) : 0,
			 site_name);
	if (rc < 0) {
		run->refused = true;
		goto out;
	}
	seq = cutover_step_begin(run, "keep the shared points here, drop the later ones");
	prepare = json_pack("{s:s, s:[], s:[]}", "group", group_name, "disks", "records");
	rc = cutover_reprotect_plan(run, vms, site_name, prepare, primaries);
	cutover_step_end(run, seq, rc, "%zu disk(s)",
			 json_array_size(json_object_get(prepare, "disks")));
	if (rc < 0)
		goto out;
	seq = cutover_step_begin(run, "make site %s's images replicas from the shared points",
				 site_name);
	rc = cutover_site_call(run->site->catalog, site_name, "/v1/reprotect/prepare", prepare,
			       &reply);
	cutover_step_end(run, seq, rc, "done");
	if (rc < 0)
		goto out;
	seq = cutover_step_begin(run, "protect the disks here, towards site %s", site_name);
	if (catalog_group_get(run->site->catalog, group_name, &group) < 0) {
		memset(&group, 0, sizeof(group));
		snprintf(group.name, sizeof(group.name), "%s", group_name);
		group.interval_s = json_integer_value(json_object_get(reply, "interval"));
		group.keep = json_integer_value(json_object_get(reply, "keep"));
		if (group.interval_s < 1)
			group.interval_s = 60;
		if (group.keep < 1)
			group.keep = 3;
		rc = catalog_group_put(run->site->catalog, &group);
	}
	json_array_foreach(primaries, i, record)
	{
		int64_t point = json_integer_value(
			json_object_get(json_array_get(vms, i), "promoted_point"));

		json_array_foreach(json_object_get(record, "disks"), j, disk)
		{
			struct catalog_protection protection, existing;

			if (rc < 0)
				break;
			memset(&protection, 0, sizeof(protection));
			snprintf(protection.source, sizeof(protection.source), "%s",
				 cutover_text(disk, "source"));
			snprintf(protection.group, sizeof(protection.group), "%s", group_name);
			snprintf(protection.site, sizeof(protection.site), "%s", site_name);
			snprintf(protection.replica, sizeof(protection.replica), "%s",
				 cutover_text(disk, "replica"));
			protection.last_point = point;
			protection.last_point_ms = util_now_ms();
			snprintf(protection.state, sizeof(protection.state), "syncing");
			if (catalog_protection_get(run->site->catalog, protection.source,
						   &existing) == 0)
				continue; /* a resumed run */
			rc = repl_protection_add(run->site->catalog, &protection);
		}
		if (rc == 0)
			rc = cutover_record_store(run->site->catalog, record, "primary");
	}
	cutover_step_end(run, seq, rc, "group %s, every %lld s", group_name,
			 (long long)group.interval_s);
	if (rc == 0)
		cutover_reprotect_finish(run, vms, group_name, false);
out:
	json_decref(reply);
	json_decref(prepare);
	json_decref(primaries);
	json_decref(vms);
	return rc;
}

/* ---- rollback of an interrupted or failed run ---- */

/* A planned migration cut short before the VM ran at the destination: the VM goes back to
 * running at the source, whose disks are still replicated. Anything else is refused with what
 * to do instead. */
static int
cutover_rollback(struct cutover_run *run, json_t *request)
{
	const char *of = cutover_text(request, "of");
	json_t *original = json_object_get(request, "request");
	int64_t original_id = json_integer_value(json_object_get(request, "run"));
	const char *name = cutover_text(original, "vm"), *uri = "", *dest_uri = "";
	virConnectPtr connection = NULL, destination = NULL;
	virDomainPtr domain = NULL, moved = NULL;
	json_t *record = NULL;
	int rc = 0, seq;

	seq = cutover_step_begin(run, "check run %lld (%s) can be rolled back",
				 (long long)original_id, of);
	if (strcmp(of, "failover-test") == 0) {
		cutover_step_end(run, seq, 0, "a test failover: its clean-up");
		rc = cutover_cleanup(run, original);
		goto finish;
	}
	if (strcmp(of, "migrate-cold") != 0 && strcmp(of, "migrate-live") != 0) {
		rc = ferry_error_set(
			FERRY_ERR_CONFLICT,
			"a run of kind %s is not rolled back: finish it with ferry run "
			"resume %lld (after a failover, ferry reprotect and a migration "
			"bring the VMs back)",
			of, (long long)original_id);
		goto checked;
	}
	rc = cutover_record_load(run->site->catalog, name, &record);
	if (rc == 0 && json_object_get(record, "migrated") != NULL)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "%s was retired here by that run: it runs at the destination; "
				     "finish with ferry run resume %lld",
				     name, (long long)original_id);
	if (rc == 0) {
		uri = cutover_text(record, "uri");
		dest_uri = cutover_text(record, "dest_uri");
		/* The destination may not answer: then nothing runs there that this site started.
		 */
		if (cutover_virt_open(dest_uri, &destination) == 0 &&
		    cutover_virt_domain(destination, dest_uri, name, &moved) == 0 &&
		    virDomainIsActive(moved) == 1)
			rc = ferry_error_set(
				FERRY_ERR_CONFLICT,
				"%s is already active at %s: the migration got that far; "
				"finish it with ferry run resume %lld",
				name, dest_uri, (long long)original_id);
	}
	if (rc == 0)
		rc = cutover_virt_open(uri, &connection);
	if (rc == 0)
		rc = cutover_virt_domain(connection, uri, name, &domain);
checked:
	cutover_step_end(run, seq, rc, "%s never ran at the destination", name);
	if (rc < 0) {
		run->refused = true;
		goto out;
	}
	seq = cutover_step_begin(run, "start %s again at %s", name, uri);
	if (virDomainIsActive(domain) == 1)
		cutover_step_end(run, seq, 0, "it still runs there");
	else if (virDomainCreate(domain) == 0)
		cutover_step_end(run, seq, 0, "running");
	else
		rc = cutover_step_end(run, seq,
				      ferry_error_set(FERRY_ERR_IO, "cannot start %s at %s: %s",
						      name, uri, cutover_virt_message()),
				      NULL);
	json_array_append_new(run->vms, json_pack("{s:s}", "name", name));
finish:
	if (rc == 0)
		catalog_run_finish(run->site->catalog, original_id, "rolled-back",
				   "rolled back by a later run", "{}");
out:
	json_decref(record);
	if (moved)
		virDomainFree(moved);
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(destination);
	cutover_virt_close(connection);
	return rc;
}

/* ---- run threads ---- */

int
cutover_run_execute(const struct cutover_site *site, int64_t run_id, const char *kind,
		    json_t *request)
{
	struct cutover_run run = {site, run_id, util_now_ms(), json_array(), kind, false, false};
	const char *status = "completed";
	json_t *result;
	char *text;
	int rc;

	if (strcmp(kind, "failover") == 0 || strcmp(kind, "failover-test") == 0 ||
	    strcmp(kind, "activate") == 0)
		rc = cutover_activate(&run, request);
	else if (strcmp(kind, "failover-cleanup") == 0)
		rc = cutover_cleanup(&run, request);
	else if (strcmp(kind, "migrate-cold") == 0 || strcmp(kind, "migrate-live") == 0) {
		cutover_abort_open(run_id);
		rc = strcmp(kind, "migrate-cold") == 0 ? cutover_migrate_cold(&run, request)
						       : cutover_migrate_live(&run, request);
		cutover_abort_close(run_id);
	} else if (strcmp(kind, "reprotect") == 0)
		rc = cutover_reprotect(&run, request);
	else if (strcmp(kind, "rollback") == 0)
		rc = cutover_rollback(&run, request);
	else if (strcmp(kind, "migrate-check") == 0 &&
		 json_object_set_new(request, "dry_run", json_true()) == 0)
		rc = cutover_migrate_live(&run, request);
	else
		rc = ferry_error_set(FERRY_ERR_INVALID, "unknown kind of run '%s'", kind);
	if (rc < 0)
		status = run.aborted ? "aborted" : run.refused ? "refused" : "failed";
	result = json_pack("{s:O, s:I}", "vms", run.vms, "total_ms",
			   (json_int_t)(util_now_ms() - run.started_ms));
	text = json_dumps(result, JSON_COMPACT);
	catalog_run_finish(site->catalog, run_id, status, rc < 0 ? ferry_error_message() : "",
			   text ? text : "{}");
	catalog_event_add(site->catalog, rc < 0 ? "error" : "info", kind, "run %lld %s%s%s",
			  (long long)run_id, status, rc < 0 ? ": " : "",
			  rc < 0 ? ferry_error_message() : "");
	log_info("run %" PRId64 " (%s) %s", run_id, kind, status);
	free(text);
	json_decref(result);
	json_decref(run.vms);
	return rc;
}

static pthread_mutex_t cutover_active_lock = PTHREAD_MUTEX_INITIALIZER;
static int cutover_active;

int
cutover_runs_active(void)
{
	int active;

	pthread_mutex_lock(&cutover_active_lock);
	active = cutover_active;
	pthread_mutex_unlock(&cutover_active_lock);
	return active;
}

static void
cutover_active_add(int delta)
{
	/* A run starts only between two registrations of the refresher, never during one. */
	if (delta > 0)
		pthread_mutex_lock(&cutover_refresh_lock);
	pthread_mutex_lock(&cutover_active_lock);
	cutover_active += delta;
	pthread_mutex_unlock(&cutover_active_lock);
	if (delta > 0)
		pthread_mutex_unlock(&cutover_refresh_lock);
}

struct cutover_thread {
	struct cutover_site site;
	int64_t id;
	char kind[32];
	json_t *request;
};

static void *
cutover_thread_main(void *argument)
{
	struct cutover_thread *thread = argument;

	cutover_run_execute(&thread->site, thread->id, thread->kind, thread->request);
	json_decref(thread->request);
	free(thread);
	cutover_active_add(-1);
	return NULL;
}

static int
cutover_thread_start(const struct cutover_site *site, int64_t id, const char *kind, json_t *request)
{
	struct cutover_thread *thread = calloc(1, sizeof(*thread));
	pthread_t handle;

	if (thread == NULL)
		return FERRY_ERR_NO_MEMORY;
	thread->site = *site;
	thread->id = id;
	snprintf(thread->kind, sizeof(thread->kind), "%s", kind);
	thread->request = json_incref(request);
	cutover_active_add(1);
	if (pthread_create(&handle, NULL, cutover_thread_main, thread) != 0) {
		cutover_active_add(-1);
		json_decref(thread->request);
		free(thread);
		return ferry_error_set(FERRY_ERR_INTERNAL, "cannot start a thread for run %lld",
				       (long long)id);
	}
	pthread_detach(handle);
	return 0;
}

int
cutover_run_start(const struct cutover_site *site, const char *kind, json_t *request,
		  int64_t *run_id)
{
	static const char *const kinds[] = {"migrate-cold", "migrate-live",  "migrate-check",
					    "failover",	    "failover-test", "failover-cleanup",
					    "activate",	    "reprotect"};
	const char *target = cutover_text(request, "vm");
	char *text = NULL;
	bool known = false;
	int rc;

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		known = known || strcmp(kind, kinds[i]) == 0;
	if (!known)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "unknown kind of run '%s' (migrate-cold, migrate-live, "
				       "migrate-check, failover, failover-test, failover-cleanup, "
				       "reprotect)",
				       kind);
	if (!target[0])
		target = cutover_text(request, "group");
	if (!target[0] && strcmp(kind, "failover-cleanup") != 0)
		return ferry_error_set(FERRY_ERR_INVALID, "name the VM ('vm') or the 'group'");
	text = json_dumps(request, JSON_COMPACT);
	rc = catalog_run_create(site->catalog, kind, target[0] ? target : "*", text ? text : "{}",
				run_id);
	free(text);
	if (rc == 0)
		rc = cutover_thread_start(site, *run_id, kind, request);
	return rc;
}

struct cutover_resume {
	char kind[32];
	json_t *request;
	char status[16];
};

static int
cutover_resume_row(const struct catalog_run *run, void *context)
{
	struct cutover_resume *resume = context;

	snprintf(resume->kind, sizeof(resume->kind), "%s", run->kind);
	snprintf(resume->status, sizeof(resume->status), "%s", run->status);
	resume->request = json_loads(run->request ? run->request : "{}", 0, NULL);
	return 0;
}

static int cutover_run_resume_claimed(const struct cutover_site *site, int64_t run_id);
static int cutover_run_rollback_claimed(const struct cutover_site *site, int64_t run_id,
					int64_t *rollback_id);

/* A resume and a rollback each decide from a run's status, then change it: one at a time, so
 * that two of them at once never both act on one run. */
static pthread_mutex_t cutover_claim_lock = PTHREAD_MUTEX_INITIALIZER;

struct cutover_rollback_search {
	int64_t of;
	int64_t found;
};

static int
cutover_rollback_running(const struct catalog_run *run, void *context)
{
	struct cutover_rollback_search *search = context;
	json_t *request;

	if (strcmp(run->kind, "rollback") != 0 || strcmp(run->status, "running") != 0)
		return 0;
	request = json_loads(run->request ? run->request : "{}", 0, NULL);
	if (json_integer_value(json_object_get(request, "run")) == search->of)
		search->found = run->id;
	json_decref(request);
	return 0;
}

/* FERRY_ERR_CONFLICT while a rollback of run_id is running: it is neither resumed nor rolled
 * back again meanwhile. */
static int
cutover_rollback_refuse(const struct cutover_site *site, int64_t run_id)
{
	struct cutover_rollback_search search = {run_id, 0};
	int rc = catalog_run_list(site->catalog, 0, 0, cutover_rollback_running, &search);

	if (rc == 0 && search.found)
		rc = ferry_error_set(
			FERRY_ERR_CONFLICT,
			"run %lld is being rolled back by run %lld: wait for it to end "
			"(ferry run show %lld)",
			(long long)run_id, (long long)search.found, (long long)search.found);
	return rc;
}

int
cutover_run_resume(const struct cutover_site *site, int64_t run_id)
{
	int rc;

	pthread_mutex_lock(&cutover_claim_lock);
	rc = cutover_rollback_refuse(site, run_id);
	if (rc == 0)
		rc = cutover_run_resume_claimed(site, run_id);
	pthread_mutex_unlock(&cutover_claim_lock);
	return rc;
}

int
cutover_run_rollback(const struct cutover_site *site, int64_t run_id, int64_t *rollback_id)
{
	int rc;

	pthread_mutex_lock(&cutover_claim_lock);
	rc = cutover_rollback_refuse(site, run_id);
	if (rc == 0)
		rc = cutover_run_rollback_claimed(site, run_id, rollback_id);
	pthread_mutex_unlock(&cutover_claim_lock);
	return rc;
}

static int
cutover_run_resume_claimed(const struct cutover_site *site, int64_t run_id)
{
	struct cutover_resume resume = {"", NULL, ""};
	int rc = catalog_run_list(site->catalog, run_id, 1, cutover_resume_row, &resume);

	if (rc == 0 && strcmp(resume.status, "interrupted") != 0 &&
	    strcmp(resume.status, "failed") != 0)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "run %lld is %s; only an interrupted or failed run is resumed",
				     (long long)run_id, resume.status);
	if (rc == 0 && resume.request == NULL)
		rc = ferry_error_set(FERRY_ERR_INTERNAL, "run %lld has no request to resume",
				     (long long)run_id);
	if (rc == 0)
		rc = catalog_run_reopen(site->catalog, run_id);
	if (rc == 0)
		rc = cutover_thread_start(site, run_id, resume.kind, resume.request);
	json_decref(resume.request);
	return rc;
}

static int
cutover_run_rollback_claimed(const struct cutover_site *site, int64_t run_id, int64_t *rollback_id)
{
	struct cutover_resume original = {"", NULL, ""};
	json_t *request = NULL;
	char *text = NULL;
	const char *target;
	int rc = catalog_run_list(site->catalog, run_id, 1, cutover_resume_row, &original);

	if (rc == 0 && !original.kind[0])
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND, "no run %lld", (long long)run_id);
	if (rc == 0 && strcmp(original.status, "interrupted") != 0 &&
	    strcmp(original.status, "failed") != 0)
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "run %lld is %s; only an interrupted or failed run is rolled "
				     "back",
				     (long long)run_id, original.status);
	if (rc == 0) {
		request =
			json_pack("{s:I, s:s, s:O}", "run", (json_int_t)run_id, "of", original.kind,
				  "request", original.request ? original.request : json_null());
		target = cutover_text(original.request, "vm");
		if (!target[0])
			target = cutover_text(original.request, "group");
		text = request ? json_dumps(request, JSON_COMPACT) : NULL;
		rc = text ? catalog_run_create(site->catalog, "rollback", target[0] ? target : "*",
					       text, rollback_id)
			  : FERRY_ERR_NO_MEMORY;
	}
	if (rc == 0)
		rc = cutover_thread_start(site, *rollback_id, "rollback", request);
	free(text);
	json_decref(request);
	json_decref(original.request);
	return rc;
}

static int
cutover_step_json(const struct catalog_run_step *step, void *context)
{
	return json_array_append_new(
		context,
		json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:I}", "seq", step->seq, "name",
			  step->name, "result", step->result, "detail", step->detail, "started_ms",
			  (json_int_t)step->started_ms, "ended_ms", (json_int_t)step->ended_ms,
			  "duration_ms",
			  (json_int_t)(step->ended_ms ? step->ended_ms - step->started_ms : 0)));
}

json_t *
cutover_run_json(struct catalog *catalog, const struct catalog_run *run)
{
	json_t *result = json_loads(run->result && run->result[0] ? run->result : "{}", 0, NULL);
	json_t *steps = json_array(), *vms = json_object_get(result, "vms"), *out;

	catalog_run_steps(catalog, run->id, cutover_step_json, steps);
	out = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o}", "run",
			(json_int_t)run->id, "kind", run->kind, "target", run->target, "status",
			run->status, "reason", run->reason, "started_ms",
			(json_int_t)run->started_ms, "ended_ms", (json_int_t)run->ended_ms,
			"total_ms",
			(json_int_t)(run->ended_ms ? run->ended_ms - run->started_ms
						   : util_now_ms() - run->started_ms),
			"vms", vms ? json_incref(vms) : json_array(), "steps", steps);
	json_decref(result);
	return out;
}
