#!/bin/bash
# Resume after crashes: kill -9 of the sender again and again, kill -9 and SIGTERM of ferryd, a
# frozen receiver (SIGSTOP), and a peer that resets the connection; nothing acknowledged is lost.
. "$(dirname "$0")/lib.sh"

plan 49

SEG=1048576
JOBS=2
# zstd cannot shrink random data: a segment's body is its size plus a few bytes of framing.
BODY_MAX=$((SEG + SEG / 128))

COPY_OPTIONS=(--segment-size "$SEG" --jobs "$JOBS")
volume_durable() { volume_field "$1" segments_durable; }
# sender_ranges KIND NAME: how many segments the CLI's own catalog records as KIND (durable:
# acknowledged by the receiver; attempted: put on the wire) for its active transfer of NAME.
sender_ranges() {
	sqlite3 "$FERRY_STATE_DIR/catalog.db" "SELECT coalesce(sum(r.last - r.first + 1), 0)
		FROM segment_ranges r JOIN transfers t ON t.id = r.transfer_id WHERE t.role = 'send'
		AND t.volume = '$2' AND t.state = 'active' AND r.kind = '$1'"
}
# The kills below land at random moments on purpose: not synchronization, the scenario itself.
random_sleep() {	# 0.5 to 2.0 s
	local tenths=$((5 + RANDOM % 16))
	sleep "$((tenths / 10)).$((tenths % 10))"
}

head -c $((64 * SEG)) /dev/urandom > "$TEST_DIR/random.img"
SOURCE_SHA=$(sha "$TEST_DIR/random.img")

