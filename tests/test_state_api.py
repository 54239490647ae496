"""The state endpoints of api.md: validated first, then accepted (202) with a growing sequence."""

import pytest

from state.models import StateUpdate
from subclouds.models import Subcloud

pytestmark = pytest.mark.django_db

PERSONA_STATUS = [("service", 202), ("superuser", 202), ("operator", 403), ("reader", 403), ("outsider", 403), (None, 401)]


@pytest.fixture
def svc(client_as):
    return client_as("service")


@pytest.fixture
def fleet(subcloud_factory):
    return [subcloud_factory(f"sc{i}") for i in range(3)]


def post(client, path, body):
    return client.post(path, body, format="json")


@pytest.mark.parametrize("path", ["/v1.0/state/endpoint-status", "/v1.0/state/endpoint-status/"])
def test_it_accepts_an_endpoint_update_with_a_growing_sequence(svc, fleet, path):
    r1 = post(svc, path, {"subcloud": "sc0", "endpoint_type": "platform", "sync_status": "in-sync"})
    r2 = post(svc, path, {"subcloud": fleet[1].region_name, "endpoint_type": "identity"})
    assert r1.status_code == r2.status_code == 202
    assert r1.json()["accepted"] == 1 and r2.json()["sequence"] > r1.json()["sequence"]
    stored = StateUpdate.objects.get(pk=r2.json()["sequence"])
    assert stored.subcloud_id == fleet[1].pk and stored.applied_at is None
    # Defaults of api.md: out-of-sync, alarmable, no ignored endpoints.
    assert stored.payload == {"endpoint_type": "identity", "sync_status": "out-of-sync", "alarmable": True,
                              "ignore_endpoints": []}


def test_it_fans_an_update_without_subcloud_out_to_every_subcloud(svc, fleet):
    r = post(svc, "/v1.0/state/endpoint-status", {"subcloud": None, "sync_status": "unknown", "ignore_endpoints": ["dc-cert"]})
    assert r.status_code == 202 and r.json()["accepted"] == 3
    assert set(StateUpdate.objects.values_list("subcloud_id", flat=True)) == {s.pk for s in fleet}


def test_it_accepts_availability_and_bulk(svc, fleet):
    r = post(svc, "/v1.0/state/availability", {"subcloud": "sc0", "availability_status": "online", "audit_fail_count": 0})
    assert r.status_code == 202 and r.json()["accepted"] == 1
    one = {"subcloud": "sc1", "availability": {"availability_status": "offline", "audit_fail_count": 2},
           "endpoints": {"platform": "in-sync"}}
    assert post(svc, "/v1.0/state/bulk", one).json()["accepted"] == 1
    many = {"updates": [{"subcloud": s.name, "endpoints": {"platform": "in-sync"}} for s in fleet]}
    r = post(svc, "/v1.0/state/bulk/", many)
    assert r.status_code == 202 and r.json()["accepted"] == 3
    assert StateUpdate.objects.count() == 5


BAD = [
    ("/v1.0/state/endpoint-status", {"subcloud": "sc0", "endpoint_type": "nova"}, "endpoint_type"),
    ("/v1.0/state/endpoint-status", {"subcloud": "sc0", "sync_status": "synced"}, "sync_status"),
    ("/v1.0/state/endpoint-status", {"subcloud": "sc0", "alarmable": "yes"}, "alarmable"),
    ("/v1.0/state/endpoint-status", {"subcloud": "sc0", "ignore_endpoints": ["nova"]}, "ignore_endpoints"),
    ("/v1.0/state/endpoint-status", {"subcloud": "sc0", "colour": "red"}, "colour"),
    ("/v1.0/state/endpoint-status", ["not", "an", "object"], "body"),
    ("/v1.0/state/availability", {"subcloud": "sc0", "availability_status": "degraded"}, "availability_status"),
    ("/v1.0/state/availability", {"subcloud": "sc0", "availability_status": "online", "audit_fail_count": -1},
     "audit_fail_count"),
    ("/v1.0/state/availability", {"availability_status": "online"}, "subcloud"),
    ("/v1.0/state/availability", {"subcloud": "sc0", "availability_status": "online", "update_state_only": 1},
     "update_state_only"),
    ("/v1.0/state/bulk", {"subcloud": "sc0", "endpoints": {"nova": "in-sync"}}, "endpoints.nova"),
    ("/v1.0/state/bulk", {"subcloud": "sc0", "endpoints": {"platform": "maybe"}}, "endpoints.platform"),
    ("/v1.0/state/bulk", {"subcloud": "sc0", "availability": {"audit_fail_count": 1}}, "availability.availability_status"),
    ("/v1.0/state/bulk", {"updates": []}, "updates"),
    ("/v1.0/state/bulk", {"updates": [{"subcloud": "sc0"}, {"subcloud": "sc1", "endpoints": {"x": "in-sync"}}]},
     "updates[1].endpoints.x"),
]


@pytest.mark.parametrize("path,body,field", BAD)
def test_it_refuses_bad_input_naming_the_field_and_accepts_nothing(svc, fleet, path, body, field):
    r = post(svc, path, body)
    assert r.status_code == 400, r.content
    assert r.json()["field"] == field and field in r.json()["error_message"]
    assert not StateUpdate.objects.exists()


