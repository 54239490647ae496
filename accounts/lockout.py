"""How django-axes sees a client and answers a locked-out login (settings AXES_*_CALLABLE).

Every password check goes through django.contrib.auth.authenticate(request=...), so the
login page, the admin's login and any JSON identity endpoint share the same counters.
"""

import math

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render


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
