#!/bin/bash
# A partial or complete copy never silently continues from a different source (other size, other
# mtime, other bytes): the re-run is refused, the receiver's data is untouched, and --restart redoes it.
. "$(dirname "$0")/lib.sh"

plan 42

SEG=1048576
TOTAL=32	# segments of the image

COPY_OPTIONS=(--segment-size "$SEG" --jobs 2)
# copy_to_part ERRFILE [args]: the source to volume part, stderr into ERRFILE (a fresh file each).
copy_to_part() {
	local err=$1
	shift
	COPY_ERR=$err copy_fg "$TEST_DIR/source.img" part "$@"
}
# refused_as_different ERRFILE: the message names the different source and --restart.
refused_as_different() {
	grep -qi "different source\|source differs\|source changed" "$1" && grep -q -- "--restart" "$1"
}
# poke FILE OFFSET: overwrites one byte in place (same size, new mtime).
poke() {
	printf '\x5a' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

start_daemon recv || exit 1
VOLUME="$TEST_DIR/recv/volumes/part"
head -c $((TOTAL * SEG)) /dev/urandom > "$TEST_DIR/source.img"

# ---- a partial copy: kill -9 mid-way
copy_bg "$TEST_DIR/source.img" part "$TEST_DIR/partial.out" --bwlimit 8M
wait_durable part 1
kill -0 "$COPY_PID" 2>/dev/null
ok $? "the first copy is still running when killed"
kill -9 "$COPY_PID" 2>/dev/null
wait "$COPY_PID" 2>/dev/null
durable=$(volume_field part segments_durable)
ok $([ "$durable" != none ] && [ "$durable" -gt 0 ] && [ "$durable" -lt "$TOTAL" ]; echo $?) \
	"the partial copy left some segments durable ($durable of $TOTAL)"
partial_sha=$(sha "$VOLUME")
partial_size=$(stat -c %s "$VOLUME")

# ---- the source grows by 1 MiB: refused
head -c "$SEG" /dev/urandom >> "$TEST_DIR/source.img"
out=$(copy_to_part "$TEST_DIR/grown.err")
is $? 1 "re-run after the source grew exits 1"
is "$(json_field "$out" status)" failed "its JSON says failed"
is "$(json_error "$out")" conflict "error code is conflict"
refused_as_different "$TEST_DIR/grown.err"
ok $? "message says the source is different and to use --restart: $(head -c 400 "$TEST_DIR/grown.err")"
is "$(volume_field part segments_durable)" "$durable" "receiver still holds the same $durable durable segments"
is "$(volume_field part state)" active "the receiver's transfer is still the active one"
is "$(sha "$VOLUME")" "$partial_sha" "the receiver's partial volume is untouched"
is "$(stat -c %s "$VOLUME")" "$partial_size" "the receiver's partial volume kept its size"

# ---- the size is back, only the mtime differs (identity includes the mtime): refused
truncate -s $((TOTAL * SEG)) "$TEST_DIR/source.img"
out=$(copy_to_part "$TEST_DIR/touched.err")
is $? 1 "re-run with the original size but a new mtime exits 1"
refused_as_different "$TEST_DIR/touched.err"
ok $? "message says the source is different and to use --restart"
is "$(volume_field part segments_durable)" "$durable" "receiver still holds the same $durable durable segments"
is "$(sha "$VOLUME")" "$partial_sha" "the receiver's partial volume is untouched"

# ---- one byte changed inside an already durable segment, same size: refused
poke "$TEST_DIR/source.img" 100
out=$(copy_to_part "$TEST_DIR/poked.err")
is $? 1 "re-run after one byte of the source changed exits 1"
refused_as_different "$TEST_DIR/poked.err"
ok $? "message says the source is different and to use --restart"
is "$(volume_field part segments_durable)" "$durable" "receiver still holds the same $durable durable segments"
is "$(sha "$VOLUME")" "$partial_sha" "the receiver's partial volume is untouched"
# The CLI's catalog must not have been confused by the refusals: the same refusal again.
out=$(copy_to_part "$TEST_DIR/poked2.err")
is $? 1 "a second re-run without --restart is refused too"

# ---- --restart starts over
out=$(copy_to_part "$TEST_DIR/restart.err" --restart)
is $? 0 "--restart exits 0"
is "$(json_field "$out" status)" complete "--restart completes"
is "$(json_field "$out" segments_skipped)" 0 "--restart skipped nothing (segments_skipped 0)"
is "$(json_field "$out" segments_sent)" "$TOTAL" "--restart sent all $TOTAL segments"
is "$(sha "$VOLUME")" "$(sha "$TEST_DIR/source.img")" "received volume has the changed source's SHA-256"
is "$(volume_field part state)" complete "receiver reports the volume complete"

# ---- unchanged source after a complete copy: nothing to do
out=$(copy_to_part "$TEST_DIR/again.err")
is $? 0 "re-run of a complete copy with the same source exits 0"
is "$(json_field "$out" status)" complete "it reports complete"
is "$(json_field "$out" segments_sent)" 0 "it sends nothing"

# ---- a complete copy, then the source changes: refused without --restart
complete_sha=$(sha "$VOLUME")
complete_digest=$(volume_field part digest)
poke "$TEST_DIR/source.img" $((20 * SEG + 7))
out=$(copy_to_part "$TEST_DIR/changed.err")
is $? 1 "re-run after the source of a complete copy changed exits 1"
is "$(json_error "$out")" conflict "error code is conflict"
refused_as_different "$TEST_DIR/changed.err"
ok $? "message says the source is different and to use --restart: $(head -c 400 "$TEST_DIR/changed.err")"
is "$(sha "$VOLUME")" "$complete_sha" "the receiver's complete volume is untouched"
is "$(volume_field part state)" complete "the receiver still reports the old copy complete"
is "$(volume_field part digest)" "$complete_digest" "with its old digest"
out=$(copy_to_part "$TEST_DIR/changed-restart.err" --restart)
is $? 0 "--restart after the change exits 0"
is "$(json_field "$out" status)" complete "--restart completes"
is "$(json_field "$out" segments_skipped)" 0 "--restart skipped nothing"
is "$(sha "$VOLUME")" "$(sha "$TEST_DIR/source.img")" "received volume has the new content"
ok $([ "$(volume_field part digest)" != "$complete_digest" ]; echo $?) "the receiver records the new digest"
"$FERRY" verify --to "$DAEMON_URL" --token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem" \
	"$TEST_DIR/source.img" part > /dev/null 2> "$TEST_DIR/verify.err"
is $? 0 "ferry verify agrees the volume matches the new source"

kill -0 "$DAEMON_PID" 2>/dev/null
ok $? "ferryd is still running at the end"
if grep -q "ERROR: AddressSanitizer\|runtime error:" "$TEST_DIR"/*.log "$TEST_DIR"/*.err 2>/dev/null; then
	ok 1 "no sanitizer reports"
	grep -h -A5 "ERROR: AddressSanitizer\|runtime error:" "$TEST_DIR"/*.log "$TEST_DIR"/*.err | sed 's/^/#   /'
else
	ok 0 "no sanitizer reports"
fi
exit $test_failed
