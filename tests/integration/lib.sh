# Shared helpers for the TAP integration tests: real ferryd processes on 127.0.0.1, a test CA
# and certificate made with openssl, and the ferry CLI. Source it from a .t script.
# FERRY_BIN points at the binaries under test (make check sets it to the sanitizer build).
set -u
FERRY_BIN=${FERRY_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
FERRY="$FERRY_BIN/ferry"
FERRYD="$FERRY_BIN/ferryd"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

TEST_DIR=$(mktemp -d /tmp/ferry-test.XXXXXX)
export FERRY_STATE_DIR="$TEST_DIR/cli"
DAEMON_PIDS=""
test_number=0
test_failed=0

cleanup() {
	for pid in $DAEMON_PIDS; do kill -9 "$pid" 2>/dev/null; done
	wait 2>/dev/null
	if mountpoint -q "$TEST_DIR/full" 2>/dev/null; then umount "$TEST_DIR/full"; fi
	if [ "$test_failed" = 0 ]; then rm -rf "$TEST_DIR"; else echo "# kept $TEST_DIR for inspection"; fi
}
trap cleanup EXIT

plan() { echo "1..$1"; }
ok() {	# ok CONDITION-EXIT-STATUS DESCRIPTION
	test_number=$((test_number + 1))
	if [ "$1" = 0 ]; then echo "ok $test_number - $2"; else echo "not ok $test_number - $2"; test_failed=1; fi
}
is() {	# is GOT EXPECTED DESCRIPTION
	test_number=$((test_number + 1))
	if [ "$1" = "$2" ]; then echo "ok $test_number - $3"
	else echo "not ok $test_number - $3"; echo "#   got:      '$1'"; echo "#   expected: '$2'"; test_failed=1; fi
}
diag() { echo "# $*"; }

# make_tls DIR: a test CA and a server certificate for 127.0.0.1/localhost signed by it.
make_tls() {
	dir=$1
	mkdir -p "$dir"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=ferry test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/ext.cnf"
	openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
		-CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.pem" 2>/dev/null
}

# start_daemon NAME [extra ferryd args]: starts ferryd with state in $TEST_DIR/NAME, using the
# test certificate; sets DAEMON_URL and DAEMON_PID. The token is $TEST_DIR/token.
start_daemon() {
	name=$1; shift
	state="$TEST_DIR/$name"
	[ -f "$TEST_DIR/token" ] || openssl rand -hex 24 > "$TEST_DIR/token"
	[ -f "$TEST_DIR/tls/ca.pem" ] || make_tls "$TEST_DIR/tls"
	mkdir -p "$state"
	rm -f "$state/ferryd.url"
	port=${DAEMON_PORT:-0}
	"$FERRYD" --state-dir "$state" --listen "127.0.0.1:$port" --token-file "$TEST_DIR/token" \
		--tls-cert "$TEST_DIR/tls/server.pem" --tls-key "$TEST_DIR/tls/server.key" "$@" \
		2>> "$TEST_DIR/$name.log" &
	DAEMON_PID=$!
	DAEMON_PIDS="$DAEMON_PIDS $DAEMON_PID"
	for _ in $(seq 1 100); do
		[ -s "$state/ferryd.url" ] && break
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -s "$state/ferryd.url" ]; then
		diag "ferryd $name did not start:"; sed 's/^/#   /' "$TEST_DIR/$name.log"
		return 1
	fi
	DAEMON_URL=$(cat "$state/ferryd.url")
}

# free_port: a TCP port for a ferryd that must come back on the same port after a restart:
# below the kernel's ephemeral range (32768 and up), so that no outgoing connection ever holds
# it, and not listened on now. A random one in the ephemeral range once collided.
free_port() {
	local port
	for _ in $(seq 1 100); do
		port=$(( (RANDOM % 12000) + 20000 ))
		ss -Htln "sport = :$port" 2>/dev/null | grep -q . || { echo "$port"; return 0; }
	done
	return 1
}

# stop_daemon PID: SIGTERM and wait; returns ferryd's exit status.
stop_daemon() {
	kill -TERM "$1" 2>/dev/null
	wait "$1"
}

# ferry_copy URL SOURCE NAME [args]: ferry copy with the test token and CA, JSON on stdout.
ferry_copy() {
	url=$1 source=$2 name=$3; shift 3
	"$FERRY" copy --to "$url" --token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem" \
		--json "$@" "$source" "$name"
}

# copy_bg SOURCE NAME OUT [args]: ferry copy in the background, JSON into OUT, stderr into
# OUT.err; sets COPY_PID. It runs ferry itself, not a shell function: kill -9 of a backgrounded
# function's $! would kill only its subshell and leave ferry running. COPY_OPTIONS (an array)
# adds options to every copy of the script.
copy_command() {
	COPY_ARGS=("$FERRY" copy --to "$DAEMON_URL" --token-file "$TEST_DIR/token"
		--cacert "$TEST_DIR/tls/ca.pem" --json ${COPY_OPTIONS[@]+"${COPY_OPTIONS[@]}"})
}
copy_bg() {
	local source=$1 name=$2 out=$3; shift 3
	copy_command
	"${COPY_ARGS[@]}" "$@" "$source" "$name" > "$out" 2> "$out.err" &
	COPY_PID=$!
}

# wait_for PID SECONDS: waits for a background child; its exit status, or 124 after a timeout
# (then the child is killed).
wait_for() {
	local pid=$1 limit=$(($2 * 10))
	for _ in $(seq 1 "$limit"); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	wait "$pid" 2>/dev/null
}

# volume_field NAME KEY: KEY of the volume's current transfer per `ferry status --json`
# ("none" when there is no such volume).
volume_field() {
	"$FERRY" status --daemon "$DAEMON_URL" --token-file "$TEST_DIR/token" \
		--cacert "$TEST_DIR/tls/ca.pem" --json |
		perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>);
			for (@{$d->{volumes}}) { if ($_->{name} eq $ARGV[0]) {
				print $_->{transfer}{$ARGV[1]} // "none"; exit } }
			print "none"' "$1" "$2"
}

# wait_durable NAME COUNT [SECONDS]: until the receiver holds at least COUNT durable segments of
# NAME's current transfer (default 60 s): a copy is cut at a known state, not after a guessed sleep.
wait_durable() {
	local durable
	for _ in $(seq 1 $((${3:-60} * 5))); do
		durable=$(volume_field "$1" segments_durable)
		[ "$durable" != none ] && [ "$durable" -ge "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

# json_field JSON KEY: a top-level scalar of a one-line JSON object (numbers, strings, bools).
json_field() {
	printf '%s' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p" | head -n 1
}

# make_image PATH MiB: a mix of random, text-like and zero data, with a hole in the middle.
make_image() {
	path=$1 size_mib=$2 third=$(( $2 / 3 ))
	head -c $((third * 1048576)) /dev/urandom > "$path"
	base64 /dev/urandom | head -c $((third * 1048576)) >> "$path"
	truncate -s $((size_mib * 1048576)) "$path"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
