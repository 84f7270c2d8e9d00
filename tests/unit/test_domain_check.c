/* Unit tests for what a site lets libvirt open and define: the configured libvirt connections
 * (a name or its exact URI, nothing else, never the ext transport) and the allow-list for domain
 * XML from a peer or the API, one refused element per case. Real daemons are exercised by
 * tests/integration/17-hostile-requests.t. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "cutover/cutover.h"

#define HEAD "<domain type='qemu'><name>web1</name><memory unit='MiB'>128</memory><devices>"
#define TAIL "</devices></domain>"
#define RBD_DISK                                                                                   \
	"<disk type='network' device='disk'><source protocol='rbd' name='rbd/web1'>"               \
	"<host name='10.0.0.1' port='6789'/><config file='/etc/ceph/ceph.conf'/></source>"         \
	"<target dev='vda' bus='virtio'/></disk>"

static int
setup(void **state)
{
	(void)state;
	cutover_virt_allow_reset();
	cutover_domain_allow_reset();
	return 0;
}

static void
test_resolve_takes_a_name_or_its_exact_uri_only(void **state)
{
	char uri[CUTOVER_LIBVIRT_URI_MAX + 1];

	(void)state;
	assert_int_equal(cutover_virt_allow("local", "qemu:///system"), 0);
	assert_int_equal(cutover_virt_allow("dr", "qemu+tls://dr.example/system"), 0);
	assert_int_equal(cutover_virt_resolve("dr", uri, sizeof(uri)), 0);
	assert_string_equal(uri, "qemu+tls://dr.example/system");
	assert_int_equal(cutover_virt_resolve("qemu:///system", uri, sizeof(uri)), 0);
	assert_string_equal(uri, "qemu:///system");
	assert_int_equal(cutover_virt_resolve("qemu:///system?x=1", uri, sizeof(uri)),
			 FERRY_ERR_INVALID);
	assert_non_null(strstr(ferry_error_message(), "local, dr"));
	assert_int_equal(
		cutover_virt_resolve("qemu+ext:///system?command=/tmp/marker", uri, sizeof(uri)),
		FERRY_ERR_INVALID);
	assert_int_equal(cutover_virt_resolve("", uri, sizeof(uri)), FERRY_ERR_INVALID);
}

static void
test_nothing_configured_refuses_everything(void **state)
{
	char uri[CUTOVER_LIBVIRT_URI_MAX + 1];

	(void)state;
	assert_int_equal(cutover_virt_resolve("qemu:///system", uri, sizeof(uri)),
			 FERRY_ERR_INVALID);
	assert_non_null(strstr(ferry_error_message(), "[libvirt]"));
}

static void
test_allow_refuses_ext_bad_names_and_duplicates(void **state)
{
	(void)state;
	assert_int_equal(cutover_virt_allow("x", "qemu+ext:///system?command=/bin/sh"),
			 FERRY_ERR_INVALID);
	assert_int_equal(cutover_virt_allow("x", "QEMU+EXT:///system?command=/bin/sh"),
			 FERRY_ERR_INVALID);
	assert_int_equal(cutover_virt_allow("bad name", "qemu:///system"), FERRY_ERR_INVALID);
	assert_int_equal(cutover_virt_allow("x", "not a uri"), FERRY_ERR_INVALID);
	assert_int_equal(cutover_virt_allow("x", "qemu:///system"), 0);
	assert_int_equal(cutover_virt_allow("x", "qemu:///session"), FERRY_ERR_INVALID);
}

static void
test_a_plain_guest_passes(void **state)
{
	(void)state;
	assert_int_equal(cutover_domain_allow_file_dir("/var/log/ferry-guests"), 0);
	assert_int_equal(
		cutover_domain_check(
			HEAD
			"<emulator>/usr/bin/qemu-system-x86_64</emulator>" RBD_DISK
			"<disk type='file' device='cdrom'><target dev='hdc'/></disk>"
			"<interface type='network'><source network='default'/></interface>"
			"<interface type='bridge'><source bridge='br0'/></interface>"
			"<serial type='pty'/><console type='pty'/>"
			"<serial type='file'><source path='/var/log/ferry-guests/web1.log'/>"
			"</serial>"
			"<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/>"
			"</channel>"
			"<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
			"<graphics type='vnc' port='-1'/>" TAIL),
		0);
}

/* Each case: a definition that reaches the host, and the element the refusal must name. */
static const struct {
	const char *xml;
	const char *element;
} refused[] = {
	{"<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>x"
	 "</name><devices>" RBD_DISK "</devices><qemu:commandline><qemu:arg value='-M'/>"
	 "</qemu:commandline></domain>",
	 "<commandline>"},
	{"<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>x"
	 "</name><devices/><qemu:override><qemu:device alias='x'/></qemu:override></domain>",
	 "<override>"},
	{HEAD "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='1' slot='0' "
	      "function='0'/></source></hostdev>" TAIL,
	 "<hostdev>"},
	{HEAD "<filesystem type='mount'><source dir='/'/><target dir='root'/></filesystem>" TAIL,
	 "<filesystem>"},
	{HEAD "<disk type='file' device='cdrom'><source file='/etc/shadow'/><target dev='hdc'/>"
	      "</disk>" TAIL,
	 "<disk>"},
	{HEAD "<disk type='block' device='disk'><source dev='/dev/sda'/><target dev='vda'/>"
	      "</disk>" TAIL,
	 "<disk>"},
	{HEAD RBD_DISK "<emulator>/tmp/evil</emulator>" TAIL, "<emulator>"},
	{HEAD "<emulator>/usr/bin/qemu-system-x86_64/../../../tmp/evil</emulator>" TAIL,
	 "<emulator>"},
	{HEAD "<serial type='file'><source path='/etc/cron.d/x'/></serial>" TAIL, "<serial>"},
	{HEAD "<serial type='file'><source path='/var/log/ferry-guests/../../../etc/cron.d/x'/>"
	      "</serial>" TAIL,
	 "<serial>"},
	{HEAD "<serial type='pty'><log file='/root/.bashrc'/></serial>" TAIL, "<log>"},
	{HEAD "<channel type='unix'><source mode='connect' path='/run/docker.sock'/>"
	      "<target type='virtio' name='x'/></channel>" TAIL,
	 "<channel>"},
	{HEAD "<serial type='dev'><source path='/dev/ttyS0'/></serial>" TAIL, "<serial>"},
	{HEAD
	 "<console type='tcp'><source mode='connect' host='10.0.0.9' service='22'/></console>" TAIL,
	 "<console>"},
	{HEAD "<interface type='ethernet'><script path='/tmp/x.sh'/></interface>" TAIL,
	 "<interface>"},
	{HEAD "<interface type='bridge'><source bridge='br0'/><script path='/tmp/x.sh'/>"
	      "</interface>" TAIL,
	 "<script>"},
	{"<domain type='qemu'><name>x</name><os><type>hvm</type><kernel>/boot/vmlinuz</kernel>"
	 "</os><devices/></domain>",
	 "<kernel>"},
	{HEAD "<memory model='nvdimm'><source><path>/dev/pmem0</path></source></memory>" TAIL,
	 "<memory>"},
	{HEAD "<input type='evdev'><source dev='/dev/input/event0'/></input>" TAIL, "<input>"},
	{HEAD "<rng model='virtio'><backend model='egd' type='tcp'><source mode='connect' "
	      "host='1.2.3.4' service='1'/></backend></rng>" TAIL,
	 "<backend>"},
	{"<!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/shadow'>]><domain><name>&x;</name>"
	 "</domain>",
	 "<!DOCTYPE>"},
	{"<network><name>x</name></network>", "<network>"},
};

