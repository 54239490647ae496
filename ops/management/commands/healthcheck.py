"""`manage.py healthcheck [--deep] [--worker NAME | --beat] [--max-age S]`: /healthz from the command line.

The OCF agents of the worker processes run it as their level-10 monitor: the
database and channel-layer round trips from this host, plus the worker's own
database heartbeat (and for a Celery worker a ping through the broker); --beat names
this host's Celery beat as the product does (state.kinds.beat_heartbeat_name), so
the agent does not rebuild the name. Prints the full JSON report (this runs on the
host, with its configuration: no detail is withheld).

`--dependencies [--process-report FILE]` checks only what every process shares (database,
channel layer, Celery broker); with the report of a process (daphne's /healthz body; "-" is
stdin), it tells whether what that process has down is down from here too.

Exit status: 0 when nothing is down; 3 (SHARED_OUTAGE) when everything down is a shared
dependency that is down from this host as well (or needs one: a worker's heartbeat row needs
the database, a Celery ping the broker), which no restart can fix, so the OCF monitors pass
with a warning; 1 otherwise (the process is broken).
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from ops.health import run_checks, run_dependency_checks, shared_outage
from state.kinds import beat_heartbeat_name

SHARED_OUTAGE = 3


def _down(report):
    return [name for name, check in report.get("checks", {}).items() if check.get("status") == "down"]


class Command(BaseCommand):
    help = ("Check the database, channel layer (and with --deep the broker and state tables); exit 1 when down, "
            "3 when only shared dependencies are down (from here too).")

    def add_arguments(self, parser):
        parser.add_argument("--deep", action="store_true", help="also the state tables, broker and worker heartbeats")
        parser.add_argument("--worker", default="", help="require this worker's database heartbeat to be fresh")
        parser.add_argument("--beat", action="store_true", help="require this host's Celery beat heartbeat to be fresh")
        parser.add_argument("--max-age", type=float, default=30.0, help="seconds a --worker heartbeat may be old")
        parser.add_argument("--celery-ping", action="store_true", help="also ping the --worker Celery node via the broker")
        parser.add_argument("--dependencies", action="store_true",
                            help="only the shared dependencies: database, channel layer, Celery broker")
        parser.add_argument("--process-report", default="", metavar="FILE",
                            help="with --dependencies: a process's JSON health report ('-': stdin) whose down checks "
                                 "are judged against this host's view")

    def handle(self, *args, **options):
        if options["celery_ping"] and not options["worker"]:
            raise CommandError("--celery-ping needs --worker NODE")
        if options["beat"] and options["worker"]:
            raise CommandError("--beat and --worker exclude each other")
        if options["process_report"] and not options["dependencies"]:
            raise CommandError("--process-report needs --dependencies")
        if options["dependencies"]:
            if options["deep"] or options["worker"] or options["beat"]:
                raise CommandError("--dependencies excludes --deep, --worker and --beat")
            report = run_dependency_checks()
            failed = self._process_failures(options["process_report"]) if options["process_report"] else _down(report)
        else:
            worker = beat_heartbeat_name() if options["beat"] else options["worker"]
            report = run_checks(deep=options["deep"], worker=worker or None, worker_max_age=options["max_age"],
                                celery_ping=options["celery_ping"])
            failed = _down(report)
        outage = shared_outage(failed, report["checks"]) if failed else None
        self.stdout.write(json.dumps(report, sort_keys=True))
        if outage:
            raise CommandError(f"shared dependency down from this host too: {', '.join(outage)} "
                               f"(down: {', '.join(failed)})", returncode=SHARED_OUTAGE)
        if failed:
            raise CommandError(f"unhealthy: {', '.join(failed)}")

    def _process_failures(self, path):
        try:
            text = sys.stdin.read() if path == "-" else open(path).read()
            failed = _down(json.loads(text))
        except (OSError, ValueError, AttributeError) as err:
            raise CommandError(f"--process-report: not a health report: {err}") from None
        if not failed:
            raise CommandError("--process-report: the process reports nothing down")
        return failed
