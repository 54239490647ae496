"""End to end with real processes: Celery worker and beat, state workers, the simulator, PostgreSQL and Redis.

The audit interval is 1 s here, the cycle lease 4 s, the outbox poll 0.3 s.
"""

import os
import signal
import time
import uuid

import psutil
import pytest
from django.db import connection

from api.state import stats
from audit import coordination, cycle
from dcportal.processes import CeleryProcess, environment
from simulator.fleet import audit_url, receiver_url
from state import operations
from state.models import Outbox, StateUpdate
from subclouds.models import EndpointStatus, Fault, Subcloud
from tests.conftest import simulator_fixtures, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


simulator, sim = simulator_fixtures(4, "e2e")


@pytest.fixture
def celery(transactional_db, tmp_path, sim, settings):
    """celery("worker" | "beat") starts that process on the test database with this test's own broker keys."""
    prefix = f"test-celery-{uuid.uuid4().hex[:8]}:"
    settings.CELERY_KEY_PREFIX = prefix
    env = environment(
        connection.settings_dict["NAME"], prefix,
        audit_interval=1, audit_lock_seconds=4, audit_timeout=1, audit_heartbeat_seconds=0.5,
        outbox_poll_seconds=0.3, outbox_backoff_min=0.2, outbox_backoff_max=1,
        audit_worker_concurrency=2,
        dcorch_url=receiver_url(sim.url, "dcorch"), certmon_url=receiver_url(sim.url, "certmon"),
    )
    started = []

    def start(role, name=None):
        process = CeleryProcess(role, tmp_path, env, name=name or f"{role}{len(started)}")
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop(signal.SIGTERM, timeout=20)


def fleet(sim, subcloud_factory, n=4):
    return [subcloud_factory(f"e2e{i}", audit_url=audit_url(sim.url, f"e2e{i}")) for i in range(1, n + 1)]


def availability(name):
    return Subcloud.objects.filter(name=name).values_list("availability_status", flat=True).first()


def offline_alarm(name):
    return Fault.objects.filter(alarm_id="280.001", entity_instance_id=f"subcloud={name}", cleared_at__isnull=True).exists()


def dcorch_states(sim, name):
    return [r["body"]["availability_status"] for r in sim.received("dcorch", subcloud=name)["received"]]


def kill_tree(process):
    """SIGKILL a Celery worker and its pool processes, as a crashed host would lose them."""
    children = psutil.Process(process.proc.pid).children(recursive=True)
    process.proc.kill()
    process.proc.wait(timeout=10)
    for child in children:
        if child.is_running():
            child.kill()
    psutil.wait_procs(children, timeout=10)


def test_it_runs_the_audit_worker_below_the_state_path(celery, settings):
    """DCPORTAL_AUDIT_NICE (default 10): the worker and its pool yield the cores to intake, state workers and feed.

    The worker leads its own session (as under ./dev up and the OCF agents), so its autogroup is lowered too:
    with autogroup scheduling a nice value alone only ranks it within its session.
    """
    worker = celery("worker")
    main = psutil.Process(worker.proc.pid)
    wait_until(lambda: main.children(), timeout=20, message="pool processes")
    assert settings.AUDIT_NICE == 10
    assert main.nice() == 10
    assert {child.nice() for child in main.children()} == {10}
    autogroup = f"/proc/{main.pid}/autogroup"
    if os.path.exists(autogroup):
        with open(autogroup) as f:
            assert f.read().split()[-1] == "10"


