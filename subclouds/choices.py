"""Status vocabularies shared by models, API, commands, pages and the websocket."""

from django.db import models


class ManagementState(models.TextChoices):
    MANAGED = "managed"
    UNMANAGED = "unmanaged"


class Availability(models.TextChoices):
    ONLINE = "online"
    OFFLINE = "offline"


class DeployStatus(models.TextChoices):
    COMPLETE = "complete"
    SECONDARY = "secondary"
    REHOME_PENDING = "rehome-pending"


class SyncStatus(models.TextChoices):
    IN_SYNC = "in-sync"
    OUT_OF_SYNC = "out-of-sync"
    UNKNOWN = "unknown"


class EndpointType(models.TextChoices):
    PLATFORM = "platform"
    IDENTITY = "identity"
    DC_CERT = "dc-cert"
    FIRMWARE = "firmware"
    KUBERNETES = "kubernetes"
    KUBE_ROOTCA = "kube-rootca"
    SOFTWARE = "software"


ENDPOINT_TYPES = tuple(EndpointType.values)


def overall_sync_status(statuses):
    """A subcloud's listed sync status from its endpoint statuses."""
    statuses = set(statuses)
    if statuses <= {SyncStatus.UNKNOWN}:
        return SyncStatus.UNKNOWN
    if statuses == {SyncStatus.IN_SYNC}:
        return SyncStatus.IN_SYNC
    return SyncStatus.OUT_OF_SYNC


class UpdateApplyType(models.TextChoices):
    PARALLEL = "parallel"
    SERIAL = "serial"


class Severity(models.TextChoices):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"


class IncidentStatus(models.TextChoices):
    """An incident (state/incidents.py) is open until its last affected subcloud is back online."""

    OPEN = "open"
    CLOSED = "closed"
