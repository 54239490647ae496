"""Keystone v3 tokens for dcportal's users: issue, look up, revoke, and the token body.

The body is what keystoneauth1 (and so the dcmanager shell) reads: expires_at,
user.id, project, roles and a catalog whose dcmanager endpoint is this product.
"""

import secrets
import uuid
from datetime import UTC, timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import hash_token
from accounts.roles import SUPERUSER, role_of

from .models import IdentityToken

TOKEN_PREFIX = "dck_"
DOMAIN = {"id": "default", "name": "Default"}
# Stable ids for the names Keystone gives ids to (projects, roles, services, endpoints).
_NAMESPACE = uuid.UUID("0b5b7c4e-3f0c-4c4e-9a57-6f1d2a2b9d10")
# dcportal's roles as Keystone role names: a superuser is StarlingX's admin.
KEYSTONE_ROLE = {SUPERUSER: "admin"}
INTERFACES = ("public", "internal", "admin")


def stable_id(kind, name):
    return uuid.uuid5(_NAMESPACE, f"{kind}:{name}").hex


def project_named(name):
    return name if name in settings.IDENTITY_PROJECTS else None


def project_with_id(project_id):
    return next((p for p in settings.IDENTITY_PROJECTS if stable_id("project", p) == project_id), None)


def issue(user, project, methods, expires_at=None):
    """A new token for user scoped to project ("" = unscoped); returns (row, plain token).

    expires_at caps the lifetime (a token got with the token method never outlives the one it came from).
    """
    now = timezone.now()
    lifetime = now + timedelta(seconds=settings.IDENTITY_TOKEN_SECONDS)
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    IdentityToken.objects.filter(expires_at__lt=now).delete()
    row = IdentityToken.objects.create(
        key_hash=hash_token(plain), user=user, project=project, methods=",".join(methods),
        audit_id=secrets.token_urlsafe(16)[:22], issued_at=now, expires_at=min(lifetime, expires_at or lifetime),
    )
    return row, plain


def valid_token(plain):
    """The unexpired token row of an active user, or None (revoked tokens are deleted rows)."""
    if not plain or not plain.startswith(TOKEN_PREFIX):
        return None
    row = (IdentityToken.objects.select_related("user")
           .filter(key_hash=hash_token(plain), expires_at__gt=timezone.now()).first())
    if row is None or not row.user.is_active:
        return None
    return row


def user_for_scoped_token(plain):
    """The user of a valid project-scoped token: what the REST API accepts (unscoped tokens only get scoped ones)."""
    row = valid_token(plain)
    return row.user if row is not None and row.project else None


def live_hashes(hashes):
    """Of these token hashes, those of unexpired, project-scoped tokens (the websocket re-check's batch)."""
    return set(IdentityToken.objects.filter(key_hash__in=list(hashes), expires_at__gt=timezone.now())
               .exclude(project="").values_list("key_hash", flat=True))


def revoke(plain):
    """Delete the token; False when there was no such valid token."""
    row = valid_token(plain)
    return row is not None and IdentityToken.objects.filter(pk=row.pk).delete()[0] > 0


def keystone_roles(user):
    role = role_of(user)
    if role is None:
        return []
    name = KEYSTONE_ROLE.get(role, role)
    return [{"id": stable_id("role", name), "name": name}]


def _when(moment):
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def catalog():
    """The service catalog: dcmanager (this product's /v1.0) and identity, each on every interface."""
    public = settings.PUBLIC_URL
    region = settings.REGION_NAME
    services = (("dcmanager", "dcmanager", f"{public}/v1.0"), ("identity", "keystone", f"{public}/identity"))
    return [
        {
            "id": stable_id("service", kind),
            "type": kind,
            "name": name,
            "endpoints": [
                {"id": stable_id("endpoint", f"{kind}:{interface}"), "interface": interface,
                 "region": region, "region_id": region, "url": url}
                for interface in INTERFACES
            ],
        }
        for kind, name, url in services
    ]


def body(row, with_catalog=True):
    """The {"token": ...} document Keystone returns for a token."""
    token = {
        "methods": row.methods.split(","),
        "user": {"id": str(row.user.pk), "name": row.user.get_username(), "domain": DOMAIN, "password_expires_at": None},
        "audit_ids": [row.audit_id],
        "issued_at": _when(row.issued_at),
        "expires_at": _when(row.expires_at),
    }
    if row.project:
        token["project"] = {"id": stable_id("project", row.project), "name": row.project, "domain": DOMAIN}
        token["is_domain"] = False
        token["roles"] = keystone_roles(row.user)
        if with_catalog:
            token["catalog"] = catalog()
    return {"token": token}
