#!/bin/bash
# A predicted RPO per group: ferry status --json gives each group its change and ship rates over
# its recent cycles and the lag they lead to (predicted_lag_seconds); a group whose predicted lag
# is above its RPO target is at-risk, with the reason, before its real lag is. Here A reaches B
# through a link of 512 KiB/s (tests/soak/link-proxy.py --rate); group g1 has an interval of 2 s
# and an RPO target of 12 s. Under a light load the link carries, the rates are measured and the
# group stays in-sync; a paced load of random writes above what the link carries turns it
# at-risk within a few cycles, while its lag is still within the target, and it stays so while
# the load runs (recorded once as an event); once the load stops it comes back to in-sync. A restarted primary has no history: no prediction, not at-risk.
# No timing is asserted beyond generous bounds; the figures seen are printed for the record.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"

plan 25
ceph_sites
IMG=t$$-risk
RPO=12
LINK_RATE=524288   # bytes per second towards B
LOAD_KB=1500       # per second of random writes on the source (1000 bytes), above the link
LIGHT_KB=60        # and one the link carries
HERE=$(cd "$(dirname "$0")/.." && pwd)

start_daemon replica --ceph-conf "$B" || { echo "Bail out! replica ferryd did not start"; exit 1; }
REPLICA_URL=$DAEMON_URL
REPLICA_PORT=${DAEMON_URL##*:}
LINK_PORT=$(free_port)
/usr/bin/python3 "$HERE/soak/link-proxy.py" "$LINK_PORT" 127.0.0.1 "$REPLICA_PORT" \
	"$TEST_DIR/link.state" --rate "$LINK_RATE" 2>> "$TEST_DIR/link.log" &
DAEMON_PIDS="$DAEMON_PIDS $!"
wait_until 10 file_has "$TEST_DIR/link.state" up || { echo "Bail out! the link proxy did not start"; exit 1; }
DAEMON_PORT=$(free_port)
start_daemon primary --ceph-conf "$A" || { echo "Bail out! primary ferryd did not start"; exit 1; }
PRIMARY_PID=$DAEMON_PID PRIMARY_URL=$DAEMON_URL

rbd_a create --size 32M "rbd/$IMG"
at_a site add dr --url "https://127.0.0.1:$LINK_PORT" --peer-token-file "$TEST_DIR/token" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null
ok $? "site dr is B through a link of $LINK_RATE bytes/s"
at_a group create g1 --interval 2 --keep 3 --rpo "$RPO" > /dev/null &&
	at_a protect --group g1 --site dr "rbd:rbd/$IMG" > /dev/null
ok $? "group g1 (interval 2 s, RPO target $RPO s) protects rbd:rbd/$IMG"

group() { at_a status --json | jq -c '.groups[] | select(.name == "g1")'; }
gfield() { group | jq -r ".$1"; }
predicted() { [ "$(gfield predicted_lag_seconds)" != null ]; }
# load KB_PER_S: the paced write load of tests/soak/load-writer.py on the source, as LOAD_PID.
load() {
	/usr/bin/python3 "$HERE/soak/load-writer.py" "$A" rbd "$1" "$IMG" > "$TEST_DIR/load-$1.out" \
		2> "$TEST_DIR/load-$1.err" &
	LOAD_PID=$!
	DAEMON_PIDS="$DAEMON_PIDS $LOAD_PID"
	wait_until 60 file_has "$TEST_DIR/load-$1.out" started
}
unload() { kill -TERM "$LOAD_PID"; wait "$LOAD_PID" 2>/dev/null; }

# A load the link carries: a prediction within the target, in-sync all along.
load "$LIGHT_KB"
ok $? "a light write load of $LIGHT_KB KB/s runs on the source"
states=""
full_window() {
	local g
	g=$(group) || return 1
	states="$states $(echo "$g" | jq -r .state)"
	[ "$(echo "$g" | jq .prediction_cycles)" -ge 6 ]
}
WAIT_INTERVAL=0.5 wait_until 180 full_window
ok $? "after 6 cycles the group's prediction is over its full window"
g=$(group)
diag "light load: $(echo "$g" | jq -c '{state, lag_seconds, change_rate_bytes_per_second, ship_rate_bytes_per_second, predicted_lag_seconds}')"
echo "$g" | jq -e '(.change_rate_bytes_per_second > 0) and (.ship_rate_bytes_per_second > 0) and
	.lag_grows == false' > /dev/null
ok $? "  change_rate_bytes_per_second and ship_rate_bytes_per_second are measured, the lag does not grow"
echo "$g" | jq -e --argjson rpo "$RPO" '.predicted_lag_seconds <= $rpo and .state == "in-sync"' > /dev/null
ok $? "  the predicted lag ($(echo "$g" | jq .predicted_lag_seconds) s) is within the target: in-sync"
! echo "$states" | grep -q at-risk
ok $? "  and never at-risk meanwhile"
at_a status | grep -q "^g1 .*in-sync .* s *$"
ok $? "  plain ferry status shows the group in-sync with its predicted lag"
unload

# A load above what the link carries: at-risk within a few cycles, before the lag is above RPO.
start_point=$(gfield last_point)
load "$LOAD_KB"
ok $? "a write load of $LOAD_KB KB/s runs on the source, more than the link carries"
first="" max_lag=0
seen_at_risk() {
	local g
	g=$(group) || return 1
	max_lag=$(echo "$g" | jq --argjson m "$max_lag" '[.lag_seconds, $m] | max')
	[ "$(echo "$g" | jq -r .state)" = at-risk ] || return 1
	first=$g
}
WAIT_INTERVAL=0.3 wait_until 180 seen_at_risk
ok $? "the group turns at-risk under the load"
cycles=$(( $(echo "$first" | jq .last_point) - start_point ))
diag "first at-risk: $(echo "$first" | jq -c '{lag_seconds, change_rate_bytes_per_second, ship_rate_bytes_per_second, predicted_lag_seconds, lag_grows, last_point}') after $cycles point(s) committed under the load"
diag "  reason: $(echo "$first" | jq -r .reason)"
[ "$cycles" -le 4 ]
ok $? "  within a few cycles ($cycles points committed since the load began)"
echo "$first" | jq -e --argjson rpo "$RPO" '.predicted_lag_seconds > $rpo and .lag_grows' > /dev/null
ok $? "  its predicted lag ($(echo "$first" | jq .predicted_lag_seconds) s) is above the target, and grows"
echo "$first" | jq -e --argjson rpo "$RPO" '.lag_seconds <= $rpo' > /dev/null
ok $? "  before the real lag is: $(echo "$first" | jq .lag_seconds) s at that moment, target $RPO s (highest seen before: $max_lag s)"
echo "$first" | jq -r .reason | grep -q "change rate .* against a ship rate of .*RPO target of $RPO s"
ok $? "  its reason names the change rate, the ship rate and the target"
at_a status | grep -A1 "^g1 .*at-risk" | grep -q "at risk: change rate .*ship rate"
ok $? "  plain ferry status shows it at-risk with the reason"
at_a health --json | jq -e 'any(.reasons[]; .level == "warning" and
	(.reason | test("^group g1 is at risk: change rate")))' > /dev/null
