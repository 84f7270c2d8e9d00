#!/bin/bash
# ferryd as a service and the CLI's conventions, against real ferryd processes: one version
# everywhere; --check-config finds every problem at once; the listen address is bound before
# anything is made; ferryd.url exists only while it listens; systemd's readiness protocol
# (READY=1, STATUS=, STOPPING=1 on a real notify socket) and journal priorities; SIGHUP reloads
# the allow-lists and never stops the daemon; global options before or after the command, each
# command's own help, the client configuration file and its precedence; a TLS error names the
# daemon's fingerprint.
. "$(dirname "$0")/lib.sh"

plan 44
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VERSION=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$ROOT/packaging/debian/changelog")
openssl rand -hex 24 > "$TEST_DIR/token" && chmod 600 "$TEST_DIR/token"
make_tls "$TEST_DIR/tls"
TOKEN="$TEST_DIR/token" CA="$TEST_DIR/tls/ca.pem"

is "$("$FERRYD" --version)" "ferryd $VERSION" "ferryd --version prints the changelog's version"
is "$("$FERRY" --version)" "ferry $VERSION" "ferry --version too"

# --check-config: a good configuration, then one with a problem in every part.
PORT=$(free_port)
cat > "$TEST_DIR/good.conf" <<EOF
[ferryd]
state-dir = $TEST_DIR/site
listen = 127.0.0.1:$PORT
token-file = $TOKEN
tls-cert = $TEST_DIR/tls/server.pem
tls-key = $TEST_DIR/tls/server.key
[libvirt]
local = test:///default
EOF
"$FERRYD" --config "$TEST_DIR/good.conf" --check-config > "$TEST_DIR/check.out" 2>&1
ok $? "--check-config passes a good configuration ($(tail -n 1 "$TEST_DIR/check.out"))"
grep -q "local = test:///default" "$TEST_DIR/check.out"
ok $? "  and lists the libvirt connections this site may open"
[ ! -e "$TEST_DIR/site" ]
ok $? "  having made nothing"
cp "$TOKEN" "$TEST_DIR/open-token" && chmod 644 "$TEST_DIR/open-token"
python3 -c 'import socket,time,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(30)' "$PORT" &
blocker=$!
DAEMON_PIDS="$DAEMON_PIDS $blocker"
port_listened() { ss -Htln "sport = :$1" | grep -q .; }
wait_until 5 port_listened "$PORT"
"$FERRYD" --config "$TEST_DIR/good.conf" --check-config --token-file "$TEST_DIR/open-token" \
	--tls-key "$TEST_DIR/tls/ca.key" --ceph-conf "$TEST_DIR/no-ceph.conf" \
	--guest-file-dir "$TEST_DIR/no-such-folder" > "$TEST_DIR/bad.out" 2> "$TEST_DIR/bad.err"
is $? 2 "--check-config exits 2 on a configuration with problems"
for problem in "readable by other users" "cannot listen on 127.0.0.1:$PORT" "TLS pair" \
	"no-ceph.conf" "no-such-folder is not a folder"; do
	grep -q -- "$problem" "$TEST_DIR/bad.err"
	ok $? "  and names the problem: $(grep -m1 -- "$problem" "$TEST_DIR/bad.err" | head -c 110)"
done
[ "$(grep -c '^ferryd: problem:' "$TEST_DIR/bad.err")" = 5 ]
ok $? "  each problem on a line of its own (5)"

# A libvirt connection the allow-list refuses is a problem too: never "configuration OK" over it.
sed 's#^local = test:///default#local = qemu+ext:///system?command=/bin/true#' "$TEST_DIR/good.conf" \
	> "$TEST_DIR/refused.conf"
"$FERRYD" --config "$TEST_DIR/refused.conf" --check-config > "$TEST_DIR/refused.out" 2> "$TEST_DIR/refused.err"
is $? 2 "--check-config exits 2 on a libvirt connection this site refuses"
! grep -q "configuration OK" "$TEST_DIR/refused.out" && grep -q "^ferryd: problem:" "$TEST_DIR/refused.err"
ok $? "  names it as a problem and does not say the configuration is OK ($(head -c 140 "$TEST_DIR/refused.err"))"

# A busy address is the first and only error: no state folder, no TLS pair, no catalog.
"$FERRYD" --config "$TEST_DIR/good.conf" 2> "$TEST_DIR/busy.err"
[ $? != 0 ] && grep -q "cannot listen on 127.0.0.1:$PORT: Address already in use" "$TEST_DIR/busy.err" &&
	[ ! -e "$TEST_DIR/site" ]
