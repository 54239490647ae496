from django.contrib import admin, messages

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Adding a token generates its secret and shows it once, in the page's message; only its hash is kept."""

    list_display = ("prefix", "user", "description", "created_at", "expires_at")
    fields = ("user", "description", "expires_at", "prefix", "created_at")
    readonly_fields = ("prefix", "created_at")
    search_fields = ("user__username", "description")

    def save_model(self, request, obj, form, change):
        plain = None if change else obj.new_key()
        super().save_model(request, obj, form, change)
        if plain is not None:
            messages.warning(request, f"API token for {obj.user}: {plain} (copy it now: it is not shown again)")
