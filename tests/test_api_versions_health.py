"""GET / (versions), /healthz, the OpenAPI schema and docs, and the routing rules (api.md "Versions and health")."""

import copy
import time

import pytest
from django.conf import settings
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_it_serves_the_versions_document_without_auth():
    r = APIClient().get("/")
    assert r.status_code == 200
    assert r["Content-Type"] == "application/json"
    assert r.json() == {
        "versions": [{"id": "v1.0", "status": "CURRENT", "links": [{"href": "http://testserver/v1.0/", "rel": "self"}]}]
    }


def test_it_serves_the_versions_document_even_with_an_invalid_token():
    r = APIClient().get("/", HTTP_X_AUTH_TOKEN="not-a-token")
    assert r.status_code == 200
    assert r.json()["versions"][0]["id"] == "v1.0"


@pytest.mark.parametrize("path", ["/healthz", "/healthz/"])
def test_it_reports_200_with_a_status_per_dependency(path):
    r = APIClient().get(path)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "channel_layer"}
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["channel_layer"]["status"] == "ok"


def test_it_reports_503_naming_the_channel_layer_when_redis_is_down(tmp_path, client_as):
    """A second channel layer on a socket nobody listens on; the shared Redis keeps running."""
    dead = copy.deepcopy(settings.CHANNEL_LAYERS)
    dead["default"]["CONFIG"]["hosts"] = [{"address": f"unix://{tmp_path}/nobody.sock", "socket_timeout": 1}]
    from django.test import override_settings

    started = time.monotonic()
    reader = client_as("reader")
    with override_settings(CHANNEL_LAYERS=dead):
        r = reader.get("/healthz")
    assert time.monotonic() - started < 15
    assert r.status_code == 503, r.content
    body = r.json()
    assert body["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["channel_layer"]["status"] == "down"
    assert body["checks"]["channel_layer"]["error"] in ("unreachable", "timeout")  # no socket path
    assert str(tmp_path) not in r.content.decode()
    # The layer is back once the override is gone.
    assert APIClient().get("/healthz").status_code == 200


@pytest.mark.parametrize("path", ["/v1.0/schema/", "/v1.0/schema"])
def test_it_serves_the_openapi_schema(path):
    r = APIClient().get(path, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert r.status_code == 200, r.content[:500]
    body = r.json()
    assert body["openapi"].startswith("3.")
    for route in ("/v1.0/subclouds", "/v1.0/subcloud-groups", "/v1.0/alarms", "/v1.0/faults"):
        assert any(p.rstrip("/").startswith(route) for p in body["paths"]), route


def test_it_serves_the_schema_as_yaml_by_default():
    r = APIClient().get("/v1.0/schema/")
    assert r.status_code == 200
    assert b"openapi:" in r.content or b'"openapi"' in r.content


@pytest.mark.parametrize("path", ["/v1.0/docs/", "/v1.0/docs"])
def test_it_serves_the_docs_page(path):
    r = APIClient().get(path)
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/html")
    assert b"swagger" in r.content.lower()
    # Works offline: Swagger UI comes from our static files, not a CDN.
    assert b"/static/drf_spectacular_sidecar/" in r.content and b"cdn.jsdelivr" not in r.content


@pytest.mark.parametrize(
    "path",
    ["/v1.0/subclouds", "/v1.0/subcloud-groups", "/v1.0/alarms", "/v1.0/faults", "/v1.0/subcloud-groups/1",
     "/v1.0/subcloud-groups/1/subclouds"],
)
def test_it_answers_with_and_without_trailing_slash_never_redirecting(client_as, path):
    reader = client_as("reader")
    for p in (path, path + "/"):
        r = reader.get(p)
        assert r.status_code == 200, (p, r.status_code, r.content[:200])
        assert "Location" not in r


def test_it_answers_unknown_paths_with_json_404(client_as):
    r = client_as("reader").get("/v1.0/no-such-thing/")
    assert r.status_code == 404
    assert r.json()["error_message"]
    r = APIClient().get("/nothing-here")
    assert r.status_code == 404
    assert set(r.json()) == {"error_message", "field", "errors"}


def test_it_describes_the_dcmanager_shapes_and_token_auth_in_the_schema():
    body = APIClient().get("/v1.0/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = body["components"]
    assert components["securitySchemes"]["X-Auth-Token"] == {
        "type": "apiKey", "in": "header", "name": "X-Auth-Token",
        "description": components["securitySchemes"]["X-Auth-Token"]["description"],
    }
    from tests.test_api_subclouds import DETAIL_KEYS, LISTING_KEYS

    assert set(components["schemas"]["Subcloud"]["properties"]) == LISTING_KEYS
    assert set(components["schemas"]["SubcloudDetail"]["properties"]) == DETAIL_KEYS
    assert set(components["schemas"]["Error"]["properties"]) == {"error_message", "field", "errors"}
    patch = body["paths"]["/v1.0/subclouds/{ref}/"]["patch"]
    assert set(patch["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"200", "400", "401", "403", "404"} <= set(patch["responses"])
