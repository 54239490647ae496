"""The fleet at a past time (GET /v1.0/subclouds?as_of=) and incidents (GET /v1.0/incidents), both derived
from the change log that the real state path writes (intake, worker, operations)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from state import intake, operations
from state.incidents import incidents_json
from state.models import StateChange, UpdateKind
from subclouds.models import SubcloudGroup
from tests.test_api_alarms_faults import audit

pytestmark = pytest.mark.django_db

PAST_KEYS = ("availability-status", "management-state", "deploy-status", "sync_status", "endpoint_sync_status")


def set_availability(subclouds, status, drain):
    intake.accept(UpdateKind.AVAILABILITY, [
        (s.pk, intake.parse_availability({"subcloud": s.name, "availability_status": status})[1]) for s in subclouds
    ])
    drain()


def listing(client, **params):
    response = client.get("/v1.0/subclouds", params)
    assert response.status_code == 200, response.json()
    return {s["name"]: s for s in response.json()["subclouds"]}


# -- as_of --------------------------------------------------------------------------------------------


def test_it_lists_the_fleet_exactly_as_it_was(client_as, subcloud_factory, drain):
    reader = client_as("reader")
    a, b = subcloud_factory("a"), subcloud_factory("b")
    subcloud_factory("c")
    set_availability([a, b], "online", drain)
    operations.update_subcloud(a.pk, management_state="managed")
    audit(a, drain, platform="in-sync", identity="out-of-sync")
    then = listing(reader)
    moment = timezone.now()

    # After the moment: every reconstructed key of `a` changes, `b` goes offline, `d` is registered.
    set_availability([a, b], "offline", drain)
    audit(a, drain, platform="out-of-sync", identity="in-sync", dc_cert="in-sync")
    operations.update_subcloud(a.pk, management_state="unmanaged")
    subcloud_factory("d")
    now = listing(reader)
    assert now["a"]["availability-status"] == "offline" and now["a"]["management-state"] == "unmanaged"

    past = listing(reader, as_of=moment.isoformat())
    assert sorted(past) == ["a", "b", "c"]  # d did not exist yet
    for name in past:
        assert {k: past[name][k] for k in PAST_KEYS} == {k: then[name][k] for k in PAST_KEYS}, name
    assert past["a"]["availability-status"] == "online"
    assert past["a"]["management-state"] == "managed"
    endpoints = {e["endpoint_type"]: e["sync_status"] for e in past["a"]["endpoint_sync_status"]}
    assert (endpoints["platform"], endpoints["identity"], endpoints["dc-cert"]) == ("in-sync", "out-of-sync", "unknown")
    assert past["a"]["endpoint_sync_status"] != now["a"]["endpoint_sync_status"]
    assert past["a"]["sync_status"] == "out-of-sync"
    # Same shape as the live list; the other fields are today's.
    assert set(past["a"]) == set(now["a"]) and past["a"]["updated-at"] == now["a"]["updated-at"]

    # The status filters match the values of then.
    assert sorted(listing(reader, **{"as_of": moment.isoformat(), "availability-status": "online"})) == ["a", "b"]
    assert sorted(listing(reader, **{"availability-status": "online"})) == []
    # Now (or just now) is today's list.
    assert listing(reader, as_of=timezone.now().isoformat()) == now


def test_it_reconstructs_with_one_query_for_the_log(client_as, subcloud_factory, drain, django_assert_max_num_queries):
    reader = client_as("reader")
    subclouds = [subcloud_factory(f"s{i}") for i in range(30)]
    moment = timezone.now()
    set_availability(subclouds, "online", drain)
    with django_assert_max_num_queries(8):  # auth, 2 for the list, 1 for the log
        assert len(listing(reader, as_of=moment.isoformat())) == 30


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00", "1"])
def test_it_refuses_a_malformed_as_of(client_as, value):
    response = client_as("reader").get("/v1.0/subclouds", {"as_of": value})
    assert response.status_code == 400
    assert response.json()["field"] == "as_of"
    assert "as_of" in response.json()["errors"]


@pytest.mark.parametrize("offset", [timedelta(hours=24 * 7 + 1), -timedelta(hours=1)])
def test_it_refuses_a_time_outside_retention(client_as, offset, settings):
    settings.STATE_KEEP_CHANGES_HOURS = 24 * 7
    response = client_as("reader").get("/v1.0/subclouds", {"as_of": (timezone.now() - offset).isoformat()})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "as_of" and "retention" in body["error_message"]


@pytest.mark.parametrize(
    "persona, expected",
    [("reader", 200), ("operator", 200), ("service", 200), ("superuser", 200), ("outsider", 403), (None, 401)],
)
def test_it_lets_every_role_read_the_past(client_as, persona, expected):
    url_params = {"as_of": timezone.now().isoformat()}
    assert client_as(persona).get("/v1.0/subclouds", url_params).status_code == expected
    assert client_as(persona).get("/v1.0/incidents").status_code == expected


# -- incidents ----------------------------------------------------------------------------------------


@pytest.fixture
def office(subcloud_factory, drain):
    """Group "office" (6 subclouds) and the rest of the fleet (10 in Default), all online."""
    group = SubcloudGroup.objects.create(name="office")
    members = [subcloud_factory(f"office-{i}", group_id=group) for i in range(6)]
    rest = [subcloud_factory(f"rest-{i}") for i in range(10)]
    set_availability(members + rest, "online", drain)
    return group, members, rest


def incidents(client, **params):
    response = client.get("/v1.0/incidents", params)
    assert response.status_code == 200, response.json()
    return response.json()["incidents"]


def test_it_opens_one_incident_for_a_dead_office_and_closes_it_when_back(client_as, office, drain):
    group, members, rest = office
    reader = client_as("reader")
    assert incidents(reader) == []

    set_availability(members, "offline", drain)
    set_availability(rest[:1], "offline", drain)  # one unrelated subcloud elsewhere: not part of it
    [incident] = incidents(reader)
    assert incident["status"] == "open"
    assert incident["scope"] == "groups" and incident["groups"] == [{"id": group.pk, "name": "office"}]
    assert incident["subclouds_affected"] == 6
    assert incident["subclouds"] == incident["still_affected"] == sorted(s.name for s in members)
    assert incident["peak_offline"] == 6 and incident["counts"][-1]["offline"] == 6
    assert incident["recovery_started_at"] is None and incident["recovery_ended_at"] is None
    first = StateChange.objects.filter(subcloud_id=members[0].pk, changes__availability_status="offline").get()
    assert incident["started_at"] == first.created_at.isoformat() and incident["id"] == first.pk

    set_availability(members[:2], "online", drain)
    [incident] = incidents(reader)
    assert incident["status"] == "open" and incident["still_affected"] == sorted(s.name for s in members[2:])
    assert incident["recovery_started_at"] is not None and incident["recovery_ended_at"] is None
    assert [c["offline"] for c in incident["counts"]][-1] == 4

    set_availability(members[2:], "online", drain)
    [incident] = incidents(reader)
    back = StateChange.objects.filter(subcloud_id=members[-1].pk, changes__availability_status="online").latest("id")
    assert incident["status"] == "closed" and incident["still_affected"] == []
    assert incident["recovery_ended_at"] == back.created_at.isoformat()
    assert incident["recovery_started_at"] < incident["recovery_ended_at"]
    assert [c["offline"] for c in incident["counts"]] == [6, 4, 0]
    # The filters.
    assert incidents(reader, status="open") == []
    assert [i["id"] for i in incidents(reader, status="closed")] == [incident["id"]]
    assert incidents(reader, since=(timezone.now() + timedelta(seconds=1)).isoformat()) == []
    assert incidents(reader, until=(timezone.now() - timedelta(hours=1)).isoformat()) == []


def test_it_opens_a_fleet_incident_on_the_count(client_as, office, drain, settings):
    settings.INCIDENT_MIN_SUBCLOUDS = 8
    settings.INCIDENT_GROUP_MIN_SIZE = 11  # Default (10 subclouds) is too small to trip on its share
    group, members, rest = office
    set_availability(rest[:8], "offline", drain)
    [incident] = incidents(client_as("reader"))
    assert incident["scope"] == "fleet" and incident["groups"] == [] and incident["subclouds_affected"] == 8


def test_it_opens_nothing_below_the_thresholds(client_as, office, drain):
    group, members, rest = office
    set_availability(members[:2] + rest[:3], "offline", drain)  # 2 of 6 in the office, 5 in the fleet
    assert incidents(client_as("reader")) == []


@pytest.mark.django_db(transaction=True)
def test_it_derives_the_same_incidents_after_a_restart(client_as, office, drain):
    group, members, rest = office
    set_availability(members, "offline", drain)
    set_availability(members[:3], "online", drain)
    before = incidents_json()
    connection.close()  # a new process: nothing but the database
    assert incidents_json() == before and len(before) == 1
    assert incidents(client_as("reader")) == before


@pytest.mark.parametrize("params, field", [({"status": "gone"}, "status"), ({"since": "soon"}, "since"),
                                           ({"colour": "red"}, "colour")])
def test_it_refuses_bad_incident_filters(client_as, params, field):
    response = client_as("reader").get("/v1.0/incidents", params)
    assert response.status_code == 400 and response.json()["field"] == field
