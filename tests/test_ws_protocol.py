"""/ws/status/ through the real ASGI router (dcportal.asgi), the real Redis channel layer and PostgreSQL.

Changes are made by the same code the API and the workers run (state/operations.py,
subclouds/services.py), each in its own committed transaction, from worker threads.
"""

import asyncio
import itertools
import json
import logging
import threading
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from dcportal.asgi import application
from portal import changes, wire
from state import broadcast, operations
from state.models import StateChange
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8119")


@database_sync_to_async
def token_for(persona):
    return ApiToken.objects.issue(make_user(persona))[1]


@database_sync_to_async
def session_cookie(persona):
    client = Client()
    client.force_login(make_user(persona))
    return client.cookies["sessionid"].value


@database_sync_to_async
def register(*names):
    return [operations.register_subcloud({"name": n}).pk for n in names]


@database_sync_to_async
def describe(subcloud_id, text):
    operations.update_subcloud(subcloud_id, fields={"description": text})


@database_sync_to_async
def rest(path, persona="reader"):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(make_user(persona))
    response = client.get(path)
    assert response.status_code == 200
    return response.json()


@database_sync_to_async
def revision():
    return changes.current_revision()


async def open_socket(headers, path="/ws/status/"):
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await comm.connect(timeout=10)
    return comm, connected, code


async def token_socket(path="/ws/status/"):
    comm, connected, _ = await open_socket([(b"x-auth-token", (await token_for("reader")).encode())], path)
    assert connected
    return comm


async def watched(name):
    """(id of a new subcloud `name`, a token socket past its snapshot)."""
    [sid] = await register(name)
    comm = await token_socket()
    await receive(comm)
    return sid, comm


async def receive(comm, timeout=5):
    return json.loads(await comm.receive_from(timeout=timeout))


async def receive_until(comm, predicate, timeout=10):
    """Messages until predicate(message) holds; returns them all (each checked for increasing revisions)."""
    messages, deadline = [], time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"condition not met; received {messages}"
        message = await receive(comm, timeout=remaining)
        if messages and message["type"] == "changes":
            assert message["revision"] > messages[-1]["revision"]
        messages.append(message)
        if predicate(message):
            return messages


def entry(message, name):
    return next((s for s in message.get("subclouds", []) if s["name"] == name), None)


# -- authentication and origin -------------------------------------------------------------


async def test_it_refuses_a_handshake_without_credentials():
    _, connected, _ = await open_socket([ORIGIN])
    assert not connected


async def test_it_refuses_an_invalid_token_even_with_a_session():
    cookie = await session_cookie("reader")
    _, connected, _ = await open_socket([ORIGIN, (b"cookie", f"sessionid={cookie}".encode()), (b"x-auth-token", b"dcp_nope")])
    assert not connected


async def test_it_refuses_an_account_without_a_role():
    _, connected, _ = await open_socket([(b"x-auth-token", (await token_for("outsider")).encode())])
    assert not connected


async def test_it_refuses_a_foreign_origin_whatever_the_credentials():
    cookie = await session_cookie("operator")
    token = await token_for("operator")
    headers = [(b"origin", b"https://evil.example"), (b"cookie", f"sessionid={cookie}".encode()),
               (b"x-auth-token", token.encode())]
    _, connected, _ = await open_socket(headers)
    assert not connected


async def test_it_accepts_a_browser_session_from_an_allowed_origin():
    cookie = await session_cookie("reader")
    comm, connected, _ = await open_socket([ORIGIN, (b"cookie", f"sessionid={cookie}".encode())])
    assert connected
    assert (await receive(comm))["type"] == "snapshot"
    await comm.disconnect()


async def test_it_refuses_a_session_from_an_origin_on_another_port_or_scheme():
    cookie = await session_cookie("reader")
    for foreign in (b"http://localhost:9999", b"https://127.0.0.1:8119", b"http://127.0.0.1", b"http://evil.example:8119"):
        _, connected, _ = await open_socket([(b"origin", foreign), (b"cookie", f"sessionid={cookie}".encode())])
        assert not connected, foreign
    comm, connected, _ = await open_socket([(b"origin", b"http://localhost:8119"), (b"cookie", f"sessionid={cookie}".encode())])
    assert connected
    await comm.disconnect()


# -- snapshot and changes -------------------------------------------------------------------


