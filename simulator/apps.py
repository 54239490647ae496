from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    name = "simulator"
    verbose_name = "Development fakes: the subcloud simulator, the demo fleet, process launchers"
