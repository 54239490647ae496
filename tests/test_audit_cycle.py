"""The audit's work in this process (audit/cycle.py) against a real simulator subprocess, PostgreSQL and Redis.

The Celery processes running the same code are exercised in test_audit_celery.py.
"""

import time
import uuid

import pytest

from audit import coordination, cycle
from simulator.fleet import audit_url
from state.models import Outbox, StateUpdate
from subclouds.models import EndpointStatus, Fault, Subcloud
from tests.conftest import simulator_fixtures

pytestmark = pytest.mark.django_db


simulator, sim = simulator_fixtures(12, "sc")


@pytest.fixture(autouse=True)
def _own_redis_keys(settings):
    settings.CELERY_KEY_PREFIX = f"test-audit-{uuid.uuid4().hex[:8]}:"
    settings.AUDIT_TIMEOUT = 2.0  # a healthy probe on a busy 2-core machine still answers within it


@pytest.fixture
def fleet(sim, subcloud_factory):
    def make(n, **fields):
        return [subcloud_factory(f"sc{i}", audit_url=audit_url(sim.url, f"sc{i}"), **fields) for i in range(1, n + 1)]

    return make


def audit(subclouds, drain):
    result = cycle.audit_subclouds([s.pk for s in subclouds])
    drain()
    return result


def refreshed(subcloud):
    return Subcloud.objects.get(pk=subcloud.pk)


def test_it_brings_new_subclouds_online_with_their_endpoint_statuses(fleet, sim, drain):
    subclouds = fleet(3)
    sim.control(action="drift", subclouds=["sc2"], endpoint="software")
    result = audit(subclouds, drain)
    assert (result.subclouds, result.failures, result.sent) == (3, 0, 3)
    assert {refreshed(s).availability_status for s in subclouds} == {"online"}
    # Unmanaged: in-sync applies to dc-cert only, out-of-sync to any endpoint (endpoint rule 1).
    statuses = dict(EndpointStatus.objects.filter(subcloud=subclouds[1]).values_list("endpoint_type", "sync_status"))
    assert statuses["dc-cert"] == "in-sync" and statuses["software"] == "out-of-sync" and statuses["platform"] == "unknown"
    assert Outbox.objects.filter(kind="certmon", delivered_at__isnull=True).count() == 3


def test_it_takes_a_subcloud_offline_only_after_two_failed_probes_and_back_after_one(fleet, sim, drain):
    subclouds = fleet(3)
    audit(subclouds, drain)
    sc2 = subclouds[1]
    sim.control(action="offline", subclouds=["sc2"])

    assert audit(subclouds, drain).sent == 1
    assert (refreshed(sc2).availability_status, refreshed(sc2).audit_fail_count) == ("online", 1)
    assert not Fault.objects.filter(alarm_id="280.001").exists()

    assert audit(subclouds, drain).sent == 1
    assert (refreshed(sc2).availability_status, refreshed(sc2).audit_fail_count) == ("offline", 2)
    alarm = Fault.objects.get(alarm_id="280.001", cleared_at__isnull=True)
    assert alarm.entity_instance_id == "subcloud=sc2"

    assert audit(subclouds, drain).sent == 1
    assert refreshed(sc2).audit_fail_count == 3

    sim.control(action="online", subclouds=["sc2"])
    assert audit(subclouds, drain).sent == 1
    assert (refreshed(sc2).availability_status, refreshed(sc2).audit_fail_count) == ("online", 0)
    assert not Fault.objects.filter(alarm_id="280.001", cleared_at__isnull=True).exists()
    dcorch = list(Outbox.objects.filter(kind="dcorch", subcloud=sc2).order_by("id").values_list("payload", flat=True))
    assert [p["availability_status"] for p in dcorch] == ["online", "offline", "online"]


def test_it_counts_failures_the_state_workers_have_not_applied_yet(fleet, sim, drain):
    subclouds = fleet(1)
    audit(subclouds, drain)
    sim.control(action="offline", subclouds=["sc1"])
    assert cycle.audit_subclouds([subclouds[0].pk]).sent == 1  # (None, 1), still pending
    assert cycle.audit_subclouds([subclouds[0].pk]).sent == 1  # the second failure, not a first one again
    drain()
    assert (refreshed(subclouds[0]).availability_status, refreshed(subclouds[0]).audit_fail_count) == ("offline", 2)


def test_it_sends_nothing_for_a_fleet_whose_state_did_not_change(fleet, drain):
    subclouds = fleet(5)
    audit(subclouds, drain)
    before = StateUpdate.objects.count()
    result = audit(subclouds, drain)
    assert (result.subclouds, result.sent) == (5, 0)
    assert StateUpdate.objects.count() == before


