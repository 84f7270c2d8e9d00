#!/bin/bash
# Proves that ferryd's /v1 API refuses malformed, oversized, misrouted and hostile requests with the
# right 4xx status and without writing anything, and that it stays alive and correct afterwards.
source "$(dirname "$0")/lib.sh"

plan 80

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
# in_4xx STATUS: 0 when STATUS is 400..499.
in_4xx() { [ "$1" -ge 400 ] 2>/dev/null && [ "$1" -le 499 ]; }
files_now() { find "$TEST_DIR" -path "$TEST_DIR/cli" -prune -o -print | grep -v -e '\.log$' \
	-e 'catalog\.db' -e "$BODY" | sort; }

# Plain segments, their zstd frames (zstd -c FILE declares the content size) and checksums.
head -c $SEG /dev/urandom > "$TEST_DIR/p0"
base64 /dev/urandom | head -c $SEG > "$TEST_DIR/p1"
head -c 1000 /dev/urandom > "$TEST_DIR/p2"
for i in 0 1 2; do
	zstd -q -c "$TEST_DIR/p$i" > "$TEST_DIR/f$i"
	eval "s$i=$(xxh128sum "$TEST_DIR/p$i" | cut -c1-32)"
done
empty="$TEST_DIR/empty"; : > "$empty"

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

# --- segment headers ---
code=$(put 1 "$TEST_DIR/f1" "$TID" $((SEG - 1)) zstd "$s1")
is "$code" 400 "a wrong X-Ferry-Length is 400"
is "$(error_code)" invalid_request "with error code invalid_request"
code=$(put 1 "$TEST_DIR/f1" "$TID" 64k zstd "$s1")
is "$code" 400 "a non-numeric X-Ferry-Length is 400"
code=$(put 1 "$TEST_DIR/f1" "$TID" 99999999999999999999999 zstd "$s1")
is "$code" 400 "an overflowing X-Ferry-Length is 400"
code=$(put 1 "$TEST_DIR/f1" "$TID" $SEG zstd "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz")
is "$code" 400 "a non-hex X-Ferry-Checksum is 400"
code=$(put 1 "$TEST_DIR/f1" "$TID" $SEG zstd "${s1}00")
is "$code" 400 "a 34-digit X-Ferry-Checksum is 400"
code=$(put 1 "$TEST_DIR/f1" "$TID" $SEG gzip "$s1")
is "$code" 400 "an unknown X-Ferry-Encoding is 400"
code=$(req -X PUT -H "X-Ferry-Length: $SEG" -H 'X-Ferry-Encoding: zstd' -H "X-Ferry-Checksum: $s1" \
	--data-binary "@$TEST_DIR/f1" /v1/volumes/v/segments/1)
is "$code" 400 "a segment without X-Ferry-Transfer is 400"

# --- checksums that do not match: refused, nothing written ---
code=$(put 1 "$TEST_DIR/f1" "$TID" $SEG zstd "$s0")
is "$code" 422 "a well-formed checksum that does not match the data is 422"
is "$(error_code)" checksum_mismatch "with error code checksum_mismatch"
is "$(durable)" 1 "segment 1 did not become durable"
cmp -s -n $SEG <(dd if="$STATE/volumes/v" bs=$SEG skip=1 count=1 2>/dev/null) /dev/zero
ok $? "nothing was written to segment 1's bytes"
code=$(put 1 "$empty" "$TID" $SEG zero "$s1")
is "$code" 422 "a zero record whose checksum is not that of zeroes is 422"

