#!/bin/sh
# bench/copy-bench.sh: how fast ferry copies a disk image, next to cp and rsync, in one run.
#
#   make bench                       (or: sh bench/copy-bench.sh)
#
# Makes an image in a temporary folder (one third random, one third log-like text, one third
# written zeros), then copies it, each time to a fresh destination on the same filesystem:
#   cp                 the local limit
#   rsync              to an rsync daemon on 127.0.0.1 (plain, then -z)
#   ferry copy         to a ferryd on 127.0.0.1 (TLS, test CA, token), --json
#   ferry copy resume  a bandwidth-limited copy killed with SIGKILL at ~40%, then re-run
#   WAN link           rsync, rsync -z and ferry copy again, each over an emulated 1 Gbit/s
#                      link with 10 ms round-trip time (see below)
# and prints a table (seconds, MB/s, wire bytes, CPU seconds), ratios and the resume numbers.
# All ferry copies must be byte-identical to the source (SHA-256), cp and rsync copies too
# (cmp); otherwise the benchmark fails (exit 1). Only 127.0.0.1 is contacted.
#
# The WAN link: on raw loopback the CPU decides, and ferry spends it on zstd and TLS where rsync
# does not; between datacenters the link decides, and ferry sends less than half the bytes of
# rsync (about as many as rsync -z) and has a round trip per segment. The section makes a
# private network namespace (ip netns add ferry-bench-PID), brings its loopback up with a
# 1500-byte MTU (a WAN's, not loopback's 64 KiB: TCP's initial window and growth are counted in
# segments), and shapes its `lo` with one netem qdisc (delay 5 ms per packet = 10 ms round trip,
# rate 1gbit). Every packet crosses that lo once, so all of the traffic, still to and from
# 127.0.0.1, sees the link. The rsync daemon, ferryd and both clients run inside it
# (ip netns exec). The namespace is deleted on exit, also on failure. Kernels without netem
# (CONFIG_NET_SCH_NETEM off) get the same link another way: a tbf qdisc for the rate and an
# NFQUEUE delay line for the latency (an iptables rule in the namespace's raw PREROUTING hands
# each arriving packet to a small python3 program, run SCHED_FIFO, that accepts it DELAY ms
# later; packets are not copied to it). The round trip is checked with TCP handshakes to the rsync
# daemon as the kernel timed them (and `ping -U` when there is ping), and the delay is corrected
# once if it is off by more than 5%. The section is skipped, with a note and not as a failure,
# when BENCH_WAN=0, when not root, or when neither way is available (no ip/tc, netns, netem,
# nor tbf+iptables+python3).
#
# Environment:
#   BENCH_SIZE_MIB        image size in MiB (default 2048, at least 24)
#   BENCH_JSON            also write the results as one JSON object to this file
#   BENCH_TMPDIR          where the temporary folder goes (default $TMPDIR or /tmp)
#   BENCH_KEEP=1          keep the temporary folder (logs, images) for inspection
#   BENCH_FERRY_ARGS      extra arguments for all ferry copy runs (e.g. "--jobs 2")
#   BENCH_RESUME_BWLIMIT  --bwlimit of the run that gets killed (default: computed, see below)
#   BENCH_RESUME_AT       percent of segments durable at which it is killed (default 40)
#   BENCH_TIMEOUT         seconds any one copy may take before it counts as hung (default 900)
#   FERRY_BIN             folder with ferry and ferryd (default: bin/ of this tree)
#   BENCH_WAN=0           skip the WAN-link section
#   BENCH_WAN_RATE        the emulated link's rate, in tc's units (default 1gbit)
#   BENCH_WAN_DELAY_MS    one-way delay in ms (default 5, i.e. 10 ms round trip)
#   BENCH_WAN_MTU         the namespace's loopback MTU (default 1500)
#   BENCH_WAN_SIZE_MIB    copy a smaller image over the WAN link (default: the whole image); it
#                         keeps the mix: thirds of random, log-like text and zeros
#   BENCH_WAN_METHOD      auto (default: netem, else tbf+nfqueue), netem or nfqueue
#
# Caches: nothing is dropped from the page cache (that needs root and disturbs CI machines);
# the image is read once before any timing, so every tool starts from the same warm cache.
# Dirty pages are flushed with an untimed `sync` before each run, so no tool pays for the
# previous one's writeback.

# Needs bash (arrays are not used, but $BASHPID, RANDOM and `local` are): re-exec under it.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -u
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
FERRY_BIN=${FERRY_BIN:-$ROOT/bin}
FERRY="$FERRY_BIN/ferry"
FERRYD="$FERRY_BIN/ferryd"
SIZE_MIB=${BENCH_SIZE_MIB:-2048}
RESUME_AT=${BENCH_RESUME_AT:-40}
COPY_TIMEOUT=${BENCH_TIMEOUT:-900}
FERRY_EXTRA=${BENCH_FERRY_ARGS:-}
WAN=${BENCH_WAN:-1}
WAN_RATE=${BENCH_WAN_RATE:-1gbit}
WAN_DELAY_MS=${BENCH_WAN_DELAY_MS:-5}
WAN_MTU=${BENCH_WAN_MTU:-1500}
WAN_SIZE_MIB=${BENCH_WAN_SIZE_MIB:-$SIZE_MIB}
WAN_METHOD_WANTED=${BENCH_WAN_METHOD:-auto}

# Nothing but 127.0.0.1: no proxies (libcurl and rsync honour these), no default daemon.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY RSYNC_PROXY \
	RSYNC_CONNECT_PROG RSYNC_PASSWORD FERRY_DAEMON
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

die() { echo "copy-bench: $*" >&2; exit 1; }
note() { echo "# $*"; }

# ---- preconditions ----------------------------------------------------------------------------

case $SIZE_MIB in '' | *[!0-9]*) die "BENCH_SIZE_MIB=$SIZE_MIB is not a number of MiB" ;; esac
[ "$SIZE_MIB" -ge 24 ] || die "BENCH_SIZE_MIB must be at least 24"
case $RESUME_AT in '' | *[!0-9]*) die "BENCH_RESUME_AT=$RESUME_AT is not a percentage" ;; esac
{ [ "$RESUME_AT" -ge 5 ] && [ "$RESUME_AT" -le 90 ]; } || die "BENCH_RESUME_AT must be 5 to 90"
case $WAN in 0 | 1) ;; *) die "BENCH_WAN=$WAN: give 0 (skip the WAN section) or 1" ;; esac
printf '%s' "$WAN_RATE" | grep -Eqx '[0-9]+(\.[0-9]+)?([kmgt]?bit|[kmgt]?bps)' ||
	die "BENCH_WAN_RATE=$WAN_RATE: give a tc rate such as 1gbit, 500mbit or 100mbit"
printf '%s' "$WAN_DELAY_MS" | grep -Eqx '[0-9]+(\.[0-9]+)?' ||
	die "BENCH_WAN_DELAY_MS=$WAN_DELAY_MS is not a number of milliseconds"
case $WAN_MTU in '' | *[!0-9]*) die "BENCH_WAN_MTU=$WAN_MTU is not a number of bytes" ;; esac
{ [ "$WAN_MTU" -ge 576 ] && [ "$WAN_MTU" -le 65536 ]; } || die "BENCH_WAN_MTU must be 576 to 65536"
case $WAN_SIZE_MIB in '' | *[!0-9]*) die "BENCH_WAN_SIZE_MIB=$WAN_SIZE_MIB is not a number of MiB" ;; esac
{ [ "$WAN_SIZE_MIB" -ge 24 ] && [ "$WAN_SIZE_MIB" -le "$SIZE_MIB" ]; } ||
	die "BENCH_WAN_SIZE_MIB must be 24 to BENCH_SIZE_MIB ($SIZE_MIB)"
case $WAN_METHOD_WANTED in auto | netem | nfqueue) ;;
*) die "BENCH_WAN_METHOD=$WAN_METHOD_WANTED: give auto, netem or nfqueue" ;;
esac
if [ ! -x "$FERRY" ] || [ ! -x "$FERRYD" ]; then
	die "$FERRY_BIN/ferry and ferryd are missing: build them first (make all)"
fi
for tool in rsync zstd openssl cp cmp sha256sum awk dd date; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is needed and not installed"
done
[ -r /proc/self/stat ] || die "/proc is needed to measure CPU time"
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
TIMEOUT=""
command -v timeout >/dev/null 2>&1 && TIMEOUT="timeout --foreground $COPY_TIMEOUT"

SIZE=$((SIZE_MIB * 1048576))
BENCH_T0=$(date +%s%N)
WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/ferry-bench.XXXXXX") ||
	die "cannot make a temporary folder"
IMG="$WORK/image.raw"

FERRYD_PID="" RSYNCD_PID="" RESUME_PID=""
# The WAN section: its namespace (made when WAN_NS_MADE=1), the delay line's pid (nfqueue way),
# the ss sampler's pid, and NSX, the prefix that runs a command inside the namespace ("" = here).
WAN_NS="ferry-bench-$$" WAN_NS_MADE=0 WAN_HELPER_PID="" WAN_SS_PID="" NSX=""

# The process ids of PID's children, grandchildren, ... (from /proc, deepest last).
descendants() {
	local child
	for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		echo "$child"
		descendants "$child"
	done
}

