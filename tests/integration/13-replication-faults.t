#!/bin/bash
# Continuous replication under a steady random-write load and through faults at the replica
# site: its ferryd killed with -9 mid-delta, then its whole Ceph cluster (bluestore, so that it
# keeps its data) stopped for a while and started again. Replication must catch up by itself,
# `ferry status` must show the error and then the recovery, and every committed point verifies.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"

plan 18
ceph_cluster A || { echo "Bail out! Ceph cluster A did not start"; exit 1; }
export FERRY_CEPH_BLUESTORE_BYTES=$((3 << 30))
ceph_cluster C bluestore || { echo "Bail out! bluestore Ceph cluster C did not start"; exit 1; }
A=$CEPH_CONF_A C=$CEPH_CONF_C
IMG=t$$-load GROUP=f$$

REPLICA_PORT=$(free_port)
DAEMON_PORT=$REPLICA_PORT
start_daemon replica --ceph-conf "$C" || { echo "Bail out! replica ferryd did not start"; exit 1; }
REPLICA_PID=$DAEMON_PID REPLICA_URL=$DAEMON_URL
DAEMON_PORT=$((REPLICA_PORT + 1))
start_daemon primary --ceph-conf "$A" || { echo "Bail out! primary ferryd did not start"; exit 1; }
PRIMARY_PID=$DAEMON_PID PRIMARY_URL=$DAEMON_URL
# verify_point N: replica ferry-N equals the source's group point ferry-N
verify_point() { [ "$(rbd_sha "$C" "rbd/$IMG@ferry-$1")" = "$(rbd_point_sha "$A" "rbd/$IMG" "ferry-$1")" ]; }

rbd_a create --size 128M "rbd/$IMG"
rbd_a bench --io-type write --io-size 4M --io-total 64M "rbd/$IMG" >/dev/null 2>&1
at_a site add dr --url "$REPLICA_URL" --peer-token-file "$TEST_DIR/token" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null
# keep is large: retention (tested in 11-replication.t) must not remove points checked here.
at_a group create "$GROUP" --interval 2 --keep 100 > /dev/null
at_a protect --group "$GROUP" --site dr "rbd:rbd/$IMG" > /dev/null
wait_point "$IMG" 1 120
ok $? "the first point reached the bluestore replica cluster"

# A steady random-write load: points go on, the lag stays bounded, every point verifies.
start=$(field "$IMG" last_point)
(
	set -e
	until_s=$((SECONDS + 24))
	while [ "$SECONDS" -lt "$until_s" ]; do
		rbd_a bench --io-type write --io-pattern rand --io-size 4K --io-threads 2 \
			--io-total 4M "rbd/$IMG" >> "$TEST_DIR/bench.out" 2>&1
	done
) &
load=$!
max_lag=0 samples=0
while kill -0 "$load" 2>/dev/null; do
	lag=$(field "$IMG" lag_seconds)
	max_lag=$(awk -v a="$max_lag" -v b="${lag:-0}" 'BEGIN { print (b > a) ? b : a }')
	samples=$((samples + 1))
	sleep 1 # the sampling period of the lag, not synchronization
done
wait "$load"
ok $? "rbd bench wrote 4 KiB random writes for 24 s ($(grep -c elapsed "$TEST_DIR/bench.out") x 4 MiB)"
end=$(field "$IMG" last_point)
[ "$end" -ge $((start + 2)) ]
ok $? "points went on under the load (from $start to $end)"
awk -v l="$max_lag" 'BEGIN { exit !(l < 60) }'
ok $? "the lag stayed bounded under the load (at most $max_lag s over $samples samples, interval 2 s)"
wait_point "$IMG" $((end + 1))
bad=""
for n in $(replica_points "$IMG" "$C"); do verify_point "$n" || bad="$bad $n"; done
is "$bad" "" "every committed point kept at the replica verifies ($(echo $(replica_points "$IMG" "$C")))"

# The replica's ferryd dies as kill -9 would in the middle of a delta: restarted with a fault
# hook, it exits once 3 segments of the delta are durable.
stop_daemon "$REPLICA_PID"
DAEMON_PORT=$REPLICA_PORT
FERRY_FAULT_EXIT_AFTER_RECEIVED_SEGMENTS=3 start_daemon replica --ceph-conf "$C" ||
	{ echo "Bail out! replica ferryd did not restart"; exit 1; }
REPLICA_PID=$DAEMON_PID
rbd_a bench --io-type write --io-size 4M --io-pattern rand --io-total 96M "rbd/$IMG" >/dev/null 2>&1
wait_for "$REPLICA_PID" 120
is $? 137 "the replica's ferryd died (as by kill -9) with 3 segments of a delta landed"
before=$(field "$IMG" last_point)
wait_state "$IMG" error 60
ok $? "ferry status shows the error while the replica is down ($(field "$IMG" reason | head -c 160))"
DAEMON_PORT=$REPLICA_PORT
start_daemon replica --ceph-conf "$C" || { echo "Bail out! replica ferryd did not restart"; exit 1; }
REPLICA_PID=$DAEMON_PID
wait_point "$IMG" $((before + 2)) 120
ok $? "after a restart, replication resumes (point $before, now $(field "$IMG" last_point))"
n=$(field "$IMG" last_point)
verify_point "$n"
ok $? "the newest point, $n, verifies"
# Replication goes on meanwhile: the list may already reach beyond n.
points=$(replica_points "$IMG" "$C")
last=$(echo "$points" | tail -n 1)
expected=$(seq $(( $(echo "$points" | head -n 1) )) "$last")
[ "$last" -ge "$n" ] && [ "$(echo $points)" = "$(echo $expected)" ]
ok $? "the replica's points are consecutive up to $n and beyond: none lost ($(echo $points))"

# The replica's whole Ceph cluster goes down for a while, then comes back.
bash "$CEPH_CLUSTER_SH" stop "$CEPH_DIR_C" > /dev/null
ok $? "the replica's Ceph cluster is stopped"
rbd_a bench --io-type write --io-size 4K --io-pattern rand --io-total 4M "rbd/$IMG" >/dev/null 2>&1
down_point=$(field "$IMG" last_point)
wait_state "$IMG" error 180
ok $? "ferry status shows the error ($(field "$IMG" reason | head -c 200))"
at_a status | grep -q "rbd:rbd/$IMG  *error"
ok $? "  in the plain table too"
port=$(awk -F= '/^PORT=/ { print $2 }' "$CEPH_DIR_C/cluster.env")
bash "$CEPH_CLUSTER_SH" start "$CEPH_DIR_C" "$port" bluestore > /dev/null
ok $? "the replica's Ceph cluster is started again with its data"
wait_point "$IMG" $((down_point + 2)) 240
ok $? "replication catches up by itself (point $down_point, now $(field "$IMG" last_point))"
wait_state "$IMG" in-sync 60
ok $? "and ferry status shows it in-sync again"
n=$(field "$IMG" last_point)
verify_point "$n"
ok $? "the newest point, $n, verifies"
stop_daemon "$PRIMARY_PID" # a still picture
bad=""
for m in $(replica_points "$IMG" "$C"); do verify_point "$m" || bad="$bad $m"; done
is "$bad" "" "every point kept at the replica verifies ($(echo $(replica_points "$IMG" "$C")))"
exit $test_failed
