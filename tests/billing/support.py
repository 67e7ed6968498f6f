from billing.models import Invoice
from billing.runs import bill_period
from tests.billing.conftest import MONTH


def run(world, month=MONTH):
    return bill_period(platform=world.a.platform, month=month, by=world.a.accountant)


def draft_of(side) -> Invoice:
    return Invoice.objects.get(organization=side.org, platform=side.platform, kind="invoice")


def lines_of(invoice) -> list[tuple]:
    return [
        (line.kind, str(line.quantity), str(line.unit_price), str(line.amount))
        for line in invoice.lines.order_by("service_date", "pk")
    ]
