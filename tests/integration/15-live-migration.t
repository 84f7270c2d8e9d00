#!/bin/bash
# Planned live migration against real parts (two Ceph clusters, two libvirtd with QEMU, two
# ferryd): the guest's memory moves while its disk is replicated, the final delta is shipped while
# it is paused at the destination, then it resumes there. A write made inside the running guest
# right up to the migration must be on the replica it runs from; a refused migration changes
# nothing, whether the VM is shut off or has a CPU the destination's hypervisor cannot provide.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"
. "$(dirname "$0")/lib-cutover.sh"
cutover_skip_unless_ready

plan 41
cutover_setup 3 4
at_a group create "gl$$" --interval 2 --keep 20 > /dev/null
make_vm $V1
at_a vm protect $V1 --uri "$U1" --dest-uri "$U2" --group "gl$$" > /dev/null
wait_point $V1-disk 1
ok $? "$V1 runs at A, protected, its first point committed"
# A VM that is not running cannot move live: refused, nothing changed.
rbd_a create --size 16M "rbd/$V2-disk" && sed "s/$V1/$V2/g; /<uuid>/d" "$TEST_DIR/$V1.xml" > "$TEST_DIR/$V2.xml" &&
	v1 define "$TEST_DIR/$V2.xml" > /dev/null
at_a vm protect $V2 --uri one --dest-uri two --group "gl$$" > /dev/null
at_a migrate $V2 --live --json > "$TEST_DIR/refused.json"
is $? 1 "a live migration of a VM that is shut off fails"
is "$(jq -r .status "$TEST_DIR/refused.json")" refused "  and is refused by its checks ($(jq -r .reason "$TEST_DIR/refused.json" | head -c 150))"
is "$(timeout 60 virsh -q -c "$U1" domstate $V2)" "shut off" "  leaving the VM as it was, at the source"
# A VM on a CPU model the destination cannot provide (Skylake-Server with AVX-512: TCG emulates
# it only in part, and check='none' lets it start at A anyway, as on a host that has that CPU).
# Live or cold, the migration is refused before anything changes.
V3=t$$-vm3
rbd_a import --no-progress "$TEST_DIR/guest.img" "rbd/$V3-disk" &&
	sed "s/$V1/$V3/g; /<uuid>/d; s|<cpu mode='custom' match='exact'>|<cpu mode='custom' match='exact' check='none'>|; s|<model fallback='forbid'>qemu64</model>|<model fallback='forbid'>Skylake-Server</model><feature policy='require' name='avx512f'/>|" \
		"$TEST_DIR/$V1.xml" > "$TEST_DIR/$V3.xml" &&
	v1 define "$TEST_DIR/$V3.xml" > /dev/null && v1 start $V3 > /dev/null &&
	at_a group create "gc$$" --interval 2 --keep 20 > /dev/null &&
	at_a vm protect $V3 --uri "$U1" --dest-uri "$U2" --group "gc$$" > /dev/null && wait_point $V3-disk 1
ok $? "$V3 runs at A on a Skylake-Server CPU with AVX-512, protected"
at_a migrate $V3 --live --json > "$TEST_DIR/cpu-live.json"
is $? 1 "its live migration fails"
jq -e '.status == "refused" and (.reason | contains("cannot run the CPU"))' "$TEST_DIR/cpu-live.json" > /dev/null
ok $? "  refused by the CPU check ($(jq -r .reason "$TEST_DIR/cpu-live.json" | head -c 150))"
at_a migrate $V3 --cold --force --json > "$TEST_DIR/cpu-cold.json"
jq -e '.status == "refused" and (.reason | contains("cannot run the CPU"))' "$TEST_DIR/cpu-cold.json" > /dev/null
ok $? "its cold migration is refused too, before the shutdown"
running_on "$U1" $V3
ok $? "  $V3 still runs at A"
v2 list --all --name | grep -qx $V3
is $? 1 "  and nothing of it is defined at B"
v1 destroy $V3 > /dev/null
ok $? "(the CPU test VM is stopped)"
# A replica that lags more than --max-lag (a group with a point an hour): refused, nothing moves.
V4=t$$-vm4
rbd_a create --size 16M "rbd/$V4-disk" && sed "s/$V1/$V4/g; /<uuid>/d" "$TEST_DIR/$V1.xml" > "$TEST_DIR/$V4.xml" &&
	v1 define "$TEST_DIR/$V4.xml" > /dev/null && at_a group create "gq$$" --interval 3600 > /dev/null &&
	at_a vm protect $V4 --uri "$U1" --dest-uri "$U2" --group "gq$$" > /dev/null && wait_point $V4-disk 1
