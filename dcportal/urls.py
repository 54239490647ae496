from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from api.metrics import metrics
from ops import health

urlpatterns = [
    path("", health.root, name="versions"),
    re_path(r"^healthz/?$", health.healthz, name="healthz"),
    re_path(r"^metrics/?$", metrics, name="metrics"),
    re_path(r"^v1\.0/", include("api.urls")),
    path("", include("identity.urls")),
    path("admin/", admin.site.urls),
    path("portal/", include("portal.urls")),
    path("login/", auth_views.LoginView.as_view(template_name="portal/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]

handler400 = "api.errors.bad_request"
handler404 = "api.errors.not_found"
handler500 = "api.errors.server_error"
