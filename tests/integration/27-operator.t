#!/bin/bash
# The operator's surface on real replication between two Ceph clusters: GET /metrics (names and
# values checked, promtool check metrics clean), a group's RPO target, pause (no point on the
# schedule), sync now (a point even while paused), resume, ferry health's word and exit status,
# ferry status' health line and group table, deletes refused while something depends on them,
# and a replica site that goes away showing as down, in error, in health and in metrics.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"

plan 43
ceph_sites
IMG=t$$-op G=op$$
VOLUME="rbd:rbd/$IMG"

REPLICA_PORT=$(free_port)
DAEMON_PORT=$REPLICA_PORT start_daemon replica --ceph-conf "$B" ||
	{ echo "Bail out! replica ferryd did not start"; exit 1; }
REPLICA_URL=$DAEMON_URL REPLICA_PID=$DAEMON_PID
start_daemon primary --ceph-conf "$A" || { echo "Bail out! primary ferryd did not start"; exit 1; }
PRIMARY_URL=$DAEMON_URL
CA="$TEST_DIR/tls/ca.pem"
CLI=(--daemon "$PRIMARY_URL" --token-file "$TEST_DIR/token" --cacert "$CA")
metrics() { curl -s --cacert "$CA" -H "Authorization: Bearer $(cat "${1:-$TEST_DIR/token}")" "$PRIMARY_URL/metrics"; }
# series NAME LABELS: the value of one series of /metrics (labels as they are printed).
series() { metrics | awk -v s="$1{$2}" 'index($0, s " ") == 1 { print $2 }'; }
LABELS="group=\"$G\",volume=\"$VOLUME\",site=\"dr\""

rbd_a create --size 32M "rbd/$IMG"
rbd_a bench --io-type write --io-size 4M --io-total 8M "rbd/$IMG" > /dev/null 2>&1
at_a site add dr --url "$REPLICA_URL" --peer-token-file "$TEST_DIR/token" --peer-cacert "$CA" > /dev/null &&
	at_a group create "$G" --interval 2 --keep 5 --rpo 45 > /dev/null &&
	at_a protect --group "$G" --site dr "$VOLUME" > /dev/null
ok $? "a site, a group with an RPO target of 45 s, a protected image"
wait_point "$IMG" 1
ok $? "its first point is committed"

at_a group create "$G" --interval 60 > /dev/null 2> "$TEST_DIR/again.err"
[ $? = 1 ] && grep -q "ferry group set $G" "$TEST_DIR/again.err"
ok $? "group create of an existing group is refused and names group set ($(head -c 110 "$TEST_DIR/again.err"))"
is "$(at_a group list --json | jq -r --arg g "$G" '.groups[] | select(.name == $g) | "\(.interval) \(.rpo_target)"')" \
	"2 45" "  and the group is as it was"

# Metrics: the names and values an alert rule reads.
metrics > "$TEST_DIR/metrics.txt"
last=$(series ferry_protection_last_point_timestamp_seconds "$LABELS")
awk -v t="$last" -v now="$(date +%s)" 'BEGIN { exit !(t > now - 120 && t <= now + 1) }'
ok $? "ferry_protection_last_point_timestamp_seconds is the time of the last point ($last)"
is "$(series ferry_protection_state "$LABELS,state=\"in-sync\"")" 1 "ferry_protection_state{state=in-sync} is 1"
is "$(series ferry_protection_state "$LABELS,state=\"error\"")" 0 "  and {state=error} is 0"
is "$(series ferry_group_rpo_target_seconds "group=\"$G\"")" 45 "ferry_group_rpo_target_seconds is the group's target"
awk -v n="$(series ferry_protection_points_committed_total "$LABELS")" 'BEGIN { exit !(n >= 1) }' &&
	awk -v n="$(series ferry_protection_bytes_shipped_total "$LABELS")" 'BEGIN { exit !(n > 0) }'
ok $? "points committed and bytes shipped are counted"
is "$(series ferry_site_up 'site="dr"')" 1 "ferry_site_up{site=dr} is 1"
grep -q '^ferry_build_info{version="' "$TEST_DIR/metrics.txt" && grep -q '^process_resident_memory_bytes ' "$TEST_DIR/metrics.txt"
ok $? "build info and process metrics are there"
grep -q '^ferry_http_requests_total{route="POST /v1/groups",code="409"} 1$' "$TEST_DIR/metrics.txt"
ok $? "ferry_http_requests_total counts by route pattern and code (the refused create)"
promtool check metrics < "$TEST_DIR/metrics.txt" > "$TEST_DIR/promtool.out" 2>&1
ok $? "promtool check metrics is clean ($(head -c 200 "$TEST_DIR/promtool.out"))"
at_a token create watcher --role viewer --json | jq -r .token > "$TEST_DIR/viewer.token"
[ "$(metrics "$TEST_DIR/viewer.token" | grep -c '^ferry_protection_state{')" -gt 0 ] &&
	[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" "$PRIMARY_URL/metrics")" = 401 ]
ok $? "a viewer token reads /metrics; no token is 401"

# The event stream, followed while the group is paused, synced and resumed.
"$FERRY" events --follow --json "${CLI[@]}" > "$TEST_DIR/events.jsonl" 2> "$TEST_DIR/events.err" &
follower=$!

