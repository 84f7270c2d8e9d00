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
DAEMON_PIDS=""	# every background process of the test: killed at exit
LOOP_DEVICES=""	# loop devices of the test (loop_device): detached at exit
test_number=0
test_failed=0

# The ferryd processes of the test (start_daemon, start_ferryd), checked at exit by
# ferryd_check: their logs must hold no sanitizer report, and each must have exited 0 unless the
# test killed it on purpose (kill9, or a FERRY_FAULT_EXIT_* hook in its environment).
FERRYD_PIDS=""
declare -A FERRYD_LOG=() FERRYD_STATUS=() FERRYD_ON_PURPOSE=()

# cleanup: the end of every test (lib-ceph.sh's and lib-cutover.sh's clean-ups end with it).
# ferryd processes still running get SIGTERM (their leak check runs at a clean exit), then
# ferryd_check; when it finds a problem, a last "not ok" line (beyond the plan, so that prove
# fails the test in any case) and exit status 1.
cleanup() {
	local verdict=0
	ferryd_finish
	ferryd_check || verdict=1
	for pid in $DAEMON_PIDS; do kill -9 "$pid" 2>/dev/null; done
	wait 2>/dev/null
	for loop in $LOOP_DEVICES; do losetup -d "$loop" 2>/dev/null; done
	if mountpoint -q "$TEST_DIR/full" 2>/dev/null; then umount "$TEST_DIR/full"; fi
	if [ "$verdict" = 1 ]; then
		ok 1 "every ferryd exited cleanly and logged no sanitizer report"
	fi
	if [ "$test_failed" = 0 ]; then rm -rf "$TEST_DIR"; else echo "# kept $TEST_DIR for inspection"; fi
	[ "$verdict" = 0 ] || exit 1
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
skip() {	# skip DESCRIPTION: a test that cannot run here, counted in the plan
	test_number=$((test_number + 1))
	echo "ok $test_number # skip $1"
}

# wait_until TIMEOUT CMD...: runs CMD every WAIT_INTERVAL seconds (default 0.1) until it
# succeeds (0) or TIMEOUT seconds have passed (1). Synchronization on a state, never on a guess.
wait_until() {
	local timeout=$1 now deadline
	shift
	now=${EPOCHREALTIME//[.,]/}
	deadline=$((now + timeout * 1000000))
	while :; do
		"$@" && return 0
		now=${EPOCHREALTIME//[.,]/}
		[ "$now" -lt "$deadline" ] || return 1
		sleep "${WAIT_INTERVAL:-0.1}"
	done
}
# file_has FILE PATTERN: FILE exists and has a line matching the grep PATTERN.
file_has() { grep -q -- "$2" "$1" 2>/dev/null; }

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

# start_ferryd LOG [ferryd args]: ferryd in the background, its stderr appended to LOG; sets
# FERRYD_PID. It is checked at exit (see cleanup); a FERRY_FAULT_EXIT_* hook in its environment
# means it is meant to die.
start_ferryd() {
	local log=$1
	shift
	"$FERRYD" "$@" 2>> "$log" &
	FERRYD_PID=$!
	DAEMON_PIDS="$DAEMON_PIDS $FERRYD_PID"
	track_ferryd "$FERRYD_PID" "$log"
	if env | grep -q '^FERRY_FAULT_EXIT'; then FERRYD_ON_PURPOSE[$FERRYD_PID]=1; fi
}
# track_ferryd PID LOG: a ferryd started some other way (setsid, a sandbox) is checked at exit
# like one of start_ferryd's (its exit status only when it is a child of this shell).
track_ferryd() {
	FERRYD_PIDS="$FERRYD_PIDS $1"
	FERRYD_LOG[$1]=$2
}
# wait_listening PID STATE-DIR [SECONDS]: until ferryd PID has written STATE-DIR/ferryd.url
# (default 10 s); fails at once when it exits.
listening_or_gone() { [ -s "$2/ferryd.url" ] || ! kill -0 "$1" 2>/dev/null; }
wait_listening() {
	wait_until "${3:-10}" listening_or_gone "$1" "$2"
	[ -s "$2/ferryd.url" ]
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
	start_ferryd "$TEST_DIR/$name.log" --state-dir "$state" --listen "127.0.0.1:$port" \
		--token-file "$TEST_DIR/token" --tls-cert "$TEST_DIR/tls/server.pem" \
		--tls-key "$TEST_DIR/tls/server.key" "$@"
	DAEMON_PID=$FERRYD_PID
	if ! wait_listening "$DAEMON_PID" "$state"; then
		diag "ferryd $name did not start:"; sed 's/^/#   /' "$TEST_DIR/$name.log"
		return 1
	fi
	DAEMON_URL=$(cat "$state/ferryd.url")
}

# kill9 PID: SIGKILL and reap (a ferryd so killed is killed on purpose: its status is not checked).
kill9() {
	[ -n "${FERRYD_LOG[$1]+set}" ] && FERRYD_ON_PURPOSE[$1]=1
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# ferryd_finish: every ferryd of the test still running gets SIGCONT and SIGTERM and 30 s to
# exit; the exit status of each is kept in FERRYD_STATUS (124: it had to be killed).
ferryd_finish() {
	local pid
	for pid in $FERRYD_PIDS; do
		[ -z "${FERRYD_STATUS[$pid]+set}" ] || continue
		if kill -0 "$pid" 2>/dev/null; then
			kill -CONT "$pid" 2>/dev/null
			kill -TERM "$pid" 2>/dev/null
			wait_for "$pid" 30
		else
			wait "$pid" 2>/dev/null
			FERRYD_STATUS[$pid]=$?
		fi
	done
}
# ferryd_check: 0 when no ferryd log holds a sanitizer report (AddressSanitizer, LeakSanitizer,
# UBSan's "runtime error:") and no ferryd exited non-zero that the test did not kill on purpose;
# else 1, each problem on a diag line. 127 is no status (a test reaped it with its own wait).
ferryd_check() {
	local pid log status problems=0 seen=" "
	for pid in $FERRYD_PIDS; do
		log=${FERRYD_LOG[$pid]}
		case $seen in *" $log "*) ;; *)
			seen="$seen$log "
			if grep -q -e 'AddressSanitizer' -e 'LeakSanitizer' -e 'runtime error:' "$log" 2>/dev/null; then
				diag "sanitizer report in $log:"
				grep -m 3 -A 8 -e 'AddressSanitizer' -e 'LeakSanitizer' -e 'runtime error:' "$log" |
					head -n 30 | sed 's/^/#   /'
				problems=1
			fi ;;
		esac
		status=${FERRYD_STATUS[$pid]:-127}
		if [ -z "${FERRYD_ON_PURPOSE[$pid]+set}" ] && [ "$status" != 0 ] && [ "$status" != 127 ]; then
			diag "ferryd $pid (log $log) exited with status $status, and the test did not kill it"
			tail -n 5 "$log" 2>/dev/null | sed 's/^/#   /'
			problems=1
		fi
	done
	return "$problems"
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

# stop_daemon PID: SIGTERM and wait; returns ferryd's exit status (checked at exit too).
stop_daemon() {
	local rc
	kill -TERM "$1" 2>/dev/null
	wait "$1"
	rc=$?
	[ -z "${FERRYD_LOG[$1]+set}" ] || FERRYD_STATUS[$1]=$rc
	return "$rc"
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
# copy_fg SOURCE NAME [args]: the same in the foreground, JSON on stdout, stderr appended to
# $COPY_ERR (default $TEST_DIR/copy.err).
copy_fg() {
	local source=$1 name=$2
	shift 2
	copy_command
	"${COPY_ARGS[@]}" "$@" "$source" "$name" 2>> "${COPY_ERR:-$TEST_DIR/copy.err}"
}
copy_bg() {
	local source=$1 name=$2 out=$3; shift 3
	copy_command
	"${COPY_ARGS[@]}" "$@" "$source" "$name" > "$out" 2> "$out.err" &
	COPY_PID=$!
}

# wait_for PID SECONDS: waits for a background child; its exit status, or 124 after a timeout
# (then the child is killed). A ferryd's status is kept for the check at exit.
exited() { ! kill -0 "$1" 2>/dev/null; }
wait_for() {
	local pid=$1 rc
	if ! wait_until "$2" exited "$pid"; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		rc=124
	else
		wait "$pid" 2>/dev/null
		rc=$?
	fi
	[ -z "${FERRYD_LOG[$pid]+set}" ] || FERRYD_STATUS[$pid]=$rc
	return "$rc"
}

# volume_field NAME KEY: KEY of the volume's current transfer per `ferry status --json`
# ("none" when there is no such volume).
volume_field() {
	"$FERRY" status --daemon "$DAEMON_URL" --token-file "$TEST_DIR/token" \
		--cacert "$TEST_DIR/tls/ca.pem" --json |
		jq -r --arg n "$1" --arg k "$2" '[.volumes[] | select(.name == $n)] |
			if length == 0 then "none" else .[0].transfer[$k] // "none" end'
}

# wait_durable NAME COUNT [SECONDS]: until the receiver holds at least COUNT durable segments of
# NAME's current transfer (default 60 s): a copy is cut at a known state, not after a guessed sleep.
volume_durable_at_least() {
	local durable
	durable=$(volume_field "$1" segments_durable)
	[ "$durable" != none ] && [ "$durable" -ge "$2" ] 2>/dev/null
}
wait_durable() { WAIT_INTERVAL=0.2 wait_until "${3:-60}" volume_durable_at_least "$1" "$2"; }

# json_field JSON KEY: a scalar of a JSON object, the top level's KEY or else the first KEY
# inside it; "" when there is none (or JSON is not JSON).
json_field() {
	jq -r --arg k "$2" 'first(if type == "object" and has($k) then .[$k] else empty end,
		(.. | objects | select(has($k)) | .[$k]) | scalars)' <<< "$1" 2>/dev/null
}
# json_lines [FILE]: the lines of FILE (or stdin) that are JSON documents (a JSON-lines log, or an
# event stream's data), each on a line, compact; a line cut short is left out.
json_lines() { jq -R -c 'fromjson? // empty' "$@"; }
# json_error JSON: the error code of an answer {"error": {"code": ...}} ("" when none).
json_error() { jq -r '.error.code // empty' <<< "$1" 2>/dev/null; }

# running_threads PID...: threads of these processes that still run (a zombie's do not).
running_threads() {
	local pid
	for pid in "$@"; do cat /proc/"$pid"/task/*/stat 2>/dev/null; done |
		awk '{ sub(/.*\) /, ""); if ($1 != "Z" && $1 != "X") n++ } END { print n + 0 }'
}

# make_image PATH MiB: a mix of random, text-like and zero data, with a hole in the middle.
make_image() {
	path=$1 size_mib=$2 third=$(( $2 / 3 ))
	head -c $((third * 1048576)) /dev/urandom > "$path"
	base64 /dev/urandom | head -c $((third * 1048576)) >> "$path"
	truncate -s $((size_mib * 1048576)) "$path"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# api METHOD PATH [JSON]: a /v1 call to $DAEMON_URL with the test token; the answer on stdout.
api() {
	curl -sS --cacert "$TEST_DIR/tls/ca.pem" -H "Authorization: Bearer $(cat "$TEST_DIR/token")" \
		-X "$1" ${3:+-H "Content-Type: application/json" --data "$3"} "$DAEMON_URL$2"
}

# loop_device FILE: a loop device over FILE, detached at exit; sets LOOP ("" without root).
loop_device() {
	LOOP=$(losetup --find --show "$1" 2>/dev/null) || LOOP=""
	[ -n "$LOOP" ] && [ -b "$LOOP" ] || { LOOP=""; return 1; }
	LOOP_DEVICES="$LOOP_DEVICES $LOOP"
}
