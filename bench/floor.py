"""The machine's floor for this work: how fast can PostgreSQL apply one subcloud's recovery?

In the same run and database: raw psycopg (no ORM, one transaction per
subcloud: lock the row, set availability, set 7 endpoints, clear the alarm;
the statements in one round trip each, prepared), and the original's shape
through the ORM (one transaction per subcloud-endpoint message). Every figure
is also printed against our own dead-office rate measured in the same run.
"""

import argparse
import sys

from . import harness
from .dead_office import ENDPOINT_TYPES, recover, reset_fleet, run_baseline


def _raw_worker(names):
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"], dbname=db["NAME"],
                         password=db["PASSWORD"] or None, autocommit=True, prepare_threshold=0) as conn:
        for name in names:
            with conn.transaction():
                (sid,) = conn.execute("SELECT id FROM subclouds_subcloud WHERE name = %s FOR NO KEY UPDATE",
                                      [name]).fetchone()
                conn.execute("UPDATE subclouds_subcloud SET availability_status = 'online', audit_fail_count = 0 "
                             "WHERE id = %s", [sid])
                conn.execute("UPDATE subclouds_endpointstatus SET sync_status = 'in-sync' WHERE subcloud_id = %s", [sid])
                conn.execute("UPDATE subclouds_fault SET cleared_at = now() WHERE subcloud_id = %s "
                             "AND cleared_at IS NULL", [sid])


def raw_floor(names, processes):
    """Subclouds/s of raw psycopg, one transaction per subcloud, `processes` processes."""
    return len(names) / harness.run_timed(_raw_worker, [names[i::processes] for i in range(processes)])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev bench floor", description=__doc__)
    parser.add_argument("--subclouds", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=2, help="processes for each approach (= state workers)")
    parser.add_argument("--baseline-sample", type=int, default=500)
    args = parser.parse_args(argv)
    harness.setup_django()
    names, ours = recover(args.subclouds, args.processes)
    ours_rate = ours["applied_subclouds_per_s"]
    reset_fleet(args.subclouds)
    from subclouds.models import Subcloud

    Subcloud.objects.update(availability_status="offline")
    raw_rate = raw_floor(names, args.processes)
    sample = names[: args.baseline_sample]
    baseline_rate = len(sample) / run_baseline(sample, args.processes)
    rows = [
        ("subclouds", args.subclouds, ""),
        ("processes per approach", args.processes, ""),
        ("raw psycopg, 1 tx per subcloud: subclouds/s", raw_rate, "floor"),
        ("ORM, 1 tx per message (original): subclouds/s", baseline_rate, "baseline"),
        ("dcportal (HTTP intake + workers): subclouds/s", ours_rate, ""),
        ("dcportal / raw psycopg", ours_rate / raw_rate, ""),
        ("dcportal / original", ours_rate / baseline_rate, ">= 5x"),
        ("endpoint updates per subcloud", len(ENDPOINT_TYPES), ""),
    ]
    harness.report("floor", rows, {"raw": ours},
                   plot=("subclouds/s", {"raw psycopg": raw_rate, "original (ORM)": baseline_rate, "dcportal": ours_rate}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
