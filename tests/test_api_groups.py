"""/v1.0/subcloud-groups, from api.md "Subcloud groups" and domain.md "Subcloud groups"."""

import re

import pytest

from subclouds.models import Subcloud, SubcloudGroup

pytestmark = pytest.mark.django_db

GROUP_KEYS = {"id", "name", "description", "update_apply_type", "max_parallel_subclouds", "created-at", "updated-at"}
TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")


@pytest.fixture
def operator(client_as):
    return client_as("operator")


@pytest.fixture
def group(db):
    return SubcloudGroup.objects.create(name="east", description="East coast", update_apply_type="serial",
                                        max_parallel_subclouds=10)


def test_it_lists_groups_with_exact_keys_default_first(operator, group):
    r = operator.get("/v1.0/subcloud-groups/")
    assert r.status_code == 200
    assert list(r.json()) == ["subcloud_groups"]
    groups = r.json()["subcloud_groups"]
    assert [g["name"] for g in groups] == ["Default", "east"]
    for g in groups:
        assert set(g) == GROUP_KEYS
        assert TIME_FORMAT.match(g["created-at"])
    assert groups[0]["id"] == 1
    assert groups[1] == {
        "id": group.pk, "name": "east", "description": "East coast", "update_apply_type": "serial",
        "max_parallel_subclouds": 10, "created-at": group.created_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "updated-at": None,
    }


def test_it_creates_a_group_as_the_dcmanager_client_sends_it(operator):
    """The client posts JSON; max_parallel_subclouds arrives as a string from the command line."""
    data = {"name": "west", "description": "No description provided", "update_apply_type": "parallel",
            "max_parallel_subclouds": "5"}
    r = operator.post("/v1.0/subcloud-groups/", data, format="json")
    assert r.status_code == 200, r.content
    g = SubcloudGroup.objects.get(name="west")
    assert r.json() == {
        "id": g.pk, "name": "west", "description": "No description provided", "update_apply_type": "parallel",
        "max_parallel_subclouds": 5, "created-at": g.created_at.strftime("%Y-%m-%d %H:%M:%S.%f"), "updated-at": None,
    }
    assert (g.update_apply_type, g.max_parallel_subclouds) == ("parallel", 5)


def test_it_creates_a_group_with_only_a_name_and_from_a_form(operator):
    r = operator.post("/v1.0/subcloud-groups", {"name": "minimal"}, format="json")
    assert r.status_code == 200, r.content
    assert set(r.json()) == GROUP_KEYS
    r = operator.post("/v1.0/subcloud-groups", {"name": "formed", "max_parallel_subclouds": "7"}, format="multipart")
    assert r.status_code == 200, r.content
    assert SubcloudGroup.objects.get(name="formed").max_parallel_subclouds == 7


@pytest.mark.parametrize("value", [1, 5000, "2500"])
def test_it_accepts_max_parallel_subclouds_from_1_to_5000(operator, value):
    r = operator.post("/v1.0/subcloud-groups/", {"name": "g", "max_parallel_subclouds": value}, format="json")
    assert r.status_code == 200, r.content
    assert SubcloudGroup.objects.get(name="g").max_parallel_subclouds == int(value)


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "g", "max_parallel_subclouds": 0}, "max_parallel_subclouds"),
        ({"name": "g", "max_parallel_subclouds": 5001}, "max_parallel_subclouds"),
        ({"name": "g", "max_parallel_subclouds": "many"}, "max_parallel_subclouds"),
        ({"name": "g", "update_apply_type": "random"}, "update_apply_type"),
        ({"description": "no name"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "42"}, "name"),
        ({"name": "g", "colour": "red"}, "colour"),
    ],
)
def test_it_refuses_bad_group_input_naming_the_field(operator, data, field):
    r = operator.post("/v1.0/subcloud-groups/", data, format="json")
    assert r.status_code == 400, r.content
    assert r.json()["field"] == field
    assert field in r.json()["error_message"]
    assert list(SubcloudGroup.objects.values_list("name", flat=True)) == ["Default"]


def test_it_refuses_a_duplicate_group_name_with_409(operator, group):
    for name in ("east", "Default"):
        r = operator.post("/v1.0/subcloud-groups/", {"name": name}, format="json")
        assert r.status_code == 409
        assert r.json()["field"] == "name"
    assert SubcloudGroup.objects.count() == 2


def test_it_shows_a_group_by_id_or_name(operator, group):
    listed = operator.get("/v1.0/subcloud-groups").json()["subcloud_groups"][1]
    for ref in (group.pk, "east", f"{group.pk}/", "east/"):
        r = operator.get(f"/v1.0/subcloud-groups/{ref}")
        assert r.status_code == 200
        assert r.json() == listed
    assert operator.get("/v1.0/subcloud-groups/Default").json()["id"] == 1


@pytest.mark.parametrize("path", ["/v1.0/subcloud-groups/nosuch", "/v1.0/subcloud-groups/999/",
                                  "/v1.0/subcloud-groups/nosuch/subclouds", "/v1.0/subcloud-groups/99999999999999999999"])
