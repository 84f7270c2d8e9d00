#!/bin/bash
# Bounded waits: nothing ferry does waits on a dead peer or a dead cluster without a bound.
#  a) a copy outlives a kill -9 of the receiving ferryd and its restart a few seconds later: its
#     workers retry with backoff and the copy completes, digest verified;
#  b) a group whose replica cluster is stopped: status shows the error, naming the cluster, and
#     next_retry_ms, and the scheduler's tries grow apart (capped exponential backoff);
#  c) the primary's cluster killed (-9, mon and OSD) under a pass: SIGTERM still ends both
#     ferryd within their stop bound (the seconds measured are printed for the record).
# It starts clusters of its own (P and R): it stops them, so never the shared ones.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"

plan 21
# An older build may take minutes to stop; FERRY_STOP_WAIT lets one measure it (seconds).
STOP_WAIT=${FERRY_STOP_WAIT:-60}

# ---- a) a copy through a receiver's kill -9 and restart
diag "a) the receiving ferryd killed with SIGKILL mid copy, restarted 10 s later"
SEG=1048576
head -c $((48 * SEG)) /dev/urandom > "$TEST_DIR/random.img"
start_daemon recv || { echo "Bail out! ferryd did not start"; exit 1; }
PORT=${DAEMON_URL##*:}
stop_daemon "$DAEMON_PID"
DAEMON_PORT=$PORT start_daemon recv || { echo "Bail out! ferryd did not restart"; exit 1; }
copy_bg "$TEST_DIR/random.img" vol-a "$TEST_DIR/a.out" --segment-size 1M --jobs 2 --bwlimit 6M
wait_durable vol-a 4
kill9 "$DAEMON_PID"
killed_at=$EPOCHREALTIME
sleep 10 # the scenario: the receiver stays down for 10 s (more than the old fixed retries lasted)
kill -0 "$COPY_PID" 2>/dev/null
ok $? "the copy keeps trying while the receiver is down"
DAEMON_PORT=$PORT start_daemon recv || { echo "Bail out! ferryd did not restart"; exit 1; }
wait_for "$COPY_PID" 150
is $? 0 "the copy completes once the receiver is back (exit 0, no re-run)"
out=$(cat "$TEST_DIR/a.out")
is "$(json_field "$out" status)" complete "  its JSON says complete"
is "$(sha "$TEST_DIR/recv/volumes/vol-a")" "$(sha "$TEST_DIR/random.img")" \
	"  and the received volume has the source's SHA-256 (digest verified at commit)"
retries=$(json_field "$out" retries)
ok $([ "${retries:-0}" -ge 1 ]; echo $?) "  it says it retried ($retries retries)"
tries=$(grep -c "trying again in" "$TEST_DIR/a.out.err")
took=$(awk -v a="$killed_at" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
ok $([ "$tries" -ge 1 ] && [ "$tries" -le 40 ]; echo $?) \
	"  the retries backed off: $tries retry lines in ${took} s, from kill -9 to the end"
diag "retry waits: $(grep -o 'trying again in [0-9.]* s' "$TEST_DIR/a.out.err" | awk '{ print $4 }' | tr '\n' ' ')"
stop_daemon "$DAEMON_PID"

# ---- b) a group against a stopped replica cluster
diag "b) a protection group whose replica cluster is stopped"
ceph_cluster P memstore || { echo "Bail out! Ceph cluster P did not start"; exit 1; }
ceph_cluster R memstore || { echo "Bail out! Ceph cluster R did not start"; exit 1; }
P=$CEPH_CONF_P R=$CEPH_CONF_R
IMG=t$$-bw GROUP=bw$$
# The replica's Ceph calls are bounded to 4 s by its INI file ([ceph] op-timeout).
cat > "$TEST_DIR/replica.conf" <<EOF
[ceph]
conf = $R
op-timeout = 4
EOF
"$FERRYD" --check-config --config "$TEST_DIR/replica.conf" --state-dir "$TEST_DIR/replica" \
	--listen 127.0.0.1:0 --token-file "$TEST_DIR/token" --tls-cert "$TEST_DIR/tls/server.pem" \
	--tls-key "$TEST_DIR/tls/server.key" > "$TEST_DIR/check.out" 2>&1
grep -q "calls bounded to 4 s" "$TEST_DIR/check.out"
ok $? "ferryd --check-config shows the Ceph bound read from [ceph] op-timeout"
DAEMON_PORT=0
start_daemon replica --config "$TEST_DIR/replica.conf" ||
	{ echo "Bail out! replica ferryd did not start"; exit 1; }
REPLICA_PID=$DAEMON_PID REPLICA_URL=$DAEMON_URL
start_daemon primary --ceph-conf "$P" || { echo "Bail out! primary ferryd did not start"; exit 1; }
PRIMARY_PID=$DAEMON_PID PRIMARY_URL=$DAEMON_URL
rbd_p() { timeout 120 rbd -c "$P" "$@"; }
rbd_p create --size 64M "rbd/$IMG"
rbd_p bench --io-type write --io-size 4M --io-total 16M "rbd/$IMG" >/dev/null 2>&1
at_a site add dr --url "$REPLICA_URL" --peer-token-file "$TEST_DIR/token" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null
at_a group create "$GROUP" --interval 1 --keep 5 > /dev/null
at_a protect --group "$GROUP" --site dr "rbd:rbd/$IMG" > /dev/null
wait_point "$IMG" 1 120
ok $? "the first point reached the replica cluster"

bash "$CEPH_CLUSTER_SH" stop "$CEPH_DIR_R" > /dev/null
stopped_at=$(date +%s)
wait_state "$IMG" error 120
ok $? "ferry status shows the group in error once the replica cluster is gone"
status=$(at_a status --json)
reason=$(jq -r --arg n "rbd:rbd/$IMG" '.volumes[] | select(.name == $n) | .reason' <<< "$status")
diag "reason: $(head -c 400 <<< "$reason")"
grep -q "$R" <<< "$reason"
ok $? "  the error names the replica's cluster (its ceph.conf)"
grep -qi "timed out\|did not answer\|cannot connect" <<< "$reason"
ok $? "  and the cause"
# next_retry_ms is set once a cycle failed; it may be read just as a retry starts: wait for one.
retry_shown() {
	at_a status --json | jq -e --arg n "rbd:rbd/$IMG" --arg g "$GROUP" \
		'(.volumes[] | select(.name == $n) | .next_retry_ms > 0 and .failed_cycles >= 1) and
		 (.groups[] | select(.name == $g) | .next_retry_ms > 0 and (.reason | length) > 0)' \
		> /dev/null
}
wait_until 30 retry_shown
ok $? "  with next_retry_ms and failed_cycles for the volume and its group"
at_a status --json | jq -e '.volumes[0] | has("last_point") and has("lag_ms") and has("state")' > /dev/null
ok $? "  every field shown before is still there"

# The scheduler's tries of this group: each "cycle failed" line, with its time and its wait.
tries() { grep -c "group $GROUP: cycle failed" "$TEST_DIR/primary.log"; }
six_tries() { [ "$(tries)" -ge 6 ]; }
WAIT_INTERVAL=1 wait_until 240 six_tries
ok $? "six tries against the stopped cluster ($(tries) so far)"
grep "group $GROUP: cycle failed" "$TEST_DIR/primary.log" | head -n 6 > "$TEST_DIR/tries"
waits=$(sed 's/.*next try in \([0-9.]*\) s.*/\1/' "$TEST_DIR/tries" | tr '\n' ' ')
gaps=$(awk '{ split($1, t, /[T:Z]/); s = t[2] * 3600 + t[3] * 60 + t[4];
	if (NR > 1) printf "%.1f ", s - last; last = s }' "$TEST_DIR/tries")
diag "backoff waits (s): $waits; seconds between tries: $gaps"
awk -v w="$waits" 'BEGIN { n = split(w, a, " "); for (i = 2; i <= n; i++) if (a[i] + 0 <= a[i - 1] + 0) exit 1 }'
ok $? "  the waits grow at every try"
awk -v g="$gaps" 'BEGIN { n = split(g, a, " "); exit !(n >= 4 && a[n] + 0 > 2 * (a[1] + 0) - 1) }'
ok $? "  and the tries grow apart (first gap vs last: $gaps)"
window=$(( $(date +%s) - stopped_at ))
ok $([ "$(tries)" -le $((window / 2 + 5)) ]; echo $?) \
	"  no hammering: $(tries) tries in ${window} s with an interval of 1 s"

# ---- c) SIGTERM while the primary's cluster is dead under a pass
diag "c) the primary's Ceph cluster killed with SIGKILL under a pass, then SIGTERM"
for pid in $(cat "$CEPH_DIR_P/pids"); do kill -9 "$pid" 2>/dev/null; done
at_a group sync "$GROUP" > /dev/null 2>&1
# The scenario: give the pass time to be inside librados calls to the dead cluster.
sleep 3
term_at=$EPOCHREALTIME
kill -TERM "$PRIMARY_PID" "$REPLICA_PID"
# Each one's time is taken when it is first seen gone: both are watched together.
primary_s="" replica_s=""
seen_gone() {
	local now=$EPOCHREALTIME
	[ -n "$primary_s" ] || ! exited "$PRIMARY_PID" ||
		primary_s=$(awk -v a="$term_at" -v b="$now" 'BEGIN { printf "%.1f", b - a }')
	[ -n "$replica_s" ] || ! exited "$REPLICA_PID" ||
		replica_s=$(awk -v a="$term_at" -v b="$now" 'BEGIN { printf "%.1f", b - a }')
	[ -n "$primary_s" ] && [ -n "$replica_s" ]
}
wait_until "$STOP_WAIT" seen_gone
ok $([ -n "$primary_s" ]; echo $?) "the primary ferryd exited after SIGTERM with its cluster dead"
ok $([ -n "$replica_s" ]; echo $?) "the replica ferryd exited after SIGTERM with its cluster stopped"
diag "SIGTERM to exit with a dead cluster: primary ${primary_s:-more than $STOP_WAIT} s, replica ${replica_s:-more than $STOP_WAIT} s"
wait_for "$PRIMARY_PID" 5
is $? 0 "  the primary exited 0"
wait_for "$REPLICA_PID" 5
is $? 0 "  the replica exited 0"
grep "still stopping after\|ferryd stopping" "$TEST_DIR/primary.log" | tail -n 2 | sed 's/^/# primary: /'
grep "still stopping after\|ferryd stopping" "$TEST_DIR/replica.log" | tail -n 2 | sed 's/^/# replica: /'
exit $test_failed