stop_pid() {	# stop_pid PID: SIGTERM, then SIGKILL after 5 s; its children first.
	local pid=$1 child
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	for child in $(descendants "$pid"); do kill -9 "$child" 2>/dev/null; done
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

wan_teardown() {	# deletes the WAN namespace, and anything of this run still inside it
	local pid
	[ "$WAN_NS_MADE" = 1 ] || return 0
	for pid in $(ip netns pids "$WAN_NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
	ip netns del "$WAN_NS" 2>/dev/null ||
		echo "copy-bench: warning: could not delete network namespace $WAN_NS" >&2
	WAN_NS_MADE=0
}

cleanup() {
	local status=$? pid child
	trap - EXIT INT TERM HUP
	[ -n "$RESUME_PID" ] && { kill -9 "$RESUME_PID"; wait "$RESUME_PID"; } 2>/dev/null
	stop_pid "$RSYNCD_PID"
	stop_pid "$FERRYD_PID"
	stop_pid "$WAN_SS_PID"
	stop_pid "$WAN_HELPER_PID"
	{
		for pid in $(jobs -p); do
			for child in $(descendants "$pid"); do kill -9 "$child"; done
			kill -9 "$pid"
			wait "$pid"
		done
	} 2>/dev/null
	wan_teardown
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "# kept $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- helpers ----------------------------------------------------------------------------------

now_ns() { date +%s%N; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }	# calc FORMAT EXPRESSION

# utime+stime (+cutime+cstime with "all") of PID in clock ticks; 0 when it is gone.
cpu_ticks() {
	local stat rest mode=${2:-}
	read -r stat 2>/dev/null </proc/"$1"/stat || { echo 0; return; }
	rest=${stat##*) }
	set -- $rest	# $1 is field 3 (state): utime is $12, stime $13, cutime $14, cstime $15
	if [ "$mode" = all ]; then echo $(( ${12} + ${13} + ${14} + ${15} )); else echo $(( ${12} + ${13} )); fi
}
cpu_ticks_all() { cpu_ticks "$1" all; }

# lo_bytes PID: bytes received so far on the loopback interface of PID's network namespace:
# everything sent over 127.0.0.1 in both directions, TCP/IP headers included, by any process
# (so keep the machine otherwise quiet). PID is one of the daemons, so that the WAN section
# counts its own namespace's lo.
lo_bytes() {
	awk '{ sub(/^ +/, "") } /^lo:/ { sub(/^lo: */, ""); split($0, f, " "); print f[1]; n = 1 }
		END { if (!n) print 0 }' /proc/"${1:-self}"/net/dev 2>/dev/null || echo 0
}

# measure NAME COMMAND...: runs COMMAND with stdout/stderr in $WORK/NAME.out/.err; sets M_RC,
# M_NS (wall nanoseconds) and M_TICKS (CPU ticks of COMMAND and everything it waited for).
measure() {
	local name=$1 t0 t1
	shift
	t0=$(now_ns)
	(
		"$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
		rc=$?
		read -r stat </proc/$BASHPID/stat
		rest=${stat##*) }
		set -- $rest
		echo "$rc $(( ${14} + ${15} ))" >"$WORK/$name.cpu"
	) &
	wait $!	# in the background, so that a signal to this script is handled at once
	t1=$(now_ns)
	read -r M_RC M_TICKS <"$WORK/$name.cpu"
	M_NS=$((t1 - t0))
}

# flush: untimed sync so the next run starts without someone else's dirty pages; sets FLUSH_S.
flush() {
	local t0
	t0=$(now_ns)
	sync
	FLUSH_S=$(calc %.2f "($(now_ns) - $t0) / 1e9")
}

# json_field JSON KEY: a top-level scalar of a one-line JSON object.
json_field() {
	printf '%s' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p" | head -n 1
}

show_log() {	# show_log FILE: the last lines of a log, indented, on stderr
	[ -s "$1" ] && tail -n 15 "$1" | sed 's/^/#   /' >&2
	return 0
}

# ---- the image --------------------------------------------------------------------------------

# Log-like text: timestamps, hosts, services, levels, words from a small vocabulary, hex ids and
# numbers. zstd -1 gets about 3:1 on it, like real service logs with ids in them; different
# seeds give different text.
gen_text() {	# gen_text SEED BYTES
	awk -v seed="$1" -v limit="$2" '
	BEGIN {
		srand(seed)
		n = split("the a of to and in is for on with that by this from at as be are was it " \
			"not or an have has request response connection server client timeout retry " \
			"volume segment replica snapshot disk block write read flush sync commit " \
			"transaction checkpoint error warning failed succeeded started stopped user " \
			"session token cache miss hit queue worker thread pool backend frontend database " \
			"index table query latency throughput bytes packets dropped accepted closed " \
			"opened mounted unmounted device kernel module service daemon process memory cpu " \
			"load average interval schedule job task batch upload download archive backup " \
			"restore primary secondary standby failover heartbeat lease", w, " ")
		split("INFO INFO INFO INFO DEBUG DEBUG WARN ERROR", lv, " ")
		split("api gateway storage auth billing search ingest scheduler", sv, " ")
		t = 1700000000 + seed * 1000000
		bytes = 0
		while (bytes < limit) {
			t += int(rand() * 3)
			line = sprintf("2024-%02d-%02dT%02d:%02d:%02d.%03dZ host-%02d %s[%d]: %s",
				int(t / 2592000) % 12 + 1, int(t / 86400) % 28 + 1, int(t / 3600) % 24,
				int(t / 60) % 60, t % 60, int(rand() * 1000), int(rand() * 40),
				sv[int(rand() * 8) + 1], 1000 + int(rand() * 30000), lv[int(rand() * 8) + 1])
			k = 4 + int(rand() * 10)
			for (i = 0; i < k; i++)
				line = line " " w[int(rand() * n) + 1]
			line = line sprintf(" id=%08x latency=%dms size=%d", int(rand() * 4294967295),
				int(rand() * 2000), int(rand() * 1048576))
			print line
			bytes += length(line) + 1
		}
	}' 2>/dev/null
}

make_image() {
	local third=$((SIZE_MIB / 3)) text_a text_b zero_mib pids="" pid failed=0 size blocks
	text_a=$((third / 2))
	text_b=$((third - text_a))
	zero_mib=$((SIZE_MIB - 2 * third))
	RANDOM_BYTES=$((third * 1048576)) TEXT_BYTES=$((third * 1048576))
	ZERO_BYTES=$((zero_mib * 1048576))
	: >"$IMG" || die "cannot write $IMG"
	# The four regions are written in parallel, each at its offset.
	dd if=/dev/urandom of="$IMG" bs=1M count="$third" iflag=fullblock conv=notrunc \
		status=none &
	pids="$pids $!"
	gen_text 1 $(((text_a + 1) * 1048576)) |
		dd of="$IMG" bs=1M seek="$third" count="$text_a" iflag=fullblock conv=notrunc \
			status=none &
	pids="$pids $!"
	gen_text 2 $(((text_b + 1) * 1048576)) |
		dd of="$IMG" bs=1M seek=$((third + text_a)) count="$text_b" iflag=fullblock \
			conv=notrunc status=none &
	pids="$pids $!"
	dd if=/dev/zero of="$IMG" bs=1M seek=$((2 * third)) count="$zero_mib" conv=notrunc \
		status=none &
	pids="$pids $!"
	for pid in $pids; do wait "$pid" || failed=1; done
	[ "$failed" = 0 ] || die "writing the image failed (disk full?)"
	read -r size blocks <<EOF
$(stat -c '%s %b' "$IMG")
EOF
	[ "$size" = "$SIZE" ] || die "image is $size bytes, not $SIZE"
	# Written zeros, not a hole: cp and rsync must read them like any other data.
	[ $((blocks * 512)) -ge $((SIZE - 1048576)) ] ||
		die "image is sparse ($((blocks * 512)) of $SIZE bytes allocated)"
}

# ---- daemons ----------------------------------------------------------------------------------

# A test CA and a server certificate for 127.0.0.1 signed by it, as tests/integration/lib.sh.
make_tls() {
	local dir=$1
	mkdir -p "$dir"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=ferry bench CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null &&
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/ext.cnf" &&
	openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
		-CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.pem" 2>/dev/null
}

# start_ferryd [NAME]: a ferryd with its state in $WORK/NAME (default ferryd), run with the $NSX
# prefix (inside the WAN namespace when set); sets FERRYD_PID, FERRYD_STATE and FERRY_URL.
start_ferryd() {
	local state="$WORK/${1:-ferryd}"
	if [ ! -s "$WORK/token" ]; then
		openssl rand -hex 24 >"$WORK/token" || die "openssl rand failed"
		make_tls "$WORK/tls" || die "making the test certificate failed"
	fi
	mkdir -p "$state" "$WORK/cli"
	FERRYD_STATE=$state
	# shellcheck disable=SC2086
	$NSX "$FERRYD" --state-dir "$state" --listen 127.0.0.1:0 --token-file "$WORK/token" \
		--tls-cert "$WORK/tls/server.pem" --tls-key "$WORK/tls/server.key" \
		2>>"$state.log" &
	FERRYD_PID=$!	# ferryd itself: ip netns exec execs it
	for _ in $(seq 1 100); do
		[ -s "$state/ferryd.url" ] && break
		kill -0 "$FERRYD_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -s "$state/ferryd.url" ]; then
		echo "copy-bench: ferryd did not start:" >&2
		show_log "$state.log"
		exit 1
	fi
	FERRY_URL=$(cat "$state/ferryd.url")
	case $FERRY_URL in
	https://127.0.0.1:[0-9]*) ;;
	*) die "ferryd reports $FERRY_URL, expected https://127.0.0.1:PORT" ;;
	esac
	export FERRY_STATE_DIR="$WORK/cli"	# the CLI's own catalog, not ~/.local/state
}

start_rsyncd() {
	local port conf="$WORK/rsyncd.conf"
	mkdir -p "$WORK/rsync-dst"
	{
		echo "use chroot = no"
		echo "address = 127.0.0.1"
		echo "reverse lookup = no"
		echo "log file = $WORK/rsyncd.log"
		echo "[bench]"
		echo "  path = $WORK/rsync-dst"
		echo "  read only = no"
		if [ "$(id -u)" = 0 ]; then
			echo "  uid = 0"
			echo "  gid = 0"
		fi
	} >"$conf"
	for _ in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 40000))
		# shellcheck disable=SC2086
		$NSX rsync --daemon --no-detach --config="$conf" --address=127.0.0.1 --port="$port" \
			2>>"$WORK/rsyncd.err" &
		RSYNCD_PID=$!	# (with NSX too: ip netns exec execs rsync)
		for _ in $(seq 1 50); do
			kill -0 "$RSYNCD_PID" 2>/dev/null || break
			# shellcheck disable=SC2086
			if $NSX rsync --contimeout=2 "rsync://127.0.0.1:$port/" >/dev/null 2>&1; then
				RSYNC_PORT=$port
				return 0
			fi
			sleep 0.1
		done
		stop_pid "$RSYNCD_PID"	# port taken, or it never answered: try another
		RSYNCD_PID=""
	done
	echo "copy-bench: the rsync daemon did not start:" >&2
	show_log "$WORK/rsyncd.err"
	show_log "$WORK/rsyncd.log"
	exit 1
}

# Waits until the rsync daemon has reaped its per-connection children, so that their CPU time
# is in its cutime/cstime.
rsyncd_settle() {
	for _ in $(seq 1 100); do
		[ -z "$(descendants "$RSYNCD_PID")" ] && return 0
		sleep 0.1
	done
	echo "copy-bench: warning: rsync daemon children still running; CPU may be low" >&2
}

ferry_copy() {	# ferry_copy NAME [args]: ferry copy of $RUN_IMG as volume NAME, JSON on stdout
	local name=$1
	shift
	# shellcheck disable=SC2086
	$TIMEOUT $NSX "$FERRY" copy --to "$FERRY_URL" --token-file "$WORK/token" \
		--cacert "$WORK/tls/ca.pem" --json --no-progress $FERRY_EXTRA "$@" "$RUN_IMG" "$name"
}

ferry_status_json() {
	"$FERRY" status --daemon "$FERRY_URL" --token-file "$WORK/token" \
		--cacert "$WORK/tls/ca.pem" --json 2>/dev/null
}

# durable_segments NAME: "DURABLE TOTAL" of volume NAME from ferry status --json.
durable_segments() {
	ferry_status_json | awk -v RS='"name":"' -v name="$1" '
		index($0, name "\"") == 1 {
			d = t = ""
			if (match($0, /"segments_durable":[0-9]+/))
				d = substr($0, RSTART + 19, RLENGTH - 19)
			if (match($0, /"segments_total":[0-9]+/))
				t = substr($0, RSTART + 17, RLENGTH - 17)
			print d, t
			exit
		}'
}

# ---- the WAN link -----------------------------------------------------------------------------

# rate_bytes RATE: a tc rate (1gbit, 500mbit, 100mbps...) in bytes per second.
rate_bytes() {
	printf '%s\n' "$1" | awk '{
		n = $0 + 0; u = $0; sub(/^[0-9.]+/, "", u)
		m["bit"] = 1 / 8; m["kbit"] = 1e3 / 8; m["mbit"] = 1e6 / 8; m["gbit"] = 1e9 / 8
		m["tbit"] = 1e12 / 8; m["bps"] = 1; m["kbps"] = 1e3; m["mbps"] = 1e6; m["gbps"] = 1e9
		m["tbps"] = 1e12
		printf "%.0f\n", n * m[u] }'
}

# The delay line of the nfqueue way: holds each packet that the namespace's raw PREROUTING rule
# queues for HOLD ms, then accepts it (in arrival order, batch verdicts). Packets stay in the
# kernel (copy mode "meta"); GSO packets are queued whole.
write_delay_line() {
	cat >"$1" <<'PY'
import os, select, signal, socket, struct, sys, time

queue, hold = int(sys.argv[1]), float(sys.argv[2]) / 1000.0
NFQ = 3 << 8	# NFNL_SUBSYS_QUEUE
MSG_PACKET, MSG_CONFIG, MSG_VERDICT_BATCH = 0, 2, 3
seq = 0

def attr(kind, data):
	return struct.pack("=HH", 4 + len(data), kind) + data + b"\0" * ((4 - len(data) % 4) % 4)

def send(sock, kind, attrs, flags=1):	# NLM_F_REQUEST (| NLM_F_ACK)
	global seq
	seq += 1
	body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
	sock.send(struct.pack("=IHHII", 16 + len(body), NFQ | kind, flags, seq, 0) + body)

def config(sock, attrs):	# a config message, checked through its netlink ACK
	send(sock, MSG_CONFIG, attrs, 1 | 4)
	data = sock.recv(65536)
	if struct.unpack_from("=IH", data)[1] == 2:	# NLMSG_ERROR
		error = struct.unpack_from("=i", data, 16)[0]
		if error:
			raise OSError(-error, "nfqueue config: " + os.strerror(-error))

sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)	# NETLINK_NETFILTER
sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)	# SO_RCVBUFFORCE
sock.setsockopt(270, 5, 1)	# SOL_NETLINK, NETLINK_NO_ENOBUFS
sock.bind((0, 0))
config(sock, [attr(1, struct.pack("!BBH", 1, 0, socket.AF_INET))])	# CMD_BIND
config(sock, [attr(2, struct.pack("!IB", 0, 1))])	# PARAMS: copy meta only
config(sock, [attr(3, struct.pack("!I", 100000))])	# QUEUE_MAXLEN
config(sock, [attr(5, struct.pack("!I", 4)), attr(4, struct.pack("!I", 4))])	# FLAGS: F_GSO
sock.setblocking(False)

