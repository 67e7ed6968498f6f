"""For the billing pages: amounts, quantities, rates and months written the reader's
way (`1 234,56 €` and `20 %` in French, `€1,234.56` and `20%` in English), and
whether someone sees an organization's invoices."""

from datetime import date
from decimal import Decimal, InvalidOperation

from django import template
from django.utils.formats import date_format, number_format
from django.utils.translation import get_language
from django.utils.translation import gettext as _

register = template.Library()

SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}
NBSP = "\u00a0"


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _french() -> bool:
    return (get_language() or "").startswith("fr")


@register.filter
def money(value, currency="EUR"):
    amount = _decimal(value)
    if amount is None:
        return ""
    digits = number_format(abs(amount), 2, force_grouping=True)
    sign = "-" if amount < 0 else ""
    symbol = SYMBOLS.get(currency or "EUR", currency)
    if _french():
        return f"{sign}{digits}{NBSP}{symbol}"
    if len(symbol) == 1:
        return f"{sign}{symbol}{digits}"
    return f"{sign}{symbol}{NBSP}{digits}"


def _plain(amount: Decimal, at_least: int = 0) -> str:
    """Without trailing zeros, but with at least `at_least` decimals."""
    exponent = -amount.normalize().as_tuple().exponent
    places = max(at_least, exponent if isinstance(exponent, int) else 0)
    return number_format(amount, places, force_grouping=True)


@register.filter
def quantity(value):
    amount = _decimal(value)
    return "" if amount is None else _plain(amount)


@register.filter
def unit_price(value):
    amount = _decimal(value)
    return "" if amount is None else _plain(amount, at_least=2)


@register.filter
def rate(value):
    amount = _decimal(value)
    if amount is None:
        return ""
    return f"{_plain(amount)}{NBSP}%" if _french() else f"{_plain(amount)}%"


@register.filter
def share_rate(value):
    """A share stored as a fraction (0.5), written as a rate (`50 %`)."""
    amount = _decimal(value)
    return "" if amount is None else rate(amount * 100)


@register.filter
def short_date(value):
    """`5 Oct 2026`, `5 oct. 2026`."""
    return date_format(value, _("j M Y")) if isinstance(value, date) else ""


@register.filter
def month(value):
    """`October 2026`, `octobre 2026`."""
    return date_format(value, "F Y") if isinstance(value, date) else ""


@register.filter
def status_label(value):
    """`overdue` → `Overdue` (billing.selectors.PaymentStatus)."""
    from billing.selectors import PaymentStatus

    return PaymentStatus.labels.get(value, value)


@register.filter
def iban(value):
    """`FR7630006000011234567890189` → `FR76 3000 6000 0112 3456 7890 189`."""
    compact = "".join(str(value or "").split())
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


@register.simple_tag(takes_context=True)
def sees_invoices(context, organization) -> bool:
    """The organization's administrators and accountants see its invoices."""
    from billing.models import paying_organizations

    return paying_organizations(context["request"].user).filter(pk=organization.pk).exists()
