"""The state rules of domain.md, written once, as plain functions.

Every function takes a SubcloudState (an in-memory copy of one subcloud, its
endpoint statuses and its active alarms) and changes it by the rules. Nothing
here touches the database or the network: state/store.py loads the states and
writes back only what differs, and effects that leave the database (dcorch,
certificate monitor, audits) are collected in `state.effects` for the outbox.
Read it next to docs/spec/domain.md; section names match.
"""

from dataclasses import dataclass, field

from subclouds.choices import Availability, DeployStatus, EndpointType, ManagementState, Severity, SyncStatus
from subclouds.errors import Refused

from .kinds import DEFAULT_ALARMABLE, DEFAULT_SYNC_STATUS, DEFAULT_UPDATE_STATE_ONLY, OutboxKind, UpdateKind

ALARM_OFFLINE = "280.001"
ALARM_OUT_OF_SYNC = "280.002"
AUDIT_FAIL_COUNT_MAX = 9999
# Rule 6: these audits are re-run for everyone when one is set to unknown.
FLEET_AUDITED_ENDPOINTS = (EndpointType.SOFTWARE, EndpointType.FIRMWARE, EndpointType.KUBERNETES)


@dataclass(frozen=True)
class Alarm:
    alarm_id: str
    entity_instance_id: str
    severity: str
    reason_text: str
    service_affecting: bool


@dataclass
class SubcloudState:
    id: int
    name: str
    region_name: str
    management_state: str
    availability_status: str
    deploy_status: str
    audit_fail_count: int
    first_identity_sync_complete: bool
    endpoints: dict
    # Endpoint row ids by type (store.py writes by primary key).
    endpoint_ids: dict = field(default_factory=dict)
    # Keys (alarm_id, entity_instance_id) of the active alarms.
    alarms: set = field(default_factory=set)
    # Details of alarms raised while applying, by key.
    raised: dict = field(default_factory=dict)
    # Outbox effects, keyed so that repeats collapse: (kind, key) -> payload.
    effects: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    FIELDS = (
        "management_state",
        "availability_status",
        "audit_fail_count",
        "first_identity_sync_complete",
    )

    def fingerprint(self):
        """Everything an update can change; equal fingerprints mean a no-op."""
        return (
            tuple(getattr(self, f) for f in self.FIELDS),
            tuple(sorted(self.endpoints.items())),
            frozenset(self.alarms),
            tuple(self.effects),
        )

    def copy(self):
        return SubcloudState(
            **{f: getattr(self, f) for f in ("id", "name", "region_name", "deploy_status", *self.FIELDS)},
            endpoints=dict(self.endpoints),
            endpoint_ids=self.endpoint_ids,
            alarms=set(self.alarms),
        )

    def snapshot(self):
        """A full copy, effects included, to roll back to if applying an update fails."""
        copy = self.copy()
        copy.raised, copy.effects, copy.notes = dict(self.raised), dict(self.effects), list(self.notes)
        return copy

    @property
    def is_secondary(self):
        return self.deploy_status == DeployStatus.SECONDARY

    # -- effects and alarms -------------------------------------------------

    def tell_dcorch(self):
        # Collapsed to one notice per subcloud per batch; its payload is made by
        # outbox_payloads() from the final state of the batch.
        self.effects[(OutboxKind.DCORCH, self.id)] = None

    def notify_online(self):
        self.effects[(OutboxKind.CERTMON, self.id)] = {"subcloud": self.name, "region_name": self.region_name}

    def trigger_audit(self):
        self.effects[(OutboxKind.AUDIT_SUBCLOUD, self.id)] = {"subcloud": self.name}

    def trigger_fleet_audit(self, endpoint_type):
        self.effects[(OutboxKind.AUDIT_ALL, endpoint_type)] = {"audit": endpoint_type}

    def outbox_payloads(self):
        """[(kind, payload)] of the effects collected; dcorch is told the state as it is now."""
        told = {
            "subcloud": self.name,
            "region_name": self.region_name,
            "management_state": self.management_state,
            "availability_status": self.availability_status,
        }
        return [(kind, told if kind == OutboxKind.DCORCH else payload) for (kind, _key), payload in self.effects.items()]

    def raise_alarm(self, alarm):
        key = (alarm.alarm_id, alarm.entity_instance_id)
        if key not in self.alarms:  # raising an active alarm is a no-op
            self.alarms.add(key)
            self.raised[key] = alarm

    def clear_alarm(self, alarm_id, entity_instance_id):
        self.alarms.discard((alarm_id, entity_instance_id))  # clearing an inactive one too


