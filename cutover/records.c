/* VM records (catalog table vms): registration at the primary site, the copy kept at the replica
 * site, unprotect, and the refresher that keeps stored definitions current. A record is JSON:
 * name, uri (primary libvirt), dest_uri (replica libvirt), group, site, order, delay,
 * network_map, disks [{target, source, replica}], xml. */
#include "cutover/internal.h"

const char *
cutover_text(json_t *object, const char *key)
{
	const char *value = json_string_value(json_object_get(object, key));

	return value ? value : "";
}

/* A client of a peer site's ferryd; caller frees it with api_client_free(). */
int
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

int
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
	struct cutover_vm_record record = {0};
	json_t *disks = NULL, *object = NULL, *sent = NULL, *disk, *network_map;
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
	json_array_foreach(disks, index, disk) {
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
	object = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O*, s:O*, s:o, s:O, s:s}", "name", name,
			   "uri", uri, "dest_uri", dest_uri, "group", group_name, "site", site_name,
			   "order", json_object_get(request, "order"), "delay",
			   json_object_get(request, "delay"), "network_map", network_map, "disks",
			   disks, "xml", xml);
	if (object == NULL) {
		rc = ferry_error_no_memory();
		goto out;
	}
	/* The same shape a replica site asks of it: a delay of years would hold a failover. */
	rc = cutover_record_parse(object, &record);
	if (rc < 0)
		goto out;
	rc = cutover_record_store(site->catalog, &record, "primary");
	/* The record travels to the replica site now, so that a failover run there works when
	 * this site is gone. */
	if (rc == 0)
		rc = cutover_site_client(site->catalog, site_name, &client);
	if (rc == 0)
		rc = (sent = cutover_record_json(&record, CUTOVER_RECORD_PORTABLE))
			     ? api_client_json(client, "POST", "/v1/vms/receive", sent, NULL)
			     : ferry_error_last_code();
	if (rc < 0)
		goto out;
	catalog_event_add(site->catalog, "info", name, "VM protected in group %s, %zu disk(s)",
			  group_name, record.disk_count);
	*record_out = cutover_record_json(&record, CUTOVER_RECORD_ALL);
	rc = *record_out ? 0 : ferry_error_last_code();
out:
	api_client_free(client);
	cutover_record_free(&record);
	json_decref(object);
	json_decref(sent);
	json_decref(disks);
	free(xml);
	if (domain)
		virDomainFree(domain);
	cutover_virt_close(connection);
	return rc;
}

int
cutover_vm_receive(const struct cutover_site *site, json_t *object)
{
	const char *name = cutover_text(object, "name");
	struct cutover_vm_record record = {0}, existing = {0};
	char dest_uri[CUTOVER_LIBVIRT_URI_MAX + 1];
	int rc;

	if (!util_volume_name_valid(name) || !json_is_string(json_object_get(object, "xml")) ||
	    !json_is_array(json_object_get(object, "disks")) || !cutover_text(object, "group")[0])
		return ferry_error_set(FERRY_ERR_INVALID,
				       "a VM record needs a valid name, its xml, disks and group");
	/* A record from a peer holds only what a primary sends: the keys this site keeps about
	 * its own runs (promoted_point, migrated, ...) are never taken from the other side. */
	rc = cutover_record_from_peer(object, &record);
	if (rc < 0)
		goto out;
	/* This site opens dest_uri at a failover, and defines the XML: both must be allowed here,
	 * before anything is stored. */
	rc = cutover_virt_resolve(record.dest_uri, dest_uri, sizeof(dest_uri));
	if (rc == 0)
		rc = cutover_domain_check(record.xml);
	if (rc < 0) {
		char cause[600];

		snprintf(cause, sizeof(cause), "%s", ferry_error_message());
		rc = ferry_error_set(rc, "VM %s: %s", name, cause);
		goto out;
	}
	snprintf(record.dest_uri, sizeof(record.dest_uri), "%s", dest_uri);
	/* A VM that a failover or migration brought up here runs from these images now: the old
	 * primary's view of it must not replace what reprotect will need (invariant 1). */
	if (cutover_record_load(site->catalog, name, &existing) == 0 &&
	    cutover_record_state(&existing, "replica") == CUTOVER_VM_PROMOTED) {
		rc = ferry_error_set(FERRY_ERR_CONFLICT,
				     "VM %s runs at this site from point %lld since a failover or "
				     "migration; its definition from the other site is refused "
				     "(ferry reprotect reverses the direction)",
				     name, (long long)existing.promoted_point);
		goto out;
	}
	rc = cutover_record_store(site->catalog, &record, "replica");
out:
	cutover_record_free(&existing);
	cutover_record_free(&record);
	return rc;
}

/* ferry vm unprotect DOMAIN (primary site): the VM's disks stop replicating, its record goes
 * at both sites. Refused while a run is in progress, or where the VM is not the primary. */
