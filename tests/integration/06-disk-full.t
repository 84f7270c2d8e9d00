#!/bin/bash
# A receiver that runs out of disk fails the copy with a message naming its volumes folder, keeps
# every acknowledged segment intact and stays up; once there is room, a re-run resumes and completes.
. "$(dirname "$0")/lib.sh"

SEG=1048576
TOTAL=48	# segments of the image; the receiver's filesystem holds about half of it, once
		# ferryd's 16 MiB kept free for its catalog are taken off

mkdir -p "$TEST_DIR/full"
if ! mount -t tmpfs -o size=40m tmpfs "$TEST_DIR/full" 2>/dev/null; then
	echo "1..0 # SKIP needs root to mount tmpfs"
	exit 0
fi

plan 24

copy() {	# copy NAME ERRFILE [args]: the test image to ferryd; JSON on stdout
	local name=$1 err=$2; shift 2
	timeout 120 "$FERRY" copy --to "$DAEMON_URL" --token-file "$TEST_DIR/token" \
		--cacert "$TEST_DIR/tls/ca.pem" --json --segment-size "$SEG" --jobs 2 "$@" \
		"$TEST_DIR/random.img" "$name" 2> "$err"
}

head -c $((TOTAL * SEG)) /dev/urandom > "$TEST_DIR/random.img"
start_daemon full || exit 1
VOLUME="$TEST_DIR/full/volumes/big"

out=$(copy big "$TEST_DIR/full1.err")
rc=$?
ok $([ "$rc" != 0 ] && [ "$rc" != 124 ]; echo $?) "copy onto a receiver without enough space fails (exit $rc)"
is "$(json_field "$out" status)" failed "its JSON says failed"
is "$(json_error "$out")" no_space \
	"error code is no_space"
grep -q "$TEST_DIR/full/volumes" "$TEST_DIR/full1.err"
ok $? "message names the receiver's folder $TEST_DIR/full/volumes: $(head -c 400 "$TEST_DIR/full1.err")"
grep -qi "free space" "$TEST_DIR/full1.err" && grep -qi "re-run" "$TEST_DIR/full1.err"
ok $? "message says to free space and re-run"
is "$(grep -o "is full while" "$TEST_DIR/full1.err" | wc -l)" 1 "message explains the folder once (not nested in itself)"
grep -qi "no space left on device\|disk is full" "$TEST_DIR/full1.err"
ok $? "message gives the underlying cause (No space left on device)"

durable=$(volume_field big segments_durable)
ok $([ "$durable" != none ] && [ "$durable" -gt 0 ] && [ "$durable" -lt "$TOTAL" ]; echo $?) \
	"ferry status shows part of the volume durable ($durable of $TOTAL segments)"

# The receiver's durable list, as a resuming sender sees it: the same begin request with the
# same source identity answers with the ranges (and changes nothing).
identity=$(volume_field big source_identity)
ranges=$(api POST /v1/volumes/big/transfer \
	"{\"size\":$((TOTAL * SEG)),\"segment_size\":$SEG,\"source_identity\":\"$identity\"}" |
	jq -r '.durable // [] | map("\(.[0])-\(.[1])") | join(" ")')
diag "durable ranges: $ranges"
count=0
mismatch=""
for range in $ranges; do
	first=${range%-*} last=${range#*-}
	count=$((count + last - first + 1))
	cmp -s -i $((first * SEG)):$((first * SEG)) -n $(((last - first + 1) * SEG)) \
		"$TEST_DIR/random.img" "$VOLUME" || mismatch="$mismatch $range"
done
is "$count" "$durable" "the durable ranges cover the $durable durable segments"
is "$mismatch" "" "every durable segment holds exactly the source's bytes"

health=$(api GET /v1/health)
is "$(json_field "$health" status)" ok "ferryd is alive and answers /v1/health while its disk is full"
kill -0 "$DAEMON_PID" 2>/dev/null
ok $? "ferryd did not exit"

out=$(copy big "$TEST_DIR/full2.err")
rc=$?
ok $([ "$rc" != 0 ] && [ "$rc" != 124 ]; echo $?) "a re-run while still full fails again (exit $rc)"
grep -q "$TEST_DIR/full/volumes" "$TEST_DIR/full2.err"
ok $? "with the same message naming the folder"
after=$(volume_field big segments_durable)
ok $([ "$after" -ge "$durable" ]; echo $?) "no durable segment was lost by the second attempt ($after >= $durable)"
durable=$after

# Make room: grow the tmpfs under the running daemon.
if mount -o remount,size=128m "$TEST_DIR/full" 2>/dev/null; then
	ok 0 "grew the receiver's filesystem to 128 MiB"
else
	# Fallback: move the state to a roomier place and restart ferryd there on the same port.
	port=${DAEMON_URL##*:}
	stop_daemon "$DAEMON_PID"
	cp -a "$TEST_DIR/full" "$TEST_DIR/big"
	DAEMON_PORT=$port start_daemon big
	ok $? "moved the receiver's state to $TEST_DIR/big"
	VOLUME="$TEST_DIR/big/volumes/big"
fi

out=$(copy big "$TEST_DIR/room.err")
is $? 0 "re-run with room exits 0"
is "$(json_field "$out" status)" complete "re-run is complete"
is "$(sha "$VOLUME")" "$(sha "$TEST_DIR/random.img")" "received volume has the source's SHA-256"
skipped=$(json_field "$out" segments_skipped)
ok $([ "$skipped" -gt 0 ] && [ "$skipped" -ge "$durable" ]; echo $?) \
	"acknowledged data was kept: segments_skipped $skipped >= $durable"
is $((skipped + $(json_field "$out" segments_sent))) "$TOTAL" "only the missing segments were sent"
is "$(volume_field big state)" complete "ferry status reports the volume complete"
"$FERRY" verify --to "$DAEMON_URL" --token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem" \
	"$TEST_DIR/random.img" big > /dev/null 2> "$TEST_DIR/verify.err"
is $? 0 "ferry verify agrees"

if grep -q "ERROR: AddressSanitizer\|runtime error:" "$TEST_DIR"/*.log "$TEST_DIR"/*.err 2>/dev/null; then
	ok 1 "no sanitizer reports"
	grep -h -A5 "ERROR: AddressSanitizer\|runtime error:" "$TEST_DIR"/*.log "$TEST_DIR"/*.err | sed 's/^/#   /'
else
	ok 0 "no sanitizer reports"
fi
# lib.sh's cleanup unmounts $TEST_DIR/full, which needs ferryd gone first.
stop_daemon "$DAEMON_PID"
exit $test_failed
