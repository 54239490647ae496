"""Load subcloud states (locked) and write back only what the rules changed.

Every function here runs inside the caller's transaction and costs a fixed
number of statements whatever the number of subclouds: this is what keeps a
bulk update at a small constant number of round trips.
"""

from datetime import UTC

from django.db import connection
from django.utils import timezone

from subclouds.models import EndpointStatus, Fault, Subcloud

from .models import Outbox, StateChange
from .rules import SubcloudState

# Serialises the writers of the state-change log so that revision (id) order
# is commit order: a websocket client that has seen revision R has seen every
# change below R. Taken last in a transaction, held only until its commit.
CHANGE_LOG_LOCK = 0x6463_6C6F  # "dclo"

KEY_OF_FIELD = {
    "management_state": "management-state",
    "availability_status": "availability-status",
    "audit_fail_count": "audit-fail-count",
    "first_identity_sync_complete": "first-identity-sync-complete",
}

_SUBCLOUD_COLUMNS = ("id", "name", "region_name", "deploy_status", *SubcloudState.FIELDS)


def _table(model):
    return model._meta.db_table


def lock_pending(limit):
    """Lock up to `limit` subclouds that have pending updates, skipping ones other workers hold.

    FOR NO KEY UPDATE (not FOR UPDATE) so that intake inserting updates for a
    locked subcloud (a foreign-key check, FOR KEY SHARE) is never blocked.
    """
    from .models import StateUpdate

    sql = f"""
        SELECT {", ".join("s." + c for c in _SUBCLOUD_COLUMNS)}
        FROM {_table(Subcloud)} s
        WHERE EXISTS (SELECT 1 FROM {_table(StateUpdate)} u
                      WHERE u.subcloud_id = s.id AND u.applied_at IS NULL)
        ORDER BY s.id
        LIMIT %s
        FOR NO KEY UPDATE OF s SKIP LOCKED
    """
    with connection.cursor() as cur:
        cur.execute(sql, [limit])
        return cur.fetchall()


def lock_subclouds(ids):
    """Lock the given subclouds (waiting for them), in id order to avoid deadlocks."""
    sql = f"""
        SELECT {", ".join(_SUBCLOUD_COLUMNS)} FROM {_table(Subcloud)}
        WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE
    """
    with connection.cursor() as cur:
        cur.execute(sql, [list(ids)])
        return cur.fetchall()


def build_states(rows):
    """SubcloudStates for locked subcloud rows, with endpoints and active alarms (2 queries)."""
    states = {}
    for row in rows:
        values = dict(zip(_SUBCLOUD_COLUMNS, row))
        states[values["id"]] = SubcloudState(**values, endpoints={})
    if not states:
        return states
    ids = list(states)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT subcloud_id, endpoint_type, sync_status FROM {_table(EndpointStatus)} "
            "WHERE subcloud_id = ANY(%s) ORDER BY id",
            [ids],
        )
        for subcloud_id, endpoint_type, sync_status in cur.fetchall():
            states[subcloud_id].endpoints[endpoint_type] = sync_status
        cur.execute(
            f"SELECT subcloud_id, alarm_id, entity_instance_id FROM {_table(Fault)} "
            "WHERE subcloud_id = ANY(%s) AND cleared_at IS NULL",
            [ids],
        )
        for subcloud_id, alarm_id, entity in cur.fetchall():
            states[subcloud_id].alarms.add((alarm_id, entity))
    return states


