"""Windowed subscriptions of `/ws/status/` (docs/websockets.md, "Windows"): the pages see 30 rows, not 50,000.

A view is a filter, a sort and a window (offset, limit <= MAX_LIMIT). The server filters and sorts in
SQL (only the columns the view needs are joined), sends the rows in the window as the snapshot spells
them, and the fleet's counts for the rest. `moves` and `counts_change` tell the socket what a batch of
changes does to a view: re-query it, or pass on the changes of the rows in view.
"""

import json
from dataclasses import dataclass, field

from django.db import connection

from state.models import StateChange
from subclouds.choices import Availability, ManagementState, Severity, SyncStatus
from subclouds.models import EndpointStatus, Fault, Subcloud, SubcloudGroup
from subclouds.representation import fault_json, format_time, subclouds_json

from .changes import current_revision, repeatable_read
from .wire import encode

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_OFFSET = 10**7
MAX_TEXT = 255

FILTER_VALUES = {
    "availability": set(Availability.values),
    "management": set(ManagementState.values),
    "sync": set(SyncStatus.values),
    "alarms": {"any", "critical", "none"},
}
SORT_KEYS = ("name", "group", "availability-status", "management-state", "deploy-status", "sync_status", "alarms",
             "last_change")
DIRECTIONS = ("ascending", "descending")

# Which keys of a `changes` entry can move a subcloud in or out of a view that uses a filter or sort key.
_MOVED_BY = {
    "availability": {"availability-status"}, "availability-status": {"availability-status"},
    "management": {"management-state"}, "management-state": {"management-state"},
    "sync": {"sync_status"}, "sync_status": {"sync_status"},
    "group": {"group_id"},
    "deploy-status": {"deploy-status"},
    "q": {"description", "location", "group_id"},
}
_COUNTED = {"availability-status", "management-state", "sync_status", "group_id", "registered", "deleted"}


@dataclass(frozen=True)
class View:
    filter: dict = field(default_factory=dict)
    sort: tuple = ("name", "ascending")
    offset: int = 0
    limit: int = DEFAULT_LIMIT

    def as_json(self):
        return {"filter": dict(self.filter), "sort": list(self.sort), "offset": self.offset, "limit": self.limit}

    def uses(self):
        """The filter and sort keys this view depends on."""
        return set(self.filter) | {self.sort[0]}

    def moves(self, delta):
        """True when the changes in `delta` can change which subclouds are in this window, or their order."""
        uses = self.uses()
        if "last_change" in uses and delta.last_change:
            return True
        if "alarms" in uses and (delta.raised or delta.cleared):
            return True
        keys = set().union(*(_MOVED_BY.get(k, ()) for k in uses))
        return any(e.get("registered") or e.get("deleted") or keys.intersection(e) for e in delta.subclouds.values())


def counts_change(delta):
    """True when `delta` can change the fleet's counts (statuses, groups, membership, faults)."""
    return bool(delta.raised or delta.cleared) or any(_COUNTED.intersection(e) for e in delta.subclouds.values())


def _int(value, lo, hi):
    return value if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi else None


def parse_view(value):
    """A View from a client's JSON, or None when anything in it is malformed (never an exception)."""
    if not isinstance(value, dict) or not set(value) <= {"filter", "sort", "offset", "limit"}:
        return None
    filters = value.get("filter", {})
    if not isinstance(filters, dict):
        return None
    clean = {}
    for key, v in filters.items():
        if v == "" or v is None:
            continue
        if key in FILTER_VALUES and v in FILTER_VALUES[key]:
            clean[key] = v
        elif key == "group" and (_int(v, 0, 2**31 - 1) is not None or (isinstance(v, str) and v.isascii() and v.isdigit()
                                                                        and len(v) < 10)):
            clean[key] = int(v)
        elif key == "q" and isinstance(v, str) and len(v) <= MAX_TEXT:
            if v.strip():
                clean[key] = v.strip().lower()
        else:
            return None
    sort = value.get("sort", ["name", "ascending"])
    if not (isinstance(sort, list) and len(sort) == 2 and sort[0] in SORT_KEYS and sort[1] in DIRECTIONS):
        return None
    offset, limit = _int(value.get("offset", 0), 0, MAX_OFFSET), _int(value.get("limit", DEFAULT_LIMIT), 0, MAX_LIMIT)
    if offset is None or limit is None:
        return None
    return View(clean, tuple(sort), offset, limit)


def parse_view_text(text):
    """A View from the `view` query parameter (JSON), the default view when absent, None when malformed."""
    if text is None:
        return View()
    try:
        return parse_view(json.loads(text))
    except (ValueError, RecursionError):
        return None


