"""Benchmark plumbing: a scratch database, real processes, a token, timing and reporting.

Benchmarks run against their own database (dcportal_bench by default) on the
same PostgreSQL server as ./dev, so the dev data is never touched.
"""

import json
import logging
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from dcportal import processes

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCH_DB = os.environ.get("DCPORTAL_BENCH_DB", "dcportal_bench")


def setup_django(migrate=True):
    """Point this process at the bench database (created and migrated on first use) and set Django up."""
    import psycopg

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dcportal.settings")
    os.environ["DCPORTAL_DATABASE_NAME"] = BENCH_DB
    # Our own channel namespace: no other process on this Redis takes our doorbells.
    os.environ.setdefault("DCPORTAL_CHANNEL_PREFIX", f"bench-{os.getpid()}")
    import django
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"],
                         password=db["PASSWORD"] or None, dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    django.setup()
    # One INFO line per request would bury the figures.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # A benchmark stopped with SIGTERM unwinds like Ctrl-C, so Processes stops its daphne and workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not migrate:
        return
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, env=child_env())


def child_env(**extra):
    env = dict(os.environ, DCPORTAL_DATABASE_NAME=BENCH_DB, DCPORTAL_LOG_LEVEL="WARNING")
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Processes:
    """Daphne and state workers (dcportal.processes) on the bench database, stopped with SIGTERM at the end."""

    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs = {}

    def daphne(self, port):
        self.procs["daphne"] = processes.Daphne(self.log_dir, child_env(), port=port).start(timeout=30)

    def workers(self, n, batch=None):
        for i in range(n):
            self.procs[f"state-{i}"] = processes.StateWorker(f"bench-{i}", self.log_dir, child_env(), batch)
        for name in [f"state-{i}" for i in range(n)]:
            self.procs[name].start(timeout=60)

    def stop(self, *names):
        for name in names or list(self.procs):
            self.procs.pop(name).stop(timeout=20)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def issue_token(role):
    """A token for a fresh user with `role`."""
    import uuid

    from django.contrib.auth import get_user_model

    from accounts.models import ApiToken
    from accounts.roles import set_role

    user = get_user_model().objects.create(username=f"bench-{role}-{uuid.uuid4().hex[:6]}")
    set_role(user, role)
    return ApiToken.objects.issue(user)[1]


def run_timed(target, slices):
    """Run target(slice) in one spawned process per slice, started together after their set-up.

    Returns the seconds from the common start until the last one finished:
    process start-up and Django set-up are not counted.
    """
    ctx = multiprocessing.get_context("spawn")
    ready, go, done = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_timed_child, args=(target, s, ready, go, done)) for s in slices]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    go.set()
    seconds = max(done.get(timeout=900) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    return seconds


def _timed_child(target, work, ready, go, done):
    setup_django(migrate=False)
    ready.put(True)
    go.wait(120)
    started = time.perf_counter()
    target(work)
    done.put(time.perf_counter() - started)


@contextmanager
def timer():
    t = {"start": time.perf_counter()}
    yield t
    t["seconds"] = time.perf_counter() - t["start"]


def machine():
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
    }


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def report(name, rows, extra=None, plot=None):
    """Print a table of (figure, value, target) rows; save JSON (and a bar chart PNG) under bench/results/.

    plot: (y label, {bar label: value}).
    """
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'figure':<{width}}  {'value':>14}  target")
    print(f"{'-' * width}  {'-' * 14}  ------")
    for figure, value, target in rows:
        shown = f"{value:,.2f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)
        print(f"{figure:<{width}}  {shown:>14}  {target or ''}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps({"scenario": name, "when": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
                               "figures": {r[0]: r[1] for r in rows}, **(extra or {})}, indent=2))
    print(f"\nsaved {out.relative_to(ROOT)}")
    if plot:
        print(f"saved {bar_chart(name, *plot).relative_to(ROOT)}")


def bar_chart(name, ylabel, bars):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    labels, values = list(bars), list(bars.values())
    ax.bar(labels, values, color=["#2f6fb2", "#9aa5b1", "#6b8e23", "#c0504d"][: len(values)])
    for i, v in enumerate(values):
        ax.annotate(f"{v:,.0f}" if v >= 10 else f"{v:,.2f}", (i, v), ha="center", va="bottom", fontsize=9)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{name} ({os.cpu_count()} cores)")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    out = RESULTS / f"{name}.png"
    fig.savefig(out)
    plt.close(fig)
    return out


