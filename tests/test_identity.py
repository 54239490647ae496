"""The built-in identity endpoint (/identity/v3) as Keystone defines it, in-process.

keystoneauth1 against a real daphne is in test_identity_keystoneauth.py.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from identity.models import IdentityToken
from identity.tokens import stable_id
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
PASSWORD = "pw-12345678"  # make_user's
UNAUTHORIZED = {"error": {"code": 401, "message": "The request you have made requires authentication.",
                          "title": "Unauthorized"}}


def password_auth(username, password=PASSWORD, project={"name": "admin", "domain": {"name": "Default"}},  # noqa: B006
                  user_domain={"name": "Default"}):  # noqa: B006
    auth = {"identity": {"methods": ["password"],
                         "password": {"user": {"name": username, "domain": user_domain, "password": password}}}}
    if project is not None:
        auth["scope"] = {"project": project}
    return {"auth": auth}


def token_auth(token, project=None):
    auth = {"identity": {"methods": ["token"], "token": {"id": token}}}
    if project is not None:
        auth["scope"] = {"project": project}
    return {"auth": auth}


def post(body, **headers):
    return Client().post("/identity/v3/auth/tokens", body, content_type="application/json", headers=headers)


def login(persona="operator", **kwargs):
    user = make_user(persona)
    r = post(password_auth(user.username, **kwargs))
    assert r.status_code == 201, r.content
    return user, r["X-Subject-Token"], r.json()["token"]


def test_it_answers_version_discovery_at_the_root_with_300_and_at_v3_with_200():
    r = Client().get("/identity")
    assert r.status_code == 300
    [version] = r.json()["versions"]["values"]
    assert version["id"].startswith("v3.") and version["status"] == "stable"
    assert version["links"] == [{"rel": "self", "href": "http://testserver/identity/v3/"}]
    r = Client().get("/identity/v3/")
    assert r.status_code == 200
    assert r.json()["version"] == version


@pytest.mark.parametrize("persona, role", [("operator", "operator"), ("reader", "reader"), ("service", "service"),
                                           ("superuser", "admin")])
def test_it_issues_a_scoped_token_with_roles_expiry_and_the_dcmanager_catalog(persona, role, settings):
    settings.PUBLIC_URL = "https://dc.example:8119"
    settings.REGION_NAME = "RegionX"
    before = timezone.now()
    user, plain, token = login(persona)
    assert plain.startswith("dck_")
    assert token["methods"] == ["password"]
    assert token["user"]["id"] == str(user.pk) and token["user"]["name"] == user.username
    assert token["project"] == {"id": stable_id("project", "admin"), "name": "admin",
                                "domain": {"id": "default", "name": "Default"}}
    assert [r["name"] for r in token["roles"]] == [role]
    expires = timezone.datetime.fromisoformat(token["expires_at"])
    assert timedelta(seconds=3590) < expires - before < timedelta(seconds=3610)
    [dcmanager] = [s for s in token["catalog"] if s["type"] == "dcmanager"]
    assert sorted((e["interface"], e["url"], e["region"]) for e in dcmanager["endpoints"]) == [
        (i, "https://dc.example:8119/v1.0", "RegionX") for i in ("admin", "internal", "public")]
    row = IdentityToken.objects.get()
    assert row.user == user and row.project == "admin"
    assert plain not in row.key_hash


@pytest.mark.parametrize("project", [{"name": "services", "domain": {"id": "default"}},
                                     {"id": stable_id("project", "services")}])
def test_it_scopes_to_a_configured_project_by_name_or_id(project):
    _, _, token = login("service", project=project)
    assert token["project"]["name"] == "services"


@pytest.mark.parametrize("case", ["wrong-password", "unknown-user", "other-domain", "unknown-project",
                                  "project-in-other-domain", "inactive-user", "no-role", "user-id-not-ascii-digits"])
def test_it_refuses_bad_credentials_and_scopes_with_keystones_401(case):
    user = make_user("outsider" if case == "no-role" else "operator")
    kwargs = {
        "wrong-password": {"password": "nope-nope"},
        "other-domain": {"user_domain": {"name": "Other"}},
        "unknown-project": {"project": {"name": "nope", "domain": {"name": "Default"}}},
        "project-in-other-domain": {"project": {"name": "admin", "domain": {"id": "other"}}},
    }.get(case, {})
    if case == "inactive-user":
        user.is_active = False
        user.save()
    body = password_auth("ghost" if case == "unknown-user" else user.username, **kwargs)
    if case == "user-id-not-ascii-digits":  # "³" is a digit to str.isdigit, not to int()
        body["auth"]["identity"]["password"]["user"] = {"id": "³", "password": PASSWORD}
    r = post(body)
    assert r.status_code == 401
    assert r.json() == UNAUTHORIZED
    assert "X-Subject-Token" not in r
    assert not IdentityToken.objects.exists()


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"auth": {"identity": {"methods": ["password"]}}}'])
def test_it_answers_400_to_a_malformed_request(body):
    r = Client().post("/identity/v3/auth/tokens", body, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["error"]["title"] == "Bad Request"
    assert not IdentityToken.objects.exists()


def test_it_lets_the_rest_api_accept_its_tokens_in_x_auth_token_and_oidc_token(subcloud_factory):
    subcloud_factory("sc1")
    _, plain, _ = login("reader")
    for header in ("X-Auth-Token", "OIDC-Token"):
        r = Client().get("/v1.0/subclouds", headers={header: plain})
        assert r.status_code == 200, (header, r.content)
        assert [s["name"] for s in r.json()["subclouds"]] == ["sc1"]


def test_it_accepts_an_api_token_in_the_oidc_token_header():
    _, token = ApiToken.objects.issue(make_user("reader"))
    assert Client().get("/v1.0/subclouds", headers={"OIDC-Token": token}).status_code == 200
    assert Client().get("/v1.0/subclouds", headers={"OIDC-Token": "dcp_forged"}).status_code == 401


def test_it_gives_an_unscoped_token_no_catalog_and_no_api_access_but_rescopes_it_with_the_token_method():
    user = make_user("operator")
    r = post(password_auth(user.username, project=None))
    assert r.status_code == 201
    unscoped = r["X-Subject-Token"]
    assert "catalog" not in r.json()["token"] and "project" not in r.json()["token"]
    assert Client().get("/v1.0/subclouds", headers={"X-Auth-Token": unscoped}).status_code == 401
    r = post(token_auth(unscoped, {"name": "admin", "domain": {"name": "Default"}}), **{"X-Auth-Token": unscoped})
    assert r.status_code == 201
    assert r.json()["token"]["methods"] == ["token"]
    assert Client().get("/v1.0/subclouds", headers={"X-Auth-Token": r["X-Subject-Token"]}).status_code == 200


def test_it_never_lets_the_token_method_outlive_the_original_token():
    _, plain, _ = login()
    soon = timezone.now() + timedelta(seconds=90)
    IdentityToken.objects.update(expires_at=soon)
    r = post(token_auth(plain, {"name": "admin", "domain": {"name": "Default"}}))
    assert r.status_code == 201
    assert timezone.datetime.fromisoformat(r.json()["token"]["expires_at"]) == soon


def test_it_turns_an_api_token_into_a_keystone_token_with_the_token_method():
    user = make_user("operator")
    _, api_token = ApiToken.objects.issue(user)
    r = post(token_auth(api_token, {"name": "admin", "domain": {"name": "Default"}}))
    assert r.status_code == 201
    assert r.json()["token"]["user"]["id"] == str(user.pk)
    assert post(token_auth("dck_forged", {"name": "admin", "domain": {"name": "Default"}})).json() == UNAUTHORIZED


def test_it_refuses_an_expired_token_everywhere(subcloud_factory):
    _, plain, _ = login()
    IdentityToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get("/v1.0/subclouds", headers={"X-Auth-Token": plain}).status_code == 401
    _, admin, _ = login("superuser")
    assert Client().get("/identity/v3/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": plain}).status_code == 404
    r = post(token_auth(plain, {"name": "admin", "domain": {"name": "Default"}}))
    assert r.status_code == 401


def test_it_validates_a_token_for_its_owner_a_service_and_an_admin_and_nobody_else():
    _, plain, token = login("operator")
    for persona, expected in (("self", 200), ("service", 200), ("superuser", 200), ("reader", 403)):
        caller = plain if persona == "self" else login(persona)[1]
        r = Client().get("/identity/v3/auth/tokens", headers={"X-Auth-Token": caller, "X-Subject-Token": plain})
        assert r.status_code == expected, persona
        if expected == 200:
            assert r["X-Subject-Token"] == plain
            assert r.json()["token"]["expires_at"] == token["expires_at"]
    r = Client().head("/identity/v3/auth/tokens", headers={"X-Auth-Token": plain, "X-Subject-Token": plain})
    assert r.status_code == 200 and r.content == b""
    r = Client().get("/identity/v3/auth/tokens", headers={"X-Subject-Token": plain})
    assert r.json() == UNAUTHORIZED


def test_it_revokes_a_token_so_that_validation_answers_404_and_the_api_401():
    _, plain, _ = login("operator")
    _, admin, _ = login("superuser")
    r = Client().delete("/identity/v3/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": plain})
    assert r.status_code == 204
    assert IdentityToken.objects.count() == 1  # the admin's
    r = Client().get("/identity/v3/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": plain})
    assert r.status_code == 404
    assert r.json()["error"]["title"] == "Not Found"
    assert Client().get("/v1.0/subclouds", headers={"X-Auth-Token": plain}).status_code == 401
    r = Client().delete("/identity/v3/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": plain})
    assert r.status_code == 404


def test_it_prunes_expired_tokens_when_issuing():
    login()
    IdentityToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    login()
    assert IdentityToken.objects.count() == 1
