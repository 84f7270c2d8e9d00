/* The allow-list for domain XML that arrives from a peer site or through the API: whatever a
 * caller sends is defined and started by this site's libvirt (as root), so a definition may only
 * describe a guest, never reach the host: no QEMU command line, no host devices, no host files
 * as disks, no host files or sockets behind character devices, no other emulator. */
#include "cutover/cutover.h"
#include "common/error.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

/* Where character devices may write host files (the operator's choice); read only after
 * start-up and replaced whole at a reload, like the libvirt connections. */
#define CUTOVER_FILE_DIRS_MAX 8
static char cutover_file_dirs[CUTOVER_FILE_DIRS_MAX][512];
static int cutover_file_dir_count;
static pthread_rwlock_t cutover_file_dir_lock = PTHREAD_RWLOCK_INITIALIZER;

static int
cutover_domain_allow_file_dir_locked(const char *directory)
{
	size_t length = strlen(directory);

	if (directory[0] != '/' || length < 2 || length >= sizeof(cutover_file_dirs[0]) - 1 ||
	    strstr(directory, "/../") || strstr(directory, "/./") ||
	    (length >= 3 && strcmp(directory + length - 3, "/..") == 0))
		return ferry_error_set(FERRY_ERR_INVALID,
				       "'%.200s' is not an absolute folder without '..' for the "
				       "files of guests' character devices",
				       directory);
	if (cutover_file_dir_count == CUTOVER_FILE_DIRS_MAX)
		return ferry_error_set(FERRY_ERR_INVALID, "more than %d folders for guest files",
				       CUTOVER_FILE_DIRS_MAX);
	/* Kept with a trailing slash, so that /var/log/ferry never admits /var/log/ferry-x. */
	snprintf(cutover_file_dirs[cutover_file_dir_count], sizeof(cutover_file_dirs[0]), "%s%s",
		 directory, directory[length - 1] == '/' ? "" : "/");
	cutover_file_dir_count++;
	return 0;
}

int
cutover_domain_allow_file_dir(const char *directory)
{
	int rc;

	pthread_rwlock_wrlock(&cutover_file_dir_lock);
	rc = cutover_domain_allow_file_dir_locked(directory);
	pthread_rwlock_unlock(&cutover_file_dir_lock);
	return rc;
}

void
cutover_domain_allow_reset(void)
{
	pthread_rwlock_wrlock(&cutover_file_dir_lock);
	cutover_file_dir_count = 0;
	pthread_rwlock_unlock(&cutover_file_dir_lock);
}

int
cutover_domain_allow_replace(char *const *directories, int count)
{
	static char kept[CUTOVER_FILE_DIRS_MAX][512];
	int kept_count, rc = 0;

	pthread_rwlock_wrlock(&cutover_file_dir_lock);
	memcpy(kept, cutover_file_dirs, sizeof(kept));
	kept_count = cutover_file_dir_count;
	cutover_file_dir_count = 0;
	for (int i = 0; i < count && rc == 0; i++)
		rc = cutover_domain_allow_file_dir_locked(directories[i]);
	if (rc < 0) {
		memcpy(cutover_file_dirs, kept, sizeof(kept));
		cutover_file_dir_count = kept_count;
	}
	pthread_rwlock_unlock(&cutover_file_dir_lock);
	return rc;
}

static bool
cutover_file_allowed(const char *path)
{
	bool allowed = false;

	if (path == NULL || path[0] != '/' || strstr(path, "/.."))
		return false;
	pthread_rwlock_rdlock(&cutover_file_dir_lock);
	for (int i = 0; i < cutover_file_dir_count && !allowed; i++)
		allowed = strncmp(path, cutover_file_dirs[i], strlen(cutover_file_dirs[i])) == 0 &&
			  strchr(path + strlen(cutover_file_dirs[i]), '/') == NULL;
	pthread_rwlock_unlock(&cutover_file_dir_lock);
	return allowed;
}

static const char *
cutover_attribute(xmlNodePtr node, const char *name, char *buffer, size_t size)
{
	xmlChar *value = xmlGetProp(node, BAD_CAST name);

	if (value == NULL)
		return NULL;
	snprintf(buffer, size, "%s", (const char *)value);
	xmlFree(value);
	return buffer;
}

static xmlNodePtr
cutover_child(xmlNodePtr node, const char *name)
{
	for (xmlNodePtr child = node->children; child; child = child->next)
		if (child->type == XML_ELEMENT_NODE && xmlStrcmp(child->name, BAD_CAST name) == 0)
			return child;
	return NULL;
}

