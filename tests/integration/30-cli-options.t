#!/bin/bash
# ferry's command line against its tables: for each command, an option it does not take is
# refused with exit 2 naming the option and the command; its own options pass; global options
# work before and after the command; unknown options and missing values are exit 2; each
# command's --help lists its options; the usage, the completion and the parser agree. The cases
# are tests/data/cli-options/cases (ARGS | EXIT | TEXT), run against the real binary and one
# real ferryd (no Ceph, no libvirt).
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CASES="$ROOT/tests/data/cli-options/cases"

# No configuration but what a case gives: an empty client configuration, no environment.
unset FERRY_DAEMON FERRY_TOKEN_FILE FERRY_CACERT CEPH_CONF XDG_CONFIG_HOME
export HOME="$TEST_DIR/home" FERRY_CONFIG="$TEST_DIR/ferry.conf"
mkdir -p "$HOME" && : > "$FERRY_CONFIG"

start_daemon site || { echo "Bail out! ferryd did not start"; exit 1; }
AUTH="--daemon $DAEMON_URL --token-file $TEST_DIR/token --cacert $TEST_DIR/tls/ca.pem"

# --- the cases ---
while IFS='|' read -r args expected text; do
	args=$(printf '%s' "$args" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
	case "$args" in \#*) continue ;; esac
	[ -z "$args" ] && [ -z "$expected" ] && continue
	expected=$(printf '%s' "$expected" | tr -d '[:space:]')
	text=$(printf '%s' "$text" | sed 's/^[[:space:]]//')
	# shellcheck disable=SC2086
	out=$(timeout 30 "$FERRY" ${args//@AUTH@/$AUTH} 2>&1 < /dev/null)
	status=$?
	case "$out" in *"$text"*) found=0 ;; *) found=1 ;; esac
	if [ "$status" = "$expected" ] && [ "$found" = 0 ]; then
		ok 0 "ferry $args: exit $expected, '$text'"
	else
		ok 1 "ferry $args: exit $expected, '$text'"
		diag "  got exit $status: $(printf '%s' "$out" | head -c 300)"
	fi
done < "$CASES"

# --- the usage, the completion and the parser agree ---
COMMANDS=$("$FERRY" __complete "" "")
for command in $COMMANDS; do
	help=$("$FERRY" help "$command")
	# Every option the completion offers for the command is in its --help...
	missing=""
	for option in $("$FERRY" __complete "" -- "$command"); do
		case "$help" in *"$option"*) ;; *) missing="$missing $option" ;; esac
	done
	is "$missing" "" "ferry $command --help lists every option the completion offers"
	# ...and every option its synopsis shows passes the parser for that verb.
	refused=""
	synopsis=$(printf '%s\n' "$help" | awk -v c="$command" '
		$0 ~ "^  " c "( |$)" { verb = ($2 ~ /^[a-z]+$/) ? $2 : ""; on = 1; print verb "\t" $0; next }
		on && /^       [[\[-]/ { print verb "\t" $0; next }
		{ on = 0 }')
	while IFS=$'\t' read -r verb line; do
		for option in $(printf '%s' "$line" | grep -oE -- '--[a-z][a-z-]*'); do
			# shellcheck disable=SC2086
			out=$("$FERRY" "$command" $verb "$option=1" 2>&1 < /dev/null)
			case "$out" in *"takes no value"*)
				# shellcheck disable=SC2086
				out=$("$FERRY" "$command" $verb "$option" 2>&1 < /dev/null) ;;
			esac
			case "$out" in *"is not an option of"* | *"unknown option"*)
				refused="$refused $command${verb:+ $verb} $option;" ;;
			esac
		done
	done <<< "$synopsis"
	is "$refused" "" "every option ferry $command's usage shows is taken by it"
done

# The completion offers a command's own options and the global ones, not another's.
words=$("$FERRY" __complete "" -- copy)
case "$words" in *--jobs*--json*) r=0 ;; *) r=1 ;; esac
case "$words" in *--live*) r=1 ;; esac
ok $r "ferry copy --<TAB> offers --jobs and --json, not --live"
is "$("$FERRY" __complete "" "" --json token)" "create list revoke " "ferry --json token <TAB>: its verbs"
is "$("$FERRY" __complete --target "")" "file rbd" "ferry copy --target <TAB>: file rbd"
is "$("$FERRY" __complete --cacert "")" "__files__" "ferry --cacert <TAB>: a file"
if [ -f /usr/share/bash-completion/bash_completion ]; then
	completed=$(PATH="$FERRY_BIN:$PATH" bash -c 'source /usr/share/bash-completion/bash_completion
		source "$1"
		COMP_WORDS=(ferry group create g --i); COMP_CWORD=4; COMP_LINE="ferry group create g --i"
		COMP_POINT=${#COMP_LINE}; _ferry ferry --i g; echo "${COMPREPLY[*]}"' _ \
		"$ROOT/packaging/bash-completion/ferry" 2>&1)
	is "$completed" "--interval --insecure" "bash completes ferry group create g --i<TAB> from ferry's tables"
else
	ok 0 "# SKIP bash-completion is not installed"
fi

stop_daemon "$DAEMON_PID"
is $? 0 "ferryd stops cleanly"
plan "$test_number"
exit "$test_failed"
