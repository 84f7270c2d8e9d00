#!/bin/bash
# Cold copies with RBD at either end, between two real single-node Ceph clusters (site A and B):
# into Ceph, out of it, image to image, from a snapshot, resumed after kill -9, and bad input.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"

plan 32
ceph_sites
NAME_PREFIX=t$$	# images in shared clusters must not collide with another test's

# Site B keeps RBD volumes in its cluster's pool rbd; the CLI reads site A's cluster.
start_daemon site --ceph-conf "$B" || { echo "Bail out! ferryd did not start"; exit 1; }
COPY_OPTIONS=(--ceph-conf "$A" --segment-size 1M --jobs 3)

# A 48 MiB image on A: 20 MiB of data at 8 MiB and a few bytes at the end; the rest never written.
make_image "$TEST_DIR/pattern.img" 30
truncate -s 48M "$TEST_DIR/src.img"
head -c $((20 * 1048576)) "$TEST_DIR/pattern.img" |
	dd of="$TEST_DIR/src.img" bs=1M seek=8 conv=notrunc iflag=fullblock status=none
printf 'tail' | dd of="$TEST_DIR/src.img" bs=1 seek=$((47 * 1048576)) conv=notrunc status=none
rbd_a import --no-progress --sparse-size 4096 "$TEST_DIR/src.img" "rbd/${NAME_PREFIX}-src" >/dev/null
SRC_SHA=$(sha "$TEST_DIR/src.img")
is "$(rbd_sha "$A" "rbd/${NAME_PREFIX}-src")" "$SRC_SHA" "source image on A holds the pattern"

# 1. RBD (A) -> RBD (B), the default target for an RBD source.
copy_command
out=$("${COPY_ARGS[@]}" "rbd:rbd/${NAME_PREFIX}-src" "${NAME_PREFIX}-r1" 2> "$TEST_DIR/r1.err")
ok $? "ferry copy rbd:rbd/${NAME_PREFIX}-src -> site B exits 0"
is "$(json_field "$out" status)" complete "status complete"
is "$(rbd_sha "$B" "rbd/${NAME_PREFIX}-r1")" "$SRC_SHA" "replica image on B equals the source"
[ "$(json_field "$out" segments_zero)" -ge 20 ]
ok $? "never-written objects travel as zero records ($(json_field "$out" segments_zero) of 48)"
is "$(volume_field "${NAME_PREFIX}-r1" state)" complete "ferry status shows the volume complete"
"$FERRY" status --daemon "$DAEMON_URL" --token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem" \
	--json "${NAME_PREFIX}-r1" | jq -e --arg l "rbd:rbd/${NAME_PREFIX}-r1" '.kind == "rbd" and .location == $l' > /dev/null
ok $? "the volume is kept as rbd:rbd/${NAME_PREFIX}-r1 on site B"
used=$(rbd_b du "rbd/${NAME_PREFIX}-r1" 2>/dev/null |
	awk -v n="${NAME_PREFIX}-r1" '$1 == n { print $(NF - 1), $NF }')
case $used in
*MiB) [ "${used% MiB}" -le 28 ] ;;
*) false ;;
esac
ok $? "the replica stays thin (rbd du: ${used:-unknown} used of 48 MiB)"
"$FERRY" verify --to "$DAEMON_URL" --token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem" \
	--ceph-conf "$A" "rbd:rbd/${NAME_PREFIX}-src" "${NAME_PREFIX}-r1" > "$TEST_DIR/verify.out"
ok $? "ferry verify re-reads both images and they match"

# 2. A snapshot as the source: the copy is of the frozen point, not of later writes.
rbd_a snap create "rbd/${NAME_PREFIX}-src@p1" >/dev/null
rbd_a bench --io-type write --io-size 4K --io-total 1M --io-pattern rand \
	"rbd/${NAME_PREFIX}-src" >/dev/null 2>&1
[ "$(rbd_sha "$A" "rbd/${NAME_PREFIX}-src")" != "$SRC_SHA" ]
ok $? "the live image changed after the snapshot"
out=$("${COPY_ARGS[@]}" "rbd:rbd/${NAME_PREFIX}-src@p1" "${NAME_PREFIX}-snap" 2> "$TEST_DIR/snap.err")
ok $? "copy of the snapshot rbd:rbd/${NAME_PREFIX}-src@p1 exits 0"
is "$(rbd_sha "$B" "rbd/${NAME_PREFIX}-snap")" "$(rbd_sha "$A" "rbd/${NAME_PREFIX}-src@p1")" \
	"replica equals the snapshot"

# 3. A file into Ceph (a disk import) and an image out to a file (an export).
out=$("${COPY_ARGS[@]}" --target rbd "$TEST_DIR/src.img" "${NAME_PREFIX}-imported" 2> "$TEST_DIR/imp.err")
ok $? "file -> RBD with --target rbd exits 0"
is "$(rbd_sha "$B" "rbd/${NAME_PREFIX}-imported")" "$SRC_SHA" "imported image equals the file"
out=$("${COPY_ARGS[@]}" --target file "rbd:rbd/${NAME_PREFIX}-src@p1" "${NAME_PREFIX}-exported" \
	2> "$TEST_DIR/exp.err")
ok $? "RBD -> file with --target file exits 0"
is "$(sha "$TEST_DIR/site/volumes/${NAME_PREFIX}-exported")" "$SRC_SHA" "exported file equals the image"

