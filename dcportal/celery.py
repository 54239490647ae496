"""The Celery app (`python -m celery -A dcportal worker|beat`): audits and outbound notifications.

Celery processes run without the psycopg pool (settings.py decides that from the
command line, see DB_POOL_MAX). Only they import this module (`-A dcportal` finds
it as dcportal.celery): tasks are sent from the audit's own tasks, never from the
API or the state workers, and the OCF monitor's broker ping (ops/health.py) builds
a client of its own from the same settings.
"""

import logging
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dcportal.settings")

app = Celery("dcportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["audit"])


@signals.after_setup_logger.connect
def _quiet_per_task_lines(**kwargs):
    """At INFO, Celery logs every task received / succeeded / sent: several lines a second with the outbox poll."""
    for name in ("celery.app.trace", "celery.worker.strategy", "celery.beat"):
        logging.getLogger(name).setLevel(logging.WARNING)


def lower_priority(nice):
    """Run this process, and the pool it forks, at `nice` (DCPORTAL_AUDIT_NICE): below the state path.

    With Linux's autogroup scheduling a nice value only ranks a process against the others of its session
    (measured: nice 10 in a session of its own still got half of a shared core), so a session leader (`./dev
    up` and the OCF agents start each process in a session of its own) also sets its session's autogroup
    nice. A process that shares its session leaves the session's value alone: it would lower its neighbours.
    """
    if nice <= os.nice(0):
        return
    os.nice(nice - os.nice(0))
    if os.getsid(0) == os.getpid():
        try:
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(nice))
        except OSError:  # no autogroup scheduling (kernel option off, or not Linux): the nice value alone
            pass


@signals.worker_init.connect
def _below_the_state_path(**kwargs):
    from django.conf import settings

    lower_priority(settings.AUDIT_NICE)


def _install_worker_heartbeat():
    from audit.heartbeat import WorkerHeartbeatStep

    app.steps["consumer"].add(WorkerHeartbeatStep)
    app.conf.worker_consumer = "audit.heartbeat:HeartbeatConsumer"  # beats while it reconnects to the broker


_install_worker_heartbeat()