int
cutover_vm_unprotect(const struct cutover_site *site, json_t *request, json_t **reply)
{
	const char *name = cutover_text(request, "name");
	struct api_client *client = NULL;
	struct cutover_vm_record record = {0};
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
	rc = cutover_site_client(site->catalog, record.site, &client);
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
			name, record.site, cause);
		goto out;
	}
	replica_forgot = true;
	for (i = 0; i < record.disk_count; i++) {
		const char *source = record.disks[i].source;

		if (repl_protection_remove(site->catalog, source, NULL, 0) < 0)
			log_warn("VM %s: disk %s: %s", name, source, ferry_error_message());
	}
	rc = catalog_vm_remove(site->catalog, name);
	if (rc == 0) {
		catalog_event_add(site->catalog, "info", name,
				  "VM unprotected: %zu disk(s) no longer replicated",
				  record.disk_count);
		*reply = json_pack("{s:s, s:b, s:I}", "name", name, "replica_forgot",
				   replica_forgot, "disks", (json_int_t)record.disk_count);
	}
out:
	api_client_free(client);
	cutover_record_free(&record);
	return rc;
}

/* The replica site's side: the peer's record goes, unless the VM runs here now. */
int
cutover_vm_forget(const struct cutover_site *site, json_t *request, json_t **reply)
{
	const char *name = cutover_text(request, "name");
	struct cutover_vm_record record = {0};
	int rc;

	*reply = NULL;
	rc = cutover_record_load(site->catalog, name, &record);
	if (rc == 0 && cutover_record_state(&record, "replica") == CUTOVER_VM_PROMOTED)
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
	cutover_record_free(&record);
	return rc;
}

/* ---- keeping the stored definitions current (primary site) ---- */

pthread_mutex_t cutover_refresh_lock = PTHREAD_MUTEX_INITIALIZER;

/* catalog_vm_list() callback: the primary records not retired by a migration (invariant 2 of
 * record.c), parsed. */
static int
cutover_refresh_collect(const char *name, const char *role, const char *group, const char *text,
			void *context)
{
	struct cutover_vm_records *records = context;
	struct cutover_vm_record record;
	json_t *parsed;
	int rc;

	(void)name;
	(void)group;
	if (strcmp(role, "primary") != 0)
		return 0;
	parsed = json_loads(text, 0, NULL);
	rc = parsed ? cutover_record_parse(parsed, &record) : FERRY_ERR_INVALID;
	json_decref(parsed);
	if (rc == 0 && cutover_record_state(&record, role) != CUTOVER_VM_MIGRATED) {
		struct cutover_vm_record *grown =
			realloc(records->items, (records->count + 1) * sizeof(*grown));

		if (grown == NULL) {
			cutover_record_free(&record);
			return ferry_error_no_memory();
		}
		records->items = grown;
		records->items[records->count++] = record;
		return 0;
	}
	cutover_record_free(&record);
	return 0;
}

/* Whether name's record may be registered again now: no run owns the records and it is still
 * this site's primary, not retired (a reprotect may have made it a replica here since the list
 * was read). */
static bool
cutover_refresh_allowed(const struct cutover_site *site, const char *name)
{
	struct cutover_vm_record now = {0};
	char role[16] = "", *text = NULL;
	bool allowed = cutover_runs_active() == 0 &&
		       catalog_vm_get(site->catalog, name, &text, role) == 0 &&
		       strcmp(role, "primary") == 0;

	free(text);
	if (allowed)
		allowed = cutover_record_load(site->catalog, name, &now) == 0 &&
			  cutover_record_state(&now, role) != CUTOVER_VM_MIGRATED;
	cutover_record_free(&now);
	return allowed;
}

/* One VM: registered again when libvirt's definition differs from the stored one, or when the
 * last one could not be sent. Returns 1 when it changed, 0 when not, or a negative error. */
static int
cutover_refresh_one(const struct cutover_site *site, const struct cutover_vm_record *record)
{
	const char *name = record->name, *uri = record->uri;
	bool unsent = cutover_record_state(record, "primary") == CUTOVER_VM_UNSENT;
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
	if (rc < 0 || (!unsent && record->xml && strcmp(xml, record->xml) == 0)) {
		free(xml);
		return 0;
	}
	free(xml);
	pthread_mutex_lock(&cutover_refresh_lock);
	if (!cutover_refresh_allowed(site, name)) {
		pthread_mutex_unlock(&cutover_refresh_lock);
		return 0;
	}
	request = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:O}", "name", name, "uri", uri,
			    "dest_uri", record->dest_uri, "group", record->group, "site",
			    record->site, "order", (json_int_t)record->order, "delay",
			    (json_int_t)record->delay, "network_map", record->network_map);
	rc = request ? cutover_vm_protect(site, request, &stored) : ferry_error_no_memory();
	if (rc == 0) {
		catalog_event_add(site->catalog, "info", name,
				  "the domain's definition changed in libvirt: stored again and "
				  "sent to site %s",
				  record->site);
		rc = 1;
	} else {
		struct cutover_vm_record kept = {0};
		char message[1024];

		snprintf(message, sizeof(message), "%s", ferry_error_message());
		/* protect stores before it sends: mark the record so that it is sent again. */
		if (cutover_record_load(site->catalog, name, &kept) == 0) {
			cutover_record_mark_unsent(&kept);
			cutover_record_store(site->catalog, &kept, "primary");
		}
		cutover_record_free(&kept);
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
	struct cutover_vm_records records = {0};
	int changed = 0, rc;

	rc = catalog_vm_list(site->catalog, NULL, cutover_refresh_collect, &records);
	for (size_t i = 0; rc >= 0 && i < records.count; i++)
		if (cutover_refresh_one(site, &records.items[i]) > 0)
			changed++;
	cutover_vm_records_free(&records);
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
