"""The beat scheduler: Celery's persistent scheduler, plus the beat process's heartbeat from its tick."""

import time

from celery.beat import PersistentScheduler

from state.kinds import WorkerKind, beat_heartbeat_name

from .heartbeat import Heartbeat, beating_while_connecting


class HeartbeatScheduler(PersistentScheduler):
    def __init__(self, *args, **kwargs):
        self.heartbeat = Heartbeat(beat_heartbeat_name(), WorkerKind.BEAT)
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs):
        self.heartbeat.beat_if_due()
        return min(super().tick(*args, **kwargs), max(0.05, self.heartbeat.next_beat - time.monotonic()))

    def _ensure_connected(self):
        """Celery's (the producer's connection, retried while the broker is down), beating meanwhile."""
        beating_while_connecting(self.connection, self.heartbeat)
        return super()._ensure_connected()
