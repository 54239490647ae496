"""Who may do what (api.md "Authentication and roles"): every persona on every endpoint.

401 without or with invalid credentials, 403 for a wrong role, both JSON with error_message.
"""

import io
import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, hash_token
from accounts.roles import role_of
from state.models import StateUpdate
from subclouds.models import EndpointStatus, Subcloud, SubcloudGroup
from tests.conftest import ROOT, make_user

pytestmark = pytest.mark.django_db

ANONYMOUS = ("no-credentials", "invalid-token", "invalid-authorization-token", "other-scheme")
PERSONAS = ("reader", "operator", "service", "superuser", "outsider")
READERS = {"reader", "operator", "service", "superuser"}
OPERATORS = {"operator", "superuser"}
SERVICES = {"service", "superuser"}


@pytest.fixture
def world(subcloud_factory, drain):
    """One subcloud (sc1) and one group (grp) every request can refer to."""
    group = SubcloudGroup.objects.create(name="grp")
    sc = subcloud_factory("sc1", group_id=group)
    return sc, group


def client_for(who, client_as):
    if who == "no-credentials":
        return APIClient()
    if who == "invalid-token":
        return APIClient(HTTP_X_AUTH_TOKEN="dcp_not-a-real-token")
    if who == "invalid-authorization-token":
        return APIClient(HTTP_AUTHORIZATION="Token dcp_not-a-real-token")
    if who == "other-scheme":
        return APIClient(HTTP_AUTHORIZATION="Bearer something")
    return client_as(who)


# (method, path, body, who may, check of the effect for an allowed persona)
def _created_subcloud():
    return Subcloud.objects.filter(name="new-sc").exists()


ENDPOINTS = [
    ("get", "/v1.0/subclouds", None, READERS, None),
    ("get", "/v1.0/subclouds/sc1/", None, READERS, None),
    ("get", "/v1.0/subclouds/sc1/detail", None, READERS, None),
    ("get", "/v1.0/subcloud-groups/", None, READERS, None),
    ("get", "/v1.0/subcloud-groups/grp", None, READERS, None),
    ("get", "/v1.0/subcloud-groups/grp/subclouds/", None, READERS, None),
    ("get", "/v1.0/alarms/", None, READERS, None),
    ("get", "/v1.0/faults", None, READERS, None),
    ("post", "/v1.0/subclouds/", {"name": "new-sc"}, OPERATORS, _created_subcloud),
    ("patch", "/v1.0/subclouds/sc1", {"description": "changed"}, OPERATORS,
     lambda: Subcloud.objects.get(name="sc1").description == "changed"),
    ("delete", "/v1.0/subclouds/sc1/", None, OPERATORS, lambda: not Subcloud.objects.filter(name="sc1").exists()),
    ("post", "/v1.0/subcloud-groups", {"name": "new-grp"}, OPERATORS,
     lambda: SubcloudGroup.objects.filter(name="new-grp").exists()),
    ("patch", "/v1.0/subcloud-groups/grp/", {"description": "changed"}, OPERATORS,
     lambda: SubcloudGroup.objects.get(name="grp").description == "changed"),
    ("delete", "/v1.0/subcloud-groups/grp", None, OPERATORS, lambda: not SubcloudGroup.objects.filter(name="grp").exists()),
    ("patch", "/v1.0/subclouds/sc1/update_status", {"endpoint": "dc-cert", "status": "in-sync"}, SERVICES,
     lambda: StateUpdate.objects.count() == 1),
    ("post", "/v1.0/state/endpoint-status", {"subcloud": "sc1", "endpoint_type": "dc-cert"}, SERVICES,
     lambda: StateUpdate.objects.count() == 1),
    ("post", "/v1.0/state/availability/", {"subcloud": "sc1", "availability_status": "online"}, SERVICES,
     lambda: StateUpdate.objects.count() == 1),
    ("post", "/v1.0/state/bulk", {"subcloud": "sc1", "endpoints": {"dc-cert": "in-sync"}}, SERVICES,
     lambda: StateUpdate.objects.count() == 1),
    ("get", "/v1.0/state/stats", None, READERS, None),
    ("get", "/metrics", None, READERS, None),
]
# Accepted for the state workers rather than done: 202.
ACCEPTED = {"/v1.0/state/endpoint-status", "/v1.0/state/availability/", "/v1.0/state/bulk"}


