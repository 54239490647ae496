"""Operator changes of one subcloud (register, manage / unmanage, edit, delete), by the rules.

Called by the REST API, the pages and the admin commands; the rules themselves
are in rules.py. Changes of an existing subcloud run in one transaction under its
row lock, which serialises them with the state workers. Refusals are
subclouds.errors.Refused (and its Conflict / NotFound) and leave everything unchanged.
"""

from django.db import connection, transaction
from django.db.models import Q

from subclouds import services
from subclouds.choices import ENDPOINT_TYPES, ManagementState
from subclouds.errors import Conflict, NotFound, Refused
from subclouds.models import DEFAULT_GROUP_ID, EndpointStatus, Subcloud, new_region_name

from . import changelog, rules, store
from .actors import SYSTEM


def _locked_state(subcloud_id):
    states = store.build_states(store.lock_subclouds([subcloud_id]))
    if subcloud_id not in states:
        raise Subcloud.DoesNotExist(subcloud_id)
    return states[subcloud_id]


# Subcloud names and region names are one namespace: every lookup and state update
# addressed by "name or region" must find exactly one subcloud. Two registrations that
# both checked before either committed could still collide across the two unique
# columns, so the check and the INSERT run under this lock, one registration at a time.
NAMES_LOCK = 0x6463_6E6D  # "dcnm"


def register_subcloud(data, actor=SYSTEM):
    """Register an existing subcloud: unmanaged, offline, complete, every endpoint unknown, no alarm.

    409 when its name or region name is any subcloud's name or region name.
    """
    data = dict(data)
    group = data.pop("group_id", None)
    data["group_id"] = group.pk if group else DEFAULT_GROUP_ID
    data["region_name"] = data.get("region_name") or new_region_name()
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [NAMES_LOCK])
        for key in ("name", "region_name"):
            taken = Subcloud.objects.filter(Q(name=data[key]) | Q(region_name=data[key])).first()
            if taken is not None:
                what = "name" if taken.name == data[key] else "region name"
                raise Conflict(f"Subcloud with {key} {data[key]!r} already exists: it is the {what} of subcloud "
                               f"{taken.name!r} (names and region names are one namespace)", key)
        subcloud = Subcloud.objects.create(**data)
        EndpointStatus.objects.bulk_create(EndpointStatus(subcloud=subcloud, endpoint_type=e) for e in ENDPOINT_TYPES)
        changelog.log_lifecycle(subcloud.pk, subcloud.name, "registered", {"registered": True}, actor)
    return subcloud


def update(subcloud, data, actor=SYSTEM):
    """A validated PATCH (subclouds.inputs.UpdateSubcloud) of `subcloud`; returns it refreshed."""
    fields = {k: v for k, v in data.items() if k in ("description", "location")}
    if "group_id" in data:
        fields["group"] = data["group_id"]
    update_subcloud(subcloud.pk, management_state=data.get("management_state"), force=data.get("force", False),
                    fields=fields, actor=actor)
    subcloud.refresh_from_db()
    return subcloud


def update_subcloud(subcloud_id, management_state=None, force=False, fields=None, actor=SYSTEM):
    """Manage / unmanage and edit plain fields together; a refusal leaves everything unchanged."""
    fields = fields or {}
    with transaction.atomic():
        state = _locked_state(subcloud_id)
        before = state.copy()
        if management_state == ManagementState.MANAGED:
            rules.manage(state, force=force)
        elif management_state == ManagementState.UNMANAGED:
            rules.unmanage(state)
        changes = store.save({subcloud_id: before}, {subcloud_id: state}, reason=management_state or "edit",
                             actor=actor)
        if fields:
            changelog.save_fields(subcloud_id, state.name, fields, actor)
    return changes


_BULK_STATES = {"manage": ManagementState.MANAGED, "unmanage": ManagementState.UNMANAGED}


def bulk_action(data, actor=SYSTEM):
    """A validated subclouds.inputs.BulkAction: the action on each selected subcloud, with a result for each.

    Each subcloud is changed by update_subcloud, in its own transaction, exactly as a PATCH
    would change it: a refusal (offline, already managed, unknown, deleted meanwhile) is
    reported for that subcloud, with the PATCH's message, and the others go ahead.
    Returns {action, results: [{subcloud, status: done | refused, error_message}], done, refused}.
    """
    if "group" in data:
        targets = [(s.name, s) for s in Subcloud.objects.filter(group=data["group"]).order_by("name")]
    else:
        found = services.find_subclouds(data["subclouds"])
        targets = [(ref, found.get(ref)) for ref in data["subclouds"]]
    results = []
    for ref, subcloud in targets:
        try:
            if subcloud is None:
                raise NotFound(f"Subcloud {ref} not found")
            if data["action"] == "move":
                update_subcloud(subcloud.pk, fields={"group": data["to_group"]}, actor=actor)
            else:
                update_subcloud(subcloud.pk, management_state=_BULK_STATES[data["action"]], force=data.get("force", False),
                                actor=actor)
        except Subcloud.DoesNotExist:  # deleted since it was looked up
            results.append({"subcloud": ref, "status": "refused", "error_message": f"Subcloud {ref} not found"})
        except Refused as exc:
            results.append({"subcloud": ref, "status": "refused", "error_message": exc.message})
        else:
            results.append({"subcloud": subcloud.name, "status": "done", "error_message": None})
    done = sum(r["status"] == "done" for r in results)
    return {"action": data["action"], "results": results, "done": done, "refused": len(results) - done}


def delete_subcloud(subcloud_id, actor=SYSTEM):
    """Refused while managed; clears every alarm of the subcloud, then deletes it (endpoints cascade)."""
    with transaction.atomic():
        state = _locked_state(subcloud_id)
        rules.check_delete(state)
        before = state.copy()
        rules.clear_all_alarms(state)
        store.save({subcloud_id: before}, {subcloud_id: state}, reason="deleted", extra={"deleted": True},
                   actor=actor)
        Subcloud.objects.filter(pk=subcloud_id).delete()
