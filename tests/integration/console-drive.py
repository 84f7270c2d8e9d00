#!/usr/bin/python3
"""Drives ferry's web console in headless Chromium (Selenium) for tests/integration/29-console.t.

    console-drive.py CONFIG.json

CONFIG names the two ferryd (primary, replica), the group and VM, the tokens of each role, the
server's message for a wrong token, the folder for screenshots and Chromium's profile folder.
Each check prints one TAP-like line, "ok - TEXT" or "not ok - TEXT", which the .t script numbers;
"# " lines are diagnostics. Values the .t script checks afterwards (the session cookie that was
logged out, the run ids) are written to CONFIG's "values" file. The number of checks is fixed
(CHECKS): when a phase fails early, its remaining checks are reported as failed, so the plan holds.

Debian's python3 (python3-selenium), chromium and chromium-driver. Chromium runs with
--ignore-certificate-errors: ferryd's certificate is signed by the test's throw-away CA, made
for this one run; curl in the .t script checks the certificate against that CA.
"""
import json
import sys
import time
import traceback

from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

CHECKS = 23  # every check() below, once each; the .t script's plan counts them

cfg = json.load(open(sys.argv[1]))
values = {}
printed = 0
screens = cfg["screens"]
shot_number = 0
browser_log = []


def check(ok, name, detail=""):
    global printed
    printed += 1
    text = f"{name} ({detail})" if detail else name
    print(("ok - " if ok else "not ok - ") + text.replace("\n", " "), flush=True)
    return ok


def diag(message):
    for line in str(message).splitlines():
        print("# " + line, flush=True)


def shot(driver, name):
    global shot_number
    shot_number += 1
    try:
        driver.save_screenshot(f"{screens}/{shot_number:02d}-{name}.png")
    except Exception as error:  # a screenshot is a help, never a failure
        diag(f"screenshot {name}: {error}")


def wait(driver, condition, seconds=30, what="a condition"):
    """WebDriverWait, with a message that says what was awaited."""
    def safe(d):
        try:
            return condition(d)
        except Exception:
            return False
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.2).until(safe)
    except Exception:
        raise AssertionError(f"waited {seconds} s for {what}") from None


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def js_async(driver, body, *args):
    """Runs the body of an async function in the page; its return value (JSON) comes back."""
    driver.set_script_timeout(30)
    answer = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "(async (...args) => {" + body + "})(...Array.from(arguments).slice(0, -1))"
        ".then((r) => done(JSON.stringify({ok: r})), (e) => done(JSON.stringify({error: String(e)})));",
        *args)
    answer = json.loads(answer)
    if "error" in answer:
        raise AssertionError(f"in the page: {answer['error']}")
    return answer["ok"]


def main_text(driver):
    return driver.find_element(By.TAG_NAME, "main").text


def collect_log(driver):
    try:
        browser_log.extend(driver.get_log("browser"))
    except Exception:
        pass


def go(driver, hash_route, heading=None):
    """Another page of the app, without a reload (as a link would)."""
    js(driver, "location.hash = arguments[0]", hash_route)
    if heading:
        wait(driver, lambda d: heading in d.find_element(By.CSS_SELECTOR, "main h1").text,
             15, f"the page {hash_route} (heading '{heading}')")


def login(driver, base, token):
    driver.get(base + "/")
    wait(driver, lambda d: d.find_element(By.ID, "token").is_displayed() or d.find_element(By.ID, "bar").is_displayed(),
         15, "the login form or the console")
    if driver.find_element(By.ID, "bar").is_displayed():  # still logged in after a failed phase
        logout(driver)
    field = driver.find_element(By.ID, "token")
    field.send_keys(token)
    field.send_keys(Keys.ENTER)
    wait(driver, lambda d: d.find_element(By.ID, "bar").is_displayed(), 15, "the console after login")
    wait(driver, lambda d: d.find_element(By.ID, "site-health").text.strip(), 15, "the health word in the bar")


def logout(driver):
    driver.find_element(By.ID, "logout").click()
    wait(driver, lambda d: d.find_element(By.ID, "token").is_displayed(), 15, "the login form after log out")


