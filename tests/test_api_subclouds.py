"""/v1.0/subclouds, sentence by sentence from api.md "Subclouds" and domain.md "Management state changes".

Subclouds reach online / managed through the real state path (intake.accept + drain, state.operations).
"""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from state import intake, operations
from state.models import Outbox, StateChange, UpdateKind
from subclouds.choices import ENDPOINT_TYPES
from subclouds.models import EndpointStatus, Fault, Subcloud, SubcloudGroup
from subclouds.representation import SUBCLOUD_KEYS
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

LISTING_KEYS = {
    "id", "name", "description", "location", "software-version", "availability-status", "management-state",
    "deploy-status", "error-description", "region-name", "openstack-installed", "group_id", "audit-fail-count",
    "first-identity-sync-complete", "management-subnet", "management-start-ip", "management-end-ip",
    "management-gateway-ip", "systemcontroller-gateway-ip", "created-at", "updated-at", "sync_status",
    "endpoint_sync_status",
}
DETAIL_KEYS = LISTING_KEYS | {"oam_floating_ip", "deploy_config_sync_status", "region_name"}
TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")
ENDPOINT_ORDER = ["platform", "identity", "dc-cert", "firmware", "kubernetes", "kube-rootca", "software"]


# -- the real state path ---------------------------------------------------------


def set_availability(subcloud, status, drain):
    _, payload = intake.parse_availability({"subcloud": subcloud.name, "availability_status": status})
    intake.accept(UpdateKind.AVAILABILITY, [(subcloud.pk, payload)])
    drain()


def set_endpoints(subcloud, drain, sync_status, endpoint_type=None):
    _, payload = intake.parse_endpoint_status(
        {"subcloud": subcloud.name, "endpoint_type": endpoint_type, "sync_status": sync_status}
    )
    intake.accept(UpdateKind.ENDPOINT, [(subcloud.pk, payload)])
    drain()


def online_managed(subcloud, drain):
    set_availability(subcloud, "online", drain)
    operations.update_subcloud(subcloud.pk, management_state="managed")
    subcloud.refresh_from_db()
    return subcloud


def endpoints_of(subcloud):
    return dict(EndpointStatus.objects.filter(subcloud=subcloud).values_list("endpoint_type", "sync_status"))


def outbox_kinds(subcloud, after=0):
    return sorted(Outbox.objects.filter(subcloud=subcloud, id__gt=after).values_list("kind", flat=True))


def last_outbox_id():
    return Outbox.objects.order_by("-id").values_list("id", flat=True).first() or 0


def snapshot(subcloud):
    """Every stored column of a subcloud plus its endpoints, to prove a refusal changed nothing."""
    row = Subcloud.objects.filter(pk=subcloud.pk).values().get()
    return row, endpoints_of(subcloud), Outbox.objects.count(), StateChange.objects.count()


@pytest.fixture
def operator(client_as):
    return client_as("operator")


@pytest.fixture
def group(db):
    return SubcloudGroup.objects.create(name="edge-east", description="East", max_parallel_subclouds=5)


# -- listing -----------------------------------------------------------------------


def test_it_lists_every_key_of_every_subcloud_even_when_unknown(operator, subcloud_factory):
    bare = subcloud_factory("bare")
    full = subcloud_factory(
        "full", description="Ottawa Site", location="YOW", software_version="24.09",
        management_subnet="192.168.101.0/24", management_start_ip="192.168.101.2",
        management_end_ip="192.168.101.50", management_gateway_ip="192.168.101.1",
        systemcontroller_gateway_ip="192.168.204.101",
    )
    r = operator.get("/v1.0/subclouds")
    assert r.status_code == 200
    assert list(r.json()) == ["subclouds"]
    listed = {s["name"]: s for s in r.json()["subclouds"]}
    assert set(listed) == {"bare", "full"}
    for entry in listed.values():
        assert set(entry) == LISTING_KEYS
    b = listed["bare"]
    for key in ("description", "location", "software-version", "management-subnet", "management-start-ip",
                "management-end-ip", "management-gateway-ip", "systemcontroller-gateway-ip", "updated-at"):
        assert b[key] is None, key
    assert b["id"] == bare.pk
    assert b["error-description"] == "No errors present"
    assert b["openstack-installed"] is False
    assert b["first-identity-sync-complete"] is False
    assert b["audit-fail-count"] == 0
    f = listed["full"]
    assert (f["description"], f["location"], f["software-version"]) == ("Ottawa Site", "YOW", "24.09")
    assert f["management-subnet"] == "192.168.101.0/24"
    assert f["management-start-ip"] == "192.168.101.2"
    assert f["management-end-ip"] == "192.168.101.50"
    assert f["management-gateway-ip"] == "192.168.101.1"
    assert f["systemcontroller-gateway-ip"] == "192.168.204.101"
    assert f["region-name"] == full.region_name


