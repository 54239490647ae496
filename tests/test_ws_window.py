"""Windowed subscriptions of /ws/status/ (docs/websockets.md, "Windows"): server-side filter, sort and window,
live changes for what is in view, live counts for the rest. Through the real ASGI router, Redis and PostgreSQL."""

import json
from urllib.parse import quote

import pytest
from channels.db import database_sync_to_async

from portal import window
from tests.test_ws_protocol import describe, entry, receive, receive_until, register, revision, token_socket

pytestmark = pytest.mark.django_db(transaction=True)

NAMES = [f"w{i}" for i in range(1, 13)]  # w1 .. w12: natural order puts w10 after w9
ONLINE = {"w2", "w5", "w9", "w10"}


@database_sync_to_async
def set_availability(names, status):
    from state import intake
    from state.models import UpdateKind
    from state.worker import apply_batch
    from subclouds.models import Subcloud

    ids = dict(Subcloud.objects.filter(name__in=names).values_list("name", "id"))
    intake.accept(UpdateKind.AVAILABILITY, [(ids[n], {"availability_status": status, "update_state_only": False,
                                                      "audit_fail_count": 0}) for n in names])
    while apply_batch(100, "test").subclouds:
        pass


async def fleet():
    ids = dict(zip(NAMES, await register(*NAMES), strict=True))
    await set_availability(sorted(ONLINE), "online")
    return ids


async def windowed(view=None):
    path = "/ws/status/?view=" + quote(json.dumps(view)) if view is not None else "/ws/status/?view="
    comm = await token_socket(path)
    return comm, await receive(comm)


def names(message):
    return [s["name"] for s in message["subclouds"]]


async def subscribe(comm, view, **extra):
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "view": view, **extra}))
    return await receive_until(comm, lambda m: m["type"] == "window" and m["view"] == {
        "filter": {k: v for k, v in view.get("filter", {}).items() if v}, "sort": view.get("sort", ["name", "ascending"]),
        "offset": view.get("offset", 0), "limit": view.get("limit", window.DEFAULT_LIMIT)})


async def test_it_sends_the_window_of_the_view_sorted_and_filtered_on_the_server_with_the_counts():
    await fleet()
    comm, first = await windowed({"sort": ["name", "descending"], "offset": 1, "limit": 4})
    assert first["type"] == "window"
    assert first["revision"] == await revision()
    assert names(first) == ["w11", "w10", "w9", "w8"]
    assert first["matched"] == 12
    assert first["counts"]["total"] == 12
    assert first["counts"]["availability"] == {"online": 4, "offline": 8}
    assert first["counts"]["alarms"]["critical"] == 0
    # Rows as the snapshot spells them, with their faults and last changes only.
    assert set(first["subclouds"][0]) >= {"name", "availability-status", "endpoint_sync_status", "sync_status"}
    assert set(first["last_change"]) == {"w11", "w10", "w9", "w8"}

    online = (await subscribe(comm, {"filter": {"availability": "online"}, "sort": ["name", "ascending"], "limit": 3}))[-1]
    assert names(online) == ["w2", "w5", "w9"]
    assert online["matched"] == 4
    text = (await subscribe(comm, {"filter": {"q": "w1"}, "sort": ["availability-status", "descending"]}))[-1]
    assert names(text) == ["w10", "w12", "w11", "w1"]  # online first, then by name descending
    empty = (await subscribe(comm, {"filter": {"availability": "online"}, "offset": 10}))[-1]
    assert names(empty) == [] and empty["matched"] == 4
    every = (await subscribe(comm, {"filter": {"availability": "offline"}, "limit": 1}, names=True))[-1]
    assert every["names"] == ["w1", "w3", "w4", "w6", "w7", "w8", "w11", "w12"]
    await comm.disconnect()


async def test_it_sends_a_change_in_view_as_changes_and_nothing_for_one_out_of_view():
    ids = await fleet()
    comm, first = await windowed({"limit": 3})
    assert names(first) == ["w1", "w2", "w3"]
    await describe(ids["w12"], "out of view")  # neither in view nor counted: nothing
    await describe(ids["w2"], "in view")
    message = await receive(comm)
    assert message["type"] == "changes"
    assert [s["name"] for s in message["subclouds"]] == ["w2"]
    assert entry(message, "w2")["description"] == "in view"
    assert "counts" not in message
    await comm.disconnect()


