"""Benchmark plumbing: a scratch database, real processes, a token, timing and reporting.

Benchmarks run against their own database (dcportal_bench by default) on the
same PostgreSQL server as ./dev, so the dev data is never touched.
"""

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCH_DB = os.environ.get("DCPORTAL_BENCH_DB", "dcportal_bench")


def setup_django():
    """Point this process at the bench database (created and migrated on first use) and set Django up."""
    import psycopg

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dcportal.settings")
    os.environ["DCPORTAL_DATABASE_NAME"] = BENCH_DB
    import django
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"],
                         password=db["PASSWORD"] or None, dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    django.setup()
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, env=child_env())


def child_env(**extra):
    env = dict(os.environ, DCPORTAL_DATABASE_NAME=BENCH_DB, DCPORTAL_LOG_LEVEL="WARNING")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Daphne and state workers as real subprocesses, stopped with SIGTERM at the end."""

    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs = {}

    def start(self, name, argv, **env):
        log = open(self.log_dir / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(argv, cwd=ROOT, env=child_env(**env), stdout=log, stderr=subprocess.STDOUT)
        return self.procs[name]

    def daphne(self, port):
        self.start("daphne", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                              "dcportal.asgi:application"])
        wait_http(f"http://127.0.0.1:{port}/healthz")

    def workers(self, n, batch=None):
        for i in range(n):
            argv = [sys.executable, "manage.py", "runworker", "dcmanager-state", "--name", f"bench-{i}"]
            if batch:
                argv += ["--batch", str(batch)]
            self.start(f"state-{i}", argv)

    def stop(self, *names):
        for name in names or list(self.procs):
            proc = self.procs.pop(name)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def wait_http(url, timeout=30):
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


def issue_token(role):
    """A token for a fresh user with `role`."""
    import uuid

    from django.contrib.auth import get_user_model

    from accounts.models import ApiToken
    from accounts.roles import set_role

    user = get_user_model().objects.create(username=f"bench-{role}-{uuid.uuid4().hex[:6]}")
    set_role(user, role)
    return ApiToken.objects.issue(user)[1]


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


def report(name, rows, extra=None):
    """Print a table of (figure, value, target) rows and save JSON under bench/results/."""
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