async def test_it_sends_a_snapshot_as_the_rest_listing_at_the_current_revision():
    ids = await register("sc-a", "sc-b")
    await database_sync_to_async(operations.update_subcloud)(ids[0], management_state="managed", force=True)
    comm = await token_socket()
    snapshot = await receive(comm)
    assert snapshot["type"] == "snapshot"
    assert snapshot["revision"] == await revision() > 0
    assert snapshot["subclouds"] == (await rest("/v1.0/subclouds"))["subclouds"]
    assert snapshot["faults"] == (await rest("/v1.0/faults"))["faults"]
    assert set(snapshot["last_change"]) == {"sc-a", "sc-b"}
    await comm.disconnect()


async def test_it_sends_a_change_only_after_it_commits():
    sid, comm = await watched("sc-held")
    inside, release = threading.Event(), threading.Event()

    def held_transaction():
        try:
            with transaction.atomic():
                operations.update_subcloud(sid, fields={"description": "held"})
                inside.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=held_transaction)
    thread.start()
    assert await asyncio.get_running_loop().run_in_executor(None, inside.wait, 10)
    # Written (and its doorbell registered) but not committed: nothing may be sent.
    assert await comm.receive_nothing(timeout=1.2)
    release.set()
    await asyncio.get_running_loop().run_in_executor(None, thread.join, 10)
    message = await receive(comm)
    assert message["type"] == "changes"
    assert entry(message, "sc-held")["description"] == "held"
    assert message["revision"] == await revision()
    await comm.disconnect()


async def test_it_coalesces_a_burst_to_the_paced_rate(settings):
    interval = settings.PORTAL_WS_MIN_INTERVAL
    [sid] = await register("sc-burst")
    comm = await token_socket()
    snapshot = await receive(comm)
    started = time.monotonic()
    for i in range(150):  # 150 commits, each ringing the doorbell
        await describe(sid, f"burst {i}")
    messages = await receive_until(comm, lambda m: (entry(m, "sc-burst") or {}).get("description") == "burst 149")
    elapsed = time.monotonic() - started
    arrivals = len(messages)
    assert arrivals <= elapsed / interval + 2, f"{arrivals} messages in {elapsed:.2f}s"
    assert arrivals < 150
    # Every change is accounted for: the revisions cover the whole log, nothing is skipped.
    assert messages[0]["revision"] > snapshot["revision"]
    assert messages[-1]["revision"] == await revision()
    await comm.disconnect()


async def test_it_paces_messages_to_the_minimum_interval(settings):
    settings.PORTAL_WS_MIN_INTERVAL = interval = 0.2
    sid, comm = await watched("sc-spaced")

    async def trickle():
        for i in range(12):
            await describe(sid, f"spaced {i}")
            await asyncio.sleep(0.05)

    writer = asyncio.create_task(trickle())
    arrivals = []
    while True:
        message = await receive(comm)
        arrivals.append(time.monotonic())
        if entry(message, "sc-spaced")["description"] == "spaced 11":
            break
    await writer
    assert len(arrivals) < 12
    # The token bucket's promise: n messages span at least (n - 1 - half a token) intervals.
    for i, j in itertools.combinations(range(len(arrivals)), 2):
        assert arrivals[j] - arrivals[i] >= (j - i - 0.5) * interval * 0.9, (i, j, arrivals)
    await comm.disconnect()


async def test_it_sends_a_steady_stream_at_the_limit_without_waiting(settings):
    """Commits on a fixed schedule of one per interval, a little early or late, go out as they come."""
    settings.PORTAL_WS_MIN_INTERVAL = interval = 0.2
    sid, comm = await watched("sc-steady")
    committed = {}

    async def writer():
        start = time.monotonic() + interval
        for i in range(15):
            await asyncio.sleep(max(0, start + i * interval + (0.03 if i % 2 else -0.03) - time.monotonic()))
            committed[f"steady {i}"] = time.monotonic()
            await describe(sid, f"steady {i}")

    task = asyncio.create_task(writer())
    waits = {}
    while len(waits) < 15:
        message = await receive(comm)
        description = (entry(message, "sc-steady") or {}).get("description")
        if description:
            waits[description] = time.monotonic() - committed[description]
    await task
    # Paced by a plain minimum gap, the early half of the commits (140 ms after the previous message)
    # would each wait ~60 ms more than the others; with the token bucket none waits for pacing.
    # Judged against this run's own fastest delivery (the machine's latency floor), not a wall-clock bound.
    floor = min(waits.values())
    held = [d for d, w in waits.items() if w - floor > interval / 4]
    print(f"steady stream: floor {floor * 1000:.0f} ms, waits {sorted(round(w * 1000) for w in waits.values())} ms")
    assert len(held) <= len(waits) // 4, (held, waits)
    await comm.disconnect()