# -- SQL -------------------------------------------------------------------------------------

def _tables():
    return {
        "subcloud": Subcloud._meta.db_table, "group": SubcloudGroup._meta.db_table,
        "endpoint": EndpointStatus._meta.db_table, "fault": Fault._meta.db_table, "change": StateChange._meta.db_table,
    }


# A subcloud's listed sync status from its endpoints (subclouds.choices.overall_sync_status): none or all
# unknown -> unknown, all in sync -> in-sync, else out-of-sync.
_SYNC = f"""(SELECT subcloud_id, CASE WHEN bool_and(sync_status = '{SyncStatus.UNKNOWN}') THEN '{SyncStatus.UNKNOWN}'
                                 WHEN bool_and(sync_status = '{SyncStatus.IN_SYNC}') THEN '{SyncStatus.IN_SYNC}'
                                 ELSE '{SyncStatus.OUT_OF_SYNC}' END AS sync
             FROM {{endpoint}} GROUP BY subcloud_id)"""
_ALARMS = f"""(SELECT subcloud_id, count(*) AS total,
                      count(*) FILTER (WHERE severity = '{Severity.CRITICAL}') AS critical,
                      count(*) FILTER (WHERE severity = '{Severity.MAJOR}') AS major
               FROM {{fault}} WHERE cleared_at IS NULL GROUP BY subcloud_id)"""
# "subcloud10" after "subcloud9" (the pages' natural order) for names ending in digits: prefix, length, name.
_NATURAL = ("lower(regexp_replace(s.name, '[0-9]+$', ''))", "length(s.name)", "s.name")
_SORT_SQL = {
    "name": None,
    "group": "lower(g.name)",
    "availability-status": "s.availability_status",
    "management-state": "s.management_state",
    "deploy-status": "lower(s.deploy_status)",
    "sync_status": f"coalesce(y.sync, '{SyncStatus.UNKNOWN}')",
    "alarms": "coalesce(a.critical, 0) * 1000000 + coalesce(a.major, 0) * 1000 + coalesce(a.total, 0)",
    "last_change": "lc.at",
}


def _indexed(view):
    """Sorted by name and filtered on plain columns only: the natural-name index (subclouds.models) gives the
    window's rows without sorting the fleet, and the matching rows are counted by a separate count(*). Any
    other view sorts every matching row anyway and counts them in the same query (count(*) OVER ())."""
    return view.sort[0] == "name" and set(view.filter) <= {"availability", "management", "group"}


