#!/bin/bash
# `make demo`: ferry's main job on one machine. Two sites in a temporary folder, each with its own
# Ceph cluster, libvirtd and ferryd (own catalog, tokens, certificate); a VM at site A whose disk
# is an RBD image, protected in a group; then, with the figures ferry itself reports:
#   1. replication: writes inside the running guest reach site B as committed points;
#   2. a planned live migration to B with writes up to the last moment, all of them found at B;
#   3. reprotect back towards A, then an unplanned failover to A with B's ferryd killed (RTO, RPO);
#      site B comes back and A protects the VM towards it again;
#   4. a cold copy of a disk image cut by kill -9 and resumed.
# It ends with a summary table and exits 0 only when every check passed.
#
#   tests/demo.sh          run it, then remove every process and file it made
#   tests/demo.sh --keep   (or FERRY_DEMO_KEEP=1, `make demo KEEP=1`) leave both sites running
#                          and print how to reach them
#   tests/demo.sh stop [DIR]   (`make demo-stop`) stop and remove every kept demo, or the one in DIR
# Without root or mount namespaces it says why and shows the copy (4) alone, exit 0.
# Env: FERRY_BIN (the binaries, default bin/), FERRY_TEST_CEPH_A_CONF and _B_CONF (running
# clusters to use instead of starting two, as make check shares them), FERRY_DEMO_LOGS (a folder
# where a failed run leaves its logs).
# Everything lives in /tmp/ferry-demo.XXXXXX and listens on 127.0.0.1 only; Ctrl-C or a failure
# stops and removes it all. Helpers: tests/integration/lib*.sh, shared with the tests.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export FERRY_BIN=${FERRY_BIN:-$(cd "$here/.." && pwd)/bin}
KEEP=${FERRY_DEMO_KEEP:-0}
case "$KEEP" in 1|yes|true) KEEP=1 ;; *) KEEP=0 ;; esac
case "${1:-}" in
--keep) KEEP=1 ;;
stop)
	. "$here/integration/lib.sh"
	rm -rf "$TEST_DIR"
	. "$here/integration/lib-sites.sh"
	found=0
	if [ $# -ge 2 ]; then dirs=("$2"); else dirs=(/tmp/ferry-demo.*); fi
	for dir in "${dirs[@]}"; do
		[ -f "$dir/demo.env" ] || continue
		found=1
		sites_stop "$dir"
		rm -rf "$dir"
		echo "stopped and removed $dir"
	done
	[ "$found" = 1 ] || echo "no demo is running"
	exit 0
	;;
'') ;;
*) echo "usage: $0 [--keep | stop [DIR]]" >&2; exit 2 ;;
esac

. "$here/integration/lib.sh"
. "$here/integration/lib-ceph.sh"
. "$here/integration/lib-cutover.sh"
rm -rf "$TEST_DIR"	# lib.sh's folder: the demo keeps everything in its own
DEMO=$(mktemp -d /tmp/ferry-demo.XXXXXX)
chmod 755 "$DEMO"
TEST_DIR=$DEMO SITES_DIR=$DEMO
export FERRY_STATE_DIR="$DEMO/cli"
. "$here/integration/lib-sites.sh"
echo "started=$(date +%s)" > "$DEMO/demo.env"

t0=$(date +%s%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }	# a command as the operator would type it
note() { printf '   %s\n' "$*"; }
secs() { awk -v ms="${1:-0}" 'BEGIN { printf "%.1f", ms / 1000 }'; }	# secs MILLISECONDS
fail_note() { printf '   FAILED: %s\n' "$*"; }

# The summary: one row per check, "step|result|figure".
: > "$DEMO/summary"
failed=0
result() { # result STEP ok|FAILED FIGURE
	printf '%s|%s|%s\n' "$1" "$2" "$3" >> "$DEMO/summary"
	case "$2" in ok|"not run") ;; *) failed=1 ;; esac
}
check() { # check STATUS STEP FIGURE: ok when STATUS is 0
	if [ "$1" = 0 ]; then result "$2" ok "$3"; else result "$2" FAILED "$3"; fail_note "$2 ($3)"; fi
	return "$1"
}
summary() {
	say "summary ($(elapsed) s)"
	awk -F'|' '{ w1 = length($1) > w1 ? length($1) : w1; w2 = length($2) > w2 ? length($2) : w2; r[NR] = $0 }
		END { fmt = "%-" w1 "s  %-" (w2 > 6 ? w2 : 6) "s  %s\n"; printf fmt, "step", "result", "figure"
			for (i = 1; i <= NR; i++) { split(r[i], f, "|"); printf fmt, f[1], f[2], f[3] } }' "$DEMO/summary"
}

