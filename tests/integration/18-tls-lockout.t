#!/bin/bash
# No one locks the daemon out, and only modern TLS gets in: TLS 1.0 and 1.1 are refused while
# 1.2 and 1.3 work; 200 idle TCP connections and 50 connections sending their headers a byte a
# second, all from 127.0.0.1, leave a client at 127.0.0.2 served at once; an idle connection is
# closed by ferryd; the refusals do not flood the log. A connection that trickles its headers a
# byte a second is cut at the header deadline, and a bearer token with a NUL inside is refused.
. "$(dirname "$0")/lib.sh"

plan 15

start_daemon site || { echo "Bail out! ferryd did not start"; exit 1; }
PORT=${DAEMON_URL##*:}
CA="$TEST_DIR/tls/ca.pem"
AUTH=(-H "Authorization: Bearer $(cat "$TEST_DIR/token")" --cacert "$CA")

# tls_version VERSION: gnutls-cli with only that version offered; 0 when the handshake succeeds.
tls_version() {
	timeout 20 gnutls-cli --priority "NORMAL:-VERS-ALL:+VERS-$1:%COMPAT" --x509cafile "$CA" \
		--port "$PORT" 127.0.0.1 < /dev/null > "$TEST_DIR/tls-$1.out" 2>&1
}
tls_version TLS1.0
is $? 1 "a client that offers only TLS 1.0 is refused ($(grep -m1 -i 'error\|fail' "$TEST_DIR/tls-TLS1.0.out" | head -c 100))"
tls_version TLS1.1
is $? 1 "a client that offers only TLS 1.1 is refused"
tls_version TLS1.2
ok $? "TLS 1.2 is accepted (the same probe, so the refusals above are the server's)"
tls_version TLS1.3
ok $? "TLS 1.3 is accepted"

# The siege: bounded, it lets go by itself after 40 s.
lines_before=$(grep -c 'http:' "$TEST_DIR/site.log")
/usr/bin/python3 "$(dirname "$0")/hold-connections.py" 127.0.0.1 "$PORT" 200 50 40 > "$TEST_DIR/siege.out" 2>&1 &
siege=$!
wait_until 30 file_has "$TEST_DIR/siege.out" ready
ok $? "250 connections opened from 127.0.0.1"
code=$(curl -s -o "$TEST_DIR/status.json" -w '%{http_code}' --max-time 2 --interface 127.0.0.2 \
	"${AUTH[@]}" "$DAEMON_URL/v1/volumes")
is "$code" 200 "meanwhile an authenticated request from 127.0.0.2 is answered within 2 s"
wait "$siege"
held=$(sed -n 's/^held \([0-9]*\) .*/\1/p' "$TEST_DIR/siege.out")
[ -n "$held" ] && [ "$held" -le 24 ]
ok $? "  127.0.0.1 could hold no more than its share of connections ($(tail -n 1 "$TEST_DIR/siege.out"))"
closed=$(sed -n 's/.*closed-by-server \([0-9]*\)/\1/p' "$TEST_DIR/siege.out")
[ -n "$closed" ] && [ "$closed" -gt 0 ]
ok $? "  and ferryd closed the ones that stayed silent ($closed closed by the server)"
lines=$(( $(grep -c 'http:' "$TEST_DIR/site.log") - lines_before ))
[ "$lines" -lt 100 ]
ok $? "  the refusals wrote $lines log lines, not one each"
kill -0 "$DAEMON_PID" && [ "$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" "$DAEMON_URL/v1/volumes")" = 200 ]
ok $? "ferryd serves 127.0.0.1 again once the siege is over"

# Slowloris: a byte a second never trips an idle timeout; the header deadline (10 s) cuts it.
/usr/bin/python3 "$(dirname "$0")/hold-connections.py" 127.0.0.1 "$PORT" 0 3 40 > "$TEST_DIR/slow.out" 2>&1
is "$(sed -n 's/.*closed-by-server \([0-9]*\)/\1/p' "$TEST_DIR/slow.out")" 3 \
	"3 connections sending headers a byte a second are all closed by ferryd ($(tail -n 1 "$TEST_DIR/slow.out"))"
grep -q "took over 10 s for a handshake and headers" "$TEST_DIR/site.log"
ok $? "  and the log says why"

# raw_status BYTES-AFTER-TOKEN: the status line of a request whose Authorization header is the
# token followed by those bytes (a Python bytes literal), sent on a raw TLS connection.
raw_status() {
	/usr/bin/python3 - "$PORT" "$(cat "$TEST_DIR/token")" "$1" <<'PY'
import ast, socket, ssl, sys
context = ssl.create_default_context()
context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
tls = context.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5))
tls.sendall(b"GET /v1/volumes HTTP/1.1\r\nAuthorization: Bearer " + sys.argv[2].encode() +
            ast.literal_eval(sys.argv[3]) + b"\r\nHost: x\r\n\r\n")
print(tls.recv(100).split(b" ")[1].decode())
PY
}
is "$(raw_status "b''")" 200 "the token sent raw is accepted (the control)"
is "$(raw_status "b'\\x00junk'")" 401 "the token followed by a NUL and junk is refused"
is "$(raw_status "b'\\x00'")" 401 "the token followed by a NUL alone is refused"
stop_daemon "$DAEMON_PID"
exit $test_failed
