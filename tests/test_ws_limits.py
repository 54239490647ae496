"""/ws/status/ limits (dcportal issue 10, items 5 and 6): revoked credentials end their socket, sockets
have a maximum lifetime, a socket gets at most one snapshot per interval, a user has a socket cap.

Revocations go through a real daphne (sockets of the websockets client, changes from this process);
the rest through the real ASGI router in-process (its feed task runs the same guard).
"""

import asyncio
import contextlib
import json
import math
import time

import pytest
import websockets
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from websockets.sync.client import connect

from accounts.models import ApiToken
from portal import limits
from state import operations
from tests.conftest import daphne_on_test_db, make_user
from tests.test_ws_protocol import open_socket, receive, register, revision

pytestmark = pytest.mark.django_db(transaction=True)

CAP = 3  # the module's daphne: DCPORTAL_WS_MAX_SOCKETS_PER_USER


@pytest.fixture(scope="module")
def daphne(django_db_setup, tmp_path_factory):
    server = daphne_on_test_db(tmp_path_factory.mktemp("daphne"), ws_max_sockets_per_user=CAP).start()
    yield server
    server.stop()


def ws_url(daphne):
    return daphne.url.replace("http://", "ws://") + "/ws/status/"


def token_headers(user):
    return {"X-Auth-Token": ApiToken.objects.issue(user)[1]}


