from django.contrib import admin

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "description", "created_at")
    readonly_fields = ("prefix", "key_hash", "created_at")
    search_fields = ("user__username", "description")
