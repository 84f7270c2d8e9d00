#!/bin/bash
# `make demo`, once, with the binaries under test: it exits 0, its summary table lists every
# step as ok, and it leaves nothing behind. It runs with --keep, so that the sites it leaves can
# be reached with the client configuration it wrote, and is then removed with `demo.sh stop DIR`,
# as `make demo KEEP=1` and `make demo-stop` do. Under make check it uses the shared Ceph
# clusters (FERRY_TEST_CEPH_A_CONF, _B_CONF) instead of starting two, and they must run on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-sites.sh"
DEMO_SH=$(cd "$(dirname "$0")/.." && pwd)/demo.sh

plan 11
FERRY_BIN=$FERRY_BIN timeout 600 bash "$DEMO_SH" --keep > "$TEST_DIR/demo.out" 2>&1
rc=$?
is "$rc" 0 "tests/demo.sh --keep exits 0"
[ "$rc" = 0 ] || sed 's/^/#   /' "$TEST_DIR/demo.out"
dir=$(grep -o '/tmp/ferry-demo\.[A-Za-z0-9]*' "$TEST_DIR/demo.out" | head -1)
# The table: a header, then "STEP  RESULT  FIGURE" rows.
awk '/== summary/ { on = 1; next } on && /^step / { next } on && NF == 0 { on = 0 } on && /^[0-9]/ { print }' \
	"$TEST_DIR/demo.out" | sed 's/\x1b\[[0-9;]*m//g' > "$TEST_DIR/rows"
diag "summary:"; sed 's/^/#   /' "$TEST_DIR/rows"
rows=$(wc -l < "$TEST_DIR/rows")
if reason=$(sites_can_run); then
	[ "$rows" -ge 10 ]
	ok $? "the summary has a row for each check ($rows)"
	grep -v '  ok  ' "$TEST_DIR/rows" | grep -q .
	is $? 1 "  and every one of them is ok"
	for step in "2. every write present at B" "3. failover to A"; do
		grep -q "^$step  *ok  " "$TEST_DIR/rows"
		ok $? "  including '$step' ($(grep "^$step" "$TEST_DIR/rows" | sed 's/  */ /g' | cut -c1-160))"
	done
	grep -q 'RTO [0-9.]* s, RPO [0-9]* s' "$TEST_DIR/rows"
	ok $? "  the failover's row gives RTO and RPO"
else
	diag "the demo cannot run its sites here: $reason"
	grep -q "not run" "$TEST_DIR/rows"
	ok $? "the summary says the sites were not run"
	grep '^4\.' "$TEST_DIR/rows" | grep -v '  ok  ' | grep -q .
	is $? 1 "  and the copy's checks are ok"
	for _ in 1 2 3; do ok 0 "# SKIP needs root, namespaces, Ceph and libvirt"; done
fi

# The kept sites answer with the client configuration the demo wrote.
conf="$dir/site-a/ferry.conf"
FERRY_CONFIG=$conf env -u FERRY_DAEMON -u FERRY_TOKEN_FILE -u FERRY_CACERT "$FERRY" health > "$TEST_DIR/health.out" 2>&1
ok $? "site A left running answers 'ferry health' with $conf ($(head -1 "$TEST_DIR/health.out"))"
grep -q "demo-stop" "$TEST_DIR/demo.out"
ok $? "  and the demo said how to stop it"
grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$dir"/site-*/ferryd.log > "$TEST_DIR/reports" 2>/dev/null
is "$(cat "$TEST_DIR/reports")" "" "no sanitizer report in the ferryd logs of either site"

bash "$DEMO_SH" stop "$dir" > "$TEST_DIR/stop.out" 2>&1
left=""
for _ in $(seq 1 50); do
	left=$(grep -l -s -F "$dir" /proc/[0-9]*/cmdline /proc/[0-9]*/mountinfo 2>/dev/null | sed 's#/proc/\([0-9]*\)/.*#\1#' | sort -u |
		while read -r pid; do case "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" in Z|X|'') ;; *) echo "$pid" ;; esac; done | tr '\n' ' ')
	[ -z "$left" ] && break
	sleep 0.2
done
[ -z "$left" ] && [ ! -e "$dir" ]
ok $? "demo.sh stop $dir leaves no process and no folder (${left:-none left})"
shared=0
for name in A B; do
	var="FERRY_TEST_CEPH_${name}_CONF"
	[ -z "${!var:-}" ] || "$CEPH_CLUSTER_SH" status "$(dirname "${!var}")" > /dev/null 2>&1 || shared=1
done
ok $shared "the shared Ceph clusters, when given, still run"
exit $test_failed
