"""`manage.py runworker dcmanager-state`: a state worker process.

Channels' own runworker buffers messages in an unbounded queue and loses them
on SIGTERM; here the channel only carries doorbells and the work is claimed
from PostgreSQL (state/worker.py). Other channel names go to Channels' command.

Loop: drain pending work batch by batch; when a batch was full, ring the
doorbell so an idle peer joins in; then wait for a doorbell or the sweep
interval (which covers lost doorbells). SIGTERM/SIGINT: finish the current
batch, take no more, exit 0.
"""

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from datetime import timedelta
from pathlib import Path

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.management.commands.runworker import Command as ChannelsRunworker
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from state import doorbell
from state.models import WorkerHeartbeat
from state.worker import Counters, apply_batch, prune

log = logging.getLogger("state.runworker")
PRUNE_EVERY_SECONDS = 300


class Command(ChannelsRunworker):
    help = "Run a state worker (channel dcmanager-state) or, for other channels, Channels' worker."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--name", default="", help="worker name in stats and heartbeats (default host:pid)")
        parser.add_argument("--batch", type=int, default=settings.STATE_WORKER_BATCH, help="subclouds per transaction")
        parser.add_argument("--heartbeat-file", default="", help="file touched from the main loop (OCF monitor)")

    def handle(self, *args, **options):
        if options["channels"] != [doorbell.CHANNEL]:
            return super().handle(*args, **options)
        name = options["name"] or f"{socket.gethostname()}:{os.getpid()}"
        # Everything imported so far (Django, the apps: ~130,000 objects) lives as long as the process;
        # out of the collector's way, each full collection during a batch scans a few thousand objects,
        # not all of them: -10 to -25% worker CPU per dead-office batch (BENCHMARKS.md, py-spy).
        gc.freeze()
        worker = StateWorker(name, options["batch"], options["heartbeat_file"])
        asyncio.run(worker.run())


class StateWorker:
    def __init__(self, name, batch, heartbeat_file=""):
        self.name = name
        self.batch = batch
        self.heartbeat_file = Path(heartbeat_file) if heartbeat_file else None
        self.counters = Counters()
        self.stopping = asyncio.Event()
        self.rung = asyncio.Event()
        self.started_at = timezone.now()
        self.last_beat = 0.0
        self.drained_at = 0.0
        self.last_prune = time.monotonic()

    async def run(self):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop, sig)
        layer = get_channel_layer()
        log.info("state worker %s started (batch %d)", self.name, self.batch)
        await self._beat(force=True)
        listener = asyncio.ensure_future(self._listen(layer))
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                await self._drain(layer)
                await self._prune()
                backoff = 0.5
            except Exception as err:  # noqa: BLE001 - the worker must outlive any failure
                # PostgreSQL went away (or a bug): drop the connection, retry with backoff.
                if isinstance(err, DatabaseError):
                    log.warning("database error (%s); retrying in %.1fs", err, backoff)
                else:
                    log.exception("unexpected error; retrying in %.1fs", backoff)
                await sync_to_async(lambda: connection.close())()  # bound in the worker thread, not here
                await self._sleep(backoff)
                backoff = min(backoff * 2, 10)
                continue
            await self._wait_for_doorbell()
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await self._beat(force=True)
        log.info("state worker %s stopped", self.name)

    def _stop(self, sig):
        log.info("received %s: finishing the current batch", signal.Signals(sig).name)
        self.stopping.set()

    async def _prune(self):
        if time.monotonic() - self.last_prune < PRUNE_EVERY_SECONDS:
            return
        self.last_prune = time.monotonic()
        deleted = await sync_to_async(prune)(
            timedelta(hours=settings.STATE_KEEP_APPLIED_HOURS), timedelta(hours=settings.STATE_KEEP_CHANGES_HOURS)
        )
        if deleted:
            log.info("pruned %d rows past retention", deleted)

    async def _drain(self, layer):
        self.drained_at = time.time()
        self.rung.clear()
        while not self.stopping.is_set():
            result = await sync_to_async(apply_batch)(self.batch, self.name)
            self.counters.add(result)
            await self._beat()
            if result.subclouds:
                log.debug("applied %d updates (%d no-op) on %d subclouds", result.applied, result.noops, result.subclouds)
            if result.subclouds < self.batch:
                return
            await doorbell.aring(layer)  # more than one batch pending: invite a peer

    async def _listen(self, layer):
        """Receive doorbells for the whole life of the process.

        Never cancelled mid-receive (channels-redis can lose a message popped
        just before a cancellation); it only sets an event the loop waits on.
        """
        while True:
            try:
                message = await layer.receive(doorbell.CHANNEL)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - channel layer down: the sweep covers it
                log.warning("channel layer receive failed (%s); relying on the sweep", err)
                await asyncio.sleep(1)
                continue
            # Doorbells rung before our last drain began are already answered.
            if message.get("at", time.time()) >= self.drained_at:
                self.rung.set()

    async def _wait_for_doorbell(self):
        """Until a doorbell, SIGTERM, or the sweep interval; heartbeats keep going meanwhile."""
        deadline = time.monotonic() + settings.STATE_SWEEP_SECONDS
        while not (self.stopping.is_set() or self.rung.is_set()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return  # sweep
            waits = [asyncio.ensure_future(self.rung.wait()), asyncio.ensure_future(self.stopping.wait())]
            await asyncio.wait(waits, timeout=min(remaining, settings.STATE_HEARTBEAT_SECONDS),
                               return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            await self._beat()

    async def _sleep(self, seconds):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    async def _beat(self, force=False):
        now = time.monotonic()
        if not force and now - self.last_beat < settings.STATE_HEARTBEAT_SECONDS:
            return
        self.last_beat = now
        if self.heartbeat_file:
            self.heartbeat_file.touch()
        try:
            await sync_to_async(self._write_heartbeat)()
        except DatabaseError as err:
            log.warning("heartbeat not written: %s", err)

    def _write_heartbeat(self):
        close_old_connections()
        c = self.counters
        WorkerHeartbeat.objects.update_or_create(
            name=self.name,
            defaults={
                "kind": "state",
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "started_at": self.started_at,
                "beat_at": timezone.now(),
                "applied": c.applied,
                "noops": c.noops,
                "failed": c.failed,
                "latency": c.latency_json(),
            },
        )
