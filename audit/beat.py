"""The beat scheduler: Celery's persistent scheduler, plus the beat process's heartbeat from its tick."""

import time

from celery.beat import PersistentScheduler
from django.conf import settings

from state.kinds import WorkerKind, beat_heartbeat_name

from .heartbeat import Heartbeat


class HeartbeatScheduler(PersistentScheduler):
    def __init__(self, *args, **kwargs):
        self.heartbeat = Heartbeat(beat_heartbeat_name(), WorkerKind.BEAT)
        self.next_beat = 0.0
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs):
        now = time.monotonic()
        if now >= self.next_beat:
            self.heartbeat.beat()
            self.next_beat = now + settings.AUDIT_HEARTBEAT_SECONDS
        return min(super().tick(*args, **kwargs), max(0.05, self.next_beat - time.monotonic()))
