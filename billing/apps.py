from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing import payments  # noqa: F401  (connects refunds to credit notes)
        from billing.selectors import revenue_by
        from booking.analytics import register_revenue

        # booking never imports billing (DESIGN.md): billing hands it its revenue.
        register_revenue(revenue_by)