WRITER="" INTERRUPTED=""
exec 3>&1 4>&2	# the demo's stdout and stderr, for finish (the daemons it starts do not get them)
finish() {
	local rc=$?
	[ -z "$INTERRUPTED" ] || rc=130
	# A trap may run inside a command whose output goes to a file: back to the demo's own.
	{ exec 1>&3 2>&4; } 2>/dev/null
	trap - EXIT INT TERM HUP
	[ -z "$WRITER" ] || kill "$WRITER" 2>/dev/null
	if [ "$KEEP" = 1 ] && [ "$rc" = 0 ]; then	# a failed or interrupted demo is not kept
		keep_notes
		exit "$rc"
	fi
	sites_stop "$DEMO"
	if [ "$rc" != 0 ] && [ -n "${FERRY_DEMO_LOGS:-}" ]; then	# what a failure leaves to read
		mkdir -p "$FERRY_DEMO_LOGS" && FERRY_DEMO_LOGS=$(cd "$FERRY_DEMO_LOGS" && pwd)
		(cd "$DEMO" && find . -maxdepth 5 \( -name '*.log' -o -name '*.out' -o -name '*.json' -o -name '*.err' \) \
			-not -path './site-*/ceph/*' -exec cp --parents {} "$FERRY_DEMO_LOGS" \; 2>/dev/null)
		echo "logs kept in $FERRY_DEMO_LOGS"
	fi
	rm -rf "$DEMO"
	[ -z "$INTERRUPTED" ] || printf '\ninterrupted: every process and file of the demo is gone\n'
	exit "$rc"
}
trap finish EXIT
trap 'INTERRUPTED=1; exit 130' INT TERM HUP

# ---- 4. the cold copy (also the whole demo where sites cannot run) ----
copy_part() {
	local img="$DEMO/disk.raw" size_mib=96 rate durable total cli out
	say "4. a cold copy of a disk image to site B, cut by kill -9 and resumed"
	make_image "$img" "$size_mib"
	note "a ${size_mib} MiB image: a third random, a third text, a third a hole"
	rate=$(( (size_mib * 2 / 3) * 1048576 / 6 ))	# its data in about 6 s
	site_command B
	show "ferry copy --bwlimit $((rate / 1048576))M disk.raw disk1   (killed with -9 once 3 segments are durable at B)"
	"${SITE_CMD[@]}" copy --bwlimit "$rate" --no-progress "$img" disk1 > /dev/null 2> "$DEMO/copy-cut.err" &
	cli=$!
	durable=0
	for _ in $(seq 1 300); do
		durable=$(site B status --json 2>/dev/null | jq -r '[.volumes[] | select(.name == "disk1") | .transfer.segments_durable][0] // 0')
		[ "$durable" -ge 3 ] 2>/dev/null && break
		kill -0 "$cli" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$cli" 2>/dev/null
	wait "$cli" 2>/dev/null
	show "ferry status disk1   (at site B)"
	site B status disk1 | sed 's/^/   /'
	show "ferry copy disk.raw disk1   (the same command again)"
	site B copy --json "$img" disk1 > "$DEMO/copy-resume.json" 2> "$DEMO/copy-resume.err"
	out=$?
	jq -r '"   \(.status): \(.segments_skipped) of \(.segments_total) segments were already durable and skipped, \(.segments_sent) sent (\(.bytes_sent) bytes on the wire) in \(.seconds * 10 | floor / 10) s"' \
		"$DEMO/copy-resume.json" 2>/dev/null
	total=$(jq -r '.segments_total // 0' "$DEMO/copy-resume.json" 2>/dev/null)
	skipped=$(jq -r '.segments_skipped // 0' "$DEMO/copy-resume.json" 2>/dev/null)
	[ "$out" = 0 ] && [ "${skipped:-0}" -gt 0 ] 2>/dev/null && [ "$skipped" -lt "$total" ]
	check $? "4. copy cut by kill -9, resumed" "$skipped of $total segments durable before the cut were not sent again" ||
		sed 's/^/   /' "$DEMO/copy-resume.err" "$DEMO/copy-cut.err"
	show "ferry verify disk.raw disk1"
	site B verify "$img" disk1 2>&1 | sed 's/^/   /'
	out=${PIPESTATUS[0]}
	[ "$out" = 0 ] && [ "$(sha "$img")" = "$(sha "$(site_get B DIR)/ferryd/volumes/disk1")" ]
	check $? "4. copy verified" "both sides re-read, digests equal; sha256 of B's file = source's"
}

