"""Token lifetimes and revocation: what issue_token and `manage.py token` do, without the printing."""

import re
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .models import TOKEN_PREFIX, ApiToken

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+)([smhdw]?)")


def parse_duration(text):
    """'90d', '12h', '30m', '2w', '45s' or plain seconds ('3600') -> a positive timedelta; else ValueError."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"invalid duration {text!r}: a positive whole number with an optional unit s, m, h, d or w (e.g. 90d)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2) or "s"])


def expiry_after(text):
    """The expires_at of a token issued now with lifetime `text` (None: never expires)."""
    return None if text is None else timezone.now() + parse_duration(text)


def find(ref):
    """The token with id `ref` (digits) or prefix `ref` (dcp_…); LookupError with a message otherwise."""
    ref = ref.strip()
    if ref.isascii() and ref.isdigit():  # not "³": str.isdigit takes digits int() refuses
        rows = list(ApiToken.objects.filter(pk=int(ref)))
    elif ref.startswith(TOKEN_PREFIX) and len(ref) > len(TOKEN_PREFIX):
        # A whole token works too: only its first 10 characters are stored.
        rows = list(ApiToken.objects.filter(prefix=ref[:10]))
    else:
        raise LookupError(f"{ref!r} is neither a token id nor a token prefix ({TOKEN_PREFIX}…)")
    if not rows:
        raise LookupError(f"no token {ref!r}")
    if len(rows) > 1:
        raise LookupError(f"prefix {ref!r} matches {len(rows)} tokens; revoke by id (manage.py token list)")
    return rows[0]


def revoke(ref=None, username=None):
    """Delete one token (by id or prefix) or every token of a user; returns the revoked rows' ids."""
    with transaction.atomic():
        if username is not None:
            rows = list(ApiToken.objects.select_for_update().filter(user__username=username).order_by("id"))
            if not rows:
                raise LookupError(f"user {username!r} has no tokens")
        else:
            rows = [find(ref)]
        ids = [row.pk for row in rows]
        ApiToken.objects.filter(pk__in=ids).delete()
    return ids
