#!/bin/bash
# bench/cutover-bench.sh: how long a guest is frozen by `ferry migrate --live` next to a plain
# `virsh migrate --live` of the same kind of VM on shared storage, and the failover RTO of 1 and
# of N small VMs (BENCH_CUTOVER_VMS, default 10), in one run.
#
#   bash bench/cutover-bench.sh        (from the top of the tree, as root)
#
# Two throw-away Ceph clusters (sites A and B, bluestore), two libvirtd with QEMU/TCG
# (tests/libvirt-daemon.sh), a primary and a replica ferryd (the helpers of tests/integration/).
# Guests are the 128 MiB tick guest of tests/guest/ on RBD disks of A.
#   virsh    `virsh migrate --live --p2p --persistent --undefinesource` of a guest whose disk
#            stays on A (shared storage): downtime from the job statistics (--completed)
#   ferry    `ferry migrate --live --json` of a protected guest: frozen_ms (from the migration's
#            return, the guest paused at B, through the final delta to its resume, plus the
#            QEMU downtime) and total_ms
#   failover `ferry failover --group G --json` at B, once for a group of 1 VM and once for a
#            group of N, with the primary ferryd killed: the run's total_ms and each VM's RTO
# Goals (issue 4): frozen <= 0.5 s with replication caught up (idle guest); failover of 10 VMs
# in under 30 s.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
COUNT=${BENCH_CUTOVER_VMS:-10}
export FERRY_BIN=${FERRY_BIN:-$ROOT/bin}
export FERRY_LIBVIRT_TIMEOUT=180
unset FERRY_TEST_CEPH_A_CONF FERRY_TEST_CEPH_B_CONF
set --
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tests/integration/lib-ceph.sh"
LIBVIRT_SH="$ROOT/tests/libvirt-daemon.sh"
GUEST="$ROOT/tests/guest"
fail() { echo "cutover-bench: $*" >&2; exit 1; }
D1="$TEST_DIR/libvirt-1" D2="$TEST_DIR/libvirt-2" STARTED=""
bench_cleanup() {
	local d
	for d in $STARTED; do "$LIBVIRT_SH" stop "$d" > /dev/null 2>&1; done
	ceph_cleanup
}
trap bench_cleanup EXIT

