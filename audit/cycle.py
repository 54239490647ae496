"""The periodic audit: one cycle at a time, fanned out in chunks over every audit worker.

start_cycle() (beat, every DCPORTAL_AUDIT_INTERVAL) takes the cycle lease, a
Redis lock with an expiry that running chunks renew, so cycles never overlap:
a tick that finds the previous cycle still running is skipped (the slow cycle
delays the next one instead of doubling it), and a cycle whose worker died
stops blocking once its lease expires. The subclouds are split into chunks,
each a task; the chunk that finishes last records the cycle's figures and
releases the lease.

audit_subclouds() is the work itself, shared with triggered audits: load the
stored states (3 queries), probe, decide by audit/rules.py, and hand the
messages that change something to the state service's durable intake in
batches (no HTTP round trip to ourselves).
"""

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError

from state import intake, store
from state.actors import Actor
from state.models import Source, StateUpdate, UpdateKind
from subclouds.models import Subcloud

from . import coordination, probing
from . import rules as audit_rules

log = logging.getLogger(__name__)

CYCLE_LEASE = "cycle-lease"
# Set by a triggered full audit that found a cycle running: run another one right after it.
RERUN = "cycle-rerun"
PREVIOUS_START = "cycle-previous-start"
LAST_CYCLE = "last-cycle"


@dataclass
class AuditResult:
    subclouds: int = 0
    failures: int = 0
    sent: int = 0
    seconds: float = 0.0


def _load(ids):
    """States of the probed subclouds among `ids` (stored, plus updates not applied yet) and their audit URLs.

    Nothing is locked: the audit only reads, and the state workers apply what it sends by the rules anyway.
    """
    # Only subclouds with an audit URL: a triggered audit names every subcloud that came online, and
    # loading the endpoints of those that are never probed cost the audit worker more than the probes
    # (BENCHMARKS.md, issue 13: a 5,000-subcloud dead office).
    loaded, extra = store.load_states(ids, extra_columns=("audit_url",), where="audit_url IS NOT NULL AND audit_url <> ''")
    urls = {sid: url for sid, (url,) in extra.items() if url}
    states = {sid: s for sid, s in loaded.items() if sid in urls and audit_rules.should_probe(s)}
    pending = {}
    for sid, kind, payload in (
        StateUpdate.objects.filter(subcloud_id__in=list(states), applied_at__isnull=True)
        .order_by("id")
        .values_list("subcloud_id", "kind", "payload")
    ):
        pending.setdefault(sid, []).append((kind, payload))
    for sid, updates in pending.items():
        audit_rules.with_pending(states[sid], updates)
    return states, {sid: urls[sid] for sid in states}


def send(messages, source=Source.AUDIT):
    """Hand bulk messages [(subcloud id, payload)] to the intake, a batch at a time; returns how many were accepted."""
    actor = Actor(source=source)
    accepted = 0
    for start in range(0, len(messages), settings.STATE_BULK_MAX):
        batch = messages[start : start + settings.STATE_BULK_MAX]
        try:
            accepted += intake.accept(UpdateKind.BULK, batch, actor)[0]
        except IntegrityError:
            # A subcloud was deleted while it was probed: send the others.
            alive = set(Subcloud.objects.filter(pk__in=[sid for sid, _ in batch]).values_list("pk", flat=True))
            accepted += intake.accept(UpdateKind.BULK, [(sid, m) for sid, m in batch if sid in alive], actor)[0]
    return accepted


