"""OpenAPI descriptions of the JSON that representation.py builds.

dcmanager hyphenates keys ("availability-status"), which a serializer class
cannot spell as attributes, so the shapes are inline serializers built from the
same key lists as the representation: the schema cannot drift from the payload.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from state.availability import UNKNOWN, WINDOWS
from state.events import KINDS
from state.kinds import Source
from subclouds.choices import Availability, EndpointType, IncidentStatus, Severity, SyncStatus
from subclouds.inputs import BULK_ACTIONS
from subclouds.representation import SUBCLOUD_KEYS

_INTEGER_KEYS = {"id", "group_id", "audit-fail-count"}
_BOOLEAN_KEYS = {"openstack-installed", "first-identity-sync-complete"}
_REQUIRED_KEYS = {"id", "name", "region-name", "availability-status", "management-state", "deploy-status", "created-at"}


def component(name, fields, base=serializers.Serializer):
    """A named serializer class: one class per OpenAPI component, reusable with (many=True)."""
    return type(name, (base,), dict(fields))


def _subcloud_field(key):
    if key in _INTEGER_KEYS:
        return serializers.IntegerField()
    if key in _BOOLEAN_KEYS:
        return serializers.BooleanField()
    return serializers.CharField(allow_null=key not in _REQUIRED_KEYS)


ENDPOINT_SYNC_STATUS = component(
    "EndpointSyncStatus",
    {"endpoint_type": serializers.ChoiceField(EndpointType.choices), "sync_status": serializers.ChoiceField(SyncStatus.choices)},
)
GROUP_SUBCLOUD = component(
    "GroupSubcloud",
    {**{key: _subcloud_field(key) for key in SUBCLOUD_KEYS}, "sync_status": serializers.ChoiceField(SyncStatus.choices)},
)
SUBCLOUD = component("Subcloud", {"endpoint_sync_status": ENDPOINT_SYNC_STATUS(many=True)}, base=GROUP_SUBCLOUD)
SUBCLOUD_DETAIL = component(
    "SubcloudDetail",
    {
        "oam_floating_ip": serializers.CharField(),
        "deploy_config_sync_status": serializers.CharField(),
        "region_name": serializers.CharField(),
    },
    base=SUBCLOUD,
)
SUBCLOUD_LIST = component("SubcloudList", {"subclouds": SUBCLOUD(many=True)})
LINK = component("Link", {"rel": serializers.ChoiceField(["next"]), "href": serializers.URLField()})
SUBCLOUD_PAGE = component(
    "SubcloudPage",
    {"subclouds_links": LINK(many=True, required=False,
                             help_text="only with limit or marker: the next page's link, absent on the last page")},
    base=SUBCLOUD_LIST,
)
GROUP_SUBCLOUD_LIST = component("GroupSubcloudList", {"subclouds": GROUP_SUBCLOUD(many=True)})
GROUP = component(
    "SubcloudGroup",
    {
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "update_apply_type": serializers.CharField(),
        "max_parallel_subclouds": serializers.IntegerField(),
        "created-at": serializers.CharField(),
        "updated-at": serializers.CharField(allow_null=True),
    },
)
GROUP_LIST = component("SubcloudGroupList", {"subcloud_groups": GROUP(many=True)})

BULK_RESULT = component(
    "SubcloudBulkActionResult",
    {
        "action": serializers.ChoiceField(BULK_ACTIONS),
        "results": component(
            "SubcloudActionResult",
            {
                "subcloud": serializers.CharField(help_text="the subcloud's name (or the ref given, when unknown)"),
                "status": serializers.ChoiceField(["done", "refused"]),
                "error_message": serializers.CharField(allow_null=True, help_text="why it was refused, as PATCH says it"),
            },
        )(many=True),
        "done": serializers.IntegerField(),
        "refused": serializers.IntegerField(),
    },
)

ALARM_SUMMARY = inline_serializer(
    "AlarmSummary",
    {
        "alarm_summary": serializers.ListField(
            child=inline_serializer(
                "SubcloudAlarms",
                {
                    "region_name": serializers.CharField(help_text="the subcloud's name, as dcmanager spells it"),
                    "uuid": serializers.UUIDField(),
                    "critical_alarms": serializers.IntegerField(),
                    "major_alarms": serializers.IntegerField(),
                    "minor_alarms": serializers.IntegerField(),
                    "warnings": serializers.IntegerField(),
                    "cloud_status": serializers.ChoiceField(["critical", "degraded", "OK"]),
                },
            )
        )
    },
)
FAULT_LIST = inline_serializer(
    "FaultList",
    {
        "faults": serializers.ListField(
            child=inline_serializer(
                "Fault",
                {
                    "uuid": serializers.UUIDField(),
                    "alarm_id": serializers.CharField(),
                    "entity_instance_id": serializers.CharField(),
                    "severity": serializers.ChoiceField(Severity.choices),
                    "reason_text": serializers.CharField(),
                    "subcloud": serializers.CharField(),
                    "raised-at": serializers.CharField(),
                },
            )
        )
    },
)

_GROUP_REF = component("IncidentGroup", {"id": serializers.IntegerField(), "name": serializers.CharField(allow_null=True)})
INCIDENT_LIST = inline_serializer(
    "IncidentList",
    {
        "incidents": serializers.ListField(
            child=inline_serializer(
                "Incident",
                {
                    "id": serializers.IntegerField(help_text="the change-log revision of its first subcloud going down"),
                    "status": serializers.ChoiceField(IncidentStatus.choices),
                    "scope": serializers.ChoiceField(["groups", "fleet"]),
                    "groups": _GROUP_REF(many=True),
                    "started_at": serializers.DateTimeField(),
                    "recovery_started_at": serializers.DateTimeField(allow_null=True),
                    "recovery_ended_at": serializers.DateTimeField(allow_null=True),
                    "subclouds_affected": serializers.IntegerField(),
                    "subclouds": serializers.ListField(child=serializers.CharField()),
                    "still_affected": serializers.ListField(child=serializers.CharField()),
                    "peak_offline": serializers.IntegerField(),
                    "counts": serializers.ListField(
                        child=inline_serializer(
                            "IncidentCount", {"at": serializers.DateTimeField(), "offline": serializers.IntegerField()}
                        )
                    ),
                },
            )
        )
    },
)

ERROR = inline_serializer(
    "Error",
    {
        "error_message": serializers.CharField(),
        "field": serializers.CharField(allow_null=True, help_text="the offending field, as the client spelled it"),
        "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
    },
)
DELETED = OpenApiResponse(OpenApiTypes.OBJECT, description="Deleted; the body is {} (dcmanager clients expect 200).")


def responses(ok, *errors):
    """{200: ok, 401/403: ERROR, each of errors (400, 404, 409, 413): ERROR} for extend_schema."""
    return {200: ok, **{code: ERROR for code in (400, 401, 403, 404, 409, 413) if code in (*errors, 401, 403)}}

ACTOR = component(
    "Actor",
    {
        "user": serializers.CharField(help_text="operator or service user, or the OS user of an admin command"),
        "source": serializers.ChoiceField(Source.choices),
        "via": serializers.CharField(help_text='"token #<id> (<prefix>…)" or "session <hash prefix>"; never the secret'),
        "address": serializers.CharField(help_text="client address"),
    },
)
EVENT = component(
    "Event",
    {
        "revision": serializers.IntegerField(),
        "created-at": serializers.CharField(),
        "subcloud": serializers.CharField(),
        "reason": serializers.CharField(),
        "kinds": serializers.ListField(child=serializers.ChoiceField(list(KINDS))),
        "changes": serializers.DictField(help_text="new values of the changed fields, in dcmanager's keys"),
        "previous": serializers.DictField(help_text="their previous values"),
        "faults_raised": serializers.ListField(child=serializers.DictField()),
        "faults_cleared": serializers.ListField(child=serializers.DictField()),
        "actor": ACTOR(),
    },
)
EVENT_LIST = inline_serializer(
    "EventList",
    {
        "events": EVENT(many=True),
        "next": serializers.IntegerField(allow_null=True, help_text="pass as ?before= for the next (older) page"),
    },
)
AVAILABILITY_PERIOD = component(
    "AvailabilityPeriod",
    {"status": serializers.ChoiceField([*Availability.values, UNKNOWN]), "start": serializers.CharField(),
     "end": serializers.CharField()},
)
AVAILABILITY = inline_serializer(
    "AvailabilityHistory",
    {
        "subcloud": serializers.CharField(),
        "window": serializers.ChoiceField(list(WINDOWS)),
        "start": serializers.CharField(),
        "end": serializers.CharField(),
        "known_from": serializers.CharField(help_text="before this the change log has nothing (retention or registration)"),
        "uptime": serializers.FloatField(allow_null=True, help_text="online / known time; null when nothing is known"),
        "seconds": serializers.DictField(child=serializers.FloatField(), help_text="{online, offline, unknown: seconds}"),
        "periods": AVAILABILITY_PERIOD(many=True),
    },
)
