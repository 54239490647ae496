"""Subclouds and groups as dcmanager's JSON, built from `.values()` rows.

Used by the REST API, the admin commands and the live-status feed. A list of
any size costs two queries (subclouds, then their endpoints).
"""

import json
import uuid
from datetime import UTC

from django.db import connection
from django.db.models import CharField, Count, Func, Q, Subquery

from .choices import ENDPOINT_TYPES, overall_sync_status
from .errors import Refused
from .models import EndpointStatus, Subcloud

# dcmanager key -> model field, in dcmanager's order.
SUBCLOUD_KEYS = {
    "id": "id",
    "name": "name",
    "description": "description",
    "location": "location",
    "software-version": "software_version",
    "availability-status": "availability_status",
    "management-state": "management_state",
    "deploy-status": "deploy_status",
    "error-description": "error_description",
    "region-name": "region_name",
    "openstack-installed": "openstack_installed",
    "group_id": "group_id",
    "audit-fail-count": "audit_fail_count",
    "first-identity-sync-complete": "first_identity_sync_complete",
    "management-subnet": "management_subnet",
    "management-start-ip": "management_start_ip",
    "management-end-ip": "management_end_ip",
    "management-gateway-ip": "management_gateway_ip",
    "systemcontroller-gateway-ip": "systemcontroller_gateway_ip",
    "created-at": "created_at",
    "updated-at": "updated_at",
}
# Model field -> dcmanager key: how the change log's own field names leave through the websocket and the pages.
WIRE_KEYS = {field: key for key, field in SUBCLOUD_KEYS.items()}
_TIME_FIELDS = ("created_at", "updated_at")
_ENDPOINT_ORDER = {e: i for i, e in enumerate(ENDPOINT_TYPES)}


class DcmanagerTime(Func):
    """A timestamp as format_time() prints it, formatted by PostgreSQL: 5,000 subclouds' times cost
    ~150 ms to parse and re-format in Python, nothing measurable in the query."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
    output_field = CharField()


# What subclouds_json asks .values() for: times come formatted, under an alias (an
# annotation cannot take a field's name); _VALUE_KEYS maps each dcmanager key to its value.
_PLAIN_FIELDS = [f for f in SUBCLOUD_KEYS.values() if f not in _TIME_FIELDS]
_FORMATTED_TIMES = {f"{f}_text": DcmanagerTime(f) for f in _TIME_FIELDS}
_VALUE_KEYS = {key: f"{f}_text" if f in _TIME_FIELDS else f for key, f in SUBCLOUD_KEYS.items()}
# Where each dcmanager key's value sits in a values_list row (the fields, then the formatted times).
_POSITIONS = [[*_PLAIN_FIELDS, *_FORMATTED_TIMES].index(v) for v in _VALUE_KEYS.values()]


def fault_json(fault):
    """A fault (a Fault, or a dict of its columns as the state store inserts them) as /v1.0/faults lists it."""
    value = fault.get if isinstance(fault, dict) else fault.__getattribute__
    return {
        "uuid": str(value("uuid")),
        "alarm_id": value("alarm_id"),
        "entity_instance_id": value("entity_instance_id"),
        "severity": value("severity"),
        "reason_text": value("reason_text"),
        "subcloud": value("subcloud_name"),
        "raised-at": format_time(value("raised_at")),
    }


def format_time(value):
    """dcmanager's timestamp format: '2026-11-24 10:00:00.000000' (UTC)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def wire_changes(changes):
    """A change-log `changes` dict in dcmanager's keys; `endpoints` ({type: status}) becomes endpoint_sync_status."""
    wire = {}
    for key, value in changes.items():
        if key == "endpoints":
            # jsonb keeps no key order: the list is in dcmanager's fixed endpoint order, as the API lists it.
            ordered = sorted(value.items(), key=lambda item: _ENDPOINT_ORDER.get(item[0], len(_ENDPOINT_ORDER)))
            wire["endpoint_sync_status"] = [{"endpoint_type": e, "sync_status": s} for e, s in ordered]
        else:
            wire[WIRE_KEYS.get(key, key)] = value
    return wire


def endpoint_list(statuses):
    """[{endpoint_type, sync_status}] in the fixed endpoint order, from {type: status}; any other type after them.

    Walks the fixed order rather than sorting each subcloud's dict: a third of the list's time at 50,000.
    """
    listed = [{"endpoint_type": e, "sync_status": statuses[e]} for e in ENDPOINT_TYPES if e in statuses]
    if len(listed) < len(statuses):
        listed += [{"endpoint_type": e, "sync_status": s} for e, s in statuses.items() if e not in _ENDPOINT_ORDER]
    return listed


# Each subcloud's endpoint statuses as one text, in the fixed endpoint order (others after, by name):
# '"platform":"in-sync","identity":"in-sync",...' (JSON-quoted, so any value is unambiguous). Most
# subclouds of a fleet share a handful of these texts, so each distinct one is parsed once.
_ENDPOINTS_SQL = f"""
    SELECT subcloud_id,
           string_agg(to_json(endpoint_type)::text || ':' || to_json(sync_status)::text, ','
                      ORDER BY array_position(%s::text[], endpoint_type::text), endpoint_type)
    FROM {EndpointStatus._meta.db_table} WHERE subcloud_id IN ({{ids}}) GROUP BY subcloud_id"""


