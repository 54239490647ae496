"""Every API error is JSON: {"error_message": "...", "field": <name or null>, "errors": {...}}.

`error_message` is the key dcmanager clients print; `field` names the first
offending field as the client spelled it.
"""

from django import db
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import JsonResponse
from redis import exceptions as redis_exceptions
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

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
            name = field_label(str(key)) if key != "non_field_errors" else "body"
            out.update(_flatten(value, f"{prefix}{name}" if not prefix else f"{prefix}.{name}"))
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
}
RETRY_AFTER_SECONDS = 5


def unavailable(exc):
    """503 with Retry-After when `exc` means PostgreSQL or Redis is not answering, else None."""
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
