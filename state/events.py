"""The fleet-wide events: the change log read newest first, filtered, a page at a time (GET /v1.0/events, /portal/events/).

One query per page: the primary key is walked backwards from the cursor (a
revision) and the scan stops at the page's size, whatever the filters.
"""

from datetime import UTC

from django.db.models import Q
from django.utils.dateparse import parse_datetime

from subclouds import services
from subclouds.errors import NotFound, Refused
from subclouds.inputs import is_id
from subclouds.representation import format_time, wire_changes

from .kinds import Source
from .models import StateChange

# Kinds of events a filter can ask for, and how each is found in a log row.
KINDS = {
    "availability": Q(changes__has_key="availability_status"),
    "management": Q(changes__has_key="management_state"),
    "sync": Q(changes__has_key="endpoints"),
    "alarm": ~Q(faults_raised=[]) | ~Q(faults_cleared=[]),
    "registered": Q(changes__has_key="registered"),
    "deleted": Q(changes__has_key="deleted"),
    "edit": Q(reason="edit"),
}
FILTERS = ("subcloud", "group", "actor", "source", "kind", "since", "until")
DEFAULT_LIMIT = 100
MAX_LIMIT = 500


def _time(params, key):
    value = params.get(key)
    if not value:
        return None
    try:
        parsed = parse_datetime(value.strip().replace(" ", "T", 1))
    except ValueError:
        parsed = None
    if parsed is None:
        raise Refused.at(key, "must be a date and time, e.g. 2026-11-24T10:00:00Z")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _positive(params, key, default, maximum=None):
    value = params.get(key)
    if value in (None, ""):
        return default
    if not is_id(str(value)) or int(value) < 1 or (maximum and int(value) > maximum):
        raise Refused.at(key, "must be a positive integer" + (f" up to {maximum}" if maximum else ""))
    return int(value)


def parse(params):
    """Validated filters from query parameters (a dict-like); a bad one is Refused at its name."""
    unknown = sorted(set(params) - {*FILTERS, "before", "limit"})
    if unknown:
        raise Refused.at(unknown[0], f"unknown filter; use {', '.join((*FILTERS, 'before', 'limit'))}")
    filters = {key: params.get(key, "").strip() for key in ("subcloud", "actor") if params.get(key, "").strip()}
    source = params.get("source")
    if source:
        if source not in Source.values:
            raise Refused.at("source", f"must be one of {', '.join(Source.values)}")
        filters["source"] = source
    kind = params.get("kind")
    if kind:
        if kind not in KINDS:
            raise Refused.at("kind", f"must be one of {', '.join(KINDS)}")
        filters["kind"] = kind
    group = params.get("group", "").strip()
    if group:
        try:
            filters["group"] = services.get_group(group).pk  # by id or name, as every group reference
        except NotFound:
            raise Refused.at("group", f"no group {group!r}") from None
    for key in ("since", "until"):
        if (when := _time(params, key)) is not None:
            filters[key] = when
    if "since" in filters and "until" in filters and filters["since"] > filters["until"]:
        raise Refused.at("until", "must not be before since")
    filters["before"] = _positive(params, "before", None)
    filters["limit"] = _positive(params, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    return filters


def page(filters):
    """(log rows newest first, the cursor of the next page or None) for parsed filters."""
    rows = StateChange.objects.all()
    conditions = {
        "subcloud": lambda v: Q(subcloud_name=v),
        "group": lambda v: Q(subcloud__group_id=v),
        "actor": lambda v: Q(actor=v),
        "source": lambda v: Q(source=v),
        "kind": lambda v: KINDS[v],
        "since": lambda v: Q(created_at__gte=v),
        "until": lambda v: Q(created_at__lte=v),
        "before": lambda v: Q(id__lt=v),
    }
    for key, condition in conditions.items():
        if filters.get(key) is not None:
            rows = rows.filter(condition(filters[key]))
    limit = filters.get("limit", DEFAULT_LIMIT)
    found = list(rows.order_by("-id")[: limit + 1])
    return found[:limit], (found[limit - 1].id if len(found) > limit else None)


# Change-log keys that make a row one of KINDS.
_KEY_KINDS = {"availability_status": "availability", "management_state": "management", "endpoints": "sync",
              "registered": "registered", "deleted": "deleted"}


def kinds_of(change):
    """The KINDS a log row belongs to, in KINDS' order."""
    kinds = {_KEY_KINDS[key] for key in change.changes if key in _KEY_KINDS}
    if change.faults_raised or change.faults_cleared:
        kinds.add("alarm")
    if change.reason == "edit":
        kinds.add("edit")
    return [k for k in KINDS if k in kinds]


def actor_json(change):
    return {"user": change.actor, "source": change.source, "via": change.actor_via, "address": change.actor_address}


def event_json(change):
    """One log row as GET /v1.0/events lists it (dcmanager's keys for the changed fields)."""
    return {
        "revision": change.id,
        "created-at": format_time(change.created_at),
        "subcloud": change.subcloud_name,
        "reason": change.reason,
        "kinds": kinds_of(change),
        "changes": wire_changes(change.changes),
        "previous": wire_changes(change.previous),
        "faults_raised": change.faults_raised,
        "faults_cleared": change.faults_cleared,
        "actor": actor_json(change),
    }