# --- bodies ---
code=$(put 1 "$TEST_DIR/p1" "$TID" $SEG zstd "$s1")
is "$code" 400 "a body that is not a zstd frame is 400"
head -c 5000 /dev/urandom > "$TEST_DIR/random"
code=$(put 1 "$TEST_DIR/random" "$TID" $SEG zstd "$s1")
is "$code" 400 "random bytes as the body are 400"
cat "$TEST_DIR/f1" "$TEST_DIR/random" > "$TEST_DIR/trailing"
code=$(put 1 "$TEST_DIR/trailing" "$TID" $SEG zstd "$s1")
is "$code" 400 "a valid frame followed by trailing garbage is 400"
cat "$TEST_DIR/f1" "$TEST_DIR/f1" > "$TEST_DIR/twice"
code=$(put 1 "$TEST_DIR/twice" "$TID" $SEG zstd "$s1")
is "$code" 400 "two frames in one body are 400"
zstd -q -c < "$TEST_DIR/p1" > "$TEST_DIR/nosize"
code=$(put 1 "$TEST_DIR/nosize" "$TID" $SEG zstd "$s1")
is "$code" 400 "a frame without a declared content size is 400"
code=$(put 2 "$TEST_DIR/f0" "$TID" 1000 zstd "$s2")
is "$code" 400 "a frame whose size does not match the segment length is 400"
code=$(put 1 "$empty" "$TID" $SEG zstd "$s1")
is "$code" 400 "an empty zstd body is 400"
code=$(put 1 "$TEST_DIR/f1" "$TID" $SEG zero "$s1")
is "$code" 400 "a zero record with a body is 400"
is "$(durable)" 1 "still only segment 0 is durable"
cmp -s -n $SEG <(dd if="$STATE/volumes/v" bs=$SEG skip=1 count=1 2>/dev/null) /dev/zero
ok $? "segment 1's bytes are still zero"

# --- indexes, volumes, transfers ---
code=$(put 3 "$TEST_DIR/f2" "$TID" 1000 zstd "$s2")
is "$code" 400 "segment index == segments_total is 400"
code=$(put 18446744073709551615 "$TEST_DIR/f2" "$TID" 1000 zstd "$s2")
is "$code" 400 "segment index 2^64-1 is 400"
code=$(put 99999999999999999999999 "$TEST_DIR/f2" "$TID" 1000 zstd "$s2")
is "$code" 400 "an overflowing segment index is 400"
code=$(put -1 "$TEST_DIR/f2" "$TID" 1000 zstd "$s2")
is "$code" 400 "segment index -1 is 400"
code=$(put 0x1 "$TEST_DIR/f2" "$TID" 1000 zstd "$s2")
is "$code" 400 "a non-decimal segment index is 400"
code=$(put 0 "$TEST_DIR/f0" "$TID" $SEG zstd "$s0" nosuch)
is "$code" 404 "a segment for an unknown volume is 404"
is "$(error_code)" not_found "with error code not_found"
code=$(req /v1/volumes/nosuch)
is "$code" 404 "GET of an unknown volume is 404"
code=$(put 1 "$TEST_DIR/f1" $((TID + 1000)) $SEG zstd "$s1")
is "$code" 409 "a transfer id that is not current is 409"
is "$(error_code)" conflict "with error code conflict"

# --- path traversal ---
before=$(files_now)
code=$(req --path-as-is -X PUT -H "X-Ferry-Transfer: $TID" -H "X-Ferry-Length: $SEG" \
	-H 'X-Ferry-Encoding: zstd' -H "X-Ferry-Checksum: $s0" --data-binary "@$TEST_DIR/f0" \
	/v1/volumes/../segments/0)
in_4xx "$code"
ok $? "PUT /v1/volumes/../segments/0 (--path-as-is) is 4xx (got $code)"
code=$(req --path-as-is -X PUT -H "X-Ferry-Transfer: $TID" -H "X-Ferry-Length: $SEG" \
	-H 'X-Ferry-Encoding: zstd' -H "X-Ferry-Checksum: $s0" --data-binary "@$TEST_DIR/f0" \
	/v1/volumes/%2e%2e/segments/0)
in_4xx "$code"
ok $? "PUT /v1/volumes/%2e%2e/segments/0 is 4xx (got $code)"
for path in /v1/volumes/../transfer /v1/volumes/%2e%2e/transfer /v1/volumes/%2e%2e%2fescape/transfer \
	/v1/volumes/..%2f..%2fescape/transfer /v1/volumes/%2f%2e%2e/transfer; do
	code=$(req --path-as-is -X POST -H 'Content-Type: application/json' \
		--data '{"size":4096,"source_identity":"evil"}' "$path")
	in_4xx "$code"
	ok $? "POST $path is 4xx (got $code)"
