#!/bin/bash
# Proves that the Prometheus alert rules shipped in packaging/prometheus are valid, that each alert
# passes its promtool unit tests on its own, and that each alert keeps at least one case where it
# fires (labels and annotations checked) and one where it must not. No daemon: promtool evaluates
# the rules on the synthetic series of ferry-alerts.test.yml.
source "$(dirname "$0")/lib.sh"

DIR=$(cd "$(dirname "$0")/../../packaging/prometheus" && pwd)
RULES="$DIR/ferry-alerts.yml"
TESTS="$DIR/ferry-alerts.test.yml"
# The alerts and their severities that the rules must hold, in the file's order.
EXPECTED="ferry: FerryRPONotMet=critical FerryReplicationError=critical FerryPeerUnreachable=critical"
EXPECTED="$EXPECTED FerryGroupPausedTooLong=warning FerryCutoverRunFailed=warning"
EXPECTED="$EXPECTED FerryDaemonDown=critical FerrySplitBrain=critical FerryRPOAtRisk=warning"

command -v promtool > /dev/null || { echo "Bail out! promtool missing: apt-get install prometheus"; exit 1; }
python3 -c 'import yaml' 2> /dev/null ||
	{ echo "Bail out! python3 cannot import yaml: apt-get install python3-yaml"; exit 1; }

# alert_yaml COMMAND ARGS: the questions this test asks of the two YAML files.
#   expected RULES             "GROUP: NAME=SEVERITY ..." for each group
#   count RULES                the number of rules, alerting and recording
#   alerts RULES               the alert names, one a line
#   shape RULES ALERT          what ALERT lacks of for, severity, summary, description ("" if none)
#   split TESTS RULES ALERT    a test file of the cases of ALERT alone, on stdout
#   coverage TESTS ALERT       "firing N silent M unannotated K": cases that expect it to fire,
#                              cases that expect nothing, firing ones without summary+description
#   unknown TESTS RULES        alert names tested that the rules do not have
alert_yaml() {
	python3 - "$@" << 'EOF'
import sys, yaml

def load(path):
    with open(path) as f:
        return yaml.safe_load(f)

def alerts(rules):
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "expected":
    rules = load(args[0])
    print(" ".join(g["name"] + ": " + " ".join(
        r["alert"] + "=" + str(r.get("labels", {}).get("severity")) for r in g["rules"] if "alert" in r)
        for g in rules["groups"]))
elif cmd == "count":
    print(sum(len(g["rules"]) for g in load(args[0])["groups"]))
elif cmd == "alerts":
    for r in alerts(load(args[0])):
        print(r["alert"])
elif cmd == "shape":
    rule = [r for r in alerts(load(args[0])) if r["alert"] == args[1]][0]
    missing = []
    if not rule.get("for"):
        missing.append("for")
    if rule.get("labels", {}).get("severity") not in ("critical", "warning"):
        missing.append("severity critical|warning")
    for key in ("summary", "description"):
        if not str(rule.get("annotations", {}).get(key, "")).strip():
            missing.append(key)
    print(" ".join(missing))
elif cmd == "split":
    tests, rules_path, name = load(args[0]), args[1], args[2]
    groups = []
    for group in tests.get("tests", []):
        cases = [c for c in group.get("alert_rule_test", []) if c["alertname"] == name]
        if cases:
            group = dict(group, alert_rule_test=cases)
            group.pop("promql_expr_test", None)
            groups.append(group)
    tests = dict(tests, rule_files=[rules_path], tests=groups)
    yaml.safe_dump(tests, sys.stdout, sort_keys=False)
elif cmd == "coverage":
    tests, name = load(args[0]), args[1]
    firing = silent = unannotated = 0
    for group in tests.get("tests", []):
        for case in group.get("alert_rule_test", []):
            if case["alertname"] != name:
                continue
            expected = case.get("exp_alerts") or []
            if expected:
                firing += 1
                unannotated += sum(1 for a in expected
                                   if not {"summary", "description"} <= set(a.get("exp_annotations") or {}))
            else:
                silent += 1
    print("firing %d silent %d unannotated %d" % (firing, silent, unannotated))
elif cmd == "unknown":
    tests, rules = load(args[0]), load(args[1])
    known = {r["alert"] for r in alerts(rules)}
    print(" ".join(sorted({c["alertname"] for g in tests.get("tests", [])
                           for c in g.get("alert_rule_test", [])} - known)))
EOF
}

mapfile -t ALERTS < <(alert_yaml alerts "$RULES")
plan $((5 + 3 * ${#ALERTS[@]}))
diag "$(promtool --version 2>&1 | head -n 1)"

# --- the rules file ---
out=$(promtool check rules "$RULES" 2>&1)
r=$?
ok $r "promtool check rules ferry-alerts.yml"
[ $r = 0 ] || printf '%s\n' "$out" | awk 'NF && !(/could not|yaml:/ && seen[$0]++)' | head -n 40 | sed 's/^/#   /'
is "$(printf '%s\n' "$out" | sed -n 's/.*SUCCESS: \([0-9]*\) rules found.*/\1/p')" \
	"$(alert_yaml count "$RULES")" "promtool finds every rule of the file"
is "$(alert_yaml expected "$RULES")" "$EXPECTED" "one group, ferry, with the expected alerts and severities"
for alert in "${ALERTS[@]}"; do
	is "$(alert_yaml shape "$RULES" "$alert")" "" "$alert has for, a severity, a summary and a description"
done

# --- the unit tests, all at once and then one alert at a time ---
out=$(cd "$DIR" && promtool test rules ferry-alerts.test.yml 2>&1)
r=$?
ok $r "promtool test rules ferry-alerts.test.yml"
[ $r = 0 ] || printf '%s\n' "$out" | awk 'NF && !(/could not|yaml:/ && seen[$0]++)' | head -n 40 | sed 's/^/#   /'
is "$(alert_yaml unknown "$TESTS" "$RULES")" "" "every alert tested is in the rules file"
for alert in "${ALERTS[@]}"; do
	alert_yaml split "$TESTS" "$RULES" "$alert" > "$TEST_DIR/$alert.test.yml"
	out=$(promtool test rules "$TEST_DIR/$alert.test.yml" 2>&1)
	r=$?
	ok $r "$alert: its promtool cases pass"
	[ $r = 0 ] || printf '%s\n' "$out" | awk 'NF && !(/could not|yaml:/ && seen[$0]++)' | head -n 40 | sed 's/^/#   /'
	coverage=$(alert_yaml coverage "$TESTS" "$alert")
	set -- $coverage
	[ "$2" -ge 1 ] && [ "$4" -ge 1 ] && [ "$6" = 0 ]
	ok $? "$alert: a case where it fires, annotations checked, and one where it must not ($coverage)"
done

exit $test_failed
