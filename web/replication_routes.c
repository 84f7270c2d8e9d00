/* ferryd's routes that configure continuous replication: replica sites (with their secrets,
 * kept 0600 in STATE/secrets), protection groups, protections, and the pruning of a replica's
 * points that its primary asks for. */
#include "web/web.h"
#include "common/error.h"
#include "common/util.h"

#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>

/* Keeps a peer secret in STATE/secrets/NAME, readable by the daemon only. */
static int
web_secret_write(struct web_server *server, const char *name, const char *content, char *path,
		 size_t size)
{
	char folder[4096];
	int rc;

	rc = util_format(folder, sizeof(folder), "the secrets folder", "%s/secrets",
			 server->options.state_dir);
	if (rc == 0)
		rc = util_mkdir_p(folder, 0700);
	if (rc == 0)
		rc = util_format(path, size, "the path of a secret", "%s/%s", folder, name);
	if (rc < 0)
		return rc;
	return util_write_file_atomic(path, content, strlen(content), 0600);
}

/* An https URL without userinfo, spaces, backslashes or control bytes. */
static bool
web_url_plain(const char *url)
{
	for (const char *c = url; *c; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '\\' ||
		    *c == '@')
			return false;
	return true;
}

static int
web_pem_certificate_valid(const char *pem)
{
	gnutls_x509_crt_t certificates[16];
	unsigned int count = 16;
	gnutls_datum_t data = {(unsigned char *)pem, (unsigned int)strlen(pem)};
	int rc = gnutls_x509_crt_list_import(certificates, &count, &data, GNUTLS_X509_FMT_PEM, 0);

	if (rc < 0 || count == 0)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "'cacert_pem' is not a PEM certificate: %s",
				       rc < 0 ? gnutls_strerror(rc) : "none in it");
	for (unsigned int i = 0; i < count; i++)
		gnutls_x509_crt_deinit(certificates[i]);
	return 0;
}

enum MHD_Result
web_site_add(struct web_route_context *route)
{
	struct catalog_site site;
	const char *name, *url, *token, *cacert;
	char file[VOLUME_NAME_MAX + 32];
	json_t *body;
	int code = 0;

	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	memset(&site, 0, sizeof(site));
	name = json_string_value(json_object_get(body, "name"));
	url = json_string_value(json_object_get(body, "url"));
	token = json_string_value(json_object_get(body, "token"));
	cacert = json_string_value(json_object_get(body, "cacert_pem"));
	if (code == 0 &&
	    (!util_volume_name_valid(name) || url == NULL || strncmp(url, "https://", 8) != 0 ||
	     token == NULL || !web_token_syntax(token) || strlen(url) >= sizeof(site.url)))
		code = ferry_error_set(
			FERRY_ERR_INVALID,
			"a site needs a 'name' (A-Z a-z 0-9 . _ -), an https:// 'url' "
			"and the peer's 'token' (one line of letters, digits and "
			"-._~+/=)");
	/* No user:password@ (it would be shown wherever the URL is), no space or control byte. */
	if (code == 0 && !web_url_plain(url))
		code = ferry_error_set(
			FERRY_ERR_INVALID,
			"'url' must be https://HOST:PORT in ASCII (a name in another "
			"script as punycode), without user:password@, spaces or "
			"control bytes");
	if (code == 0 && cacert && cacert[0] && web_pem_certificate_valid(cacert) < 0)
		code = FERRY_ERR_INVALID;
	if (code == 0 && !json_is_true(json_object_get(body, "replace")) &&
	    catalog_site_get(route->server->options.catalog, name, &site) == 0)
		code = ferry_error_set(FERRY_ERR_CONFLICT,
				       "site %s exists already (%s): replication goes there; give "
				       "--replace to point it elsewhere",
				       name, site.url);
	if (code < 0) {
		json_decref(body);
		return web_reply_last_error(route->connection, code);
	}
	memset(&site, 0, sizeof(site));
	snprintf(site.name, sizeof(site.name), "%s", name);
	snprintf(site.url, sizeof(site.url), "%s", url);
	snprintf(file, sizeof(file), "site-%s.token", name);
	code = web_secret_write(route->server, file, token, site.token_path,
				sizeof(site.token_path));
	if (code == 0 && cacert && cacert[0]) {
		snprintf(file, sizeof(file), "site-%s.ca.pem", name);
		code = web_secret_write(route->server, file, cacert, site.cacert_path,
					sizeof(site.cacert_path));
	}
	if (code == 0)
		code = catalog_site_put(route->server->options.catalog, &site);
	if (code == 0)
		catalog_event_add(route->server->options.catalog, "info", name,
				  "replica site %s at %s", name, url);
	json_decref(body);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	/* The token is never echoed. */
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:s, s:s, s:b}", "name", site.name, "url", site.url,
					"cacert", site.cacert_path[0] != '\0'));
}