def test_it_formats_times_like_dcmanager(operator, subcloud_factory, drain):
    sc = subcloud_factory("timed")
    set_availability(sc, "online", drain)  # sets updated-at
    sc.refresh_from_db()
    entry = operator.get("/v1.0/subclouds/").json()["subclouds"][0]
    assert TIME_FORMAT.match(entry["created-at"]), entry["created-at"]
    assert TIME_FORMAT.match(entry["updated-at"]), entry["updated-at"]
    assert entry["created-at"] == sc.created_at.strftime("%Y-%m-%d %H:%M:%S.%f")
    assert entry["updated-at"] == sc.updated_at.strftime("%Y-%m-%d %H:%M:%S.%f")


def test_it_lists_endpoints_in_fixed_order_with_overall_sync_status(operator, subcloud_factory, drain):
    sc = online_managed(subcloud_factory("sync"), drain)
    entry = operator.get("/v1.0/subclouds").json()["subclouds"][0]
    assert entry["endpoint_sync_status"] == [{"endpoint_type": e, "sync_status": "unknown"} for e in ENDPOINT_ORDER]
    assert entry["sync_status"] == "unknown"
    set_endpoints(sc, drain, "in-sync")
    entry = operator.get("/v1.0/subclouds").json()["subclouds"][0]
    assert entry["sync_status"] == "in-sync"
    set_endpoints(sc, drain, "unknown", "firmware")
    entry = operator.get("/v1.0/subclouds").json()["subclouds"][0]
    # Any disagreement between endpoints counts as out of sync.
    assert entry["sync_status"] == "out-of-sync"
    assert {"endpoint_type": "firmware", "sync_status": "unknown"} in entry["endpoint_sync_status"]


@pytest.fixture
def fleet(subcloud_factory, drain, group):
    """alpha: online managed in-sync, group edge-east; beta: online unmanaged out-of-sync;
    gamma: offline unmanaged unknown, secondary; delta: offline, rehome-pending, group edge-east."""
    alpha = online_managed(subcloud_factory("alpha-site", group_id=group), drain)
    set_endpoints(alpha, drain, "in-sync")
    beta = subcloud_factory("beta-site")
    set_availability(beta, "online", drain)
    set_endpoints(beta, drain, "out-of-sync", "platform")
    gamma = subcloud_factory("gamma-edge")
    Subcloud.objects.filter(pk=gamma.pk).update(deploy_status="secondary")
    delta = subcloud_factory("delta-edge", group_id=group)
    Subcloud.objects.filter(pk=delta.pk).update(deploy_status="rehome-pending")
    return {"alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta}


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", ["alpha-site", "beta-site", "gamma-edge", "delta-edge"]),
        ("availability-status=online", ["alpha-site", "beta-site"]),
        ("availability-status=offline", ["gamma-edge", "delta-edge"]),
        ("management-state=managed", ["alpha-site"]),
        ("management-state=unmanaged", ["beta-site", "gamma-edge", "delta-edge"]),
        ("deploy-status=complete", ["alpha-site", "beta-site"]),
        ("deploy-status=secondary", ["gamma-edge"]),
        ("deploy-status=rehome-pending", ["delta-edge"]),
        ("group_id=GROUP", ["alpha-site", "delta-edge"]),
        ("group_id=1", ["beta-site", "gamma-edge"]),
        ("sync_status=in-sync", ["alpha-site"]),
        ("sync_status=out-of-sync", ["beta-site"]),
        ("sync_status=unknown", ["gamma-edge", "delta-edge"]),
        ("name=site", ["alpha-site", "beta-site"]),
        ("name=EDGE", ["gamma-edge", "delta-edge"]),
        ("name=ta-s", ["beta-site"]),
        ("name=nothing", []),
        ("availability-status=online&management-state=unmanaged", ["beta-site"]),
        ("group_id=GROUP&availability-status=offline&name=delta", ["delta-edge"]),
    ],
)
def test_it_filters_the_list(operator, fleet, group, query, expected):
    r = operator.get("/v1.0/subclouds/?" + query.replace("GROUP", str(group.pk)))
    assert r.status_code == 200, r.content
    assert [s["name"] for s in r.json()["subclouds"]] == expected