# One subcloud's recovery as the machine's floor sees it: lock the subcloud row, update one endpoint
# row, update the subcloud, commit (issue 13's "per-subcloud transaction").
PGBENCH_SCRIPT = """\\set sid random(:lo, :hi)
BEGIN;
SELECT id FROM subclouds_subcloud WHERE id = :sid FOR NO KEY UPDATE;
UPDATE subclouds_endpointstatus SET sync_status = 'in-sync' WHERE subcloud_id = :sid AND endpoint_type = 'platform';
UPDATE subclouds_subcloud SET availability_status = 'online' WHERE id = :sid;
END;
"""


def pgbench_bin():
    """The pgbench shipped with the embedded PostgreSQL (pip package pgserver), else one on PATH."""
    import shutil

    try:
        import pgserver

        candidate = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("pgbench")
    if not found:
        raise RuntimeError("no pgbench: neither pgserver's nor one on PATH")
    return found


def pgbench_tps(clients=2, seconds=10):
    """Transactions/s of PGBENCH_SCRIPT with `clients` clients on the bench database (its subclouds must exist)."""
    import re
    import tempfile

    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT min(id), max(id) FROM subclouds_subcloud")
        lo, hi = cur.fetchone()
    if lo is None:
        raise RuntimeError("pgbench needs subclouds in the bench database")
    db = settings.DATABASES["default"]
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(PGBENCH_SCRIPT)
        script.flush()
        argv = [pgbench_bin(), "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients), "-T", str(seconds),
                "-D", f"lo={lo}", "-D", f"hi={hi}", "-f", script.name, "-U", db["USER"] or "postgres", db["NAME"]]
        if db["HOST"]:
            argv += ["-h", db["HOST"]]
        if db["PORT"]:
            argv += ["-p", str(db["PORT"])]
        env = dict(os.environ, PGPASSWORD=db["PASSWORD"] or "")
        out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def load_average():
    """The 1-minute load average: the machine is shared, so every report says how busy it was."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class RestOfDevUp:
    """What `./dev up` runs besides daphne and the state workers: the subcloud simulator (with its weather),
    the Celery audit worker and beat probing `audited` simulated subclouds (added to the bench fleet), the
    outbox delivering to the simulator's fake dcorch / certmon. A context manager; stops them at the end.

    Defaults are `./dev up`'s (DCPORTAL_DEMO_FLEET 200, DCPORTAL_SIMULATOR_CHAOS 5, audit every 20 s), so a
    benchmark run with it measures what an operator's `./dev up` would show.
    """

    def __init__(self, log_dir, audited=200, chaos=5.0, audit_interval=None, prefix="sim"):
        self.log_dir, self.audited, self.chaos, self.prefix = Path(log_dir), audited, chaos, prefix
        self.audit_interval = audit_interval
        self.procs = []
        self.sim = None

    def __enter__(self):
        import uuid

        from dcportal.processes import CeleryProcess, Simulator
        from simulator.fleet import audit_url, receiver_url

        from .dead_office import add_fleet

        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.sim = Simulator(self.audited, self.log_dir, child_env(), prefix=self.prefix, chaos=self.chaos).start()
            self.procs.append(self.sim)
            add_fleet([f"{self.prefix}{i}" for i in range(1, self.audited + 1)], lambda n: audit_url(self.sim.url, n))
            # Our own Celery queue names: no other checkout's audit takes (or sends) our tasks.
            extra = {"DCPORTAL_CELERY_PREFIX": os.environ.get("DCPORTAL_CELERY_PREFIX") or f"bench-{uuid.uuid4().hex[:6]}:",
                     "DCPORTAL_DCORCH_URL": receiver_url(self.sim.url, "dcorch"),
                     "DCPORTAL_CERTMON_URL": receiver_url(self.sim.url, "certmon")}
            if self.audit_interval is not None:
                extra["DCPORTAL_AUDIT_INTERVAL"] = self.audit_interval
            for role in ("worker", "beat"):
                self.procs.append(CeleryProcess(role, self.log_dir, child_env(**extra), name=f"audit-{role}").start())
        except BaseException:
            self.stop()
            raise
        return self

    def pids(self):
        return {p.name: p.proc.pid for p in self.procs}

    def alive(self):
        return all(p.alive() for p in self.procs)

    def stop(self):
        for process in reversed(self.procs):
            process.stop()
        self.procs = []

    def __exit__(self, *exc):
        self.stop()
