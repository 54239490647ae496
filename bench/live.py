"""The live status feed under load: what a dashboard sees, and when.

A websocket client (and, with --page, the real subclouds page in headless
Chromium) is connected to a real daphne while real state workers apply:

1. a dead-office event and its recovery for every subcloud, posted to
   /v1.0/state/bulk in batches of 1,000: the time from the last 202 until the
   client has seen every change of the recovery;
2. a steady stream of endpoint updates (default 200 a second, in bulk posts of
   20 every 100 ms, each to other subclouds): the latency from each 202 to the
   websocket message that carries the change (p50, p99);
3. with --page: the page's initial load of every subcloud and the longest
   main-thread task (Chromium's long-task timing) during the flood.
"""

import argparse
import asyncio
import base64
import collections
import contextlib
import json
import os
import queue
import statistics
import sys
import threading
import time
from datetime import datetime
from urllib.parse import urlparse

import httpx

from dcportal.processes import free_port

from . import harness
from .dead_office import offline_body, online_body, post_bulk, reset_fleet, wait_applied
from .pages import shown


class FeedClient:
    """A /ws/status/ client on its own thread, tracking what it has seen; assembles parts."""

    def __init__(self, url, token):
        self.url, self.token = url, token
        self.messages = queue.Queue()  # ((perf_counter, wall clock) at arrival, message)
        self.availability, self.endpoints = {}, {}
        self.revision = 0
        self.snapshots = 0
        self.last_at = None
        self._parts = []
        self._lock = threading.Lock()
        self._waiter, self._waiter_at = None, None
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        asyncio.run(self._read())

    async def _read(self):
        """A minimal RFC 6455 client (this process already runs Twisted's autobahn, so not its asyncio one)."""
        parsed = urlparse(self.url)
        reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port, limit=2**26)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"X-Auth-Token: {self.token}\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"websocket handshake refused: {head[:200]!r}")
        message = b""
        while True:
            try:
                b0, b1 = await reader.readexactly(2)
            except asyncio.IncompleteReadError:
                return  # the server went away (end of the benchmark)
            size = b1 & 0x7F
            if size == 126:
                size = int.from_bytes(await reader.readexactly(2), "big")
            elif size == 127:
                size = int.from_bytes(await reader.readexactly(8), "big")
            payload = await reader.readexactly(size)
            opcode = b0 & 0x0F
            if opcode == 0x9:  # ping: answer with a masked pong
                mask = os.urandom(4)
                writer.write(bytes([0x8A, 0x80 | len(payload)]) + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))
                continue
            if opcode == 0x8:
                return
            message += payload
            if b0 & 0x80:
                self._received((time.perf_counter(), time.time()), json.loads(message))
                message = b""

    def _received(self, at, message):
        if message.get("parts"):
            self._parts.append(message)
            if message["part"] < message["parts"]:
                return
            whole = dict(self._parts[0])
            for key in ("subclouds", "faults", "faults_raised", "faults_cleared"):
                if key in whole:
                    whole[key] = [x for p in self._parts for x in p.get(key, [])]
            whole["last_change"] = {k: v for p in self._parts for k, v in p.get("last_change", {}).items()}
            message, self._parts = whole, []
        for s in message.get("subclouds", []):
            if "availability-status" in s:
                self.availability[s["name"]] = s["availability-status"]
            if "endpoint_sync_status" in s:
                self.endpoints[s["name"]] = {e["endpoint_type"]: e["sync_status"] for e in s["endpoint_sync_status"]}
        with self._lock:
            self.revision = message["revision"]
            self.snapshots += message["type"] == "snapshot"
            self.last_at = at[0]
            if self._waiter and self._waiter[0](self):
                self._waiter_at = at[0]
                self._waiter[1].set()
                self._waiter = None
        self.messages.put((at, message))

    def wait(self, predicate, timeout, label):
        """Block until predicate(self) holds; returns the arrival time of the message that made it hold.

        The predicate is checked on the client's thread after each message, so the time is exact even
        when this thread was busy meanwhile.
        """
        done = threading.Event()
        with self._lock:
            if predicate(self):
                return self.last_at
            self._waiter = (predicate, done)
        if not done.wait(timeout):
            raise RuntimeError(f"websocket client: {label} not seen within {timeout}s")
        return self._waiter_at