def test_it_counts_an_unreachable_subcloud_as_a_failure_within_the_probe_timeout(fleet, sim, drain, settings):
    subclouds = fleet(2)
    started = time.monotonic()
    audit(subclouds, drain)
    floor = time.monotonic() - started  # the same audit with every subcloud answering, on this machine now
    # What the first (healthy) cycle left: on a busy machine a probe can miss its deadline too.
    before = refreshed(subclouds[0]).audit_fail_count
    sim.control(action="unreachable", subclouds=["sc1"])
    started = time.monotonic()
    result = audit(subclouds, drain)
    # The probe timeout (not the 5 s default, nor TCP's) on top of this run's own floor; generous for a busy machine.
    assert time.monotonic() - started < 2 * floor + 3 * settings.AUDIT_TIMEOUT
    assert result.failures == 1
    assert refreshed(subclouds[0]).audit_fail_count == before + 1


def test_it_skips_subclouds_without_an_audit_url_and_secondary_ones(fleet, subcloud_factory, drain):
    probed = fleet(2)
    plain = subcloud_factory("no-url")
    Subcloud.objects.filter(pk=probed[1].pk).update(deploy_status="secondary")
    result = audit([*probed, plain], drain)
    assert (result.subclouds, result.sent) == (1, 1)
    assert refreshed(plain).availability_status == "offline"
    assert refreshed(probed[1]).availability_status == "offline"


def test_it_runs_one_cycle_at_a_time_in_chunks_and_records_its_figures(fleet, settings, drain):
    settings.AUDIT_CHUNK = 2
    subclouds = fleet(5)
    queued = []
    token = cycle.start_cycle(lambda *chunk: queued.append(chunk))
    assert token and [len(ids) for _, ids, _, _ in queued] == [2, 2, 1]
    assert cycle.start_cycle(lambda *chunk: queued.append(chunk)) is None  # the lease is held: no overlap
    assert len(queued) == 3
    closed = [cycle.run_chunk(*chunk) for chunk in queued]
    assert closed == [False, False, True]
    figures = cycle.last_cycle()
    assert (figures["subclouds"], figures["failures"], figures["sent"], figures["chunks"]) == (5, 0, 5, 3)
    assert figures["seconds"] > 0
    drain()
    assert {refreshed(s).availability_status for s in subclouds} == {"online"}
    assert cycle.start_cycle(lambda *chunk: None)  # released: the next cycle may start


def test_it_lets_a_cycle_whose_worker_died_expire(fleet, settings):
    settings.AUDIT_LOCK_SECONDS = 0.5
    fleet(1)
    assert cycle.start_cycle(lambda *chunk: None)
    assert cycle.start_cycle(lambda *chunk: None) is None
    time.sleep(0.6)
    assert cycle.start_cycle(lambda *chunk: None)


def test_it_asks_for_another_cycle_when_a_full_audit_is_triggered_during_one(fleet):
    fleet(1)
    assert cycle.start_cycle(lambda *chunk: None)
    assert cycle.start_cycle(lambda *chunk: None, triggered=True) is None
    assert cycle.rerun_requested() is True
    assert cycle.rerun_requested() is False


def test_it_refreshes_a_subcloud_once_its_hourly_slot_passes(fleet, sim, drain):
    subclouds = fleet(1)
    audit(subclouds, drain)
    before = StateUpdate.objects.count()
    result = cycle.audit_subclouds([subclouds[0].pk], since=0.0, now=3600.0)  # a whole period: due
    assert result.sent == 1
    update = StateUpdate.objects.order_by("-id").first()
    assert StateUpdate.objects.count() == before + 1
    assert update.payload["availability"] == {"availability_status": "online", "update_state_only": True,
                                              "audit_fail_count": None}
    assert coordination.key("x").startswith("test-audit-")


def test_it_does_not_load_the_state_of_subclouds_it_will_not_probe(sim, fleet, subcloud_factory):
    """A triggered audit names every subcloud that came online; those without an audit URL are never probed,
    so their endpoints and alarms are not read (5,000 at a time in a dead office)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    probed = fleet(1)
    unprobed = [subcloud_factory(f"nourl{i}") for i in range(3)]
    with CaptureQueriesContext(connection) as queries:
        states, urls = cycle._load([s.pk for s in unprobed])
    assert states == {} and urls == {}
    assert not [q for q in queries.captured_queries if EndpointStatus._meta.db_table in q["sql"]]
    states, urls = cycle._load([s.pk for s in (*probed, *unprobed)])
    assert set(states) == set(urls) == {probed[0].pk}
    assert states[probed[0].pk].endpoints  # the probed one is loaded whole
