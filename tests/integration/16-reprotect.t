#!/bin/bash
# Failback against real parts (two Ceph clusters, two libvirtd with QEMU, two ferryd): a VM failed
# over to B keeps running there while the old primary A comes back with writes of its own that
# were never replicated. `ferry reprotect` at B reverses the direction: A's disk goes back to the
# last point both sites share and becomes B's replica, and only what changed since that point
# travels. Then the VM goes home (a live migration that times out and goes cold) and a second
# reprotect turns the direction back. The refusals come first: at the wrong site, with the VM
# running at both sites, and towards a site that does not answer.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"
. "$(dirname "$0")/lib-cutover.sh"
cutover_skip_unless_ready

plan 43
cutover_setup 7 8
# restart_primary: site A's ferryd again on its port (environment for it may precede the call)
restart_primary() {
	DAEMON_PORT=$PRIMARY_PORT
	start_daemon primary --ceph-conf "$A" --vm-refresh 2 "${SITE_FLAGS[@]}" ||
		{ echo "Bail out! primary ferryd did not restart"; exit 1; }
	PRIMARY_PID=$DAEMON_PID
}
# wait_replica_bytes OFFSET HEX: until B's replica of $V1 holds HEX at OFFSET at its newest point
replica_bytes_are() { [ "$(bytes_at "$B" "rbd/$V1-disk@ferry-$(point_of $V1-disk)" "$1")" = "$2" ]; }
wait_replica_bytes() { WAIT_INTERVAL=0.5 wait_until 300 replica_bytes_are "$1" "$2"; }
G="gr$$"
at_a group create "$G" --interval 2 --keep 20 > /dev/null
make_vm $V1
at_a vm protect $V1 --uri "$U1" --dest-uri "$U2" --group "$G" > /dev/null
# 6 MiB of data that a full copy would have to carry back again
"$GUEST/qemu-io.sh" "$U1" $V1 vda 'write -P 0x44 8388608 6291456' > /dev/null &&
	"$GUEST/qemu-io.sh" "$U1" $V1 vda 'write -P 0x11 1048576 4096' > /dev/null
n=$(point_of $V1-disk)
wait_point $V1-disk $((n + 2))
ok $? "$V1 runs at A, protected, with points after writes inside it ($(point_of $V1-disk))"

at_a reprotect "$G" --json > "$TEST_DIR/wrong-site.json"
is $? 1 "reprotect at the site the VM never left fails"
jq -e '.status == "refused" and (.reason | contains("does not run here from its replicas"))' "$TEST_DIR/wrong-site.json" > /dev/null
ok $? "  refused with the reason ($(jq -r .reason "$TEST_DIR/wrong-site.json" | head -c 120))"

# The disaster: site A's ferryd dies in the middle of a delta (as kill -9 would), after its
# segment is durable at B and before the commit. B's replica now holds part of a point that must
# never be exposed, so the failover has to roll it back, to a point whose own delta wrote at
# 6 MiB: a rollback marks what it restores as changed, and the reprotect below must not carry it.
"$GUEST/qemu-io.sh" "$U1" $V1 vda 'write -P 0x77 6291456 4096' > /dev/null
wait_replica_bytes 6291456 77777777
ok $? "a write at A (0x77 at 6 MiB) reaches B's replica at point $(point_of $V1-disk)"
stop_daemon "$PRIMARY_PID"
FERRY_FAULT_EXIT_AFTER_DELTA_SEGMENTS=1 restart_primary
"$GUEST/qemu-io.sh" "$U1" $V1 vda 'write -P 0x78 12582912 4096' > /dev/null
wait_for "$PRIMARY_PID" 120
is $? 137 "A's ferryd dies once the delta with a write at 12 MiB is durable at B, before its commit"
last=$(replica_points "$V1-disk" | tail -n 1)
landed=$(bytes_at "$B" "rbd/$V1-disk" 12582912)
at_last=$(bytes_at "$B" "rbd/$V1-disk@ferry-$last" 6291456)$(bytes_at "$B" "rbd/$V1-disk@ferry-$last" 12582912)
[ "$at_last" = 7777777744444444 ] && [ "$landed" = 78787878 ]
ok $? "  B's replica holds part of the next point uncommitted ($landed; at its newest point $last: $at_last)"

