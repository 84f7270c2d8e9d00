# Ceph clusters for the TAP integration tests (see tests/ceph-cluster.sh). Source it after lib.sh.
#   ceph_cluster NAME [memstore|bluestore]   sets CEPH_CONF_NAME (its ceph.conf) and CEPH_DIR_NAME
#   ceph_sites                               clusters A and B as $A and $B, or a Bail out
#   rbd_a, rbd_b ARGS...                     rbd on cluster $A or $B, never hanging
#   rbd_sha CONF POOL/IMAGE                  SHA-256 of the image's bytes
#   rbd_point_sha CONF POOL/IMAGE SNAPSHOT   SHA-256 of the image at a point
#   replica_points IMAGE [CONF]              the points ferry-N of rbd/IMAGE (default on $B)
# and for two sites, a primary ferryd at $PRIMARY_URL and a replica at $REPLICA_URL:
#   at_a, at_b CMD ARGS...                   the CLI at each site, with the test token and CA
#   field IMAGE KEY                          KEY of rbd:rbd/IMAGE in the primary's status
#   point_of IMAGE                           its last committed point
#   wait_point IMAGE N [SECONDS]             until that is N or more (default 240 s)
#   wait_state IMAGE STATE [SECONDS]         until its state is STATE (default 180 s)
# A test's own EXIT trap must call ceph_cleanup (it stops the test's ferryd processes while their
# clusters still run, then the clusters, then runs lib.sh's cleanup).
CEPH_CLUSTER_SH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/ceph-cluster.sh
CEPH_STARTED=""	# folders of the clusters this test started (and stops)

ceph_cleanup() {
	local dir
	ferryd_finish
	for dir in $CEPH_STARTED; do "$CEPH_CLUSTER_SH" stop "$dir" >/dev/null 2>&1; done
	CEPH_STARTED=""
	cleanup
}
trap ceph_cleanup EXIT

# ceph_free_port: the first PORT in 6800..7700 (steps of 100) with nothing listening on
# PORT..PORT+99 per `ss -ltn`.
ceph_free_port() {
	local port
	for port in $(seq 6800 100 7700); do
		if ! ss -Hltn | awk -v lo="$port" -v hi=$((port + 99)) \
			'{ p = $4; sub(/.*:/, "", p); if (p + 0 >= lo && p + 0 <= hi) found = 1 } END { exit !found }'
		then
			echo "$port"
			return 0
		fi
	done
	return 1
}

# ceph_cluster NAME [memstore|bluestore]: (default $FERRY_CEPH_STORE, else bluestore) reuses the running cluster whose ceph.conf
# FERRY_TEST_CEPH_<NAME>_CONF names (when it runs and uses that store), else starts one under
# $TEST_DIR/ceph-NAME on a free port and stops it at exit. Sets CEPH_CONF_<NAME> and CEPH_DIR_<NAME>.
ceph_cluster() {
	local name=$1 store=${2:-${FERRY_CEPH_STORE:-bluestore}} var conf dir port out rc=1 lock
	var="FERRY_TEST_CEPH_${name}_CONF"
	conf=${!var:-}
	if [ -n "$conf" ]; then
		dir=$(dirname "$conf")
		if grep -qx "STORE=$store" "$dir/cluster.env" 2>/dev/null &&
			"$CEPH_CLUSTER_SH" status "$dir" >/dev/null 2>&1; then
			printf -v "CEPH_CONF_$name" '%s' "$conf"
			printf -v "CEPH_DIR_$name" '%s' "$dir"
			diag "ceph cluster $name: reusing $conf"
			return 0
		fi
		diag "ceph cluster $name: $conf is not a running $store cluster; starting one"
	fi
	dir="$TEST_DIR/ceph-$name"
	# Tests run in parallel pick ports one at a time: the lock is held until the cluster listens.
	exec {lock}> /tmp/ferry-ceph-ports.lock
	flock -w 300 "$lock"
	for _ in 1 2 3; do
		port=$(ceph_free_port) || { diag "no free port range in 6800..7799"; break; }
		CEPH_STARTED="$CEPH_STARTED $dir"
		out=$("$CEPH_CLUSTER_SH" start "$dir" "$port" "$store" 2>&1)
		rc=$?
		printf '%s\n' "$out" | sed 's/^/# /'
		[ "$rc" != 0 ] || break
		"$CEPH_CLUSTER_SH" stop "$dir" >/dev/null 2>&1
	done
	exec {lock}>&-
	[ "$rc" = 0 ] || return 1
	printf -v "CEPH_CONF_$name" '%s' "$dir/ceph.conf"
	printf -v "CEPH_DIR_$name" '%s' "$dir"
}

# ceph_sites: clusters A and B, the two sites of most tests; sets A and B to their ceph.conf.
ceph_sites() {
	ceph_cluster A || { echo "Bail out! Ceph cluster A did not start"; exit 1; }
	ceph_cluster B || { echo "Bail out! Ceph cluster B did not start"; exit 1; }
	A=$CEPH_CONF_A B=$CEPH_CONF_B
}
rbd_a() { timeout 120 rbd -c "$A" "$@"; }
rbd_b() { timeout 120 rbd -c "$B" "$@"; }
# replica_points IMAGE [CONF]: the numbers N of the snapshots ferry-N of rbd/IMAGE, in order
replica_points() {
	timeout 120 rbd -c "${2:-$B}" snap ls "rbd/$1" |
		awk '$2 ~ /^ferry-[0-9]+$/ { print substr($2, 7) }' | sort -n
}

# The CLI at the primary site (at_a) and the replica site (at_b).
at_a() { "$FERRY" "$1" "${@:2}" --daemon "$PRIMARY_URL" --token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem"; }
at_b() { "$FERRY" "$1" "${@:2}" --daemon "$REPLICA_URL" --token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem"; }
field() { # field IMAGE KEY: KEY of the protected volume rbd:rbd/IMAGE in the primary's status
	at_a status --json | jq -r --arg n "rbd:rbd/$1" --arg k "$2" '.volumes[] | select(.name == $n) | .[$k]'
}
point_of() { field "$1" last_point; } # point_of IMAGE: its last committed point at the primary
point_at_least() { [ "$(point_of "$1" 2>/dev/null || echo 0)" -ge "$2" ] 2>/dev/null; }
state_is() { [ "$(field "$1" state 2>/dev/null)" = "$2" ]; }
wait_point() { WAIT_INTERVAL=0.2 wait_until "${3:-240}" point_at_least "$1" "$2"; } # wait_point IMAGE N [SECONDS]
wait_state() { WAIT_INTERVAL=0.2 wait_until "${3:-180}" state_is "$1" "$2"; } # wait_state IMAGE STATE [SECONDS]

# rbd_sha CONF POOL/IMAGE: SHA-256 of `rbd export` (exit status non-zero when the export fails).
rbd_sha() {
	(
		set -o pipefail
		timeout 600 rbd -c "$1" export --no-progress "$2" - | sha256sum | cut -d' ' -f1
	)
}

# rbd_point_sha CONF POOL/IMAGE SNAPSHOT: SHA-256 of the image at SNAPSHOT, a user snapshot or the
# image's part of a group snapshot (primary points are RBD group snapshots; see rbd-tool.py).
RBD_TOOL=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/rbd-tool.py
rbd_point_sha() {
	timeout 600 /usr/bin/python3 "$RBD_TOOL" sha "$@"
}
