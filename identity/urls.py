from django.urls import re_path

from . import views

app_name = "identity"
# Slash or not, as keystoneauth1 and curl spell them; nothing redirects.
urlpatterns = [
    re_path(r"^identity/?$", views.discovery, name="discovery"),
    re_path(r"^identity/v3/?$", views.version, name="v3"),
    re_path(r"^identity/v3/auth/tokens/?$", views.auth_tokens, name="tokens"),
]
