"""Token authentication: `X-Auth-Token: <t>` (dcmanager clients), `OIDC-Token: <t>` (the stx.12 client's
`--stx-auth-type oidc`) or `Authorization: Token <t>`."""

from rest_framework import authentication, exceptions

from . import keystone
from .models import TOKEN_PREFIX, ApiToken, hash_token


def token_from_headers(headers):
    """The token carried by a request's headers (a dict-like of HTTP headers), or None."""
    for header in ("X-Auth-Token", "OIDC-Token"):
        token = headers.get(header)
        if token and token.strip():
            return token.strip()
    auth = headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "token" and value.strip():
        return value.strip()
    return None


# Other kinds of token, told apart by their prefix: {prefix: token -> user or None}. The identity app
# registers its Keystone-style tokens here (an upper layer plugs in; accounts imports nothing upward),
# with a batch check for the websocket re-check (accounts/credentials.py): {hashes} -> those still live.
_TOKEN_KINDS = {}
_LIVE_HASHES = []


def register_token_kind(prefix, lookup, live_hashes):
    _TOKEN_KINDS[prefix] = lookup
    _LIVE_HASHES.append(live_hashes)


def live_hashes_of_other_kinds(hashes):
    """Of these token hashes, those a registered kind of token (or an external Keystone) still honours."""
    kinds = [*_LIVE_HASHES, keystone.live_hashes] if keystone.enabled() else _LIVE_HASHES
    return set().union(*(live(hashes) for live in kinds)) if hashes else set()


def _other_kind(token):
    """The lookup of a token that is not an API token: a registered kind by its prefix, else (when one is
    configured) the external Keystone. dcportal's own tokens, by their prefixes, never go to Keystone."""
    lookup = next((lookup for prefix, lookup in _TOKEN_KINDS.items() if token.startswith(prefix)), None)
    if lookup is None and keystone.enabled() and not token.startswith(TOKEN_PREFIX):
        return keystone.user_for_token
    return lookup


def is_keystone_token(token):
    return _other_kind(token) is keystone.user_for_token


def user_for_own_token(token):
    """As user_for_token, for dcportal's own tokens only (never asks Keystone): what /identity/v3 exchanges."""
    return None if is_keystone_token(token) else user_for_token(token)


def token_row(token):
    """The usable (unexpired) ApiToken, with its user, for a plain token if its user is active, or None."""
    row = ApiToken.objects.usable().select_related("user").filter(key_hash=hash_token(token)).first()
    if row is None or not row.user.is_active:
        return None
    return row


def user_for_token(token):
    """The active user owning token (of any kind), or None (also when expired): the one lookup of REST and websocket.

    Raises keystone.KeystoneUnavailable for an external Keystone's token when Keystone cannot answer."""
    lookup = _other_kind(token)
    if lookup is not None:
        user = lookup(token)
        return user if user is not None and user.is_active else None
    row = token_row(token)
    return row.user if row else None


class TokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        token = token_from_headers(request.headers)
        if token is None:
            return None
        # request.auth is the ApiToken row, so the change log names the token by id and prefix
        # (accounts/caller.py); for another kind of token it is the token itself.
        if _other_kind(token):
            user, credential = user_for_token(token), token
        else:
            credential = token_row(token)
            user = credential.user if credential else None
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid or expired token.")
        return user, credential

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) when credentials are missing or bad.
        return "Token"