def offline_alarm(state):
    return Alarm(
        ALARM_OFFLINE,
        f"subcloud={state.name}",
        Severity.CRITICAL,
        f"{state.name} is offline",
        service_affecting=True,
    )


def out_of_sync_alarm(state, endpoint_type):
    return Alarm(
        ALARM_OUT_OF_SYNC,
        f"subcloud={state.name}.resource={endpoint_type}",
        Severity.MAJOR,
        f"{state.name} {endpoint_type} sync_status is out-of-sync",
        service_affecting=False,
    )


# -- Rules of an endpoint sync-status update ----------------------------------


def should_apply(state, endpoint_type, sync_status):
    """Rule 1: whether an endpoint update is applied at all."""
    if state.is_secondary:
        return sync_status == SyncStatus.UNKNOWN
    if sync_status != SyncStatus.IN_SYNC:
        return True
    return state.availability_status == Availability.ONLINE and (
        state.management_state == ManagementState.MANAGED or endpoint_type == EndpointType.DC_CERT
    )


def _set_endpoints(state, endpoint_types, sync_status, alarmable):
    """Store one status for several endpoints, with rules 4 and 5."""
    for endpoint_type in endpoint_types:
        # Rule 5, before the stored status changes.
        if sync_status == SyncStatus.OUT_OF_SYNC and alarmable:
            state.raise_alarm(out_of_sync_alarm(state, endpoint_type))
        else:
            state.clear_alarm(ALARM_OUT_OF_SYNC, out_of_sync_alarm(state, endpoint_type).entity_instance_id)
        # Rule 4: identity leaving unknown.
        if (
            endpoint_type == EndpointType.IDENTITY
            and state.endpoints[endpoint_type] == SyncStatus.UNKNOWN
            and sync_status != SyncStatus.UNKNOWN
        ):
            state.first_identity_sync_complete = True
            state.trigger_audit()
        state.endpoints[endpoint_type] = sync_status


def update_endpoint_status(
    state, endpoint_type=None, sync_status=DEFAULT_SYNC_STATUS, alarmable=DEFAULT_ALARMABLE, ignore_endpoints=()
):
    """An endpoint sync-status update: one endpoint, or every endpoint when endpoint_type is None."""
    if not should_apply(state, endpoint_type, sync_status):
        state.notes.append(f"{sync_status} for {endpoint_type or 'all endpoints'} not applied (rule 1)")
        return
    if endpoint_type is None:
        _set_endpoints(state, [e for e in state.endpoints if e not in set(ignore_endpoints)], sync_status, alarmable)
        return
    if endpoint_type not in state.endpoints:  # rule 3 (the API refuses it before acceptance)
        raise Refused(f"Subcloud {state.name} has no endpoint {endpoint_type}", field="endpoint_type")
    if state.endpoints[endpoint_type] == sync_status:  # rule 2
        return
    _set_endpoints(state, [endpoint_type], sync_status, alarmable)
    if sync_status == SyncStatus.UNKNOWN and endpoint_type in FLEET_AUDITED_ENDPOINTS:  # rule 6
        state.trigger_fleet_audit(endpoint_type)


# -- Rules of an availability update ------------------------------------------


def _make_offline_alarm_consistent(state, availability_status):
    if availability_status == Availability.OFFLINE and not state.is_secondary:
        state.raise_alarm(offline_alarm(state))
    else:
        state.clear_alarm(ALARM_OFFLINE, offline_alarm(state).entity_instance_id)