echo "# cutover bench: 128 MiB TCG guests on RBD, two Ceph clusters, two libvirtd, $COUNT VMs for the failover"
ceph_cluster A > /dev/null || fail "cluster A did not start"
ceph_cluster B > /dev/null || fail "cluster B did not start"
A=$CEPH_CONF_A B=$CEPH_CONF_B
U1=$("$LIBVIRT_SH" start "$D1" 5 2>/dev/null) || fail "libvirtd 1 did not start"
STARTED="$D1"
U2=$("$LIBVIRT_SH" start "$D2" 6 "$D1" 2>/dev/null) || fail "libvirtd 2 did not start"
STARTED="$D1 $D2"
# The libvirt connections each ferryd may open (nothing else is), and where serial logs may go.
SITE_FLAGS=(--libvirt "one=$U1" --libvirt "two=$U2" --guest-file-dir "$TEST_DIR")
start_daemon replica --ceph-conf "$B" "${SITE_FLAGS[@]}" || fail "replica ferryd did not start"
REPLICA_URL=$DAEMON_URL
DAEMON_PORT=$(free_port)
start_daemon primary --ceph-conf "$A" "${SITE_FLAGS[@]}" || fail "primary ferryd did not start"
PRIMARY_PID=$DAEMON_PID PRIMARY_URL=$DAEMON_URL
AUTH=(--token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem")
at_a() { "$FERRY" "$1" "${@:2}" --daemon "$PRIMARY_URL" "${AUTH[@]}"; }
at_b() { "$FERRY" "$1" "${@:2}" --daemon "$REPLICA_URL" "${AUTH[@]}"; }
"$GUEST/build.sh" "$TEST_DIR/guest.img" 16 > /dev/null 2>&1 || fail "guest image"
port=$(sed -n 's/^mon host = \[v2:127.0.0.1:\([0-9]*\)\]/\1/p' "$A")
make_vm() { # make_vm NAME
	rbd -c "$A" import --no-progress "$TEST_DIR/guest.img" "rbd/$1-disk" &&
		"$GUEST/domain.sh" "$1" "<disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source protocol='rbd' name='rbd/$1-disk'><host name='127.0.0.1' port='$port'/>
        <config file='$A'/></source><target dev='vda' bus='virtio'/></disk>" \
			"$TEST_DIR/$1.serial" > "$TEST_DIR/$1.xml" &&
		virsh -q -c "$U1" define "$TEST_DIR/$1.xml" > /dev/null &&
		virsh -q -c "$U1" start "$1" > /dev/null
}
point_of() { at_a status --json | jq -r --arg n "rbd:rbd/$1" '.volumes[] | select(.name == $n) | .last_point'; }
wait_point() { for _ in $(seq 1 900); do [ "$(point_of "$1")" -ge "$2" ] 2>/dev/null && return 0; sleep 0.2; done; return 1; }
at_a site add dr --url "$REPLICA_URL" --peer-token-file "$TEST_DIR/token" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null || fail "site add"

# 1. plain virsh live migration, disk shared (stays on A)
make_vm plain || fail "guest plain"
sleep 2
start=$(date +%s%N)
virsh -q -c "$U1" migrate --live --p2p --persistent --undefinesource plain \
	"$(echo "$U2" | sed 's/^qemu+unix/qemu+unix/')" --migrateuri tcp://127.0.0.1 \
	--listen-address 127.0.0.1 > /dev/null || fail "virsh migrate"
plain_total=$(( ($(date +%s%N) - start) / 1000000 ))
plain_down=$(virsh -q -c "$U2" domjobinfo --completed plain | awk '/^Total downtime/ { print $3 }')
virsh -q -c "$U2" destroy plain > /dev/null

# 2. ferry live migration of a protected guest, replication caught up, idle guest
at_a group create live --interval 2 --keep 5 > /dev/null
make_vm live1 || fail "guest live1"
at_a vm protect live1 --uri "$U1" --dest-uri "$U2" --group live > /dev/null || fail "vm protect"
wait_point live1-disk 2 || fail "no point for live1"
at_a migrate live1 --live --json > "$TEST_DIR/live.json" || fail "ferry migrate --live: $(jq -r .reason "$TEST_DIR/live.json")"
ferry_frozen=$(jq -r '.vms[0].frozen_ms' "$TEST_DIR/live.json")
ferry_total=$(jq -r .total_ms "$TEST_DIR/live.json")
migrate_ms=$(jq -r '[.steps[] | select(.name | startswith("migrate the memory")) | .duration_ms][0]' "$TEST_DIR/live.json")
virsh -q -c "$U2" destroy live1 > /dev/null

# 3. failover of 1 VM and of COUNT VMs with the primary ferryd gone
at_a group create one --interval 2 --keep 5 > /dev/null
at_a group create many --interval 2 --keep 5 > /dev/null
make_vm solo || fail "guest solo"
at_a vm protect solo --uri "$U1" --dest-uri "$U2" --group one > /dev/null || fail "protect solo"
for i in $(seq 1 "$COUNT"); do
	make_vm "m$i" || fail "guest m$i"
	at_a vm protect "m$i" --uri "$U1" --dest-uri "$U2" --group many --order "$i" > /dev/null || fail "protect m$i"
done
wait_point solo-disk 1 || fail "no point for solo"
for i in $(seq 1 "$COUNT"); do wait_point "m$i-disk" 1 || fail "no point for m$i"; done
# Then one more point for all: a VM whose very first point landed just before the kill, while
# the rest of its group had not shipped that point yet, shares no instant with the others (it
# would come up from its own point, apart from the group's, which the run reports).
n=$(point_of m1-disk)
for i in $(seq 1 "$COUNT"); do wait_point "m$i-disk" $((n + 1)) || fail "no point $((n + 1)) for m$i"; done
kill -9 "$PRIMARY_PID"
for name in solo $(seq -f "m%g" 1 "$COUNT"); do virsh -q -c "$U1" destroy "$name" > /dev/null 2>&1; done
at_b failover --group one --json > "$TEST_DIR/one.json" || fail "failover one: $(jq -r .reason "$TEST_DIR/one.json")"
at_b failover --group many --json > "$TEST_DIR/many.json" || fail "failover many: $(jq -r .reason "$TEST_DIR/many.json")"
one_ms=$(jq -r .total_ms "$TEST_DIR/one.json")
many_ms=$(jq -r .total_ms "$TEST_DIR/many.json")
many_rto=$(jq -r '[.vms[].rto_seconds] | max' "$TEST_DIR/many.json")
running=$(virsh -q -c "$U2" list --state-running --name | grep -c '^m')

awk -v pd="$plain_down" -v pt="$plain_total" -v ff="$ferry_frozen" -v ft="$ferry_total" \
	-v mm="$migrate_ms" -v one="$one_ms" -v many="$many_ms" -v rto="$many_rto" -v n="$COUNT" \
	-v up="$running" 'BEGIN {
	printf "%-44s %10s %10s\n", "", "frozen ms", "total ms"
	printf "%-44s %10s %10s\n", "virsh migrate --live (shared storage)", pd, pt
	printf "%-44s %10s %10s   (memory move %s ms)\n", "ferry migrate --live (replica, final delta)", ff, ft, mm
	printf "ratio frozen ferry/virsh: %.1fx; goal frozen <= 500 ms: %s\n", (pd > 0 ? ff / pd : 0), ff <= 500 ? "met" : "not met"
	printf "failover RTO, 1 VM: %.1f s; %d VMs: %.1f s (slowest VM %.1f s, %d running); goal < 30 s: %s\n", one / 1000, n, many / 1000, rto, up, many < 30000 ? "met" : "not met"
}'
