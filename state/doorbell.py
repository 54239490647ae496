"""The doorbell: a channel message that wakes state workers. Never the record.

Accepted updates live in PostgreSQL; a lost, duplicated or late doorbell
changes nothing because workers also sweep for pending work periodically.
"""

import asyncio
import logging
import time

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

CHANNEL = "dcmanager-state"
RING_TIMEOUT = 1.0
log = logging.getLogger(__name__)


async def aring(layer=None):
    layer = layer or get_channel_layer()
    try:
        # Bounded: a hung Redis must not hold up a 202 (the sweep covers it).
        await asyncio.wait_for(layer.send(CHANNEL, {"type": "state.pending", "at": time.time()}), RING_TIMEOUT)
    except ChannelFull:
        pass  # plenty of doorbells are already waiting
    except Exception as err:  # noqa: BLE001 - the sweep covers a dead channel layer
        log.warning("doorbell not rung (%s); workers will find the work on their next sweep", err)


def in_event_loop_thread():
    """True where async_to_sync cannot run: a thread with a running event loop (async code calling sync code)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def ring():
    """Ring from sync code. In an event-loop thread no doorbell is possible: the workers' sweep finds the work."""
    if in_event_loop_thread():
        log.debug("doorbell skipped in an event-loop thread")
        return
    async_to_sync(aring)()
