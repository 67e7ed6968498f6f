"""The Stripe boundary: the client built from settings, and money in minor units.

Everything inside fabpool is `Decimal` in the currency's major unit; Stripe speaks
integers in minor units (cents). Conversions happen here and nowhere else."""

from decimal import Decimal

import stripe
from django.conf import settings
from django.utils.translation import gettext as _

from core.errors import Conflict

# ISO 4217 currencies without minor units that Stripe takes as such.
ZERO_DECIMAL = {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX"}
ZERO_DECIMAL |= {"VND", "VUV", "XAF", "XOF", "XPF"}


class PaymentsNotConfigured(Conflict):
    code = "payments_not_configured"


def configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def browser_payments_enabled() -> bool:
    """Card payments in the browser need both keys: the secret one (fabpool asks
    Stripe for a PaymentIntent) and the publishable one (Stripe.js confirms it)."""
    return configured() and bool(settings.STRIPE_PUBLISHABLE_KEY)


def client() -> stripe.StripeClient:
    if not configured():
        raise PaymentsNotConfigured(
            _("Card payments are not set up on this fabpool; pay by bank transfer.")
        )
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else {}
    # Few retries: a payment request waits on this answer inside a transaction.
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY, base_addresses=base, max_network_retries=1
    )


def _exponent(currency: str) -> int:
    return 0 if currency.upper() in ZERO_DECIMAL else 2


def to_minor(amount: Decimal, currency: str) -> int:
    scaled = Decimal(amount).scaleb(_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more decimals than the currency")
    return int(scaled)


def from_minor(amount: int, currency: str) -> Decimal:
    return (
        Decimal(int(amount))
        .scaleb(-_exponent(currency))
        .quantize(Decimal(1).scaleb(-_exponent(currency)))
    )
