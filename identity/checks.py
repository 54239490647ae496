"""Bad identity settings are reported by `manage.py check` (and refuse to start daphne)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks


@checks.register()
def identity_settings(app_configs, **kwargs):
    errors = []
    url = urlsplit(settings.PUBLIC_URL)
    if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment:
        errors.append(checks.Error(f"DCPORTAL_PUBLIC_URL must be an http(s) URL without query, got {settings.PUBLIC_URL!r}.",
                                   id="identity.E001"))
    if settings.IDENTITY_TOKEN_SECONDS <= 0:
        errors.append(checks.Error("DCPORTAL_IDENTITY_TOKEN_SECONDS must be positive.", id="identity.E002"))
    if not settings.IDENTITY_PROJECTS or any(not p.strip() for p in settings.IDENTITY_PROJECTS):
        errors.append(checks.Error("DCPORTAL_IDENTITY_PROJECTS must list at least one non-empty project name.",
                                   id="identity.E003"))
    return errors
