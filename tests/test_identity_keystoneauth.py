"""keystoneauth1, the library the dcmanager shell authenticates with, against /identity/v3 on a real daphne.

It discovers the version, logs in with a password or a token, finds the dcmanager endpoint in
the catalog on every interface, and drives /v1.0 through it; revoked and expired tokens stop working.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import generic

from dcportal.processes import free_port
from identity.models import IdentityToken
from tests.conftest import daphne_on_test_db, make_user
from tests.test_pages_browser import QuickPBKDF2

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-12345678"


@pytest.fixture
def start_server(transactional_db, tmp_path):
    """start_server(**settings): daphne whose catalog names itself (DCPORTAL_PUBLIC_URL = its own URL)."""
    started = []

    def start(**settings):
        port = free_port()
        daphne = daphne_on_test_db(tmp_path, port=port, public_url=f"http://127.0.0.1:{port}", **settings)
        started.append(daphne.start())
        return daphne

    yield start
    for daphne in started:
        daphne.stop()


@pytest.fixture
def server(start_server):
    return start_server()


def user(persona):
    """A user daphne's own password hashers can check (the tests' in-process MD5 is not among them)."""
    made = make_user(persona)
    made.password = make_password(PASSWORD, hasher=QuickPBKDF2())
    made.save(update_fields=["password"])
    return made


def password_session(server, username, auth_path="/identity/v3", password=PASSWORD, project="admin"):
    """What dcmanagerclient builds from OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME and the domains."""
    auth = generic.Password(auth_url=server.url + auth_path, username=username, password=password, project_name=project,
                            user_domain_name="Default", project_domain_name="Default")
    return ks_session.Session(auth=auth)


@pytest.mark.parametrize("auth_path", ["/identity/v3", "/identity"])
def test_it_lets_a_keystoneauth_session_log_in_and_drive_the_api_through_the_catalog(server, subcloud_factory, auth_path):
    subcloud_factory("sc1")
    operator = user("operator")
    session = password_session(server, operator.username, auth_path)
    token = session.get_token()
    assert token.startswith("dck_")
    assert session.get_user_id() == str(operator.pk)
    assert session.get_project_id()
    for interface in ("public", "internal", "admin"):
        assert session.get_endpoint(service_type="dcmanager", interface=interface) == f"{server.url}/v1.0"
    r = session.get("/subclouds", endpoint_filter={"service_type": "dcmanager", "interface": "internal"})
    assert r.status_code == 200
    assert [s["name"] for s in r.json()["subclouds"]] == ["sc1"]
    r = session.patch("/subclouds/sc1", json={"description": "via keystone"},
                      endpoint_filter={"service_type": "dcmanager", "interface": "internal"})
    assert r.status_code == 200
    assert r.json()["description"] == "via keystone"


def test_it_refuses_a_wrong_password_with_401(server):
    session = password_session(server, user("operator").username, password="wrong-password")
    with pytest.raises(ks_exceptions.Unauthorized) as refused:
        session.get_token()
    assert refused.value.http_status == 401
    assert not IdentityToken.objects.exists()


def test_it_lets_the_token_method_scope_a_new_token(server):
    operator = user("operator")
    first = password_session(server, operator.username).get_token()
    auth = generic.Token(auth_url=server.url + "/identity/v3", token=first, project_name="services",
                         project_domain_name="Default")
    session = ks_session.Session(auth=auth)
    second = session.get_token()
    assert second != first
    assert session.auth.get_access(session).project_name == "services"
    r = session.get("/subclouds", endpoint_filter={"service_type": "dcmanager", "interface": "public"})
    assert r.status_code == 200


def test_it_issues_tokens_for_the_configured_lifetime_which_keystoneauth_renews_and_the_api_then_refuses(start_server):
    server = start_server(identity_token_seconds=100)
    session = password_session(server, user("reader").username)
    first = session.get_token()
    expires = session.auth.get_access(session).expires
    assert timedelta(seconds=90) < expires - timezone.now() <= timedelta(seconds=100)
    # keystoneauth logs in again when less than 120 s remain (as the dcmanager shell relies on).
    second = session.get_token()
    assert second != first
    IdentityToken.objects.exclude(key_hash__in=IdentityToken.objects.order_by("-issued_at").values("key_hash")[:1]).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    r = session.get(f"{server.url}/v1.0/subclouds", authenticated=False, headers={"X-Auth-Token": first}, raise_exc=False)
    assert r.status_code == 401
    r = session.get(f"{server.url}/v1.0/subclouds", authenticated=False, headers={"X-Auth-Token": second})
    assert r.status_code == 200


def test_it_refuses_a_revoked_token(server):
    admin = password_session(server, user("superuser").username)
    victim = password_session(server, user("operator").username)
    token = victim.get_token()
    r = admin.delete(f"{server.url}/identity/v3/auth/tokens", headers={"X-Subject-Token": token})
    assert r.status_code == 204
    r = admin.get(f"{server.url}/identity/v3/auth/tokens", headers={"X-Subject-Token": token}, raise_exc=False)
    assert r.status_code == 404
    r = victim.get(f"{server.url}/v1.0/subclouds", authenticated=False, headers={"X-Auth-Token": token}, raise_exc=False)
    assert r.status_code == 401
