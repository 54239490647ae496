"""The whole set under a real single-node Pacemaker, configured with the crm block of docs/ha.md.

corosync (on 127.0.0.1) and pacemakerd run without systemd, as docs/ha.md describes
(its tests section). The cluster's CIB is seeded with dc-deadtime=2s (a DC in
about 5 s instead of 23 s) and stonith-enabled=false; the configuration itself is
docs/ha.md's block with only paths, the port and the log directory replaced. While a
client posts state updates to the API, processes are SIGKILLed and SIGSTOPped and the
time until they serve again is measured; every update accepted with 202 must then be
applied. The seconds are printed for BENCHMARKS.md, never asserted. The cluster is always
torn down, and the CIB of the machine restored.
"""

import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command

from accounts.models import ApiToken
from dcportal.dev import EmbeddedRedis
from state.models import StateUpdate
from subclouds.models import Subcloud
from tests.conftest import make_user
from tests.test_faults_recovery import REDIS_OUTAGE
from tests.test_ocf_agents import ROOT, VENV, alive, free_port, require_root_and, wait_for, write_env_file

pytestmark = pytest.mark.slow

RSCTMP = Path("/run/resource-agents")
CIB_DIR = Path("/var/lib/pacemaker/cib")
PENGINE_DIR = Path("/var/lib/pacemaker/pengine")
AGENT_DIR = Path("/usr/lib/ocf/resource.d/dcportal")
RESOURCES = {  # resource -> agent
    "dcportal-api": "dcportal-api",
    "dcportal-state-0": "dcportal-state",
    "dcportal-state-1": "dcportal-state",
    "dcportal-audit": "dcportal-audit",
    "dcportal-audit-beat": "dcportal-audit-beat",
}
BASE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
COROSYNC_CONF = """\
totem {
    version: 2
    cluster_name: dcportal-test
    transport: knet
    crypto_cipher: none
    crypto_hash: none
}
nodelist {
    node {
        name: node1
        nodeid: 1
        ring0_addr: 127.0.0.1
    }
}
quorum {
    provider: corosync_votequorum
}
logging {
    to_stderr: no
    to_syslog: no
    to_logfile: yes
    logfile: LOGFILE
    timestamp: on
}
"""


