"""Dead-office recovery through the real API and workers, against the original's approach.

N subclouds (online, managed, in sync) all go offline, then all come back
with 7 endpoints each, posted to /v1.0/state/bulk in batches of 1,000 and
applied by real `runworker dcmanager-state` processes. In the same run and on
the same database, a baseline applies the same recovery the way the original
did: one transaction per subcloud-endpoint message (availability, then each
endpoint, each locking the subcloud row), with as many processes as workers.
"""

import argparse
import sys
import time

import httpx
from tqdm import tqdm

from dcportal.processes import free_port
from subclouds.choices import ENDPOINT_TYPES

from . import cpu, harness


def reset_fleet(n, first=0, audit_url=None):
    """N subclouds bench<first>.., online, managed, every endpoint in sync, no alarms (set directly: setup, not measured).

    Empties the state tables first; audit_url(name), when given, makes them probed by the audit.
    """
    from django.db import connection, transaction

    from state.models import Outbox, StateChange, StateUpdate, WorkerHeartbeat
    from subclouds.models import EndpointStatus, Fault, Subcloud

    with transaction.atomic(), connection.cursor() as cur:
        for model in (StateUpdate, StateChange, Outbox, Fault, EndpointStatus, Subcloud, WorkerHeartbeat):
            cur.execute(f"TRUNCATE {model._meta.db_table} CASCADE")
    return add_fleet([f"bench{i}" for i in range(first, first + n)], audit_url)


def add_fleet(names, audit_url=None):
    """Subclouds with these names, online, managed, in sync; returns the names."""
    from django.db import connection, transaction

    from subclouds.models import EndpointStatus, Subcloud

    with transaction.atomic():
        subclouds = Subcloud.objects.bulk_create(
            Subcloud(name=name, availability_status="online", management_state="managed",
                     audit_url=audit_url(name) if audit_url else None)
            for name in names
        )
        EndpointStatus.objects.bulk_create(
            EndpointStatus(subcloud=s, endpoint_type=e, sync_status="in-sync") for s in subclouds for e in ENDPOINT_TYPES
        )
    # Fresh statistics, hint bits and visibility map, as a long-running database's autovacuum leaves them:
    # without the VACUUM the first phase after a bulk load sets the hint bit of every row it reads (dirtying
    # and writing each page again), which no real fleet pays (at 50,000, two workers in process: 10.5 s -> 6.4 s).
    with connection.cursor() as cur:
        cur.execute(f"VACUUM ANALYZE {Subcloud._meta.db_table}, {EndpointStatus._meta.db_table}")
    return [s.name for s in subclouds]


def pending():
    from state.models import StateUpdate

    return StateUpdate.objects.filter(applied_at__isnull=True).count()


def post_bulk(client, names, body_for):
    """POST every subcloud's update in batches of 1,000; returns (seconds, time of the last 202)."""
    started = time.perf_counter()
    for i in range(0, len(names), 1000):
        r = client.post("/v1.0/state/bulk", json={"updates": [body_for(n) for n in names[i:i + 1000]]})
        r.raise_for_status()
        assert r.status_code == 202, r.text
    last_202 = time.perf_counter()
    return last_202 - started, last_202


def wait_applied(total, label):
    with tqdm(total=total, desc=label, unit="upd", leave=False, disable=None) as bar:
        deadline = time.monotonic() + 600
        left = pending()
        while left and time.monotonic() < deadline:
            time.sleep(0.02)
            now = pending()
            bar.update(left - now)
            left = now
    if left:
        raise RuntimeError(f"{left} updates still pending after 600 s")
    return time.perf_counter()


def offline_body(name):
    return {"subcloud": name, "availability": {"availability_status": "offline", "audit_fail_count": 2}}


def online_body(name):
    return {"subcloud": name, "availability": {"availability_status": "online", "audit_fail_count": 0},
            "endpoints": dict.fromkeys(ENDPOINT_TYPES, "in-sync")}