def summary_value(driver, term):
    return js(driver, """
        const pair = [...document.querySelectorAll('#group-summary .pair')]
            .find((p) => p.querySelector('dt').textContent === arguments[0]);
        return pair ? pair.querySelector('dd').textContent : null;""", term)


def action_names(driver):
    return js(driver, "return [...document.querySelectorAll('[data-action]')].map((e) => e.dataset.action)")


# Accessibility of the page on screen: one main landmark with an h1, the document's language,
# every form control labelled, every button and link named, tables with headers, images with
# alt text, a live region, and no style attribute (the CSP forbids them).
A11Y = """
const problems = [];
if (document.documentElement.lang !== 'en') problems.push('no lang=en');
const mains = document.querySelectorAll('main, [role=main]');
if (mains.length !== 1) problems.push(mains.length + ' main landmarks');
if (!document.querySelector('main h1')) problems.push('no h1 in main');
for (const e of document.querySelectorAll('input, select, textarea')) {
    if (e.type === 'hidden' || e.closest('[hidden]')) continue;
    if (!((e.labels && e.labels.length) || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')))
        problems.push('unlabelled ' + e.tagName.toLowerCase() + '#' + e.id);
}
for (const e of document.querySelectorAll('button, a[href]')) {
    if (e.closest('[hidden]')) continue;
    if (!(e.textContent.trim() || e.getAttribute('aria-label'))) problems.push('unnamed ' + e.tagName.toLowerCase());
}
for (const t of document.querySelectorAll('table'))
    if (!t.querySelector('thead th[scope=col]')) problems.push('a table without column headers');
for (const i of document.querySelectorAll('img')) if (!i.hasAttribute('alt')) problems.push('img without alt');
for (const s of document.querySelectorAll('svg[role=img]'))
    if (!s.getAttribute('aria-labelledby')) problems.push('an svg image without a name');
if (!document.querySelector('[aria-live], [role=status], [role=alert]')) problems.push('no live region');
if (document.querySelector('[style]')) problems.push('a style attribute');
return problems;
"""
a11y_results = {}


def a11y(driver, page):
    problems = js(driver, A11Y)
    a11y_results[page] = problems
    return problems


class Phase:
    """A group of checks: an exception fails the check under way and every one left in it."""

    def __init__(self, name, count):
        self.name, self.count, self.start = name, count, printed

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if kind is None:
            if printed - self.start != self.count:
                diag(f"phase {self.name}: {printed - self.start} checks, expected {self.count}")
            return False
        diag(f"phase {self.name} stopped: {error}")
        diag("".join(traceback.format_exception(kind, error, trace))[-1500:])
        while printed - self.start < self.count:
            check(False, f"{self.name}: not reached ({str(error)[:200]})")
        return True


def browser():
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1280,1000",
                     "--ignore-certificate-errors", "--disable-dev-shm-usage",
                     "--no-first-run", "--disable-extensions", "--lang=en-US",
                     f"--user-data-dir={cfg['chrome_dir']}"):
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))