def run(*argv, check=True, timeout=60):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=BASE_ENV)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(argv)} -> {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc


def doc_configuration(env_path, workdir, port):
    """docs/ha.md's crm block, with the paths of this machine; fails if the doc no longer has what is replaced."""
    text = re.search(r"```crm\n(.*?)```", (ROOT / "docs/ha.md").read_text(), re.S).group(1)
    for old, new in [
        ("/opt/dcportal/.venv", str(VENV)),
        ("/opt/dcportal", str(ROOT)),
        ("/etc/dcportal/dcportal.env", str(env_path)),
        ("/var/log/dcportal", str(workdir / "logs")),
        ("/var/lib/dcportal", str(workdir / "lib")),
        ("port=8119", f"port={port}"),
    ]:
        assert old in text, f"docs/ha.md's crm block no longer mentions {old}"
        text = text.replace(old, new)
    assert set(RESOURCES) <= set(re.findall(r"^primitive (\S+)", text, re.M))
    return text


def read_pid(path):
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def children_of(ppid):
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(") ", 1)[1].split()[1] == str(ppid):
                kids.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return kids


class Cluster:
    """corosync + pacemakerd started here, and everything needed to put the machine back."""

    def __init__(self, workdir):
        self.dir = workdir
        self.corosync = self.pacemakerd = None
        self.cib_backup = workdir / "cib-backup"
        self.pengine_before = set()
        self.agents_installed_here = False
        self.notes = []

    def start(self):
        if run("corosync-quorumtool", "-s", check=False).returncode in (0, 2):
            pytest.skip("a corosync is already running on this machine; not touching it")
        self.pengine_before = set(PENGINE_DIR.glob("*"))
        # Keep whatever CIB the machine had; seed ours (dc-deadtime 2 s: DC elected in ~5 s, not ~23 s).
        self.cib_backup.mkdir()
        for f in CIB_DIR.iterdir():
            shutil.move(str(f), self.cib_backup / f.name)
        empty = run("cibadmin", "--empty").stdout
        props = ('<crm_config><cluster_property_set id="cib-bootstrap-options">'
                 '<nvpair id="cib-bootstrap-options-dc-deadtime" name="dc-deadtime" value="2s"/>'
                 '<nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>'
                 "</cluster_property_set></crm_config>")
        (self.dir / "cib.xml").write_text(empty.replace("<crm_config/>", props))
        run("install", "-o", "hacluster", "-g", "haclient", "-m", "0600", str(self.dir / "cib.xml"), str(CIB_DIR / "cib.xml"))

        conf = self.dir / "corosync.conf"
        conf.write_text(COROSYNC_CONF.replace("LOGFILE", str(self.dir / "corosync.log")))
        run("corosync", "-t", "-c", str(conf))
        self.corosync = subprocess.Popen(["corosync", "-f", "-c", str(conf)], env=BASE_ENV, start_new_session=True,
                                         stdout=open(self.dir / "corosync.out", "wb"), stderr=subprocess.STDOUT)
        wait_for(lambda: run("corosync-quorumtool", "-s", check=False).returncode == 0, 20, "corosync quorum")
        log = self.dir / "pacemaker.log"
        log.touch()
        shutil.chown(log, "hacluster", "haclient")
        self.pacemakerd = subprocess.Popen(["pacemakerd"], env={**BASE_ENV, "PCMK_logfile": str(log)}, start_new_session=True,
                                           stdout=open(self.dir / "pacemakerd.out", "wb"), stderr=subprocess.STDOUT)
        wait_for(lambda: "Current DC: node1" in run("crm_mon", "-1", check=False).stdout, 60, "a DC")
        self.agents_installed_here = not AGENT_DIR.exists()
        call_command("install_ocf", prefix="/", stdout=open(os.devnull, "w"))

    def load(self, crm_text):
        path = self.dir / "dcportal.crm"
        path.write_text(crm_text)
        run("crm", "configure", "load", "update", str(path), timeout=120)

    def resources(self):
        """{resource id: attributes of crm_mon's <resource>} for our resources."""
        out = run("crm_mon", "-1", "-r", "--output-as=xml", check=False).stdout
        try:
            doc = ET.fromstring(out)
        except ET.ParseError:
            return {}
        return {r.get("id"): r.attrib for r in doc.iter("resource") if r.get("id") in RESOURCES}

    def all_started(self):
        res = self.resources()
        return len(res) == len(RESOURCES) and all(
            r["role"] == "Started" and r["active"] == "true" and r["failed"] == "false" for r in res.values()
        )

    def idle(self):
        """No transition in progress. Pacemaker 2.1.5 acts on a recurring monitor only when its result
        changes, and a change that arrives as a transition completes can be lost (seen here: a SIGKILLed
        worker then waited for the next depth-10 monitor, 20 s): so each fault is injected on an idle cluster."""
        return "S_IDLE" in run("crmadmin", "-S", "node1", check=False).stdout

    def wait_settled(self, timeout, why):
        """Every resource started and not failed, nothing in progress; on timeout the assertion shows crm_mon's view."""
        try:
            wait_for(lambda: self.all_started() and self.idle(), timeout, why)
        except AssertionError as err:
            status = run("crm_mon", "-1", "-r", "--failcounts", check=False).stdout
            raise AssertionError(f"{err}\n{status}") from None

    def deep_monitor(self, rsc):
        """The depth-10 monitor of rsc as Pacemaker's executor runs it: the resource's parameters from the CIB.
        (crm_resource --force-check passes no interval, so the agent would only probe the pid.)"""
        cib = ET.fromstring(run("cibadmin", "--query", "--scope", "resources").stdout)
        primitive = next(p for p in cib.iter("primitive") if p.get("id") == rsc)
        params = {n.get("name"): n.get("value") for n in primitive.find("instance_attributes").iter("nvpair")}
        env = {**BASE_ENV, "OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": rsc, "OCF_CHECK_LEVEL": "10",
               "OCF_RESKEY_CRM_meta_interval": "30000", "OCF_RESKEY_CRM_meta_timeout": "40000",
               **{f"OCF_RESKEY_{k}": v for k, v in params.items()}}
        return subprocess.run([str(AGENT_DIR / RESOURCES[rsc]), "monitor"], env=env, capture_output=True, text=True,
                              timeout=60)

    def failcount(self, rsc):
        out = run("crm_failcount", "--query", "-q", "-r", rsc, "-N", "node1", check=False).stdout.strip()
        return int(out) if out.isdigit() else 0

    def teardown(self):
        """Best effort at every step, so a failure in one still runs the others."""
        steps = [self._stop_resources, self._stop_pacemaker, self._stop_corosync, self._kill_leftovers,
                 self._restore_files]
        for step in steps:
            try:
                step()
            except Exception as err:  # noqa: BLE001 - keep tearing down
                self.notes.append(f"{step.__name__}: {err}")

    def _stop_resources(self):
        if self.pacemakerd is None or self.pacemakerd.poll() is not None:
            return
        run("crm_attribute", "--type", "crm_config", "--name", "stop-all-resources", "--update", "true", check=False)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and any(alive(p) for p in self._resource_pids()):
            time.sleep(0.3)
        run("cibadmin", "--erase", "--force", check=False)

    def _resource_pids(self):
        pids = (read_pid(RSCTMP / f"{agent}-{rsc}.pid") for rsc, agent in RESOURCES.items())
        return [p for p in pids if p]

    def _stop_pacemaker(self):
        if self.pacemakerd is None:
            return
        daemons = children_of(self.pacemakerd.pid)  # they run in sessions of their own
        run("pacemakerd", "--shutdown", check=False)
        try:
            self.pacemakerd.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.notes.append("pacemakerd ignored --shutdown; killed")
            self.pacemakerd.kill()
            self.pacemakerd.wait(timeout=10)
        for pid in daemons:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    def _stop_corosync(self):
        if self.corosync is None or self.corosync.poll() is not None:
            return
        self.corosync.terminate()
        try:
            self.corosync.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.corosync.kill()
            self.corosync.wait(timeout=10)

    def _kill_leftovers(self):
        """Processes the cluster started from our venv that outlived it (only on a failed stop)."""
        for pid in self._resource_pids():
            try:
                ours = Path(f"/proc/{pid}/cmdline").read_bytes().startswith(str(VENV / "bin/python").encode())
            except FileNotFoundError:
                continue
            if alive(pid) and ours and os.getpgid(pid) == pid:
                self.notes.append(f"pid {pid} outlived the cluster; killed")
                os.killpg(pid, signal.SIGKILL)
        for rsc, agent in RESOURCES.items():
            for suffix in ("pid", "heartbeat"):
                (RSCTMP / f"{agent}-{rsc}.{suffix}").unlink(missing_ok=True)

    def _restore_files(self):
        for f in CIB_DIR.iterdir():
            f.unlink()
        if self.cib_backup.exists():
            for f in self.cib_backup.iterdir():
                shutil.move(str(f), CIB_DIR / f.name)
        for f in set(PENGINE_DIR.glob("*")) - self.pengine_before:
            f.unlink()
        if self.agents_installed_here:
            shutil.rmtree(AGENT_DIR, ignore_errors=True)
            shutil.rmtree("/usr/lib/ocf/lib/dcportal", ignore_errors=True)


def shared_outage_warnings(cluster):
    """{resource: count} of the agents' warnings that a monitor met a dependency down for everyone (pacemaker.log)."""
    text = (cluster.dir / "pacemaker.log").read_text(errors="replace")
    found = re.findall(r"\((dcportal-[\w-]+)\)\[\d+\]:\s+WARNING: .*shared dependency down from this host too", text)
    return {rsc: found.count(rsc) for rsc in set(found)}


def redis_outage(cluster, pid, api_serves, heartbeat_after):
    """Stops the cluster's Redis for REDIS_OUTAGE seconds at least, and until every resource's depth-10 monitor
    has met the outage (they run every 30 s); then asserts that nothing was restarted, failed or banned, and that
    everything serves once Redis is back. Returns what it saw, for the printout."""
    cluster.wait_settled(60, "a settled cluster before the Redis outage")
    pids = {rsc: pid(rsc) for rsc in RESOURCES}
    assert {rsc: cluster.failcount(rsc) for rsc in RESOURCES} == dict.fromkeys(RESOURCES, 0)
    warned_before = shared_outage_warnings(cluster)
    not_started = []  # crm_mon's view whenever it was not "all started" during the outage

    def every_monitor_met_it():
        if not cluster.all_started():
            not_started.append(cluster.resources())
        warned = shared_outage_warnings(cluster)
        return time.monotonic() - down_at >= REDIS_OUTAGE and all(
            warned.get(rsc, 0) > warned_before.get(rsc, 0) for rsc in RESOURCES)

    cluster.redis.stop()
    down_at = time.monotonic()
    try:
        wait_for(every_monitor_met_it, REDIS_OUTAGE + 120, "every depth-10 monitor to meet the Redis outage")
    finally:
        down_for = time.monotonic() - down_at
        cluster.redis.start()
    back_at = time.time()
    assert not_started == []
    # Everything serves again: daphne's /healthz is 200, the workers beat, and each agent's depth-10
    # check (run by Pacemaker's executor with the resource's parameters) passes without a warning.
    wait_for(lambda: api_serves(None, None), 60, "/healthz 200 once Redis is back")
    for rsc in RESOURCES:
        if rsc != "dcportal-api":
            wait_for(lambda rsc=rsc: heartbeat_after(rsc, back_at), 60, f"{rsc} beating once Redis is back")

    def clean_deep_check(rsc):
        r = cluster.deep_monitor(rsc)
        return r.returncode == 0 and "WARNING" not in r.stdout + r.stderr

    for rsc in RESOURCES:
        wait_for(lambda rsc=rsc: clean_deep_check(rsc), 90, f"a clean depth-10 check of {rsc} once Redis is back")
    cluster.wait_settled(60, "every resource still started after the Redis outage")
    assert {rsc: cluster.failcount(rsc) for rsc in RESOURCES} == dict.fromkeys(RESOURCES, 0)
    assert {rsc: pid(rsc) for rsc in RESOURCES} == pids  # nothing restarted
    warned = shared_outage_warnings(cluster)
    return f"Redis down {down_for:.0f} s: no restart, no failure; depth-10 warnings {warned}"


class Poster(threading.Thread):
    """A client posting availability updates to the API, recording what it got a 202 for."""

    def __init__(self, port, token, names):
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/v1.0/state/availability"
        self.headers = {"X-Auth-Token": token}
        self.names = names
        self.accepted = []  # (sequence, subcloud name, status)
        self.failures = 0
        self.halt = threading.Event()

    def run(self):
        i = 0
        with httpx.Client(timeout=3) as client:
            while not self.halt.is_set():
                name = self.names[i % len(self.names)]
                status = "online" if (i // len(self.names)) % 2 == 0 else "offline"
                try:
                    r = client.post(self.url, json={"subcloud": name, "availability_status": status}, headers=self.headers)
                except httpx.HTTPError:
                    r = None
                if r is not None and r.status_code == 202:
                    self.accepted.append((r.json()["sequence"], name, status))
                    i += 1
                else:
                    self.failures += 1  # daphne is being restarted: not accepted, so nothing to lose
                self.halt.wait(0.05)


@pytest.fixture
def cluster(transactional_db, _channel_prefix, tmp_path):
    require_root_and("corosync", "corosync-quorumtool", "pacemakerd", "crm", "crm_mon", "cibadmin", "crm_attribute",
                     "crm_failcount", "crmadmin", "ocf-tester", "curl", "setsid", "setpriv")
    workdir = Path(tempfile.mkdtemp(prefix="dcportal-cluster-", dir="/tmp"))
    workdir.chmod(0o755)
    c = Cluster(workdir)
    # A Redis of the cluster's own, which the test stops (the session's is shared with other tests).
    (workdir / "redis").mkdir()
    c.redis = EmbeddedRedis(workdir / "redis")
    # The audit worker runs but does not probe the test's subclouds (no audit cycle within the test).
    c.env_file = write_env_file(workdir / "dcportal.env", _channel_prefix, "DCPORTAL_AUDIT_INTERVAL=3600\n",
                                redis_url=c.redis.start())
    try:
        c.start()
        yield c
    finally:
        c.teardown()
        c.redis.stop()
        # Logs of the cluster and the processes stay in pytest's tmp_path (the last 3 runs are kept).
        shutil.copytree(workdir, tmp_path / "cluster", ignore=shutil.ignore_patterns("cib-backup"), dirs_exist_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
        assert not c.notes, c.notes


def test_it_runs_the_whole_set_and_recovers_killed_and_hung_processes(cluster, subcloud_factory, capsys, caplog):
    caplog.set_level(logging.WARNING, logger="httpx")
    started = time.monotonic()
    port = free_port(18119)
    cluster.load(doc_configuration(cluster.env_file, cluster.dir, port))
    cluster.wait_settled(90, "every resource started")
    up = time.monotonic() - started

    def pid(rsc):
        return read_pid(RSCTMP / f"{RESOURCES[rsc]}-{rsc}.pid")

    def heartbeat_after(rsc, since):
        try:
            return (RSCTMP / f"{RESOURCES[rsc]}-{rsc}.heartbeat").stat().st_mtime > since
        except FileNotFoundError:
            return False

    def api_serves(_rsc, _since):
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def recovery(rsc, sig, serving):
        cluster.wait_settled(60, f"a settled cluster before hitting {rsc}")
        old = pid(rsc)
        assert old and alive(old)
        since, t0 = time.time(), time.monotonic()
        os.kill(old, sig)

        def back():
            new = pid(rsc)
            return new and new != old and alive(new) and serving(rsc, since)

        wait_for(back, 45, f"{rsc} replaced after {sig.name}")
        seconds = time.monotonic() - t0
        wait_for(lambda: not alive(old), 30, f"the old {rsc} process gone")
        return round(seconds, 2)

    # Redis down for everyone: a restart cannot fix it, so no resource may be restarted (docs/ha.md).
    outage = redis_outage(cluster, pid, api_serves, heartbeat_after)

    names = [subcloud_factory(f"ha{i}").name for i in range(5)]
    _, token = ApiToken.objects.issue(make_user("service"))
    poster = Poster(port, token, names)
    poster.start()
    try:
        wait_for(lambda: len(poster.accepted) > 20, 30, "updates accepted through the cluster's API")
        measured = {
            "state worker SIGKILL": recovery("dcportal-state-0", signal.SIGKILL, heartbeat_after),
            "daphne SIGKILL": recovery("dcportal-api", signal.SIGKILL, api_serves),
            "state worker SIGSTOP": recovery("dcportal-state-1", signal.SIGSTOP, heartbeat_after),
            "daphne SIGSTOP": recovery("dcportal-api", signal.SIGSTOP, api_serves),
            "audit worker SIGKILL": recovery("dcportal-audit", signal.SIGKILL, heartbeat_after),
        }
        with capsys.disabled():
            print(f"\nPacemaker recovery (docs/ha.md's monitors), seconds from the signal to serving again: {measured}; "
                  f"set up in {up:.1f}s; load average {os.getloadavg()[0]:.1f}; {outage}")
        wait_for(lambda: len(poster.accepted) > 40, 30, "updates accepted after the restarts")
    finally:
        poster.halt.set()
        poster.join(timeout=10)

    # No accepted update lost: each one applied, and every subcloud shows the last status it was sent.
    sequences = [seq for seq, _, _ in poster.accepted]
    wait_for(lambda: not StateUpdate.objects.filter(id__in=sequences, applied_at__isnull=True).exists(), 60,
             "every accepted update applied")
    assert StateUpdate.objects.filter(id__in=sequences, outcome__isnull=False).count() == len(sequences)
    last = {name: status for _, name, status in sorted(poster.accepted)}
    assert {s.name: s.availability_status for s in Subcloud.objects.filter(name__in=names)} == last

    cluster.wait_settled(60, "every resource still started")
    # Each hit counted as a failure; none reached migration-threshold=3 (which would have left it stopped on
    # this single node). A busy machine may add one (a deep monitor timing out while the audit restarts).
    fails = {rsc: cluster.failcount(rsc) for rsc in RESOURCES}
    expected = {"dcportal-api": 2, "dcportal-state-0": 1, "dcportal-state-1": 1, "dcportal-audit": 1, "dcportal-audit-beat": 0}
    assert all(expected[rsc] <= fails[rsc] < 3 for rsc in RESOURCES), fails
    # The seconds are a benchmark (BENCHMARKS.md, "Pacemaker recovery"), not a pass/fail bound: a busy
    # 2-core machine stretches them; what must hold is above (every process back, nothing lost).
    with capsys.disabled():
        print(f"{len(sequences)} updates accepted, all applied; {poster.failures} refused while daphne restarted")
