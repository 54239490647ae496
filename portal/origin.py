"""The websocket Origin check: the whole origin (scheme, host and port), not the host alone.

A browser's Origin must be an origin this server actually serves: one of
ALLOWED_HOSTS with the scheme and port of the connection (scope["server"]), or
one of DCPORTAL_CSRF_TRUSTED_ORIGINS (for a proxy in front). So a page on
http://localhost:9999 cannot use an operator's session cookie on :8119.
Programmatic clients send no Origin and authenticate with a token.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
UNKNOWN_SERVER_PORT = 8119  # the product's port, when the ASGI server does not say (test communicators)


def _parts(origin):
    """(scheme, host, port) of an origin text, or None when it is not one."""
    try:
        split = urlsplit(origin)
        port = split.port or DEFAULT_PORTS.get(split.scheme)
    except ValueError:
        return None
    if split.scheme not in DEFAULT_PORTS or not split.hostname or split.path not in ("", "/") or split.query:
        return None
    return split.scheme, split.hostname.lower(), port


def served(origin, scope):
    """Whether `origin` (an Origin header's text) is one this server serves on this connection."""
    parts = _parts(origin)
    if parts is None:
        return False
    if any(_parts(trusted) == parts for trusted in settings.CSRF_TRUSTED_ORIGINS):
        return True
    scheme, host, port = parts
    served_scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    served_port = (scope.get("server") or (None, None))[1] or UNKNOWN_SERVER_PORT
    host_text = f"[{host}]" if ":" in host else host
    return scheme == served_scheme and port == served_port and validate_host(host_text, settings.ALLOWED_HOSTS)