stop = False
def on_term(signum, frame):
	global stop
	stop = True
signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)

pending, head, packets, clock = [], 0, 0, time.monotonic	# pending: (due, packet id)
print("ready", flush=True)
while not stop:
	timeout = 0.2	# so that SIGTERM is seen soon
	if head < len(pending):
		timeout = min(timeout, max(0.0, pending[head][0] - clock()))
	if select.select([sock], [], [], timeout)[0]:
		while True:
			try:
				data = sock.recv(65536)
			except BlockingIOError:
				break
			now, offset = clock(), 0
			while offset + 20 <= len(data):
				length, kind = struct.unpack_from("=IH", data, offset)
				if length < 16:
					break
				if kind == NFQ | MSG_PACKET:
					at, end = offset + 20, offset + length
					while at + 8 <= end:
						alen, atype = struct.unpack_from("=HH", data, at)
						if alen < 4:
							break
						if atype & 0x3FFF == 1:	# NFQA_PACKET_HDR, the packet id first
							pending.append((now + hold, struct.unpack_from("!I", data, at + 4)[0]))
							packets += 1
							break
						at += (alen + 3) & ~3
				offset += (length + 3) & ~3
	now, last = clock(), None
	while head < len(pending) and pending[head][0] <= now:
		last = pending[head][1]
		head += 1
	if last is not None:
		send(sock, MSG_VERDICT_BATCH, [attr(2, struct.pack("!II", 1, last))])	# NF_ACCEPT, ids <= last
		if head > 4096:
			del pending[:head]
			head = 0
print("packets %d" % packets, flush=True)
PY
}

# start_delay_line HOLD_MS: (re)starts the delay line in the namespace; sets WAN_HELPER_PID.
start_delay_line() {
	local rt=""
	stop_pid "$WAN_HELPER_PID"
	WAN_HELPER_PID=""
	# It stands for the network between two hosts: let it run before the copies competing
	# for the two CPUs, so that its hold time stays what was asked (it uses little CPU).
	chrt -f 50 true 2>/dev/null && rt="chrt -f 50"
	# shellcheck disable=SC2086
	ip netns exec "$WAN_NS" $rt python3 "$WORK/wan-delay.py" 0 "$1" >"$WORK/wan-delay.log" 2>&1 &
	WAN_HELPER_PID=$!	# python3 itself: ip netns exec and chrt exec it
	for _ in $(seq 1 100); do
		grep -q '^ready' "$WORK/wan-delay.log" 2>/dev/null && return 0
		kill -0 "$WAN_HELPER_PID" 2>/dev/null || break
		sleep 0.05
	done
	stop_pid "$WAN_HELPER_PID"
	WAN_HELPER_PID=""
	return 1
}

wan_give_up() {	# wan_give_up REASON: no WAN section
	WAN_SKIP=$1 WAN_METHOD=""
	stop_pid "$WAN_HELPER_PID"
	WAN_HELPER_PID=""
	wan_teardown
}

