"""The pages' server side: access per persona, what each page renders, the history behind the overview."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from portal import history
from state import operations
from state.models import StateChange
from subclouds.models import Subcloud
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

PAGES = ("/portal/", "/portal/subclouds/", "/portal/subclouds/sc1/", "/portal/subclouds/sc1/history/", "/portal/groups/",
         "/portal/alarms/")


def browser_as(persona):
    client = Client()
    if persona is not None:
        client.force_login(make_user(persona))
    return client


def test_it_sends_only_browsers_asking_for_html_from_root_to_the_pages():
    client = Client()
    r = client.get("/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert r.status_code == 302
    assert r["Location"] == "/portal/"
    for accept in (None, "application/json", "*/*"):
        r = client.get("/", **({"HTTP_ACCEPT": accept} if accept else {}))
        assert r.status_code == 200
        assert r.json()["versions"][0]["id"] == "v1.0"


@pytest.mark.parametrize("path", PAGES)
def test_it_sends_anonymous_visitors_to_the_login_page(path, subcloud_factory):
    subcloud_factory("sc1")
    r = browser_as(None).get(path)
    assert r.status_code == 302
    assert r["Location"] == f"/login/?next={path}"


@pytest.mark.parametrize("path", PAGES)
def test_it_refuses_the_pages_to_an_account_without_a_role(path, subcloud_factory):
    subcloud_factory("sc1")
    r = browser_as("outsider").get(path)
    assert r.status_code == 403
    assert b"no role" in r.content


@pytest.mark.parametrize("persona", ["reader", "operator", "service", "superuser"])
@pytest.mark.parametrize("path", PAGES)
def test_it_shows_every_page_to_every_role(path, persona, subcloud_factory):
    subcloud_factory("sc1")
    r = browser_as(persona).get(path)
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(("persona", "has_actions"), [("reader", False), ("service", False), ("operator", True),
                                                       ("superuser", True)])
def test_it_renders_manage_actions_only_for_operators(persona, has_actions, subcloud_factory):
    subcloud_factory("sc1")
    r = browser_as(persona).get("/portal/subclouds/sc1/")
    assert r.status_code == 200
    assert (b'id="manage-form"' in r.content) is has_actions
    assert (b"Unmanage</button>" in r.content) is has_actions


def test_it_renders_a_subcloud_with_its_fields_and_history(subcloud_factory):
    sc = subcloud_factory("sc1", description="Ottawa Site")
    operations.update_subcloud(sc.pk, fields={"description": "Kanata Site"})
    r = browser_as("reader").get("/portal/subclouds/sc1/")
    assert r.status_code == 200
    body = r.content.decode()
    assert 'data-field="description">Kanata Site</dd>' in body
    assert 'data-field="openstack-installed">false</dd>' in body
    assert "description: Ottawa Site → Kanata Site" in body
    assert "registered" in body
    r = browser_as("reader").get("/portal/subclouds/sc1/history/")
    assert "description: Ottawa Site → Kanata Site" in r.content.decode()


def test_it_answers_an_unknown_subcloud_page_with_404():
    r = browser_as("reader").get("/portal/subclouds/nope/")
    assert r.status_code == 404
    assert "No subcloud “nope”" in r.content.decode()


def test_it_logs_in_and_out():
    user = make_user("reader")
    client = Client()
    r = client.get("/login/")
    assert r.status_code == 200
    r = client.post("/login/", {"username": user.username, "password": "wrong"})
    assert r.status_code == 200
    assert b"Please enter a correct username and password" in r.content
    r = client.post("/login/", {"username": user.username, "password": "pw-12345678"})
    assert r.status_code == 302
    assert r["Location"] == "/portal/"
    assert client.get("/portal/").status_code == 200
    r = client.post("/logout/")
    assert r.status_code == 302
    assert r["Location"] == "/login/"
    assert client.get("/portal/").status_code == 302


def test_it_serves_the_pages_static_files():
    client = Client()
    for path in ("/static/portal/live.js", "/static/portal/portal.css", "/static/admin/css/base.css"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert b"".join(r.streaming_content)


def _availability_change(subcloud, status, at):
    StateChange.objects.create(subcloud=subcloud, subcloud_name=subcloud.name, changes={"availability_status": status},
                               previous={}, created_at=at)


def test_it_computes_online_counts_per_minute_from_the_log(subcloud_factory):
    now = timezone.now().replace(second=30, microsecond=0)
    a, b, c = (subcloud_factory(f"sc{i}") for i in range(3))
    # Now: a and b online, c offline. Over the hour: c flapped 10 minutes ago; b came online 5 minutes ago.
    Subcloud.objects.filter(pk__in=[a.pk, b.pk]).update(availability_status="online")
    _availability_change(c, "online", now - timedelta(minutes=10, seconds=20))
    _availability_change(c, "offline", now - timedelta(minutes=10, seconds=10))
    _availability_change(b, "online", now - timedelta(minutes=5))
    series = history.availability_history(minutes=60, now=now)
    assert len(series) == 60
    assert series[0] == {"min": 1, "max": 1, "end": 1, "minute": series[0]["minute"]}
    flap = series[-11]
    assert (flap["min"], flap["max"], flap["end"]) == (1, 2, 1)
    back = series[-6]
    assert (back["min"], back["max"], back["end"]) == (1, 2, 2)
    assert (series[-1]["min"], series[-1]["max"], series[-1]["end"]) == (2, 2, 2)
    assert series[-1]["minute"] == now.replace(second=0).isoformat()


def test_it_describes_log_entries_in_words():
    lines = history.describe(
        {"availability_status": "offline", "endpoints": {"platform": "unknown"}},
        {"availability_status": "online", "endpoints": {"platform": "in-sync"}},
        [{"alarm_id": "280.001", "entity_instance_id": "subcloud=sc1"}],
        [],
    )
    assert lines == ["availability-status: online → offline", "platform: in-sync → unknown",
                     "alarm 280.001 raised (subcloud=sc1)"]


def test_it_gives_pages_and_scripts_the_one_vocabulary_of_the_python_choices(subcloud_factory):
    """Filters, overview counts and the scripts' JSON all come from subclouds.choices and portal/wire.py."""
    import json
    import re

    from portal.wire import PART_KEYS
    from subclouds.choices import Availability, EndpointType, ManagementState, Severity, SyncStatus

    client = browser_as("reader")
    page = client.get("/portal/subclouds/").content.decode()
    words = json.loads(re.search(r'<script id="vocabulary-data" type="application/json">(.*?)</script>', page).group(1))
    assert [c["value"] for c in words["availability"]["choices"]] == Availability.values
    assert [c["value"] for c in words["management"]["choices"]] == ManagementState.values
    assert [c["value"] for c in words["sync"]["choices"]] == SyncStatus.values
    assert [c["value"] for c in words["severity"]["choices"]] == Severity.values
    assert [e["value"] for e in words["endpoints"]] == EndpointType.values
    assert words["part_keys"] == list(PART_KEYS)

    def options(html, name):
        select = re.search(rf'<select id="f-{name}" name="{name}">(.*?)</select>', html).group(1)
        return re.findall(r'<option value="([^"]*)"', select)[1:]  # after "any"

    assert options(page, "availability") == Availability.values
    assert options(page, "management") == ManagementState.values
    assert options(page, "sync") == SyncStatus.values
    assert options(client.get("/portal/alarms/").content.decode(), "severity") == Severity.values
    overview = client.get("/portal/").content.decode()
    counted = re.findall(r'data-count="([^"]+)"', overview)
    assert counted == [*Availability.values, *ManagementState.values, *SyncStatus.values, "critical", "major"]
