"""Writes on billing: settings and price lists, consumable uses, funding
programmes, draft lines, issuing, credit notes and payments. Each checks the
caller's role, validates, writes and audits in one transaction. Billing runs
are in billing/runs.py."""

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import chain
from billing.models import (
    BillingSettings,
    Consumable,
    ConsumableUse,
    FundingProgramme,
    Invoice,
    InvoiceIssued,
    InvoiceLine,
    InvoiceSequence,
    Payment,
    Tariff,
    UsageRecord,
    money,
)
from booking.models import Booking
from core.audit import record
from core.errors import Conflict, Forbidden
from core.models import User
from core.writes import delete_recorded, save_changes, save_new
from equipment import permissions as perms
from equipment.models import Platform, PlatformStaff
from equipment.services import stay_on_platform

MANAGER, OPERATOR, ACCOUNTANT = (
    PlatformStaff.Role.MANAGER,
    PlatformStaff.Role.OPERATOR,
    PlatformStaff.Role.ACCOUNTANT,
)
# Who may change what, on their own platform.
CAN_EDIT_PRICES = {MANAGER, ACCOUNTANT}  # billing settings, tariffs, consumables
CAN_RECORD_CONSUMABLES = {MANAGER, OPERATOR}
CAN_INVOICE = {ACCOUNTANT}  # runs, draft lines, issuing, credit notes, payments


def _lock_platform_billing(platform_id: int) -> BillingSettings:
    """The platform's billing settings row, locked: runs, issuing and tariff
    changes of one platform take turns (it is also the head of its chain)."""
    found = BillingSettings.objects.select_for_update().filter(platform_id=platform_id).first()
    if found is None:
        raise Conflict(
            _("Set up this platform's billing settings first."), code="billing_not_configured"
        )
    return found


# --- Settings and price lists ------------------------------------------------------------------


@transaction.atomic
def create_billing_settings(*, platform: Platform, by: User, **fields) -> BillingSettings:
    perms.require_platform_role(by, platform, CAN_EDIT_PRICES)
    if BillingSettings.objects.filter(platform=platform).exists():
        raise ValidationError({"platform": _("This platform already has its billing settings.")})
    return save_new(BillingSettings(platform=platform, **fields), by=by)


@transaction.atomic
def update_billing_settings(*, settings: BillingSettings, by: User, data: dict) -> BillingSettings:
    perms.require_platform_role(by, settings.platform, CAN_EDIT_PRICES)
    stay_on_platform(data, settings.platform)
    return save_changes(settings, by=by, data=data)


def _lock_tariffs(platform: Platform) -> None:
    # Two writers checking "no overlapping validity" at once would both pass.
    list(Platform.objects.select_for_update().filter(pk=platform.pk).values_list("pk"))


@transaction.atomic
def create_tariff(*, platform: Platform, by: User, **fields) -> Tariff:
    perms.require_platform_role(by, platform, CAN_EDIT_PRICES)
    _lock_tariffs(platform)
    return save_new(Tariff(platform=platform, **fields), by=by)


@transaction.atomic
def update_tariff(*, tariff: Tariff, by: User, data: dict) -> Tariff:
    perms.require_platform_role(by, tariff.platform, CAN_EDIT_PRICES)
    stay_on_platform(data, tariff.platform)
    _lock_tariffs(tariff.platform)
    return save_changes(tariff, by=by, data=data)


@transaction.atomic
def delete_tariff(*, tariff: Tariff, by: User) -> None:
    perms.require_platform_role(by, tariff.platform, CAN_EDIT_PRICES)
    if UsageRecord.objects.filter(tariff=tariff).exists():
        raise Conflict(
            _("This tariff has been billed; end its validity instead."), code="tariff_billed"
        )
    delete_recorded(tariff, by=by)


@transaction.atomic
def create_consumable(*, platform: Platform, by: User, **fields) -> Consumable:
    perms.require_platform_role(by, platform, CAN_EDIT_PRICES)
    return save_new(Consumable(platform=platform, **fields), by=by)


@transaction.atomic
def update_consumable(*, consumable: Consumable, by: User, data: dict) -> Consumable:
    perms.require_platform_role(by, consumable.platform, CAN_EDIT_PRICES)
    stay_on_platform(data, consumable.platform)
    return save_changes(consumable, by=by, data=data)


# --- Consumable uses ---------------------------------------------------------------------------

USE_STATUSES = (Booking.Status.CONFIRMED, Booking.Status.COMPLETED)


def takes_consumables(booking: Booking) -> bool:
    """Whether consumables may be recorded on `booking`: once it is checked in,
    during it, at check-out or after (the desk's board asks too)."""
    return booking.status in USE_STATUSES and booking.checked_in_at is not None


