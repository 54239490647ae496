"""The incidents kept per process between change-log revisions (state/incidents.py): what they are keyed by
is everything they are derived from, so a cached answer is the one a cold process derives."""

import pytest

import state.incidents
from state.incidents import incidents_json
from subclouds.models import Subcloud
from tests.test_api_history import incidents, office, set_availability  # noqa: F401 - office is a fixture

pytestmark = pytest.mark.django_db


def test_a_cold_process_derives_what_the_cached_one_answers(office, drain):  # noqa: F811
    group, members, rest = office
    set_availability(members, "offline", drain)
    set_availability(members[:3], "online", drain)
    cached = incidents_json()
    assert incidents_json() == cached and len(cached) == 1
    state.incidents._cached = (None, [])  # what a new process starts with
    assert incidents_json() == cached


def test_a_new_revision_is_seen_at_once(office, drain):  # noqa: F811
    group, members, rest = office
    set_availability(members, "offline", drain)
    assert [i["status"] for i in incidents_json()] == ["open"]
    set_availability(members, "online", drain)
    assert [i["status"] for i in incidents_json()] == ["closed"]


def test_the_incidents_follow_a_regrouping_that_leaves_the_log_alone(client_as, office, drain):  # noqa: F811
    group, members, rest = office
    set_availability(members, "offline", drain)
    reader = client_as("reader")
    assert [i["scope"] for i in incidents(reader)] == ["groups"]
    # Two of the office move to Default: 4 left, below DCPORTAL_INCIDENT_GROUP_MIN_SIZE, and 6 downs stay
    # below the fleet count. No change-log row is written; the incident is gone all the same.
    Subcloud.objects.filter(pk__in=[s.pk for s in members[:2]]).update(group_id=rest[0].group_id)
    assert incidents(reader) == []


def test_a_changed_threshold_is_seen_at_once(office, drain, settings):  # noqa: F811
    group, members, rest = office
    set_availability(members, "offline", drain)
    assert len(incidents_json()) == 1
    settings.INCIDENT_GROUP_MIN_SIZE = 7  # the office (6) is now too small to trip on its share
    assert incidents_json() == []
