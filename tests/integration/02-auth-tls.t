#!/bin/bash
# Proves that ferryd refuses requests without the right bearer token, that ferry verifies TLS
# (--cacert or explicit --insecure), and that a self-signed pair is made, logged, kept and used.
source "$(dirname "$0")/lib.sh"

plan 40

start_daemon site || { echo "Bail out! ferryd did not start"; exit 1; }
STATE="$TEST_DIR/site"
TOKEN=$(cat "$TEST_DIR/token")
CA="$TEST_DIR/tls/ca.pem"
head -c $((3 * 1048576 + 77)) /dev/urandom > "$TEST_DIR/src.img"


# --- wrong token ---
echo "not-the-token-$(openssl rand -hex 8)" > "$TEST_DIR/bad-token"
err=$("$FERRY" copy --to "$DAEMON_URL" --token-file "$TEST_DIR/bad-token" --cacert "$CA" \
	"$TEST_DIR/src.img" wrongtok 2>&1 >/dev/null)
[ $? -ne 0 ]
ok $? "copy with a wrong token exits non-zero"
printf '%s' "$err" | grep -qi 'token'
ok $? "the message mentions the token ($err)"
[ ! -e "$STATE/volumes/wrongtok" ]
ok $? "no volume file was created for a refused copy"
volumes=$(api GET /v1/volumes)
ok $? "GET /v1/volumes with the right token answers"
is "$(printf '%s' "$volumes" | jq '.volumes | length')" 0 "the daemon lists no volume after the refused copy"
"$FERRY" status --daemon "$DAEMON_URL" --token-file "$TEST_DIR/bad-token" --cacert "$CA" \
	> /dev/null 2>&1
[ $? -ne 0 ]
ok $? "ferry status with a wrong token exits non-zero"

# --- missing token file ---
err=$("$FERRY" copy --to "$DAEMON_URL" --cacert "$CA" "$TEST_DIR/src.img" notok 2>&1 >/dev/null)
[ $? -ne 0 ]
ok $? "copy without --token-file exits non-zero"
printf '%s' "$err" | grep -q -- '--token-file'
ok $? "the message names --token-file ($err)"
err=$("$FERRY" copy --to "$DAEMON_URL" --token-file "$TEST_DIR/no-such-file" --cacert "$CA" \
	"$TEST_DIR/src.img" notok 2>&1 >/dev/null)
[ $? -ne 0 ]
ok $? "copy with an unreadable token file exits non-zero"
printf '%s' "$err" | grep -q 'no-such-file'
ok $? "the message names the missing token file"
[ ! -e "$STATE/volumes/notok" ]
ok $? "no volume file was created without a token"

# --- raw API without or with a bad Authorization ---
code=$(curl -sS -o "$TEST_DIR/body" -w '%{http_code}' --cacert "$CA" "$DAEMON_URL/v1/volumes")
is "$code" 401 "GET /v1/volumes without Authorization is 401"
is "$(jq -r .error.code < "$TEST_DIR/body")" unauthorized "the error code is unauthorized"
jq -e '.error.message | length > 0' < "$TEST_DIR/body" > /dev/null
ok $? "the error carries a message"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer ${TOKEN}x" \
	"$DAEMON_URL/v1/health")
is "$code" 401 "a token with an extra character is 401"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer ${TOKEN:0:10}" \
	"$DAEMON_URL/v1/health")
is "$code" 401 "a prefix of the token is 401"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA" -H "Authorization: Basic $TOKEN" \
	"$DAEMON_URL/v1/health")
is "$code" 401 "the token under another scheme (Basic) is 401"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA" -X POST -H 'Content-Type: application/json' \
	--data '{"size":4096,"source_identity":"x"}' "$DAEMON_URL/v1/volumes/sneaky/transfer")
is "$code" 401 "POST /transfer without a token is 401"
[ ! -e "$STATE/volumes/sneaky" ]
ok $? "an unauthorized /transfer creates no file"

# --- TLS verification ---
err=$("$FERRY" copy --to "$DAEMON_URL" --token-file "$TEST_DIR/token" "$TEST_DIR/src.img" nocacert \
	2>&1 >/dev/null)
