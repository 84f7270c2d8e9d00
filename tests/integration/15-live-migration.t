#!/bin/bash
# Planned live migration against real parts (two Ceph clusters, two libvirtd with QEMU, two
# ferryd): the guest's memory moves while its disk is replicated, the final delta is shipped while
# it is paused at the destination, then it resumes there. A write made inside the running guest
# right up to the migration must be on the replica it runs from; a refused migration changes
# nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LIBVIRT_SH="$ROOT/tests/libvirt-daemon.sh"
GUEST="$ROOT/tests/guest"

if ! command -v libvirtd > /dev/null || ! command -v qemu-system-x86_64 > /dev/null ||
	[ ! -e /usr/lib/x86_64-linux-gnu/qemu/block-rbd.so ]; then
	echo "1..0 # SKIP needs libvirtd, QEMU and qemu-block-extra (tests/install-deps.sh as root)"
	exit 0
fi

plan 18
ceph_cluster A || { echo "Bail out! Ceph cluster A did not start"; exit 1; }
ceph_cluster B || { echo "Bail out! Ceph cluster B did not start"; exit 1; }
A=$CEPH_CONF_A B=$CEPH_CONF_B
rbd_a() { timeout 120 rbd -c "$A" "$@"; }
rbd_b() { timeout 120 rbd -c "$B" "$@"; }
export FERRY_LIBVIRT_TIMEOUT=180
D1="$TEST_DIR/libvirt-1" D2="$TEST_DIR/libvirt-2"
STARTED=""
cutover_cleanup() {
	local d
	for d in $STARTED; do "$LIBVIRT_SH" stop "$d" > /dev/null 2>&1; done
	ceph_cleanup
}
trap cutover_cleanup EXIT
trap 'exit 1' INT TERM HUP
U1=$("$LIBVIRT_SH" start "$D1" 3) || { echo "Bail out! libvirtd 1 did not start"; exit 1; }
STARTED="$D1"
U2=$("$LIBVIRT_SH" start "$D2" 4 "$D1") || { echo "Bail out! libvirtd 2 did not start"; exit 1; }
STARTED="$D1 $D2"
v1() { timeout 120 virsh -q -c "$U1" "$@"; }
v2() { timeout 120 virsh -q -c "$U2" "$@"; }