static int
cutover_refuse(const char *element, const char *why)
{
	return ferry_error_set(FERRY_ERR_INVALID, "the domain definition is refused at <%s>: %s",
			       element, why);
}

/* Devices that hand the guest a piece of the host, whatever their attributes. */
static const char *const cutover_host_devices[] = {
	"hostdev", "redirdev", "filesystem", "shmem", "smartcard", "tpm", "iommu", NULL,
};

/* A character device (serial, console, channel, parallel): a pty, a null sink, the guest agent
 * channel or spice are guest-only; a file (or a log) only in a configured folder. */
static int
cutover_check_chardev(xmlNodePtr device)
{
	char type[64], path[1024];
	const char *value = cutover_attribute(device, "type", type, sizeof(type));
	xmlNodePtr log = cutover_child(device, "log");
	xmlNodePtr source = cutover_child(device, "source");

	if (log && !cutover_file_allowed(cutover_attribute(log, "file", path, sizeof(path))))
		return cutover_refuse("log", "a character device's log file must be in a folder "
					     "configured with --guest-file-dir");
	if (value == NULL || strcmp(value, "pty") == 0 || strcmp(value, "null") == 0 ||
	    strcmp(value, "vc") == 0 || strcmp(value, "spicevmc") == 0 ||
	    strcmp(value, "spiceport") == 0 || strcmp(value, "qemu-vdagent") == 0)
		return 0;
	if (strcmp(value, "unix") == 0 && source == NULL)
		return 0; /* libvirt's own socket for the guest agent channel */
	if (strcmp(value, "file") == 0 && source &&
	    cutover_file_allowed(cutover_attribute(source, "path", path, sizeof(path))))
		return 0;
	return cutover_refuse((const char *)device->name,
			      "a character device may not reach host files, devices, pipes, "
			      "sockets or the network (a type='file' one may write only into a "
			      "folder configured with --guest-file-dir)");
}

static int
cutover_check_disk(xmlNodePtr disk)
{
	char type[64], device[64], protocol[64];
	xmlNodePtr source = cutover_child(disk, "source");
	const char *kind = cutover_attribute(disk, "type", type, sizeof(type));
	const char *role = cutover_attribute(disk, "device", device, sizeof(device));

	if (source == NULL)
		return 0; /* an empty CD-ROM drive */
	if (kind && strcmp(kind, "network") == 0 &&
	    cutover_attribute(source, "protocol", protocol, sizeof(protocol)) &&
	    strcmp(protocol, "rbd") == 0)
		return 0;
	(void)role;
	return cutover_refuse("disk", "every disk (CD-ROMs too) must be an RBD image or empty; a "
				      "host file, device or other protocol is refused");
}

/* Any <source> that names a host path: a disk file or device, a folder, a socket, an input
 * device. A character device's file is the one exception, in a configured folder. */
static int
cutover_check_source(xmlNodePtr source)
{
	static const char *const host_paths[] = {"file", "dev", "dir", "socket", "evdev", NULL};
	char value[1024];

	for (int i = 0; host_paths[i]; i++)
		if (cutover_attribute(source, host_paths[i], value, sizeof(value)))
			return cutover_refuse("source", "it names a file, device, folder or socket "
							"of the host");
	if (cutover_attribute(source, "path", value, sizeof(value)) && !cutover_file_allowed(value))
		return cutover_refuse("source", "a path of the host outside the folders configured "
						"with --guest-file-dir");
	if (cutover_child(source, "path") != NULL)
		return cutover_refuse("source", "it names a file or device of the host");
	return 0;
}

/* <backend>: an RNG may read the host's random device; a network or TPM backend names host
 * devices and is refused. */
static int
cutover_check_backend(xmlNodePtr backend)
{
	char model[64];
	xmlChar *text;
	int rc = 0;

	if (backend->parent == NULL || xmlStrcmp(backend->parent->name, BAD_CAST "rng") != 0 ||
	    cutover_attribute(backend, "model", model, sizeof(model)) == NULL ||
	    strcmp(model, "random") != 0)
		return cutover_refuse("backend", "only an RNG reading /dev/urandom or /dev/random "
						 "may have a backend");
	text = xmlNodeGetContent(backend);
	if (text && text[0] && xmlStrcmp(text, BAD_CAST "/dev/urandom") != 0 &&
	    xmlStrcmp(text, BAD_CAST "/dev/random") != 0)
		rc = cutover_refuse("backend", "an RNG may read only /dev/urandom or /dev/random");
	xmlFree(text);
	return rc;
}

