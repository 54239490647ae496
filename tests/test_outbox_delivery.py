"""Delivering the outbox (audit/outbox.py) to the simulator's fake dcorch / certmon receivers."""

import logging
import time
import uuid

import pytest

from audit import outbox
from dcportal.processes import Simulator, environment
from simulator.fleet import receiver_url
from state import intake
from state.models import Outbox

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    sim = Simulator(1, tmp_path_factory.mktemp("sim"), environment("unused", "unused")).start()
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator, settings):
    for kind in ("dcorch", "certmon"):
        simulator.control(action="receiver-up", receiver=kind)
        simulator.control(action="receiver-reset", receiver=kind)
    settings.CELERY_KEY_PREFIX = f"test-outbox-{uuid.uuid4().hex[:8]}:"
    settings.DCORCH_URL = receiver_url(simulator.url, "dcorch")
    settings.CERTMON_URL = receiver_url(simulator.url, "certmon")
    settings.OUTBOX_BACKOFF = (0.2, 0.4)
    return simulator


def set_availability(subcloud, status, drain):
    intake.accept("availability", [(subcloud.pk, {"availability_status": status, "update_state_only": False,
                                                  "audit_fail_count": 0 if status == "online" else 2})])
    drain()


def pending(kind):
    return Outbox.objects.filter(kind=kind, delivered_at__isnull=True).count()


def states_received(sim, name):
    return [(r["body"]["management_state"], r["body"]["availability_status"])
            for r in sim.received("dcorch", subcloud=name)["received"]]


def test_it_tells_dcorch_each_change_in_order_and_certmon_each_online(sim, subcloud_factory, drain):
    sc = subcloud_factory("east-1")
    set_availability(sc, "online", drain)
    assert outbox.deliver_notifications("dcorch").delivered == 1
    assert outbox.deliver_notifications("certmon").delivered == 1
    set_availability(sc, "offline", drain)
    assert outbox.deliver_notifications("dcorch").delivered == 1
    assert outbox.deliver_notifications("dcorch").delivered == 0  # delivered once, not again
    assert (pending("dcorch"), pending("certmon")) == (0, 0)
    assert states_received(sim, "east-1") == [("unmanaged", "online"), ("unmanaged", "offline")]
    body = sim.received("dcorch")["received"][0]["body"]
    assert body == {"subcloud": "east-1", "region_name": sc.region_name, "management_state": "unmanaged",
                    "availability_status": "online"}
    assert [r["body"] for r in sim.received("certmon")["received"]] == [{"subcloud": "east-1", "region_name": sc.region_name}]


def test_it_keeps_notices_while_the_receiver_is_down_collapsed_to_the_latest_and_loses_nothing(
    sim, subcloud_factory, drain
):
    subclouds = [subcloud_factory(f"west-{i}") for i in range(3)]
    sim.control(action="receiver-down", receiver="dcorch")
    for status in ("online", "offline", "online"):
        for sc in subclouds:
            set_availability(sc, status, drain)
        result = outbox.deliver_notifications("dcorch")
        assert result.failed and result.delivered == 0
        # The outbox does not grow while the receiver is down: one pending notice per subcloud.
        assert pending("dcorch") == 3
        time.sleep(0.45)  # past the backoff, so each run tries again
    assert sim.received("dcorch")["refused"] >= 3
    assert set(Outbox.objects.filter(kind="dcorch", delivered_at__isnull=True).values_list("attempts", flat=True)) >= {1}

    sim.control(action="receiver-up", receiver="dcorch")
    assert outbox.deliver_notifications("dcorch").delivered == 3
    assert pending("dcorch") == 0
    for sc in subclouds:
        assert states_received(sim, sc.name) == [("unmanaged", "online")]


def test_it_backs_off_while_the_receiver_stays_down(sim, subcloud_factory, drain, settings):
    settings.OUTBOX_BACKOFF = (30.0, 60.0)
    set_availability(subcloud_factory("north-1"), "online", drain)
    sim.control(action="receiver-down", receiver="dcorch")
    assert outbox.deliver_notifications("dcorch").failed
    refused = sim.received("dcorch")["refused"]
    assert outbox.deliver_notifications("dcorch").failed is False  # waiting: no attempt
    assert sim.received("dcorch")["refused"] == refused
    assert pending("dcorch") == 1


def test_it_drops_notices_when_no_receiver_is_configured_and_says_so_once(sim, subcloud_factory, drain, settings, caplog):
    settings.DCORCH_URL = ""
    outbox._unset_logged.discard("dcorch")
    sc = subcloud_factory("south-1")
    with caplog.at_level(logging.WARNING, logger="audit.outbox"):
        set_availability(sc, "online", drain)
        assert outbox.deliver_notifications("dcorch").dropped == 1
        set_availability(sc, "offline", drain)
        assert outbox.deliver_notifications("dcorch").dropped == 1
    assert pending("dcorch") == 0
    assert sim.received("dcorch")["count"] == 0
    assert [r.getMessage() for r in caplog.records].count(
        "DCPORTAL_DCORCH_URL is not set: dcorch notifications are not sent (dropped)") == 1


def test_it_drops_a_notice_the_receiver_refuses_as_bad(sim, subcloud_factory, drain, settings):
    settings.DCORCH_URL = sim.url + "/control"  # answers 400 to a notice: a permanent refusal
    set_availability(subcloud_factory("lab-1"), "online", drain)
    result = outbox.deliver_notifications("dcorch")
    assert (result.delivered, result.dropped, result.failed) == (0, 1, False)
    assert pending("dcorch") == 0


def test_it_queues_triggered_audits_coalesced(subcloud_factory, drain, sim):
    subclouds = [subcloud_factory(f"trig-{i}") for i in range(3)]
    for sc in subclouds:
        set_availability(sc, "online", drain)  # going online triggers an audit of that subcloud
        set_availability(sc, "offline", drain)
        set_availability(sc, "online", drain)
    for status in ("out-of-sync", "unknown"):  # software set to unknown: that audit for everyone (endpoint rule 6)
        intake.accept("endpoint", [(subclouds[0].pk, {"endpoint_type": "software", "sync_status": status,
                                                      "alarmable": True, "ignore_endpoints": []})])
        drain()
    queued, fleet = [], []
    assert outbox.dispatch_triggered_audits(queued.append, lambda: fleet.append(True)) == (3, True)
    assert queued == [sorted(s.pk for s in subclouds)]
    assert fleet == [True]
    assert Outbox.objects.filter(kind__in=outbox.AUDIT_KINDS, delivered_at__isnull=True).count() == 0
    assert outbox.dispatch_triggered_audits(queued.append, lambda: fleet.append(True)) == (0, False)
