#!/bin/bash
# Disk images in any format in, a raw volume out, nothing guessed: ferry copy --source-format
# reads qcow2 (with a backing chain), vmdk, vhdx and vpc through qemu-nbd, and the volume equals
# `qemu-img convert -O raw` of the source byte for byte, verified end to end; ranges that read
# as zeros are not read. A plain file with an image header is refused until --source-format
# says how to read it (a raw disk may hold such a header: raw copies its bytes as they are). A
# copy cut by kill -9 resumes. --target-format qcow2 keeps the volume as a sparse qcow2 file,
# written through qemu-nbd, that survives a kill -9 of the receiving ferryd.
. "$(dirname "$0")/lib.sh"
plan 26

IMAGES="$TEST_DIR/images"
mkdir -p "$IMAGES"
# A 64 MiB guest disk: scattered data, a zeroed range, the rest never written.
python3 - "$IMAGES/base.raw" <<'PY'
import os, random, sys
random.seed(7)
with open(sys.argv[1], "wb") as f:
    f.truncate(64 << 20)
    for _ in range(24):
        f.seek(random.randrange(0, 48 << 20, 4096))
        f.write(os.urandom(65536))
PY
qemu-img convert -f raw -O qcow2 "$IMAGES/base.raw" "$IMAGES/base.qcow2"
qemu-img create -q -f qcow2 -b "$IMAGES/base.qcow2" -F qcow2 "$IMAGES/top.qcow2"
qemu-io -f qcow2 -c 'write -P 0xab 1M 2M' -c 'write -z 60M 1M' "$IMAGES/top.qcow2" > /dev/null
ok $? "a qcow2 with a backing file, written over in its top layer"

start_daemon site || { echo "Bail out! ferryd did not start"; exit 1; }
CA="$TEST_DIR/tls/ca.pem"
TO=(--to "$DAEMON_URL" --token-file "$TEST_DIR/token" --cacert "$CA")
raw_of() { qemu-img convert -O raw "$1" "$2"; }

"$FERRY" copy "${TO[@]}" "$IMAGES/top.qcow2" plain > /dev/null 2> "$TEST_DIR/refused.err"
is "$?" 2 "a qcow2 given as a plain file is refused (exit 2): nothing is guessed"
grep -q 'starts with a qcow2 header.*--source-format qcow2' "$TEST_DIR/refused.err"
ok $? "  the message says how to read it: $(head -c 150 "$TEST_DIR/refused.err")"
[ ! -e "$TEST_DIR/site/volumes/plain" ]
ok $? "  and nothing was sent"

"$FERRY" copy "${TO[@]}" --source-format qcow2 --json "$IMAGES/top.qcow2" top > "$TEST_DIR/top.json"
ok $? "ferry copy --source-format qcow2 copies the disk the chain describes"
raw_of "$IMAGES/top.qcow2" "$IMAGES/top.expected"
is "$(sha "$TEST_DIR/site/volumes/top")" "$(sha "$IMAGES/top.expected")" \
	"  the volume equals qemu-img convert -O raw of it, byte for byte"
jq -e '.segments_zero > 0 and .bytes_read < .bytes_total' "$TEST_DIR/top.json" > /dev/null
ok $? "  ranges that read as zeros were not read ($(jq -c '{bytes_total, bytes_read, segments_zero}' "$TEST_DIR/top.json"))"
"$FERRY" verify "${TO[@]}" --source-format qcow2 --json "$IMAGES/top.qcow2" top | jq -e '.match' > /dev/null
ok $? "  ferry verify --source-format re-reads both sides: the digests match"

for format in vmdk vhdx vpc; do
	qemu-img convert -f raw -O "$format" "$IMAGES/top.expected" "$IMAGES/disk.$format"
	"$FERRY" copy "${TO[@]}" --source-format "$format" --json "$IMAGES/disk.$format" "v-$format" > /dev/null
	ok $? "a $format image is copied"
	raw_of "$IMAGES/disk.$format" "$IMAGES/$format.expected"
	is "$(sha "$TEST_DIR/site/volumes/v-$format")" "$(sha "$IMAGES/$format.expected")" \
		"  it equals qemu-img convert -O raw of it"
done

