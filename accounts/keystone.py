"""Tokens of an external Keystone (DCPORTAL_KEYSTONE_URL): who holds them and with which dcportal role.

As keystonemiddleware's auth_token does it: dcportal's service user (a keystoneauth1 session with the
password method) asks `GET /v3/auth/tokens` with the token in `X-Subject-Token`; Keystone answers 200
with the token's body or 404 for a token that is invalid, expired or revoked. The answer, either way,
is kept in this process's memory for DCPORTAL_KEYSTONE_CACHE_SECONDS (never past the token's expiry),
so a revoked token stops working within that bound. A Keystone that cannot answer (down, timing out,
5xx, refusing the service credentials) raises KeystoneUnavailable: 503, and the request is not let through.

The holder is a Django user "keystone:<name>@<domain>" (unusable password), created on first use; its
role is set from the role map at every validation, so a role changed in Keystone takes effect within the
cache bound and the websocket re-check (accounts/credentials.py) sees it in the database like any role.
"""

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from keystoneauth1 import exceptions as ksa_exceptions
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3
from rest_framework import exceptions

from .models import hash_token
from .roles import OPERATOR, READER, ROLES, SERVICE, SUPERUSER, role_of, set_role

log = logging.getLogger(__name__)

USERNAME_PREFIX = "keystone:"
RETRY_AFTER_SECONDS = 5
_STRENGTH = (SUPERUSER, OPERATOR, SERVICE, READER)  # the strongest mapped role is the user's
_MAX_ENTRIES = 10000


class KeystoneUnavailable(exceptions.APIException):
    """Keystone did not give an answer: the token is neither accepted nor refused (503, retry later)."""

    status_code = 503
    default_detail = "Service temporarily unavailable: the identity service (Keystone) is not answering; retry later."
    wait = RETRY_AFTER_SECONDS  # DRF turns it into Retry-After


def enabled():
    return bool(settings.KEYSTONE_URL)


def v3_url():
    url = settings.KEYSTONE_URL
    return url if url.endswith("/v3") else f"{url}/v3"


def parse_role_map(text):
    """ "[project:]keystone_role=dcportal_role,..." -> {(project or None, keystone role): dcportal role}; ValueError."""
    mapping = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        source, sep, target = (part.strip() for part in item.partition("="))
        project, _, role = source.rpartition(":")
        if not sep or not role or target not in (*ROLES, SUPERUSER):
            raise ValueError(f"bad role map entry {item!r}: expected [project:]keystone_role=one of "
                             f"{', '.join((*ROLES, SUPERUSER))}")
        mapping[(project.strip() or None, role.lower())] = target
    return mapping


def mapped_role(project, keystone_roles, role_map):
    """The dcportal role of these Keystone roles on `project` (an entry naming the project wins), or None."""
    found = set()
    for name in keystone_roles:
        key = name.lower()
        target = role_map.get((project, key), role_map.get((None, key)))
        if target:
            found.add(target)
    return next((r for r in _STRENGTH if r in found), None)


@dataclass(frozen=True)
class Holder:
    """What Keystone said of a valid token, reduced to what dcportal uses."""

    username: str
    project: str
    role: str | None


_lock = threading.Lock()
_session = None
# token hash -> (token, Holder or None for a refused token, monotonic time until which the answer holds).
# The token itself is kept so the websocket re-check (which has only hashes) can ask again.
_answers = {}


def _service_session():
    global _session
    with _lock:
        if _session is None:
            auth = v3.Password(
                auth_url=v3_url(), username=settings.KEYSTONE_USERNAME, password=settings.KEYSTONE_PASSWORD,
                project_name=settings.KEYSTONE_PROJECT, user_domain_name=settings.KEYSTONE_USER_DOMAIN,
                project_domain_name=settings.KEYSTONE_PROJECT_DOMAIN,
            )
            _session = ksa_session.Session(auth=auth, timeout=settings.KEYSTONE_TIMEOUT_SECONDS)
        return _session


def forget():
    """Drop the cached answers and the service session (settings changed: tests)."""
    global _session
    with _lock:
        _answers.clear()
        _session = None


def _in_domain(domain):
    wanted = settings.KEYSTONE_PROJECT_DOMAIN.lower()
    return wanted in {str(domain.get("name", "")).lower(), str(domain.get("id", "")).lower()}


