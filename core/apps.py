from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "fabpool core"

    def ready(self):
        # Registers the OpenAPI description of our token authentication.
        from core.api import schema  # noqa: F401
