"""Onboarding many subclouds at once: POST /v1.0/subcloud-bulk-register (all validated, all or none) and the
bulk delete (POST /v1.0/subcloud-bulk-actions, action delete), with their admin commands add-many / delete-many.

Both cost a fixed number of statements whatever the count (issue 13, item 6: 5,000 each way in seconds).
"""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from state.models import StateChange
from subclouds.choices import ENDPOINT_TYPES
from subclouds.inputs import BULK_MAX_SUBCLOUDS
from subclouds.models import EndpointStatus, Fault, Subcloud, SubcloudGroup

pytestmark = pytest.mark.django_db

REGISTER = "/v1.0/subcloud-bulk-register"
ACTIONS = "/v1.0/subcloud-bulk-actions"


def items(n, prefix="site", **extra):
    return [{"name": f"{prefix}{i}", "management-subnet": f"10.0.{i % 256}.0/24", "description": f"d{i}", **extra}
            for i in range(n)]


def snapshot():
    return (sorted(Subcloud.objects.values_list("name", "region_name")), EndpointStatus.objects.count(),
            StateChange.objects.count())


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("superuser", 200), ("operator", 200), ("reader", 403), ("service", 403), ("outsider", 403), (None, 401)],
)
def test_it_lets_only_operators_register_in_bulk(client_as, persona, expected):
    before = snapshot()
    response = client_as(persona).post(REGISTER, {"subclouds": items(2)}, format="json")
    assert response.status_code == expected, response.content
    if expected == 200:
        assert Subcloud.objects.filter(name__in=["site0", "site1"]).count() == 2
    else:
        assert response.json()["error_message"]
        assert snapshot() == before


def test_it_registers_every_subcloud_as_the_single_post_would_and_logs_each(client_as):
    east = SubcloudGroup.objects.create(name="east")
    body = {"subclouds": [*items(3), {"name": "edge", "region_name": "edge-region", "group_id": "east"}]}
    response = client_as("operator").post(REGISTER, body, format="json")
    assert response.status_code == 200, response.content
    listed = response.json()["subclouds"]
    assert [s["name"] for s in listed] == ["site0", "site1", "site2", "edge"]
    assert listed[1]["management-subnet"] == "10.0.1.0/24"
    assert listed[3]["region-name"] == "edge-region" and listed[3]["group_id"] == east.pk
    made = Subcloud.objects.filter(name__in=["site0", "site1", "site2", "edge"])
    assert {(s.management_state, s.availability_status) for s in made} == {("unmanaged", "offline")}
    assert len({s.region_name for s in made}) == 4  # generated ones are distinct
    assert EndpointStatus.objects.filter(subcloud__in=made, sync_status="unknown").count() == 4 * len(ENDPOINT_TYPES)
    log = StateChange.objects.filter(reason="registered").order_by("id")
    assert [(c.subcloud_name, c.changes, c.source) for c in log] == [
        (n, {"registered": True}, "rest") for n in ["site0", "site1", "site2", "edge"]]
    assert all(c.actor.startswith("operator-") for c in log)


