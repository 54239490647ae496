"""Every API error is JSON: {"error_message": "...", "field": <name or null>, "errors": {...}}.

`error_message` is the key dcmanager clients print; `field` names the first
offending field as the client spelled it.
"""

import json
from html import escape
from http import HTTPStatus

from django import db
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpResponse, JsonResponse
from redis import exceptions as redis_exceptions
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.keystone import KeystoneUnavailable
from subclouds.errors import Refused
from subclouds.inputs import field_label


def error_body(message, field=None, errors=None):
    return {"error_message": message, "field": field, "errors": errors or {}}


def error_response(status_code, message, field=None):
    return Response(error_body(message, field), status=status_code)


def _flatten(detail, prefix=""):
    """DRF's nested error detail -> {field: [messages]} with client spellings."""
    if isinstance(detail, dict):
        out = {}
        for key, value in detail.items():
            if isinstance(key, int):  # a list's item by index (DRF's ListSerializer): subclouds[3]
                out.update(_flatten(value, f"{prefix}[{key}]"))
                continue
            if key == "non_field_errors":  # about the object as a whole: the body, or the nested object itself
                out.update(_flatten(value, prefix))
                continue
            name = field_label(str(key))
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(detail, list) and detail and isinstance(detail[0], (dict, list)):
        out = {}
        for i, value in enumerate(detail):
            out.update(_flatten(value, f"{prefix}[{i}]"))
        return out
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or "body": [str(m) for m in messages]}


def known_error(exc):
    """(status, body) for invalid input and every refusal (subclouds.errors), else None.

    The one mapping used by the API and by the admin commands (which print the body's error_message).
    """
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        field, messages = next(iter(errors.items()))
        return status.HTTP_400_BAD_REQUEST, error_body(f"{field}: {messages[0]}", field, errors)
    if isinstance(exc, Refused):  # and its NotFound (404) and Conflict (409)
        return exc.status, error_body(exc.message, exc.field, exc.errors)
    return None


# A dependency that is down or restarting: the request may succeed if retried, so 503, never 500.
UNAVAILABLE = {
    "database": (db.OperationalError, db.InterfaceError),
    "channel layer": (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError),
    "identity service (Keystone)": (KeystoneUnavailable,),  # accounts/keystone.py: a token it cannot check
}
RETRY_AFTER_SECONDS = 5


def unavailable(exc):
    """503 with Retry-After when `exc` means PostgreSQL, Redis or an external Keystone is not answering, else None."""
    for dependency, classes in UNAVAILABLE.items():
        if isinstance(exc, classes):
            response = error_response(status.HTTP_503_SERVICE_UNAVAILABLE,
                                      f"Service temporarily unavailable: the {dependency} is not answering; retry later.")
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
    return None


def exception_handler(exc, context):
    known = known_error(exc)
    if known is not None:
        return Response(known[1], status=known[0])
    down = unavailable(exc)
    if down is not None:
        return down
    if isinstance(exc, SuspiciousOperation):  # e.g. a body over DATA_UPLOAD_MAX_MEMORY_SIZE
        code, body = bad_request_body(exc)
        return Response(body, status=code)
    response = drf_exception_handler(exc, context)
    if response is not None:
        detail = response.data.get("detail", str(exc)) if isinstance(response.data, dict) else str(exc)
        response.data = error_body(str(detail))
    return response


def too_large_body(limit):
    """The 413's body, alike whether Django (DATA_UPLOAD_MAX_MEMORY_SIZE) or the server (MAX_BODY_BYTES) refused."""
    return error_body(f"Request body larger than {limit} bytes.", "body")


def bad_request_body(exception):
    """(status, body) of a request Django itself refuses: 413 for a body too large, 400 otherwise."""
    if isinstance(exception, RequestDataTooBig):
        return status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, too_large_body(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    return status.HTTP_400_BAD_REQUEST, error_body("Bad request.")


def bad_request(request, exception=None):
    code, body = bad_request_body(exception)
    return JsonResponse(body, status=code)


def not_found(request, exception=None):
    return JsonResponse(error_body(f"The resource {request.path} could not be found."), status=404)


def server_error(request):
    return JsonResponse(error_body("Internal server error."), status=500)


# -- Error pages for dcmanager clients ------------------------------------------------------------
# Upstream dcmanager answers errors with webob's HTML page, and its client prints them by reading
# the page's <body> lines: "<explanation>.\nDetails: <detail>". A JSON body reaches its users as raw
# JSON. So a request from a dcmanager client (it sends X-Project-Id on every call, Keystone or not)
# or one preferring text/html gets that page; every other client, and anyone whose Accept names
# application/json, keeps the JSON body with `field` and `errors`.
EXPLANATIONS = {  # webob's, per status
    400: "The server could not comply with the request since it is either malformed or otherwise incapable of performing it.",
    401: "This server could not verify that you are authorized to access the document you requested.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    405: "The method is not allowed for this resource.",
    409: "There was a conflict when trying to complete your request.",
    413: "The request is larger than the server is willing or able to process.",
    415: "The request media type is not supported by this server.",
    429: "The client has sent too many requests in a given amount of time.",
    500: "The server has either erred or is incapable of performing the requested operation.",
    503: "The server is currently unavailable. Please try again at a later time.",
}


def wants_error_page(request):
    """True for the dcmanager client (X-Project-Id) or an Accept preferring HTML, unless JSON is asked for."""
    accept = request.headers.get("Accept", "")
    if "json" in accept:
        return False
    return "X-Project-Id" in request.headers or "text/html" in accept


def error_page(status_code, message):
    """webob's error page: the client shows line 2 (explanation) and the rest as Details."""
    try:
        status_line = f"{status_code} {HTTPStatus(status_code).phrase}"
    except ValueError:
        status_line = str(status_code)
    explanation = EXPLANATIONS.get(status_code, EXPLANATIONS[500 if status_code >= 500 else 400])
    detail = escape(" ".join(str(message).split()))
    return (f"<html>\n <head>\n  <title>{status_line}</title>\n </head>\n <body>\n  <h1>{status_line}</h1>\n"
            f"  {explanation}<br /><br />\n{detail}\n\n </body>\n</html>")


class DcmanagerErrorPages:
    """Middleware: the JSON error body of /v1.0 as webob's HTML page for clients that want it (see above)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (response.status_code < 400 or not request.path.startswith("/v1.0")
                or not response.get("Content-Type", "").startswith("application/json") or not wants_error_page(request)):
            return response
        try:
            message = json.loads(response.content)["error_message"]
        except (ValueError, KeyError, TypeError):
            return response
        page = HttpResponse(error_page(response.status_code, message), status=response.status_code,
                            content_type="text/html; charset=UTF-8")
        for header in ("Retry-After", "WWW-Authenticate", "Allow"):
            if header in response:
                page[header] = response[header]
        return page
