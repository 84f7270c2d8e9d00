#!/bin/bash
# A protection group of two RBD images gets one instant per point (an RBD group snapshot): with
# writes going to image A then image B in a known order, no replica point ever holds a write to B
# without the write to A before it. Also: images that grow (handled) or shrink (refused) while
# protected, and images that cannot join the group.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"

plan 21
ceph_cluster A || { echo "Bail out! Ceph cluster A did not start"; exit 1; }
ceph_cluster B || { echo "Bail out! Ceph cluster B did not start"; exit 1; }
A=$CEPH_CONF_A B=$CEPH_CONF_B
rbd_a() { timeout 120 rbd -c "$A" "$@"; }
rbd_b() { timeout 120 rbd -c "$B" "$@"; }
GA=t$$-ga GB=t$$-gb GROUP=g$$

start_daemon replica --ceph-conf "$B" || { echo "Bail out! replica ferryd did not start"; exit 1; }
REPLICA_URL=$DAEMON_URL
DAEMON_PORT=$(( (RANDOM % 20000) + 30000 ))
start_daemon primary --ceph-conf "$A" || { echo "Bail out! primary ferryd did not start"; exit 1; }
PRIMARY_PID=$DAEMON_PID
CLI=(--daemon "$DAEMON_URL" --token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem")
ferry() { "$FERRY" "$1" "${@:2}" "${CLI[@]}"; }
field() { # field IMAGE KEY
	"$FERRY" status "${CLI[@]}" --json | jq -r --arg n "rbd:rbd/$1" \
		".volumes[] | select(.name == \$n) | .$2"
}
wait_point() { # wait_point IMAGE N: until IMAGE's last committed point is at least N (90 s)
	for _ in $(seq 1 450); do
		[ "$(field "$1" last_point 2>/dev/null || echo 0)" -ge "$2" ] 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
wait_state() { # wait_state IMAGE STATE: until IMAGE's state is STATE (90 s)
	for _ in $(seq 1 450); do
		[ "$(field "$1" state 2>/dev/null)" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}
replica_points() { rbd_b snap ls "rbd/$1" | awk '$2 ~ /^ferry-[0-9]+$/ { print substr($2, 7) }' | sort -n; }

rbd_a create --size 16M "rbd/$GA" && rbd_a create --size 16M "rbd/$GB"
ferry site add dr --url "$REPLICA_URL" --peer-token-file "$TEST_DIR/token" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null
ferry group create "$GROUP" --interval 1 --keep 50 > /dev/null
ferry protect --group "$GROUP" --site dr "rbd:rbd/$GA" > /dev/null &&
	ferry protect --group "$GROUP" --site dr "rbd:rbd/$GB" > /dev/null
ok $? "two images protected in one group"
rbd_a group image ls "rbd/ferry-$GROUP" | grep -q "$GA" &&
	rbd_a group image ls "rbd/ferry-$GROUP" | grep -q "$GB"
ok $? "both are in the RBD group rbd/ferry-$GROUP"
wait_point "$GA" 1 && wait_point "$GB" 1
ok $? "the first point of both is committed"

# Ordered writes across both images while points are taken every second.
start=$(field "$GA" last_point)
/usr/bin/python3 "$RBD_TOOL" write-ordered "$A" rbd "$GA" "$GB" 25 > "$TEST_DIR/writer.out" 2>&1 &
writer=$!
sleep 3
# The check has teeth: two plain snapshots taken one after the other are not one instant.
# snap_apart IMAGE: a plain snapshot, tried again while a group snapshot holds the image (EBUSY)
snap_apart() {
	for _ in $(seq 1 50); do
		rbd_a snap create --no-progress "rbd/$1@apart" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
snap_apart "$GA" && snap_apart "$GB"
/usr/bin/python3 "$RBD_TOOL" check-ordered "$A" rbd "$GA" "$GB" apart > "$TEST_DIR/apart.out" 2>&1
is $? 1 "the check finds per-image snapshots taken one after the other inconsistent ($(tail -n 1 "$TEST_DIR/apart.out"))"
wait_point "$GA" $((start + 4)) && wait_point "$GB" $((start + 4))
ok $? "points go on under the ordered writes (A at $(field "$GA" last_point), B at $(field "$GB" last_point))"
wait "$writer"
ok $? "the ordered writer wrote $(cat "$TEST_DIR/writer.out") records to each image"
end=$(( $(field "$GA" last_point) + 2 ))
wait_point "$GA" "$end" && wait_point "$GB" "$end"
ok $? "points after the writes stopped are committed too (point $end)"

common=$(comm -12 <(replica_points "$GA" | sort) <(replica_points "$GB" | sort) | sort -n)
checked=0 bad=""
for n in $common; do
	[ "$n" -gt "$start" ] || continue
	if /usr/bin/python3 "$RBD_TOOL" check-ordered "$B" rbd "$GA" "$GB" "ferry-$n" > "$TEST_DIR/check.out" 2>&1; then
		checked=$((checked + 1))
	else
		bad="$bad $n"
		sed 's/^/# /' "$TEST_DIR/check.out"
	fi
done
[ -z "$bad" ] && [ "$checked" -ge 4 ]
ok $? "every replica point taken during the writes is one instant of both images ($checked checked${bad:+, bad:$bad})"
n=$(field "$GB" last_point)
is "$(rbd_sha "$B" "rbd/$GB@ferry-$n")" "$(rbd_point_sha "$A" "rbd/$GB" "ferry-$n")" \
	"replica $GB@ferry-$n equals the source's group point ferry-$n"
/usr/bin/python3 "$RBD_TOOL" check-ordered "$A" rbd "$GA" "$GB" "ferry-$n" > /dev/null
ok $? "the source's group snapshot ferry-$n is one instant too"

# Growing is followed: the replica grows with the source.
rbd_a resize --size 32M "rbd/$GA" >/dev/null 2>&1
dd if=/dev/urandom of="$TEST_DIR/tail" bs=1M count=2 status=none
/usr/bin/python3 "$RBD_TOOL" write "$A" "rbd/$GA" $((20 << 20)) "$TEST_DIR/tail"
target=$(( $(field "$GA" last_point) + 2 ))
wait_point "$GA" "$target"
ok $? "replication goes on after $GA grew to 32 MiB"
n=$(field "$GA" last_point)
is "$(rbd_b info "rbd/$GA" --format json | jq .size)" $((32 << 20)) "the replica grew to 32 MiB"
is "$(rbd_sha "$B" "rbd/$GA@ferry-$n")" "$(rbd_point_sha "$A" "rbd/$GA" "ferry-$n")" \
	"and its point ferry-$n equals the source's"

# Shrinking is refused with a clear reason, and undone by growing back.
rbd_a resize --allow-shrink --size 8M "rbd/$GB" >/dev/null 2>&1
wait_state "$GB" error
ok $? "a shrunk image is in state error"
reason=$(field "$GB" reason)
case "$reason" in *shrank*"grow the image back"*) true ;; *) false ;; esac
ok $? "the reason says it shrank and what to do ($reason)"
ga_before=$(field "$GA" last_point)
rbd_a resize --size 16M "rbd/$GB" >/dev/null 2>&1
wait_state "$GB" in-sync
ok $? "grown back to its size, the image is in-sync again"
n=$(field "$GB" last_point)
[ "$n" -gt "$ga_before" ] || wait_point "$GB" $((ga_before + 1))
n=$(field "$GB" last_point)
is "$(rbd_sha "$B" "rbd/$GB@ferry-$n")" "$(rbd_point_sha "$A" "rbd/$GB" "ferry-$n")" \
	"and its newest point ferry-$n verifies"

# Images that cannot join the group.
rbd_a create --size 8M "rbd/${GA}-other" && rbd_a group create "rbd/t$$-theirs" &&
	rbd_a group image add "rbd/t$$-theirs" "rbd/${GA}-other"
ferry protect --group "$GROUP" --site dr "rbd:rbd/${GA}-other" > /dev/null 2> "$TEST_DIR/p1.err"
is $? 1 "an image in someone else's RBD group is refused"
grep -q "is in RBD group t$$-theirs already" "$TEST_DIR/p1.err"
ok $? "  and the message names that group ($(head -c 200 "$TEST_DIR/p1.err"))"
is "$(field "${GA}-other" name)" "" "  and it is not protected"

ferry unprotect "rbd:rbd/$GA" > /dev/null && ferry unprotect "rbd:rbd/$GB" > /dev/null
rbd_a group ls rbd | grep -qx "ferry-$GROUP"
is $? 1 "unprotecting the last image removes the RBD group"
stop_daemon "$PRIMARY_PID"
exit $test_failed
