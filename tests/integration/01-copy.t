#!/bin/bash
# Proves that ferry copy delivers byte-identical, sparse volumes (also odd and empty sizes), that a
# re-run is a no-op, that status/verify report the truth, and that a corrupt segment is retried.
source "$(dirname "$0")/lib.sh"

plan 53

TOKEN_ARGS=(--token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem")

# flip_byte FILE OFFSET: inverts one byte in place.
flip_byte() {
	old=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' \n')
	printf "\\$(printf %03o $((old ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

start_daemon site || { echo "Bail out! ferryd did not start"; exit 1; }
STATE="$TEST_DIR/site"

# --- a 40 MiB image: one third random, one third text, one third hole ---
make_image "$TEST_DIR/disk.img" 40
out=$(ferry_copy "$DAEMON_URL" "$TEST_DIR/disk.img" disk)
ok $? "copy of a 40 MiB image exits 0"
is "$(json_field "$out" status)" complete "copy reports status complete"
is "$(json_field "$out" bytes_total)" 41943040 "bytes_total is the source size"
is "$(sha "$STATE/volumes/disk")" "$(sha "$TEST_DIR/disk.img")" "received image has the same SHA-256"
total=$(json_field "$out" segments_total)
is "$total" 10 "40 MiB in 4 MiB segments is 10 segments"
zero=$(json_field "$out" segments_zero)
[ "${zero:-0}" -gt 0 ]
ok $? "segments_zero > 0 (got $zero)"
sent=$(json_field "$out" bytes_sent)
[ "${sent:-999999999}" -lt 41943040 ]
ok $? "bytes_sent < bytes_total (sent $sent)"
allocated=$(( $(stat -c %b "$STATE/volumes/disk") * $(stat -c %B "$STATE/volumes/disk") ))
apparent=$(stat -c %s "$STATE/volumes/disk")
[ "$allocated" -le $((apparent - 10 * 1048576)) ]
ok $? "received image is sparse ($allocated bytes allocated of $apparent)"
digest=$(json_field "$out" digest)
case "$digest" in xxh3-128:????????????????????????????????) r=0 ;; *) r=1 ;; esac
ok $r "digest looks like xxh3-128:<32 hex> ($digest)"

# --- a re-run is a no-op ---
out=$(ferry_copy "$DAEMON_URL" "$TEST_DIR/disk.img" disk)
ok $? "re-run exits 0"
is "$(json_field "$out" status)" complete "re-run reports complete"
is "$(json_field "$out" bytes_sent)" 0 "re-run sends nothing"
is "$(json_field "$out" segments_skipped)" "$(json_field "$out" segments_total)" \
	"re-run skips every segment"
is "$(json_field "$out" digest)" "$digest" "re-run reports the same digest"

# --- status ---
status_json=$("$FERRY" status --daemon "$DAEMON_URL" "${TOKEN_ARGS[@]}" --json)
ok $? "ferry status --json exits 0"
is "$(printf '%s' "$status_json" | jq -r '.volumes[] | select(.name=="disk") | .state')" complete \
	"status lists volume disk as complete"
is "$(printf '%s' "$status_json" | jq -r '.volumes[] | select(.name=="disk") | .transfer.segments_durable')" \
	"$total" "status: segments_durable == segments_total"
is "$(printf '%s' "$status_json" | jq -r '.volumes[] | select(.name=="disk") | .size')" 41943040 \
	"status reports the volume size"
table=$("$FERRY" status --daemon "$DAEMON_URL" "${TOKEN_ARGS[@]}")
ok $? "plain ferry status exits 0"
printf '%s\n' "$table" | grep -q '^disk  *complete'
ok $? "plain status prints a table row for disk"
one=$("$FERRY" status --daemon "$DAEMON_URL" "${TOKEN_ARGS[@]}" --json disk)
ok $? "ferry status --json NAME exits 0"
is "$(printf '%s' "$one" | jq -r '.name + " " + .transfer.state + " " + .location')" \
	"disk complete $STATE/volumes/disk" "status NAME shows that volume, with its absolute location"
"$FERRY" status --daemon "$DAEMON_URL" "${TOKEN_ARGS[@]}" nosuch 2> "$TEST_DIR/nosuch.err"
is $? 1 "ferry status of an unknown volume exits 1"
grep -q "no volume named 'nosuch'" "$TEST_DIR/nosuch.err"
ok $? "and says which volume it does not know"

# --- verify ---
text=$("$FERRY" verify --to "$DAEMON_URL" "${TOKEN_ARGS[@]}" "$TEST_DIR/disk.img" disk)
ok $? "ferry verify exits 0 on an intact copy"
printf '%s' "$text" | grep -q 'disk: match'
ok $? "ferry verify says match"
flip_byte "$STATE/volumes/disk" 1000003
out=$("$FERRY" verify --to "$DAEMON_URL" "${TOKEN_ARGS[@]}" --json "$TEST_DIR/disk.img" disk 2>/dev/null)
is "$?" 1 "ferry verify exits 1 after one received byte was flipped"
is "$(json_field "$out" match)" false "verify JSON says match false"
[ "$(json_field "$out" receiver_digest)" != "$(json_field "$out" source_digest)" ]
ok $? "receiver_digest differs from source_digest"
is "$(json_field "$out" recorded_digest)" "$digest" "recorded_digest is the committed digest"

