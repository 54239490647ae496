"""The live-status feed: the one place websocket changes are broadcast from.

The record is the state-change log (StateChange, id = revision): state/store.py
writes it under an advisory lock so revision order is commit order, and a
reader that sees revision N committed has every change below N. The channel
message is only a doorbell: after a transaction that wrote StateChange rows
commits, `ring_after_commit` registers ONE group_send to FEED_GROUP (one per
transaction, never one per change: a group_send costs ~4 ms).

In each daphne process one Feed task listens on that group, reads the rows
after the last one it read (also every FEED_POLL_SECONDS, so a lost doorbell
only delays), merges them into one Batch and hands it in-process to the
sockets of that process (portal/consumers.py), which coalesce and rate-limit.
"""

import asyncio
import contextlib
import json
import logging
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Max, Min

from state.models import StateChange
from state.rules import overall_sync_status
from state.store import fault_json, format_time
from subclouds.models import Fault, Subcloud
from subclouds.representation import subclouds_json

FEED_GROUP = "status-feed"
# Group membership expires (CHANNEL_LAYERS group_expiry, 4 h); a long-lived feed joins again well before.
FEED_REJOIN_SECONDS = 3600
log = logging.getLogger(__name__)


# -- the doorbell (runs in the writer's process, after commit) ---------------------


async def _aring():
    await get_channel_layer().group_send(FEED_GROUP, {"type": "feed.wake"})


def ring():
    """Wake every process's feed. Never raises: the feed's poll covers a lost doorbell."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # called from async code's thread (no async_to_sync possible there): the poll will do
        log.debug("feed doorbell skipped in an event-loop thread")
        return
    try:
        async_to_sync(_aring)()
    except Exception as err:  # noqa: BLE001 - a dead channel layer only delays the feed
        log.warning("feed doorbell not rung (%s); pages get the change on the next poll", err)


def ring_after_commit(using=None):
    """Ring the feed after the current transaction commits, once per transaction however often called."""
    conn = transaction.get_connection(using)
    # A doorbell already registered fires whenever this change commits: rolling back
    # a savepoint drops only the callbacks registered inside it, and every savepoint
    # still open encloses this change too.
    if conn.in_atomic_block and any(func is ring for _sids, func, _robust in conn.run_on_commit):
        return
    transaction.on_commit(ring, using=using, robust=True)


# -- reading the log ------------------------------------------------------------------


@contextmanager
def repeatable_read():
    """One consistent read-only view of every table: the rows, the subclouds and the revision agree."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def current_revision():
    return StateChange.objects.aggregate(m=Max("id"))["m"] or 0


@dataclass
class Row:
    """One StateChange as the feed sends it."""

    id: int
    name: str
    entry: dict | None
    raised: list
    cleared: list
    at: str


def _entry(change, full, updated_at):
    """The `subclouds` item of one change: name + changed keys (a registration carries the whole object)."""
    name, changes = change["subcloud_name"], change["changes"]
    if changes.get("deleted"):
        return {"name": name, "deleted": True}
    if changes.get("registered"):
        obj = full.get(change["subcloud_id"])
        # Gone again: its deletion is a later row of the log.
        return {**obj, "registered": True} if obj else None
    entry = {"name": name, **changes}
    if "endpoint_sync_status" in changes:
        entry["sync_status"] = overall_sync_status(e["sync_status"] for e in changes["endpoint_sync_status"])
    if change["subcloud_id"] in updated_at:
        entry["updated-at"] = updated_at[change["subcloud_id"]]
    return entry


def _read_rows(after, limit):
    changes = list(
            StateChange.objects.filter(id__gt=after)
            .order_by("id")
        .values("id", "subcloud_id", "subcloud_name", "changes", "faults_raised", "faults_cleared", "created_at")[:limit]
    )
    if not changes:
        return [], current_revision()
    touched = {c["subcloud_id"] for c in changes if c["subcloud_id"]}
    registered = {c["subcloud_id"] for c in changes if c["changes"].get("registered")}
    full = {s["id"]: s for s in subclouds_json(Subcloud.objects.filter(pk__in=registered))} if registered else {}
    updated_at = {sid: format_time(at) for sid, at in Subcloud.objects.filter(pk__in=touched).values_list("id", "updated_at")}
    rows = [
        Row(c["id"], c["subcloud_name"], _entry(c, full, updated_at), c["faults_raised"], c["faults_cleared"],
            format_time(c["created_at"]))
        for c in changes
    ]
    return rows, rows[-1].id


def read_rows(after, limit):
    """(up to `limit` rows after revision `after`, in revision order; the revision they reach), in one view."""
    with repeatable_read():
        return _read_rows(after, limit)