async def test_a_ten_a_second_stream_after_a_burst_is_not_held_by_the_default_pace():
    """The steady stream of issue 13 (one commit every 100 ms) right after a burst that emptied the bucket.

    With the default pace at that very rate (0.1 s) the bucket never refills: every later change waited the
    same arbitrary offset, set by the burst's phase (the bimodal 14 / 55 / 75 ms of `./dev bench live`).
    The default leaves room above such a stream, so the bucket refills and the stream goes out as it comes.
    """
    sid, comm = await watched("sc-after-burst")
    # The machine's delivery floor in this run: changes after quiet spells, never paced.
    quiet = []
    for i in range(3):
        await asyncio.sleep(0.3)
        at = time.monotonic()
        await describe(sid, f"quiet {i}")
        await receive_until(comm, lambda m, i=i: (entry(m, "sc-after-burst") or {}).get("description") == f"quiet {i}")
        quiet.append(time.monotonic() - at)
    for i in range(30):
        await describe(sid, f"burst {i}")
    await receive_until(comm, lambda m: (entry(m, "sc-after-burst") or {}).get("description") == "burst 29")
    committed, waits = {}, {}

    async def writer():
        start = time.monotonic() + 0.01  # just after the burst's last message: its pacing debt is largest
        for i in range(12):
            await asyncio.sleep(max(0, start + i * 0.1 - time.monotonic()))
            committed[f"steady {i}"] = time.monotonic()
            await describe(sid, f"steady {i}")

    task = asyncio.create_task(writer())
    while "steady 11" not in waits:  # two commits merged into one message: only the later one is timed
        message = await receive(comm)
        description = (entry(message, "sc-after-burst") or {}).get("description")
        if description in committed:
            waits[description] = time.monotonic() - committed[description]
    await task
    # Judged against this run's own unpaced delivery (the machine's latency floor); the first few may pay
    # the burst's debt, the rest must not wait for the pace (0.1 s pacing held each of them ~90 ms here).
    floor = min(quiet)
    later = [waits[f"steady {i}"] - floor for i in range(4, 12) if f"steady {i}" in waits]
    print(f"after a burst: floor {floor * 1000:.0f} ms, extra waits {[round(w * 1000) for w in later]} ms")
    assert sorted(later)[len(later) // 2] < 0.04, later
    await comm.disconnect()


async def test_it_ignores_malformed_frames_of_any_shape_and_keeps_the_socket(caplog):
    sid, comm = await watched("sc-malformed")
    frames = ["[" * 5000 + "]" * 5000, "not json", " ", "null", "[]", "7", '"resync"',
              '{"type": "resync", "since": "' + "9" * 5000 + '"}', '{"type": "resync", "since": "\u00b2"}',
              '{"type": "resync", "since": -1}', '{"type": "resync", "since": 1.5}', '{"type": ["resync"]}',
              '{"type": "resync", "since": {"a": 1}}', "1" * 5000]
    for frame in frames:
        await comm.send_to(text_data=frame)
    await comm.send_to(bytes_data=b"\x00\xff binary")
    await describe(sid, "still here")
    message = (await receive_until(comm, lambda m: entry(m, "sc-malformed")))[-1]
    assert entry(message, "sc-malformed")["description"] == "still here"
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING], caplog.text
    await comm.disconnect()


async def test_it_sends_registrations_whole_and_deletions_by_name():
    comm = await token_socket()
    await receive(comm)
    [sid] = await register("sc-new")
    message = (await receive_until(comm, lambda m: entry(m, "sc-new")))[-1]
    listed = (await rest("/v1.0/subclouds/sc-new"))
    assert entry(message, "sc-new") == {**listed, "registered": True}
    await database_sync_to_async(operations.delete_subcloud)(sid)
    message = (await receive_until(comm, lambda m: (entry(m, "sc-new") or {}).get("deleted")))[-1]
    assert entry(message, "sc-new") == {"name": "sc-new", "deleted": True}
    await comm.disconnect()


