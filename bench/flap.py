"""Flapping: 10% of the fleet changes availability every second while the rest stays steady.

Through real daphne and state workers, with a websocket client connected:
each second one bulk post flips the flapping subclouds (offline, then
online with every endpoint in sync, and so on). Figures: latency from each 202
to the websocket message showing that flip (p50/p99), and a check against the
acceptance log that the client saw every accepted flip of every flapping
subcloud, in acceptance order, with strictly increasing revisions.
"""

import argparse
import queue
import sys
import time

import httpx

from dcportal.processes import free_port

from . import harness
from .dead_office import ENDPOINT_TYPES, reset_fleet
from .live import FeedClient, percentile


def flip_body(name, status):
    availability = {"availability_status": status, "audit_fail_count": 0 if status == "online" else 2}
    endpoints = dict.fromkeys(ENDPOINT_TYPES, "in-sync") if status == "online" else {}
    return {"subcloud": name, "availability": availability, "endpoints": endpoints}


def accepted_flips(names):
    """Per subcloud, the availability of each accepted update, in sequence order (the acceptance log)."""
    from state.kinds import UpdateKind
    from state.models import StateUpdate

    flips = {n: [] for n in names}
    rows = (
        StateUpdate.objects.filter(subcloud__name__in=names, kind=UpdateKind.BULK)
        .order_by("id")
        .values_list("subcloud__name", "payload")
    )
    for name, payload in rows:
        flips[name].append(payload["availability"]["availability_status"])
    return flips


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev bench flap", description=__doc__)
    parser.add_argument("--subclouds", type=int, default=5000)
    parser.add_argument("--fraction", type=float, default=0.10)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    harness.setup_django()
    names = reset_fleet(args.subclouds)
    flapping = names[: max(1, int(len(names) * args.fraction))]
    token, reader = harness.issue_token("service"), harness.issue_token("reader")
    port = free_port()
    sent, latencies, seen = {}, [], {n: [] for n in flapping}
    revisions_increase = True
    with harness.Processes(harness.RESULTS / "logs") as procs:
        procs.daphne(port)
        procs.workers(args.workers)
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Auth-Token": token}, timeout=60)
        client = FeedClient(f"ws://127.0.0.1:{port}/ws/status/", reader)
        client.wait(lambda c: c.snapshots, 60, "snapshot")
        last_revision = client.revision
        wanted = set(flapping)

        def read_messages():
            nonlocal last_revision, revisions_increase
            while True:
                try:
                    (at, _), message = client.messages.get_nowait()
                except queue.Empty:
                    return
                if message["type"] == "snapshot":
                    continue
                revisions_increase &= message["revision"] > last_revision
                last_revision = message["revision"]
                for s in message.get("subclouds", []):
                    status = s.get("availability-status")
                    if status and s["name"] in wanted:
                        seen[s["name"]].append(status)
                        t202 = sent.pop((s["name"], len(seen[s["name"]])), None)
                        if t202 is not None:
                            latencies.append(at - t202)

        next_tick = time.perf_counter()
        for second in range(args.seconds):
            status = "offline" if second % 2 == 0 else "online"
            r = http.post("/v1.0/state/bulk", json={"updates": [flip_body(n, status) for n in flapping]})
            assert r.status_code == 202, r.text
            done = time.perf_counter()
            for n in flapping:
                sent[(n, second + 1)] = done  # the client's (second+1)-th availability message for n
            read_messages()
            next_tick += 1
            time.sleep(max(0.0, next_tick - time.perf_counter()))
        deadline = time.monotonic() + 30
        while sent and time.monotonic() < deadline:
            read_messages()
            time.sleep(0.02)
    accepted = accepted_flips(flapping)
    faithful = sum(seen[n] == accepted[n] for n in flapping)
    rows = [
        ("subclouds", args.subclouds, ""),
        ("flapping subclouds", len(flapping), ""),
        ("flips accepted", sum(len(v) for v in accepted.values()), ""),
        ("flips per second", len(flapping), ""),
        ("202 -> websocket p50, ms", percentile(latencies, 50) * 1000, ""),
        ("202 -> websocket p99, ms", percentile(latencies, 99) * 1000, ""),  # 250 ms is the steady-stream target (live)
        ("flips never seen", len(sent), "0"),
        ("subclouds seen exactly as the acceptance log", f"{faithful}/{len(flapping)}", "all"),
        ("revisions strictly increasing", "yes" if revisions_increase else "NO", "yes"),
    ]
    harness.report("flap", rows, plot=("202 -> websocket, ms", {
        "p50": percentile(latencies, 50) * 1000, "p99": percentile(latencies, 99) * 1000}))
    return 0 if faithful == len(flapping) and not sent and revisions_increase else 1


if __name__ == "__main__":
    sys.exit(main())
