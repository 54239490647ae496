"""The list filters: subclouds (GET /v1.0/subclouds and `manage.py subcloud list`) and faults (GET /v1.0/faults)."""

import django_filters
from django import forms
from django.db.models import Exists, OuterRef
from rest_framework import serializers

from .choices import Availability, DeployStatus, ManagementState, SyncStatus
from .models import EndpointStatus, Fault, Subcloud


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
            # The list as it was then (state/asof.py); the status filters then apply to those values.
            "as_of": django_filters.IsoDateTimeFilter(method="at_time"),
        }
    )

    class Meta:
        model = Subcloud
        fields = []

    def by_sync_status(self, queryset, name, value):
        """choices.overall_sync_status in SQL, so that a page (limit) counts only matching subclouds."""
        endpoints = EndpointStatus.objects.filter(subcloud=OuterRef("pk"))
        known = Exists(endpoints.exclude(sync_status=SyncStatus.UNKNOWN))
        not_in_sync = Exists(endpoints.exclude(sync_status=SyncStatus.IN_SYNC))
        if value == SyncStatus.UNKNOWN:
            return queryset.filter(~known)
        if value == SyncStatus.IN_SYNC:
            return queryset.filter(Exists(endpoints), ~not_in_sync)
        return queryset.filter(known, not_in_sync)

    def at_time(self, queryset, name, value):
        return queryset  # the values are reconstructed after the query (state/asof.py)

    def filter_queryset(self, queryset):
        """As of a past time, the status filters match the values of then, not the columns of now."""
        past = self.form.cleaned_data.get("as_of") is not None
        for name, value in self.form.cleaned_data.items():
            if not (past and name in PAST_FILTERS):
                queryset = self.filters[name].filter(queryset, value)
        return queryset


# Filters that, with as_of, match the reconstructed values (the list's keys are the parameters' names).
PAST_FILTERS = ("availability-status", "management-state", "deploy-status", "sync_status")


def _subcloud_filters(params):
    filters = SubcloudFilter(params, queryset=Subcloud.objects.all())
    if not filters.is_valid():
        raise serializers.ValidationError(filters.errors)
    return filters


def filter_subclouds(params):
    """(queryset, sync_status) for the list's query parameters; a bad value raises ValidationError naming it."""
    filters = _subcloud_filters(params)
    return filters.qs, filters.form.cleaned_data.get("sync_status")


def filter_subclouds_as_of(params):
    """(queryset, as_of or None, {list key: wanted value}) where the values are matched after reconstruction."""
    filters = _subcloud_filters(params)
    data = filters.form.cleaned_data
    return filters.qs, data.get("as_of"), {k: data[k] for k in PAST_FILTERS if data.get(k)}


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
