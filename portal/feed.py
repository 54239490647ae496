"""The per-process live-status feed: reads the change log once for every socket of its process.

In each daphne process one Feed task listens on the broadcast group
(state/broadcast.py), reads the rows after the last one it read (portal/changes.py;
also every FEED_POLL_SECONDS, so a lost doorbell only delays), merges them into
one Batch (portal/delta.py) and hands it in-process to the sockets of that
process (portal/consumers.py), which coalesce and rate-limit. Beside it, its guard
re-checks the credentials of all the process's sockets at once every
PORTAL_WS_RECHECK_SECONDS and closes the revoked and the too old (portal/limits.py).
"""

import asyncio
import contextlib
import logging
import uuid

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError

from accounts.credentials import still_valid
from state.broadcast import FEED_GROUP

from . import limits
from .changes import current_revision, read_rows
from .delta import Batch

# Group membership expires (CHANNEL_LAYERS group_expiry, 4 h); a long-lived feed joins again well before.
FEED_REJOIN_SECONDS = 3600
log = logging.getLogger(__name__)


class Feed:
    """Reads the log for every socket of this process (one per event loop); started by the first socket."""

    def __init__(self):
        self.sockets = set()
        self.last = None
        self.ready = asyncio.Event()
        self.wake = asyncio.Event()
        self.slots = limits.Slots()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self):
        layer = get_channel_layer()
        # A plain channel of our own (not a process-specific "...!..." one): its receive is a
        # blocking pop of its own, independent of the layer's shared receive buffer and lock.
        channel = f"portal-feed.{uuid.uuid4().hex}"
        listener = asyncio.create_task(self._listen(layer, channel))
        guard = asyncio.create_task(self._guard())
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
            guard.cancel()
            await asyncio.gather(listener, guard, return_exceptions=True)
            await asyncio.shield(self.slots.close())
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

    async def _guard(self):
        """Closes this process's sockets whose credential was revoked (one batched check for all of
        them, accounts/credentials.py) or whose lifetime is over; vouches for the others' slots."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(settings.PORTAL_WS_RECHECK_SECONDS)
            try:
                await self._check(loop.time())
            except Exception:
                log.exception("socket re-check failed; retrying on the next round")

    async def _check(self, now):
        live = [s for s in self.sockets if not s.ending]
        for sock in [s for s in live if now - s.opened >= settings.PORTAL_WS_MAX_LIFETIME_SECONDS]:
            await sock.end(limits.LIFETIME)
        live = [s for s in live if not s.ending]
        try:
            valid = await database_sync_to_async(still_valid)({s.credential for s in live})
        except DatabaseError as err:
            # Not a verdict: nothing is closed for a database outage.
            log.warning("socket credentials not re-checked (%s); retrying on the next round", err)
        else:
            for sock in [s for s in live if s.credential not in valid]:
                await sock.end(limits.REVOKED)
        await self.slots.refresh([s for s in live if not s.ending])

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
    """Unsubscribe (and free its slot); the last socket of a process stops its feed."""
    loop = asyncio.get_running_loop()
    feed = _feeds.get(loop)
    if feed is None:
        return
    feed.leave(sock)
    await feed.slots.release(sock)
    if not feed.sockets and _feeds.get(loop) is feed:  # another socket may have left meanwhile
        del _feeds[loop]
        feed.task.cancel()
        await asyncio.gather(feed.task, return_exceptions=True)
