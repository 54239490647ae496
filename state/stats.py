"""What the state service has done and who is doing it: for /v1.0/state/stats, /metrics, state_stats and /healthz."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from . import intake
from .kinds import Outcome
from .models import StateUpdate, WorkerHeartbeat

# A worker counts as not alive after this many missed heartbeat intervals.
MISSED_HEARTBEATS = 3


def alive_since(now=None):
    """The oldest heartbeat time that still counts as alive."""
    return (now or timezone.now()) - timedelta(seconds=MISSED_HEARTBEATS * settings.STATE_HEARTBEAT_SECONDS)


def stats():
    """What the state service has done and who is doing it (also for manage.py state_stats)."""
    pending = StateUpdate.objects.filter(applied_at__isnull=True)
    oldest = pending.order_by("id").values_list("accepted_at", flat=True).first()
    # Totals over the retained acceptance log, so they survive worker restarts.
    by_outcome = dict(
        StateUpdate.objects.filter(applied_at__isnull=False).values_list("outcome").annotate(n=Count("id"))
    )
    workers = []
    now = timezone.now()
    fresh_after = alive_since(now)
    for hb in WorkerHeartbeat.objects.order_by("name"):
        age = (now - hb.beat_at).total_seconds()
        workers.append(
            {
                "name": hb.name,
                "kind": hb.kind,
                "hostname": hb.hostname,
                "pid": hb.pid,
                "started_at": hb.started_at.isoformat(),
                "last_heartbeat": hb.beat_at.isoformat(),
                "heartbeat_age_seconds": round(age, 3),
                "alive": hb.beat_at >= fresh_after,
                "applied": hb.applied,
                "noops": hb.noops,
                "failed": hb.failed,
            }
        )
    return {
        "sequence": intake.current_sequence(),
        "pending": pending.count(),
        "oldest_pending_age_seconds": round((now - oldest).total_seconds(), 3) if oldest else None,
        "applied": by_outcome.get(Outcome.APPLIED, 0),
        "noops": by_outcome.get(Outcome.NOOP, 0),
        "failed": by_outcome.get(Outcome.FAILED, 0),
        "workers": workers,
    }


