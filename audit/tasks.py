"""Celery tasks: short, idempotent, thin; the work is in cycle.py and outbox.py."""

import logging

from celery import shared_task

from state.kinds import Source

from . import cycle, outbox

log = logging.getLogger(__name__)


@shared_task(name="audit.tasks.audit_cycle")
def audit_cycle(triggered=False):
    """Beat, every DCPORTAL_AUDIT_INTERVAL (or a triggered full audit): start a cycle unless one runs."""
    cycle.start_cycle(lambda token, ids, since, now: audit_chunk.delay(token, ids, since, now), triggered=triggered)


@shared_task(name="audit.tasks.audit_chunk")
def audit_chunk(token, ids, since, now):
    """One chunk of a cycle; the last chunk closes the cycle and honours a full audit requested meanwhile."""
    if cycle.run_chunk(token, ids, since, now) and cycle.rerun_requested():
        audit_cycle.delay(triggered=True)


@shared_task(name="audit.tasks.audit_now")
def audit_now(ids):
    """A triggered audit of some subclouds (going online, identity leaving unknown, manage)."""
    result = cycle.audit_subclouds(ids, source=Source.TRIGGER)
    log.info("triggered audit of %d subclouds: %d failed, %d sent", result.subclouds, result.failures, result.sent)


@shared_task(name="audit.tasks.deliver_outbox")
def deliver_outbox():
    """Beat, every DCPORTAL_OUTBOX_POLL_SECONDS: notices to dcorch and certmon, triggered audits."""
    # Audits first: they are quick to queue, while a slow receiver can hold a delivery run for a while.
    outbox.dispatch_triggered_audits(audit_now.delay, lambda: audit_cycle.delay(triggered=True))
    for kind in outbox.RECEIVERS:
        outbox.deliver_notifications(kind)
