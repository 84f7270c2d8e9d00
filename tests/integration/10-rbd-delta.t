#!/bin/bash
# Deltas between RBD snapshots (ferry copy --from-snap): only the changed segments travel, the
# replica takes the same snapshot once the delta is complete and verified, never before.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"

plan 24
ceph_sites
IMG=t$$-vm
start_daemon site --ceph-conf "$B" || { echo "Bail out! ferryd did not start"; exit 1; }
COPY_OPTIONS=(--ceph-conf "$A" --jobs 3)
copy_command

# overwrite MIB_OFFSET MIB_COUNT: random bytes into the live image on A, through a diff stream
# (no kernel mapping needed): a scratch image of the same size holds them.
overwrite() {
	local scratch="rbd/${IMG}-scratch"
	rbd_a rm --no-progress "$scratch" >/dev/null 2>&1
	rbd_a create --size 64M "$scratch"
	head -c $(($2 * 1048576)) /dev/urandom > "$TEST_DIR/chunk"
	truncate -s 64M "$TEST_DIR/scratch.img"
	: > "$TEST_DIR/scratch.img"
	truncate -s 64M "$TEST_DIR/scratch.img"
	dd if="$TEST_DIR/chunk" of="$TEST_DIR/scratch.img" bs=1M seek="$1" conv=notrunc status=none
	rbd_a rm --no-progress "$scratch" >/dev/null 2>&1
	rbd_a import --no-progress --sparse-size 4096 "$TEST_DIR/scratch.img" "$scratch" >/dev/null
	rbd_a export-diff --no-progress "$scratch" - 2>/dev/null |
		rbd_a import-diff --no-progress - "rbd/$IMG" >/dev/null 2>&1
}

# scatter COUNT: COUNT 4 KiB writes at random 4 KiB-aligned places of the live image (rbd bench;
# its data compresses well, which is why the check below is on whole segments not being sent).
scatter() {
	rbd_a bench --io-type write --io-size 4K --io-threads 1 --io-pattern rand \
		--io-total $(($1 * 4096)) "rbd/$IMG" >/dev/null 2>&1
}

rbd_a create --size 64M "rbd/$IMG"
overwrite 0 24
rbd_a snap create "rbd/$IMG@p1" >/dev/null 2>&1
out=$("${COPY_ARGS[@]}" "rbd:rbd/$IMG@p1" "$IMG" 2> "$TEST_DIR/p1.err")
ok $? "full copy of p1 exits 0"
is "$(rbd_sha "$B" "rbd/$IMG@p1")" "$(rbd_sha "$A" "rbd/$IMG@p1")" "replica snapshot p1 equals the source's p1"

# A few scattered changes: only their segments travel.
overwrite 40 1
overwrite 8 1
rbd_a snap create "rbd/$IMG@p2" >/dev/null 2>&1
out=$("${COPY_ARGS[@]}" --from-snap p1 "rbd:rbd/$IMG@p2" "$IMG" 2> "$TEST_DIR/p2.err")
ok $? "delta p1 -> p2 exits 0"
delta=$(json_field "$out" segments_delta)
[ -n "$delta" ] && [ "$delta" -ge 2 ] && [ "$delta" -le 4 ]
ok $? "only the changed segments travel ($delta of 16)"
is "$(json_field "$out" segments_sent)" "$delta" "and exactly those were sent"
[ "$(json_field "$out" bytes_sent)" -lt $((3 * 1048576)) ]
ok $? "bytes on the wire ($(json_field "$out" bytes_sent)) are those of the 2 MiB changed, not of whole segments"
is "$(rbd_sha "$B" "rbd/$IMG@p2")" "$(rbd_sha "$A" "rbd/$IMG@p2")" "replica snapshot p2 equals the source's p2"
is "$(rbd_sha "$B" "rbd/$IMG@p1")" "$(rbd_sha "$A" "rbd/$IMG@p1")" "and p1 is still there, unchanged"
is "$(volume_field "$IMG" base_identity | sed 's/:id=.*//')" "rbd:rbd/$IMG@p1" \
	"ferry status shows the delta's base"