@pytest.mark.parametrize(
    "query, field",
    [
        ("availability-status=sleeping", "availability-status"),
        ("management-state=owned", "management-state"),
        ("deploy-status=deploying-maybe", "deploy-status"),
        ("group_id=abc", "group_id"),
        ("group_id=1.5", "group_id"),
        ("sync_status=half", "sync_status"),
    ],
)
def test_it_refuses_bad_filter_values_naming_the_field(operator, subcloud_factory, query, field):
    subcloud_factory("one")
    r = operator.get("/v1.0/subclouds?" + query)
    assert r.status_code == 400
    body = r.json()
    assert body["field"] == field
    assert field in body["error_message"]
    assert set(body) == {"error_message", "field", "errors"}


def test_it_lists_5000_subclouds_in_at_most_two_queries(db):
    """Rows made with bulk_create; force_authenticate with a superuser costs no auth query, so every
    captured query belongs to the list itself."""
    Subcloud.objects.bulk_create(Subcloud(name=f"bulk{i:05d}") for i in range(5000))
    ids = list(Subcloud.objects.values_list("id", flat=True))
    EndpointStatus.objects.bulk_create(
        (EndpointStatus(subcloud_id=sid, endpoint_type=e) for sid in ids for e in ENDPOINT_TYPES), batch_size=10000
    )
    client = APIClient()
    client.force_authenticate(make_user("superuser"))
    with CaptureQueriesContext(connection) as queries:
        r = client.get("/v1.0/subclouds/")
    assert r.status_code == 200
    listed = r.json()["subclouds"]
    assert len(listed) == 5000
    assert all(len(s["endpoint_sync_status"]) == 7 for s in listed)
    assert len(queries.captured_queries) <= 2, [q["sql"][:120] for q in queries.captured_queries]
    with CaptureQueriesContext(connection) as queries:
        r = client.get("/v1.0/subclouds/?availability-status=offline&sync_status=unknown&name=bulk")
    assert len(r.json()["subclouds"]) == 5000
    assert len(queries.captured_queries) <= 2


def test_it_spends_two_queries_on_token_auth_and_two_on_the_list(client_as, subcloud_factory):
    """With a real token: the token row (with its user) and the role; then subclouds and endpoints."""
    for i in range(3):
        subcloud_factory(f"few{i}")
    operator = client_as("operator")
    with CaptureQueriesContext(connection) as queries:
        r = operator.get("/v1.0/subclouds")
    assert len(r.json()["subclouds"]) == 3
    tables = [q["sql"].split(" FROM ")[1].split()[0].strip('"') for q in queries.captured_queries]
    assert tables == ["accounts_apitoken", "auth_group", "subclouds_subcloud", "subclouds_endpointstatus"]


# -- show and detail -------------------------------------------------------------------


def test_it_shows_a_subcloud_by_id_name_or_region_name(operator, subcloud_factory):
    sc = subcloud_factory("yow", region_name="RegionYOW")
    listed = operator.get("/v1.0/subclouds").json()["subclouds"][0]
    for ref in (sc.pk, "yow", "RegionYOW"):
        for suffix in ("", "/"):
            r = operator.get(f"/v1.0/subclouds/{ref}{suffix}")
            assert r.status_code == 200, (ref, r.content)
            assert r.json() == listed


@pytest.mark.parametrize("path", ["/v1.0/subclouds/nosuch", "/v1.0/subclouds/999999/", "/v1.0/subclouds/nosuch/detail"])
def test_it_answers_404_json_for_an_unknown_subcloud(operator, path):
    r = operator.get(path)
    assert r.status_code == 404
    assert "nosuch" in r.json()["error_message"] or "999999" in r.json()["error_message"]


def test_it_shows_detail_keys(operator, subcloud_factory):
    sc = subcloud_factory("det")
    for ref in (sc.pk, "det", sc.region_name):
        r = operator.get(f"/v1.0/subclouds/{ref}/detail")
        assert r.status_code == 200
        body = r.json()
        assert set(body) == DETAIL_KEYS
        assert body["region_name"] == body["region-name"] == sc.region_name
        assert body["oam_floating_ip"] == "unavailable"
        assert body["deploy_config_sync_status"] == "unknown"
        listed = operator.get(f"/v1.0/subclouds/{ref}").json()
        assert {k: v for k, v in body.items() if k in LISTING_KEYS} == listed


# -- register ----------------------------------------------------------------------------


