"""Reads about invoices that need thought: what remains due on each document and
its payment status, computed in the database so that a list of any length costs
the same few queries.

What remains due is the rule of `Invoice.remaining_due()` (for one invoice, in
its locked transaction): the total, less the payments received and the issued
credit notes."""

from datetime import date
from decimal import Decimal

from django.db.models import (
    Case,
    CharField,
    DecimalField,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Round
from django.utils.translation import gettext_lazy as _

from billing.models import MONEY, Invoice, InvoiceLine, Payment

AMOUNT = DecimalField(**MONEY)
ZERO = Value(Decimal(0), output_field=AMOUNT)


class PaymentStatus:
    """Where an issued invoice stands (a credit note or a draft has no payment status)."""

    DRAFT = "draft"
    CREDIT_NOTE = "credit_note"
    DUE = "due"
    OVERDUE = "overdue"
    PAID = "paid"
    CREDITED = "credited"

    labels = {
        DRAFT: _("Draft"),
        CREDIT_NOTE: _("Credit note"),
        DUE: _("Due"),
        OVERDUE: _("Overdue"),
        PAID: _("Paid"),
        CREDITED: _("Credited"),
    }
    # What an accountant filters issued documents by.
    filters = [DUE, OVERDUE, PAID, CREDITED, CREDIT_NOTE]


def _sum_of(queryset: QuerySet, group: str, field: str):
    return Coalesce(
        Subquery(
            queryset.order_by().values(group).annotate(total=Sum(field)).values("total")[:1],
            output_field=AMOUNT,
        ),
        ZERO,
        output_field=AMOUNT,
    )


def with_balance(invoices: QuerySet, today: date) -> QuerySet:
    """`invoices` with `amount_paid_total`, `amount_credited`, `balance_due` (the
    total less both, to the cent) and `payment_status` (PaymentStatus) as of `today`:
    credited once issued credit notes cover the total, paid once nothing remains
    due, overdue after the due date, due before."""
    paid = _sum_of(Payment.objects.filter(invoice=OuterRef("pk")), "invoice", "amount")
    credited = _sum_of(
        Invoice.objects.filter(credited_invoice=OuterRef("pk"), status=Invoice.Status.ISSUED),
        "credited_invoice",
        "total_with_tax",
    )
    balance = invoices.annotate(amount_paid_total=paid, amount_credited=credited).annotate(
        # Rounded: SQLite computes in floating point, where 128.56 - 100 - 28.56 is not 0.
        balance_due=Round(
            F("total_with_tax") - F("amount_paid_total") - F("amount_credited"),
            2,
            output_field=AMOUNT,
        )
    )
    return balance.annotate(
        payment_status=Case(
            When(status=Invoice.Status.DRAFT, then=Value(PaymentStatus.DRAFT)),
            When(kind=Invoice.Kind.CREDIT_NOTE, then=Value(PaymentStatus.CREDIT_NOTE)),
            When(
                Q(amount_credited__gt=0) & Q(amount_credited__gte=F("total_with_tax")),
                then=Value(PaymentStatus.CREDITED),
            ),
            When(balance_due__lte=0, then=Value(PaymentStatus.PAID)),
            When(due_date__lt=today, then=Value(PaymentStatus.OVERDUE)),
            default=Value(PaymentStatus.DUE),
            output_field=CharField(),
        ),
    )


# --- Revenue, for booking.analytics ------------------------------------------------------

# Where a line's row of the utilisation table is, by grouping.
_REVENUE_GROUPS = {
    "machine": "booking__machine_id",
    "machine_type": "booking__machine__machine_type_id",
    "platform": "invoice__platform_id",
    "organization": "invoice__organization_id",
}


def revenue_by(*, machines, organizations, periods, group_by) -> dict[tuple, Decimal]:
    """Revenue for booking.analytics' utilisation table (registered in BillingConfig):
    amounts without tax of the issued invoices' lines about bookings of `machines`
    (of `organizations` only, when given), less the issued credit notes', by the
    lines' date of service (a local day) in `periods`. A funding line is left out:
    it moves what the SME pays to a programme, the machine earned the same. Keys
    as the table's: (entity value, period index), either left out when not grouped
    by. One query."""
    entity = next((g for g in group_by if g in _REVENUE_GROUPS), None)
    by_period = any(g not in _REVENUE_GROUPS for g in group_by)
    lines = InvoiceLine.objects.filter(
        invoice__status=Invoice.Status.ISSUED,
        booking__machine__in=machines,
        service_date__gte=periods[0][0],
        service_date__lt=periods[-1][1],
    ).exclude(kind=InvoiceLine.Kind.FUNDING)
    if organizations is not None:
        lines = lines.filter(invoice__organization__in=organizations)
    signed = Case(
        When(invoice__kind=Invoice.Kind.CREDIT_NOTE, then=-F("amount")),
        default=F("amount"),
        output_field=AMOUNT,
    )
    if by_period:
        lines = lines.annotate(
            period=Case(
                *(
                    When(service_date__gte=first, service_date__lt=following, then=Value(index))
                    for index, (first, following) in enumerate(periods)
                ),
                output_field=IntegerField(),
            )
        )
    keys = ([_REVENUE_GROUPS[entity]] if entity else []) + (["period"] if by_period else [])
    if not keys:
        return {(): lines.aggregate(total=Coalesce(Sum(signed), ZERO))["total"]}
    rows = lines.values(*keys).annotate(total=Sum(signed)).order_by()
    return {tuple(row[key] for key in keys): row["total"] for row in rows}
