"""Validation of operator input, shared by the REST API and the admin commands.

Keys arrive as dcmanager spells them (`management-subnet`, `group_id`,
`region_name`); both hyphen and underscore spellings are accepted and
normalised to model field names. Errors name the field as the client sent it.
"""

import ipaddress

from rest_framework import serializers

from .choices import ManagementState, UpdateApplyType
from .models import SubcloudGroup


def normalise(data):
    """A plain dict with underscore keys, from JSON or a (multipart) QueryDict."""
    if hasattr(data, "dict"):
        data = data.dict()
    return {str(k).replace("-", "_"): v for k, v in dict(data).items()}


def _ip(value):
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise serializers.ValidationError(f"{value!r} is not an IP address") from None


def _name(value, what):
    value = value.strip()
    if not value:
        raise serializers.ValidationError(f"{what} name must not be empty")
    if value.isdigit():
        raise serializers.ValidationError(f"{what} name must contain alphabetic characters")
    return value


class GroupRefField(serializers.Field):
    """A subcloud group by id or by name."""

    def to_internal_value(self, value):
        value = str(value).strip()
        group = None
        if value.isdigit():
            group = SubcloudGroup.objects.filter(pk=int(value)).first()
        if group is None:
            group = SubcloudGroup.objects.filter(name=value).first()
        if group is None:
            raise serializers.ValidationError(f"unknown subcloud group {value!r}")
        return group

    def to_representation(self, value):
        return value.pk


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, naming them."""

    ignored_fields = ()

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields) - set(self.ignored_fields))
        if unknown:
            raise serializers.ValidationError({unknown[0]: ["unknown field"]})
        return super().to_internal_value(data)


class RegisterSubcloud(StrictSerializer):
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, allow_null=True)
    location = serializers.CharField(max_length=255, required=False, allow_blank=True, allow_null=True)
    group_id = GroupRefField(required=False)
    region_name = serializers.RegexField(r"^[A-Za-z0-9_.-]{1,255}$", required=False)
    software_version = serializers.CharField(max_length=255, required=False, allow_null=True)
    management_subnet = serializers.CharField(required=False, allow_null=True)
    management_start_ip = serializers.CharField(required=False, allow_null=True)
    management_end_ip = serializers.CharField(required=False, allow_null=True)
    management_gateway_ip = serializers.CharField(required=False, allow_null=True)
    systemcontroller_gateway_ip = serializers.CharField(required=False, allow_null=True)
    audit_url = serializers.URLField(max_length=1024, required=False, allow_null=True)

    def validate_name(self, value):
        return _name(value, "subcloud")

    def validate_management_subnet(self, value):
        if value is None:
            return value
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise serializers.ValidationError(f"{value!r} is not a subnet") from None

    validate_management_start_ip = validate_management_end_ip = staticmethod(lambda v: v and _ip(v))
    validate_management_gateway_ip = validate_systemcontroller_gateway_ip = staticmethod(lambda v: v and _ip(v))


class UpdateSubcloud(StrictSerializer):
    management_state = serializers.ChoiceField(ManagementState.choices, required=False)
    force = serializers.BooleanField(required=False)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    location = serializers.CharField(max_length=255, required=False, allow_blank=True)
    group_id = GroupRefField(required=False)

    def validate(self, attrs):
        if "force" in attrs and attrs.get("management_state") != ManagementState.MANAGED:
            raise serializers.ValidationError({"force": ["force is only allowed with management-state managed"]})
        if not attrs:
            raise serializers.ValidationError({"management-state": ["nothing to update"]})
        return attrs


class GroupInput(StrictSerializer):
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    update_apply_type = serializers.ChoiceField(UpdateApplyType.choices, required=False)
    max_parallel_subclouds = serializers.IntegerField(min_value=1, max_value=5000, required=False)

    def validate_name(self, value):
        return _name(value, "group")


def field_label(name):
    """The spelling a client used for a field, in error messages (dcmanager hyphenates subcloud fields)."""
    return {
        "software_version": "software-version",
        "management_state": "management-state",
        "management_subnet": "management-subnet",
        "management_start_ip": "management-start-ip",
        "management_end_ip": "management-end-ip",
        "management_gateway_ip": "management-gateway-ip",
        "systemcontroller_gateway_ip": "systemcontroller-gateway-ip",
        "audit_url": "audit-url",
    }.get(name, name)
