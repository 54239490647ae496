from django.apps import AppConfig


class SubcloudsConfig(AppConfig):
    name = "subclouds"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401  (registers the database check of stored names)
