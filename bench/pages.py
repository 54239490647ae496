"""Pages, the REST list and the fleet-wide admin commands at 5,000 and 50,000 subclouds (issue 13, items 2-4).

Each size: a fleet seeded by two INSERT ... SELECTs (raw_fleet), daphne and 2 state workers. Printed next to
a floor measured in the same run:
- GET /v1.0/subclouds (the whole list) against an empty-page fetch (limit=1) on the same connection;
- overview and subclouds page, navigation -> interactive in a fresh headless Chromium (no cache; the session
  cookie is planted, so nothing was loaded before), against the page's HTML alone (domcontentloaded) and an
  empty fetch from the page;
- filter and sort latency (action -> the next window rendered), against the round trip of an unchanged view;
- at --flood sizes: the longest main-thread task (Long Tasks API) while a dead-office flood of every subcloud
  (offline, then back online in sync) arrives through /v1.0/state/bulk, applied by the 2 workers; and the same
  tasks in a Chromium trace of the flood, each with its CPU time (script, and style/layout/paint), so the page's
  own cost shows apart from the time it waited for one of the machine's cores;
- the admin commands that walk the fleet (subcloud list --json, export_fleet, import_fleet --dry-run, state_stats, healthcheck).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

from dcportal.processes import free_port

from . import harness

CHROMIUM = "/usr/bin/chromium"

# Resolves once the next window has been applied and the table has rendered it (the frame after).
NEXT_WINDOW = """() => new Promise((resolve) => {
    let done = false;
    dcportal.live.on((kind) => {
        if (kind !== "window" || done) return;
        done = true;
        requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now())));
    });
})"""
# An unchanged view subscribed again: the round trip every filter or sort pays, its floor.
SAME_VIEW = "dcportal.live.subscribe(Object.assign({}, dcportal.live.view, {offset: 0}));"
FILTER_OFFLINE = """const el = document.getElementById("f-availability"); el.value = "offline";
                    el.dispatchEvent(new Event("input", {bubbles: true}));"""
FILTER_TEXT = """const el = document.getElementById("f-text"); el.value = "subcloud1999";
                 el.dispatchEvent(new Event("input", {bubbles: true}));"""
SORT_NAME = """document.querySelector('th[data-sort="name"] button').click();"""
SORT_AVAILABILITY = """document.querySelector('th[data-sort="availability-status"] button').click();"""
LONG_TASKS = """
    window.__longTasks = [];
    new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); })
        .observe({type: "longtask", buffered: true});
"""
EMPTY_FETCH = """async () => { const t0 = performance.now(); await (await fetch("/healthz")).text();
                               return performance.now() - t0; }"""


def raw_fleet(n):
    """n subclouds subcloud1.. (every 10th offline, every 7th unmanaged) and their endpoints, in two INSERT ... SELECTs."""
    from django.db import connection

    from subclouds.choices import ENDPOINT_TYPES
    from subclouds.models import EndpointStatus, Subcloud

    s, e = Subcloud._meta.db_table, EndpointStatus._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"""INSERT INTO {s} (name, region_name, description, location, software_version, management_state,
                                 availability_status, deploy_status, error_description, audit_fail_count,
                                 first_identity_sync_complete, openstack_installed, group_id, created_at)
                SELECT 'subcloud' || i, md5(i::text), 'Edge site ' || i, 'Ottawa', '24.09',
                       CASE WHEN i %% 7 = 0 THEN 'unmanaged' ELSE 'managed' END,
                       CASE WHEN i %% 10 = 0 THEN 'offline' ELSE 'online' END,
                       'complete', 'No errors present', 0, false, false, 1, now()
                FROM generate_series(1, %s) i""", [n])
        cur.execute(
            f"""INSERT INTO {e} (subcloud_id, endpoint_type, sync_status)
                SELECT s.id, t, CASE WHEN s.availability_status = 'online' THEN 'in-sync' ELSE 'unknown' END
                FROM {s} s, unnest(%s::text[]) t""", [list(ENDPOINT_TYPES)])
        cur.execute(f"ANALYZE {s}, {e}")
    return [f"subcloud{i}" for i in range(1, n + 1)]


def timed(page, action, settle_ms=300):
    """Milliseconds from `action` (a JS statement) to the next window rendered, measured in the page.

    Starts `settle_ms` after the previous message, as a person's next click would: a socket's messages are paced
    (DCPORTAL_WS_MIN_INTERVAL, 0.1 s), so actions fired back to back measure the pace, not the answer.
    """
    page.wait_for_timeout(settle_ms)
    return page.evaluate(f"""async () => {{
        const shown = ({NEXT_WINDOW})();
        const t0 = performance.now();
        {action}
        return (await shown) - t0;
    }}""")


def reset(n):
    from django.db import connection

    from state.models import Outbox, StateChange, StateUpdate, WorkerHeartbeat
    from subclouds.models import EndpointStatus, Fault, Subcloud

    with connection.cursor() as cur:
        for model in (StateUpdate, StateChange, Outbox, Fault, EndpointStatus, Subcloud, WorkerHeartbeat):
            cur.execute(f"TRUNCATE {model._meta.db_table} CASCADE")
    started = time.perf_counter()
    names = raw_fleet(n)
    return names, time.perf_counter() - started


def session_cookie(port):
    """A logged-in reader's session cookie, made server-side: the browser loads nothing before the measurement."""
    import uuid

    from django.contrib.auth import get_user_model
    from django.test import Client

    from accounts.roles import set_role

    user = get_user_model().objects.create_user(f"bench-pages-{uuid.uuid4().hex[:6]}")
    set_role(user, "reader")
    client = Client()
    client.force_login(user)
    morsel = client.cookies["sessionid"]
    return {"name": "sessionid", "value": morsel.value, "url": f"http://127.0.0.1:{port}"}


