"""Pages under /portal/; login and logout live at the top (settings.LOGIN_URL)."""

from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("subclouds/", views.subcloud_list, name="subclouds"),
    path("subclouds/<str:name>/", views.subcloud_detail, name="subcloud"),
    path("subclouds/<str:name>/history/", views.subcloud_history, name="subcloud-history"),
    path("groups/", views.group_list, name="groups"),
    path("alarms/", views.alarms, name="alarms"),
    path("events/", views.events_page, name="events"),
]
