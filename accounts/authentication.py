"""Token authentication: `X-Auth-Token: <t>` (dcmanager clients) or `Authorization: Token <t>`."""

from rest_framework import authentication, exceptions

from .models import ApiToken, hash_token


def token_from_headers(headers):
    """The token carried by a request's headers (a dict-like of HTTP headers), or None."""
    token = headers.get("X-Auth-Token")
    if token:
        return token.strip()
    auth = headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "token" and value.strip():
        return value.strip()
    return None


def token_row(token):
    """The ApiToken (with its user) for a plain token if its user is active, or None."""
    row = ApiToken.objects.select_related("user").filter(key_hash=hash_token(token)).first()
    if row is None or not row.user.is_active:
        return None
    return row


def user_for_token(token):
    """The active user owning token, or None."""
    row = token_row(token)
    return row.user if row else None


class TokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        token = token_from_headers(request.headers)
        if token is None:
            return None
        row = token_row(token)
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid or expired token.")
        # request.auth is the row: the change log names the token by id and prefix (accounts/identity.py).
        return row.user, row

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) when credentials are missing or bad.
        return "Token"
