/* POST /v1/groups/NAME/promote (admin): `ferry group promote`, at the replica site of a group
 * without VMs. The replicator does the work (repl_group_promote: back to a point, promoted,
 * generation raised); this route reads the request and says what was done. A group with VMs is
 * ferry failover's. */
#include "web/web.h"
#include "common/error.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum MHD_Result
web_group_promote(struct web_route_context *route)
{
	struct repl_promote_result *result = NULL;
	json_t *body, *point, *force, *volumes = NULL, *reply = NULL;
	const char *group = route->parts[2];
	enum MHD_Result answer;
	int code = 0;

	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	point = json_object_get(body, "point");
	force = json_object_get(body, "force");
	if ((point && (!json_is_integer(point) || json_integer_value(point) < 1)) ||
	    (force && !json_is_boolean(force)))
		code = ferry_error_set(FERRY_ERR_INVALID,
				       "'point' must be a point number and 'force' true or false");
	else if (!util_volume_name_valid(group))
		code = ferry_error_set(FERRY_ERR_INVALID, "'%.80s' is not a group name", group);
	if (code == 0) {
		result = calloc(1, sizeof(*result));
		code = result ? 0 : ferry_error_no_memory();
	}
	if (code == 0)
		code = repl_group_promote(
			route->server->options.receiver, route->server->options.catalog, group,
			point ? json_integer_value(point) : 0, json_is_true(force), result);
	if (code == 0) {
		volumes = json_array();
		for (size_t i = 0; volumes && i < result->volume_count; i++)
			json_array_append_new(volumes, json_string(result->volumes[i]));
		reply = json_pack("{s:s, s:I, s:I, s:o, s:b, s:s}", "group", group, "point",
				  (json_int_t)result->point, "generation",
				  (json_int_t)result->generation, "volumes", volumes, "force",
				  json_is_true(force), "state", "promoted");
		if (reply == NULL)
			code = ferry_error_no_memory();
	}
	json_decref(body);
	free(result);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	answer = web_reply_json(route->connection, MHD_HTTP_OK, reply);
	return answer;
}
