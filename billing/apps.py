from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing import payments  # noqa: F401  (connects refunds to credit notes)