def _ask(token):
    """Keystone's answer for token: (Holder, seconds it has left), None (refused), or KeystoneUnavailable."""
    try:
        response = _service_session().get(
            f"{v3_url()}/auth/tokens", headers={"X-Subject-Token": token}, authenticated=True, raise_exc=False,
        )
    except ksa_exceptions.ClientException as exc:  # connection refused, timeout, service credentials refused
        log.warning("Keystone at %s did not validate a token: %s", settings.KEYSTONE_URL, exc)
        raise KeystoneUnavailable() from exc
    if response.status_code == 404:  # invalid, expired or revoked
        return None
    if response.status_code != 200:  # 5xx, or the service user may not validate tokens (403): not an answer
        log.warning("Keystone at %s answered %s to a token validation", settings.KEYSTONE_URL, response.status_code)
        raise KeystoneUnavailable()
    body = response.json().get("token") or {}
    project = body.get("project") or {}
    if project.get("name") not in settings.KEYSTONE_PROJECTS or not _in_domain(project.get("domain") or {}):
        return None  # unscoped, or scoped elsewhere: not a token for this service
    user = body.get("user") or {}
    name = f"{USERNAME_PREFIX}{user.get('name')}@{(user.get('domain') or {}).get('name', '')}"
    if len(name) > 150:  # Django's username limit; Keystone's names may be longer
        name = f"{USERNAME_PREFIX}{user.get('id')}"
    roles = [r.get("name", "") for r in body.get("roles") or []]
    holder = Holder(name, project["name"], mapped_role(project["name"], roles, parse_role_map(settings.KEYSTONE_ROLE_MAP)))
    return holder, _seconds_left(body.get("expires_at"))


def _seconds_left(expires_at):
    try:
        return (datetime.fromisoformat(expires_at.replace("Z", "+00:00")) - datetime.now().astimezone()).total_seconds()
    except (AttributeError, ValueError):
        return 0


def holder_of(token):
    """The Holder of a Keystone token (None: refused), from this process's cache or from Keystone."""
    key = hash_token(token)
    now = time.monotonic()
    with _lock:
        cached = _answers.get(key)
    if cached is not None and now < cached[2]:
        return cached[1]
    holder, seconds_left = _ask(token) or (None, settings.KEYSTONE_CACHE_SECONDS)
    bound = min(settings.KEYSTONE_CACHE_SECONDS, seconds_left)  # never past the token's own expiry
    if holder is not None:
        _sync_user(holder)
    with _lock:
        if len(_answers) >= _MAX_ENTRIES:
            for stale in [k for k, v in _answers.items() if v[2] <= now][: _MAX_ENTRIES // 2] or list(_answers)[:1]:
                _answers.pop(stale, None)
        _answers[key] = (token, holder, now + max(bound, 0))
    return holder


def _sync_user(holder):
    """Create the holder's Django user on first use; give it the mapped role (writes only on a change)."""
    User = get_user_model()
    user = User.objects.filter(username=holder.username).first()
    if user is None:
        try:
            with transaction.atomic():
                user = User(username=holder.username)
                user.set_unusable_password()
                user.save()
        except IntegrityError:  # created meanwhile by another request
            user = User.objects.get(username=holder.username)
    if role_of(user) == holder.role or not user.is_active:
        return user
    with transaction.atomic():
        if user.is_superuser != (holder.role == SUPERUSER):
            user.is_superuser = holder.role == SUPERUSER
            user.save(update_fields=["is_superuser"])
        if holder.role in ROLES:
            set_role(user, holder.role)
        else:
            user.groups.remove(*user.groups.filter(name__in=ROLES))
    return user


def user_for_token(token):
    """The Django user of a valid Keystone token scoped to an accepted project, or None; KeystoneUnavailable."""
    holder = holder_of(token)
    if holder is None:
        return None
    return get_user_model().objects.filter(username=holder.username).first()


def live_hashes(hashes):
    """Of these hashes, those of Keystone tokens this process has seen that Keystone still honours (through the
    cache). A Keystone that cannot answer honours none: the socket closes rather than stay open unvalidated."""
    with _lock:
        known = {h: _answers[h][0] for h in hashes if h in _answers}
    live = set()
    for key, token in known.items():
        try:
            if holder_of(token) is not None:
                live.add(key)
        except KeystoneUnavailable:
            pass
    return live
