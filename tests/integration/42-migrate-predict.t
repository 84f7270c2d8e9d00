#!/bin/bash
# Predictions of live migrations, against real parts (two Ceph clusters, two libvirtd with QEMU,
# two ferryd): a first migration to the destination is measured part by part; each later
# `ferry migrate --dry-run` and each real migration's own prediction start from the last one
# measured, and cite it; every run records what it predicted beside what it measured. Five idle
# guests and five that dirty memory at a steady rate (the tick guest built with DIRTY_PAGES) are
# moved; their predictions and actual times are printed as a table (no timing is asserted: the
# table is the measurement). Then, after a migration held to 1 MiB/s, a guest dirtying more than
# that is predicted not to converge, and cold is advised with its downtime.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"
. "$(dirname "$0")/lib-cutover.sh"
cutover_skip_unless_ready

plan 12
cutover_setup 13 14
# 128 x 4 KiB x 18.2 Hz: about 9.5 MB/s. QEMU samples 512 pages per GiB, 64 of this guest's, so
# each sample counts in steps of 2.1 MB/s: the test compares the means of five samples.
DIRTY_PAGES=${PREDICT_DIRTY_PAGES:-128}
"$GUEST/build.sh" "$TEST_DIR/dirty.img" 16 "$DIRTY_PAGES" > /dev/null 2>&1 ||
	{ echo "Bail out! the dirtying guest did not build"; exit 1; }

# new_vm NAME IMAGE: the guest IMAGE as rbd/NAME-disk at A, running there, protected alone in a
# group with a point every 2 s, its first point committed.
new_vm() {
	rbd_a import --no-progress "$2" "rbd/$1-disk" &&
		"$GUEST/domain.sh" "$1" "$(rbd_disk_xml "$1-disk" vda)" "$TEST_DIR/$1.serial" > "$TEST_DIR/$1.xml" &&
		v1 define "$TEST_DIR/$1.xml" > /dev/null && v1 start "$1" > /dev/null &&
		at_a group create "g-$1" --interval 2 --keep 5 > /dev/null &&
		at_a vm protect "$1" --uri "$U1" --dest-uri "$U2" --group "g-$1" > /dev/null &&
		wait_point "$1-disk" 1
}
# move NAME [migrate options]: its dry run (NAME.dry.json), then its live migration
# (NAME.live.json); the guest is then stopped at B, so that it costs no CPU.
move() {
	local name=$1
	shift
	at_a migrate "$name" --dry-run --json > "$TEST_DIR/$name.dry.json" &&
		at_a migrate "$name" --live --json "$@" > "$TEST_DIR/$name.live.json"
	local rc=$?
	v2 destroy "$name" > /dev/null 2>&1
	return $rc
}
side_by_side() { # side_by_side NAME: 0 when its run records the prediction and the measurement
	jq -e '.status == "completed" and (.vms[0] | (.predicted_total_ms > 0) and (.predicted_frozen_ms > 0)
		and (.total_ms > 0) and (.frozen_ms > 0) and (.predicted.inputs | length) >= 8
		and (.measured | (.memory_ms > 0) and (.memory_processed_bytes > 0) and (.other_ms > 0)
			and (.promote_ms >= 0) and (.resume_ms >= 0) and (.final_delta_ms >= 0)))' \
		"$TEST_DIR/$1.live.json" > /dev/null
}

# The first migration to B: nothing measured yet, so its prediction says so.
W=t$$-w
new_vm $W "$TEST_DIR/guest.img" && move $W
ok $? "a first live migration to B completes ($(jq -r .reason "$TEST_DIR/$W.live.json"))"
jq -e '.vms[0].inputs.memory_bytes_per_second.source | test("no live migration .* measured yet")' \
	"$TEST_DIR/$W.dry.json" > /dev/null
ok $? "  its dry run says no migration to B was measured yet ($(jq -r '.vms[0].inputs.memory_bytes_per_second.source' "$TEST_DIR/$W.dry.json"))"
side_by_side $W
ok $? "  its run records what it predicted beside what it measured ($(jq -c '.vms[0].measured' "$TEST_DIR/$W.live.json" | head -c 300))"
w_run=$(jq -r .run "$TEST_DIR/$W.live.json")

