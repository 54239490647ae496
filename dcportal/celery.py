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


def _install_worker_heartbeat():
    from audit.heartbeat import WorkerHeartbeatStep

    app.steps["consumer"].add(WorkerHeartbeatStep)
    app.conf.worker_consumer = "audit.heartbeat:HeartbeatConsumer"  # beats while it reconnects to the broker


_install_worker_heartbeat()
