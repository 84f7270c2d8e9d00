#!/bin/bash
# Every token has a role and a peer only pushes: tokens are created, listed (never a secret) and
# revoked through the CLI; a walk over the whole route table (ferryd --print-routes) shows each
# route refusing no token (401) and every role below its own (403), and taking its own; a peer
# reaches only the volumes and VM records it pushed and cannot restart a replica; a token is
# kept hashed, expires, and the bearer header is parsed strictly; the audit log records who
# changed what, refusals included.
. "$(dirname "$0")/lib.sh"

ROUTES=$("$FERRYD" --print-routes)
route_count=$(echo "$ROUTES" | wc -l)
plan $((route_count + 37))

PORT=$(free_port) # the same URL after the restart below
DAEMON_PORT=$PORT start_daemon site --libvirt local=test:///default || { echo "Bail out! ferryd did not start"; exit 1; }
CA="$TEST_DIR/tls/ca.pem"
ADMIN=(--daemon "$DAEMON_URL" --token-file "$TEST_DIR/token" --cacert "$CA")
for role in viewer operator admin peer; do
	"$FERRY" token create "t-$role" --role "$role" --json "${ADMIN[@]}" > "$TEST_DIR/t-$role.json" &&
		jq -r .token "$TEST_DIR/t-$role.json" > "$TEST_DIR/t-$role" && chmod 600 "$TEST_DIR/t-$role"
done
"$FERRY" token create t-peer2 --role peer --json "${ADMIN[@]}" | jq -r .token > "$TEST_DIR/t-peer2"
jq -e '.name == "t-operator" and .role == "operator" and (.token | length) == 64' "$TEST_DIR/t-operator.json" > /dev/null
ok $? "ferry token create prints name, role and the secret once ($(jq -c '{name, role}' "$TEST_DIR/t-operator.json"))"
"$FERRY" token list --json "${ADMIN[@]}" > "$TEST_DIR/list.json"
jq -e '[.tokens[].name] == ["t-admin", "t-operator", "t-peer", "t-peer2", "t-viewer"] and
	([.tokens[] | has("token") or has("hash")] | any | not) and
	(.tokens | all(.created_ms > 0 and .expires_ms == 0))' "$TEST_DIR/list.json" > /dev/null &&
	! grep -qF "$(cat "$TEST_DIR/t-admin")" "$TEST_DIR/list.json"
ok $? "ferry token list shows names, roles and times, never a secret or its hash"
! grep -qaF "$(cat "$TEST_DIR/t-admin")" "$TEST_DIR/site/catalog.db" &&
	[ "$(sqlite3 "$TEST_DIR/site/catalog.db" "SELECT hash FROM tokens WHERE name = 't-admin'")" = \
		"$(printf %s "$(cat "$TEST_DIR/t-admin")" | sha256sum | cut -c1-64)" ]
ok $? "the catalog keeps the SHA-256 of each token, not the token"

# code TOKEN-FILE METHOD PATH: the HTTP status of one request ("" as TOKEN-FILE: none). An
# event stream answers its status at once and then never ends: --max-time lets go of it.
code() {
	local auth=()
	[ -n "$1" ] && auth=(-H "Authorization: Bearer $(cat "$1")")
	curl -s --max-time 5 -o "$TEST_DIR/reply" -w '%{http_code}' --cacert "$CA" "${auth[@]}" -X "$2" \
		-H 'Content-Type: application/json' --data '{}' "$DAEMON_URL$3"
}
# The walk: each route with its variable parts filled in.
while read -r method pattern access; do
	path=${pattern//\*/x-walk}
	case $access in
	viewer) below="t-peer" own="t-viewer" ;;
	viewer-or-peer) below="" own="t-viewer t-peer" ;;
	operator) below="t-viewer t-peer" own="t-operator" ;;
	admin) below="t-viewer t-operator t-peer" own="t-admin" ;;
	peer) below="t-viewer t-operator" own="t-peer t-admin" ;;
	public) below="" own="t-viewer" ;;
	esac
	bad=""
	case $access:$(code "" "$method" "$path") in
	public:401 | public:403) bad="$bad no-token" ;; # the console's files and its login
	public:*) ;;
	*:401) ;;
	*) bad="$bad no-token" ;;
	esac
	for token in $below; do
		[ "$(code "$TEST_DIR/$token" "$method" "$path")" = 403 ] || bad="$bad $token"
	done
	for token in $own; do
		case $(code "$TEST_DIR/$token" "$method" "$path") in 401 | 403) bad="$bad $token" ;; esac
	done
	is "$bad" "" "$method $pattern ($access): 401 without a token, 403 below, taken by $own"
