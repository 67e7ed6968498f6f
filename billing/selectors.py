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

from billing.models import MONEY, Invoice, Payment

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
