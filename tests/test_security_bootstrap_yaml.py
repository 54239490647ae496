"""Hostile YAML in `bootstrap_values` (issue 10 item 2): refused with a 400 naming the field, nothing registered."""

import json
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
# Values their YAML tag cannot build, or builds as something that is not a plain scalar.
BAD_DATE = b"name: 2024-13-45\n"
HUGE_INT = b"name: sc\nlocation: 1" + b"0" * 5000 + b"\n"
HUGE_HEX = b"name: sc\nlocation: 0x" + b"f" * 5000 + b"\n"  # builds, but cannot be printed as text
BAD_INT_TAG = b"name: !!int abc\n"
BAD_BOOL_TAG = b"name: sc\ndescription: !!bool maybe\n"
SET_VALUE = b"name: !!set {a, b}\n"
BINARY_VALUE = b"name: sc\ndescription: !!binary aGVsbG8=\n"
DATE_VALUE = b"name: sc\ndescription: 2024-01-02\n"


def post(client, document):
    started = time.process_time()
    r = client.post("/v1.0/subclouds/", {"bootstrap_values": SimpleUploadedFile("v.yml", document)}, format="multipart")
    return r, time.process_time() - started


@pytest.mark.parametrize("document", [LAUGHS, SCALAR_ALIAS, DEEP, DEEP_MAPPING, NOT_SCALAR, NOT_SCALAR_LIST, OVERSIZE,
                                      BAD_DATE, HUGE_INT, HUGE_HEX, BAD_INT_TAG, BAD_BOOL_TAG, SET_VALUE, BINARY_VALUE,
                                      DATE_VALUE],
                         ids=["billion-laughs", "scalar-alias", "deep-flow", "deep-mapping", "mapping-as-name",
                              "list-as-description", "oversize", "bad-timestamp", "5000-digit-int", "5000-digit-hex",
                              "int-tag-on-text", "bool-tag-on-text", "set", "binary", "date"])
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


@pytest.mark.parametrize("values", [{"name": "sc"}, ["name: sc"], 7, True, "name: sc\udc00\n"],
                         ids=["json-object", "json-list", "json-number", "json-bool", "lone-surrogate"])
def test_it_refuses_bootstrap_values_that_are_not_a_document_in_a_json_body(client_as, values):
    body = json.dumps({"bootstrap_values": values})  # ASCII: the lone surrogate travels as \\udc00
    r = client_as("operator").post("/v1.0/subclouds/", body, content_type="application/json")
    assert r.status_code == 400, r.content[:500]
    assert r.json()["field"] == "bootstrap_values"
    assert Subcloud.objects.count() == 0


def test_it_accepts_bootstrap_values_text_in_a_json_body(client_as):
    r = client_as("operator").post("/v1.0/subclouds/", {"bootstrap_values": "name: texted\nlocation: 12\n"}, format="json")
    assert r.status_code == 200, r.content
    assert Subcloud.objects.get(name="texted").location == "12"
