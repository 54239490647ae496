"""Who a request comes from, as the change log records it: user name, credential id (never the secret), address."""

import hashlib

from .authentication import is_keystone_token
from .models import ApiToken


def request_identity(request):
    """(user name, credential, client address) of a Django or DRF request.

    The credential is "token #<id> (<prefix>…)" for an API token (DRF's request.auth is
    the ApiToken row, accounts.authentication), "identity token <8 hex of its SHA-256>" for one of
    /identity/v3 ("keystone token …" for an external Keystone's), or "session <8 hex of its key's SHA-256>".
    """
    user = getattr(request, "user", None)
    name = user.get_username() if user is not None and user.is_authenticated else ""
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiToken):
        via = f"token #{auth.pk} ({auth.prefix}…)"
    elif isinstance(auth, str):  # a token of /identity/v3 or of Keystone: named by a digest, never itself
        kind = "keystone" if is_keystone_token(auth) else "identity"
        via = f"{kind} token {hashlib.sha256(auth.encode()).hexdigest()[:8]}"
    else:
        session = getattr(request, "session", None)
        key = session.session_key if session is not None else None
        via = f"session {hashlib.sha256(key.encode()).hexdigest()[:8]}" if key else ""
    return name, via, request.META.get("REMOTE_ADDR", "") or ""