def audit_subclouds(ids, since=None, now=None, tick=None, source=Source.AUDIT):
    """Probe the given subclouds once and send what changed; `since`/`now` bound this cycle's refresh window.

    source: Source.AUDIT for the periodic cycle, Source.TRIGGER for an audit a change triggered.
    """
    started = time.monotonic()
    states, urls = _load(ids)
    probes = probing.probe(urls, settings.AUDIT_CONNECTIONS, settings.AUDIT_TIMEOUT, tick)
    messages = []
    for sid, state in states.items():
        refresh = audit_rules.refresh_due(sid, since, now, settings.AUDIT_REFRESH_SECONDS)
        message = audit_rules.audit_message(state, probes[sid], refresh)
        if message:
            messages.append((sid, message))
    result = AuditResult(
        subclouds=len(states),
        failures=sum(not p.ok for p in probes.values()),
        sent=send(messages, source),
    )
    result.seconds = time.monotonic() - started
    return result


def probed_subcloud_ids():
    return list(
        Subcloud.objects.exclude(audit_url__isnull=True).exclude(audit_url="").order_by("id").values_list("id", flat=True)
    )


def start_cycle(dispatch, triggered=False):
    """Begin a cycle unless one is running; dispatch(token, ids, since, now) queues one chunk. Returns the token or None."""
    lease = coordination.Lease(CYCLE_LEASE, settings.AUDIT_LOCK_SECONDS)
    if not lease.acquire():
        if triggered:
            coordination.client().set(coordination.key(RERUN), "1", px=lease.ms)
        log.info("audit cycle still running; this tick is skipped")
        return None
    ids = probed_subcloud_ids()
    now = time.time()
    previous = coordination.client().getset(coordination.key(PREVIOUS_START), now)
    since = float(previous) if previous else None
    chunks = [ids[i : i + settings.AUDIT_CHUNK] for i in range(0, len(ids), settings.AUDIT_CHUNK)]
    if not chunks:
        lease.release()
        return None
    r = coordination.client()
    progress = coordination.key(f"cycle:{lease.token}")
    r.hset(progress, mapping={"started": now, "chunks": len(chunks), "left": len(chunks), "subclouds": 0,
                              "failures": 0, "sent": 0, "triggered": int(triggered)})
    r.pexpire(progress, lease.ms * 10)
    for chunk in chunks:
        dispatch(lease.token, chunk, since, now)
    log.debug("audit cycle %s: %d subclouds in %d chunks", lease.token, len(ids), len(chunks))
    return lease.token


def run_chunk(token, ids, since, now):
    """One chunk of a cycle; the last one to finish closes the cycle. Returns True when it closed it."""
    lease = coordination.Lease.held_by(CYCLE_LEASE, token, settings.AUDIT_LOCK_SECONDS)
    if not lease.renew():
        log.warning("audit cycle %s was abandoned (its lease expired); chunk skipped", token)
        return False
    result = audit_subclouds(ids, since, now, tick=lease.renew)
    lease.renew()
    r = coordination.client()
    progress = coordination.key(f"cycle:{token}")
    pipe = r.pipeline()
    pipe.hincrby(progress, "subclouds", result.subclouds)
    pipe.hincrby(progress, "failures", result.failures)
    pipe.hincrby(progress, "sent", result.sent)
    pipe.hincrby(progress, "left", -1)
    left = pipe.execute()[-1]
    if left > 0:
        return False
    figures = r.hgetall(progress)
    finished = time.time()
    summary = {
        "token": token,
        "started": float(figures["started"]),
        "finished": finished,
        "seconds": round(finished - float(figures["started"]), 3),
        "chunks": int(figures["chunks"]),
        "subclouds": int(figures["subclouds"]),
        "failures": int(figures["failures"]),
        "sent": int(figures["sent"]),
    }
    summary["probes_per_second"] = round(summary["subclouds"] / max(summary["seconds"], 1e-6), 1)
    coordination.put_json(LAST_CYCLE, summary)
    r.delete(progress)
    lease.release()
    log.info("audit cycle done: %(subclouds)d subclouds, %(failures)d failed, %(sent)d sent, %(seconds).2fs", summary)
    return True


def rerun_requested():
    """A triggered full audit arrived while a cycle ran: consume the request."""
    return bool(coordination.client().delete(coordination.key(RERUN)))


def last_cycle():
    return coordination.get_json(LAST_CYCLE)


