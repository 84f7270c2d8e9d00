/* ferryd's cutover routes: registering VMs, the other site's side of migrations, failovers and
 * reprotects, and the runs that carry them out. Each hands over to cutover/; a peer reaches
 * only the VM records it pushed and the activations it asked for. */
#include "web/web.h"
#include "common/error.h"
#include "common/util.h"

#include <string.h>

static enum MHD_Result
web_cutover_unavailable(struct web_route_context *route)
{
	return web_reply_error(route->connection, FERRY_ERR_INVALID,
			       "this ferryd runs no cutover service");
}

/* The cutover calls share one shape: a JSON body in, a JSON reply (new reference) out. */
typedef int (*web_cutover_function)(const struct cutover_site *site, json_t *body, json_t **reply);

static enum MHD_Result
web_cutover_call_owned(struct web_route_context *route, web_cutover_function call, bool vm_record,
		       bool claim)
{
	json_t *body, *reply = NULL;
	int code = 0;

	if (route->server->options.cutover == NULL)
		return web_cutover_unavailable(route);
	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	/* A peer may only touch the VM records it sent. */
	if (vm_record && !util_volume_name_valid(json_string_value(json_object_get(body, "name"))))
		code = ferry_error_set(FERRY_ERR_INVALID, "give the VM's 'name'");
	else if (vm_record)
		code = web_peer_owns(route, "vm", json_string_value(json_object_get(body, "name")),
				     false);
	if (code == 0)
		code = call(route->server->options.cutover, body, &reply);
	if (code == 0 && vm_record && claim)
		code = web_peer_owns(route, "vm", json_string_value(json_object_get(body, "name")),
				     true);
	json_decref(body);
	if (code < 0) {
		json_decref(reply);
		return web_reply_last_error(route->connection, code);
	}
	return web_reply_json(route->connection, MHD_HTTP_OK, reply ? reply : json_object());
}

static enum MHD_Result
web_cutover_call(struct web_route_context *route, web_cutover_function call)
{
	return web_cutover_call_owned(route, call, false, false);
}

static int
web_vm_protect_call(const struct cutover_site *site, json_t *body, json_t **reply)
{
	int code = cutover_vm_protect(site, body, reply);

	if (code == 0)
		json_object_del(*reply, "xml"); /* secrets may be in it: it stays in the catalogs */
	return code;
}

static int
web_vm_receive_call(const struct cutover_site *site, json_t *body, json_t **reply)
{
	int code = cutover_vm_receive(site, body);

	*reply = code == 0 ? json_pack("{s:b}", "stored", 1) : NULL;
	return code;
}

static int
web_vm_promote_call(const struct cutover_site *site, json_t *body, json_t **reply)
{
	int code =
		json_is_string(json_object_get(body, "name"))
			? cutover_vm_promote(site, json_string_value(json_object_get(body, "name")),
					     json_integer_value(json_object_get(body, "run")),
					     json_integer_value(json_object_get(body, "point")))
			: ferry_error_set(FERRY_ERR_INVALID, "give the VM's 'name'");

	*reply = code == 0 ? json_pack("{s:b}", "promoted", 1) : NULL;
	return code;
}

enum MHD_Result
web_vm_protect(struct web_route_context *route)
{
	return web_cutover_call(route, web_vm_protect_call);
}

enum MHD_Result
web_vm_unprotect(struct web_route_context *route)
{
	return web_cutover_call(route, cutover_vm_unprotect);
}

enum MHD_Result
web_vm_forget(struct web_route_context *route)
{
	return web_cutover_call_owned(route, cutover_vm_forget, true, false);
}

enum MHD_Result
web_vm_receive(struct web_route_context *route)
{
	return web_cutover_call_owned(route, web_vm_receive_call, true, true);
}

enum MHD_Result
web_vm_remap(struct web_route_context *route)
{
	return web_cutover_call_owned(route, cutover_vm_remap, true, false);
}

