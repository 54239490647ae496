"""OpenAPI descriptions of the state endpoints' bodies (validation itself lives in intake.py)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from api.schema import ERROR, component
from state.kinds import DEFAULT_ALARMABLE, DEFAULT_SYNC_STATUS, DEFAULT_UPDATE_STATE_ONLY
from subclouds.choices import Availability, EndpointType, SyncStatus

_SYNC = serializers.ChoiceField(SyncStatus.choices)

ENDPOINT_STATUS = component(
    "EndpointStatusUpdate",
    {
        "subcloud": serializers.CharField(allow_null=True, required=False, help_text="name or region name; null: every subcloud"),
        "endpoint_type": serializers.ChoiceField(EndpointType.choices, allow_null=True, required=False,
                                                 help_text="null: every endpoint of the subcloud"),
        "sync_status": serializers.ChoiceField(SyncStatus.choices, default=DEFAULT_SYNC_STATUS),
        "alarmable": serializers.BooleanField(default=DEFAULT_ALARMABLE),
        "ignore_endpoints": serializers.ListField(child=serializers.ChoiceField(EndpointType.choices), required=False,
                                                  allow_null=True, help_text="only used when endpoint_type is null"),
    },
)
_AVAILABILITY_FIELDS = {
    "availability_status": serializers.ChoiceField(Availability.choices, allow_null=True),
    "update_state_only": serializers.BooleanField(default=DEFAULT_UPDATE_STATE_ONLY),
    "audit_fail_count": serializers.IntegerField(min_value=0, allow_null=True, required=False),
}
AVAILABILITY = component("AvailabilityUpdate", {"subcloud": serializers.CharField(), **_AVAILABILITY_FIELDS})
BULK_ONE = component(
    "BulkUpdate",
    {
        "subcloud": serializers.CharField(),
        "availability": component("BulkAvailability", _AVAILABILITY_FIELDS)(allow_null=True, required=False),
        "endpoints": serializers.DictField(child=_SYNC, required=False, help_text="endpoint type -> sync status"),
    },
)
BULK = component(
    "BulkUpdates",
    {"updates": BULK_ONE(many=True, help_text="up to 1,000 subclouds; or send one BulkUpdate object alone")},
)
ACCEPTED = component("Accepted", {"accepted": serializers.IntegerField(), "sequence": serializers.IntegerField()})
UPDATE_STATUS = component(
    "DcCertStatus", {"endpoint": serializers.ChoiceField(["dc-cert"]), "status": _SYNC}
)
UPDATE_STATUS_OK = component("UpdateStatusResult", {"result": serializers.CharField()})
WORKER = component(
    "StateWorker",
    {
        "name": serializers.CharField(), "kind": serializers.CharField(), "hostname": serializers.CharField(),
        "pid": serializers.IntegerField(), "started_at": serializers.DateTimeField(),
        "last_heartbeat": serializers.DateTimeField(), "heartbeat_age_seconds": serializers.FloatField(),
        "alive": serializers.BooleanField(), "applied": serializers.IntegerField(), "noops": serializers.IntegerField(),
        "failed": serializers.IntegerField(),
    },
)
STATS = component(
    "StateStats",
    {
        "sequence": serializers.IntegerField(), "pending": serializers.IntegerField(),
        "oldest_pending_age_seconds": serializers.FloatField(allow_null=True), "applied": serializers.IntegerField(),
        "noops": serializers.IntegerField(), "failed": serializers.IntegerField(), "workers": WORKER(many=True),
    },
)
METRICS = OpenApiResponse(OpenApiTypes.STR, description="Prometheus text exposition format")


def accepted_responses():
    return {202: ACCEPTED, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR}
