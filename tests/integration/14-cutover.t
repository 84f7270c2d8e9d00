#!/bin/bash
# Cutover against real parts: two Ceph clusters (sites A and B), two libvirtd daemons with QEMU
# (TCG), two ferryd. A VM whose disk is an RBD image on A is protected and gets a second disk in
# libvirt, which ferry notices by itself; then a test failover at B
# while replication goes on (and its clean-up), a planned cold migration to B with writes made
# inside the running guest just before, a failover with the primary ferryd and its libvirtd gone,
# and a run interrupted by kill -9 of ferryd, then resumed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"
. "$(dirname "$0")/lib-cutover.sh"
cutover_skip_unless_ready

plan 53
cutover_setup 1 2
at_a group create "gv$$" --interval 2 --keep 20 > /dev/null
make_vm $V1
ok $? "VM $V1 runs on libvirtd 1 with its disk on Ceph cluster A"
at_a vm protect $V1 --uri "$U1" --dest-uri "$U2" --group "gv$$" > "$TEST_DIR/protect.out" 2>&1
ok $? "ferry vm protect $V1 ($(head -c 200 "$TEST_DIR/protect.out"))"
at_b runs --json > /dev/null
sqlite3 "$TEST_DIR/replica/catalog.db" "SELECT role FROM vms WHERE name = '$V1'" | grep -qx replica
ok $? "the VM's record is at the replica site"
sqlite3 "$TEST_DIR/replica/catalog.db" "SELECT record FROM vms WHERE name = '$V1'" | jq -e --arg n "<name>$V1</name>" '.xml | contains($n)' > /dev/null
ok $? "  with its domain XML"
wait_point $V1-disk 1
ok $? "the VM's disk is replicated (point $(point_of $V1-disk))"
# The definition changes in libvirt: a second disk in the saved definition. ferryd notices by
# itself, protects the new disk and sends the new definition to the replica site.
rbd_a create --size 8M "rbd/$V1-data" && rbd_disk_xml "$V1-data" vdb > "$TEST_DIR/data-disk.xml"
v1 attach-device $V1 "$TEST_DIR/data-disk.xml" --config > /dev/null
replica_record() { sqlite3 "$TEST_DIR/replica/catalog.db" "SELECT record FROM vms WHERE name = '$1'"; }
record_has_data_disk() { replica_record $V1 | jq -e --arg d "rbd/$V1-data" '.xml | contains($d)' > /dev/null 2>&1; }
WAIT_INTERVAL=0.2 wait_until 60 record_has_data_disk
sqlite3 "$TEST_DIR/replica/catalog.db" "SELECT record FROM vms WHERE name = '$V1'" | jq -e --arg d "rbd/$V1-data" '(.xml | contains($d)) and ([.disks[] | select(.target == "vdb")] | length == 1)' > /dev/null
ok $? "a disk added to $V1's definition in libvirt reaches the replica site's record by itself"
wait_point $V1-data 1
ok $? "  and the new disk is protected in the VM's group (point $(point_of $V1-data))"
sqlite3 "$TEST_DIR/primary/catalog.db" "SELECT message FROM events" | grep -q "definition changed"
ok $? "  and the primary's events say so"
at_a vm protect nosuch --uri "$U1" --dest-uri "$U2" --group "gv$$" > /dev/null 2> "$TEST_DIR/p.err"
is $? 1 "protecting a domain that does not exist is refused"
grep -q "no domain named 'nosuch'" "$TEST_DIR/p.err"
ok $? "  and the message names it"

# Test failover at B while replication goes on.
before=$(point_of $V1-disk)
at_b failover $V1 --test --json > "$TEST_DIR/test.json"
ok $? "ferry failover $V1 --test completes"
is "$(jq -r .status "$TEST_DIR/test.json")" completed "  its run is completed"
is "$(jq -r '.vms[0].name' "$TEST_DIR/test.json")" $V1 "  and reports $V1"
running_on "$U2" $V1
ok $? "the test VM runs on libvirtd 2"
v2 dumpxml $V1 | grep -q "rbd/$V1-disk-test-"
ok $? "  on a clone of the point"
running_on "$U1" $V1
ok $? "the VM still runs at the primary"
wait_point $V1-disk $((before + 2))
ok $? "replication goes on during the test (point $(point_of $V1-disk))"
at_b failover --cleanup --json > "$TEST_DIR/cleanup.json"
ok $? "ferry failover --cleanup completes"
v2 list --all --name | grep -qx $V1
is $? 1 "the test VM is gone from libvirtd 2"
rbd_b ls rbd | grep -q test-
is $? 1 "and so are the clones"

