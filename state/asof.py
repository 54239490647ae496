"""The fleet as it was at a past time, reconstructed from the change log (GET /v1.0/subclouds?as_of=).

Exact within the log's retention: the pruner deletes only rows older than
retention, so every change after T is still in the log, and the value of a key
at T is the `previous` of its first change after T (or today's value when it has
not changed since). Endpoints: the first endpoint change after T holds every
endpoint (`changes`) and the old value of those it changed (`previous`); the
two together are the endpoints at T.

One query: DISTINCT ON (subcloud, key) over the log rows after T, in id order.
Its cost grows with the number of log rows after T (older T, busier fleet), not
with the rows before T nor with retention. Subclouds registered after T are left
out; subclouds deleted since T are gone with their inventory record (the log
keeps no full record of them) and are not listed.
"""

import json
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from subclouds.choices import overall_sync_status
from subclouds.errors import Refused
from subclouds.models import Subcloud
from subclouds.representation import endpoint_list, subclouds_json

from .changelog import sort_in_memory
from .models import StateChange

# Reconstructed keys: the change log's own field names -> dcmanager's keys in the list.
SCALAR_KEYS = {
    "availability_status": "availability-status",
    "management_state": "management-state",
    "deploy_status": "deploy-status",
}
KEYS = [*SCALAR_KEYS, "endpoints"]


def retention_start(now=None):
    return (now or timezone.now()) - timedelta(hours=settings.STATE_KEEP_CHANGES_HOURS)


def check_time(when, now=None, field="as_of"):
    """Refused (400, naming `field`) unless `when` lies within the change log's retention."""
    now = now or timezone.now()
    start = retention_start(now)
    if when < start or when > now:
        raise Refused(
            f"{field} must be within the change log's retention: between {start.isoformat()} and now ({now.isoformat()}).",
            field=field,
        )
    return when


def revision_at(cur, when):
    """The last change-log revision committed at or before `when` (0: none kept)."""
    cur.execute(f"SELECT coalesce(max(id), 0) FROM {StateChange._meta.db_table} WHERE created_at <= %s", [when])
    return cur.fetchone()[0]


def values_at(when):
    """{subcloud id: {key: value at `when`}} for every subcloud whose key changed after `when` (one query)."""
    table = StateChange._meta.db_table
    with transaction.atomic(), connection.cursor() as cur:
        sort_in_memory(cur)  # the DISTINCT ON sorts every row after `when`
        cur.execute(
            f"""
            SELECT DISTINCT ON (c.subcloud_id, k.key) c.subcloud_id, k.key,
                   CASE WHEN k.key = 'endpoints'
                        THEN jsonb_strip_nulls(c.changes->'endpoints' || coalesce(c.previous->'endpoints', '{{}}'))
                        ELSE c.previous->k.key END
            FROM {table} c CROSS JOIN unnest(%s::text[]) AS k(key)
            -- the rows after `when`: a range of the primary key, found by a backward scan that stops at `when`
            WHERE c.id > (SELECT coalesce(max(id), 0) FROM {table} WHERE created_at <= %s)
              AND c.subcloud_id IS NOT NULL AND c.changes ? k.key
            ORDER BY c.subcloud_id, k.key, c.id
            """,
            [KEYS, when],
        )
        past = {}
        for sid, key, value in cur.fetchall():
            if value is not None:  # jsonb arrives as text (Django's psycopg loader)
                past.setdefault(sid, {})[key] = json.loads(value) if isinstance(value, str) else value
    return past


def subclouds_as_of(queryset, when):
    """subclouds_json of `queryset` (those registered by `when`) with the values they had at `when`: 3 queries."""
    rows = subclouds_json(queryset.filter(created_at__lte=when))
    past = values_at(when)
    for row in rows:
        then = past.get(row["id"])
        if not then:
            continue
        for key, wire in SCALAR_KEYS.items():
            if key in then:
                row[wire] = then[key]
        if "endpoints" in then:
            row["endpoint_sync_status"] = endpoint_list(then["endpoints"])
            row["sync_status"] = overall_sync_status(then["endpoints"].values())
    return rows


def online_counts(when_from, when_to, points=120):
    """Online subclouds at `points` evenly spaced times in [when_from, when_to], for the pages' timeline.

    Walks back from today's online count over the availability changes after
    `when_from` (one query, summed per slot in SQL), like portal's hourly chart.
    """
    table = StateChange._meta.db_table
    step = max((when_to - when_from) / points, timedelta(seconds=1))
    online_now = Subcloud.objects.filter(availability_status="online").count()
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT floor(extract(epoch FROM created_at - %s) / %s)::int AS slot,
                   sum(CASE changes->>'availability_status' WHEN 'online' THEN 1 ELSE -1 END)
            FROM {table}
            WHERE id > (SELECT coalesce(max(id), 0) FROM {table} WHERE created_at <= %s)
              AND changes ? 'availability_status' AND previous ? 'availability_status'
              AND (changes->>'availability_status' = 'online') <> (previous->>'availability_status' = 'online')
            GROUP BY slot ORDER BY slot
            """,
            [when_from, step.total_seconds(), when_from],
        )
        deltas = dict(cur.fetchall())
    # online at the start of slot i = online now, minus every change from slot i on
    later = sum(deltas.values())
    series = []
    for i in range(points + 1):
        series.append({"at": (when_from + step * i).isoformat(), "online": online_now - later})
        later -= deltas.get(i, 0)
    return series
