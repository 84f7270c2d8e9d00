/* The web console's files, built into ferryd (web/embed-console.sh): GET / is index.html, GET
 * /console/NAME each other file. They are public (the login page must load); every answer says
 * how a browser must treat it: this origin's scripts and styles only, no framing, no sniffing. */
#include "web/web.h"
#include "common/error.h"

#include <string.h>

struct web_console_asset {
	const char *name;
	const unsigned char *data;
	size_t length;
};
extern const struct web_console_asset web_console_assets[];

static const char *
web_console_type(const char *name)
{
	static const struct {
		const char *suffix, *type;
	} types[] = {
		{".html", "text/html; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},
		{".svg", "image/svg+xml"},
		{".png", "image/png"},
	};
	size_t length = strlen(name);

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (length > strlen(types[i].suffix) &&
		    strcmp(name + length - strlen(types[i].suffix), types[i].suffix) == 0)
			return types[i].type;
	return "application/octet-stream";
}

static enum MHD_Result
web_console_send(struct web_route_context *route, const char *name)
{
	struct MHD_Response *response;

	for (size_t i = 0; web_console_assets[i].name; i++) {
		if (strcmp(web_console_assets[i].name, name) != 0)
			continue;
		response = MHD_create_response_from_buffer(web_console_assets[i].length,
							   (void *)web_console_assets[i].data,
							   MHD_RESPMEM_PERSISTENT);
		if (response == NULL)
			return MHD_NO;
		MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
					web_console_type(name));
		MHD_add_response_header(
			response, "Content-Security-Policy",
			"default-src 'self'; script-src 'self'; style-src 'self'; "
			"img-src 'self' data:; connect-src 'self'; "
			"frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
		MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
		MHD_add_response_header(response, "X-Frame-Options", "DENY");
		MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
		MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
		return web_reply_response(route->connection, MHD_HTTP_OK, response);
	}
	return web_reply_error(route->connection, FERRY_ERR_NOT_FOUND,
			       "no console file '%.80s' in this ferryd", name);
}

enum MHD_Result
web_console_index(struct web_route_context *route)
{
	return web_console_send(route, "index.html");
}

enum MHD_Result
web_console_file(struct web_route_context *route)
{
	return web_console_send(route, route->parts[1]);
}
