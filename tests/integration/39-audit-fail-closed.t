#!/bin/bash
# The audit log fails closed: a mutating request is recorded before it runs, and one whose
# record cannot be written is not carried out (the error names the cause and what to do),
# while reads go on. A request that ran has its answer in its entry.
. "$(dirname "$0")/lib.sh"

plan 9

start_daemon audit || { echo "Bail out! ferryd did not start"; exit 1; }
out=$(api POST /v1/groups '{"name": "g-ok", "interval": 10, "keep": 3}')
jq -e '.name == "g-ok"' <<< "$out" > /dev/null
ok $? "a group is created while the audit log can be written"
entries=$(api GET "/v1/audit")
jq -e '[.entries[] | select(.method == "POST" and .path == "/v1/groups" and .status == 200)] | length == 1' \
	<<< "$entries" > /dev/null
ok $? "  its audit entry holds the answer (200), not the 0 it was written with"
stop_daemon "$DAEMON_PID"

if ! grep -qa FERRY_FAULT_AUDIT_FAIL "$FERRYD"; then
	for i in 1 2 3 4 5 6 7; do skip "this ferryd has no fault hooks (a check build has)"; done
	exit 0
fi
PORT=${DAEMON_URL##*:}
FERRY_FAULT_AUDIT_FAIL=1 DAEMON_PORT=$PORT start_daemon audit ||
	{ echo "Bail out! ferryd did not restart"; exit 1; }
status=$(curl -sS -o "$TEST_DIR/refused.json" -w '%{http_code}' --cacert "$TEST_DIR/tls/ca.pem" \
	-H "Authorization: Bearer $(cat "$TEST_DIR/token")" -H "Content-Type: application/json" \
	-X POST --data '{"name": "g-lost", "interval": 10, "keep": 3}' "$DAEMON_URL/v1/groups")
is "$status" 507 "a group create whose audit entry cannot be written is refused (HTTP 507)"
message=$(jq -r '.error.message' "$TEST_DIR/refused.json")
case $message in *"was not carried out"*"audit log"*"free space"*) r=0 ;; *) r=1 ;; esac
ok $r "  the error says it was not carried out, why, and what to do"
groups=$(api GET /v1/groups)
jq -e '[.groups[]? // .[]? | objects | select(.name == "g-lost")] | length == 0' <<< "$groups" > /dev/null
ok $? "  and the group does not exist"
jq -e '[.groups[]? // .[]? | objects | select(.name == "g-ok")] | length == 1' <<< "$groups" > /dev/null
ok $? "reads go on: the group list answers, with the earlier group"
out=$(api DELETE /v1/groups/g-ok)
groups=$(api GET /v1/groups)
jq -e '[.groups[]? // .[]? | objects | select(.name == "g-ok")] | length == 1' <<< "$groups" > /dev/null
ok $? "a delete whose entry cannot be written leaves the group in place"
"$FERRY" group create g-cli --interval 10 --daemon "$DAEMON_URL" --token-file "$TEST_DIR/token" \
	--cacert "$TEST_DIR/tls/ca.pem" > "$TEST_DIR/cli.out" 2> "$TEST_DIR/cli.err"
rc=$?
ok $([ "$rc" -eq 1 ]; echo $?) "ferry group create fails (exit $rc)"
file_has "$TEST_DIR/cli.err" "audit log"
ok $? "  and says why: $(head -c 200 "$TEST_DIR/cli.err")"