ok $? "a busy --listen fails naming the address, before anything is made ($(head -c 140 "$TEST_DIR/busy.err"))"
kill "$blocker"; wait "$blocker" 2> /dev/null

# Readiness on a real notify socket (what systemd reads with Type=notify).
python3 - "$TEST_DIR/notify.sock" "$TEST_DIR/notify.log" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
with open(sys.argv[2], "a") as log:
    while True:
        try:
            message = s.recv(4096).decode()
        except socket.timeout:
            break
        log.write(message.replace("\n", " ") + "\n")
        log.flush()
        if "STOPPING=1" in message:
            break
EOF
listener=$!
wait_until 5 test -S "$TEST_DIR/notify.sock"
NOTIFY_SOCKET="$TEST_DIR/notify.sock" start_ferryd "$TEST_DIR/site.log" --config "$TEST_DIR/good.conf"
DAEMON_PID=$FERRYD_PID
wait_until 10 file_has "$TEST_DIR/notify.log" READY=1
grep -q "READY=1" "$TEST_DIR/notify.log" && [ -s "$TEST_DIR/site/ferryd.url" ]
ok $? "ferryd tells the notify socket READY=1 once it listens, with ferryd.url written"
grep -q "STATUS=listening on https://127.0.0.1:$PORT, 0 protected volume(s)" "$TEST_DIR/notify.log"
ok $? "  and a STATUS= line ($(grep -m1 STATUS= "$TEST_DIR/notify.log"))"
URL=$(cat "$TEST_DIR/site/ferryd.url")
timeout 20 "$FERRYD" --config "$TEST_DIR/good.conf" --listen 127.0.0.1:0 2> "$TEST_DIR/second.err"
second=$?
[ "$second" != 0 ] && [ "$second" != 124 ] &&
	grep -q "state folder .* is in use by another ferryd (pid $DAEMON_PID)" "$TEST_DIR/second.err" &&
	kill -0 "$DAEMON_PID" && [ "$(cat "$TEST_DIR/site/ferryd.url")" = "$URL" ]
ok $? "a second ferryd on the same state folder exits (status $second), naming the running one ($(tail -n 1 "$TEST_DIR/second.err" | head -c 150))"

# SIGHUP: the libvirt allow-list is read again; the daemon goes on.
protect_message() {
	curl -s --cacert "$CA" -H "Authorization: Bearer $(cat "$TOKEN")" -X POST \
		-d '{"name": "web1", "uri": "later", "dest_uri": "local", "group": "g"}' \
		"$URL/v1/vms" | jq -r .error.message
}
before=$(protect_message)
case $before in *"'later' is not configured"*) ok 0 "before a reload, connection 'later' is refused" ;;
*) ok 1 "before a reload, connection 'later' is refused (got: $before)" ;; esac
printf 'later = test:///default\n' >> "$TEST_DIR/good.conf"
kill -HUP "$DAEMON_PID"
wait_until 5 file_has "$TEST_DIR/site.log" "configuration reloaded"
after=$(protect_message)
kill -0 "$DAEMON_PID" && grep -q "configuration reloaded: 2 libvirt connection(s)" "$TEST_DIR/site.log"
ok $? "SIGHUP re-reads the configuration and ferryd keeps running"
case $after in *"not configured"*) ok 1 "  and 'later' is a connection now (got: $after)" ;;
*) ok 0 "  and 'later' is a connection now (the request gets further: ${after:0:90})" ;; esac
grep -q "RELOADING=1" "$TEST_DIR/notify.log"
ok $? "  telling systemd RELOADING=1, then READY=1 again"
printf 'not ini at all\n' >> "$TEST_DIR/good.conf"
kill -HUP "$DAEMON_PID"
wait_until 5 file_has "$TEST_DIR/site.log" "reload refused"
after=$(protect_message)
kill -0 "$DAEMON_PID" && grep -q "reload refused" "$TEST_DIR/site.log"
ok $? "a configuration that does not parse is refused at a reload, and ferryd goes on"
case $after in *"not configured"*) ok 1 "  with the settings in force (got: $after)" ;;
*) ok 0 "  with the settings in force ('later' still allowed)" ;; esac
sed -i '$d' "$TEST_DIR/good.conf"

