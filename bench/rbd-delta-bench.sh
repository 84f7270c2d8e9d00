#!/bin/bash
# bench/rbd-delta-bench.sh: how fast ferry ships the changes between two RBD snapshots to another
# Ceph cluster, next to the manual baseline `rbd export-diff | rbd import-diff`, in one run.
#
#   bash bench/rbd-delta-bench.sh          (from the top of the tree, as root)
#
# Starts two throw-away single-node memstore clusters A and B on 127.0.0.1 (tests/ceph-cluster.sh,
# port ranges picked free in 7800..8699 with `ss -ltn`), and a ferryd for site B (--ceph-conf B,
# TLS with a test CA, a token). On A: an image `img` of BENCH_RBD_IMAGE_MIB filled with random
# data, snapshot s0. Each method gets its own baseline on B:
#   pipe   rbd -c A export img@s0 - | rbd -c B import - img-pipe; rbd -c B snap create img-pipe@s0
#   ferry  ferry copy --ceph-conf A rbd:rbd/img@s0 img-ferry        (ferryd takes img-ferry@s0)
# Then three changes of BENCH_RBD_CHANGE_MIB each to the live image on A, each followed by a
# snapshot and shipped both ways:
#   s0->s1  4 MiB blocks: random data in whole 4 MiB-aligned blocks at distinct random positions
#   s1->s2  4 KiB scattered, `rbd bench --io-type write --io-size 4K --io-pattern rand`: random
#           offsets (some written twice), but rbd bench fills every byte of every write with one
#           and the same value, so its data compresses to almost nothing
#   s2->s3  4 KiB scattered, random data: distinct random 4 KiB-aligned offsets, incompressible
#   pipe   rbd -c A export-diff --from-snap sP img@sN - | rbd -c B import-diff - img-pipe
#   ferry  ferry copy --ceph-conf A --from-snap sP rbd:rbd/img@sN img-ferry --json
# The random-data changes are written as a synthesized `rbd diff v1` stream (only 'w' records at
# the chosen offsets) applied with `rbd import-diff`. (Not via a sparse scratch image and
# `rbd export-diff scratch`: without --from-snap that reports each object from its start to the
# end of its data, so the holes between scattered blocks would be written as zeros too.)
# After every step the three images' snapshots are compared (SHA-256 of rbd export): A's img@sN,
# B's img-pipe@sN and img-ferry@sN; this runs while the next change is written (both untimed) and
# ends before the next timed copy. Any difference, or any failed copy, makes the exit status 1.
# The step's base snapshot is removed on all three images once both copies are done (memstore
# keeps every snapshot's copied objects in RAM); BENCH_RBD_TRIM=0 keeps them.
#
# Timing: wall clock of the whole command, process start and Ceph connects included; ferry's
# time includes finding the changes (fast-diff), the commit and the snapshot taken at B. The
# pipe's bytes on the wire are its stream's size (uncompressed, what an ssh pipe would carry),
# counted inside the timed pipeline with tee >(wc -c).
#
# Environment:
#   BENCH_RBD_IMAGE_MIB   image size in MiB (default 1024; a multiple of 4, at least 16)
#   BENCH_RBD_CHANGE_MIB  data written per pattern in MiB (default 256; a multiple of 4, at most
#                         the image size)
#   BENCH_RBD_SEED        seed of the random positions (default: random; printed)
#   BENCH_RBD_TRIM=0      keep the old snapshots (needs about twice the RAM)
#   BENCH_RBD_ZSTD=1      also measure each export-diff stream through zstd -1 (an untimed extra
#                         export-diff per pattern; adds about a minute)
#   BENCH_FERRY_ARGS      extra arguments for every ferry copy (e.g. "--jobs 2")
#   BENCH_TIMEOUT         seconds any one command may take before it counts as hung (default 600)
#   BENCH_TMPDIR          where the temporary folder goes (default $TMPDIR or /tmp)
#   BENCH_KEEP=1          keep the temporary folder (logs) for inspection
#   FERRY_BIN             folder with ferry and ferryd (default: bin/ of this tree); both are
#                         copied into the temporary folder at the start, so a rebuild during the
#                         run cannot mix versions
# Needs: ceph-mon, ceph-osd, rbd, /usr/bin/python3, openssl, zstd, ss, flock, and
# RAM: about 6x the image size plus 1.5 GiB (memstore keeps everything in memory).

if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u
export LC_ALL=C
unset CEPH_ARGS CEPH_CONF FERRY_DAEMON http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"	# Debian's ceph tools and python3, not a pyenv shim

case "${1:-}" in
-h | --help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
'') ;;
*) echo "usage: bash $0   (settings come from the environment; see --help)" >&2; exit 2 ;;
esac

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CLUSTER_SH="$ROOT/tests/ceph-cluster.sh"
SRC_BIN=${FERRY_BIN:-$ROOT/bin}
IMAGE_MIB=${BENCH_RBD_IMAGE_MIB:-1024}
CHANGE_MIB=${BENCH_RBD_CHANGE_MIB:-256}
SEED=${BENCH_RBD_SEED:-$(( (RANDOM << 15) | RANDOM ))}
TRIM=${BENCH_RBD_TRIM:-1}
ZSTD=${BENCH_RBD_ZSTD:-0}
FERRY_EXTRA=${BENCH_FERRY_ARGS:-}
TMO=${BENCH_TIMEOUT:-600}
PORT_LO=7800 PORT_HI=8600	# first ports of the 100-port ranges tried