async def test_it_sends_raised_and_cleared_faults_with_the_change():
    sid, comm = await watched("sc-faulty")

    def go_online_then_offline():
        from state import intake, rules
        from state.models import UpdateKind
        from state.worker import apply_batch

        for status in ("online", "offline"):
            intake.accept(UpdateKind.AVAILABILITY, [(sid, {"availability_status": status, "update_state_only": False,
                                                           "audit_fail_count": 0})])
            while apply_batch(100, "test").subclouds:
                pass
        return rules.ALARM_OFFLINE

    alarm_id = await database_sync_to_async(go_online_then_offline)()
    messages = await receive_until(comm, lambda m: any(f["alarm_id"] == alarm_id for f in m.get("faults_raised", [])))
    raised = next(f for f in messages[-1]["faults_raised"] if f["alarm_id"] == alarm_id)
    assert raised in (await rest("/v1.0/faults"))["faults"]
    assert entry(messages[-1], "sc-faulty")["availability-status"] == "offline"
    await comm.disconnect()


# -- resync --------------------------------------------------------------------------------


async def test_it_answers_resync_with_every_change_after_since():
    ids = await register("sc-r1", "sc-r2")
    since = await revision()
    await describe(ids[0], "after one")
    await describe(ids[1], "after two")
    await describe(ids[0], "after three")
    comm = await token_socket()
    snapshot = await receive(comm)
    await comm.send_to(text_data=json.dumps({"type": "resync", "since": since}))
    answer = await receive(comm)
    assert answer["type"] == "changes"
    assert answer["revision"] == snapshot["revision"] == await revision()
    assert entry(answer, "sc-r1")["description"] == "after three"
    assert entry(answer, "sc-r2")["description"] == "after two"
    await comm.disconnect()


async def test_it_resumes_from_since_given_in_the_handshake():
    ids = await register("sc-h1", "sc-h2")
    since = await revision()
    await describe(ids[1], "while away")
    comm = await token_socket(f"/ws/status/?since={since}")
    first = await receive(comm)
    assert first["type"] == "changes"
    assert [s["name"] for s in first["subclouds"]] == ["sc-h2"]
    assert first["revision"] == await revision()
    await comm.disconnect()


async def test_it_answers_a_too_old_resync_with_a_snapshot(settings):
    settings.PORTAL_WS_SNAPSHOT_INTERVAL = 0  # two snapshots back to back (rationing: tests/test_ws_limits.py)
    ids = await register("sc-o1", "sc-o2")
    await describe(ids[0], "pruned")
    # The log keeps only its newest rows (as a retention job would leave it).
    await database_sync_to_async(lambda: StateChange.objects.filter(id__lt=changes.current_revision()).delete())()
    comm = await token_socket("/ws/status/?since=0")
    first = await receive(comm)
    assert first["type"] == "snapshot"
    assert {s["name"] for s in first["subclouds"]} == {"sc-o1", "sc-o2"}
    await comm.send_to(text_data=json.dumps({"type": "resync", "since": 0}))
    assert (await receive(comm))["type"] == "snapshot"
    await comm.disconnect()


async def test_it_answers_a_resync_needing_too_many_changes_with_a_snapshot(settings):
    settings.PORTAL_WS_RESYNC_MAX = 2
    [sid] = await register("sc-many")
    since = await revision()
    for i in range(3):
        await describe(sid, f"many {i}")
    comm = await token_socket(f"/ws/status/?since={since}")
    first = await receive(comm)
    assert first["type"] == "snapshot"
    assert entry(first, "sc-many")["description"] == "many 2"
    await comm.disconnect()


async def test_it_ignores_malformed_client_messages():
    comm = await token_socket()
    await receive(comm)
    await comm.send_to(text_data="not json")
    await comm.send_to(text_data=json.dumps({"type": "resync", "since": -3}))
    await comm.send_to(text_data=json.dumps({"type": "hello"}))
    assert await comm.receive_nothing(timeout=0.5)
    [sid] = await register("sc-still")
    await describe(sid, "still live")
    await receive_until(comm, lambda m: (entry(m, "sc-still") or {}).get("description") == "still live")
    await comm.disconnect()


# -- the doorbell and the poll ----------------------------------------------------------------


def test_it_rings_the_feed_once_per_transaction():
    with transaction.atomic():
        ids = [operations.register_subcloud({"name": f"sc-ring{i}"}).pk for i in range(3)]
        operations.update_subcloud(ids[0], fields={"description": "x"})
        rings = [func for _sids, func, _robust in connection.run_on_commit if func is broadcast.wake_feeds]
        assert len(rings) == 1
        assert StateChange.objects.count() == 4


async def test_it_wakes_on_the_doorbell_without_waiting_for_the_poll(settings):
    settings.PORTAL_FEED_POLL_SECONDS = 30
    sid, comm = await watched("sc-bell")
    await asyncio.sleep(0.2)  # the feed is now waiting on its 30 s poll
    started = time.monotonic()
    await describe(sid, "rung")
    message = await receive(comm, timeout=15)
    assert entry(message, "sc-bell")["description"] == "rung"
    assert time.monotonic() - started < 15  # half the 30 s poll: the doorbell, even on a busy machine
    await comm.disconnect()


