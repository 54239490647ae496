"""POST /v1.0/subcloud-bulk-actions: manage, unmanage or move a selection or a whole group, one result per subcloud.

Each subcloud goes through state.operations.update_subcloud, as a PATCH would; refusals carry the PATCH's message.
"""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from state.models import StateChange
from subclouds.models import Subcloud, SubcloudGroup
from tests.conftest import make_user
from tests.test_api_subclouds import set_availability

pytestmark = pytest.mark.django_db

URL = "/v1.0/subcloud-bulk-actions"


def states():
    return dict(Subcloud.objects.values_list("name", "management_state"))


@pytest.fixture
def fleet(subcloud_factory, drain):
    """sc1..sc3 online (sc3 in group 'east'), sc4 offline in 'east'."""
    east = SubcloudGroup.objects.create(name="east")
    made = [subcloud_factory("sc1"), subcloud_factory("sc2"), subcloud_factory("sc3", group_id=east),
            subcloud_factory("sc4", group_id=east)]
    for s in made[:3]:
        set_availability(s, "online", drain)
    return east


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("superuser", 200), ("operator", 200), ("reader", 403), ("service", 403), ("outsider", 403), (None, 401)],
)
def test_it_lets_only_operators_act_and_changes_nothing_for_the_others(client_as, fleet, persona, expected):
    before, changes = states(), StateChange.objects.count()
    response = client_as(persona).post(URL, {"action": "manage", "subclouds": ["sc1"]}, format="json")
    assert response.status_code == expected, response.content
    if expected == 200:
        assert states()["sc1"] == "managed"
    else:
        assert response.json()["error_message"]
        assert states() == before
        assert StateChange.objects.count() == changes


def test_it_manages_a_selection_and_names_each_refusal_with_its_reason(client_as, fleet):
    response = client_as("operator").post(URL, {"action": "manage", "subclouds": ["sc1", "sc4", "nope", "sc2", "sc1", "³"]},
                                          format="json")
    assert response.status_code == 200
    body = response.json()
    assert [(r["subcloud"], r["status"]) for r in body["results"]] == [
        ("sc1", "done"), ("sc4", "refused"), ("nope", "refused"), ("sc2", "done"), ("³", "refused")]
    assert body["results"][1]["error_message"] == "Subcloud sc4 can be managed only when it is online"
    assert body["results"][2]["error_message"] == "Subcloud nope not found"
    assert (body["done"], body["refused"]) == (2, 3)
    assert states() == {"sc1": "managed", "sc2": "managed", "sc3": "unmanaged", "sc4": "unmanaged"}
    # Each change is logged as a PATCH's would be.
    assert StateChange.objects.filter(subcloud__name__in=["sc1", "sc2"], changes__management_state="managed").count() == 2


def test_it_acts_on_a_whole_group_and_moves_to_another(client_as, fleet):
    operator = client_as("operator")
    response = operator.post(URL, {"action": "manage", "group": "east", "force": True}, format="json")
    assert response.status_code == 200
    assert [r["subcloud"] for r in response.json()["results"]] == ["sc3", "sc4"]
    assert states() == {"sc1": "unmanaged", "sc2": "unmanaged", "sc3": "managed", "sc4": "managed"}

    response = operator.post(URL, {"action": "move", "group": fleet.pk, "to_group": "Default"}, format="json")
    assert response.status_code == 200
    assert response.json()["done"] == 2
    assert not Subcloud.objects.filter(group=fleet).exists()
    assert StateChange.objects.filter(subcloud__name="sc3", changes__group_id=1).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "reboot", "subclouds": ["sc1"]}, "action"),
        ({"action": "manage"}, "subclouds"),
        ({"action": "manage", "subclouds": ["sc1"], "group": "east"}, "subclouds"),
        ({"action": "manage", "subclouds": []}, "subclouds"),
        ({"action": "manage", "subclouds": "sc1"}, "subclouds"),
        ({"action": "move", "subclouds": ["sc1"]}, "to_group"),
        ({"action": "move", "subclouds": ["sc1"], "to_group": "nowhere"}, "to_group"),
        ({"action": "manage", "subclouds": ["sc1"], "to_group": "east"}, "to_group"),
        ({"action": "unmanage", "subclouds": ["sc1"], "force": True}, "force"),
        ({"action": "manage", "group": "nowhere"}, "group"),
        ({"action": "manage", "subclouds": ["sc1"], "extra": 1}, "extra"),
        ({"action": "manage", "subclouds": [f"x{i}" for i in range(10001)]}, "subclouds"),
    ],
)
def test_it_refuses_bad_input_with_the_field_and_changes_nothing(client_as, fleet, body, field):
    before, changes = states(), StateChange.objects.count()
    response = client_as("operator").post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert response.json()["error_message"].startswith(f"{field}: ")
    assert states() == before
    assert StateChange.objects.count() == changes


def test_it_takes_the_session_with_csrf_as_the_pages_send_it(fleet):
    user = make_user("operator")
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(pk=user.pk))
    refused = client.post(URL, {"action": "manage", "subclouds": ["sc1"]}, content_type="application/json")
    assert refused.status_code == 403  # no CSRF token
    assert "CSRF" in refused.json()["error_message"]
    assert states()["sc1"] == "unmanaged"
    page = client.get("/portal/subclouds/")
    token = page.context["csrf_token"]
    accepted = client.post(URL, {"action": "manage", "subclouds": ["sc1"]}, content_type="application/json",
                           headers={"X-CSRFToken": str(token)})
    assert accepted.status_code == 200
    assert states()["sc1"] == "managed"