# --- small segments, two jobs, another zstd level ---
make_image "$TEST_DIR/small.img" 9
out=$(ferry_copy "$DAEMON_URL" "$TEST_DIR/small.img" small --segment-size 65536 --jobs 2 --zstd-level 3)
ok $? "copy with --segment-size 65536 --jobs 2 --zstd-level 3 exits 0"
is "$(json_field "$out" segment_size)" 65536 "the chosen segment size is used"
is "$(json_field "$out" segments_total)" 144 "9 MiB in 64 KiB segments is 144 segments"
is "$(sha "$STATE/volumes/small")" "$(sha "$TEST_DIR/small.img")" "small-segment copy has the same SHA-256"

# --- the fault hook: a corrupted segment body is refused and retried ---
if ! grep -qa FERRY_FAULT_CORRUPT_SEGMENT "$FERRY"; then
	for _ in 1 2 3 4 5; do skip "$FERRY has no fault hook (not a check build)"; done
else
	log_lines=$(wc -l < "$TEST_DIR/site.log")
	out=$(FERRY_FAULT_CORRUPT_SEGMENT=1 ferry_copy "$DAEMON_URL" "$TEST_DIR/disk.img" faulty \
		2>"$TEST_DIR/faulty.err")
	ok $? "copy with a corrupted segment 1 still exits 0"
	retries=$(json_field "$out" retries)
	[ "${retries:-0}" -ge 1 ]
	ok $? "retries >= 1 (got $retries)"
	is "$(sha "$STATE/volumes/faulty")" "$(sha "$TEST_DIR/disk.img")" "faulty copy still has the same SHA-256"
	grep -q 'segment 1 .*422' "$TEST_DIR/faulty.err"
	ok $? "sender reports the HTTP 422 refusal of segment 1"
	refusal_logged() { tail -n +$((log_lines + 1)) "$TEST_DIR/site.log" | grep -qi 'segment 1 .*checksum'; }
	wait_until 5 refusal_logged
	ok $? "daemon log mentions the checksum refusal of segment 1"
fi

# --- edge sizes ---
: > "$TEST_DIR/empty.img"
out=$(ferry_copy "$DAEMON_URL" "$TEST_DIR/empty.img" empty)
ok $? "copy of a 0-byte source exits 0"
is "$(json_field "$out" segments_total)" 0 "0-byte source has 0 segments"
[ -f "$STATE/volumes/empty" ] && [ "$(stat -c %s "$STATE/volumes/empty")" = 0 ]
ok $? "received empty volume exists with size 0"
"$FERRY" verify --to "$DAEMON_URL" "${TOKEN_ARGS[@]}" "$TEST_DIR/empty.img" empty > /dev/null
ok $? "verify of the empty volume matches"

head -c $((5 * 1048576 + 123)) /dev/urandom > "$TEST_DIR/odd.img"
out=$(ferry_copy "$DAEMON_URL" "$TEST_DIR/odd.img" odd)
ok $? "copy of a 5 MiB + 123 byte source exits 0"
is "$(json_field "$out" segments_total)" 2 "5 MiB + 123 bytes is 2 segments"
is "$(stat -c %s "$STATE/volumes/odd")" $((5 * 1048576 + 123)) "received odd-sized volume has the exact size"
is "$(sha "$STATE/volumes/odd")" "$(sha "$TEST_DIR/odd.img")" "odd-sized copy has the same SHA-256"

# --- the catalogs ---
is "$(sqlite3 "$STATE/catalog.db" 'PRAGMA journal_mode;')" wal "daemon catalog is in WAL mode"
schema=$(sed -n 's/^#define CATALOG_SCHEMA_VERSION \([0-9]*\)$/\1/p' "$(dirname "$0")/../../catalog/catalog.h")
is "$(sqlite3 "$STATE/catalog.db" 'PRAGMA user_version;')" "$schema" "daemon catalog user_version is the schema's, $schema"
is "$(sqlite3 "$STATE/catalog.db" "SELECT state FROM transfers WHERE role='receive' AND volume='disk';")" \
	complete "daemon catalog has a complete receive transfer for disk"
is "$(sqlite3 "$FERRY_STATE_DIR/catalog.db" 'PRAGMA journal_mode;')" wal "CLI catalog is in WAL mode"
is "$(sqlite3 "$FERRY_STATE_DIR/catalog.db" "SELECT state FROM transfers WHERE role='send' AND volume='disk' ORDER BY id DESC LIMIT 1;")" \
	complete "CLI catalog has a complete send transfer for disk"

stop_daemon "$DAEMON_PID"
ok $? "ferryd stops with status 0"
exit $test_failed