at_b failover $V1 --json > "$TEST_DIR/failover.json"
ok $? "ferry failover $V1 at B completes"
P=$(jq -r '.vms[0].point' "$TEST_DIR/failover.json")
is "$P" "$last" "  onto the last committed point"
running_on "$U2" $V1
ok $? "$V1 runs at B from point $P"
is "$(bytes_at "$B" "rbd/$V1-disk" 6291456)$(bytes_at "$B" "rbd/$V1-disk" 12582912)" 7777777744444444 \
	"  on a disk rolled back to it: the half-landed delta is gone"
restart_primary
"$GUEST/qemu-io.sh" "$U2" $V1 vda 'write -P 0x22 2097152 4096' > /dev/null
ok $? "a write inside the guest at B (0x22 at 2 MiB)"

# The old primary comes back: its VM starts again and something writes to its disk that B
# never saw.
v1 start $V1 > /dev/null
printf '\x99%.0s' $(seq 1 4096) > "$TEST_DIR/divergent"
/usr/bin/python3 "$RBD_TOOL" write "$A" "rbd/$V1-disk" 5242880 "$TEST_DIR/divergent"
ok $? "A's copy of the disk takes a write B never saw (0x99 at 5 MiB)"
# ... and its definition changes there: A's ferryd tries to send it, B keeps the VM it runs.
v1 desc $V1 --config --new-desc "changed at A after the failover" > /dev/null
refusal_recorded() { sqlite3 "$TEST_DIR/primary/catalog.db" "SELECT message FROM events WHERE object = '$V1'" | grep -q "could not be registered again"; }
WAIT_INTERVAL=0.2 wait_until 40 refusal_recorded
sqlite3 "$TEST_DIR/primary/catalog.db" "SELECT message FROM events WHERE object = '$V1'" | grep "could not be registered again" | grep -q "runs at this site"
ok $? "the old primary's changed definition of $V1 is refused by B"
is "$(sqlite3 "$TEST_DIR/replica/catalog.db" "SELECT record FROM vms WHERE name = '$V1'" | jq -r .promoted_point)" "$P" "  which keeps its own record of the VM it runs"
at_b site add home --url "$PRIMARY_URL" --peer-token-file "$TEST_DIR/peer-at-a" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null
at_b reprotect "$G" --json > "$TEST_DIR/both.json"
is $? 1 "reprotect while $V1 runs at A too fails"
jq -e '.status == "refused" and (.reason | contains("runs at"))' "$TEST_DIR/both.json" > /dev/null
ok $? "  refused: only one copy may write ($(jq -r .reason "$TEST_DIR/both.json" | head -c 120))"
v1 destroy $V1 > /dev/null

at_b site add nowhere --url https://127.0.0.1:1 --peer-token-file "$TEST_DIR/peer-at-a" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null
at_b reprotect "$G" --site nowhere --json > "$TEST_DIR/nowhere.json"
is $? 1 "reprotect towards a site that does not answer fails"
jq -e '.status == "failed" and (.reason | length > 0)' "$TEST_DIR/nowhere.json" > /dev/null
ok $? "  with the reason ($(jq -r .reason "$TEST_DIR/nowhere.json" | head -c 150))"
running_on "$U2" $V1
ok $? "  and $V1 still runs at B"

at_b reprotect "$G" --site home --json > "$TEST_DIR/reprotect.json"
ok $? "ferry reprotect $G at B completes ($(jq -r .reason "$TEST_DIR/reprotect.json"))"
jq -e --argjson p "$P" '.status == "completed" and .kind == "reprotect" and .vms[0].point == $p' "$TEST_DIR/reprotect.json" > /dev/null
ok $? "  from the shared point $P ($(jq -c '.vms' "$TEST_DIR/reprotect.json"))"
v1 list --all --name | grep -qx $V1
is $? 1 "$V1 is no longer defined at A (starting it there would write into a replica)"
rbd_a snap ls --all "rbd/$V1-disk" | grep -q -- "-before"
is $? 1 "A's disk keeps no rollback snapshots"
rbd_a group ls rbd | grep -qx "ferry-$G"
is $? 1 "and is in no consistency group at A any more"

