"""How the OpenAPI schema describes token authentication (loaded by AccountsConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.TokenAuthentication"
    name = "X-Auth-Token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Auth-Token",
            "description": ("An API token (manage.py issue_token) or a token of POST /identity/v3/auth/tokens; "
                            "`OIDC-Token: <token>` and `Authorization: Token <token>` work too."),
        }
