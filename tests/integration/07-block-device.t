#!/bin/bash
# A block device as the source: its size comes from the device, its bytes arrive intact, and a
# resized device is refused as a different source. Needs root for a loop device; skipped without.
. "$(dirname "$0")/lib.sh"

head -c $((12 * 1048576)) /dev/urandom > "$TEST_DIR/backing.img"
truncate -s 20M "$TEST_DIR/backing.img"
if ! loop_device "$TEST_DIR/backing.img"; then
	echo "1..0 # SKIP needs root and loop devices (losetup)"
	exit 0
fi
plan 7

start_daemon site || { echo "Bail out! ferryd did not start"; exit 1; }
out=$(ferry_copy "$DAEMON_URL" "$LOOP" blockdisk --segment-size 1M 2> "$TEST_DIR/copy.err")
ok $? "ferry copy of block device $LOOP exits 0"
is "$(json_field "$out" bytes_total)" $((20 * 1048576)) "the size comes from the device"
is "$(sha "$TEST_DIR/site/volumes/blockdisk")" "$(sha "$LOOP")" "received image equals the device"
[ "$(json_field "$out" segments_zero)" -ge 8 ]
ok $? "the device's zero tail travelled as zero records"

# Growing the device makes it a different source.
truncate -s 24M "$TEST_DIR/backing.img"
losetup --set-capacity "$LOOP"
out=$(ferry_copy "$DAEMON_URL" "$LOOP" blockdisk 2> "$TEST_DIR/grown.err")
is $? 1 "a resized device is refused"
grep -q -- "--restart" "$TEST_DIR/grown.err"
ok $? "and the message says how to start over"
out=$(ferry_copy "$DAEMON_URL" "$LOOP" blockdisk --restart 2>> "$TEST_DIR/grown.err")
is "$(sha "$TEST_DIR/site/volumes/blockdisk")" "$(sha "$LOOP")" "--restart copies the grown device"
exit $test_failed
