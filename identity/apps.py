from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Built-in Keystone v3 identity endpoint (/identity/v3) for the dcmanager shell"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts.authentication import register_token_kind

        from . import checks  # noqa: F401 - registers the settings checks
        from .tokens import TOKEN_PREFIX, live_hashes, user_for_scoped_token

        # The REST API (and the websocket) accept this endpoint's scoped tokens like API tokens.
        register_token_kind(TOKEN_PREFIX, user_for_scoped_token, live_hashes)