# Planned cold migration with writes made inside the running guest just before.
"$GUEST/qemu-io.sh" "$U1" $V1 vda 'write -P 0x5a 1048576 4096' > /dev/null
ok $? "a write inside the running guest (0x5a at 1 MiB)"
at_a migrate $V1 --cold --force --shutdown-timeout 3 --json > "$TEST_DIR/cold.json"
ok $? "ferry migrate $V1 --cold completes"
jq -e '.status == "completed" and .kind == "migrate-cold" and (.vms[0].downtime_ms > 0) and (.vms[0].final_delta_bytes >= 0) and (.total_ms > 0)' "$TEST_DIR/cold.json" > /dev/null
ok $? "  and reports status, downtime and final delta ($(jq -c '.vms[0]' "$TEST_DIR/cold.json"))"
jq -e '.steps[-1] | .result == "ok" and (.name | startswith("validate")) and (.detail | test("disk\\(s\\) at site .* equal to point [0-9]+"))' "$TEST_DIR/cold.json" > /dev/null
ok $? "  and ends with a validation of the VM and its disks ($(jq -r '.steps[-1].detail' "$TEST_DIR/cold.json"))"
running_on "$U2" $V1
ok $? "$V1 runs on libvirtd 2"
v1 list --all --name | grep -qx $V1
is $? 1 "and is no longer defined on libvirtd 1"
is "$(bytes_at "$B" rbd/$V1-disk 1048576)" 5a5a5a5a "the write made inside the guest is on the replica"
v2 dumpxml $V1 | grep -q "name='rbd/$V1-disk'" && v2 dumpxml $V1 | grep -q "name='rbd/$V1-data'"
ok $? "the VM's disks at B are the replica images, the one added later too"
run=$(jq -r .run "$TEST_DIR/cold.json")
steps=$(sqlite3 "$TEST_DIR/primary/catalog.db" "SELECT COUNT(*) FROM run_steps WHERE run_id = $run AND result = 'ok' AND ended_ms >= started_ms")
[ "$steps" -ge 5 ]
ok $? "the run's $steps steps are in the primary's catalog, each with its timings"

# Failover of a group of two VMs with the primary site gone: its ferryd killed and its libvirtd
# stopped.
V3=t$$-vm3
make_vm $V2 && make_vm $V3
at_a group create "gw$$" --interval 2 --keep 20 > /dev/null
at_a vm protect $V2 --uri "$U1" --dest-uri "$U2" --group "gw$$" --order 1 > /dev/null
at_a vm protect $V3 --uri "$U1" --dest-uri "$U2" --group "gw$$" --order 2 > /dev/null
wait_point $V2-disk 1 && wait_point $V3-disk 1
"$GUEST/qemu-io.sh" "$U1" $V2 vda 'write -P 0x6b 2097152 4096' > /dev/null
n=$(point_of $V2-disk)
wait_point $V2-disk $((n + 2)) && wait_point $V3-disk $((n + 2))
ok $? "$V2 and $V3 are protected in one group and a point after a write inside $V2 is committed"
# Unprotect, with both sites up (a VM of its own): only at the VM's primary; the replica site
# forgets it first, then its disks stop replicating; the VM runs on, untouched.
V4=t$$-vm4
make_vm $V4 && at_a vm protect $V4 --uri "$U1" --dest-uri "$U2" --group "gw$$" > /dev/null &&
	wait_point $V4-disk 1
ok $? "$V4 is protected in the group too"
at_b vm unprotect $V4 > /dev/null 2> "$TEST_DIR/unprotect-b.err"
[ $? = 1 ] && grep -q "is a replica here" "$TEST_DIR/unprotect-b.err"
ok $? "ferry vm unprotect at the replica site is refused ($(head -c 120 "$TEST_DIR/unprotect-b.err"))"
at_a vm unprotect $V4 > /dev/null 2> "$TEST_DIR/unprotect-a.err"
ok $? "ferry vm unprotect $V4 at its primary ($(head -c 200 "$TEST_DIR/unprotect-a.err"))"
at_a vm list --json | jq -e --arg n $V4 '[.vms[] | select(.name == $n)] | length == 0' > /dev/null &&
	at_b vm list --json | jq -e --arg n $V4 '[.vms[] | select(.name == $n)] | length == 0' > /dev/null
