/* The route table: every /v1 route with the role it needs, whether it streams, and the JSON keys
 * its body may hold; the path splitter and the lookup web_access() dispatches with, and the
 * table as text for --print-routes, the OpenAPI document and the metrics. */
#include "web/web.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The keys each JSON body may hold: a misspelt or unknown one is a 400 naming it, never
 * silently ignored (routes whose bodies are whole records of the other site are not listed). */
static const char *const web_keys_transfer[] = {
	"size",	    "segment_size",  "source_identity", "kind",	      "restart", "snapshot",
	"segments", "base_identity", "group",		"generation", NULL};
static const char *const web_keys_commit[] = {"transfer_id", "digest", "group", "generation", NULL};
static const char *const web_keys_verify[] = {"segment_size", "point", NULL};
static const char *const web_keys_prune[] = {"keep_from", "also_keep", "group", "generation", NULL};
static const char *const web_keys_group_promote[] = {"point", "force", NULL};
static const char *const web_keys_site[] = {"name", "url", "token", "cacert_pem", "replace", NULL};
static const char *const web_keys_group[] = {"name", "interval", "keep", "rpo", NULL};
static const char *const web_keys_group_set[] = {"interval", "keep", "rpo", NULL};
static const char *const web_keys_protect[] = {"source", "group", "site", "replica", NULL};
static const char *const web_keys_unprotect[] = {"source", NULL};
static const char *const web_keys_vm[] = {"name",  "uri",   "dest_uri",	   "group", "site",
					  "order", "delay", "network_map", NULL};
static const char *const web_keys_remap[] = {"name", "xml", "persistent_xml", NULL};
static const char *const web_keys_promote[] = {"name", "run", "point", NULL};
static const char *const web_keys_activate[] = {"kind", "vm", "point", NULL};
static const char *const web_keys_token[] = {"name", "role", "expires_days", NULL};
static const char *const web_keys_session[] = {"token", NULL};
static const char *const web_keys_name[] = {"name", NULL};
static const char *const web_keys_vm_record[] = {"name",  "uri",   "dest_uri", "group",
						 "site",  "order", "delay",    "network_map",
						 "disks", "xml",   NULL};
static const char *const web_keys_reprotect[] = {"group", "disks", "records", NULL};
static const char *const web_keys_run[] = {
	"kind",	 "vm",	     "group",	"site",	     "point",	   "shutdown_timeout",
	"force", "max_time", "dry_run", "bandwidth", "on_timeout", "max_lag",
	NULL};

/* One row per route: method, path pattern ("*" is one variable part), handler, whether the body
 * is a segment, and the role it needs (WEB_ACCESS_PEER routes are the site-to-site ones; a peer
 * reaches only the volumes (parts[2]) and VM records it pushed). A test walks this table
 * (ferryd --print-routes). */
