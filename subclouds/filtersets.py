"""The list filters: subclouds (GET /v1.0/subclouds and `manage.py subcloud list`) and faults (GET /v1.0/faults)."""

import django_filters
from django import forms
from rest_framework import serializers

from .choices import Availability, DeployStatus, ManagementState, SyncStatus
from .models import Fault, Subcloud


class IntegerFilter(django_filters.NumberFilter):
    """NumberFilter takes decimals, and "1.5" would match group 1 once cast to the integer column."""

    field_class = forms.IntegerField


class SubcloudFilter(django_filters.FilterSet):
    """Query filters of GET /v1.0/subclouds (dcmanager spells some with hyphens)."""

    locals().update(
        {
            "availability-status": django_filters.ChoiceFilter(
                field_name="availability_status", choices=Availability.choices
            ),
            "management-state": django_filters.ChoiceFilter(
                field_name="management_state", choices=ManagementState.choices
            ),
            "deploy-status": django_filters.ChoiceFilter(field_name="deploy_status", choices=DeployStatus.choices),
            "group_id": IntegerFilter(field_name="group_id"),
            "name": django_filters.CharFilter(field_name="name", lookup_expr="icontains"),
            "sync_status": django_filters.ChoiceFilter(choices=SyncStatus.choices, method="by_sync_status"),
        }
    )

    class Meta:
        model = Subcloud
        fields = []

    def by_sync_status(self, queryset, name, value):
        return queryset  # computed from endpoints after the query (representation.subclouds_json)


def filter_subclouds(params):
    """(queryset, sync_status) for the list's query parameters; a bad value raises ValidationError naming it."""
    filters = SubcloudFilter(params, queryset=Subcloud.objects.all())
    if not filters.is_valid():
        raise serializers.ValidationError(filters.errors)
    return filters.qs, filters.form.cleaned_data.get("sync_status")


class FaultFilter(django_filters.FilterSet):
    """Query filters of GET /v1.0/faults; like every filter, a value the database cannot hold (NUL) is a 400."""

    subcloud = django_filters.CharFilter(field_name="subcloud_name")
    alarm_id = django_filters.CharFilter(field_name="alarm_id")

    class Meta:
        model = Fault
        fields = []


def filter_faults(params, queryset):
    filters = FaultFilter(params, queryset=queryset)
    if not filters.is_valid():
        raise serializers.ValidationError(filters.errors)
    return filters.qs