# Pick a port once, then always reuse it, so that a restarted ferryd is the same URL.
start_daemon recv || exit 1
PORT=${DAEMON_URL##*:}
stop_daemon "$DAEMON_PID"
DAEMON_PORT=$PORT start_daemon recv || exit 1

# ---- a) kill -9 of the sender at random moments, four times in a row
diag "a) sender killed with SIGKILL four times"
previous=0
sane=0
for kill_number in 1 2 3 4; do
	copy_bg "$TEST_DIR/random.img" vol-a "$TEST_DIR/a.$kill_number" --bwlimit 8M
	random_sleep
	kill -0 "$COPY_PID" 2>/dev/null
	ok $? "kill $kill_number: the copy was still running when killed"
	kill9 "$COPY_PID"
	durable=$(volume_durable vol-a)
	acked=$(sender_ranges durable vol-a)
	attempted=$(sender_ranges attempted vol-a)
	acked=${acked:-0} attempted=${attempted:-0} # no transfer recorded yet
	diag "kill $kill_number: receiver durable $durable, sender acknowledged $acked, attempted $attempted"
	# On a loaded machine a kill may land before the receiver even knew the volume: then
	# nothing may have been acknowledged either.
	if [ "$durable" = none ]; then
		[ "$previous" = 0 ] && [ "$acked" = 0 ] || sane=1
		durable=0
	fi
	[ "$durable" -ge "$previous" ] && [ "$durable" -lt 64 ] || sane=1
	[ "$acked" -le "$durable" ] 2>/dev/null || sane=1
	[ $((attempted - acked)) -le "$JOBS" ] 2>/dev/null || sane=1
	previous=$durable
done
ok $sane "after every kill: the receiver kept every segment the sender saw acknowledged, at most $JOBS were in flight"
ok $([ "$previous" -gt 0 ]; echo $?) "something became durable before the last kill ($previous segments)"
attempted=$(sender_ranges attempted vol-a)
out=$(copy_fg "$TEST_DIR/random.img" vol-a)
is $? 0 "the final run without --bwlimit exits 0"
is "$(json_field "$out" status)" complete "the final run is complete"
is "$(sha "$TEST_DIR/recv/volumes/vol-a")" "$SOURCE_SHA" "received volume has the source's SHA-256"
skipped=$(json_field "$out" segments_skipped)
sent=$(json_field "$out" segments_sent)
bytes_sent=$(json_field "$out" bytes_sent)
resent=$(json_field "$out" bytes_resent)
is "$skipped" "$previous" "segments_skipped is what the receiver held durable ($previous)"
is $((skipped + sent)) 64 "segments_skipped + segments_sent = segments_total"
inflight=$((attempted - skipped))
ok $([ "$inflight" -ge 0 ] && [ "$inflight" -le "$JOBS" ]; echo $?) \
	"at most $JOBS segments were lost in flight by the last kill ($inflight)"
ok $([ "$resent" -ge $((inflight * SEG)) ] && [ "$resent" -le $((inflight * BODY_MAX)) ]; echo $?) \
	"bytes_resent ($resent) is the $inflight segment(s) in flight at the last kill, no more"
ok $([ "$bytes_sent" -le $(((64 - skipped) * BODY_MAX)) ] && [ "$bytes_sent" -lt $((64 * SEG)) ]; echo $?) \
	"the final run sent only what was missing ($bytes_sent bytes, image $((64 * SEG)))"

# ---- b) kill -9 of the receiver mid copy
diag "b) ferryd killed with SIGKILL mid copy"
# --retry-for 3: it gives up once the daemon has been gone 3 s (it would retry 2 minutes)
copy_bg "$TEST_DIR/random.img" vol-b "$TEST_DIR/b.out" --bwlimit 8M --retry-for 3
wait_durable vol-b 1
kill -0 "$COPY_PID" 2>/dev/null
ok $? "the copy is running when ferryd is killed"
kill9 "$DAEMON_PID"
wait_for "$COPY_PID" 40
rc=$?
out=$(cat "$TEST_DIR/b.out")
ok $([ "$rc" != 0 ] && [ "$rc" != 124 ]; echo $?) "the copy fails (exit $rc) once ferryd is gone"
is "$(json_field "$out" status)" failed "its JSON says failed"
is "$(json_error "$out")" network \
	"the error is a network error, not a TLS/certificate problem"
grep -q "cannot reach" "$TEST_DIR/b.out.err"
ok $? "the message says the daemon cannot be reached"
grep -qi "cacert\|insecure" "$TEST_DIR/b.out.err"
ok $([ $? != 0 ]; echo $?) "the message does not blame the certificate"
acked=$(sender_ranges durable vol-b)
DAEMON_PORT=$PORT start_daemon recv
ok $? "ferryd restarts on the same port and state dir"
durable=$(volume_durable vol-b)
ok $([ "$durable" != none ] && [ "$acked" -le "$durable" ]; echo $?) \
	"every segment acknowledged before the kill is still durable ($acked <= $durable)"
out=$(copy_fg "$TEST_DIR/random.img" vol-b)
is $? 0 "re-run after the restart exits 0"
is "$(json_field "$out" status)" complete "re-run is complete"
is "$(sha "$TEST_DIR/recv/volumes/vol-b")" "$SOURCE_SHA" "received volume has the source's SHA-256"
skipped=$(json_field "$out" segments_skipped)
ok $([ "$skipped" -gt 0 ] && [ "$skipped" = "$durable" ]; echo $?) \
	"re-run skipped the $durable durable segments (segments_skipped $skipped)"

# ---- c) SIGTERM of the receiver mid copy
diag "c) ferryd stopped with SIGTERM mid copy"
# --retry-for 3: it gives up once the daemon has been gone 3 s (it would retry 2 minutes)
copy_bg "$TEST_DIR/random.img" vol-c "$TEST_DIR/c.out" --bwlimit 8M --retry-for 3
wait_durable vol-c 1
kill -0 "$COPY_PID" 2>/dev/null
ok $? "the copy is running when ferryd gets SIGTERM"
kill -TERM "$DAEMON_PID"
wait_for "$DAEMON_PID" 20
is $? 0 "ferryd stops cleanly (exit 0) within 20 s"
wait_for "$COPY_PID" 40
rc=$?
ok $([ "$rc" != 0 ] && [ "$rc" != 124 ]; echo $?) "the copy fails (exit $rc) once ferryd is gone"
grep -q "cannot reach" "$TEST_DIR/c.out.err"
ok $? "the message says the daemon cannot be reached"
acked=$(sender_ranges durable vol-c)
DAEMON_PORT=$PORT start_daemon recv
ok $? "ferryd restarts on the same port and state dir"
durable=$(volume_durable vol-c)
ok $([ "$durable" != none ] && [ "$durable" -gt 0 ] && [ "$acked" -le "$durable" ]; echo $?) \
	"every segment acknowledged before SIGTERM is still durable ($acked <= $durable)"
out=$(copy_fg "$TEST_DIR/random.img" vol-c)
is $? 0 "re-run after the restart exits 0"
is "$(json_field "$out" status)" complete "re-run is complete"
is "$(sha "$TEST_DIR/recv/volumes/vol-c")" "$SOURCE_SHA" "received volume has the source's SHA-256"
skipped=$(json_field "$out" segments_skipped)
ok $([ "$skipped" -gt 0 ] && [ "$skipped" = "$durable" ]; echo $?) \
	"re-run skipped the $durable durable segments (segments_skipped $skipped)"

# ---- d) a frozen receiver: SIGSTOP for a few seconds, then SIGCONT
diag "d) ferryd frozen with SIGSTOP for 3 s mid copy"
copy_bg "$TEST_DIR/random.img" vol-d "$TEST_DIR/d.out" --bwlimit 8M
wait_durable vol-d 1
before=$(volume_durable vol-d)
kill -0 "$COPY_PID" 2>/dev/null
ok $? "the copy is running when ferryd is frozen ($before segments durable)"
kill -STOP "$DAEMON_PID"
sleep 3	# the scenario: a receiver frozen for 3 s, during which the copy must wait
kill -0 "$COPY_PID" 2>/dev/null
ok $? "the copy waits for the frozen receiver instead of giving up at once"
kill -CONT "$DAEMON_PID"
wait_for "$COPY_PID" 60
rc=$?
out=$(cat "$TEST_DIR/d.out")
ok $([ "$rc" != 124 ]; echo $?) "the copy ends (exit $rc) within 60 s of SIGCONT"
if [ "$rc" = 0 ]; then
	is "$(json_field "$out" status)" complete "the copy survived the stall and is complete"
else
	grep -q "cannot reach\|re-run" "$TEST_DIR/d.out.err"
	ok $? "the copy failed clearly: $(head -c 300 "$TEST_DIR/d.out.err" | tr '\n' ' ')"
fi
kill -0 "$DAEMON_PID" 2>/dev/null
ok $? "ferryd is still alive after SIGCONT"
out=$(copy_fg "$TEST_DIR/random.img" vol-d)
is $? 0 "re-run after SIGCONT exits 0"
is "$(json_field "$out" status)" complete "re-run is complete"
is "$(sha "$TEST_DIR/recv/volumes/vol-d")" "$SOURCE_SHA" "received volume has the source's SHA-256"

# ---- e) a peer that resets the connection during the TLS handshake (a daemon dying, a
# middlebox cutting the link) is a network problem to retry, not a certificate problem.
diag "e) connection reset during the TLS handshake"
perl -MIO::Socket::INET -MSocket -e '
	my $s = IO::Socket::INET->new(Listen => 16, LocalAddr => "127.0.0.1", LocalPort => 0,
		ReuseAddr => 1) or die "listen: $!";
	open my $f, ">", "$ARGV[0].tmp" or die; print $f $s->sockport, "\n"; close $f;
	rename "$ARGV[0].tmp", $ARGV[0];
	while (my $c = $s->accept) { my $b; sysread($c, $b, 16);
		setsockopt($c, SOL_SOCKET, SO_LINGER, pack("ii", 1, 0)); close $c; }' \
	"$TEST_DIR/reset.port" &
RESET_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $RESET_PID"
wait_until 5 test -s "$TEST_DIR/reset.port"
out=$("$FERRY" copy --to "https://127.0.0.1:$(cat "$TEST_DIR/reset.port")" \
	--token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem" --json \
	"$TEST_DIR/random.img" vol-e 2> "$TEST_DIR/e.err")
rc=$?
is "$rc" 1 "copy to a peer that resets the connection exits 1"
is "$(json_error "$out")" network \
	"a reset during the handshake is a network error (got: $(head -c 200 "$TEST_DIR/e.err"))"
grep -qi "cacert\|insecure" "$TEST_DIR/e.err"
ok $([ $? != 0 ]; echo $?) "the message does not tell to fix --cacert/--insecure"
kill9 "$RESET_PID"

kill -0 "$DAEMON_PID" 2>/dev/null
ok $? "ferryd is still running at the end"
if grep -q "ERROR: AddressSanitizer\|runtime error:" "$TEST_DIR"/*.log "$TEST_DIR"/*.err 2>/dev/null; then
	ok 1 "no sanitizer reports"
	grep -h -A5 "ERROR: AddressSanitizer\|runtime error:" "$TEST_DIR"/*.log "$TEST_DIR"/*.err | sed 's/^/#   /'
else
	ok 0 "no sanitizer reports"
fi
exit $test_failed
