#!/bin/bash
# The web console in a real browser: headless Chromium driven by Selenium (console-drive.py)
# against two real ferryd replicating a VM's RBD disk between two Ceph clusters, with two
# libvirtd (QEMU/TCG) for a real test failover. A wrong token shows the server's message and
# nothing else, and a peer's token cannot log in; a viewer logs in with the keyboard alone, sees
# lag and state and is offered no action, and a forged sync with its cookie and CSRF token is
# refused; an operator's Sync now shows the new point without a reload, and a change without the
# CSRF header is refused; at the replica site a test failover and its cleanup, started from the
# group page, show their steps live; an admin has Audit and Tokens, and Failover asks for the
# group's name; every page has its landmark and labels; log out ends the session at ferryd (the
# old cookie is refused there).
#
# Checks that hold only with ferryd's console side (web/console.c, web/session.c) are marked
# "C side" here and in console-drive.py: the files at / and /console/NAME with the CSP, the
# session cookie and its flags, the peer refused at login, the CSRF refusal and log out at
# ferryd. Every other check depends on them too (no page without the files, no data without a
# session), but what it proves is the console's.
#
# Needs (Debian): chromium, chromium-driver, python3-selenium; libvirt and QEMU as the cutover
# tests. Screenshots go to $TEST_DIR/screens (kept when a check fails; FERRY_CONSOLE_SCREENS=DIR
# keeps a copy in any case).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"
. "$(dirname "$0")/lib-cutover.sh"
cutover_skip_unless_ready
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] ||
	! /usr/bin/python3 -c 'import selenium' 2> /dev/null; then
	echo "1..0 # SKIP needs chromium, chromium-driver and python3-selenium (Debian packages)"
	exit 0
fi
HERE=$(cd "$(dirname "$0")" && pwd)
BROWSER_CHECKS=23 # console-drive.py's CHECKS

