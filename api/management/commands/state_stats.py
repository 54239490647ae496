"""`manage.py state_stats`: what GET /v1.0/state/stats answers, for people on the controller."""

from django.core.management.base import BaseCommand

from api.management.output import add_json_option, fields, table, write
from api.state import stats


def summary(data):
    oldest = data["oldest_pending_age_seconds"]
    pending = f"{data['pending']} (oldest {oldest} s)" if oldest is not None else str(data["pending"])
    counters = fields([
        ("accepted (last sequence)", data["sequence"]),
        ("pending", pending),
        ("applied", data["applied"]),
        ("no-ops", data["noops"]),
        ("failed", data["failed"]),
    ])
    if not data["workers"]:
        return f"{counters}\n\nno state worker has sent a heartbeat"
    workers = table(data["workers"], [
        ("worker", lambda w: w["name"]),
        ("host", lambda w: w["hostname"]),
        ("pid", lambda w: w["pid"]),
        ("heartbeat age (s)", lambda w: w["heartbeat_age_seconds"]),
        ("alive", lambda w: "yes" if w["alive"] else "NO"),
        ("applied", lambda w: w["applied"]),
        ("no-ops", lambda w: w["noops"]),
        ("failed", lambda w: w["failed"]),
        ("started", lambda w: w["started_at"]),
    ])
    return f"{counters}\n\n{workers}"


class Command(BaseCommand):
    help = "State service counters (pending, applied, no-ops, failed) and its workers' heartbeats."

    def add_arguments(self, parser):
        add_json_option(parser)

    def handle(self, *args, **options):
        data = stats()
        write(self, options, data, lambda: summary(data))
