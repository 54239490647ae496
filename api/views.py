"""REST views for subclouds, groups, alarms and faults: thin; rules live in services and state/."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsOperator
from state import asof, availability, events, operations
from state.actors import Actor
from state.incidents import CLOSED, OPEN, incidents_json
from state.kinds import Source
from subclouds import services
from subclouds.choices import Availability, DeployStatus, ManagementState, SyncStatus
from subclouds.filtersets import filter_faults, filter_subclouds_as_of
from subclouds.inputs import (
    MAX_PAGE,
    SORT_KEYS,
    BulkAction,
    GroupInput,
    IncidentFilter,
    RegisterSubcloud,
    RegisterSubclouds,
    SubcloudPage,
    UpdateSubcloud,
    validated,
)
from subclouds.models import Fault, Subcloud, SubcloudGroup
from subclouds.representation import (
    alarm_summary_json,
    fault_json,
    group_json,
    group_subclouds_json,
    subcloud_detail_json,
    subclouds_json,
    subclouds_page,
)

from . import schema
from .errors import known_error
from .renderers import FastJSONRenderer


def deleted():
    """200, not 204: dcmanagerclient's ResourceManager._delete() raises on any other status."""
    return Response({}, status=status.HTTP_200_OK)


class ServiceErrors:
    """Maps service exceptions to the API's JSON errors (errors.known_error, shared with the admin commands)."""

    def handle_exception(self, exc):
        known = known_error(exc)
        if known is not None:
            return Response(known[1], status=known[0])
        return super().handle_exception(exc)


class SubcloudList(ServiceErrors, APIView):
    permission_classes = [IsOperator]
    renderer_classes = [FastJSONRenderer]

    @extend_schema(
        summary="List subclouds",
        operation_id="subclouds_list",
        responses=schema.responses(schema.SUBCLOUD_PAGE, 400),
        parameters=[
            OpenApiParameter("availability-status", enum=Availability.values),
            OpenApiParameter("management-state", enum=ManagementState.values),
            OpenApiParameter("deploy-status", enum=DeployStatus.values),
            OpenApiParameter("group_id", int),
            OpenApiParameter("sync_status", enum=SyncStatus.values),
            OpenApiParameter("name", description="substring of the name"),
            OpenApiParameter("limit", int, description=f"page size, 1..{MAX_PAGE}: paging on (subclouds_links)"),
            OpenApiParameter("marker", description="id or name of the last subcloud seen: the page after it"),
            OpenApiParameter("sort_key", enum=list(SORT_KEYS), description="default id"),
            OpenApiParameter("sort_dir", enum=["asc", "desc"], description="default asc"),
            OpenApiParameter(
                "as_of", OpenApiTypes.DATETIME,
                description="ISO time within the change log's retention: the list as it was then (availability, "
                "management, deploy status, endpoint sync statuses and which subclouds existed); status filters "
                "match the values of then",
            ),
        ],
    )
    def get(self, request):
        queryset, as_of, wanted = filter_subclouds_as_of(request.query_params)
        page = validated(SubcloudPage, {k: v for k, v in request.query_params.items() if k in SubcloudPage().fields})
        if as_of is not None:
            if page:
                raise ValidationError({next(iter(page)): ["not available with as_of (the past list is not paged or sorted)"]})
            rows = asof.subclouds_as_of(queryset, asof.check_time(as_of))
            return Response({"subclouds": [r for r in rows if all(r[k] == v for k, v in wanted.items())]})
        if not page:  # exactly dcmanager's list
            return Response({"subclouds": subclouds_json(queryset, sync_status=wanted.get("sync_status"))})
        return Response(self.page(request, queryset, page))

    @staticmethod
    def page(request, queryset, page):
        """A sorted list, paged when limit or marker is given: then subclouds_links has the next page's link."""
        rows, more = subclouds_page(queryset, SORT_KEYS[page.get("sort_key", "id")], page.get("sort_dir") == "desc",
                                    page.get("limit"), page.get("marker"))
        body = {"subclouds": rows}
        if "limit" in page or "marker" in page:
            links = []
            if more:
                params = request.query_params.copy()
                params["marker"] = str(rows[-1]["id"])
                links.append({"rel": "next", "href": request.build_absolute_uri(f"{request.path}?{params.urlencode()}")})
            body["subclouds_links"] = links
        return body

    @extend_schema(
        summary="Register an existing subcloud",
        request={"application/json": RegisterSubcloud, "multipart/form-data": RegisterSubcloud},
        responses=schema.responses(schema.SUBCLOUD, 400, 409),
    )
    def post(self, request):
        subcloud = operations.register_subcloud(validated(RegisterSubcloud, request.data), Actor.of_request(request))
        return Response(subclouds_json(Subcloud.objects.filter(pk=subcloud.pk))[0])