ok $? "  its record is gone at both sites"
at_a status --json | jq -e --arg s "rbd:rbd/$V4-disk" '[.volumes[] | select(.name == $s)] | length == 0' > /dev/null
ok $? "  its disk no longer replicates"
running_on "$U1" $V4
ok $? "  and $V4 runs on at A, untouched"
v1 destroy $V4 > /dev/null
kill9 "$PRIMARY_PID"
"$LIBVIRT_SH" stop "$D1" > /dev/null
STARTED="$D2"
# As if $V3 had joined the group moments before the loss: its replica holds only its newest
# point, which $V2's never got. No instant is common to both.
n3=$(replica_points $V3-disk | tail -1)
for p in $(replica_points $V3-disk | head -n -1); do rbd_b snap rm "rbd/$V3-disk@ferry-$p" > /dev/null 2>&1; done
for p in $(replica_points $V2-disk); do
	[ "$p" -ge "$n3" ] && rbd_b snap rm "rbd/$V2-disk@ferry-$p" > /dev/null 2>&1
done
n2=$(replica_points $V2-disk | tail -1)
at_b failover --group "gw$$" --json > "$TEST_DIR/failover.json"
ok $? "ferry failover --group completes with the primary site gone"
jq -e '.status == "completed" and ([.vms[] | select(.point > 0 and .rto_seconds > 0 and .rpo_seconds >= 0)] | length == 2)' "$TEST_DIR/failover.json" > /dev/null
ok $? "  and reports point, RTO and RPO of both ($(jq -c '.vms[0]' "$TEST_DIR/failover.json"))"
is "$(jq '[.steps[] | select((.name | startswith("validate")) and .result == "ok" and (.detail | startswith("running, CPU time advancing")))] | length' "$TEST_DIR/failover.json")" 2 \
	"  each VM validated as running, its CPU time advancing"
is "$(jq -r '[.vms[] | "\(.name)=\(.point)/\(.shares_group_point)"] | join(" ")' "$TEST_DIR/failover.json")" \
	"$V2=$n2/false $V3=$n3/true" "  each VM from a point all its disks hold, in recovery order, the one apart from the group marked"
jq -r '.steps[] | select(.name == "choose the point") | .detail' "$TEST_DIR/failover.json" | grep -q "no point is common to all: $V2 at $n2"
ok $? "  and the run says which VM is not at the group's instant ($(jq -r '.steps[] | select(.name == "choose the point") | .detail' "$TEST_DIR/failover.json"))"
running_on "$U2" $V2 && running_on "$U2" $V3
ok $? "$V2 and $V3 run on libvirtd 2"
jq -r '.steps[] | select(.name | startswith("fence")) | .detail' "$TEST_DIR/failover.json" | grep -q "unreachable"
ok $? "the run records that the primary could not be fenced"
is "$(bytes_at "$B" rbd/$V2-disk 2097152)" 6b6b6b6b "the write made inside $V2 is on the disk it runs from"
curl -s --cacert "$TEST_DIR/tls/ca.pem" -H "Authorization: Bearer $(cat "$TEST_DIR/token")" \
	-X POST -d '{"size": 16777216, "segment_size": 4194304, "source_identity": "x", "kind": "rbd", "base_identity": "y", "segments": []}' \
	"$REPLICA_URL/v1/volumes/$V2-disk/transfer" > "$TEST_DIR/late-delta.json"
jq -r '.error.code + " " + .error.message' "$TEST_DIR/late-delta.json" |
	grep -Eq "^split_brain split brain: .* generation|promoted by failover run"
ok $? "the promoted replica refuses any further delta: $(jq -r .error.message "$TEST_DIR/late-delta.json" | head -c 160)"