# Pause: no point on the schedule; sync now takes one all the same; resume.
at_a group pause "$G" > /dev/null
ok $? "ferry group pause"
# A cycle that began before the pause may still commit its point: wait for it to end.
no_pending_point() { [ "$(field "$IMG" pending_point)" = 0 ]; }
WAIT_INTERVAL=0.2 wait_until 40 no_pending_point
paused_at=$(field "$IMG" last_point)
is "$(field "$IMG" state)" paused "status shows the volume paused"
is "$(series ferry_group_paused "group=\"$G\"")" 1 "ferry_group_paused is 1"
[ -n "$(series ferry_group_paused_since_timestamp_seconds "group=\"$G\"")" ]
ok $? "  with the time it was paused"
sleep 6 # on purpose: three intervals pass, to show that no point is taken
is "$(field "$IMG" last_point)" "$paused_at" "three intervals later no point was taken"
at_a health > "$TEST_DIR/health.out"
is $? 1 "ferry health exits 1 (warning) while a group is paused"
grep -q "^warning" "$TEST_DIR/health.out" && grep -q "group $G is paused" "$TEST_DIR/health.out"
ok $? "  and says why"
at_a group sync "$G" > /dev/null
ok $? "ferry group sync while paused"
wait_point "$IMG" $((paused_at + 1))
ok $? "  takes and ships a point now (point $(field "$IMG" last_point))"
at_a group resume "$G" > /dev/null && wait_point "$IMG" $((paused_at + 3))
ok $? "ferry group resume: points come on the schedule again"
kill "$follower"; wait "$follower" 2> /dev/null
json_lines "$TEST_DIR/events.jsonl" | jq -s -e --arg g "$G" \
	'any(.[]; .kind == "state" and .object == $g and (.message | startswith("paused")))' > /dev/null
ok $? "ferry events --follow showed the pause as it happened (a state event)"
[ "$(json_lines "$TEST_DIR/events.jsonl" | jq -s --arg v "$VOLUME" '[.[] | select(.kind == "point" and .object == $v)] | length')" -ge 3 ]
ok $? "  and each point committed (point events)"
at_a health --json > "$TEST_DIR/health.json"
is "$?/$(jq -r .health "$TEST_DIR/health.json")" 0/ok "ferry health: ok, exit 0"
at_a status > "$TEST_DIR/status.out"
status=$?
head -n 1 "$TEST_DIR/status.out" | grep -q '^health: ok' &&
	grep -Eq "^$G +1 +in-sync +[0-9]+ +[0-9]+ s +(in [0-9]+ s|due) +[0-9.]+ s +45 s +0" "$TEST_DIR/status.out"
ok $? "ferry status: the health word on top and a row for the group ($(grep "^$G" "$TEST_DIR/status.out"))"
is "$status" 0 "  exit 0"

# Deletes wait for what depends on them.
at_a group delete "$G" > /dev/null 2> "$TEST_DIR/delete.err"
[ $? = 1 ] && grep -q "ferry unprotect" "$TEST_DIR/delete.err"
ok $? "group delete is refused while an image is protected in it"
at_a site remove dr > /dev/null 2> "$TEST_DIR/remove.err"
[ $? = 1 ] && grep -q "still receives" "$TEST_DIR/remove.err"
ok $? "site remove is refused while an image replicates there"

# The replica site goes away: down in metrics, error in status and health.
stop_daemon "$REPLICA_PID"
wait_state "$IMG" error 60
is "$(field "$IMG" state)" error "with the replica site stopped, the protection is in error"
site_down() { [ "$(series ferry_site_up 'site="dr"')" = 0 ]; }
WAIT_INTERVAL=0.2 wait_until 20 site_down
is "$(series ferry_site_up 'site="dr"')" 0 "ferry_site_up{site=dr} is 0"
awk -v n="$(series ferry_protection_errors_total "$LABELS")" 'BEGIN { exit !(n >= 1) }'
ok $? "ferry_protection_errors_total counts the failed cycles"
at_a health > "$TEST_DIR/health.out"
is $? 2 "ferry health exits 2 (error)"
grep -q "replica site dr could not be reached" "$TEST_DIR/health.out"
ok $? "  naming the site"
at_a status > /dev/null
is $? 1 "plain ferry status exits 1 when the health is error"
DAEMON_PORT=$REPLICA_PORT start_daemon replica --ceph-conf "$B" > /dev/null ||
	{ echo "Bail out! replica ferryd did not restart"; exit 1; }
n=$(field "$IMG" last_point)
wait_point "$IMG" $((n + 1))
ok $? "the replica site back, replication goes on"
is "$(series ferry_site_up 'site="dr"')" 1 "  and ferry_site_up is 1 again"

# Once nothing depends on them, they go.
at_a unprotect "$VOLUME" > /dev/null && at_a group delete "$G" > /dev/null && at_a site remove dr > /dev/null
ok $? "after unprotect, group delete and site remove succeed"
is "$(at_a site list --json | jq '.sites | length')" 0 "  and the site list is empty"
[ ! -e "$TEST_DIR/primary/secrets/site-dr.token" ]
ok $? "  the site's secrets are gone with it"
"$FERRY" health --daemon https://127.0.0.1:1 --token-file "$TEST_DIR/token" > /dev/null 2>&1
is $? 3 "ferry health exits 3 when the daemon cannot be reached"
rbd_a rm "rbd/$IMG" > /dev/null 2>&1
exit $test_failed