die() { echo "rbd-delta-bench: $*" >&2; exit 1; }
note() { echo "# $*"; }
progress() { echo "[$(calc %6.1f "($(now_ns) - $T_START) / 1e9")s] $*" >&2; }	# on stderr
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- preconditions ----------------------------------------------------------------------------

case $IMAGE_MIB in '' | *[!0-9]*) die "BENCH_RBD_IMAGE_MIB=$IMAGE_MIB is not a number of MiB" ;; esac
case $CHANGE_MIB in '' | *[!0-9]*) die "BENCH_RBD_CHANGE_MIB=$CHANGE_MIB is not a number of MiB" ;; esac
case $SEED in '' | *[!0-9]*) die "BENCH_RBD_SEED=$SEED is not a number" ;; esac
case $TMO in '' | *[!0-9]*) die "BENCH_TIMEOUT=$TMO is not a number of seconds" ;; esac
case $TRIM in 0 | 1) ;; *) die "BENCH_RBD_TRIM=$TRIM: give 0 or 1" ;; esac
case $ZSTD in 0 | 1) ;; *) die "BENCH_RBD_ZSTD=$ZSTD: give 0 or 1" ;; esac
{ [ "$IMAGE_MIB" -ge 16 ] && [ $((IMAGE_MIB % 4)) = 0 ]; } ||
	die "BENCH_RBD_IMAGE_MIB must be a multiple of 4, at least 16"
{ [ "$CHANGE_MIB" -ge 4 ] && [ $((CHANGE_MIB % 4)) = 0 ] && [ "$CHANGE_MIB" -le "$IMAGE_MIB" ]; } ||
	die "BENCH_RBD_CHANGE_MIB must be a multiple of 4, from 4 to BENCH_RBD_IMAGE_MIB ($IMAGE_MIB)"
[ -x "$SRC_BIN/ferry" ] && [ -x "$SRC_BIN/ferryd" ] || die "$SRC_BIN/ferry and ferryd are missing"
[ -f "$CLUSTER_SH" ] || die "$CLUSTER_SH is missing"
for tool in ceph-mon ceph-osd ceph-authtool monmaptool rbd openssl zstd ss flock awk \
	timeout setsid; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is needed and not installed"
done
PY=/usr/bin/python3
[ -x "$PY" ] || die "$PY is needed (it writes the change streams)"
# memstore keeps every object in RAM: A holds the image and one snapshot's copies, B two of each.
need_mib=$((IMAGE_MIB * 6 + 1536))
[ "$TRIM" = 1 ] || need_mib=$((IMAGE_MIB * 12 + 1536))
avail_mib=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
[ "${avail_mib:-0}" -ge "$need_mib" ] ||
	die "needs about $need_mib MiB of free RAM for the memstore clusters; $avail_mib MiB available"
MEMSTORE_BYTES=$((IMAGE_MIB * 12 * 1048576))
[ "$MEMSTORE_BYTES" -ge $((8 << 30)) ] || MEMSTORE_BYTES=$((8 << 30))

IMAGE_BYTES=$((IMAGE_MIB * 1048576))
CHANGE_BYTES=$((CHANGE_MIB * 1048576))
WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/ferry-rbd-bench.XXXXXX") ||
	die "cannot make a temporary folder"
FERRYD_PID=""
CLUSTERS=""	# folders of the clusters started (stopped at exit)

# ---- cleanup ----------------------------------------------------------------------------------

descendants() {	# the process ids below PID (children first, deepest last)
	local child
	for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		echo "$child"
		descendants "$child"
	done
}

