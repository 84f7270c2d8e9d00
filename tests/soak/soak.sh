#!/bin/bash
# The thrash soak (`make soak`): continuous replication between two real sites, thrashed at random
# while a write load runs, then every point compared byte for byte by a reader independent of
# ferry. Ceph's rbd_mirror_thrash is the model.
#
#   SOAK_MINUTES=20 bash tests/soak/soak.sh
#
# Two single-node bluestore Ceph clusters (source A on 127.0.0.1:SOAK_CEPH_PORT, default 9100;
# replica B 200 above), two ferryd (primary A, replica B), two groups (soak-g1: soak-a1 64 MiB
# and soak-a2 48 MiB; soak-g2: soak-b1 32 MiB), interval 2 s, under load-writer.py on the source.
# A reaches B only through link-proxy.py (B's site is registered at A with the proxy's URL).
# Every SOAK_GAP_MIN..SOAK_GAP_MAX seconds (20..90; 15..40 when SOAK_MINUTES <= 5) after the
# previous fault has ended, one of these, from a shuffled deck so that each kind comes up once
# before any comes again:
#   kill    kill -9 of either ferryd (chosen at random), restarted 0-3 s later on its port
#   cut     every connection of the link reset and new ones refused, 5-30 s
#   stall   the link's connections kept open and no byte forwarded, 5-30 s
#   osd     the replica cluster's OSD stopped, 10-30 s, then started again
# (holds 5-15 s and 10-20 s when SOAK_MINUTES <= 5). After SOAK_MINUTES of this, the writes stop,
# and every group must converge by itself (SOAK_CONVERGE_SECONDS, default 300): all its images
# in-sync at one point taken after the last fault and after the writes stopped. Then the primary
# is stopped (SIGTERM) for a still picture and compare-points.py compares every point both sides
# still hold, and the newest point with the source image.
#
# Progress goes to stderr; the last line on stdout is one JSON object: minutes, kills, link_cuts,
# link_stalls, osd_restarts, points_committed, points_compared, mismatches, max_lag_seconds,
# bytes_resent, and more (converged, converge_seconds, faults, seed, problems, logs).
# bytes_resent is segments_resent (ferryd's ferry_transfer_segments_resent_total, summed over
# the primary's restarts) times the segment size: ferryd counts segments, not bytes.
# Exit 0 only when mismatches is 0, every group converged, and no ferryd crashed or reported a
# sanitizer error. On failure the folder with every log is kept (its path is in the JSON).
# SOAK_SEED makes the fault sequence repeatable; SOAK_KEEP=1 keeps the folder in any case.
SOAK_HERE=$(cd "$(dirname "$0")" && pwd)
. "$SOAK_HERE/../integration/lib.sh"
. "$SOAK_HERE/../integration/lib-ceph.sh"

SOAK_MINUTES=${SOAK_MINUTES:-20}
if awk -v m="$SOAK_MINUTES" 'BEGIN { exit !(m <= 5) }'; then
	GAP_MIN=${SOAK_GAP_MIN:-15} GAP_MAX=${SOAK_GAP_MAX:-40} HOLD_LINK="5 15" HOLD_OSD="10 20"
else
	GAP_MIN=${SOAK_GAP_MIN:-20} GAP_MAX=${SOAK_GAP_MAX:-90} HOLD_LINK="5 30" HOLD_OSD="10 30"
fi
SOAK_SEED=${SOAK_SEED:-$(( $(date +%s) % 32768 ))}
RANDOM=$SOAK_SEED
CEPH_PORT_A=${SOAK_CEPH_PORT:-9100}
CEPH_PORT_B=$((CEPH_PORT_A + 200))
RATE_KB=${SOAK_RATE_KB:-200}	# per image, 1000 bytes a second
KEEP=${SOAK_KEEP_POINTS:-8}
CONVERGE_SECONDS=${SOAK_CONVERGE_SECONDS:-300}
IMAGES="soak-a1 soak-a2 soak-b1"
declare -A GROUP_OF=([soak-a1]=soak-g1 [soak-a2]=soak-g1 [soak-b1]=soak-g2)
declare -A SIZE_OF=([soak-a1]=64 [soak-a2]=48 [soak-b1]=32)
GROUPS_LIST="soak-g1 soak-g2"

PROBLEMS=()	# what went wrong, one sentence each (in the JSON line)
KILLS=0 KILLS_A=0 KILLS_B=0 CUTS=0 STALLS=0 OSD_RESTARTS=0
LOAD_PID="" PROXY_PID="" SAMPLER_PID=""

