/* libFuzzer target: a VM record as a peer pushes it (POST /v1/vms/receive), taken by
 * cutover_vm_receive (cutover/records.c): the keys a peer may send, the record's schema
 * (cutover/record.c), the destination's libvirt connection, the domain XML's
 * allow-list, and the catalog it is stored in (a real one, in a scratch folder). The input is
 * the record's JSON. This site knows one libvirt connection, "dr" = test:///default, and never
 * opens it here. */
#include "catalog/catalog.h"
#include "common/error.h"
#include "cutover/cutover.h"
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>

static struct cutover_site fuzz_site;

static void
fuzz_site_open(void)
{
	char path[512];

	xmlInitParser();
	snprintf(path, sizeof(path), "%s/catalog.db", fuzz_state_dir());
	fuzz_check(catalog_open(path, CATALOG_SYNC_NORMAL, &fuzz_site.catalog) == 0,
		   "catalog does not open");
	fuzz_check(cutover_virt_allow("dr", "test:///default") == 0, "libvirt name refused");
	fuzz_check(cutover_domain_allow_file_dir("/var/log/ferry-guests") == 0,
		   "guest folder refused");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t error;
	json_t *record;

	if (fuzz_site.catalog == NULL)
		fuzz_site_open();
	record = json_loadb((const char *)data, size, 0, &error);
	if (json_is_object(record))
		(void)cutover_vm_receive(&fuzz_site, record);
	json_decref(record);
	ferry_error_clear();
	return 0;
}
