#!/bin/bash
# ferryd's INI configuration, case by case: each file of tests/data/config/ is a ferryd.conf
# whose leading comments say what `ferryd --check-config --config FILE` must answer (its exit
# status, lines of its standard output and error; see the folder's README.md). Every case also
# proves that a check makes nothing: no state folder, no TLS pair.
. "$(dirname "$0")/lib.sh"

CASES=("$(dirname "$0")"/../data/config/*.conf)
# each case: its status, each expected line, and that it made nothing
expectations=$(cat "${CASES[@]}" | grep -c '^; expect-std\(out\|err\): ')
plan $((2 * ${#CASES[@]} + expectations))

openssl rand -hex 24 > "$TEST_DIR/token" && chmod 600 "$TEST_DIR/token"
cp "$TEST_DIR/token" "$TEST_DIR/open-token" && chmod 644 "$TEST_DIR/open-token"
make_tls "$TEST_DIR/tls"

for file in "${CASES[@]}"; do
	name=$(basename "$file" .conf)
	dir="$TEST_DIR/$name"
	mkdir -p "$dir"
	sed -e "s#@DIR@#$dir#g; s#@TOKEN@#$TEST_DIR/token#g; s#@OPEN_TOKEN@#$TEST_DIR/open-token#g" \
		-e "s#@CERT@#$TEST_DIR/tls/server.pem#g; s#@KEY@#$TEST_DIR/tls/server.key#g" \
		-e "s#@OTHER_KEY@#$TEST_DIR/tls/ca.key#g" "$file" > "$dir/ferryd.conf"
	why=$(sed -n '1s/^; //p' "$dir/ferryd.conf")
	read -r -a args <<< "$(sed -n 's/^; args: //p' "$dir/ferryd.conf")"
	"$FERRYD" --check-config --config "$dir/ferryd.conf" ${args[@]+"${args[@]}"} \
		> "$dir/out" 2> "$dir/err"
	is "$?" "$(sed -n 's/^; expect-status: //p' "$dir/ferryd.conf")" "$name: $why"
	while IFS= read -r line; do
		stream=${line%%: *} text=${line#*: }
		stream=${stream#; expect-std}
		grep -qF -- "$text" "$dir/$stream"
		ok $? "  std$stream says: $text"
	done < <(grep '^; expect-std\(out\|err\): ' "$dir/ferryd.conf")
	[ ! -e "$dir/state" ] && [ ! -e "$dir/other" ]
	ok $? "  and the check made nothing"
	if [ "$test_failed" = 1 ] && [ -z "${shown:-}" ]; then
		shown=1
		diag "$name: stdout and stderr:"; sed 's/^/#   /' "$dir/out" "$dir/err" | head -n 20
	fi
done
exit $test_failed
