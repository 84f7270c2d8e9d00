#!/bin/bash
# Honest fencing: a failover's fence step records what happened at the primary. A VM destroyed
# there says so and the failover goes on; a primary that answers but cannot destroy the VM (the
# fault hook FERRY_FAULT_FENCE_FAIL stands for a hung QEMU or a denied call) stops the failover
# before anything starts here, as refused, naming --force; with --force it goes on and the step
# says it was forced. The primary is libvirt's test driver, whose domain "test" runs; the record
# has no disks, so each run stops at the point choice without needing Ceph.
. "$(dirname "$0")/lib.sh"
plan 12

printf '[global]\nmon host = 127.0.0.1:1\n' > "$TEST_DIR/ceph.conf"
SITE_ARGS=(--libvirt local=test:///default --ceph-conf "$TEST_DIR/ceph.conf" --replica-pool rbd)
start_daemon site "${SITE_ARGS[@]}" || { echo "Bail out! ferryd did not start"; exit 1; }
CA="$TEST_DIR/tls/ca.pem"
ADMIN=(--daemon "$DAEMON_URL" --token-file "$TEST_DIR/token" --cacert "$CA")
"$FERRY" token create primary --role peer --json "${ADMIN[@]}" | jq -r .token > "$TEST_DIR/peer"
chmod 600 "$TEST_DIR/peer"
# receive: the primary site's record of domain "test" (uri and dest_uri name the test driver).
receive() {
	jq -nc '{name: "test", uri: "local", dest_uri: "local", group: "g", site: "a", disks: [],
		xml: "<domain type=\"qemu\"><name>test</name><devices/></domain>"}' |
		curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $(cat "$TEST_DIR/peer")" \
			-H 'Content-Type: application/json' --data @- "$DAEMON_URL/v1/vms/receive"
}
is "$(receive)" 200 "the primary's record of VM test is stored at the replica site"

# failover NAME [args]: ferry failover test, its run as JSON in $TEST_DIR/NAME.json.
failover() {
	local name=$1; shift
	"$FERRY" failover test --json "$@" "${ADMIN[@]}" > "$TEST_DIR/$name.json" 2> "$TEST_DIR/$name.err"
}
fence_detail() { jq -r '[.steps[] | select(.name | startswith("fence"))][0].detail' "$TEST_DIR/$1.json"; }
fence_result() { jq -r '[.steps[] | select(.name | startswith("fence"))][0].result' "$TEST_DIR/$1.json"; }
has_step() { jq -e --arg s "$2" 'any(.steps[]; .name | startswith($s))' "$TEST_DIR/$1.json" > /dev/null; }

failover plain
fence_detail plain | grep -q '^destroyed at local'
ok $? "a VM running at a primary that answers is destroyed there: '$(fence_detail plain)'"
has_step plain "choose the point"
ok $? "  and the failover goes on to choose the point"

stop_daemon "$DAEMON_PID"
FERRY_FAULT_FENCE_FAIL=1 DAEMON_PORT=${DAEMON_URL##*:} start_daemon site "${SITE_ARGS[@]}" ||
	{ echo "Bail out! ferryd did not restart"; exit 1; }
failover refused
ok $((! $?)) "a failover whose primary answers but cannot fence fails (exit non-zero)"
is "$(jq -r .status "$TEST_DIR/refused.json")" refused "  its run is refused"
is "$(fence_result refused)" failed "  its fence step failed"
fence_detail refused | grep -q 'could not be fenced (FERRY_FAULT_FENCE_FAIL'
ok $? "  and says why: '$(fence_detail refused | cut -c1-120)...'"
jq -r .reason "$TEST_DIR/refused.json" | grep -q -- '--force'
ok $? "  the reason names --force"
has_step refused "choose the point"
ok $((! $?)) "  nothing after the fence step ran (no point chosen, nothing defined)"

failover forced --force
is "$(fence_result forced)" ok "with --force the fence step goes on"
fence_detail forced | grep -q 'failed to destroy at local (FERRY_FAULT_FENCE_FAIL.*--force'
ok $? "  and records the failure and that it was forced: '$(fence_detail forced | cut -c1-100)...'"
has_step forced "choose the point"
ok $? "  and the failover goes on to choose the point"