ok $? "$V4 is protected in a group with a point an hour"
lag_above() { awk -v l="$(field "$1" lag_seconds)" -v m="$2" 'BEGIN { exit !(l > m) }'; }
WAIT_INTERVAL=0.2 wait_until 30 lag_above $V4-disk 2
at_a migrate $V4 --cold --max-lag 1 --json > "$TEST_DIR/lag.json"
jq -e '.status == "refused" and (.reason | contains("lags"))' "$TEST_DIR/lag.json" > /dev/null
ok $? "its migration with --max-lag 1 is refused ($(jq -r .reason "$TEST_DIR/lag.json" | head -c 150))"
v2 list --all --name | grep -qx $V4
is $? 1 "  and nothing of it is defined at B"
# A migration that cannot finish in time (held to 1 MiB/s, --max-time 1): aborted by default,
# the VM left running at the source.
at_a migrate $V1 --live --bandwidth 1M --max-time 1 --json > "$TEST_DIR/abort.json"
is $? 1 "a live migration held to 1 MiB/s that cannot finish within --max-time 1 fails"
jq -e '.status == "failed" and (.reason | contains("did not converge"))' "$TEST_DIR/abort.json" > /dev/null
ok $? "  aborted ($(jq -r .reason "$TEST_DIR/abort.json" | head -c 150))"
running_on "$U1" $V1
ok $? "  $V1 keeps running at A"
v2 list --all --name | grep -qx $V1
is $? 1 "  and nothing of it is left at B"
# The operator aborts a live migration during its memory copy (held to 1 MiB/s, it would take
# minutes): it stops at once, recorded as a step, the VM running at the source.
at_a migrate $V1 --live --bandwidth 1M --max-time 600 --json > "$TEST_DIR/op-abort.json" &
migrating=$!
run=""
copying_memory() { # sets run to the running live migration, once it copies the memory
	run=$(at_a runs --json | jq -r '[.runs[] | select(.kind == "migrate-live" and .status == "running")][0].run // empty')
	[ -n "$run" ] && at_a run show "$run" --json |
		jq -e '.steps[] | select(.result == "running" and (.name | startswith("migrate the memory")))' > /dev/null
}
WAIT_INTERVAL=0.2 wait_until 150 copying_memory
at_a run abort "$run" > /dev/null
ok $? "ferry run abort $run during the memory copy is accepted"
wait "$migrating"
is $? 1 "  the migration ends unsuccessful (exit 1)"
jq -e '.status == "aborted" and ([.steps[] | select(.name == "abort, as the operator asked" and .result == "ok")] | length == 1)' \
	"$TEST_DIR/op-abort.json" > /dev/null
