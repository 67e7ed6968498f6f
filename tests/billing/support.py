from importlib import import_module

from django.core.management import call_command
from django.db import connection

from billing.models import Invoice
from billing.runs import bill_period
from tests.billing.conftest import MONTH


def flush_despite_the_guard() -> None:
    """Empty a database where invoices were issued and committed (transactional and
    live-server tests). On SQLite Django's flush DELETEs, which the guard of issued
    invoices refuses: flush with its triggers off, then put them back. (PostgreSQL
    TRUNCATEs, which row triggers do not see.)"""
    if connection.vendor != "sqlite":
        return
    guard = import_module("billing.migrations.0002_immutable_issued_invoices")
    with connection.cursor() as cursor:
        for name in guard.SQLITE_TRIGGERS:
            cursor.execute(f"DROP TRIGGER {name}")
    call_command("flush", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        for script in guard.SQLITE:
            cursor.execute(script)


def run(world, month=MONTH):
    return bill_period(platform=world.a.platform, month=month, by=world.a.accountant)


def draft_of(side) -> Invoice:
    return Invoice.objects.get(organization=side.org, platform=side.platform, kind="invoice")


def lines_of(invoice) -> list[tuple]:
    return [
        (line.kind, str(line.quantity), str(line.unit_price), str(line.amount))
        for line in invoice.lines.order_by("service_date", "pk")
    ]


def bill_side(side, prefix: str) -> None:
    """Billing on one side of `world`: settings, a tariff, a consumable, a funding
    programme on a label of the platform; October billed and issued (side.issued),
    November billed as a draft (side.draft); side.booking is November's booking."""
    from datetime import date
    from decimal import Decimal

    from billing.models import ConsumableUse, FundingProgramme, Tariff
    from billing.services import issue_invoice
    from tests import factories
    from tests.billing.conftest import booking, paris, settings_for

    side.billing_settings = settings_for(side.platform, prefix)
    side.tariff = Tariff.objects.create(
        platform=side.platform,
        machine_type=side.machine.machine_type,
        valid_from=date(2026, 1, 1),
        hourly_rate=Decimal("40.00"),
    )
    side.filament = factories_consumable(side)
    label = factories.LabelFactory()
    side.platform.labels.add(label)
    side.programme = FundingProgramme.objects.create(
        label=label,
        name=f"Programme {prefix}",
        share=Decimal("0.5"),
        budget=Decimal("1000"),
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 12, 31),
    )
    booking(side, paris(5, 9), paris(5, 11), checked_in_at=paris(5, 9))
    side.booking = booking(
        side, paris(5, 9, month=11), paris(5, 11, month=11), checked_in_at=paris(5, 9, month=11)
    )
    side.use = ConsumableUse.objects.create(
        booking=side.booking,
        consumable=side.filament,
        quantity=Decimal(50),
        recorded_by=side.operator,
    )
    bill_period(platform=side.platform, month=date(2026, 10, 1), by=side.accountant)
    side.issued = issue_invoice(
        invoice=Invoice.objects.get(platform=side.platform, period_start=date(2026, 10, 1)),
        by=side.accountant,
    )
    side.run = bill_period(platform=side.platform, month=date(2026, 11, 1), by=side.accountant)
    side.draft = Invoice.objects.get(platform=side.platform, period_start=date(2026, 11, 1))


def factories_consumable(side):
    from decimal import Decimal

    from billing.models import Consumable

    return Consumable.objects.create(
        platform=side.platform, name="PLA filament", unit="g", unit_price=Decimal("0.045")
    )