# wan_setup: the namespace and its link. Sets WAN_METHOD (netem or nfqueue) and WAN_HOLD_MS,
# or WAN_SKIP with the reason the section cannot run here.
wan_setup() {
	local err="$WORK/wan-setup.err" netem_error="" ipt burst
	WAN_SKIP="" WAN_METHOD="" WAN_HOLD_MS=$WAN_DELAY_MS WAN_IPTABLES=""
	if [ "$WAN" = 0 ]; then
		WAN_SKIP="BENCH_WAN=0"
		return
	fi
	if [ "$(id -u)" != 0 ]; then
		WAN_SKIP="not root (a network namespace and tc need root)"
		return
	fi
	for tool in ip tc; do
		command -v $tool >/dev/null 2>&1 || { WAN_SKIP="$tool (iproute2) is not installed"; return; }
	done
	if ! ip netns add "$WAN_NS" 2>"$err"; then
		WAN_SKIP="cannot make a network namespace: $(head -n 1 "$err")"
		return
	fi
	WAN_NS_MADE=1
	if ! ip -n "$WAN_NS" link set dev lo mtu "$WAN_MTU" up 2>"$err"; then
		wan_give_up "cannot bring up lo in the namespace: $(head -n 1 "$err")"
		return
	fi
	if [ "$WAN_METHOD_WANTED" != nfqueue ]; then
		if tc -n "$WAN_NS" qdisc add dev lo root netem delay "${WAN_DELAY_MS}ms" \
			rate "$WAN_RATE" limit 100000 2>"$err"; then
			WAN_METHOD=netem
			return
		fi
		netem_error="tc netem: $(head -n 1 "$err" | sed 's/^Error: //')"
		if [ "$WAN_METHOD_WANTED" = netem ]; then
			wan_give_up "no netem qdisc ($netem_error)"
			return
		fi
	fi
	# No netem: tbf for the rate (on lo's way out, like a NIC), the NFQUEUE delay line for the
	# latency (on the way in, after the sending socket let go of the packet).
	local why=${netem_error:+"no netem ($netem_error), and "}
	if ! command -v python3 >/dev/null 2>&1; then
		wan_give_up "${why}no python3 for the NFQUEUE delay line"
		return
	fi
	burst=$(rate_bytes "$WAN_RATE")
	burst=$((burst / 1000 > 150000 ? burst / 1000 : 150000))	# 1 ms, at least 2 GSO packets
	if ! tc -n "$WAN_NS" qdisc add dev lo root tbf rate "$WAN_RATE" burst "$burst" latency 50ms \
		2>"$err"; then
		wan_give_up "${why}no tbf qdisc either ($(head -n 1 "$err"))"
		return
	fi
	write_delay_line "$WORK/wan-delay.py"
	if ! start_delay_line "$WAN_HOLD_MS"; then
		wan_give_up "${why}the NFQUEUE delay line did not start: $(tail -n 1 "$WORK/wan-delay.log")"
		return
	fi
	for ipt in iptables iptables-legacy iptables-nft; do
		command -v "$ipt" >/dev/null 2>&1 || continue
		if ip netns exec "$WAN_NS" "$ipt" -w -t raw -A PREROUTING -i lo -j NFQUEUE \
			--queue-num 0 2>"$err"; then
			WAN_IPTABLES=$ipt
			break
		fi
	done
	if [ -z "$WAN_IPTABLES" ]; then
		wan_give_up "${why}no iptables with NFQUEUE for the delay line"
		return
	fi
	WAN_METHOD=nfqueue
}

# wan_set_hold MS: the one-way delay the emulator applies (a correction after the RTT check).
wan_set_hold() {
	WAN_HOLD_MS=$1
	if [ "$WAN_METHOD" = netem ]; then
		tc -n "$WAN_NS" qdisc change dev lo root netem delay "${1}ms" rate "$WAN_RATE" \
			limit 100000
	else
		start_delay_line "$1"
	fi
}

# wan_rtt PORT: the round trip in ms inside the namespace: the median of 5 TCP connects to
# 127.0.0.1:PORT, each as the kernel measured its handshake (SYN to SYN-ACK, in microseconds:
# ss -ti's rtt of the fresh connection), so no process wake-up is counted in.
wan_rtt() {
	# shellcheck disable=SC2016
	$NSX bash -c '
		for _ in 1 2 3 4 5; do
			exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
			ss -tinH state established "( dport = :$1 )" |
				sed -n "s/.* rtt:\([0-9.]*\)\/.*/\1/p" | head -n 1
			exec 3<&- 3>&-
			sleep 0.1
		done' rtt "$1" 2>/dev/null | sort -n | awk 'NR == 3 { print; n = 1 }
			END { if (!n) print "" }'
}

# wan_ping: ping -U's average round trip in ms inside the namespace ("" without ping). -U: from
# user to user, as the nfqueue way delays packets after the kernel stamped their arrival (plain
# ping would show one way only); so it includes ping's own wake-ups.
wan_ping() {
	command -v ping >/dev/null 2>&1 || return 0
	$NSX ping -U -n -q -c 5 -i 0.2 127.0.0.1 2>/dev/null |
		sed -n 's|^rtt min/avg/max/mdev = [0-9.]*/\([0-9.]*\)/.*|\1|p'
}

# wan_check_rtt PORT: checks the emulated round trip against 2 x BENCH_WAN_DELAY_MS and corrects
# the delay once when it is more than 5% off (the nfqueue way adds its wake-up time to each
# packet's). Sets WAN_RTT_FIRST, WAN_RTT, WAN_PING; returns 1 when it is still more than 25% off.
wan_check_rtt() {
	local target
	target=$(calc %.3f "2 * $WAN_DELAY_MS")
	WAN_RTT_FIRST=$(wan_rtt "$1")
	WAN_RTT=$WAN_RTT_FIRST
	[ -n "$WAN_RTT" ] || return 1
	if [ "$(calc %d "($WAN_RTT > 1.05 * $target + 0.2 || $WAN_RTT < 0.95 * $target - 0.2)")" = 1 ]; then
		wan_set_hold "$(calc %.3f "$WAN_HOLD_MS * $target / ($WAN_RTT > 0.01 ? $WAN_RTT : 0.01)")" ||
			return 1
		WAN_RTT=$(wan_rtt "$1")
		[ -n "$WAN_RTT" ] || return 1
	fi
	WAN_PING=$(wan_ping)
	[ "$(calc %d "($WAN_RTT > 1.25 * $target + 0.5 || $WAN_RTT < 0.75 * $target - 0.5)")" = 0 ]
}

# wan_watch_start NAME PORT: in the WAN section, the delay line's CPU so far and a sampler of the
# sending sockets' TCP state (ss -ti every 0.5 s, connections to PORT) into $WORK/wan-ss-NAME.log.
wan_watch_start() {
	[ -n "$NSX" ] || return 0
	W_EMU_BEFORE=0
	[ -n "$WAN_HELPER_PID" ] && W_EMU_BEFORE=$(cpu_ticks "$WAN_HELPER_PID")
	(
		while :; do
			date +%s.%N
			$NSX ss -tinH state established "( dport = :$2 )"
			sleep 0.5
		done
	) >"$WORK/wan-ss-$1.log" 2>/dev/null &
	WAN_SS_PID=$!
}

# wan_watch_stop NAME: sets W_EMU (CPU seconds of the delay line during the run) and W_TCP
# ("CONNS RTT_MS INFLIGHT_BYTES RWND_PCT SNDBUF_PCT": the most connections seen at once, the
# median smoothed RTT of all samples, the mean of the bytes in flight summed over the connections
# per sample, and the share of the connections' busy time that the receiver's window, or the
# sender's buffer, held them back, from each connection's last sample).
wan_watch_stop() {
	[ -n "$NSX" ] || return 0
	stop_pid "$WAN_SS_PID"
	WAN_SS_PID=""
	W_EMU=0.00
	[ -n "$WAN_HELPER_PID" ] &&
		W_EMU=$(calc %.2f "($(cpu_ticks "$WAN_HELPER_PID") - $W_EMU_BEFORE) / $CLK_TCK")
	W_TCP=$(awk '
		function flush_sample() { if (c > 0) { n++; sum += f; if (c > most) most = c } c = f = 0 }
		/^[0-9]+\.[0-9]+$/ { flush_sample(); next }
		/^[0-9]+ +[0-9]+ +127\.0\.0\.1:/ { conn = $3; next }
		/rtt:/ {
			c++; mss = 0; un = 0
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^rtt:/) { split(substr($i, 5), r, "/"); rtts[++nr] = r[1] + 0 }
				if ($i ~ /^mss:/) mss = substr($i, 5) + 0
				if ($i ~ /^unacked:/) un = substr($i, 9) + 0
				if ($i ~ /^busy:/) busy[conn] = substr($i, 6) + 0
				if ($i ~ /^rwnd_limited:/) rwnd[conn] = substr($i, 14) + 0
				if ($i ~ /^sndbuf_limited:/) sndbuf[conn] = substr($i, 16) + 0
			}
			f += un * mss
		}
		END {
			flush_sample()
			for (k in busy) { b += busy[k]; rw += rwnd[k]; sb += sndbuf[k] }
			for (i = 2; i <= nr; i++) {	# insertion sort: a few hundred samples
				v = rtts[i]; j = i - 1
				while (j >= 1 && rtts[j] > v) { rtts[j + 1] = rtts[j]; j-- }
				rtts[j + 1] = v
			}
			printf "%d %.2f %.0f %.0f %.0f\n", most, nr ? rtts[int((nr + 1) / 2)] : 0,
				n ? sum / n : 0, b ? 100 * rw / b : 0, b ? 100 * sb / b : 0
		}' "$WORK/wan-ss-$1.log")
}

# ---- results ----------------------------------------------------------------------------------

