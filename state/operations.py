"""Operator changes of one subcloud, by the rules, in one locked transaction.

Called by the REST API and the admin commands; the rules themselves are in
rules.py. The row lock serialises these with the state workers.
"""

from django.db import transaction

from subclouds.choices import ManagementState
from subclouds.models import Subcloud

from . import rules, store


def _locked_state(subcloud_id):
    states = store.build_states(store.lock_subclouds([subcloud_id]))
    if subcloud_id not in states:
        raise Subcloud.DoesNotExist(subcloud_id)
    return states[subcloud_id]


def update_subcloud(subcloud_id, management_state=None, force=False, fields=None):
    """Manage / unmanage and edit plain fields together; RuleViolation leaves everything unchanged."""
    fields = fields or {}
    with transaction.atomic():
        state = _locked_state(subcloud_id)
        before = state.copy()
        if management_state == ManagementState.MANAGED:
            rules.manage(state, force=force)
        elif management_state == ManagementState.UNMANAGED:
            rules.unmanage(state)
        changes = store.save({subcloud_id: before}, {subcloud_id: state}, reason=management_state or "edit")
        if fields:
            store.save_fields(subcloud_id, state.name, fields)
    return changes


def delete_subcloud(subcloud_id):
    """Refused while managed; clears every alarm of the subcloud, then deletes it (endpoints cascade)."""
    with transaction.atomic():
        state = _locked_state(subcloud_id)
        rules.check_delete(state)
        before = state.copy()
        rules.clear_all_alarms(state)
        store.save({subcloud_id: before}, {subcloud_id: state}, reason="deleted", extra={"deleted": True})
        Subcloud.objects.filter(pk=subcloud_id).delete()