@transaction.atomic
def record_consumable_use(
    *, booking: Booking, consumable: Consumable, quantity: Decimal, by: User, note: str = ""
) -> ConsumableUse:
    """An operator records material used during a booking: from check-in on,
    at check-out or after. It is billed in the month it is recorded."""
    platform = booking.machine.platform
    perms.require_platform_role(by, platform, CAN_RECORD_CONSUMABLES)
    errors = {}
    if consumable.platform_id != platform.pk:
        errors["consumable"] = _("This consumable is sold on another platform.")
    elif not consumable.is_active:
        errors["consumable"] = _("This consumable is no longer on sale.")
    if not takes_consumables(booking):
        errors["booking"] = _("Record consumables on a booking that was checked in.")
    if errors:
        raise ValidationError(errors)
    return save_new(
        ConsumableUse(
            booking=booking, consumable=consumable, quantity=quantity, recorded_by=by, note=note
        ),
        by=by,
    )


@transaction.atomic
def delete_consumable_use(*, use: ConsumableUse, by: User) -> None:
    """A mistaken entry goes while it is not on an issued invoice (afterwards: a credit note)."""
    perms.require_platform_role(by, use.booking.machine.platform, CAN_RECORD_CONSUMABLES)
    usage = UsageRecord.objects.select_related("invoice").filter(consumable_use=use).first()
    if usage is not None:
        if usage.invoice and usage.invoice.is_issued:
            raise InvoiceIssued(_("This use is on an issued invoice; issue a credit note."))
        _forget_usage(usage, by=by)
    delete_recorded(use, by=by)


def _forget_usage(usage: UsageRecord, *, by: User) -> None:
    invoice = usage.invoice
    InvoiceLine.objects.filter(usage=usage).delete()
    if hasattr(usage, "funding"):
        InvoiceLine.objects.filter(allocation=usage.funding).delete()
        usage.funding.delete()
    delete_recorded(usage, by=by)
    if invoice is not None:
        refresh_totals(invoice)


# --- Funding programmes ------------------------------------------------------------------------


def _require_superuser(user: User) -> None:
    if not user.is_superuser:
        raise Forbidden(_("Only fabpool's administrators manage funding programmes."))


@transaction.atomic
def create_funding_programme(*, by: User, organizations=(), **fields) -> FundingProgramme:
    _require_superuser(by)
    programme = save_new(FundingProgramme(**fields), by=by)
    programme.organizations.set(organizations)
    return programme


@transaction.atomic
def update_funding_programme(
    *, programme: FundingProgramme, by: User, data: dict
) -> FundingProgramme:
    _require_superuser(by)
    data = dict(data)
    organizations = data.pop("organizations", None)
    also = {}
    if organizations is not None and set(organizations) != set(programme.organizations.all()):
        programme.organizations.set(organizations)
        also = {"organizations": sorted(o.pk for o in organizations)}
    if "budget" in data and data["budget"] < programme.spent():
        raise ValidationError({"budget": _("The budget cannot be less than what was spent.")})
    return save_changes(programme, by=by, data=data, also=also)


# --- Drafts ------------------------------------------------------------------------------------


def vat_breakdown(lines) -> list[dict]:
    """Bases and VAT per rate: VAT is computed once per rate on the sum of the
    lines (each already rounded), half up."""
    bases: dict[Decimal, Decimal] = defaultdict(Decimal)
    for rate, amount in lines:
        bases[Decimal(rate)] += Decimal(amount)
    return [
        {
            "rate": f"{rate:.2f}",
            "base": f"{money(base):.2f}",
            "vat": f"{money(base * rate / 100):.2f}",
        }
        for rate, base in sorted(bases.items())
    ]


def apply_totals(invoice: Invoice, breakdown: list[dict]) -> None:
    invoice.vat_breakdown = breakdown
    invoice.total_without_tax = sum((Decimal(b["base"]) for b in breakdown), Decimal(0))
    invoice.total_vat = sum((Decimal(b["vat"]) for b in breakdown), Decimal(0))
    invoice.total_with_tax = invoice.total_without_tax + invoice.total_vat


def refresh_totals(invoice: Invoice) -> Invoice:
    rows = InvoiceLine.objects.filter(invoice=invoice).values_list("vat_rate", "amount")
    apply_totals(invoice, vat_breakdown(rows))
    invoice.save(
        update_fields=[
            "vat_breakdown",
            "total_without_tax",
            "total_vat",
            "total_with_tax",
            "updated_at",
        ]
    )
    return invoice