def _state():
    return (
        list(Subcloud.objects.order_by("id").values()),
        list(SubcloudGroup.objects.order_by("id").values()),
        list(EndpointStatus.objects.order_by("id").values()),
        list(StateUpdate.objects.order_by("id").values()),
    )


@pytest.mark.parametrize("who", PERSONAS + ANONYMOUS)
@pytest.mark.parametrize("method, path, body, allowed, effect", ENDPOINTS, ids=[f"{e[0]} {e[1]}" for e in ENDPOINTS])
def test_it_guards_every_endpoint_by_role(client_as, world, who, method, path, body, allowed, effect):
    client = client_for(who, client_as)
    before = _state()
    r = getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)
    if who in allowed:
        assert r.status_code == (202 if path in ACCEPTED else 200), (who, r.content)
        if effect is not None:
            assert effect()
        return
    expected = 401 if who in ANONYMOUS else 403
    assert r.status_code == expected, (who, r.status_code, r.content)
    assert r["Content-Type"] == "application/json"
    body = r.json()
    assert set(body) == {"error_message", "field", "errors"}
    assert body["error_message"]
    if expected == 401:
        assert r["WWW-Authenticate"] == "Token"
    assert _state() == before


@pytest.mark.parametrize("path", ["/", "/healthz", "/v1.0/schema/", "/v1.0/docs/"])
@pytest.mark.parametrize("who", PERSONAS + ANONYMOUS)
def test_it_leaves_versions_health_and_docs_open(client_as, path, who):
    assert client_for(who, client_as).get(path).status_code == 200


@pytest.mark.parametrize("persona", ["reader", "operator", "service", "superuser"])
def test_it_accepts_the_authorization_token_header(client_as, world, persona):
    client = client_as(persona, header="Authorization")
    assert client.get("/v1.0/subclouds/").status_code == 200
    r = client.post("/v1.0/subcloud-groups/", {"name": f"by-{persona}"}, format="json")
    assert r.status_code == (200 if persona in OPERATORS else 403)


def test_it_refuses_the_token_of_an_inactive_user(client_as):
    client = client_as("operator")
    get_user_model().objects.filter(api_tokens__key_hash__isnull=False).update(is_active=False)
    r = client.get("/v1.0/subclouds")
    assert r.status_code == 401
    assert r.json()["error_message"]


def test_it_stores_only_a_hash_of_each_token(client_as):
    client = client_as("reader")
    row = ApiToken.objects.get()
    assert client.token not in (row.key_hash, row.prefix)
    assert client.token.startswith(row.prefix)


# -- browser sessions ------------------------------------------------------------------------


def test_it_accepts_a_session_for_reads(world):
    user = make_user("reader")
    client = APIClient()
    client.force_login(user)
    assert client.get("/v1.0/subclouds").status_code == 200
    assert client.post("/v1.0/subcloud-groups/", {"name": "x"}, format="json").status_code == 403
    client.logout()
    assert client.get("/v1.0/subclouds").status_code == 401


def test_it_requires_csrf_for_unsafe_session_requests(world):
    user = make_user("operator")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    r = client.patch("/v1.0/subclouds/sc1", {"description": "no csrf"}, format="json")
    assert r.status_code == 403
    assert "CSRF" in r.json()["error_message"]
    assert Subcloud.objects.get(name="sc1").description is None
    csrf = "a" * 32
    client.cookies["csrftoken"] = csrf
    r = client.patch("/v1.0/subclouds/sc1", {"description": "with csrf"}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert r.status_code == 200, r.content
    assert Subcloud.objects.get(name="sc1").description == "with csrf"


def test_it_needs_no_csrf_with_a_token(client_as, world):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_X_AUTH_TOKEN=client_as("operator").token)
    r = client.patch("/v1.0/subclouds/sc1", {"description": "token"}, format="multipart")
    assert r.status_code == 200, r.content


def test_it_refuses_a_session_without_a_role(world):
    user = make_user("outsider")
    client = APIClient()
    client.force_login(user)
    r = client.get("/v1.0/subclouds")
    assert r.status_code == 403
    assert r.json()["error_message"]


# -- issue_token -------------------------------------------------------------------------------


