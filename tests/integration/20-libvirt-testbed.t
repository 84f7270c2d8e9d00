#!/bin/bash
# Proves the libvirt test bed that the cutover tests build on: two privileged libvirtd daemons side
# by side (tests/libvirt-daemon.sh), a guest without an OS (tests/guest/) that prints "tick N" on
# its serial port every second, a live peer-to-peer migration of it from daemon 1 to daemon 2 with
# a local disk file, writes into the running guest's disk through QEMU (tests/guest/qemu-io.sh),
# and stops that leave no libvirtd or QEMU behind. See libvirt-testbed.md for the recipe.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LIBVIRT_SH="$ROOT/tests/libvirt-daemon.sh"
GUEST="$ROOT/tests/guest"

have_tools() {
	local t
	for t in libvirtd virsh qemu-system-x86_64 as ld objcopy unshare findmnt; do
		command -v "$t" > /dev/null || return 1
	done
}
# Skip only when the packages are missing and cannot be installed (CI runs as root with apt).
if ! have_tools && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
	diag "libvirt or QEMU missing: running tests/install-deps.sh (log in $TEST_DIR/install-deps.log)"
	sh "$ROOT/tests/install-deps.sh" > "$TEST_DIR/install-deps.log" 2>&1 ||
		sed 's/^/#   /' "$TEST_DIR/install-deps.log" | tail -n 20
	hash -r
fi
if ! have_tools; then
	echo "1..0 # SKIP needs libvirtd, virsh, qemu-system-x86_64 and binutils (tests/install-deps.sh as root)"
	exit 0
fi

plan 35

D1="$TEST_DIR/libvirt-1" D2="$TEST_DIR/libvirt-2"
DISK="$TEST_DIR/guest.img" SERIAL="$TEST_DIR/guest-serial.log" DOM="ferry-t20-$$"
export FERRY_LIBVIRT_TIMEOUT=180	# a cold capability probe on a loaded machine is slow
STARTED=""

