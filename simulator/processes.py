"""Starting the simulator and the Celery processes as subprocesses (tests and the benchmark).

Each is given the database name and the Celery key prefix in its environment,
so a test run or benchmark never shares queues, locks or data with anyone.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


class Process:
    def __init__(self, name, argv, log_dir, env):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self):
        return self.proc.poll() is None

    def send(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal and wait; SIGKILL after `timeout`. Returns the exit code."""
        self.send(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}) before {what}:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: timed out after {timeout}s waiting for {what}:\n{self.log()[-4000:]}")


class Simulator(Process):
    """`manage.py simulate_subclouds` on a free port; .url is its base URL once started."""

    def __init__(self, count, log_dir, env, prefix="subcloud", register=False, name="simulator", chaos=0.0):
        argv = [sys.executable, "manage.py", "simulate_subclouds", "--count", str(count), "--port", "0", "--prefix", prefix]
        if register:
            argv.append("--register")
        if chaos:
            argv += ["--chaos", str(chaos)]
        super().__init__(name, argv, log_dir, env)
        self.url = None

    def start(self, timeout=60):
        def listening():
            found = re.search(r"simulator listening on (http://\S+)", self.log())
            self.url = found.group(1) if found else None
            return self.url

        self.wait_for(listening, timeout, "the simulator to listen")
        self.http = httpx.Client(base_url=self.url, timeout=10, trust_env=False)
        return self

    def control(self, **body):
        response = self.http.post("/control", json=body)
        response.raise_for_status()
        return response.json()

    def subcloud(self, name):
        return self.http.get(f"/control/subclouds/{name}").json()

    def received(self, kind="dcorch", subcloud=None):
        params = {"subcloud": subcloud} if subcloud else {}
        return self.http.get(f"/receivers/{kind}", params=params).json()

    def summary(self):
        return self.http.get("/control").json()


class CeleryProcess(Process):
    """`python -m celery -A dcportal worker|beat`, as the OCF agents run them."""

    def __init__(self, role, log_dir, env, name=None):
        name = name or f"celery-{role}"
        run = Path(log_dir)
        self.heartbeat = run / f"{name}.heartbeat"
        self.celery_log_path = run / f"{name}.celery.log"
        # Left by an earlier run in the same directory: start() must see this run's.
        self.heartbeat.unlink(missing_ok=True)
        self.celery_log_path.unlink(missing_ok=True)
        env = {**env, "DCPORTAL_HEARTBEAT_FILE": str(self.heartbeat)}
        argv = [sys.executable, "-m", "celery", "-A", "dcportal", role, "--pidfile", str(run / f"{name}.pid"),
                "--logfile", str(run / f"{name}.celery.log"), "--loglevel", "INFO"]
        if role == "worker":
            argv += ["--hostname", f"dcportal-audit-{name}@%h"]
        else:
            argv += ["--schedule", str(run / f"{name}.schedule")]
        super().__init__(name, argv, log_dir, env)

    def log(self):
        own = self.celery_log_path.read_text(errors="replace") if self.celery_log_path.exists() else ""
        return super().log() + own

    def start(self, timeout=60):
        self.wait_for(self.heartbeat.exists, timeout, "its first heartbeat")
        return self


def environment(database_name, key_prefix, **settings):
    """The environment of a child process: this one's, pointed at `database_name`, plus DCPORTAL_* settings."""
    env = dict(os.environ)
    env["DCPORTAL_DATABASE_NAME"] = database_name
    env["DCPORTAL_CELERY_PREFIX"] = key_prefix
    env.pop("DCPORTAL_HEARTBEAT_FILE", None)
    env.update({f"DCPORTAL_{k.upper()}": str(v) for k, v in settings.items()})
    return env
