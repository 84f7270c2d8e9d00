#!/usr/bin/env python3
"""ferry's own lint, run by `make lint`: the error idiom (report once, return a ferry code, clean
up through one label), one number parser, and the size of files and functions. Each rule says
what to use instead. A line that maps another library's codes to ferry's (where a message is set
right after) says so with the comment "lint: maps codes", and the code rules skip it.
Usage: lint-idiom.py FILE.c... ; exit 1 when any rule is broken."""
import re
import sys

FILE_LINES_MAX = 1000
FUNCTION_LINES_MAX = 150
# The files that map errno to ferry codes, and the one strict number parser.
ERRNO_HELPERS = {"common/error.c"}
NUMBER_PARSERS = {"common/util.c"}
CLEANUP_LABELS = {"out", "fail", "cleanup", "error", "done", "finish", "failed"}

RULES = [
    (re.compile(r"(return|=|\?|:)\s*FERRY_ERR_NO_MEMORY\s*;"),
     "a no-memory code without a message: the operator would see an older message; "
     "use ferry_error_no_memory() (common/error.h)", None),
    (re.compile(r"\breturn\s+-E[A-Z]+\b|(?<![=!<>])=\s*-E[A-Z]+\s*;"),
     "a raw -E... code where negative numbers are ferry codes; use a FERRY_ERR_ code "
     "(ferry_error_from_errno() maps errno)", ERRNO_HELPERS),
    (re.compile(r"\b(atoi|atol|atoll|strtol|strtoll|strtoul|strtoull|strtoimax|strtoumax)\s*\("),
     "an unchecked number conversion; use util_parse_int64() or util_parse_size()",
     NUMBER_PARSERS),
]


def foreach_ifs(text):
    """Line numbers where a _foreach(...) is followed by an if as its body, on one line or not."""
    for match in re.finditer(r"_foreach\s*\(", text):
        depth, position = 1, match.end()
        while position < len(text) and depth > 0:
            depth += {"(": 1, ")": -1}.get(text[position], 0)
            position += 1
        if re.match(r"\s*if\b", text[position:]):
            yield text.count("\n", 0, match.start()) + 1


def functions(lines):
    """(name, first line, last line, body) of each top-level function in the house layout."""
    start = None
    for number, line in enumerate(lines):
        if line == "{" and number > 0 and re.match(r"^[a-z_][a-z0-9_]*\(", lines[number - 1]):
            start = number - 1
        elif line == "}" and start is not None:
            name = lines[start].split("(")[0]
            yield name, start + 1, number + 1, lines[start:number + 1]
            start = None


def check(path):
    problems = []
    text = open(path, encoding="utf-8").read()
    lines = text.split("\n")
    short = re.sub(r"^.*?/?((common|catalog|replicator|cutover|web|cmd|tests)/)", r"\1", path)
    if len(lines) - 1 > FILE_LINES_MAX:
        problems.append((1, "file has %d lines, more than %d; split it by idea"
                         % (len(lines) - 1, FILE_LINES_MAX)))
    for number, line in enumerate(lines, 1):
        if "lint: maps codes" in line:
            continue
        code = re.sub(r'"(\\.|[^"\\])*"', '""', line)
        code = re.sub(r"/\*.*?\*/|//.*$", "", code)
        for pattern, message, allowed in RULES:
            if allowed and short in allowed:
                continue
            if pattern.search(code):
                problems.append((number, message))
    for number in foreach_ifs(text):
        problems.append((number, "an if hidden after a _foreach(...); open a block { ... } "
                         "for its body"))
    for name, first, last, body in functions(lines):
        if last - first + 1 > FUNCTION_LINES_MAX:
            problems.append((first, "function %s has %d lines, more than %d; split it into steps"
                             % (name, last - first + 1, FUNCTION_LINES_MAX)))
        labels = sorted({m.group(1) for m in (re.match(r"^([a-z_]+):\s*$", l) for l in body)
                         if m and m.group(1) in CLEANUP_LABELS})
        if len(labels) > 1:
            problems.append((first, "function %s has cleanup labels %s; use one 'out:' and "
                             "let each resource start as NULL" % (name, ", ".join(labels))))
    return ["%s:%d: %s" % (path, number, message) for number, message in problems]


def self_test(folder):
    """Each case file opens with /* expect: N */, the number of problems the rules must find."""
    import glob
    failed = 0
    cases = sorted(glob.glob(folder + "/*.c"))
    for path in cases:
        expected = int(re.search(r"expect: (\d+)", open(path).readline()).group(1))
        got = check(path)
        if len(got) != expected:
            failed += 1
            print("lint-idiom self-test: %s: %d problem(s), expected %d" % (path, len(got), expected))
            for line in got:
                print("  " + line)
    if len(cases) < 5:
        print("lint-idiom self-test: only %d case(s) in %s" % (len(cases), folder))
        return 1
    return 1 if failed else 0


def main():
    if sys.argv[1:2] == ["--self-test"]:
        return self_test(sys.argv[2])
    found = []
    for path in sys.argv[1:]:
        found.extend(check(path))
    for line in found:
        print(line)
    if found:
        print("lint-idiom: %d problem(s)" % len(found), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