libvirt_cleanup() {
	local d
	for d in $STARTED; do "$LIBVIRT_SH" stop "$d" > /dev/null 2>&1; done
	STARTED=""
	cleanup
}
trap libvirt_cleanup EXIT
trap 'exit 1' INT TERM HUP	# so that the EXIT trap stops the daemons when prove is interrupted

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
none_running() { [ "$(running_threads "$@")" = 0 ]; }
# gone SECONDS PID...: waits until none of the processes runs (a loaded machine may be slow to
# finish killing one); says which still run when it gives up.
gone() {
	local seconds=$1 pid left=""; shift
	[ $# -gt 0 ] || { diag "gone: no PIDs to check"; return 1; }
	wait_until "$seconds" none_running "$@" && return 0
	for pid in "$@"; do
		[ "$(running_threads "$pid")" = 0 ] || left="$left $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c 1-80)"
	done
	diag "still running after $seconds s:$left"
	return 1
}
# in_namespace NAME: PIDs of processes that still have daemon NAME's DIR/lib bound over
# /var/lib/libvirt, i.e. live in its mount namespace (the test folder's name makes it ours).
in_namespace() {
	grep -s -l -F "${TEST_DIR##*/}/$1/lib /var/lib/libvirt " /proc/[0-9]*/mountinfo |
		sed -n 's#^/proc/\([0-9]*\)/mountinfo$#\1#p' | tr '\n' ' '
}
# ticks: the complete "tick N" lines of the serial log, as numbers, one a line (a line QEMU is
# still writing is left out: "tick 1" may be the start of "tick 12").
ticks() {
	local snap="$TEST_DIR/serial.snap"
	cat "$SERIAL" > "$snap" 2>/dev/null || { : > "$snap"; }
	if [ -s "$snap" ] && [ "$(tail -c 1 "$snap" | od -An -tx1 | tr -d ' ')" != 0a ]; then
		sed -i '$d' "$snap"
	fi
	tr -d '\r' < "$snap" | sed -n 's/^tick \([0-9][0-9]*\)$/\1/p'
}
last_tick() { ticks | tail -n 1; }
# wait_tick N SECONDS: until the guest has printed tick N or more since line FROM_LINE (default 0).
ticked() {
	local t
	t=$(ticks | tail -n +"$((${FROM_LINE:-0} + 1))" | tail -n 1)
	[ -n "$t" ] && [ "$t" -ge "$1" ]
}
wait_tick() {
	wait_until "$2" ticked "$1" && return 0
	diag "no tick $1 within $2 s; the serial log ends with:"
	tail -n 3 "$SERIAL" 2>/dev/null | tr -d '\r' | sed 's/^/#   /'
	return 1
}
# consecutive: the tick numbers on stdin are 0, 1, 2... with no gap and no repeat.
consecutive() { awk 'BEGIN { n = 0 } { if ($1 != n) { print "after " n - 1 " came " $1; bad = 1; exit } n++ }
	END { if (n == 0 && !bad) { print "no ticks"; bad = 1 } exit bad }'; }
is_empty() { [ -z "$1" ] || { diag "still in the namespace: $1"; return 1; }; }
# bytes_are FILE OFFSET LENGTH HEX: every byte of the range is HEX (e.g. 5a).
bytes_are() {
	local got
	got=$(od -An -v -tx1 -j "$2" -N "$3" "$1" | tr -s ' \n' '\n' | grep -v '^$' | sort | uniq -c | awk '{ print $1, $2 }')
	[ "$got" = "$3 $4" ] || { diag "bytes $2..+$3 of $1: $(printf '%s' "$got" | tr '\n' ',') (count, byte)"; return 1; }
}
vsh() { local uri=$1; shift; timeout -k 5 300 virsh -q -c "$uri" "$@"; }
dom_state() { vsh "$1" domstate "$DOM" 2>/dev/null | head -n 1; }
qemu_pid() { cat "$1/run/qemu/$DOM.pid" 2>/dev/null; }

# --- two daemons ---
t0=$(now)
U1=$("$LIBVIRT_SH" start "$D1" 1 2> "$TEST_DIR/start-1.err")
rc=$?
STARTED="$STARTED $D1"
ok $rc "daemon 1 starts ($(since "$t0") s)"
[ $rc = 0 ] || sed 's/^/#   /' "$TEST_DIR/start-1.err"
t0=$(now)
U2=$("$LIBVIRT_SH" start "$D2" 2 "$D1" 2> "$TEST_DIR/start-2.err")
rc=$?
STARTED="$STARTED $D2"
ok $rc "daemon 2 starts with daemon 1's capability cache ($(since "$t0") s)"
[ $rc = 0 ] || sed 's/^/#   /' "$TEST_DIR/start-2.err"
if [ -z "$U1" ] || [ -z "$U2" ]; then echo "Bail out! no libvirt daemons"; exit 1; fi
is "$U1" "qemu+unix:///system?socket=$D1/sock/libvirt-sock" "start prints daemon 1's URI"
is "$("$LIBVIRT_SH" uri "$D2")" "$U2" "uri prints daemon 2's URI"
"$LIBVIRT_SH" status "$D1" > /dev/null && "$LIBVIRT_SH" status "$D2" > /dev/null
ok $? "status: both answer"
[ -n "$(in_namespace libvirt-1)" ] && [ -n "$(in_namespace libvirt-2)" ]
ok $? "their processes are found by their namespaces' mounts ($(in_namespace libvirt-1)/ $(in_namespace libvirt-2))"
uuid1=$(vsh "$U1" capabilities | sed -n 's#.*<uuid>\(.*\)</uuid>.*#\1#p' | head -n 1)
uuid2=$(vsh "$U2" capabilities | sed -n 's#.*<uuid>\(.*\)</uuid>.*#\1#p' | head -n 1)
[ -n "$uuid1" ] && [ -n "$uuid2" ] && [ "$uuid1" != "$uuid2" ]
ok $? "they are different hosts to libvirt (host UUIDs $uuid1, $uuid2)"
out=$("$LIBVIRT_SH" start "$D1" 1 2>&1)
[ $? != 0 ] && printf '%s' "$out" | grep -q "already running"
ok $? "a second start in daemon 1's folder is refused"

# --- the guest ---
"$GUEST/build.sh" "$DISK" 16
ok $? "guest disk built"
is "$(stat -c %s "$DISK") $(od -An -tx1 -j 510 -N 2 "$DISK" | tr -d ' ')" "16777216 55aa" \
	"16 MiB with a boot sector signature"
"$GUEST/domain.sh" "$DOM" "$DISK" "$SERIAL" > "$TEST_DIR/domain.xml" &&
	vsh "$U1" define "$TEST_DIR/domain.xml" > /dev/null
ok $? "guest defined on daemon 1"
t0=$(now)
vsh "$U1" start "$DOM" > /dev/null
ok $? "guest started on daemon 1 ($(since "$t0") s)"
pid1=$(qemu_pid "$D1")
wait_tick 2 120
ok $? "it prints ticks on its serial port ($(ticks | wc -l) so far)"

# --- writes inside the running guest ---
"$GUEST/qemu-io.sh" "$U1" "$DOM" vda 'write -P 0x5a 1048576 4096'
ok $? "qemu-io.sh writes 4 KiB of 0x5a at 1 MiB into the running guest's disk"
bytes_are "$DISK" 1048576 4096 5a
ok $? "the bytes are in the disk file"
bytes_are "$DISK" $((1048576 + 4096)) 4096 00
ok $? "and no more than them"
# Why qemu-io.sh goes through the device: the disk's node refuses a second writer.
out=$(vsh "$U1" qemu-monitor-command --hmp "$DOM" 'qemu-io libvirt-1-format "write -P 0x11 8388608 512"' 2>&1)
rc=$?
printf '%s' "$out" | grep -q "Permission conflict" && bytes_are "$DISK" 8388608 512 00
ok $? "(qemu-io on the disk's node name is refused; virsh exits $rc all the same)"

# --- live migration, peer to peer, daemon 1 -> daemon 2 ---
before=$(last_tick)
t0=$(now)
vsh "$U1" migrate --live --p2p --persistent --undefinesource --unsafe "$DOM" "$U2" \
	--migrateuri tcp://127.0.0.1 --listen-address 127.0.0.1 > "$TEST_DIR/migrate.out" 2>&1
rc=$?
took=$(since "$t0")
ok $rc "live migration to daemon 2 ($took s)"
[ $rc = 0 ] || sed 's/^/#   /' "$TEST_DIR/migrate.out"
downtime=$(vsh "$U2" domjobinfo --completed "$DOM" 2>/dev/null | sed -n 's/^Total downtime: *//p' | tr -s ' ')
diag "migration: $took s for the virsh call, downtime ${downtime:-unknown}, tick $before before it"
is "$(dom_state "$U2")" "running" "the guest runs on daemon 2"
vsh "$U2" dominfo "$DOM" 2>/dev/null | grep -q '^Persistent: *yes'
ok $? "and is defined there (--persistent)"
vsh "$U1" list --all --name 2>/dev/null | grep -qx "$DOM"
[ $? != 0 ]
ok $? "daemon 1 no longer knows it (--undefinesource)"
[ -n "$pid1" ] && gone 60 "$pid1"
ok $? "daemon 1's QEMU ($pid1) is gone"
wait_tick $((${before:-0} + 3)) 120
ok $? "the guest keeps ticking after the migration (tick $(last_tick))"
skips=$(ticks | consecutive)
ok $? "the ticks never skipped nor repeated across the migration${skips:+: $skips}"
"$GUEST/qemu-io.sh" "$U2" "$DOM" vda 'write -P 0xa5 2097152 4096' && bytes_are "$DISK" 2097152 4096 a5
ok $? "a write through daemon 2's QEMU lands in the same disk file"
bytes_are "$DISK" 1048576 4096 5a
ok $? "the write made before the migration is still there"

# --- destroy, start again on daemon 2, and stop with a guest running ---
pid2=$(qemu_pid "$D2")
vsh "$U2" destroy "$DOM" > /dev/null
ok $? "destroy on daemon 2"
[ -n "$pid2" ] && gone 60 "$pid2"
ok $? "its QEMU ($pid2) is gone"
FROM_LINE=$(ticks | wc -l)	# the new boot counts from 0 again, below the old lines
vsh "$U2" start "$DOM" > /dev/null && wait_tick 1 120
ok $? "the guest boots again from its definition on daemon 2"
FROM_LINE=0
pid3=$(qemu_pid "$D2")
pids1="$(cat "$D1/pid" "$D1/libvirtd.pid" 2>/dev/null | tr '\n' ' ')"
pids2="$(cat "$D2/pid" "$D2/libvirtd.pid" 2>/dev/null | tr '\n' ' ')"
t0=$(now)
"$LIBVIRT_SH" stop "$D2"
ok $? "stop daemon 2 with the guest running ($(since "$t0") s)"
# shellcheck disable=SC2086
[ -n "$pid3" ] && [ -n "$pids2" ] && gone 10 $pid3 $pids2 && is_empty "$(in_namespace libvirt-2)"
ok $? "no process of daemon 2 is left (wrapper and libvirtd $pids2, QEMU $pid3, none in its namespace)"
"$LIBVIRT_SH" status "$D2" > /dev/null
[ $? != 0 ]
ok $? "status of daemon 2 fails"
"$LIBVIRT_SH" stop "$D1"
ok $? "stop daemon 1"
# shellcheck disable=SC2086
[ -n "$pids1" ] && gone 10 $pids1 && is_empty "$(in_namespace libvirt-1)"
ok $? "no process of daemon 1 is left (wrapper and libvirtd $pids1, none in its namespace)"
STARTED=""
"$LIBVIRT_SH" stop "$D1"
ok $? "stop of a stopped daemon succeeds"
exit $test_failed
