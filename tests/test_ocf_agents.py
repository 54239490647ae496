"""The OCF resource agents (ocf/) driven like Pacemaker's executor drives them, on real processes.

Each agent is installed with `manage.py install_ocf --prefix` and run with a clean
environment (only OCF_* variables): the processes get the test database and Redis
from the agent's env_file, as they would in production. Where a misbehaving process
is needed (one that crashes during start or ignores SIGTERM), a stand-in app_dir
holds a small Python program in place of manage.py or the dcportal.server module, so the
agent launches it with exactly the command line it launches the real one with.
Needs root and Debian's resource-agents and libxml2-utils (./dev test installs them).
"""

import contextlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
AGENT_NAMES = sorted(p.name for p in (ROOT / "ocf").iterdir() if re.fullmatch(r"dcportal-[a-z-]+", p.name))
PROCESS_AGENTS = ["dcportal-api", "dcportal-state"]
CELERY_AGENTS = ["dcportal-audit", "dcportal-audit-beat"]
SUCCESS, ERR_GENERIC, ERR_INSTALLED, ERR_CONFIGURED, NOT_RUNNING = 0, 1, 5, 6, 7
DTD = "/usr/share/resource-agents/ra-api-1.dtd"


def require_root_and(*tools):
    if os.geteuid() != 0:
        pytest.skip("OCF agent tests need root (Pacemaker runs agents as root)")
    missing = [t for t in tools if not shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin")]
    if missing:
        pytest.skip(f"missing {' '.join(missing)}: apt-get install resource-agents libxml2-utils (./dev test does, as root)")


def celery_app_ready():
    return (ROOT / "dcportal" / "celery.py").exists() and (ROOT / "audit" / "heartbeat.py").exists()


def free_port(start=18119):
    for port in range(start, start + 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def proc_state(pid):
    """The /proc state letter of pid, or None when it is gone; "Z" is a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def alive(pid):
    return proc_state(pid) not in (None, "Z", "X")


def group_members(pgid):
    """Live (non-zombie) processes of process group pgid."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def ours(pid):
    """A process launched by an agent here: its own group, running this venv's python."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return os.getpgid(pid) == pid and cmdline.startswith(str(VENV / "bin/python").encode() + b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@dataclass
class Result:
    rc: int
    output: str
    seconds: float


class Agent:
    """One resource instance of an installed agent."""

    def __init__(self, path, instance, workdir, **params):
        self.path = Path(path)
        self.instance = instance
        self.params = {
            "app_dir": ROOT,
            "venv": VENV,
            "pidfile": workdir / f"{instance}.pid",
            "logfile": workdir / f"{instance}.log",
            **params,
        }
        if self.path.name in ("dcportal-state", "dcportal-audit", "dcportal-audit-beat"):
            self.params.setdefault("heartbeat_file", workdir / f"{instance}.heartbeat")
        if self.path.name == "dcportal-audit-beat":
            self.params.setdefault("schedule_file", workdir / "beat" / f"{instance}-schedule")
        self.pids = set()

    def environ(self, interval=10000, level=0, timeout=20000):
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "OCF_ROOT": "/usr/lib/ocf",
            "OCF_RA_VERSION_MAJOR": "1",
            "OCF_RA_VERSION_MINOR": "0",
            "OCF_RESOURCE_INSTANCE": self.instance,
            "OCF_RESKEY_CRM_meta_timeout": str(timeout),
            "OCF_RESKEY_CRM_meta_interval": str(interval),
            "OCF_CHECK_LEVEL": str(level),
        }
        env.update({f"OCF_RESKEY_{k}": str(v) for k, v in self.params.items()})
        return env

    def __call__(self, action, interval=10000, level=0, timeout=20000):
        started = time.monotonic()
        proc = subprocess.run([str(self.path), action], env=self.environ(interval, level, timeout), capture_output=True,
                              text=True, timeout=timeout / 1000 + 15)
        if action == "start":
            self.pids.update(self.started_pids())
        return Result(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)

    def pid(self):
        try:
            return int(Path(self.params["pidfile"]).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def started_pids(self):
        """Every pid the agent launched and saw healthy (it logs them); only these are ever killed here."""
        return [int(pid) for pid in re.findall(r"\]: pid (\d+) is up", self.log())]

    def log(self):
        path = Path(self.params["logfile"])
        return path.read_text(errors="replace") if path.exists() else ""

    def tester(self):
        options = [arg for k, v in self.params.items() for arg in ("-o", f"{k}={v}")]
        proc = subprocess.run(["ocf-tester", "-n", self.instance, *options, str(self.path)], capture_output=True, text=True,
                              timeout=240, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf"})
        self.pids.update(self.started_pids())
        return proc


@pytest.fixture(scope="session")
def ocf_dir():
    """The agents installed as Pacemaker finds them, in a scratch root readable by nobody (meta-data check)."""
    require_root_and("ocf-tester", "xmllint", "curl", "setsid", "setpriv")
    root = Path(tempfile.mkdtemp(prefix="dcportal-ocf-", dir="/tmp"))
    root.chmod(0o755)
    call_command("install_ocf", prefix=str(root), stdout=io.StringIO())
    yield root / "usr/lib/ocf/resource.d/dcportal"
    shutil.rmtree(root, ignore_errors=True)


def write_env_file(path, channel_prefix, extra="", redis_url=None):
    """What /etc/dcportal/dcportal.env holds in production, pointed at this session's test database and Redis keys
    (or at redis_url)."""
    path.write_text(
        "# dcportal processes started by the OCF agents\n"
        f"DATABASE_URL={os.environ['DATABASE_URL']}\n"
        f"export REDIS_URL='{redis_url or os.environ['REDIS_URL']}'\n"
        f"DCPORTAL_DATABASE_NAME={connection.settings_dict['NAME']}\n"
        f'DCPORTAL_CHANNEL_PREFIX="{channel_prefix}"\n'
        f"DCPORTAL_CELERY_PREFIX={channel_prefix}:\n"
        f"DCPORTAL_SECRET_KEY={os.environ['DCPORTAL_SECRET_KEY']}\n"
        "DCPORTAL_STATE_HEARTBEAT_SECONDS=1\n"
        "DCPORTAL_STATE_SWEEP_SECONDS=0.5\n"
        "DCPORTAL_AUDIT_HEARTBEAT_SECONDS=1\n" + extra
    )
    return path


@pytest.fixture
def env_file(transactional_db, tmp_path, _channel_prefix):
    return write_env_file(tmp_path / "dcportal.env", _channel_prefix)


@pytest.fixture
def agent(ocf_dir, env_file, tmp_path):
    """agent("dcportal-state", **params) -> an Agent; every instance is stopped (and checked gone) afterwards."""
    made = []

    def make(name, instance=None, **params):
        if name in CELERY_AGENTS and not (celery_app_ready() and name in AGENT_NAMES):
            pytest.skip(f"ocf/{name} or the Celery app it runs is not there yet")
        params.setdefault("env_file", env_file)
        if name == "dcportal-api":
            params.setdefault("port", free_port())
        a = Agent(ocf_dir / name, instance or f"t{len(made)}-{name.removeprefix('dcportal-')}", tmp_path, **params)
        made.append(a)
        return a

    yield make
    for a in made:
        a("stop", timeout=30000)
    for a in made:
        for pid in a.pids:
            if alive(pid) and ours(pid):
                os.killpg(pid, signal.SIGKILL)
                pytest.fail(f"{a.instance}: pid {pid} outlived stop")


def stand_in_app(tmp_path, program):
    """An app_dir whose manage.py and dcportal.server module are `program` (launched with the real argv)."""
    app = tmp_path / "stand-in"
    (app / "dcportal").mkdir(parents=True)
    for target in (app / "manage.py", app / "dcportal" / "server.py"):
        target.write_text(program)
    (app / "dcportal" / "__init__.py").write_text("")
    return app


CRASHES_AFTER_2S = """\
import sys, time
print("stand-in: up, crashing in 2 s", flush=True)
time.sleep(2)
print("stand-in: boom", flush=True)
sys.exit(3)
"""

IGNORES_SIGTERM = """\
import os, pathlib, signal, subprocess, sys, time
heartbeat = pathlib.Path(sys.argv[sys.argv.index("--heartbeat-file") + 1])
child = subprocess.Popen([sys.executable, "-c",
                          "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
print(f"stand-in: child {child.pid}", flush=True)
if LEADER_EXITS:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
else:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    heartbeat.touch()
    time.sleep(0.2)
"""


# ---- install and meta-data -------------------------------------------------------

def test_it_installs_every_agent_executable_under_the_provider_directory(tmp_path):
    require_root_and("xmllint")
    out = io.StringIO()
    call_command("install_ocf", prefix=str(tmp_path), provider="acme", stdout=out)
    agent_dir = tmp_path / "usr/lib/ocf/resource.d/acme"
    assert sorted(p.name for p in agent_dir.iterdir()) == AGENT_NAMES
    assert set(PROCESS_AGENTS) <= set(AGENT_NAMES)
    for name in AGENT_NAMES:
        assert (agent_dir / name).stat().st_mode & 0o777 == 0o755
        assert (agent_dir / name).read_bytes() == (ROOT / "ocf" / name).read_bytes()
        assert f"ocf:acme:{name}" in out.getvalue()
    lib = tmp_path / "usr/lib/ocf/lib/dcportal/dcportal-ocf.sh"
    assert lib.stat().st_mode & 0o777 == 0o644
    # Installed agents find the shared library by their own path: meta-data works from there.
    proc = subprocess.run([str(agent_dir / "dcportal-state"), "meta-data"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "OCF_ROOT": "/usr/lib/ocf"})
    assert proc.returncode == 0, proc.stderr
    assert '<resource-agent name="dcportal-state"' in proc.stdout


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_it_publishes_meta_data_valid_against_the_dtd_with_a_default_for_every_parameter(ocf_dir, name, tmp_path):
    proc = subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c", f"{ocf_dir / name} meta-data"], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "OCF_ROOT": "/usr/lib/ocf"})
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "md.xml").write_text(proc.stdout)
    lint = subprocess.run(["xmllint", "--noout", "--dtdvalid", DTD, str(tmp_path / "md.xml")], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr
    doc = ET.fromstring(proc.stdout)
    assert doc.get("name") == name
    params = {p.get("name"): p for p in doc.iter("parameter")}
    common = {"app_dir", "venv", "settings", "user", "env_file", "pidfile", "logfile", "stop_grace", "check_timeout"}
    assert common <= set(params)
    for pname, p in params.items():
        assert p.get("required") == "0", pname
        assert p.find("content").get("default") is not None, pname
        assert p.find("shortdesc").text and p.find("longdesc").text, pname
    monitors = [a for a in doc.iter("action") if a.get("name") == "monitor"]
    assert sorted(a.get("depth") for a in monitors) == ["0", "10"]
    assert {a.get("name") for a in doc.iter("action")} == {"start", "stop", "monitor", "validate-all", "meta-data"}


# ---- ocf-tester on the real processes -------------------------------------------

@pytest.mark.parametrize("name", PROCESS_AGENTS + CELERY_AGENTS)
def test_it_passes_ocf_tester_with_the_real_process(agent, name):
    a = agent(name)
    proc = a.tester()
    assert proc.returncode == 0, proc.stdout + proc.stderr + a.log()[-3000:]
    assert "passed all tests" in proc.stdout
    # It really launched the process twice (the second start of a pair finds it running), logged to its
    # file, and stopped it.
    assert a.log().count("starting:") == 2
    assert len(a.pids) == 2 and not any(alive(pid) for pid in a.pids)
    assert a("monitor").rc == NOT_RUNNING


@pytest.mark.parametrize("name", PROCESS_AGENTS + CELERY_AGENTS)
def test_it_starts_monitors_at_both_depths_and_stops_gracefully(agent, name):
    a = agent(name)
    assert a("monitor", interval=0).rc == NOT_RUNNING  # probe
    r = a("start")
    assert r.rc == SUCCESS, r.output + a.log()[-3000:]
    pid = a.pid()
    assert alive(pid)
    assert os.getpgid(pid) == pid and os.getsid(pid) == pid  # its own session: stop can kill the group
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == str(VENV / "bin/python").encode()
    assert a("monitor").rc == SUCCESS
    assert a("monitor", interval=0).rc == SUCCESS
    r = a("monitor", level=10, timeout=40000)
    assert r.rc == SUCCESS, r.output
    r = a("start")
    assert (r.rc, a.pid()) == (SUCCESS, pid)  # already running: no second process
    r = a("stop")
    assert r.rc == SUCCESS, r.output
    assert not alive(pid) and not Path(a.params["pidfile"]).exists()
    # SIGTERM was honoured: well inside the default 30 s grace (a generous bound for a busy machine).
    assert r.seconds < 25, r.seconds
    assert "SIGKILL" not in r.output
    assert a("stop").rc == SUCCESS
    assert a("monitor").rc == NOT_RUNNING


# ---- failures ----------------------------------------------------------------------

@pytest.mark.parametrize("name", PROCESS_AGENTS)
def test_it_fails_start_at_once_when_the_process_dies_during_start(agent, name, tmp_path):
    a = agent(name, app_dir=stand_in_app(tmp_path, CRASHES_AFTER_2S))
    r = a("start", timeout=30000)
    assert r.rc == ERR_GENERIC, r.output
    # Noticed the death: after the 2 s it lived, and before the deadline (30 s timeout - 5 s) ran out.
    assert 1.5 < r.seconds < 20, r.seconds
    assert "exited during start" in r.output and "stand-in: boom" in r.output
    assert "stand-in: up, crashing in 2 s" in a.log()  # the process's output went to the log file
    assert not Path(a.params["pidfile"]).exists()
    assert a("monitor").rc == NOT_RUNNING


def test_it_fails_start_at_once_when_daphne_cannot_bind_its_port(agent):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        a = agent("dcportal-api", port=taken.getsockname()[1])
        r = a("start", timeout=30000)
    assert r.rc == ERR_GENERIC, r.output
    assert r.seconds < 20  # the exit was noticed, not the 30 s timeout's deadline
    assert "exited during start" in r.output
    assert "Listen failure" in a.log()
    assert a("monitor").rc == NOT_RUNNING


@pytest.mark.parametrize("name", PROCESS_AGENTS + CELERY_AGENTS)
def test_it_fails_the_monitor_of_a_sigstopped_process_and_still_stops_it(agent, name):
    a = agent(name)
    assert a("start").rc == SUCCESS
    pid = a.pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: proc_state(pid) == "T", 5, "the process to stop")
        r = a("monitor")
        assert r.rc == ERR_GENERIC, r.output
        assert "stopped (SIGSTOP" in r.output
        assert a("monitor", interval=0).rc == ERR_GENERIC  # a probe sees it too
    finally:
        r = a("stop")
    assert r.rc == SUCCESS, r.output
    assert not alive(pid)
    assert "SIGKILL" not in r.output  # SIGCONT let it act on SIGTERM


def test_it_fails_the_api_monitor_when_the_liveness_path_does_not_answer_200(agent):
    a = agent("dcportal-api", live_path="/no-such-path")
    assert a("start").rc == SUCCESS  # start waits for /healthz, not the liveness path
    try:
        r = a("monitor")
        assert r.rc == ERR_GENERIC, r.output
        assert "/no-such-path answered '404'" in r.output
    finally:
        assert a("stop").rc == SUCCESS


def test_it_fails_the_monitor_when_the_worker_heartbeat_is_stale(agent):
    a = agent("dcportal-state", heartbeat_max_age=5)
    assert a("start").rc == SUCCESS
    heartbeat = Path(a.params["heartbeat_file"])
    os.utime(heartbeat, (time.time() - 60, time.time() - 60))
    r = a("monitor")
    assert r.rc == ERR_GENERIC, r.output
    assert "hung" in r.output
    # The live worker touches it again within its 1 s interval.
    wait_for(lambda: a("monitor").rc == SUCCESS, 10, "a fresh heartbeat")


@pytest.mark.parametrize("name", PROCESS_AGENTS + CELERY_AGENTS)
def test_it_reports_not_running_after_kill_9_and_starts_again(agent, name):
    a = agent(name)
    assert a("start").rc == SUCCESS
    pid = a.pid()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), 5, "the process to die")
    assert a("monitor").rc == NOT_RUNNING
    assert a("monitor", interval=0).rc == NOT_RUNNING
    r = a("start")
    assert r.rc == SUCCESS, r.output
    assert a.pid() != pid and alive(a.pid())
    assert a("monitor").rc == SUCCESS
    # Whatever the dead process left in its group (Celery's prefork children) is gone too.
    assert group_members(pid) == []


def test_it_ignores_a_stale_pid_file_naming_an_unrelated_process_or_a_zombie(agent):
    a = agent("dcportal-state")
    unrelated = subprocess.Popen(["sleep", "120"])
    zombie = subprocess.Popen(["true"])
    try:
        wait_for(lambda: proc_state(zombie.pid) == "Z", 5, "a zombie")
        for pid in (unrelated.pid, zombie.pid):
            Path(a.params["pidfile"]).write_text(f"{pid}\n")
            assert a("monitor").rc == NOT_RUNNING
            assert a("monitor", interval=0).rc == NOT_RUNNING
        Path(a.params["pidfile"]).write_text(f"{unrelated.pid}\n")
        assert a("stop").rc == SUCCESS
        assert unrelated.poll() is None  # never signalled
        Path(a.params["pidfile"]).write_text(f"{unrelated.pid}\n")
        r = a("start")
        assert r.rc == SUCCESS, r.output
        assert a.pid() != unrelated.pid
        assert a("monitor").rc == SUCCESS
        assert unrelated.poll() is None
    finally:
        unrelated.kill()
        unrelated.wait()
        zombie.wait()


@pytest.mark.parametrize("leader_exits", [False, True], ids=["process-ignores", "child-ignores"])
def test_it_kills_the_process_group_when_sigterm_is_ignored(agent, tmp_path, leader_exits):
    a = agent("dcportal-state", app_dir=stand_in_app(tmp_path, IGNORES_SIGTERM.replace("LEADER_EXITS", str(leader_exits))),
              stop_grace=2)
    assert a("start").rc == SUCCESS
    leader = a.pid()
    child = int(wait_for(lambda: re.search(r"stand-in: child (\d+)", a.log()), 10, "the child").group(1))
    assert os.getpgid(child) == leader
    r = a("stop", timeout=20000)
    assert r.rc == SUCCESS, r.output
    assert 2 <= r.seconds < 18, r.seconds  # the grace, then SIGKILL, inside the 20 s timeout
    assert "sending SIGKILL" in r.output
    assert not alive(leader) and not alive(child)
    assert a("monitor").rc == NOT_RUNNING


def test_it_caps_the_grace_period_to_the_stop_timeout(agent, tmp_path):
    a = agent("dcportal-state", app_dir=stand_in_app(tmp_path, IGNORES_SIGTERM.replace("LEADER_EXITS", "False")),
              stop_grace=300)
    assert a("start").rc == SUCCESS
    r = a("stop", timeout=10000)
    assert r.rc == SUCCESS, r.output
    assert r.seconds < 10
    assert "grace 2s" in r.output


# ---- levels and configuration -------------------------------------------------------

@pytest.fixture
def empty_database():
    """A database without tables: SELECT 1 works, the deep checks do not."""
    import psycopg

    name = f"ocf_empty_{os.getpid()}"
    params = {k: v for k, v in connection.get_connection_params().items() if k in ("host", "port", "user", "password")}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("name", PROCESS_AGENTS)
def test_it_fails_only_the_level_10_monitor_when_the_state_tables_are_missing(agent, name, empty_database):
    a = agent(name, database_name=empty_database)
    r = a("start")
    assert r.rc == SUCCESS, r.output + a.log()[-2000:]
    assert a("monitor").rc == SUCCESS
    r = a("monitor", level=10, timeout=40000)
    assert r.rc == ERR_GENERIC, r.output
    assert ("state_tables" in r.output) if name == "dcportal-api" else ("level-10 check" in r.output)


@pytest.mark.parametrize(
    ("params", "rc", "reason"),
    [
        ({"port": "http"}, ERR_CONFIGURED, "not a TCP port"),
        ({"port": "70000"}, ERR_CONFIGURED, "not a TCP port"),
        ({"bind": "localhost; rm"}, ERR_CONFIGURED, "not an IP address"),
        ({"stop_grace": "soon"}, ERR_CONFIGURED, "stop_grace"),
        ({"live_timeout": "0"}, ERR_CONFIGURED, "live_timeout"),
        ({"live_path": "livez"}, ERR_CONFIGURED, "live_path must start with /"),
        ({"venv": "/nonexistent/venv"}, ERR_INSTALLED, "bin/python is missing"),
        ({"app_dir": "/nonexistent/app"}, ERR_INSTALLED, "manage.py is missing"),
        ({"env_file": "/nonexistent/dcportal.env"}, ERR_INSTALLED, "not readable"),
        ({"env_file": ""}, ERR_CONFIGURED, "no DATABASE_URL"),
        ({"user": "no-such-user-dcp"}, ERR_INSTALLED, "does not exist"),
    ],
)
def test_it_rejects_a_bad_configuration_in_validate_all_and_start(agent, params, rc, reason):
    a = agent("dcportal-api", **params)
    r = a("validate-all")
    assert r.rc == rc, r.output
    assert reason in r.output
    assert a("start").rc == rc
    assert not Path(a.params["pidfile"]).exists()
    # Neither blocks stop, and a probe only says "not running here".
    assert a("stop").rc == SUCCESS
    assert a("monitor", interval=0).rc == NOT_RUNNING


def test_it_stops_a_running_worker_whatever_validate_all_says(agent, tmp_path):
    a = agent("dcportal-state")
    assert a("start").rc == SUCCESS
    pid = a.pid()
    a.params["env_file"] = tmp_path / "deleted.env"
    a.params["stop_grace"] = "not-a-number"
    assert a("validate-all").rc == ERR_CONFIGURED
    r = a("stop")
    assert r.rc == SUCCESS, r.output
    assert not alive(pid)
    assert "state worker t0-state stopped" in a.log()  # it finished its loop and exited cleanly


# ---- a shared dependency down for everyone -----------------------------------------

@pytest.fixture
def private_redis():
    """A Redis of this test only (the session's is shared with other tests): stopped and started at will."""
    from dcportal.dev import EmbeddedRedis

    run_dir = Path(tempfile.mkdtemp(prefix="dcp-redis-", dir="/tmp"))  # short: a unix socket path has 108 bytes
    redis = EmbeddedRedis(run_dir)
    redis.url = redis.start()
    yield redis
    redis.stop()
    shutil.rmtree(run_dir, ignore_errors=True)


@contextlib.contextmanager
def frozen(pgid):
    """Process group pgid frozen by the cgroup (v1) freezer: hung in state D, not stopped (T), like a process
    stuck in the kernel."""
    cgroup = Path(f"/sys/fs/cgroup/freezer/dcportal-test-{os.getpid()}-{pgid}")
    if not Path("/sys/fs/cgroup/freezer/tasks").exists():
        pytest.skip("no cgroup v1 freezer here")
    cgroup.mkdir()
    try:
        for pid in group_members(pgid):
            (cgroup / "tasks").write_text(str(pid))
        (cgroup / "freezer.state").write_text("FROZEN")
        wait_for(lambda: (cgroup / "freezer.state").read_text().strip() == "FROZEN", 10, "the freezer")
        yield
    finally:
        (cgroup / "freezer.state").write_text("THAWED")
        for pid in (cgroup / "tasks").read_text().split():
            Path("/sys/fs/cgroup/freezer/tasks").write_text(pid)
        cgroup.rmdir()


@pytest.mark.parametrize("name", PROCESS_AGENTS + CELERY_AGENTS)
def test_it_passes_the_level_10_monitor_with_a_warning_while_redis_is_down_for_everyone(
        agent, name, env_file, _channel_prefix, private_redis):
    """A restart cannot bring Redis back: the deep monitor warns instead of failing; a stopped or hung
    process still fails, whatever is down."""
    write_env_file(env_file, _channel_prefix, redis_url=private_redis.url)
    a = agent(name, **({} if name == "dcportal-api" else {"heartbeat_max_age": 4}))
    assert a("start").rc == SUCCESS, a.log()[-3000:]
    pid = a.pid()
    r = a("monitor", level=10, timeout=40000)
    assert (r.rc, "WARNING" in r.output) == (SUCCESS, False), r.output
    private_redis.stop()
    # Longer than heartbeat_max_age: a worker that stopped beating without its broker would be seen as hung.
    time.sleep(6)
    r = a("monitor")
    assert r.rc == SUCCESS, r.output
    r = a("monitor", level=10, timeout=40000)
    assert r.rc == SUCCESS, r.output
    assert re.search(r"WARNING: .*shared dependency down from this host too: [a-z_, ]*channel_layer.*no restart", r.output), \
        r.output
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: proc_state(pid) == "T", 5, "the process to stop")
        r = a("monitor", level=10, timeout=40000)
        assert r.rc == ERR_GENERIC and "stopped (SIGSTOP" in r.output, r.output
    finally:
        os.kill(pid, signal.SIGCONT)
    with frozen(pid):  # hung, not stopped (state D): only its heartbeat or /livez tells
        if name != "dcportal-api":
            time.sleep(6)  # longer than heartbeat_max_age
        r = a("monitor", level=10, timeout=40000)
        assert r.rc == ERR_GENERIC, r.output
        assert ("within 2s" if name == "dcportal-api" else "hung") in r.output, r.output
    private_redis.start()
    wait_for(lambda: "WARNING" not in (r := a("monitor", level=10, timeout=40000)).output and r.rc == SUCCESS, 60,
             "a clean level-10 monitor once Redis is back")
    assert a.pid() == pid


@pytest.mark.parametrize("dependency", ["channel_layer", "database"])
def test_it_starts_daphne_during_an_outage_and_fails_it_when_only_daphne_cannot_reach_the_dependency(
        agent, env_file, _channel_prefix, tmp_path, dependency):
    """Start with REDIS_URL (DATABASE_URL) naming a server that is not there: down for the agent too, so daphne
    is up once it answers (a 503 naming that dependency). Then env_file is corrected (a real operator's fix): the
    agent reaches the server, daphne still uses the address it started with, so only daphne is broken and a
    restart helps."""
    nowhere = {"channel_layer": {"redis_url": f"unix://{tmp_path}/no-redis.sock?db=0"},
               "database": {"extra": f"DATABASE_URL=postgres://dcportal:x@/dcportal?host={tmp_path}\n"}}[dependency]
    # The pool's timeout bounds how long /healthz waits for a database that is not there (10 s by default).
    pool = "DCPORTAL_DB_POOL_TIMEOUT=2\n"
    write_env_file(env_file, _channel_prefix, extra=pool + nowhere.get("extra", ""), redis_url=nowhere.get("redis_url"))
    a = agent("dcportal-api", check_timeout=30)
    r = a("start", timeout=60000)
    assert r.rc == SUCCESS, r.output + a.log()[-3000:]
    assert re.search(rf"WARNING: .*shared dependency down from this host too: {dependency}.*started without waiting",
                     r.output), r.output
    r = a("monitor", level=10, timeout=40000)
    assert r.rc == SUCCESS and "WARNING" in r.output, r.output
    write_env_file(env_file, _channel_prefix, extra=pool)
    r = a("monitor", level=10, timeout=40000)
    assert r.rc == ERR_GENERIC, r.output
    assert 'answered 503: {"status": "down"' in r.output and f'"{dependency}": {{"status": "down"}}' in r.output
    assert a("monitor").rc == SUCCESS  # depth 0 only asks whether it serves
    # A new daphne reads the corrected file and is healthy.
    assert a("stop").rc == SUCCESS
    r = a("start")
    assert r.rc == SUCCESS and "WARNING" not in r.output, r.output
    r = a("monitor", level=10, timeout=40000)
    assert (r.rc, "WARNING" in r.output) == (SUCCESS, False), r.output
