#!/bin/bash
# Hostile requests against a real ferryd, one case file each in tests/data/hostile/ (request,
# expected status and message, expected effect; see its README.md). Nothing runs, connects or
# starts on an API caller's say-so:
# ferryd opens only the libvirt connections of its own configuration (--libvirt NAME=URI), and a
# domain definition from a peer or the API passes an allow-list before it is stored; the
# protect-qemu-ext case is the exploit of qemu+ext:///system?command=PROG, which ran PROG as
# ferryd's user before. Sites and groups take only well-formed values, and an existing site is
# never redirected without --replace.
. "$(dirname "$0")/lib.sh"

CASES=("$(dirname "$0")"/../data/hostile/*.json)
plan $((3 * ${#CASES[@]} + 8))

MARKER_SCRIPT="$TEST_DIR/marker.sh" MARKER_FILE="$TEST_DIR/marker-ran"
printf '#!/bin/sh\ntouch %s\n' "$MARKER_FILE" > "$MARKER_SCRIPT"
chmod 755 "$MARKER_SCRIPT"
"$MARKER_SCRIPT" && [ -e "$MARKER_FILE" ]
ok $? "the marker script works when run (so its absence below means it never ran)"
rm -f "$MARKER_FILE"

start_daemon site --libvirt local=test:///default --guest-file-dir "$TEST_DIR/guests" ||
	{ echo "Bail out! ferryd did not start"; exit 1; }
TOKEN=$(cat "$TEST_DIR/token") CA="$TEST_DIR/tls/ca.pem" BODY="$TEST_DIR/reply.json"
AUTH=(--daemon "$DAEMON_URL" --token-file "$TEST_DIR/token" --cacert "$CA")
# A group and a site exist, so that a protect request gets as far as it ever could.
"$FERRY" group create g --interval 60 "${AUTH[@]}" > /dev/null &&
	"$FERRY" site add a --url https://127.0.0.1:1 --peer-token-file "$TEST_DIR/token" \
		--peer-cacert "$CA" "${AUTH[@]}" > /dev/null
ok $? "a group and a site exist"

for file in "${CASES[@]}"; do
	case_name=$(basename "$file" .json)
	case_json=$(sed "s#MARKER_SCRIPT#$MARKER_SCRIPT#g; s#MARKER_FILE#$MARKER_FILE#g; s#STATE_DIR#$TEST_DIR/site#g" "$file")
	method=$(jq -r .method <<< "$case_json") route=$(jq -r .route <<< "$case_json")
	headers=()
	while IFS= read -r header; do
		[ -n "$header" ] && headers+=(-H "$header")
	done < <(jq -r '.headers // {} | to_entries[] | "\(.key): \(.value)"' <<< "$case_json")
	rm -f "$BODY"
	code=$(curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
		-H 'Content-Type: application/json' "${headers[@]}" -X "$method" \
		--data "$(jq -c .body <<< "$case_json")" "$DAEMON_URL$route")
	is "$code" "$(jq -r .status <<< "$case_json")" "$case_name: $method $route answers $code"
	message=$(jq -r '.error.message // empty' < "$BODY" 2>/dev/null)
	if [ "$(jq -r '.no_server_path // false' <<< "$case_json")" = true ]; then
		case $message in *"$TEST_DIR"*) message="(shows a server path) $message" ;; esac
	fi
	case $message in
	"(shows a server path)"*) ok 1 "  naming the cause without a server path: $message" ;;
	*"$(jq -r .message <<< "$case_json")"*) ok 0 "  naming the cause (${message:0:150})" ;;
	*) ok 1 "  naming the cause: expected '$(jq -r .message <<< "$case_json")' in '$message'" ;;
	esac
	effect_ok=0
	vm=$(jq -r '.effect.vm_absent // empty' <<< "$case_json")
	if [ -n "$vm" ] && curl -s --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$DAEMON_URL/v1/vms" |
		jq -e --arg n "$vm" '[.. | objects | select(.name? == $n)] | length > 0' > /dev/null; then
		effect_ok=1
	fi
	site=$(jq -r '.effect.site_url[0] // empty' <<< "$case_json")
	if [ -n "$site" ] && [ "$(sqlite3 "$TEST_DIR/site/catalog.db" "SELECT url FROM sites WHERE name = '$site'")" != \
		"$(jq -r '.effect.site_url[1]' <<< "$case_json")" ]; then
		effect_ok=1
	fi
	marker=$(jq -r '.effect.file_absent // empty' <<< "$case_json")
	[ -n "$marker" ] && [ -e "$marker" ] && effect_ok=1
	ok $effect_ok "  and nothing happened (${vm:+no VM record $vm}${marker:+the marker script never ran}${site:+site $site as it was})"
done

# The control: a plain guest from the peer is stored and listed, so the checks above can see one.
plain="<domain type='qemu'><name>fine</name><memory unit='MiB'>128</memory><devices><disk type='network' device='disk'><source protocol='rbd' name='rbd/fine-disk'/><target dev='vda'/></disk><serial type='file'><source path='$TEST_DIR/guests/fine.log'/></serial></devices></domain>"
code=$(curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
	-H 'Content-Type: application/json' -X POST --data "$(jq -nc --arg x "$plain" \
	'{name: "fine", uri: "local", dest_uri: "test:///default", group: "g", site: "a", xml: $x,
	  disks: [{target: "vda", source: "rbd:rbd/fine-disk", replica: "fine-disk"}]}')" \
	"$DAEMON_URL/v1/vms/receive")
is "$code" 200 "a plain guest's record from the peer (a serial log in --guest-file-dir) is accepted"
curl -s --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$DAEMON_URL/v1/vms" |
	jq -e '[.. | objects | select(.name? == "fine")] | length > 0' > /dev/null
ok $? "  and listed"

# The same refusals through the CLI, with the names an operator may use instead.
"$FERRY" vm protect evil --uri "qemu+ext:///system?command=$MARKER_SCRIPT" --dest-uri local \
	--group g "${AUTH[@]}" > /dev/null 2> "$TEST_DIR/cli.err"
[ $? != 0 ] && [ ! -e "$MARKER_FILE" ] && grep -q "(local)" "$TEST_DIR/cli.err"
ok $? "ferry vm protect --uri qemu+ext:... fails without running anything ($(head -c 160 "$TEST_DIR/cli.err"))"
# A daemon refuses to start with the ext transport configured, or a malformed entry.
"$FERRYD" --state-dir "$TEST_DIR/other" --listen 127.0.0.1:0 --token-file "$TEST_DIR/token" \
	--libvirt "x=qemu+ext:///system?command=$MARKER_SCRIPT" 2> "$TEST_DIR/ext.err"
[ $? = 2 ] && grep -q "ext transport" "$TEST_DIR/ext.err" && [ ! -e "$MARKER_FILE" ]
ok $? "ferryd --libvirt x=qemu+ext:... refuses to start ($(head -c 120 "$TEST_DIR/ext.err"))"
printf '[libvirt]\nlocal = test:///default\n[guests]\nfile-dir = relative\n' > "$TEST_DIR/bad.ini"
"$FERRYD" --config "$TEST_DIR/bad.ini" --state-dir "$TEST_DIR/other" --listen 127.0.0.1:0 \
	--token-file "$TEST_DIR/token" 2> "$TEST_DIR/ini.err"
[ $? = 2 ] && grep -q "absolute folder" "$TEST_DIR/ini.err"
ok $? "a relative [guests] file-dir in the configuration is refused ($(head -c 120 "$TEST_DIR/ini.err"))"
kill -0 "$DAEMON_PID"
ok $? "ferryd is still running after every hostile request"
stop_daemon "$DAEMON_PID"
exit $test_failed