"${COPY_ARGS[@]}" --from-snap p1 "rbd:rbd/$IMG@p2" "$IMG" > "$TEST_DIR/again.out" 2>&1
ok $? "re-running a finished delta is a no-op that exits 0"

# A big delta, killed half-way: no snapshot p3 at the replica until it is complete.
overwrite 16 40
rbd_a snap create "rbd/$IMG@p3" >/dev/null 2>&1
copy_bg "rbd:rbd/$IMG@p3" "$IMG" "$TEST_DIR/p3a.out" --from-snap p2 --bwlimit 6M
# delta_landing: the delta's transfer is the volume's current one, with a segment durable
delta_landing() { [ "$(volume_field "$IMG" state)" = active ] && volume_durable_at_least "$IMG" 1; }
WAIT_INTERVAL=0.2 wait_until 60 delta_landing
kill -9 "$COPY_PID" 2>/dev/null
wait "$COPY_PID" 2>/dev/null
durable=$(volume_field "$IMG" segments_durable)
carried=$(volume_field "$IMG" segments_carried)
[ "$durable" -gt 0 ] && [ "$durable" -lt "$carried" ]
ok $? "the killed delta is partly durable ($durable of $carried)"
rbd_b snap ls "rbd/$IMG" | grep -qw p3
is $? 1 "the replica has no snapshot p3 for a half-applied delta"
is "$(volume_field "$IMG" state)" active "ferry status shows it in progress"
out=$("${COPY_ARGS[@]}" --from-snap p2 "rbd:rbd/$IMG@p3" "$IMG" 2> "$TEST_DIR/p3b.err")
ok $? "the re-run of the delta finishes"
is "$(json_field "$out" segments_skipped)" "$durable" "it skipped what was durable"
is "$(rbd_sha "$B" "rbd/$IMG@p3")" "$(rbd_sha "$A" "rbd/$IMG@p3")" "replica snapshot p3 equals the source's p3"

# 4 KiB writes scattered over the image: each changed segment carries its changed blocks only.
scatter 40
rbd_a snap create "rbd/$IMG@p4" >/dev/null 2>&1
out=$("${COPY_ARGS[@]}" --from-snap p3 "rbd:rbd/$IMG@p4" "$IMG" 2> "$TEST_DIR/p4.err")
ok $? "delta p3 -> p4 of 40 scattered 4 KiB writes exits 0"
sent=$(json_field "$out" bytes_sent)
[ "$sent" -lt $((40 * 4096 * 2)) ]
ok $? "the wire carries at most the 160 KiB written ($sent bytes for $(json_field "$out" segments_delta) segments of random data), not whole segments"
is "$(rbd_sha "$B" "rbd/$IMG@p4")" "$(rbd_sha "$A" "rbd/$IMG@p4")" "replica snapshot p4 equals the source's p4"

# Refusals: a delta from a base the replica does not hold, or onto a missing volume.
"${COPY_ARGS[@]}" --from-snap p1 "rbd:rbd/$IMG@p2" "$IMG" > /dev/null 2> "$TEST_DIR/wrongbase.err"
is $? 1 "a delta from a base the replica has moved past (it holds p3) is refused"
grep -q "does not hold the base" "$TEST_DIR/wrongbase.err"
ok $? "  and the message says why"
"${COPY_ARGS[@]}" --from-snap p1 "rbd:rbd/$IMG@p2" "${IMG}-new" > /dev/null 2> "$TEST_DIR/nobase.err"
is $? 1 "a delta onto a volume the receiver does not have is refused"
grep -q "copy its base" "$TEST_DIR/nobase.err"
ok $? "  and the message says to copy the base first"
"${COPY_ARGS[@]}" --from-snap p1 "rbd:rbd/$IMG" "$IMG" > /dev/null 2> "$TEST_DIR/live.err"
is $? 1 "a delta needs a snapshot as its source, not the live image"
exit $test_failed