def settle(timeout=120):
    """Wait until the audit has delivered every outbox notice (seconds waited).

    A dead office stays dead for minutes, so its recovery does not start while the notices of its going
    offline (5,000 POSTs to dcorch) are still being delivered; without this the recovery measured
    competed with the previous phase's tail (BENCHMARKS.md, issue 13).
    """
    from state.models import Outbox

    started = time.perf_counter()
    while Outbox.objects.filter(delivered_at__isnull=True).exists():
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"outbox not delivered after {timeout} s")
        time.sleep(0.1)
    return time.perf_counter() - started


def run_ours(client, names, feed=None, meter=None):
    """Both phases; seconds of intake and from the last 202 until nothing is pending (and, with a websocket
    client `feed` (live.FeedClient), until it has seen every change).

    meter: a cpu.CpuMeter; each phase's CPU seconds per process (first POST to all applied, or to all seen
    with a feed) go to figures["cpu_offline"] / figures["cpu_online"].
    """
    from .live import all_seen

    if meter:
        meter.start()
    intake_off, last_off = post_bulk(client, names, offline_body)
    done_off = wait_applied(len(names), "offline")
    figures = {"intake_offline_s": intake_off, "applied_after_last_202_offline_s": done_off - last_off}
    if feed is not None:
        figures["seen_after_last_202_offline_s"] = feed.wait(all_seen(names, "offline"), 120, "all offline") - last_off
    if meter:
        figures["cpu_offline"] = meter.stop()
    if feed is not None:  # the rest of ./dev up runs: its audit delivers the offline notices
        figures["settled_before_online_s"] = settle()
    if meter:
        meter.start()
    intake_on, last_on = post_bulk(client, names, online_body)
    done_on = wait_applied(len(names), "online")
    figures.update(intake_online_s=intake_on, applied_after_last_202_online_s=done_on - last_on)
    if feed is not None:
        seen = feed.wait(all_seen(names, "online", "in-sync"), 120, "all back online and in sync")
        figures["seen_after_last_202_online_s"] = seen - last_on
    if meter:
        figures["cpu_online"] = meter.stop()
    return figures


# -- baseline: one transaction per subcloud-endpoint message ---------------------


def _baseline_worker(names):
    """The original's shape: lock the subcloud row per message, one message per endpoint, via the ORM."""
    from django.db import transaction
    from django.utils import timezone

    from subclouds.models import EndpointStatus, Fault, Subcloud

    for name in names:
        with transaction.atomic():
            sc = Subcloud.objects.select_for_update().get(name=name)
            sc.availability_status = "online"
            sc.save(update_fields=["availability_status"])
            Fault.objects.filter(alarm_id="280.001", entity_instance_id=f"subcloud={name}", cleared_at__isnull=True).update(
                cleared_at=timezone.now())
        for endpoint in ENDPOINT_TYPES:
            with transaction.atomic():
                Subcloud.objects.select_for_update().get(name=name)
                row = EndpointStatus.objects.get(subcloud__name=name, endpoint_type=endpoint)
                row.sync_status = "in-sync"
                row.save(update_fields=["sync_status"])
                Fault.objects.filter(alarm_id="280.002", entity_instance_id=f"subcloud={name}.resource={endpoint}",
                                     cleared_at__isnull=True).update(cleared_at=timezone.now())


def run_baseline(names, processes):
    """Seconds the original's approach takes to bring `names` back online, with `processes` processes."""
    from subclouds.models import EndpointStatus, Subcloud

    Subcloud.objects.filter(name__in=names).update(availability_status="offline")
    EndpointStatus.objects.filter(subcloud__name__in=names).update(sync_status="unknown")
    return harness.run_timed(_baseline_worker, [names[i::processes] for i in range(processes)])


