"""Worker scaling: how fast do 1, 2 and 4 state workers apply a dead-office recovery backlog?

To measure the workers and not the intake (one daphne process), the workers
are started and idle first; then the recovery of every subcloud (back online,
7 endpoints in sync, offline alarm cleared) is accepted in one intake
transaction, which rings one doorbell, and the clock runs until nothing is
pending. On a 2-core machine PostgreSQL shares the cores with the workers,
so the ceiling is the machine, not the worker count.
"""

import argparse
import sys
import time

from . import harness
from .dead_office import online_body, reset_fleet, wait_applied


def backlog_seconds(n, workers):
    """Seconds from committing n subclouds' recovery to all applied, with `workers` workers."""
    from django.db import connection

    from state import intake
    from state.kinds import UpdateKind
    from subclouds.models import Subcloud

    names = reset_fleet(n)
    with connection.cursor() as cur:  # all offline with the alarm, as after the dead-office event
        cur.execute("UPDATE subclouds_subcloud SET availability_status = 'offline'")
        cur.execute("UPDATE subclouds_endpointstatus SET sync_status = 'unknown'")
        cur.execute(
            "INSERT INTO subclouds_fault (uuid, alarm_id, entity_instance_id, severity, reason_text, service_affecting,"
            " subcloud_id, subcloud_name, raised_at) SELECT gen_random_uuid(), '280.001', 'subcloud=' || name,"
            " 'critical', name || ' is offline', true, id, name, now() FROM subclouds_subcloud"
        )
    ids = dict(Subcloud.objects.values_list("name", "id"))
    rows = [(ids[name], {k: v for k, v in online_body(name).items() if k != "subcloud"}) for name in names]
    with harness.Processes(harness.RESULTS / "logs") as procs:
        procs.workers(workers)
        time.sleep(3)  # started and idle
        started = time.perf_counter()
        intake.accept(UpdateKind.BULK, rows)
        finished = wait_applied(n, f"{workers} worker(s)")
    return finished - started


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev bench scaling", description=__doc__)
    parser.add_argument("--subclouds", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    harness.setup_django()
    seconds = {w: backlog_seconds(args.subclouds, w) for w in args.workers}
    rates = {w: args.subclouds / s for w, s in seconds.items()}
    base = rates[args.workers[0]]
    rows = [("subclouds in the backlog", args.subclouds, "")]
    for workers, rate in rates.items():
        rows.append((f"{workers} worker(s): seconds to apply everything", seconds[workers], ""))
        rows.append((f"{workers} worker(s): applied subclouds/s", rate, ""))
        rows.append((f"{workers} worker(s): ratio to {args.workers[0]}", rate / base, ">= 1.5x" if workers == 2 else ""))
    harness.report("scaling", rows, {"seconds": {str(k): v for k, v in seconds.items()}},
                   plot=("applied subclouds/s", {f"{w} worker(s)": r for w, r in rates.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
