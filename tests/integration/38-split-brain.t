#!/bin/bash
# Split brain refused by generations: site A protects an image to site B; B promotes the group's
# replica (ferry group promote --force) while A keeps writing and running its scheduler. A's next
# push is refused (HTTP 409, code split_brain) and changes nothing at B; both sites' ferry status
# show the group in state split-brain with both generations and what to do, and A's scheduler
# backs off instead of retrying at every interval. ferry reprotect at B resolves it: A's image
# goes back to the point of the promote, B's data is kept and only the delta since ships to A.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"

plan 38
ceph_sites
IMG=t$$-sb

start_daemon replica --ceph-conf "$B" || { echo "Bail out! replica ferryd did not start"; exit 1; }
REPLICA_URL=$DAEMON_URL REPLICA_PID=$DAEMON_PID
DAEMON_PORT=$(free_port)
start_daemon primary --ceph-conf "$A" || { echo "Bail out! primary ferryd did not start"; exit 1; }
PRIMARY_PID=$DAEMON_PID PRIMARY_URL=$DAEMON_URL

rbd_a create --size 32M "rbd/$IMG"
rbd_a bench --io-type write --io-size 4M --io-total 16M "rbd/$IMG" >/dev/null 2>&1
at_a site add dr --url "$REPLICA_URL" --peer-token-file "$TEST_DIR/token" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null &&
	at_a group create g1 --interval 2 --keep 3 > /dev/null &&
	at_a protect --group g1 --site dr "rbd:rbd/$IMG" > /dev/null
ok $? "A protects rbd/$IMG in group g1 to site B"
wait_point "$IMG" 2
ok $? "points are committed at B (last point $(point_of "$IMG"))"

group_a() { at_a status --json | jq -r --arg k "$1" '.groups[] | select(.name == "g1") | .[$k]'; }
group_b() { at_b status --json | jq -r --arg k "$1" '.groups[] | select(.name == "g1") | .[$k]'; }
is "$(at_b status --json | jq -r --arg n "$IMG" '.volumes[] | select(.name == $n) | .group')" g1 \
	"B knows which group its replica belongs to (the push names it)"
is "$(group_a generation)" 1 "A's generation of g1 starts at 1"

# While A pushes, a promote without --force is refused: two writers would be a split brain.
at_b group promote g1 > /dev/null 2> "$TEST_DIR/promote1.err"
is $? 1 "ferry group promote at B is refused while A still pushes"
grep -q -- "--force" "$TEST_DIR/promote1.err"
ok $? "  and the refusal says how to promote anyway ($(head -c 160 "$TEST_DIR/promote1.err"))"
at_b group promote nosuch > /dev/null 2> "$TEST_DIR/promote2.err"
grep -q "no replica of group nosuch" "$TEST_DIR/promote2.err"
ok $? "a group B keeps no replica of is refused, named"

before=$(replica_points "$IMG" | tail -n 1)
at_b group promote g1 --force --json > "$TEST_DIR/promote.json" 2> "$TEST_DIR/promote3.err"
ok $? "ferry group promote g1 --force at B"
point=$(jq -r .point "$TEST_DIR/promote.json")
is "$(jq -r .generation "$TEST_DIR/promote.json")" 2 "  raises B's generation of g1 to 2"
[ -n "$point" ] && [ "$point" -ge "${before:-1}" ] 2>/dev/null &&
	replica_points "$IMG" | grep -qx "$point"
ok $? "  to the newest point B's image holds ($point; newest before: $before)"
is "$(jq -r '.volumes | join(",")' "$TEST_DIR/promote.json")" "$IMG" "  and names the image promoted"
at_b group promote g1 --force > /dev/null 2> "$TEST_DIR/promote4.err"
grep -q "promoted at this site already" "$TEST_DIR/promote4.err"
ok $? "promoting again is refused: it is promoted already"

# B's bytes and points now, to compare after A's pushes.
sha_b=$(rbd_sha "$B" "rbd/$IMG")
points_b=$(replica_points "$IMG" | tr '\n' ' ')
is "$(rbd_sha "$B" "rbd/$IMG@ferry-$point")" "$sha_b" "B's image is at point $point"

# A keeps writing and its scheduler keeps trying.
rbd_a bench --io-type write --io-size 4K --io-total 1M --io-pattern rand "rbd/$IMG" >/dev/null 2>&1
split_at_a() { [ "$(group_a state)" = split-brain ]; }
WAIT_INTERVAL=0.5 wait_until 120 split_at_a
ok $? "A's status shows group g1 in state split-brain"
is "$(group_a generation)/$(group_a peer_generation)" 1/2 "  with both generations (A 1, B 2)"
group_a hint | grep -q "ferry reprotect g1"
ok $? "  and what to do: $(group_a hint | head -c 200)"
is "$(field "$IMG" state)" split-brain "A's protected image is in state split-brain too"
field "$IMG" reason | grep -q "split brain"
ok $? "  its reason is the refusal: $(field "$IMG" reason | head -c 160)"
grep -q "HTTP 409.*split brain: group g1 is at generation 2" "$TEST_DIR/replica.log"
ok $? "B refused A's push with HTTP 409"
is "$(group_b state)/$(group_b generation)/$(group_b peer_generation)" split-brain/2/1 \
	"B's status shows g1 in state split-brain, at generation 2, A at 1"
