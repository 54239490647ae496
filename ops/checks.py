"""System checks of dcportal's own configuration (`manage.py check`; every management command runs them).

IDs are stable (README.md lists them): dcportal.E0xx stops every management command,
including the state workers and the OCF agents' level-10 monitors, so a node with a
bad configuration fails loudly instead of running half-configured.
"""

from django.conf import settings
from django.core.checks import Error, Warning, register

from state.stats import MISSED_HEARTBEATS


@register("dcportal")
def secret_key(app_configs, **kwargs):
    if settings.DEBUG or settings.SECRET_KEY not in ("", settings.INSECURE_SECRET_KEY):
        return []
    return [Error(
        "DCPORTAL_SECRET_KEY is not set while DCPORTAL_DEBUG is off: sessions and CSRF tokens would be signed "
        "with a key everyone knows.",
        hint="Put DCPORTAL_SECRET_KEY=<50+ random characters> in the env_file of the OCF agents "
             "(/etc/dcportal/dcportal.env, mode 600), the same on every node (docs/ha.md).",
        id="dcportal.E001",
    )]


@register("dcportal")
def timing(app_configs, **kwargs):
    errors = []
    low, high = settings.OUTBOX_BACKOFF
    if low > high:
        errors.append(Error(f"DCPORTAL_OUTBOX_BACKOFF_MIN ({low}) is above DCPORTAL_OUTBOX_BACKOFF_MAX ({high}).",
                            id="dcportal.E002"))
    if settings.AUDIT_LOCK_SECONDS <= settings.AUDIT_TIMEOUT:
        errors.append(Error(
            f"DCPORTAL_AUDIT_LOCK_SECONDS ({settings.AUDIT_LOCK_SECONDS}) is not above DCPORTAL_AUDIT_TIMEOUT "
            f"({settings.AUDIT_TIMEOUT}): the cycle lease is renewed between probes, so it could expire while a "
            "probe waits and let two audit cycles overlap.",
            hint="Keep the lock at several probe timeouts (the default is max(60, 3 x DCPORTAL_AUDIT_INTERVAL)).",
            id="dcportal.E003",
        ))
    window = MISSED_HEARTBEATS * settings.STATE_HEARTBEAT_SECONDS
    if window < settings.AUDIT_HEARTBEAT_SECONDS:
        errors.append(Warning(
            f"DCPORTAL_AUDIT_HEARTBEAT_SECONDS ({settings.AUDIT_HEARTBEAT_SECONDS}) is longer than the window in which "
            f"a heartbeat counts as alive ({MISSED_HEARTBEATS} x DCPORTAL_STATE_HEARTBEAT_SECONDS = {window}): the "
            "audit worker and beat would always be listed as stale.",
            id="dcportal.W001",
        ))
    return errors


@register("dcportal", deploy=True)
def https(app_configs, **kwargs):
    if settings.PROXY_SSL_HEADER and not settings.HTTPS:
        return [Warning(
            "DCPORTAL_PROXY_SSL_HEADER is set but DCPORTAL_HTTPS is off: cookies are not marked secure and no HSTS "
            "header is sent although a TLS proxy is in front.",
            hint="Set DCPORTAL_HTTPS=true.",
            id="dcportal.W002",
        )]
    return []
