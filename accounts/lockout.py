"""How django-axes sees a client, counts its failures and answers a locked-out login (settings AXES_*).

Every password check goes through django.contrib.auth.authenticate(request=...), so the
login page, the admin's login and any JSON identity endpoint (a DRF view passing its own
request) share the same counters and the same 429.
"""

import math

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render


def django_request(request):
    """The HttpRequest under a DRF Request. axes marks a lockout on the object it is given, and
    AxesMiddleware looks at the HttpRequest: marked on DRF's wrapper, a JSON endpoint would answer 401."""
    return getattr(request, "_request", request)


class LockoutBackend(AxesStandaloneBackend):
    """First in AUTHENTICATION_BACKENDS: refuses a locked-out username or address before any password is checked."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        return super().authenticate(django_request(request), username, password, **kwargs)


class LockoutHandler(AxesDatabaseHandler):
    """Counts failures in PostgreSQL (shared by every daphne process), marking the HttpRequest."""

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        request = django_request(request)
        AxesProxyHandler.update_request(request)
        return super().user_login_failed(sender, credentials, request, **kwargs)


def client_ip(request):
    """REMOTE_ADDR, or the header a trusted proxy sets (DCPORTAL_LOGIN_CLIENT_IP_HEADER).

    In X-Forwarded-For style lists the last entry is the one the proxy itself appended;
    earlier ones are whatever the client sent, so they are never trusted.
    """
    header = settings.LOGIN_CLIENT_IP_HEADER
    if header:
        value = request.headers.get(header, "").split(",")[-1].strip()
        if value:
            return value
    return request.META.get("REMOTE_ADDR")


def _wants_json(request):
    if request.META.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest":
        return True
    if request.content_type == "application/json":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def lockout_response(request, original_response=None, credentials=None):
    """429 with Retry-After: the API's error shape for JSON clients, the login-styled page for browsers."""
    cooloff = settings.AXES_COOLOFF_TIME
    minutes = math.ceil(cooloff.total_seconds() / 60)
    plural = "s" if minutes != 1 else ""
    message = f"Too many failed logins: try again in {minutes} minute{plural}, or ask an administrator to unlock."
    if _wants_json(request):
        response = JsonResponse({"error_message": message, "field": None, "errors": {}}, status=429)
    else:
        response = render(request, "portal/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(math.ceil(cooloff.total_seconds()))
    return response