def _locked_draft(invoice: Invoice, by: User) -> Invoice:
    perms.require_platform_role(by, invoice.platform, CAN_INVOICE)
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.is_issued:
        raise InvoiceIssued(_("An issued invoice never changes; issue a credit note."))
    return invoice


@transaction.atomic
def add_line(*, invoice: Invoice, by: User, **fields) -> InvoiceLine:
    invoice = _locked_draft(invoice, by)
    line = InvoiceLine(invoice=invoice, kind=InvoiceLine.Kind.MANUAL, **fields)
    line.compute_amount()
    save_new(line, by=by)
    refresh_totals(invoice)
    return line


@transaction.atomic
def update_line(*, line: InvoiceLine, by: User, data: dict) -> InvoiceLine:
    invoice = _locked_draft(line.invoice, by)
    if "invoice" in data and data["invoice"] != invoice:
        raise ValidationError({"invoice": _("A line stays on its invoice.")})
    data = {k: v for k, v in data.items() if k != "invoice"}
    save_changes(line, by=by, data=data, check=lambda changed: changed.compute_amount())
    refresh_totals(invoice)
    return line


@transaction.atomic
def remove_line(*, line: InvoiceLine, by: User) -> None:
    """A line billed from usage stays out of later runs (its usage is marked
    excluded); a removed funding line gives its amount back to the programme
    until the next run funds it again."""
    invoice = _locked_draft(line.invoice, by)
    if line.usage_id:
        UsageRecord.objects.filter(pk=line.usage_id).update(excluded=True)
    allocation = line.allocation
    delete_recorded(line, by=by)
    if allocation is not None:
        allocation.delete()
    refresh_totals(invoice)


# --- Issuing -----------------------------------------------------------------------------------


def _address(*parts: str) -> str:
    return "\n".join(part for part in parts if part)


def _copy_identities(invoice: Invoice, seller: BillingSettings) -> None:
    buyer = invoice.organization
    invoice.seller_name = seller.legal_name
    invoice.seller_address = _address(
        seller.address_line1, seller.address_line2, f"{seller.postal_code} {seller.city}".strip()
    )
    invoice.seller_country = str(seller.country)
    invoice.seller_siret = seller.siret
    invoice.seller_vat_number = seller.vat_number
    invoice.buyer_name = buyer.legal_name
    invoice.buyer_address = _address(
        buyer.address_line1, buyer.address_line2, f"{buyer.postal_code} {buyer.city}".strip()
    )
    invoice.buyer_country = str(buyer.country)
    invoice.buyer_siret = buyer.siret or ""
    invoice.buyer_vat_number = buyer.vat_number


def _next_number(invoice: Invoice, prefix: str, year: int) -> str:
    InvoiceSequence.objects.get_or_create(platform=invoice.platform, year=year, kind=invoice.kind)
    sequence = InvoiceSequence.objects.select_for_update().get(
        platform=invoice.platform, year=year, kind=invoice.kind
    )
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    series = prefix if invoice.kind == Invoice.Kind.INVOICE else f"{prefix}-AV"
    return f"{series}-{year}-{sequence.last_number:06d}"


@transaction.atomic
def issue_invoice(*, invoice: Invoice, by: User, issue_date: date | None = None) -> Invoice:
    """Number the draft with the next number of its platform's series, copy
    seller and buyer identity, fix dates and totals, and chain its hash. The
    settings row and the sequence row are locked: concurrent issuing takes turns,
    so numbers never skip or repeat."""
    perms.require_platform_role(by, invoice.platform, CAN_INVOICE)
    seller = _lock_platform_billing(invoice.platform_id)
    invoice = (
        Invoice.objects.select_for_update()
        .select_related("organization", "platform")
        .get(pk=invoice.pk)
    )
    if invoice.is_issued:
        raise InvoiceIssued(_("This invoice is already issued."), code="already_issued")
    lines = list(InvoiceLine.objects.filter(invoice=invoice))
    if not lines:
        raise ValidationError({"lines": _("An invoice without lines cannot be issued.")})
    apply_totals(invoice, vat_breakdown((line.vat_rate, line.amount) for line in lines))
    if invoice.total_with_tax < 0:
        raise ValidationError({"lines": _("The total cannot be negative; issue a credit note.")})
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        credited = invoice.credited_invoice
        if credited.credited_total() + invoice.total_with_tax > credited.total_with_tax:
            raise ValidationError(
                {"lines": _("Credit notes cannot credit more than the invoice's total.")}
            )
    issue_date = issue_date or timezone.localtime(timezone.now(), invoice.platform.tzinfo).date()
    _copy_identities(invoice, seller)
    invoice.number = _next_number(invoice, seller.invoice_prefix, issue_date.year)
    invoice.issue_date = issue_date
    invoice.payment_terms_days = seller.payment_terms_days
    invoice.due_date = issue_date + timedelta(days=seller.payment_terms_days)
    invoice.late_payment_mentions = seller.late_payment_mentions
    invoice.currency = invoice.platform.currency
    previous = (
        Invoice.objects.filter(platform_id=invoice.platform_id, status=Invoice.Status.ISSUED)
        .order_by("-chain_index")
        .values_list("chain_index", "hash")
        .first()
    )
    invoice.chain_index = previous[0] + 1 if previous else 1
    invoice.previous_hash = previous[1] if previous else ""
    invoice.issued_at = timezone.now()
    invoice.issued_by = by
    invoice.hash = chain.document_hash(invoice, lines)
    invoice.status = Invoice.Status.ISSUED
    invoice.save()
    record(
        actor=by,
        action=f"{invoice.kind}.issue",
        target=invoice,
        changes={"number": invoice.number, "total_with_tax": invoice.total_with_tax},
    )
    return invoice


