"""`manage.py healthcheck [--deep] [--worker NAME | --beat] [--max-age S]`: /healthz from the command line.

The OCF agents of the worker processes run it as their level-10 monitor: the
database and channel-layer round trips from this host, plus the worker's own
database heartbeat (and for a Celery worker a ping through the broker); --beat names
this host's Celery beat as the product does (state.kinds.beat_heartbeat_name), so
the agent does not rebuild the name. Prints the full JSON report (this runs on the
host, with its configuration: no detail is withheld); exit status 0 unless something is down.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from ops.health import run_checks
from state.kinds import beat_heartbeat_name


class Command(BaseCommand):
    help = "Check the database, channel layer (and with --deep the broker and state tables); exit 1 when down."

    def add_arguments(self, parser):
        parser.add_argument("--deep", action="store_true", help="also the state tables, broker and worker heartbeats")
        parser.add_argument("--worker", default="", help="require this worker's database heartbeat to be fresh")
        parser.add_argument("--beat", action="store_true", help="require this host's Celery beat heartbeat to be fresh")
        parser.add_argument("--max-age", type=float, default=30.0, help="seconds a --worker heartbeat may be old")
        parser.add_argument("--celery-ping", action="store_true", help="also ping the --worker Celery node via the broker")

    def handle(self, *args, **options):
        if options["celery_ping"] and not options["worker"]:
            raise CommandError("--celery-ping needs --worker NODE")
        if options["beat"] and options["worker"]:
            raise CommandError("--beat and --worker exclude each other")
        worker = beat_heartbeat_name() if options["beat"] else options["worker"]
        report = run_checks(deep=options["deep"], worker=worker or None, worker_max_age=options["max_age"],
                            celery_ping=options["celery_ping"])
        self.stdout.write(json.dumps(report, sort_keys=True))
        if report["status"] == "down":
            raise CommandError(f"unhealthy: {', '.join(k for k, c in report['checks'].items() if c['status'] == 'down')}")