async def test_it_sends_a_fresh_window_when_a_change_moves_a_subcloud_into_it():
    await fleet()
    comm, first = await windowed({"filter": {"availability": "online"}})
    assert names(first) == ["w2", "w5", "w9", "w10"]
    await set_availability(["w7"], "online")
    message = (await receive_until(comm, lambda m: m["type"] == "window"))[-1]
    assert names(message) == ["w2", "w5", "w7", "w9", "w10"]
    assert message["matched"] == 5
    assert message["revision"] == await revision()
    await comm.disconnect()


async def test_it_updates_the_counts_for_changes_outside_the_view():
    await fleet()
    comm, first = await windowed({"limit": 2})
    assert first["counts"]["availability"]["online"] == 4
    await set_availability(["w12"], "online")  # not in view, sorted by name: the window stays, the counts move
    message = (await receive_until(comm, lambda m: "counts" in m))[-1]
    assert message["type"] == "changes"
    assert message["subclouds"] == []
    assert message["counts"]["availability"] == {"online": 5, "offline": 7}
    assert message["revision"] > first["revision"]
    await set_availability(["w12"], "offline")  # the offline alarm is counted too
    message = (await receive_until(comm, lambda m: (m.get("counts") or {}).get("alarms", {}).get("critical") == 1))[-1]
    assert message["counts"]["availability"]["online"] == 4
    await comm.disconnect()


async def test_it_ignores_a_malformed_subscribe_and_keeps_the_socket():
    ids = await fleet()
    comm, first = await windowed({"limit": 2})
    for bad in ({"type": "subscribe"}, {"type": "subscribe", "view": []},
                {"type": "subscribe", "view": {"limit": window.MAX_LIMIT + 1}},
                {"type": "subscribe", "view": {"limit": -1}}, {"type": "subscribe", "view": {"offset": True}},
                {"type": "subscribe", "view": {"sort": ["password", "ascending"]}},
                {"type": "subscribe", "view": {"sort": ["name", "sideways"]}},
                {"type": "subscribe", "view": {"filter": {"availability": "maybe"}}},
                {"type": "subscribe", "view": {"filter": {"q": "x" * 256}}},
                {"type": "subscribe", "view": {"filter": {"group": "1; DROP TABLE"}}},
                {"type": "subscribe", "view": {"filter": {"evil": 1}}},
                {"type": "subscribe", "view": {"limit": 2}, "names": "yes"},
                {"type": "subscribe", "view": {"surprise": 1}}):
        await comm.send_to(text_data=json.dumps(bad))
    await comm.send_to(text_data="[" * 100000)
    assert await comm.receive_nothing(timeout=0.5)
    await describe(ids["w1"], "still live")
    message = await receive(comm)
    assert entry(message, "w1")["description"] == "still live"
    await comm.disconnect()


async def test_it_gives_a_malformed_view_in_the_handshake_the_default_window():
    await fleet()
    comm = await token_socket("/ws/status/?view=" + quote('{"limit": 100000}'))
    first = await receive(comm)
    assert first["type"] == "window"
    assert first["view"] == window.View().as_json()
    assert names(first) == NAMES
    await comm.disconnect()


async def test_it_answers_a_resync_of_a_windowed_socket_with_a_fresh_window():
    ids = await fleet()
    since = await revision()
    await describe(ids["w3"], "while away")
    comm = await token_socket(f"/ws/status/?since={since}&view=" + quote(json.dumps({"limit": 3})))
    first = await receive(comm)
    assert first["type"] == "window"
    assert entry(first, "w3")["description"] == "while away"
    await comm.send_to(text_data=json.dumps({"type": "resync", "since": since}))
    again = await receive(comm)
    assert again["type"] == "window" and again["revision"] == await revision()
    await comm.disconnect()


async def test_it_turns_a_full_socket_into_a_windowed_one_on_subscribe():
    await fleet()
    comm = await token_socket()
    snapshot = await receive(comm)
    assert snapshot["type"] == "snapshot" and len(snapshot["subclouds"]) == 12
    message = (await subscribe(comm, {"limit": 2}))[-1]
    assert names(message) == ["w1", "w2"]
    await comm.disconnect()


def test_it_reads_a_window_sorted_by_name_from_the_natural_name_index():
    """No sort of the fleet per scroll, filter or sort: the window's ORDER BY is the index's expressions (any
    mismatch and PostgreSQL could not use it, seq scans or not). The matching rows are counted apart."""
    from django.db import connection, transaction

    for sort in (["name", "ascending"], ["name", "descending"]):
        view = window.parse_view({"filter": {"availability": "online"}, "sort": sort, "offset": 5, "limit": 100})
        sql, params = window._window_sql(view)
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL enable_seqscan = off")
            cur.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cur.fetchall())
        assert "subcloud_natural_name" in plan and " Sort " not in plan, plan
        assert "OVER" not in sql