class SubcloudDetail(ServiceErrors, APIView):
    permission_classes = [IsOperator]

    @extend_schema(summary="Show a subcloud (by id, name or region name)", responses=schema.responses(schema.SUBCLOUD, 404))
    def get(self, request, ref):
        subcloud = services.get_subcloud(ref)
        return Response(subclouds_json(Subcloud.objects.filter(pk=subcloud.pk))[0])

    @extend_schema(
        summary="Manage / unmanage or edit a subcloud",
        request={"application/json": UpdateSubcloud, "multipart/form-data": UpdateSubcloud},
        responses=schema.responses(schema.SUBCLOUD, 400, 404),
    )
    def patch(self, request, ref):
        subcloud = services.get_subcloud(ref)
        data = validated(UpdateSubcloud, request.data)
        operations.update(subcloud, data, Actor.of_request(request))
        return Response(subclouds_json(Subcloud.objects.filter(pk=subcloud.pk))[0])

    @extend_schema(summary="Delete an unmanaged subcloud", responses=schema.responses(schema.DELETED, 400, 404))
    def delete(self, request, ref):
        operations.delete_subcloud(services.get_subcloud(ref).pk, Actor.of_request(request))
        return deleted()


class SubcloudBulkAction(ServiceErrors, APIView):
    permission_classes = [IsOperator]

    @extend_schema(
        summary="Manage, unmanage or move many subclouds (a list, or a whole group), with a result per subcloud",
        request=BulkAction,
        responses=schema.responses(schema.BULK_RESULT, 400, 413),
    )
    def post(self, request):
        return Response(operations.bulk_action(validated(BulkAction, request.data), Actor.of_request(request)))


class SubcloudBulkRegister(ServiceErrors, APIView):
    permission_classes = [IsOperator]

    @extend_schema(
        summary="Register many existing subclouds at once: all validated first, then all registered or none",
        request=RegisterSubclouds,
        responses=schema.responses(schema.SUBCLOUD_LIST, 400, 409, 413),
    )
    def post(self, request):
        items = validated(RegisterSubclouds, request.data)["subclouds"]
        made = operations.register_subclouds(items, Actor.of_request(request), label=lambda i, key: f"subclouds[{i}].{key}")
        return Response({"subclouds": subclouds_json(Subcloud.objects.filter(pk__in=[s.pk for s in made]))})


class SubcloudDetailView(ServiceErrors, APIView):
    @extend_schema(summary="Show a subcloud with its detail keys", responses=schema.responses(schema.SUBCLOUD_DETAIL, 404))
    def get(self, request, ref):
        return Response(subcloud_detail_json(services.get_subcloud(ref)))


class GroupList(ServiceErrors, APIView):
    permission_classes = [IsOperator]

    @extend_schema(
        summary="List subcloud groups", operation_id="subcloud_groups_list", responses=schema.responses(schema.GROUP_LIST)
    )
    def get(self, request):
        return Response({"subcloud_groups": [group_json(g) for g in SubcloudGroup.objects.order_by("id")]})

    @extend_schema(summary="Create a subcloud group", request=GroupInput, responses=schema.responses(schema.GROUP, 400, 409))
    def post(self, request):
        return Response(group_json(services.create_group(validated(GroupInput, request.data))))