ok $? "  ferry health warns, with the reason"
curl -sf -H "Authorization: Bearer $(cat "$TEST_DIR/token")" --cacert "$TEST_DIR/tls/ca.pem" \
	"$PRIMARY_URL/metrics" > "$TEST_DIR/metrics.txt"
grep -q '^ferry_group_at_risk{group="g1"} 1' "$TEST_DIR/metrics.txt" &&
	grep -q '^ferry_group_predicted_lag_seconds{group="g1"} ' "$TEST_DIR/metrics.txt" &&
	grep -q '^ferry_group_ship_rate_bytes_per_second{group="g1"} ' "$TEST_DIR/metrics.txt"
ok $? "  /metrics has ferry_group_at_risk 1 and the predicted lag and rates"
# It stays so while the load runs: two more points under it, never in-sync meanwhile.
states=""
two_more() {
	local g
	g=$(group) || return 1
	states="$states $(echo "$g" | jq -r .state)"
	last=$g
	[ "$(echo "$g" | jq .last_point)" -ge $(( $(echo "$first" | jq .last_point) + 2 )) ]
}
WAIT_INTERVAL=0.5 wait_until 240 two_more
ok $? "two more points commit under the load"
! echo "$states" | grep -q in-sync
ok $? "  and the group is never in-sync meanwhile ($(echo $states | tr ' ' '\n' | sort | uniq -c | xargs))"
diag "under the load: $(echo "$last" | jq -c '{state, lag_seconds, change_rate_bytes_per_second, ship_rate_bytes_per_second, predicted_lag_seconds}')"
diag "  reason: $(echo "$last" | jq -r '.reason // .prediction')"
events_like() { sqlite3 "$TEST_DIR/primary/catalog.db" "SELECT count(*) FROM events WHERE message LIKE '$1%'"; }
is "$(events_like "group g1 is at risk")" 1 "  at risk is recorded once as an event"

# The load stops: the backlog drains and the group is in-sync again.
unload
diag "load: $(tail -n 1 "$TEST_DIR/load-$LOAD_KB.out")"
in_sync() { [ "$(gfield state)" = in-sync ]; }
WAIT_INTERVAL=0.5 wait_until 300 in_sync
ok $? "once the load stops, the group comes back to in-sync"
g=$(group)
diag "after: $(echo "$g" | jq -c '{state, lag_seconds, change_rate_bytes_per_second, ship_rate_bytes_per_second, predicted_lag_seconds}')"
is "$(events_like "group g1 is no longer at risk")" 1 "  and that too is recorded once"

# A fresh daemon has no history: unknown, never at-risk.
stop_daemon "$PRIMARY_PID"
DAEMON_PORT=${PRIMARY_URL##*:}
start_daemon primary --ceph-conf "$A" || { echo "Bail out! primary ferryd did not restart"; exit 1; }
PRIMARY_PID=$DAEMON_PID
g=$(group)
echo "$g" | jq -e '.predicted_lag_seconds == null and .change_rate_bytes_per_second == null and
	.prediction_cycles == 0 and .state != "at-risk"' > /dev/null
ok $? "a restarted primary predicts nothing until it has cycles again ($(echo "$g" | jq -c '{state, predicted_lag_seconds, prediction_cycles}'))"
wait_until 120 predicted
ok $? "  and predicts again a few cycles later"
stop_daemon "$PRIMARY_PID"
ok $? "the primary stops cleanly"
exit $test_failed
