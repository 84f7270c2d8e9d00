/* GET /v1/openapi.json: an OpenAPI 3 document of every route, made from the route table itself
 * (methods, paths, the role each needs, the JSON keys each body may hold), so that it cannot
 * drift from what ferryd serves; only the one-line summaries live here, and a test checks that
 * every route has one. */
#include "web/web.h"
#include "common/error.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *route; /* as ferryd --print-routes prints it, "*" a variable part */
	const char *summary;
} web_openapi_summaries[] = {
	{"GET /v1/health", "Health: ok, warning or error, with the reasons (a peer: the word)"},
	{"GET /v1/volumes", "Volumes, transfers, protected images and groups (ferry status)"},
	{"GET /v1/volumes/*", "One volume with its current transfer"},
	{"POST /v1/volumes/*/transfer", "Start or resume a transfer (peer)"},
	{"PUT /v1/volumes/*/segments/*", "One segment of a transfer, checksummed (peer)"},
	{"POST /v1/volumes/*/commit", "Complete a transfer when the digests match (peer)"},
	{"POST /v1/volumes/*/verify", "Re-read a volume and recompute its digest"},
	{"GET /v1/transfers", "Every transfer"},
	{"GET /v1/events", "The event log, newest first"},
	{"GET /v1/events/stream", "Server-Sent Events from Last-Event-ID on"},
	{"POST /v1/sites", "Add a replica site (or replace one with replace: true)"},
	{"GET /v1/sites", "Replica sites, never their secrets"},
	{"DELETE /v1/sites/*", "Remove a replica site no image replicates to"},
	{"GET /v1/groups", "Protection groups with their RPO targets"},
	{"POST /v1/groups", "Create a protection group (an existing one is a 409)"},
	{"POST /v1/groups/*", "Change a group's interval, keep or RPO target"},
	{"DELETE /v1/groups/*", "Delete a group nothing is protected in"},
	{"POST /v1/groups/*/sync", "Take and ship a point of the group now"},
	{"POST /v1/groups/*/pause", "Stop taking the group's points on its schedule"},
	{"POST /v1/groups/*/resume", "Take the group's points on its schedule again"},
	{"POST /v1/groups/*/promote",
	 "At the replica site: promote a group without VMs to a point and raise its generation"},
	{"GET /metrics", "Prometheus metrics"},
	{"POST /v1/protections", "Protect an RBD image in a group, to a site"},
	{"POST /v1/protections/remove", "Stop protecting an image"},
	{"POST /v1/volumes/*/prune",
	 "Remove a replica's points that retention does not keep (peer)"},
	{"GET /v1/vms", "Protected VMs and this site's role for each"},
	{"POST /v1/vms", "Protect a VM: its RBD disks and its definition at both sites"},
	{"POST /v1/vms/remove",
	 "Unprotect a VM: its disks stop replicating, its record goes at both sites"},
	{"POST /v1/vms/forget", "Forget the record of a VM its primary unprotected (peer)"},
	{"POST /v1/vms/receive", "Store the definition of a VM the peer protects (peer)"},
	{"POST /v1/vms/remap", "Rewrite a VM's definition for this site (peer)"},
	{"POST /v1/reprotect/prepare", "Make this site's images replicas again (peer)"},
	{"POST /v1/vms/promote", "Record that a VM now runs here from a point (peer)"},
	{"POST /v1/vms/activate", "Bring up a VM the peer moved here cold (peer)"},
	{"GET /v1/runs", "Cutover runs, newest first"},
	{"POST /v1/runs", "Start a migration, failover, test failover, cleanup or reprotect"},
	{"GET /v1/runs/*", "One run with its steps"},
	{"POST /v1/runs/*/resume", "Resume an interrupted run"},
	{"POST /v1/runs/*/abort", "Stop a planned migration before the VM leaves the source"},
	{"POST /v1/runs/*/rollback",
	 "Roll back a migration that never ran the VM at its destination"},
	{"POST /v1/tokens", "Issue an API token with a role (the secret is shown once)"},
	{"GET /v1/tokens", "API tokens, never their secrets"},
	{"DELETE /v1/tokens/*", "Revoke an API token"},
	{"GET /v1/audit", "Who changed what, refusals too"},
	{"GET /v1/openapi.json", "This document"},
	{"GET /", "The web console (its files need no token; it logs in with one)"},
	{"GET /console/*", "One of the web console's files"},
	{"POST /v1/session", "Log in to the console: a token becomes a session cookie"},
	{"GET /v1/session", "Who the session (or the token) is, with the session's CSRF token"},
	{"DELETE /v1/session", "Log out: the session ends at ferryd"},
};

