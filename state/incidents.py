"""Incidents: many subclouds leaving "online" at once, as one thing to look at instead of a wall of alarms.

Derived on request from the change log (nothing is stored, so a restart or a
second API process computes the same incidents), never a replacement for the
alarms themselves. A "down" is an availability change from online to
anything else. An incident opens when, within DCPORTAL_INCIDENT_WINDOW_SECONDS,
at least DCPORTAL_INCIDENT_MIN_SUBCLOUDS downs happen in the fleet, or at least
DCPORTAL_INCIDENT_GROUP_SHARE of a group (of DCPORTAL_INCIDENT_GROUP_MIN_SIZE
subclouds or more) goes down. The downs within a window before such a moment
belong to it; downs closer than a window to each other make one incident. Its
scope is the groups whose share tripped it, or the fleet when the count alone
did (or the downs outside those groups reach the fleet count). It closes when
every affected subcloud is back online; recovery begins with the first one back.

Cost: one pass over the availability changes kept in the log (window
functions; grows with the log's availability changes) plus one over the
affected subclouds' later changes, once per change-log revision: the result is
kept per process until the log, the fleet's grouping or a threshold changes.
`./dev bench as-of` (280,000 changes, 28 incidents, busy machine): 0.01 s for
the pages' open incidents and 0.37 s for the API at the same revision, 1.7-2.2 s
for the first call after a change (6.2 s on every call before the cache).
"""

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice

from django.conf import settings
from django.db import connection, transaction

from subclouds.choices import Availability, IncidentStatus
from subclouds.models import Subcloud, SubcloudGroup

from .changelog import sort_in_memory
from .models import StateChange

FLEET = "fleet"
GROUPS = "groups"
OPEN, CLOSED = IncidentStatus.OPEN.value, IncidentStatus.CLOSED.value


@dataclass
class Incident:
    id: int  # the revision of its first down: stable across recomputations
    scope: str
    group_ids: list
    started_at: datetime
    members: dict = field(default_factory=dict)  # subcloud id -> name
    first_revision: int = 0
    recovery_started_at: datetime | None = None
    recovery_ended_at: datetime | None = None
    peak: int = 0
    counts: list = field(default_factory=list)  # [(time, offline among the affected)]
    still_affected: list = field(default_factory=list)

    @property
    def status(self):
        return CLOSED if self.recovery_ended_at else OPEN


# Times leave PostgreSQL as microseconds since the epoch: psycopg's parsing of 200,000 timestamps took
# 0.9 s of the 2 s; the same instants, built here in UTC (Django's connection time zone) from an integer.
_MICROSECONDS = "(extract(epoch FROM created_at) * 1000000)::bigint"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _moment(microseconds):
    return _EPOCH + timedelta(microseconds=microseconds)


def _downs_in_bursts(window, min_subclouds, share, min_size):
    """The downs that lie within a window before a tripping moment: [(id, at, sid, name, gid, fleet, group)]."""
    table = StateChange._meta.db_table
    subclouds = Subcloud._meta.db_table
    with transaction.atomic(), connection.cursor() as cur:
        sort_in_memory(cur)  # four sorts of every down (0.6 s -> 0.37 s)
        cur.execute(
            f"""
            WITH down AS (
                SELECT c.id, c.created_at AS at, c.subcloud_id AS sid, c.subcloud_name AS name, s.group_id AS gid
                FROM {table} c JOIN {subclouds} s ON s.id = c.subcloud_id
                WHERE c.changes ? 'availability_status' AND c.previous->>'availability_status' = %(online)s
                  AND c.changes->>'availability_status' <> %(online)s
            ), size AS (
                SELECT group_id AS gid, count(*) AS n FROM {subclouds} GROUP BY group_id
            ), counted AS (
                SELECT down.*,
                       count(*) OVER (ORDER BY at RANGE BETWEEN %(window)s PRECEDING AND CURRENT ROW) AS fleet_n,
                       count(*) OVER (PARTITION BY down.gid ORDER BY at
                                      RANGE BETWEEN %(window)s PRECEDING AND CURRENT ROW) AS group_n,
                       size.n AS group_size
                FROM down JOIN size USING (gid)
            ), tripped AS (
                SELECT *, fleet_n >= %(min_subclouds)s AS fleet_trips,
                       group_size >= %(min_size)s AND group_n >= %(share)s * group_size AS group_trips
                FROM counted
            ), member AS (
                SELECT *,
                       bool_or(fleet_trips) OVER (ORDER BY at RANGE BETWEEN CURRENT ROW AND %(window)s FOLLOWING) AS in_fleet,
                       bool_or(group_trips) OVER (PARTITION BY gid ORDER BY at
                                                  RANGE BETWEEN CURRENT ROW AND %(window)s FOLLOWING) AS in_group
                FROM tripped
            )
            SELECT id, (extract(epoch FROM at) * 1000000)::bigint, sid, name, gid, in_fleet, in_group
            FROM member WHERE in_fleet OR in_group ORDER BY at, id
            """,
            {"online": Availability.ONLINE, "window": timedelta(seconds=window), "min_subclouds": min_subclouds,
             "share": share, "min_size": min_size},
        )
        return [(rev, _moment(us), *rest) for rev, us, *rest in cur.fetchall()]