def assert_fresh(body, subcloud):
    assert set(body) == LISTING_KEYS
    assert body["management-state"] == "unmanaged"
    assert body["availability-status"] == "offline"
    assert body["deploy-status"] == "complete"
    assert body["sync_status"] == "unknown"
    assert body["endpoint_sync_status"] == [{"endpoint_type": e, "sync_status": "unknown"} for e in ENDPOINT_ORDER]
    assert body["audit-fail-count"] == 0
    assert endpoints_of(subcloud) == dict.fromkeys(ENDPOINT_ORDER, "unknown")
    # The offline alarm belongs to a transition, not to registration.
    assert not Fault.objects.filter(subcloud=subcloud).exists()
    assert not Outbox.objects.filter(subcloud=subcloud).exists()


def test_it_registers_a_subcloud_from_json_with_defaults(operator):
    r = operator.post("/v1.0/subclouds/", {"name": "subcloud1"}, format="json")
    assert r.status_code == 200, r.content
    sc = Subcloud.objects.get(name="subcloud1")
    body = r.json()
    assert_fresh(body, sc)
    assert body["id"] == sc.pk
    assert body["group_id"] == 1 and sc.group_id == 1
    assert re.fullmatch(r"[0-9a-f]{32}", body["region-name"])
    assert body["region-name"] == sc.region_name
    assert sc.audit_url is None
    assert StateChange.objects.filter(subcloud_id=sc.pk, reason="registered").count() == 1


def test_it_registers_a_subcloud_from_json_with_every_optional_field(operator, group):
    data = {
        "name": "subcloud2", "description": "Ottawa Site", "location": "YOW", "group_id": group.pk,
        "region_name": "RegionTwo", "software-version": "24.09", "management-subnet": "192.168.101.0/24",
        "management-start-ip": "192.168.101.2", "management-end-ip": "192.168.101.50",
        "management-gateway-ip": "192.168.101.1", "systemcontroller-gateway-ip": "192.168.204.101",
        "audit-url": "http://127.0.0.1:9/health",
    }
    r = operator.post("/v1.0/subclouds", data, format="json")
    assert r.status_code == 200, r.content
    sc = Subcloud.objects.get(name="subcloud2")
    body = r.json()
    assert_fresh(body, sc)
    assert body["region-name"] == "RegionTwo" == sc.region_name
    assert body["group_id"] == group.pk == sc.group_id
    for key in ("description", "location", "software-version", "management-subnet", "management-start-ip",
                "management-end-ip", "management-gateway-ip", "systemcontroller-gateway-ip"):
        assert body[key] == data[key], key
        assert getattr(sc, SUBCLOUD_KEYS[key]) == data[key]
    assert sc.audit_url == "http://127.0.0.1:9/health"


def test_it_registers_a_subcloud_from_a_multipart_form(operator, group):
    data = {"name": "subcloud3", "description": "Form", "group_id": group.name, "management-subnet": "10.10.0.0/16",
            "management_gateway_ip": "10.10.0.1", "region_name": "RegionForm"}
    r = operator.post("/v1.0/subclouds/", data, format="multipart")
    assert r.status_code == 200, r.content
    sc = Subcloud.objects.get(name="subcloud3")
    assert_fresh(r.json(), sc)
    assert r.json()["group_id"] == group.pk == sc.group_id
    assert sc.management_subnet == "10.10.0.0/16"
    assert sc.management_gateway_ip == "10.10.0.1"
    assert sc.region_name == "RegionForm"


BOOTSTRAP_YAML = b"""
system_mode: simplex
name: subcloud-yaml
description: From bootstrap values
location: YYZ
management_subnet: 192.168.102.0/24
management_start_address: 192.168.102.2
management_end_address: 192.168.102.50
management_gateway_address: 192.168.102.1
systemcontroller_gateway_address: 192.168.204.101
external_oam_floating_address: 10.10.10.12
"""