first=""
replicating_back() { # sets first to B's entry for the disk once it is past point P
	local entry
	entry=$(at_b status --json | jq -c --arg n "rbd:rbd/$V1-disk" '.volumes[] | select(.name == $n)')
	[ -n "$entry" ] && [ "$(echo "$entry" | jq .last_point)" -gt "$P" ] && first=$entry
}
WAIT_INTERVAL=0.2 wait_until 240 replicating_back
[ -n "$first" ]
ok $? "B replicates $V1's disk to A from point $P on ($(echo "$first" | jq -c '{last_point, bytes_changed, bytes_sent}'))"
[ -n "$first" ] && [ "$(echo "$first" | jq .bytes_changed)" -gt 0 ] &&
	[ "$(echo "$first" | jq .bytes_changed)" -le 4194304 ]
ok $? "  reading only the one 4 MiB segment written since the failover, not what its rollback restored"
N=$(echo "$first" | jq .last_point)
sha_b=$(/usr/bin/python3 "$RBD_TOOL" sha "$B" "rbd/$V1-disk" "ferry-$N")
sha_a=$(/usr/bin/python3 "$RBD_TOOL" sha "$A" "rbd/$V1-disk" "ferry-$N")
[ -n "$sha_a" ] && [ "$sha_a" = "$sha_b" ]
ok $? "A's replica at point $N equals B's disk at point $N, byte for byte"
rbd_a export --no-progress "rbd/$V1-disk@ferry-$N" "$TEST_DIR/at-a.img" > /dev/null 2>&1
[ "$(dd if="$TEST_DIR/at-a.img" bs=4096 skip=512 count=1 status=none | xxd -p -l 4)" = 22222222 ] &&
	[ "$(dd if="$TEST_DIR/at-a.img" bs=4096 skip=1280 count=1 status=none | xxd -p -l 4)" = 00000000 ] &&
	[ "$(dd if="$TEST_DIR/at-a.img" bs=4096 skip=1536 count=1 status=none | xxd -p -l 4)" = 77777777 ] &&
	[ "$(dd if="$TEST_DIR/at-a.img" bs=4096 skip=3072 count=1 status=none | xxd -p -l 4)" = 44444444 ]
ok $? "  with the writes made at B and committed before the failover (6 MiB), without those A never replicated (5 MiB) or never committed (12 MiB)"

# Home again: a cold migration from B to A, then a reprotect at A.
"$GUEST/qemu-io.sh" "$U2" $V1 vda 'write -P 0x33 3145728 4096' > /dev/null
# Live first, held to 1 MiB/s for at most 1 s: it cannot finish, and --on-timeout cold moves
# the VM cold instead.
at_b migrate $V1 --live --bandwidth 1M --max-time 1 --on-timeout cold --force --shutdown-timeout 3 \
	--json > "$TEST_DIR/home.json"