def subclouds_json(queryset, sync_status=None, order=("id",), limit=None):
    """Every subcloud of queryset as JSON, in two queries; optionally only one overall sync status.

    order / limit: the first `limit` subclouds in that order (a page, subclouds_page).
    Subclouds with the same endpoint statuses share one endpoint_sync_status list (50,000 subclouds
    would otherwise be 350,000 small dicts, the list's largest cost): replace it, never change it in place.
    """
    ordered = queryset.order_by(*order)
    if limit is not None:
        ordered = ordered[:limit]
    rows = list(ordered.values_list(*_PLAIN_FIELDS, *_FORMATTED_TIMES.values()))
    if not rows:
        return []
    # The same filter as a subquery: no 5,000-placeholder IN list to build and parse.
    ids = ordered.values("id") if limit is not None else queryset.order_by().values("id")  # a page keeps its order
    ids_sql, ids_params = ids.query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute(_ENDPOINTS_SQL.format(ids=ids_sql), [list(ENDPOINT_TYPES), *ids_params])
        statuses = dict(cur.fetchall())
    shared = {}
    result = []
    for row in rows:
        text = statuses.get(row[0], "")  # none: registered between the two queries, or none stored
        endpoints = shared.get(text)
        if endpoints is None:
            parsed = json.loads("{" + text + "}")
            endpoints = shared[text] = (overall_sync_status(parsed.values()),
                                        [{"endpoint_type": e, "sync_status": s} for e, s in parsed.items()])
        data = dict(zip(_VALUE_KEYS, [row[i] for i in _POSITIONS]))
        data["sync_status"], data["endpoint_sync_status"] = endpoints
        result.append(data)
    if sync_status:
        result = [s for s in result if s["sync_status"] == sync_status]
    return result


def subclouds_page(queryset, sort_field="id", descending=False, limit=None, marker=None):
    """(subclouds_json rows, whether more follow): sorted by (sort_field, id), after `marker`, at most `limit`.

    Keyset paging: the marker (an id or a name) is found by a subquery, so a page costs the
    list's two queries at any depth (a third only to refuse a marker that names no subcloud:
    Refused, 400). sort_field must never be null (inputs.SORT_KEYS).
    """
    order = (f"-{sort_field}", "-id") if descending else (sort_field, "id")
    if marker is not None:
        found = Subcloud.objects.filter(pk=int(marker)) if marker.isascii() and marker.isdigit() else \
            Subcloud.objects.filter(name=marker)
        after = "lt" if descending else "gt"
        marker_id = Subquery(found.values("id")[:1])
        if sort_field == "id":
            queryset = queryset.filter(**{f"id__{after}": marker_id})
        else:
            value = Subquery(found.values(sort_field)[:1])
            queryset = queryset.filter(Q(**{f"{sort_field}__{after}": value})
                                       | Q(**{sort_field: value, f"id__{after}": marker_id}))
    rows = subclouds_json(queryset, order=order, limit=None if limit is None else limit + 1)
    if marker is not None and not rows and not found.exists():
        raise Refused.at("marker", f"no subcloud {marker!r} (the id or name of the last subcloud of the previous page)")
    if limit is not None and len(rows) > limit:
        return rows[:limit], True
    return rows, False


def group_subclouds_json(group):
    """A group's subclouds as upstream lists them: without endpoint_sync_status. The client's
    `subcloud-group list-subclouds` table has one column per listed endpoint on each row but not
    in its header, so the endpoints made every row longer than the header (28 != 21)."""
    subclouds = subclouds_json(Subcloud.objects.filter(group=group))
    for subcloud in subclouds:
        del subcloud["endpoint_sync_status"]
    return subclouds


def subcloud_detail_json(subcloud):
    data = subclouds_json(Subcloud.objects.filter(pk=subcloud.pk))[0]
    # Upstream's value when it cannot ask the subcloud; the client then leaves the row out.
    data["oam_floating_ip"] = "unavailable"
    data["deploy_config_sync_status"] = "unknown"
    data["region_name"] = subcloud.region_name
    return data


def group_json(group):
    return {
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "update_apply_type": group.update_apply_type,
        "max_parallel_subclouds": group.max_parallel_subclouds,
        "created-at": format_time(group.created_at),
        "updated-at": format_time(group.updated_at),
    }


def alarm_summary_json():
    """One entry per subcloud, counted from its active faults (one query)."""
    active = Q(faults__cleared_at__isnull=True)
    rows = (
        Subcloud.objects.order_by("id")
        .annotate(
            critical=Count("faults", filter=active & Q(faults__severity="critical")),
            major=Count("faults", filter=active & Q(faults__severity="major")),
            minor=Count("faults", filter=active & Q(faults__severity="minor")),
            warning=Count("faults", filter=active & Q(faults__severity="warning")),
        )
        .values("name", "region_name", "critical", "major", "minor", "warning")
    )
    return [
        {
            "region_name": row["name"],
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, "dcportal-subcloud-" + row["region_name"])),
            "critical_alarms": row["critical"],
            "major_alarms": row["major"],
            "minor_alarms": row["minor"],
            "warnings": row["warning"],
            "cloud_status": "critical" if row["critical"] else "degraded" if row["major"] else "OK",
        }
        for row in rows
    ]