def test_it_registers_from_what_dcmanager_subcloud_add_sends(operator, group):
    """`dcmanager subcloud add --bootstrap-address A --bootstrap-values F --group G --release R` (multipart)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {
        "bootstrap-address": "10.10.10.12",
        "sysadmin_password": "c2VjcmV0",
        "group_id": group.name,
        "release": "24.09",
        "bootstrap_values": SimpleUploadedFile("values.yml", BOOTSTRAP_YAML),
    }
    r = operator.post("/v1.0/subclouds/", data, format="multipart")
    assert r.status_code == 200, r.content
    sc = Subcloud.objects.get(name="subcloud-yaml")
    body = r.json()
    assert_fresh(body, sc)
    assert (body["description"], body["location"], body["software-version"]) == ("From bootstrap values", "YYZ", "24.09")
    assert (sc.management_subnet, sc.management_start_ip, sc.management_end_ip) == (
        "192.168.102.0/24", "192.168.102.2", "192.168.102.50")
    assert (sc.management_gateway_ip, sc.systemcontroller_gateway_ip) == ("192.168.102.1", "192.168.204.101")
    assert sc.group_id == group.pk
    assert "c2VjcmV0" not in str(Subcloud.objects.filter(pk=sc.pk).values().get())


@pytest.mark.parametrize(
    "upload, extra, field",
    [
        (b"name: [unclosed", {}, "bootstrap_values"),
        (b"- just\n- a list\n", {}, "bootstrap_values"),
        (b"name: ok-name\nmanagement_start_address: 1.2.3.999\n", {}, "management-start-ip"),
        (b"description: no name\n", {}, "name"),
        (b"name: dup\n", {"name": "dup"}, None),
    ],
)
def test_it_refuses_bad_bootstrap_values_naming_the_field(operator, subcloud_factory, upload, extra, field):
    from django.core.files.uploadedfile import SimpleUploadedFile

    if field is None:
        subcloud_factory("dup")
    r = operator.post("/v1.0/subclouds/", {"bootstrap_values": SimpleUploadedFile("v.yml", upload), **extra},
                      format="multipart")
    assert r.status_code == (409 if field is None else 400), r.content
    assert r.json()["field"] == (field or "name")
    assert Subcloud.objects.count() == (1 if field is None else 0)


def test_it_refuses_a_duplicate_name_or_region_with_409(operator, subcloud_factory):
    subcloud_factory("taken", region_name="RegionTaken")
    r = operator.post("/v1.0/subclouds/", {"name": "taken"}, format="json")
    assert r.status_code == 409
    assert r.json()["field"] == "name"
    assert "taken" in r.json()["error_message"]
    r = operator.post("/v1.0/subclouds/", {"name": "other", "region_name": "RegionTaken"}, format="json")
    assert r.status_code == 409
    assert r.json()["field"] == "region_name"
    assert list(Subcloud.objects.values_list("name", flat=True)) == ["taken"]
    assert EndpointStatus.objects.count() == 7


@pytest.mark.parametrize(
    "data, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "12345"}, "name"),
        ({"name": "n", "management-subnet": "300.1.2.0/24"}, "management-subnet"),
        ({"name": "n", "management-subnet": "not-a-subnet"}, "management-subnet"),
        ({"name": "n", "management-start-ip": "10.0.0.300"}, "management-start-ip"),
        ({"name": "n", "management-end-ip": "ip"}, "management-end-ip"),
        ({"name": "n", "management-gateway-ip": "1.2.3"}, "management-gateway-ip"),
        ({"name": "n", "systemcontroller-gateway-ip": "x"}, "systemcontroller-gateway-ip"),
        ({"name": "n", "audit-url": "not a url"}, "audit-url"),
        ({"name": "n", "group_id": 999}, "group_id"),
        ({"name": "n", "group_id": "no-such-group"}, "group_id"),
        ({"name": "n", "region_name": "bad region!"}, "region_name"),
        ({"name": "n", "colour": "blue"}, "colour"),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "multipart"])
def test_it_refuses_bad_registration_input_naming_the_field(operator, data, field, fmt):
    r = operator.post("/v1.0/subclouds/", data, format=fmt)
    assert r.status_code == 400, r.content
    body = r.json()
    assert body["field"] == field
    assert body["error_message"].startswith(field)
    assert field in body["errors"]
    assert not Subcloud.objects.exists()
    assert not EndpointStatus.objects.exists()


# -- PATCH: manage / unmanage --------------------------------------------------------------


def test_it_manages_an_online_complete_subcloud(operator, subcloud_factory, drain):
    sc = subcloud_factory("m1")
    set_availability(sc, "online", drain)
    mark = last_outbox_id()
    r = operator.patch(f"/v1.0/subclouds/{sc.name}", {"management-state": "managed"}, format="json")
    assert r.status_code == 200, r.content
    assert set(r.json()) == LISTING_KEYS
    assert r.json()["management-state"] == "managed"
    sc.refresh_from_db()
    assert sc.management_state == "managed"
    assert outbox_kinds(sc, mark) == ["audit-subcloud", "dcorch"]
    dcorch = Outbox.objects.get(subcloud=sc, kind="dcorch", id__gt=mark)
    assert dcorch.payload["management_state"] == "managed"
    assert dcorch.payload["availability_status"] == "online"


def test_it_manages_from_a_multipart_form_as_the_dcmanager_client_sends_it(operator, subcloud_factory, drain):
    sc = subcloud_factory("m2")
    set_availability(sc, "online", drain)
    r = operator.patch(f"/v1.0/subclouds/{sc.pk}/", {"management-state": "managed"}, format="multipart")
    assert r.status_code == 200, r.content
    assert r.json()["management-state"] == "managed"
    sc.refresh_from_db()
    assert sc.management_state == "managed"


@pytest.mark.parametrize("fmt, force", [("multipart", "true"), ("json", True), ("json", "true")])
def test_it_manages_an_offline_subcloud_when_forced(operator, subcloud_factory, fmt, force):
    sc = subcloud_factory("forced")
    mark = last_outbox_id()
    r = operator.patch("/v1.0/subclouds/forced", {"management-state": "managed", "force": force}, format=fmt)
    assert r.status_code == 200, r.content
    assert r.json()["management-state"] == "managed"
    assert r.json()["availability-status"] == "offline"
    sc.refresh_from_db()
    assert sc.management_state == "managed"
    assert outbox_kinds(sc, mark) == ["audit-subcloud", "dcorch"]


def test_it_manages_a_subcloud_that_is_not_complete_when_forced(operator, subcloud_factory, drain):
    sc = subcloud_factory("sec")
    set_availability(sc, "online", drain)
    Subcloud.objects.filter(pk=sc.pk).update(deploy_status="rehome-pending")
    r = operator.patch("/v1.0/subclouds/sec", {"management-state": "managed", "force": "true"}, format="multipart")
    assert r.status_code == 200, r.content
    assert Subcloud.objects.get(pk=sc.pk).management_state == "managed"


@pytest.mark.parametrize(
    "setup, data, message",
    [
        ("offline", {"management-state": "managed"}, "can be managed only when it is online"),
        ("not-complete", {"management-state": "managed"}, "can be managed only if deploy status is complete"),
        ("managed", {"management-state": "managed"}, "is already managed"),
        ("managed", {"management-state": "managed", "force": "true"}, "is already managed"),
        ("unmanaged", {"management-state": "unmanaged"}, "is already unmanaged"),
    ],
)
def test_it_refuses_a_management_change_the_rules_forbid_changing_nothing(
    operator, subcloud_factory, drain, setup, data, message
):
    sc = subcloud_factory("rule")
    if setup in ("not-complete", "managed", "unmanaged"):
        set_availability(sc, "online", drain)
    if setup == "not-complete":
        Subcloud.objects.filter(pk=sc.pk).update(deploy_status="secondary")
    if setup == "managed":
        operations.update_subcloud(sc.pk, management_state="managed")
    before = snapshot(sc)
    r = operator.patch("/v1.0/subclouds/rule", {**data, "description": "not applied"}, format="multipart")
    assert r.status_code == 400, r.content
    assert message in r.json()["error_message"]
    assert r.json()["field"] == "management-state"
    assert snapshot(sc) == before


@pytest.mark.parametrize(
    "data, field",
    [
        ({"management-state": "unmanaged", "force": "true"}, "force"),
        ({"management-state": "unmanaged", "force": "false"}, "force"),
        ({"force": "true"}, "force"),
        ({"management-state": "managed", "force": "perhaps"}, "force"),
        ({"management-state": "owned"}, "management-state"),
        ({"group_id": "no-such-group", "description": "x"}, "group_id"),
        ({"group_id": 4242}, "group_id"),
        ({"name": "rename-not-supported"}, "name"),
        ({}, "body"),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "multipart"])
def test_it_refuses_bad_patch_input_naming_the_field(operator, subcloud_factory, drain, data, field, fmt):
    sc = online_managed(subcloud_factory("bad"), drain)
    before = snapshot(sc)
    r = operator.patch("/v1.0/subclouds/bad", data, format=fmt)
    assert r.status_code == 400, r.content
    assert r.json()["field"] == field
    assert snapshot(sc) == before


def test_it_unmanages_setting_every_endpoint_but_dc_cert_unknown(operator, subcloud_factory, drain):
    sc = online_managed(subcloud_factory("u1"), drain)
    set_endpoints(sc, drain, "in-sync")
    mark = last_outbox_id()
    r = operator.patch("/v1.0/subclouds/u1/", {"management-state": "unmanaged"}, format="multipart")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["management-state"] == "unmanaged"
    expected = dict.fromkeys(ENDPOINT_ORDER, "unknown") | {"dc-cert": "in-sync"}
    assert endpoints_of(sc) == expected
    assert body["endpoint_sync_status"] == [{"endpoint_type": e, "sync_status": expected[e]} for e in ENDPOINT_ORDER]
    assert Subcloud.objects.get(pk=sc.pk).management_state == "unmanaged"
    assert outbox_kinds(sc, mark) == ["dcorch"]
    assert Outbox.objects.get(subcloud=sc, id__gt=mark).payload["management_state"] == "unmanaged"


@pytest.mark.parametrize("deploy_status", ["secondary", "rehome-pending"])
def test_it_unmanages_secondary_and_rehome_pending_setting_dc_cert_unknown_too(
    operator, subcloud_factory, drain, deploy_status
):
    sc = online_managed(subcloud_factory("u2"), drain)
    set_endpoints(sc, drain, "in-sync")
    Subcloud.objects.filter(pk=sc.pk).update(deploy_status=deploy_status)
    r = operator.patch("/v1.0/subclouds/u2", {"management-state": "unmanaged"}, format="json")
    assert r.status_code == 200, r.content
    assert endpoints_of(sc) == dict.fromkeys(ENDPOINT_ORDER, "unknown")
    assert r.json()["sync_status"] == "unknown"


def test_it_edits_description_location_and_group_by_id_or_name(operator, subcloud_factory, group):
    sc = subcloud_factory("e1")
    r = operator.patch("/v1.0/subclouds/e1", {"description": "New", "location": "YUL", "group_id": group.name},
                       format="multipart")
    assert r.status_code == 200, r.content
    assert (r.json()["description"], r.json()["location"], r.json()["group_id"]) == ("New", "YUL", group.pk)
    sc.refresh_from_db()
    assert (sc.description, sc.location, sc.group_id) == ("New", "YUL", group.pk)
    assert TIME_FORMAT.match(r.json()["updated-at"])
    r = operator.patch(f"/v1.0/subclouds/{sc.region_name}", {"group_id": 1}, format="json")
    assert r.status_code == 200
    assert r.json()["group_id"] == 1 == Subcloud.objects.get(pk=sc.pk).group_id
    r = operator.patch("/v1.0/subclouds/e1", {"group_id": str(group.pk)}, format="multipart")
    assert r.json()["group_id"] == group.pk == Subcloud.objects.get(pk=sc.pk).group_id


def test_it_manages_and_edits_together(operator, subcloud_factory, drain, group):
    sc = subcloud_factory("both")
    set_availability(sc, "online", drain)
    r = operator.patch("/v1.0/subclouds/both", {"management-state": "managed", "group_id": group.pk}, format="json")
    assert r.status_code == 200
    sc.refresh_from_db()
    assert (sc.management_state, sc.group_id) == ("managed", group.pk)


def test_it_answers_404_for_patching_an_unknown_subcloud(operator):
    r = operator.patch("/v1.0/subclouds/ghost", {"management-state": "managed"}, format="multipart")
    assert r.status_code == 404
    assert "ghost" in r.json()["error_message"]


# -- delete ----------------------------------------------------------------------------------


def test_it_refuses_to_delete_a_managed_subcloud(operator, subcloud_factory, drain):
    sc = online_managed(subcloud_factory("d1"), drain)
    r = operator.delete("/v1.0/subclouds/d1")
    assert r.status_code == 400
    assert "managed" in r.json()["error_message"]
    assert Subcloud.objects.filter(pk=sc.pk).exists()
    assert EndpointStatus.objects.filter(subcloud_id=sc.pk).count() == 7


@pytest.mark.parametrize("ref", ["id", "name", "region", "name/"])
def test_it_deletes_an_unmanaged_subcloud_keeping_its_cleared_alarms_in_history(operator, subcloud_factory, drain, ref):
    sc = subcloud_factory("d2")
    set_availability(sc, "online", drain)
    set_availability(sc, "offline", drain)  # raises 280.001
    fault = Fault.objects.get(subcloud=sc, cleared_at__isnull=True)
    assert fault.alarm_id == "280.001"
    other = subcloud_factory("keep")
    path = {"id": sc.pk, "name": "d2", "region": sc.region_name, "name/": "d2/"}[ref]
    r = operator.delete(f"/v1.0/subclouds/{path}")
    assert r.status_code == 200, r.content
    assert r.json() == {}
    assert not Subcloud.objects.filter(pk=sc.pk).exists()
    assert not EndpointStatus.objects.filter(subcloud_id=sc.pk).exists()
    fault.refresh_from_db()
    assert fault.cleared_at is not None
    assert fault.subcloud_id is None and fault.subcloud_name == "d2"
    assert operator.get("/v1.0/faults").json()["faults"] == []
    assert [s["name"] for s in operator.get("/v1.0/subclouds").json()["subclouds"]] == ["keep"]
    assert EndpointStatus.objects.filter(subcloud=other).count() == 7
    assert StateChange.objects.filter(subcloud_name="d2", reason="deleted", changes={"deleted": True}).count() == 1


def test_it_answers_200_to_delete_as_the_dcmanager_client_requires(operator, subcloud_factory):
    """dcmanagerclient's _delete() raises on anything but 200."""
    subcloud_factory("d3")
    assert operator.delete("/v1.0/subclouds/d3/").status_code == 200