class GroupDetail(ServiceErrors, APIView):
    permission_classes = [IsOperator]

    @extend_schema(summary="Show a subcloud group (by id or name)", responses=schema.responses(schema.GROUP, 404))
    def get(self, request, ref):
        return Response(group_json(services.get_group(ref)))

    @extend_schema(summary="Update a subcloud group", request=GroupInput, responses=schema.responses(schema.GROUP, 400, 404, 409))
    def patch(self, request, ref):
        group = services.get_group(ref)
        data = validated(GroupInput, request.data, partial=True)
        return Response(group_json(services.update_group(group, data)))

    @extend_schema(
        summary="Delete a subcloud group (its subclouds move to Default)", responses=schema.responses(schema.DELETED, 400, 404)
    )
    def delete(self, request, ref):
        services.delete_group(services.get_group(ref))
        return deleted()


class GroupSubclouds(ServiceErrors, APIView):
    @extend_schema(summary="The subclouds of a group (as upstream: without endpoint_sync_status)",
                   responses=schema.responses(schema.GROUP_SUBCLOUD_LIST, 404))
    def get(self, request, ref):
        return Response({"subclouds": group_subclouds_json(services.get_group(ref))})


class AlarmSummary(APIView):
    @extend_schema(summary="Alarm summary per subcloud", responses=schema.responses(schema.ALARM_SUMMARY))
    def get(self, request):
        return Response({"alarm_summary": alarm_summary_json()})


class FaultList(APIView):
    @extend_schema(
        summary="Active faults",
        responses=schema.responses(schema.FAULT_LIST, 400),
        parameters=[OpenApiParameter("subcloud", description="subcloud name"), OpenApiParameter("alarm_id")],
    )
    def get(self, request):
        active = Fault.objects.filter(cleared_at__isnull=True).order_by("-raised_at", "-id")
        faults = filter_faults(request.query_params, active)
        return Response({"faults": [fault_json(f) for f in faults]})


class EventList(ServiceErrors, APIView):
    @extend_schema(
        summary="Fleet-wide events: the change log, newest first, with who did what (a page at a time)",
        operation_id="events_list",
        responses=schema.responses(schema.EVENT_LIST, 400),
        parameters=[
            OpenApiParameter("subcloud", description="subcloud name"),
            OpenApiParameter("group", description="group id or name"),
            OpenApiParameter("actor", description="user name (or OS user of an admin command)"),
            OpenApiParameter("source", enum=Source.values),
            OpenApiParameter("kind", enum=list(events.KINDS)),
            OpenApiParameter("since", description="ISO 8601 time (UTC when no offset)"),
            OpenApiParameter("until", description="ISO 8601 time (UTC when no offset)"),
            OpenApiParameter("before", int, description="cursor: the `next` of the previous page"),
            OpenApiParameter("limit", int, description=f"1..{events.MAX_LIMIT}, default {events.DEFAULT_LIMIT}"),
        ],
    )
    def get(self, request):
        rows, cursor = events.page(events.parse(request.query_params))
        return Response({"events": [events.event_json(r) for r in rows], "next": cursor})


class SubcloudAvailability(ServiceErrors, APIView):
    @extend_schema(
        summary="Availability history of a subcloud: online / offline periods and uptime (from the change log)",
        responses=schema.responses(schema.AVAILABILITY, 400, 404),
        parameters=[OpenApiParameter("window", enum=list(availability.WINDOWS), description="default 24h")],
    )
    def get(self, request, ref):
        window = availability.parse_window(request.query_params.get("window"))
        return Response(availability.availability(services.get_subcloud(ref), window))


class IncidentList(ServiceErrors, APIView):
    @extend_schema(
        summary="Incidents: many subclouds going offline at once, derived from the change log",
        responses=schema.responses(schema.INCIDENT_LIST, 400),
        parameters=[
            OpenApiParameter("status", enum=[OPEN, CLOSED]),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="only incidents not closed before this time"),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="only incidents started by this time"),
        ],
    )
    def get(self, request):
        return Response({"incidents": incidents_json(**validated(IncidentFilter, request.query_params))})
