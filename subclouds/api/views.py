"""REST views for subclouds, groups, alarms and faults: thin; rules live in services and state/."""

import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsOperator
from state.store import fault_json
from subclouds import services
from subclouds.choices import Availability, DeployStatus, ManagementState, SyncStatus
from subclouds.inputs import GroupInput, RegisterSubcloud, UpdateSubcloud, normalise
from subclouds.models import Fault, Subcloud, SubcloudGroup
from subclouds.representation import (
    alarm_summary_json,
    group_json,
    subcloud_detail_json,
    subclouds_json,
)

from .errors import error_response


def _validated(serializer_class, data, **kwargs):
    serializer = serializer_class(data=normalise(data), **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ServiceErrors:
    """Maps service exceptions to the API's JSON errors."""

    def handle_exception(self, exc):
        if isinstance(exc, services.NotFound):
            return error_response(status.HTTP_404_NOT_FOUND, str(exc))
        if isinstance(exc, services.Conflict):
            return error_response(status.HTTP_409_CONFLICT, exc.message, exc.field)
        if isinstance(exc, services.Refused):
            return error_response(status.HTTP_400_BAD_REQUEST, exc.message, exc.field)
        return super().handle_exception(exc)


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
            "deploy-status": django_filters.CharFilter(field_name="deploy_status"),
            "group_id": django_filters.NumberFilter(field_name="group_id"),
            "name": django_filters.CharFilter(field_name="name", lookup_expr="icontains"),
            "sync_status": django_filters.ChoiceFilter(choices=SyncStatus.choices, method="by_sync_status"),
        }
    )

    class Meta:
        model = Subcloud
        fields = []

    def by_sync_status(self, queryset, name, value):
        return queryset  # computed from endpoints after the query (representation.subclouds_json)


class SubcloudList(ServiceErrors, APIView):
    permission_classes = [IsOperator]

    @extend_schema(
        summary="List subclouds",
        parameters=[
            OpenApiParameter("availability-status", enum=Availability.values),
            OpenApiParameter("management-state", enum=ManagementState.values),
            OpenApiParameter("deploy-status", enum=DeployStatus.values),
            OpenApiParameter("group_id", int),
            OpenApiParameter("sync_status", enum=SyncStatus.values),
            OpenApiParameter("name", description="substring of the name"),
        ],
    )
    def get(self, request):
        filters = SubcloudFilter(request.query_params, queryset=Subcloud.objects.all())
        if not filters.is_valid():
            from rest_framework.exceptions import ValidationError

            raise ValidationError(filters.errors)
        return Response(
            {"subclouds": subclouds_json(filters.qs, sync_status=filters.form.cleaned_data.get("sync_status"))}
        )

    @extend_schema(summary="Register an existing subcloud", request=RegisterSubcloud)
    def post(self, request):
        subcloud = services.register_subcloud(_validated(RegisterSubcloud, request.data))
        return Response(subclouds_json(Subcloud.objects.filter(pk=subcloud.pk))[0])


class SubcloudDetail(ServiceErrors, APIView):
    permission_classes = [IsOperator]

    @extend_schema(summary="Show a subcloud (by id, name or region name)")
    def get(self, request, ref):
        subcloud = services.get_subcloud(ref)
        return Response(subclouds_json(Subcloud.objects.filter(pk=subcloud.pk))[0])

    @extend_schema(summary="Manage / unmanage or edit a subcloud", request=UpdateSubcloud)
    def patch(self, request, ref):
        subcloud = services.get_subcloud(ref)
        data = _validated(UpdateSubcloud, request.data)
        services.update_subcloud(subcloud, data)
        return Response(subclouds_json(Subcloud.objects.filter(pk=subcloud.pk))[0])

    @extend_schema(summary="Delete an unmanaged subcloud")
    def delete(self, request, ref):
        services.delete_subcloud(services.get_subcloud(ref))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SubcloudDetailView(ServiceErrors, APIView):
    @extend_schema(summary="Show a subcloud with its detail keys")
    def get(self, request, ref):
        return Response(subcloud_detail_json(services.get_subcloud(ref)))


class GroupList(ServiceErrors, APIView):
    permission_classes = [IsOperator]

    @extend_schema(summary="List subcloud groups")
    def get(self, request):
        return Response({"subcloud_groups": [group_json(g) for g in SubcloudGroup.objects.order_by("id")]})

    @extend_schema(summary="Create a subcloud group", request=GroupInput)
    def post(self, request):
        return Response(group_json(services.create_group(_validated(GroupInput, request.data))))


class GroupDetail(ServiceErrors, APIView):
    permission_classes = [IsOperator]

    @extend_schema(summary="Show a subcloud group (by id or name)")
    def get(self, request, ref):
        return Response(group_json(services.get_group(ref)))

    @extend_schema(summary="Update a subcloud group", request=GroupInput)
    def patch(self, request, ref):
        group = services.get_group(ref)
        data = _validated(GroupInput, request.data, partial=True)
        return Response(group_json(services.update_group(group, data)))

    @extend_schema(summary="Delete a subcloud group (its subclouds move to Default)")
    def delete(self, request, ref):
        services.delete_group(services.get_group(ref))
        return Response(status=status.HTTP_204_NO_CONTENT)


class GroupSubclouds(ServiceErrors, APIView):
    @extend_schema(summary="The subclouds of a group")
    def get(self, request, ref):
        group = services.get_group(ref)
        return Response({"subclouds": subclouds_json(Subcloud.objects.filter(group=group))})


class AlarmSummary(APIView):
    @extend_schema(summary="Alarm summary per subcloud")
    def get(self, request):
        return Response({"alarm_summary": alarm_summary_json()})


class FaultList(APIView):
    @extend_schema(
        summary="Active faults",
        parameters=[OpenApiParameter("subcloud", description="subcloud name"), OpenApiParameter("alarm_id")],
    )
    def get(self, request):
        faults = Fault.objects.filter(cleared_at__isnull=True).order_by("-raised_at", "-id")
        if request.query_params.get("subcloud"):
            faults = faults.filter(subcloud_name=request.query_params["subcloud"])
        if request.query_params.get("alarm_id"):
            faults = faults.filter(alarm_id=request.query_params["alarm_id"])
        return Response({"faults": [fault_json(f) for f in faults]})