def last_changes():
    """{subcloud name: time of its newest state change}: one index lookup per subcloud."""
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT s.name, (SELECT c.created_at FROM {StateChange._meta.db_table} c
                                WHERE c.subcloud_id = s.id ORDER BY c.id DESC LIMIT 1)
                FROM {Subcloud._meta.db_table} s"""
        )
        return {name: format_time(at) for name, at in cur.fetchall() if at is not None}


def snapshot_message():
    """(revision, the `snapshot` message encoded): 5,000 subclouds are ~5 MB of JSON, not for the event loop."""
    with repeatable_read():
        revision = current_revision()
        message = {
            "type": "snapshot",
            "revision": revision,
            "subclouds": subclouds_json(Subcloud.objects.all()),
            "faults": [fault_json(f) for f in Fault.objects.filter(cleared_at__isnull=True).order_by("-raised_at", "-id")],
            "last_change": last_changes(),
        }
    return revision, encode(message)


def resync_rows(since, limit):
    """Rows after `since`, or None when they cannot all be given (older than the oldest kept, or too many)."""
    with repeatable_read():
        bounds = StateChange.objects.aggregate(lo=Min("id"), hi=Max("id"))
        lo, hi = bounds["lo"] or 0, bounds["hi"] or 0
        # Rows below `lo` may have been pruned; a `since` beyond the end is from another database.
        if since > hi or (lo and since < lo - 1):
            return None
        rows, revision = _read_rows(since, limit + 1)
    if len(rows) > limit:
        return None
    return rows, revision


def _dump(value):
    return json.dumps(value, separators=(",", ":"))


# The lists and maps of a message that may be spread over parts.
_SPLITTABLE = ("subclouds", "faults", "faults_raised", "faults_cleared", "last_change")


def encode(message, limit=None):
    """The message as websocket texts: one when it fits in `limit` bytes, else parts.

    daphne refuses to send a message over its websocket_max_message_size (1 MiB
    by default), and 5,000 subclouds are ~5 MB. Parts carry the same type and
    revision plus "part" (1-based) and "parts"; the lists and last_change are
    spread over them; a client applies the message once it has every part.
    Every item is encoded once (json.dumps escapes to ASCII, so characters are
    bytes) and the parts are put together from those texts.
    """
    limit = limit or settings.PORTAL_WS_MAX_MESSAGE_BYTES
    head = {k: v for k, v in message.items() if k not in _SPLITTABLE}
    lists = {}  # key -> (is a map, [encoded items])
    for key in _SPLITTABLE:
        if key in message:
            value = message[key]
            if isinstance(value, dict):
                lists[key] = (True, [f"{_dump(k)}:{_dump(v)}" for k, v in value.items()])
            else:
                lists[key] = (False, [_dump(item) for item in value])
    text = _compose(head, lists, {key: items for key, (_, items) in lists.items()})
    if len(text) <= limit:
        return [text]
    # Room for items in a part: the limit less the head, the keys and a generous "part"/"parts".
    room = limit - len(_compose({**head, "part": 10**6, "parts": 10**6}, lists, {}))
    chunks, size = [{}], 0
    for key, (_, items) in lists.items():
        for item in items:
            if size + len(item) + 1 > room and size:
                chunks.append({})
                size = 0
            chunks[-1].setdefault(key, []).append(item)
            size += len(item) + 1
    return [_compose({**head, "part": i + 1, "parts": len(chunks)}, lists, chunk) for i, chunk in enumerate(chunks)]


def _compose(head, lists, chunk):
    """The JSON object text of `head` plus, for every list of the message, the encoded items in `chunk`."""
    fields = [f"{_dump(k)}:{_dump(v)}" for k, v in head.items()]
    for key, (is_map, _) in lists.items():
        items = ",".join(chunk.get(key, ()))
        fields.append(f'{_dump(key)}:{"{" + items + "}" if is_map else "[" + items + "]"}')
    return "{" + ",".join(fields) + "}"


# -- merging ---------------------------------------------------------------------------


@dataclass
class Delta:
    """Changes merged per subcloud (later values win) and per fault, up to `revision`."""

    revision: int = 0
    subclouds: dict = field(default_factory=dict)
    raised: dict = field(default_factory=dict)
    cleared: dict = field(default_factory=dict)
    last_change: dict = field(default_factory=dict)

    def __bool__(self):
        return self.revision > 0

    def _entry(self, entry):
        name = entry["name"]
        current = self.subclouds.get(name)
        if current is None or entry.get("deleted") or entry.get("registered"):
            self.subclouds[name] = dict(entry)
        else:
            current.update(entry)

    def _faults(self, raised, cleared):
        for fault in raised:
            self.raised[fault["uuid"]] = fault
        for fault in cleared:
            # Raised and cleared before anyone was told: nothing to tell.
            if self.raised.pop(fault["uuid"], None) is None:
                self.cleared[fault["uuid"]] = fault

    def add_row(self, row):
        self.revision = max(self.revision, row.id)
        if row.entry is not None:
            self._entry(row.entry)
        self._faults(row.raised, row.cleared)
        self.last_change[row.name] = row.at

    def merge(self, other):
        self.revision = max(self.revision, other.revision)
        for entry in other.subclouds.values():
            self._entry(entry)
        self._faults(other.raised.values(), other.cleared.values())
        self.last_change.update(other.last_change)

    def message(self):
        return {
            "type": "changes",
            "revision": self.revision,
            "subclouds": list(self.subclouds.values()),
            "faults_raised": list(self.raised.values()),
            "faults_cleared": list(self.cleared.values()),
            "last_change": self.last_change,
        }

    @classmethod
    def of(cls, rows, after=0):
        delta = cls()
        for row in rows:
            if row.id > after:
                delta.add_row(row)
        return delta


class Batch:
    """Rows read together by the feed, merged once and encoded once for every socket that wants all of them."""

    def __init__(self, rows):
        self.rows = rows
        self.first = rows[0].id
        self.revision = rows[-1].id
        self.delta = Delta.of(rows)
        self._encoded = None

    def encoded(self):
        """The whole batch as websocket texts (see encode)."""
        if self._encoded is None:
            self._encoded = encode(self.delta.message())
        return self._encoded

    def after(self, revision):
        """The part of this batch after `revision`, as a Delta (shared: do not change it)."""
        if revision < self.first:
            return self.delta
        return Delta.of(self.rows, after=revision)


# -- the per-process feed ---------------------------------------------------------------


class Feed:
    """Reads the log for every socket of this process (one per event loop); started by the first socket."""

    def __init__(self):
        self.sockets = set()
        self.last = None
        self.ready = asyncio.Event()
        self.wake = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self):
        layer = get_channel_layer()
        # A plain channel of our own (not a process-specific "...!..." one): its receive is a
        # blocking pop of its own, independent of the layer's shared receive buffer and lock.
        channel = f"portal-feed.{uuid.uuid4().hex}"
        listener = asyncio.create_task(self._listen(layer, channel))
        try:
            backoff = 0.5
            while self.last is None:
                try:
                    self.last = await database_sync_to_async(current_revision)()
                except DatabaseError as err:
                    log.warning("feed cannot read the change log (%s); retrying", err)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5)
            self.ready.set()
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=settings.PORTAL_FEED_POLL_SECONDS)
                self.wake.clear()
                try:
                    await self._read()
                except DatabaseError as err:
                    log.warning("feed read failed (%s); retrying on the next poll", err)
                except Exception:
                    log.exception("feed read failed; retrying on the next poll")
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            try:
                await asyncio.shield(layer.group_discard(FEED_GROUP, channel))
            except Exception as err:  # noqa: BLE001 - membership expires anyway (group_expiry)
                log.debug("feed group_discard failed: %s", err)

    async def _listen(self, layer, channel):
        """Doorbells -> wake. Re-joins the group well within its expiry; survives Redis outages."""
        joined = None
        loop = asyncio.get_running_loop()
        while True:
            try:
                if joined is None or loop.time() - joined > FEED_REJOIN_SECONDS:
                    await layer.group_add(FEED_GROUP, channel)
                    joined = loop.time()
                await layer.receive(channel)
                self.wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - the poll keeps the feed going meanwhile
                log.warning("feed doorbell channel failed (%s); polling only", err)
                joined = None
                await asyncio.sleep(2)

    async def _read(self):
        while True:
            rows, _ = await database_sync_to_async(read_rows)(self.last, settings.PORTAL_FEED_BATCH)
            if not rows:
                return
            self.last = rows[-1].id
            batch = Batch(rows)
            for sock in list(self.sockets):
                sock.deliver(batch)
            if len(rows) < settings.PORTAL_FEED_BATCH:
                return

    async def join(self, sock):
        """Every batch read from now on goes to `sock` too; returns once the feed knows where the log ends."""
        self.sockets.add(sock)
        await self.ready.wait()

    def leave(self, sock):
        self.sockets.discard(sock)


_feeds = {}


async def join(sock):
    """The feed of this process (started if needed), with `sock` subscribed."""
    loop = asyncio.get_running_loop()
    feed = _feeds.get(loop)
    if feed is None or feed.task.done():
        feed = _feeds[loop] = Feed()
    await asyncio.wait_for(feed.join(sock), timeout=settings.PORTAL_FEED_READY_TIMEOUT)
    return feed


async def leave(sock):
    """Unsubscribe; the last socket of a process stops its feed."""
    loop = asyncio.get_running_loop()
    feed = _feeds.get(loop)
    if feed is None:
        return
    feed.leave(sock)
    if not feed.sockets:
        del _feeds[loop]
        feed.task.cancel()
        await asyncio.gather(feed.task, return_exceptions=True)