enum MHD_Result
web_reprotect_prepare(struct web_route_context *route)
{
	return web_cutover_call(route, cutover_reprotect_prepare);
}

enum MHD_Result
web_vm_promote(struct web_route_context *route)
{
	return web_cutover_call_owned(route, web_vm_promote_call, true, false);
}

static int
web_vm_entry(const char *name, const char *role, const char *group, const char *record,
	     void *context)
{
	json_t *parsed = json_loads(record, 0, NULL), *disks = json_object_get(parsed, "disks");

	json_array_append_new(
		context, json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:O, s:O}", "name", name, "role",
				   role, "state", cutover_record_state_name(parsed, role), "group",
				   group, "uri", json_object_get(parsed, "uri") ?: json_null(),
				   "dest_uri", json_object_get(parsed, "dest_uri") ?: json_null(),
				   "order", json_object_get(parsed, "order") ?: json_null(),
				   "disks", disks ? disks : json_null()));
	json_decref(parsed);
	return 0;
}

enum MHD_Result
web_vm_list(struct web_route_context *route)
{
	json_t *vms = json_array();
	int code = catalog_vm_list(route->server->options.catalog, NULL, web_vm_entry, vms);

	if (code < 0) {
		json_decref(vms);
		return web_reply_last_error(route->connection, code);
	}
	return web_reply_json(route->connection, MHD_HTTP_OK, json_pack("{s:o}", "vms", vms));
}

/* Starts a run of kind described by body (taken) unless code already refused it: 202 {run}. */
static enum MHD_Result
web_run_launch(struct web_route_context *route, json_t *body, const char *kind, int code)
{
	int64_t id = 0;

	if (code == 0)
		code = cutover_run_start(route->server->options.cutover, kind, body, &id);
	json_decref(body);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	return web_reply_json(route->connection, MHD_HTTP_ACCEPTED,
			      json_pack("{s:I}", "run", (json_int_t)id));
}

enum MHD_Result
web_run_start(struct web_route_context *route)
{
	json_t *body;
	int code = 0;

	if (route->server->options.cutover == NULL)
		return web_cutover_unavailable(route);
	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	code = json_is_string(json_object_get(body, "kind"))
		       ? 0
		       : ferry_error_set(FERRY_ERR_INVALID, "give the run's 'kind'");
	/* The route asks for operator (planned migrations, test failovers); these take over or
	 * give away a site's disks, and ask for admin. */
	if (code == 0 && route->request->identity.role != WEB_ROLE_ADMIN) {
		const char *kind = json_string_value(json_object_get(body, "kind"));
		const struct cutover_kind *known = cutover_kind_find(kind);

		if (known && known->admin)
			code = ferry_error_set(FERRY_ERR_FORBIDDEN,
					       "a %s run needs the admin role (token %s is %s)",
					       kind, route->request->identity.name,
					       web_role_name(route->request->identity.role));
	}
	return web_run_launch(route, body, json_string_value(json_object_get(body, "kind")), code);
}

struct web_run_context {
	struct catalog *catalog;
	json_t *runs;
};

static int
web_run_entry(const struct catalog_run *run, void *context)
{
	struct web_run_context *list = context;
	json_t *entry = cutover_run_json(list->catalog, run);

	return entry ? json_array_append_new(list->runs, entry) : ferry_error_no_memory();
}

enum MHD_Result
web_run_list(struct web_route_context *route)
{
	struct web_run_context list = {route->server->options.catalog, json_array()};
	int code = catalog_run_list(list.catalog, 0, 100, web_run_entry, &list);

	if (code < 0) {
		json_decref(list.runs);
		return web_reply_last_error(route->connection, code);
	}
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:o}", "runs", list.runs));
}

static int64_t
web_run_id(struct web_route_context *route)
{
	int64_t id = 0;

	return util_parse_int64(route->parts[2], 1, INT64_MAX, &id) == 0 ? id : 0;
}

