/* libvirt connections and domain XML rewriting for cutover: libvirt's errors are caught per
 * thread (never printed) and turned into ferry errors; the XML is edited with libxml2, so that
 * every element libvirt wrote is kept as it was. */
#include "cutover/virt.h"
#include "cutover/cutover.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"

#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

const char *
cutover_virt_message(void)
{
	virErrorPtr error = virGetLastError();

	return error && error->message ? error->message : "unknown error";
}

/* The libvirt connections this daemon may open, from its own configuration only: a URI that
 * comes with a request (qemu+ext:///...?command=PROG runs PROG; tcp and ssh reach any host) is
 * never opened unless it is one of these. Filled at start and replaced whole at a reload
 * (SIGHUP), under a lock that every lookup takes. */
#define CUTOVER_LIBVIRT_MAX 64
static struct {
	char name[CUTOVER_LIBVIRT_NAME_MAX + 1];
	char uri[CUTOVER_LIBVIRT_URI_MAX + 1];
} cutover_libvirt[CUTOVER_LIBVIRT_MAX];
static int cutover_libvirt_count;
static pthread_rwlock_t cutover_libvirt_lock = PTHREAD_RWLOCK_INITIALIZER;

static int
cutover_virt_allow_locked(const char *name, const char *uri)
{
	size_t name_length = strlen(name), uri_length = strlen(uri);
	const char *scheme_end = strstr(uri, "://");

	if (name_length == 0 || name_length > CUTOVER_LIBVIRT_NAME_MAX ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
		    name_length)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "libvirt connection name '%.80s' must be 1 to %d letters, "
				       "digits, '.', '_' or '-'",
				       name, CUTOVER_LIBVIRT_NAME_MAX);
	if (uri_length == 0 || uri_length > CUTOVER_LIBVIRT_URI_MAX || scheme_end == NULL ||
	    strpbrk(uri, " \t\r\n") != NULL)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "libvirt connection %s: '%.120s' is not a libvirt URI "
				       "(DRIVER[+TRANSPORT]://[HOST]/PATH, at most %d characters)",
				       name, uri, CUTOVER_LIBVIRT_URI_MAX);
	/* The ext transport runs a program named in the URI: never, even from the configuration. */
	if (memchr(uri, '+', (size_t)(scheme_end - uri)) &&
	    strncasecmp(strchr(uri, '+'), "+ext:", 5) == 0)
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"libvirt connection %s: the ext transport runs a program; use "
			"unix, tls or ssh",
			name);
	for (int i = 0; i < cutover_libvirt_count; i++)
		if (strcmp(cutover_libvirt[i].name, name) == 0)
			return ferry_error_set(FERRY_ERR_INVALID,
					       "libvirt connection %s is configured twice", name);
	if (cutover_libvirt_count == CUTOVER_LIBVIRT_MAX)
		return ferry_error_set(FERRY_ERR_INVALID, "more than %d libvirt connections",
				       CUTOVER_LIBVIRT_MAX);
	snprintf(cutover_libvirt[cutover_libvirt_count].name, sizeof(cutover_libvirt[0].name), "%s",
		 name);
	snprintf(cutover_libvirt[cutover_libvirt_count].uri, sizeof(cutover_libvirt[0].uri), "%s",
		 uri);
	cutover_libvirt_count++;
	return 0;
}

int
cutover_virt_allow(const char *name, const char *uri)
{
	int rc;

	pthread_rwlock_wrlock(&cutover_libvirt_lock);
	rc = cutover_virt_allow_locked(name, uri);
	pthread_rwlock_unlock(&cutover_libvirt_lock);
	return rc;
}

void
cutover_virt_allow_reset(void)
{
	pthread_rwlock_wrlock(&cutover_libvirt_lock);
	cutover_libvirt_count = 0;
	pthread_rwlock_unlock(&cutover_libvirt_lock);
}

int
cutover_virt_allow_replace(char *const *names, char *const *uris, int count)
{
	static __typeof__(cutover_libvirt) kept;
	int kept_count, rc = 0;

	pthread_rwlock_wrlock(&cutover_libvirt_lock);
	memcpy(kept, cutover_libvirt, sizeof(kept));
	kept_count = cutover_libvirt_count;
	cutover_libvirt_count = 0;
	for (int i = 0; i < count && rc == 0; i++)
		rc = cutover_virt_allow_locked(names[i], uris[i]);
	if (rc < 0) {
		memcpy(cutover_libvirt, kept, sizeof(kept));
		cutover_libvirt_count = kept_count;
	}
	pthread_rwlock_unlock(&cutover_libvirt_lock);
	return rc;
}

