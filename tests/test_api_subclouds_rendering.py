"""The subcloud list's fast path (api/renderers.py, subclouds_json's shared endpoint lists) sends
exactly the bytes the plain path sent: DRF's JSONRenderer over one dict per subcloud built from the ORM."""

import datetime
import uuid

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from api.renderers import FastJSONRenderer
from subclouds.choices import ENDPOINT_TYPES, overall_sync_status
from subclouds.models import EndpointStatus, Subcloud
from subclouds.representation import SUBCLOUD_KEYS, format_time

pytestmark = pytest.mark.django_db

AWKWARD = 'Montréal — 東京 🛰 "quoted" back\\slash\ttab\x01ctrl\u2028line\u2029para </script>'


def reference_list():
    """The list as the plain path built it: every key from the model, endpoints in the fixed order."""
    listed = []
    for sc in Subcloud.objects.order_by("id"):
        statuses = dict(EndpointStatus.objects.filter(subcloud=sc).values_list("endpoint_type", "sync_status"))
        entry = {key: getattr(sc, field) for key, field in SUBCLOUD_KEYS.items()}
        entry["created-at"], entry["updated-at"] = format_time(sc.created_at), format_time(sc.updated_at)
        entry["sync_status"] = str(overall_sync_status(statuses.values()))
        entry["endpoint_sync_status"] = [{"endpoint_type": e, "sync_status": statuses[e]} for e in ENDPOINT_TYPES
                                         if e in statuses]
        listed.append(entry)
    return {"subclouds": listed}


def set_statuses(subcloud, **statuses):
    for endpoint_type, status in statuses.items():
        EndpointStatus.objects.filter(subcloud=subcloud, endpoint_type=endpoint_type).update(sync_status=status)


def test_it_sends_the_plain_paths_bytes_for_unicode_none_and_mixed_endpoint_statuses(client_as, subcloud_factory):
    awkward = subcloud_factory("awkward", description=AWKWARD, location="Zürich ✓")
    bare = subcloud_factory("bare")  # description, location, times: None
    in_sync = subcloud_factory("in-sync-site")
    also_in_sync = subcloud_factory("also-in-sync")
    for sc in (in_sync, also_in_sync):
        set_statuses(sc, **dict.fromkeys(ENDPOINT_TYPES, "in-sync"))
    set_statuses(awkward, platform="out-of-sync", firmware="in-sync")
    EndpointStatus.objects.filter(subcloud=bare, endpoint_type="software").delete()  # a missing row
    Subcloud.objects.filter(pk=in_sync.pk).update(description="")
    r = client_as("operator").get("/v1.0/subclouds")
    assert r.status_code == 200
    expected = JSONRenderer().render(reference_list())
    assert r.content == expected
    # The cases are really in it: escaped U+2028, raw UTF-8, null, a short and a shared endpoint list.
    assert b"\\u2028line\\u2029para" in r.content and "東京 🛰".encode() in r.content
    listed = {s["name"]: s for s in r.json()["subclouds"]}
    assert listed["bare"]["description"] is None and len(listed["bare"]["endpoint_sync_status"]) == 6
    assert listed["awkward"]["sync_status"] == "out-of-sync" and listed["in-sync-site"]["sync_status"] == "in-sync"


def test_it_keeps_a_subclouds_endpoint_list_its_own_when_others_share_one(client_as, subcloud_factory):
    """Lists are shared between subclouds with equal statuses; one that differs gets its own."""
    first, second, third = (subcloud_factory(f"share{i}") for i in range(3))
    set_statuses(second, kubernetes="out-of-sync")
    listed = {s["name"]: s for s in client_as("operator").get("/v1.0/subclouds").json()["subclouds"]}
    assert listed["share0"]["endpoint_sync_status"] == listed["share2"]["endpoint_sync_status"]
    changed = {e["endpoint_type"]: e["sync_status"] for e in listed["share1"]["endpoint_sync_status"]}
    assert changed["kubernetes"] == "out-of-sync" and changed["platform"] == "unknown"
    assert listed["share1"]["sync_status"] == "out-of-sync" and listed["share0"]["sync_status"] == "unknown"


@pytest.mark.parametrize("data", [
    {"subclouds": [{"id": 2**40, "name": AWKWARD, "ok": True, "no": False, "none": None, "list": [1, "a", None]}]},
    {"at": datetime.datetime(2026, 12, 4, 21, 0, 0, 123456, tzinfo=datetime.UTC), "day": datetime.date(2026, 12, 4),
     "uuid": uuid.UUID(int=7), "lazy": gettext_lazy("Not found."), "nested": {"b": 1, "a": [{}, []]}},
    {"error_message": "bad\u2029", "field": "name", "errors": {"name": ["x"]}},
    [], {},
])
def test_it_renders_what_drfs_renderer_renders(data):
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)


def test_it_falls_back_to_drf_for_an_indent_asked_for(client_as, subcloud_factory):
    subcloud_factory("indented")
    r = client_as("operator").get("/v1.0/subclouds", HTTP_ACCEPT="application/json; indent=2")
    assert r.status_code == 200
    assert r.content == JSONRenderer().render(reference_list(), "application/json; indent=2")
    assert b'\n  "subclouds": [' in r.content
