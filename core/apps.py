from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "fabpool core"

    def ready(self):
        # Registers the OpenAPI description of our token authentication.
        from core.api import schema  # noqa: F401
        from core.db import install

        # PostgreSQL date-times read by psycopg's C loader (see core/db.py).
        install()