static const struct web_route web_routes[] = {
	/* clang-format off */
	{"GET", {"v1", "health"}, 2, web_health, false, WEB_ACCESS_VIEWER_OR_PEER, NULL},
	{"GET", {"v1", "volumes"}, 2, web_volume_list, false, WEB_ACCESS_VIEWER, NULL},
	{"GET", {"v1", "volumes", "*"}, 3, web_volume_show, false, WEB_ACCESS_VIEWER_OR_PEER, NULL},
	{"POST", {"v1", "volumes", "*", "transfer"}, 4, web_transfer_begin, false, WEB_ACCESS_PEER, web_keys_transfer},
	{"PUT", {"v1", "volumes", "*", "segments", "*"}, 5, web_segment_put, true, WEB_ACCESS_PEER, NULL},
	{"POST", {"v1", "volumes", "*", "commit"}, 4, web_transfer_commit, false, WEB_ACCESS_PEER, web_keys_commit},
	{"POST", {"v1", "volumes", "*", "verify"}, 4, web_volume_verify, false, WEB_ACCESS_VIEWER_OR_PEER, web_keys_verify},
	{"GET", {"v1", "transfers"}, 2, web_transfer_list, false, WEB_ACCESS_VIEWER, NULL},
	{"GET", {"v1", "events"}, 2, web_event_list, false, WEB_ACCESS_VIEWER, NULL},
	{"GET", {"v1", "events", "stream"}, 3, web_event_stream, false, WEB_ACCESS_VIEWER, NULL},
	{"POST", {"v1", "sites"}, 2, web_site_add, false, WEB_ACCESS_ADMIN, web_keys_site},
	{"GET", {"v1", "sites"}, 2, web_site_list, false, WEB_ACCESS_VIEWER, NULL},
	{"DELETE", {"v1", "sites", "*"}, 3, web_site_remove, false, WEB_ACCESS_ADMIN, NULL},
	{"GET", {"v1", "groups"}, 2, web_group_list, false, WEB_ACCESS_VIEWER, NULL},
	{"POST", {"v1", "groups"}, 2, web_group_create, false, WEB_ACCESS_ADMIN, web_keys_group},
	{"POST", {"v1", "groups", "*"}, 3, web_group_set, false, WEB_ACCESS_ADMIN, web_keys_group_set},
	{"DELETE", {"v1", "groups", "*"}, 3, web_group_delete, false, WEB_ACCESS_ADMIN, NULL},
	{"POST", {"v1", "groups", "*", "sync"}, 4, web_group_sync, false, WEB_ACCESS_OPERATOR, NULL},
	{"POST", {"v1", "groups", "*", "pause"}, 4, web_group_pause, false, WEB_ACCESS_OPERATOR, NULL},
	{"POST", {"v1", "groups", "*", "resume"}, 4, web_group_resume, false, WEB_ACCESS_OPERATOR, NULL},
	{"POST", {"v1", "groups", "*", "promote"}, 4, web_group_promote, false, WEB_ACCESS_ADMIN, web_keys_group_promote},
	{"GET", {"metrics"}, 1, web_metrics, false, WEB_ACCESS_VIEWER, NULL},
	{"POST", {"v1", "protections"}, 2, web_protect, false, WEB_ACCESS_OPERATOR, web_keys_protect},
	{"POST", {"v1", "protections", "remove"}, 3, web_unprotect, false, WEB_ACCESS_OPERATOR, web_keys_unprotect},
	{"POST", {"v1", "volumes", "*", "prune"}, 4, web_volume_prune, false, WEB_ACCESS_PEER, web_keys_prune},
	{"GET", {"v1", "vms"}, 2, web_vm_list, false, WEB_ACCESS_VIEWER, NULL},
	{"POST", {"v1", "vms"}, 2, web_vm_protect, false, WEB_ACCESS_OPERATOR, web_keys_vm},
	{"POST", {"v1", "vms", "remove"}, 3, web_vm_unprotect, false, WEB_ACCESS_OPERATOR, web_keys_name},
	{"POST", {"v1", "vms", "forget"}, 3, web_vm_forget, false, WEB_ACCESS_PEER, web_keys_name},
	{"POST", {"v1", "vms", "receive"}, 3, web_vm_receive, false, WEB_ACCESS_PEER, web_keys_vm_record},
	{"POST", {"v1", "vms", "remap"}, 3, web_vm_remap, false, WEB_ACCESS_PEER, web_keys_remap},
	{"POST", {"v1", "reprotect", "prepare"}, 3, web_reprotect_prepare, false, WEB_ACCESS_PEER, web_keys_reprotect},
	{"POST", {"v1", "vms", "promote"}, 3, web_vm_promote, false, WEB_ACCESS_PEER, web_keys_promote},
	{"POST", {"v1", "vms", "activate"}, 3, web_vm_activate, false, WEB_ACCESS_PEER, web_keys_activate},
	{"GET", {"v1", "runs"}, 2, web_run_list, false, WEB_ACCESS_VIEWER, NULL},
	/* operator; a failover, reprotect or activation asks for admin (web_run_start) */
	{"POST", {"v1", "runs"}, 2, web_run_start, false, WEB_ACCESS_OPERATOR, web_keys_run},
	/* a peer: only the activations it asked for (web_run_show) */
	{"GET", {"v1", "runs", "*"}, 3, web_run_show, false, WEB_ACCESS_VIEWER_OR_PEER, NULL},
	{"POST", {"v1", "runs", "*", "resume"}, 4, web_run_resume, false, WEB_ACCESS_OPERATOR, NULL},
	{"POST", {"v1", "runs", "*", "rollback"}, 4, web_run_rollback, false, WEB_ACCESS_ADMIN, NULL},
	{"POST", {"v1", "runs", "*", "abort"}, 4, web_run_abort, false, WEB_ACCESS_OPERATOR, NULL},
	{"POST", {"v1", "tokens"}, 2, web_token_create, false, WEB_ACCESS_ADMIN, web_keys_token},
	{"GET", {"v1", "tokens"}, 2, web_token_list, false, WEB_ACCESS_ADMIN, NULL},
	{"DELETE", {"v1", "tokens", "*"}, 3, web_token_revoke, false, WEB_ACCESS_ADMIN, NULL},
	{"GET", {"v1", "audit"}, 2, web_audit_list, false, WEB_ACCESS_ADMIN, NULL},
	{"GET", {"v1", "openapi.json"}, 2, web_openapi, false, WEB_ACCESS_VIEWER, NULL},
	{"GET", {NULL}, 0, web_console_index, false, WEB_ACCESS_PUBLIC, NULL},
	{"GET", {"console", "*"}, 2, web_console_file, false, WEB_ACCESS_PUBLIC, NULL},
	{"POST", {"v1", "session"}, 2, web_session_create, false, WEB_ACCESS_PUBLIC, web_keys_session},
	{"GET", {"v1", "session"}, 2, web_session_show, false, WEB_ACCESS_VIEWER, NULL},
	{"DELETE", {"v1", "session"}, 2, web_session_end, false, WEB_ACCESS_VIEWER, NULL},
	/* clang-format on */
};

