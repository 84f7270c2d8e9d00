#!/bin/bash
# Faults of the catalog's own disk, the way SQLite tests itself: the Nth catalog write fails (as
# ENOSPC and as EIO), the Nth fsync fails (fatal: one line, exit 74, recovered at restart), the
# state folder's filesystem (a small loop-mounted ext4) fills up under a running ferryd and is
# freed again, and ferryd is killed with SIGKILL at 50 random moments of a 256 MiB copy that is
# resumed each time. After every case: PRAGMA integrity_check is ok, no segment the sender holds
# as acknowledged is missing from the receiver's catalog, and the copy completes and verifies.
. "$(dirname "$0")/lib.sh"

plan 37

SEG=1048576
COPY_OPTIONS=(--segment-size "$SEG" --jobs 2)
KILLS=${FERRY_CATALOG_KILLS:-50}

# integrity DB: PRAGMA integrity_check's answer, on one line ("ok" when sound).
integrity() { sqlite3 "$1" "PRAGMA integrity_check" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
# missing_acks RECEIVER-DB NAME: "MISSING ACKED HELD": the segments of the sender's newest
# transfer of NAME that its own catalog holds as acknowledged (durable) and the receiver's
# catalog does not hold durable, then both counts. MISSING must always be 0.
missing_acks() {
	python3 - "$FERRY_STATE_DIR/catalog.db" "$1" "$2" <<'EOF'
import sqlite3, sys
sender, receiver, name = sys.argv[1:4]
def durable(db, transfer):
    held = set()
    for first, last in db.execute("SELECT first, last FROM segment_ranges WHERE transfer_id = ?"
                                  " AND kind = 'durable'", (transfer,)):
        held.update(range(first, last + 1))
    return held
try:
    s = sqlite3.connect(sender)
    row = s.execute("SELECT id, remote_id FROM transfers WHERE role = 'send' AND volume = ?"
                    " ORDER BY id DESC LIMIT 1", (name,)).fetchone()
except sqlite3.Error:
    row = None
if row is None:
    print("0 0 0")
    sys.exit(0)
acked = durable(s, row[0])
r = sqlite3.connect(receiver)
known = r.execute("SELECT id FROM transfers WHERE id = ? AND role = 'receive' AND volume = ?",
                  (row[1], name)).fetchone()
held = durable(r, row[1]) if known else set()
print(len(acked - held), len(acked), len(held))
EOF
}
verify() {	# verify SOURCE NAME: ferry verify's exit status
	"$FERRY" verify --to "$DAEMON_URL" --token-file "$TEST_DIR/token" \
		--cacert "$TEST_DIR/tls/ca.pem" "$1" "$2" > /dev/null 2>> "$TEST_DIR/verify.err"
}

head -c $((32 * SEG)) /dev/urandom > "$TEST_DIR/small.img"

# One port for the receiver, kept across its restarts; its catalog made once.
start_daemon recv || exit 1
PORT=${DAEMON_URL##*:}
stop_daemon "$DAEMON_PID"
RECV_DB="$TEST_DIR/recv/catalog.db"

# ---- a) the Nth catalog write fails (FERRY_FAULT_CATALOG_WRITE), swept over a copy
diag "a) the Nth catalog write fails, as ENOSPC and as EIO"
cases=0 fired=0 failed_clear=0 unclear="" missing_total=0 rerun_bad="" verify_bad="" sound_bad=""
# N from ferryd's first request to a copy's last segment (about 8 writes a segment); the last
# case is a longer outage: 12 writes in a row fail, whatever asks for them.
for spec in full:5 full:15 full:40 full:80 full:120 full:160 full:200 full:230 \
	io:10 io:60 io:140 io:220 full:30:12; do
	IFS=: read -r kind n count <<< "$spec"
	count=${count:-1}
	cases=$((cases + 1))
	vol="w-$kind-$n"
	: > "$TEST_DIR/w.log.part"
	if ! FERRY_FAULT_CATALOG_WRITE=$n FERRY_FAULT_CATALOG_WRITE_COUNT=$count \
		FERRY_FAULT_CATALOG_WRITE_ERROR=$kind DAEMON_PORT=$PORT start_daemon recv; then
		# The fault hit ferryd's start: refused, with the message, and nothing changed.
		FERRYD_ON_PURPOSE[$DAEMON_PID]=1
		wait_for "$DAEMON_PID" 10
		diag "$spec: ferryd refused to start: $(grep -m1 'catalog' "$TEST_DIR/recv.log" | tail -c 200)"
		DAEMON_PORT=$PORT start_daemon recv || exit 1
	fi
	out=$(timeout 120 "$FERRY" copy --to "$DAEMON_URL" --token-file "$TEST_DIR/token" \
		--cacert "$TEST_DIR/tls/ca.pem" --json "${COPY_OPTIONS[@]}" \
		"$TEST_DIR/small.img" "$vol" 2> "$TEST_DIR/w.err")
	rc=$?
	grep -q "FERRY_FAULT_CATALOG_WRITE: write $n " "$TEST_DIR/recv.log" && fired=$((fired + 1))
	read -r missing acked held <<< "$(missing_acks "$RECV_DB" "$vol")"
	missing_total=$((missing_total + missing))
	if [ "$rc" != 0 ]; then
		code=$(json_error "$out")
		# The error names the catalog's folder and is the right kind: no_space for a full
		# disk; for EIO an I/O error (the sender may also have given up on its retries).
		if grep -q "$TEST_DIR/recv" "$TEST_DIR/w.err" &&
			{ [ "$kind" = io ] || [ "$code" = no_space ]; }; then
			failed_clear=$((failed_clear + 1))
		else
			unclear="$unclear $spec($code: $(head -c 160 "$TEST_DIR/w.err"))"
		fi
	else
		failed_clear=$((failed_clear + 1)) # the sender's retry carried it through
	fi
	# The same ferryd, not restarted: once the fault has passed, a re-run completes (an
	# operator's re-run while the outage lasts: each refused one uses up at least one of the
	# failing writes, its audit entry's, so five more than the outage's length suffice).
	for rerun in $(seq 1 $((count + 5))); do
		out=$(timeout 120 "$FERRY" copy --to "$DAEMON_URL" --token-file "$TEST_DIR/token" \
			--cacert "$TEST_DIR/tls/ca.pem" --json "${COPY_OPTIONS[@]}" \
			"$TEST_DIR/small.img" "$vol" 2>> "$TEST_DIR/w.err")
		[ "$(json_field "$out" status)" != complete ] || break
	done
	[ "$(json_field "$out" status)" = complete ] || rerun_bad="$rerun_bad $spec"
	verify "$TEST_DIR/small.img" "$vol" || verify_bad="$verify_bad $spec"
	stop_daemon "$DAEMON_PID" || sound_bad="$sound_bad $spec(exit)"
	[ "$(integrity "$RECV_DB")" = ok ] || sound_bad="$sound_bad $spec"
	diag "$spec: first copy exit $rc ${code:-}, acknowledged $acked, receiver held $held," \
		"missing $missing; complete after $rerun re-run(s)"
	code=""
done
is "$fired" "$cases" "the write fault fired in each of the $cases cases"
is "$unclear" "" "each copy cut by the fault failed with an error naming the state folder"
is "$missing_total" 0 "no segment acknowledged to the sender was missing from the receiver's catalog"
is "$rerun_bad" "" "a re-run on the same ferryd completed each time (it recovers by itself)"
is "$verify_bad" "" "ferry verify agrees each time"
is "$sound_bad" "" "PRAGMA integrity_check ok and a clean exit after each case"

# ---- b) the Nth catalog fsync fails (FERRY_FAULT_CATALOG_SYNC): fatal, never retried
diag "b) the Nth catalog fsync fails"
cases=0 fatal_ok=0 lines_bad="" missing_total=0 sound_bad="" rerun_bad=""
for n in 2 5 12 20 30; do
	cases=$((cases + 1))
	vol="s-$n"
	lines_before=$(grep -c "fsync failed" "$TEST_DIR/recv.log")
	FERRY_FAULT_CATALOG_SYNC=$n DAEMON_PORT=$PORT start_daemon recv
	FERRYD_ON_PURPOSE[$DAEMON_PID]=1 # it is meant to die
	copy_bg "$TEST_DIR/small.img" "$vol" "$TEST_DIR/s.out"
	wait_for "$DAEMON_PID" 60
	status=$?
	kill9 "$COPY_PID"
	[ "$status" = 74 ] && fatal_ok=$((fatal_ok + 1))
	lines=$(($(grep -c "fsync failed" "$TEST_DIR/recv.log") - lines_before))
	[ "$lines" = 1 ] || lines_bad="$lines_bad $n($lines)"
	[ "$(integrity "$RECV_DB")" = ok ] || sound_bad="$sound_bad $n"
	read -r missing acked held <<< "$(missing_acks "$RECV_DB" "$vol")"
	missing_total=$((missing_total + missing))
	diag "fsync $n: ferryd exit $status, acknowledged $acked, receiver held $held, missing $missing"
	DAEMON_PORT=$PORT start_daemon recv || exit 1
	out=$(copy_fg "$TEST_DIR/small.img" "$vol")
	[ "$(json_field "$out" status)" = complete ] && verify "$TEST_DIR/small.img" "$vol" ||
		rerun_bad="$rerun_bad $n"
	stop_daemon "$DAEMON_PID" || sound_bad="$sound_bad $n(exit)"
	[ "$(integrity "$RECV_DB")" = ok ] || sound_bad="$sound_bad $n(after)"
done
is "$fatal_ok" "$cases" "a failed fsync ended ferryd with status 74 in each of the $cases cases"
is "$lines_bad" "" "each time with exactly one 'fsync failed' line (never retried)"
grep -m1 "fsync failed" "$TEST_DIR/recv.log" | grep -q "catalog $TEST_DIR/recv/catalog.db"
ok $? "the line names the catalog's file: $(grep -m1 'fsync failed' "$TEST_DIR/recv.log" | cut -c1-220)"
is "$missing_total" 0 "no segment acknowledged before the crash was missing from the catalog"
is "$rerun_bad" "" "after a restart the copy resumed, completed and verified each time"
is "$sound_bad" "" "PRAGMA integrity_check ok after each crash and each recovery"

# ---- c) the state folder's filesystem full, under a running ferryd
diag "c) the state folder on a small loop-mounted ext4 that fills up"
FULL="$TEST_DIR/full"
mkdir -p "$FULL" "$TEST_DIR/roomy"
truncate -s 24M "$TEST_DIR/full.ext4"
if mkfs.ext4 -q -F "$TEST_DIR/full.ext4" 2>/dev/null &&
	mount -o loop "$TEST_DIR/full.ext4" "$FULL" 2>/dev/null; then
	# The received volumes elsewhere: the catalog is what meets the full disk (06-disk-full.t
	# has the volumes' own disk full).
	ln -s "$TEST_DIR/roomy" "$FULL/volumes"
	fill() { dd if=/dev/zero of="$FULL/filler" bs=64k 2>/dev/null; sync; }
	DAEMON_PORT=$PORT start_daemon full || exit 1
	FULL_DB="$FULL/catalog.db"
	out=$(copy_fg "$TEST_DIR/small.img" c-before)
	is "$(json_field "$out" status)" complete "a copy with room completes"
	fill
	is "$(df --output=avail "$FULL" | tail -n1 | tr -d ' ')" 0 "the state folder's filesystem is full"
	out=$(COPY_ERR="$TEST_DIR/c.err" copy_fg "$TEST_DIR/small.img" c-new)
	is "$(json_error "$out")" no_space "new work is refused: no_space"
	grep -q "folder $FULL has no room" "$TEST_DIR/c.err"
	ok $? "the error names the state folder: $(head -c 300 "$TEST_DIR/c.err")"
	is "$(missing_acks "$FULL_DB" c-new | cut -d' ' -f1)" 0 "nothing refused was acknowledged"
	is "$(json_field "$(api GET /v1/health)" status)" ok "ferryd answers /v1/health while full"
	is "$(volume_field c-before state)" complete "and ferry status still reads the catalog"
	is "$(integrity "$FULL_DB")" ok "integrity_check ok while full"
	rm -f "$FULL/filler"
	out=$(copy_fg "$TEST_DIR/small.img" c-new)
	is "$(json_field "$out" status)" complete "space back: the same ferryd takes the copy (no restart)"
	verify "$TEST_DIR/small.img" c-new
	ok $? "ferry verify agrees"

	# Full in the middle of a copy: it fails or completes, and loses nothing either way.
	copy_bg "$TEST_DIR/small.img" c-mid "$TEST_DIR/c-mid.out" --bwlimit 4M
	wait_durable c-mid 4 60
	fill
	wait_for "$COPY_PID" 120
	rc=$?
	diag "copy cut by the full disk: exit $rc, $(json_error "$(cat "$TEST_DIR/c-mid.out")")"
	read -r missing acked held <<< "$(missing_acks "$FULL_DB" c-mid)"
	is "$missing" 0 "filled mid-copy: no acknowledged segment missing ($acked acknowledged, $held held)"
	is "$(integrity "$FULL_DB")" ok "integrity_check ok"
	rm -f "$FULL/filler"
	out=$(copy_fg "$TEST_DIR/small.img" c-mid)
	is "$(json_field "$out" status)" complete "space back: the copy resumes and completes"
	verify "$TEST_DIR/small.img" c-mid
	ok $? "ferry verify agrees"
	stop_daemon "$DAEMON_PID"
	is $? 0 "ferryd stops cleanly"
	is "$(integrity "$FULL_DB")" ok "integrity_check ok at the end"
else
	for _ in $(seq 1 16); do skip "needs root to mount a loop filesystem"; done
fi

# ---- d) kill -9 of ferryd at random moments of a long copy, resumed each time
diag "d) ferryd killed with SIGKILL at $KILLS random moments of a 256 MiB copy"
head -c $((256 * SEG)) /dev/urandom > "$TEST_DIR/big.img"
unsound="" missing_total=0 missing_at="" started=0 last_held=0 regress=""
for kill_number in $(seq 1 "$KILLS"); do
	DAEMON_PORT=$PORT start_daemon recv || break
	started=$((started + 1))
	copy_bg "$TEST_DIR/big.img" big "$TEST_DIR/d.out" --bwlimit 4M
	# A random moment, the scenario itself (not synchronization): 0.2 to 1.6 s.
	tenths=$((2 + RANDOM % 15))
	sleep "$((tenths / 10)).$((tenths % 10))"
	kill9 "$DAEMON_PID"
	kill -9 "$COPY_PID" 2>/dev/null
	wait "$COPY_PID" 2>/dev/null
	[ "$(integrity "$RECV_DB")" = ok ] || unsound="$unsound $kill_number"
	[ "$(integrity "$FERRY_STATE_DIR/catalog.db")" = ok ] || unsound="$unsound $kill_number(sender)"
	read -r missing acked held <<< "$(missing_acks "$RECV_DB" big)"
	missing_total=$((missing_total + missing))
	[ "$missing" = 0 ] || missing_at="$missing_at $kill_number:$missing"
	[ "$held" -ge "$last_held" ] || regress="$regress $kill_number"
	last_held=$held
	[ $((kill_number % 10)) != 0 ] ||
		diag "kill $kill_number: receiver holds $held of 256 segments, sender acknowledged $acked"
done
is "$started" "$KILLS" "ferryd started again after each of the $KILLS kills"
is "$unsound" "" "PRAGMA integrity_check ok after every kill (receiver and sender)"
is "$missing_at" "" "no acknowledged segment was ever missing from the receiver's catalog"
is "$regress" "" "the durable count never went back"
ok $([ "$last_held" -lt 256 ]; echo $?) "the copy was still unfinished at the last kill ($last_held of 256)"
DAEMON_PORT=$PORT start_daemon recv || exit 1
out=$(copy_fg "$TEST_DIR/big.img" big)
is "$(json_field "$out" status)" complete "the resumed copy completes"
diag "final run: skipped $(json_field "$out" segments_skipped), sent $(json_field "$out" segments_sent)"
is "$(sha "$TEST_DIR/recv/volumes/big")" "$(sha "$TEST_DIR/big.img")" "the volume has the source's SHA-256"
verify "$TEST_DIR/big.img" big
ok $? "ferry verify agrees"
stop_daemon "$DAEMON_PID"
is "$(integrity "$RECV_DB")" ok "integrity_check ok at the end"
exit $test_failed
