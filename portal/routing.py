"""The websocket side of the ASGI application: origin check, then session or token, then the router.

Built by a function so that tests drive exactly what daphne serves.
"""

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.routing import URLRouter
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.urls import path
from django.utils.datastructures import CaseInsensitiveMapping

from accounts.authentication import token_from_headers, user_for_token
from accounts.keystone import KeystoneUnavailable
from accounts.models import hash_token

from . import origin
from .consumers import StatusConsumer


class BrowserOriginValidator(OriginValidator):
    """A browser's Origin must be an allowed host (no cross-site websocket hijacking with the
    session cookie); programmatic clients send no Origin and authenticate with a token."""

    async def __call__(self, scope, receive, send):
        self.scope_now = scope
        return await super().__call__(scope, receive, send)

    def valid_origin(self, parsed_origin):
        # The whole origin (scheme, host, port) against what is served: portal/origin.py.
        return parsed_origin is None or origin.served(parsed_origin.geturl(), self.scope_now)


class TokenAuthMiddleware(BaseMiddleware):
    """X-Auth-Token (or Authorization: Token) on the handshake wins over the session; a bad token is no user.

    The token's hash stays in the scope (`auth_token_hash`): the socket is re-checked against it while open.
    """

    async def __call__(self, scope, receive, send):
        headers = CaseInsensitiveMapping({k.decode("latin1"): v.decode("latin1") for k, v in scope.get("headers", [])})
        token = token_from_headers(headers)
        if token is not None:
            try:
                user = await database_sync_to_async(user_for_token)(token)
            except KeystoneUnavailable:  # an external Keystone's token that cannot be checked now: no user
                user = None
            scope = dict(scope, user=user or AnonymousUser(), auth_token_hash=hash_token(token))
        return await super().__call__(scope, receive, send)


def websocket_application():
    routes = URLRouter([path("ws/status/", StatusConsumer.as_asgi())])
    return BrowserOriginValidator(AuthMiddlewareStack(TokenAuthMiddleware(routes)), settings.ALLOWED_HOSTS)
