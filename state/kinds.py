"""The state service's own vocabularies: kinds of accepted updates, their outcomes, and effects.

Kept apart from models.py so that rules.py (no I/O) can name them.
"""

import socket

from django.db import models

from subclouds.choices import SyncStatus

# The defaults of an update's optional fields, as dcmanager has them: intake stores them
# in every payload, the rules take them as keyword defaults, the OpenAPI schema shows them.
DEFAULT_SYNC_STATUS = SyncStatus.OUT_OF_SYNC
DEFAULT_ALARMABLE = True
DEFAULT_UPDATE_STATE_ONLY = False


class UpdateKind(models.TextChoices):
    ENDPOINT = "endpoint"
    AVAILABILITY = "availability"
    BULK = "bulk"


class Outcome(models.TextChoices):
    APPLIED = "applied"
    NOOP = "noop"
    FAILED = "failed"


class OutboxKind(models.TextChoices):
    DCORCH = "dcorch", "tell dcorch the management state / availability"
    CERTMON = "certmon", "subcloud online notice for the certificate monitor"
    AUDIT_SUBCLOUD = "audit-subcloud", "full audit of one subcloud"
    AUDIT_ALL = "audit-all", "one audit kind for every subcloud"


class WorkerKind(models.TextChoices):
    """Who writes a WorkerHeartbeat row."""

    STATE = "state"
    AUDIT = "audit"
    BEAT = "beat"


def beat_heartbeat_name(host=None):
    """The WorkerHeartbeat name of the Celery beat on `host` (this one by default): written by audit/beat.py,
    checked by `manage.py healthcheck --beat` (the OCF agent dcportal-audit-beat's deep monitor)."""
    return f"dcportal-audit-beat@{host or socket.gethostname()}"


class Source(models.TextChoices):
    """Where a change came from (StateUpdate.source, StateChange.source); labels for pages are in portal/vocabulary.py."""

    REST = "rest"  # an operator's REST call with a token
    PAGE = "page"  # the portal pages (a session)
    COMMAND = "command"  # an admin command on the controller (manage.py subcloud ...)
    AUDIT = "audit"  # the periodic audit
    TRIGGER = "trigger"  # an audit triggered by a change (going online, identity leaving unknown, manage)
    DCORCH = "dcorch"
    CERTMON = "certmon"  # the certificate monitor
    SYSTEM = "system"  # dcportal itself, or a caller that names nobody
