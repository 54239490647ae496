"""Delivering the outbox the state service writes (state.models.Outbox).

dcorch and certmon notices are POSTed as JSON (the row's payload) to
DCPORTAL_DCORCH_URL / DCPORTAL_CERTMON_URL, at least once and in order per
subcloud:
- one deliverer per kind at a time (a Redis lease), so two runs never race
  two states of one subcloud past each other;
- every run first collapses the pending rows to the latest one per subcloud
  (each dcorch payload carries the whole state), in the claim transaction
  (SELECT ... FOR UPDATE SKIP LOCKED, never waiting on anyone), even while the
  receiver is down, so the outbox stays at one pending row per subcloud;
- the HTTP happens outside any transaction; delivered rows are marked in a
  second short one; a failure (connection, timeout, 5xx, 408, 429) stops the
  run and backs off exponentially; another 4xx is a notice the receiver will
  never take, so it is logged and dropped rather than retried forever.
An unset URL means that receiver is not told: its rows are dropped, and the
worker says so once in its log.

audit-subcloud / audit-all rows are triggered audits: claimed together
(coalesced) and queued as audit tasks, then marked.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field

import aiohttp
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from state.models import Outbox, OutboxKind

from . import coordination

log = logging.getLogger(__name__)

RECEIVERS = {OutboxKind.DCORCH: "DCORCH_URL", OutboxKind.CERTMON: "CERTMON_URL"}
AUDIT_KINDS = (OutboxKind.AUDIT_SUBCLOUD, OutboxKind.AUDIT_ALL)
# Notices POSTed at once; each subcloud has at most one in flight (rows are collapsed first).
POST_CONCURRENCY = 20
# A run hands over to the next one after this long, so the lease below is never outlived.
RUN_SECONDS = 20.0
LEASE_SECONDS = 60.0
RETRYABLE_4XX = (408, 425, 429)

_unset_logged = set()


@dataclass
class Delivery:
    delivered: int = 0
    collapsed: int = 0
    dropped: int = 0
    failed: bool = False
    errors: list = field(default_factory=list)


def _mark_delivered(ids):
    if ids:
        Outbox.objects.filter(pk__in=ids, delivered_at__isnull=True).update(delivered_at=timezone.now())


def _claim_latest(kind, limit):
    """Collapse the pending rows of `kind` to the latest per subcloud; return the oldest `limit` of those.

    Returns (rows [(id, payload)], collapsed count). Rows another run holds are skipped.
    """
    table = Outbox._meta.db_table
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"SELECT id, subcloud_id FROM {table} WHERE kind = %s AND delivered_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED",
            [kind],
        )
        claimed = cur.fetchall()
        latest = {}
        for row_id, subcloud_id in claimed:
            # A deleted subcloud's rows (subcloud_id null) are delivered one by one.
            latest[subcloud_id if subcloud_id is not None else ("row", row_id)] = row_id
        keep = set(latest.values())
        # Only rows this claim saw are collapsed. Per subcloud, id order is commit order
        # (rows are written under the subcloud's row lock), so a row committed after
        # this claim is newer than everything of its subcloud seen here: it stays
        # pending and goes out after them, never before.
        superseded = [row_id for row_id, _ in claimed if row_id not in keep]
        if superseded:
            cur.execute(f"UPDATE {table} SET delivered_at = %s WHERE id = ANY(%s)", [timezone.now(), superseded])
        collapsed = len(superseded)
        chosen = sorted(keep)[:limit]
        rows = list(Outbox.objects.filter(pk__in=chosen).order_by("id").values_list("id", "payload"))
    return rows, collapsed


@dataclass(frozen=True)
class Posted:
    """What one POST came to: the HTTP status, or None when no answer came (connection, timeout)."""

    status: int | None
    error: str = ""

    @property
    def verdict(self):
        """ok (delivered), drop (a 4xx the receiver will never take) or retry (the run stops and backs off)."""
        if self.status is None:
            return "retry"
        if 200 <= self.status < 300:
            return "ok"
        if 400 <= self.status < 500 and self.status not in RETRYABLE_4XX:
            return "drop"
        return "retry"


async def _post_all(url, kind, rows, timeout, deadline):
    """POST each row; returns {id: Posted}.

    No new post starts after a failure or past `deadline` (monotonic); rows not
    posted are left pending for the next run.
    """
    posted = {}
    failed = asyncio.Event()
    semaphore = asyncio.Semaphore(POST_CONCURRENCY)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout), trust_env=False) as session:

        async def post(row_id, payload):
            async with semaphore:
                if failed.is_set() or time.monotonic() > deadline:
                    return
                try:
                    async with session.post(url, json=payload, headers={"Idempotency-Key": f"{kind}-{row_id}"}) as resp:
                        await resp.read()
                        result = Posted(resp.status)
                except (aiohttp.ClientError, TimeoutError, OSError) as err:
                    result = Posted(None, f"{type(err).__name__}: {err}")
                if result.verdict == "drop":
                    result = Posted(result.status, f"HTTP {result.status} for {payload}")
                elif result.verdict == "retry":
                    result = Posted(result.status, result.error or f"HTTP {result.status}")
                    failed.set()
                posted[row_id] = result

        await asyncio.gather(*(post(row_id, payload) for row_id, payload in rows))
    return posted


def _backoff_key(kind):
    return coordination.key(f"outbox-backoff:{kind}")


def _in_backoff(kind):
    state = coordination.get_json(f"outbox-backoff:{kind}")
    return bool(state and state["retry_at"] > time.time())


def _record_failure(kind):
    state = coordination.get_json(f"outbox-backoff:{kind}") or {"failures": 0}
    failures = state["failures"] + 1
    low, high = settings.OUTBOX_BACKOFF
    delay = min(high, low * 2 ** (failures - 1))
    coordination.put_json(f"outbox-backoff:{kind}", {"failures": failures, "retry_at": time.time() + delay}, seconds=3600)
    return delay


def deliver_notifications(kind):
    """One run for dcorch or certmon; see the module docstring."""
    result = Delivery()
    url = getattr(settings, RECEIVERS[kind])
    lease = coordination.Lease(f"outbox-lease:{kind}", LEASE_SECONDS)
    if not lease.acquire():
        return result
    try:
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline:
            rows, collapsed = _claim_latest(kind, settings.OUTBOX_BATCH)
            result.collapsed += collapsed
            if not rows:
                break
            if not url:
                _drop_unsent(kind, rows, result)
                continue
            if _in_backoff(kind):
                break
            posted = asyncio.run(_post_all(url, kind, rows, settings.OUTBOX_TIMEOUT, deadline))
            lease.renew()
            if not _record_posts(kind, url, posted, result):
                break
    finally:
        lease.release()
    return result


def _drop_unsent(kind, rows, result):
    """No URL for this receiver: its rows are marked and counted as dropped (said once in the log)."""
    if kind not in _unset_logged:
        _unset_logged.add(kind)
        log.warning("DCPORTAL_%s_URL is not set: %s notifications are not sent (dropped)", kind.upper(), kind)
    _mark_delivered([row_id for row_id, _ in rows])
    result.dropped += len(rows)


def _record_posts(kind, url, posted, result):
    """Mark what was delivered or dropped; on a failure count the attempts and back off. False: stop the run."""
    verdicts = {row_id: p.verdict for row_id, p in posted.items()}
    _mark_delivered([row_id for row_id, v in verdicts.items() if v in ("ok", "drop")])
    result.delivered += sum(v == "ok" for v in verdicts.values())
    result.dropped += sum(v == "drop" for v in verdicts.values())
    for p in posted.values():
        if p.error:
            result.errors.append(p.error)
        if p.verdict == "drop":
            log.error("%s refused a notice, dropped: %s", kind, p.error)
    retry = [row_id for row_id, v in verdicts.items() if v == "retry"]
    if not retry:
        coordination.client().delete(_backoff_key(kind))
        return True
    Outbox.objects.filter(pk__in=retry).update(attempts=F("attempts") + 1)
    result.failed = True
    delay = _record_failure(kind)
    log.warning("%s receiver %s failed (%s); retrying in %.1fs", kind, url, posted[retry[-1]].error, delay)
    return False


def dispatch_triggered_audits(audit_now, audit_everything):
    """Claim every pending audit request, queue them coalesced, then mark them. Returns (subclouds, fleet?)."""
    lease = coordination.Lease("outbox-lease:audits", LEASE_SECONDS)
    if not lease.acquire():
        return 0, False
    try:
        # No row lock: it could only last until this read, not through the queueing and
        # marking below. The lease is what keeps two runs from queueing the same rows;
        # rows are marked after they are queued, so a run that dies in between
        # leaves them pending and the next run queues them again (an extra audit, harmless).
        rows = list(
            Outbox.objects.filter(kind__in=AUDIT_KINDS, delivered_at__isnull=True)
            .order_by("id")
            .values_list("id", "kind", "subcloud_id")
        )
        if not rows:
            return 0, False
        subclouds = sorted({sid for _, kind, sid in rows if kind == OutboxKind.AUDIT_SUBCLOUD and sid is not None})
        fleet = any(kind == OutboxKind.AUDIT_ALL for _, kind, _ in rows)
        if fleet:
            audit_everything()
        for start in range(0, len(subclouds), settings.AUDIT_CHUNK):
            audit_now(subclouds[start : start + settings.AUDIT_CHUNK])
        _mark_delivered([row_id for row_id, _, _ in rows])
        return len(subclouds), fleet
    finally:
        lease.release()
