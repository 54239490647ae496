"""Soak: a steady 200 updates/s for M minutes with a dashboard client connected.

Real daphne and state workers; the RSS of every process is sampled after a
warm-up and at the end (target: flat within 10% over 30 minutes), every
accepted update must be applied and seen, and the processes' logs must hold
no error.
"""

import argparse
import sys
from pathlib import Path

import httpx

from . import harness
from .dead_office import reset_fleet
from .live import FeedClient, steady


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev bench soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--subclouds", type=int, default=5000)
    parser.add_argument("--warmup", type=float, default=30, help="seconds of load before the first RSS sample")
    args = parser.parse_args(argv)
    harness.setup_django()
    names = reset_fleet(args.subclouds)
    token, reader = harness.issue_token("service"), harness.issue_token("reader")
    port = harness.free_port()
    log_dir = harness.RESULTS / "logs" / "soak"
    with harness.Processes(log_dir) as procs:
        procs.daphne(port)
        procs.workers(2)
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Auth-Token": token}, timeout=60)
        client = FeedClient(f"ws://127.0.0.1:{port}/ws/status/", reader)
        client.wait(lambda c: c.snapshots, 60, "snapshot")
        steady(client, http, names, args.rate, args.warmup)
        start_rss = {name: rss_kib(p.pid) for name, p in procs.procs.items()}
        latencies, _, lost = steady(client, http, names, args.rate, args.minutes * 60)
        end_rss = {name: rss_kib(p.pid) for name, p in procs.procs.items()}
        alive = all(p.poll() is None for p in procs.procs.values())
    errors = [line for f in log_dir.glob("*.log") for line in f.read_text(errors="replace").splitlines()
              if " ERROR " in line or "Traceback" in line]
    rows = [
        ("minutes", args.minutes, ""),
        (f"updates posted at {args.rate}/s", int(args.rate * args.minutes * 60), ""),
        ("distinct (subcloud, status) changes matched on the websocket", len(latencies), ""),
    ]
    for name in start_rss:
        growth = (end_rss[name] - start_rss[name]) / start_rss[name] * 100
        rows.append((f"{name}: RSS start / end MiB", f"{start_rss[name] / 1024:.0f} / {end_rss[name] / 1024:.0f}", ""))
        rows.append((f"{name}: RSS growth %", growth, "<= 10%"))
    rows += [
        ("updates never seen on the websocket", lost, "0"),
        ("processes alive at the end", "yes" if alive else "NO", "yes"),
        ("error lines in the logs", len(errors), "0"),
    ]
    harness.report("soak", rows, {"errors": errors[:50], "rss_start_kib": start_rss, "rss_end_kib": end_rss})
    return 0 if alive and not lost and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
