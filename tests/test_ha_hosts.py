"""Several hosts (issue 14, item 2): two "hosts" in Linux network namespaces, each with a daphne and a
state worker, behind haproxy (Debian's) checking /healthz, sharing one PostgreSQL and one Redis.

The namespaces, the bridge and the veth pairs are created here and removed at the end. The database and
Redis are this module's private ones (tests/test_faults_recovery.py's Stack), listening on the bridge's
address; the hosts reach them over their veth, and every client request goes client -> haproxy
(127.0.0.1) -> bridge -> veth -> the host's daphne. Shown: the workers of both hosts apply updates
(SKIP LOCKED claims), websocket clients served by either daphne see every change in order, and losing
one host (every process in its namespace SIGKILLed) mid-flood loses nothing while the other carries on.
Prints the throughput of two hosts and of the one left.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from dcportal.processes import Daphne, StateWorker, free_port
from state.models import StateUpdate
from tests.conftest import keep_logs, wait_until
from tests.test_faults_recovery import (
    DEADLINE,
    SPARE,
    LiveClient,
    Stack,
    assert_client_holds_what_the_api_lists,
    assert_every_accepted_update_applied_in_order,
    dead_office_update,
    fleet_names,
    pending,
)

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR is not set")]

SUBNET = "10.231.77"
BRIDGE = "dcpha-br0"
SERVICES = f"{SUBNET}.1"  # the bridge: PostgreSQL and Redis listen here
HOSTS = {"h1": f"{SUBNET}.11", "h2": f"{SUBNET}.12"}
DAPHNE_PORT = 8119


def sh(*argv, check=True):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(argv)} -> {proc.returncode}: {proc.stderr}")
    return proc


def netns_name(host):
    return f"dcpha-{host}"


class Network:
    """A bridge on the machine and one namespace per host, joined to it by a veth pair."""

    def create(self):
        self.destroy()  # leftovers of a run that was killed
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for i, (host, address) in enumerate(HOSTS.items()):
            ns, outside, inside = netns_name(host), f"dcpha-v{i}", f"dcpha-p{i}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            sh("ip", "link", "set", inside, "netns", ns)
            sh("ip", "link", "set", outside, "master", BRIDGE)
            sh("ip", "link", "set", outside, "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/24", "dev", inside)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", inside, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def destroy(self):
        for i, host in enumerate(HOSTS):
            sh("ip", "netns", "del", netns_name(host), check=False)
            sh("ip", "link", "del", f"dcpha-v{i}", check=False)
        sh("ip", "link", "del", BRIDGE, check=False)


HAPROXY_CFG = """\
global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    retries 2
    option redispatch
frontend dcportal
    bind 127.0.0.1:{port}
    default_backend daphnes
backend daphnes
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
{servers}
"""


class Haproxy:
    def __init__(self, root):
        self.port = free_port()
        self.cfg = root / "haproxy.cfg"
        servers = "\n".join(f"    server {h} {a}:{DAPHNE_PORT} check inter 500ms fall 2 rise 2" for h, a in HOSTS.items())
        self.cfg.write_text(HAPROXY_CFG.format(port=self.port, servers=servers))
        sh("haproxy", "-c", "-f", str(self.cfg))
        self.log = open(root / "haproxy.log", "wb")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.cfg)], stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


class Host:
    """A daphne and a state worker in one namespace (dcportal/processes.py, run through `ip netns exec`)."""

    def __init__(self, stack, name):
        self.name, ns = name, netns_name(name)
        self.daphne = Daphne(stack.root, stack.env, port=DAPHNE_PORT, host=HOSTS[name], name=f"daphne-{name}", netns=ns)
        self.worker = StateWorker(f"worker-{name}", stack.root, stack.env, batch=50, netns=ns)
        self.daphne.start(timeout=60)
        self.worker.start(timeout=60)

    def processes(self):
        return [self.daphne, self.worker]

    def lose(self):
        """The host goes away: every process in its namespace SIGKILLed at once."""
        for p in self.processes():
            p.send(signal.SIGKILL)
        for p in self.processes():
            p.proc.wait(timeout=10)


def sockets_on(host):
    """Established TCP connections to the host's daphne, seen from inside its namespace."""
    out = sh("ip", "netns", "exec", netns_name(host), "ss", "-Htn", "state", "established",
             "sport", "=", f":{DAPHNE_PORT}").stdout
    return len(out.splitlines())


class Flood(threading.Thread):
    """Dead-office rounds through the load balancer; a round is re-posted until it gets a 202 (503, 502 or a
    cut connection: not accepted, or accepted by a daphne that died before answering). `pause` seconds
    after each 202 keep the backlog bounded when several floods share the workers."""

    def __init__(self, stack, names, pause=0.0):
        super().__init__(daemon=True)
        self.stack, self.names, self.pause = stack, names, pause
        self.halt = threading.Event()
        self.posting = threading.Event()  # cleared: hold the next round (throughput drains the backlog)
        self.posting.set()
        self.round = self.refused = 0
        self.statuses = set()
        self.accepted_at = []

    def run(self):
        with self.stack.client(timeout=10) as http:
            while not self.halt.is_set():
                if not self.posting.wait(0.1):
                    continue
                body = {"updates": [dead_office_update(n, i, self.round) for i, n in enumerate(self.names)]}
                try:
                    r = http.post("/v1.0/state/bulk", json=body)
                except httpx.HTTPError:
                    self.refused += 1
                    continue
                # A 503 must say when to retry: one without Retry-After counts as an answer of its own.
                self.statuses.add(r.status_code if r.status_code != 503 or r.headers.get("Retry-After")
                                  else "503 without Retry-After")
                if r.status_code == 202:
                    self.stack.record(r)
                    self.accepted_at.append(time.monotonic())
                    self.round += 1
                    self.halt.wait(self.pause)
                else:
                    self.refused += 1
                    self.halt.wait(0.1)

    def stop(self):
        self.halt.set()
        self.join(timeout=60)