def test_it_answers_404_for_deleting_an_unknown_subcloud(operator):
    r = operator.delete("/v1.0/subclouds/ghost")
    assert r.status_code == 404
    assert "ghost" in r.json()["error_message"]


# -- update_status (what the certificate monitor calls) -------------------------------------------


def test_it_accepts_a_dc_cert_status_and_applies_it_through_the_state_service(client_as, subcloud_factory, drain):
    from state.models import StateUpdate

    sc = subcloud_factory("cert")
    set_availability(sc, "online", drain)
    r = client_as("service").patch("/v1.0/subclouds/cert/update_status", {"endpoint": "dc-cert", "status": "in-sync"},
                                   format="json")
    assert r.status_code == 200, r.content
    assert r.json() == {"result": "OK"}
    pending = StateUpdate.objects.get(subcloud=sc, applied_at__isnull=True)
    assert pending.payload["endpoint_type"] == "dc-cert"
    assert endpoints_of(sc)["dc-cert"] == "unknown"  # applied by the workers, not by the view
    drain()
    assert endpoints_of(sc)["dc-cert"] == "in-sync"
    r = client_as("service").patch(f"/v1.0/subclouds/{sc.pk}/update_status/", {"endpoint": "dc-cert",
                                   "status": "out-of-sync"}, format="multipart")
    assert r.status_code == 200
    drain()
    assert endpoints_of(sc)["dc-cert"] == "out-of-sync"


