"""Durable intake of state updates: validate everything, then record it, then ring.

A 202 is answered only after `accept` has committed the updates, so an
accepted update survives any worker or channel-layer failure.
"""

import json

from django.db import connection, transaction
from django.utils import timezone

from subclouds.choices import ENDPOINT_TYPES, Availability, SyncStatus
from subclouds.errors import NotFound, Refused
from subclouds.inputs import storable
from subclouds.models import Subcloud

from . import doorbell
from .actors import SYSTEM
from .kinds import DEFAULT_ALARMABLE, DEFAULT_SYNC_STATUS, DEFAULT_UPDATE_STATE_ONLY
from .models import StateUpdate, UpdateKind

# Serialises acceptance so that sequence (id) order is commit order: when a
# worker sees update N committed, every update below N is committed too, and
# "the higher sequence wins" holds per subcloud. Held only for one INSERT.
INTAKE_LOCK = 0x6463_696E  # "dcin"

# Django rebuilds TextChoices.values on every access; a bulk of 1,000 checks 8,000 values.
SYNC_STATUSES = tuple(SyncStatus.values)
AVAILABILITIES = tuple(Availability.values)


# -- field checks ---------------------------------------------------------------


def _object(value, where):
    if not isinstance(value, dict):
        raise Refused.at(where or "body", "must be a JSON object")
    return value


def _only(obj, allowed, prefix):
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise Refused.at(prefix + unknown[0], "unknown field")


def _choice(obj, key, choices, prefix, default=..., nullable=False):
    if key not in obj:
        if default is ...:
            raise Refused.at(prefix + key, "this field is required")
        return default
    value = obj[key]
    if value is None and nullable:
        return None
    if value not in choices:
        raise Refused.at(prefix + key, f"must be one of {', '.join(choices)}" + (" or null" if nullable else ""))
    return value


def _bool(obj, key, prefix, default):
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise Refused.at(prefix + key, "must be true or false")
    return value


def _subcloud_ref(obj, prefix, nullable=False):
    if "subcloud" not in obj or obj["subcloud"] is None:
        if nullable:
            return None
        raise Refused.at(prefix + "subcloud", "this field is required")
    value = obj["subcloud"]
    if not isinstance(value, str) or not value.strip() or not storable(value):
        raise Refused.at(prefix + "subcloud", "must be a subcloud name or region name")
    return value