def all_seen(names, availability, endpoint_status=None):
    def check(client):
        return all(client.availability.get(n) == availability for n in names) and (
            endpoint_status is None
            or all(set(client.endpoints.get(n, {}).values()) == {endpoint_status} for n in names)
        )

    return check


def steady(client, http, names, rate, seconds, posted=None):
    """rate updates/s as bulk posts every 100 ms, each flipping a subcloud's dc-cert status.

    posted: {name: dc-cert status last posted}, to pass from one call to the next so that
    every update is a change (a no-op would never reach the websocket); the first flip of a
    subcloud is away from what the client's snapshot shows. Each subcloud's flips must reach
    the client in order; one the client never shows (skipped, or still missing 30 s after the
    last post) counts as never seen.
    Returns (seconds from each 202 to the websocket message with its change, seconds from the change's
    log time to that message: the feed's own share, updates never seen).
    """
    posted = {} if posted is None else posted
    while not client.messages.empty():  # only messages from now on count
        client.messages.get_nowait()
    per_post = max(1, rate // 10)
    sent = {}  # name -> deque of (status, perf_counter of its 202), oldest first
    latencies, feed_latencies = [], []
    skipped = 0

    def match():
        nonlocal skipped
        while True:
            try:
                (at, wall), message = client.messages.get_nowait()
            except queue.Empty:
                return
            for s in message.get("subclouds", []):
                flips = sent.get(s["name"])
                status = next((e["sync_status"] for e in s.get("endpoint_sync_status", [])
                               if e["endpoint_type"] == "dc-cert"), None)
                if not flips or status is None or all(st != status for st, _ in flips):
                    continue
                while flips[0][0] != status:
                    flips.popleft()
                    skipped += 1
                latencies.append(at - flips.popleft()[1])
                logged = datetime.strptime(message["last_change"][s["name"]] + "+0000", "%Y-%m-%d %H:%M:%S.%f%z")
                feed_latencies.append(wall - logged.timestamp())

    def waiting():
        return sum(len(flips) for flips in sent.values())

    cursor = 0
    next_post = time.perf_counter()
    stop = next_post + seconds
    while time.perf_counter() < stop:
        batch = [names[(cursor + i) % len(names)] for i in range(per_post)]
        cursor += per_post
        for n in batch:
            was = posted.get(n) or client.endpoints.get(n, {}).get("dc-cert")
            posted[n] = "in-sync" if was == "out-of-sync" else "out-of-sync"
        r = http.post("/v1.0/state/bulk", json={"updates": [{"subcloud": n, "endpoints": {"dc-cert": posted[n]}} for n in batch]})
        assert r.status_code == 202, r.text
        done = time.perf_counter()
        for n in batch:
            sent.setdefault(n, collections.deque()).append((posted[n], done))
        match()
        next_post += 0.1
        time.sleep(max(0.0, next_post - time.perf_counter()))
    deadline = time.monotonic() + 30
    while waiting() and time.monotonic() < deadline:
        match()
        time.sleep(0.01)
    return latencies, feed_latencies, skipped + waiting()


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def open_page(port, n):
    """The subclouds page in headless Chromium, logged in; returns (playwright objects, page, load seconds)."""
    import uuid

    from django.contrib.auth import get_user_model
    from playwright.sync_api import sync_playwright

    from accounts.roles import set_role

    username, password = f"bench-page-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    set_role(get_user_model().objects.create_user(username, password=password), "reader")
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                 args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
    page = browser.new_page(viewport={"width": 1600, "height": 1000}, base_url=f"http://127.0.0.1:{port}")
    page.add_init_script("""
        window.__longTasks = [];
        new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); })
            .observe({type: "longtask", buffered: true});
    """)
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/portal/")
    started = time.perf_counter()
    page.goto("/portal/subclouds/")
    # A function, not an expression: an expression is eval'd, which the pages' CSP (script-src 'self') refuses.
    page.wait_for_function(f"() => {shown(f'{n} subclouds')}", timeout=60000)
    loaded = time.perf_counter() - started
    page.evaluate("window.__longTasks = []")
    return (pw, browser), page, loaded


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev bench live", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subclouds", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=int, default=200, help="steady endpoint updates per second")
    parser.add_argument("--seconds", type=float, default=10, help="length of the steady phase")
    parser.add_argument("--page", action="store_true", help="also measure the real page in headless Chromium")
    parser.add_argument("--alone", action="store_true", help="without the rest of ./dev up (audit, beat, simulator)")
    args = parser.parse_args(argv)
    # Our own channel namespace: on a shared Redis, other checkouts' workers would answer our doorbells.
    os.environ.setdefault("DCPORTAL_CHANNEL_PREFIX", f"bench-{os.getpid()}")
    if args.page:
        # Playwright's sync API keeps an event loop in this thread; the bench still reads the database from it.
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    harness.setup_django()

    names = reset_fleet(args.subclouds)
    token = harness.issue_token("service")
    reader = harness.issue_token("reader")
    port = free_port()
    rows = [("subclouds", args.subclouds, ""), ("state workers", args.workers, ""),
            ("rest of ./dev up running (audit, beat, simulator)", "no" if args.alone else "yes", "")]
    log_dir = harness.RESULTS / "logs"
    with contextlib.ExitStack() as stack:
        fleet = args.subclouds  # what the page lists: the bench's subclouds and the audited simulated ones
        if not args.alone:
            fleet += stack.enter_context(harness.RestOfDevUp(log_dir)).audited
        procs = stack.enter_context(harness.Processes(log_dir))
        procs.daphne(port)
        procs.workers(args.workers)
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Auth-Token": token}, timeout=120)
        started = time.perf_counter()
        client = FeedClient(f"ws://127.0.0.1:{port}/ws/status/", reader)
        client.wait(lambda c: c.snapshots, 60, "snapshot")
        rows.append(("websocket snapshot received, s", time.perf_counter() - started, ""))
        browser = page = None
        if args.page:
            browser, page, loaded = open_page(port, fleet)
            rows.append(("page: subclouds table loaded, s", loaded, "<= 1 s"))

        _, last_off = post_bulk(http, names, offline_body)
        seen_off = client.wait(all_seen(names, "offline"), 120, "every subcloud offline")
        rows.append(("dead office: all offline seen after last 202, s", seen_off - last_off, ""))
        _, last_on = post_bulk(http, names, online_body)
        applied_on = wait_applied(len(names), "online")
        seen_on = client.wait(all_seen(names, "online", "in-sync"), 120, "every subcloud back online and in sync")
        rows.append(("recovery: all applied (workers) after last 202, s", applied_on - last_on, ""))
        rows.append(("recovery: every change seen after last 202, s", seen_on - last_on, "<= 3 s"))
        if page is not None:
            page.wait_for_function("() => [...document.querySelectorAll('tbody tr[data-key] td:nth-child(3)')]"
                                   ".every((td) => td.textContent === 'online')", timeout=60000)
            long_tasks = page.evaluate("window.__longTasks")
            rows.append(("page: longest main-thread task in the flood, ms", max(long_tasks, default=0.0), "<= 50 ms"))
            rows.append(("page: tasks over 50 ms in the flood", len(long_tasks), ""))

        latencies, feed_latencies, lost = steady(client, http, names, args.rate, args.seconds)
        rows += [
            (f"steady {args.rate}/s: updates measured", len(latencies), ""),
            ("steady: 202 -> websocket p50, ms", percentile(latencies, 50) * 1000, "<= 25 ms"),
            ("steady: 202 -> websocket p99, ms", percentile(latencies, 99) * 1000, "<= 100 ms"),
            ("steady: 202 -> websocket max, ms", max(latencies, default=float("nan")) * 1000, ""),
            ("steady: change logged -> websocket p50, ms", percentile(feed_latencies, 50) * 1000, ""),
            ("steady: change logged -> websocket p99, ms", percentile(feed_latencies, 99) * 1000, ""),
            ("steady: updates never seen", lost, "0"),
            ("load average (1 min) after the steady phase", harness.load_average(), "shared machine"),
        ]
        if browser is not None:
            browser[1].close()
            browser[0].stop()
    harness.report("live", rows, {"latency_mean_ms": statistics.fmean(latencies) * 1000 if latencies else None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
