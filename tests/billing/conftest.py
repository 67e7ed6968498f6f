"""A platform ready to bill: world.a's platform with billing settings, a tariff
for its printer's type and a consumable; bookings are made in October 2026 (past)."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.models import BillingSettings, Consumable, Tariff
from booking.models import Booking

PARIS = ZoneInfo("Europe/Paris")
MONTH = date(2026, 10, 1)


def paris(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


def settings_for(platform, prefix: str) -> BillingSettings:
    return BillingSettings.objects.create(
        platform=platform,
        legal_name=f"{platform.name} SAS",
        address_line1="12 rue de Gerland",
        postal_code="69007",
        city="Lyon",
        siret="73282932000074",
        vat_number="FR44732829320",
        invoice_prefix=prefix,
        billable_time=BillingSettings.BillableTime.BOOKED,
    )


def booking(side, start, end, **fields) -> Booking:
    """A booking row as stored, without the booking rules (it is in the past)."""
    fields.setdefault("status", Booking.Status.COMPLETED)
    return Booking.objects.create(
        machine=fields.pop("machine", side.machine),
        organization=fields.pop("organization", side.org),
        booked_by=side.org_member,
        start=start,
        end=end,
        blocked_until=end,
        **fields,
    )


@pytest.fixture
def billing(world):
    """world.a ready to bill: settings (prefix FAB, booked time billed unless a
    test says otherwise), a 47.50 €/h tariff by started quarter-hour for its
    printer's type, a setup fee of 12 €, and PLA filament at 0.045 €/g. World B
    gets settings with prefix OTH."""
    a = world.a
    a.settings = settings_for(a.platform, "FAB")
    settings_for(world.b.platform, "OTH")
    a.tariff = Tariff.objects.create(
        platform=a.platform,
        machine_type=a.machine.machine_type,
        valid_from=date(2026, 1, 1),
        hourly_rate=Decimal("47.50"),
        increment_minutes=15,
        minimum_minutes=30,
        setup_fee=Decimal("12.00"),
        late_cancellation_share=Decimal("0.5"),
        no_show_share=Decimal("1"),
    )
    a.filament = Consumable.objects.create(
        platform=a.platform, name="PLA filament", unit="g", unit_price=Decimal("0.045")
    )
    return world