def test_it_refuses_the_whole_list_for_one_bad_item_and_names_it(client_as, subcloud_factory):
    subcloud_factory("existing")
    before = snapshot()
    body = items(6)
    body[3]["name"] = "12345"  # digits only: it would read as an id
    response = client_as("operator").post(REGISTER, {"subclouds": body}, format="json")
    assert response.status_code == 400
    error = response.json()
    assert error["field"] == "subclouds[3].name"
    assert error["error_message"].startswith("subclouds[3].name: ")
    assert list(error["errors"]) == ["subclouds[3].name"]
    assert snapshot() == before

    body = items(3)
    body[2]["management-subnet"] = "not a subnet"
    response = client_as("operator").post(REGISTER, {"subclouds": body}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "subclouds[2].management-subnet"
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subclouds": []}, "subclouds"),
        ({"subclouds": "site0"}, "subclouds"),
        ({}, "subclouds"),
        ({"subclouds": [{"name": "a"}], "extra": 1}, "extra"),
        ({"subclouds": [{"name": "a"}, "b"]}, "subclouds[1]"),
        ({"subclouds": [{"name": "a", "colour": "red"}]}, "subclouds[0].colour"),
        ({"subclouds": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}, "subclouds[2].name"),
        ({"subclouds": [{"name": "a"}, {"name": "b", "region_name": "a"}]}, "subclouds[1].region_name"),
        ({"subclouds": [{"name": "a", "group_id": "no-such-group"}]}, "subclouds[0].group_id"),
    ],
)
def test_it_refuses_bad_lists_naming_the_field(client_as, body, field):
    before = snapshot()
    response = client_as("operator").post(REGISTER, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field, response.json()
    assert snapshot() == before


def test_it_refuses_more_than_the_bulk_limit_before_validating_items(client_as):
    response = client_as("operator").post(REGISTER, {"subclouds": [{"name": "x"}] * (BULK_MAX_SUBCLOUDS + 1)}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "subclouds"
    assert f"at most {BULK_MAX_SUBCLOUDS}" in response.json()["error_message"]
    assert not Subcloud.objects.exists()


@pytest.mark.parametrize(
    ("item", "field", "words"),
    [
        ({"name": "existing"}, "subclouds[1].name", "it is the name of subcloud 'existing'"),
        ({"name": "existing-region"}, "subclouds[1].name", "it is the region name of subcloud 'existing'"),
        ({"name": "fresh", "region_name": "existing"}, "subclouds[1].region_name", "it is the name of subcloud 'existing'"),
    ],
)
def test_it_refuses_a_name_or_region_already_taken_with_409_and_changes_nothing(client_as, subcloud_factory, item,
                                                                              field, words):
    subcloud_factory("existing", region_name="existing-region")
    before = snapshot()
    response = client_as("operator").post(REGISTER, {"subclouds": [{"name": "new0"}, item]}, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["field"] == field
    assert words in response.json()["error_message"]
    assert snapshot() == before


def test_it_registers_any_number_in_the_same_number_of_queries(client_as):
    client = client_as("operator")
    counts = []
    for n, prefix in ((2, "small"), (150, "large")):
        with CaptureQueriesContext(connection) as queries:
            response = client.post(REGISTER, {"subclouds": items(n, prefix, group_id="Default")}, format="json")
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert Subcloud.objects.count() == 152


# -- bulk delete ------------------------------------------------------------------------


@pytest.fixture
def onboarded(client_as):
    client_as("operator").post(REGISTER, {"subclouds": items(4)}, format="json")
    Subcloud.objects.filter(name="site2").update(management_state="managed")
    site1 = Subcloud.objects.get(name="site1")
    Fault.objects.create(alarm_id="280.001", entity_instance_id="subcloud=site1", severity="critical",
                         reason_text="site1 is offline", subcloud=site1, subcloud_name="site1", raised_at=timezone.now())


def test_it_deletes_unmanaged_subclouds_in_bulk_and_refuses_the_managed_one(client_as, onboarded):
    response = client_as("operator").post(ACTIONS, {"action": "delete", "subclouds": ["site0", "site1", "site2", "nope"]},
                                          format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(r["subcloud"], r["status"]) for r in body["results"]] == [
        ("site0", "done"), ("site1", "done"), ("site2", "refused"), ("nope", "refused")]
    assert body["results"][2]["error_message"] == "Cannot delete subcloud site2 while it is managed; unmanage it first"
    assert body["results"][3]["error_message"] == "Subcloud nope not found"
    assert (body["done"], body["refused"]) == (2, 2)
    assert sorted(Subcloud.objects.values_list("name", flat=True)) == ["site2", "site3"]
    assert not EndpointStatus.objects.filter(subcloud__name__in=["site0", "site1"]).exists()
    fault = Fault.objects.get(entity_instance_id="subcloud=site1")
    assert fault.cleared_at is not None and fault.subcloud_id is None  # cleared, history kept
    deleted = StateChange.objects.filter(reason="deleted").order_by("subcloud_name")
    assert [(c.subcloud_name, c.changes.get("deleted")) for c in deleted] == [("site0", True), ("site1", True)]
    assert deleted[1].faults_cleared and deleted[1].faults_cleared[0]["alarm_id"] == "280.001"


def test_it_deletes_any_number_in_the_same_number_of_queries(client_as):
    client = client_as("operator")
    client.post(REGISTER, {"subclouds": items(2, "small") + items(150, "large")}, format="json")
    counts = []
    for n, prefix in ((2, "small"), (150, "large")):
        with CaptureQueriesContext(connection) as queries:
            response = client.post(ACTIONS, {"action": "delete", "subclouds": [f"{prefix}{i}" for i in range(n)]},
                                   format="json")
        assert response.json()["done"] == n
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert not Subcloud.objects.exists()


# -- admin commands -----------------------------------------------------------------------


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_it_registers_a_file_with_add_many_and_prints_the_apis_body(client_as, tmp_path):
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps({"subclouds": items(3)}))
    body = json.loads(run("subcloud", "add-many", str(path), "--json"))
    assert [s["name"] for s in body["subclouds"]] == ["site0", "site1", "site2"]
    assert StateChange.objects.filter(reason="registered", source="command").count() == 3

    path.write_text(json.dumps([{"name": "more0"}, {"name": "site1"}]))  # a plain list too; site1 is taken
    with pytest.raises(CommandError, match=r"Subcloud with name 'site1' already exists"):
        run("subcloud", "add-many", str(path))
    assert not Subcloud.objects.filter(name="more0").exists()


def test_it_refuses_an_unreadable_file_in_add_many(tmp_path):
    path = tmp_path / "fleet.json"
    path.write_text("{not json")
    with pytest.raises(CommandError, match="cannot read .* as JSON"):
        run("subcloud", "add-many", str(path))
    path.write_text(json.dumps({"subclouds": [{"name": "ok"}, {"name": ""}]}))
    with pytest.raises(CommandError, match=r"^subclouds\[1\]\.name: "):
        run("subcloud", "add-many", str(path))
    assert not Subcloud.objects.exists()


def test_it_deletes_with_delete_many_and_fails_when_one_is_refused(client_as, onboarded):
    out = run("subcloud", "delete-many", "site0", "--json")
    assert json.loads(out)["done"] == 1
    with pytest.raises(CommandError, match="1 of 2 refused; the others deleted"):
        run("subcloud", "delete-many", "site1", "site2")
    assert sorted(Subcloud.objects.values_list("name", flat=True)) == ["site2", "site3"]


def test_it_imports_a_fleet_file_in_the_same_number_of_queries_whatever_its_length(tmp_path):
    SubcloudGroup.objects.create(name="imported")
    counts = []
    for n, prefix in ((2, "small"), (120, "large")):
        path = tmp_path / f"{prefix}.json"
        path.write_text(json.dumps([{"name": f"{prefix}{i}", "group_name": "imported"} for i in range(n)]))
        with CaptureQueriesContext(connection) as queries:
            out = run("import_fleet", str(path))
        assert f"Registered {n} subcloud(s)" in out
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert Subcloud.objects.filter(group__name="imported").count() == 122


@pytest.mark.parametrize("group", ["\u0000", "east\u0000"])
def test_it_refuses_a_group_name_the_database_cannot_hold_as_unknown(client_as, group):
    for url, body in ((REGISTER, {"subclouds": [{"name": "a", "group_id": group}]}),
                      ("/v1.0/subclouds", {"name": "a", "group_id": group})):
        response = client_as("operator").post(url, body, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["field"].endswith("group_id")
    assert not Subcloud.objects.exists()