def test_it_answers_404_json_for_an_unknown_group(operator, path):
    r = operator.get(path)
    assert r.status_code == 404
    assert r.json()["error_message"]


def test_it_updates_a_group_by_id_or_name(operator, group):
    r = operator.patch("/v1.0/subcloud-groups/east", {"name": "east2", "description": "Renamed",
                                                      "update_apply_type": "parallel", "max_parallel_subclouds": 3},
                       format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == GROUP_KEYS
    assert (body["name"], body["description"], body["update_apply_type"], body["max_parallel_subclouds"]) == (
        "east2", "Renamed", "parallel", 3)
    assert TIME_FORMAT.match(body["updated-at"])
    group.refresh_from_db()
    assert (group.name, group.description, group.update_apply_type, group.max_parallel_subclouds) == (
        "east2", "Renamed", "parallel", 3)
    r = operator.patch(f"/v1.0/subcloud-groups/{group.pk}/", {"max_parallel_subclouds": 5000}, format="json")
    assert r.status_code == 200
    assert SubcloudGroup.objects.get(pk=group.pk).max_parallel_subclouds == 5000


def test_it_updates_the_default_group_but_never_renames_it(operator):
    r = operator.patch("/v1.0/subcloud-groups/Default", {"description": "All others", "max_parallel_subclouds": 9},
                       format="json")
    assert r.status_code == 200, r.content
    assert SubcloudGroup.objects.get(pk=1).description == "All others"
    r = operator.patch("/v1.0/subcloud-groups/1", {"name": "Renamed"}, format="json")
    assert r.status_code == 400
    assert r.json()["field"] == "name"
    assert "Default" in r.json()["error_message"]
    assert SubcloudGroup.objects.get(pk=1).name == "Default"


@pytest.mark.parametrize(
    "data, status, field",
    [
        ({}, 400, "body"),
        ({"max_parallel_subclouds": 0}, 400, "max_parallel_subclouds"),
        ({"max_parallel_subclouds": 5001}, 400, "max_parallel_subclouds"),
        ({"update_apply_type": "sometimes"}, 400, "update_apply_type"),
        ({"name": "123"}, 400, "name"),
        ({"name": "Default"}, 409, "name"),
        ({"name": "taken"}, 409, "name"),
    ],
)
def test_it_refuses_a_bad_group_update_changing_nothing(operator, group, data, status, field):
    SubcloudGroup.objects.create(name="taken")
    before = SubcloudGroup.objects.filter(pk=group.pk).values().get()
    r = operator.patch("/v1.0/subcloud-groups/east", data, format="json")
    assert r.status_code == status, r.content
    assert r.json()["field"] == field
    assert SubcloudGroup.objects.filter(pk=group.pk).values().get() == before


def test_it_answers_404_for_updating_or_deleting_an_unknown_group(operator):
    assert operator.patch("/v1.0/subcloud-groups/nosuch", {"description": "x"}, format="json").status_code == 404
    assert operator.delete("/v1.0/subcloud-groups/nosuch").status_code == 404


def test_it_lists_the_subclouds_of_a_group(operator, group, subcloud_factory):
    a = subcloud_factory("in-east", group_id=group)
    subcloud_factory("in-default")
    for ref in (group.pk, "east"):
        r = operator.get(f"/v1.0/subcloud-groups/{ref}/subclouds/")
        assert r.status_code == 200
        assert list(r.json()) == ["subclouds"]
        # As upstream: the listing without endpoint_sync_status (the client's table has no column for it).
        listed = operator.get(f"/v1.0/subclouds/{a.pk}").json()
        del listed["endpoint_sync_status"]
        assert r.json()["subclouds"] == [listed]
    r = operator.get("/v1.0/subcloud-groups/Default/subclouds")
    assert [s["name"] for s in r.json()["subclouds"]] == ["in-default"]


@pytest.mark.parametrize("by", ["id", "name"])
def test_it_deletes_a_group_moving_its_subclouds_to_default(operator, group, subcloud_factory, by):
    moved = subcloud_factory("moved", group_id=group)
    untouched = subcloud_factory("untouched")
    r = operator.delete(f"/v1.0/subcloud-groups/{group.pk if by == 'id' else 'east'}")
    assert r.status_code == 200, r.content
    assert not SubcloudGroup.objects.filter(pk=group.pk).exists()
    moved.refresh_from_db()
    assert moved.group_id == 1
    assert moved.updated_at is not None
    assert Subcloud.objects.get(pk=untouched.pk).updated_at is None
    assert operator.get(f"/v1.0/subclouds/{moved.pk}").json()["group_id"] == 1


def test_it_refuses_to_delete_the_default_group(operator, subcloud_factory):
    subcloud_factory("stays")
    for ref in ("1", "Default", "Default/"):
        r = operator.delete(f"/v1.0/subcloud-groups/{ref}")
        assert r.status_code == 400
        assert "Default" in r.json()["error_message"]
    assert SubcloudGroup.objects.filter(pk=1, name="Default").exists()
    assert Subcloud.objects.get(name="stays").group_id == 1
