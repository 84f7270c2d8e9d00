/* The everyday verbs on protection groups and replica sites: create (never silently rewrite),
 * set, list, sync now, pause and resume (recorded, shown as paused), delete, and list or remove a
 * site. Removing refuses while anything still depends on the object, naming what to do first. */
#include "web/web.h"
#include "common/error.h"
#include "common/util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static json_t *
web_group_json(const struct catalog_group *group)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:b, s:I}", "name", group->name, "interval",
			 (json_int_t)group->interval_s, "keep", (json_int_t)group->keep,
			 "rpo_target", (json_int_t)catalog_group_rpo_target(group), "paused",
			 group->paused_ms > 0, "paused_since_ms", (json_int_t)group->paused_ms);
}

/* Reads interval, keep and rpo from body onto group (those given); 0 or FERRY_ERR_INVALID. */
static int
web_group_settings(json_t *body, struct catalog_group *group, bool interval_required)
{
	json_t *interval = json_object_get(body, "interval"), *keep = json_object_get(body, "keep"),
	       *rpo = json_object_get(body, "rpo");

	if ((interval_required && interval == NULL) ||
	    (interval && (!json_is_integer(interval) || json_integer_value(interval) < 1 ||
			  json_integer_value(interval) > 86400)) ||
	    (keep && (!json_is_integer(keep) || json_integer_value(keep) < 1 ||
		      json_integer_value(keep) > 1000)) ||
	    (rpo && (!json_is_integer(rpo) || json_integer_value(rpo) < 1 ||
		     json_integer_value(rpo) > 30 * 86400)))
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"a group needs a 'name', an 'interval' of 1 to 86400 seconds "
			"and, optionally, 'keep' of 1 to 1000 points and 'rpo' of 1 "
			"to 2592000 seconds");
	if (interval)
		group->interval_s = json_integer_value(interval);
	if (keep)
		group->keep = json_integer_value(keep);
	if (rpo)
		group->rpo_s = json_integer_value(rpo);
	return 0;
}

enum MHD_Result
web_group_create(struct web_route_context *route)
{
	struct catalog_group group = {.keep = 3};
	const char *name;
	json_t *body;
	int code = 0;

	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	name = json_string_value(json_object_get(body, "name"));
	code = web_group_settings(body, &group, true);
	if (code == 0 && !util_volume_name_valid(name))
		code = ferry_error_set(FERRY_ERR_INVALID,
				       "a group needs a 'name' (1 to %d letters, digits, '.', '_' "
				       "or '-'), an 'interval' of 1 to 86400 seconds and, "
				       "optionally, 'keep' of 1 to 1000 points",
				       VOLUME_NAME_MAX);
	if (code == 0) {
		snprintf(group.name, sizeof(group.name), "%s", name);
		code = catalog_group_create(route->server->options.catalog, &group);
	}
	json_decref(body);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	catalog_event_add(route->server->options.catalog, "info", group.name,
			  "group created: a point every %lld s, %lld kept, RPO target %lld s",
			  (long long)group.interval_s, (long long)group.keep,
			  (long long)catalog_group_rpo_target(&group));
	return web_reply_json(route->connection, MHD_HTTP_OK, web_group_json(&group));
}

/* The group named by the path, or a reply already queued. */
static int
web_group_of_path(struct web_route_context *route, struct catalog_group *group)
{
	if (!util_volume_name_valid(route->parts[2]))
		return ferry_error_set(FERRY_ERR_INVALID, "'%.80s' is not a group name",
				       route->parts[2]);
	return catalog_group_get(route->server->options.catalog, route->parts[2], group);
}

enum MHD_Result
web_group_set(struct web_route_context *route)
{
	struct catalog_group group;
	json_t *body;
	int code = 0;

	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	code = web_group_of_path(route, &group);
	if (code == 0)
		code = web_group_settings(body, &group, false);
	if (code == 0)
		code = catalog_group_put(route->server->options.catalog, &group);
	json_decref(body);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	catalog_event_add(route->server->options.catalog, "info", group.name,
			  "group changed: a point every %lld s, %lld kept, RPO target %lld s",
			  (long long)group.interval_s, (long long)group.keep,
			  (long long)catalog_group_rpo_target(&group));
	return web_reply_json(route->connection, MHD_HTTP_OK, web_group_json(&group));
}