ok $? "  as aborted, with the abort recorded as a step ($(jq -r .reason "$TEST_DIR/op-abort.json" | head -c 120))"
running_on "$U1" $V1 && ! v2 list --all --name | grep -qx $V1
ok $? "  $V1 keeps running at A, nothing of it at B"
at_a run abort "$run" > /dev/null 2> "$TEST_DIR/abort-again.err"
[ $? = 1 ] && grep -q "cannot be aborted now" "$TEST_DIR/abort-again.err"
ok $? "an ended run cannot be aborted ($(head -c 120 "$TEST_DIR/abort-again.err"))"
at_a migrate $V1 --dry-run --json > "$TEST_DIR/dry.json"
ok $? "ferry migrate $V1 --dry-run passes every check"
jq -e '.kind == "migrate-check" and .vms[0].memory_bytes == 134217728 and (.vms[0].strategy == "live" or .vms[0].strategy == "cold") and .vms[0].predicted_total_ms > 0 and .vms[0].predicted_frozen_ms > 0' "$TEST_DIR/dry.json" > /dev/null
ok $? "  and predicts the migration ($(jq -c '.vms[0]' "$TEST_DIR/dry.json" | head -c 300))"
running_on "$U1" $V1
ok $? "  without changing anything: $V1 still runs at A"
"$GUEST/qemu-io.sh" "$U1" $V1 vda 'write -P 0x7c 3145728 8192' > /dev/null
ok $? "a write inside the running guest, just before the migration (0x7c at 3 MiB)"
at_a migrate $V1 --live --json > "$TEST_DIR/live.json"
ok $? "ferry migrate $V1 --live completes ($(jq -r .reason "$TEST_DIR/live.json"))"
jq -e '.status == "completed" and .kind == "migrate-live" and (.vms[0].frozen_ms > 0) and (.vms[0].final_delta_bytes >= 0) and (.total_ms > 0)' "$TEST_DIR/live.json" > /dev/null
ok $? "  and reports the frozen time and the final delta ($(jq -c '.vms[0]' "$TEST_DIR/live.json"))"
jq -e '.steps[-1] | .result == "ok" and (.name | startswith("validate")) and (.detail | test("CPU time advancing .*disk\\(s\\) at site .* equal to point [0-9]+"))' "$TEST_DIR/live.json" > /dev/null
ok $? "  and ends with a validation: running, its disks' point at B equal to A's ($(jq -r '.steps[-1].detail' "$TEST_DIR/live.json"))"
running_on "$U2" $V1
ok $? "$V1 runs (resumed) on libvirtd 2"
v1 list --all --name | grep -qx $V1
is $? 1 "and is gone from libvirtd 1"
v2 dumpxml $V1 | grep -q "name='rbd/$V1-disk'"
ok $? "its disk at B is the replica image"
is "$(bytes_at "$B" rbd/$V1-disk 3145728)" 7c7c7c7c "the write made inside the guest before the migration is on the replica"
v2 dumpxml --inactive $V1 | grep -q "name='rbd/$V1-disk'"
ok $? "the destination's saved definition points at the replica too"
ticks_moved=$(grep -c tick "$TEST_DIR/$V1.serial")
ticked_since() { [ "$(grep -c tick "$TEST_DIR/$V1.serial")" -gt "$1" ]; }
WAIT_INTERVAL=0.2 wait_until 60 ticked_since "$ticks_moved"
ticking=$?
ok $ticking "the guest keeps ticking at the destination"
run=$(jq -r .run "$TEST_DIR/live.json")
sqlite3 "$TEST_DIR/primary/catalog.db" "SELECT name FROM run_steps WHERE run_id = $run ORDER BY seq" > "$TEST_DIR/steps"
grep -q "^migrate the memory" "$TEST_DIR/steps" && grep -q "^resume" "$TEST_DIR/steps"
ok $? "the run's steps are in the catalog ($(wc -l < "$TEST_DIR/steps") steps)"
at_a status --json | jq -e --arg n "rbd:rbd/$V1-disk" '[.volumes[] | select(.name == $n)] | length == 0' > /dev/null
ok $? "its disk is no longer replicated from A"
n=$(point_of $V2-disk)
wait_point $V2-disk $((n + 2)); r=$?
ok $r "$V2, left alone in the group, keeps its replication (point $n, then $(point_of $V2-disk))"
[ $r = 0 ] || { rbd_a snap ls --all "rbd/$V2-disk" | sed 's/^/# /'; rbd_a group snap ls "rbd/ferry-gl$$" | tail -3 | sed 's/^/# /'; }
# A disk whose point reads back different at the destination (FERRY_FAULT_VALIDATE_DIGEST in the
# check build makes the source's digest differ): the migration's validation fails the run,
# naming the disk, both digests and what to do.
stop_daemon "$PRIMARY_PID"
FERRY_FAULT_VALIDATE_DIGEST=1 DAEMON_PORT=$PRIMARY_PORT start_daemon primary --ceph-conf "$A" --vm-refresh 2 "${SITE_FLAGS[@]}" ||
	{ echo "Bail out! primary ferryd did not restart"; exit 1; }
PRIMARY_PID=$DAEMON_PID
at_a migrate $V2 --cold --json > "$TEST_DIR/mismatch.json"
is $? 1 "a cold migration whose disk does not match its point at the destination fails"
jq -e '.status == "failed" and (.steps[-1] | .result == "failed" and (.name | startswith("validate")))
	and (.reason | test("disk vda of .* differs from point [0-9]+ \\([0-9a-z:-]+ there, [0-9a-z:-]+ here\\).*compare the images"))' \
	"$TEST_DIR/mismatch.json" > /dev/null
ok $? "  at its validation step, naming the disk, both digests and what to do ($(jq -r .reason "$TEST_DIR/mismatch.json" | head -c 260))"
v2 destroy $V2 > /dev/null 2>&1
stop_daemon "$PRIMARY_PID"
exit $test_failed