def _cluster(downs, window, min_subclouds):
    """Downs closer than a window to each other make one incident; its scope from what tripped it."""
    clusters, last = [], None
    for down in downs:
        if last is None or (down[1] - last).total_seconds() > window:
            clusters.append([])
        clusters[-1].append(down)
        last = down[1]
    incidents = []
    for cluster in clusters:
        tripped_groups = sorted({gid for _, _, _, _, gid, _, in_group in cluster if in_group})
        outside = {sid for _, _, sid, _, gid, _, _ in cluster if gid not in tripped_groups}
        if tripped_groups and len(outside) < min_subclouds:
            scope, members = GROUPS, [d for d in cluster if d[4] in tripped_groups]
        else:
            scope, members = FLEET, cluster
        incidents.append(Incident(
            id=members[0][0], scope=scope, group_ids=tripped_groups if scope == GROUPS else [],
            started_at=members[0][1], first_revision=members[0][0],
            members={sid: name for _, _, sid, name, *_ in members},
        ))
    return incidents


def _follow(incidents):
    """Counts over time, recovery and closing from the affected subclouds' availability changes (one query)."""
    if not incidents:
        return
    table = StateChange._meta.db_table
    sids = sorted({sid for i in incidents for sid in i.members})
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT id, {_MICROSECONDS}, subcloud_id, changes->>'availability_status' = %s FROM {table}
            WHERE subcloud_id = ANY(%s) AND id >= %s AND changes ? 'availability_status' ORDER BY id
            """,
            [Availability.ONLINE, sids, min(i.first_revision for i in incidents)],
        )
        changes = cur.fetchall()
    revisions = [rev for rev, *_ in changes]
    moments = {}  # a change is seen by every incident still open at it: build its time once
    for incident in incidents:
        offline, waiting = set(), set(incident.members)  # waiting: affected subclouds not yet gone down in it
        # from its first down on (the changes are in revision order), not from the oldest incident's
        for _rev, us, sid, online in islice(changes, bisect_left(revisions, incident.first_revision), None):
            if sid not in incident.members:
                continue
            at = moments.get(us)
            if at is None:
                at = moments[us] = _moment(us)
            if online:
                if sid not in offline:
                    continue
                offline.discard(sid)
                incident.recovery_started_at = incident.recovery_started_at or at
            else:
                offline.add(sid)
                waiting.discard(sid)
            if incident.counts and incident.counts[-1][0] == at:
                incident.counts[-1] = (at, len(offline))
            else:
                incident.counts.append((at, len(offline)))
            incident.peak = max(incident.peak, len(offline))
            if not offline and not waiting:
                incident.recovery_ended_at = at
                break
        incident.still_affected = sorted(incident.members[sid] for sid in offline)


# Per process: (what the incidents are derived from, the incidents). Derived data, so a restart only costs
# one recomputation; revision order is commit order (state/changelog.py), so the newest and oldest kept
# revision plus the fleet's subclouds and groups name every input the derivation reads.
# Only read by incidents(), which copies what it returns.
_cached = (None, [])


def _inputs():
    """What the derivation depends on: the kept revisions, the subclouds and their groups, the settings (2 ms)."""
    with connection.cursor() as cur:
        # both ends with their times: a sequence reset after a flush reuses ids, never with the same time
        cur.execute(f"(SELECT id, created_at FROM {StateChange._meta.db_table} ORDER BY id LIMIT 1) UNION ALL "
                    f"(SELECT id, created_at FROM {StateChange._meta.db_table} ORDER BY id DESC LIMIT 1)")
        revisions = cur.fetchall()
        cur.execute(f"SELECT md5(string_agg(id || ':' || coalesce(group_id, 0), ',' ORDER BY id)) "
                    f"FROM {Subcloud._meta.db_table}")
        fleet = cur.fetchone()[0]
    return (revisions, fleet, connection.settings_dict["NAME"], settings.INCIDENT_WINDOW_SECONDS,
            settings.INCIDENT_MIN_SUBCLOUDS, settings.INCIDENT_GROUP_SHARE, settings.INCIDENT_GROUP_MIN_SIZE)


def _derive():
    """Every incident, recomputed only when an input changed (the overview and alarms pages ask on each load)."""
    global _cached
    key = _inputs()
    if _cached[0] == key:
        return _cached[1]
    window = settings.INCIDENT_WINDOW_SECONDS
    found = _cluster(
        _downs_in_bursts(window, settings.INCIDENT_MIN_SUBCLOUDS, settings.INCIDENT_GROUP_SHARE,
                         settings.INCIDENT_GROUP_MIN_SIZE),
        window, settings.INCIDENT_MIN_SUBCLOUDS,
    )
    _follow(found)
    _cached = (key, found)
    return found


def incidents(status=None, since=None, until=None):
    """Every incident in the change log's retention, newest first; optionally only open / closed ones, or
    those overlapping [since, until]."""
    found = _derive()
    found = [
        i for i in found
        if (status is None or i.status == status)
        and (until is None or i.started_at <= until)
        and (since is None or i.recovery_ended_at is None or i.recovery_ended_at >= since)
    ]
    return sorted(found, key=lambda i: (i.status != OPEN, -i.id))


def incident_json(incident, group_names=None):
    group_names = group_names if group_names is not None else dict(SubcloudGroup.objects.values_list("id", "name"))
    return {
        "id": incident.id,
        "status": incident.status,
        "scope": incident.scope,
        "groups": [{"id": g, "name": group_names.get(g)} for g in incident.group_ids],
        "started_at": incident.started_at.isoformat(),
        "recovery_started_at": incident.recovery_started_at and incident.recovery_started_at.isoformat(),
        "recovery_ended_at": incident.recovery_ended_at and incident.recovery_ended_at.isoformat(),
        "subclouds_affected": len(incident.members),
        "subclouds": sorted(incident.members.values()),
        "still_affected": incident.still_affected,
        "peak_offline": incident.peak,
        "counts": [{"at": at.isoformat(), "offline": n} for at, n in incident.counts],
    }


def incidents_json(**filters):
    names = dict(SubcloudGroup.objects.values_list("id", "name"))
    return [incident_json(i, names) for i in incidents(**filters)]
