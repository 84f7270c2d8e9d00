#!/bin/bash
# Proves that ferryd's /v1 API refuses malformed, oversized, misrouted and hostile requests with the
# right 4xx status and without writing anything, and that it stays alive and correct afterwards.
# The requests are case files, one each in tests/data/malformed/ (see its README.md): the
# request, the status and error code expected, and what must not have changed. They run against
# a transfer of volume v with segment 0 of 3 durable; then the same transfer completes.
source "$(dirname "$0")/lib.sh"

CASES=("$(dirname "$0")"/../data/malformed/*.json)
# each case: its status, its error code if it names one, one assertion per expected effect
case_assertions=$(jq -s '[.[] | 1 + (if .error_code then 1 else 0 end) + (.effect // {} | length)] | add' "${CASES[@]}")
plan $((case_assertions + 19))

start_daemon site || { echo "Bail out! ferryd did not start"; exit 1; }
STATE="$TEST_DIR/site"
TOKEN=$(cat "$TEST_DIR/token")
CA="$TEST_DIR/tls/ca.pem"
BODY="$TEST_DIR/reply.json"
SEG=65536
SIZE=$((2 * SEG + 1000))	# three segments: 64 KiB, 64 KiB, 1000 bytes

# req [curl args] URL-PATH: the request with the right token; prints the HTTP status (000 when the
# connection failed), the body goes to $BODY.
req() {
	rm -f "$BODY"
	curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
		-H 'Expect:' "${@:1:$#-1}" "$DAEMON_URL${!#}"
}
# put INDEX BODY-FILE TRANSFER LENGTH ENCODING CHECKSUM [VOLUME]: a raw segment PUT.
put() {
	req -X PUT -H "X-Ferry-Transfer: $3" -H "X-Ferry-Length: $4" -H "X-Ferry-Encoding: $5" \
		-H "X-Ferry-Checksum: $6" -H 'Content-Type: application/octet-stream' \
		--data-binary "@$2" "/v1/volumes/${7:-v}/segments/$1"
}
error_code() { jq -r '.error.code // empty' < "$BODY" 2>/dev/null; }
durable() { req /v1/volumes/v > /dev/null; jq -r .transfer.segments_durable < "$BODY"; }
# status_is EXPECTED GOT: EXPECTED is a status, "4xx" (400..499) or "not 2xx".
status_is() {
	case $1 in
	4xx) [ "$2" -ge 400 ] 2>/dev/null && [ "$2" -le 499 ] ;;
	"not 2xx") case $2 in 2*) return 1 ;; esac ;;
	*) [ "$2" = "$1" ] ;;
	esac
}
files_now() { find "$TEST_DIR" -path "$TEST_DIR/cli" -prune -o -print | grep -v -e '\.log$' \
	-e 'catalog\.db' -e "$BODY" | sort; }
# segment_zero INDEX: the bytes of segment INDEX of v are still zero (nothing was written there)
segment_zero() { cmp -s -n $SEG <(dd if="$STATE/volumes/v" bs=$SEG skip="$1" count=1 2>/dev/null) /dev/zero; }

# Plain segments, their zstd frames (zstd -c FILE declares the content size) and checksums.
head -c $SEG /dev/urandom > "$TEST_DIR/p0"
base64 /dev/urandom | head -c $SEG > "$TEST_DIR/p1"
head -c 1000 /dev/urandom > "$TEST_DIR/p2"
for i in 0 1 2; do
	zstd -q -c "$TEST_DIR/p$i" > "$TEST_DIR/f$i"
	eval "s$i=$(xxh128sum "$TEST_DIR/p$i" | cut -c1-32)"
done
empty="$TEST_DIR/empty"; : > "$empty"
# The other bodies the cases send (body_file NAME is $TEST_DIR/NAME).
head -c 5000 /dev/urandom > "$TEST_DIR/random"
cat "$TEST_DIR/f1" "$TEST_DIR/random" > "$TEST_DIR/trailing"
cat "$TEST_DIR/f1" "$TEST_DIR/f1" > "$TEST_DIR/twice"
zstd -q -c < "$TEST_DIR/p1" > "$TEST_DIR/nosize"
head -c 100000 /dev/zero | tr '\0' ' ' > "$TEST_DIR/big.json"
JUNK_100K=$(head -c 100000 /dev/zero | tr '\0' 'j')

# --- begin a transfer ---
code=$(req -X POST -H 'Content-Type: application/json' \
	--data "{\"size\":$SIZE,\"segment_size\":$SEG,\"source_identity\":\"test:v\",\"restart\":false}" \
	/v1/volumes/v/transfer)
is "$code" 200 "POST /v1/volumes/v/transfer starts a transfer"
TID=$(jq -r .transfer.id < "$BODY")
is "$(jq -r .transfer.segments_total < "$BODY")" 3 "the transfer has 3 segments"
code=$(put 0 "$TEST_DIR/f0" "$TID" $SEG zstd "$s0")
is "$code" 200 "a well-formed segment 0 is accepted (the harness is right)"
is "$(durable)" 1 "segment 0 is durable"

# --- the cases ---
for file in "${CASES[@]}"; do
	name=$(basename "$file" .json)
	case_json=$(sed "s/@TID@/$TID/g; s/@OTHER_TID@/$((TID + 1000))/g; s/@S0@/$s0/g; s/@S1@/$s1/g; s/@S2@/$s2/g" "$file")
	why=$(jq -r .why <<< "$case_json")
	args=(-X "$(jq -r '.method // "GET"' <<< "$case_json")")
	[ "$(jq -r '.path_as_is // false' <<< "$case_json")" = true ] && args+=(--path-as-is)
	while IFS= read -r header; do
		[ -n "$header" ] && args+=(-H "${header//@JUNK_100K@/$JUNK_100K}")
	done < <(jq -r '.headers // {} | to_entries[] | "\(.key): \(.value)"' <<< "$case_json")
	if jq -e 'has("body")' <<< "$case_json" > /dev/null; then
		args+=(--data "$(jq -c .body <<< "$case_json")")
	elif jq -e 'has("body_text")' <<< "$case_json" > /dev/null; then
		args+=(--data "$(jq -r .body_text <<< "$case_json")")
	elif jq -e 'has("body_file")' <<< "$case_json" > /dev/null; then
		args+=(--data-binary "@$TEST_DIR/$(jq -r .body_file <<< "$case_json")")
	fi
	before=$(files_now)
	code=$(req "${args[@]}" "$(jq -r .path <<< "$case_json")")
	expected=$(jq -r .status <<< "$case_json")
	status_is "$expected" "$code"
	ok $? "$name: $why (expected $expected, got $code)"
	if jq -e 'has("error_code")' <<< "$case_json" > /dev/null; then
		is "$(error_code)" "$(jq -r .error_code <<< "$case_json")" "  with error code $(jq -r .error_code <<< "$case_json")"
	fi
	while IFS=$'\t' read -r effect value; do
		case $effect in
		durable) is "$(durable)" "$value" "  still only $value segment(s) durable" ;;
		segment_zero) segment_zero "$value"; ok $? "  nothing was written to segment $value's bytes" ;;
		no_volume) [ ! -e "$STATE/volumes/$value" ]; ok $? "  no volume file $value was created" ;;
		files_unchanged) is "$(files_now)" "$before" "  no file was created anywhere" ;;
		volumes_only) is "$(ls "$STATE/volumes")" "$value" "  DIR/volumes still holds only $value" ;;
		*) ok 1 "  an effect this runner does not know: $effect" ;;
		esac
	done < <(jq -r '.effect // {} | to_entries[] | "\(.key)\t\(.value)"' <<< "$case_json")
done

# --- commit and completion over the raw API ---
code=$(req -X POST -H 'Content-Type: application/json' \
	--data "{\"transfer_id\":$TID,\"digest\":\"xxh3-128:00000000000000000000000000000000\"}" \
	/v1/volumes/v/commit)
is "$code" 409 "a commit before every segment is durable is 409"
code=$(put 1 "$TEST_DIR/f1" "$TID" $SEG zstd "$s1")
is "$code" 200 "segment 1 is accepted after all the refusals"
code=$(put 2 "$TEST_DIR/f2" "$TID" 1000 zstd "$s2")
is "$code" 200 "the short last segment is accepted"
code=$(req -X POST -H 'Content-Type: application/json' \
	--data "{\"transfer_id\":$TID,\"digest\":\"xxh3-128:00000000000000000000000000000000\"}" \
	/v1/volumes/v/commit)
is "$code" 422 "a commit with the wrong digest is 422"
digest="xxh3-128:$(printf '%s%s%s' "$s0" "$s1" "$s2" | xxd -r -p | xxh128sum | cut -c1-32)"
code=$(req -X POST -H 'Content-Type: application/json' \
	--data "{\"transfer_id\":$TID,\"digest\":\"$digest\"}" /v1/volumes/v/commit)
is "$code" 200 "a commit with the right digest is 200"
is "$(jq -r .transfer.state < "$BODY")" complete "the transfer is complete"
is "$(sha "$STATE/volumes/v")" "$(cat "$TEST_DIR/p0" "$TEST_DIR/p1" "$TEST_DIR/p2" | sha256sum | cut -d' ' -f1)" \
	"the volume holds exactly the three segments"
code=$(put 0 "$TEST_DIR/f0" "$TID" $SEG zstd "$s0")
is "$code" 409 "a segment for a complete volume is 409"
code=$(req -X POST -H 'Content-Type: application/json' --data '{"segment_size":0}' /v1/volumes/v/verify)
is "$code" 400 "verify with segment_size 0 is 400"

# --- the daemon survived all of it ---
kill -0 "$DAEMON_PID" 2>/dev/null
ok $? "ferryd is still running"
code=$(req /v1/health)
is "$code" 200 "GET /v1/health answers 200"
make_image "$TEST_DIR/after.img" 6
out=$(ferry_copy "$DAEMON_URL" "$TEST_DIR/after.img" after)
ok $? "a real ferry copy still works"
is "$(sha "$STATE/volumes/after")" "$(sha "$TEST_DIR/after.img")" "and delivers the same SHA-256"
stop_daemon "$DAEMON_PID"
is "$?" 0 "ferryd stops with status 0"
grep -q -e 'AddressSanitizer' -e 'LeakSanitizer' -e 'runtime error' "$TEST_DIR/site.log"
is "$?" 1 "the daemon log has no sanitizer report"
exit $test_failed
