# Shared set-up of the cutover tests (14-cutover.t, 15-live-migration.t, 16-reprotect.t): two Ceph clusters
# (sites A and B), two libvirtd with QEMU/TCG, a replica and a primary ferryd, the tick guest's
# disk image and the site dr. Source it after lib.sh and lib-ceph.sh; then call
#   cutover_skip_unless_ready          prints a TAP skip and exits when libvirt or QEMU is missing
#   cutover_setup INDEX1 INDEX2        libvirtd INDEX1 and INDEX2 (distinct per test file, so that
#                                      their migration ports never meet), the daemons and helpers:
# at_a/at_b (the CLI at each site), v1/v2 (virsh at each libvirtd), point_of/wait_point IMAGE N
# (lib-ceph.sh's), wait_run_ended SITE RUN,
# bytes_at CONF POOL/IMAGE OFFSET, make_vm NAME (an RBD disk on A holding the guest, defined and
# started on libvirtd 1), running_on URI NAME; and A, B, U1, U2, D1, D2, V1, V2, PRIMARY_PID,
# PRIMARY_URL, REPLICA_PID, REPLICA_URL, SITE_FLAGS (ferryd's --libvirt and --guest-file-dir),
# and the peer tokens $TEST_DIR/peer-at-b (A's, issued by B) and peer-at-a (B's, issued by A).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LIBVIRT_SH="$ROOT/tests/libvirt-daemon.sh"
GUEST="$ROOT/tests/guest"

# wait_run_ended SITE RUN: until run RUN at SITE (at_a or at_b) is no longer running (120 s)
run_ended() { [ "$("$1" run show "$2" --json | jq -r .status)" != running ]; }
wait_run_ended() { WAIT_INTERVAL=0.2 wait_until 120 run_ended "$1" "$2"; }

cutover_skip_unless_ready() {
	if ! command -v libvirtd > /dev/null || ! command -v qemu-system-x86_64 > /dev/null ||
		[ ! -e /usr/lib/x86_64-linux-gnu/qemu/block-rbd.so ]; then
		echo "1..0 # SKIP needs libvirtd, QEMU and qemu-block-extra (tests/install-deps.sh as root)"
		exit 0
	fi
}

cutover_setup() {
	local index1=$1 index2=$2
ceph_sites
export FERRY_LIBVIRT_TIMEOUT=180
D1="$TEST_DIR/libvirt-1" D2="$TEST_DIR/libvirt-2"
STARTED=""
cutover_cleanup() {
	local d
	ferryd_finish	# while libvirtd and Ceph still answer them
	for d in $STARTED; do "$LIBVIRT_SH" stop "$d" > /dev/null 2>&1; done
	ceph_cleanup
}
trap cutover_cleanup EXIT
trap 'exit 1' INT TERM HUP
U1=$("$LIBVIRT_SH" start "$D1" "$index1") || { echo "Bail out! libvirtd 1 did not start"; exit 1; }
STARTED="$D1"
U2=$("$LIBVIRT_SH" start "$D2" "$index2" "$D1") || { echo "Bail out! libvirtd 2 did not start"; exit 1; }
STARTED="$D1 $D2"
v1() { timeout 120 virsh -q -c "$U1" "$@"; }
v2() { timeout 120 virsh -q -c "$U2" "$@"; }

# The libvirt connections both daemons may open (nothing else is), and where the guests' serial
# logs may be written.
SITE_FLAGS=(--libvirt "one=$U1" --libvirt "two=$U2" --guest-file-dir "$TEST_DIR")
start_daemon replica --ceph-conf "$B" --vm-refresh 2 "${SITE_FLAGS[@]}" || { echo "Bail out! replica ferryd did not start"; exit 1; }
REPLICA_PID=$DAEMON_PID REPLICA_URL=$DAEMON_URL
DAEMON_PORT=$(free_port)
start_daemon primary --ceph-conf "$A" --vm-refresh 2 "${SITE_FLAGS[@]}" || { echo "Bail out! primary ferryd did not start"; exit 1; }
PRIMARY_PID=$DAEMON_PID PRIMARY_URL=$DAEMON_URL PRIMARY_PORT=$DAEMON_PORT
AUTH=(--token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem")
# at_a, at_b, point_of and wait_point are lib-ceph.sh's.
# bytes_at CONF POOL/IMAGE OFFSET: the first 4 bytes at OFFSET, in hex
bytes_at() {
	rbd -c "$1" export --no-progress "$2" - 2>/dev/null | dd bs=4096 skip=$(($3 / 4096)) count=1 status=none | xxd -p -l 4
}
# make_vm NAME: an RBD image on A holding the tick guest, and the domain defined and started on
# libvirtd 1
# rbd_disk_xml IMAGE DEV: a <disk> element for RBD image rbd/IMAGE on cluster A as DEV
rbd_disk_xml() {
	local port
	port=$(sed -n 's/^mon host = \[v2:127.0.0.1:\([0-9]*\)\]/\1/p' "$A")
	echo "<disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source protocol='rbd' name='rbd/$1'>
        <host name='127.0.0.1' port='$port'/>
        <config file='$A'/>
      </source>
      <target dev='$2' bus='virtio'/>
    </disk>"
}
make_vm() {
	rbd_a import --no-progress "$TEST_DIR/guest.img" "rbd/$1-disk" || return 1
	"$GUEST/domain.sh" "$1" "$(rbd_disk_xml "$1-disk" vda)" "$TEST_DIR/$1.serial" > "$TEST_DIR/$1.xml" &&
		v1 define "$TEST_DIR/$1.xml" > /dev/null && v1 start "$1" > /dev/null
}
running_on() { [ "$(timeout 60 virsh -q -c "$1" domstate "$2" 2>/dev/null)" = running ]; }

V1=t$$-vm1 V2=t$$-vm2
"$GUEST/build.sh" "$TEST_DIR/guest.img" 16 > /dev/null 2>&1
# Each site pushes to the other with a peer token that site issued, as in production: it may
# use only the site-to-site routes, on what it pushed (peer-at-b: A's token at B, and back).
at_b token create site-a --role peer --json | jq -r .token > "$TEST_DIR/peer-at-b" &&
	at_a token create site-b --role peer --json | jq -r .token > "$TEST_DIR/peer-at-a" &&
	chmod 600 "$TEST_DIR/peer-at-b" "$TEST_DIR/peer-at-a" ||
	{ echo "Bail out! peer tokens could not be created"; exit 1; }
at_a site add dr --url "$REPLICA_URL" --peer-token-file "$TEST_DIR/peer-at-b" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null
}