# record TOOL SECONDS WIRE CPU FLUSH [BYTES]: one table row (WIRE "-" when none). FLUSH is the
# untimed writeback after the run: SECONDS + FLUSH is how long until the copy was on stable
# storage, which ferry pays inside SECONDS (it acknowledges only durable segments). BYTES: the
# size of what was copied (default: the image).
ROWS=""
record() { ROWS="$ROWS$1|$2|$3|$4|$5|${6:-$SIZE}
"; }

mbps() { calc %.1f "${2:-$SIZE} / 1e6 / ($1 > 0 ? $1 : 0.005)"; }	# mbps SECONDS [BYTES]

print_table() {
	local width
	width=$(printf '%s' "$ROWS" | awk -F'|' 'BEGIN { w = 22 } length($1) > w { w = length($1) }
		END { print w }')
	printf "%-${width}s %9s %9s %15s %8s %10s\n" "tool" "seconds" "MB/s" "wire bytes" "CPU s" \
		"durable s"
	printf "%-${width}s %9s %9s %15s %8s %10s\n" "----" "-------" "----" "----------" "-----" \
		"---------"
	printf '%s' "$ROWS" | while IFS='|' read -r tool seconds wire cpu flushed bytes; do
		printf "%-${width}s %9s %9s %15s %8s %10s\n" "$tool" "$seconds" \
			"$(mbps "$seconds" "$bytes")" "$wire" "$cpu" "$(calc %.2f "$seconds + $flushed")"
	done
}

# ================================================================================================

# Run a snapshot of the binaries, so that a rebuild of bin/ during the run cannot mix versions.
mkdir -p "$WORK/bin" && cp "$FERRY" "$FERRYD" "$WORK/bin/" || die "cannot copy the binaries"
FERRY_SHOWN=$FERRY
FERRY="$WORK/bin/ferry" FERRYD="$WORK/bin/ferryd"

echo "ferry copy benchmark: $SIZE_MIB MiB image, $(nproc 2>/dev/null || echo '?') CPUs, $(uname -sr)"
note "ferry: $FERRY_SHOWN ($(stat -c %y "$FERRY_SHOWN" | cut -d. -f1)); rsync $(rsync --version |
	sed -n '1s/^rsync *version \([^ ]*\).*/\1/p'); $(zstd --version | sed 's/^\*\*\* //; s/,.*//')"
note "work folder: $WORK ($(stat -f -c %T "$WORK") filesystem; every copy lands there too)"
note "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine skews the numbers)"

avail_kib=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
need_kib=$((SIZE / 1024 * 3))
[ "$WAN_SIZE_MIB" -lt "$SIZE_MIB" ] && need_kib=$((need_kib + WAN_SIZE_MIB * 1024))
[ "${avail_kib:-0}" -ge "$need_kib" ] ||
	die "$WORK has $((avail_kib / 1024)) MiB free; the benchmark needs $((need_kib / 1024)) MiB"
mem_kib=$(awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo)
if [ "${mem_kib:-0}" -lt $((SIZE / 1024 * 2)) ]; then
	note "WARNING: only $((mem_kib / 1024)) MiB of memory available; the image and a copy"
	note "         may not both stay cached, so the numbers will include disk reads"
fi

# The WAN link's namespace is made now, so that a missing kernel feature shows before the long runs.
wan_setup
WAN_RTT_TARGET=$(calc %g "2 * $WAN_DELAY_MS")
WAN_TAG="WAN $WAN_RATE/${WAN_RTT_TARGET}ms"
WAN_BPS=$(rate_bytes "$WAN_RATE")
case $WAN_METHOD in
netem) WAN_HOW="one netem qdisc on its lo (delay ${WAN_DELAY_MS}ms rate $WAN_RATE limit 100000)" ;;
nfqueue) WAN_HOW="no netem in this kernel, so: tbf rate $WAN_RATE on its lo + an NFQUEUE delay line of ${WAN_DELAY_MS} ms (python3, $WAN_IPTABLES raw PREROUTING)" ;;
esac
if [ -n "$WAN_SKIP" ]; then
	note "WAN link: skipped: $WAN_SKIP"
else
	WAN_CC=$(ip netns exec "$WAN_NS" cat /proc/sys/net/ipv4/tcp_congestion_control 2>/dev/null)
	note "WAN link: namespace $WAN_NS, lo MTU $WAN_MTU, TCP congestion control ${WAN_CC:-?}, $WAN_HOW"
fi

# ---- image ----
t0=$(now_ns)
make_image
GEN_S=$(calc %.1f "($(now_ns) - $t0) / 1e9")
flush
note "image: $SIZE bytes = $RANDOM_BYTES random + $TEXT_BYTES log-like text + $ZERO_BYTES written zeros (made in $GEN_S s)"

# Warm the cache: read the image once so every tool starts equal. Nothing is dropped.
t0=$(now_ns)
cat "$IMG" >/dev/null
WARM_S=$(calc %.2f "($(now_ns) - $t0) / 1e9")
note "page cache: nothing dropped (not root-safe in CI); image read once before timing ($WARM_S s), all tools start warm"

t0=$(now_ns)
SRC_SHA=$(sha256sum "$IMG" | cut -d' ' -f1)
SHA_S=$(calc %.1f "($(now_ns) - $t0) / 1e9")
note "source sha256 $SRC_SHA ($SHA_S s)"
RUN_IMG=$IMG RUN_SHA=$SRC_SHA	# what rsync_run, ferry_run and check_sha copy and compare

measure zstd sh -c "zstd -1 -T1 -c '$IMG' | wc -c"
[ "$M_RC" = 0 ] || die "zstd failed: $(cat "$WORK/zstd.err")"
ZSTD_BYTES=$(tr -d ' ' <"$WORK/zstd.out")
ZSTD_S=$(calc %.2f "$M_NS / 1e9")
note "zstd -1 -T1 of the image: $ZSTD_BYTES bytes ($(calc %.1f "100 * $ZSTD_BYTES / $SIZE")% of it) in $ZSTD_S s = wire-bytes goal"

# ---- 1. cp ----
flush
measure cp cp "$IMG" "$WORK/cp-copy.raw"
[ "$M_RC" = 0 ] || die "cp failed: $(cat "$WORK/cp.err")"
CP_S=$(calc %.2f "$M_NS / 1e9")
CP_CPU=$(calc %.2f "$M_TICKS / $CLK_TCK")
flush
CP_FLUSH=$FLUSH_S
cmp -s "$IMG" "$WORK/cp-copy.raw" || die "cp's copy differs from the source"
rm -f "$WORK/cp-copy.raw"
record "cp" "$CP_S" "-" "$CP_CPU" "$CP_FLUSH"

# ---- 2. rsync to a daemon ----
start_rsyncd
note "rsync daemon pid $RSYNCD_PID on 127.0.0.1:$RSYNC_PORT (plain TCP, no TLS)"

# rsync_run LABEL SUBDIR [rsync options]: copies $RUN_IMG (with the $NSX prefix); sets R_S R_CPU
# R_CLIENT R_DAEMON R_WIRE R_LO R_FLUSH (and, in the WAN section, W_EMU and W_TCP).
rsync_run() {
	local label=$1 dir=$2 before after lo_before copy
	shift 2
	copy="$WORK/rsync-dst/$dir/$(basename "$RUN_IMG")"
	mkdir -p "$WORK/rsync-dst/$dir"
	flush
	rsyncd_settle
	before=$(cpu_ticks_all "$RSYNCD_PID")
	lo_before=$(lo_bytes "$RSYNCD_PID")
	wan_watch_start "rsync-$dir" "$RSYNC_PORT"
	# shellcheck disable=SC2086
	measure "rsync-$dir" $TIMEOUT $NSX rsync --stats "$@" "$RUN_IMG" \
		"rsync://127.0.0.1:$RSYNC_PORT/bench/$dir/"
	wan_watch_stop "rsync-$dir"
	if [ "$M_RC" != 0 ]; then
		echo "copy-bench: $label failed (exit $M_RC):" >&2
		show_log "$WORK/rsync-$dir.err"
		show_log "$WORK/rsyncd.log"
		exit 1
	fi
	R_S=$(calc %.2f "$M_NS / 1e9")
	R_LO=$(($(lo_bytes "$RSYNCD_PID") - lo_before))
	rsyncd_settle
	after=$(cpu_ticks_all "$RSYNCD_PID")
	R_CLIENT=$(calc %.2f "$M_TICKS / $CLK_TCK")
	R_DAEMON=$(calc %.2f "($after - $before) / $CLK_TCK")
	R_CPU=$(calc %.2f "($M_TICKS + $after - $before) / $CLK_TCK")
	R_WIRE=$(sed -n 's/^Total bytes sent: *\([0-9,]*\).*/\1/p' "$WORK/rsync-$dir.out" | tr -d ,)
	[ -n "$R_WIRE" ] || die "$label: no 'Total bytes sent' in rsync --stats"
	flush
	R_FLUSH=$FLUSH_S
	cmp -s "$RUN_IMG" "$copy" || die "$label: the copy differs from the source"
	rm -f "$copy"
}

rsync_run rsync plain
RS_S=$R_S RS_CPU=$R_CPU RS_CLIENT=$R_CLIENT RS_DAEMON=$R_DAEMON RS_WIRE=$R_WIRE RS_FLUSH=$R_FLUSH
RS_LO=$R_LO
record "rsync" "$RS_S" "$RS_WIRE" "$RS_CPU" "$RS_FLUSH"

rsync_run "rsync -z" z -z --debug=NSTR
RZ_S=$R_S RZ_CPU=$R_CPU RZ_CLIENT=$R_CLIENT RZ_DAEMON=$R_DAEMON RZ_WIRE=$R_WIRE RZ_FLUSH=$R_FLUSH
RZ_LO=$R_LO
RZ_CODEC=$(sed -n 's/^Client negotiated compress: *//p' "$WORK/rsync-z.out" "$WORK/rsync-z.err" |
	head -n 1)
RZ_LABEL="rsync -z"
case $RZ_CODEC in
"") RZ_CODEC=unknown ;;
*) RZ_LABEL="rsync -z ($(echo "$RZ_CODEC" | sed 's/ (level \([0-9-]*\))/-\1/'))" ;;
esac
record "$RZ_LABEL" "$RZ_S" "$RZ_WIRE" "$RZ_CPU" "$RZ_FLUSH"
stop_pid "$RSYNCD_PID"
RSYNCD_PID=""

# ---- 3. ferry copy ----
start_ferryd
note "ferryd pid $FERRYD_PID at $FERRY_URL (TLS, test CA, bearer token)"