# site_command NAME: SITE_CMD, the argument vector of `ferry` with NAME's configuration, for a
# ferry that must be its own process (a background copy killed with -9).
site_command() {
	SITE_CMD=(env -u FERRY_DAEMON -u FERRY_TOKEN_FILE -u FERRY_CACERT -u CEPH_CONF
		"FERRY_CONFIG=$(site_folder "$1")/ferry.conf" "$FERRY")
}

keep_notes() {
	local name folder
	say "both sites keep running (make demo-stop removes them)"
	for name in A B; do
		folder=$(site_folder "$name")
		[ -f "$folder/ferry.conf" ] || continue
		echo "site $name: console $(site_get "$name" URL)/ (self-signed: $folder/ferryd/tls/cert.pem)"
		echo "        log in with the viewer token $(cat "$folder/viewer.token" 2>/dev/null)"
		echo "        (admin token: $folder/admin.token)"
		echo "        FERRY_CONFIG=$folder/ferry.conf FERRY_STATE_DIR=$DEMO/cli $FERRY status"
		[ -z "$(site_get "$name" URI)" ] || echo "        virsh -c '$(site_get "$name" URI)' list --all"
	done
	echo "with FERRY_CONFIG set (ferry config shows it), try: ferry status, vm list, runs, run show 1, events, health"
	echo "stop: make demo-stop   (or bash tests/demo.sh stop)"
}

# ---- a machine that cannot run whole sites: the copy alone ----
if ! why=$(sites_can_run); then
	say "this machine cannot run the two sites with Ceph and libvirt: $why"
	note "showing the cold copy alone (4), between two ferryd in $DEMO"
	site_ferryd A 3>&- 4>&- && site_ferryd B 3>&- 4>&- || exit 1
	site A token create viewer --role viewer --json | jq -r .token > "$(site_folder A)/viewer.token"
	site B token create viewer --role viewer --json | jq -r .token > "$(site_folder B)/viewer.token"
	result "1-3. replication and cutovers" "not run" "$why"
	copy_part
	summary
	[ "$failed" = 0 ]
	exit $?
fi

# ---- the two sites ----
say "two sites in $DEMO, each with its own Ceph cluster, libvirtd and ferryd"
site_ceph A 7600 3>&- 4>&- && site_ceph B 7800 3>&- 4>&- || exit 1
note "Ceph: site A $(site_get A CEPH), site B $(site_get B CEPH)${SITE_CEPH_REUSED:+ (reused)}"
site_libvirt A 13 3>&- 4>&- && site_libvirt B 14 A 3>&- 4>&- || exit 1
note "libvirtd: site A $(site_get A URI)"
note "          site B $(site_get B URI)"
export FERRY_LIBVIRT_TIMEOUT=180
# Each ferryd may open both libvirt connections (a=, b=) and nothing else; guests' serial logs
# may be written in the demo's folder only.
SITE_FLAGS=(--vm-refresh 2 --libvirt "a=$(site_get A URI)" --libvirt "b=$(site_get B URI)" --guest-file-dir "$DEMO")
site_ferryd A "${SITE_FLAGS[@]}" 3>&- 4>&- && site_ferryd B "${SITE_FLAGS[@]}" 3>&- 4>&- || exit 1
site_pair A B || { echo "the sites could not be paired" >&2; exit 1; }
for name in A B; do
	site "$name" token create viewer --role viewer --json | jq -r .token > "$(site_folder "$name")/viewer.token"
	note "ferryd: site $name $(site_get "$name" URL), fingerprint $(grep -o 'SHA-256 fingerprint [0-9A-Fa-f:]*' "$(site_folder "$name")/ferryd.log" | head -1 | cut -c21-44)…"