done <<< "$ROUTES"

# A peer pushes its own volumes only.
head -c 300000 /dev/urandom > "$TEST_DIR/vol.img"
peer_copy() { # peer_copy TOKEN-FILE NAME [args]
	"$FERRY" copy --to "$DAEMON_URL" --token-file "$1" --cacert "$CA" --json "${@:3}" "$TEST_DIR/vol.img" "$2"
}
peer_copy "$TEST_DIR/t-peer" pushed > /dev/null
ok $? "a peer token copies a volume of its own"
peer_copy "$TEST_DIR/t-peer2" pushed > /dev/null 2> "$TEST_DIR/p2.err"
[ $? != 0 ] && grep -q "pushed by another peer" "$TEST_DIR/p2.err"
ok $? "another peer cannot write into it ($(head -c 150 "$TEST_DIR/p2.err"))"
is "$(code "$TEST_DIR/t-peer2" GET /v1/volumes/pushed)" 403 "  nor read it"
is "$(code "$TEST_DIR/t-peer" GET /v1/volumes)" 403 "a peer cannot list the site's volumes"
peer_copy "$TEST_DIR/t-peer" pushed --restart > /dev/null 2> "$TEST_DIR/restart.err"
[ $? != 0 ] && grep -q "only an admin" "$TEST_DIR/restart.err"
ok $? "the owning peer cannot restart (truncate) its complete replica ($(head -c 120 "$TEST_DIR/restart.err"))"
[ "$(volume_field pushed state)" = complete ] && [ "$(volume_field pushed size)" = 300000 ]
ok $? "  which stays complete at its size"
peer_copy "$TEST_DIR/token" pushed --restart > /dev/null
ok $? "an admin can restart it"
# VM records likewise.
record() { jq -nc --arg n "$1" '{name: $n, uri: "local", dest_uri: "local", group: "g", site: "a",
	disks: [], xml: ("<domain type=\"qemu\"><name>" + $n + "</name><devices/></domain>")}'; }
receive() { curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $(cat "$1")" \
	-H 'Content-Type: application/json' --data "$(record "$2")" "$DAEMON_URL/v1/vms/receive"; }
is "$(receive "$TEST_DIR/t-peer" vm-a)" 200 "a peer stores a VM record"
is "$(receive "$TEST_DIR/t-peer2" vm-a)" 403 "another peer cannot overwrite it"
is "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $(cat "$TEST_DIR/t-operator")" \
	-H 'Content-Type: application/json' --data '{"kind": "failover", "vm": "vm-a"}' "$DAEMON_URL/v1/runs")" 403 \
	"an operator cannot start a failover (admin only)"

# Strict bearer parsing, expiry, revocation.
is "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -H "Authorization: bearer $(cat "$TEST_DIR/t-viewer")" "$DAEMON_URL/v1/volumes")" 200 \
	"the scheme is case-insensitive"
is "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $(cat "$TEST_DIR/t-viewer") junk" "$DAEMON_URL/v1/volumes")" 401 \
	"a token followed by anything is refused"
# A token that expired long ago: no API makes one (expires_days is 1 or more), so the catalog is
# changed while ferryd is stopped, and ferryd started again on it.
stop_daemon "$DAEMON_PID"
ok $? "ferryd stops (to age a token in its catalog)"
sqlite3 "$TEST_DIR/site/catalog.db" "UPDATE tokens SET expires_ms = 1 WHERE name = 't-viewer'"
DAEMON_PORT=$PORT start_daemon site --libvirt local=test:///default || { echo "Bail out! ferryd did not restart"; exit 1; }
is "$(code "$TEST_DIR/t-viewer" GET /v1/volumes)" 401 "an expired token is refused"
"$FERRY" token revoke t-peer2 "${ADMIN[@]}" > /dev/null
ok $? "ferry token revoke t-peer2"
is "$(code "$TEST_DIR/t-peer2" GET /v1/health)" 401 "  after which it is refused"
"$FERRY" token revoke t-peer2 "${ADMIN[@]}" > /dev/null 2> "$TEST_DIR/revoke.err"
[ $? = 1 ] && grep -q "no token named" "$TEST_DIR/revoke.err"
ok $? "revoking it again fails with the reason"

# The console's session: a token once, then an HttpOnly cookie and a CSRF token for changes.
JAR="$TEST_DIR/cookies"
login() { curl -s -c "$JAR" -D "$TEST_DIR/login.headers" -o "$TEST_DIR/login.json" -w '%{http_code}' --cacert "$CA" \
	-H 'Content-Type: application/json' --data "{\"token\": \"$(cat "$1")\"}" "$DAEMON_URL/v1/session"; }
