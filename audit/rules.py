"""The audit's decisions (domain.md, Audit), as plain functions over a SubcloudState.

The audit (audit/) probes subclouds and asks these functions what, if
anything, to send to the state service for each result. Whether a message
would change anything is found by trying it on a copy with the state rules
themselves (rules.bulk_update), so "unchanged state is not re-sent" means
exactly what the state workers would apply. Nothing here touches the database
or the network.
"""

from dataclasses import dataclass, field

from state import rules
from subclouds.choices import ENDPOINT_TYPES, Availability, DeployStatus, SyncStatus

# An online subcloud goes offline after this many consecutive failed probes.
FAILURES_TO_GO_OFFLINE = 2


@dataclass(frozen=True)
class Probe:
    """One probe's result: reachable (ok) with the endpoint statuses it reported, or a failure."""

    ok: bool
    endpoints: dict = field(default_factory=dict)
    error: str = ""


def probe_from_answer(status_code, body):
    """The probe answer format: 200 with a JSON object {"endpoints": {type: status}} is online, anything else failed.

    Unknown endpoint types and statuses are dropped, so one odd answer cannot
    make the state service refuse a whole batch.
    """
    if status_code != 200 or not isinstance(body, dict):
        return Probe(False, error=f"HTTP {status_code}")
    endpoints = body.get("endpoints") or {}
    if not isinstance(endpoints, dict):
        endpoints = {}
    return Probe(True, {e: s for e, s in endpoints.items() if e in ENDPOINT_TYPES and s in SyncStatus.values})


def should_probe(state):
    """Secondary subclouds belong to a peer site's audit; every other subcloud with an audit URL is probed."""
    return state.deploy_status != DeployStatus.SECONDARY


def with_pending(state, updates):
    """The state the state workers will reach once they apply `updates` [(kind, payload)], accepted but not yet applied.

    The audit decides on this rather than on the stored state alone: while the
    workers lag behind (a dead office), the stored fail count is stale and a
    second failure would be counted as a first again.
    """
    for kind, payload in updates:
        rules.apply_update(state, kind, payload)
    return state


def availability_after(state, probe_ok):
    """(availability, audit-fail-count) after one probe: 2 failures to go offline, one success to come back."""
    if probe_ok:
        return Availability.ONLINE, 0
    count = min(state.audit_fail_count + 1, rules.AUDIT_FAIL_COUNT_MAX)
    if state.availability_status == Availability.ONLINE and count < FAILURES_TO_GO_OFFLINE:
        return Availability.ONLINE, count
    return Availability.OFFLINE, count


def availability_update(state, probe_ok):
    """The availability part of the bulk message, or None when neither availability nor fail count changes."""
    availability, count = availability_after(state, probe_ok)
    if availability != state.availability_status:
        return {"availability_status": availability, "update_state_only": False, "audit_fail_count": count}
    if count != state.audit_fail_count:
        # Same availability: send the count alone (availability rule 2), as rule 3 would ignore it.
        return {"availability_status": None, "update_state_only": False, "audit_fail_count": count}
    return None


def refresh_update(state):
    """The hourly update-state-only refresh: repairs a missed alarm, re-tells dcorch (availability rule 1)."""
    return {"availability_status": state.availability_status, "update_state_only": True, "audit_fail_count": None}


def audit_message(state, probe, refresh=False):
    """The bulk message ({"availability", "endpoints"}) for one probe, or None when nothing would change.

    refresh: this subcloud's hourly refresh is due; sent when nothing else is.
    """
    availability = availability_update(state, probe.ok)
    endpoints = {e: s for e, s in probe.endpoints.items() if state.endpoints.get(e) != s} if probe.ok else {}
    if availability or endpoints:
        trial = state.copy()
        rules.bulk_update(trial, availability, endpoints)
        if trial.fingerprint() != state.copy().fingerprint():
            return {"availability": availability, "endpoints": endpoints}
    if refresh:
        return {"availability": refresh_update(state), "endpoints": {}}
    return None


def refresh_due(subcloud_id, since, now, period):
    """Whether the subcloud's refresh falls in the window [since, now) of audit time (seconds).

    Each subcloud has a fixed phase in the period (a multiplicative hash of its
    id), so refreshes are spread evenly instead of arriving all at once. No
    previous cycle (since None): none is due; a window of a whole period or
    more: every one is.
    """
    if since is None or now <= since:
        return False
    if now - since >= period:
        return True
    phase = (subcloud_id * 2654435761 % 2**32) / 2**32 * period
    start, end = since % period, now % period
    if start <= end:
        return start <= phase < end
    return phase >= start or phase < end