# Five idle guests, then five dirtying ones, each predicted from the one before.
moved=0 recorded=0 cited=0 table=""
previous_run=$w_run
for kind in idle dirty; do
	image="$TEST_DIR/guest.img"
	[ $kind = dirty ] && image="$TEST_DIR/dirty.img"
	for i in 1 2 3 4 5; do
		name=t$$-${kind:0:1}$i
		if new_vm "$name" "$image" && move "$name"; then
			moved=$((moved + 1))
		else
			diag "$name: $(jq -r .reason "$TEST_DIR/$name.live.json" 2>/dev/null)"
		fi
		side_by_side "$name" && recorded=$((recorded + 1))
		jq -e --arg run "$previous_run" '.vms[0].inputs.memory_bytes_per_second.source | contains("migration run " + $run + " ")' \
			"$TEST_DIR/$name.dry.json" > /dev/null && cited=$((cited + 1))
		previous_run=$(jq -r .run "$TEST_DIR/$name.live.json")
		table="$table
$(jq -r -s --arg kind $kind '.[0].vms[0] as $dry | .[1] as $run | $run.vms[0] as $vm |
	[$vm.name, $kind, ($dry.dirty_bytes_per_second / 1e6 * 10 | round / 10),
	 $dry.predicted_total_ms, $vm.predicted_total_ms, $vm.total_ms,
	 $dry.predicted_frozen_ms, $vm.predicted_frozen_ms, $vm.frozen_ms,
	 (if $vm.total_ms > 0 then (($dry.predicted_total_ms - $vm.total_ms) / $vm.total_ms * 100 | round) else "-" end),
	 (if $vm.frozen_ms > 0 then (($dry.predicted_frozen_ms - $vm.frozen_ms) / $vm.frozen_ms * 100 | round) else "-" end)] | @tsv' \
		"$TEST_DIR/$name.dry.json" "$TEST_DIR/$name.live.json" 2>/dev/null)"
	done
done
is "$moved" 10 "five idle and five dirtying guests moved live to B"
is "$recorded" 10 "  each run records its prediction beside its measurement"
is "$cited" 10 "  each dry run started from the migration measured just before it, and says which"
diag "vm kind dirty_MB/s | total: dry-run run's-own actual | frozen: dry-run run's-own actual | error % total frozen (dry-run)"
while IFS= read -r row; do [ -n "$row" ] && diag "$row"; done <<< "$table"
# The sampled dirty rates tell the two kinds of guest apart (on average: see DIRTY_PAGES).
idle_mean=$(cat "$TEST_DIR"/t$$-i?.dry.json | jq -s '[.[].vms[0].dirty_bytes_per_second] | add / length | floor')
dirty_mean=$(cat "$TEST_DIR"/t$$-d?.dry.json | jq -s '[.[].vms[0].dirty_bytes_per_second] | add / length | floor')
[ "${dirty_mean:-0}" -gt 1000000 ] && [ "${dirty_mean:-0}" -gt $((4 * ${idle_mean:-0})) ]
ok $? "QEMU's samples tell the dirtying guests (mean $dirty_mean B/s) from the idle ones (mean $idle_mean B/s)"
jq -e '[.vms[0].inputs | to_entries[] | select((.value.source | length) > 0)] | length >= 9' \
	"$TEST_DIR/t$$-d5.dry.json" > /dev/null
ok $? "every input of a prediction says where it came from ($(jq -c '.vms[0].inputs | keys' "$TEST_DIR/t$$-d5.dry.json"))"

# Memory held to 1 MiB/s: the next guest, dirtying about 9.5 MB/s, would never converge.
S=t$$-slow X=t$$-x
new_vm $S "$TEST_DIR/guest.img" && move $S --bandwidth 1M --max-time 300
ok $? "a live migration held to 1 MiB/s completes ($(jq -c '.vms[0].measured | {memory_ms, memory_processed_bytes}' "$TEST_DIR/$S.live.json"))"
new_vm $X "$TEST_DIR/dirty.img" && at_a migrate $X --dry-run --json > "$TEST_DIR/$X.dry.json"
ok $? "a dirtying guest's dry run passes its checks"
jq -e '.vms[0] | .strategy == "cold" and .converges == false and (.advice | test("will not converge.*--cold")) and .predicted_cold_downtime_ms > 0' \
	"$TEST_DIR/$X.dry.json" > /dev/null
ok $? "  and says live will not converge, advising cold with its downtime ($(jq -r '.vms[0].advice' "$TEST_DIR/$X.dry.json"))"
running_on "$U1" $X
ok $? "  and nothing moved: $X runs at A"
stop_daemon "$PRIMARY_PID"
exit $test_failed
