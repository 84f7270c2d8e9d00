#!/bin/bash
# Proves the Ceph test bed: two (memstore) clusters run side by side with their own data and keys,
# a wrong key is refused, and a bluestore cluster keeps its images across stop, start and restart.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-ceph.sh"

if ! command -v ceph-mon >/dev/null || ! command -v ceph-osd >/dev/null || ! command -v rbd >/dev/null; then
	echo "1..0 # SKIP needs ceph-mon, ceph-osd and rbd (tests/install-deps.sh)"
	exit 0
fi

plan 33

MIB=1048576
P="t08-$$-"	# image names: A and B may be clusters the whole suite shares
rbdc() { timeout 300 rbd -c "$@"; }	# rbdc CONF ARGS...: rbd, never hanging
conf_value() { sed -n "s/^$2 = //p" "$1" | head -n 1; }	# conf_value CONF KEY

# --- two memstore clusters side by side ---
ceph_cluster MEMA memstore
ok $? "cluster A starts"
ceph_cluster MEMB memstore
ok $? "cluster B starts"
if [ -z "${CEPH_CONF_MEMA:-}" ] || [ -z "${CEPH_CONF_MEMB:-}" ]; then echo "Bail out! no Ceph cluster"; exit 1; fi
A=$CEPH_CONF_MEMA B=$CEPH_CONF_MEMB
[ "$(conf_value "$A" fsid)" != "$(conf_value "$B" fsid)" ]
ok $? "A and B have different fsids"
port_a=$(conf_value "$A" 'mon host' | sed 's/.*:\([0-9]*\)\]/\1/')
port_b=$(conf_value "$B" 'mon host' | sed 's/.*:\([0-9]*\)\]/\1/')
diff=$((port_a - port_b)); diff=${diff#-}
[ "$diff" -ge 100 ]
ok $? "their mon ports are >= 100 apart ($port_a, $port_b)"
grep -qx "keyring = $(dirname "$A")/keyring" "$A"
ok $? "A's ceph.conf names its keyring"

rbdc "$A" create --size 64M rbd/${P}disk
ok $? "rbd create of a 64 MiB image in A"
rbdc "$B" create --size 64M rbd/${P}disk
ok $? "rbd create of a 64 MiB image in B"
is "$(rbdc "$A" info --format json rbd/${P}disk | jq .size)" $((64 * MIB)) "A's image has 64 MiB"
rbdc "$A" bench --io-type write --io-size 4M --io-total 64M --io-pattern seq rbd/${P}disk > "$TEST_DIR/bench-a.log" 2>&1
ok $? "rbd bench writes 64 MiB into A"
rbdc "$B" bench --io-type write --io-size 64K --io-total 16M --io-pattern rand rbd/${P}disk > "$TEST_DIR/bench-b.log" 2>&1
ok $? "rbd bench writes 16 MiB at random into B"
is "$(rbdc "$A" du --format json rbd/${P}disk | jq '.images[0].used_size')" $((64 * MIB)) \
	"A's image has all 64 MiB allocated"

make_image "$TEST_DIR/pattern.img" 64
file_sha=$(sha "$TEST_DIR/pattern.img")
rbdc "$A" import --no-progress "$TEST_DIR/pattern.img" rbd/${P}pattern
ok $? "rbd import of a 64 MiB file into A"
rbdc "$B" import --no-progress "$TEST_DIR/pattern.img" rbd/${P}pattern
ok $? "rbd import of the same file into B"
is "$(rbd_sha "$A" rbd/${P}pattern)" "$file_sha" "rbd_sha of A's imported image is the file's SHA-256"
is "$(rbd_sha "$B" rbd/${P}pattern)" "$file_sha" "rbd_sha of B's imported image is the file's SHA-256"
rbdc "$B" create --size 64M rbd/${P}empty
is "$(rbd_sha "$B" rbd/${P}empty)" "$(head -c $((64 * MIB)) /dev/zero | sha256sum | cut -d' ' -f1)" \
	"rbd_sha of a new, unwritten image is that of 64 MiB of zeros"
rbd_sha "$B" rbd/${P}no-such-image > /dev/null 2>&1
[ $? -ne 0 ]
ok $? "rbd_sha of a missing image fails"

rbdc "$A" rm --no-progress rbd/${P}pattern
is "$(rbdc "$A" ls rbd | grep "^$P" | tr '\n' ' ')" "${P}disk " "A lists only its remaining image"
is "$(rbdc "$B" ls rbd | grep "^$P" | sort | tr '\n' ' ')" "${P}disk ${P}empty ${P}pattern " \
	"B still has its own images"

# --- keys ---
ceph-authtool --create-keyring "$TEST_DIR/wrong.keyring" --gen-key -n client.admin > /dev/null
sed "s#^keyring = .*#keyring = $TEST_DIR/wrong.keyring#" "$A" > "$TEST_DIR/wrong.conf"
err=$(timeout 60 rbd -c "$TEST_DIR/wrong.conf" ls rbd 2>&1)
is $? 13 "a client with a wrong client.admin key is refused with EACCES"
printf '%s' "$err" | grep -q "Permission denied"
ok $? "the refusal says Permission denied"
sed "s#^keyring = .*#keyring = $(dirname "$B")/keyring#" "$A" > "$TEST_DIR/b-key.conf"
timeout 60 rbd -c "$TEST_DIR/b-key.conf" ls rbd > /dev/null 2>&1
is $? 13 "B's admin key is refused by A"

# --- a bluestore cluster keeps its data across stop, start and restart ---
ceph_cluster BLUE bluestore
ok $? "a bluestore cluster starts"
C=${CEPH_CONF_BLUE:-/nonexistent} CDIR=${CEPH_DIR_BLUE:-/nonexistent}
rbdc "$C" import --no-progress "$TEST_DIR/pattern.img" rbd/${P}pattern &&
	rbdc "$C" bench --io-type write --io-size 4M --io-total 32M rbd/${P}pattern > "$TEST_DIR/bench-c.log" 2>&1
ok $? "the file imported into it and 32 MiB overwritten"
blue_sha=$(rbd_sha "$C" rbd/${P}pattern)
fsid=$(conf_value "$C" fsid)
pids=$(cat "$CDIR/pids" 2>/dev/null)

port_c=$(sed -n 's/^PORT=//p' "$CDIR/cluster.env")

"$CEPH_CLUSTER_SH" stop "$CDIR"
ok $? "stop"
"$CEPH_CLUSTER_SH" status "$CDIR" > /dev/null 2>&1
[ $? -ne 0 ] && [ -n "$pids" ] && [ "$(running_threads $pids)" = 0 ]
ok $? "after stop, status fails and its processes ($(echo $pids)) are gone"
out=$("$CEPH_CLUSTER_SH" start "$CDIR" "$port_c" bluestore 2>&1)
ok $? "start of the stopped bluestore folder ($(printf '%s' "$out" | tail -n 1))"
is "$(rbd_sha "$C" rbd/${P}pattern)" "$blue_sha" "it finds the image again"
out=$("$CEPH_CLUSTER_SH" restart "$CDIR" 2>&1)
ok $? "restart ($(printf '%s' "$out" | tail -n 1))"
is "$(rbd_sha "$C" rbd/${P}pattern)" "$blue_sha" "after restart, the image is unchanged"
is "$(conf_value "$C" fsid)" "$fsid" "restart kept the fsid"
err=$("$CEPH_CLUSTER_SH" restart "$(dirname "$A")" 2>&1)
[ $? -ne 0 ] && printf '%s' "$err" | grep -q memstore
ok $? "restart of a memstore cluster is refused"
diag "$err"
is "$(rbdc "$A" ls rbd | grep "^$P" | tr '\n' ' ')" "${P}disk " "A still answers after all that"

# Leave nothing in them.
for img in disk pattern empty; do
	rbdc "$A" rm --no-progress "rbd/${P}$img" > /dev/null 2>&1
	rbdc "$B" rm --no-progress "rbd/${P}$img" > /dev/null 2>&1
done
exit $test_failed