def session_client(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sockets():
    """open(daphne, headers, origin=None) -> a socket past its snapshot; all closed at the end of the test."""
    with contextlib.ExitStack() as stack:
        yield lambda *args, **kwargs: open_live(stack, *args, **kwargs)


def open_live(stack, daphne, headers, origin=None):
    sock = stack.enter_context(connect(ws_url(daphne), additional_headers=headers, origin=origin, open_timeout=15))
    assert json.loads(sock.recv(timeout=15))["type"] == "snapshot"
    return sock


def closed_within(sock, timeout=15):
    """(close code, seconds it took); messages before the close are skipped."""
    started = time.monotonic()
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while time.monotonic() - started < timeout:
            sock.recv(timeout=timeout)
    return closed.value.rcvd.code, time.monotonic() - started


def still_live(sock):
    """The socket still gets changes: a subcloud registered now reaches it."""
    name = f"sc-alive-{time.monotonic_ns()}"
    operations.register_subcloud({"name": name})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        message = json.loads(sock.recv(timeout=15))
        if any(s["name"] == name for s in message.get("subclouds", [])):
            return True
    return False


def assert_revocation_closes_only_the_victim(victim, bystander, revoke):
    revoke()
    code, took = closed_within(victim)
    assert code == limits.REVOKED  # daphne sends the code, not the reason
    # Within a few re-check rounds (2 s each), generous for a busy machine; never would time out at 15 s.
    assert took < 5 * settings.PORTAL_WS_RECHECK_SECONDS, f"closed {took:.1f} s after the revocation"
    time.sleep(2.5)  # a whole re-check round more: the valid credential is not touched
    assert still_live(bystander)
    bystander.close()


@database_sync_to_async
def reader_token(user=None):
    return token_headers(user or make_user("reader"))["X-Auth-Token"]


async def in_process_socket(token):
    comm, connected, _ = await open_socket([(b"x-auth-token", token.encode())])
    assert connected
    return comm


# -- item 5: a revoked credential ends its websocket ---------------------------------------------


def test_it_closes_a_socket_whose_token_is_deleted(daphne, sockets):
    user = make_user("reader")
    victim_headers, bystander_headers = token_headers(user), token_headers(user)
    victim, bystander = sockets(daphne, victim_headers), sockets(daphne, bystander_headers)
    assert_revocation_closes_only_the_victim(
        victim, bystander, lambda: ApiToken.objects.filter(user=user).order_by("id").first().delete()
    )


def test_it_keeps_an_identity_token_socket_until_that_token_is_revoked(daphne, sockets):
    """Tokens of /identity/v3 (what the dcmanager shell holds) pass the re-check like API tokens."""
    from identity.tokens import issue, revoke

    user = make_user("reader")
    victim_token, bystander_token = (issue(user, "admin", ["password"])[1] for _ in range(2))
    victim = sockets(daphne, {"X-Auth-Token": victim_token})
    bystander = sockets(daphne, {"X-Auth-Token": bystander_token})
    assert_revocation_closes_only_the_victim(victim, bystander, lambda: revoke(victim_token))


def test_it_closes_a_socket_whose_user_is_deactivated(daphne, sockets):
    user = make_user("operator")
    victim, bystander = sockets(daphne, token_headers(user)), sockets(daphne, token_headers(make_user("operator")))
    assert_revocation_closes_only_the_victim(
        victim, bystander, lambda: get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    )


def test_it_closes_a_socket_whose_role_is_removed(daphne, sockets):
    user = make_user("service")
    victim, bystander = sockets(daphne, token_headers(user)), sockets(daphne, token_headers(make_user("service")))
    assert_revocation_closes_only_the_victim(victim, bystander, lambda: user.groups.clear())


def test_it_closes_a_socket_whose_session_logged_out(daphne, sockets):
    user = make_user("reader")
    leaving, staying = session_client(user), session_client(user)  # two browsers of one user

    def browser_socket(client):
        return sockets(daphne, {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}, origin=daphne.url)

    victim, bystander = browser_socket(leaving), browser_socket(staying)

    def log_out():
        assert leaving.post("/logout/").status_code == 302

    assert_revocation_closes_only_the_victim(victim, bystander, log_out)


async def test_it_closes_a_socket_at_its_maximum_lifetime(settings):
    settings.PORTAL_WS_MAX_LIFETIME_SECONDS = 1.5
    settings.PORTAL_WS_RECHECK_SECONDS = 0.3
    comm = await in_process_socket(await reader_token())
    opened = time.monotonic()
    assert (await receive(comm))["type"] == "snapshot"
    closing = await comm.receive_output(timeout=10)
    assert closing == {"type": "websocket.close", "code": limits.LIFETIME, "reason": limits.REASONS[limits.LIFETIME]}
    assert time.monotonic() - opened >= 1.5
    await comm.disconnect()


# -- item 6: a client's cost is bounded ---------------------------------------------------------


async def test_it_sends_at_most_one_snapshot_per_interval_to_a_resync_flood(settings):
    settings.PORTAL_WS_SNAPSHOT_INTERVAL = interval = 1.0
    await register(*(f"sc-flood{i}" for i in range(20)))
    comm = await in_process_socket(await reader_token())
    snapshots = [await receive(comm)]
    assert snapshots[0]["type"] == "snapshot"
    beyond = await revision() + 1000  # newer than the log's end: only a snapshot can answer it
    duration = 3.0
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < duration:
        await comm.send_to(text_data=json.dumps({"type": "resync", "since": beyond}))
        sent += 1
        # (receive_nothing, not a receive with a timeout: that would cancel the application)
        while not await comm.receive_nothing(timeout=0.1):
            snapshots += [m for m in [await receive(comm)] if m["type"] == "snapshot"]
    # The requests still waiting are merged into one last snapshot at most.
    while not await comm.receive_nothing(timeout=interval + 1):
        snapshots += [m for m in [await receive(comm)] if m["type"] == "snapshot"]
    print(f"{sent} resync requests in {duration} s -> {len(snapshots)} snapshots")
    assert sent >= 20
    assert 2 <= len(snapshots) <= math.ceil(duration / interval) + 1
    await comm.disconnect()


async def test_it_caps_a_users_sockets_over_every_process(daphne, settings):
    """CAP sockets of one user, some in daphne and some here: one more is closed with 4429; closing one frees a slot."""
    settings.PORTAL_WS_MAX_SOCKETS_PER_USER = CAP
    user = await database_sync_to_async(make_user)("reader")
    token, other = await reader_token(user), await reader_token()
    remote = await websockets.connect(ws_url(daphne), additional_headers={"X-Auth-Token": token}, open_timeout=15)
    assert json.loads(await asyncio.wait_for(remote.recv(), 15))["type"] == "snapshot"
    here = [await in_process_socket(token) for _ in range(CAP - 1)]
    for comm in here:
        assert (await receive(comm))["type"] == "snapshot"

    refused = await in_process_socket(token)
    assert await refused.receive_output(timeout=10) == {
        "type": "websocket.close", "code": limits.TOO_MANY, "reason": "too many open sockets for this user"}
    await refused.disconnect()
    # Another user is not affected.
    unaffected = await in_process_socket(other)
    assert (await receive(unaffected))["type"] == "snapshot"
    await unaffected.disconnect()

    await remote.close()  # a slot held in daphne frees up once daphne has seen the close
    deadline = time.monotonic() + 15
    while True:
        admitted = await in_process_socket(token)
        first = await admitted.receive_output(timeout=10)
        if first["type"] == "websocket.send":
            break
        assert first["code"] == limits.TOO_MANY and time.monotonic() < deadline, first
        await admitted.disconnect()
        await asyncio.sleep(0.2)
    assert json.loads(first["text"])["type"] == "snapshot"
    for comm in [*here, admitted]:
        await comm.disconnect()


def test_it_rechecks_any_number_of_credentials_in_two_queries():
    """The guard's batch: tokens and sessions of many users, each kind of revocation, two queries in all."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.credentials import credential_for, still_valid
    from accounts.models import hash_token

    users = [make_user("reader") for _ in range(40)]
    tokens = [credential_for(u, token_hash=hash_token(token_headers(u)["X-Auth-Token"])) for u in users[:20]]
    clients = [session_client(u) for u in users[20:]]
    sessions = [credential_for(u, session=SessionStore(c.cookies["sessionid"].value)) for u, c in zip(users[20:], clients)]
    with CaptureQueriesContext(connection) as queries:
        assert still_valid(tokens + sessions) == set(tokens + sessions)
    assert len(queries) == 2

    ApiToken.objects.filter(key_hash=tokens[0].token_hash).delete()
    get_user_model().objects.filter(pk=tokens[1].user_id).update(is_active=False)
    users[2].groups.clear()
    assert clients[0].post("/logout/").status_code == 302
    users[21].set_password("changed-12345678")  # a password change ends the user's sessions
    users[21].save()
    ApiToken.objects.filter(key_hash=tokens[3].token_hash).update(expires_at=timezone.now())  # expired since
    revoked = {tokens[0], tokens[1], tokens[2], tokens[3], sessions[0], sessions[1]}
    assert still_valid(tokens + sessions) == set(tokens + sessions) - revoked