class Browser:
    """A fresh headless Chromium per navigation: no cache, no warm process."""

    def __init__(self, pw, port, cookie):
        self.chromium = pw.chromium.launch(executable_path=CHROMIUM,
                                           args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        context = self.chromium.new_context(viewport={"width": 1600, "height": 1000}, base_url=f"http://127.0.0.1:{port}")
        context.add_cookies([cookie])
        context.add_init_script(LONG_TASKS)
        self.page = context.new_page()

    def navigate(self, path, ready):
        """(seconds to domcontentloaded, seconds to `ready` true), both from navigation."""
        started = time.perf_counter()
        self.page.goto(path, wait_until="domcontentloaded")
        bare = time.perf_counter() - started
        self.page.wait_for_function(f"() => {ready}", timeout=120000, polling="raf")
        return bare, time.perf_counter() - started

    def close(self):
        self.chromium.close()


def shown(text):
    return f"document.getElementById('shown').textContent === {text!r} && !!document.querySelector('tbody tr[data-key]')"


def pages(pw, port, cookie, n):
    f = {}
    b = Browser(pw, port, cookie)
    try:
        f["overview_html_s"], f["overview_s"] = b.navigate(
            "/portal/", f"document.getElementById('total-line').textContent === ({n}).toLocaleString() + ' subclouds'")
    finally:
        b.close()
    b = Browser(pw, port, cookie)
    try:
        f["subclouds_html_s"], f["subclouds_s"] = b.navigate("/portal/subclouds/", shown(f"{n} subclouds"))
        page = b.page
        f["fetch_floor_ms"] = min(page.evaluate(EMPTY_FETCH) for _ in range(5))
        f["view_floor_ms"] = min(timed(page, SAME_VIEW) for _ in range(3))
        f["filter_offline_ms"] = timed(page, FILTER_OFFLINE)
        page.wait_for_function(f"() => document.getElementById('shown').textContent.endsWith('of {n} subclouds')")
        f["filter_text_ms"] = timed(page, FILTER_TEXT)
        page.get_by_role("searchbox", name="Filter").fill("")
        page.get_by_label("Availability").select_option("")
        page.wait_for_function(f"() => {shown(f'{n} subclouds')}", timeout=60000)
        f["sort_name_ms"] = timed(page, SORT_NAME)
        f["sort_availability_ms"] = timed(page, SORT_AVAILABILITY)
        f["long_tasks_at_load_ms"] = max(page.evaluate("window.__longTasks"), default=0.0)
    finally:
        b.close()
    return f


# The trace's categories for the renderer's tasks: each RunTask with its wall (dur) and thread CPU (tdur) time,
# and inside it the script (FunctionCall, EvaluateScript) and rendering (style, layout, paint) events.
TRACE_CATEGORIES = ["toplevel", "devtools.timeline", "disabled-by-default-devtools.timeline"]
SCRIPT_EVENTS = {"FunctionCall", "EvaluateScript", "v8.evaluateModule"}
RENDER_EVENTS = {"UpdateLayoutTree", "Layout", "PrePaint", "Paint", "Layerize"}


def long_tasks_in_trace(trace, over_ms=50):
    """(The page's main-thread tasks longer than over_ms in a Chromium trace, longest first: each
    (wall ms, CPU ms, script CPU ms, style/layout/paint CPU ms); the longest task's (wall ms, CPU ms), over_ms or
    not; the most CPU time any one task used, ms).
    Wall time minus CPU time is time spent waiting for a core (the machine's contention), the CPU time is the
    page's own cost."""
    events = json.loads(trace)
    events = events["traceEvents"] if isinstance(events, dict) else events
    mains = {(e["pid"], e["tid"]) for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"}
    by_thread = {}
    for e in events:
        if e.get("ph") == "X" and (e["pid"], e["tid"]) in mains:
            by_thread.setdefault((e["pid"], e["tid"]), []).append(e)
    if not by_thread:
        return [], (0.0, 0.0), 0.0
    spans = sorted(max(by_thread.values(), key=len), key=lambda e: (e["ts"], -e.get("dur", 0)))
    runs = [(e.get("dur", 0) / 1000, e.get("tdur", 0) / 1000) for e in spans if e["name"] == "RunTask"]
    longest, most_cpu = max(runs, default=(0.0, 0.0)), max((c for _, c in runs), default=0.0)
    tasks = []
    for task in spans:
        if task["name"] != "RunTask" or task.get("dur", 0) <= over_ms * 1000:
            continue
        end, script, render, outer = task["ts"] + task["dur"], 0, 0, {}
        for e in spans:
            if not task["ts"] <= e["ts"] < end or e is task:
                continue
            group = "script" if e["name"] in SCRIPT_EVENTS else "render" if e["name"] in RENDER_EVENTS else None
            # Count only the outermost event of a group (a FunctionCall inside a FunctionCall, a Paint in a Paint).
            if group is None or e["ts"] < outer.get(group, 0):
                continue
            outer[group] = e["ts"] + e.get("dur", 0)
            if group == "script":
                script += e.get("tdur", 0)
            else:
                render += e.get("tdur", 0)
        tasks.append((task["dur"] / 1000, task.get("tdur", 0) / 1000, script / 1000, render / 1000))
    return sorted(tasks, reverse=True), longest, most_cpu


def flood(pw, port, cookie, names, service):
    """Longest main-thread task while every subcloud goes offline and comes back (the dead-office flood)."""
    from .dead_office import offline_body, online_body, post_bulk, wait_applied

    b = Browser(pw, port, cookie)
    f = {}
    try:
        n = len(names)
        f["flood_page_s"] = b.navigate("/portal/subclouds/", shown(f"{n} subclouds"))[1]
        page = b.page
        page.evaluate("window.__longTasks = []")
        b.chromium.start_tracing(page=page, categories=TRACE_CATEGORIES)
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Auth-Token": service}, timeout=600)
        started = time.perf_counter()
        post_bulk(http, names, offline_body)
        wait_applied(n, "offline")
        page.wait_for_function("() => [...document.querySelectorAll('tbody tr[data-key] td:nth-child(3)')]"
                               ".every((td) => td.textContent === 'offline')", timeout=120000)
        post_bulk(http, names, online_body)
        wait_applied(n, "online")
        page.wait_for_function("() => [...document.querySelectorAll('tbody tr[data-key] td:nth-child(3)')]"
                               ".every((td) => td.textContent === 'online')", timeout=120000)
        f["flood_s"] = time.perf_counter() - started
        tasks = page.evaluate("window.__longTasks")
        f["flood_longest_task_ms"], f["flood_long_tasks"] = max(tasks, default=0.0), len(tasks)
        traced = long_tasks_in_trace(b.chromium.stop_tracing())
        f["flood_traced_tasks"], f["flood_traced_longest_ms"], f["flood_most_task_cpu_ms"] = traced
    finally:
        b.close()
    return f


def rest_list(port, n, token):
    reader = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Auth-Token": token}, timeout=600)
    floors, lists = [], []
    for _ in range(3):
        started = time.perf_counter()
        reader.get("/v1.0/subclouds", params={"limit": 1}).raise_for_status()
        floors.append(time.perf_counter() - started)
        started = time.perf_counter()
        r = reader.get("/v1.0/subclouds")
        lists.append(time.perf_counter() - started)
        assert r.status_code == 200 and len(r.json()["subclouds"]) == n
    return {"list_s": min(lists), "list_runs_s": lists, "list_floor_s": min(floors), "list_mb": len(r.content) / 1e6}


def commands(n):
    """Seconds of the admin commands that walk the fleet, each its own process as an operator runs it."""
    env = harness.child_env()
    f = {}
    with tempfile.TemporaryDirectory() as tmp:
        export = os.path.join(tmp, "fleet.json")
        runs = {
            "subcloud list --json": ["subcloud", "list", "--json"],
            "export_fleet": ["export_fleet", "--output", export],
            "import_fleet --dry-run (the export)": ["import_fleet", export, "--dry-run", "--no-progress"],
            "state_stats": ["state_stats"],
            "healthcheck": ["healthcheck"],
            "check (no command: the floor)": ["check"],
        }
        for label, args in runs.items():
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "manage.py", *args], cwd=harness.ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            f[label] = (time.perf_counter() - started, done.returncode, done.stderr.strip()[-300:])
    return f


def one_size(n, flood_sizes, with_commands):
    from playwright.sync_api import sync_playwright

    names, seeded = reset(n)
    service, operator = harness.issue_token("service"), harness.issue_token("operator")
    port = free_port()
    f = {"seed_s": seeded}
    with harness.Processes(harness.RESULTS / "logs") as procs, sync_playwright() as pw:
        procs.daphne(port)
        procs.workers(2)
        f |= rest_list(port, n, operator)
        cookie = session_cookie(port)
        f |= pages(pw, port, cookie, n)
        if n in flood_sizes:
            f |= flood(pw, port, cookie, names, service)
    if with_commands:
        f["commands"] = commands(n)
    f["load_average"] = harness.load_average()
    return f


def rows_of(n, f):
    r = [
        (f"{n:,}: GET /v1.0/subclouds, s ({f['list_mb']:.1f} MB; floor: limit=1 {f['list_floor_s'] * 1000:.0f} ms)",
         f"{f['list_s']:.2f} (runs {' / '.join(f'{x:.2f}' for x in f['list_runs_s'])})", "<= 2 s at 50,000"),
        (f"{n:,}: overview interactive from navigation, s (floor: its HTML {f['overview_html_s']:.2f} s)",
         f["overview_s"], "<= 1 s"),
        (f"{n:,}: subclouds page interactive from navigation, s (floor: its HTML {f['subclouds_html_s']:.2f} s)",
         f["subclouds_s"], "<= 1 s"),
        (f"{n:,}: floor: empty fetch from the page / unchanged view round trip, ms",
         f"{f['fetch_floor_ms']:.0f} / {f['view_floor_ms']:.0f}", ""),
        (f"{n:,}: filter availability / text, ms", f"{f['filter_offline_ms']:.0f} / {f['filter_text_ms']:.0f}",
         "<= 100 ms"),
        (f"{n:,}: sort name / availability, ms", f"{f['sort_name_ms']:.0f} / {f['sort_availability_ms']:.0f}",
         "<= 100 ms"),
        (f"{n:,}: longest main-thread task while loading and filtering, ms", f["long_tasks_at_load_ms"], ""),
    ]
    if "flood_longest_task_ms" in f:
        r += [
            (f"{n:,}: page interactive (flood run), s", f["flood_page_s"], "<= 1 s"),
            (f"{n:,}: longest main-thread task in the dead-office flood ({f['flood_s']:.1f} s, "
             f"{f['flood_long_tasks']} tasks > 50 ms), ms", f["flood_longest_task_ms"], "<= 50 ms"),
            (f"{n:,}: the same tasks traced (wall / CPU: script + style, layout, paint; the rest of the wall time "
             "waited for a core), ms",
             ", ".join(f"{w:.0f}/{c:.0f}: {s:.0f}+{r:.0f}" for w, c, s, r in f["flood_traced_tasks"][:6]) or "none", ""),
            (f"{n:,}: the longest traced task, over 50 ms or not (wall / CPU), ms",
             "{:.0f} / {:.0f}".format(*f["flood_traced_longest_ms"]), ""),
            (f"{n:,}: the most CPU time of any one main-thread task in the flood (the page's own cost), ms",
             f["flood_most_task_cpu_ms"], "<= 50 ms"),
        ]
    for label, (seconds, code, err) in f.get("commands", {}).items():
        r.append((f"{n:,}: ./dev manage {label}, s" + (f" (exit {code}: {err})" if code else ""), seconds, ""))
    r.append((f"{n:,}: load average (1 min)", f["load_average"], "shared machine"))
    return r


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev bench pages", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--flood", type=int, nargs="*", default=[5000], help="sizes that also get the flood")
    parser.add_argument("--no-commands", action="store_true", help="skip the admin commands")
    args = parser.parse_args(argv)
    os.environ.setdefault("DCPORTAL_CHANNEL_PREFIX", f"bench-{os.getpid()}")
    # Playwright's sync API keeps an event loop in this thread; the bench still reads the database from it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    harness.setup_django()
    results = {n: one_size(n, set(args.flood), not args.no_commands) for n in args.sizes}
    rows = [row for n, f in results.items() for row in rows_of(n, f)]
    harness.report("pages", rows, {"sizes": {str(n): f for n, f in results.items()},
                                   "mean_list_s": statistics.fmean(f["list_s"] for f in results.values())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