def test_it_issues_a_token_creating_the_user_with_the_role(client_as):
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_token", "--user", "dcorch", "--role", "operator", stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert out.getvalue() == token + "\n"
    user = get_user_model().objects.get(username="dcorch")
    assert role_of(user) == "operator"
    client = APIClient(HTTP_X_AUTH_TOKEN=token)
    assert client.post("/v1.0/subcloud-groups/", {"name": "by-token"}, format="json").status_code == 200
    # Again for the same user: the role is replaced, and a second token is issued.
    out2 = io.StringIO()
    call_command("issue_token", "--user", "dcorch", "--role", "reader", stdout=out2)
    second = out2.getvalue().strip()
    assert second != token
    assert get_user_model().objects.filter(username="dcorch").count() == 1
    user = get_user_model().objects.get(username="dcorch")
    assert role_of(user) == "reader"
    assert APIClient(HTTP_X_AUTH_TOKEN=second).get("/v1.0/subclouds").status_code == 200
    assert APIClient(HTTP_X_AUTH_TOKEN=second).post("/v1.0/subcloud-groups/", {"name": "n"}, format="json").status_code == 403


def test_it_refuses_an_unknown_role():
    with pytest.raises(CommandError):
        call_command("issue_token", "--user", "x", "--role", "admin", stdout=io.StringIO(), stderr=io.StringIO())
    assert not get_user_model().objects.filter(username="x").exists()


@pytest.mark.django_db(transaction=True)
def test_it_prints_only_the_token_from_the_real_command():
    env = dict(os.environ, DCPORTAL_DATABASE_NAME=connection.settings_dict["NAME"])
    proc = subprocess.run(
        [sys.executable, "manage.py", "issue_token", "--user", "audit", "--role", "service"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    token = lines[0]
    assert role_of(get_user_model().objects.get(username="audit")) == "service"
    r = APIClient(HTTP_X_AUTH_TOKEN=token).get("/v1.0/subclouds")
    assert r.status_code == 200


def test_it_refuses_a_superuser_token_unless_asked_plainly():
    admin = make_user("superuser")
    with pytest.raises(CommandError) as caught:
        call_command("issue_token", "--user", admin.username, "--role", "reader", stdout=io.StringIO(), stderr=io.StringIO())
    assert "superuser rights" in str(caught.value) and "--superuser-ok" in str(caught.value)
    assert not ApiToken.objects.exists()
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_token", "--user", admin.username, "--role", "reader", "--superuser-ok", stdout=out, stderr=err)
    assert "superuser rights" in err.getvalue()
    token = out.getvalue().strip()
    # It is what the message said: superuser rights, not the reader role.
    r = APIClient(HTTP_X_AUTH_TOKEN=token).post("/v1.0/subcloud-groups/", {"name": "by-admin"}, format="json")
    assert r.status_code == 200


# -- token expiry ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [("90d", 90 * 86400), ("12h", 12 * 3600), ("30m", 1800), ("2w", 14 * 86400),
                                           ("3600", 3600), ("45s", 45)])
def test_it_issues_a_token_with_an_expiry(text, seconds):
    out = io.StringIO()
    before = timezone.now()
    call_command("issue_token", "--user", "bot", "--role", "reader", "--expires-in", text, stdout=out)
    row = ApiToken.objects.get()
    assert before + timedelta(seconds=seconds) <= row.expires_at <= timezone.now() + timedelta(seconds=seconds)
    assert APIClient(HTTP_X_AUTH_TOKEN=out.getvalue().strip()).get("/v1.0/subclouds").status_code == 200


@pytest.mark.parametrize("text", ["0", "0d", "-5h", "12x", "1.5d", "", "d"])
def test_it_refuses_a_bad_expiry_and_issues_nothing(text):
    with pytest.raises(CommandError) as caught:
        call_command("issue_token", "--user", "bot", "--role", "reader", "--expires-in", text, stdout=io.StringIO())
    assert "--expires-in" in str(caught.value)
    assert not ApiToken.objects.exists()
    assert not get_user_model().objects.filter(username="bot").exists()


@pytest.mark.parametrize("header", ["X-Auth-Token", "Authorization"])
def test_it_refuses_an_expired_token(client_as, header):
    client = client_as("reader", header=header)
    ApiToken.objects.update(expires_at=timezone.now() + timedelta(minutes=5))
    assert client.get("/v1.0/subclouds").status_code == 200
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    r = client.get("/v1.0/subclouds")
    assert r.status_code == 401
    assert set(r.json()) == {"error_message", "field", "errors"}


# -- manage.py token list / revoke ---------------------------------------------------------------


