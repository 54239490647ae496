"""Applying accepted updates: one transaction per batch of subclouds.

apply_batch() locks up to `limit` subclouds that have pending updates (rows
other workers hold are skipped, so workers on any host share the work without
waiting), applies every pending update of each, in sequence order, to an
in-memory copy by the rules, writes back only the difference, records the
change log and the outbox, and marks the updates applied, all in one
transaction. The cost is a fixed number of statements per batch, however many
updates a subcloud had pending (floods coalesce here).
"""

import logging
import time
from bisect import bisect_left
from dataclasses import dataclass, field

import orjson
from django.db import connection, transaction
from django.utils import timezone

from . import rules, store
from .actors import Actor
from .models import Outcome, StateChange, StateUpdate

log = logging.getLogger(__name__)

# Upper bound of updates loaded per batch; a flood on one subcloud is worked
# through in sequence-ordered prefixes of this size.
MAX_UPDATES_PER_BATCH = 20000
# Only one process prunes at a time (pg_try_advisory_xact_lock).
PRUNE_LOCK = 0x6463_7072  # "dcpr"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


@dataclass
class BatchResult:
    subclouds: int = 0
    applied: int = 0
    noops: int = 0
    failed: int = 0
    latencies: list = field(default_factory=list)


@dataclass
class Counters:
    """What a worker process has done; published in its heartbeat."""

    applied: int = 0
    noops: int = 0
    failed: int = 0
    latency_counts: list = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_sum: float = 0.0

    def add(self, result):
        self.applied += result.applied
        self.noops += result.noops
        self.failed += result.failed
        for seconds in result.latencies:
            self.latency_counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self.latency_sum += seconds

    def latency_json(self):
        return {"buckets": list(LATENCY_BUCKETS[:-1]) + ["+Inf"], "counts": self.latency_counts, "sum": self.latency_sum}


def _load_pending(ids):
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT id, subcloud_id, kind, payload, accepted_at, actor, source, actor_via, actor_address
                FROM {StateUpdate._meta.db_table}
                WHERE applied_at IS NULL AND subcloud_id = ANY(%s)
                ORDER BY subcloud_id, id LIMIT %s""",
            [ids, MAX_UPDATES_PER_BATCH],
        )
        # Django's psycopg setup hands jsonb back as text on raw cursors.
        return [(i, sid, kind, orjson.loads(p) if isinstance(p, str) else p, at, who)
                for i, sid, kind, p, at, *who in cur.fetchall()]


def _mark(marks, worker):
    if not marks:
        return
    ids, outcomes = zip(*marks)
    with connection.cursor() as cur:
        cur.execute(
            f"""UPDATE {StateUpdate._meta.db_table} u SET applied_at = %s, outcome = v.o, worker = %s
                FROM unnest(%b::bigint[], %b::text[]) AS v(id, o) WHERE u.id = v.id AND u.id = ANY(%b::bigint[])""",
            # = ANY: by the primary key, not a hash of the whole intake table (store.py: 10 ms -> 1.3 ms a batch).
            [timezone.now(), worker, list(ids), list(outcomes), list(ids)],
        )


def _apply_pending(states, pending, result):
    """Run the rules over every pending update, in sequence order, on the in-memory states.

    Returns (marks [(update id, Outcome)], sequences {subcloud id: last applied update id},
    actors {subcloud id: Actor of the last update that changed something}: the change-log row's actor).
    """
    marks, sequences, actors = [], {}, {}
    for update_id, sid, kind, payload, _accepted_at, who in pending:
        state = states[sid]
        snapshot = state.snapshot()
        try:
            changed = rules.apply_update(state, kind, payload)
        except Exception:
            # Payloads are validated at intake, so this is a bug; undo the
            # partial change, record it, and go on rather than block the
            # subcloud's queue forever.
            states[sid] = snapshot
            log.exception("update %s of subcloud %s failed", update_id, state.name)
            marks.append((update_id, Outcome.FAILED))
            result.failed += 1
            continue
        marks.append((update_id, Outcome.APPLIED if changed else Outcome.NOOP))
        sequences[sid] = update_id
        if changed:
            result.applied += 1
            actors[sid] = who
        else:
            result.noops += 1
    for state in states.values():
        for note in state.notes:
            log.debug("%s: %s", state.name, note)
    return marks, sequences, {sid: Actor(*who) for sid, who in actors.items()}


def apply_batch(limit, worker=""):
    """Apply the pending updates of up to `limit` subclouds; see the module docstring."""
    result = BatchResult()
    with transaction.atomic():
        rows = store.lock_pending(limit)
        if not rows:
            return result
        # A locked subcloud may have nothing pending any more: its updates were
        # applied by another worker between our EXISTS check and our row lock
        # (READ COMMITTED re-checks only rows that were updated). Harmless:
        # it then simply gets no updates below.
        states = store.build_states(rows)
        originals = {sid: state.copy() for sid, state in states.items()}
        pending = _load_pending(list(states))
        marks, sequences, actors = _apply_pending(states, pending, result)
        # Marked first: store.save ends with the change-log append, which holds CHANGE_LOG_LOCK (serialising
        # every writer's commit) until the commit; nothing else should run while it is held.
        _mark(marks, worker)
        store.save(originals, states, reason="update", sequences=sequences, actors=actors)
        result.subclouds = len(states)
    done = time.time()
    result.latencies = [done - row[4].timestamp() for row in pending]
    return result


def prune(applied_older_than, changes_older_than, chunk=10000):
    """Delete applied intake rows and change-log rows past their retention, in bounded chunks.

    Only one process prunes at a time (a try-lock: the others skip). The
    websocket feed answers a resync older than the change log with a snapshot.
    """
    now = timezone.now()
    deleted = 0
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [PRUNE_LOCK])
        if not cur.fetchone()[0]:
            return 0
        for table, column, age, extra in (
            (StateUpdate._meta.db_table, "applied_at", applied_older_than, "AND applied_at IS NOT NULL"),
            (StateChange._meta.db_table, "created_at", changes_older_than, ""),
        ):
            cur.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} < %s {extra} LIMIT %s)",
                [now - age, chunk],
            )
            deleted += cur.rowcount
    return deleted