at_a health > /dev/null 2>&1
is $? 2 "A's health is error"
DAEMON_URL=$PRIMARY_URL
metrics_a=$(api GET /metrics | grep '^ferry_group_\(split_brain\|generation\){group="g1"}' | tr '\n' ' ')
DAEMON_URL=$REPLICA_URL
metrics_b=$(api GET /metrics | grep '^ferry_group_\(split_brain\|generation\){group="g1"}' | tr '\n' ' ')
is "$metrics_a/ $metrics_b" \
	'ferry_group_generation{group="g1"} 1 ferry_group_split_brain{group="g1"} 1 / ferry_group_generation{group="g1"} 2 ferry_group_split_brain{group="g1"} 1 ' \
	"/metrics at both sites: ferry_group_split_brain 1 (FerrySplitBrain pages), and each generation"

# The refusal itself, as a peer would get it: 409 with code split_brain and both generations.
DAEMON_URL=$REPLICA_URL
reply=$(api POST "/v1/volumes/$IMG/transfer" \
	'{"size": 33554432, "source_identity": "x", "kind": "rbd", "group": "g1", "generation": 1}')
is "$(json_error "$reply")/$(jq -r '.error.generation' <<< "$reply")/$(jq -r '.error.peer_generation' <<< "$reply")" \
	split_brain/2/1 "a push at generation 1 gets code split_brain naming both generations"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$TEST_DIR/tls/ca.pem" \
	-H "Authorization: Bearer $(cat "$TEST_DIR/token")" -H "Content-Type: application/json" \
	--data '{"transfer_id": 1, "digest": "00", "group": "g1", "generation": 1}' \
	"$REPLICA_URL/v1/volumes/$IMG/commit")
is "$code" 409 "a commit at generation 1 is refused with HTTP 409"
reply=$(api POST "/v1/volumes/$IMG/prune" '{"keep_from": 1000, "group": "g1", "generation": 1}')
is "$(json_error "$reply")" split_brain "a prune at generation 1 is refused: split_brain"
reply=$(api POST "/v1/volumes/$IMG/prune" '{"keep_from": 1000}')
is "$(json_error "$reply")" split_brain "  and one that names no group is judged by the image's group"
reply=$(api POST "/v1/volumes/$IMG/transfer" \
	'{"size": 33554432, "source_identity": "x", "kind": "rbd", "group": "../../x", "generation": 1}')
is "$(json_error "$reply")" invalid_request "a group that is not a name is refused"

# Let A's scheduler try a while more: it backs off, and nothing of it lands at B.
sleep 20
fails=$(group_a failed_cycles)
[ "$fails" -ge 1 ] && [ "$fails" -le 8 ]
ok $? "A backs off: $fails failed cycles in about 25 s at a 2 s interval"
[ "$(group_a next_retry_ms)" -gt "$(date +%s%3N)" ]
ok $? "  and says when it tries next (next_retry_ms)"
refusals=$(grep -c "split brain: group g1" "$TEST_DIR/replica.log")
[ "$refusals" -le 40 ]
ok $? "B logged $refusals refusals, not thousands"
is "$(rbd_sha "$B" "rbd/$IMG")" "$sha_b" "B's image is unchanged by A's pushes (same bytes)"
is "$(replica_points "$IMG" | tr '\n' ' ')" "$points_b" "  and holds the same points ($points_b)"

# Resolving it: ferry reprotect g1 at B keeps B's data, discards A's writes since point $point
# and replicates B -> A with only the delta.
rbd_b bench --io-type write --io-size 1M --io-total 1M --io-pattern seq "rbd/$IMG" >/dev/null 2>&1
sha_b_new=$(rbd_sha "$B" "rbd/$IMG")
at_b site add home --url "$PRIMARY_URL" --peer-token-file "$TEST_DIR/token" \
	--peer-cacert "$TEST_DIR/tls/ca.pem" > /dev/null
at_b reprotect g1 --site home --json > "$TEST_DIR/reprotect.json" 2> "$TEST_DIR/reprotect.err"
ok $? "ferry reprotect g1 at B completes ($(jq -r '.status // empty' "$TEST_DIR/reprotect.json") $(head -c 200 "$TEST_DIR/reprotect.err"))"
jq -r '.steps[].detail' "$TEST_DIR/reprotect.json" | grep -q "at point $point"
ok $? "  from the point the promote started from ($point)"
# A's image is B's replica now: B's first push carries its generation, which A adopts.
a_has_b() { [ "$(rbd_sha "$A" "rbd/$IMG")" = "$sha_b_new" ]; }
agreed() { [ "$(group_a generation)" = 2 ] && [ "$(group_b state)" != split-brain ]; }
WAIT_INTERVAL=1 wait_until 120 a_has_b
ok $? "A's image holds B's bytes, with the writes made at B after the promote"
WAIT_INTERVAL=1 wait_until 60 agreed
ok $? "A adopted generation 2, and neither site shows split-brain ($(group_a state), $(group_b state))"
DAEMON_URL=$REPLICA_URL
shipped=$(api GET /metrics | awk -v img="$IMG\"" '$1 ~ /^ferry_protection_bytes_shipped_total/ && index($1, img) { print int($2) }')
[ "${shipped:-0}" -gt 0 ] && [ "${shipped:-0}" -lt 8388608 ]
ok $? "  B shipped only the delta since point $point (${shipped:-?} bytes on the wire, of a 32 MiB image)"

stop_daemon "$PRIMARY_PID"
ok $? "A stops cleanly"
stop_daemon "$REPLICA_PID"
exit $test_failed