# The CLI: global options before or after the command, each command's own help.
"$FERRY" --daemon "$URL" --token-file "$TOKEN" --cacert "$TEST_DIR/tls/ca.pem" status --json > /dev/null
ok $? "ferry --daemon URL --token-file F --cacert C status works (global options first)"
"$FERRY" status --json --daemon "$URL" --token-file "$TOKEN" --cacert "$TEST_DIR/tls/ca.pem" > /dev/null
ok $? "ferry status --daemon URL ... works too"
"$FERRY" help copy > "$TEST_DIR/help-copy.out"
grep -q "copy \[--to URL\]" "$TEST_DIR/help-copy.out" && ! grep -q "migrate DOMAIN" "$TEST_DIR/help-copy.out"
ok $? "ferry help copy prints copy's usage, not every command's"
"$FERRY" copy --help | cmp -s - "$TEST_DIR/help-copy.out" && "$FERRY" copy -h | cmp -s - "$TEST_DIR/help-copy.out"
ok $? "  as ferry copy --help and ferry copy -h do"
"$FERRY" frobnicate > /dev/null 2>&1
is $? 2 "an unknown command exits 2"
"$FERRY" migrate vm1 --live --bandwidth 100K --daemon "$URL" --token-file "$TOKEN" > /dev/null 2> "$TEST_DIR/bw.err"
[ $? = 2 ] && grep -q "1M (1 MiB/s) or more" "$TEST_DIR/bw.err"
ok $? "--bandwidth takes the suffixed rate form and refuses less than libvirt's 1 MiB/s"

# The client configuration: flags win over the environment, which wins over the file.
mkdir -p "$TEST_DIR/client"
cp "$TEST_DIR/tls/ca.pem" "$TEST_DIR/client/ca.pem"
cp "$TOKEN" "$TEST_DIR/client/token"
printf '[ferry]\ndaemon = %s\ntoken-file = token\ncacert = ca.pem\n' "$URL" > "$TEST_DIR/client/ferry.conf"
FERRY_CONFIG="$TEST_DIR/client/ferry.conf" "$FERRY" status --json > "$TEST_DIR/status.json"
ok $? "ferry status with no flags at all, from \$FERRY_CONFIG (paths relative to the file)"
FERRY_CONFIG="$TEST_DIR/client/ferry.conf" FERRY_DAEMON=https://127.0.0.1:1 "$FERRY" status > /dev/null 2>&1
is $? 1 "FERRY_DAEMON wins over the file (and points nowhere here)"
FERRY_CONFIG="$TEST_DIR/client/ferry.conf" FERRY_DAEMON=https://127.0.0.1:1 "$FERRY" status --daemon "$URL" > /dev/null
ok $? "a flag wins over FERRY_DAEMON"
FERRY_CONFIG="$TEST_DIR/client/ferry.conf" FERRY_DAEMON=https://127.0.0.1:1 "$FERRY" config --json > "$TEST_DIR/config.json"
[ "$(jq -r '.settings.daemon.source' "$TEST_DIR/config.json")" = "environment (FERRY_DAEMON)" ] &&
	[ "$(jq -r '.settings["token-file"].source' "$TEST_DIR/config.json")" = "$TEST_DIR/client/ferry.conf" ] &&
	[ "$(jq -r '.settings["token-file"].value' "$TEST_DIR/config.json")" = "$TEST_DIR/client/token" ]
ok $? "ferry config --json names each setting's value and where it came from"
HOME="$TEST_DIR/home" XDG_CONFIG_HOME= FERRY_CONFIG= "$FERRY" config > /dev/null
ok $? "ferry config works with no configuration file at all"
mkdir -p "$TEST_DIR/home/.config/ferry" && cp "$TEST_DIR/client/ferry.conf" "$TEST_DIR/home/.config/ferry/"
sed -i "s#= token#= $TEST_DIR/client/token#; s#= ca.pem#= $TEST_DIR/client/ca.pem#" "$TEST_DIR/home/.config/ferry/ferry.conf"
HOME="$TEST_DIR/home" XDG_CONFIG_HOME= FERRY_CONFIG= "$FERRY" status > /dev/null
ok $? "without \$FERRY_CONFIG, ~/.config/ferry/ferry.conf is read"
printf 'colour = blue\n' > "$TEST_DIR/client/typo.conf"
FERRY_CONFIG="$TEST_DIR/client/typo.conf" "$FERRY" status > /dev/null 2> "$TEST_DIR/typo.err"
[ $? != 0 ] && grep -q "unknown setting 'colour'" "$TEST_DIR/typo.err"
ok $? "an unknown setting in ferry.conf is named ($(head -c 120 "$TEST_DIR/typo.err"))"

