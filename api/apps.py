from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "REST API (dcmanager v1.0 and the state endpoints) and the admin commands"