def update_availability(state, availability_status=None, update_state_only=DEFAULT_UPDATE_STATE_ONLY, audit_fail_count=None):
    if audit_fail_count is not None:
        audit_fail_count = min(audit_fail_count, AUDIT_FAIL_COUNT_MAX)
    if update_state_only:  # rule 1
        _make_offline_alarm_consistent(state, availability_status or state.availability_status)
        state.tell_dcorch()
        return
    if availability_status is None:  # rule 2
        if audit_fail_count is not None:
            state.audit_fail_count = audit_fail_count
        return
    if availability_status == state.availability_status:  # rule 3
        return
    _make_offline_alarm_consistent(state, availability_status)
    if availability_status == Availability.OFFLINE:  # rule 4
        update_endpoint_status(state, None, SyncStatus.UNKNOWN)
    else:  # rule 5
        state.notify_online()
        state.trigger_audit()
    state.availability_status = availability_status
    if audit_fail_count is not None:
        state.audit_fail_count = audit_fail_count
    state.tell_dcorch()


# -- Bulk update (what an audit sends) -----------------------------------------


def bulk_update(state, availability=None, endpoints=None):
    """Availability first, then the endpoints that still differ and pass rule 1, together."""
    changed = {e: s for e, s in (endpoints or {}).items() if e in state.endpoints and state.endpoints[e] != s}
    if availability:
        update_availability(state, **availability)
    by_status = {}
    for endpoint_type, sync_status in changed.items():
        if should_apply(state, endpoint_type, sync_status):
            by_status.setdefault(sync_status, []).append(endpoint_type)
        else:
            state.notes.append(f"{sync_status} for {endpoint_type} not applied (rule 1)")
    for sync_status, endpoint_types in by_status.items():
        _set_endpoints(state, endpoint_types, sync_status, alarmable=True)


# -- Management state changes (operator) ---------------------------------------


def manage(state, force=False):
    if state.management_state == ManagementState.MANAGED:
        raise Refused(f"Subcloud {state.name} is already managed", field="management-state")
    if not force:
        if state.deploy_status != DeployStatus.COMPLETE:
            raise Refused(
                f"Subcloud {state.name} can be managed only if deploy status is complete "
                f"(it is {state.deploy_status})",
                field="management-state",
            )
        if state.availability_status != Availability.ONLINE:
            raise Refused(f"Subcloud {state.name} can be managed only when it is online", field="management-state")
    state.management_state = ManagementState.MANAGED
    state.tell_dcorch()
    state.trigger_audit()


def unmanage(state):
    if state.management_state == ManagementState.UNMANAGED:
        raise Refused(f"Subcloud {state.name} is already unmanaged", field="management-state")
    state.management_state = ManagementState.UNMANAGED
    keep = () if state.deploy_status in (DeployStatus.SECONDARY, DeployStatus.REHOME_PENDING) else (EndpointType.DC_CERT,)
    update_endpoint_status(state, None, SyncStatus.UNKNOWN, ignore_endpoints=keep)
    state.tell_dcorch()


def check_delete(state):
    if state.management_state == ManagementState.MANAGED:
        raise Refused(f"Cannot delete subcloud {state.name} while it is managed; unmanage it first", field="management-state")


def clear_all_alarms(state):
    """On delete: every alarm of the subcloud is cleared."""
    state.alarms.clear()


# -- Applying accepted updates -------------------------------------------------

def apply_update(state, kind, payload):
    """Apply one accepted update; returns True when it changed anything.

    Payloads are complete: intake (state/intake.py) stores every argument, defaults included.
    """
    before = state.fingerprint()
    match kind:
        case UpdateKind.ENDPOINT:
            update_endpoint_status(state, **payload)
        case UpdateKind.AVAILABILITY:
            update_availability(state, **payload)
        case UpdateKind.BULK:
            bulk_update(state, **payload)
        case _:
            raise ValueError(f"unknown update kind {kind!r}")
    return state.fingerprint() != before