/* The pool part of rbd:POOL/IMAGE, in pool (size 128). */
enum MHD_Result
web_protect(struct web_route_context *route)
{
	struct catalog *catalog = route->server->options.catalog;
	struct catalog_protection protection;
	struct catalog_group group;
	struct catalog_site site;
	const char *text, *slash;
	json_t *body;
	int code = 0;

	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	memset(&protection, 0, sizeof(protection));
	text = json_string_value(json_object_get(body, "source"));
	if (text == NULL || strncmp(text, "rbd:", 4) != 0 || strchr(text, '@') ||
	    strlen(text) >= sizeof(protection.source) || !(slash = strchr(text, '/'))) {
		json_decref(body);
		return web_reply_error(route->connection, FERRY_ERR_INVALID,
				       "continuous replication protects RBD images: give 'source' "
				       "as rbd:POOL/IMAGE");
	}
	snprintf(protection.source, sizeof(protection.source), "%s", text);
	snprintf(protection.group, sizeof(protection.group), "%s",
		 json_string_value(json_object_get(body, "group")) ?: "");
	snprintf(protection.site, sizeof(protection.site), "%s",
		 json_string_value(json_object_get(body, "site")) ?: "");
	text = json_string_value(json_object_get(body, "replica"));
	snprintf(protection.replica, sizeof(protection.replica), "%s", text ? text : slash + 1);
	json_decref(body);
	if (!util_volume_name_valid(protection.replica))
		return web_reply_error(route->connection, FERRY_ERR_INVALID,
				       "replica name '%s' is not a volume name",
				       protection.replica);
	code = catalog_group_get(catalog, protection.group, &group);
	if (code == 0)
		code = catalog_site_get(catalog, protection.site, &site);
	if (code == 0)
		code = repl_protection_add(catalog, &protection);
	if (code == 0)
		catalog_event_add(catalog, "info", protection.source,
				  "protected in group %s, replica %s at site %s", protection.group,
				  protection.replica, protection.site);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:s, s:s, s:s, s:s}", "source", protection.source,
					"group", protection.group, "site", protection.site,
					"replica", protection.replica));
}

enum MHD_Result
web_unprotect(struct web_route_context *route)
{
	const char *source;
	json_t *body;
	int code = 0;

	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	source = json_string_value(json_object_get(body, "source"));
	code = source ? repl_protection_remove(route->server->options.catalog, source, NULL, 0)
		      : ferry_error_set(FERRY_ERR_INVALID, "give the 'source' to unprotect");
	if (code == 0)
		catalog_event_add(route->server->options.catalog, "info", source, "unprotected");
	json_decref(body);
	if (code < 0)
		return web_reply_last_error(route->connection, code);
	return web_reply_json(route->connection, MHD_HTTP_OK, json_pack("{s:b}", "removed", 1));
}

enum MHD_Result
web_volume_prune(struct web_route_context *route)
{
	struct repl_retention retention = {0};
	struct repl_push_group push = {0};
	json_t *body, *keep_from, *also, *point;
	enum MHD_Result result;
	int code = 0, removed = 0;
	bool also_valid;
	size_t i;

	body = web_parse_json_body(route, &code);
	if (body == NULL)
		return web_reply_last_error(route->connection, code);
	keep_from = json_object_get(body, "keep_from");
	also = json_object_get(body, "also_keep"); /* optional: older points still needed */
	retention.keep_from = json_integer_value(keep_from);
	also_valid = also == NULL || json_is_array(also);
	json_array_foreach(also, i, point) {
		if (json_is_integer(point) && json_integer_value(point) >= 1)
			repl_retention_also(&retention, json_integer_value(point));
		else
			also_valid = false;
	}
	if (!json_is_integer(keep_from) || retention.keep_from < 1)
		code = ferry_error_set(FERRY_ERR_INVALID, "'keep_from' must be a point number");
	else if (!also_valid)
		code = ferry_error_set(FERRY_ERR_INVALID,
				       "'also_keep' must be an array of point numbers");
	else
		code = web_push_group_parse(body, &push);
	if (code == 0)
		code = repl_receiver_prune(route->server->options.receiver, route->parts[2], &push,
					   &retention, &removed);
	if (code < 0) {
		result = web_reply_push_error(route, code, route->parts[2], &push);
		json_decref(body);
		return result;
	}
	json_decref(body);
	return web_reply_json(route->connection, MHD_HTTP_OK,
			      json_pack("{s:i}", "removed", removed));
}