/* The name of a path's variable part, from the part before it. */
static const char *
web_openapi_parameter(const char *before)
{
	if (strcmp(before, "segments") == 0)
		return "index";
	if (strcmp(before, "runs") == 0)
		return "run";
	if (strcmp(before, "volumes") == 0)
		return "volume";
	if (strcmp(before, "sites") == 0)
		return "site";
	if (strcmp(before, "groups") == 0)
		return "group";
	if (strcmp(before, "tokens") == 0)
		return "token";
	return "name";
}

static json_t *
web_openapi_operation(const struct web_route *route, const char *key, json_t *parameters)
{
	const char *summary = "";
	json_t *operation, *responses;

	for (size_t i = 0; i < sizeof(web_openapi_summaries) / sizeof(web_openapi_summaries[0]);
	     i++)
		if (strcmp(web_openapi_summaries[i].route, key) == 0)
			summary = web_openapi_summaries[i].summary;
	responses = json_pack("{s:{s:s}, s:{s:s}, s:{s:s}}", "200", "description", "done", "401",
			      "description", "no valid bearer token", "403", "description",
			      "the token's role may not use this route");
	if (route->keys || strcmp(route->method, "POST") == 0)
		json_object_set_new(responses, "400",
				    json_pack("{s:s}", "description",
					      "a malformed request, or an unknown key (named)"));
	operation = json_pack("{s:s, s:s, s:o, s:o}", "summary", summary, "x-ferry-role",
			      web_access_names[route->access], "parameters", parameters,
			      "responses", responses);
	if (route->keys) {
		json_t *properties = json_object();

		for (int i = 0; route->keys[i]; i++)
			json_object_set_new(properties, route->keys[i], json_object());
		json_object_set_new(operation, "requestBody",
				    json_pack("{s:b, s:{s:{s:{s:s, s:b, s:o}}}}", "required", 1,
					      "content", "application/json", "schema", "type",
					      "object", "additionalProperties", 0, "properties",
					      properties));
	}
	return operation;
}

enum MHD_Result
web_openapi(struct web_route_context *route)
{
	size_t count;
	const struct web_route *routes = web_route_table(&count);
	json_t *paths = json_object();

	for (size_t i = 0; i < count; i++) {
		char path[256] = "", key[300], method[8];
		json_t *parameters = json_array(), *item;
		size_t used = 0;

		for (int part = 0; part < routes[i].parts; part++) {
			const char *name = routes[i].pattern[part];

			if (strcmp(name, "*") == 0) {
				name = web_openapi_parameter(part ? routes[i].pattern[part - 1]
								  : "");
				json_array_append_new(parameters,
						      json_pack("{s:s, s:s, s:b, s:{s:s}}", "name",
								name, "in", "path", "required", 1,
								"schema", "type", "string"));
				used += (size_t)snprintf(path + used, sizeof(path) - used, "/{%s}",
							 name);
			} else {
				used += (size_t)snprintf(path + used, sizeof(path) - used, "/%s",
							 name);
			}
		}
		if (path[0] == '\0')
			snprintf(path, sizeof(path), "/");
		web_route_format(&routes[i], key, sizeof(key));
		for (size_t c = 0; c <= strlen(routes[i].method) && c < sizeof(method); c++)
			method[c] = (char)(routes[i].method[c] | (routes[i].method[c] ? 0x20 : 0));
		item = json_object_get(paths, path);
		if (item == NULL) {
			item = json_object();
			json_object_set_new(paths, path, item);
		}
		json_object_set_new(item, method,
				    web_openapi_operation(&routes[i], key, parameters));
	}
	return web_reply_json(
		route->connection, MHD_HTTP_OK,
		json_pack("{s:s, s:{s:s, s:s, s:s}, s:{s:{s:{s:s, s:s}}}, s:[{s:[]}], s:o}",
			  "openapi", "3.0.3", "info", "title", "ferryd", "version", FERRY_VERSION,
			  "description",
			  "The API of one ferry site. Answers are JSON; every error is "
			  "{\"error\": {\"code\", \"message\"}}. x-ferry-role is the role a "
			  "route needs: viewer, operator, admin, peer (the site-to-site routes, "
			  "on what that peer pushed) or viewer-or-peer.",
			  "components", "securitySchemes", "bearer", "type", "http", "scheme",
			  "bearer", "security", "bearer", "paths", paths));
}
