"""Load subcloud states (locked) and write back only what the rules changed.

Every function here runs inside the caller's transaction and costs a fixed
number of statements whatever the number of subclouds: this is what keeps a
bulk update at a small constant number of round trips.
"""

import json
import uuid
from datetime import UTC
from types import SimpleNamespace

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


def load_states(ids, extra_columns=()):
    """Unlocked states of the given subclouds (for readers such as the audit), plus extra columns.

    Returns ({id: SubcloudState}, {id: (extra column values...)}).
    """
    columns = ", ".join((*_SUBCLOUD_COLUMNS, *extra_columns))
    with connection.cursor() as cur:
        cur.execute(f"SELECT {columns} FROM {_table(Subcloud)} WHERE id = ANY(%s) ORDER BY id", [list(ids)])
        rows = cur.fetchall()
    width = len(_SUBCLOUD_COLUMNS)
    return build_states([row[:width] for row in rows]), {row[0]: row[width:] for row in rows}


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
            f"SELECT id, subcloud_id, endpoint_type, sync_status FROM {_table(EndpointStatus)} "
            "WHERE subcloud_id = ANY(%s) ORDER BY id",
            [ids],
        )
        for row_id, subcloud_id, endpoint_type, sync_status in cur.fetchall():
            states[subcloud_id].endpoints[endpoint_type] = sync_status
            states[subcloud_id].endpoint_ids[endpoint_type] = row_id
        cur.execute(
            f"SELECT subcloud_id, alarm_id, entity_instance_id FROM {_table(Fault)} "
            "WHERE subcloud_id = ANY(%s) AND cleared_at IS NULL",
            [ids],
        )
        for subcloud_id, alarm_id, entity in cur.fetchall():
            states[subcloud_id].alarms.add((alarm_id, entity))
    return states


