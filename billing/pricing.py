"""Prices of machine time: which tariff applies, and what a booking costs.
Pure functions over rows already loaded, so a billing run prices any number
of bookings without a query each."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from billing.models import Tariff, money
from core.models import Organization
from equipment.models import Platform, PlatformMembership

HOUR = Decimal(60)
FOUR_PLACES = Decimal("0.0001")


def elapsed_minutes(start: datetime, end: datetime) -> int:
    """Whole minutes, a started minute counting (elapsed time: DST-proof in UTC)."""
    seconds = max(0, int((end - start).total_seconds()))
    return -(-seconds // 60)


def billed_minutes(minutes: int, tariff: Tariff) -> int:
    """By started increment, and at least the tariff's minimum."""
    increment = tariff.increment_minutes
    return max(-(-minutes // increment) * increment, tariff.minimum_minutes)


def hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / HOUR).quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Priced:
    minutes: int
    quantity: Decimal  # hours
    unit_price: Decimal
    amount: Decimal


def price_time(minutes: int, tariff: Tariff) -> Priced:
    billed = billed_minutes(minutes, tariff)
    quantity = hours(billed)
    return Priced(billed, quantity, tariff.hourly_rate, money(quantity * tariff.hourly_rate))


class TariffBook:
    """A platform's tariffs, answering "which one applies to this machine, for
    this tier, on this day": machine before type before platform-wide, a tier
    before every tier."""

    def __init__(self, tariffs):
        self._by_scope: dict[tuple, list[Tariff]] = {}
        for tariff in sorted(tariffs, key=lambda t: (t.valid_from, t.pk)):
            key = (tariff.machine_id, tariff.machine_type_id, tariff.tier)
            self._by_scope.setdefault(key, []).append(tariff)
        self._cache: dict[tuple, Tariff | None] = {}

    def find(self, *, machine_id: int, machine_type_id: int, tier: str, day: date):
        key = (machine_id, machine_type_id, tier, day)
        if key not in self._cache:
            self._cache[key] = self._find(*key)
        return self._cache[key]

    def _find(self, machine_id, machine_type_id, tier, day):
        for scope in (
            (machine_id, None, tier),
            (machine_id, None, ""),
            (None, machine_type_id, tier),
            (None, machine_type_id, ""),
            (None, None, tier),
            (None, None, ""),
        ):
            for tariff in self._by_scope.get(scope, ()):
                if tariff.valid_from <= day and (
                    tariff.valid_until is None or day <= tariff.valid_until
                ):
                    return tariff
        return None


@dataclass(frozen=True)
class PriceList:
    """What a machine costs a price tier on a day: the tariff that applies, if any."""

    tier: str
    tier_label: str
    tariff: Tariff | None


def machine_prices(machine, *, tiers: list[str], day: date) -> list[PriceList]:
    """The tariff that applies to `machine` on `day` for each of `tiers` (the
    PlatformMembership tiers of its platform), in the order given, each once,
    as a billing run would find it. One query."""
    valid = Tariff.objects.filter(platform_id=machine.platform_id, valid_from__lte=day).exclude(
        valid_until__lt=day
    )
    book = TariffBook(valid)
    labels = dict(PlatformMembership.Tier.choices)
    return [
        PriceList(
            tier,
            labels.get(tier, tier),
            book.find(
                machine_id=machine.pk, machine_type_id=machine.machine_type_id, tier=tier, day=day
            ),
        )
        for tier in dict.fromkeys(tiers)
    ]


def prices_for(user, machine, day: date) -> list[PriceList]:
    """The price lists `user` is shown for `machine` on `day`: the tiers of their
    organizations on its platform; for its staff, every tier. Tiers without a
    tariff are left out. Two or three queries."""
    if Platform.objects.staffed_by(user).filter(pk=machine.platform_id).exists():
        tiers = list(PlatformMembership.Tier.values)
    else:
        tiers = list(
            PlatformMembership.objects.filter(
                platform=machine.platform_id, organization__in=Organization.objects.visible_to(user)
            )
            .order_by("tier")
            .values_list("tier", flat=True)
        )
    return [price for price in machine_prices(machine, tiers=tiers, day=day) if price.tariff]