def test_it_refuses_more_than_1000_subclouds_in_one_bulk(svc, fleet):
    r = post(svc, "/v1.0/state/bulk", {"updates": [{"subcloud": "sc0"}] * 1001})
    assert r.status_code == 400 and r.json()["field"] == "updates" and "1000" in r.json()["error_message"]
    assert not StateUpdate.objects.exists()


@pytest.mark.parametrize(
    "path,body,field",
    [
        ("/v1.0/state/endpoint-status", {"subcloud": "nope"}, "subcloud"),
        ("/v1.0/state/availability", {"subcloud": "nope", "availability_status": "online"}, "subcloud"),
        ("/v1.0/state/bulk", {"updates": [{"subcloud": "sc0"}, {"subcloud": "nope"}]}, "updates[1].subcloud"),
    ],
)
def test_it_answers_404_for_an_unknown_subcloud_and_accepts_none_of_the_request(svc, fleet, path, body, field):
    r = post(svc, path, body)
    assert r.status_code == 404 and r.json()["field"] == field and "nope" in r.json()["error_message"]
    assert not StateUpdate.objects.exists()


def test_it_names_the_failing_bulk_item_for_a_name_with_an_apostrophe(svc, fleet):
    """The index came from splitting the error text once, and a quote in the name made it a 500."""
    r = post(svc, "/v1.0/state/bulk", {"updates": [{"subcloud": "sc0"}, {"subcloud": "sc1"}, {"subcloud": "o'brien"}]})
    assert r.status_code == 404
    body = r.json()
    assert body["field"] == "updates[2].subcloud"
    assert body["error_message"].startswith("updates[2].subcloud: ") and "o'brien" in body["error_message"]
    assert body["errors"] == {"updates[2].subcloud": ["subcloud \"o'brien\" not found"]}
    assert not StateUpdate.objects.exists()


@pytest.mark.parametrize("persona,expected", PERSONA_STATUS)
def test_it_lets_only_the_service_role_post_state(client_as, fleet, persona, expected):
    client = client_as(persona)
    for path, body in [
        ("/v1.0/state/endpoint-status", {"subcloud": "sc0"}),
        ("/v1.0/state/availability", {"subcloud": "sc0", "availability_status": "online"}),
        ("/v1.0/state/bulk", {"subcloud": "sc0", "endpoints": {}}),
    ]:
        r = post(client, path, body)
        assert r.status_code == expected, (path, r.content)
        if expected != 202:
            assert "error_message" in r.json()
    assert StateUpdate.objects.count() == (3 if expected == 202 else 0)


def test_it_accepts_the_certificate_monitors_dc_cert_update(svc, fleet, drain):
    Subcloud.objects.filter(pk=fleet[0].pk).update(availability_status="online")
    r = svc.patch("/v1.0/subclouds/sc0/update_status", {"endpoint": "dc-cert", "status": "in-sync"}, format="json")
    assert r.status_code == 200 and r.json() == {"result": "OK"}
    drain()
    assert fleet[0].endpoints.get(endpoint_type="dc-cert").sync_status == "in-sync"


def test_it_refuses_other_endpoints_on_update_status(svc, fleet):
    r = svc.patch("/v1.0/subclouds/sc0/update_status/", {"endpoint": "platform", "status": "in-sync"}, format="json")
    assert r.status_code == 400 and r.json()["field"] == "endpoint"
    r = svc.patch("/v1.0/subclouds/sc0/update_status", {"endpoint": "dc-cert", "status": "fine"}, format="json")
    assert r.status_code == 400 and r.json()["field"] == "status"
    r = svc.patch("/v1.0/subclouds/nope/update_status", {"endpoint": "dc-cert", "status": "in-sync"}, format="json")
    assert r.status_code == 404
    assert not StateUpdate.objects.exists()


@pytest.mark.parametrize("persona,expected", [("service", 200), ("operator", 403), ("reader", 403), (None, 401)])
def test_it_lets_only_the_service_role_patch_update_status(client_as, fleet, persona, expected):
    r = client_as(persona).patch("/v1.0/subclouds/sc0/update_status", {"endpoint": "dc-cert", "status": "in-sync"},
                                 format="json")
    assert r.status_code == expected


def test_it_reports_stats_and_metrics(client_as, svc, fleet, drain):
    post(svc, "/v1.0/state/availability", {"subcloud": "sc0", "availability_status": "online"})
    post(svc, "/v1.0/state/availability", {"subcloud": "sc1", "availability_status": "offline"})  # no-op
    reader = client_as("reader")
    stats = reader.get("/v1.0/state/stats").json()
    assert stats["pending"] == 2 and stats["sequence"] == StateUpdate.objects.latest("id").id
    drain()
    stats = reader.get("/v1.0/state/stats/").json()
    assert (stats["pending"], stats["applied"], stats["noops"], stats["failed"]) == (0, 1, 1, 0)
    metrics = reader.get("/metrics")
    assert metrics.status_code == 200
    assert "dcportal_state_pending 0.0" in metrics.content.decode()
    assert client_as(None).get("/metrics").status_code == 401
