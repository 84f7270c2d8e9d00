#!/bin/bash
# Memory stays bounded however many clients keep their connections open: 100 kept-alive
# connections (from five addresses) that each sent one 4 MiB segment cost ferryd less than
# 1 MiB of resident memory each, because decode buffers live for one request (one that kept
# its segment's buffers would cost 4 to 8 MiB: 460 MiB in all before). In the release build
# that is within twice the idle daemon's; the sanitizer build adds its own per-thread cost.
. "$(dirname "$0")/lib.sh"

plan 3
SEG=4194304
COUNT=100
# The sanitizer build keeps freed memory in quarantine; what is measured here is ferryd's.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0:allocator_release_to_os_interval_ms=0:detect_stack_use_after_return=0:malloc_context_size=2"
start_daemon site || { echo "Bail out! ferryd did not start"; exit 1; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
transfer=$(api POST /v1/volumes/mem/transfer \
	"{\"size\":$((COUNT * SEG)),\"segment_size\":$SEG,\"source_identity\":\"test:mem\"}" | jq -r .transfer.id)
# warm up: one segment on a connection of its own, so that idle counts what any use costs
/usr/bin/python3 "$(dirname "$0")/hold-segments.py" "$DAEMON_URL" "$TEST_DIR/token" mem "$transfer" "$SEG" 1 0 > /dev/null
sleep 1 # on purpose: the warm-up's connection closes and its memory settles before the measure
idle=$(rss)
/usr/bin/python3 "$(dirname "$0")/hold-segments.py" "$DAEMON_URL" "$TEST_DIR/token" mem "$transfer" "$SEG" "$COUNT" 20 > "$TEST_DIR/hold.out" 2>&1 &
holder=$!
WAIT_INTERVAL=0.2 wait_until 120 file_has "$TEST_DIR/hold.out" '^sent'
held=$(rss)
is "$(cat "$TEST_DIR/hold.out")" "sent $COUNT" "$COUNT kept-alive connections each had one 4 MiB segment accepted"
[ -n "$held" ] && [ -n "$idle" ] && [ "$((held - idle))" -lt $((COUNT * 1024)) ]
ok $? "ferryd's resident memory with them held: $((held / 1024)) MiB, idle $((idle / 1024)) MiB (under 1 MiB a connection)"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
kill -0 "$DAEMON_PID"
ok $? "ferryd still runs"
stop_daemon "$DAEMON_PID"
exit $test_failed
