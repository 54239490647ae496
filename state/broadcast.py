"""Broadcast of state changes: the one place the live-status feeds are woken from.

The record is the state-change log (StateChange, id = revision, see changelog.py);
this is only the doorbell. After a transaction that wrote change-log rows
commits, `wake_feeds_after_commit` registers ONE group_send to FEED_GROUP (one
per transaction, never one per change: a group_send costs ~4 ms). Every daphne
process's feed (portal/feed.py) listens on that group and reads the new rows.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from .doorbell import in_event_loop_thread

FEED_GROUP = "status-feed"
log = logging.getLogger(__name__)


async def _wake():
    await get_channel_layer().group_send(FEED_GROUP, {"type": "feed.wake"})


def wake_feeds():
    """Wake every process's feed. Never raises: the feed's poll covers a lost doorbell."""
    if in_event_loop_thread():  # no async_to_sync possible there: the feeds' poll will do
        log.debug("feed doorbell skipped in an event-loop thread")
        return
    try:
        async_to_sync(_wake)()
    except Exception as err:  # noqa: BLE001 - a dead channel layer only delays the feed
        log.warning("feed doorbell not rung (%s); pages get the change on the next poll", err)


def wake_feeds_after_commit(using=None):
    """Ring the feed after the current transaction commits, once per transaction however often called."""
    conn = transaction.get_connection(using)
    # A doorbell already registered fires whenever this change commits: rolling back
    # a savepoint drops only the callbacks registered inside it, and every savepoint
    # still open encloses this change too.
    if conn.in_atomic_block and any(func is wake_feeds for _sids, func, _robust in conn.run_on_commit):
        return
    transaction.on_commit(wake_feeds, using=using, robust=True)
