from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations: versions, health, OCF agents, system checks"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
