#!/bin/bash
# kill -9 of either ferryd at 50 random moments of continuous replication (the long-copy half is
# 34-catalog-faults.t): two sites on two Ceph clusters, one group of three images (128, 64 and
# 64 MiB) at an interval of 1 s under a steady random-write load (tests/soak/load-writer.py), so
# that every pass ships a real delta of several segments per image. Each round waits a random
# 0-3 s, kills the primary's (A) or the replica's (B) ferryd at random, and then:
#  - the killed side's catalog, as the kill left it (a copy of catalog.db and its WAL), passes
#    PRAGMA integrity_check;
#  - no segment ever acknowledged is missing: the segments B had recorded durable for its active
#    receive transfers just before it died are still durable in the catalog it restarts with,
#    and again once it has run on; the segments A holds as acknowledged (its send transfers'
#    durable ranges) are durable at B in the transfer they were sent to (or that transfer
#    completed), checked at every round with both up, and against B's catalog at each death;
#  - it is restarted on its port and the next round goes on.
# Kills that landed mid-pass (a point pending at A, or a transfer active at B) are counted and
# must be a real share. Then the load stops, the group converges by itself (a `group sync` ends
# any backoff), and every point B still holds is compared byte for byte with A's own point (the
# group snapshot), and the newest with the source, by a reader independent of ferry
# (tests/soak/compare-points.py).
#   KILL_SEED   the random sequence (printed; set it to repeat a run)
#   KILL_COUNT  the number of kills (default 50)
#   KILL_RATE_KB  the load per image, in kB/s (default 1000)
#   KILL_KEEP_LOGS=DIR  copies both ferryd logs there at the end, passed or not
#   KILL_FENCE=1  also fence each killed ferryd's Ceph client from outside, as an operator would
#               (blocklisted, its locks broken). By default the test leaves that to ferry: a
#               restarted ferryd blocklists the session its predecessor recorded in
#               STATE/ceph-session, so the dead one's watches and exclusive locks do not hold the
#               site's images for osd_client_watch_timeout (30 s) after each death.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"

plan 21
HERE=$(cd "$(dirname "$0")" && pwd)
SOAK_DIR=$(cd "$HERE/../soak" && pwd)
KILL_SEED=${KILL_SEED:-$(( $(date +%s) % 32768 ))}
KILLS=${KILL_COUNT:-50}
RATE_KB=${KILL_RATE_KB:-1000}
FENCE_DEAD=${KILL_FENCE:-0}
RANDOM=$KILL_SEED
diag "seed KILL_SEED=$KILL_SEED, $KILLS kills, load $RATE_KB kB/s per image, binaries $FERRY_BIN"
T_START=$SECONDS

ceph_sites
GROUP=k$$
IMAGES="t$$-k1 t$$-k2 t$$-k3"
declare -A SIZE_OF=([t$$-k1]=128 [t$$-k2]=64 [t$$-k3]=64)
LOAD_PID=""