static int
web_group_entry(const struct catalog_group *group, void *context)
{
	return json_array_append_new(context, web_group_json(group)) ? FERRY_ERR_NO_MEMORY : 0;
}

enum MHD_Result
web_group_list(struct web_route_context *route)
{
	json_t *groups = json_array();
	int code = catalog_group_list(route->server->options.catalog, web_group_entry, groups);

	if (code < 0) {
		json_decref(groups);
		return web_reply_last_error(route->connection, code);
	}
	return web_reply_json(route->connection, MHD_HTTP_OK, json_pack("{s:o}", "groups", groups));
}

enum MHD_Result
web_group_sync(struct web_route_context *route)
{
	struct catalog_group group;
	int code = web_group_of_path(route, &group);

	if (code < 0)
		return web_reply_last_error(route->connection, code);
	if (route->server->options.cutover == NULL ||
	    route->server->options.cutover->scheduler == NULL)
		return web_reply_error(route->connection, FERRY_ERR_INVALID,
				       "this daemon runs no scheduler: it takes no points");
	repl_scheduler_request(route->server->options.cutover->scheduler, group.name);
	catalog_event_add(route->server->options.catalog, "info", group.name,
			  "a point asked for now (by %s)", route->request->identity.name);
	return web_reply_json(route->connection, MHD_HTTP_ACCEPTED,
			      json_pack("{s:s, s:b}", "group", group.name, "requested", 1));
}

static enum MHD_Result
web_group_pause_set(struct web_route_context *route, bool pause)
{
	struct catalog_group group;
	int code = web_group_of_path(route, &group);

	if (code == 0 && pause != (group.paused_ms == 0))
		code = ferry_error_set(FERRY_ERR_CONFLICT, "group %s is %s already", group.name,
				       pause ? "paused" : "running");
	if (code == 0) {
		group.paused_ms = pause ? util_now_ms() : 0;
		code = catalog_group_put(route->server->options.catalog, &group);
	}
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	catalog_event_add_kind(route->server->options.catalog, "state", pause ? "warn" : "info",
			       group.name, "%s by %s",
			       pause ? "paused: no point is taken on its schedule" : "resumed",
			       route->request->identity.name);
	return web_reply_json(route->connection, MHD_HTTP_OK, web_group_json(&group));
}

enum MHD_Result
web_group_pause(struct web_route_context *route)
{
	return web_group_pause_set(route, true);
}

enum MHD_Result
web_group_resume(struct web_route_context *route)
{
	return web_group_pause_set(route, false);
}

enum MHD_Result
web_group_delete(struct web_route_context *route)
{
	struct catalog_group group;
	int code = web_group_of_path(route, &group);

	if (code == 0)
		code = catalog_group_remove(route->server->options.catalog, group.name);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	catalog_event_add(route->server->options.catalog, "info", group.name, "group deleted");
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:s, s:b}", "group", group.name, "deleted", 1));
}

static int
web_site_entry(const struct catalog_site *site, void *context)
{
	/* Where the secrets are kept stays with the daemon; whether there is a CA is enough. */
	return json_array_append_new(context,
				     json_pack("{s:s, s:s, s:b}", "name", site->name, "url",
					       site->url, "cacert", site->cacert_path[0] != '\0'))
		       ? FERRY_ERR_NO_MEMORY
		       : 0;
}

enum MHD_Result
web_site_list(struct web_route_context *route)
{
	json_t *sites = json_array();
	int code = catalog_site_list(route->server->options.catalog, web_site_entry, sites);

	if (code < 0) {
		json_decref(sites);
		return web_reply_last_error(route->connection, code);
	}
	return web_reply_json(route->connection, MHD_HTTP_OK, json_pack("{s:o}", "sites", sites));
}

enum MHD_Result
web_site_remove(struct web_route_context *route)
{
	const char *name = route->parts[2];
	struct catalog_site site;
	int code = util_volume_name_valid(name)
			   ? catalog_site_get(route->server->options.catalog, name, &site)
			   : ferry_error_set(FERRY_ERR_INVALID, "'%.80s' is not a site name", name);

	if (code == 0)
		code = catalog_site_remove(route->server->options.catalog, name);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	/* Its secrets go with it. */
	unlink(site.token_path);
	if (site.cacert_path[0])
		unlink(site.cacert_path);
	catalog_event_add(route->server->options.catalog, "info", name, "replica site removed");
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:s, s:b}", "site", name, "removed", 1));
}