kill_tree() {	# kill_tree PID: SIGKILL to PID's descendants, then PID
	local pid=$1 child
	for child in $(descendants "$pid"); do kill -9 "$child"; done 2>/dev/null
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

cleanup() {
	local status=$? pid dir pids
	trap '' INT TERM HUP	# a second Ctrl-C must not stop the cleanup half-way
	trap - EXIT
	for pid in $(jobs -p); do
		[ "$pid" = "$FERRYD_PID" ] || kill_tree "$pid"
	done
	if [ -n "$FERRYD_PID" ] && kill -0 "$FERRYD_PID" 2>/dev/null; then
		kill -TERM "$FERRYD_PID" 2>/dev/null
		for _ in $(seq 1 50); do
			kill -0 "$FERRYD_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill_tree "$FERRYD_PID"
	fi
	pids=""
	for dir in $CLUSTERS; do
		bash "$CLUSTER_SH" stop "$dir" >/dev/null 2>&1 &
		pids="$pids $!"
	done
	for pid in $pids; do wait "$pid"; done
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

# bg COMMAND...: runs COMMAND in the background and waits for it, so that a signal to this
# script is handled at once (the EXIT trap then kills it); returns its status.
bg() {
	"$@" &
	wait $!
}

# timed NAME COMMAND...: COMMAND with stdout in $WORK/NAME.out, stderr in $WORK/NAME.err; sets
# T_RC and T_S (wall seconds), and CPU seconds (user+sys): T_CLIENT of COMMAND and all it waited
# for (rbd, ferry), T_FERRYD of ferryd, T_OSDA and T_OSDB of the clusters' OSDs.
timed() {
	local name=$1 t0 d0 a0 b0
	shift
	d0=$(cpu_ticks "$FERRYD_PID") a0=$(cpu_ticks "$OSD_A") b0=$(cpu_ticks "$OSD_B")
	t0=$(now_ns)
	(
		"$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
		rc=$?
		read -r stat </proc/$BASHPID/stat
		stat=${stat##*) }
		set -- $stat	# $1 is field 3 (state): cutime is $14, cstime $15
		echo "$rc $((${14} + ${15}))" >"$WORK/$name.cpu"
	) &
	wait $!
	T_S=$(calc %.2f "($(now_ns) - $t0) / 1e9")
	{ read -r T_RC T_CLIENT <"$WORK/$name.cpu"; } 2>/dev/null || T_RC=1 T_CLIENT=0
	T_CLIENT=$(ticks_s "$T_CLIENT")
	T_FERRYD=$(ticks_s $(($(cpu_ticks "$FERRYD_PID") - d0)))
	T_OSDA=$(ticks_s $(($(cpu_ticks "$OSD_A") - a0)))
	T_OSDB=$(ticks_s $(($(cpu_ticks "$OSD_B") - b0)))
}

cpu_ticks() {	# cpu_ticks PID: its utime+stime in clock ticks (0 when gone)
	local stat
	read -r stat 2>/dev/null </proc/"$1"/stat || { echo 0; return; }
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat	# $1 is field 3: utime is $12, stime $13
	echo $((${12} + ${13}))
}
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
ticks_s() { calc %.1f "$1 / $CLK_TCK"; }

json_field() {	# json_field JSON KEY: a top-level scalar of a one-line JSON object
	printf '%s' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p" | head -n 1
}

show_log() {	# show_log FILE: its last lines, indented, on stderr
	[ -s "$1" ] && tail -n 15 "$1" | tr '\r' '\n' | grep -v '^$' | tail -n 15 | sed 's/^/#   /' >&2
	return 0
}

rbd_a() { timeout -k 5 "$TMO" rbd -c "$CONF_A" "$@"; }
rbd_b() { timeout -k 5 "$TMO" rbd -c "$CONF_B" "$@"; }

# ---- clusters and ferryd ----------------------------------------------------------------------

range_free() {	# range_free PORT: nothing listens on PORT..PORT+99
	! ss -Hltn | awk -v lo="$1" -v hi=$(($1 + 99)) \
		'{ p = $4; sub(/.*:/, "", p); if (p + 0 >= lo && p + 0 <= hi) found = 1 } END { exit !found }'
}

# start_cluster NAME MIN_PORT: a memstore cluster in $WORK/ceph-NAME on the first free range at
# or after MIN_PORT; sets PORT_NAME and CONF_NAME.
start_cluster() {
	local name=$1 port=$2 dir="$WORK/ceph-$1" tries=0
	while [ "$port" -le "$PORT_HI" ]; do
		if range_free "$port"; then
			CLUSTERS="$CLUSTERS $dir"
			FERRY_CEPH_MEMSTORE_BYTES=$MEMSTORE_BYTES \
				bg bash "$CLUSTER_SH" start "$dir" "$port" memstore >"$WORK/ceph-$name.start" 2>&1 &&
				{
					printf -v "PORT_$name" '%s' "$port"
					printf -v "CONF_$name" '%s' "$dir/ceph.conf"
					return 0
				}
			bash "$CLUSTER_SH" stop "$dir" >/dev/null 2>&1
			tries=$((tries + 1))
			[ "$tries" -lt 3 ] || break
		fi
		port=$((port + 100))
	done
	echo "rbd-delta-bench: ceph cluster $name did not start (ports $2..$((PORT_HI + 99))):" >&2
	show_log "$WORK/ceph-$name.start"
	exit 1
}

osd_pid() {	# osd_pid DIR: the ceph-osd of the cluster in DIR (from the PIDs ceph-cluster.sh recorded)
	local pid
	for pid in $(cat "$1/pids" 2>/dev/null); do
		case "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" in ceph-osd*) echo "$pid"; return ;; esac
	done
	echo 0
}

make_tls() {	# a test CA and a server certificate for 127.0.0.1, as tests/integration/lib.sh
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

start_ferryd() {
	local state="$WORK/ferryd"
	(umask 077 && openssl rand -hex 24 >"$WORK/token") || die "openssl rand failed"
	make_tls "$WORK/tls" || die "making the test certificate failed"
	mkdir -p "$state" "$WORK/cli"
	"$FERRYD" --state-dir "$state" --listen 127.0.0.1:0 --token-file "$WORK/token" \
		--tls-cert "$WORK/tls/server.pem" --tls-key "$WORK/tls/server.key" \
		--ceph-conf "$CONF_B" 2>>"$WORK/ferryd.log" &
	FERRYD_PID=$!
	for _ in $(seq 1 100); do
		[ -s "$state/ferryd.url" ] && break
		kill -0 "$FERRYD_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -s "$state/ferryd.url" ]; then
		echo "rbd-delta-bench: ferryd did not start:" >&2
		show_log "$WORK/ferryd.log"
		exit 1
	fi
	FERRY_URL=$(cat "$state/ferryd.url")
	export FERRY_STATE_DIR="$WORK/cli"	# the CLI's own catalog, not /var/lib/ferry
}

# ---- the changes ------------------------------------------------------------------------------

# The change generator: an `rbd diff v1` stream on stdout (size record, 'w' records of random
# bytes in offset order, end record). Modes: fill (the whole image in 4 MiB records), blocks
# (CHANGE bytes in 4 MiB blocks at distinct random 4 MiB-aligned positions), scattered (CHANGE
# bytes in 4 KiB blocks at distinct random 4 KiB-aligned offsets). No from/to snapshot records:
# `rbd import-diff` then writes into the live image and takes no snapshot.
cat >"$WORK/gen.py" <<'EOF'
import os, random, struct, sys
mode, size, change, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
out = sys.stdout.buffer
out.write(b"rbd diff v1\n" + b"s" + struct.pack("<Q", size))
if mode == "fill":
    block = 4 << 20
    offsets = range(0, size, block)
else:
    block = 4 << 20 if mode == "blocks" else 4096
    offsets = [i * block for i in sorted(rng.sample(range(size // block), change // block))]
for offset in offsets:
    out.write(b"w" + struct.pack("<QQ", offset, block))
    out.write(os.urandom(block))
out.write(b"e")
out.flush()
EOF

apply_stream() {	# apply_stream MODE SEED: the generator's stream into A's live image
	(
		set -o pipefail
		"$PY" "$WORK/gen.py" "$1" "$IMAGE_BYTES" "$CHANGE_BYTES" "$2" |
			rbd_a import-diff --no-progress - rbd/img
	) >>"$WORK/change.log" 2>&1
}

rbd_bench_4k() {
	rbd_a bench --io-type write --io-size 4K --io-pattern rand --io-total "${CHANGE_MIB}M" \
		rbd/img >>"$WORK/change.log" 2>&1
}

# ---- the copies -------------------------------------------------------------------------------

# The pipes count their stream with tee >(wc -c) into $WORK/stream.bytes.tmp (a copy through one more
# pipe; cheap next to rbd's work).
count_stream() { tee >(wc -c >"$WORK/stream.bytes.tmp"); }

stream_bytes() {	# the count of the last pipe, once wc has written it
	for _ in $(seq 1 200); do
		[ -s "$WORK/stream.bytes.tmp" ] && break
		sleep 0.05
	done
	cat "$WORK/stream.bytes.tmp" 2>/dev/null
	rm -f "$WORK/stream.bytes.tmp"
}

pipe_full() {	# the pipe's baseline: export | import, then the snapshot
	set -o pipefail
	rbd_a export --no-progress rbd/img@s0 - | count_stream |
		rbd_b import --no-progress - rbd/img-pipe &&
		rbd_b snap create --no-progress rbd/img-pipe@s0
}

pipe_delta() {	# pipe_delta FROM TO
	set -o pipefail
	rbd_a export-diff --no-progress --from-snap "$1" "rbd/img@$2" - | count_stream |
		rbd_b import-diff --no-progress - rbd/img-pipe
}

ferry_copy() {	# ferry_copy ARGS...: ferry copy to site B, JSON on stdout
	# shellcheck disable=SC2086
	timeout -k 5 "$TMO" "$FERRY" copy --to "$FERRY_URL" --token-file "$WORK/token" \
		--cacert "$WORK/tls/ca.pem" --ceph-conf "$CONF_A" --json $FERRY_EXTRA "$@"
}

zstd_size() {	# zstd_size FROM TO: bytes of the export-diff stream through zstd -1 (untimed)
	(
		set -o pipefail
		rbd_a export-diff --no-progress --from-snap "$1" "rbd/img@$2" - | zstd -1 -T1 -q -c | wc -c
	) 2>>"$WORK/zstd.err"
}

changed_extents() {	# changed_extents FROM TO: sets D_EXTENTS and D_BYTES (exact, per rbd diff)
	local out
	out=$(rbd_a diff --from-snap "$1" "rbd/img@$2" 2>>"$WORK/change.log" |
		awk 'NR > 1 && $3 == "data" { n++; b += $2 } END { printf "%d %d", n, b }') || out="0 0"
	read -r D_EXTENTS D_BYTES <<<"$out"
}

rbd_sha() {	# rbd_sha CONF SPEC: SHA-256 of the image's bytes (openssl: 3x less CPU than sha256sum)
	(
		set -o pipefail
		timeout -k 5 "$TMO" rbd -c "$1" export --no-progress "$2" - 2>>"$WORK/verify.err" |
			openssl dgst -sha256 -r | cut -d' ' -f1
	)
}

# verify_start ROW SNAP: starts comparing B's img-pipe@SNAP and img-ferry@SNAP with A's img@SNAP
# in the background (untimed: it overlaps writing the next change, never a timed copy);
# verify_finish waits for it and sets VP[ROW] and VF[ROW] to ok or DIFFERS (unset: not compared,
# that side had failed already).
V_ROW="" V_SNAP="" V_PIDS="" V_PIPE=0 V_FERRY=0
verify_start() {
	V_ROW=$1 V_SNAP=$2 V_PIDS="" V_PIPE=$PIPE_OK V_FERRY=$FERRY_OK
	rm -f "$WORK"/sha.?
	rbd_sha "$CONF_A" "rbd/img@$V_SNAP" >"$WORK/sha.a" &
	V_PIDS="$V_PIDS $!"
	if [ "$V_PIPE" = 1 ]; then
		rbd_sha "$CONF_B" "rbd/img-pipe@$V_SNAP" >"$WORK/sha.p" &
		V_PIDS="$V_PIDS $!"
	fi
	if [ "$V_FERRY" = 1 ]; then
		rbd_sha "$CONF_B" "rbd/img-ferry@$V_SNAP" >"$WORK/sha.f" &
		V_PIDS="$V_PIDS $!"
	fi
}
verify_finish() {
	local a p f pid row=$V_ROW
	[ -n "$row" ] || return 0
	for pid in $V_PIDS; do wait "$pid"; done	# (not a bare wait: ferryd is a child too)
	a=$(cat "$WORK/sha.a" 2>/dev/null) p=$(cat "$WORK/sha.p" 2>/dev/null) f=$(cat "$WORK/sha.f" 2>/dev/null)
	rm -f "$WORK"/sha.?
	[ ${#a} = 64 ] || { show_log "$WORK/verify.err"; die "cannot read A's img@$V_SNAP to verify the copies"; }
	if [ "$V_PIPE" = 1 ]; then
		if [ "$p" = "$a" ]; then VP[$row]=ok; else VP[$row]=DIFFERS; PIPE_OK=0; FAILED=1; fi
	fi
	if [ "$V_FERRY" = 1 ]; then
		if [ "$f" = "$a" ]; then VF[$row]=ok; else VF[$row]=DIFFERS; FERRY_OK=0; FAILED=1; fi
	fi
	[ "${VP[$row]:-}" != DIFFERS ] || note "pipe: B's img-pipe@$V_SNAP DIFFERS from A's img@$V_SNAP"
	[ "${VF[$row]:-}" != DIFFERS ] || note "ferry: B's img-ferry@$V_SNAP DIFFERS from A's img@$V_SNAP"
	V_ROW="" V_PIDS=""
}

# trim SNAP: removes SNAP from the three images once no copy needs it as a base (memstore keeps
# old snapshots' objects in RAM). A failure costs RAM, not correctness: it is only reported.
trim() {
	local snap=$1
	[ "$TRIM" = 1 ] || return 0
	{
		rbd_a snap rm --no-progress "rbd/img@$snap" || note "could not remove A's img@$snap"
		[ "$PIPE_OK" = 0 ] || rbd_b snap rm --no-progress "rbd/img-pipe@$snap" ||
			note "could not remove B's img-pipe@$snap"
		[ "$FERRY_OK" = 0 ] || rbd_b snap rm --no-progress "rbd/img-ferry@$snap" ||
			note "could not remove B's img-ferry@$snap"
	} 2>>"$WORK/change.log"
}

# record_ferry ROW: ferry's JSON of the last timed run into the row's fields.
record_ferry() {
	local row=$1 out
	out=$(cat "$WORK/$2.out" 2>/dev/null)
	F_WIRE[$row]=$(json_field "$out" bytes_sent)
	F_READ[$row]=$(json_field "$out" bytes_read)
	F_DELTA[$row]=$(json_field "$out" segments_delta)
	F_SENT[$row]=$(json_field "$out" segments_sent)
	F_TOTAL[$row]=$(json_field "$out" segments_total)
	F_SEGSZ[$row]=$(json_field "$out" segment_size)
	F_OWN[$row]=$(json_field "$out" seconds)
	[ "$(json_field "$out" status)" = complete ]
}

# pipe_failed ROW LABEL / ferry_failed ROW LABEL: after a failed copy (exit status $T_RC): that
# side's later steps are skipped (they need this one's snapshot as their base).
pipe_failed() {
	PIPE_OK=0 FAILED=1 PFAIL[$1]=1
	note "pipe: $2 FAILED (exit $T_RC):"
	show_log "$WORK/pipe$1.err"
}
ferry_failed() {
	FERRY_OK=0 FAILED=1 FFAIL[$1]=1
	note "ferry: $2 FAILED (exit $T_RC):"
	show_log "$WORK/ferry$1.err"
	if ! kill -0 "$FERRYD_PID" 2>/dev/null; then
		wait "$FERRYD_PID"
		note "ferryd has exited (status $?); the end of its log:"
		show_log "$WORK/ferryd.log"
	fi
}

# ---- the run ----------------------------------------------------------------------------------

declare -a LABEL CHANGED P_S P_WIRE P_ZST F_S F_WIRE F_READ F_DELTA F_SENT F_TOTAL F_SEGSZ F_OWN
declare -a VP VF EXTENTS DISTINCT PFAIL FFAIL P_CPU F_CPU
PIPE_OK=1 FERRY_OK=1 FAILED=0
T_START=$(now_ns)

# A copy of the binaries, so that a rebuild during the run cannot mix versions; taken again when
# one of them changed while it was copied (a build was writing it).
mkdir -p "$WORK/bin"
stamp() { stat -c '%s %Y' "$SRC_BIN/ferry" "$SRC_BIN/ferryd" 2>/dev/null; }
copied=0
for _ in $(seq 1 20); do
	before=$(stamp)
	cp "$SRC_BIN/ferry" "$SRC_BIN/ferryd" "$WORK/bin/" || die "cannot copy the binaries"
	sleep 1
	if [ "$before" = "$(stamp)" ] && cmp -s "$SRC_BIN/ferry" "$WORK/bin/ferry" &&
		cmp -s "$SRC_BIN/ferryd" "$WORK/bin/ferryd"; then
		copied=1
		break
	fi
done
[ "$copied" = 1 ] || die "$SRC_BIN/ferry or ferryd kept changing (a build running?)"
FERRY="$WORK/bin/ferry" FERRYD="$WORK/bin/ferryd"

echo "rbd-delta-bench: ferry RBD snapshot deltas vs rbd export-diff | rbd import-diff"
note "$(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores, $(awk '/^MemTotal:/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), $(rbd --version 2>/dev/null | awk '{ print "ceph " $3 " " $5 }')"
note "binaries: copies of $SRC_BIN/ferry, ferryd (built $(date -u -r "$WORK/bin/ferryd" '+%Y-%m-%d %H:%M:%S'), sha256 $(openssl dgst -sha256 -r "$WORK/bin/ferryd" | cut -c1-12)); tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$([ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] && echo ' with local changes')"
note "image $IMAGE_MIB MiB, $CHANGE_MIB MiB written per pattern, seed $SEED${FERRY_EXTRA:+, ferry args: $FERRY_EXTRA}"
LOAD_START=$(loadavg)
note "load average at the start: $LOAD_START"
awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }' &&
	note "WARNING: the machine is busy: other work competes for the CPUs and skews the timings"

# Tests started in parallel pick ports one at a time: hold their lock until both clusters listen.
progress "starting clusters A and B"
exec {PORT_LOCK}>/tmp/ferry-ceph-ports.lock
flock -w 300 "$PORT_LOCK" || die "waited 300 s for /tmp/ferry-ceph-ports.lock"
start_cluster A "$PORT_LO"
start_cluster B $((PORT_A + 100))
exec {PORT_LOCK}>&-
note "clusters: A memstore on 127.0.0.1:$PORT_A, B memstore on 127.0.0.1:$PORT_B"
OSD_A=$(osd_pid "$WORK/ceph-A") OSD_B=$(osd_pid "$WORK/ceph-B")
start_ferryd
note "ferryd for site B: $FERRY_URL"

# The image on A, random data, snapshot s0.
progress "writing img on A"
t0=$(now_ns)
bg rbd_a create --size "${IMAGE_MIB}M" rbd/img >>"$WORK/change.log" 2>&1 ||
	{ show_log "$WORK/change.log"; die "rbd create failed"; }
bg apply_stream fill "$SEED" || { show_log "$WORK/change.log"; die "filling the image failed"; }
bg rbd_a snap create --no-progress rbd/img@s0 >>"$WORK/change.log" 2>&1 || die "rbd snap create s0 failed"
features=$(rbd_a info rbd/img 2>/dev/null | sed -n 's/^[[:space:]]*features: //p')
note "img: $IMAGE_MIB MiB of random data written in $(calc %.1f "($(now_ns) - $t0) / 1e9") s; features: $features"
case $features in *fast-diff*) ;; *) note "WARNING: no fast-diff on the image: ferry lists changes the slow way" ;; esac

# Row 0: the baselines (full copies of s0).
LABEL[0]="full copy s0" CHANGED[0]=$IMAGE_BYTES P_ZST[0]=""
EXTENTS[0]="" DISTINCT[0]=$IMAGE_BYTES
progress "full copy of s0: pipe"
rm -f "$WORK/stream.bytes.tmp"
timed pipe0 pipe_full
P_S[0]=$T_S P_WIRE[0]=$(stream_bytes) P_CPU[0]="$T_CLIENT - $T_OSDA $T_OSDB"
[ "$T_RC" = 0 ] || pipe_failed 0 "full copy"
progress "full copy of s0: ferry"
timed ferry0 ferry_copy rbd:rbd/img@s0 img-ferry
F_S[0]=$T_S F_CPU[0]="$T_CLIENT $T_FERRYD $T_OSDA $T_OSDB"
if [ "$T_RC" != 0 ] || ! record_ferry 0 ferry0; then
	ferry_failed 0 "full copy"
fi
progress "verifying s0 (in the background)"
verify_start 0 s0

# step ROW LABEL FROM TO MAKE...: MAKE changes A's live image (while FROM's verification runs),
# TO is snapshotted, and the delta FROM -> TO travels both ways, timed; then FROM is removed and
# TO's verification starts in the background.
step() {
	local row=$1 label=$2 from=$3 to=$4
	shift 4
	LABEL[$row]=$label CHANGED[$row]=$CHANGE_BYTES
	progress "$label: writing the change ($*)"
	t0=$(now_ns)
	bg "$@" || { show_log "$WORK/change.log"; die "$label: writing the change failed"; }
	bg rbd_a snap create --no-progress "rbd/img@$to" >>"$WORK/change.log" 2>&1 ||
		die "rbd snap create $to failed"
	note "$label: change written in $(calc %.1f "($(now_ns) - $t0) / 1e9") s"
	verify_finish	# $from's, before anything is timed
	P_S[$row]="" F_S[$row]="" P_WIRE[$row]="" P_ZST[$row]="" P_CPU[$row]="" F_CPU[$row]=""
	if [ "$PIPE_OK" = 1 ]; then
		progress "$label: pipe"
		rm -f "$WORK/stream.bytes.tmp"
		timed "pipe$row" pipe_delta "$from" "$to"
		P_S[$row]=$T_S P_WIRE[$row]=$(stream_bytes) P_CPU[$row]="$T_CLIENT - $T_OSDA $T_OSDB"
		[ "$T_RC" = 0 ] || pipe_failed "$row" "$label"
	fi
	if [ "$FERRY_OK" = 1 ]; then
		progress "$label: ferry"
		timed "ferry$row" ferry_copy --from-snap "$from" "rbd:rbd/img@$to" img-ferry
		F_S[$row]=$T_S F_CPU[$row]="$T_CLIENT $T_FERRYD $T_OSDA $T_OSDB"
		if [ "$T_RC" != 0 ] || ! record_ferry "$row" "ferry$row"; then
			ferry_failed "$row" "$label"
		fi
	fi
	if [ "$ZSTD" = 1 ]; then
		progress "$label: the export-diff stream through zstd -1 (untimed)"
		P_ZST[$row]=$(bg zstd_size "$from" "$to") || note "measuring the stream through zstd failed"
	fi
	changed_extents "$from" "$to"
	EXTENTS[$row]=$D_EXTENTS DISTINCT[$row]=$D_BYTES
	trim "$from"
	progress "$label: verifying $to (in the background)"
	verify_start "$row" "$to"
}

step 1 "4 MiB blocks" s0 s1 apply_stream blocks $((SEED + 1))
step 2 "4 KiB scattered, rbd bench" s1 s2 rbd_bench_4k
step 3 "4 KiB scattered, random" s2 s3 apply_stream scattered $((SEED + 2))
progress "waiting for the verification of s3"
verify_finish

# ---- report -----------------------------------------------------------------------------------

mb() {	# bytes as MB: one decimal, three below 1 MB
	[ -n "$1" ] || { printf '-'; return; }
	if [ "$1" -lt 1000000 ]; then calc %.3f "$1 / 1e6"; else calc %.1f "$1 / 1e6"; fi
}
rate() { [ -n "$2" ] && calc %.1f "$1 / 1e6 / ($2 > 0 ? $2 : 0.01)" || printf '-'; }
ratio() { { [ -n "$1" ] && [ -n "$2" ] && [ "$2" != 0 ]; } && calc %.2f "$1 / $2" || printf '-'; }
or_dash() { printf '%s' "${1:--}"; }
times() { case $1 in - | '') printf '-' ;; *) printf '%sx' "$1" ;; esac; }	# times 1.5: 1.5x

echo
echo "Results (seconds: wall clock of the whole command; MB/s: data written to the image per second"
echo "of transfer, 1 MB = 10^6 bytes; wire: ferry's bytes_sent / the export-diff stream's size)"
echo
printf '%-28s %-6s %8s %9s %10s %8s  %s\n' pattern method seconds "MB/s" "wire MB" "wire/chg" "copy"
for row in 0 1 2 3; do
	[ -n "${LABEL[$row]:-}" ] || continue
	sz=$(calc %d "${CHANGED[$row]} / 1048576")
	if [ -n "${PFAIL[$row]:-}" ]; then
		printf '%-28s %-6s %8s %9s %10s %8s  %s\n' "${LABEL[$row]}" pipe - - - - FAILED
	else
		printf '%-28s %-6s %8s %9s %10s %8s  %s\n' "${LABEL[$row]}" pipe "$(or_dash "${P_S[$row]}")" \
			"$(rate "${CHANGED[$row]}" "${P_S[$row]}")" "$(mb "${P_WIRE[$row]}")" \
			"$(ratio "${P_WIRE[$row]}" "${CHANGED[$row]}")" "${VP[$row]:-skipped}"
	fi
	if [ -n "${FFAIL[$row]:-}" ]; then
		printf '%-28s %-6s %8s %9s %10s %8s  %s\n' "  ($sz MiB written)" ferry - - - - FAILED
	else
		printf '%-28s %-6s %8s %9s %10s %8s  %s\n' "  ($sz MiB written)" ferry "$(or_dash "${F_S[$row]}")" \
			"$(rate "${CHANGED[$row]}" "${F_S[$row]}")" "$(mb "${F_WIRE[$row]:-}")" \
			"$(ratio "${F_WIRE[$row]:-}" "${CHANGED[$row]}")" "${VF[$row]:-skipped}"
	fi
done

echo
echo "Ratios ferry/pipe (speed: pipe seconds / ferry seconds; wire: ferry bytes / pipe bytes)"
echo
printf '%-28s %8s %8s %8s  %s\n' pattern speed goal wire "goal met"
for row in 0 1 2 3; do
	[ -n "${LABEL[$row]:-}" ] || continue
	case $row in 1) goal=1.5 ;; 2 | 3) goal=3 ;; *) goal="" ;; esac
	speed=-
	[ -n "${PFAIL[$row]:-}${FFAIL[$row]:-}" ] || speed=$(ratio "${P_S[$row]}" "${F_S[$row]}")
	met="-"
	if [ -n "$goal" ] && [ "$speed" != - ]; then
		met=$(awk -v s="$speed" -v g="$goal" 'BEGIN { print (s >= g ? "yes" : "NO") }')
	fi
	wire=-
	[ -n "${PFAIL[$row]:-}${FFAIL[$row]:-}" ] || wire=$(ratio "${F_WIRE[$row]:-}" "${P_WIRE[$row]}")
	printf '%-28s %8s %8s %8s  %s\n' "${LABEL[$row]}" "$(times "$speed")" "${goal:+>=${goal}x}" \
		"$(times "$wire")" "$met"
done

echo
echo "Details"
echo
printf '%-28s %8s %9s %11s %10s %10s %11s\n' pattern extents "chg MiB" "ferry own s" \
	"segs chg" "segs sent" "read MB"
for row in 0 1 2 3; do
	[ -n "${LABEL[$row]:-}" ] || continue
	printf '%-28s %8s %9s %11s %10s %10s %11s\n' "${LABEL[$row]}" "$(or_dash "${EXTENTS[$row]}")" \
		"$(calc %.1f "${DISTINCT[$row]:-0} / 1048576")" "$([ -n "${F_OWN[$row]:-}" ] && calc %.2f "${F_OWN[$row]}" || printf -)" \
		"$(or_dash "${F_DELTA[$row]:-}")${F_DELTA[$row]:+/${F_TOTAL[$row]}}" "$(or_dash "${F_SENT[$row]:-}")" "$(mb "${F_READ[$row]:-}")"
done
echo "  extents / chg MiB: the changed extents and distinct bytes per \`rbd diff --from-snap\` (exact);"
echo "  segs chg: segments ferry found changed (fast-diff, whole objects); segs sent: segments it"
echo "  shipped; read MB: ferry's bytes_read from A; ferry own s: the seconds ferry reports itself"

echo
echo "CPU seconds (user+sys) during each timed copy: client = the rbd pair or ferry (with everything"
echo "they waited for), ferryd = site B's daemon, osd A / osd B = the clusters' OSDs"
echo
printf '%-28s %-6s %8s %8s %8s %8s %8s\n' pattern method client ferryd "osd A" "osd B" total
for row in 0 1 2 3; do
	[ -n "${LABEL[$row]:-}" ] || continue
	for method in pipe ferry; do
		if [ "$method" = pipe ]; then cpu=${P_CPU[$row]:-}; else cpu=${F_CPU[$row]:-}; fi
		[ -n "$cpu" ] || continue
		read -r c d oa ob <<<"$cpu"
		printf '%-28s %-6s %8s %8s %8s %8s %8s\n' "$([ "$method" = pipe ] && echo "${LABEL[$row]}")" \
			"$method" "$c" "$d" "$oa" "$ob" "$(calc %.1f "$c + ${d/-/0} + $oa + $ob")"
	done
done

echo
echo "Notes"
note "Both clusters are memstore (RAM) on one 127.0.0.1 host; everything crosses loopback, so the"
note "  link costs nothing and CPU ($(nproc) cores shared by 2 OSDs, 2 mons, ferry, ferryd, rbd) is the limit."
note "  On a real WAN the bytes on the wire matter far more than here."
note "MB/s counts the data written to the image per pattern ($CHANGE_MIB MiB; the full copy: the"
note "  image), not bytes on the wire or bytes read. ferry's wire bytes are its segment bodies"
note "  (bytes_sent: after zstd, before HTTP/TLS framing); the pipe's are the uncompressed"
note "  export-diff stream, i.e. what an ssh pipe would carry."
note "The pipe's wire bytes were counted with tee >(wc -c) inside the timed pipeline."
note "The full copies write new objects at B; the deltas overwrite objects that the previous snapshot"
note "  holds, so Ceph copies each such object first (copy-on-write), on both sides alike."
note "rbd bench fills every byte of every write with one and the same value: its data compresses to"
note "  almost nothing, which favours ferry (zstd) over the uncompressed pipe (BENCH_RBD_ZSTD=1 shows"
note "  the pipe's stream through zstd -1). The 'random' row writes incompressible random data."
for row in 1 2 3; do
	[ -z "${P_ZST[$row]:-}" ] ||
		note "${LABEL[$row]}: the pipe's export-diff stream through zstd -1 would be $(mb "${P_ZST[$row]}") MB"
done
for row in 1 2 3; do
	[ -n "${F_DELTA[$row]:-}" ] && [ -n "${F_WIRE[$row]:-}" ] || continue
	segsz=${F_SEGSZ[$row]:-4194304}
	whole=$((F_DELTA[row] * segsz))
	note "${LABEL[$row]}: ferry found ${F_DELTA[$row]} changed segments of $((segsz / 1048576)) MiB ($(mb $whole) MB),"
	note "  read $(mb "${F_READ[$row]}") MB from A and sent $(mb "${F_WIRE[$row]}") MB for $(mb "${DISTINCT[$row]}") MB of distinct changed bytes."
	if [ "$row" != 2 ]; then	# random data: what was sent shows what was shipped
		if [ "${F_WIRE[$row]}" -ge $((whole * 9 / 10)) ] && [ "${DISTINCT[$row]}" -lt $((whole * 8 / 10)) ]; then
			note "  => ferry shipped whole $((segsz / 1048576)) MiB segments for each changed object, not just the changed extents."
		elif [ "${F_WIRE[$row]}" -le $((DISTINCT[row] * 12 / 10 + 65536)) ]; then
			note "  => ferry shipped about the changed bytes only (changed extents, or whole segments that changed whole)."
		fi
	fi
done
note "Goals from the issue: ferry >= 1.5x the pipe on 4 MiB blocks, >= 3x on 4 KiB scattered writes."
note "Order per pattern: pipe first, then ferry (both read the same snapshot of A; memstore has no cache)."
[ "$TRIM" = 1 ] && note "Each step's base snapshot was removed once both copies were done (BENCH_RBD_TRIM=0 keeps them)."
note "Verification (untimed) ran while the next change was written, and ended before the next timed copy."
note "load average at the start: $LOAD_START, at the end: $(loadavg) ($(nproc) cores)"
note "total run $(calc %.0f "($(now_ns) - $T_START) / 1e9") s"

if [ "$FAILED" != 0 ]; then
	echo "rbd-delta-bench: FAILED: a copy failed or differs from the source (see above)" >&2
	exit 1
fi
echo "all copies verified: B's img-pipe and img-ferry equal A's img at every snapshot"
