"""The words the pages show, built once from the Python vocabularies and handed to templates and scripts.

Values come from subclouds.choices (the same ones models, API and websocket
use); this module adds only how a page shows them: label, tone (the colour of
an overview count) and a short endpoint label. base.html renders the dict as
JSON (id "vocabulary-data") for the scripts; templates loop over it.
"""

from functools import cache

from state.events import KINDS
from state.kinds import Source
from subclouds.choices import Availability, EndpointType, ManagementState, Severity, SyncStatus
from subclouds.fleetfile import COLUMNS as FLEET_COLUMNS
from subclouds.fleetfile import GROUP_NAME

from .wire import PART_KEYS

# Tones: ok / bad / warn / info / neutral; a "bad" or "warn" count is a problem (coloured only while non-zero).
_TONES = {
    Availability.ONLINE: "ok", Availability.OFFLINE: "bad",
    ManagementState.MANAGED: "info", ManagementState.UNMANAGED: "neutral",
    SyncStatus.IN_SYNC: "ok", SyncStatus.OUT_OF_SYNC: "warn", SyncStatus.UNKNOWN: "neutral",
    Severity.CRITICAL: "bad", Severity.MAJOR: "warn", Severity.MINOR: "info", Severity.WARNING: "neutral",
}
_LABELS = {SyncStatus.IN_SYNC: "in sync", SyncStatus.OUT_OF_SYNC: "out of sync"}
# Where a change came from (state.kinds.Source), as the history and the events page name it.
_SOURCE_LABELS = {
    Source.REST: "REST API", Source.PAGE: "portal page", Source.COMMAND: "admin command", Source.AUDIT: "audit",
    Source.TRIGGER: "triggered audit", Source.DCORCH: "dcorch", Source.CERTMON: "certificate monitor",
    Source.SYSTEM: "dcportal",
}
_KIND_LABELS = {"sync": "endpoint sync", "alarm": "alarm raised / cleared", "edit": "field edit"}
_SHORT = {
    EndpointType.PLATFORM: "plat", EndpointType.IDENTITY: "id", EndpointType.DC_CERT: "cert",
    EndpointType.FIRMWARE: "fw", EndpointType.KUBERNETES: "k8s", EndpointType.KUBE_ROOTCA: "rca",
    EndpointType.SOFTWARE: "sw",
}


def _statuses(choices, field):
    return {
        "field": field,  # the key in the websocket's subcloud objects
        "choices": [{"value": v, "label": _LABELS.get(v, v), "tone": _TONES[v]} for v in choices.values],
    }


@cache
def vocabulary():
    """Statuses (value, label, tone; severities most severe first), endpoints and the wire's part keys."""
    return {
        "availability": _statuses(Availability, "availability-status"),
        "management": _statuses(ManagementState, "management-state"),
        "sync": _statuses(SyncStatus, "sync_status"),
        "severity": _statuses(Severity, "severity"),
        # The severities the overview counts.
        "headline_severities": [Severity.CRITICAL.value, Severity.MAJOR.value],
        "endpoints": [{"value": v, "label": v, "short": _SHORT[v]} for v in EndpointType.values],
        "part_keys": list(PART_KEYS),
        "sources": [{"value": v, "label": _SOURCE_LABELS[v]} for v in Source.values],
        "event_kinds": [{"value": k, "label": _KIND_LABELS.get(k, k)} for k in KINDS],
        # The export's columns (subclouds/fleetfile.py, as export_fleet writes them): [column, key of a subcloud or null].
        "fleet_columns": [[column, key] for column, key in FLEET_COLUMNS],
        "fleet_group_name": GROUP_NAME,
        # The subclouds page's bulk actions: the verb its confirmation and results use.
        "bulk_actions": {"manage": "Manage", "unmanage": "Unmanage", "move": "Move"},
        # Incidents (state/incidents.py) and the history mode (state/asof.py).
        "incident": {"open": "open", "closed": "closed", "fleet": "whole fleet", "groups": "groups"},
        "history": {"state": "History", "banner": "History, not live: the fleet as of", "back": "Back to live"},
    }


def source_label(value):
    return _SOURCE_LABELS.get(value, value)


def context(request):
    """Template context processor: `vocabulary` on every page (base.html renders it for the scripts)."""
    return {"vocabulary": vocabulary()}
