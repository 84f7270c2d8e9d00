#!/bin/bash
# Runs the TAP integration tests with prove. The Ceph clusters the tests need (A and B, two sites)
# are started once here and shared through FERRY_TEST_CEPH_<NAME>_CONF, so that each test does
# not pay for its own; they are stopped however prove ends. They use bluestore (FERRY_CEPH_STORE
# picks another): memstore's OSD in Ceph 16 can segfault while it trims removed snapshots
# (SnapMapper over a MemStore omap iterator), and ferry removes snapshots all the time.
set -u
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/ferry-ceph.XXXXXX)
started=""
stop_all() {
	for dir in $started; do bash "$here/ceph-cluster.sh" stop "$dir" >/dev/null 2>&1; done
	rm -rf "$work"
}
trap stop_all EXIT
# FERRY_CEPH_PORT moves the two clusters (default 7100 and 7300), so that two runs on one
# machine (a helper's and the suite's) do not clash.
port=${FERRY_CEPH_PORT:-7100}
for name in A B; do
	if command -v ceph-mon >/dev/null && bash "$here/ceph-cluster.sh" start "$work/$name" "$port" "${FERRY_CEPH_STORE:-bluestore}"; then
		started="$started $work/$name"
		export "FERRY_TEST_CEPH_${name}_CONF=$work/$name/ceph.conf"
	else
		echo "# Ceph cluster $name did not start; tests that need it start their own or fail" >&2
	fi
	port=$((port + 200))
done
# FERRY_TESTS="12 14" runs only the tests whose names start with those numbers.
if [ -n "${FERRY_TESTS:-}" ]; then
	selected=()
	for number in $FERRY_TESTS; do selected+=("$here"/integration/"$number"-*.t); done
	prove -v "$@" "${selected[@]}"
else
	prove -v "$@" "$here/integration/"
fi
