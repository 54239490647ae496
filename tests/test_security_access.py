"""Who may open what outside the REST API: the pages, the admin, and the websocket.

The REST endpoints (every route of api/urls.py, /metrics, /healthz, /) have
their matrix in test_api_auth.py; this is the same table for the rest: every persona,
with the credentials each kind of client uses, on every page and on /ws/status/.
"""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.models import ApiToken
from dcportal.asgi import application
from tests.conftest import make_user

ROLES = ("reader", "operator", "service", "superuser")
PERSONAS = (*ROLES, "outsider")
PAGES = ["/portal/", "/portal/subclouds/", "/portal/subclouds/sc1/", "/portal/subclouds/sc1/history/", "/portal/alarms/"]
ADMIN = ["/admin/", "/admin/accounts/apitoken/", "/admin/auth/user/"]
ALLOWED_ORIGIN = b"http://127.0.0.1:8119"
FOREIGN_ORIGIN = b"https://evil.example"


def browser(persona):
    """A Django client logged in as a new user of that persona (session cookie), or anonymous."""
    client = Client()
    if persona is not None:
        client.force_login(make_user(persona))
    return client


def token_client(persona):
    """A client sending a valid token of that persona and no session: what scripts use."""
    return Client(HTTP_X_AUTH_TOKEN=ApiToken.objects.issue(make_user(persona))[1])


# -- pages ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_it_shows_the_pages_to_every_role_and_a_403_page_to_an_account_without_one(subcloud_factory, path, persona):
    subcloud_factory("sc1")
    r = browser(persona).get(path)
    if persona in ROLES:
        assert r.status_code == 200
        assert r["Content-Type"].startswith("text/html")
    else:
        assert r.status_code == 403
        assert b"sc1" not in r.content


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("who", ["no-credentials", "reader-token", "invalid-token"])
def test_it_sends_everyone_without_a_session_to_the_login_page(subcloud_factory, path, who):
    """Pages are for browsers: a token opens the API, not the pages (no CSRF-free session through a header)."""
    subcloud_factory("sc1")
    if who == "reader-token":
        client = token_client("reader")
    else:
        client = Client(**({"HTTP_X_AUTH_TOKEN": "dcp_not-a-real-token"} if who == "invalid-token" else {}))
    r = client.get(path)
    assert r.status_code == 302
    assert r["Location"] == f"/login/?next={path}"


@pytest.mark.django_db
@pytest.mark.parametrize("persona", [None, *PERSONAS])
def test_it_shows_the_login_page_to_anyone(persona):
    r = browser(persona).get("/login/")
    assert r.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("path", ADMIN)
@pytest.mark.parametrize("persona", [None, *PERSONAS])
def test_it_opens_the_admin_to_superusers_only(path, persona):
    r = browser(persona).get(path)
    if persona == "superuser":
        assert r.status_code == 200
    else:
        assert r.status_code == 302
        assert r["Location"].startswith("/admin/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ROLES)
def test_it_does_not_let_a_token_into_the_admin(persona):
    r = token_client(persona).get("/admin/")
    assert r.status_code == 302
    assert r["Location"].startswith("/admin/login/")


# -- the websocket -----------------------------------------------------------------------------


@database_sync_to_async
def handshake_headers(persona, how):
    """The handshake headers of a client of `persona` (None: anonymous) authenticating `how`."""
    user = make_user(persona) if persona else None
    if how == "token":
        return [(b"x-auth-token", ApiToken.objects.issue(user)[1].encode())]
    if how == "authorization-token":
        return [(b"authorization", f"Token {ApiToken.objects.issue(user)[1]}".encode())]
    if how == "invalid-token":
        return [(b"x-auth-token", b"dcp_not-a-real-token")]
    if how == "none":
        return [(b"origin", ALLOWED_ORIGIN)]
    client = Client()
    client.force_login(user)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    if how == "session":
        return [(b"origin", ALLOWED_ORIGIN), cookie]
    if how == "session-foreign-origin":
        return [(b"origin", FOREIGN_ORIGIN), cookie]
    if how == "session-and-invalid-token":
        return [(b"origin", ALLOWED_ORIGIN), cookie, (b"x-auth-token", b"dcp_not-a-real-token")]
    raise ValueError(how)


def ws_cases():
    """(persona, how, accepted): every persona with every way in, and the anonymous ones."""
    for persona in PERSONAS:
        for how in ("token", "authorization-token", "session"):
            yield persona, how, persona in ROLES
        yield persona, "session-foreign-origin", False
    # The strongest session cannot carry a bad token in. One row only: under WebsocketCommunicator this
    # refusal leaves a pooled connection checked out until the test database's teardown (5 s each); a real
    # daphne answers the API at once after many such refusals (the pool is not leaking there).
    yield "superuser", "session-and-invalid-token", False
    yield None, "none", False
    yield None, "invalid-token", False


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("persona, how, accepted", list(ws_cases()), ids=[f"{p}-{h}" for p, h, _ in ws_cases()])
async def test_it_lets_every_role_and_nobody_else_open_the_live_status_socket(persona, how, accepted):
    comm = WebsocketCommunicator(application, "/ws/status/", headers=await handshake_headers(persona, how))
    connected, _ = await comm.connect(timeout=10)
    assert connected is accepted
    if accepted:
        assert (await comm.receive_json_from(timeout=10))["type"] == "snapshot"
        await comm.disconnect()