def _availability(obj, prefix):
    status = _choice(obj, "availability_status", AVAILABILITIES, prefix, nullable=True)
    count = obj.get("audit_fail_count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise Refused.at(prefix + "audit_fail_count", "must be a non-negative integer or null")
    return {
        "availability_status": status,
        "update_state_only": _bool(obj, "update_state_only", prefix, DEFAULT_UPDATE_STATE_ONLY),
        "audit_fail_count": count,
    }


# -- the three request shapes ----------------------------------------------------


def parse_endpoint_status(body):
    """-> (subcloud ref or None, payload)"""
    body = _object(body, "")
    _only(body, ("subcloud", "endpoint_type", "sync_status", "alarmable", "ignore_endpoints"), "")
    ignore = body.get("ignore_endpoints")
    ignore = [] if ignore is None else ignore
    if not isinstance(ignore, list) or any(e not in ENDPOINT_TYPES for e in ignore):
        raise Refused.at("ignore_endpoints", f"must be a list of endpoint types ({', '.join(ENDPOINT_TYPES)})")
    return _subcloud_ref(body, "", nullable=True), {
        # Rule 3: an endpoint the subcloud does not have is refused here.
        "endpoint_type": _choice(body, "endpoint_type", ENDPOINT_TYPES, "", default=None, nullable=True),
        "sync_status": _choice(body, "sync_status", SYNC_STATUSES, "", default=DEFAULT_SYNC_STATUS),
        "alarmable": _bool(body, "alarmable", "", DEFAULT_ALARMABLE),
        "ignore_endpoints": ignore,
    }


def parse_availability(body):
    body = _object(body, "")
    _only(body, ("subcloud", "availability_status", "update_state_only", "audit_fail_count"), "")
    return _subcloud_ref(body, ""), _availability(body, "")


def _parse_bulk_one(obj, prefix):
    obj = _object(obj, prefix.rstrip("."))
    _only(obj, ("subcloud", "availability", "endpoints"), prefix)
    ref = _subcloud_ref(obj, prefix)
    availability = obj.get("availability")
    if availability is not None:
        availability = _object(availability, prefix + "availability")
        _only(availability, ("availability_status", "update_state_only", "audit_fail_count"), prefix + "availability.")
        if "availability_status" not in availability:
            raise Refused.at(prefix + "availability.availability_status", "this field is required")
        availability = _availability(availability, prefix + "availability.")
    endpoints = obj.get("endpoints") or {}
    _object(endpoints, prefix + "endpoints")
    for endpoint_type, status in endpoints.items():
        if endpoint_type not in ENDPOINT_TYPES:
            raise Refused.at(prefix + "endpoints." + endpoint_type, f"unknown endpoint type; one of {', '.join(ENDPOINT_TYPES)}")
        if status not in SYNC_STATUSES:
            raise Refused.at(prefix + "endpoints." + endpoint_type, f"must be one of {', '.join(SYNC_STATUSES)}")
    return ref, {"availability": availability, "endpoints": endpoints}


def parse_bulk(body, max_updates):
    """-> list of (subcloud ref, payload)"""
    body = _object(body, "")
    if "updates" not in body:
        return [_parse_bulk_one(body, "")]
    _only(body, ("updates",), "")
    updates = body["updates"]
    if not isinstance(updates, list) or not updates:
        raise Refused.at("updates", "must be a non-empty list")
    if len(updates) > max_updates:
        raise Refused.at("updates", f"at most {max_updates} subclouds per request (got {len(updates)})")
    return [_parse_bulk_one(u, f"updates[{i}].") for i, u in enumerate(updates)]


# -- resolution and acceptance -----------------------------------------------------


def resolve(refs, fields=None):
    """{ref: subcloud id} for names or region names, in one query. A name wins over a region name.

    An unknown ref is NotFound at its field: fields[i] names refs[i] (default "subcloud").
    """
    wanted = list(set(refs))
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT id, name, region_name FROM {Subcloud._meta.db_table} WHERE name = ANY(%s) OR region_name = ANY(%s)",
            [wanted, wanted],
        )
        rows = cur.fetchall()
    found = {region: sid for sid, _, region in rows}
    found.update({name: sid for sid, name, _ in rows})
    for i, ref in enumerate(refs):
        if ref not in found:
            raise NotFound.at(fields[i] if fields else "subcloud", f"subcloud {ref!r} not found")
    return found


def all_subcloud_ids():
    return list(Subcloud.objects.order_by("id").values_list("id", flat=True))


def accept(kind, rows, actor=SYSTEM):
    """Durably record updates [(subcloud id, payload)] sent by `actor` (state/actors.py); returns (count, last sequence).

    The actor costs four constant values in the same INSERT.
    """
    if kind not in UpdateKind.values:
        raise ValueError(kind)
    if not rows:
        return 0, current_sequence()
    now = timezone.now()
    ids, payloads = zip(*rows)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [INTAKE_LOCK])
        cur.execute(
            f"""INSERT INTO {StateUpdate._meta.db_table}
                    (subcloud_id, kind, payload, accepted_at, worker, actor, source, actor_via, actor_address)
                SELECT sid, %s, p::jsonb, %s, '', %s, %s, %s, %s FROM unnest(%b::bigint[], %b::text[]) AS v(sid, p)
                RETURNING id""",
            [kind, now, *actor.columns().values(), list(ids), [json.dumps(p) for p in payloads]],
        )
        sequence = max(r[0] for r in cur.fetchall())
    transaction.on_commit(doorbell.ring, robust=True)
    return len(rows), sequence


def current_sequence():
    last = StateUpdate.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0
