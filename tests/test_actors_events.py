"""Who did what (actor and source on every update and change-log entry), GET /v1.0/events, the events page,
and availability history (GET /v1.0/subclouds/{ref}/availability) reconstructed from the change log."""

import getpass
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import ApiToken
from state.models import StateChange, StateUpdate
from subclouds.models import Subcloud, SubcloudGroup
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

ONLINE = {"subcloud": None, "availability_status": "online"}


def token_id(client):
    return ApiToken.objects.get(prefix=client.token[:10]).pk


# -- actors ----------------------------------------------------------------------


def test_it_records_the_service_user_token_and_address_of_a_rest_state_update(client_as, subcloud_factory, drain):
    sc = subcloud_factory("sc1")
    client = client_as("service")
    response = client.post("/v1.0/state/availability", {**ONLINE, "subcloud": "sc1"}, format="json",
                           REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 202
    update = StateUpdate.objects.get(subcloud=sc)
    user = ApiToken.objects.get(pk=token_id(client)).user.username
    assert (update.actor, update.source, update.actor_address) == (user, "audit", "10.1.2.3")
    assert update.actor_via == f"token #{token_id(client)} ({client.token[:10]}…)"
    assert client.token not in update.actor_via
    drain()
    change = StateChange.objects.filter(subcloud=sc, changes__has_key="availability_status").get()
    assert (change.actor, change.source, change.actor_via, change.actor_address) == (
        user, "audit", update.actor_via, "10.1.2.3")


def test_it_takes_the_source_from_the_header_or_the_endpoints_usual_caller(client_as, subcloud_factory):
    sc = subcloud_factory("sc1")
    client = client_as("service")
    assert client.post("/v1.0/state/endpoint-status", {"subcloud": "sc1", "endpoint_type": "platform"},
                       format="json").status_code == 202
    assert client.patch("/v1.0/subclouds/sc1/update_status", {"endpoint": "dc-cert", "status": "in-sync"},
                        format="json").status_code == 200
    assert client.post("/v1.0/state/availability", {**ONLINE, "subcloud": "sc1"}, format="json",
                       HTTP_X_DCPORTAL_SOURCE="trigger").status_code == 202
    superuser = client_as("superuser")
    assert superuser.post("/v1.0/state/availability", {**ONLINE, "subcloud": "sc1"}, format="json").status_code == 202
    sources = list(StateUpdate.objects.filter(subcloud=sc).order_by("id").values_list("source", flat=True))
    assert sources == ["dcorch", "certmon", "trigger", "rest"]


def test_it_refuses_an_unknown_source_header_and_accepts_nothing(client_as, subcloud_factory):
    subcloud_factory("sc1")
    response = client_as("service").post("/v1.0/state/availability", {**ONLINE, "subcloud": "sc1"}, format="json",
                                         HTTP_X_DCPORTAL_SOURCE="me")
    assert response.status_code == 400
    assert response.json()["field"] == "X-Dcportal-Source"
    assert not StateUpdate.objects.exists()


def test_it_records_the_operator_of_a_rest_manage(client_as, subcloud_factory):
    sc = subcloud_factory("sc1")
    Subcloud.objects.filter(pk=sc.pk).update(availability_status="online")
    client = client_as("operator")
    assert client.patch("/v1.0/subclouds/sc1", {"management-state": "managed"}, format="json").status_code == 200
    change = StateChange.objects.filter(subcloud=sc, reason="managed").get()
    assert change.actor.startswith("operator-") and change.source == "rest"
    assert change.actor_via.startswith(f"token #{token_id(client)} ")


def test_it_records_a_session_driven_change_as_the_page(subcloud_factory, client):
    sc = subcloud_factory("sc1")
    Subcloud.objects.filter(pk=sc.pk).update(availability_status="online")
    user = make_user("operator")
    client.force_login(user)
    response = client.patch("/v1.0/subclouds/sc1", {"management-state": "managed"}, content_type="application/json")
    assert response.status_code == 200
    change = StateChange.objects.filter(subcloud=sc, reason="managed").get()
    assert (change.actor, change.source) == (user.username, "page")
    assert change.actor_via.startswith("session ") and client.session.session_key not in change.actor_via


def test_it_records_the_os_user_of_an_admin_command(subcloud_factory):
    call_command("subcloud", "add", "--name", "sc9", stdout=StringIO(), stderr=StringIO())
    change = StateChange.objects.get(subcloud_name="sc9", reason="registered")
    assert (change.actor, change.source, change.actor_via) == (getpass.getuser(), "command", "manage.py")


def test_it_records_the_audit_as_the_source_of_its_updates(subcloud_factory):
    from audit import cycle
    from state.kinds import Source

    sc = subcloud_factory("sc1")
    assert cycle.send([(sc.pk, {"availability": None, "endpoints": {"platform": "in-sync"}})]) == 1
    assert cycle.send([(sc.pk, {"availability": None, "endpoints": {"platform": "in-sync"}})], Source.TRIGGER) == 1
    assert list(StateUpdate.objects.order_by("id").values_list("source", flat=True)) == ["audit", "trigger"]


def test_it_shows_the_actor_in_the_subcloud_history(client, subcloud_factory):
    call_command("subcloud", "add", "--name", "sc9", stdout=StringIO(), stderr=StringIO())
    client.force_login(make_user("reader"))
    html = client.get("/portal/subclouds/sc9/history/").content.decode()
    assert "admin command" in html and getpass.getuser() in html and "manage.py" in html


# -- GET /v1.0/events --------------------------------------------------------------


@pytest.mark.parametrize("persona, status", [
    ("reader", 200), ("operator", 200), ("service", 200), ("superuser", 200), ("outsider", 403), (None, 401),
])
def test_it_lets_every_role_read_events(client_as, subcloud_factory, persona, status):
    subcloud_factory("sc1")
    response = client_as(persona).get("/v1.0/events")
    assert response.status_code == status
    if status == 200:
        assert [e["subcloud"] for e in response.json()["events"]] == ["sc1"]


def test_it_filters_and_pages_events(client_as, subcloud_factory):
    group = SubcloudGroup.objects.create(name="east")
    subcloud_factory("sc1", group_id=group)
    subcloud_factory("sc2")
    call_command("subcloud", "add", "--name", "sc3", stdout=StringIO(), stderr=StringIO())
    client = client_as("reader")
    assert [e["subcloud"] for e in client.get("/v1.0/events?group=east").json()["events"]] == ["sc1"]
    assert [e["subcloud"] for e in client.get("/v1.0/events", {"source": "command"}).json()["events"]] == ["sc3"]
    body = client.get("/v1.0/events", {"actor": getpass.getuser(), "kind": "registered"}).json()
    assert [(e["subcloud"], e["kinds"], e["actor"]["source"]) for e in body["events"]] == [("sc3", ["registered"], "command")]
    first = client.get("/v1.0/events?limit=2").json()
    assert [e["subcloud"] for e in first["events"]] == ["sc3", "sc2"] and first["next"] is not None
    second = client.get(f"/v1.0/events?limit=2&before={first['next']}").json()
    assert [e["subcloud"] for e in second["events"]] == ["sc1"] and second["next"] is None
    future = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert client.get("/v1.0/events", {"since": future}).json()["events"] == []
    assert len(client.get("/v1.0/events", {"until": future}).json()["events"]) == 3


@pytest.mark.parametrize("query, field", [
    ({"source": "nobody"}, "source"), ({"kind": "weather"}, "kind"), ({"since": "yesterday"}, "since"),
    ({"limit": "0"}, "limit"), ({"limit": "9999"}, "limit"), ({"before": "x"}, "before"), ({"group": "nope"}, "group"),
    ({"limit": "³"}, "limit"), ({"before": "²"}, "before"), ({"group": "³"}, "group"),  # digits int() refuses
    ({"colour": "red"}, "colour"), ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
])
def test_it_refuses_a_bad_event_filter_naming_the_field(client_as, subcloud_factory, query, field):
    subcloud_factory("sc1")
    before = StateChange.objects.count()
    response = client_as("reader").get("/v1.0/events", query)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field and field in body["errors"] and body["error_message"]
    assert StateChange.objects.count() == before


def test_it_shows_events_with_filters_on_the_events_page(client, subcloud_factory):
    subcloud_factory("sc1")
    call_command("subcloud", "add", "--name", "sc3", stdout=StringIO(), stderr=StringIO())
    client.force_login(make_user("reader"))
    html = client.get("/portal/events/", {"source": "command"}).content.decode()
    assert ">sc3<" in html and ">sc1<" not in html
    bad = client.get("/portal/events/", {"kind": "weather"})
    assert bad.status_code == 400 and "kind: must be one of" in bad.content.decode()


# -- availability history ------------------------------------------------------------


def _subcloud(name, status, registered):
    """A subcloud registered at `registered` (created_at is set on insert, so it is moved afterwards)."""
    sc = Subcloud.objects.create(name=name, region_name=f"r-{name}", availability_status=status)
    Subcloud.objects.filter(pk=sc.pk).update(created_at=registered)
    sc.refresh_from_db()
    return sc


def _log(sc, when, before, after):
    StateChange.objects.create(subcloud=sc, subcloud_name=sc.name, changes={"availability_status": after},
                               previous={"availability_status": before}, created_at=when)


def test_it_computes_uptime_and_periods_from_a_constructed_change_log(settings):
    from state.availability import availability

    settings.STATE_KEEP_CHANGES_HOURS = 24 * 7
    now = timezone.now().replace(microsecond=0)
    sc = _subcloud("sc1", "online", now - timedelta(days=30))
    # Registered long ago; the log (7 days) starts with: offline -> online 30 h ago, online -> offline 6 h ago,
    # offline -> online 3 h ago.
    _log(sc, now - timedelta(hours=30), "offline", "online")
    _log(sc, now - timedelta(hours=6), "online", "offline")
    _log(sc, now - timedelta(hours=3), "offline", "online")
    day = availability(sc, "24h", now)
    assert [(p["status"]) for p in day["periods"]] == ["online", "offline", "online"]
    assert day["seconds"] == {"offline": 3 * 3600.0, "online": 21 * 3600.0}
    assert day["uptime"] == round(21 / 24, 6)
    week = availability(sc, "7d", now)
    # 7 d = 168 h: offline before the first change (138 h), then online 24 h, offline 3 h, online 3 h.
    assert [p["status"] for p in week["periods"]] == ["offline", "online", "offline", "online"]
    assert week["seconds"] == {"offline": (138 + 3) * 3600.0, "online": 27 * 3600.0}
    assert week["uptime"] == round(27 / 168, 6)


def test_it_counts_time_before_the_log_or_the_registration_as_unknown(settings):
    from state.availability import availability

    settings.STATE_KEEP_CHANGES_HOURS = 48
    now = timezone.now().replace(microsecond=0)
    old = _subcloud("old", "offline", now - timedelta(days=30))
    _log(old, now - timedelta(hours=12), "online", "offline")
    week = availability(old, "7d", now)
    assert [p["status"] for p in week["periods"]] == ["unknown", "online", "offline"]
    assert week["seconds"] == {"unknown": 120 * 3600.0, "online": 36 * 3600.0, "offline": 12 * 3600.0}
    assert week["uptime"] == 0.75
    young = _subcloud("young", "offline", now - timedelta(hours=4))
    day = availability(young, "24h", now)
    assert day["seconds"] == {"unknown": 20 * 3600.0, "offline": 4 * 3600.0} and day["uptime"] == 0.0
    settings.STATE_KEEP_CHANGES_HOURS = 0
    assert availability(young, "24h", now)["uptime"] is None


def test_it_answers_availability_over_the_api_for_readers(client_as, subcloud_factory):
    subcloud_factory("sc1")
    reader = client_as("reader")
    body = reader.get("/v1.0/subclouds/sc1/availability", {"window": "7d"}).json()
    assert body["window"] == "7d" and [p["status"] for p in body["periods"]][-1] == "offline"
    assert reader.get("/v1.0/subclouds/sc1/availability").json()["window"] == "24h"
    bad = reader.get("/v1.0/subclouds/sc1/availability", {"window": "1y"})
    assert bad.status_code == 400 and bad.json()["field"] == "window"
    assert reader.get("/v1.0/subclouds/nope/availability").status_code == 404
    assert client_as("outsider").get("/v1.0/subclouds/sc1/availability").status_code == 403
