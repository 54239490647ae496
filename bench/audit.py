"""The audit at scale: one cycle over N simulated subclouds, and a dead office found by the audit.

N subclouds (online, managed, in sync), each with its audit URL on a real
`simulate_subclouds` process; a real Celery worker and beat (audit tasks,
outbox delivery to the simulator's fake dcorch), real state workers and daphne.
1. cycle: audit cycles in which nothing changed: seconds per cycle, probes/s.
2. dead office: every simulated subcloud switched off at once; cycles run back
   to back (each triggered when the previous one ends, as with an interval
   shorter than a cycle); the time from the switch until the API lists every
   subcloud offline with its 280.001 alarm (two cycles are needed by the
   rules). Then all switched back on: the time until the API lists every
   subcloud online and in sync (one cycle), and until dcorch has been told.
With the default 20 s interval, add up to two intervals (offline) or one
(online) of waiting for the next cycle to these figures.
"""

import argparse
import os
import statistics
import sys
import threading
import time
import uuid

import httpx

from dcportal.processes import free_port

from . import harness
from .dead_office import reset_fleet


def run_cycle():
    """Trigger one cycle and wait for its figures."""
    import dcportal.celery  # noqa: F401  the app (and its broker): the project does not load it outside Celery
    from audit import cycle
    from audit.tasks import audit_cycle

    before = (cycle.last_cycle() or {}).get("token")
    audit_cycle.delay()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        figures = cycle.last_cycle()
        if figures and figures["token"] != before:
            return figures
        time.sleep(0.02)
    raise RuntimeError("no audit cycle finished within 300 s; see bench/results/logs/audit-worker.log")


class BackToBack(threading.Thread):
    """Cycles one after the other until stopped; keeps their figures."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stopping = threading.Event()
        self.cycles = []

    def run(self):
        while not self.stopping.is_set():
            self.cycles.append(run_cycle())

    def stop(self):
        self.stopping.set()
        self.join(timeout=300)


def wait_api(client, path, predicate, what, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(path)
        response.raise_for_status()
        if predicate(response.json()):
            return time.perf_counter()
        time.sleep(0.05)
    raise RuntimeError(f"{what}: not reached within {timeout} s")


def dead_office(client, sim, n):
    """Switch everything off, then on; returns the figures of both phases."""
    figures = {}
    for phase, action in (("offline", "dead-office"), ("online", "online")):
        cycles = BackToBack()
        sim.control(action=action, all=True)
        switched = time.perf_counter()
        cycles.start()
        if phase == "offline":
            wait_api(client, "/v1.0/subclouds?availability-status=online", lambda b: not b["subclouds"], "all offline")
            seen = wait_api(client, "/v1.0/faults?alarm_id=280.001", lambda b: len(b["faults"]) == n, "all alarmed")
        else:
            wait_api(client, "/v1.0/subclouds?availability-status=offline", lambda b: not b["subclouds"], "all online")
            seen = wait_api(client, "/v1.0/subclouds?sync_status=unknown", lambda b: not b["subclouds"], "in sync")
        cycles.stop()
        told = _wait_dcorch(sim, phase, n)
        figures[phase] = {"visible_s": seen - switched, "dcorch_told_s": told - switched, "cycles": len(cycles.cycles),
                          "cycle_seconds": [c["seconds"] for c in cycles.cycles]}
    return figures


def _wait_dcorch(sim, phase, n, timeout=300):
    """Until the fake dcorch has heard `phase` for every subcloud (its last notice per subcloud)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = {}
        for notice in sim.received("dcorch")["received"]:
            latest[notice["body"]["subcloud"]] = notice["body"]["availability_status"]
        if sum(v == phase for v in latest.values()) == n:
            return time.perf_counter()
        time.sleep(0.2)
    raise RuntimeError(f"dcorch was not told {phase} for all {n} subclouds within {timeout} s")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev bench audit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subclouds", type=int, default=5000)
    parser.add_argument("--cycles", type=int, default=3, help="idle cycles timed")
    parser.add_argument("--workers", type=int, default=2, help="state workers")
    parser.add_argument("--no-dead-office", action="store_true", help="only the idle cycles")
    args = parser.parse_args(argv)
    prefix = f"bench-audit-{uuid.uuid4().hex[:6]}:"
    os.environ["DCPORTAL_CELERY_PREFIX"] = prefix
    harness.setup_django()
    from dcportal.processes import CeleryProcess, Simulator
    from simulator.fleet import audit_url, receiver_url

    logs = harness.RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = []
    try:
        started.append(Simulator(args.subclouds, logs, harness.child_env(), prefix="bench").start())
        sim = started[0]
        reset_fleet(args.subclouds, first=1, audit_url=lambda name: audit_url(sim.url, name))
        env = harness.child_env(DCPORTAL_CELERY_PREFIX=prefix, DCPORTAL_AUDIT_INTERVAL=3600,
                                DCPORTAL_DCORCH_URL=receiver_url(sim.url, "dcorch"),
                                DCPORTAL_CERTMON_URL=receiver_url(sim.url, "certmon"))
        for role in ("worker", "beat"):
            started.append(CeleryProcess(role, logs, env, name=f"audit-{role}").start())
        token = harness.issue_token("reader")
        port = free_port()
        with harness.Processes(logs) as procs:
            procs.daphne(port)
            procs.workers(args.workers)
            idle = [run_cycle() for _ in range(args.cycles)]
            print(f"idle cycles, s: {', '.join(format(c['seconds'], '.2f') for c in idle)} "
                  f"(load average {harness.load_average():.2f})", flush=True)
            if args.no_dead_office:
                return 0
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Auth-Token": token}, timeout=120)
            office = dead_office(client, sim, args.subclouds)
    finally:
        for process in reversed(started):
            process.stop()

    seconds = statistics.median(c["seconds"] for c in idle)
    rows = [
        ("subclouds", args.subclouds, ""),
        ("audit cycle, nothing changed, s (median)", seconds, "well within the 20 s interval"),
        ("probes/s", args.subclouds / seconds, ""),
        ("dead office: switch -> all offline + 280.001 in the API, s", office["offline"]["visible_s"], "2 cycles"),
        ("dead office: cycles run until then", office["offline"]["cycles"], ""),
        ("dead office: switch -> dcorch told all offline, s", office["offline"]["dcorch_told_s"], ""),
        ("back on: switch -> all online + in sync in the API, s", office["online"]["visible_s"], "1 cycle"),
        ("back on: switch -> dcorch told all online, s", office["online"]["dcorch_told_s"], ""),
    ]
    harness.report("audit", rows, {"idle_cycles": idle, "dead_office": office})
    return 0


if __name__ == "__main__":
    sys.exit(main())
