#!/bin/bash
# bench/replication-lag-bench.sh: the steady-state lag of continuous replication under a fixed
# random-write load, the third figure of the RBD benchmark (next to rbd-delta-bench.sh).
#
#   bash bench/replication-lag-bench.sh        (from the top of the tree, as root)
#
# Two throw-away memstore clusters (site A, site B), a primary and a replica ferryd (the test
# helpers of tests/integration/), one protected image of BENCH_LAG_IMAGE_MIB (default 1024) in a
# group with interval BENCH_LAG_INTERVAL (default 2 s). Once the first point is committed, a
# writer (tests/integration/rbd-tool.py write-rate, librbd through python3-rbd) puts random
# 4 KiB writes of random data on the source at BENCH_LAG_MBPS (default 20 MB/s) for
# BENCH_LAG_SECONDS (default 60). `ferry status --json` is sampled every second: lag_seconds
# (now minus the source time of the last committed point). Prints the rate reached, the lag's
# mean, 95th percentile and maximum, the points committed, and the goal: lag <= interval + 2 s.
# The first interval of samples is left out (the load ramping up). Exit 1 when a step fails.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
IMAGE_MIB=${BENCH_LAG_IMAGE_MIB:-1024}
INTERVAL=${BENCH_LAG_INTERVAL:-2}
MBPS=${BENCH_LAG_MBPS:-20}
SECONDS_LOAD=${BENCH_LAG_SECONDS:-60}
export FERRY_BIN=${FERRY_BIN:-$ROOT/bin}
unset FERRY_TEST_CEPH_A_CONF FERRY_TEST_CEPH_B_CONF

# The integration helpers print TAP; here only their functions are wanted.
set -- # lib.sh reads no arguments
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tests/integration/lib-ceph.sh"
fail() { echo "replication-lag-bench: $*" >&2; exit 1; }

echo "# replication lag under load: image ${IMAGE_MIB} MiB, interval ${INTERVAL} s, ${MBPS} MB/s of 4 KiB random writes for ${SECONDS_LOAD} s"
ceph_cluster A > /dev/null || fail "cluster A did not start"
ceph_cluster B > /dev/null || fail "cluster B did not start"
rbd -c "$CEPH_CONF_A" create --size "${IMAGE_MIB}M" rbd/lag || fail "rbd create"
start_daemon replica --ceph-conf "$CEPH_CONF_B" || fail "replica ferryd did not start"
REPLICA_URL=$DAEMON_URL
DAEMON_PORT=$(free_port)
start_daemon primary --ceph-conf "$CEPH_CONF_A" || fail "primary ferryd did not start"
CLI=(--daemon "$DAEMON_URL" --token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem")
"$FERRY" site add dr --url "$REPLICA_URL" --peer-token-file "$TEST_DIR/token" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" "${CLI[@]}" > /dev/null || fail "site add"
"$FERRY" group create lag --interval "$INTERVAL" --keep 5 "${CLI[@]}" > /dev/null || fail "group create"
"$FERRY" protect --group lag --site dr rbd:rbd/lag "${CLI[@]}" > /dev/null || fail "protect"
field() { "$FERRY" status "${CLI[@]}" --json | jq -r '.volumes[] | select(.name == "rbd:rbd/lag") | .'"$1"; }
for _ in $(seq 1 600); do [ "$(field last_point)" -ge 1 ] 2>/dev/null && break; sleep 0.2; done
[ "$(field last_point)" -ge 1 ] || fail "the first point never committed"
first=$(field last_point)

/usr/bin/python3 "$RBD_TOOL" write-rate "$CEPH_CONF_A" rbd/lag "$MBPS" "$SECONDS_LOAD" > "$TEST_DIR/rate" &
writer=$!
: > "$TEST_DIR/lags"
t=0
while kill -0 "$writer" 2>/dev/null; do
	t=$((t + 1))
	lag=$(field lag_seconds)
	[ "$t" -gt "$INTERVAL" ] && [ -n "$lag" ] && echo "$lag" >> "$TEST_DIR/lags"
	sleep 1
done
wait "$writer" || fail "the writer failed"
last=$(field last_point)
sort -n "$TEST_DIR/lags" | awk -v rate="$(cat "$TEST_DIR/rate")" -v interval="$INTERVAL" \
	-v points=$((last - first)) -v mbps="$MBPS" '
	{ v[NR] = $1; sum += $1 }
	END {
		if (NR == 0) { print "no samples"; exit 1 }
		p95 = v[int(NR * 0.95) > 0 ? int(NR * 0.95) : 1]
		printf "writer rate reached     %s MB/s (asked %s)\n", rate, mbps
		printf "points committed        %d during the load\n", points
		printf "lag over %d samples      mean %.1f s, p95 %.1f s, max %.1f s\n", NR, sum / NR, p95, v[NR]
		printf "goal: lag <= interval + 2 = %d s: %s (max)\n", interval + 2, v[NR] <= interval + 2 ? "met" : "not met"
	}'
status=$?
stop_daemon "$DAEMON_PID"
exit $status
