"""Operator changes of one subcloud (register, manage / unmanage, edit, delete), by the rules.

Called by the REST API, the pages and the admin commands; the rules themselves
are in rules.py. Changes of an existing subcloud run in one transaction under its
row lock, which serialises them with the state workers. Refusals are
subclouds.errors.Refused (and its Conflict / NotFound) and leave everything unchanged.
"""

from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from subclouds import services
from subclouds.choices import ENDPOINT_TYPES, ManagementState, SyncStatus
from subclouds.errors import Conflict, NotFound, Refused
from subclouds.models import DEFAULT_GROUP_ID, EndpointStatus, Subcloud, new_region_name

from . import changelog, rules, store
from .actors import SYSTEM
from .bulk import insert_rows


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
    return register_subclouds([data], actor)[0]


def _names_conflict(items, label):
    """Conflict for the first item whose name or region name is taken (one query over the whole list), else None."""
    keys = [item[key] for item in items for key in ("name", "region_name")]
    taken = {}
    for name, region in Subcloud.objects.filter(Q(name__in=keys) | Q(region_name__in=keys)).values_list("name", "region_name"):
        taken.setdefault(region, (name, "region name"))
        taken[name] = (name, "name")
    for i, item in enumerate(items):
        for key in ("name", "region_name"):
            if item[key] in taken:
                owner, what = taken[item[key]]
                return Conflict(f"Subcloud with {key} {item[key]!r} already exists: it is the {what} of subcloud "
                                f"{owner!r} (names and region names are one namespace)", label(i, key))
    return None


def register_subclouds(items, actor=SYSTEM, label=lambda i, key: key):
    """Register many subclouds (validated RegisterSubcloud data) as register_subcloud does each: all or none.

    A fixed number of statements whatever the count (one check, one INSERT per table, one
    change-log append), so 5,000 register in seconds. The caller refuses duplicates within
    `items` (names and region names are one namespace there too); label(index, key) is the field
    a 409 names (the bulk API: subclouds[3].name). Returns the Subclouds in the order given.
    """
    if not items:
        return []
    rows = []
    for data in items:
        data = dict(data)
        group = data.pop("group_id", None)
        data["group_id"] = group.pk if group else DEFAULT_GROUP_ID
        data["region_name"] = data.get("region_name") or new_region_name()
        rows.append(data)
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [NAMES_LOCK])
        conflict = _names_conflict(rows, label)
        if conflict is not None:
            raise conflict
        subclouds = Subcloud.objects.bulk_create(Subcloud(**data) for data in rows)
        now = timezone.now()
        with connection.cursor() as cur:
            insert_rows(cur, EndpointStatus, [{"subcloud_id": s.pk, "endpoint_type": e, "sync_status": SyncStatus.UNKNOWN}
                                              for s in subclouds for e in ENDPOINT_TYPES])
            changelog.append(cur, [changelog.lifecycle_row(s.pk, s.name, "registered", {"registered": True}, now, actor)
                                   for s in subclouds])
    return subclouds


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
    would change it (delete: by delete_subclouds, all in one transaction, as a DELETE would):
    a refusal (offline, already managed, unknown, deleted meanwhile) is
    reported for that subcloud, with the PATCH's message, and the others go ahead.
    Returns {action, results: [{subcloud, status: done | refused, error_message}], done, refused}.
    """
    if "group" in data:
        targets = [(s.name, s) for s in Subcloud.objects.filter(group=data["group"]).order_by("name")]
    else:
        found = services.find_subclouds(data["subclouds"])
        targets = [(ref, found.get(ref)) for ref in data["subclouds"]]
    if data["action"] == "delete":
        return _bulk_result("delete", _bulk_delete(targets, actor))
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
    return _bulk_result(data["action"], results)


def _bulk_result(action, results):
    done = sum(r["status"] == "done" for r in results)
    return {"action": action, "results": results, "done": done, "refused": len(results) - done}


def _bulk_delete(targets, actor):
    """Delete is set-based (delete_subclouds: one transaction, whatever the count), with the same results as the others."""
    refused = delete_subclouds([s.pk for _, s in targets if s is not None], actor)
    results = []
    for ref, subcloud in targets:
        if subcloud is None or (subcloud.pk in refused and refused[subcloud.pk] is None):
            results.append({"subcloud": ref, "status": "refused", "error_message": f"Subcloud {ref} not found"})
        elif subcloud.pk in refused:
            results.append({"subcloud": ref, "status": "refused", "error_message": refused[subcloud.pk]})
        else:
            results.append({"subcloud": subcloud.name, "status": "done", "error_message": None})
    return results


def delete_subcloud(subcloud_id, actor=SYSTEM):
    """Refused while managed; clears every alarm of the subcloud, then deletes it (endpoints cascade)."""
    with transaction.atomic():
        state = _locked_state(subcloud_id)
        rules.check_delete(state)
        _delete_locked({subcloud_id: state}, actor)


def delete_subclouds(ids, actor=SYSTEM):
    """Delete every subcloud of `ids` the rules let go, in one transaction; returns {id: refusal} for the others.

    A fixed number of statements whatever the count (one lock, one load, one store.save, the
    deletes), so 5,000 unmanaged subclouds go in seconds. An id that does not exist (any more)
    is refused as not found.
    """
    with transaction.atomic():
        states = store.build_states(store.lock_subclouds(ids))
        refused = {sid: None for sid in ids if sid not in states}
        for sid, state in states.items():
            try:
                rules.check_delete(state)
            except Refused as exc:
                refused[sid] = exc.message
        _delete_locked({sid: state for sid, state in states.items() if sid not in refused}, actor)
    return refused


def _delete_locked(states, actor):
    """Clear the alarms of these locked, deletable subclouds, log their deletion, delete them."""
    if not states:
        return
    befores = {sid: state.copy() for sid, state in states.items()}
    for state in states.values():
        rules.clear_all_alarms(state)
    store.save(befores, states, reason="deleted", extra={"deleted": True}, actor=actor)
    _delete_rows(list(states))


def _delete_rows(ids):
    """DELETE the subclouds as Django's on_delete says, one statement per related table whatever the count.

    (Django's own delete sends one DELETE per 100 subclouds.) A relation other than CASCADE or
    SET_NULL, or a cascade more than one level deep, would be refused here or by the foreign key.
    """
    with connection.cursor() as cur:
        relations = [f for f in Subcloud._meta.get_fields(include_hidden=True)  # related_name="+" ones too
                     if f.auto_created and not f.concrete and (f.one_to_many or f.one_to_one)]
        for rel in relations:
            table, column = rel.related_model._meta.db_table, rel.field.column
            if rel.on_delete is models.CASCADE:
                cur.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", [ids])
            elif rel.on_delete is models.SET_NULL:
                cur.execute(f"UPDATE {table} SET {column} = NULL WHERE {column} = ANY(%s)", [ids])
            else:
                raise NotImplementedError(f"{rel.related_model.__name__}.{rel.field.name}: on_delete {rel.on_delete}")
        cur.execute(f"DELETE FROM {Subcloud._meta.db_table} WHERE id = ANY(%s)", [ids])
