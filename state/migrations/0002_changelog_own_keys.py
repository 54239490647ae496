"""The change log stores the product's own field names; rows written before are renamed in place.

Before: dcmanager's keys ("availability-status", ...) and endpoint_sync_status as a
list in `changes`, a dict in `previous`. After: model field names, and `endpoints`
as {endpoint type: sync status} in both (state/changelog.py).
"""

from django.db import migrations

RENAMES = {
    "management-state": "management_state",
    "availability-status": "availability_status",
    "audit-fail-count": "audit_fail_count",
    "first-identity-sync-complete": "first_identity_sync_complete",
    "endpoint_sync_status": "endpoints",
}


def _rename(column, list_to_dict):
    keys = ", ".join(f"'{k}'" for k in RENAMES)
    cases = " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in RENAMES.items())
    value = (
        "CASE WHEN key = 'endpoint_sync_status' AND jsonb_typeof(value) = 'array' THEN "
        "(SELECT jsonb_object_agg(e->>'endpoint_type', e->'sync_status') FROM jsonb_array_elements(value) e) "
        "ELSE value END"
        if list_to_dict else "value"
    )
    return (
        f"UPDATE state_statechange SET {column} = (SELECT jsonb_object_agg(CASE key {cases} ELSE key END, {value}) "
        f"FROM jsonb_each({column})) WHERE {column} ?| ARRAY[{keys}]"
    )


class Migration(migrations.Migration):
    dependencies = [("state", "0001_initial")]

    operations = [
        migrations.RunSQL(_rename("changes", True), migrations.RunSQL.noop),
        migrations.RunSQL(_rename("previous", False), migrations.RunSQL.noop),
    ]
