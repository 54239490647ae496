"""The worker's apply path on real PostgreSQL: persistence, ordering, coalescing, round trips."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from state import intake
from state.models import Outbox, StateChange, StateUpdate
from state.worker import apply_batch
from subclouds.choices import ENDPOINT_TYPES
from subclouds.models import EndpointStatus, Fault, Subcloud

pytestmark = pytest.mark.django_db

ALL_IN_SYNC = dict.fromkeys(ENDPOINT_TYPES, "in-sync")
STATE_TABLES = ("subclouds_subcloud", "subclouds_endpointstatus", "subclouds_fault", "state_statechange", "state_outbox")


def online(sc):
    return intake.accept("availability", [(sc.pk, {"availability_status": "online", "audit_fail_count": 0})])


def bulk(sc, endpoints=None, availability=None):
    return intake.accept("bulk", [(sc.pk, {"availability": availability, "endpoints": endpoints or {}})])


def endpoints_of(sc):
    return dict(EndpointStatus.objects.filter(subcloud=sc).values_list("endpoint_type", "sync_status"))


def writes(queries):
    return [q["sql"] for q in queries if q["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]


def test_it_persists_offline_alarm_endpoints_outbox_and_change_log(subcloud_factory, drain):
    sc = subcloud_factory("sc1")
    online(sc)
    drain()
    bulk(sc, {"platform": "out-of-sync", "dc-cert": "in-sync"})
    drain()
    assert Fault.objects.filter(alarm_id="280.002", entity_instance_id="subcloud=sc1.resource=platform",
                                cleared_at__isnull=True).exists()
    _, sequence = intake.accept("availability", [(sc.pk, {"availability_status": "offline", "audit_fail_count": 2})])
    drain()
    sc.refresh_from_db()
    assert sc.availability_status == "offline" and sc.audit_fail_count == 2
    assert set(endpoints_of(sc).values()) == {"unknown"}
    active = list(Fault.objects.filter(cleared_at__isnull=True).values_list("alarm_id", "entity_instance_id", "severity"))
    assert active == [("280.001", "subcloud=sc1", "critical")]
    # The cleared 280.002 stays in history.
    assert Fault.objects.filter(alarm_id="280.002", cleared_at__isnull=False).count() == 1
    last = StateChange.objects.filter(subcloud=sc).latest("id")
    assert last.sequence == sequence
    assert last.changes["availability_status"] == "offline" and last.previous["availability_status"] == "online"
    assert [f["alarm_id"] for f in last.faults_raised] == ["280.001"]
    assert [f["alarm_id"] for f in last.faults_cleared] == ["280.002"]
    outbox = list(Outbox.objects.filter(subcloud=sc).order_by("id").values_list("kind", "payload"))
    assert ("dcorch", {"subcloud": "sc1", "region_name": sc.region_name, "management_state": "unmanaged",
                       "availability_status": "offline"}) in outbox
    assert [k for k, _ in outbox].count("certmon") == 1


def test_it_registers_without_an_alarm_and_starts_offline_unmanaged(subcloud_factory):
    sc = subcloud_factory("fresh")
    assert (sc.availability_status, sc.management_state, sc.deploy_status) == ("offline", "unmanaged", "complete")
    assert endpoints_of(sc) == dict.fromkeys(ENDPOINT_TYPES, "unknown")
    assert not Fault.objects.exists()


def test_it_applies_updates_of_one_subcloud_in_sequence_order_in_one_transaction(subcloud_factory):
    sc = subcloud_factory("sc1")
    online(sc)
    flips = [("in-sync" if i % 2 else "out-of-sync") for i in range(50)]
    for status in flips:
        intake.accept("endpoint", [(sc.pk, {"endpoint_type": "dc-cert", "sync_status": status})])
    result = apply_batch(1000, "t")
    assert result.subclouds == 1 and result.applied == 51
    assert endpoints_of(sc)["dc-cert"] == flips[-1]
    # Coalesced: one change-log row for the whole flood, holding the highest sequence.
    change = StateChange.objects.get(subcloud=sc, reason="update")
    assert change.sequence == StateUpdate.objects.latest("id").id
    assert not StateUpdate.objects.filter(applied_at__isnull=True).exists()


def test_it_marks_noops_and_writes_nothing_for_them(subcloud_factory, drain):
    sc = subcloud_factory("sc1")
    online(sc)
    drain()
    intake.accept("availability", [(sc.pk, {"availability_status": "online", "audit_fail_count": 0})])
    intake.accept("endpoint", [(sc.pk, {"endpoint_type": "platform", "sync_status": "in-sync"})])  # unmanaged: rule 1
    with CaptureQueriesContext(connection) as ctx:
        result = apply_batch(1000, "t")
    assert (result.applied, result.noops) == (0, 2)
    assert not [sql for sql in writes(ctx.captured_queries) if any(t in sql for t in STATE_TABLES)]
    assert list(StateUpdate.objects.order_by("id").values_list("outcome", flat=True))[-2:] == ["noop", "noop"]


def test_it_applies_a_bulk_update_in_a_constant_number_of_round_trips(subcloud_factory, drain):
    """The original needed 3 transactions (23 before that); here one transaction for any batch size."""
    many = [subcloud_factory(f"m{i}") for i in range(200)]
    one = subcloud_factory("one")
    for sc in [one, *many]:
        online(sc)
    drain()
    bulk(one, ALL_IN_SYNC | {"platform": "out-of-sync"}, {"availability_status": "offline", "audit_fail_count": 2})
    with CaptureQueriesContext(connection) as single:
        assert apply_batch(1000, "t").applied == 1
    intake.accept("bulk", [(sc.pk, {"availability": {"availability_status": "offline"},
                                     "endpoints": ALL_IN_SYNC | {"platform": "out-of-sync"}}) for sc in many])
    with CaptureQueriesContext(connection) as batch:
        assert apply_batch(1000, "t").applied == 200
    print(f"round trips: one subcloud {len(single)}, 200 subclouds {len(batch)}")
    assert len(single) <= 14
    assert len(batch) == len(single)
    assert Fault.objects.filter(alarm_id="280.001", cleared_at__isnull=True).count() == 201
    assert Fault.objects.filter(alarm_id="280.002", cleared_at__isnull=True).count() == 201


@pytest.mark.django_db(transaction=True)
def test_it_skips_subclouds_another_transaction_holds_and_applies_them_later(subcloud_factory, drain):
    import threading

    from django.db import transaction

    from state import store

    a, b = subcloud_factory("a"), subcloud_factory("b")
    online(a)
    online(b)
    locked, release = threading.Event(), threading.Event()

    def hold_a():
        with transaction.atomic():
            store.lock_subclouds([a.pk])
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_a)
    holder.start()
    assert locked.wait(10)
    try:
        result = apply_batch(1000, "t")
    finally:
        release.set()
        holder.join(10)
    assert result.subclouds == 1
    assert Subcloud.objects.get(pk=b.pk).availability_status == "online"
    assert Subcloud.objects.get(pk=a.pk).availability_status == "offline"
    drain()
    assert Subcloud.objects.get(pk=a.pk).availability_status == "online"


def test_it_records_manage_and_unmanage_in_the_change_log_and_outbox(subcloud_factory, drain):
    from state import operations

    sc = subcloud_factory("sc1")
    online(sc)
    drain()
    bulk(sc, ALL_IN_SYNC)
    drain()
    operations.update_subcloud(sc.pk, management_state="managed")
    bulk(sc, ALL_IN_SYNC)
    drain()
    assert set(endpoints_of(sc).values()) == {"in-sync"}
    operations.update_subcloud(sc.pk, management_state="unmanaged")
    assert endpoints_of(sc) == dict.fromkeys(ENDPOINT_TYPES, "unknown") | {"dc-cert": "in-sync"}
    reasons = list(
        StateChange.objects.filter(subcloud=sc).exclude(reason="update").order_by("id").values_list("reason", flat=True)
    )
    assert reasons == ["registered", "managed", "unmanaged"]
    kinds = list(Outbox.objects.filter(subcloud=sc).order_by("id").values_list("kind", flat=True))
    # manage: dcorch + audit; the bulk after it: identity leaves unknown (rule 4) -> audit; unmanage: dcorch.
    assert kinds[-4:] == ["dcorch", "audit-subcloud", "audit-subcloud", "dcorch"]


@pytest.mark.django_db(transaction=True)
def test_it_keeps_revisions_in_commit_order(subcloud_factory):
    """First to lock, last to commit: its revision still sorts before a later transaction's.

    Transaction `first` locks its subcloud and appends its log row, then waits
    before committing; `second` locks another subcloud and appends. Without the
    change log's lock `second` would commit a higher revision while the lower
    one is still invisible, and a client that has seen revision R would miss a
    change below R. With it, `second` waits at append until `first` commits.
    """
    import threading
    import time

    from django.db import transaction
    from django.utils import timezone

    from state import changelog

    subclouds = [subcloud_factory(f"s{i}") for i in range(2)]
    appended, go = threading.Event(), threading.Event()
    revision, pid, errors = {}, {}, []

    def write(who, sc, before_commit):
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pid[who] = cur.fetchone()[0]
                Subcloud.objects.select_for_update().get(pk=sc.pk)
                row = {"subcloud_id": sc.pk, "subcloud_name": sc.name, "changes": {"description": who},
                       "previous": {}, "faults_raised": [], "faults_cleared": [], "sequence": None,
                       "reason": "edit", "created_at": timezone.now()}
                [revision[who]] = changelog.append(cur, [row])
                before_commit()
        except Exception as exc:  # noqa: BLE001 - a thread's failure is reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    def hold():
        appended.set()
        assert go.wait(60), "the test never let the first transaction commit"

    first = threading.Thread(target=write, args=("first", subclouds[0], hold))
    second = threading.Thread(target=write, args=("second", subclouds[1], lambda: None))
    first.start()
    assert appended.wait(60)
    second.start()
    # Until `second` has committed or is waiting on a lock (the change log's), as PostgreSQL reports it.
    while second.is_alive():
        with connection.cursor() as cur:
            cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid.get("second", 0)])
            if cur.fetchone() == ("Lock",):
                break
        time.sleep(0.01)
    visible = set(StateChange.objects.filter(reason="edit").values_list("id", flat=True))
    go.set()
    first.join(60)
    second.join(60)
    assert not errors
    # No revision became visible before a lower one: the second's waited for the first's commit...
    assert visible == set()
    # ...and revision order is commit order.
    assert revision["first"] < revision["second"]
    assert list(StateChange.objects.filter(reason="edit").order_by("id").values_list("changes__description", flat=True)) == [
        "first", "second"]


def test_it_rolls_back_a_failing_update_marks_it_failed_and_applies_the_rest(subcloud_factory, drain):
    from django.utils import timezone

    sc = subcloud_factory("sc1")
    online(sc)
    # Bypasses validation on purpose: a payload the rules cannot apply.
    StateUpdate.objects.create(subcloud=sc, kind="availability", accepted_at=timezone.now(),
                               payload={"availability_status": "offline", "audit_fail_count": "many"})
    bulk(sc, {"dc-cert": "in-sync"})
    result = apply_batch(1000, "t")
    assert (result.applied, result.failed) == (2, 1)
    sc.refresh_from_db()
    assert sc.availability_status == "online"  # the failed update left nothing behind
    assert endpoints_of(sc)["dc-cert"] == "in-sync"
    assert list(StateUpdate.objects.order_by("id").values_list("outcome", flat=True)) == ["applied", "failed", "applied"]


def test_it_prunes_only_what_is_past_retention(subcloud_factory, drain):
    from datetime import timedelta

    from django.utils import timezone

    from state.worker import prune

    sc = subcloud_factory("sc1")
    online(sc)
    drain()
    online(sc)  # pending: never pruned
    old = timezone.now() - timedelta(days=30)
    StateUpdate.objects.filter(applied_at__isnull=False).update(applied_at=old)
    StateChange.objects.update(created_at=old)
    fresh = StateChange.objects.create(subcloud=sc, subcloud_name="sc1", reason="update", created_at=timezone.now())
    assert prune(timedelta(hours=24), timedelta(days=7)) == 3
    assert list(StateUpdate.objects.values_list("applied_at", flat=True)) == [None]
    assert list(StateChange.objects.values_list("id", flat=True)) == [fresh.id]


def test_it_ignores_bulk_endpoints_the_subcloud_does_not_have(subcloud_factory, drain):
    sc = subcloud_factory("sc1")
    online(sc)
    drain()
    EndpointStatus.objects.filter(subcloud=sc, endpoint_type="firmware").delete()
    bulk(sc, {"firmware": "out-of-sync", "dc-cert": "in-sync"})
    result = apply_batch(1000, "t")
    assert (result.applied, result.failed) == (1, 0)
    assert endpoints_of(sc)["dc-cert"] == "in-sync" and "firmware" not in endpoints_of(sc)


def test_it_logs_a_delete_as_one_change_with_the_cleared_alarms(subcloud_factory, drain):
    from state import operations

    sc = subcloud_factory("gone")
    online(sc)
    drain()
    intake.accept("availability", [(sc.pk, {"availability_status": "offline"})])
    drain()
    operations.delete_subcloud(sc.pk)
    (row,) = StateChange.objects.filter(subcloud_name="gone", reason="deleted")
    assert row.changes == {"deleted": True}
    assert [f["alarm_id"] for f in row.faults_cleared] == ["280.001"]
    assert not Fault.objects.filter(cleared_at__isnull=True).exists()


def test_it_copes_with_a_claimed_subcloud_whose_updates_another_worker_applied(subcloud_factory, drain, monkeypatch):
    """The race: EXISTS saw pending updates, a peer applied them, then our row lock succeeded."""
    from state import store

    sc = subcloud_factory("raced")
    online(sc)
    drain()  # "the peer" applied everything
    real_lock = store.lock_pending
    monkeypatch.setattr(store, "lock_pending", lambda limit: store.lock_subclouds([sc.pk]) or real_lock(limit))
    result = apply_batch(1000, "t")
    assert (result.subclouds, result.applied, result.noops, result.failed) == (1, 0, 0, 0)
