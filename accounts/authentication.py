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


def user_for_token(token):
    """The active user owning token, or None (also for an expired token): the one lookup of REST and websocket."""
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
