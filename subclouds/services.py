"""Inventory lookups and subcloud-group operations, shared by the REST API, the pages and the admin commands.

Views and commands validate with subclouds/inputs.py, then call these. Changes
of a subcloud itself (register, manage / unmanage, edit, delete) go through the
state rules: state/operations.py.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from .errors import Conflict, NotFound, Refused
from .inputs import is_id, storable
from .models import DEFAULT_GROUP_ID, Subcloud, SubcloudGroup
from .names import RESERVED_GROUP_NAMES, is_reserved


def get_subcloud(ref):
    """By id (digits), name or region name; NotFound otherwise."""
    ref = str(ref)
    if not storable(ref):  # cannot be a name: never reaches the database
        raise NotFound(f"Subcloud {ref!r} not found")
    found = None
    if is_id(ref):
        found = Subcloud.objects.filter(pk=int(ref)).first()
    found = found or Subcloud.objects.filter(name=ref).first() or Subcloud.objects.filter(region_name=ref).first()
    if found is None:
        raise NotFound(f"Subcloud {ref} not found")
    return found


def find_subclouds(refs):
    """{ref: Subcloud} for the refs (id, name or region name) that exist, in three queries whatever their number.

    The bulk actions' lookup: a ref matches as get_subcloud() would match it (id first, then name, then region).
    """
    refs = [str(r) for r in refs if storable(str(r))]
    by_id = {str(s.pk): s for s in Subcloud.objects.filter(pk__in=[int(r) for r in refs if is_id(r) and len(r) < 19])}
    by_name = {s.name: s for s in Subcloud.objects.filter(name__in=refs)}
    by_region = {s.region_name: s for s in Subcloud.objects.filter(region_name__in=refs)}
    found = {}
    for ref in refs:
        subcloud = by_id.get(ref) or by_name.get(ref) or by_region.get(ref)
        if subcloud is not None:
            found[ref] = subcloud
    return found


def get_group(ref):
    ref = str(ref)
    if not storable(ref):
        raise NotFound(f"Subcloud group {ref!r} not found")
    found = SubcloudGroup.objects.filter(pk=int(ref)).first() if is_id(ref) else None
    found = found or SubcloudGroup.objects.filter(name=ref).first()
    if found is None:
        raise NotFound(f"Subcloud group {ref} not found")
    return found


def check_group_name_free(name, group=None):
    """409 for a taken name, and for any spelling of Default (dcmanager reserves it case-insensitively)."""
    if is_reserved(name, RESERVED_GROUP_NAMES) and not (group and group.is_default and name == group.name):
        raise Conflict(f"Subcloud group {name!r} already exists: the name is reserved for the Default group", "name")
    if SubcloudGroup.objects.filter(name=name).exclude(pk=group.pk if group else None).exists():
        raise Conflict(f"Subcloud group {name!r} already exists", "name")


def create_group(data):
    check_group_name_free(data["name"])
    try:
        return SubcloudGroup.objects.create(**data)
    except IntegrityError:
        raise Conflict(f"Subcloud group {data['name']!r} already exists", "name") from None


def update_group(group, data):
    if group.is_default and "name" in data and data["name"] != group.name:
        raise Refused("The Default group cannot be renamed", "name")
    if "name" in data:
        check_group_name_free(data["name"], group)
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