ok $? "ferry migrate $V1 --live --on-timeout cold from B completes ($(jq -r .reason "$TEST_DIR/home.json"))"
jq -e '(.steps | map(.detail) | any(contains("moving it cold instead"))) and .vms[0].downtime_ms > 0' "$TEST_DIR/home.json" > /dev/null
ok $? "  cold, after the live attempt timed out ($(jq -c '.vms[0]' "$TEST_DIR/home.json"))"
jq -r '.steps[] | "  \(.name): \(.ended_ms - .started_ms) ms"' "$TEST_DIR/home.json" | while read -r line; do diag "$line"; done
running_on "$U1" $V1
ok $? "$V1 runs at A again"
is "$(bytes_at "$A" "rbd/$V1-disk" 3145728)" 33333333 "  on a disk with the last write made at B"
# The reprotect at A is cut short, as by kill -9 of ferryd, once it has protected the disks and
# stored its records, before the undefine at B; resumed, it finishes.
stop_daemon "$PRIMARY_PID"
FERRY_FAULT_EXIT_AT_STEP=undefine restart_primary
at_a reprotect "$G" --json > "$TEST_DIR/back-cut.json" 2>&1
wait_for "$PRIMARY_PID" 120
run=$(sqlite3 "$TEST_DIR/primary/catalog.db" "SELECT id FROM runs WHERE kind = 'reprotect' ORDER BY id DESC LIMIT 1")
restart_primary
at_a run show "$run" --json > "$TEST_DIR/back-cut.json"
jq -e '.status == "interrupted" and (.steps[-1].name | startswith("protect the disks here")) and .steps[-1].result == "ok"' "$TEST_DIR/back-cut.json" > /dev/null
ok $? "a reprotect cut short after storing its records shows as interrupted there ($(jq -r '.status + ", last step: " + .steps[-1].name' "$TEST_DIR/back-cut.json"))"
at_a run resume "$run" > /dev/null
wait_run_ended at_a "$run"
at_a run show "$run" --json > "$TEST_DIR/back.json"
jq -e '.status == "completed" and (.steps | map(.detail) | any(contains("protected here by this run already"))) and (.steps | map(.name) | any(startswith("undefine")))' "$TEST_DIR/back.json" > /dev/null
ok $? "ferry run resume finishes it: the undefine at B is all that is left ($(jq -r .reason "$TEST_DIR/back.json"))"
"$GUEST/qemu-io.sh" "$U1" $V1 vda 'write -P 0x55 4194304 4096' > /dev/null
wait_replica_bytes 4194304 55555555
is "$(bytes_at "$B" "rbd/$V1-disk@ferry-$(point_of $V1-disk)" 4194304)" 55555555 "a write at A reaches B's replica again (point $(point_of $V1-disk))"
# A planned cold migration cut short by kill -9 of ferryd while it waits for the guest to shut
# down (the guest ignores the request), then rolled back: the VM runs at A again and its
# replication goes on.
at_a migrate $V1 --cold --shutdown-timeout 120 --json > /dev/null 2>&1 &
cli=$!
run=""
shutting_down() { # sets run to the migration once it waits for the guest to shut down
	run=$(sqlite3 "$TEST_DIR/primary/catalog.db" "SELECT run_id FROM run_steps WHERE name LIKE 'shut%' ORDER BY run_id DESC LIMIT 1")
	[ -n "$run" ]
}
WAIT_INTERVAL=0.2 wait_until 90 shutting_down
kill9 "$PRIMARY_PID"; wait "$cli" 2>/dev/null
v1 destroy $V1 > /dev/null # as if the guest had shut down meanwhile
restart_primary
is "$(at_a run show "$run" --json | jq -r .status)" interrupted "a cold migration cut short by kill -9 of ferryd shows as interrupted"
at_a run rollback "$run" --json > "$TEST_DIR/rollback.json"
ok $? "ferry run rollback $run completes ($(jq -r .reason "$TEST_DIR/rollback.json"))"
is "$(at_a run show "$run" --json | jq -r .status)" rolled-back "  and the run shows as rolled back"
running_on "$U1" $V1
ok $? "$V1 runs at A again"
v2 list --all --name | grep -qx $V1
is $? 1 "  and nothing of it is defined at B"
"$GUEST/qemu-io.sh" "$U1" $V1 vda 'write -P 0x66 5242880 4096' > /dev/null
wait_replica_bytes 5242880 66666666
is "$(bytes_at "$B" "rbd/$V1-disk@ferry-$(point_of $V1-disk)" 5242880)" 66666666 "  and its replication goes on"
at_a run rollback "$(jq -r .run "$TEST_DIR/back.json")" > /dev/null 2> "$TEST_DIR/rollback.err"
is $? 1 "rolling back a completed run is refused"
grep -q "only an interrupted or failed run" "$TEST_DIR/rollback.err"
ok $? "  with the reason"
stop_daemon "$PRIMARY_PID"
stop_daemon "$REPLICA_PID"
exit $test_failed
