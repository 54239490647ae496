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


def ring():
    async_to_sync(aring)()
