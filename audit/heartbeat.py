"""Signs of life of the Celery worker and beat, written from their main loops.

Each touches settings.AUDIT_HEARTBEAT_FILE ($DCPORTAL_HEARTBEAT_FILE) (what the OCF monitors check) and upserts
its WorkerHeartbeat row (what /v1.0/state/stats lists) every
DCPORTAL_AUDIT_HEARTBEAT_SECONDS. Both run on the process's own loop (the
worker's event-loop timer, beat's tick), never on a thread: a process that is
stopped or stuck stops beating.
"""

import logging
import os
import socket
from pathlib import Path

from celery import bootsteps
from django.conf import settings

from state.kinds import WorkerKind

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, name, kind):
        from django.utils import timezone

        self.name = name
        self.kind = kind
        self.started_at = timezone.now()
        self.file = Path(settings.AUDIT_HEARTBEAT_FILE) if settings.AUDIT_HEARTBEAT_FILE else None

    def beat(self):
        from django.db import DatabaseError, close_old_connections
        from django.utils import timezone

        from state.models import WorkerHeartbeat

        if self.file:
            self.file.touch()
        try:
            close_old_connections()
            WorkerHeartbeat.objects.update_or_create(
                name=self.name,
                defaults={
                    "kind": self.kind,
                    "hostname": socket.gethostname(),
                    "pid": os.getpid(),
                    "started_at": self.started_at,
                    "beat_at": timezone.now(),
                },
            )
        except DatabaseError as err:
            log.warning("heartbeat row not written: %s", err)


class WorkerHeartbeatStep(bootsteps.StartStopStep):
    """A consumer bootstep: a repeating timer on the worker's event loop (the main process)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.timer = None
        self.heartbeat = None

    def start(self, consumer):
        self.heartbeat = self.heartbeat or Heartbeat(consumer.hostname, WorkerKind.AUDIT)
        self.heartbeat.beat()
        self.timer = consumer.timer.call_repeatedly(settings.AUDIT_HEARTBEAT_SECONDS, self.heartbeat.beat, priority=10)

    def stop(self, consumer):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    shutdown = stop