# A TLS error tells what to trust: the daemon's own fingerprint, the one ferryd logged.
"$FERRY" status --daemon "$URL" --token-file "$TOKEN" > /dev/null 2> "$TEST_DIR/tls.err"
fingerprint=$(sed -n 's/.*SHA-256 fingerprint \([0-9A-F:]*\).*/\1/p' "$TEST_DIR/site.log" | head -n 1)
[ -n "$fingerprint" ] && grep -q "fingerprint $fingerprint" "$TEST_DIR/tls.err" && grep -q -- "--cacert" "$TEST_DIR/tls.err"
ok $? "a TLS error names the daemon's fingerprint (as ferryd logged it) and --cacert"
grep -q "refused 127.0.0.1 (HTTP" "$TEST_DIR/site.log"
ok $? "a refused request is logged with the client's address"

# Server-Sent Events: what happens arrives as it happens, and Last-Event-ID resumes.
SSE=(curl -sN --cacert "$CA" -H "Authorization: Bearer $(cat "$TOKEN")")
"${SSE[@]}" -D "$TEST_DIR/stream.headers" "$URL/v1/events/stream" > "$TEST_DIR/stream.out" &
streamer=$!
wait_until 5 file_has "$TEST_DIR/stream.headers" '^HTTP/.* 200'
"$FERRY" group create sse --interval 60 --daemon "$URL" --token-file "$TOKEN" --cacert "$CA" > /dev/null
# sse_event OBJECT TEXT: the stream so far has an event about OBJECT whose message holds TEXT
sse_event() {
	sed -n 's/^data: //p' "$TEST_DIR/stream.out" | json_lines |
		jq -s -e --arg o "$1" --arg t "$2" 'any(.[]; .object == $o and (.message | contains($t)))' > /dev/null
}
wait_until 5 sse_event sse ""
grep -q '^event: info$' "$TEST_DIR/stream.out" && sse_event sse "group created"
ok $? "GET /v1/events/stream sends the group's creation as it happens"
id=$(sed -n 's/^id: //p' "$TEST_DIR/stream.out" | tail -n 1)
timeout 3 "${SSE[@]}" -H "Last-Event-ID: $((id - 1))" "$URL/v1/events/stream" > "$TEST_DIR/resumed.out"
[ "$(sed -n 's/^id: //p' "$TEST_DIR/resumed.out" | head -n 1)" = "$id" ] &&
	[ "$(grep -c '^id: ' "$TEST_DIR/resumed.out")" = 1 ]
ok $? "  a reconnect with Last-Event-ID: $((id - 1)) gets event $id and nothing before it"

# Stopping, with an event stream still open: STOPPING=1, and ferryd.url is gone.
stop_daemon "$DAEMON_PID"
wait "$listener" 2> /dev/null
grep -q "STOPPING=1" "$TEST_DIR/notify.log" && [ ! -e "$TEST_DIR/site/ferryd.url" ]
ok $? "at SIGTERM ferryd says STOPPING=1 and removes ferryd.url (an open event stream does not hold it)"
wait "$streamer" 2> /dev/null

# Under systemd, stderr is the journal's stream: lines carry a syslog priority, no timestamp.
: > "$TEST_DIR/journal.log"
journal_stream=$(stat -c '%d:%i' "$TEST_DIR/journal.log")
JOURNAL_STREAM="$journal_stream" "$FERRYD" --config "$TEST_DIR/good.conf" --listen 192.0.2.1:7443 2> "$TEST_DIR/journal.log"
case $(head -n 1 "$TEST_DIR/journal.log") in
"<3>error: cannot listen on 192.0.2.1:7443"*) ok 0 "with JOURNAL_STREAM naming stderr, an error line starts with <3>" ;;
*) ok 1 "with JOURNAL_STREAM naming stderr, an error line starts with <3> (got: $(head -n 1 "$TEST_DIR/journal.log"))" ;;
esac
JOURNAL_STREAM="1:1" "$FERRYD" --config "$TEST_DIR/good.conf" --listen 192.0.2.1:7443 2> "$TEST_DIR/plain.log"
grep -q "^20[0-9-]*T[0-9:.]*Z error: cannot listen" "$TEST_DIR/plain.log"
ok $? "  and with stderr elsewhere (an inherited JOURNAL_STREAM), lines keep their timestamps"
exit $test_failed
