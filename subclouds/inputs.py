"""Validation of operator input, shared by the REST API and the admin commands.

Keys arrive as dcmanager spells them (`management-subnet`, `group_id`,
`region_name`); both hyphen and underscore spellings are accepted and
normalised to model field names. Errors name the field as the client sent it.
"""

import ipaddress

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import names
from .choices import IncidentStatus, ManagementState, UpdateApplyType
from .models import SubcloudGroup


def normalise(data):
    """A plain dict with underscore keys, from JSON or a (multipart) QueryDict."""
    if hasattr(data, "dict"):
        data = data.dict()
    if not isinstance(data, dict):  # a JSON list, string or number
        raise serializers.ValidationError("the body must be a JSON object")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def storable(text):
    """PostgreSQL can take it: no NUL character, no lone surrogate (either would fail the query itself)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def validated(serializer_class, data, **kwargs):
    """The validated data of operator input (API body or command options); ValidationError otherwise."""
    serializer = serializer_class(data=normalise(data), **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _ip(value):
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise serializers.ValidationError(f"{value!r} is not an IP address") from None


class NameField(serializers.CharField):
    """A name checked by one of subclouds/names.py's rules, as sent: never trimmed, so never longer than it looks.

    DRF's default trim_whitespace would strip a newline followed by 255 characters down to
    255 and accept it; here leading or trailing whitespace is refused instead.
    """

    def __init__(self, problem, **kwargs):
        self.problem = problem
        super().__init__(max_length=names.MAX_LENGTH, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        problem = self.problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value
def is_id(text):
    """An id reference: ASCII digits only (str.isdigit also takes '³' and other digits int() refuses)."""
    return text.isascii() and text.isdigit()




@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}], "description": "group id or name"})
class GroupRefField(serializers.Field):
    """A subcloud group by id or by name."""

    def to_internal_value(self, value):
        value = str(value).strip()
        # Looked up once per serializer (its context): a bulk registration of 5,000 in one group costs one lookup.
        cache = self.context.setdefault("groups", {})
        if value not in cache:
            cache[value] = self._lookup(value)
        if cache[value] is None:
            raise serializers.ValidationError(f"unknown subcloud group {value!r}")
        return cache[value]

    @staticmethod
    def _lookup(value):
        if not storable(value):  # a NUL or lone surrogate would fail the query: no group has that name
            return None
        group = None
        if is_id(value):
            group = SubcloudGroup.objects.filter(pk=int(value)).first()
        if group is None:
            group = SubcloudGroup.objects.filter(name=value).first()
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


# `dcmanager subcloud add` describes the subcloud in a bootstrap-values YAML file
# (multipart field bootstrap_values); these of its keys map onto ours.
BOOTSTRAP_KEYS = {
    "name": "name",
    "description": "description",
    "location": "location",
    "management_subnet": "management_subnet",
    "management_start_address": "management_start_ip",
    "management_end_address": "management_end_ip",
    "management_gateway_address": "management_gateway_ip",
    "systemcontroller_gateway_address": "systemcontroller_gateway_ip",
}
# The rest of what that command sends serves an install this product does not do (it
# registers an existing subcloud), so it is accepted and dropped; passwords are never stored.
INSTALL_ONLY_FIELDS = ("bootstrap_address", "sysadmin_password", "bmc_password", "install_values", "deploy_config", "migrate")


def _bootstrap_values(upload):
    from .bootstrap_yaml import BadDocument, load

    try:
        values = load(upload.read(MAX_BOOTSTRAP_READ) if hasattr(upload, "read") else upload)
    except (BadDocument, UnicodeError) as err:
        raise serializers.ValidationError({"bootstrap_values": [str(err)]}) from None
    out = {}
    for theirs, ours in BOOTSTRAP_KEYS.items():
        value = values.get(theirs)
        if value is None:
            continue
        # Plain scalars only: !!set, !!binary, timestamps and the like would be stored as their Python text.
        if not isinstance(value, (str, int, float)):  # bool is an int
            raise serializers.ValidationError({"bootstrap_values": [f"{theirs} must be a single value (text or number)"]})
        try:
            out[ours] = str(value)
        except ValueError:  # an int past Python's 4,300-digit printing limit, e.g. 0x and 5,000 hex digits
            raise serializers.ValidationError({"bootstrap_values": [f"{theirs} is too long a number"]}) from None
    return out


# One byte over the cap is enough to refuse the file without reading it all.
MAX_BOOTSTRAP_READ = 64 * 1024 + 1


class RegisterSubcloud(StrictSerializer):
    ignored_fields = INSTALL_ONLY_FIELDS

    name = NameField(names.subcloud_name_problem)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, allow_null=True)
    location = serializers.CharField(max_length=255, required=False, allow_blank=True, allow_null=True)
    group_id = GroupRefField(required=False)
    # The RegexValidator only puts the pattern in the OpenAPI schema; region_name_problem decides.
    region_name = NameField(names.region_name_problem, required=False, validators=[RegexValidator(names.REGION_NAME_PATTERN)])
    software_version = serializers.CharField(max_length=255, required=False, allow_null=True)
    management_subnet = serializers.CharField(required=False, allow_null=True)
    management_start_ip = serializers.CharField(required=False, allow_null=True)
    management_end_ip = serializers.CharField(required=False, allow_null=True)
    management_gateway_ip = serializers.CharField(required=False, allow_null=True)
    systemcontroller_gateway_ip = serializers.CharField(required=False, allow_null=True)
    audit_url = serializers.URLField(max_length=1024, required=False, allow_null=True)

    def to_internal_value(self, data):
        """Fields given in the request win over the bootstrap values file; `release` is the software version."""
        data = normalise(data)  # an item of a bulk registration arrives as sent
        if "bootstrap_values" in data:
            data = {**_bootstrap_values(data.pop("bootstrap_values")), **data}
        if "release" in data:
            data.setdefault("software_version", data.pop("release"))
            data.pop("release", None)
        return super().to_internal_value(data)

    def validate_management_subnet(self, value):
        if value is None:
            return value
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise serializers.ValidationError(f"{value!r} is not a subnet") from None

    validate_management_start_ip = validate_management_end_ip = staticmethod(lambda v: v and _ip(v))
    validate_management_gateway_ip = validate_systemcontroller_gateway_ip = staticmethod(lambda v: v and _ip(v))


class RegisterSubclouds(StrictSerializer):
    """A bulk registration: `subclouds`, a list of what POST /v1.0/subclouds takes, checked all before any is registered."""

    subclouds = RegisterSubcloud(many=True, allow_empty=False)

    def to_internal_value(self, data):
        items = data.get("subclouds")
        if isinstance(items, list) and len(items) > BULK_MAX_SUBCLOUDS:  # before validating 10,001 items
            raise serializers.ValidationError({"subclouds": [f"at most {BULK_MAX_SUBCLOUDS} subclouds at once"]})
        return super().to_internal_value(data)

    def validate(self, attrs):
        """Names and region names are one namespace within the list too: the first repeat is named."""
        seen = {}
        for i, item in enumerate(attrs["subclouds"]):
            for key in ("name", "region_name"):
                value = item.get(key)
                if value is None:
                    continue
                if seen.get(value, i) != i:
                    errors = [{} for _ in attrs["subclouds"][: i + 1]]
                    errors[i] = {key: [f"{value!r} is already the name or region name of subclouds[{seen[value]}]"]}
                    raise serializers.ValidationError({"subclouds": errors})
                seen[value] = i
        return attrs


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
            raise serializers.ValidationError("nothing to update")
        return attrs


BULK_ACTIONS = ("manage", "unmanage", "move", "delete")
# Twice the fleet size the product is built for. Checked in validate(), not as the schema's maxItems: a list
# just over it, of the longest names, can be over the 2.5 MB body limit (413) before it could get its 400.
BULK_MAX_SUBCLOUDS = 10000


class BulkAction(StrictSerializer):
    """One action over a selection (`subclouds`: refs) or a whole group (`group`); `to_group` is where `move` moves."""

    action = serializers.ChoiceField(BULK_ACTIONS)
    subclouds = serializers.ListField(
        child=serializers.CharField(max_length=255, trim_whitespace=False), required=False, allow_empty=False,
    )
    group = GroupRefField(required=False)
    to_group = GroupRefField(required=False)
    force = serializers.BooleanField(required=False)

    def validate(self, attrs):
        if ("subclouds" in attrs) == ("group" in attrs):
            raise serializers.ValidationError({"subclouds": ["give either subclouds (a list) or group, not both"]})
        if attrs["action"] == "move" and "to_group" not in attrs:
            raise serializers.ValidationError({"to_group": ["move needs to_group (the group to move to)"]})
        if attrs["action"] != "move" and "to_group" in attrs:
            raise serializers.ValidationError({"to_group": ["to_group is only allowed with move"]})
        if "force" in attrs and attrs["action"] != "manage":
            raise serializers.ValidationError({"force": ["force is only allowed with manage"]})
        if len(attrs.get("subclouds", ())) > BULK_MAX_SUBCLOUDS:
            raise serializers.ValidationError({"subclouds": [f"at most {BULK_MAX_SUBCLOUDS} subclouds at once"]})
        if "subclouds" in attrs:
            attrs["subclouds"] = list(dict.fromkeys(attrs["subclouds"]))  # each once, in the order given
        return attrs


class GroupInput(StrictSerializer):
    name = NameField(names.group_name_problem)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    update_apply_type = serializers.ChoiceField(UpdateApplyType.choices, required=False)
    max_parallel_subclouds = serializers.IntegerField(min_value=1, max_value=5000, required=False)

    def validate(self, attrs):
        if not attrs:  # only possible for a (partial) update
            raise serializers.ValidationError("nothing to update")
        return attrs


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


class IncidentFilter(StrictSerializer):
    """Query parameters of GET /v1.0/incidents."""

    status = serializers.ChoiceField(IncidentStatus.choices, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


# GET /v1.0/subclouds sort keys (as the list spells them) -> columns; only columns that are never null,
# so that (column, id) orders every subcloud and a marker finds its place.
SORT_KEYS = {
    "id": "id", "name": "name", "region-name": "region_name", "created-at": "created_at",
    "availability-status": "availability_status", "management-state": "management_state",
    "deploy-status": "deploy_status", "group_id": "group_id",
}
MAX_PAGE = 10000


class SubcloudPage(serializers.Serializer):
    """Paging and sorting of GET /v1.0/subclouds (OpenStack style); none given: the whole list by id, as dcmanager's."""

    limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, required=False)
    marker = serializers.CharField(max_length=255, required=False, trim_whitespace=False,
                                   help_text="id or name of the last subcloud of the previous page")
    sort_key = serializers.ChoiceField(list(SORT_KEYS), required=False)
    sort_dir = serializers.ChoiceField(["asc", "desc"], required=False)

    def validate_marker(self, value):
        if not storable(value) or (is_id(value) and len(value) > 18):  # an id past bigint would fail the query
            raise serializers.ValidationError("not a subcloud id or name")
        return value
