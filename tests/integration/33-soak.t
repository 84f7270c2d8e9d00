#!/bin/bash
# The thrash soak's 3-minute version (tests/soak/soak.sh; `make soak` is the long one): two sites,
# two groups of RBD images under a random-write load, and every 15-40 s a kill -9 of a ferryd, a
# cut or a stalled link, or the replica cluster's OSD stopped; then every group must converge by
# itself and every point both sides hold must equal the source's, byte for byte.
. "$(dirname "$0")/lib.sh"

plan 8
SOAK="$(cd "$(dirname "$0")/../soak" && pwd)/soak.sh"
SOAK_MINUTES=3 FERRY_BIN=$FERRY_BIN timeout 1800 bash "$SOAK" > "$TEST_DIR/soak.out" 2> "$TEST_DIR/soak.err"
rc=$?
line=$(tail -n 1 "$TEST_DIR/soak.out")
is "$rc" 0 "the 3-minute soak passes"
if [ "$rc" != 0 ]; then
	diag "its last lines on stderr:"
	tail -n 25 "$TEST_DIR/soak.err" | sed 's/^/#   /'
fi
diag "$line"
jq -e 'type == "object"' <<< "$line" > /dev/null 2>&1
ok $? "its last line on stdout is one JSON object"
is "$(json_field "$line" mismatches)" 0 "no point differs from the source's"
is "$(json_field "$line" converged)" true "every group converged after the last fault, by itself"
[ "$(json_field "$line" points_compared)" -gt 0 ] 2>/dev/null
ok $? "points were compared ($(json_field "$line" points_compared))"
faults=$(jq '.kills + .link_cuts + .link_stalls + .osd_restarts' <<< "$line" 2>/dev/null)
[ "${faults:-0}" -ge 3 ] 2>/dev/null
ok $? "at least 3 faults ($faults: $(jq -c .faults <<< "$line" 2>/dev/null))"
# The faults come from a shuffled deck: the first four are one of each kind.
kinds=$(jq '[.kills, .link_cuts, .link_stalls, .osd_restarts] | map(select(. > 0)) | length' <<< "$line" 2>/dev/null)
[ "${faults:-0}" -lt 4 ] || [ "${kinds:-0}" = 4 ]
ok $? "each kind of fault that fitted came up (kills, cuts, stalls, OSD restarts: $kinds kinds)"
missing=""
for key in minutes kills link_cuts link_stalls osd_restarts points_committed max_lag_seconds bytes_resent; do
	[ -n "$(json_field "$line" "$key")" ] || missing="$missing $key"
done
is "$missing" "" "the line has every key of the soak's report"
exit $test_failed