start_daemon replica --ceph-conf "$B" || { echo "Bail out! replica ferryd did not start"; exit 1; }
REPLICA_PID=$DAEMON_PID REPLICA_URL=$DAEMON_URL
DAEMON_PORT=$(( (RANDOM % 20000) + 30000 ))
start_daemon primary --ceph-conf "$A" || { echo "Bail out! primary ferryd did not start"; exit 1; }
PRIMARY_PID=$DAEMON_PID PRIMARY_URL=$DAEMON_URL PRIMARY_PORT=$DAEMON_PORT
AUTH=(--token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem")
at_a() { "$FERRY" "$1" "${@:2}" --daemon "$PRIMARY_URL" "${AUTH[@]}"; }
at_b() { "$FERRY" "$1" "${@:2}" --daemon "$REPLICA_URL" "${AUTH[@]}"; }
point_of() { # point_of IMAGE: the last committed point of rbd:rbd/IMAGE at the primary
	at_a status --json | jq -r --arg n "rbd:rbd/$1" '.volumes[] | select(.name == $n) | .last_point'
}
wait_point() { # wait_point IMAGE N
	for _ in $(seq 1 600); do
		[ "$(point_of "$1" 2>/dev/null || echo 0)" -ge "$2" ] 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
# bytes_at CONF POOL/IMAGE OFFSET: the first 4 bytes at OFFSET, in hex
bytes_at() {
	rbd -c "$1" export --no-progress "$2" - 2>/dev/null | dd bs=4096 skip=$(($3 / 4096)) count=1 status=none | xxd -p -l 4
}
# make_vm NAME: an RBD image on A holding the tick guest, and the domain defined and started on
# libvirtd 1
make_vm() {
	local port
	rbd_a import --no-progress "$TEST_DIR/guest.img" "rbd/$1-disk" || return 1
	port=$(sed -n 's/^mon host = \[v2:127.0.0.1:\([0-9]*\)\]/\1/p' "$A")
	"$GUEST/domain.sh" "$1" "<disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source protocol='rbd' name='rbd/$1-disk'>
        <host name='127.0.0.1' port='$port'/>
        <config file='$A'/>
      </source>
      <target dev='vda' bus='virtio'/>
    </disk>" "$TEST_DIR/$1.serial" > "$TEST_DIR/$1.xml" &&
		v1 define "$TEST_DIR/$1.xml" > /dev/null && v1 start "$1" > /dev/null
}
running_on() { [ "$(timeout 60 virsh -q -c "$1" domstate "$2" 2>/dev/null)" = running ]; }

V1=t$$-vm1 V2=t$$-vm2
"$GUEST/build.sh" "$TEST_DIR/guest.img" 16 > /dev/null 2>&1
at_a site add dr --url "$REPLICA_URL" --peer-token-file "$TEST_DIR/token" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null
at_a group create "gl$$" --interval 2 --keep 20 > /dev/null
make_vm $V1
at_a vm protect $V1 --uri "$U1" --dest-uri "$U2" --group "gl$$" > /dev/null
wait_point $V1-disk 1
ok $? "$V1 runs at A, protected, its first point committed"
# A VM that is not running cannot move live: refused, nothing changed.
rbd_a create --size 16M "rbd/$V2-disk" && sed "s/$V1/$V2/g; /<uuid>/d" "$TEST_DIR/$V1.xml" > "$TEST_DIR/$V2.xml" &&
	v1 define "$TEST_DIR/$V2.xml" > /dev/null
at_a vm protect $V2 --uri "$U1" --dest-uri "$U2" --group "gl$$" > /dev/null
at_a migrate $V2 --live --json > "$TEST_DIR/refused.json"
is $? 1 "a live migration of a VM that is shut off fails"
is "$(jq -r .status "$TEST_DIR/refused.json")" refused "  and is refused by its checks ($(jq -r .reason "$TEST_DIR/refused.json" | head -c 150))"
is "$(timeout 60 virsh -q -c "$U1" domstate $V2)" "shut off" "  leaving the VM as it was, at the source"
at_a migrate $V1 --dry-run --json > "$TEST_DIR/dry.json"
ok $? "ferry migrate $V1 --dry-run passes every check"
jq -e '.kind == "migrate-check" and .vms[0].memory_bytes == 134217728 and (.vms[0].strategy == "live" or .vms[0].strategy == "cold") and .vms[0].predicted_total_ms > 0 and .vms[0].predicted_frozen_ms > 0' "$TEST_DIR/dry.json" > /dev/null
ok $? "  and predicts the migration ($(jq -c '.vms[0]' "$TEST_DIR/dry.json" | head -c 300))"
running_on "$U1" $V1
ok $? "  without changing anything: $V1 still runs at A"
ticks_before=$(grep -c tick "$TEST_DIR/$V1.serial")
"$GUEST/qemu-io.sh" "$U1" $V1 vda 'write -P 0x7c 3145728 8192' > /dev/null
ok $? "a write inside the running guest, just before the migration (0x7c at 3 MiB)"
at_a migrate $V1 --live --json > "$TEST_DIR/live.json"
ok $? "ferry migrate $V1 --live completes ($(jq -r .reason "$TEST_DIR/live.json"))"
jq -e '.status == "completed" and .kind == "migrate-live" and (.vms[0].frozen_ms > 0) and (.vms[0].final_delta_bytes >= 0) and (.total_ms > 0)' "$TEST_DIR/live.json" > /dev/null
ok $? "  and reports the frozen time and the final delta ($(jq -c '.vms[0]' "$TEST_DIR/live.json"))"
running_on "$U2" $V1
ok $? "$V1 runs (resumed) on libvirtd 2"
v1 list --all --name | grep -qx $V1
is $? 1 "and is gone from libvirtd 1"
v2 dumpxml $V1 | grep -q "name='rbd/$V1-disk'"
ok $? "its disk at B is the replica image"
is "$(bytes_at "$B" rbd/$V1-disk 3145728)" 7c7c7c7c "the write made inside the guest before the migration is on the replica"
v2 dumpxml --inactive $V1 | grep -q "name='rbd/$V1-disk'"
ok $? "the destination's saved definition points at the replica too"
sleep 3
[ "$(grep -c tick "$TEST_DIR/$V1.serial")" -gt "$ticks_before" ]
ok $? "the guest keeps ticking at the destination"
run=$(jq -r .run "$TEST_DIR/live.json")
sqlite3 "$TEST_DIR/primary/catalog.db" "SELECT name FROM run_steps WHERE run_id = $run ORDER BY seq" > "$TEST_DIR/steps"
grep -q "^migrate the memory" "$TEST_DIR/steps" && grep -q "^resume" "$TEST_DIR/steps"
ok $? "the run's steps are in the catalog ($(wc -l < "$TEST_DIR/steps") steps)"
at_a status --json | jq -e --arg n "rbd:rbd/$V1-disk" '[.volumes[] | select(.name == $n)] | length == 0' > /dev/null
ok $? "its disk is no longer replicated from A"
stop_daemon "$PRIMARY_PID"
exit $test_failed
