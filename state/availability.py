"""Availability history of one subcloud, reconstructed from the change log: periods and uptime over a window.

The log is complete from the retention boundary on (now - DCPORTAL_STATE_KEEP_CHANGES_HOURS: the
workers prune older rows) and from the subcloud's registration on; before the later of the two the
status is "unknown", and unknown time counts neither as up nor as down. One query: the subcloud's
availability changes since that boundary (statechange_by_subcloud index).
"""

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from subclouds.errors import Refused
from subclouds.representation import format_time

from .models import StateChange

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
UNKNOWN = "unknown"


def parse_window(value):
    if value in (None, ""):
        return "24h"
    if value not in WINDOWS:
        raise Refused.at("window", f"must be one of {', '.join(WINDOWS)}")
    return value


def changes(subcloud_id, since):
    """[(time, previous status, new status)] of the subcloud's availability changes after `since`, oldest first."""
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT created_at, previous->>'availability_status', changes->>'availability_status'
                FROM {StateChange._meta.db_table}
                WHERE subcloud_id = %s AND created_at >= %s AND changes ? 'availability_status' ORDER BY id""",
            [subcloud_id, since],
        )
        return cur.fetchall()


def periods(current, known_from, log, start, end):
    """[(status, from, to)] covering start..end, merged: `current` is the status now, `log` from changes().

    Walks backwards from now: each change tells the status before it (its previous value).
    Before known_from the status is unknown.
    """
    spans, until, status = [], end, current
    for when, previous, new in reversed(log):
        if when <= start:
            break
        status = new if new is not None else status
        spans.append((status, max(when, start), until))
        until, status = when, previous
    # The log holds every change since known_from, so the status before its first one held back to there.
    spans.append((status, max(start, known_from), until))
    spans.append((UNKNOWN, start, min(known_from, until)))
    merged = []
    for status, begin, finish in reversed(spans):
        if finish <= begin:
            continue
        if merged and merged[-1][0] == status and merged[-1][2] == begin:
            merged[-1] = (status, merged[-1][1], finish)
        else:
            merged.append((status, begin, finish))
    return merged


def known_from(subcloud, now):
    """From when the log knows this subcloud's status: its registration, or the retention boundary if later."""
    return max(subcloud.created_at, now - timedelta(hours=settings.STATE_KEEP_CHANGES_HOURS))


def availability(subcloud, window="24h", now=None):
    """The API's availability answer: periods, seconds per status and uptime (online / known time; null if none known)."""
    now = now or timezone.now()
    start = now - WINDOWS[window]
    boundary = known_from(subcloud, now)
    spans = periods(subcloud.availability_status, boundary, changes(subcloud.pk, max(start, boundary)), start, now)
    seconds = {}
    for status, begin, finish in spans:
        seconds[status] = seconds.get(status, 0.0) + (finish - begin).total_seconds()
    known = sum(v for k, v in seconds.items() if k != UNKNOWN)
    return {
        "subcloud": subcloud.name,
        "window": window,
        "start": format_time(start),
        "end": format_time(now),
        "known_from": format_time(max(boundary, start)),
        "uptime": round(seconds.get("online", 0.0) / known, 6) if known else None,
        "seconds": {status: round(s, 3) for status, s in sorted(seconds.items())},
        "periods": [{"status": s, "start": format_time(b), "end": format_time(f)} for s, b, f in spans],
    }