done
# Names of their own when the clusters are shared with the tests.
VM=web1 G=demo
[ -z "${SITE_CEPH_REUSED:-}" ] || VM=web1-$$ G=demo-$$
TMPDIR=$DEMO "$GUEST/build.sh" "$DEMO/guest.img" 16 || exit 1
site_vm A "$VM" "$DEMO/guest.img" || { echo "the VM did not start at site A" >&2; exit 1; }
U_A=$(site_get A URI) U_B=$(site_get B URI)
vm_write() { "$GUEST/qemu-io.sh" "$1" "$VM" vda "write -P $2 $3 $4" > /dev/null; }	# URI PATTERN OFFSET LEN
running_at() { [ "$(timeout 60 virsh -q -c "$1" domstate "$VM" 2>/dev/null)" = running ]; }
note "VM $VM runs at site A (128 MiB, TCG) on RBD image rbd/$VM-disk of A's cluster"
show "ferry group create $G --interval 2 --keep 20"
site A group create "$G" --interval 2 --keep 20 > /dev/null || exit 1
show "ferry vm protect $VM --uri a --dest-uri b --group $G"
site A vm protect "$VM" --uri a --dest-uri b --group "$G" | sed 's/^/   /'
[ "${PIPESTATUS[0]}" = 0 ] || exit 1
echo "ready=$(elapsed)" >> "$DEMO/demo.env"
note "set up in $(elapsed) s"

