"""Fleet size: dead-office recovery and the list API at 500, 5,000 and 50,000 subclouds, cost per subcloud.

Each size: a fresh fleet (online, managed, in sync), daphne and 2 real workers;
all go offline, then all come back with 7 endpoints each, posted to
/v1.0/state/bulk in batches of 1,000 (as dead-office); then GET /v1.0/subclouds
(the whole list, dcmanager's) and one sorted page of 100. In the same run at each
size, pgbench (2 clients) of the per-subcloud transaction is the floor. Flat lines
in docs/bench/scale.png mean the cost per subcloud does not grow with the fleet.
"""

import argparse
import json
import os
import sys
import time

import httpx

from dcportal.processes import free_port

from . import cpu, harness
from .dead_office import reset_fleet, run_ours

PLOT = harness.ROOT / "docs" / "bench" / "scale.png"


def one_size(n, workers):
    names = reset_fleet(n)
    service, operator = harness.issue_token("service"), harness.issue_token("operator")
    port = free_port()
    with harness.Processes(harness.RESULTS / "logs") as procs:
        procs.daphne(port)
        procs.workers(workers)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Auth-Token": service}, timeout=600)
        meter = cpu.CpuMeter({name: p.proc.pid for name, p in procs.procs.items()}, harness.BENCH_DB)
        figures = run_ours(client, names, meter=meter)
        reader = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Auth-Token": operator}, timeout=600)
        reader.get("/v1.0/subclouds", params={"limit": 1}).raise_for_status()  # warm
        started = time.perf_counter()
        r = reader.get("/v1.0/subclouds")
        figures["list_s"] = time.perf_counter() - started
        assert r.status_code == 200 and len(r.json()["subclouds"]) == n
        figures["list_bytes"] = len(r.content)
        started = time.perf_counter()
        r = reader.get("/v1.0/subclouds", params={"limit": 100, "sort_key": "name", "marker": names[n // 2]})
        figures["page_s"] = time.perf_counter() - started
        assert r.status_code == 200 and r.json()["subclouds_links"]
    figures["pgbench_tps"] = harness.pgbench_tps(clients=2, seconds=5)
    figures["online_total_s"] = figures["intake_online_s"] + figures["applied_after_last_202_online_s"]
    figures["offline_total_s"] = figures["intake_offline_s"] + figures["applied_after_last_202_offline_s"]
    figures["load_average"] = harness.load_average()
    return figures


def plot(results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results)
    fig, ax = plt.subplots(figsize=(6.5, 3.8), dpi=110)
    series = {
        "recovery (online phase), first POST to all applied": "online_total_s",
        "going offline, first POST to all applied": "offline_total_s",
        "GET /v1.0/subclouds (the whole list)": "list_s",
    }
    for label, key in series.items():
        ax.plot(sizes, [results[n][key] / n * 1e6 for n in sizes], marker="o", label=label)
    ax.plot(sizes, [1e6 / results[n]["pgbench_tps"] for n in sizes], marker="s", linestyle="--", color="#9aa5b1",
            label="floor: pgbench, 1 tx per subcloud (2 clients)")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.set_xlabel("subclouds")
    ax.set_ylabel("µs per subcloud")
    ax.set_ylim(bottom=0)
    ax.set_title(f"cost per subcloud ({os.cpu_count()} cores, shared machine)")
    ax.legend(fontsize=7, loc="upper right")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT)
    plt.close(fig)
    return PLOT


def main(argv=None):
    parser = argparse.ArgumentParser(prog="./dev bench scale", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000, 50000])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    harness.setup_django()
    results = {n: one_size(n, args.workers) for n in args.sizes}
    rows = []
    for n, f in results.items():
        rows += [
            (f"{n:,}: dead office, first POST to all applied, s (online / offline)",
             f"{f['online_total_s']:.2f} / {f['offline_total_s']:.2f}", "<= 1 s at 5,000, <= 10 s at 50,000"),
            (f"{n:,}: µs per subcloud (online phase)", f["online_total_s"] / n * 1e6, "flat"),
            (f"{n:,}: recovery subclouds/s / pgbench tx/s", n / f["online_total_s"] / f["pgbench_tps"], ">= 2x"),
            (f"{n:,}: GET /v1.0/subclouds, s ({f['list_bytes'] / 1e6:.1f} MB)", f["list_s"], "<= 2 s at 50,000"),
            (f"{n:,}: one sorted page of 100 (limit, marker), s", f["page_s"], ""),
            (f"{n:,}: load average (1 min)", f["load_average"], "shared machine"),
        ]
    for n, f in results.items():
        rows += cpu.rows(f["cpu_offline"], f"{n:,}, offline phase") + cpu.rows(f["cpu_online"], f"{n:,}, online phase")
    harness.report("scale", rows, {"sizes": {str(n): f for n, f in results.items()}})
    print(f"saved {plot(results).relative_to(harness.ROOT)}")
    (harness.RESULTS / "scale-raw.json").write_text(json.dumps({str(n): f for n, f in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
