#!/bin/bash
# Continuous replication between two sites with two Ceph clusters: a primary ferryd takes point N
# of a protected image every interval and ships it; the replica site commits snapshot ferry-N.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"

plan 27
ceph_sites
IMG=t$$-app

start_daemon replica --ceph-conf "$B" || { echo "Bail out! replica ferryd did not start"; exit 1; }
REPLICA_URL=$DAEMON_URL
DAEMON_PORT=$(free_port)
start_daemon primary --ceph-conf "$A" || { echo "Bail out! primary ferryd did not start"; exit 1; }
PRIMARY_PID=$DAEMON_PID PRIMARY_URL=$DAEMON_URL

rbd_a create --size 64M "rbd/$IMG"
make_image "$TEST_DIR/pattern.img" 30
rbd_a import-diff --no-progress /dev/null "rbd/$IMG" >/dev/null 2>&1
rbd_a bench --io-type write --io-size 4M --io-total 32M "rbd/$IMG" >/dev/null 2>&1

at_a site add dr --url "$REPLICA_URL" --peer-token-file "$TEST_DIR/token" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null
ok $? "ferry site add"
at_a status --json | grep -q "$(cat "$TEST_DIR/token")"
is $? 1 "the peer's token never appears in the API's answers"
is "$(stat -c %a "$TEST_DIR/primary/secrets/site-dr.token")" 600 "the peer's token is kept in a 0600 file"
at_a group create g1 --interval 1 --keep 3 > /dev/null
ok $? "ferry group create g1 --interval 1 --keep 3"
at_a protect --group g1 --site dr "rbd:rbd/$IMG" > /dev/null
ok $? "ferry protect rbd:rbd/$IMG"

wait_point "$IMG" 2
ok $? "points are taken and committed (last point $(field "$IMG" last_point))"
rbd_a bench --io-type write --io-size 4K --io-total 256K --io-pattern rand "rbd/$IMG" >/dev/null 2>&1
target=$(( $(field "$IMG" last_point) + 2 ))
wait_point "$IMG" "$target"
ok $? "replication keeps going after more writes (point $target)"
n=$(field "$IMG" last_point)
is "$(field "$IMG" state)" in-sync "ferry status shows the volume in-sync"
lag=$(field "$IMG" lag_seconds)
awk -v l="$lag" 'BEGIN { exit !(l >= 0 && l < 30) }'
ok $? "lag_seconds is small ($lag)"
[ "$(field "$IMG" last_point_time)" -gt $(( $(date +%s) - 60 )) ]
ok $? "last_point_time is the source time of the point, in Unix seconds"
at_a status --json | jq -e '.groups[] | select(.name == "g1") | .volumes == 1' >/dev/null
ok $? "the group is listed with its volume"
at_a status | grep -q "^rbd:rbd/$IMG  *in-sync  *point [0-9]"
ok $? "plain ferry status shows the protected volume, its state and point"

# Stop the primary (SIGTERM lets the cycle in progress finish) to look at a still picture.
stop_daemon "$PRIMARY_PID"
ok $? "the primary stops cleanly on SIGTERM"
n=$(sqlite3 "$TEST_DIR/primary/catalog.db" "SELECT last_point FROM protections")
replica_points=$(replica_points "$IMG")
is "$(printf '%s\n' "$replica_points" | tail -n 1)" "$n" \
	"the replica's newest point is the primary's last committed point ($n)"
is "$(rbd_sha "$B" "rbd/$IMG@ferry-$n")" "$(rbd_point_sha "$A" "rbd/$IMG" "ferry-$n")" \
	"replica ferry-$n equals source ferry-$n"
# The replica's retention follows each commit; a stop that lands between a commit and its
# prune (no new call is made once ferryd stops) leaves one more, which the next cycle prunes.
kept=$(printf '%s\n' "$replica_points" | wc -l)
[ "$kept" -le 3 ] || { [ "$kept" = 4 ] && grep -q "retention at site dr: .*this process is stopping" "$TEST_DIR/primary.log"; }
ok $? "the replica keeps at most keep=3 points, or one more when the stop came before its prune ($(echo $replica_points))"
[ "$(rbd_a snap ls "rbd/$IMG" | grep -c ' ferry-[0-9]*-before ')" -le 4 ]
ok $? "the source keeps at most keep diff bases, plus one taken and not yet shipped"
group_points=$(rbd_a group snap ls rbd/ferry-g1 | grep -c 'ferry-[0-9]')
[ "$group_points" -ge 1 ] && [ "$group_points" -le 4 ]
ok $? "points are RBD group snapshots of rbd/ferry-g1, at most keep + 1 ($group_points)"
DAEMON_PORT=${DAEMON_URL##*:}
start_daemon primary --ceph-conf "$A" || { echo "Bail out! primary ferryd did not restart"; exit 1; }
PRIMARY_PID=$DAEMON_PID

# kill -9 of the primary: after a restart it carries on from its catalog.
kill9 "$PRIMARY_PID"
before=$(rbd_b snap ls "rbd/$IMG" | awk '$2 ~ /^ferry-/ { n = substr($2, 7) + 0; if (n > m) m = n } END { print m + 0 }')
start_daemon primary --ceph-conf "$A" || { echo "Bail out! primary ferryd did not restart"; exit 1; }
PRIMARY_PID=$DAEMON_PID
wait_point "$IMG" $((before + 2))
ok $? "after kill -9 and a restart, points go on (now $(field "$IMG" last_point), replica had $before)"
cut_before=$(grep -c "retention at site dr: .*this process is stopping" "$TEST_DIR/primary.log")
stop_daemon "$PRIMARY_PID"
replica_points=$(replica_points "$IMG")
kept=$(printf '%s\n' "$replica_points" | wc -l)
[ "$kept" -le 3 ] || { [ "$kept" = 4 ] && [ "$(grep -c "retention at site dr: .*this process is stopping" "$TEST_DIR/primary.log")" -gt "$cut_before" ]; }
ok $? "  and the replica's retention caught up: at most keep=3 points again ($(echo $replica_points))"
n=$(sqlite3 "$TEST_DIR/primary/catalog.db" "SELECT last_point FROM protections")
is "$(rbd_sha "$B" "rbd/$IMG@ferry-$n")" "$(rbd_point_sha "$A" "rbd/$IMG" "ferry-$n")" \
	"and the newest point, $n, verifies"
start_daemon primary --ceph-conf "$A" || { echo "Bail out! primary ferryd did not restart"; exit 1; }
PRIMARY_PID=$DAEMON_PID

# Bad input.
at_a protect --group g1 --site dr "rbd:rbd/${IMG}-nosuch" > /dev/null 2> "$TEST_DIR/p1.err"
is $? 1 "protecting an image that does not exist is refused"
at_a protect --group nosuch --site dr "rbd:rbd/$IMG" > /dev/null 2> "$TEST_DIR/p2.err"
grep -q "no protection group named 'nosuch'" "$TEST_DIR/p2.err"
ok $? "an unknown group is named in the refusal"
rbd_a create --size 8M "rbd/${IMG}-other"
at_a protect --group g1 --site dr "rbd:rbd/${IMG}-other" "$IMG" > /dev/null 2> "$TEST_DIR/p3.err"
is $? 1 "a second primary for the same replica is refused"
grep -q "one primary per replica" "$TEST_DIR/p3.err"
ok $? "  and the message says why"
at_a unprotect "rbd:rbd/$IMG" > /dev/null
ok $? "ferry unprotect"
is "$(field "$IMG" name)" "" "the volume is no longer listed as protected"
stop_daemon "$PRIMARY_PID"
exit $test_failed