say() { printf '%s soak: %s\n' "$(date +%T)" "$*" >&2; }
problem() { PROBLEMS+=("$*"); test_failed=1; say "PROBLEM: $*"; }
now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }
between() { echo $(($1 + RANDOM % ($2 - $1 + 1))); }	# between LO HI: a whole number in LO..HI

# The end of every run: the load, the sampler and the proxy (by their PIDs), then lib-ceph.sh's
# clean-up (ferryd, clusters, lib.sh's checks), whose report goes to stderr so that the JSON
# line stays last on stdout. The folder is kept when anything failed.
soak_exit() {
	local rc=$?
	[ -z "$LOAD_PID" ] || kill -TERM "$LOAD_PID" 2>/dev/null
	[ -z "$SAMPLER_PID" ] || kill -TERM "$SAMPLER_PID" 2>/dev/null
	[ -z "$PROXY_PID" ] || kill -TERM "$PROXY_PID" 2>/dev/null
	[ "${SOAK_KEEP:-0}" = 0 ] || test_failed=1
	[ "$rc" = 0 ] || test_failed=1
	ceph_cleanup >&2
	exit "$rc"
}
trap soak_exit EXIT
trap 'say "interrupted"; exit 130' INT TERM

# --- the replica cluster's OSD, stopped and started alone -------------------------------------
ceph_t() { timeout -k 2 "$1" /usr/bin/python3 /usr/bin/ceph -c "$CEPH_CONF_B" --connect-timeout "$1" "${@:2}"; }
osd_is() { ceph_t 10 osd dump 2>/dev/null | grep -q "^osd\.0 $1"; }
task_running() {	# task_running PID: one of its threads runs (a zombie's do not)
	local t line
	for t in /proc/"$1"/task/*/stat; do
		line=$(cat "$t" 2>/dev/null) || continue
		line=${line##*) }
		case ${line%% *} in Z|X|'') ;; *) return 0 ;; esac
	done
	return 1
}
osd_stop() {
	local pid
	pid=$(sed -n 2p "$CEPH_DIR_B/pids")
	case "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)" in
	*ceph-osd*"-c $CEPH_CONF_B "*) ;;
	*) problem "the replica's OSD (pid $pid in $CEPH_DIR_B/pids) is not running before its fault"; return 1 ;;
	esac
	kill -TERM "$pid"
	wait_until 30 eval '! task_running '"$pid" || { kill -KILL "$pid"; wait_until 10 eval '! task_running '"$pid"; }
	# SIGTERM tells the mon at once; the fault is on only once the map says so
	WAIT_INTERVAL=0.5 wait_until 30 osd_is down || say "the mon does not show osd.0 down yet"
}
osd_start() {
	local pid
	(
		for fd in /proc/$BASHPID/fd/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec setsid ceph-osd -f -c "$CEPH_CONF_B" -i 0
	) < /dev/null >> "$CEPH_DIR_B/log/osd.0.out" 2>&1 &
	pid=$!
	# ceph-cluster.sh stop reads the PIDs from this file: mon first, then osd
	sed -i "2s/.*/$pid/" "$CEPH_DIR_B/pids"
	WAIT_INTERVAL=0.5 wait_until 90 osd_is up || problem "the replica's OSD did not come back up in 90 s"
}

# --- the link -----------------------------------------------------------------------------------
link_is() { [ "$(cat "$TEST_DIR/link.state" 2>/dev/null)" = "$1" ]; }
link_set() {	# link_set SIGNAL STATE
	kill -"$1" "$PROXY_PID" && wait_until 10 link_is "$2" || problem "the link proxy did not go $2"
}

# --- ferryd ------------------------------------------------------------------------------------
start_primary() {
	DAEMON_PORT=$PORT_A start_daemon primary --ceph-conf "$CEPH_CONF_A" || return 1
	PRIMARY_PID=$DAEMON_PID PRIMARY_URL=$DAEMON_URL
}
start_replica() {
	DAEMON_PORT=$PORT_B start_daemon replica --ceph-conf "$CEPH_CONF_B" || return 1
	REPLICA_PID=$DAEMON_PID REPLICA_URL=$DAEMON_URL
}
# alive: both ferryd still run; one that died without being killed is a crash (kept, restarted)
alive() {
	if ! kill -0 "$PRIMARY_PID" 2>/dev/null; then
		wait "$PRIMARY_PID" 2>/dev/null
		problem "the primary ferryd (pid $PRIMARY_PID) died by itself, status $? (see $TEST_DIR/primary.log)"
		FERRYD_STATUS[$PRIMARY_PID]=crashed
		start_primary || problem "the primary ferryd did not restart"
	fi
	if ! kill -0 "$REPLICA_PID" 2>/dev/null; then
		wait "$REPLICA_PID" 2>/dev/null
		problem "the replica ferryd (pid $REPLICA_PID) died by itself, status $? (see $TEST_DIR/replica.log)"
		FERRYD_STATUS[$REPLICA_PID]=crashed
		start_replica || problem "the replica ferryd did not restart"
	fi
}

