from django.contrib import admin
from django.urls import include, path, re_path

from state.metrics import metrics

from . import health

urlpatterns = [
    path("", health.versions, name="versions"),
    re_path(r"^healthz/?$", health.healthz, name="healthz"),
    re_path(r"^metrics/?$", metrics, name="metrics"),
    re_path(r"^v1\.0/", include("subclouds.api.urls")),
    path("admin/", admin.site.urls),
]

handler404 = "subclouds.api.errors.not_found"
handler500 = "subclouds.api.errors.server_error"
