"""`/ws/status/`: snapshot, then coalesced `changes`, `resync` on request (docs/websockets.md).

Thin on purpose: the feed (portal/feed.py) reads the log once per process and
hands every socket the same batches; a socket only keeps what it has not sent
yet and sends on average at most one message per PORTAL_WS_MIN_INTERVAL (Pace),
and at most one snapshot per PORTAL_WS_SNAPSHOT_INTERVAL. It remembers what it
authenticated with, for the feed's guard to re-check (portal/limits.py: close codes).
"""

import asyncio
import json
import logging
import re
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.credentials import credential_for
from accounts.roles import role_of

from . import changes, feed, limits, window, wire
from .delta import Delta

log = logging.getLogger(__name__)


_REVISION = re.compile(r"[0-9]{1,18}")


def _since(value):
    """A non-negative revision, or None (ASCII digits only and at most 18 of them: never a ValueError)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _REVISION.fullmatch(value):
        value = int(value)
    return value if isinstance(value, int) and 0 <= value < 10**18 else None


class StatusConsumer(AsyncWebsocketConsumer):
    # No channel per socket: the process's feed is the only channel-layer
    # listener and hands changes to its sockets in-process (deliver()).
    channel_layer_alias = None

    ending = False  # closed (or being closed) by the server
    credential = None
    slot = None
    sender = None

    def _authorize(self):
        """The credential of a user holding a role, or None (any role may read)."""
        user = self.scope.get("user")
        if role_of(user) is None:
            return None
        return credential_for(user, self.scope.get("auth_token_hash"), self.scope.get("session"))

    async def connect(self):
        # No role (or no valid credentials): the handshake is refused.
        self.credential = await database_sync_to_async(self._authorize)()
        if self.credential is None:
            await self.close()
            return
        self.opened = asyncio.get_running_loop().time()  # the guard closes it after PORTAL_WS_MAX_LIFETIME_SECONDS
        self.last_snapshot = None
        query = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        self.base = 0  # the client has every change up to here
        self.queue = []  # batches from the feed not sent yet
        self.resync = _since((query.get("since") or [None])[0])
        # ?view=<JSON>: a windowed socket (portal/window.py); a malformed view still gets the default one.
        self.view = None
        if "view" in query:
            self.view = window.parse_view_text(query["view"][0]) or window.View()
        self.requery = self.view is not None and self.resync is None  # a window is due
        self.want_names = False
        self.in_view = set()
        self.wake = asyncio.Event()
        await self.accept()
        try:
            joined = await feed.join(self)
        except TimeoutError:
            log.warning("live feed not ready; closing the socket so that the client retries")
            await self.close(code=1013)
            return
        if not await joined.slots.take(self):
            # Accepted first so that the client sees the code (a refused handshake is a bare HTTP 403).
            await self.end(limits.TOO_MANY)
            return
        if not self.ending:  # the feed's guard may have closed it meanwhile
            self.sender = asyncio.create_task(self._send_loop())

    async def end(self, code):
        """Close from the server with one of portal/limits.py's codes; nothing is sent after it."""
        if self.ending:
            return
        self.ending = True
        if self.sender is not None and self.sender is not asyncio.current_task():
            self.sender.cancel()
            await asyncio.gather(self.sender, return_exceptions=True)
        await self.close(code=code, reason=limits.REASONS[code])

    async def disconnect(self, code):
        if getattr(self, "sender", None) is not None:
            self.sender.cancel()
            await asyncio.gather(self.sender, return_exceptions=True)
        await feed.leave(self)

    async def receive(self, text_data=None, bytes_data=None):
        # Binary frames, non-JSON, JSON nested too deep to parse (RecursionError), wrong types:
        # ignored, the socket stays open and nothing is logged above debug.
        try:
            message = json.loads(text_data) if isinstance(text_data, str) else None
        except (ValueError, RecursionError):
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "subscribe":
            # A new view (or the first: the socket becomes windowed), answered by a fresh window; requests made
            # while the socket waits for its turn are merged (the latest view wins).
            view = window.parse_view(message.get("view"))
            names = message.get("names", False)
            if view is not None and isinstance(names, bool):
                self.view, self.requery = view, True
                self.want_names = self.want_names or names
                self.wake.set()
                return
        since = _since(message.get("since")) if kind == "resync" else None
        if since is None:
            log.debug("ignored client message %r", (text_data or bytes_data or "")[:200])
            return
        self.resync = since
        self.wake.set()

    def deliver(self, batch):
        """Called by the feed with every batch it reads."""
        if batch.revision > self.base and not self.ending:
            self.queue.append(batch)
            self.wake.set()

    # -- sending -------------------------------------------------------------------

    def _take(self, after):
        """(Everything queued after revision `after`, merged; its encoding if shared); the queue is emptied."""
        batches = [b for b in self.queue if b.revision > after]
        self.queue = []
        if not batches:
            return None, None
        if len(batches) == 1 and batches[0].first > after:
            return batches[0].delta, batches[0].encoded()  # the common case: shared, encoded once per process
        merged = Delta()
        for b in batches:
            merged.merge(b.after(after))
        return merged, None

    async def _send_loop(self):
        """The only sender of this socket: first message, then changes and resync answers, paced.

        Whatever arrives while the socket waits for its turn goes out merged in the next message.
        """
        pace = Pace(settings.PORTAL_WS_MIN_INTERVAL)
        try:
            if self.view is not None:
                self.requery = True
                self.wake.set()  # windowed: the first message is a window (also for ?since=R)
            elif self.resync is None:
                pace.take()
                await self._send_snapshot()
            else:
                self.wake.set()  # ?since=R: the first message answers that resync
            while True:
                await self.wake.wait()
                await pace.turn()
                self.wake.clear()
                if self.view is not None:
                    await self._send_windowed(pace)
                    continue
                if self.resync is not None:
                    since, self.resync = self.resync, None
                    pace.take()
                    await self._answer_resync(since)
                    continue
                delta, texts = self._take(self.base)
                if delta is not None:
                    pace.take()
                    await self._send_changes(delta, texts)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live status socket failed; closing it (the client reconnects and resyncs)")
            await self.close(code=1011)

    async def _ration_snapshot(self):
        """At most one full snapshot (or list of every matching name) per PORTAL_WS_SNAPSHOT_INTERVAL: one needed
        sooner waits its turn, and the resync requests that arrive meanwhile are answered by it (merged)."""
        loop = asyncio.get_running_loop()
        if self.last_snapshot is not None:
            wait = self.last_snapshot + settings.PORTAL_WS_SNAPSHOT_INTERVAL - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                self.resync = None
        self.last_snapshot = loop.time()

    async def _send_snapshot(self):
        await self._ration_snapshot()
        revision, texts = await database_sync_to_async(changes.snapshot_message)()
        # Queued batches up to the snapshot's revision are in it; later ones follow.
        self.base = revision
        if any(b.revision > revision for b in self.queue):
            self.wake.set()
        await self._send_texts(texts)

    async def _answer_resync(self, since):
        found = await database_sync_to_async(changes.resync_rows)(since, settings.PORTAL_WS_RESYNC_MAX)
        if found is None:
            await self._send_snapshot()
            return
        rows, revision = found
        answer = Delta.of(rows)
        answer.revision = max(revision, since)
        queued, _ = self._take(answer.revision)
        if queued is not None:
            answer.merge(queued)
        await self._send_changes(answer, None)

    async def _send_windowed(self, pace):
        """A windowed socket's turn: a fresh window when one is due (new view, resync, or changes that can move
        subclouds in or out of it), else the changes of the subclouds in view, with the counts when they moved."""
        if self.resync is not None:
            self.resync, self.requery = None, True  # a resync of a windowed socket is a fresh window
        delta, _ = self._take(self.base)
        if self.requery or (delta is not None and self.view.moves(delta)):
            self.requery = False
            names, self.want_names = self.want_names, False
            if names:
                await self._ration_snapshot()
            pace.take()
            revision, self.in_view, texts = await database_sync_to_async(window.window_message)(self.view, names)
            self.base = max(self.base, revision)
            if any(b.revision > self.base for b in self.queue):
                self.wake.set()
            await self._send_texts(texts)
            return
        if delta is None:
            return
        message = delta.in_view(self.in_view).message()
        if window.counts_change(delta):
            # Read a little later than the changes (absolute values, so harmless); the message keeps the
            # changes' revision so that nothing committed in between is skipped.
            message["counts"] = await database_sync_to_async(window.counts)()
        elif not message["subclouds"] and not message["faults_raised"] and not message["faults_cleared"]:
            self.base = max(self.base, delta.revision)  # nothing in view and nothing counted changed
            return
        pace.take()
        self.base = max(self.base, message["revision"])
        await self._send_texts(wire.encode(message))

    async def _send_changes(self, delta, texts):
        self.base = max(self.base, delta.revision)
        await self._send_texts(texts or wire.encode(delta.message()))

    async def _send_texts(self, texts):
        """One message, possibly in parts (sent back to back: together they count as one message)."""
        for text in texts:
            await self.send(text_data=text)


class Pace:
    """A token bucket: on average one message per `interval`, at most `burst` of them back to back.

    With a burst of 1 (a plain minimum gap) a steady stream arriving right at
    the limit, ten commits a second, phase-locks behind it and every change
    waits up to a whole interval; half a token of slack lets such a stream go
    out as it comes, jitter and all. Over any second a socket still gets at
    most 1/interval + 1 messages. A stream at exactly 1/interval never
    refills the bucket once a burst has emptied it, so the default interval
    is half a 10-commits/s stream's period (settings.PORTAL_WS_MIN_INTERVAL).
    """

    def __init__(self, interval, burst=1.5):
        self.interval, self.burst = interval, burst
        self.loop = asyncio.get_running_loop()
        self.tokens, self.at = burst, self.loop.time()

    def _refill(self):
        now = self.loop.time()
        earned = (now - self.at) / self.interval if self.interval > 0 else self.burst
        self.tokens, self.at = min(self.burst, self.tokens + earned), now

    async def turn(self):
        """Returns when a message may go (take() then spends the turn)."""
        self._refill()
        if self.tokens < 1:
            await asyncio.sleep((1 - self.tokens) * self.interval)

    def take(self):
        self._refill()
        self.tokens -= 1