done
code=$(req --path-as-is /v1/volumes/..)
in_4xx "$code"
ok $? "GET /v1/volumes/.. is 4xx (got $code)"
is "$(files_now)" "$before" "no file was created anywhere by the traversal attempts"
is "$(ls "$STATE/volumes")" v "DIR/volumes still holds only v"
# An encoded '/' is data, not a separator: the name "/slashed" is invalid.
code=$(req --path-as-is -X POST -H 'Content-Type: application/json' \
	--data '{"size":4096,"source_identity":"evil"}' /v1/volumes/%2Fslashed/transfer)
in_4xx "$code"
ok $? "POST /v1/volumes/%2Fslashed/transfer (name '/slashed') is 4xx (got $code)"

# --- /transfer bodies ---
code=$(req -X POST -H 'Content-Type: application/json' --data '{"size": 4096,' /v1/volumes/w/transfer)
is "$code" 400 "invalid JSON to /transfer is 400"
code=$(req -X POST -H 'Content-Type: application/json' --data '[1,2]' /v1/volumes/w/transfer)
is "$code" 400 "a JSON array to /transfer is 400"
code=$(req -X POST -H 'Content-Type: application/json' --data '{"size":-1,"source_identity":"x"}' \
	/v1/volumes/w/transfer)
is "$code" 400 "a negative size is 400"
code=$(req -X POST -H 'Content-Type: application/json' \
	--data '{"size":4096,"segment_size":1000,"source_identity":"x"}' /v1/volumes/w/transfer)
is "$code" 400 "a segment_size that is not a multiple of 4096 is 400"
code=$(req -X POST -H 'Content-Type: application/json' --data '{"size":4096}' /v1/volumes/w/transfer)
is "$code" 400 "a transfer without source_identity is 400"
[ ! -e "$STATE/volumes/w" ]
ok $? "no volume file was created by the refused /transfer requests"
code=$(req -X POST -H 'Content-Type: application/json' \
	--data "{\"size\":$SIZE,\"segment_size\":$SEG,\"source_identity\":\"someone-else\"}" \
	/v1/volumes/v/transfer)
is "$code" 409 "a different source for a partly copied volume is 409"
head -c 100000 /dev/zero | tr '\0' ' ' > "$TEST_DIR/big.json"
code=$(req -X POST -H 'Content-Type: application/json' --data-binary "@$TEST_DIR/big.json" \
	/v1/volumes/v/transfer)
is "$code" 413 "a 100 KB body to /transfer is 413"
is "$(error_code)" too_large "with error code too_large"
code=$(req -X POST -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' \
	--data-binary "@$TEST_DIR/big.json" /v1/volumes/v/transfer)
is "$code" 413 "a 100 KB chunked body (no Content-Length) to /transfer is 413"
junk=$(head -c 100000 /dev/zero | tr '\0' 'j')
code=$(req -H "X-Junk: $junk" /v1/health)
case "$code" in 2*) r=1 ;; *) r=0 ;; esac
ok $r "a 100 KB header is never answered 2xx (got $code)"

# --- routing ---
code=$(req /v1/nothing)
is "$code" 404 "an unknown path is 404"
code=$(req /v2/health)
is "$code" 404 "an unknown API version is 404"
code=$(req /v1/volumes/v/segments/0/a/b/c)
is "$code" 404 "a path with too many parts is 404"
code=$(req -X DELETE /v1/volumes/v)
in_4xx "$code"
ok $? "DELETE /v1/volumes/v is 4xx (got $code)"
code=$(req -X POST --data '{}' /v1/health)
in_4xx "$code"
ok $? "POST /v1/health is 4xx (got $code)"
code=$(req /v1/volumes/v/transfer)
in_4xx "$code"
ok $? "GET /v1/volumes/v/transfer is 4xx (got $code)"

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
