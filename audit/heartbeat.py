"""Signs of life of the Celery worker and beat, written from their main loops.

Each touches settings.AUDIT_HEARTBEAT_FILE ($DCPORTAL_HEARTBEAT_FILE) (what the OCF monitors check) and upserts
its WorkerHeartbeat row (what /v1.0/state/stats lists) every
DCPORTAL_AUDIT_HEARTBEAT_SECONDS. Both run on the process's own loop (the
worker's event-loop timer, beat's tick), never on a thread: a process that is
stopped or stuck stops beating. While the worker reconnects to a broker it lost,
its main loop is kombu's retry loop, so it beats from there (HeartbeatConsumer): a
restart could not bring the broker back (docs/ha.md, "Redis failure").
"""

import logging
import os
import socket
import time
from pathlib import Path

from celery import bootsteps
from celery.worker.consumer import Consumer
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
        self.next_beat = 0.0

    def beat_if_due(self):
        """beat() at most every AUDIT_HEARTBEAT_SECONDS, for loops that come round more often."""
        now = time.monotonic()
        if now >= self.next_beat:
            self.beat()
            self.next_beat = now + settings.AUDIT_HEARTBEAT_SECONDS

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
        consumer.dcportal_heartbeat = self.heartbeat
        self.heartbeat.beat()
        self.timer = consumer.timer.call_repeatedly(settings.AUDIT_HEARTBEAT_SECONDS, self.heartbeat.beat, priority=10)

    def stop(self, consumer):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    shutdown = stop


def beating_while_connecting(conn, heartbeat):
    """conn (a kombu Connection), its ensure_connection made to beat every second of its retry loop (kombu calls
    `callback` there): while the broker is down that loop is the process's main loop, and a restart could not
    bring the broker back, so the process must not look hung. A process stuck anywhere else still stops beating."""
    if getattr(conn, "_dcportal_beating", False):
        return conn
    ensure_connection = conn.ensure_connection

    def beating(*args, callback=None, **kwargs):
        def tick():
            heartbeat.beat_if_due()
            if callback is not None:
                callback()

        return ensure_connection(*args, callback=tick, **kwargs)

    conn.ensure_connection = beating
    conn._dcportal_beating = True
    return conn


class HeartbeatConsumer(Consumer):
    """Celery's consumer, beating while it reconnects to a lost broker. Not before its first connection: the OCF
    start waits for a worker that consumes."""

    dcportal_heartbeat = None  # WorkerHeartbeatStep's, once connected

    def ensure_connected(self, conn):
        if self.dcportal_heartbeat is not None:
            beating_while_connecting(conn, self.dcportal_heartbeat)
        return super().ensure_connected(conn)
