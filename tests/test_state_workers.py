"""Real `runworker dcmanager-state` processes: races, SIGKILL, doorbells, SIGTERM."""

import signal
import time

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from state import broadcast, doorbell, intake
from state.models import StateChange, StateUpdate, WorkerHeartbeat
from subclouds.models import EndpointStatus, Subcloud

from .conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def pending():
    return StateUpdate.objects.filter(applied_at__isnull=True).count()


def dc_cert_statuses():
    return dict(EndpointStatus.objects.filter(endpoint_type="dc-cert").values_list("subcloud__name", "sync_status"))


def online_fleet(subcloud_factory, n):
    fleet = [subcloud_factory(f"sc{i}") for i in range(n)]
    Subcloud.objects.update(availability_status="online")
    return fleet


def flood(fleet, rounds, expected):
    """Alternate dc-cert in-sync / out-of-sync per subcloud; remember the last accepted status."""
    for r in range(rounds):
        rows = []
        for i, sc in enumerate(fleet):
            status = "in-sync" if (r + i) % 2 else "out-of-sync"
            rows.append((sc.pk, {"endpoint_type": "dc-cert", "sync_status": status, "alarmable": True}))
            expected[sc.name] = status
        intake.accept("endpoint", rows)


def assert_sequence_order(fleet):
    """Per subcloud, the change log's sequences strictly increase with revision: applied in acceptance order."""
    for sc in fleet:
        sequences = list(
            StateChange.objects.filter(subcloud=sc, reason="update").order_by("id").values_list("sequence", flat=True)
        )
        assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)


def test_it_ends_two_racing_workers_in_the_state_of_the_highest_sequence(workers, subcloud_factory):
    fleet = online_fleet(subcloud_factory, 40)
    workers(2)
    expected = {}
    for _ in range(10):
        flood(fleet, 3, expected)
        time.sleep(0.02)
    wait_until(lambda: pending() == 0, message="all updates applied")
    assert dc_cert_statuses() == expected
    assert_sequence_order(fleet)
    assert set(StateUpdate.objects.values_list("worker", flat=True)) <= {"w0", "w1"}
    # The alarms agree with the final statuses.
    from subclouds.models import Fault

    alarmed = set(Fault.objects.filter(cleared_at__isnull=True).values_list("entity_instance_id", flat=True))
    assert alarmed == {f"subcloud={n}.resource=dc-cert" for n, s in expected.items() if s == "out-of-sync"}


def test_it_loses_nothing_when_a_worker_is_killed_mid_stream(workers, subcloud_factory):
    fleet = online_fleet(subcloud_factory, 200)
    expected = {}
    flood(fleet, 25, expected)
    # Small batches: the kill lands while most of the backlog is still pending.
    (first,) = workers(1, prefix="victim", batch=5)
    wait_until(lambda: StateUpdate.objects.filter(applied_at__isnull=False).exists(), message="some progress")
    assert first.kill(signal.SIGKILL) == -signal.SIGKILL
    left = pending()
    assert left > 0
    flood(fleet, 5, expected)  # accepted while no worker runs
    workers(1, prefix="rescuer")
    wait_until(lambda: pending() == 0, timeout=60, message="backlog applied after restart")
    assert dc_cert_statuses() == expected
    assert not StateUpdate.objects.filter(outcome="failed").exists()
    assert_sequence_order(fleet)


def test_it_applies_updates_whose_doorbell_was_lost(workers, subcloud_factory):
    fleet = online_fleet(subcloud_factory, 3)
    workers(1)
    # Written straight to the intake table: no doorbell at all; the sweep finds them.
    StateUpdate.objects.bulk_create(
        StateUpdate(subcloud=sc, kind="endpoint", payload={"endpoint_type": "dc-cert", "sync_status": "in-sync"},
                    accepted_at=timezone.now())
        for sc in fleet
    )
    wait_until(lambda: pending() == 0, timeout=10, message="sweep applies un-rung updates")
    assert set(dc_cert_statuses().values()) == {"in-sync"}


def test_it_changes_nothing_on_duplicated_doorbells(workers, subcloud_factory):
    fleet = online_fleet(subcloud_factory, 3)
    (w,) = workers(1)
    expected = {}
    flood(fleet, 2, expected)
    wait_until(lambda: pending() == 0, message="flood applied")
    before = (StateChange.objects.count(), list(StateUpdate.objects.order_by("id").values_list("id", "outcome")))
    layer = get_channel_layer()
    for _ in range(200):
        async_to_sync(doorbell.aring)(layer)
    time.sleep(1.5)  # several sweeps and every doorbell consumed
    assert (StateChange.objects.count(), list(StateUpdate.objects.order_by("id").values_list("id", "outcome"))) == before
    assert dc_cert_statuses() == expected
    assert w.proc.poll() is None, w.log()


def test_it_finishes_its_batch_and_exits_0_on_sigterm(workers, subcloud_factory):
    fleet = online_fleet(subcloud_factory, 50)
    (w,) = workers(1)
    flood(fleet, 20, {})
    wait_until(lambda: StateUpdate.objects.filter(applied_at__isnull=False).exists(), message="work started")
    assert w.kill(signal.SIGTERM) == 0
    assert "stopped" in w.log()
    # Whatever it applied, it applied whole: every update of a subcloud up to its last applied one is marked.
    for sc in fleet:
        marks = list(StateUpdate.objects.filter(subcloud=sc).order_by("id").values_list("applied_at", flat=True))
        applied = [m is not None for m in marks]
        assert applied == sorted(applied, reverse=True)


def test_it_publishes_heartbeats_and_shows_in_stats(workers, client_as):
    workers(2)
    wait_until(lambda: WorkerHeartbeat.objects.filter(name__in=["w0", "w1"]).count() == 2, message="heartbeats")
    stats = client_as("reader").get("/v1.0/state/stats").json()
    live = {w["name"]: w for w in stats["workers"]}
    assert live["w0"]["alive"] and live["w1"]["alive"] and live["w0"]["pid"] != live["w1"]["pid"]


def test_it_wakes_on_the_doorbell_well_before_the_sweep(workers, subcloud_factory):
    """With a 60 s sweep, only the doorbell can get these applied within the deadline."""
    fleet = online_fleet(subcloud_factory, 2)
    workers(2, sweep=60)
    for round_ in range(5):
        status = "in-sync" if round_ % 2 else "out-of-sync"
        started = time.monotonic()
        intake.accept("endpoint", [(sc.pk, {"endpoint_type": "dc-cert", "sync_status": status}) for sc in fleet])
        wait_until(lambda: pending() == 0, timeout=30, message=f"round {round_} applied by doorbell")
        assert time.monotonic() - started < 30  # half the sweep: only the doorbell explains it, even on a busy machine
    assert set(dc_cert_statuses().values()) == {status}


async def test_it_skips_the_doorbells_in_an_event_loop_thread_instead_of_raising():
    """Sync code called from async code (a test driving a browser, an async view) accepts work all the same:
    async_to_sync cannot run there, and the workers' sweep and the feeds' poll cover a skipped doorbell."""
    doorbell.ring()
    broadcast.wake_feeds()
