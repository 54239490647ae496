from django.apps import AppConfig


class SubcloudsConfig(AppConfig):
    name = "subclouds"
    default_auto_field = "django.db.models.BigAutoField"