with_cookie() { curl -s -b "$JAR" -o "$TEST_DIR/cookie-reply" -w '%{http_code}' --cacert "$CA" "$@"; }
is "$(login "$TEST_DIR/t-operator")" 200 "an operator logs in to the console with its token"
grep -i '^set-cookie: ferry_session=' "$TEST_DIR/login.headers" | grep -qi 'HttpOnly' &&
	grep -i '^set-cookie:' "$TEST_DIR/login.headers" | grep -qi 'Secure' &&
	grep -i '^set-cookie:' "$TEST_DIR/login.headers" | grep -qi 'SameSite=Strict' &&
	grep -i '^set-cookie:' "$TEST_DIR/login.headers" | grep -qi 'Max-Age='
ok $? "  the session cookie is HttpOnly, Secure, SameSite=Strict and expires"
CSRF=$(jq -r .csrf "$TEST_DIR/login.json")
is "$(jq -r .role "$TEST_DIR/login.json")/${#CSRF}" "operator/64" "  the answer names the role and a CSRF token"
! grep -qF "$(cat "$TEST_DIR/t-operator")" "$JAR" "$TEST_DIR/login.json" "$TEST_DIR/login.headers"
ok $? "  and the token itself is in neither the cookie nor the answer"
is "$(with_cookie "$DAEMON_URL/v1/volumes")" 200 "the cookie reads as the operator"
is "$(with_cookie -X POST -H 'Content-Type: application/json' --data '{"name":"cg","interval":60}' "$DAEMON_URL/v1/groups")" 403 \
	"  a change with the cookie and no CSRF token is refused (403)"
is "$(with_cookie -X POST -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json' --data '{"name":"cg","interval":60}' "$DAEMON_URL/v1/groups")" 403 \
	"  with it, the role still decides: an operator cannot create a group"
is "$(with_cookie -X POST -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json' --data '{"kind":"failover-cleanup"}' "$DAEMON_URL/v1/runs")" 202 \
	"  and what an operator may do goes through (a test failover's cleanup)"
is "$(login "$TEST_DIR/t-peer")" 403 "a peer token cannot log in to the console"
is "$(login /dev/null)" 401 "nor can no token"
login "$TEST_DIR/t-operator" > /dev/null
CSRF=$(jq -r .csrf "$TEST_DIR/login.json")
is "$(with_cookie -X DELETE -H "X-CSRF-Token: $CSRF" "$DAEMON_URL/v1/session")" 200 "log out"
sed -i 's/#HttpOnly_//' "$JAR" # curl's jar marks HttpOnly cookies; the old one is sent again by hand
old=$(awk '$6 == "ferry_session" { print $7 }' "$TEST_DIR/cookies" | tail -n 1)
is "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -H "Cookie: ferry_session=$old" "$DAEMON_URL/v1/session")" 401 \
	"  the session is over at ferryd: its old cookie is refused"

# The audit log.
"$FERRY" audit --json "${ADMIN[@]}" > "$TEST_DIR/audit.json"
jq -e '(.entries | length) > 0 and (.entries | all(has("time_ms") and has("token") and has("role") and has("client") and has("method") and has("path") and has("status")))' "$TEST_DIR/audit.json" > /dev/null
ok $? "ferry audit --json lists entries with time, token, role, client, method, path, status"
jq -e '[.entries[] | select(.token == "t-peer2" and .status == 403 and (.path | startswith("/v1/volumes/pushed")))] | length > 0' "$TEST_DIR/audit.json" > /dev/null
ok $? "  a refused write by another peer is in it"
jq -e '[.entries[] | select(.token == "bootstrap" and .method == "POST" and .path == "/v1/volumes/pushed/transfer" and .status == 200 and .client == "127.0.0.1")] | length > 0' "$TEST_DIR/audit.json" > /dev/null
ok $? "  and so is the admin's restart, with the client address"
is "$("$FERRY" audit --since 1d --json "${ADMIN[@]}" | jq '.entries | length')" "$(jq '.entries | length' "$TEST_DIR/audit.json")" \
	"ferry audit --since 1d lists the same entries"
is "$("$FERRY" audit --since 2099-01-01T00:00:00Z --json "${ADMIN[@]}" | jq '.entries | length')" 0 \
	"  and --since a time to come none"
stop_daemon "$DAEMON_PID"
exit $test_failed