vm_steps() {
	local n p lag shipped points out run writes frozen total delta last resume_ms
	# ---- 1. replication ----
	say "1. replication: writes inside the running guest become points committed at B"
	site_wait_point A "$VM-disk" 1 120 || { check 1 "1. replication" "no first point within 120 s"; return 1; }
	# 1 MiB of random data (it does not compress: the bytes shipped are the bytes written)
	head -c 1048576 /dev/urandom > "$DEMO/random.bin"
	"$GUEST/qemu-io.sh" "$U_A" "$VM" vda "write -s $DEMO/random.bin 1048576 1048576" > /dev/null &&
		vm_write "$U_A" 0x12 6291456 4096
	note "written inside the guest: 1 MiB of random data at 1 MiB, 4 KiB of 0x12 at 6 MiB"
	n=$(site_point A "$VM-disk")
	site_wait_point A "$VM-disk" $((n + 2)) 60
	show "ferry status"
	site A status | sed 's/^/   /'
	p=$(site_point A "$VM-disk")
	lag=$(site A status --json | jq -r --arg g "$G" '.groups[] | select(.name == $g) | .lag_ms')
	# /metrics, read with the viewer token: what the site has shipped since it started
	curl -s --cacert "$(site_folder A)/ferryd/tls/cert.pem" -H "Authorization: Bearer $(cat "$(site_folder A)/viewer.token")" \
		"$(site_get A URL)/metrics" > "$DEMO/metrics-a"
	metric() { awk -v m="$1" -v v="volume=\"rbd:rbd/$VM-disk\"" '$1 ~ "^" m "[{]" && index($1, v) { s += $2 } END { printf "%d", s }' "$DEMO/metrics-a"; }
	shipped=$(metric ferry_protection_bytes_shipped_total)
	points=$(metric ferry_protection_points_committed_total)
	show "curl .../metrics   (with the viewer token)"
	grep -E '^ferry_protection_(bytes_shipped|points_committed)_total' "$DEMO/metrics-a" | sed 's/^/   /'
	# B's point p, read back by the rbd CLI (not by ferry)
	timeout 120 rbd -c "$(site_get B CEPH)" export --no-progress "rbd/$VM-disk@ferry-$p" "$DEMO/b-point.img" > /dev/null 2>&1 &&
		cmp -s -n 1048576 "$DEMO/random.bin" <(dd if="$DEMO/b-point.img" bs=1M skip=1 count=1 status=none) &&
		[ "$(dd if="$DEMO/b-point.img" bs=4096 skip=1536 count=1 status=none | xxd -p -l 4)" = 12121212 ]
	check $? "1. replication A -> B" "$points points committed at B, lag $(secs "$lag") s, $((shipped / 1024)) KiB shipped; B's point $p holds every byte written" || return 1

	# ---- 2. planned live migration ----
	say "2. planned live migration to B, the guest writing up to the last moment"
	show "ferry migrate $VM --live --dry-run"
	site A migrate "$VM" --live --dry-run --json > "$DEMO/dry.json"
	jq -r '.vms[0] | "   predicted: \(.strategy), total \(.predicted_total_ms) ms, frozen \(.predicted_frozen_ms) ms"' "$DEMO/dry.json" 2>/dev/null
	# A writer inside the guest: 4 KiB blocks at 8 MiB and up, each with its own pattern, one
	# after the other until the migration starts; each acknowledged write is logged. (It writes
	# through QEMU's monitor, which a paused guest would not: once the source QEMU has handed its
	# disk over, such a write makes it abort, so it stops when libvirt shows the migration job.)
	: > "$DEMO/writes"
	(
		for i in $(seq 1 1000); do
			timeout 10 virsh -q -c "$U_A" domjobinfo "$VM" 2>/dev/null | grep -q '^Job type: *None' || break
			vm_write "$U_A" "$(printf '0x%02x' $((i % 255 + 1)))" $((8388608 + i * 4096)) 4096 2>/dev/null || break
			echo "$i $(date +%s%3N)" >> "$DEMO/writes"
		done
	) &
	WRITER=$!
	for _ in $(seq 1 100); do [ "$(wc -l < "$DEMO/writes")" -ge 3 ] && break; sleep 0.1; done
	show "ferry migrate $VM --live"
	site A migrate "$VM" --live > "$DEMO/live.out" 2>&1
	out=$?
	sed 's/^/   /' "$DEMO/live.out"
	wait_for "$WRITER" 60
	WRITER=""
	run=$(sed -n 's/^run \([0-9]*\) started.*/\1/p' "$DEMO/live.out" | head -1)
	site A run show "${run:-0}" --json > "$DEMO/live.json" 2>/dev/null
	frozen=$(jq -r '.vms[0].frozen_ms // empty' "$DEMO/live.json")
	total=$(jq -r '.total_ms // empty' "$DEMO/live.json")
	delta=$(jq -r '.vms[0].final_delta_bytes // empty' "$DEMO/live.json")
	[ "$out" = 0 ] && running_at "$U_B" && ! timeout 60 virsh -q -c "$U_A" list --all --name | grep -qx "$VM"
	check $? "2. live migration to B" "total $(secs "$total") s, frozen ${frozen:-?} ms, final delta ${delta:-?} bytes" || return 1
	# Every acknowledged write, read back from B's image by the rbd CLI (not by ferry).
	timeout 120 rbd -c "$(site_get B CEPH)" export --no-progress "rbd/$VM-disk" "$DEMO/at-b.img" > /dev/null 2>&1
	writes=$(wc -l < "$DEMO/writes")
	missing=0
	while read -r i _; do
		[ "$(dd if="$DEMO/at-b.img" bs=4096 skip=$((2048 + i)) count=1 status=none | xxd -p -l 1)" = "$(printf '%02x' $((i % 255 + 1)))" ] ||
			missing=$((missing + 1))
	done < "$DEMO/writes"
	last=$(tail -1 "$DEMO/writes" | cut -d' ' -f2)
	resume_ms=$(jq -r '[.steps[] | select(.name | startswith("resume"))][0].ended_ms // empty' "$DEMO/live.json")
	[ "$writes" -gt 0 ] && [ "$missing" = 0 ]
	check $? "2. every write present at B" "$writes writes at A up to the migration, the last $(( ${resume_ms:-0} - ${last:-0} )) ms before the resume at B; $missing missing (read by rbd export)" || return 1
	ticks=$(grep -c tick "$DEMO/$VM.serial")
	for _ in $(seq 1 50); do [ "$(grep -c tick "$DEMO/$VM.serial")" -gt "$ticks" ] && break; sleep 0.2; done
	[ "$(grep -c tick "$DEMO/$VM.serial")" -gt "$ticks" ]
	check $? "2. the guest runs on at B" "its serial console ticks on ($(tail -1 "$DEMO/$VM.serial" | tr -dc 'a-z0-9 '))"

	# ---- 3. reprotect, then failover with site B's ferryd dead ----
	say "3. reprotect towards A, then an unplanned failover to A with site B's ferryd killed"
	show "ferry reprotect $G --site site-a   (at site B)"
	site B reprotect "$G" --site site-a > "$DEMO/reprotect.out" 2>&1
	out=$?
	sed 's/^/   /' "$DEMO/reprotect.out"
	[ "$out" = 0 ]
	check $? "3. reprotect B -> A" "$(grep -o 'reprotect.*in [0-9.]* s' "$DEMO/reprotect.out" | head -1)" || return 1
	vm_write "$U_B" 0x33 3145728 4096
	note "written inside the guest at B: 0x33 at 3 MiB"
	n=$(site_point B "$VM-disk")
	site_wait_point B "$VM-disk" $((n + 2)) 60
	p=$(site_point B "$VM-disk")
	[ "$(site_bytes A "rbd/$VM-disk@ferry-$p" 3145728)" = 33333333 ]
	check $? "3. replication B -> A" "point $p committed at A holds the write made at B" || return 1
	show "kill -9 <site B's ferryd>"
	site_kill B
	vm_write "$U_B" 0x44 4194304 4096
	note "written at B after its ferryd died (never shipped: the RPO): 0x44 at 4 MiB"
	show "ferry failover $VM   (at site A)"
	site A failover "$VM" > "$DEMO/failover.out" 2>&1
	out=$?
	sed 's/^/   /' "$DEMO/failover.out"
	run=$(sed -n 's/^run \([0-9]*\) started.*/\1/p' "$DEMO/failover.out" | head -1)
	site A run show "${run:-0}" --json > "$DEMO/failover.json" 2>/dev/null
	[ "$out" = 0 ] && running_at "$U_A" && ! running_at "$U_B"
	check $? "3. failover to A" "$(jq -r '.vms[0] | "RTO \(.rto_seconds * 10 | floor / 10) s, RPO \(.rpo_seconds) s, from point \(.point)"' "$DEMO/failover.json" 2>/dev/null); B's VM $(jq -r '[.steps[] | select(.name | startswith("fence"))][0].detail // "not fenced"' "$DEMO/failover.json" 2>/dev/null | sed 's/ at qemu.*/ by the fence/')" || return 1
	[ "$(site_bytes A "rbd/$VM-disk" 3145728)$(site_bytes A "rbd/$VM-disk" 4194304)" = 3333333300000000 ]
	check $? "3. A's disk after the failover" "holds the committed write (3 MiB), not the one after the last point (4 MiB)" || return 1

	# ---- site B comes back ----
	say "site B comes back; A protects the VM towards it again"
	show "ferryd   (site B, again)"
	site_ferryd B "${SITE_FLAGS[@]}" 3>&- 4>&- || { check 1 "3. site B back" "its ferryd did not start"; return 1; }
	show "ferry reprotect $G --site site-b   (at site A)"
	site A reprotect "$G" --site site-b > "$DEMO/back.out" 2>&1
	out=$?
	sed 's/^/   /' "$DEMO/back.out"
	vm_write "$U_A" 0x55 5242880 4096
	n=$(site_point A "$VM-disk")
	[ "$out" = 0 ] && site_wait_point A "$VM-disk" $((n + 2)) 60 &&
		p=$(site_point A "$VM-disk") && [ "$(site_bytes B "rbd/$VM-disk@ferry-$p" 5242880)" = 55555555 ]
	check $? "3. reprotect A -> B" "a write at A reaches B again (point $(site_point A "$VM-disk"))"
}

vm_steps
copy_part
summary
[ "$failed" = 0 ]
