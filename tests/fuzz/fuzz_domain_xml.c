/* libFuzzer target: domain XML from a peer or the API (cutover/domain_check.c and
 * cutover/virt.c). The input is the XML. It goes through the allow-list
 * (cutover_domain_check), the list of its RBD disks (cutover_xml_disks) and, when it has
 * some, the rewriting for the other site (cutover_xml_remap, with every link cut when the
 * input's length is odd). A remapped definition must still parse and name only the replicas. */
#include "common/error.h"
#include "cutover/cutover.h"
#include "cutover/virt.h"
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>

static void
fuzz_remap(const char *xml, json_t *disks, bool isolate)
{
	json_t *images = json_object(), *network_map = json_pack("{s:s}", "default", "dr-net");
	json_t *disk, *remapped_disks = NULL;
	struct cutover_remap remap = {images,	   "192.0.2.1", "6789", "/etc/ceph/dr.conf",
				      network_map, isolate};
	char *out = NULL;
	size_t i;

	fuzz_check(images && network_map, "no memory");
	json_array_foreach(disks, i, disk) {
		const char *target = json_string_value(json_object_get(disk, "target"));

		fuzz_check(target != NULL, "a disk without a target string");
		json_object_set_new(images, target, json_string("replica/image"));
	}
	if (cutover_xml_remap(xml, &remap, &out) == 0) {
		fuzz_check(out != NULL, "remap succeeded without a definition");
		if (cutover_xml_disks(out, &remapped_disks) == 0)
			json_array_foreach(remapped_disks, i, disk) {
				fuzz_check(
					strcmp(json_string_value(json_object_get(disk, "source")),
					       "rbd:replica/image") == 0,
					"a remapped disk still names its old image");
			}
		json_decref(remapped_disks);
	}
	free(out);
	json_decref(images);
	json_decref(network_map);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	char *xml = malloc(size + 1);
	json_t *disks = NULL;

	if (!ready) {
		xmlInitParser();
		fuzz_check(cutover_domain_allow_file_dir("/var/log/ferry-guests") == 0,
			   "guest folder refused");
		ready = true;
	}
	fuzz_check(xml != NULL, "no memory");
	memcpy(xml, data, size);
	xml[size] = '\0';
	(void)cutover_domain_check(xml);
	if (cutover_xml_disks(xml, &disks) == 0 && json_array_size(disks) > 0)
		fuzz_remap(xml, disks, size & 1);
	json_decref(disks);
	free(xml);
	ferry_error_clear();
	return 0;
}