int
cutover_virt_allowed_list(char *out, size_t size)
{
	size_t used = 0;
	int count;

	out[0] = '\0';
	pthread_rwlock_rdlock(&cutover_libvirt_lock);
	for (int i = 0; i < cutover_libvirt_count && used < size; i++)
		used += (size_t)snprintf(out + used, size - used, "%s%s = %s", i ? "\n" : "",
					 cutover_libvirt[i].name, cutover_libvirt[i].uri);
	count = cutover_libvirt_count;
	pthread_rwlock_unlock(&cutover_libvirt_lock);
	return count;
}

int
cutover_virt_resolve(const char *given, char *uri, size_t size)
{
	char names[1024] = "";
	size_t used = 0;
	int count;

	pthread_rwlock_rdlock(&cutover_libvirt_lock);
	count = cutover_libvirt_count;
	for (int i = 0; i < cutover_libvirt_count; i++) {
		if (strcmp(cutover_libvirt[i].name, given) == 0 ||
		    strcmp(cutover_libvirt[i].uri, given) == 0) {
			snprintf(uri, size, "%s", cutover_libvirt[i].uri);
			pthread_rwlock_unlock(&cutover_libvirt_lock);
			return 0;
		}
		if (used < sizeof(names))
			used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
						 i ? ", " : "", cutover_libvirt[i].name);
	}
	pthread_rwlock_unlock(&cutover_libvirt_lock);
	if (count == 0)
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"libvirt connection '%.120s' is not configured at this site, "
			"which has none: list the ones it may use in the [libvirt] "
			"section of ferryd's configuration (NAME = URI) or with "
			"--libvirt NAME=URI",
			given);
	return ferry_error_set(
		FERRY_ERR_INVALID,
		"libvirt connection '%.120s' is not configured at this site; give one "
		"of its names (%s) or their URIs, or add it to ferryd's [libvirt] "
		"section",
		given, names);
}

int
cutover_virt_open(const char *given, virConnectPtr *out)
{
	char uri[CUTOVER_LIBVIRT_URI_MAX + 1];
	int rc = cutover_virt_resolve(given, uri, sizeof(uri));

	*out = NULL;
	if (rc < 0)
		return rc;
	log_debug("opening libvirt connection %s (%s)", given, uri);
	*out = virConnectOpen(uri);
	if (*out == NULL)
		return ferry_error_set(FERRY_ERR_NETWORK,
				       "cannot reach libvirt at %s: %s; check that libvirtd runs "
				       "there and the URI",
				       uri, cutover_virt_message());
	return 0;
}

void
cutover_virt_close(virConnectPtr connection)
{
	if (connection)
		virConnectClose(connection);
}

int
cutover_virt_domain(virConnectPtr connection, const char *uri, const char *name, virDomainPtr *out)
{
	*out = virDomainLookupByName(connection, name);
	if (*out == NULL) {
		virErrorPtr error = virGetLastError();

		if (error && error->code == VIR_ERR_NO_DOMAIN)
			return ferry_error_set(FERRY_ERR_NOT_FOUND,
					       "no domain named '%s' at %s; check the name "
					       "(virsh list --all)",
					       name, uri);
		return ferry_error_set(FERRY_ERR_IO, "cannot look domain %s up at %s: %s", name,
				       uri, cutover_virt_message());
	}
	return 0;
}

int
cutover_virt_domain_xml(virDomainPtr domain, const char *name, char **xml)
{
	*xml = virDomainGetXMLDesc(domain, VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_INACTIVE);
	if (*xml == NULL)
		return ferry_error_set(FERRY_ERR_IO, "cannot read the XML of domain %s: %s", name,
				       cutover_virt_message());
	return 0;
}

int
cutover_virt_wait_off(virDomainPtr domain, const char *name, int64_t timeout_ms)
{
	int64_t until = util_now_ms() + timeout_ms;

	for (;;) {
		int active = virDomainIsActive(domain);

		if (active == 0)
			return 0;
		if (active < 0)
			return ferry_error_set(FERRY_ERR_IO,
					       "cannot read the state of domain %s: %s", name,
					       cutover_virt_message());
		if (util_now_ms() >= until)
			return ferry_error_set(FERRY_ERR_CONFLICT,
					       "domain %s is still running after %lld ms", name,
					       (long long)timeout_ms);
		nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
	}
}

/* ---- XML ---- */