# A run interrupted by kill -9 of ferryd, then resumed. The run is held in its step "wait" by a
# delay of 30 s in $V2's record, written into the catalog while the replica's ferryd is stopped
# (no API changes a promoted VM's record; a running daemon's catalog is never written under it).
v2 destroy $V2 > /dev/null; v2 undefine $V2 > /dev/null
# restart_replica: site B's ferryd again on its port
restart_replica() {
	DAEMON_PORT=${REPLICA_URL##*:}
	start_daemon replica --ceph-conf "$B" "${SITE_FLAGS[@]}" || { echo "Bail out! replica ferryd did not restart"; exit 1; }
	REPLICA_PID=$DAEMON_PID
}
stop_daemon "$REPLICA_PID"
sqlite3 "$TEST_DIR/replica/catalog.db" "UPDATE vms SET record = json_set(record, '$.delay', 30) WHERE name = '$V2'"
restart_replica
reply=$(curl -s --cacert "$TEST_DIR/tls/ca.pem" -H "Authorization: Bearer $(cat "$TEST_DIR/token")" \
	-X POST -d "{\"kind\": \"failover-test\", \"vm\": \"$V2\"}" "$REPLICA_URL/v1/runs")
run=$(echo "$reply" | jq -r .run)
run_waiting() { sqlite3 "$TEST_DIR/replica/catalog.db" "SELECT name FROM run_steps WHERE run_id = $run" | grep -q "^wait"; }
WAIT_INTERVAL=0.2 wait_until 120 run_waiting
kill9 "$REPLICA_PID"
sqlite3 "$TEST_DIR/replica/catalog.db" "UPDATE vms SET record = json_set(record, '$.delay', 0) WHERE name = '$V2'"
restart_replica
at_b run show "$run" --json > "$TEST_DIR/interrupted.json"
is "$(jq -r .status "$TEST_DIR/interrupted.json")" interrupted "after kill -9 and a restart, the run shows as interrupted"
jq -r '.steps[-1] | .result + " " + .name' "$TEST_DIR/interrupted.json" | grep -q "^interrupted wait"
ok $? "  with the step where it stopped ($(jq -r '.steps[-1] | .result + ": " + .name' "$TEST_DIR/interrupted.json"))"
# Two resumes at once: one takes the run, the other is refused (only one thread may run it).
resume_code() { curl -s -o /dev/null -w '%{http_code}' --cacert "$TEST_DIR/tls/ca.pem" \
	-H "Authorization: Bearer $(cat "$TEST_DIR/token")" -X POST -d '{}' "$REPLICA_URL/v1/runs/$run/resume"; echo; }
resume_code > "$TEST_DIR/resume-1" &
first=$!
resume_code > "$TEST_DIR/resume-2" &
wait "$first" $!
is "$(cat "$TEST_DIR/resume-1" "$TEST_DIR/resume-2" | sort | tr '\n' ' ')" "202 409 " \
	"two resumes at once: one is taken (202), the other refused (409)"
wait_run_ended at_b "$run"
is "$(at_b run show "$run" --json | jq -r .status)" completed "ferry run resume finishes it"
at_b failover --cleanup > /dev/null
v2 list --all --name | grep -qx $V2
is $? 1 "and its clean-up leaves no test VM"

# A guest that does not make progress fails the run's validation (check build's fault hook).
if grep -qa FERRY_FAULT_VALIDATE_STUCK "$FERRYD"; then
	stop_daemon "$REPLICA_PID"
	FERRY_FAULT_VALIDATE_STUCK=1 restart_replica
	at_b failover $V2 --test --json > "$TEST_DIR/stuck.json"
	is $? 1 "a test failover whose guest does not make progress fails"
	jq -e '.status == "failed" and (.steps[-1] | .result == "failed" and (.name | startswith("validate")) and (.detail | test("CPU time did not advance")))' "$TEST_DIR/stuck.json" > /dev/null
	ok $? "  at its validation step, saying why ($(jq -r '.steps[-1].detail' "$TEST_DIR/stuck.json" | head -c 160))"
	at_b failover --cleanup > /dev/null
	v2 list --all --name | grep -qx $V2
	is $? 1 "  and its clean-up removes the test VM"
else
	skip "a test failover whose guest does not make progress fails (a check build's hook)"
	skip "  at its validation step"
	skip "  and its clean-up removes the test VM"
fi
stop_daemon "$REPLICA_PID"
exit $test_failed