def test_it_keeps_the_fleet_current_end_to_end(sim, celery, workers, subcloud_factory):
    subclouds = fleet(sim, subcloud_factory)
    workers(1)
    celery("beat")
    worker = celery("worker")
    wait_until(lambda: all(availability(s.name) == "online" for s in subclouds), timeout=20, message="fleet online")

    # Manage: a triggered audit brings the endpoints in-sync within a second or two.
    operations.update_subcloud(subclouds[0].pk, management_state="managed")
    wait_until(lambda: set(EndpointStatus.objects.filter(subcloud=subclouds[0]).values_list("sync_status", flat=True))
               == {"in-sync"}, timeout=5, message="in-sync after manage")

    # Down in the simulator: offline after two failed cycles, with 280.001; back after one success.
    sim.control(action="offline", subclouds=["e2e2"])
    wait_until(lambda: availability("e2e2") == "offline" and offline_alarm("e2e2"), timeout=15, message="e2e2 offline")
    sent = [u["availability"] for u in StateUpdate.objects.filter(subcloud=subclouds[1]).order_by("id")
            .values_list("payload", flat=True) if u["availability"]]
    assert [(a["availability_status"], a["audit_fail_count"]) for a in sent[-2:]] == [(None, 1), ("offline", 2)]
    wait_until(lambda: dcorch_states(sim, "e2e2") == ["online", "offline"], timeout=10, message="dcorch told offline")
    sim.control(action="online", subclouds=["e2e2"])
    wait_until(lambda: availability("e2e2") == "online" and not offline_alarm("e2e2"), timeout=10, message="back online")
    wait_until(lambda: dcorch_states(sim, "e2e2") == ["online", "offline", "online"], timeout=10, message="dcorch online")
    wait_until(lambda: sim.received("certmon", subcloud="e2e2")["count"] == 2, timeout=10, message="certmon notified")
    assert Subcloud.objects.get(name="e2e2").audit_fail_count == 0

    # dcorch down for a while: nothing lost once it is back, no duplicate, the outbox stays small.
    sim.control(action="receiver-down", receiver="dcorch")
    sim.control(action="offline", subclouds=["e2e3"])
    wait_until(lambda: availability("e2e3") == "offline", timeout=15, message="e2e3 offline")
    sim.control(action="online", subclouds=["e2e3"])
    wait_until(lambda: availability("e2e3") == "online", timeout=10, message="e2e3 online")
    wait_until(lambda: sim.received("dcorch")["refused"] > 0, timeout=10, message="a refused notice")
    assert Outbox.objects.filter(kind="dcorch", delivered_at__isnull=True).count() <= len(subclouds)
    sim.control(action="receiver-up", receiver="dcorch")
    wait_until(lambda: dcorch_states(sim, "e2e3")[-1:] == ["online"], timeout=10, message="dcorch caught up")
    wait_until(lambda: not Outbox.objects.filter(kind="dcorch", delivered_at__isnull=True).exists(), timeout=10,
               message="outbox delivered")
    # Offline then online while it was down: collapsed to the latest state, delivered once.
    assert dcorch_states(sim, "e2e3") == ["online", "online"]

    # A worker killed in the middle of a cycle: the next cycle (on a new worker) repairs everything.
    sim.control(action="unreachable", subclouds=["e2e1"])  # each cycle now lasts about the 1 s probe timeout
    lease = coordination.Lease(cycle.CYCLE_LEASE, 4)
    wait_until(lambda: lease.holder(), timeout=10, message="a cycle in progress")
    sim.control(action="offline", subclouds=["e2e4"])
    kill_tree(worker)
    celery("worker")
    wait_until(lambda: availability("e2e4") == "offline" and availability("e2e1") == "offline", timeout=25,
               message="repaired after the kill")
    assert availability("e2e2") == availability("e2e3") == "online"


def test_it_beats_from_the_main_loops_and_stops_warmly_on_sigterm(sim, celery, subcloud_factory, settings):
    fleet(sim, subcloud_factory, n=2)
    sim.control(action="unreachable", subclouds=["e2e1"])  # every chunk takes the 1 s probe timeout
    beat = celery("beat")
    worker = celery("worker")
    wait_until(lambda: {w["kind"] for w in stats()["workers"] if w["alive"]} == {"audit", "beat"}, timeout=10,
               message="both heartbeats listed")

    for process in (worker, beat):
        wait_until(lambda p=process: time.time() - p.heartbeat.stat().st_mtime < 0.4, timeout=5, message="fresh beat")
        process.send(signal.SIGSTOP)
        try:
            stopped_at = process.heartbeat.stat().st_mtime
            time.sleep(1.5)
            assert process.heartbeat.stat().st_mtime == stopped_at  # a stopped process stops beating
        finally:
            process.send(signal.SIGCONT)
        wait_until(lambda p=process, t=stopped_at: p.heartbeat.stat().st_mtime > t, timeout=5, message="beats again")

    # SIGTERM while a chunk is probing (e2e1's probe hangs for the 1 s timeout): the worker finishes it, exits 0.
    probes = sim.subcloud("e2e1")["probes"]
    wait_until(lambda: sim.subcloud("e2e1")["probes"] > probes, timeout=10, message="a chunk probing")
    token = coordination.Lease(cycle.CYCLE_LEASE, 4).holder()
    assert token
    assert worker.stop(signal.SIGTERM, timeout=20) == 0
    assert (cycle.last_cycle() or {}).get("token") == token
    assert "Warm shutdown" in worker.log()
    assert beat.stop(signal.SIGTERM, timeout=20) == 0