enum MHD_Result
web_run_show(struct web_route_context *route)
{
	struct web_run_context list = {route->server->options.catalog, json_array()};
	int64_t id = web_run_id(route);
	int code = id ? catalog_run_list(list.catalog, id, 1, web_run_entry, &list)
		      : ferry_error_set(FERRY_ERR_INVALID, "'%s' is not a run id", route->parts[2]);
	json_t *run;

	if (code < 0) {
		json_decref(list.runs);
		return web_reply_last_error(route->connection, code);
	}
	run = json_incref(json_array_get(list.runs, 0));
	json_decref(list.runs);
	/* A peer follows only the activations it asked for, of the VMs it pushed. */
	if (route->request->identity.role == WEB_ROLE_PEER) {
		const char *kind = json_string_value(json_object_get(run, "kind"));

		code = kind && strcmp(kind, "activate") == 0
			       ? web_peer_owns(route, "vm",
					       json_string_value(json_object_get(run, "target")),
					       false)
			       : ferry_error_set(FERRY_ERR_FORBIDDEN,
						 "a peer may follow only the activations it asked "
						 "for");
		if (code < 0) {
			json_decref(run);
			return web_reply_last_error(route->connection, code);
		}
	}
	return web_reply_json(route->connection, MHD_HTTP_OK, run);
}

/* The replica's side of a planned cold migration: the primary asks it to bring up a VM it
 * pushed (a run of kind activate), and follows the run through GET /v1/runs/ID. */
enum MHD_Result
web_vm_activate(struct web_route_context *route)
{
	json_t *body;
	const char *name;
	int code = 0;

	if (route->server->options.cutover == NULL)
		return web_cutover_unavailable(route);
	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	name = json_string_value(json_object_get(body, "vm"));
	if (!util_volume_name_valid(name))
		code = ferry_error_set(FERRY_ERR_INVALID, "name the VM to activate ('vm')");
	if (code == 0)
		code = web_peer_owns(route, "vm", name, false);
	if (code == 0)
		json_object_set_new(body, "kind", json_string("activate"));
	return web_run_launch(route, body, "activate", code);
}

/* POST /v1/runs/ID/resume and /abort: act on the run, 202 with answer and the run's id. */
static enum MHD_Result
web_run_act(struct web_route_context *route,
	    int (*act)(const struct cutover_site *site, int64_t run_id), json_t *answer)
{
	int64_t id = web_run_id(route);
	int code;

	if (route->server->options.cutover == NULL) {
		json_decref(answer);
		return web_cutover_unavailable(route);
	}
	code = id ? act(route->server->options.cutover, id)
		  : ferry_error_set(FERRY_ERR_INVALID, "'%s' is not a run id", route->parts[2]);
	if (code < 0) {
		json_decref(answer);
		return web_reply_last_error(route->connection, code);
	}
	json_object_set_new(answer, "run", json_integer(id));
	return web_reply_json(route->connection, MHD_HTTP_ACCEPTED, answer);
}

enum MHD_Result
web_run_resume(struct web_route_context *route)
{
	return web_run_act(route, cutover_run_resume, json_object());
}

enum MHD_Result
web_run_abort(struct web_route_context *route)
{
	return web_run_act(route, cutover_run_abort, json_pack("{s:b}", "abort_requested", 1));
}

enum MHD_Result
web_run_rollback(struct web_route_context *route)
{
	int64_t id = web_run_id(route), rollback_id = 0;
	int code;

	if (route->server->options.cutover == NULL)
		return web_cutover_unavailable(route);
	code = id ? cutover_run_rollback(route->server->options.cutover, id, &rollback_id)
		  : ferry_error_set(FERRY_ERR_INVALID, "'%s' is not a run id", route->parts[2]);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	return web_reply_json(route->connection, MHD_HTTP_ACCEPTED,
			      json_pack("{s:I}", "run", (json_int_t)rollback_id));
}