def throughput(flood, stack, seconds):
    """Updates accepted and applied per second: `seconds` of flood, then posting held until the backlog is applied."""
    flood.posting.clear()
    wait_until(lambda: pending(stack) == 0, timeout=DEADLINE, interval=0.1, message="no backlog before measuring")
    flood.posting.set()
    start_round, started = flood.round, time.monotonic()
    time.sleep(seconds)
    flood.posting.clear()
    try:
        wait_until(lambda: pending(stack) == 0, timeout=DEADLINE, interval=0.1, message="the backlog applied")
        return (flood.round - start_round) * len(flood.names) / (time.monotonic() - started)
    finally:
        flood.posting.set()


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("haproxy") or not shutil.which("ss"):
        pytest.skip("needs root, ip, ss and haproxy (./dev test installs haproxy as root)")
    root = Path(tempfile.mkdtemp(prefix="dcph-", dir="/tmp"))
    root.chmod(0o755)
    net, stack, lb, started = Network(), Stack(root), None, []
    try:
        net.create()
        stack.redis.tcp = (SERVICES, free_port())
        stack.start(processes=False)
        # PostgreSQL on the bridge too, trusting the hosts' subnet (the test's own throwaway server).
        stack.stop_postgres()
        with open(stack.pg.data_dir / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {SUBNET}.0/24 trust\n")
        stack.start_postgres(listen=SERVICES)
        # The hosts reach both servers over the network; the load balancer passes the client's Host
        # (127.0.0.1:port), while its checks and the readiness probes use the hosts' addresses.
        stack.env.update(DATABASE_URL=f"postgres://postgres@{SERVICES}:5432/postgres", REDIS_URL=stack.redis_url,
                         DCPORTAL_ALLOWED_HOSTS=",".join(["127.0.0.1", "localhost", *HOSTS.values()]))
        for name in HOSTS:
            started.append(Host(stack, name))
        lb = Haproxy(root)
        stack.url = f"http://127.0.0.1:{lb.port}"  # every client of the stack goes through the load balancer
        wait_until(lambda: _healthz(stack), timeout=30, message="haproxy serving")
        with stack.client("operator") as http:
            for name in [*fleet_names(), SPARE]:
                assert http.post("/v1.0/subclouds", json={"name": name}).status_code == 200
        yield stack, dict(zip(HOSTS, started))
    finally:
        for h in started:
            for p in h.processes():
                p.stop(timeout=10)
        if lb is not None:
            lb.stop()
        stack.close()
        net.destroy()
        keep_logs(tmp_path_factory, root, "ha-hosts-logs")


def _healthz(stack):
    try:
        return httpx.get(stack.url + "/healthz", timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def test_it_shares_the_work_across_two_hosts_and_loses_nothing_when_one_is_lost(hosts, capsys):
    stack, by_name = hosts
    # Two websocket clients through haproxy: round robin gives one to each daphne.
    clients = [LiveClient(stack) for _ in HOSTS]
    for c in clients:
        c.start()
        wait_until(lambda c=c: c.snapshots == 1, timeout=DEADLINE, message="a snapshot")
    assert all(sockets_on(h) >= 1 for h in HOSTS), {h: sockets_on(h) for h in HOSTS}

    flood = Flood(stack, fleet_names())
    flood.start()
    try:
        wait_until(lambda: flood.round >= 3, timeout=DEADLINE, message="the flood under way")
        two = throughput(flood, stack, 8)
        # Both hosts' workers took work (they claim subclouds with SKIP LOCKED from the one queue).
        by_worker = dict(stack.sql(f"SELECT worker, count(*) FROM {StateUpdate._meta.db_table} GROUP BY worker"))
        assert by_worker.get("worker-h1", 0) > 0 and by_worker.get("worker-h2", 0) > 0, by_worker

        by_name["h1"].lose()
        lost_at = time.monotonic()
        wait_until(lambda: any(t > lost_at for t in flood.accepted_at[-3:]) and
                   sum(t > lost_at for t in flood.accepted_at) >= 3, timeout=DEADLINE, message="202s after losing h1")
        one = throughput(flood, stack, 8)
    finally:
        flood.stop()
    first_after = min(t for t in flood.accepted_at if t > lost_at) - lost_at

    # Nothing accepted was lost (a round whose 202 died with h1 was re-posted: its rows exist, applied too).
    wait_until(lambda: pending(stack) == 0, timeout=DEADLINE, message="everything applied by h2's worker")
    assert_every_accepted_update_applied_in_order(stack, exact=False)
    assert flood.statuses <= {202, 502, 503, 504}, flood.statuses
    # Both websocket clients (one had h1's daphne) resumed through haproxy and hold exactly the REST listing.
    for c in clients:
        stack.live = c
        assert_client_holds_what_the_api_lists(stack)
    for c in clients:
        c.stop()
    assert by_name["h2"].daphne.alive() and by_name["h2"].worker.alive()
    with capsys.disabled():
        print(f"\nTwo hosts behind haproxy: {two:,.0f} updates/s accepted and applied; one host after losing the "
              f"other: {one:,.0f} updates/s; first 202 {first_after:.2f} s after the loss; {flood.refused} requests "
              f"refused or cut and re-posted")