const struct web_route *
web_route_table(size_t *count)
{
	*count = sizeof(web_routes) / sizeof(web_routes[0]);
	return web_routes;
}

const char *const web_access_names[] = {"viewer", "operator",	    "admin",
					"peer",	  "viewer-or-peer", "public"};

void
web_route_format(const struct web_route *route, char *out, size_t size)
{
	size_t used = (size_t)snprintf(out, size, "%s %s", route->method, route->parts ? "" : "/");

	for (int part = 0; part < route->parts && used < size; part++)
		used += (size_t)snprintf(out + used, size - used, "/%s", route->pattern[part]);
}

void
web_routes_print(FILE *out)
{
	for (size_t i = 0; i < sizeof(web_routes) / sizeof(web_routes[0]); i++) {
		char route[160];

		web_route_format(&web_routes[i], route, sizeof(route));
		fprintf(out, "%s %s\n", route, web_access_names[web_routes[i].access]);
	}
}

/* Splits url into parts (in place in buffer); false when it has too many or empty parts. */
bool
web_split_path(const char *url, char *buffer, size_t size, const char **parts, int *count)
{
	char *cursor, *saved;

	if (strlen(url) >= size || url[0] != '/')
		return false;
	memcpy(buffer, url + 1, strlen(url));
	*count = 0;
	if (url[1] == '\0') /* "/": the console */
		return true;
	/* An empty part ("a//b", a trailing '/') is refused rather than skipped, so that one
	 * resource has one spelling. */
	for (cursor = buffer;; cursor = saved + 1) {
		saved = strchr(cursor, '/');
		if (saved)
			*saved = '\0';
		if (*cursor == '\0' || *count == WEB_PATH_PARTS)
			return false;
		parts[(*count)++] = cursor;
		if (saved == NULL)
			return true;
	}
}

const struct web_route *
web_find_route(const char **parts, int count, const char *method, bool *path_known)
{
	*path_known = false;
	for (size_t i = 0; i < sizeof(web_routes) / sizeof(web_routes[0]); i++) {
		const struct web_route *route = &web_routes[i];
		bool match = route->parts == count;

		for (int p = 0; match && p < count; p++)
			if (strcmp(route->pattern[p], "*") != 0 &&
			    strcmp(route->pattern[p], parts[p]))
				match = false;
		if (!match)
			continue;
		*path_known = true;
		if (strcmp(route->method, method) == 0)
			return route;
	}
	return NULL;
}