def _window_sql(view):
    """(SQL, params) of the names in the window, in order, each with the number matching the filter
    (None when _indexed(view): then _matched counts them)."""
    t, uses, where, params = _tables(), view.uses(), [], []
    joins = []
    if uses & {"group", "q"}:
        joins.append("LEFT JOIN {group} g ON g.id = s.group_id")
    if uses & {"sync", "sync_status"}:
        joins.append(f"LEFT JOIN {_SYNC} y ON y.subcloud_id = s.id")
    if "alarms" in uses:
        joins.append(f"LEFT JOIN {_ALARMS} a ON a.subcloud_id = s.id")
    if "last_change" in uses:
        joins.append("LEFT JOIN LATERAL (SELECT c.created_at AS at FROM {change} c WHERE c.subcloud_id = s.id"
                     " ORDER BY c.id DESC LIMIT 1) lc ON true")
    f = view.filter
    for key, column in (("availability", "s.availability_status"), ("management", "s.management_state"),
                        ("group", "s.group_id")):
        if key in f:
            where.append(f"{column} = %s")
            params.append(f[key])
    if "sync" in f:
        where.append(f"coalesce(y.sync, '{SyncStatus.UNKNOWN}') = %s")
        params.append(f["sync"])
    if "alarms" in f:
        where.append({"any": "coalesce(a.total, 0) > 0", "critical": "coalesce(a.critical, 0) > 0",
                      "none": "coalesce(a.total, 0) = 0"}[f["alarms"]])
    if "q" in f:
        # The pages' text filter: name, description, location, group and region name, case-insensitive.
        where.append("strpos(lower(concat_ws(' ', s.name, s.description, s.location, g.name, s.region_name)), %s) > 0")
        params.append(f["q"])
    key, direction = view.sort
    d = "ASC" if direction == "ascending" else "DESC"
    nulls = "NULLS FIRST" if d == "ASC" else "NULLS LAST"
    order = [f"{_SORT_SQL[key]} {d} {nulls}"] if _SORT_SQL[key] else []
    order += [f"{part} {d}" for part in _NATURAL]
    count = "NULL" if _indexed(view) else "count(*) OVER ()"
    sql = (f"SELECT s.name, {count} FROM {{subcloud}} s {' '.join(joins)} "
           f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {', '.join(order)} LIMIT %s OFFSET %s")
    return sql.format(**t), [*params, view.limit, view.offset]


def _matched(view):
    """The number of subclouds matching the filter (for an empty window or an _indexed one)."""
    sql, params = _window_sql(View(view.filter, ("name", "ascending"), 0, 0))
    sql = "SELECT count(*) FROM (" + sql.rsplit(" ORDER BY ", 1)[0] + ") m"
    with connection.cursor() as cur:
        cur.execute(sql, params[:-2])
        return cur.fetchone()[0]


def counts():
    """The fleet's counts: total, per availability / management / sync and active faults per severity, also per group.

    Two GROUP BY queries whatever the fleet's size.
    """
    t = _tables()

    def empty():
        return {"total": 0, "availability": dict.fromkeys(Availability.values, 0),
                "management": dict.fromkeys(ManagementState.values, 0), "sync": dict.fromkeys(SyncStatus.values, 0),
                "alarms": {**dict.fromkeys(Severity.values, 0), "total": 0}}

    fleet, groups = empty(), {}
    with connection.cursor() as cur:
        cur.execute(f"""SELECT s.group_id, s.availability_status, s.management_state, coalesce(y.sync, '{SyncStatus.UNKNOWN}'),
                               count(*)
                        FROM {{subcloud}} s LEFT JOIN {_SYNC} y ON y.subcloud_id = s.id GROUP BY 1, 2, 3, 4""".format(**t))
        for group, availability, management, sync, n in cur.fetchall():
            for c in (fleet, groups.setdefault(str(group), empty())):
                c["total"] += n
                for kind, value in (("availability", availability), ("management", management), ("sync", sync)):
                    c[kind][value] = c[kind].get(value, 0) + n
        cur.execute("""SELECT s.group_id, f.severity, count(*) FROM {fault} f JOIN {subcloud} s ON s.id = f.subcloud_id
                       WHERE f.cleared_at IS NULL GROUP BY 1, 2""".format(**t))
        for group, severity, n in cur.fetchall():
            for c in (fleet, groups.setdefault(str(group), empty())):
                c["alarms"][severity] = c["alarms"].get(severity, 0) + n
                c["alarms"]["total"] += n
    return {**fleet, "groups": groups}


# (revision, counts): every change to what is counted writes a change-log row, so counts read at the same
# revision are the same; a filter, sort or scroll re-uses them instead of two GROUP BYs over the fleet.
_counted = (None, None)


def counts_at(revision):
    """counts() as of `revision` (call inside the same repeatable_read view), shared by the process's sockets."""
    global _counted
    at, value = _counted
    if at != revision:
        value = counts()
        _counted = (revision, value)
    return value


def _last_changes(ids):
    if not ids:
        return {}
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT s.name, (SELECT c.created_at FROM {StateChange._meta.db_table} c
                                WHERE c.subcloud_id = s.id ORDER BY c.id DESC LIMIT 1)
                FROM {Subcloud._meta.db_table} s WHERE s.id = ANY(%s)""", [list(ids)])
        return {name: format_time(at) for name, at in cur.fetchall() if at is not None}


def window_message(view, names=False):
    """(revision, the subclouds in the window, the `window` message encoded), read in one consistent view.

    `names`: also every matching name in order (for exporting or selecting what the filter shows).
    """
    with repeatable_read():
        revision = current_revision()
        sql, params = _window_sql(view)
        with connection.cursor() as cur:
            cur.execute(sql, params)
            found = cur.fetchall()
        order = [name for name, _ in found]
        if found and found[0][1] is not None:
            matched = found[0][1]
        else:
            matched = _matched(view) if view.offset or not view.limit or found else 0
        by_name = {s["name"]: s for s in subclouds_json(Subcloud.objects.filter(name__in=order))} if order else {}
        rows = [by_name[n] for n in order if n in by_name]
        faults = Fault.objects.filter(subcloud__name__in=order, cleared_at__isnull=True).order_by("-raised_at", "-id")
        message = {
            "type": "window",
            "revision": revision,
            "view": view.as_json(),
            "matched": matched,
            "counts": counts_at(revision),
            "subclouds": rows,
            "faults": [fault_json(f) for f in faults] if order else [],
            "last_change": _last_changes([s["id"] for s in rows]),
        }
        if names:
            sql, params = _window_sql(View(view.filter, view.sort, 0, 0))
            with connection.cursor() as cur:
                cur.execute(sql.replace("LIMIT %s OFFSET %s", ""), params[:-2])
                message["names"] = [name for name, _ in cur.fetchall()]
    return revision, set(order), encode(message)