async def test_it_finds_a_change_whose_doorbell_was_lost(settings):
    settings.PORTAL_FEED_POLL_SECONDS = 0.3
    [sid] = await register("sc-lost")
    comm = await token_socket()
    await receive(comm)

    def change_without_doorbell():
        with transaction.atomic():
            operations.update_subcloud(sid, fields={"description": "no bell"})
            connection.run_on_commit = [c for c in connection.run_on_commit if c[1] is not broadcast.wake_feeds]

    await database_sync_to_async(change_without_doorbell)()
    message = await receive(comm, timeout=3)
    assert entry(message, "sc-lost")["description"] == "no bell"
    await comm.disconnect()


async def test_it_keeps_revisions_increasing_for_several_clients_of_one_feed():
    [sid] = await register("sc-many-clients")
    clients = [await token_socket() for _ in range(3)]
    for c in clients:
        await receive(c)
    for i in range(20):
        await describe(sid, f"fan {i}")
    for c in clients:
        messages = await receive_until(c, lambda m: (entry(m, "sc-many-clients") or {}).get("description") == "fan 19")
        assert messages[-1]["revision"] == await revision()
        await c.disconnect()


def test_it_encodes_a_big_message_in_parts_that_fit_and_add_up_to_it():
    message = {
        "type": "snapshot", "revision": 7,
        "subclouds": [{"name": f"sc{i}", "description": "é" * (i % 50)} for i in range(400)],
        "faults": [{"uuid": str(i)} for i in range(30)],
        "last_change": {f"sc{i}": "2026-12-01 10:00:00.000000" for i in range(400)},
    }
    texts = wire.encode(message, limit=4000)
    parts = [json.loads(t) for t in texts]
    assert len(parts) > 1 and all(len(t.encode()) <= 4000 for t in texts)
    assert [(p["type"], p["revision"], p["part"], p["parts"]) for p in parts] == [
        ("snapshot", 7, i + 1, len(parts)) for i in range(len(parts))]
    assert [s for p in parts for s in p["subclouds"]] == message["subclouds"]
    assert [f for p in parts for f in p["faults"]] == message["faults"]
    assert {k: v for p in parts for k, v in p["last_change"].items()} == message["last_change"]
    assert json.loads(wire.encode(message, limit=10**7)[0]) == message


async def test_it_sends_a_message_too_big_for_one_frame_in_parts(settings):
    settings.PORTAL_WS_MAX_MESSAGE_BYTES = 3000
    await register(*(f"sc-part{i}" for i in range(12)))
    comm = await token_socket()
    parts = [await receive(comm)]
    while parts[-1]["part"] < parts[-1]["parts"]:
        parts.append(await receive(comm))
    assert len(parts) > 1
    assert [p["part"] for p in parts] == list(range(1, len(parts) + 1))
    assert {p["type"] for p in parts} == {"snapshot"}
    assert {p["revision"] for p in parts} == {await revision()}
    subclouds = [s for p in parts for s in p["subclouds"]]
    assert subclouds == (await rest("/v1.0/subclouds"))["subclouds"]
    assert {name for p in parts for name in p["last_change"]} == {s["name"] for s in subclouds}
    await comm.disconnect()


def test_it_sends_changed_endpoints_in_dcmanager_order_whatever_order_jsonb_keeps():
    """The change log's endpoints are a jsonb object (keys come back sorted by length); the wire list is not."""
    from subclouds.representation import wire_changes

    stored = {"endpoints": {"software": "in-sync", "dc-cert": "unknown", "platform": "in-sync", "identity": "unknown"}}
    listed = wire_changes(stored)["endpoint_sync_status"]
    assert [e["endpoint_type"] for e in listed] == ["platform", "identity", "dc-cert", "software"]


async def test_it_refuses_an_expired_token():
    token = await token_for("reader")
    set_expiry = database_sync_to_async(lambda delta: ApiToken.objects.update(expires_at=timezone.now() + delta))
    await set_expiry(-timedelta(seconds=1))
    _, connected, _ = await open_socket([(b"x-auth-token", token.encode())])
    assert not connected
    # The same token before its expiry is accepted: it is the expiry that was refused.
    await set_expiry(timedelta(hours=1))
    comm, connected, _ = await open_socket([(b"x-auth-token", token.encode())])
    assert connected
    await comm.disconnect()
