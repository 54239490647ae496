"""Inventory operations shared by the REST API and the admin commands.

Views and commands validate with subclouds/inputs.py, then call these; state
rules (manage, unmanage, delete) are applied through state/operations.py.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from state import operations, store

from .choices import ENDPOINT_TYPES
from .inputs import storable
from .models import DEFAULT_GROUP_ID, EndpointStatus, Subcloud, SubcloudGroup


class NotFound(Exception):
    pass


class Conflict(Exception):
    def __init__(self, message, field):
        super().__init__(message)
        self.message = message
        self.field = field


class Refused(Exception):
    """A request the rules refuse (400)."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


def get_subcloud(ref):
    """By id (digits), name or region name; NotFound otherwise."""
    ref = str(ref)
    if not storable(ref):  # cannot be a name: never reaches the database
        raise NotFound(f"Subcloud {ref!r} not found")
    found = None
    if ref.isdigit():
        found = Subcloud.objects.filter(pk=int(ref)).first()
    found = found or Subcloud.objects.filter(name=ref).first() or Subcloud.objects.filter(region_name=ref).first()
    if found is None:
        raise NotFound(f"Subcloud {ref} not found")
    return found


def get_group(ref):
    ref = str(ref)
    if not storable(ref):
        raise NotFound(f"Subcloud group {ref!r} not found")
    found = SubcloudGroup.objects.filter(pk=int(ref)).first() if ref.isdigit() else None
    found = found or SubcloudGroup.objects.filter(name=ref).first()
    if found is None:
        raise NotFound(f"Subcloud group {ref} not found")
    return found


def register_subcloud(data):
    """Register an existing subcloud: unmanaged, offline, complete, every endpoint unknown, no alarm."""
    data = dict(data)
    group = data.pop("group_id", None)
    data["group_id"] = group.pk if group else DEFAULT_GROUP_ID
    for key, label in (("name", "name"), ("region_name", "region_name")):
        if key in data and Subcloud.objects.filter(**{key: data[key]}).exists():
            raise Conflict(f"Subcloud with {label} {data[key]!r} already exists", label)
    try:
        with transaction.atomic():
            subcloud = Subcloud.objects.create(**data)
            EndpointStatus.objects.bulk_create(
                EndpointStatus(subcloud=subcloud, endpoint_type=e) for e in ENDPOINT_TYPES
            )
            store.log_lifecycle(subcloud.pk, subcloud.name, "registered", {"registered": True})
    except IntegrityError:  # a concurrent registration won the race
        raise Conflict(f"Subcloud {data['name']!r} or its region name already exists", "name") from None
    return subcloud


def update_subcloud(subcloud, data):
    from state.rules import RuleViolation

    fields = {k: v for k, v in data.items() if k in ("description", "location")}
    if "group_id" in data:
        fields["group"] = data["group_id"]
    try:
        operations.update_subcloud(
            subcloud.pk, management_state=data.get("management_state"), force=data.get("force", False), fields=fields
        )
    except RuleViolation as err:
        raise Refused(err.message, err.field) from None
    subcloud.refresh_from_db()
    return subcloud


def delete_subcloud(subcloud):
    from state.rules import RuleViolation

    try:
        operations.delete_subcloud(subcloud.pk)
    except RuleViolation as err:
        raise Refused(err.message, "management-state") from None


def create_group(data):
    if SubcloudGroup.objects.filter(name=data["name"]).exists():
        raise Conflict(f"Subcloud group {data['name']!r} already exists", "name")
    try:
        return SubcloudGroup.objects.create(**data)
    except IntegrityError:
        raise Conflict(f"Subcloud group {data['name']!r} already exists", "name") from None


def update_group(group, data):
    if group.is_default and "name" in data and data["name"] != group.name:
        raise Refused("The Default group cannot be renamed", "name")
    if "name" in data and SubcloudGroup.objects.filter(name=data["name"]).exclude(pk=group.pk).exists():
        raise Conflict(f"Subcloud group {data['name']!r} already exists", "name")
    for key, value in data.items():
        setattr(group, key, value)
    group.updated_at = timezone.now()
    group.save()
    return group


def delete_group(group):
    """Refused for Default; the group's subclouds move to Default."""
    if group.is_default:
        raise Refused("The Default group cannot be deleted")
    with transaction.atomic():
        Subcloud.objects.filter(group=group).update(group_id=DEFAULT_GROUP_ID, updated_at=timezone.now())
        group.delete()