@pytest.mark.parametrize(
    "data, field",
    [
        ({"endpoint": "platform", "status": "in-sync"}, "endpoint"),
        ({"status": "in-sync"}, "endpoint"),
        ({"endpoint": "dc-cert", "status": "sideways"}, "status"),
    ],
)
def test_it_refuses_update_status_for_anything_but_dc_cert(client_as, subcloud_factory, data, field):
    from state.models import StateUpdate

    subcloud_factory("cert")
    r = client_as("service").patch("/v1.0/subclouds/cert/update_status", data, format="json")
    assert r.status_code == 400, r.content
    if field is not None:
        assert r.json()["field"] == field
    assert r.json()["error_message"]
    assert not StateUpdate.objects.exists()


def test_it_answers_404_to_update_status_of_an_unknown_subcloud(client_as):
    r = client_as("service").patch("/v1.0/subclouds/ghost/update_status", {"endpoint": "dc-cert", "status": "in-sync"},
                                   format="json")
    assert r.status_code == 404
    assert "ghost" in r.json()["error_message"]


# -- malformed requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("method, path", [("post", "/v1.0/subclouds/"), ("patch", "/v1.0/subclouds/sc"),
                                          ("post", "/v1.0/subcloud-groups/"), ("patch", "/v1.0/subcloud-groups/1")])
