#!/bin/bash
# One segment, one atomic step: two `ferry copy` runs of a live block device (one identity,
# changing bytes) to the same volume name at the same time put the same segments with different
# bytes. They end with a refusal or with a complete volume whose bytes match the digest it was
# committed with, never a volume marked complete whose bytes do not match it. Twenty rounds.
. "$(dirname "$0")/lib.sh"

ROUNDS=20
plan $((ROUNDS + 2))

SEG=65536
head -c $((64 * SEG)) /dev/urandom > "$TEST_DIR/backing.img"
if ! loop_device "$TEST_DIR/backing.img"; then
	echo "1..0 # SKIP needs root and loop devices (losetup)"
	exit 0
fi
start_daemon site || { echo "Bail out! ferryd did not start"; exit 1; }
STATE="$TEST_DIR/site"
COPY_OPTIONS=(--segment-size "$SEG" --jobs 4)
# The device keeps changing: every segment is rewritten with new bytes all the time.
(
	while :; do
		dd if=/dev/urandom of="$LOOP" bs=$SEG count=64 oflag=direct status=none 2>/dev/null
	done
) &
DAEMON_PIDS="$DAEMON_PIDS $!"	# killed at exit, before the device is detached
completed=0
for round in $(seq 1 "$ROUNDS"); do
	copy_bg "$LOOP" "race-$round" "$TEST_DIR/a.$round"
	pid_a=$COPY_PID
	copy_bg "$LOOP" "race-$round" "$TEST_DIR/b.$round"
	pid_b=$COPY_PID
	wait "$pid_a"; rc_a=$?
	wait "$pid_b"; rc_b=$?
	state=$(volume_field "race-$round" state)
	if [ "$state" = complete ]; then
		completed=$((completed + 1))
		# The digest it was committed with, against one recomputed from the bytes it holds.
		recorded=$(volume_field "race-$round" digest)
		actual=$(api POST "/v1/volumes/race-$round/verify" "{\"segment_size\":$SEG}" | jq -r .digest)
		[ -n "$recorded" ] && [ "$recorded" = "$actual" ]
		ok $? "round $round: complete, and its bytes match its digest (exits $rc_a/$rc_b)"
	else
		ok 0 "round $round: not complete ($state), the race was refused (exits $rc_a/$rc_b)"
	fi
done
[ "$completed" -gt 0 ]
ok $? "$completed of $ROUNDS rounds ended complete (so the check above had something to check)"
kill -0 "$DAEMON_PID"
ok $? "ferryd is still running"
stop_daemon "$DAEMON_PID"
exit $test_failed
