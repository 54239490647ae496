"""The state-change log (StateChange): history, websocket feed and resync point in one table.

Every writer goes through `append`, which takes CHANGE_LOG_LOCK last in the
transaction so that revision (id) order is commit order, and wakes the feeds
once the transaction commits (broadcast.py). Entries use the product's own
field names (`availability_status`, `endpoints` as {type: status}); the
websocket and the pages turn them into dcmanager's keys
(subclouds.representation.wire_changes).
"""

from django.db import connection
from django.utils import timezone

from subclouds.models import Subcloud

from . import broadcast
from .actors import SYSTEM
from .bulk import insert_rows
from .models import StateChange

# Serialises the writers of the state-change log so that revision (id) order
# is commit order: a websocket client that has seen revision R has seen every
# change below R. Taken last in a transaction, held only until its commit.
CHANGE_LOG_LOCK = 0x6463_6C6F  # "dclo"


def sort_in_memory(cur):
    """Inside a transaction: sorts of the whole log (incidents, as_of) in memory, not temporary files.

    PostgreSQL's default 4 MB spills a week of a 5,000-subcloud log to disk (EXPLAIN ANALYZE: external
    merge, 0.1-0.2 s per sort); 64 MB holds it, for this transaction only.
    """
    cur.execute("SET LOCAL work_mem = '64MB'")


def entry(diff, reason, sequence, extra, raised, cleared, now, actor=SYSTEM):
    """The log row of one store.Diff (None when nothing changed); raised / cleared: {subcloud id: [fault JSON]}."""
    state, before = diff.state, diff.before
    changes = {f: getattr(state, f) for f in diff.fields}
    previous = {f: getattr(before, f) for f in diff.fields}
    if diff.endpoints:
        changes["endpoints"] = dict(state.endpoints)  # every endpoint: a reader needs no earlier row
        previous["endpoints"] = {e: before.endpoints.get(e) for e in diff.endpoints}
    changes.update(extra or {})
    if not (changes or diff.raised or diff.cleared):
        return None
    return {
        "subcloud_id": state.id, "subcloud_name": state.name, "changes": changes, "previous": previous,
        "faults_raised": raised.get(state.id, []), "faults_cleared": cleared.get(state.id, []),
        "sequence": sequence, "reason": reason, "created_at": now, **actor.columns(),
    }


def append(cur, rows):
    """Insert log rows (dicts of StateChange columns) in one statement; returns their revisions."""
    if not rows:
        return []
    cur.execute("SELECT pg_advisory_xact_lock(%s)", [CHANGE_LOG_LOCK])
    revisions = [r for (r,) in insert_rows(cur, StateChange, rows, returning="id")]
    broadcast.wake_feeds_after_commit()
    return revisions


def lifecycle_row(subcloud_id, name, reason, changes, now, actor=SYSTEM, previous=None):
    """The log row of an operator change that is no store.Diff (registration, field edits), for append."""
    return {
        "subcloud_id": subcloud_id, "subcloud_name": name, "changes": changes, "previous": previous or {},
        "faults_raised": [], "faults_cleared": [], "sequence": None, "reason": reason, "created_at": now,
        **actor.columns(),
    }


def _log_one(subcloud_id, name, reason, changes, previous=None, actor=SYSTEM):
    with connection.cursor() as cur:
        return append(cur, [lifecycle_row(subcloud_id, name, reason, changes, timezone.now(), actor, previous)])[0]


def save_fields(subcloud_id, name, fields, actor=SYSTEM):
    """Operator edits of plain fields (description, location, group), logged like state changes."""
    subcloud = Subcloud.objects.get(pk=subcloud_id)
    changed, previous = {}, {}
    for attr, value in fields.items():
        key = "group_id" if attr == "group" else attr
        old = getattr(subcloud, key)
        new = value.pk if attr == "group" else value
        if old != new:
            setattr(subcloud, key, new)
            changed[key] = new
            previous[key] = old
    if changed:
        subcloud.updated_at = timezone.now()
        subcloud.save(update_fields=[*changed, "updated_at"])
        _log_one(subcloud_id, name, "edit", changed, previous, actor)