[ $? -ne 0 ]
ok $? "copy without --cacert or --insecure is refused"
printf '%s' "$err" | grep -qi -e 'certificate' -e '--cacert'
ok $? "the message mentions the certificate / --cacert ($err)"
[ ! -e "$STATE/volumes/nocacert" ]
ok $? "no volume file was created by the refused TLS connection"
out=$("$FERRY" copy --to "$DAEMON_URL" --token-file "$TEST_DIR/token" --insecure --json \
	"$TEST_DIR/src.img" insecure)
ok $? "copy with --insecure exits 0"
is "$(sha "$STATE/volumes/insecure")" "$(sha "$TEST_DIR/src.img")" "--insecure copy has the same SHA-256"

# --- a daemon without --tls-cert/--tls-key makes and keeps a self-signed pair ---
SELF="$TEST_DIR/self"
# start_self: starts ferryd by hand in $SELF; sets SELF_PID and SELF_URL.
start_self() {
	mkdir -p "$SELF"
	start_ferryd "$TEST_DIR/self.log" --state-dir "$SELF" --listen 127.0.0.1:0 \
		--token-file "$TEST_DIR/token"
	SELF_PID=$FERRYD_PID
	wait_listening "$SELF_PID" "$SELF"
	SELF_URL=$(cat "$SELF/ferryd.url" 2>/dev/null)
	[ -n "$SELF_URL" ]
}
# fingerprint_logged N: the SHA-256 fingerprint logged by the Nth start (1-based).
fingerprint_logged() {
	grep 'SHA-256 fingerprint' "$TEST_DIR/self.log" | sed -n "$1p" | sed 's/.*SHA-256 fingerprint //'
}

start_self
ok $? "ferryd without --tls-cert starts and writes ferryd.url"
[ -s "$SELF/tls/cert.pem" ] && [ -s "$SELF/tls/key.pem" ]
ok $? "it created tls/cert.pem and tls/key.pem"
is "$(stat -c %a "$SELF/tls/key.pem")" 600 "the key is mode 0600"
expected=$(openssl x509 -in "$SELF/tls/cert.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
first=$(fingerprint_logged 1)
[ -n "$first" ]
ok $? "the log has a SHA-256 fingerprint"
is "$first" "$expected" "the logged fingerprint equals openssl's"
out=$("$FERRY" copy --to "$SELF_URL" --token-file "$TEST_DIR/token" --cacert "$SELF/tls/cert.pem" \
	--json "$TEST_DIR/src.img" pinned)
ok $? "copy with --cacert tls/cert.pem against the self-signed daemon exits 0"
is "$(sha "$SELF/volumes/pinned")" "$(sha "$TEST_DIR/src.img")" "the pinned copy has the same SHA-256"
"$FERRY" copy --to "$SELF_URL" --token-file "$TEST_DIR/token" --cacert "$CA" \
	"$TEST_DIR/src.img" othercert > /dev/null 2>&1
[ $? -ne 0 ]
ok $? "the test CA does not validate the self-signed daemon"

cert_before=$(sha "$SELF/tls/cert.pem")
stop_daemon "$SELF_PID"
is "$?" 0 "SIGTERM makes ferryd exit 0"
[ ! -e "$SELF/ferryd.url" ]
ok $? "ferryd.url is removed on exit"

start_self
ok $? "ferryd restarts on the same state dir"
is "$(sha "$SELF/tls/cert.pem")" "$cert_before" "the same certificate is kept on restart"
is "$(fingerprint_logged 2)" "$first" "the same fingerprint is logged on restart"
out=$("$FERRY" verify --to "$SELF_URL" --token-file "$TEST_DIR/token" --cacert "$SELF/tls/cert.pem" \
	--json "$TEST_DIR/src.img" pinned)
ok $? "the pinned certificate still works after restart (verify matches)"
stop_daemon "$SELF_PID"
is "$?" 0 "SIGTERM after restart exits 0"
[ ! -e "$SELF/ferryd.url" ]
ok $? "ferryd.url is removed again"

stop_daemon "$DAEMON_PID"
exit $test_failed