def save(originals, states, *, reason, sequences=None):
    """Write the difference between originals and states; returns the StateChange rows written.

    originals / states: {subcloud id: SubcloudState}. sequences: {subcloud id:
    highest applied sequence}, recorded in the change log.
    """
    now = timezone.now()
    subcloud_rows, endpoint_rows, raises, clears, changes = [], [], [], [], []
    outbox = []
    for sid, state in states.items():
        before = originals[sid]
        changed = {KEY_OF_FIELD[f]: getattr(state, f) for f in SubcloudState.FIELDS if getattr(state, f) != getattr(before, f)}
        previous = {KEY_OF_FIELD[f]: getattr(before, f) for f in SubcloudState.FIELDS if getattr(state, f) != getattr(before, f)}
        if changed:
            subcloud_rows.append(state)
        endpoint_changes = {e: s for e, s in state.endpoints.items() if before.endpoints.get(e) != s}
        for endpoint_type, sync_status in endpoint_changes.items():
            endpoint_rows.append((sid, endpoint_type, sync_status))
        if endpoint_changes:
            changed["endpoint_sync_status"] = [
                {"endpoint_type": e, "sync_status": s} for e, s in state.endpoints.items()
            ]
            previous["endpoint_sync_status"] = {e: before.endpoints.get(e) for e in endpoint_changes}
        raised = [state.raised[k] for k in state.alarms - before.alarms]
        cleared = before.alarms - state.alarms
        raises.extend((state, alarm) for alarm in raised)
        clears.extend((sid, alarm_id, entity) for alarm_id, entity in cleared)
        for (kind, _key), payload in state.effects.items():
            if kind == "dcorch":
                payload = {
                    "subcloud": state.name,
                    "region_name": state.region_name,
                    "management_state": state.management_state,
                    "availability_status": state.availability_status,
                }
            outbox.append(Outbox(kind=kind, subcloud_id=sid, payload=payload, created_at=now))
        if changed or raised or cleared:
            changes.append(
                StateChange(
                    subcloud_id=sid,
                    subcloud_name=state.name,
                    changes=changed,
                    previous=previous,
                    sequence=(sequences or {}).get(sid),
                    reason=reason,
                    created_at=now,
                )
            )
    with connection.cursor() as cur:
        if subcloud_rows:
            cur.execute(
                f"""UPDATE {_table(Subcloud)} s SET management_state = v.ms, availability_status = v.av,
                        audit_fail_count = v.afc, first_identity_sync_complete = v.fisc, updated_at = %s
                    FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::int[], %s::bool[]) AS v(id, ms, av, afc, fisc)
                    WHERE s.id = v.id""",
                [
                    now,
                    [s.id for s in subcloud_rows],
                    [s.management_state for s in subcloud_rows],
                    [s.availability_status for s in subcloud_rows],
                    [s.audit_fail_count for s in subcloud_rows],
                    [s.first_identity_sync_complete for s in subcloud_rows],
                ],
            )
        if endpoint_rows:
            sids, types, statuses = zip(*endpoint_rows)
            cur.execute(
                f"""UPDATE {_table(EndpointStatus)} e SET sync_status = v.st, updated_at = %s
                    FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS v(sid, et, st)
                    WHERE e.subcloud_id = v.sid AND e.endpoint_type = v.et""",
                [now, list(sids), list(types), list(statuses)],
            )
        cleared_faults = {}
        if clears:
            sids, alarm_ids, entities = zip(*clears)
            cur.execute(
                f"""UPDATE {_table(Fault)} f SET cleared_at = %s
                    FROM unnest(%s::text[], %s::text[]) AS v(alarm_id, entity)
                    WHERE f.cleared_at IS NULL AND f.alarm_id = v.alarm_id AND f.entity_instance_id = v.entity
                    RETURNING f.subcloud_id, f.uuid, f.alarm_id, f.entity_instance_id""",
                [now, list(alarm_ids), list(entities)],
            )
            for sid, uuid, alarm_id, entity in cur.fetchall():
                cleared_faults.setdefault(sid, []).append(
                    {"uuid": str(uuid), "alarm_id": alarm_id, "entity_instance_id": entity}
                )
        raised_faults = {}
        if raises:
            faults = [
                Fault(
                    alarm_id=a.alarm_id,
                    entity_instance_id=a.entity_instance_id,
                    severity=a.severity,
                    reason_text=a.reason_text,
                    service_affecting=a.service_affecting,
                    subcloud_id=state.id,
                    subcloud_name=state.name,
                    raised_at=now,
                )
                for state, a in raises
            ]
            # The row lock makes conflicts impossible for this subcloud; ON
            # CONFLICT keeps a raise of an already-active alarm a no-op anyway.
            Fault.objects.bulk_create(faults, ignore_conflicts=True)
            for fault in faults:
                raised_faults.setdefault(fault.subcloud_id, []).append(fault_json(fault))
        if outbox:
            Outbox.objects.bulk_create(outbox)
        if changes:
            for change in changes:
                change.faults_raised = raised_faults.get(change.subcloud_id, [])
                change.faults_cleared = cleared_faults.get(change.subcloud_id, [])
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [CHANGE_LOG_LOCK])
            StateChange.objects.bulk_create(changes)
    return changes


def fault_json(fault):
    """A fault as /v1.0/faults lists it."""
    return {
        "uuid": str(fault.uuid),
        "alarm_id": fault.alarm_id,
        "entity_instance_id": fault.entity_instance_id,
        "severity": fault.severity,
        "reason_text": fault.reason_text,
        "subcloud": fault.subcloud_name,
        "raised-at": format_time(fault.raised_at),
    }


def format_time(value):
    """dcmanager's timestamp format: '2026-11-24 10:00:00.000000' (UTC)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _log_one(subcloud_id, name, reason, changes, previous=None):
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [CHANGE_LOG_LOCK])
    return StateChange.objects.create(
        subcloud_id=subcloud_id,
        subcloud_name=name,
        changes=changes,
        previous=previous or {},
        reason=reason,
        created_at=timezone.now(),
    )


def save_fields(subcloud_id, name, fields):
    """Operator edits of plain fields (description, location, group), logged like state changes."""
    subcloud = Subcloud.objects.get(pk=subcloud_id)
    changed, previous = {}, {}
    for attr, value in fields.items():
        key = "group_id" if attr == "group" else attr
        old = getattr(subcloud, key)
        new = value.pk if attr == "group" else value
        if old != new:
            setattr(subcloud, key, new)
            changed[key] = new
            previous[key] = old
    if changed:
        subcloud.updated_at = timezone.now()
        subcloud.save(update_fields=[*changed, "updated_at"])
        _log_one(subcloud_id, name, "edit", changed, previous)


def log_lifecycle(subcloud_id, name, reason, changes):
    """Registration and deletion, for the change log (websocket and history)."""
    return _log_one(subcloud_id, name, reason, changes)
