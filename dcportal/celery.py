"""The Celery app (`python -m celery -A dcportal worker|beat`): audits and outbound notifications.

Celery processes run on the settings without the psycopg pool: a pool inherited
across prefork's fork breaks (celery#9953, #10554), so they use persistent
connections with health checks instead (DCPORTAL_DB_POOL_MAX=0). That is decided
here, before Django reads its settings, and only in a process started by the
celery command: every other process imports this module too (dcportal/__init__.py).
"""

import logging
import os
import sys

from celery import Celery, signals


def _is_celery_command():
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return "celery.__main__" in sys.modules or getattr(spec, "name", "") == "celery.__main__"


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dcportal.settings")
if _is_celery_command():
    os.environ["DCPORTAL_DB_POOL_MAX"] = "0"

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


_install_worker_heartbeat()
