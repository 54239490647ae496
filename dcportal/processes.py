"""The one process launcher: every dcportal process started by `./dev up`, the benchmarks and the tests.

Each kind of process has one command line here (the OCF agents in ocf/ run the
same ones under Pacemaker) and one way of telling that it is ready: daphne
answers /healthz, a state worker or a Celery process touches its heartbeat
file, the simulator prints its address. A child gets its settings through its
environment (`environment()`), so a test run or a benchmark never shares a
database, queues or locks with anyone else.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(database_name=None, key_prefix=None, base=None, **settings):
    """A child's environment: `base` (default: this process's), pointed at `database_name`, plus DCPORTAL_* settings."""
    env = dict(os.environ if base is None else base)
    if database_name:
        env["DCPORTAL_DATABASE_NAME"] = database_name
    if key_prefix:
        env["DCPORTAL_CELERY_PREFIX"] = key_prefix
    env.pop("DCPORTAL_HEARTBEAT_FILE", None)
    env.update({f"DCPORTAL_{k.upper()}": str(v) for k, v in settings.items()})
    return env


# -- command lines ------------------------------------------------------------------------


def daphne_argv(port, host="127.0.0.1"):
    """daphne with dcportal/server.py's bounded request bodies, as the OCF agent runs it."""
    return [sys.executable, "-m", "dcportal.server", "-b", host, "-p", str(port), "--websocket_timeout", "-1",
            "dcportal.asgi:application"]


def state_worker_argv(name, batch=None, heartbeat_file=None):
    argv = [sys.executable, "manage.py", "runworker", "dcmanager-state", "--name", name]
    if batch:
        argv += ["--batch", str(batch)]
    if heartbeat_file:
        argv += ["--heartbeat-file", str(heartbeat_file)]
    return argv


def celery_argv(role, run_dir, name, hostname=None):
    """`celery -A dcportal worker|beat` as the OCF agents run them, with pid, log and schedule under `run_dir`."""
    run_dir = Path(run_dir)
    argv = [sys.executable, "-m", "celery", "-A", "dcportal", role, "--pidfile", str(run_dir / f"{name}.pid"),
            "--logfile", str(run_dir / f"{name}.celery.log"), "--loglevel", "INFO"]
    if role == "worker":
        argv += ["--hostname", hostname or f"dcportal-audit-{name}@%h"]
    else:
        argv += ["--schedule", str(run_dir / f"{name}.schedule")]
    return argv


def simulator_argv(count, port=0, prefix="subcloud", register=False, chaos=0.0):
    argv = [sys.executable, "manage.py", "simulate_subclouds", "--count", str(count), "--port", str(port),
            "--prefix", prefix]
    if register:
        argv.append("--register")
    if chaos:
        argv += ["--chaos", str(chaos)]
    return argv


# -- processes ----------------------------------------------------------------------------


class Process:
    """One child process, its output in `<log_dir>/<name>.log` (appended: a restart keeps the history)."""

    def __init__(self, name, argv, log_dir, env=None, netns=None):
        self.name = name
        # In a Linux network namespace (a "host" of its own, tests/test_ha_hosts.py): `ip netns exec`
        # execs the command in place, so the pid is still the process's own.
        self.argv = ["ip", "netns", "exec", netns, *argv] if netns else argv
        self.env = env if env is not None else environment()
        self.log_path = Path(log_dir) / f"{name}.log"
        self.proc = None
        self.launch()

    def launch(self):
        """Start (or start again) the command; its own session, so a signal to the launcher's group spares it."""
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self):
        return self.proc.poll() is None

    def send(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def kill(self, sig=signal.SIGKILL):
        """Signal and wait for the exit, however long it takes (tests that crash a process on purpose)."""
        self.send(sig)
        return self.proc.wait(timeout=60)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal and wait; SIGKILL to its whole session after `timeout`. Returns the exit code."""
        self.send(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(timeout=10)

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return self
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}) before {what}:\n{self.log()[-4000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: timed out after {timeout}s waiting for {what}:\n{self.log()[-4000:]}")

    def ready(self):
        """True once the process serves; the default is "still running"."""
        return self.alive()

    def start(self, timeout=60):
        return self.wait_for(self.ready, timeout, "it to be ready")


class Daphne(Process):
    """daphne serving dcportal.asgi:application; ready when it answers `GET /` (dependencies are /healthz's business)."""

    def __init__(self, log_dir, env=None, port=None, host="127.0.0.1", name="daphne", netns=None):
        self.port = port or free_port()
        self.url = f"http://{host}:{self.port}"
        super().__init__(name, daphne_argv(self.port, host), log_dir, env, netns)

    def ready(self):
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(self.url + "/", timeout=1, trust_env=False).status_code == 200
        return False


class HeartbeatProcess(Process):
    """A process that touches a heartbeat file from its main loop; ready at its first beat."""

    def __init__(self, name, argv, log_dir, env, heartbeat, netns=None):
        self.heartbeat = Path(heartbeat)
        self.heartbeat.unlink(missing_ok=True)  # left by an earlier run: start() must see this run's
        super().__init__(name, argv, log_dir, env, netns)

    def launch(self):
        self.heartbeat.unlink(missing_ok=True)
        return super().launch()

    def ready(self):
        return self.heartbeat.exists()


class StateWorker(HeartbeatProcess):
    """`manage.py runworker dcmanager-state`."""

    def __init__(self, name, log_dir, env=None, batch=None, netns=None):
        heartbeat = Path(log_dir) / f"{name}.heartbeat"
        super().__init__(name, state_worker_argv(name, batch, heartbeat), log_dir, env, heartbeat, netns)


class CeleryProcess(HeartbeatProcess):
    """`python -m celery -A dcportal worker|beat`, as the OCF agents run them."""

    def __init__(self, role, log_dir, env=None, name=None, hostname=None):
        name = name or f"celery-{role}"
        heartbeat = Path(log_dir) / f"{name}.heartbeat"
        self.celery_log_path = Path(log_dir) / f"{name}.celery.log"
        self.celery_log_path.unlink(missing_ok=True)
        env = {**(env if env is not None else environment()), "DCPORTAL_HEARTBEAT_FILE": str(heartbeat)}
        super().__init__(name, celery_argv(role, log_dir, name, hostname), log_dir, env, heartbeat)

    def log(self):
        own = self.celery_log_path.read_text(errors="replace") if self.celery_log_path.exists() else ""
        return super().log() + own


class Simulator(Process):
    """`manage.py simulate_subclouds`; .url is its base URL once started."""

    def __init__(self, count, log_dir, env=None, prefix="subcloud", register=False, name="simulator", chaos=0.0,
                 port=0):
        super().__init__(name, simulator_argv(count, port, prefix, register, chaos), log_dir, env)
        self.url = None

    def launch(self):
        # The log is appended to: only what this launch writes names its port (a previous run's line
        # would point the caller at a simulator that is gone).
        self.log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        return super().launch()

    def ready(self):
        written = self.log_path.read_bytes()[self.log_start:].decode(errors="replace")
        found = re.findall(r"simulator listening on (http://\S+)", written)
        self.url = found[-1] if found else None
        return self.url

    def start(self, timeout=60):
        super().start(timeout)
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
