"""Which tariff a machine's price list shows: the one a billing run would apply."""

from datetime import date
from decimal import Decimal

from billing.models import Tariff
from billing.pricing import machine_prices


def test_each_tier_sees_the_tariff_a_billing_run_would_apply(billing, django_assert_num_queries):
    a = billing.a
    member_rate = Tariff.objects.create(
        platform=a.platform,
        machine=a.machine,
        tier="member",
        valid_from=date(2026, 1, 1),
        hourly_rate=Decimal("30.00"),
    )
    Tariff.objects.create(  # expired: not shown
        platform=a.platform,
        machine=a.machine,
        valid_from=date(2025, 1, 1),
        valid_until=date(2025, 12, 31),
        hourly_rate=Decimal("99.00"),
    )

    with django_assert_num_queries(1):
        prices = machine_prices(
            a.machine, tiers=["standard", "member", "standard"], day=date(2026, 11, 22)
        )

    assert [(p.tier, p.tariff) for p in prices] == [
        ("standard", a.tariff),  # the machine type's, every tier
        ("member", member_rate),  # the machine's own, for members
    ]
    assert str(prices[1].tier_label) == "Member"


def test_a_platform_without_a_tariff_on_that_day_shows_none(billing):
    before = machine_prices(billing.a.machine, tiers=["standard"], day=date(2025, 6, 1))
    assert [p.tariff for p in before] == [None]
