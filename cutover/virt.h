/* libvirt and domain XML helpers of cutover/: connections whose errors become ferry errors,
 * and the rewriting of a domain's XML for the other site (disks onto the replicas, networks
 * mapped). Internal to cutover/.
 *
 * Ownership: strings returned through char ** are the caller's to free(); connections are
 * closed with cutover_virt_close(). */
#ifndef FERRY_CUTOVER_VIRT_H
#define FERRY_CUTOVER_VIRT_H

#include <jansson.h>
#include <libvirt/libvirt.h>
#include <stdbool.h>
#include <stdint.h>

/* Opens a configured libvirt connection, named or by its URI; anything else is refused
 * (FERRY_ERR_INVALID naming the configured ones) and never reaches libvirt. */
int cutover_virt_open(const char *uri, virConnectPtr *out);
void cutover_virt_close(virConnectPtr connection);
/* The libvirt error of the last failed call on this thread, or "unknown error". */
const char *cutover_virt_message(void);

/* Looks a domain up by name; FERRY_ERR_NOT_FOUND when it is not defined there. */
int cutover_virt_domain(virConnectPtr connection, const char *uri, const char *name,
			virDomainPtr *out);
/* The persistent (inactive) XML with secure details, for defining it elsewhere. */
int cutover_virt_domain_xml(virDomainPtr domain, const char *name, char **xml);
/* Waits until the domain is shut off, at most timeout_ms; FERRY_ERR_CONFLICT if it is not. */
int cutover_virt_wait_off(virDomainPtr domain, const char *name, int64_t timeout_ms);

/* The RBD disks of a domain XML: [{"target": "vda", "source": "rbd:POOL/IMAGE"}]. Disks of
 * another kind (files, other protocols) are FERRY_ERR_INVALID, naming the disk: cutover moves
 * only what ferry replicates. CD-ROMs are ignored. */
int cutover_xml_disks(const char *xml, json_t **disks);

struct cutover_remap {
	/* For each disk target ("vda"), the image at the destination, "POOL/IMAGE". */
	json_t *images;
	const char *mon_host; /* the destination cluster's monitor, host and port */
	const char *mon_port;
	const char *ceph_conf; /* the destination's ceph.conf, naming its keyring */
	json_t *network_map;   /* {"src-net": "dst-net"}, may be NULL */
	bool isolate;	       /* test failover: every interface's link is down */
};
/* Rewrites xml for the destination: disk sources, monitors and config onto the replicas,
 * networks mapped (or cut off). Keeps name, UUID and MAC addresses. */
int cutover_xml_remap(const char *xml, const struct cutover_remap *remap, char **out);

/* The first monitor address in a ceph.conf ("mon host = [v2:127.0.0.1:6789]"). */
int cutover_ceph_mon(const char *ceph_conf, char *host, size_t host_size, char *port,
		     size_t port_size);

#endif