plan $((BROWSER_CHECKS + 9))
cutover_setup 11 12
CA="$TEST_DIR/tls/ca.pem"
CHROME_DIR="$TEST_DIR/chrome"
DRIVER_PID=""
# Chromium and chromedriver end with the driver (it quits them in a finally); should the driver
# be killed, its process group goes, and any Chromium of this test's own profile folder.
chromium_left() { pgrep -f -- "--user-data-dir=$CHROME_DIR" ; }
console_cleanup() {
	[ -n "$DRIVER_PID" ] && kill -9 -- "-$DRIVER_PID" 2> /dev/null
	chromium_left | xargs -r kill -9 2> /dev/null
	if [ -n "${FERRY_CONSOLE_SCREENS:-}" ] && [ -d "$TEST_DIR/screens" ]; then
		mkdir -p "$FERRY_CONSOLE_SCREENS" && cp "$TEST_DIR"/screens/*.png "$FERRY_CONSOLE_SCREENS"/ 2> /dev/null
	fi
	cutover_cleanup
}
trap console_cleanup EXIT

G=gc$$
at_a group create "$G" --interval 600 --keep 5 --rpo 900 > /dev/null &&
	make_vm $V1 &&
	at_a vm protect $V1 --uri "$U1" --dest-uri "$U2" --group "$G" > "$TEST_DIR/protect.out" 2>&1
ok $? "a group (a point every 10 min, so that only Sync now makes one) and a VM whose disk is an RBD image on A"
wait_point $V1-disk 1
ok $? "  its first point is committed at the replica site (point $(point_of $V1-disk))"
at_a token create v --role viewer --json | jq -r .token > "$TEST_DIR/viewer.token" &&
	at_a token create o --role operator --json | jq -r .token > "$TEST_DIR/operator.token" &&
	at_b token create o --role operator --json | jq -r .token > "$TEST_DIR/replica-operator.token" ||
	{ echo "Bail out! tokens could not be created"; exit 1; }

# C side: ferryd serves the console's own files, byte for byte, with their types and the CSP.
curl -s -D "$TEST_DIR/index.headers" -o "$TEST_DIR/index.html" --cacert "$CA" "$PRIMARY_URL/"
grep -qi '^content-type: text/html' "$TEST_DIR/index.headers" &&
	grep -qi "^content-security-policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'" "$TEST_DIR/index.headers" &&
	cmp -s "$TEST_DIR/index.html" "$ROOT/web/console/index.html"
ok $? "GET / is web/console/index.html, as text/html, with the strict Content-Security-Policy"
served=""
for file in "$ROOT"/web/console/*; do
	name=$(basename "$file")
	case $name in
	*.js) type=text/javascript ;; *.css) type=text/css ;; *.svg) type=image/svg+xml ;; *.html) type=text/html ;; *) type=. ;;
	esac
	curl -s -D "$TEST_DIR/file.headers" -o "$TEST_DIR/file.body" --cacert "$CA" "$PRIMARY_URL/console/$name"
	grep -qi "^content-type: $type" "$TEST_DIR/file.headers" && cmp -s "$TEST_DIR/file.body" "$file" ||
		served="$served $name"
done
is "$served" "" "GET /console/NAME serves every file of web/console with its type (none missing or stale)"

# The server's own message for a wrong token: the page must show this, word for word.
WRONG=not-a-token-of-this-ferryd
WRONG_MESSAGE=$(curl -s --cacert "$CA" -H 'Content-Type: application/json' \
	-d "{\"token\": \"$WRONG\"}" "$PRIMARY_URL/v1/session" | jq -r .error.message)
PEER_MESSAGE=$(curl -s --cacert "$CA" -H 'Content-Type: application/json' \
	-d "{\"token\": \"$(cat "$TEST_DIR/peer-at-a")\"}" "$PRIMARY_URL/v1/session" | jq -r .error.message)

mkdir -p "$TEST_DIR/screens"
jq -n --arg primary "$PRIMARY_URL" --arg replica "$REPLICA_URL" --arg group "$G" --arg vm "$V1" \
	--arg viewer "$(cat "$TEST_DIR/viewer.token")" --arg operator "$(cat "$TEST_DIR/operator.token")" \
	--arg admin "$(cat "$TEST_DIR/token")" --arg replica_operator "$(cat "$TEST_DIR/replica-operator.token")" \
	--arg peer "$(cat "$TEST_DIR/peer-at-a")" --arg peer_message "$PEER_MESSAGE" \
	--arg wrong "$WRONG" --arg wrong_message "$WRONG_MESSAGE" --arg screens "$TEST_DIR/screens" \
	--arg chrome "$CHROME_DIR" --arg values "$TEST_DIR/console-values.json" \
	'{primary: $primary, replica: $replica, group: $group, vm: $vm,
	  tokens: {viewer: $viewer, operator: $operator, admin: $admin, replica_operator: $replica_operator,
	          peer: $peer},
	  names: {viewer: "v", operator: "o"}, wrong_token: $wrong, wrong_message: $wrong_message,
	  peer_message: $peer_message,
	  screens: $screens, chrome_dir: $chrome, values: $values}' > "$TEST_DIR/console.json"
chmod 600 "$TEST_DIR/console.json"

# The browser's checks, in their own process group (see console_cleanup).
setsid /usr/bin/python3 "$HERE/console-drive.py" "$TEST_DIR/console.json" > "$TEST_DIR/drive.out" 2> "$TEST_DIR/drive.err" &
DRIVER_PID=$!
wait_for "$DRIVER_PID" 420
driver_status=$?
DRIVER_PID_DONE=$DRIVER_PID
kill -9 -- "-$DRIVER_PID" 2> /dev/null
DRIVER_PID=""
reported=0
while IFS= read -r line; do
	case $line in
	"ok - "*) ok 0 "${line#ok - }"; reported=$((reported + 1)) ;;
	"not ok - "*) ok 1 "${line#not ok - }"; reported=$((reported + 1)) ;;
	*) echo "$line" ;;
	esac
done < "$TEST_DIR/drive.out"
if [ "$reported" != "$BROWSER_CHECKS" ]; then
	diag "console-drive.py (pid $DRIVER_PID_DONE) exited with $driver_status after $reported checks:"
	sed 's/^/#   /' "$TEST_DIR/drive.err" | tail -n 20
	for _ in $(seq $((reported + 1)) "$BROWSER_CHECKS"); do ok 1 "a browser check that never ran"; done
fi
value() { jq -r ".$1 // empty" "$TEST_DIR/console-values.json" 2> /dev/null; }

# C side: log out ended the session at ferryd, not only in the browser.
cookie=$(value logged_out_cookie)
code=$(curl -s -o "$TEST_DIR/old-session.json" -w '%{http_code}' --cacert "$CA" \
	-H "Cookie: ferry_session=$cookie" "$PRIMARY_URL/v1/session")
[ -n "$cookie" ] && [ "$code" = 401 ]
ok $? "after Log out, GET /v1/session with the old cookie is 401 at ferryd ($(jq -r .error.message "$TEST_DIR/old-session.json" 2> /dev/null))"

at_a audit --json > "$TEST_DIR/audit-a.json"
jq -e --arg p "/v1/groups/$G/sync" '[.entries[] | select(.path == $p and .token == "o" and .status == 202)] | length == 1' "$TEST_DIR/audit-a.json" > /dev/null &&
	jq -e --arg p "/v1/groups/$G/sync" '[.entries[] | select(.path == $p and .token == "v" and .status == 403)] | length == 1' "$TEST_DIR/audit-a.json" > /dev/null &&
	jq -e --arg p "/v1/groups/$G/pause" '[.entries[] | select(.path == $p and .status < 400)] | length == 0' "$TEST_DIR/audit-a.json" > /dev/null
ok $? "the primary's audit: one sync by the operator (202), the viewer's forged one refused (403), no pause went through"

test_run=$(value test_run) cleanup_run=$(value cleanup_run)
at_b runs --json > "$TEST_DIR/runs-b.json"
at_b audit --json > "$TEST_DIR/audit-b.json"
[ -n "$test_run" ] && [ -n "$cleanup_run" ] &&
	jq -e --argjson t "$test_run" --argjson c "$cleanup_run" \
		'[.runs[] | select((.run == $t and .kind == "failover-test") or (.run == $c and .kind == "failover-cleanup")) | select(.status == "completed")] | length == 2' \
		"$TEST_DIR/runs-b.json" > /dev/null &&
	jq -e '[.entries[] | select(.path == "/v1/runs" and .method == "POST" and .token == "o" and .status == 202)] | length == 2' "$TEST_DIR/audit-b.json" > /dev/null
ok $? "at the replica site, runs $test_run (failover-test) and $cleanup_run (failover-cleanup) completed, both started by the operator's session"

! v2 list --all --name | grep -qx "$V1" && running_on "$U1" $V1
ok $? "the test VM is gone from libvirtd 2 after the cleanup, and $V1 still runs at the primary"

no_chromium_left() { [ -z "$(chromium_left)" ]; }
WAIT_INTERVAL=0.2 wait_until 10 no_chromium_left
is "$(chromium_left | wc -l)" 0 "no Chromium process of this test is left"
exit $test_failed
