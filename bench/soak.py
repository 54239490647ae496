"""Soak: the whole system under a steady load for M minutes, with a dashboard client connected.

Real daphne and two state workers take a steady 200 updates/s through the API
(bulk posts every 100 ms) while a websocket client watches; meanwhile the real
Celery audit worker and beat probe a second, simulated fleet every audit
interval, with the simulator's weather (outages, drifts, flaps) so the audit
sends real changes and the outbox delivers real notices to its fake dcorch.
The RSS of every process (with its children: the Celery worker's pool) is
sampled after a warm-up and at the end (target: flat within 10% over 30
minutes); every accepted update must be applied and seen, and the processes'
logs must hold no error.
"""

import argparse
import re
import sys
import time
from pathlib import Path

import httpx

from dcportal.processes import free_port

from . import harness
from .dead_office import reset_fleet
from .live import FeedClient, steady

ERROR_LINE = re.compile(r"\bERROR\b|Traceback|CRITICAL")


def tree_rss_kib(pid):
    """VmRSS of a process and all its descendants, in KiB."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev bench soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--subclouds", type=int, default=5000)
    parser.add_argument("--audited", type=int, default=1000, help="simulated subclouds the Celery audit probes meanwhile")
    parser.add_argument("--audit-interval", type=float, default=20.0)
    parser.add_argument("--chaos", type=float, default=2.0, help="seconds between two simulator weather events")
    parser.add_argument("--warmup", type=float, default=60, help="seconds of load before the first RSS sample")
    args = parser.parse_args(argv)
    harness.setup_django()
    from state.models import Outbox

    names = reset_fleet(args.subclouds)
    token, reader = harness.issue_token("service"), harness.issue_token("reader")
    port = free_port()
    log_dir = harness.RESULTS / "logs" / "soak"
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("*.log"):
        old.unlink()
    with harness.RestOfDevUp(log_dir, args.audited, args.chaos, args.audit_interval, prefix="soak") as rest:
        sim = rest.sim
        with harness.Processes(log_dir) as procs:
            procs.daphne(port)
            procs.workers(2)
            pids = {**{name: p.proc.pid for name, p in procs.procs.items()}, **rest.pids()}
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Auth-Token": token}, timeout=60)
            client = FeedClient(f"ws://127.0.0.1:{port}/ws/status/", reader)
            client.wait(lambda c: c.snapshots, 60, "snapshot")
            posted = {}
            steady(client, http, names, args.rate, args.warmup, posted)
            start_rss = {name: tree_rss_kib(pid) for name, pid in pids.items()}
            dcorch_before, started = sim.received("dcorch")["count"], time.monotonic()
            latencies, _, lost = steady(client, http, names, args.rate, args.minutes * 60, posted)
            end_rss = {name: tree_rss_kib(pid) for name, pid in pids.items()}
            dcorch_told = sim.received("dcorch")["count"] - dcorch_before
            elapsed = time.monotonic() - started
            alive = all(p.alive() for p in procs.procs.values()) and rest.alive()
            undelivered = Outbox.objects.filter(delivered_at__isnull=True).count()
    errors = [line for f in log_dir.glob("*.log") for line in f.read_text(errors="replace").splitlines()
              if ERROR_LINE.search(line)]
    rows = [
        ("minutes", args.minutes, ""),
        (f"updates posted at {args.rate}/s", int(args.rate * args.minutes * 60), ""),
        ("updates seen on the websocket, in order per subcloud", len(latencies), ""),
        (f"audited subclouds (cycle every {args.audit_interval:g} s, weather every {args.chaos:g} s)", args.audited, ""),
        ("dcorch notices delivered per minute", dcorch_told / elapsed * 60, ""),
        ("outbox rows not yet delivered at the end", undelivered, ""),
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
