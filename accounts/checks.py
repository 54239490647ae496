"""Bad external-Keystone settings are reported by `manage.py check` (and refuse to start daphne)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

from .keystone import parse_role_map


@checks.register()
def keystone_settings(app_configs, **kwargs):
    errors = []
    try:
        parse_role_map(settings.KEYSTONE_ROLE_MAP)
    except ValueError as exc:
        errors.append(checks.Error(f"DCPORTAL_KEYSTONE_ROLE_MAP: {exc}.", id="accounts.E001"))
    if not settings.KEYSTONE_URL:
        return errors
    url = urlsplit(settings.KEYSTONE_URL)
    if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment:
        errors.append(checks.Error(f"DCPORTAL_KEYSTONE_URL must be an http(s) URL without query, got "
                                   f"{settings.KEYSTONE_URL!r}.", id="accounts.E002"))
    if not (settings.KEYSTONE_USERNAME and settings.KEYSTONE_PASSWORD and settings.KEYSTONE_PROJECT):
        errors.append(checks.Error("DCPORTAL_KEYSTONE_URL is set: DCPORTAL_KEYSTONE_USERNAME, DCPORTAL_KEYSTONE_PASSWORD "
                                   "and DCPORTAL_KEYSTONE_PROJECT (the service credentials) must be too.",
                                   id="accounts.E003"))
    if not settings.KEYSTONE_PROJECTS:
        errors.append(checks.Error("DCPORTAL_KEYSTONE_PROJECTS must list at least one project name.", id="accounts.E004"))
    return errors
