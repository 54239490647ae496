"""The state service's durable tables.

StateUpdate is the intake record (its id is the acceptance `sequence`);
StateChange is the state-change log (its id is the websocket `revision`);
Outbox holds effects that leave the database, written in the same transaction.
"""

from django.db import models
from django.db.models import Q

from subclouds.models import Subcloud

from .kinds import OutboxKind, Outcome, Source, UpdateKind, WorkerKind

__all__ = ["Outbox", "OutboxKind", "Outcome", "Source", "StateChange", "StateUpdate", "UpdateKind", "WorkerHeartbeat"]


class ActorColumns(models.Model):
    """Who did it (state/actors.py): user, source, the credential's id (never the secret), client address.

    db_default too, so raw INSERTs that name no actor still work (they record "system").
    """

    actor = models.CharField(max_length=150, blank=True, default="", db_default="")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.SYSTEM, db_default=Source.SYSTEM)
    actor_via = models.CharField(max_length=64, blank=True, default="", db_default="")
    actor_address = models.CharField(max_length=45, blank=True, default="", db_default="")

    class Meta:
        abstract = True


class StateUpdate(ActorColumns):
    """One accepted update of one subcloud. Pending while applied_at is null."""

    subcloud = models.ForeignKey(Subcloud, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=UpdateKind.choices)
    payload = models.JSONField()
    accepted_at = models.DateTimeField()
    applied_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, null=True, blank=True)
    worker = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        indexes = [
            # Read by the state workers' claim query (state/worker.py).
            models.Index(fields=["subcloud", "id"], condition=Q(applied_at__isnull=True), name="stateupdate_pending"),
        ]


class StateChange(ActorColumns):
    """One committed change of one subcloud: history, websocket feed, recovery point."""

    # No index of its own: statechange_by_subcloud (subcloud, -id) serves the foreign key's lookups, and one
    # index less to maintain on every change written.
    subcloud = models.ForeignKey(Subcloud, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False)
    subcloud_name = models.CharField(max_length=255)
    # {"availability-status": "online", ...}: the new values of the changed keys.
    changes = models.JSONField(default=dict)
    # Previous values of the same keys, for history pages.
    previous = models.JSONField(default=dict)
    faults_raised = models.JSONField(default=list)
    faults_cleared = models.JSONField(default=list)
    sequence = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        # No index on the actor columns: every index is paid by the worker's INSERT; the events
        # page reads the log newest first by id and stops at a page (state/events.py).
        indexes = [models.Index(fields=["subcloud", "-id"], name="statechange_by_subcloud")]



class Outbox(models.Model):
    """An effect leaving the database; delivered (at least once) after commit."""

    kind = models.CharField(max_length=32, choices=OutboxKind.choices)
    subcloud = models.ForeignKey(Subcloud, on_delete=models.SET_NULL, null=True, related_name="+")
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            # Read by the outbound deliverer.
            models.Index(fields=["kind", "id"], condition=Q(delivered_at__isnull=True), name="outbox_pending"),
        ]


class WorkerHeartbeat(models.Model):
    """Last sign of life of a worker process, written from its main loop."""

    name = models.CharField(max_length=128, unique=True)
    kind = models.CharField(max_length=32, default=WorkerKind.STATE)
    hostname = models.CharField(max_length=255, default="")
    pid = models.IntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()
    applied = models.BigIntegerField(default=0)
    noops = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    # Apply latency histogram (cumulative since start), for /metrics.
    latency = models.JSONField(default=dict)
