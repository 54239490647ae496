"""Hostile YAML in `bootstrap_values` (issue 10 item 2): refused with a 400 naming the field, nothing registered."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from subclouds.models import Subcloud

pytestmark = pytest.mark.django_db

LAUGHS = b"""name: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
description: [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""
SCALAR_ALIAS = b"name: &n subcloud-x\ndescription: *n\n"
DEEP = b"name: sc\nlocation: " + b"[" * 20000 + b"]" * 20000 + b"\n"
DEEP_MAPPING = b"name: sc\n" + b"".join(b"  " * i + b"k:\n" for i in range(50)) + b"  " * 50 + b"v: 1\n"
NOT_SCALAR = b"name: {nested: mapping}\n"
NOT_SCALAR_LIST = b"name: sc\ndescription: [a, b]\n"
OVERSIZE = b"name: sc\ndescription: " + b"x" * (70 * 1024) + b"\n"


def post(client, document):
    started = time.process_time()
    r = client.post("/v1.0/subclouds/", {"bootstrap_values": SimpleUploadedFile("v.yml", document)}, format="multipart")
    return r, time.process_time() - started


@pytest.mark.parametrize("document", [LAUGHS, SCALAR_ALIAS, DEEP, DEEP_MAPPING, NOT_SCALAR, NOT_SCALAR_LIST, OVERSIZE],
                         ids=["billion-laughs", "scalar-alias", "deep-flow", "deep-mapping", "mapping-as-name",
                              "list-as-description", "oversize"])
def test_it_refuses_a_hostile_bootstrap_values_document_with_400(client_as, document):
    r, cpu = post(client_as("operator"), document)
    print(f"cpu {cpu * 1000:.1f} ms")
    assert r.status_code == 400, r.content[:500]
    body = r.json()
    assert body["field"] == "bootstrap_values"
    assert "bootstrap_values" in body["errors"]
    assert len(r.content) < 2000  # no expanded value, no traceback
    assert Subcloud.objects.count() == 0


def test_it_still_accepts_a_plain_bootstrap_values_document(client_as):
    r, _ = post(client_as("operator"), b"name: plain-one\nlocation: YYZ\nmanagement_subnet: 10.0.0.0/24\n")
    assert r.status_code == 200, r.content
    assert Subcloud.objects.get(name="plain-one").location == "YYZ"