# --- the sampler: lag and resent segments at the primary, once a second, into samples ----------
# Each line: UNIX_MS MAX_LAG_SECONDS SEGMENTS_RESENT (a counter that starts again at 0 when the
# primary restarts). A sample that cannot be taken (the primary is down) is skipped.
sampler() {
	local status lag resent
	while [ ! -e "$TEST_DIR/sampler.stop" ]; do
		status=$(timeout 10 "$FERRY" status --json --daemon "$PRIMARY_URL" \
			--token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem" 2>/dev/null)
		lag=$(jq -r '[.volumes[] | select(.name | startswith("rbd:rbd/soak-")) | .lag_seconds // 0] | max // empty' \
			<<< "$status" 2>/dev/null)
		resent=$(timeout 10 curl -sS --cacert "$TEST_DIR/tls/ca.pem" \
			-H "Authorization: Bearer $(cat "$TEST_DIR/token")" "$PRIMARY_URL/metrics" 2>/dev/null |
			awk '$1 == "ferry_transfer_segments_resent_total" { print $2 }')
		[ -z "$lag" ] || [ -z "$resent" ] || echo "$(now_ms) $lag $resent" >> "$TEST_DIR/samples"
		sleep 1
	done
}

# --- the faults ---------------------------------------------------------------------------------
fault_log() { echo "$*" >> "$TEST_DIR/faults.log"; say "fault: $*"; }
fault_kill() {
	local who hold
	hold=$(between 0 3)
	if [ $((RANDOM % 2)) = 0 ]; then
		who=primary
		kill9 "$PRIMARY_PID"
		sleep "$hold"
		start_primary || problem "the primary ferryd did not restart after kill -9"
		KILLS_A=$((KILLS_A + 1))
	else
		who=replica
		kill9 "$REPLICA_PID"
		sleep "$hold"
		start_replica || problem "the replica ferryd did not restart after kill -9"
		KILLS_B=$((KILLS_B + 1))
	fi
	KILLS=$((KILLS + 1))
	FAULT_NOTE="kill -9 $who, restarted after ${hold} s"
}
fault_link() {	# fault_link cut|stall
	local hold
	hold=$(between $HOLD_LINK)
	if [ "$1" = cut ]; then link_set USR1 cut; CUTS=$((CUTS + 1)); else link_set USR2 stall; STALLS=$((STALLS + 1)); fi
	sleep "$hold"
	link_set HUP up
	FAULT_NOTE="link $1 for $hold s"
}
fault_osd() {
	local hold t0
	hold=$(between $HOLD_OSD)
	t0=$SECONDS
	osd_stop
	sleep "$hold"
	osd_start
	OSD_RESTARTS=$((OSD_RESTARTS + 1))
	FAULT_NOTE="replica OSD stopped for $hold s (down to up again: $((SECONDS - t0)) s)"
}
DECK=()
next_fault() {	# sets FAULT: the next card of a deck shuffled anew once it is used up
	local kinds=(kill cut stall osd) i j tmp
	if [ "${#DECK[@]}" = 0 ]; then
		for ((i = ${#kinds[@]} - 1; i > 0; i--)); do
			j=$((RANDOM % (i + 1))); tmp=${kinds[i]}; kinds[i]=${kinds[j]}; kinds[j]=$tmp
		done
		DECK=("${kinds[@]}")
	fi
	FAULT=${DECK[0]}
	DECK=("${DECK[@]:1}")
}

# --- convergence ---------------------------------------------------------------------------------
# converged AFTER_MS: every group's images are in-sync at one point taken after AFTER_MS, and the
# replica holds it.
converged() {
	local status group points img
	status=$(timeout 10 "$FERRY" status --json --daemon "$PRIMARY_URL" --token-file "$TEST_DIR/token" \
		--cacert "$TEST_DIR/tls/ca.pem" 2>/dev/null) || return 1
	for group in $GROUPS_LIST; do
		points=""
		for img in $IMAGES; do
			[ "${GROUP_OF[$img]}" = "$group" ] || continue
			jq -e --arg n "rbd:rbd/$img" --argjson after "$1" '.volumes[] | select(.name == $n) |
				.state == "in-sync" and (.last_point_time_ms // 0) > $after' <<< "$status" > /dev/null || return 1
			points="$points $(jq -r --arg n "rbd:rbd/$img" '.volumes[] | select(.name == $n) | .last_point' <<< "$status")"
		done
		# one point for the whole group
		[ "$(echo $points | tr ' ' '\n' | sort -u | wc -l)" = 1 ] || return 1
		for img in $IMAGES; do
			[ "${GROUP_OF[$img]}" = "$group" ] || continue
			replica_points "$img" | grep -qx "$(echo $points | cut -d' ' -f1)" || return 1
		done
	done
}

# ===================================================================================================
say "seed $SOAK_SEED, $SOAK_MINUTES minutes, faults every $GAP_MIN-$GAP_MAX s, folder $TEST_DIR, binaries $FERRY_BIN"
for tool in ceph-mon ceph-osd rbd jq curl; do
	command -v "$tool" > /dev/null || { problem "$tool is missing (sh tests/install-deps.sh)"; exit 1; }
done
/usr/bin/python3 -c 'import rbd' 2>/dev/null || { problem "python3-rbd is missing (sh tests/install-deps.sh)"; exit 1; }
[ -x "$FERRYD" ] || { problem "no ferryd at $FERRYD (make, or set FERRY_BIN)"; exit 1; }

# Two clusters, started side by side, stopped at exit by lib-ceph.sh's clean-up.
export FERRY_CEPH_BLUESTORE_BYTES=${FERRY_CEPH_BLUESTORE_BYTES:-$((4 << 30))}
CEPH_DIR_A=$TEST_DIR/ceph-A CEPH_DIR_B=$TEST_DIR/ceph-B
CEPH_CONF_A=$CEPH_DIR_A/ceph.conf CEPH_CONF_B=$CEPH_DIR_B/ceph.conf
CEPH_STARTED="$CEPH_DIR_A $CEPH_DIR_B"
bash "$CEPH_CLUSTER_SH" start "$CEPH_DIR_A" "$CEPH_PORT_A" bluestore > "$TEST_DIR/ceph-A.start" 2>&1 &
start_a=$!
bash "$CEPH_CLUSTER_SH" start "$CEPH_DIR_B" "$CEPH_PORT_B" bluestore > "$TEST_DIR/ceph-B.start" 2>&1
rc_b=$?
wait "$start_a"
rc_a=$?
if [ "$rc_a" != 0 ] || [ "$rc_b" != 0 ]; then
	tail -n 20 "$TEST_DIR"/ceph-*.start >&2
	problem "a Ceph cluster did not start (ports $CEPH_PORT_A, $CEPH_PORT_B; SOAK_CEPH_PORT moves them)"
	exit 1
fi
A=$CEPH_CONF_A B=$CEPH_CONF_B
say "clusters up: $(cat "$TEST_DIR/ceph-A.start" "$TEST_DIR/ceph-B.start" | tr '\n' ' ')"

PORT_A=$(free_port) PORT_B=$(free_port) PORT_LINK=$(free_port)
while [ "$PORT_B" = "$PORT_A" ]; do PORT_B=$(free_port); done
while [ "$PORT_LINK" = "$PORT_A" ] || [ "$PORT_LINK" = "$PORT_B" ]; do PORT_LINK=$(free_port); done
start_replica || { problem "the replica ferryd did not start"; exit 1; }
start_primary || { problem "the primary ferryd did not start"; exit 1; }
/usr/bin/python3 "$SOAK_HERE/link-proxy.py" "$PORT_LINK" 127.0.0.1 "$PORT_B" "$TEST_DIR/link.state" \
	2>> "$TEST_DIR/link.log" &
PROXY_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $PROXY_PID"
wait_until 10 link_is up || { problem "the link proxy did not start (see $TEST_DIR/link.log)"; exit 1; }
LINK_URL="https://127.0.0.1:$PORT_LINK"

# B issues A a peer token; A knows B by the link's address.
at_b token create site-a --role peer --json | jq -r .token > "$TEST_DIR/peer-at-b.token" &&
	chmod 600 "$TEST_DIR/peer-at-b.token" &&
	at_a site add dr --url "$LINK_URL" --peer-token-file "$TEST_DIR/peer-at-b.token" \
		--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null ||
	{ problem "site dr (B through the link at $LINK_URL) could not be added at A"; exit 1; }
for img in $IMAGES; do
	rbd_a create --size "${SIZE_OF[$img]}M" "rbd/$img" &&
		rbd_a bench --io-type write --io-size 4M --io-total "$((SIZE_OF[$img] / 2))M" "rbd/$img" > /dev/null 2>&1 ||
		{ problem "image $img could not be made"; exit 1; }
done
for group in $GROUPS_LIST; do
	at_a group create "$group" --interval 2 --keep "$KEEP" > /dev/null || { problem "group $group"; exit 1; }
done
for img in $IMAGES; do
	at_a protect --group "${GROUP_OF[$img]}" --site dr "rbd:rbd/$img" > /dev/null ||
		{ problem "protect $img"; exit 1; }
done
for img in $IMAGES; do
	wait_point "$img" 1 180 || { problem "the first point of $img was not committed in 180 s"; exit 1; }
done
say "protected: $IMAGES in $GROUPS_LIST, first points committed"

/usr/bin/python3 "$SOAK_HERE/load-writer.py" "$A" rbd "$RATE_KB" $IMAGES > "$TEST_DIR/load.out" 2> "$TEST_DIR/load.err" &
LOAD_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $LOAD_PID"
wait_until 60 file_has "$TEST_DIR/load.out" started || { problem "the load writer did not start"; exit 1; }
sampler &
SAMPLER_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $SAMPLER_PID"
say "load: $RATE_KB kB/s per image; thrashing for $SOAK_MINUTES minutes"

# --- the thrash ------------------------------------------------------------------------------------
THRASH_START=$SECONDS
THRASH_END=$((SECONDS + $(awk -v m="$SOAK_MINUTES" 'BEGIN { printf "%d", m * 60 }')))
FAULTS=0
while :; do
	gap=$(between "$GAP_MIN" "$GAP_MAX")
	[ $((SECONDS + gap)) -lt "$THRASH_END" ] || break
	sleep "$gap"
	alive
	kill -0 "$LOAD_PID" 2>/dev/null || { problem "the load writer stopped by itself: $(cat "$TEST_DIR/load.err")"; break; }
	next_fault
	t0=$(now_ms) at=$((SECONDS - THRASH_START))
	case $FAULT in
	kill) fault_kill ;;
	cut|stall) fault_link "$FAULT" ;;
	osd) fault_osd ;;
	esac
	FAULTS=$((FAULTS + 1))
	fault_log "{\"fault\":\"$FAULT\",\"at_s\":$at,\"start_ms\":$t0,\"end_ms\":$(now_ms),\"what\":\"$FAULT_NOTE\"}"
done
[ "$SECONDS" -ge "$THRASH_END" ] || sleep $((THRASH_END - SECONDS))
LAST_FAULT_END_MS=$(now_ms)
alive

# --- writes stop; every group must converge by itself ----------------------------------------------
kill -TERM "$LOAD_PID"
wait "$LOAD_PID"
load_rc=$?
LOAD_PID=""
[ "$load_rc" = 0 ] || problem "the load writer failed (status $load_rc): $(head -c 300 "$TEST_DIR/load.err")"
say "writes stopped: $(tail -n 1 "$TEST_DIR/load.out")"
STOP_MS=$(now_ms)
converge_t0=$SECONDS
if WAIT_INTERVAL=1 wait_until "$CONVERGE_SECONDS" converged "$STOP_MS"; then
	CONVERGED=true CONVERGE_SECONDS_TAKEN=$((SECONDS - converge_t0))
	say "every group converged in $CONVERGE_SECONDS_TAKEN s"
else
	CONVERGED=false CONVERGE_SECONDS_TAKEN=null
	problem "a group did not converge within $CONVERGE_SECONDS s after the writes stopped"
	at_a status >&2
	at_a status --json > "$TEST_DIR/status-not-converged.json" 2>&1
fi
alive
touch "$TEST_DIR/sampler.stop"
wait "$SAMPLER_PID" 2>/dev/null
SAMPLER_PID=""
METRICS=$(curl -sS --cacert "$TEST_DIR/tls/ca.pem" -H "Authorization: Bearer $(cat "$TEST_DIR/token")" \
	"$PRIMARY_URL/metrics" 2>/dev/null)
POINTS_COMMITTED=$(awk '$1 ~ /^ferry_protection_points_committed_total\{/ && $1 ~ /soak-/ { s += $2 } END { print s + 0 }' <<< "$METRICS")
SEGMENT_SIZE=$(at_a status --json 2>/dev/null | jq '[.. | objects | .segment_size? // empty | numbers] | max // 4194304')
at_a status --json > "$TEST_DIR/status-final.json" 2>&1

# A still picture: the primary stops (its exit status is checked at exit, it must be 0).
stop_daemon "$PRIMARY_PID" || problem "the primary ferryd did not stop cleanly on SIGTERM (status $?)"

# --- every point both sides hold, compared byte for byte ------------------------------------------
timeout 1800 /usr/bin/python3 "$SOAK_HERE/compare-points.py" "$A" "$B" rbd $IMAGES > "$TEST_DIR/compare.jsonl" 2> "$TEST_DIR/compare.err"
compare_rc=$?
SUMMARY=$(tail -n 1 "$TEST_DIR/compare.jsonl")
POINTS_COMPARED=$(jq -r '.points_compared // 0' <<< "$SUMMARY" 2>/dev/null || echo 0)
MISMATCHES=$(jq -r '.mismatches // 0' <<< "$SUMMARY" 2>/dev/null || echo 0)
case $compare_rc in
0) say "compared $POINTS_COMPARED points, and the newest of each image with the source: all equal" ;;
1) problem "$MISMATCHES comparison(s) differ: $(jq -c 'select(.equal == false) | {image, point, against, first_diff, chunks_differing}' "$TEST_DIR/compare.jsonl" 2>/dev/null | tr '\n' ' ')" ;;
*) problem "the comparison could not read everything (status $compare_rc): $(head -c 300 "$TEST_DIR/compare.err")"; [ "$MISMATCHES" != 0 ] || MISMATCHES=null ;;
esac

