"""/identity: Keystone v3 version discovery and /identity/v3/auth/tokens, as Keystone answers them.

Plain Django views: errors use Keystone's {"error": {"code", "message", "title"}} body,
which keystoneauth1 reads, not the REST API's error shape.
"""

import json

from django.contrib.auth import authenticate, get_user_model
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.authentication import token_from_headers, user_for_own_token
from accounts.roles import SERVICE, SUPERUSER, role_of
from subclouds.inputs import is_id

from . import tokens

VERSION = "v3.14"
UPDATED = "2020-04-07T00:00:00Z"
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}
UNAUTHORIZED = "The request you have made requires authentication."


class KeystoneError(Exception):
    def __init__(self, code, message=UNAUTHORIZED):
        super().__init__(message)
        self.code = code
        self.message = message


def error(code, message):
    return JsonResponse({"error": {"code": code, "message": message, "title": TITLES[code]}}, status=code)


def _version(request):
    return {
        "id": VERSION,
        "status": "stable",
        "updated": UPDATED,
        "links": [{"rel": "self", "href": request.build_absolute_uri("/identity/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }


def discovery(request):
    """GET /identity: the versions this endpoint offers (300 Multiple Choices, as Keystone answers at its root)."""
    if request.method not in ("GET", "HEAD"):
        return error(405, "Only GET is allowed here.")
    return JsonResponse({"versions": {"values": [_version(request)]}}, status=300)


def version(request):
    if request.method not in ("GET", "HEAD"):
        return error(405, "Only GET is allowed here.")
    return JsonResponse({"version": _version(request)})


@csrf_exempt
def auth_tokens(request):
    """POST: issue a token (201, X-Subject-Token); GET/HEAD: validate X-Subject-Token; DELETE: revoke it."""
    try:
        if request.method == "POST":
            return _issue(request)
        if request.method in ("GET", "HEAD", "DELETE"):
            return _subject(request)
        return error(405, f"{request.method} is not allowed on /v3/auth/tokens.")
    except KeystoneError as exc:
        return error(exc.code, exc.message)


def _dict(value, where):
    if not isinstance(value, dict):
        raise KeystoneError(400, f"Invalid input for field '{where}': expected an object.")
    return value


def _default_domain(domain, where):
    """Only the Default domain exists here (by id "default" or name "Default")."""
    domain = _dict(domain, where)
    if domain.get("id", "default") != "default" or domain.get("name", "Default") != "Default":
        raise KeystoneError(401)


def _password_user(request, password):
    user = _dict(password.get("user"), "identity.password.user")
    secret = user.get("password")
    if not isinstance(secret, str):
        raise KeystoneError(400, "Invalid input for field 'identity.password.user.password'.")
    if "id" in user:
        row = get_user_model().objects.filter(pk=int(user["id"])).first() if is_id(str(user["id"])) else None
        username = row.get_username() if row else None
    else:
        username = user.get("name")
        if not isinstance(username, str):
            raise KeystoneError(400, "Invalid input for field 'identity.password.user': a name or an id is required.")
        _default_domain(user.get("domain"), "identity.password.user.domain")
    # request= lets login throttling (and any other authentication backend) see the client.
    found = authenticate(request=request, username=username, password=secret) if username else None
    if found is None:
        raise KeystoneError(401)
    return found


def _token_user(request, token):
    """(user, expiry cap) of the token method: one of ours (its expiry caps the new one) or an API token."""
    plain = _dict(token, "identity.token").get("id") or token_from_headers(request.headers)
    row = tokens.valid_token(plain) if isinstance(plain, str) else None
    if row is not None:
        return row.user, row.expires_at
    # Never an external Keystone's token: a token of ours got for it would outlive its revocation there.
    user = user_for_own_token(plain) if isinstance(plain, str) else None
    if user is None:
        raise KeystoneError(401)
    return user, None


def _project(scope):
    """The configured project name the scope asks for, "" for no scope."""
    if scope is None:
        return ""
    project = _dict(_dict(scope, "scope").get("project"), "scope.project")
    if "id" in project:
        name = tokens.project_with_id(project["id"])
    else:
        _default_domain(project.get("domain"), "scope.project.domain")
        name = tokens.project_named(project.get("name"))
    if name is None:
        raise KeystoneError(401)
    return name


def _issue(request):
    try:
        auth = _dict(_dict(json.loads(request.body or b"null"), "body").get("auth"), "auth")
    except ValueError as exc:
        raise KeystoneError(400, "The request body is not valid JSON.") from exc
    identity = _dict(auth.get("identity"), "auth.identity")
    methods = identity.get("methods")
    if methods == ["password"]:
        user, cap = _password_user(request, _dict(identity.get("password"), "identity.password")), None
    elif methods == ["token"]:
        user, cap = _token_user(request, identity.get("token", {}))
    else:
        raise KeystoneError(401, "Attempted to authenticate with an unsupported method.")
    project = _project(auth.get("scope"))
    if project and role_of(user) is None:  # no role on any project
        raise KeystoneError(401)
    row, plain = tokens.issue(user, project, methods, expires_at=cap)
    response = JsonResponse(tokens.body(row, with_catalog="nocatalog" not in request.GET), status=201)
    response["X-Subject-Token"] = plain
    return response


def _subject(request):
    """Validate or revoke X-Subject-Token for a caller holding a valid token (its owner, a service or an admin)."""
    caller_token = token_from_headers(request.headers)
    caller_row = tokens.valid_token(caller_token)
    caller = caller_row.user if caller_row else (user_for_own_token(caller_token) if caller_token else None)
    if caller is None:
        raise KeystoneError(401)
    subject = request.headers.get("X-Subject-Token", "").strip()
    if not subject:
        raise KeystoneError(400, "The X-Subject-Token header is required.")
    row = tokens.valid_token(subject)
    if row is None:
        raise KeystoneError(404, "Could not find token.")
    if row.user_id != caller.pk and role_of(caller) not in (SUPERUSER, SERVICE):
        raise KeystoneError(403, "You are not authorized to perform the requested action.")
    if request.method == "DELETE":
        tokens.revoke(subject)
        return HttpResponse(status=204)
    if request.method == "HEAD":
        response = HttpResponse(status=200)
    else:
        response = JsonResponse(tokens.body(row, with_catalog="nocatalog" not in request.GET))
    response["X-Subject-Token"] = subject
    return response