# ferry_run NAME [args]: ferry copy of $RUN_IMG (with the $NSX prefix); sets F_S F_CPU F_CLIENT
# F_DAEMON F_JSON F_LO (and, in the WAN section, W_EMU and W_TCP).
ferry_run() {
	local name=$1 before after lo_before
	shift
	flush
	before=$(cpu_ticks "$FERRYD_PID")
	lo_before=$(lo_bytes "$FERRYD_PID")
	wan_watch_start "ferry-$name" "${FERRY_URL##*:}"
	measure "ferry-$name" ferry_copy "$name" "$@"
	wan_watch_stop "ferry-$name"
	after=$(cpu_ticks "$FERRYD_PID")
	F_LO=$(($(lo_bytes "$FERRYD_PID") - lo_before))
	F_JSON=$(tail -n 1 "$WORK/ferry-$name.out")
	if [ "$M_RC" != 0 ] || [ "$(json_field "$F_JSON" status)" != complete ]; then
		echo "copy-bench: ferry copy $name failed (exit $M_RC): $F_JSON" >&2
		show_log "$WORK/ferry-$name.err"
		show_log "$FERRYD_STATE.log"
		exit 1
	fi
	F_S=$(calc %.2f "$M_NS / 1e9")
	F_CLIENT=$(calc %.2f "$M_TICKS / $CLK_TCK")
	F_DAEMON=$(calc %.2f "($after - $before) / $CLK_TCK")
	F_CPU=$(calc %.2f "($M_TICKS + $after - $before) / $CLK_TCK")
}

check_sha() {	# check_sha NAME: the received volume must hash like the source ($RUN_SHA)
	local path="$FERRYD_STATE/volumes/$1" sha
	[ -f "$path" ] || die "ferryd has no volume file $path"
	sha=$(sha256sum "$path" | cut -d' ' -f1)
	if [ "$sha" != "$RUN_SHA" ]; then
		die "ferry volume $1 has sha256 $sha, the source $RUN_SHA: WRONG COPY"
	fi
	note "ferry volume $1: sha256 matches the source"
}

ferry_run bench-full
FE_S=$F_S FE_CPU=$F_CPU FE_CLIENT=$F_CLIENT FE_DAEMON=$F_DAEMON FE_JSON=$F_JSON FE_LO=$F_LO
FE_WIRE=$(json_field "$FE_JSON" bytes_sent)
FE_INNER_S=$(calc %.2f "$(json_field "$FE_JSON" seconds)")
flush
FE_FLUSH=$FLUSH_S
record "ferry copy" "$FE_S" "$FE_WIRE" "$FE_CPU" "$FE_FLUSH"
check_sha bench-full
rm -f "$WORK/ferryd/volumes/bench-full"	# space; ferryd keeps no descriptor open on it

# ---- 4. interrupted and resumed ferry copy ----
# The killed run is throttled so that it reaches the kill point in about 10 s, but never faster
# than 3/4 of the unthrottled run's wire rate, so that the limit really bites.
if [ -n "${BENCH_RESUME_BWLIMIT:-}" ]; then
	BWLIMIT=$BENCH_RESUME_BWLIMIT
else
	BWLIMIT=$(calc %.0f "$SIZE * ($RESUME_AT + 5) / 100 / 10")
	natural=$(calc %.0f "0.75 * $FE_WIRE / $FE_S")
	[ "$natural" -lt "$BWLIMIT" ] && BWLIMIT=$natural
	[ "$BWLIMIT" -lt 1048576 ] && BWLIMIT=1048576
fi
flush
# Started directly (not through ferry_copy or timeout) so that $! is ferry itself.
# shellcheck disable=SC2086
"$FERRY" copy --to "$FERRY_URL" --token-file "$WORK/token" --cacert "$WORK/tls/ca.pem" --json \
	--no-progress $FERRY_EXTRA --bwlimit "$BWLIMIT" "$IMG" bench-resume \
	>"$WORK/ferry-killed.out" 2>"$WORK/ferry-killed.err" &
RESUME_PID=$!
t0=$(now_ns)
KILLED_AT="" KILL_DURABLE="" TOTAL_SEGMENTS=""
while kill -0 "$RESUME_PID" 2>/dev/null; do
	read -r durable total <<EOF
$(durable_segments bench-resume)
EOF
	if [ -n "${total:-}" ] && [ "$total" -gt 0 ] && [ $((durable * 100)) -ge $((total * RESUME_AT)) ]; then
		{ kill -9 "$RESUME_PID"; wait "$RESUME_PID"; } 2>/dev/null	# (no "Killed" notice)
		KILLED_AT=$(calc %.1f "($(now_ns) - $t0) / 1e9")
		KILL_DURABLE=$durable TOTAL_SEGMENTS=$total
		break
	fi
	if [ $(($(now_ns) - t0)) -gt $((COPY_TIMEOUT * 1000000000)) ]; then
		die "the throttled copy made no progress to $RESUME_AT% in $COPY_TIMEOUT s"
	fi
	sleep 0.2
done
wait "$RESUME_PID" 2>/dev/null
RESUME_PID=""
if [ -z "$KILLED_AT" ]; then
	echo "copy-bench: the throttled copy ended before $RESUME_AT% (--bwlimit $BWLIMIT):" >&2
	show_log "$WORK/ferry-killed.err"
	cat "$WORK/ferry-killed.out" >&2
	exit 1
fi
sleep 0.5	# let ferryd finish what it had fully received
read -r AFTER_KILL_DURABLE total <<EOF
$(durable_segments bench-resume)
EOF
AFTER_KILL_DURABLE=${AFTER_KILL_DURABLE:-$KILL_DURABLE}

ferry_run bench-resume
RE_S=$F_S RE_CPU=$F_CPU RE_JSON=$F_JSON
RE_READ=$(json_field "$RE_JSON" bytes_read)
RE_SENT=$(json_field "$RE_JSON" bytes_sent)
RE_RESENT=$(json_field "$RE_JSON" bytes_resent)
RE_SKIPPED=$(json_field "$RE_JSON" segments_skipped)
RE_SEGSENT=$(json_field "$RE_JSON" segments_sent)
RE_ZERO=$(json_field "$RE_JSON" segments_zero)
RE_TOTAL=$(json_field "$RE_JSON" segments_total)
SEG_SIZE=$(json_field "$RE_JSON" segment_size)
check_sha bench-resume
[ "$RE_SKIPPED" = "$AFTER_KILL_DURABLE" ] ||
	note "WARNING: the resumed run skipped $RE_SKIPPED segments, ferryd had $AFTER_KILL_DURABLE durable"

# ---- 5. the WAN link ----
# The same copies between two "datacenters": a namespace whose lo has the link's rate and delay.
WAN_T0=$(now_ns)
stop_pid "$FERRYD_PID"
FERRYD_PID=""
rm -f "$FERRYD_STATE/volumes/bench-resume"
WAN_SIZE=$((WAN_SIZE_MIB * 1048576)) WAN_IMG=$IMG WAN_SHA=$SRC_SHA WAN_IMG_NOTE=""
if [ -z "$WAN_SKIP" ] && [ "$WAN_SIZE_MIB" -lt "$SIZE_MIB" ]; then
	# The same mix in less: the first thirds of the random and the text parts, then zeros.
	WAN_IMG="$WORK/wan-image.raw"
	part=$((WAN_SIZE_MIB / 3))
	{
		dd if="$IMG" bs=1M count="$part" iflag=fullblock status=none &&
		dd if="$IMG" bs=1M skip=$((SIZE_MIB / 3)) count="$part" iflag=fullblock status=none &&
		dd if=/dev/zero bs=1M count=$((WAN_SIZE_MIB - 2 * part)) status=none
	} >"$WAN_IMG" || die "cannot write $WAN_IMG"
	[ "$(stat -c %s "$WAN_IMG")" = "$WAN_SIZE" ] || die "$WAN_IMG is not $WAN_SIZE bytes"
	WAN_SHA=$(sha256sum "$WAN_IMG" | cut -d' ' -f1)
	WAN_IMG_NOTE="$WAN_SIZE_MIB MiB made of the image's first $part MiB of random data, first $part MiB of text and $((WAN_SIZE_MIB - 2 * part)) MiB of zeros"
	note "WAN image: $WAN_IMG_NOTE (sha256 $WAN_SHA)"
fi
if [ -z "$WAN_SKIP" ]; then
	RUN_IMG=$WAN_IMG RUN_SHA=$WAN_SHA NSX="ip netns exec $WAN_NS"
	start_rsyncd
	note "rsync daemon pid $RSYNCD_PID on 127.0.0.1:$RSYNC_PORT in namespace $WAN_NS"
	if ! wan_check_rtt "$RSYNC_PORT"; then
		stop_pid "$RSYNCD_PID"
		RSYNCD_PID="" NSX=""
		wan_give_up "the emulated round trip is ${WAN_RTT:-unmeasurable} ms (first ${WAN_RTT_FIRST:-?} ms), not ~$WAN_RTT_TARGET ms: its numbers would mislead"
		note "WAN link: skipped: $WAN_SKIP"
	fi