# Lag and resent segments from the samples; the counter starts again at each primary restart.
read -r MAX_LAG SEGMENTS_RESENT < <(awk '{ if ($2 > lag) lag = $2
	if ($3 < last) base += last
	last = $3 } END { printf "%s %d\n", lag + 0, base + last }' "$TEST_DIR/samples" 2>/dev/null)
BYTES_RESENT=$(( ${SEGMENTS_RESENT:-0} * ${SEGMENT_SIZE:-4194304} ))

PASS=false
[ "$CONVERGED" = true ] && [ "$MISMATCHES" = 0 ] && [ "$compare_rc" = 0 ] && [ "${#PROBLEMS[@]}" = 0 ] && PASS=true
[ "$PASS" = true ] || test_failed=1
FAULT_LIST=$(jq -s -c '[.[] | .what]' "$TEST_DIR/faults.log" 2>/dev/null || echo '[]')
jq -n -c --argjson minutes "$SOAK_MINUTES" --argjson kills "$KILLS" --argjson kills_primary "$KILLS_A" \
	--argjson kills_replica "$KILLS_B" --argjson link_cuts "$CUTS" --argjson link_stalls "$STALLS" \
	--argjson osd_restarts "$OSD_RESTARTS" --argjson points_committed "${POINTS_COMMITTED:-0}" \
	--argjson points_compared "${POINTS_COMPARED:-0}" --argjson mismatches "${MISMATCHES:-null}" \
	--argjson max_lag_seconds "${MAX_LAG:-0}" --argjson bytes_resent "$BYTES_RESENT" \
	--argjson segments_resent "${SEGMENTS_RESENT:-0}" --argjson converged "$CONVERGED" \
	--argjson converge_seconds "$CONVERGE_SECONDS_TAKEN" --argjson pass "$PASS" \
	--argjson seed "$SOAK_SEED" --argjson faults "$FAULT_LIST" --arg logs "$TEST_DIR" \
	--argjson problems "$(printf '%s\n' "${PROBLEMS[@]+"${PROBLEMS[@]}"}" | jq -R . | jq -s -c 'map(select(. != ""))')" \
	'{minutes: $minutes, kills: $kills, link_cuts: $link_cuts, link_stalls: $link_stalls,
	  osd_restarts: $osd_restarts, points_committed: $points_committed,
	  points_compared: $points_compared, mismatches: $mismatches,
	  max_lag_seconds: $max_lag_seconds, bytes_resent: $bytes_resent,
	  segments_resent: $segments_resent, kills_primary: $kills_primary,
	  kills_replica: $kills_replica, converged: $converged, converge_seconds: $converge_seconds,
	  pass: $pass, seed: $seed, faults: $faults, problems: $problems,
	  logs: (if $pass then null else $logs end)}'
[ "$PASS" = true ]