# 4. kill -9 of the sender mid-copy, then the same command again.
head -c $((32 * 1048576)) /dev/urandom > "$TEST_DIR/random.img"
rbd_a import --no-progress "$TEST_DIR/random.img" "rbd/${NAME_PREFIX}-big" >/dev/null
rbd_a snap create "rbd/${NAME_PREFIX}-big@p1" >/dev/null
copy_bg "rbd:rbd/${NAME_PREFIX}-big@p1" "${NAME_PREFIX}-big" "$TEST_DIR/big1.out" --bwlimit 4M
wait_durable "${NAME_PREFIX}-big" 1
kill -9 "$COPY_PID" 2>/dev/null
wait "$COPY_PID" 2>/dev/null
durable=$(volume_field "${NAME_PREFIX}-big" segments_durable)
[ "$durable" != none ] && [ "$durable" -gt 0 ] && [ "$durable" -lt 32 ]
ok $? "the killed copy left part of the image durable ($durable of 32 segments)"
copy_command
out=$("${COPY_ARGS[@]}" "rbd:rbd/${NAME_PREFIX}-big@p1" "${NAME_PREFIX}-big" 2> "$TEST_DIR/big2.err")
ok $? "the re-run finishes"
is "$(json_field "$out" segments_skipped)" "$durable" "it skips exactly what was durable"
is "$(rbd_sha "$B" "rbd/${NAME_PREFIX}-big")" "$(sha "$TEST_DIR/random.img")" "and the replica is exact"

# 5. Bad input: each refused with a message that names the object and what to do.
"${COPY_ARGS[@]}" "rbd:nosuchpool/x" "${NAME_PREFIX}-bad" > /dev/null 2> "$TEST_DIR/bad1.err"
is $? 1 "an unknown pool is refused"
grep -q "pool 'nosuchpool'.*does not exist" "$TEST_DIR/bad1.err"
ok $? "  and the message names the pool"
"${COPY_ARGS[@]}" "rbd:rbd/${NAME_PREFIX}-nosuch" "${NAME_PREFIX}-bad" > /dev/null 2> "$TEST_DIR/bad2.err"
is $? 1 "an unknown image is refused"
grep -q "rbd/${NAME_PREFIX}-nosuch.*No such file" "$TEST_DIR/bad2.err"
ok $? "  and the message names the image"
"$FERRY" copy --to "$DAEMON_URL" --token-file "$TEST_DIR/token" --cacert "$TEST_DIR/tls/ca.pem" \
	"rbd:rbd/${NAME_PREFIX}-src" "${NAME_PREFIX}-bad" > /dev/null 2> "$TEST_DIR/bad3.err" </dev/null
is $? 1 "an RBD source without Ceph settings is refused"
grep -q -- "--ceph-conf" "$TEST_DIR/bad3.err"
ok $? "  and the message says to give --ceph-conf"
sed "s|^keyring = .*|keyring = $TEST_DIR/no-such-keyring|" "$A" > "$TEST_DIR/nokey.conf"
"${COPY_ARGS[@]}" --ceph-conf "$TEST_DIR/nokey.conf" "rbd:rbd/${NAME_PREFIX}-src" "${NAME_PREFIX}-bad" \
	> /dev/null 2> "$TEST_DIR/bad4.err"
is $? 1 "a missing keyring is refused"
grep -q "keyring" "$TEST_DIR/bad4.err"
ok $? "  and the message points at the keyring"

# A site without Ceph settings cannot keep RBD volumes, and says how to fix it.
stop_daemon "$DAEMON_PID"
start_daemon plain || { echo "Bail out! ferryd did not start"; exit 1; }
copy_command
"${COPY_ARGS[@]}" "rbd:rbd/${NAME_PREFIX}-src@p1" "${NAME_PREFIX}-x" > /dev/null 2> "$TEST_DIR/bad5.err"
is $? 1 "a site without --ceph-conf refuses an RBD volume"
grep -q -- "--target file" "$TEST_DIR/bad5.err"
ok $? "  and suggests --ceph-conf or --target file"
stop_daemon "$DAEMON_PID"

# The same settings from an INI file.
cat > "$TEST_DIR/ferryd.ini" <<INI
[ferryd]
state-dir = $TEST_DIR/ini-site
listen = 127.0.0.1:0
token-file = $TEST_DIR/token
tls-cert = $TEST_DIR/tls/server.pem
tls-key = $TEST_DIR/tls/server.key
[ceph]
conf = $B
replica-pool = rbd
INI
mkdir -p "$TEST_DIR/ini-site"
start_ferryd "$TEST_DIR/ini-site.log" --config "$TEST_DIR/ferryd.ini"
DAEMON_PID=$FERRYD_PID
wait_listening "$DAEMON_PID" "$TEST_DIR/ini-site"
DAEMON_URL=$(cat "$TEST_DIR/ini-site/ferryd.url" 2>/dev/null)
copy_command
out=$("${COPY_ARGS[@]}" "rbd:rbd/${NAME_PREFIX}-src@p1" "${NAME_PREFIX}-ini" 2> "$TEST_DIR/ini.err")
ok $? "a ferryd configured by --config keeps an RBD volume"
is "$(rbd_sha "$B" "rbd/${NAME_PREFIX}-ini")" "$SRC_SHA" "  and it is exact"
stop_daemon "$DAEMON_PID"
exit $test_failed
