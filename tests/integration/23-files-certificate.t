#!/bin/bash
# What ferryd leaves on disk is for no one else, and the certificate it makes for itself is a
# server's: in a state folder created 0755 beforehand, the catalog, its WAL and SHM, the keys,
# peer secrets and received volumes are neither group- nor world-readable; the self-signed
# certificate is not a CA, lasts at most two years, names localhost and each --tls-san, and
# clients trust it as given (--cacert cert.pem). A request cannot write lines of its own into
# the log, and one row of broken text cannot break a listing.
. "$(dirname "$0")/lib.sh"

plan 11
STATE="$TEST_DIR/open-folder"
mkdir -m 0755 "$STATE"
[ -f "$TEST_DIR/token" ] || openssl rand -hex 24 > "$TEST_DIR/token"
PORT=$(free_port) # the same URL after the restart below
start_open() {
	start_ferryd "$TEST_DIR/open.log" --state-dir "$STATE" --listen "127.0.0.1:$PORT" \
		--token-file "$TEST_DIR/token" --tls-san ferry.example.org --tls-san 10.1.2.3
	DAEMON_PID=$FERRYD_PID
	wait_listening "$DAEMON_PID" "$STATE"
}
start_open
URL=$(cat "$STATE/ferryd.url")
[ -n "$URL" ]
ok $? "ferryd starts in a folder that was created 0755 ($URL)"
CERT="$STATE/tls/cert.pem"
openssl x509 -in "$CERT" -noout -text > "$TEST_DIR/cert.txt"
grep -q "CA:FALSE" "$TEST_DIR/cert.txt"
ok $? "its self-signed certificate is not a CA ($(grep -A1 'Basic Constraints' "$TEST_DIR/cert.txt" | tail -n 1 | tr -s ' '))"
start=$(date -d "$(openssl x509 -in "$CERT" -noout -startdate | cut -d= -f2)" +%s)
end=$(date -d "$(openssl x509 -in "$CERT" -noout -enddate | cut -d= -f2)" +%s)
[ $(( (end - start) / 86400 )) -le 731 ]
ok $? "  and lasts $(( (end - start) / 86400 )) days (two years at most)"
grep -q "DNS:ferry.example.org" "$TEST_DIR/cert.txt" && grep -q "IP Address:10.1.2.3" "$TEST_DIR/cert.txt" &&
	grep -q "DNS:localhost" "$TEST_DIR/cert.txt"
ok $? "  and names localhost and each --tls-san ($(grep -A1 'Subject Alternative Name' "$TEST_DIR/cert.txt" | tail -n 1 | tr -s ' '))"
head -c 100000 /dev/urandom > "$TEST_DIR/small.img"
"$FERRY" copy --to "$URL" --token-file "$TEST_DIR/token" --cacert "$CERT" --json "$TEST_DIR/small.img" small > /dev/null
ok $? "ferry copy trusts it through --cacert cert.pem"
"$FERRY" site add dr --url https://127.0.0.1:1 --peer-token-file "$TEST_DIR/token" --peer-cacert "$CERT" \
	--daemon "$URL" --token-file "$TEST_DIR/token" --cacert "$CERT" > /dev/null
ok $? "a site with its secrets is added"
open=$(find "$STATE" -mindepth 1 \( -type f -o -type d \) -perm /077 -printf '%m %P\n')
is "$open" "" "nothing under the folder is readable by group or others"
ls "$STATE"/catalog.db-wal "$STATE"/volumes/small "$STATE"/tls/key.pem > /dev/null
ok $? "  among them the catalog's WAL, a received volume and the key"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CERT" -H "Authorization: Bearer $(cat "$TEST_DIR/token")" \
	-H 'Content-Type: application/json' --data '{"name": "n", "role": "x\ninjected-line \u001b[31m"}' "$URL/v1/tokens")
is "$code" 400 "a token request with a newline and an escape in its role is refused"
grep -q "^injected-line" "$TEST_DIR/open.log" || grep -q $'\e' "$TEST_DIR/open.log"
is $? 1 "  and its refusal in the log is one line, without the escape byte"
# A row holding bytes that are not UTF-8 (written by an older version, or by hand) must not
# make the whole event listing fail. It is written while ferryd is stopped, as an older version
# would have left it.
stop_daemon "$DAEMON_PID"
sqlite3 "$STATE/catalog.db" "INSERT INTO events (time_ms, level, object, message) VALUES (1, 'info', 'x', CAST(X'6261642dFF2dC3' AS TEXT))"
start_open
code=$(curl -s -o "$TEST_DIR/events.json" -w '%{http_code}' --cacert "$CERT" -H "Authorization: Bearer $(cat "$TEST_DIR/token")" "$URL/v1/events")
[ "$code" = 200 ] && jq -e '[.events[] | select(.message == "bad-?-?")] | length == 1' "$TEST_DIR/events.json" > /dev/null
ok $? "GET /v1/events answers $code with a row of broken UTF-8 shown as '?'"
stop_daemon "$DAEMON_PID"
exit $test_failed
