"""/v1.0 routes; every path answers with and without a trailing slash, never redirecting."""

from django.urls import re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import state as state_api
from . import views

REF = r"(?P<ref>[^/]+)"


def path(route, view, name):
    return re_path(rf"^{route}/?$", view, name=name)


urlpatterns = [
    path("subclouds", views.SubcloudList.as_view(), "subcloud-list"),
    # Not under subclouds/: it would shadow a subcloud named like the action.
    path("subcloud-bulk-actions", views.SubcloudBulkAction.as_view(), "subcloud-bulk-actions"),
    path("subcloud-bulk-register", views.SubcloudBulkRegister.as_view(), "subcloud-bulk-register"),
    path(f"subclouds/{REF}/detail", views.SubcloudDetailView.as_view(), "subcloud-detail"),
    path(f"subclouds/{REF}/availability", views.SubcloudAvailability.as_view(), "subcloud-availability"),
    path(f"subclouds/{REF}/update_status", state_api.UpdateStatusView.as_view(), "subcloud-update-status"),
    path(f"subclouds/{REF}", views.SubcloudDetail.as_view(), "subcloud"),
    path("subcloud-groups", views.GroupList.as_view(), "group-list"),
    path(f"subcloud-groups/{REF}/subclouds", views.GroupSubclouds.as_view(), "group-subclouds"),
    path(f"subcloud-groups/{REF}", views.GroupDetail.as_view(), "group"),
    path("alarms", views.AlarmSummary.as_view(), "alarms"),
    path("faults", views.FaultList.as_view(), "faults"),
    path("events", views.EventList.as_view(), "events"),
    path("incidents", views.IncidentList.as_view(), "incidents"),
    path("state/endpoint-status", state_api.EndpointStatusView.as_view(), "state-endpoint-status"),
    path("state/availability", state_api.AvailabilityView.as_view(), "state-availability"),
    path("state/bulk", state_api.BulkView.as_view(), "state-bulk"),
    path("state/stats", state_api.StatsView.as_view(), "state-stats"),
    path("schema", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]), "schema"),
    # The split view serves its script from ?script (no inline script: the Content-Security-Policy forbids it).
    path(
        "docs",
        SpectacularSwaggerSplitView.as_view(url_name="schema", permission_classes=[], authentication_classes=[]),
        "docs",
    ),
]
