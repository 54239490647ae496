"""Is what a long-lived connection authenticated with still good? One batched answer for many of them.

A websocket is authorized once, at its handshake; its process then re-checks the credentials of
all its open sockets together (portal/feed.py), in two queries whatever their number, so that a
deleted token, a deactivated user, a removed role or an ended session closes the socket.
"""

from dataclasses import dataclass

from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.sessions.models import Session
from django.db.models import Q, Value
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from .authentication import live_hashes_of_other_kinds
from .models import ApiToken
from .roles import ROLES, role_from_groups


@dataclass(frozen=True)
class Credential:
    """What a connection authenticated with: an API token (its hash) or a session (key and auth hash)."""

    user_id: int
    token_hash: str | None = None
    session_key: str | None = None
    session_hash: str | None = None


def credential_for(user, token_hash=None, session=None):
    """The credential `user` was authenticated with: a token (its hash) if one was given, else the session
    (sync: reads the session)."""
    if token_hash is not None:
        return Credential(user.pk, token_hash=token_hash)
    return Credential(user.pk, session_key=session.session_key, session_hash=session.get(HASH_SESSION_KEY))


def still_valid(credentials):
    """The subset of `credentials` still good: token present and unexpired, or session present, unexpired and its
    auth hash still the user's (a password change ends it); user active and still holding a role."""
    credentials = set(credentials)
    if not credentials:
        return set()
    hashes = [c.token_hash for c in credentials if c.token_hash]
    keys = [c.session_key for c in credentials if c.session_key]
    parts = []
    if hashes:
        tokens = ApiToken.objects.usable().filter(key_hash__in=hashes)
        parts.append(tokens.annotate(kind=Value("t")).values_list("key_hash", "kind"))
    if keys:
        parts.append(
            Session.objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
            .annotate(kind=Value("s"))
            .values_list("session_key", "kind")
        )
    present = set(parts[0].union(*parts[1:], all=True)) if parts else set()
    present |= {(h, "t") for h in live_hashes_of_other_kinds(set(hashes) - {h for h, _ in present})}
    users = {
        u.pk: u
        for u in get_user_model()
        .objects.filter(pk__in={c.user_id for c in credentials})
        .only("id", "password", "is_active", "is_superuser")
        .annotate(roles=ArrayAgg("groups__name", filter=Q(groups__name__in=ROLES)))
    }
    return {c for c in credentials if _holds(c, users.get(c.user_id), present)}


def _holds(credential, user, present):
    if user is None or not user.is_active or (not user.is_superuser and role_from_groups(user.roles) is None):
        return False
    if credential.token_hash:
        return (credential.token_hash, "t") in present
    if (credential.session_key, "s") not in present or not credential.session_hash:
        return False
    # As django.contrib.auth.get_user: the session's hash against the user's, with SECRET_KEY_FALLBACKS.
    return constant_time_compare(credential.session_hash, user.get_session_auth_hash()) or any(
        constant_time_compare(credential.session_hash, h) for h in user.get_session_auth_fallback_hash()
    )