def save(originals, states, *, reason, sequences=None, extra=None):
    """Write the difference between originals and states; returns the revisions (change-log ids) written.

    originals / states: {subcloud id: SubcloudState}. sequences: {subcloud id:
    highest applied sequence}, recorded in the change log. extra: keys added to
    every subcloud's change-log row, which is then written even without a diff
    (e.g. {"deleted": True}).
    """
    now = timezone.now()
    sequences = sequences or {}
    subcloud_rows, endpoint_rows, fault_rows, clears, changes, outbox = [], [], [], [], [], []
    for sid, state in states.items():
        before = originals[sid]
        moved = [f for f in SubcloudState.FIELDS if getattr(state, f) != getattr(before, f)]
        changed = {KEY_OF_FIELD[f]: getattr(state, f) for f in moved}
        previous = {KEY_OF_FIELD[f]: getattr(before, f) for f in moved}
        if moved:
            subcloud_rows.append(state)
        endpoint_changes = {e: s for e, s in state.endpoints.items() if before.endpoints.get(e) != s}
        if endpoint_changes:
            endpoint_rows.extend((before.endpoint_ids[e], s) for e, s in endpoint_changes.items())
            changed["endpoint_sync_status"] = [{"endpoint_type": e, "sync_status": s} for e, s in state.endpoints.items()]
            previous["endpoint_sync_status"] = {e: before.endpoints.get(e) for e in endpoint_changes}
        raised = [state.raised[k] for k in state.alarms - before.alarms]
        cleared = before.alarms - state.alarms
        for a in raised:
            fault_rows.append({
                "uuid": uuid.uuid4(), "alarm_id": a.alarm_id, "entity_instance_id": a.entity_instance_id,
                "severity": a.severity, "reason_text": a.reason_text, "service_affecting": a.service_affecting,
                "subcloud_id": sid, "subcloud_name": state.name, "raised_at": now,
            })
        clears.extend(cleared)
        for (kind, _key), payload in state.effects.items():
            if kind == "dcorch":  # always the final state of the batch
                payload = {
                    "subcloud": state.name,
                    "region_name": state.region_name,
                    "management_state": state.management_state,
                    "availability_status": state.availability_status,
                }
            outbox.append({"kind": kind, "subcloud_id": sid, "payload": payload, "created_at": now, "attempts": 0})
        changed.update(extra or {})
        if changed or raised or cleared:
            changes.append({
                "subcloud_id": sid, "subcloud_name": state.name, "changes": changed, "previous": previous,
                "faults_raised": [], "faults_cleared": [], "sequence": sequences.get(sid), "reason": reason,
                "created_at": now,
            })
    with connection.cursor() as cur:
        if subcloud_rows:
            cur.execute(
                f"""UPDATE {_table(Subcloud)} s SET management_state = v.ms, availability_status = v.av,
                        audit_fail_count = v.afc, first_identity_sync_complete = v.fisc, updated_at = %s
                    FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::int[], %b::bool[]) AS v(id, ms, av, afc, fisc)
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
            row_ids, statuses = zip(*endpoint_rows)
            cur.execute(
                f"""UPDATE {_table(EndpointStatus)} e SET sync_status = v.st, updated_at = %s
                    FROM unnest(%b::bigint[], %b::text[]) AS v(id, st) WHERE e.id = v.id""",
                [now, list(row_ids), list(statuses)],
            )
        cleared_faults, raised_faults = {}, {}
        if clears:
            alarm_ids, entities = zip(*clears)
            cur.execute(
                f"""UPDATE {_table(Fault)} f SET cleared_at = %s
                    FROM unnest(%b::text[], %b::text[]) AS v(alarm_id, entity)
                    WHERE f.cleared_at IS NULL AND f.alarm_id = v.alarm_id AND f.entity_instance_id = v.entity
                    RETURNING f.subcloud_id, f.uuid, f.alarm_id, f.entity_instance_id""",
                [now, list(alarm_ids), list(entities)],
            )
            for sid, fault_uuid, alarm_id, entity in cur.fetchall():
                cleared_faults.setdefault(sid, []).append(
                    {"uuid": str(fault_uuid), "alarm_id": alarm_id, "entity_instance_id": entity}
                )
        if fault_rows:
            # The row lock makes conflicts impossible for this subcloud; ON
            # CONFLICT keeps a raise of an already-active alarm a no-op anyway.
            _insert(cur, Fault, fault_rows, suffix="ON CONFLICT DO NOTHING")
            for row in fault_rows:
                raised_faults.setdefault(row["subcloud_id"], []).append(fault_json(SimpleNamespace(**row)))
        if outbox:
            _insert(cur, Outbox, outbox)
        if not changes:
            return []
        for change in changes:
            change["faults_raised"] = raised_faults.get(change["subcloud_id"], [])
            change["faults_cleared"] = cleared_faults.get(change["subcloud_id"], [])
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [CHANGE_LOG_LOCK])
        revisions = [r for (r,) in _insert(cur, StateChange, changes, returning="id")]
    _ring_feed()
    return revisions


def _insert(cur, model, rows, suffix="", returning=None):
    """One INSERT ... SELECT FROM unnest(...) for many rows (dicts of column -> value): one round trip.

    JSON columns travel as text encoded by the json module (much faster than
    adapting each value), and arrays as binary parameters (%b: no per-element
    escaping); returns the RETURNING rows when asked.
    """
    fields = {f.column: f for f in model._meta.concrete_fields}
    columns = list(rows[0])
    casts, arrays = [], []
    for column in columns:
        field = fields[column]
        db_type = field.rel_db_type(connection) if field.is_relation else field.db_type(connection)
        values = [row[column] for row in rows]
        if db_type == "jsonb":
            casts.append(f"v.{column}::jsonb")
            arrays.append(("text", [json.dumps(v) for v in values]))
        else:
            casts.append(f"v.{column}")
            arrays.append((_ARRAY_TYPES.get(db_type.split("(")[0], db_type), values))
    sql = (
        f"INSERT INTO {_table(model)} ({', '.join(columns)}) SELECT {', '.join(casts)} "
        f"FROM unnest({', '.join(f'%b::{t}[]' for t, _ in arrays)}) AS v({', '.join(columns)}) {suffix}"
    )
    if returning:
        sql += f" RETURNING {returning}"
    cur.execute(sql, [values for _, values in arrays])
    return cur.fetchall() if returning else None


# Array element types for the column types used by _insert.
_ARRAY_TYPES = {"varchar": "text", "bigint": "bigint", "integer": "integer", "boolean": "boolean",
                "timestamp with time zone": "timestamptz", "uuid": "uuid"}


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
    change = StateChange.objects.create(
        subcloud_id=subcloud_id,
        subcloud_name=name,
        changes=changes,
        previous=previous or {},
        reason=reason,
        created_at=timezone.now(),
    )
    _ring_feed()
    return change


def _ring_feed():
    """After commit (once per transaction), wake the live-status feed of every daphne process: portal/feed.py."""
    from portal.feed import ring_after_commit

    ring_after_commit()


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
