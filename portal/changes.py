"""Reading the state-change log for the websocket: rows after a revision, the snapshot, a resync.

Every read runs in one REPEATABLE READ view, so the rows, the subclouds they
refer to and the revision they reach agree. The log stores the product's own
field names; `_entry` turns them into dcmanager's keys (representation.wire_changes).
"""

from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Max, Min

from state.models import StateChange
from subclouds.choices import overall_sync_status
from subclouds.models import Fault, Subcloud
from subclouds.representation import fault_json, format_time, subclouds_json, wire_changes

from .wire import encode


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
    entry = {"name": name, **wire_changes(changes)}
    if "endpoints" in changes:
        entry["sync_status"] = overall_sync_status(changes["endpoints"].values())
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
