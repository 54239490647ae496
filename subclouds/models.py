"""The subcloud inventory: groups, subclouds, endpoint sync status, faults."""

import secrets
import uuid

from django.db import models
from django.db.models import F, Func, Q, Value
from django.db.models.functions import Length, Lower

from .choices import (
    Availability,
    DeployStatus,
    EndpointType,
    ManagementState,
    Severity,
    SyncStatus,
    UpdateApplyType,
)

DEFAULT_GROUP_ID = 1
DEFAULT_GROUP_NAME = "Default"


class SubcloudGroup(models.Model):
    name = models.CharField(max_length=255, unique=True)
    description = models.CharField(max_length=255, blank=True, default="")
    update_apply_type = models.CharField(
        max_length=16, choices=UpdateApplyType.choices, default=UpdateApplyType.PARALLEL
    )
    max_parallel_subclouds = models.PositiveIntegerField(default=2)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.name

    @property
    def is_default(self):
        return self.pk == DEFAULT_GROUP_ID


def new_region_name():
    """32 hex characters, as dcmanager generates; never digits only, which would read as an id."""
    while (name := secrets.token_hex(16)).isdigit():
        pass
    return name


class Subcloud(models.Model):
    name = models.CharField(max_length=255, unique=True)
    region_name = models.CharField(max_length=255, unique=True, default=new_region_name)
    description = models.CharField(max_length=255, blank=True, null=True)
    location = models.CharField(max_length=255, blank=True, null=True)
    software_version = models.CharField(max_length=255, blank=True, null=True)
    management_state = models.CharField(
        max_length=16, choices=ManagementState.choices, default=ManagementState.UNMANAGED
    )
    availability_status = models.CharField(
        max_length=16, choices=Availability.choices, default=Availability.OFFLINE
    )
    deploy_status = models.CharField(max_length=32, default=DeployStatus.COMPLETE)
    error_description = models.CharField(max_length=2048, default="No errors present")
    audit_fail_count = models.PositiveIntegerField(default=0)
    first_identity_sync_complete = models.BooleanField(default=False)
    openstack_installed = models.BooleanField(default=False)
    group = models.ForeignKey(
        SubcloudGroup, on_delete=models.PROTECT, related_name="subclouds", default=DEFAULT_GROUP_ID
    )
    management_subnet = models.CharField(max_length=255, blank=True, null=True)
    management_start_ip = models.CharField(max_length=64, blank=True, null=True)
    management_end_ip = models.CharField(max_length=64, blank=True, null=True)
    management_gateway_ip = models.CharField(max_length=64, blank=True, null=True)
    systemcontroller_gateway_ip = models.CharField(max_length=64, blank=True, null=True)
    # What the audit probes; a subcloud without one is never probed.
    audit_url = models.URLField(max_length=1024, blank=True, null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The pages' natural name order (portal/window.py _NATURAL, the same expressions): a window sorted by
            # name reads its 100 rows from here at any depth instead of sorting 50,000 (~70 ms) on every scroll,
            # filter and sort. Only the name is indexed, which state updates never change (HOT updates stay).
            models.Index(Lower(Func(F("name"), Value("[0-9]+$"), Value(""), function="regexp_replace")),
                         Length("name"), "name", name="subcloud_natural_name"),
        ]

    def __str__(self):
        return self.name


class EndpointStatus(models.Model):
    """One row per (subcloud, endpoint type); all seven exist from registration on."""

    subcloud = models.ForeignKey(Subcloud, on_delete=models.CASCADE, related_name="endpoints")
    endpoint_type = models.CharField(max_length=32, choices=EndpointType.choices)
    sync_status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.UNKNOWN)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["subcloud_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["subcloud", "endpoint_type"], name="endpoint_unique_per_subcloud")
        ]


class Fault(models.Model):
    """An alarm; active while cleared_at is null, history afterwards."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    alarm_id = models.CharField(max_length=16)
    entity_instance_id = models.CharField(max_length=512)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    reason_text = models.CharField(max_length=1024)
    service_affecting = models.BooleanField(default=False)
    # Kept after the subcloud is deleted: history outlives it.
    subcloud = models.ForeignKey(Subcloud, on_delete=models.SET_NULL, null=True, related_name="faults")
    subcloud_name = models.CharField(max_length=255)
    raised_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            # Raising an already-active alarm is a no-op (INSERT ... ON CONFLICT DO NOTHING).
            models.UniqueConstraint(
                fields=["alarm_id", "entity_instance_id"],
                condition=Q(cleared_at__isnull=True),
                name="fault_active_unique",
            )
        ]
        indexes = [
            models.Index(fields=["subcloud"], condition=Q(cleared_at__isnull=True), name="fault_active_by_subcloud")
        ]