@transaction.atomic
def create_credit_note(*, invoice: Invoice, by: User) -> Invoice:
    """A draft credit note repeating every line of an issued invoice; remove or
    change lines for a partial credit, then issue it."""
    perms.require_platform_role(by, invoice.platform, CAN_INVOICE)
    if invoice.kind != Invoice.Kind.INVOICE or not invoice.is_issued:
        raise Conflict(_("Only an issued invoice can be credited."), code="invoice_not_creditable")
    note = save_new(
        Invoice(
            platform=invoice.platform,
            organization=invoice.organization,
            kind=Invoice.Kind.CREDIT_NOTE,
            credited_invoice=invoice,
            currency=invoice.currency,
        ),
        by=by,
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=note,
            kind=line.kind,
            description=line.description,
            service_date=line.service_date,
            quantity=line.quantity,
            unit=line.unit,
            unit_price=line.unit_price,
            vat_rate=line.vat_rate,
            amount=line.amount,
            booking_id=line.booking_id,
        )
        for line in invoice.lines.all()
    )
    return refresh_totals(note)


# --- Payments ----------------------------------------------------------------------------------


def lock_payable(invoice: Invoice) -> tuple[Invoice, Decimal]:
    """The invoice's row, locked, and what remains due on it; a draft, a credit
    note or a settled invoice cannot be paid. For bank and card payments alike."""
    invoice = (
        Invoice.objects.select_for_update()
        .select_related("organization", "platform")
        .get(pk=invoice.pk)
    )
    if not invoice.is_issued:
        raise Conflict(_("A draft cannot be paid; issue it first."), code="invoice_draft")
    if invoice.kind != Invoice.Kind.INVOICE:
        raise Conflict(_("A credit note is not paid."), code="credit_note")
    due = invoice.remaining_due()
    if due <= 0:
        raise Conflict(_("This invoice is already paid."), code="invoice_paid")
    return invoice, due


def funding_report(*, programme: FundingProgramme, by: User):
    """What `programme` financed, one allocation per funded booking: all of it for
    administrators; for the managers and accountants of the label's platforms,
    their platforms' rows; for anyone else, Forbidden."""
    allocations = programme.allocations.select_related(
        "usage__organization", "usage__invoice"
    ).order_by("usage__occurred_at", "pk")
    if by.is_superuser:
        return allocations
    platforms = Platform.objects.staffed_by(by, CAN_EDIT_PRICES)
    if not platforms.filter(labels=programme.label_id).exists():
        raise Forbidden(_("Only the platforms' managers and accountants see this report."))
    return allocations.filter(usage__platform__in=platforms)


@transaction.atomic
def record_payment(
    *,
    invoice: Invoice,
    by: User,
    received_on: date | None = None,
    amount: Decimal | None = None,
    reference: str = "",
    method: str = Payment.Method.BANK_TRANSFER,
) -> Payment:
    """Mark an issued invoice paid (in full by default, or in part), received on a
    day between 2000 and today (the platform's; today by default)."""
    perms.require_platform_role(by, invoice.platform, CAN_INVOICE)
    today = timezone.localtime(timezone.now(), invoice.platform.tzinfo).date()
    received_on = received_on or today
    if not date(2000, 1, 1) <= received_on <= today:
        raise ValidationError({"received_on": _("Give a date between 2000 and today.")})
    invoice, due = lock_payable(invoice)
    amount = due if amount is None else amount
    if amount > due:
        raise ValidationError({"amount": _("More than what remains due (%(due)s).") % {"due": due}})
    return save_new(
        Payment(
            invoice=invoice,
            amount=amount,
            method=method,
            reference=reference,
            received_on=received_on,
            recorded_by=by,
        ),
        by=by,
    )