# A raw disk whose first bytes are a qcow2 header (the guest wrote one): raw means its bytes.
cp "$IMAGES/base.raw" "$IMAGES/looks-like.raw"
head -c 512 "$IMAGES/base.qcow2" | dd of="$IMAGES/looks-like.raw" conv=notrunc status=none
"$FERRY" copy "${TO[@]}" "$IMAGES/looks-like.raw" looks > /dev/null 2>&1
is "$?" 2 "a raw disk that starts with a qcow2 header is refused without --source-format"
"$FERRY" copy "${TO[@]}" --source-format raw "$IMAGES/looks-like.raw" looks > /dev/null
ok $? "  --source-format raw copies it"
is "$(sha "$TEST_DIR/site/volumes/looks")" "$(sha "$IMAGES/looks-like.raw")" "  as its bytes, header and all"

"$FERRY" copy "${TO[@]}" --source-format qcow3 "$IMAGES/top.qcow2" bad > /dev/null 2>&1
is "$?" 2 "an unknown format is refused by the CLI (exit 2)"

# Cut by kill -9 of the CLI once some segments are durable, then resumed.
"$FERRY" copy "${TO[@]}" --source-format qcow2 --bwlimit 4M --no-progress "$IMAGES/top.qcow2" cut > /dev/null 2>&1 &
copier=$!
wait_until 60 volume_durable_at_least cut 2
kill -9 "$copier" 2>/dev/null
wait "$copier" 2>/dev/null
"$FERRY" copy "${TO[@]}" --source-format qcow2 --json "$IMAGES/top.qcow2" cut > "$TEST_DIR/cut.json"
jq -e '.status == "complete" and .segments_skipped > 0' "$TEST_DIR/cut.json" > /dev/null
ok $? "a copy cut by kill -9 resumes ($(jq -c '{segments_skipped, segments_sent}' "$TEST_DIR/cut.json"))"
is "$(sha "$TEST_DIR/site/volumes/cut")" "$(sha "$IMAGES/top.expected")" "  and its volume equals the guest's disk"

# A qcow2 volume at the receiver, cut by kill -9 of the receiving ferryd and resumed.
"$FERRY" copy "${TO[@]}" --source-format qcow2 --target-format qcow2 --json "$IMAGES/top.qcow2" q > "$TEST_DIR/q.json"
ok $? "--target-format qcow2 keeps the volume as a qcow2 file"
[ "$(qemu-img info --output=json "$TEST_DIR/site/volumes/q" | jq -r .format)" = qcow2 ] &&
	[ "$(volume_field q segments_total)" != none ]
ok $? "  qemu-img says it is qcow2, and ferry status lists it"
raw_of "$TEST_DIR/site/volumes/q" "$IMAGES/q.raw"
is "$(sha "$IMAGES/q.raw")" "$(sha "$IMAGES/top.expected")" "  its guest-visible bytes equal the source's"
"$FERRY" copy "${TO[@]}" --source-format qcow2 --target-format qcow2 --bwlimit 4M --no-progress \
	"$IMAGES/top.qcow2" q-cut > /dev/null 2>&1 &
copier=$!
wait_until 60 volume_durable_at_least q-cut 3
kill9 "$DAEMON_PID"
kill -9 "$copier" 2>/dev/null # the run below resumes it, not the copier's own retries
wait "$copier" 2>/dev/null
DAEMON_PORT=${DAEMON_URL##*:} start_daemon site || { echo "Bail out! ferryd did not restart"; exit 1; }
"$FERRY" copy "${TO[@]}" --source-format qcow2 --target-format qcow2 --json "$IMAGES/top.qcow2" q-cut > "$TEST_DIR/q-cut.json"
jq -e '.status == "complete" and .segments_skipped > 0' "$TEST_DIR/q-cut.json" > /dev/null
ok $? "a qcow2 volume cut by kill -9 of the receiving ferryd resumes ($(jq -c '{segments_skipped, segments_sent}' "$TEST_DIR/q-cut.json"))"
raw_of "$TEST_DIR/site/volumes/q-cut" "$IMAGES/q-cut.raw"
is "$(sha "$IMAGES/q-cut.raw")" "$(sha "$IMAGES/top.expected")" "  and every byte the guest sees is there"
"$FERRY" copy "${TO[@]}" --target rbd --target-format qcow2 "$IMAGES/top.expected" q-rbd > /dev/null 2>&1
is "$?" 2 "--target-format qcow2 with --target rbd is refused (exit 2)"
