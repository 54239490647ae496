import pytest

from subclouds.models import Subcloud

pytestmark = pytest.mark.django_db


def test_it_registers_lists_and_applies_a_state_update(client_as, drain):
    op = client_as("operator")
    r = op.post("/v1.0/subclouds/", {"name": "subcloud1", "description": "Ottawa"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["availability-status"] == "offline"
    svc = client_as("service")
    r = svc.post("/v1.0/state/availability", {"subcloud": "subcloud1", "availability_status": "online"}, format="json")
    assert r.status_code == 202, r.content
    drain()
    assert Subcloud.objects.get(name="subcloud1").availability_status == "online"
    r = op.get("/v1.0/subclouds")
    assert r.json()["subclouds"][0]["availability-status"] == "online"
