"""API tokens. Only a SHA-256 of each token is stored; the token is shown once."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

TOKEN_PREFIX = "dcp_"


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self):
        """Tokens that still authenticate: not expired (revoked ones are deleted)."""
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))


class ApiTokenManager(models.Manager.from_queryset(ApiTokenQuerySet)):
    def issue(self, user, description="", expires_at=None):
        """Create a token for user; returns (token object, the plain token)."""
        obj = self.model(user=user, description=description, expires_at=expires_at)
        plain = obj.new_key()
        obj.save()
        return obj, plain


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16)
    description = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # Null: never expires. Expired tokens are refused by user_for_token (REST and websocket alike).
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenManager()

    def __str__(self):
        return f"{self.prefix}… ({self.user})"

    def new_key(self):
        """Give this (unsaved) row a fresh secret; returns the plain token, which is stored nowhere."""
        plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.key_hash, self.prefix = hash_token(plain), plain[:10]
        return plain

    @property
    def expired(self):
        return self.expires_at is not None and self.expires_at <= timezone.now()