static void
test_each_host_reaching_element_is_refused_by_name(void **state)
{
	(void)state;
	assert_int_equal(cutover_domain_allow_file_dir("/var/log/ferry-guests"), 0);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int rc = cutover_domain_check(refused[i].xml);

		if (rc != FERRY_ERR_INVALID || !strstr(ferry_error_message(), refused[i].element))
			fail_msg("case %zu (%s): rc %d, %s", i, refused[i].element, rc,
				 ferry_error_message());
	}
}

static void
test_file_dirs_must_be_absolute_and_plain(void **state)
{
	(void)state;
	assert_int_equal(cutover_domain_allow_file_dir("relative/dir"), FERRY_ERR_INVALID);
	assert_int_equal(cutover_domain_allow_file_dir("/var/../etc"), FERRY_ERR_INVALID);
	assert_int_equal(cutover_domain_allow_file_dir("/var/log/ferry"), 0);
	/* /var/log/ferry admits its own files only, not /var/log/ferry-x nor a subfolder */
	assert_int_equal(
		cutover_domain_check(HEAD "<serial type='file'><source path='/var/log/ferry-x/a'/>"
					  "</serial>" TAIL),
		FERRY_ERR_INVALID);
	assert_int_equal(cutover_domain_check(HEAD "<serial type='file'><source "
						   "path='/var/log/ferry/a.log'/></serial>" TAIL),
			 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_resolve_takes_a_name_or_its_exact_uri_only, setup),
		cmocka_unit_test_setup(test_nothing_configured_refuses_everything, setup),
		cmocka_unit_test_setup(test_allow_refuses_ext_bad_names_and_duplicates, setup),
		cmocka_unit_test_setup(test_a_plain_guest_passes, setup),
		cmocka_unit_test_setup(test_each_host_reaching_element_is_refused_by_name, setup),
		cmocka_unit_test_setup(test_file_dirs_must_be_absolute_and_plain, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
