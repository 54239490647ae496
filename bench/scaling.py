"""Dead-office recovery with 1, 2 and 4 state workers: does adding workers add throughput?

Each run recovers the same fleet through daphne and real workers; the
figure is applied subclouds/s from the first POST until nothing is pending.
"""

import argparse
import sys

from . import harness
from .dead_office import recover


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev bench scaling", description=__doc__)
    parser.add_argument("--subclouds", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    harness.setup_django()
    rates = {}
    for workers in args.workers:
        _, figures = recover(args.subclouds, workers)
        rates[workers] = figures
    base = rates[args.workers[0]]["applied_subclouds_per_s"]
    rows = [("subclouds", args.subclouds, "")]
    for workers, figures in rates.items():
        rate = figures["applied_subclouds_per_s"]
        target = ">= 1.5x one" if workers == 2 else ""
        rows.append((f"{workers} worker(s): applied subclouds/s", rate, ""))
        rows.append((f"{workers} worker(s): applied after last 202, s", figures["applied_after_last_202_online_s"], ""))
        rows.append((f"{workers} worker(s): ratio to {args.workers[0]}", rate / base, target))
    harness.report("scaling", rows, {"raw": {str(k): v for k, v in rates.items()}},
                   plot=("applied subclouds/s", {f"{w} worker(s)": f["applied_subclouds_per_s"] for w, f in rates.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
