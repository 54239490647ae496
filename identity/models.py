"""Tokens issued by the built-in identity endpoint (POST /identity/v3/auth/tokens).

Kept apart from accounts.ApiToken: these carry a Keystone scope (project) and always
expire. Only a SHA-256 of each token is stored.
"""

from django.conf import settings
from django.db import models


class IdentityToken(models.Model):
    key_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identity_tokens")
    # The project name the token is scoped to; "" for an unscoped token (good only to get a scoped one).
    project = models.CharField(max_length=64, blank=True, default="")
    methods = models.CharField(max_length=64)
    audit_id = models.CharField(max_length=32)
    issued_at = models.DateTimeField()
    # Pruned when new tokens are issued (tokens.issue).
    expires_at = models.DateTimeField(db_index=True)