static int
cutover_check_node(xmlNodePtr node, int depth)
{
	char path[1024];
	int rc = 0;

	if (depth > 64)
		return cutover_refuse((const char *)node->name, "nested too deeply");
	for (xmlNodePtr child = node->children; child && rc == 0; child = child->next) {
		const char *name = (const char *)child->name;

		if (child->type != XML_ELEMENT_NODE)
			continue;
		/* qemu:commandline, qemu:override and every other driver namespace */
		if (child->ns != NULL)
			return cutover_refuse(name, "elements of another namespace (such as "
						    "qemu:commandline) are never accepted");
		for (int i = 0; cutover_host_devices[i]; i++)
			if (strcmp(name, cutover_host_devices[i]) == 0)
				return cutover_refuse(name, "it passes a part of the host to the "
							    "guest");
		if (depth == 1 && strcmp(name, "emulator") == 0) {
			xmlChar *text = xmlNodeGetContent(child);

			snprintf(path, sizeof(path), "%s", text ? (const char *)text : "");
			xmlFree(text);
			if (strncmp(path, "/usr/bin/qemu-system-", 21) != 0 ||
			    strpbrk(path + 21, "/ ") != NULL)
				return cutover_refuse(name,
						      "only the site's /usr/bin/qemu-system-* "
						      "may run a guest");
			continue;
		}
		if (depth == 1 && strcmp(name, "disk") == 0)
			rc = cutover_check_disk(child);
		else if (depth == 1 &&
			 (strcmp(name, "serial") == 0 || strcmp(name, "console") == 0 ||
			  strcmp(name, "channel") == 0 || strcmp(name, "parallel") == 0))
			rc = cutover_check_chardev(child);
		else if (strcmp(name, "kernel") == 0 || strcmp(name, "initrd") == 0 ||
			 strcmp(name, "dtb") == 0 || strcmp(name, "loader") == 0 ||
			 strcmp(name, "nvram") == 0)
			rc = cutover_refuse(name, "a guest boots from its own disks, not from a "
						  "file of the host");
		else if (strcmp(name, "script") == 0)
			rc = cutover_refuse(name, "it runs a program of the host");
		else if (strcmp(name, "source") == 0)
			rc = cutover_check_source(child);
		else if (strcmp(name, "backend") == 0)
			rc = cutover_check_backend(child);
		else if (depth == 1 &&
			 (strcmp(name, "memory") == 0 || strcmp(name, "input") == 0) &&
			 cutover_child(child, "source") != NULL)
			rc = cutover_refuse(name, "it is backed by a file or device of the host");
		else if (strcmp(name, "interface") == 0) {
			char type[64];
			const char *kind = cutover_attribute(child, "type", type, sizeof(type));

			if (kind && strcmp(kind, "network") != 0 && strcmp(kind, "bridge") != 0 &&
			    strcmp(kind, "user") != 0)
				rc = cutover_refuse(name,
						    "an interface must use a libvirt network, "
						    "a bridge or user networking");
		}
		if (rc == 0)
			rc = cutover_check_node(child, depth + 1);
	}
	return rc;
}

int
cutover_domain_check(const char *xml)
{
	xmlDocPtr document;
	xmlNodePtr root;
	int rc;

	if (xml == NULL || xml[0] == '\0')
		return ferry_error_set(FERRY_ERR_INVALID, "the domain definition is empty");
	document = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
				 XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (document == NULL)
		return ferry_error_set(FERRY_ERR_INVALID, "the domain definition does not parse");
	root = xmlDocGetRootElement(document);
	if (root == NULL || root->ns != NULL || xmlStrcmp(root->name, BAD_CAST "domain") != 0)
		rc = cutover_refuse(root ? (const char *)root->name : "?",
				    "the definition must be one <domain>");
	else if (document->intSubset != NULL)
		rc = cutover_refuse("!DOCTYPE", "a document type (and its entities) is refused");
	else
		rc = cutover_check_node(root, 0);
	/* /domain/devices/... are checked at depth 1 below <devices>; a device put directly
	 * under <domain> is unknown to libvirt and refused by it. */
	xmlFreeDoc(document);
	return rc;
}
