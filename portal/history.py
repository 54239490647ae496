"""What the pages read from the state-change log besides the live feed."""

from datetime import timedelta

from django.db import connection
from django.utils import timezone

from state import events
from state.models import StateChange
from subclouds.choices import Availability
from subclouds.models import Subcloud
from subclouds.representation import WIRE_KEYS

from .vocabulary import source_label


def availability_history(minutes=60, now=None):
    """Online subclouds per minute over the last `minutes`: [{"minute": iso, "min", "max", "end"}], oldest first.

    Walks the log backwards from today's count: every availability change of the
    window moves the count by one, so a flap or a dead-office event inside a
    minute shows as that minute's min..max range. One query, grouped in SQL.
    Subclouds registered or deleted in the window are counted as they are now.
    """
    now = now or timezone.now()
    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    online_now = Subcloud.objects.filter(availability_status=Availability.ONLINE).count()
    table = StateChange._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"""
            WITH ev AS (
                SELECT id, created_at,
                       CASE changes->>'availability_status' WHEN %s THEN 1 WHEN %s THEN -1 ELSE 0 END AS d
                FROM {table}
                -- a backward scan of the primary key that stops at the window's start
                WHERE id > (SELECT coalesce(max(id), 0) FROM {table} WHERE created_at < %s)
                  AND changes ? 'availability_status'
            ), run AS (
                SELECT created_at, sum(d) OVER (ORDER BY id) AS c, row_number() OVER (ORDER BY id DESC) AS back FROM ev
            )
            SELECT floor(extract(epoch FROM created_at - %s) / 60)::int AS minute, min(c), max(c),
                   (array_agg(c ORDER BY back))[1], (SELECT coalesce(sum(d), 0) FROM ev)
            FROM run GROUP BY minute ORDER BY minute
            """,
            [Availability.ONLINE, Availability.OFFLINE, start, start],
        )
        rows = cur.fetchall()
    total = rows[0][4] if rows else 0
    base = online_now - total  # online count at the window's start
    per_minute = {minute: (base + lo, base + hi, base + end) for minute, lo, hi, end, _ in rows}
    series, count = [], base
    for minute in range(minutes):
        if minute in per_minute:
            lo, hi, end = per_minute[minute]
            point = {"min": min(lo, count), "max": max(hi, count), "end": end}
            count = end
        else:
            point = {"min": count, "max": count, "end": count}
        point["minute"] = (start + timedelta(minutes=minute)).isoformat()
        series.append(point)
    return series


def describe(changes, previous, faults_raised, faults_cleared):
    """One log entry as short human lines, in dcmanager's keys: "availability-status: offline → online"."""
    lines = []
    for key, new in changes.items():
        if key in ("registered", "deleted"):
            lines.append(key)
        elif key == "endpoints":
            before = previous.get(key) or {}
            lines.extend(f"{e}: {old or '–'} → {new.get(e)}" for e, old in before.items())
        else:
            old = previous.get(key)
            lines.append(f"{WIRE_KEYS.get(key, key)}: {'–' if old is None else old} → {new}")
    lines.extend(f"alarm {f['alarm_id']} raised ({f['entity_instance_id']})" for f in faults_raised)
    lines.extend(f"alarm {f['alarm_id']} cleared ({f['entity_instance_id']})" for f in faults_cleared)
    return lines


def subcloud_history(subcloud_id, limit=50):
    """The newest entries of one subcloud's state-change log, newest first, with `lines` to show."""
    entries = list(
        StateChange.objects.filter(subcloud_id=subcloud_id)
        .order_by("-id")
        .values("id", "reason", "changes", "previous", "faults_raised", "faults_cleared", "created_at", *ACTOR_FIELDS)[:limit]
    )
    for entry in entries:
        _annotate(entry)
    return entries


ACTOR_FIELDS = ("actor", "source", "actor_via", "actor_address")


def _annotate(entry):
    """Add what the templates show: `lines` (describe) and `source_label`."""
    entry["lines"] = describe(entry["changes"], entry["previous"], entry["faults_raised"], entry["faults_cleared"])
    entry["source_label"] = source_label(entry["source"])
    return entry


def fleet_events(filters):
    """A page of the events page: (entries newest first with lines and kinds, cursor of the next page)."""
    rows, cursor = events.page(filters)
    entries = [
        _annotate({"id": r.id, "subcloud_name": r.subcloud_name, "reason": r.reason, "changes": r.changes,
                   "previous": r.previous, "faults_raised": r.faults_raised, "faults_cleared": r.faults_cleared,
                   "created_at": r.created_at, "kinds": events.kinds_of(r),
                   **{f: getattr(r, f) for f in ACTOR_FIELDS}})
        for r in rows
    ]
    return entries, cursor