def run(d):
    primary, replica, group = cfg["primary"], cfg["replica"], cfg["group"]

    # 1. A wrong token: the server's message, and nothing else.
    with Phase("wrong token", 3):
        d.get(primary + "/")
        field = wait(d, lambda d: d.find_element(By.ID, "token"), 15, "the login form")
        field.send_keys(cfg["wrong_token"])
        d.find_element(By.ID, "login-button").click()
        message = wait(d, lambda d: d.find_element(By.ID, "login-error").text.strip(), 15, "the login's message")
        shot(d, "wrong-token")
        check(message == cfg["wrong_message"], "a wrong token shows the server's message",
              f"shown: '{message}'")
        leaked = [w for w in (group, cfg["vm"]) if w in main_text(d)]
        check(not d.find_element(By.ID, "bar").is_displayed() and not leaked and
              not d.find_elements(By.CSS_SELECTOR, "main table"),
              "  and no data: no bar, no table, no group, VM or site name", f"leaked: {leaked}")
        # C side: a peer's token (what the other site pushes with) cannot log in.
        field = d.find_element(By.ID, "token")
        field.clear()
        field.send_keys(cfg["tokens"]["peer"])
        field.send_keys(Keys.ENTER)
        wait(d, lambda d: d.find_element(By.ID, "login-error").text.strip() not in ("", message), 15,
             "the peer login's message")
        refused = d.find_element(By.ID, "login-error").text.strip()
        check(refused == cfg["peer_message"] and not d.find_element(By.ID, "bar").is_displayed(),
              "a peer's token is refused at login, with the server's message", f"shown: '{refused}'")

    # 5 and 2. A viewer logs in with the keyboard alone, sees lag and state, and no action.
    with Phase("viewer", 5):
        d.get(primary + "/")
        wait(d, lambda d: d.find_element(By.ID, "token"), 15, "the login form")
        js(d, "document.activeElement && document.activeElement.blur()")
        tabs = 0
        while js(d, "return document.activeElement && document.activeElement.id") != "token" and tabs < 6:
            ActionChains(d).send_keys(Keys.TAB).perform()
            tabs += 1
        ActionChains(d).send_keys(cfg["tokens"]["viewer"]).send_keys(Keys.ENTER).perform()
        wait(d, lambda d: d.find_element(By.ID, "bar").is_displayed(), 15, "the console after a keyboard login")
        who = d.find_element(By.ID, "who").text
        # Focus is visible: Tab to the first link of the bar and read its outline.
        ActionChains(d).send_keys(Keys.TAB).perform()
        outline = js(d, """const e = document.activeElement, s = getComputedStyle(e);
            return [e.tagName, s.outlineStyle, s.outlineWidth];""")
        shot(d, "viewer-overview")
        check(who == f"{cfg['names']['viewer']} (viewer)" and outline[1] != "none" and outline[2] != "0px",
              "keyboard: Tab reaches the token field, Enter logs in; the focused control shows an outline",
              f"{tabs} Tab(s); logged in as '{who}'; focus on {outline[0]}, outline {outline[1]} {outline[2]}")
        cookie = next((c for c in d.get_cookies() if c["name"] == "ferry_session"), None)
        # C side: the session cookie's flags.
        check(cookie is not None and cookie.get("httpOnly") and cookie.get("secure") and
              cookie.get("sameSite") == "Strict" and not js(d, "return document.cookie.includes('ferry_session')"),
              "the session cookie is HttpOnly, Secure and SameSite=Strict; the page's script cannot read it",
              json.dumps({k: cookie.get(k) for k in ("httpOnly", "secure", "sameSite", "path")}) if cookie else "no cookie")
        a11y(d, "overview")
        go(d, f"#/group/{group}", f"Group {group}")
        wait(d, lambda d: summary_value(d, "Lag") not in (None, "—", ""), 20, "the group's lag")
        lag, state = summary_value(d, "Lag"), d.find_element(By.ID, "group-state").text
        shot(d, "viewer-group")
        check(lag.endswith(" s") or "min" in lag, "a viewer sees the group's lag and state on its page",
              f"lag {lag}; {state}")
        a11y(d, "group")
        on_group = action_names(d)
        go(d, "#/runs", "Runs")
        a11y(d, "runs")
        on_runs = action_names(d)
        go(d, "#/vms", "Virtual machines")
        wait(d, lambda d: cfg["vm"] in main_text(d), 15, "the VM in the VM list")
        a11y(d, "vms")
        go(d, "#/events", "Events")
        a11y(d, "events")
        links = js(d, "return [...document.querySelectorAll('#nav a')].map((a) => a.textContent)")
        check(not on_group and not on_runs and "Audit" not in links and "Tokens" not in links,
              "a viewer is offered no action (group and runs pages) and no Audit or Tokens page",
              f"actions: {on_group + on_runs}; pages: {', '.join(links)}")
        # The forged action: the viewer's own cookie and CSRF token, from the page's context.
        forged = js_async(d, """
            const session = await (await fetch('/v1/session', {credentials: 'same-origin'})).json();
            const r = await fetch('/v1/groups/' + encodeURIComponent(arguments[0]) + '/sync', {
                method: 'POST', credentials: 'same-origin',
                headers: {'X-CSRF-Token': session.csrf, 'Content-Type': 'application/json'}});
            return [r.status, (await r.json()).error];""", group)
        check(forged[0] == 403, "a forged POST /v1/groups/G/sync with the viewer's cookie and CSRF token answers 403",
              f"{forged[0]}: {(forged[1] or {}).get('message', '')}")
        logout(d)

    # 3. An operator: Sync now, and the new point appears without a reload.
    with Phase("operator", 5):
        login(d, primary, cfg["tokens"]["operator"])
        go(d, f"#/group/{group}", f"Group {group}")
        wait(d, lambda d: "sync" in action_names(d), 15, "the operator's actions")
        offered = action_names(d)
        check({"sync", "pause", "failover-test", "failover-cleanup"} <= set(offered) and
              "failover" not in offered and "reprotect" not in offered,
              "an operator is offered Sync now, Pause, Test failover and Cleanup, and no admin action",
              ", ".join(offered))
        # C side: a change made with the cookie but without the CSRF header is refused.
        bare = js_async(d, """
            const r = await fetch('/v1/groups/' + encodeURIComponent(arguments[0]) + '/pause', {
                method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'}});
            return [r.status, (await r.json()).error];""", group)
        check(bare[0] == 403, "a change sent with the operator's cookie but no X-CSRF-Token answers 403",
              f"{bare[0]}: {(bare[1] or {}).get('message', '')}")
        wait(d, lambda d: (summary_value(d, "Last point") or "").isdigit(), 30, "the group's last point")
        before = int(summary_value(d, "Last point"))
        js(d, "window.ferryNoReload = 'still here'")
        d.find_element(By.CSS_SELECTOR, "[data-action=sync]").click()
        wait(d, lambda d: (summary_value(d, "Last point") or "0").isdigit() and
             int(summary_value(d, "Last point")) > before, 90, f"a point after {before}")
        after = int(summary_value(d, "Last point"))
        wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, f"#points tbody tr[data-key='{after}']"), 15,
             f"point {after} in the points table")
        shot(d, "operator-synced")
        notice = d.find_element(By.ID, "notice").text
        check(js(d, "return window.ferryNoReload") == "still here" and after == before + 1,
              "Sync now: the new point appears on the group page and in its points, without a reload",
              f"point {before} -> {after}; notice: {notice}")
        values["synced_point"] = after
        wait(d, lambda d: js(d, "return document.querySelector('#lag-chart polyline') !== null"), 20,
             "a line in the lag chart (two samples)")
        chart = js(d, """const s = document.getElementById('lag-chart');
            return [s.querySelector('title').textContent, s.querySelector('desc').textContent,
                    !!s.querySelector('.chart-rpo')];""")
        check(chart[2], "the group page draws the lag of the last hour (SVG, with the RPO target)",
              f"{chart[0]}: {chart[1]}")
        # 6. Log out; the .t script then asks ferryd with the old cookie.
        cookie = next((c for c in d.get_cookies() if c["name"] == "ferry_session"), {})
        values["logged_out_cookie"] = cookie.get("value", "")
        alive = js_async(d, "return (await fetch('/v1/session', {credentials: 'same-origin'})).status;")
        logout(d)
        gone = next((c for c in d.get_cookies() if c["name"] == "ferry_session"), None)
        back = js_async(d, "return (await fetch('/v1/session', {credentials: 'same-origin'})).status;")
        shot(d, "logged-out")
        check(alive == 200 and back == 401 and gone is None and d.find_element(By.ID, "token").is_displayed(),
              "Log out: the login form is back, the cookie is gone, GET /v1/session answers 401",
              f"before {alive}, after {back}")

    # 4. At the replica site: a test failover from the group page, its steps as they happen.
    with Phase("test failover", 4):
        login(d, replica, cfg["tokens"]["replica_operator"])
        go(d, f"#/group/{group}", f"Group {group}")
        wait(d, lambda d: "failover-test" in action_names(d), 15, "the Test failover button")
        wait(d, lambda d: cfg["vm"] in main_text(d), 15, "the group's VM on its page")
        a11y(d, "group at the replica site")
        js(d, """window.ferryNoReload = 'still here';
            window.ferrySteps = [];
            new MutationObserver(() => {
                const rows = document.querySelectorAll('#steps tbody tr[data-key]');
                const status = document.getElementById('run-status');
                const seen = window.ferrySteps.length ? window.ferrySteps[window.ferrySteps.length - 1].rows : -1;
                if (rows.length !== seen)
                    window.ferrySteps.push({rows: rows.length, status: status ? status.textContent : ''});
            }).observe(document.body, {childList: true, subtree: true});""")
        d.find_element(By.CSS_SELECTOR, "[data-action=failover-test]").click()
        wait(d, lambda d: js(d, "return location.hash").startswith("#/run/"), 15, "the run's page")
        run_id = int(js(d, "return location.hash").split("/")[-1])
        values["test_run"] = run_id
        check(True, "at the replica site, Test failover on the group page starts a run and opens its page",
              f"run {run_id}")
        wait(d, lambda d: "running" not in d.find_element(By.ID, "run-status").text and
             d.find_element(By.ID, "run-status").text.strip(), 120, "the end of the test failover")
        status = d.find_element(By.ID, "run-status").text
        steps = js(d, """return [...document.querySelectorAll('#steps tbody tr[data-key]')].map((tr) =>
            [...tr.children].map((c) => c.textContent))""")
        seen = js(d, "return window.ferrySteps")
        shot(d, "test-failover-run")
        durations = all(row[5].endswith(("ms", " s", "min")) for row in steps)
        results = [row[2] for row in steps]
        check("completed" in status and steps and all(r == "ok" for r in results) and durations and
              js(d, "return window.ferryNoReload") == "still here",
              "the test failover's steps appear on the run page without a reload, each with its result and duration",
              f"{status}; {len(steps)} steps: " + "; ".join(f"{r[1]} {r[2]} {r[5]}" for r in steps)[:400] +
              f"; rows seen growing {[s['rows'] for s in seen]}")
        go(d, "#/events", "Events")
        wait(d, lambda d: len([tr for tr in d.find_elements(By.CSS_SELECTOR, "#events tbody tr")
                               if f"run {run_id}" in tr.text]) >= 2 * len(steps), 20, "the run's step events")
        streamed = [tr.text for tr in d.find_elements(By.CSS_SELECTOR, "#events tbody tr") if f"run {run_id}" in tr.text]
        shot(d, "events")
        check(js(d, "return window.ferryNoReload") == "still here",
              "its step events arrived on the live event stream (Events page, no reload)",
              f"{len(streamed)} events of run {run_id}, e.g. '{streamed[-1] if streamed else ''}'")
        go(d, f"#/group/{group}", f"Group {group}")
        wait(d, lambda d: "failover-cleanup" in action_names(d), 15, "the Cleanup button")
        d.find_element(By.CSS_SELECTOR, "[data-action=failover-cleanup]").click()
        wait(d, lambda d: js(d, "return location.hash") not in ("", f"#/group/{group}"), 15, "the cleanup's run page")
        cleanup_id = int(js(d, "return location.hash").split("/")[-1])
        values["cleanup_run"] = cleanup_id
        wait(d, lambda d: "running" not in d.find_element(By.ID, "run-status").text and
             d.find_element(By.ID, "run-status").text.strip(), 120, "the end of the cleanup")
        a11y(d, "run")
        status = d.find_element(By.ID, "run-status").text
        steps = js(d, """return [...document.querySelectorAll('#steps tbody tr[data-key]')].map((tr) =>
            [tr.children[1].textContent, tr.children[2].textContent])""")
        shot(d, "cleanup-run")
        check("completed" in status and steps and all(s[1] == "ok" for s in steps),
              "Clean up test failover: its run completes, its steps shown",
              f"run {cleanup_id}, {status}; " + "; ".join(" ".join(s) for s in steps))
        logout(d)

    # An admin: Audit and Tokens, and the typed confirmation of a failover.
    with Phase("admin", 4):
        login(d, primary, cfg["tokens"]["admin"])
        links = js(d, "return [...document.querySelectorAll('#nav a')].map((a) => a.textContent)")
        go(d, "#/audit", "Audit log")
        wait(d, lambda d: "/v1/groups/" in main_text(d), 15, "audit entries")
        refused = [tr.text for tr in d.find_elements(By.CSS_SELECTOR, "main tbody tr")
                   if f"/v1/groups/{group}/sync" in tr.text and "403" in tr.text]
        shot(d, "audit")
        a11y(d, "audit")
        check("Audit" in links and "Tokens" in links and refused,
              "an admin has the Audit and Tokens pages; the audit shows the viewer's refused sync",
              refused[0] if refused else "no refused sync in the audit page")
        go(d, "#/tokens", "Tokens")
        wait(d, lambda d: "operator" in main_text(d), 15, "the token list")
        shot(d, "tokens")
        a11y(d, "tokens")
        listed = js(d, "return [...document.querySelectorAll('main tbody th[scope=row]')].map((th) => th.textContent)")
        check(set(cfg["names"].values()) <= set(listed) and not any(
            t in d.page_source for t in cfg["tokens"].values()),
            "the tokens page lists the tokens and shows no secret", ", ".join(listed))
        go(d, f"#/group/{group}", f"Group {group}")
        wait(d, lambda d: "failover" in action_names(d), 15, "the admin's actions")
        runs_before = js_async(d, "return (await (await fetch('/v1/runs')).json()).runs.length;")
        d.find_element(By.CSS_SELECTOR, "[data-action=failover]").click()
        typed = wait(d, lambda d: d.find_element(By.ID, "confirm-typed"), 10, "the failover's question")
        confirm = d.find_element(By.CSS_SELECTOR, "dialog button[type=submit]")
        disabled_at_first = not confirm.is_enabled()
        typed.send_keys(group + "x")
        disabled_when_wrong = not confirm.is_enabled()
        typed.send_keys(Keys.BACKSPACE)
        enabled_when_right = confirm.is_enabled()
        shot(d, "failover-question")
        a11y(d, "failover question")
        typed.send_keys(Keys.ESCAPE)
        wait(d, lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"), 10, "the question to close")
        time.sleep(0.5)  # nothing should happen: give a wrongly started run the time to show
        runs_after = js_async(d, "return (await (await fetch('/v1/runs')).json()).runs.length;")
        check(disabled_at_first and disabled_when_wrong and enabled_when_right and runs_after == runs_before,
              "Failover asks for the group's name: disabled until it is typed exactly; Escape starts nothing",
              f"disabled at first {disabled_at_first}, with a wrong name {disabled_when_wrong}, "
              f"enabled with '{group}' {enabled_when_right}; runs {runs_before} -> {runs_after}")
        d.find_element(By.CSS_SELECTOR, "[data-action=reprotect]").click()
        wait(d, lambda d: d.find_element(By.ID, "confirm-typed"), 10, "the reprotect's question")
        reprotect_disabled = not d.find_element(By.CSS_SELECTOR, "dialog button[type=submit]").is_enabled()
        d.find_element(By.XPATH, "//dialog//button[text()='Cancel']").click()
        wait(d, lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"), 10, "the question to close")
        check(reprotect_disabled, "Reprotect asks for the group's name too; Cancel closes the question")

    # Over every page seen: landmarks and labels, and the browser's log.
    with Phase("pages", 2):
        bad = {page: problems for page, problems in a11y_results.items() if problems}
        check(not bad and len(a11y_results) >= 9,
              "every page has one main landmark with an h1, lang=en, labelled controls, table headers, a live region",
              f"{len(a11y_results)} pages: {', '.join(a11y_results)}" + (f"; problems: {bad}" if bad else ""))
        collect_log(d)
        # The expected refusals (401 before login, the wrong token, the forged 403s) are resource
        # errors; anything else (a CSP refusal, an exception) is a fault of the console.
        faults = [e["message"] for e in browser_log if e["level"] == "SEVERE" and
                  "Failed to load resource" not in e["message"]]
        csp = [e["message"] for e in browser_log if "Content Security Policy" in e["message"]]
        check(not faults and not csp, "no script error and no Content-Security-Policy refusal in the browser's log",
              "; ".join((faults + csp)[:3])[:500])


def main():
    d = None
    try:
        d = browser()
        d.set_page_load_timeout(30)
        run(d)
    except Exception as error:
        diag(f"the browser stopped: {error}")
        diag(traceback.format_exc()[-1500:])
    finally:
        while printed < CHECKS:
            check(False, "not reached (the browser stopped)")
        if d is not None:
            collect_log(d)
            try:
                d.quit()
            except Exception:
                pass
        with open(cfg["values"], "w") as out:
            json.dump(values, out)
        for entry in browser_log:
            if entry["level"] in ("SEVERE", "WARNING"):
                diag(f"browser: {entry['level']} {entry['message'][:300]}")


main()