fi
if [ -z "$WAN_SKIP" ]; then
	WAN_RTT_NOTE="round trip $WAN_RTT ms (TCP handshake as the kernel timed it, median of 5; ${WAN_PING:+ping -U $WAN_PING ms; }target $WAN_RTT_TARGET ms"
	if [ "$WAN_RTT_FIRST" != "$WAN_RTT" ]; then
		WAN_RTT_NOTE="$WAN_RTT_NOTE; it was $WAN_RTT_FIRST ms with $WAN_DELAY_MS ms each way, so the emulator holds $WAN_HOLD_MS ms)"
	else
		WAN_RTT_NOTE="$WAN_RTT_NOTE)"
	fi
	note "WAN link: $WAN_RTT_NOTE"

	rsync_run "rsync ($WAN_TAG)" wan-plain
	WR_S=$R_S WR_CPU=$R_CPU WR_CLIENT=$R_CLIENT WR_DAEMON=$R_DAEMON WR_WIRE=$R_WIRE
	WR_FLUSH=$R_FLUSH WR_LO=$R_LO WR_EMU=$W_EMU WR_TCP=$W_TCP
	record "rsync ($WAN_TAG)" "$WR_S" "$WR_WIRE" "$WR_CPU" "$WR_FLUSH" "$WAN_SIZE"

	rsync_run "rsync -z ($WAN_TAG)" wan-z -z
	WZ_S=$R_S WZ_CPU=$R_CPU WZ_CLIENT=$R_CLIENT WZ_DAEMON=$R_DAEMON WZ_WIRE=$R_WIRE
	WZ_FLUSH=$R_FLUSH WZ_LO=$R_LO WZ_EMU=$W_EMU WZ_TCP=$W_TCP
	record "rsync -z ($WAN_TAG)" "$WZ_S" "$WZ_WIRE" "$WZ_CPU" "$WZ_FLUSH" "$WAN_SIZE"
	stop_pid "$RSYNCD_PID"
	RSYNCD_PID=""

	start_ferryd ferryd-wan
	note "ferryd pid $FERRYD_PID at $FERRY_URL in namespace $WAN_NS"
	ferry_run bench-wan
	WF_S=$F_S WF_CPU=$F_CPU WF_CLIENT=$F_CLIENT WF_DAEMON=$F_DAEMON WF_JSON=$F_JSON WF_LO=$F_LO
	WF_EMU=$W_EMU WF_TCP=$W_TCP
	WF_WIRE=$(json_field "$WF_JSON" bytes_sent)
	WF_JOBS=$(printf '%s' "$FERRY_EXTRA" | sed -n 's/.*--jobs[= ]\([0-9]*\).*/\1/p')
	flush
	WF_FLUSH=$FLUSH_S
	record "ferry copy ($WAN_TAG)" "$WF_S" "$WF_WIRE" "$WF_CPU" "$WF_FLUSH" "$WAN_SIZE"
	check_sha bench-wan
	rm -f "$FERRYD_STATE/volumes/bench-wan"
	stop_pid "$FERRYD_PID"
	FERRYD_PID="" NSX=""
	[ -n "$WAN_HELPER_PID" ] && { stop_pid "$WAN_HELPER_PID"; WAN_HELPER_PID=""; }
	wan_teardown
	RUN_IMG=$IMG RUN_SHA=$SRC_SHA
	WAN_SECTION_S=$(calc %.0f "($(now_ns) - $WAN_T0) / 1e9")
fi

# ---- report ----
ratio() { calc %.2f "$1 / ($2 > 0 ? $2 : 0.005)"; }
FE_VS_RS=$(ratio "$RS_S" "$FE_S")
FE_VS_RZ=$(ratio "$RZ_S" "$FE_S")
FE_VS_CP=$(ratio "$CP_S" "$FE_S")
FE_VS_RS_DURABLE=$(ratio "$(calc %.3f "$RS_S + $RS_FLUSH")" "$(calc %.3f "$FE_S + $FE_FLUSH")")
FE_VS_CP_DURABLE=$(ratio "$(calc %.3f "$CP_S + $CP_FLUSH")" "$(calc %.3f "$FE_S + $FE_FLUSH")")
FE_VS_ZSTD=$(ratio "$FE_WIRE" "$ZSTD_BYTES")
FE_VS_RZ_WIRE=$(ratio "$FE_WIRE" "$RZ_WIRE")
RE_SENT_RATIO=$(calc %.4f "$RE_SENT / $SIZE")
RE_READ_RATIO=$(calc %.4f "$RE_READ / $SIZE")
RE_VS_FULL=$(calc %.4f "$RE_SENT / $FE_WIRE")
MISSING=$(calc %.4f "1 - $AFTER_KILL_DURABLE / $TOTAL_SEGMENTS")

echo
echo "== results: $SIZE_MIB MiB image ($SIZE bytes), MB = 10^6 bytes, one run each =="
print_table
echo
echo "ratios (above 1: ferry is faster / sends more):"
printf '  %-42s %6s x%s\n' \
	"ferry vs rsync throughput" "$FE_VS_RS" "" \
	"ferry vs $RZ_LABEL throughput" "$FE_VS_RZ" "" \
	"ferry vs cp throughput" "$FE_VS_CP" "" \
	"ferry vs rsync, until durable on disk" "$FE_VS_RS_DURABLE" "" \
	"ferry vs cp, until durable on disk" "$FE_VS_CP_DURABLE" "" \
	"ferry wire bytes vs zstd -1 -T1 size" "$FE_VS_ZSTD" "  ($FE_WIRE / $ZSTD_BYTES)" \
	"ferry wire bytes vs $RZ_LABEL" "$FE_VS_RZ_WIRE" "  ($FE_WIRE / $RZ_WIRE)"
if [ -z "$WAN_SKIP" ]; then
	WF_VS_WR=$(ratio "$WR_S" "$WF_S")
	WF_VS_WZ=$(ratio "$WZ_S" "$WF_S")
	WF_VS_WR_DURABLE=$(ratio "$(calc %.3f "$WR_S + $WR_FLUSH")" "$(calc %.3f "$WF_S + $WF_FLUSH")")
	WF_VS_WR_WIRE=$(ratio "$WF_WIRE" "$WR_WIRE")
	WF_VS_WZ_WIRE=$(ratio "$WF_WIRE" "$WZ_WIRE")
	printf '  %-42s %6s x%s\n' \
		"ferry vs rsync over the WAN link" "$WF_VS_WR" "" \
		"ferry vs rsync -z over the WAN link" "$WF_VS_WZ" "" \
		"ferry vs rsync, WAN, until durable on disk" "$WF_VS_WR_DURABLE" "" \
		"ferry wire bytes vs rsync, WAN" "$WF_VS_WR_WIRE" "  ($WF_WIRE / $WR_WIRE)" \
		"ferry wire bytes vs rsync -z, WAN" "$WF_VS_WZ_WIRE" "  ($WF_WIRE / $WZ_WIRE)"
else
	echo "  (WAN link: skipped: $WAN_SKIP)"
fi
echo
echo "resume: ferry copy --bwlimit $BWLIMIT killed with SIGKILL after $KILLED_AT s at $KILL_DURABLE/$TOTAL_SEGMENTS segments durable ($AFTER_KILL_DURABLE after it settled), then re-run unthrottled:"
printf '  %-26s %s\n' \
	"seconds" "$RE_S (CPU $RE_CPU s)" \
	"segments_skipped" "$RE_SKIPPED of $RE_TOTAL (segment size $SEG_SIZE)" \
	"segments sent / zero" "$RE_SEGSENT / $RE_ZERO" \
	"bytes_read" "$RE_READ ($(calc %.1f "100 * $RE_READ_RATIO")% of the image; $(calc %.1f "100 * $MISSING")% was missing)" \
	"bytes_sent" "$RE_SENT ($(calc %.1f "100 * $RE_VS_FULL")% of a full copy's $FE_WIRE)" \
	"bytes_resent" "$RE_RESENT" \
	"bytes_sent / image size" "$RE_SENT_RATIO"
echo
if [ -z "$WAN_SKIP" ]; then
	# wan_line TOOL SECONDS WIRE LO EMU TCP: the link's share of one WAN run.
	wan_line() {
		local conns rtt inflight rwnd sndbuf
		read -r conns rtt inflight rwnd sndbuf <<EOF
$6
EOF
		printf '  %-9s %6s s; its wire bytes alone take %5s s at %s; link busy %3s%%%s\n' \
			"$1" "$2" "$(calc %.2f "$3 / $WAN_BPS")" "$WAN_RATE" \
			"$(calc %.0f "100 * $4 / ($WAN_BPS * ($2 > 0 ? $2 : 0.005))")" \
			"${WAN_HELPER_CPU_SHOWN:+; delay line CPU $5 s}"
		printf '  %-9s TCP: %s connection(s), srtt %s ms, %s bytes in flight (mean), limited by the\n' \
			"" "$conns" "$rtt" "$inflight"
		printf '  %-9s      receive window %s%% / send buffer %s%% of their busy time\n' "" "$rwnd" "$sndbuf"
	}
	WAN_BDP=$(calc %.0f "$WAN_BPS * $WAN_RTT_TARGET / 1000")
	WAN_HELPER_CPU_SHOWN=""
	[ "$WAN_METHOD" = nfqueue ] && WAN_HELPER_CPU_SHOWN=1
	echo "WAN link: $WAN_RATE, $WAN_RTT_TARGET ms round trip (bandwidth-delay product $WAN_BDP bytes), MTU $WAN_MTU, $WAN_SIZE_MIB MiB copied:"
	echo "  emulated in namespace $WAN_NS (deleted since) with $WAN_HOW;"
	echo "  $WAN_RTT_NOTE."
	wan_line rsync "$WR_S" "$WR_WIRE" "$WR_LO" "$WR_EMU" "$WR_TCP"
	wan_line "rsync -z" "$WZ_S" "$WZ_WIRE" "$WZ_LO" "$WZ_EMU" "$WZ_TCP"
	wan_line ferry "$WF_S" "$WF_WIRE" "$WF_LO" "$WF_EMU" "$WF_TCP"
	echo