@pytest.mark.parametrize("body", ['["a", "list"]', '"text"', "12", '{"broken": '])
def test_it_answers_400_json_to_a_body_that_is_not_an_object(operator, subcloud_factory, method, path, body):
    subcloud_factory("sc")
    before = snapshot(Subcloud.objects.get(name="sc"))
    r = getattr(operator, method)(path, body, content_type="application/json")
    assert r.status_code == 400, r.content
    assert r.json()["error_message"]
    assert snapshot(Subcloud.objects.get(name="sc")) == before


@pytest.mark.parametrize("path", ["/v1.0/subclouds/99999999999999999999", "/v1.0/subclouds/99999999999999999999/detail"])
def test_it_answers_404_to_an_id_beyond_any_integer(operator, path):
    assert operator.get(path).status_code == 404


def test_it_filters_by_a_group_id_beyond_any_integer(operator, subcloud_factory):
    subcloud_factory("sc")
    r = operator.get("/v1.0/subclouds?group_id=99999999999999999999")
    assert r.status_code == 200
    assert r.json() == {"subclouds": []}


def test_it_answers_405_json_to_an_unsupported_method(operator, subcloud_factory):
    subcloud_factory("sc")
    r = operator.put("/v1.0/subclouds/sc", {"description": "x"}, format="json")
    assert r.status_code == 405
    assert r.json()["error_message"]
