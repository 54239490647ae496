"""API tokens. Only a SHA-256 of each token is stored; the token is shown once."""

import hashlib
import secrets

from django.conf import settings
from django.db import models

TOKEN_PREFIX = "dcp_"


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenManager(models.Manager):
    def issue(self, user, description=""):
        """Create a token for user; returns (token object, the plain token)."""
        plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
        obj = self.create(user=user, key_hash=hash_token(plain), prefix=plain[:10], description=description)
        return obj, plain


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16)
    description = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ApiTokenManager()

    def __str__(self):
        return f"{self.prefix}… ({self.user})"
