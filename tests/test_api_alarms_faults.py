"""/v1.0/alarms and /v1.0/faults (api.md "Alarms"); faults are raised through the real state path."""

import re
import uuid

import pytest
from django.utils import timezone

from state import intake
from state.models import UpdateKind
from subclouds.models import Fault

pytestmark = pytest.mark.django_db

SUMMARY_KEYS = {"region_name", "uuid", "critical_alarms", "major_alarms", "minor_alarms", "warnings", "cloud_status"}
FAULT_KEYS = {"uuid", "alarm_id", "entity_instance_id", "severity", "reason_text", "subcloud", "raised-at"}
TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")


def availability(subcloud, status, drain):
    _, payload = intake.parse_availability({"subcloud": subcloud.name, "availability_status": status})
    intake.accept(UpdateKind.AVAILABILITY, [(subcloud.pk, payload)])
    drain()


def audit(subcloud, drain, **endpoints):
    """What the audit sends: a bulk update (alarmable)."""
    [(_, payload)] = intake.parse_bulk(
        {"subcloud": subcloud.name, "endpoints": {k.replace("_", "-"): v for k, v in endpoints.items()}}, 10
    )
    intake.accept(UpdateKind.BULK, [(subcloud.pk, payload)])
    drain()


@pytest.fixture
def reader(client_as):
    return client_as("reader")


@pytest.fixture
def faulty(subcloud_factory, drain):
    """down: offline after being online (280.001) and two endpoints out of sync (280.002);
    drift: online, one endpoint out of sync; calm: no alarm."""
    down = subcloud_factory("down")
    availability(down, "online", drain)
    audit(down, drain, platform="out-of-sync", kube_rootca="out-of-sync")
    availability(down, "offline", drain)
    # Offline set every endpoint unknown (clearing 280.002); the audit reports them out of sync again.
    audit(down, drain, platform="out-of-sync", kube_rootca="out-of-sync")
    drift = subcloud_factory("drift")
    availability(drift, "online", drain)
    audit(drift, drain, identity="out-of-sync", platform="in-sync")
    calm = subcloud_factory("calm")
    return down, drift, calm


def test_it_summarises_alarms_per_subcloud(reader, faulty):
    down, drift, calm = faulty
    r = reader.get("/v1.0/alarms")
    assert r.status_code == 200
    assert list(r.json()) == ["alarm_summary"]
    summary = r.json()["alarm_summary"]
    for entry in summary:
        assert set(entry) == SUMMARY_KEYS
        uuid.UUID(entry["uuid"])
    assert [
        {k: v for k, v in e.items() if k != "uuid"} for e in summary
    ] == [
        {"region_name": "down", "critical_alarms": 1, "major_alarms": 2, "minor_alarms": 0, "warnings": 0,
         "cloud_status": "critical"},
        {"region_name": "drift", "critical_alarms": 0, "major_alarms": 1, "minor_alarms": 0, "warnings": 0,
         "cloud_status": "degraded"},
        {"region_name": "calm", "critical_alarms": 0, "major_alarms": 0, "minor_alarms": 0, "warnings": 0,
         "cloud_status": "OK"},
    ]
    assert len({e["uuid"] for e in summary}) == 3
    assert reader.get("/v1.0/alarms/").json() == r.json()


def test_it_stops_counting_cleared_alarms(reader, faulty, drain):
    down, drift, calm = faulty
    availability(down, "online", drain)  # clears 280.001
    audit(drift, drain, identity="unknown")  # clears its 280.002 (in-sync is not applied: unmanaged)
    by_name = {e["region_name"]: e for e in reader.get("/v1.0/alarms").json()["alarm_summary"]}
    assert (by_name["down"]["critical_alarms"], by_name["down"]["major_alarms"], by_name["down"]["cloud_status"]) == (
        0, 2, "degraded")
    assert (by_name["drift"]["major_alarms"], by_name["drift"]["cloud_status"]) == (0, "OK")
    assert Fault.objects.filter(cleared_at__isnull=False).count() >= 2  # history kept


def test_it_counts_minor_alarms_and_warnings(reader, subcloud_factory):
    """The state service raises only critical and major alarms; these rows stand for other fault sources."""
    sc = subcloud_factory("noisy")
    now = timezone.now()
    for i, severity in enumerate(["minor", "minor", "warning"]):
        Fault.objects.create(alarm_id="999.001", entity_instance_id=f"subcloud=noisy.x={i}", severity=severity,
                             reason_text="r", subcloud=sc, subcloud_name="noisy", raised_at=now)
    Fault.objects.create(alarm_id="999.001", entity_instance_id="subcloud=noisy.x=old", severity="minor",
                         reason_text="r", subcloud=sc, subcloud_name="noisy", raised_at=now, cleared_at=now)
    [entry] = reader.get("/v1.0/alarms").json()["alarm_summary"]
    assert (entry["minor_alarms"], entry["warnings"], entry["cloud_status"]) == (2, 1, "OK")


def test_it_lists_active_faults_with_exact_keys(reader, faulty):
    down, drift, calm = faulty
    r = reader.get("/v1.0/faults/")
    assert r.status_code == 200
    assert list(r.json()) == ["faults"]
    faults = r.json()["faults"]
    for f in faults:
        assert set(f) == FAULT_KEYS
        assert TIME_FORMAT.match(f["raised-at"])
        uuid.UUID(f["uuid"])
    got = sorted((f["subcloud"], f["alarm_id"], f["entity_instance_id"], f["severity"]) for f in faults)
    assert got == [
        ("down", "280.001", "subcloud=down", "critical"),
        ("down", "280.002", "subcloud=down.resource=kube-rootca", "major"),
        ("down", "280.002", "subcloud=down.resource=platform", "major"),
        ("drift", "280.002", "subcloud=drift.resource=identity", "major"),
    ]
    active = Fault.objects.filter(cleared_at__isnull=True)
    assert {f["uuid"] for f in faults} == {str(u) for u in active.values_list("uuid", flat=True)}
    offline = next(f for f in faults if f["alarm_id"] == "280.001")
    db = Fault.objects.get(uuid=offline["uuid"])
    assert offline["reason_text"] == db.reason_text and "down" in db.reason_text
    assert offline["raised-at"] == db.raised_at.strftime("%Y-%m-%d %H:%M:%S.%f")
    # Cleared ones (the 280.002 cleared when down went offline) are history, not listed.
    assert Fault.objects.filter(subcloud=down, cleared_at__isnull=False).count() == 2


@pytest.mark.parametrize(
    "query, expected",
    [
        ("subcloud=down", {"subcloud=down", "subcloud=down.resource=kube-rootca", "subcloud=down.resource=platform"}),
        ("subcloud=drift", {"subcloud=drift.resource=identity"}),
        ("subcloud=calm", set()),
        ("subcloud=nosuch", set()),
        ("alarm_id=280.001", {"subcloud=down"}),
        ("alarm_id=280.002&subcloud=down", {"subcloud=down.resource=kube-rootca", "subcloud=down.resource=platform"}),
        ("alarm_id=280.001&subcloud=drift", set()),
    ],
)
def test_it_filters_faults(reader, faulty, query, expected):
    r = reader.get("/v1.0/faults?" + query)
    assert r.status_code == 200
    assert {f["entity_instance_id"] for f in r.json()["faults"]} == expected
