#!/bin/bash
# The API's documents agree with what ferryd serves: GET /v1/openapi.json lists every route of
# the route table (ferryd --print-routes) and nothing else, each with a summary and the role it
# needs, and the README's API table covers every route.
. "$(dirname "$0")/lib.sh"

plan 7
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
start_daemon site || { echo "Bail out! ferryd did not start"; exit 1; }
"$FERRYD" --print-routes > "$TEST_DIR/routes.txt"
[ "$(wc -l < "$TEST_DIR/routes.txt")" -gt 30 ]
ok $? "ferryd --print-routes lists the route table ($(wc -l < "$TEST_DIR/routes.txt") routes)"
api GET /v1/openapi.json > "$TEST_DIR/openapi.json"
is "$(jq -r .openapi "$TEST_DIR/openapi.json")" 3.0.3 "GET /v1/openapi.json is an OpenAPI 3 document"
# Both as "METHOD /path ROLE" with every variable part as *.
awk '{ print $1, $2, $3 }' "$TEST_DIR/routes.txt" | sort > "$TEST_DIR/table.txt"
jq -r '.paths | to_entries[] | .key as $p | .value | to_entries[] |
	"\(.key | ascii_upcase) \($p | gsub("\\{[a-z]+\\}"; "*")) \(.value["x-ferry-role"])"' \
	"$TEST_DIR/openapi.json" | sort > "$TEST_DIR/documented.txt"
diff "$TEST_DIR/table.txt" "$TEST_DIR/documented.txt" > "$TEST_DIR/diff.txt"
ok $? "every route is documented with its role, and nothing documented is not a route ($(tr '\n' ' ' < "$TEST_DIR/diff.txt" | head -c 200))"
missing=$(jq -r '.paths | to_entries[] | .key as $p | .value | to_entries[] | select(.value.summary == "") | "\(.key) \($p)"' "$TEST_DIR/openapi.json")
is "$missing" "" "every operation has a summary"
is "$(jq '[.paths[][] | select((.parameters | length) != ([.parameters[].name] | unique | length))] | length' "$TEST_DIR/openapi.json")" 0 \
	"  and its path parameters are named, once each"
jq -e '.paths["/v1/groups"].post.requestBody.content["application/json"].schema.additionalProperties == false' "$TEST_DIR/openapi.json" > /dev/null
ok $? "a body's schema lists its keys and allows no others (as the server refuses them)"
# The README's table: each `METHOD /path` it names, with NAME, INDEX, ID as *.
grep '^| `' "$ROOT/README.md" | grep -o '`\(GET\|POST\|PUT\|DELETE\) /[^` ?]*' | tr -d '`' |
	sed -E 's#/[A-Z]+(/|$)#/*\1#g; s#/[A-Z]+(/|$)#/*\1#g' | sort -u > "$TEST_DIR/readme.txt"
awk '{ print $1, $2 }' "$TEST_DIR/routes.txt" | sort -u | comm -23 - "$TEST_DIR/readme.txt" > "$TEST_DIR/undocumented.txt"
is "$(tr '\n' ';' < "$TEST_DIR/undocumented.txt")" "" "the README's API table covers every route"
stop_daemon "$DAEMON_PID"
exit $test_failed