def run_token(*args):
    out = io.StringIO()
    call_command("token", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_it_lists_tokens_without_their_secrets(client_as):
    reader, operator = client_as("reader"), client_as("operator")
    ApiToken.objects.filter(user__username__startswith="operator").update(expires_at=timezone.now() - timedelta(days=1))
    text = run_token("list")
    lines = text.splitlines()
    assert lines[0].split() == ["ID", "PREFIX", "USER", "ROLE", "CREATED", "EXPIRES", "DESCRIPTION"]
    assert len(lines) == 3
    for client, role in ((reader, "reader"), (operator, "operator")):
        row = ApiToken.objects.get(key_hash=hash_token(client.token))
        line = next(line for line in lines if line.startswith(f"{row.pk} "))
        assert row.prefix in line and row.user.username in line and role in line
        assert client.token not in text and row.key_hash not in text
    assert "(expired)" in next(line for line in lines if "operator" in line)
    assert "never" in next(line for line in lines if " reader " in line)
    only = run_token("list", "--user", ApiToken.objects.get(key_hash=hash_token(reader.token)).user.username)
    assert len(only.splitlines()) == 2


@pytest.mark.parametrize("by", ["id", "prefix"])
def test_it_revokes_one_token(client_as, by):
    victim, bystander = client_as("reader"), client_as("reader")
    row = ApiToken.objects.get(key_hash=hash_token(victim.token))
    out = run_token("revoke", str(row.pk) if by == "id" else row.prefix)
    assert f"revoked 1 token (id {row.pk})" in out
    assert not ApiToken.objects.filter(pk=row.pk).exists()
    assert victim.get("/v1.0/subclouds").status_code == 401
    assert bystander.get("/v1.0/subclouds").status_code == 200


def test_it_revokes_every_token_of_a_user(client_as):
    user = make_user("operator")
    first, second = ApiToken.objects.issue(user)[1], ApiToken.objects.issue(user)[1]
    other = client_as("operator")
    out = run_token("revoke", "--user", user.username)
    assert "revoked 2 tokens" in out
    for token in (first, second):
        assert APIClient(HTTP_X_AUTH_TOKEN=token).get("/v1.0/subclouds").status_code == 401
    assert other.get("/v1.0/subclouds").status_code == 200
    assert get_user_model().objects.filter(pk=user.pk).exists()  # the user stays; only its tokens go


@pytest.mark.parametrize("args, message", [
    (("revoke", "999999"), "no token"),
    (("revoke", "dcp_nothere"), "no token"),
    (("revoke", "hello"), "neither a token id nor a token prefix"),
    (("revoke",), "either"),
    (("revoke", "1", "--user", "x"), "either"),
    (("revoke", "--user", "nobody"), "has no tokens"),
])
def test_it_refuses_a_revoke_it_cannot_do_and_revokes_nothing(client_as, args, message):
    client_as("reader")
    with pytest.raises(CommandError) as caught:
        run_token(*args)
    assert message in str(caught.value)
    assert ApiToken.objects.count() == 1


def test_it_refuses_an_ambiguous_prefix(client_as):
    client_as("reader"), client_as("reader")
    ApiToken.objects.update(prefix="dcp_same12")
    with pytest.raises(CommandError) as caught:
        run_token("revoke", "dcp_same12")
    assert "matches 2 tokens" in str(caught.value)
    assert ApiToken.objects.count() == 2


# -- the admin's "add API token" -----------------------------------------------------------------


def test_it_generates_the_token_in_the_admin_and_shows_it_once():
    admin = make_user("superuser")
    admin.is_staff = True
    admin.save()
    owner = make_user("service")
    client = Client()
    client.force_login(admin)
    shown = []
    for n in range(2):  # a second add used to be a 500 (two empty key_hash rows)
        r = client.post("/admin/accounts/apitoken/add/", {"user": owner.pk, "description": f"t{n}", "expires_at_0": "",
                                                          "expires_at_1": ""}, follow=True)
        assert r.status_code == 200, r.content[:500]
        texts = [str(m) for m in r.context["messages"]]
        tokens = re.findall(r"dcp_[\w-]{40,}", " ".join(texts))
        assert len(tokens) == 1, texts
        shown.append(tokens[0])
    rows = ApiToken.objects.order_by("id")
    assert [row.key_hash for row in rows] == [hash_token(t) for t in shown]
    assert all(APIClient(HTTP_X_AUTH_TOKEN=t).get("/v1.0/subclouds").status_code == 200 for t in shown)
    # Shown once: the row's own page never carries the secret.
    page = client.get(f"/admin/accounts/apitoken/{rows[0].pk}/change/").content.decode()
    assert shown[0] not in page and rows[0].key_hash not in page
