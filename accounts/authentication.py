"""Token authentication: `X-Auth-Token: <t>` (dcmanager clients), `OIDC-Token: <t>` (the stx.12 client's
`--stx-auth-type oidc`) or `Authorization: Token <t>`."""

from rest_framework import authentication, exceptions

from .models import ApiToken, hash_token


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
    """Of these token hashes, those a registered kind of token still honours (one query per kind)."""
    return set().union(*(live(hashes) for live in _LIVE_HASHES)) if hashes else set()


def user_for_token(token):
    """The active user owning token, or None (also for an expired token): the one lookup of REST and websocket."""
    for prefix, lookup in _TOKEN_KINDS.items():
        if token.startswith(prefix):
            user = lookup(token)
            return user if user is not None and user.is_active else None
    row = ApiToken.objects.usable().select_related("user").filter(key_hash=hash_token(token)).first()
    if row is None or not row.user.is_active:
        return None
    return row.user


class TokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        token = token_from_headers(request.headers)
        if token is None:
            return None
        user = user_for_token(token)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid or expired token.")
        return user, token

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) when credentials are missing or bad.
        return "Token"