fi
echo "notes:"
echo "  wire bytes: rsync's 'Total bytes sent' (its protocol, plain TCP); ferry's bytes_sent (zstd"
echo "    segment bodies; HTTP headers, JSON and TLS not counted). All loopback traffic during the"
echo "    run, both directions with TCP/IP headers: rsync $RS_LO, rsync -z $RZ_LO, ferry $FE_LO"
echo "    ($(calc %.3f "$FE_LO / $FE_WIRE") x ferry's bytes_sent)."
echo "  CPU s: user+sys of the client and of the daemon side: rsync $RS_CLIENT + $RS_DAEMON,"
echo "    $RZ_LABEL $RZ_CLIENT + $RZ_DAEMON, ferry $FE_CLIENT + ferryd $FE_DAEMON."
echo "  durability: ferryd fdatasyncs each segment before acknowledging it (inside its time);"
echo "    cp and rsync do not. Untimed writeback after each run: cp $CP_FLUSH s, rsync $RS_FLUSH s,"
echo "    rsync -z $RZ_FLUSH s, ferry $FE_FLUSH s."
echo "  page cache: nothing dropped; the image was read once before timing, all runs start warm."
echo "  $RZ_LABEL negotiated: $RZ_CODEC. ferry: zstd level 1 by default, TLS; ferry's own 'seconds': $FE_INNER_S."
if [ -z "$WAN_SKIP" ]; then
	echo "  WAN rows: ${WAN_IMG_NOTE:-the same $SIZE_MIB MiB image}; their MB/s is of that."
	echo "    Wire bytes as above; all traffic on the namespace's lo (no one else's traffic in it):"
	echo "    rsync $WR_LO, rsync -z $WZ_LO, ferry $WF_LO."
	echo "    CPU s: rsync $WR_CLIENT + $WR_DAEMON, rsync -z $WZ_CLIENT + $WZ_DAEMON, ferry $WF_CLIENT + ferryd $WF_DAEMON."
	echo "    'link busy' is that lo traffic over what the link carries in the run's time; 'its bytes"
	echo "    alone' is the tool's wire bytes at $WAN_RATE: the floor for its time on such a link."
	echo "    Both ends share this machine's $(nproc 2>/dev/null || echo '?') CPUs here; between datacenters each has its own, so"
	echo "    the CPU-bound copies (ferry: zstd + TLS at both ends; rsync -z) would be faster there,"
	echo "    the link-bound ones (plain rsync) not. ferry ran with ${WF_JOBS:-4} jobs (one segment in flight each)."
	if [ "$WAN_METHOD" = nfqueue ]; then
		echo "    The delay line hands packets back in its own process, so the kernel's TCP receive work"
		echo "    of the WAN runs is counted in its CPU (above), not in the tools' CPU s."
	fi
	echo "    The WAN section took $WAN_SECTION_S s of the run, verification included. It copies the whole"
	echo "    image by default, so that its rows compare with the loopback rows above (at 1gbit the"
	echo "    2 GiB default keeps the whole run near 3 minutes); BENCH_WAN_SIZE_MIB copies less, same mix."
fi
echo "  copies verified: cp and rsync with cmp, all ferry volumes with sha256 = source${WAN_SKIP:+ (WAN section skipped)}."
echo "  the whole benchmark took $(calc %.0f "($(now_ns) - $BENCH_T0) / 1e9") s."

if [ -n "${BENCH_JSON:-}" ]; then
	mkdir -p "$(dirname "$BENCH_JSON")"
	num_or_null() { if [ -n "$1" ]; then printf '%s' "$1"; else printf null; fi; }
	tcp_json() {	# tcp_json "CONNS RTT INFLIGHT"
		printf '%s\n' "$1" | awk '{ printf "{\"connections_max\":%d,\"srtt_ms_median\":%s,\"bytes_in_flight_mean\":%d,\"rwnd_limited_pct\":%d,\"sndbuf_limited_pct\":%d}", $1, $2, $3, $4, $5 }'
	}
	if [ -n "$WAN_SKIP" ]; then
		# shellcheck disable=SC1003
		WAN_JSON="\"wan\":{\"skipped\":\"$(printf '%s' "$WAN_SKIP" | tr '"\\' "''")\"}"
	else
		if [ "$WAN_METHOD" != nfqueue ]; then WR_EMU=null WZ_EMU=null WF_EMU=null; fi
		WAN_JSON=$(cat <<EOW
"wan":{"method":"$WAN_METHOD","rate":"$WAN_RATE","rate_bytes_per_s":$WAN_BPS,"delay_ms":$WAN_DELAY_MS,"hold_ms":$WAN_HOLD_MS,"rtt_target_ms":$WAN_RTT_TARGET,"rtt_ms_first":$WAN_RTT_FIRST,"rtt_ms":$WAN_RTT,"ping_ms":$(num_or_null "$WAN_PING"),"mtu":$WAN_MTU,"bdp_bytes":$WAN_BDP,
"image":{"bytes":$WAN_SIZE,"sha256":"$WAN_SHA"},
"runs":{
"rsync":{"seconds":$WR_S,"mb_per_s":$(mbps "$WR_S" "$WAN_SIZE"),"wire_bytes":$WR_WIRE,"cpu_seconds":$WR_CPU,"cpu_client":$WR_CLIENT,"cpu_daemon":$WR_DAEMON,"loopback_bytes":$WR_LO,"writeback_seconds":$WR_FLUSH,"emulator_cpu_seconds":$WR_EMU,"tcp":$(tcp_json "$WR_TCP")},
"rsync_z":{"compress":"$RZ_CODEC","seconds":$WZ_S,"mb_per_s":$(mbps "$WZ_S" "$WAN_SIZE"),"wire_bytes":$WZ_WIRE,"cpu_seconds":$WZ_CPU,"cpu_client":$WZ_CLIENT,"cpu_daemon":$WZ_DAEMON,"loopback_bytes":$WZ_LO,"writeback_seconds":$WZ_FLUSH,"emulator_cpu_seconds":$WZ_EMU,"tcp":$(tcp_json "$WZ_TCP")},
"ferry":{"seconds":$WF_S,"mb_per_s":$(mbps "$WF_S" "$WAN_SIZE"),"wire_bytes":$WF_WIRE,"cpu_seconds":$WF_CPU,"cpu_client":$WF_CLIENT,"cpu_daemon":$WF_DAEMON,"loopback_bytes":$WF_LO,"writeback_seconds":$WF_FLUSH,"emulator_cpu_seconds":$WF_EMU,"tcp":$(tcp_json "$WF_TCP"),"result":$WF_JSON}},
"ratios":{"ferry_vs_rsync_throughput":$WF_VS_WR,"ferry_vs_rsync_z_throughput":$WF_VS_WZ,"ferry_vs_rsync_until_durable":$WF_VS_WR_DURABLE,"ferry_wire_vs_rsync":$WF_VS_WR_WIRE,"ferry_wire_vs_rsync_z":$WF_VS_WZ_WIRE}}
EOW
)
	fi
	cat >"$BENCH_JSON" <<EOF
{"benchmark":"ferry-copy","date":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","host":{"cpus":$(nproc 2>/dev/null || echo 0),"kernel":"$(uname -r)"},
"image":{"bytes":$SIZE,"random_bytes":$RANDOM_BYTES,"text_bytes":$TEXT_BYTES,"zero_bytes":$ZERO_BYTES,"sha256":"$SRC_SHA","zstd1_bytes":$ZSTD_BYTES,"zstd1_seconds":$ZSTD_S,"warm_read_seconds":$WARM_S},
"runs":{
"cp":{"seconds":$CP_S,"mb_per_s":$(mbps "$CP_S"),"wire_bytes":null,"cpu_seconds":$CP_CPU,"writeback_seconds":$CP_FLUSH},
"rsync":{"seconds":$RS_S,"mb_per_s":$(mbps "$RS_S"),"wire_bytes":$RS_WIRE,"cpu_seconds":$RS_CPU,"cpu_client":$RS_CLIENT,"cpu_daemon":$RS_DAEMON,"loopback_bytes":$RS_LO,"writeback_seconds":$RS_FLUSH},
"rsync_z":{"compress":"$RZ_CODEC","seconds":$RZ_S,"mb_per_s":$(mbps "$RZ_S"),"wire_bytes":$RZ_WIRE,"cpu_seconds":$RZ_CPU,"cpu_client":$RZ_CLIENT,"cpu_daemon":$RZ_DAEMON,"loopback_bytes":$RZ_LO,"writeback_seconds":$RZ_FLUSH},
"ferry":{"seconds":$FE_S,"mb_per_s":$(mbps "$FE_S"),"wire_bytes":$FE_WIRE,"cpu_seconds":$FE_CPU,"cpu_client":$FE_CLIENT,"cpu_daemon":$FE_DAEMON,"loopback_bytes":$FE_LO,"writeback_seconds":$FE_FLUSH,"result":$FE_JSON}},
"ratios":{"ferry_vs_rsync_throughput":$FE_VS_RS,"ferry_vs_rsync_until_durable":$FE_VS_RS_DURABLE,"ferry_vs_cp_until_durable":$FE_VS_CP_DURABLE,"ferry_vs_rsync_z_throughput":$FE_VS_RZ,"ferry_vs_cp_throughput":$FE_VS_CP,"ferry_wire_vs_zstd1":$FE_VS_ZSTD,"ferry_wire_vs_rsync_z":$FE_VS_RZ_WIRE},
"resume":{"bwlimit":$BWLIMIT,"killed_after_seconds":$KILLED_AT,"segments_durable_at_kill":$KILL_DURABLE,"segments_durable_after_kill":$AFTER_KILL_DURABLE,"segments_total":$TOTAL_SEGMENTS,"seconds":$RE_S,"cpu_seconds":$RE_CPU,"bytes_read":$RE_READ,"bytes_sent":$RE_SENT,"bytes_resent":$RE_RESENT,"segments_skipped":$RE_SKIPPED,"bytes_sent_per_image_byte":$RE_SENT_RATIO,"result":$RE_JSON},
$WAN_JSON,
"verified":true}
EOF
	note "results written to $BENCH_JSON"
fi
exit 0