# The end of the test: the load writer by its PID, then lib-ceph.sh's clean-up (ferryd, then
# lib.sh's checks of every ferryd's exit and log).
kill_exit() {
	[ -z "$LOAD_PID" ] || kill -TERM "$LOAD_PID" 2>/dev/null
	[ -z "${KILL_KEEP_LOGS:-}" ] || cp "$TEST_DIR"/*.log "$KILL_KEEP_LOGS"/ 2>/dev/null
	ceph_cleanup
}
trap kill_exit EXIT

# ---- helpers that read the catalogs (python3's sqlite3, read-only) and the clusters ----------
CHECK="$TEST_DIR/catalog-check.py"
cat > "$CHECK" <<'EOF'
# catalog-check.py snap DB ROLE
#     JSON: the active transfers of ROLE (send, receive) and the segments each holds durable
#     (for a sender: acknowledged by the receiver; for a receiver: recorded before the answer)
# catalog-check.py check SNAP DB self|remote
#     "MISSING CHECKED": of the durable segments in SNAP (a file written by snap), those that
#     DB's receive transfer (the same id: self; the sender's remote_id: remote) does not hold
#     durable, unless it completed; each loss on stderr
# catalog-check.py state A_DB B_DB GROUP
#     "PENDING ACTIVE INFLIGHT": A's highest pending point of GROUP (0: between passes), B's
#     active receive transfers, and those with some but not all of their segments durable
import json
import sqlite3
import sys


def connect(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def durable(db, transfer):
    held = set()
    for first, last in db.execute("SELECT first, last FROM segment_ranges WHERE transfer_id = ?"
                                  " AND kind = 'durable'", (transfer,)):
        held.update(range(first, last + 1))
    return held


def snap(path, role):
    db = connect(path)
    out = []
    for tid, volume, remote, member in db.execute(
            "SELECT id, volume, remote_id, segments_member FROM transfers"
            " WHERE role = ? AND state = 'active' ORDER BY id", (role,)).fetchall():
        out.append({"id": tid, "volume": volume, "remote_id": remote, "member": member,
                    "durable": sorted(durable(db, tid))})
    return out


def check(snap_file, path, key):
    with open(snap_file) as f:
        taken = json.load(f)
    db = connect(path)
    missing = checked = 0
    for t in taken:
        want = set(t["durable"])
        if not want:
            continue
        tid = t["id"] if key == "self" else t["remote_id"]
        row = db.execute("SELECT state, volume FROM transfers WHERE id = ? AND role = 'receive'",
                         (tid,)).fetchone()
        checked += len(want)
        if row is not None and row[1] == t["volume"] and row[0] == "complete":
            continue
        held = durable(db, tid) if row is not None and row[1] == t["volume"] else set()
        lost = sorted(want - held)
        if lost:
            missing += len(lost)
            print(f"receive transfer {tid} of {t['volume']} ({row[0] if row else 'not found'}):"
                  f" {len(lost)} of {len(want)} segments missing: {lost[:16]}", file=sys.stderr)
    print(missing, checked)


def state(a_path, b_path, group):
    a = connect(a_path)
    pending = a.execute("SELECT COALESCE(MAX(pending_point), 0) FROM protections"
                        " WHERE group_name = ?", (group,)).fetchone()[0]
    active = inflight = 0
    for t in snap(b_path, "receive"):
        active += 1
        if 0 < len(t["durable"]) and (t["member"] == 0 or len(t["durable"]) < t["member"]):
            inflight += 1
    print(pending, active, inflight)


cmd = sys.argv[1]
if cmd == "snap":
    print(json.dumps(snap(sys.argv[2], sys.argv[3])))
elif cmd == "check":
    check(sys.argv[2], sys.argv[3], sys.argv[4])
elif cmd == "state":
    state(sys.argv[2], sys.argv[3], sys.argv[4])
EOF
# fence.py CONF POOL SPARE IMAGE...: fences the dead clients of the images, as an operator fences
# a crashed one: every client that watches or locks one of them, but the address SPARE, is put
# on the OSDs' blocklist (its watches end at once) and its exclusive locks are broken. Run just
# after a kill, while no live process of ours but SPARE has the images open. Prints how many
# clients it fenced.
FENCE="$TEST_DIR/fence.py"
cat > "$FENCE" <<'EOF'
import os
import sys

import rados
import rbd

cluster = rados.Rados(conffile=sys.argv[1])
cluster.connect(timeout=30)
ioctx = cluster.open_ioctx(sys.argv[2])
spare = {sys.argv[3], cluster.get_addrs()}  # and this process, which watches them too
fenced = set()
for name in sys.argv[4:]:
    with rbd.Image(ioctx, name) as image:
        for watcher in image.watchers_list():
            if watcher["addr"] not in spare and watcher["addr"] not in fenced:
                cluster.blocklist_add(watcher["addr"], 3600)
                fenced.add(watcher["addr"])
        held = image.list_lockers()  # [] when unlocked
        for client, cookie, address in held["lockers"] if held else []:
            if address not in spare:
                image.break_lock(client, cookie)
                fenced.add(address)
print(len(fenced), flush=True)
ioctx.close()
cluster.shutdown()
os._exit(0)
EOF
# load.py CONF POOL KB_PER_S IMAGE...: tests/soak/load-writer.py as it is, which first writes
# its Ceph client's address to $TEST_DIR/load.client: the one client fence.py must spare.
LOAD="$TEST_DIR/load.py"
cat > "$LOAD" <<EOF
import runpy
import sys

import rados


class Rados(rados.Rados):
    def connect(self, *args, **kwargs):
        result = super().connect(*args, **kwargs)
        with open("$TEST_DIR/load.client", "w") as out:
            out.write(self.get_addrs() + "\n")
        return result


rados.Rados = Rados
sys.argv = ["$SOAK_DIR/load-writer.py"] + sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
EOF
# fence SITE: the killed ferryd fenced at SITE's cluster (see KILL_FENCE)
fence() {
	local n
	[ "$FENCE_DEAD" = 1 ] || return 0
	if [ "$1" = A ]; then
		n=$(timeout 60 /usr/bin/python3 "$FENCE" "$A" rbd "$(cat "$TEST_DIR/load.client")" $IMAGES 2>> "$TEST_DIR/fence.err")
	else
		n=$(timeout 60 /usr/bin/python3 "$FENCE" "$B" rbd - $IMAGES 2>> "$TEST_DIR/fence.err")
	fi
	fenced=$((fenced + ${n:-0}))
	[ -n "$n" ] || fence_failed=$((fence_failed + 1))
}
catalog() { /usr/bin/python3 "$CHECK" "$@"; }
# integrity DB: PRAGMA integrity_check's answer, on one line ("ok" when sound).
integrity() { sqlite3 "$1" "PRAGMA integrity_check" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
# catalog_copy STATE-DIR DEST: the catalog as the kill left it (database and WAL), copied, so
# that checking it changes nothing ferryd will find at its restart.
catalog_copy() {
	rm -rf "$2" && mkdir -p "$2" &&
		cp "$1/catalog.db" "$2/" && { [ ! -e "$1/catalog.db-wal" ] || cp "$1/catalog.db-wal" "$2/"; }
}
# sum_into VAR "MISSING CHECKED": adds both to VAR_missing and VAR_checked; fails when some
# are missing, or when the check could not run (no answer: its error is in check.err)
sum_into() {
	local missing checked
	read -r missing checked <<< "$2"
	printf -v "${1}_missing" '%s' $(( ${1}_missing + ${missing:-0} ))
	printf -v "${1}_checked" '%s' $(( ${1}_checked + ${checked:-0} ))
	[ -n "$missing" ] && [ "$missing" = 0 ]
}

# ---- two sites, a group of three images under load ---------------------------------------------
PORT_B=$(free_port) PORT_A=$(free_port)
while [ "$PORT_A" = "$PORT_B" ]; do PORT_A=$(free_port); done
A_DB="$TEST_DIR/primary/catalog.db" B_DB="$TEST_DIR/replica/catalog.db"
start_replica() {
	DAEMON_PORT=$PORT_B start_daemon replica --ceph-conf "$B" || return 1
	REPLICA_PID=$DAEMON_PID REPLICA_URL=$DAEMON_URL
}
start_primary() {
	DAEMON_PORT=$PORT_A start_daemon primary --ceph-conf "$A" || return 1
	PRIMARY_PID=$DAEMON_PID PRIMARY_URL=$DAEMON_URL
}
start_replica || { echo "Bail out! replica ferryd did not start"; exit 1; }
start_primary || { echo "Bail out! primary ferryd did not start"; exit 1; }
at_a site add dr --url "$REPLICA_URL" --peer-token-file "$TEST_DIR/token" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null &&
	at_a group create "$GROUP" --interval 1 --keep 6 > /dev/null ||
	{ echo "Bail out! site or group could not be made"; exit 1; }
for img in $IMAGES; do
	rbd_a create --size "${SIZE_OF[$img]}M" "rbd/$img" &&
		rbd_a bench --io-type write --io-size 4M --io-total 16M "rbd/$img" > /dev/null 2>&1 &&
		at_a protect --group "$GROUP" --site dr "rbd:rbd/$img" > /dev/null ||
		{ echo "Bail out! image $img could not be made or protected"; exit 1; }
done
first_ok=0
for img in $IMAGES; do wait_point "$img" 1 180 || first_ok=1; done
ok "$first_ok" "three images of $(for img in $IMAGES; do printf '%s ' "${SIZE_OF[$img]}"; done)MiB protected in group $GROUP, interval 1 s, first points committed"

/usr/bin/python3 "$LOAD" "$A" rbd "$RATE_KB" $IMAGES > "$TEST_DIR/load.out" 2> "$TEST_DIR/load.err" &
LOAD_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $LOAD_PID"
wait_until 60 file_has "$TEST_DIR/load.out" started && [ -s "$TEST_DIR/load.client" ]
ok $? "the random-write load runs on the sources ($RATE_KB kB/s per image)"
first=$(point_of t$$-k1)
for img in $IMAGES; do wait_point "$img" $((first + 2)) 120; done
points_before=$(point_of t$$-k1)
diag "passes under the load: $(grep 'committed at site' "$TEST_DIR/primary.log" | tail -n 3 |
	sed 's/.*: point/point/' | tr '\n' ';')"
T_KILLS=$SECONDS

# ---- the kills --------------------------------------------------------------------------------
kills_a=0 kills_b=0 restarted=0 mid_pass=0 in_flight=0 fenced=0 fence_failed=0
unsound="" lost_own="" lost_acked="" lost_after=""
own_missing=0 own_checked=0 acked_missing=0 acked_checked=0 after_missing=0 after_checked=0
round_missing=0 round_checked=0
# What the last kill left to check again once the killed side has run on, one "FILE MODE" a
# line: B's durable segments from just before its death (self), what A held acknowledged when
# it or B died (remote).
later=""
for kill_number in $(seq 1 "$KILLS"); do
	# A random moment, the scenario itself (not synchronization): 0 to 3 s.
	tenths=$((RANDOM % 31))
	sleep "$((tenths / 10)).$((tenths % 10))"
	# Both up: what A holds acknowledged is durable at B; and what the last kill left to check
	# still holds now that the killed side has run on (a restarted B kept its records, a
	# restarted A resumed its transfers instead of making B start them again).
	catalog snap "$A_DB" send > "$TEST_DIR/a-live.json" 2>> "$TEST_DIR/check.err"
	sum_into round "$(catalog check "$TEST_DIR/a-live.json" "$B_DB" remote 2>> "$TEST_DIR/check.err")" ||
		lost_acked="$lost_acked $kill_number(both up)"
	while read -r file mode; do
		[ -n "$file" ] || continue
		sum_into after "$(catalog check "$file" "$B_DB" "$mode" 2>> "$TEST_DIR/check.err")" ||
			lost_after="$lost_after $kill_number"
	done <<< "$later"
	later=""
	if [ $((RANDOM % 2)) = 0 ]; then
		who=A
		kill9 "$PRIMARY_PID"
		kills_a=$((kills_a + 1))
		catalog_copy "$TEST_DIR/primary" "$TEST_DIR/a-dead"
		verdict=$(integrity "$TEST_DIR/a-dead/catalog.db")
		read -r pending active inflight <<< "$(catalog state "$TEST_DIR/a-dead/catalog.db" "$B_DB" "$GROUP")"
		# What A held acknowledged when it died, against B (up all along).
		catalog snap "$TEST_DIR/a-dead/catalog.db" send > "$TEST_DIR/a-dead.$kill_number.json"
		result=$(catalog check "$TEST_DIR/a-dead.$kill_number.json" "$B_DB" remote 2>> "$TEST_DIR/check.err")
		sum_into acked "$result" || lost_acked="$lost_acked $kill_number"
		later="$TEST_DIR/a-dead.$kill_number.json remote"
		fence A
		start_primary && restarted=$((restarted + 1))
	else
		who=B
		catalog snap "$B_DB" receive > "$TEST_DIR/b-before.$kill_number.json"
		read -r pending active inflight <<< "$(catalog state "$A_DB" "$B_DB" "$GROUP")"
		kill9 "$REPLICA_PID"
		kills_b=$((kills_b + 1))
		catalog_copy "$TEST_DIR/replica" "$TEST_DIR/b-dead"
		verdict=$(integrity "$TEST_DIR/b-dead/catalog.db")
		# B's own records from just before, in the catalog it restarts with.
		result=$(catalog check "$TEST_DIR/b-before.$kill_number.json" "$TEST_DIR/b-dead/catalog.db" self 2>> "$TEST_DIR/check.err")
		sum_into own "$result" || lost_own="$lost_own $kill_number"
		# What A holds acknowledged now that B is gone (no answer can come any more).
		catalog snap "$A_DB" send > "$TEST_DIR/a-now.$kill_number.json"
		result=$(catalog check "$TEST_DIR/a-now.$kill_number.json" "$TEST_DIR/b-dead/catalog.db" remote 2>> "$TEST_DIR/check.err")
		sum_into acked "$result" || lost_acked="$lost_acked $kill_number"
		later="$TEST_DIR/b-before.$kill_number.json self
$TEST_DIR/a-now.$kill_number.json remote"
		fence B
		start_replica && restarted=$((restarted + 1))
	fi
	[ "$verdict" = ok ] || unsound="$unsound $kill_number($who: $verdict)"
	mid=""
	if [ "${pending:-0}" -gt 0 ] 2>/dev/null || [ "${active:-0}" -gt 0 ] 2>/dev/null; then
		mid_pass=$((mid_pass + 1))
		mid=" mid-pass (point ${pending:-?} pending at A, $active transfer(s) active at B, $inflight partly durable)"
	fi
	if [ "${inflight:-0}" -gt 0 ] 2>/dev/null; then in_flight=$((in_flight + 1)); fi
	diag "kill $kill_number: $who after $((tenths / 10)).$((tenths % 10)) s${mid:- between passes}; integrity $verdict"
	if ! kill -0 "$PRIMARY_PID" 2>/dev/null || ! kill -0 "$REPLICA_PID" 2>/dev/null; then
		diag "a ferryd is not running after kill $kill_number: stopping the rounds"
		break
	fi
done
T_CONVERGE=$SECONDS
is "$restarted" "$KILLS" "ferryd restarted on its port after each of the $KILLS kills ($kills_a of A, $kills_b of B)"
is "$unsound" "" "PRAGMA integrity_check ok on the killed side's catalog after every kill"
is "$lost_own" "" "B's durable segments from just before each death are in the catalog it restarts with ($own_checked checked)"
is "$lost_after" "" "what B held durable and A acknowledged at a kill is still durable at B (or complete) once the killed side has run on ($after_checked checked)"
is "$lost_acked" "" "no segment A held as acknowledged was missing at B ($acked_checked checked at the kills, $round_checked with both up)"
[ -s "$TEST_DIR/check.err" ] && sed 's/^/#   /' "$TEST_DIR/check.err" | head -n 20
[ "$fence_failed" = 0 ] || { diag "fence.py failed $fence_failed time(s):"; tail -n 5 "$TEST_DIR/fence.err" | sed 's/^/#   /'; }
diag "kills: $kills_a of A, $kills_b of B; $mid_pass mid-pass (a point pending at A or a transfer active at B), $in_flight with a transfer partly durable at B; $fenced dead Ceph clients fenced ($fence_failed failures)"
ok $([ "$mid_pass" -ge $((KILLS / 5)) ]; echo $?) "a real share of the kills landed mid-pass ($mid_pass of $KILLS)"
ok $([ $((acked_checked + own_checked)) -gt 0 ]; echo $?) "the kills found acknowledged segments to check ($acked_checked + $own_checked)"
points_after=$(point_of t$$-k1)
ok $([ "${points_after:-0}" -gt "${points_before:-0}" ]; echo $?) "points went on through the kills (from $points_before to $points_after)"

# ---- the load stops; the group converges ------------------------------------------------------
kill -TERM "$LOAD_PID"
wait "$LOAD_PID"
is $? 0 "the load writer ran throughout ($(tail -n 1 "$TEST_DIR/load.out"))"
LOAD_PID=""
stop_ms=$(( ${EPOCHREALTIME//[.,]/} / 1000 ))
at_a group sync "$GROUP" > /dev/null 2>&1
# converged: every image in-sync at one point taken after the writes stopped, held by B
converged() {
	local status points="" img n
	status=$(timeout 10 "$FERRY" status --json --daemon "$PRIMARY_URL" --token-file "$TEST_DIR/token" \
		--cacert "$TEST_DIR/tls/ca.pem" 2>/dev/null) || return 1
	for img in $IMAGES; do
		jq -e --arg n "rbd:rbd/$img" --argjson after "$stop_ms" '.volumes[] | select(.name == $n) |
			.state == "in-sync" and (.last_point_time_ms // 0) > $after' <<< "$status" > /dev/null || return 1
		points="$points $(jq -r --arg n "rbd:rbd/$img" '.volumes[] | select(.name == $n) | .last_point' <<< "$status")"
	done
	[ "$(echo $points | tr ' ' '\n' | sort -u | wc -l)" = 1 ] || return 1
	n=$(echo $points | cut -d' ' -f1)
	for img in $IMAGES; do replica_points "$img" | grep -qx "$n" || return 1; done
}
WAIT_INTERVAL=1 wait_until 240 converged
ok $? "the group converged by itself after the writes stopped (in $((SECONDS - T_CONVERGE)) s)"
T_COMPARE=$SECONDS
# A still picture: no new point, and the pass in flight (if any) finished, so that every image
# stops at the same point.
at_a group pause "$GROUP" > /dev/null
no_pending() {
	at_a status --json 2>/dev/null | jq -e --arg g "$GROUP" \
		'[.volumes[] | select(.group == $g) | .pending_point] | length == 3 and all(. == 0)' > /dev/null
}
WAIT_INTERVAL=0.5 wait_until 120 no_pending || diag "a point is still pending after the pause"

# ---- a still picture: every point B holds, compared with A's own ------------------------------
stop_daemon "$PRIMARY_PID"
is $? 0 "the primary ferryd stops cleanly on SIGTERM"
final=$(sqlite3 "$A_DB" "SELECT DISTINCT last_point FROM protections WHERE group_name = '$GROUP'" | tr '\n' ' ')
final=${final% }
timeout 900 /usr/bin/python3 "$SOAK_DIR/compare-points.py" "$A" "$B" rbd $IMAGES > "$TEST_DIR/compare.jsonl" 2> "$TEST_DIR/compare.err"
compare_rc=$?
summary=$(tail -n 1 "$TEST_DIR/compare.jsonl")
is "$compare_rc" 0 "compare-points.py read every point and found none different (exit $compare_rc)"
[ "$compare_rc" = 0 ] || {
	jq -c 'select(.equal == false) | {image, point, against, first_diff, chunks_differing}' \
		"$TEST_DIR/compare.jsonl" 2>/dev/null | sed 's/^/#   /'
	head -c 600 "$TEST_DIR/compare.err" | sed 's/^/#   /'
}
compared=$(jq -r '.points_compared // 0' <<< "$summary" 2>/dev/null)
is "$(jq -r '.mismatches' <<< "$summary" 2>/dev/null)" 0 \
	"every point B holds equals A's group snapshot byte for byte ($compared points compared)"
ok $([ "${compared:-0}" -ge 3 ]; echo $?) "  at least one point of each image was compared"
newest=$(jq -r --argjson n "${final:-0}" '[.newest[] | select(.point == $n and .equal)] | length' <<< "$summary" 2>/dev/null)
is "$newest" 3 "the newest point of each image, $final, equals the source as it is now"
replica_newest=$(for img in $IMAGES; do replica_points "$img" | tail -n 1; done | sort -u | tr '\n' ' ')
is "$replica_newest" "$final " "B's newest point of every image is A's last point ($final)"
stop_daemon "$REPLICA_PID"
is $? 0 "the replica ferryd stops cleanly on SIGTERM"
is "$(integrity "$A_DB") $(integrity "$B_DB")" "ok ok" "integrity_check ok on both catalogs at the end"
sanitizer=$(grep -l -e 'AddressSanitizer' -e 'LeakSanitizer' -e 'runtime error:' \
	"$TEST_DIR/primary.log" "$TEST_DIR/replica.log" 2>/dev/null | tr '\n' ' ')
is "$sanitizer" "" "no sanitizer report in either ferryd's log"
diag "points compared: $compared (and the newest of each image with the source); newest point $final; B holds$(for img in $IMAGES; do printf ' %s: %s;' "$img" "$(replica_points "$img" | tr '\n' ' ' | sed 's/ $//')"; done)"
diag "wall time: $((SECONDS - T_START)) s (setup $((T_KILLS - T_START)) s, $KILLS kills $((T_CONVERGE - T_KILLS)) s, convergence $((T_COMPARE - T_CONVERGE)) s, comparison $((SECONDS - T_COMPARE)) s); seed $KILL_SEED"
exit $test_failed