static int
cutover_xml_parse(const char *xml, xmlDocPtr *document, xmlXPathContextPtr *xpath)
{
	*document = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
				  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (*document == NULL)
		return ferry_error_set(FERRY_ERR_INVALID, "the domain XML does not parse");
	*xpath = xmlXPathNewContext(*document);
	if (*xpath == NULL) {
		xmlFreeDoc(*document);
		return ferry_error_no_memory();
	}
	return 0;
}

static xmlNodePtr
cutover_xml_child(xmlNodePtr node, const char *name)
{
	for (xmlNodePtr child = node->children; child; child = child->next)
		if (child->type == XML_ELEMENT_NODE && xmlStrcmp(child->name, BAD_CAST name) == 0)
			return child;
	return NULL;
}

/* An attribute's value, or "" (a pointer into a static buffer per call site is not needed:
 * libxml2's copy is freed by the caller through xmlFree). */
static char *
cutover_xml_attribute(xmlNodePtr node, const char *name)
{
	xmlChar *value = node ? xmlGetProp(node, BAD_CAST name) : NULL;
	char *copy = strdup(value ? (const char *)value : "");

	xmlFree(value);
	return copy;
}

int
cutover_xml_disks(const char *xml, json_t **disks)
{
	xmlDocPtr document = NULL;
	xmlXPathContextPtr xpath = NULL;
	xmlXPathObjectPtr found = NULL;
	int rc;

	*disks = json_array();
	if (*disks == NULL)
		return ferry_error_no_memory();
	rc = cutover_xml_parse(xml, &document, &xpath);
	if (rc < 0)
		goto out;
	found = xmlXPathEvalExpression(BAD_CAST "/domain/devices/disk", xpath);
	for (int i = 0; found && found->nodesetval && i < found->nodesetval->nodeNr && rc == 0;
	     i++) {
		xmlNodePtr disk = found->nodesetval->nodeTab[i];
		xmlNodePtr source = cutover_xml_child(disk, "source");
		char *type = cutover_xml_attribute(disk, "type");
		char *device = cutover_xml_attribute(disk, "device");
		char *target = cutover_xml_attribute(cutover_xml_child(disk, "target"), "dev");
		char *protocol = cutover_xml_attribute(source, "protocol");
		char *name = cutover_xml_attribute(source, "name");
		char location[600];

		if (strcmp(device, "cdrom") == 0 || strcmp(device, "floppy") == 0) {
			/* removable media are not replicated */
		} else if (strcmp(type, "network") != 0 || strcmp(protocol, "rbd") != 0 ||
			   strchr(name, '/') == NULL) {
			rc = ferry_error_set(FERRY_ERR_INVALID,
					     "disk %s is not an RBD image (type '%s'%s%s); ferry "
					     "replicates and moves RBD disks only",
					     target, type, protocol[0] ? ", protocol " : "",
					     protocol);
		} else {
			snprintf(location, sizeof(location), "rbd:%s", name);
			json_array_append_new(*disks, json_pack("{s:s, s:s}", "target", target,
								"source", location));
		}
		free(type);
		free(device);
		free(target);
		free(protocol);
		free(name);
	}
out:
	xmlXPathFreeObject(found);
	xmlXPathFreeContext(xpath);
	xmlFreeDoc(document);
	if (rc < 0) {
		json_decref(*disks);
		*disks = NULL;
	}
	return rc;
}

static void
cutover_xml_remove_children(xmlNodePtr node, const char *name)
{
	xmlNodePtr child = node->children;

	while (child) {
		xmlNodePtr next = child->next;

		if (child->type == XML_ELEMENT_NODE && xmlStrcmp(child->name, BAD_CAST name) == 0) {
			xmlUnlinkNode(child);
			xmlFreeNode(child);
		}
		child = next;
	}
}

static int
cutover_xml_remap_disk(xmlNodePtr disk, const struct cutover_remap *remap)
{
	xmlNodePtr source = cutover_xml_child(disk, "source"), host, config;
	char *target = cutover_xml_attribute(cutover_xml_child(disk, "target"), "dev");
	const char *image = json_string_value(json_object_get(remap->images, target));
	int rc = 0;

	if (source == NULL || image == NULL) {
		rc = ferry_error_set(FERRY_ERR_INVALID,
				     "disk %s has no replica at the destination; protect the VM "
				     "again (ferry vm protect)",
				     target);
		goto out;
	}
	xmlSetProp(source, BAD_CAST "name", BAD_CAST image);
	cutover_xml_remove_children(source, "host");
	cutover_xml_remove_children(source, "config");
	cutover_xml_remove_children(source, "snapshot");
	/* The destination's ceph.conf names its keyring: no libvirt secret needed there. */
	cutover_xml_remove_children(disk, "auth");
	cutover_xml_remove_children(source, "auth");
	host = xmlNewChild(source, NULL, BAD_CAST "host", NULL);
	xmlSetProp(host, BAD_CAST "name", BAD_CAST remap->mon_host);
	xmlSetProp(host, BAD_CAST "port", BAD_CAST remap->mon_port);
	config = xmlNewChild(source, NULL, BAD_CAST "config", NULL);
	xmlSetProp(config, BAD_CAST "file", BAD_CAST remap->ceph_conf);
out:
	free(target);
	return rc;
}