def recover(n, workers, batch=None, dev_up=False):
    """Fleet of n, all offline then all back with 7 endpoints, through daphne and `workers` real workers.

    dev_up: as the issue measures it, with the rest of `./dev up` running alongside (harness.RestOfDevUp)
    and a websocket client counting the changes it sees.
    """
    import contextlib

    from .live import FeedClient

    names = reset_fleet(n)
    token = harness.issue_token("service")
    reader = harness.issue_token("reader")
    port = free_port()
    log_dir = harness.RESULTS / "logs"
    with contextlib.ExitStack() as stack:
        if dev_up:
            rest = stack.enter_context(harness.RestOfDevUp(log_dir))
        procs = stack.enter_context(harness.Processes(log_dir))
        procs.daphne(port)
        procs.workers(workers, batch)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Auth-Token": token}, timeout=120)
        feed = None
        if dev_up:
            feed = FeedClient(f"ws://127.0.0.1:{port}/ws/status/", reader)
            feed.wait(lambda c: c.snapshots, 60, "snapshot")
            time.sleep(2)  # the audit's first cycle and the simulator are under way, as in a running ./dev up
        pids = {name: p.proc.pid for name, p in procs.procs.items()}
        if dev_up:
            pids.update(rest.pids())
        figures = run_ours(client, names, feed, cpu.CpuMeter(pids, harness.BENCH_DB))
    from subclouds.models import Subcloud

    online = Subcloud.objects.filter(name__in=names, availability_status="online").count()
    if online != n:
        raise RuntimeError(f"only {online} of {n} subclouds online after recovery")
    figures["applied_subclouds_per_s"] = n / (figures["intake_online_s"] + figures["applied_after_last_202_online_s"])
    return names, figures


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev bench dead-office", description=__doc__)
    parser.add_argument("--subclouds", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-sample", type=int, default=500,
                        help="subclouds the baseline recovers (its rate is per subcloud, so a sample suffices)")
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--alone", action="store_true",
                        help="without the rest of ./dev up (audit, beat, simulator) and the websocket client")
    args = parser.parse_args(argv)
    harness.setup_django()

    names, ours = recover(args.subclouds, args.workers, dev_up=not args.alone)
    pgbench = harness.pgbench_tps(clients=2, seconds=args.pgbench_seconds)
    load = harness.load_average()
    sample = names[: args.baseline_sample]
    baseline_s = run_baseline(sample, args.workers)

    n = args.subclouds
    endpoint_updates = n * len(ENDPOINT_TYPES)
    ours_rate = ours["applied_subclouds_per_s"]
    baseline_rate = len(sample) / baseline_s
    rows = [
        ("subclouds", n, ""),
        ("state workers", args.workers, ""),
        ("rest of ./dev up running (audit, beat, simulator)", "no" if args.alone else "yes", ""),
        ("intake, endpoint updates/s (online phase)", endpoint_updates / ours["intake_online_s"], ">= 20,000"),
        ("intake seconds (online phase)", ours["intake_online_s"], ""),
        ("applied after last 202, s (offline phase)", ours["applied_after_last_202_offline_s"], ""),
        ("applied after last 202, s (online phase)", ours["applied_after_last_202_online_s"], "<= 3 s"),
        ("applied subclouds/s (first POST to all applied)", ours_rate, ""),
        (f"baseline subclouds/s ({len(sample)} subclouds, 8 tx each)", baseline_rate, ""),
        ("ratio ours / baseline", ours_rate / baseline_rate, ">= 5x"),
        ("first POST to all applied, s (online phase)", n / ours_rate, "<= 1 s"),
    ]
    seen_rate = ours_rate
    if not args.alone:
        seen_s = ours["intake_online_s"] + ours["seen_after_last_202_online_s"]
        seen_rate = n / seen_s
        rows += [
            ("websocket: all offline seen after last 202, s", ours["seen_after_last_202_offline_s"], ""),
            ("then waited for the offline notices to be delivered, s", ours["settled_before_online_s"],
             "not counted"),
            ("websocket: first POST to all seen, s (online phase)", seen_s, "<= 1 s"),
            ("websocket: seen subclouds/s (first POST to all seen)", seen_rate, ""),
        ]
    rows += [
        ("pgbench, 2 clients, lock + 1 endpoint + subcloud per tx: tx/s", pgbench, "floor"),
        (f"ratio ours ({'seen' if not args.alone else 'applied'} subclouds/s) / pgbench (tx/s)", seen_rate / pgbench,
         ">= 2x"),
        ("load average (1 min) after the recovery", load, "shared machine"),
    ]
    rows += cpu.rows(ours["cpu_online"], "online phase, first POST to all " + ("applied" if args.alone else "seen"))
    harness.report("dead-office", rows, {"raw": ours, "baseline_seconds": baseline_s, "pgbench_tps": pgbench},
                   plot=("applied subclouds/s", {"dcportal": ours_rate, "baseline (1 tx / message)": baseline_rate}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