static void
cutover_xml_remap_interface(xmlNodePtr interface, const struct cutover_remap *remap)
{
	xmlNodePtr source = cutover_xml_child(interface, "source");

	if (remap->isolate) {
		xmlNodePtr link = cutover_xml_child(interface, "link");

		if (link == NULL)
			link = xmlNewChild(interface, NULL, BAD_CAST "link", NULL);
		xmlSetProp(link, BAD_CAST "state", BAD_CAST "down");
	}
	if (source && remap->network_map) {
		static const char *const attributes[] = {"network", "bridge"};

		for (size_t i = 0; i < 2; i++) {
			char *from = cutover_xml_attribute(source, attributes[i]);
			const char *to =
				json_string_value(json_object_get(remap->network_map, from));

			if (from[0] && to)
				xmlSetProp(source, BAD_CAST attributes[i], BAD_CAST to);
			free(from);
		}
	}
}

int
cutover_xml_remap(const char *xml, const struct cutover_remap *remap, char **out)
{
	xmlDocPtr document = NULL;
	xmlXPathContextPtr xpath = NULL;
	xmlXPathObjectPtr found = NULL;
	xmlChar *text = NULL;
	int rc, length = 0;

	*out = NULL;
	rc = cutover_xml_parse(xml, &document, &xpath);
	if (rc < 0)
		return rc;
	found = xmlXPathEvalExpression(BAD_CAST "/domain/devices/disk[@type='network']", xpath);
	for (int i = 0; found && found->nodesetval && i < found->nodesetval->nodeNr && rc == 0; i++)
		rc = cutover_xml_remap_disk(found->nodesetval->nodeTab[i], remap);
	xmlXPathFreeObject(found);
	found = xmlXPathEvalExpression(BAD_CAST "/domain/devices/interface", xpath);
	for (int i = 0; found && found->nodesetval && i < found->nodesetval->nodeNr && rc == 0; i++)
		cutover_xml_remap_interface(found->nodesetval->nodeTab[i], remap);
	if (rc == 0) {
		xmlDocDumpMemory(document, &text, &length);
		*out = text ? strdup((const char *)text) : NULL;
		if (*out == NULL)
			rc = ferry_error_no_memory();
	}
	xmlFree(text);
	xmlXPathFreeObject(found);
	xmlXPathFreeContext(xpath);
	xmlFreeDoc(document);
	return rc;
}

int
cutover_ceph_mon(const char *ceph_conf, char *host, size_t host_size, char *port, size_t port_size)
{
	char line[1024];
	FILE *file = fopen(ceph_conf, "r");
	int rc = FERRY_ERR_NOT_FOUND;

	if (file == NULL)
		return ferry_error_set(FERRY_ERR_IO, "cannot read %s", ceph_conf);
	while (rc < 0 && fgets(line, sizeof(line), file)) {
		char *key = line + strspn(line, " \t"), *value, *colon;

		if (strncmp(key, "mon host", 8) != 0 && strncmp(key, "mon_host", 8) != 0)
			continue;
		value = strchr(key, '=');
		if (value == NULL)
			continue;
		value += strspn(value + 1, " \t[") + 1;
		if (strncmp(value, "v2:", 3) == 0 || strncmp(value, "v1:", 3) == 0)
			value += 3;
		value[strcspn(value, ",] \t\r\n/")] = '\0';
		colon = strrchr(value, ':');
		snprintf(host, host_size, "%.*s", colon ? (int)(colon - value) : (int)strlen(value),
			 value);
		snprintf(port, port_size, "%s", colon ? colon + 1 : "6789");
		rc = 0;
	}
	fclose(file);
	return rc < 0 ? ferry_error_set(FERRY_ERR_INVALID, "%s names no monitor (mon host)",
					ceph_conf)
		      : 0;
}
