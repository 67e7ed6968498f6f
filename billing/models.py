"""Billing: what a platform charges (settings, tariffs, consumables), what happened
(usage records), who co-finances it (funding programmes), and the documents
(invoices and credit notes) with their payments.

Modelled on pretix's invoices: an issued document copies the seller's and the
buyer's identity, carries its own lines and totals, and never changes (guarded
here in save()/delete() and in the database by triggers, migration 0002);
corrections are credit notes that refer to the invoice. Payments live in their
own rows, so recording one never touches the invoice."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q, Sum
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from booking.models import Booking
from core.errors import Conflict
from core.models import Membership, Organization
from core.validators import (
    compact_bic,
    compact_iban,
    compact_siret,
    compact_vat_number,
    validate_bic,
    validate_iban,
    validate_single_line,
    validate_siret,
    validate_vat_number,
)
from equipment.models import (
    Label,
    Machine,
    MachineType,
    Platform,
    PlatformMembership,
    PlatformScopedQuerySet,
    PlatformStaff,
)

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
MONEY = {"max_digits": 12, "decimal_places": 2}
UNIT_PRICE = {"max_digits": 12, "decimal_places": 4}
QUANTITY = {"max_digits": 12, "decimal_places": 4}
RATE = {"max_digits": 5, "decimal_places": 2}
SHARE = {"max_digits": 5, "decimal_places": 4}
DEFAULT_VAT = Decimal("20.00")


def money(value: Decimal) -> Decimal:
    """Round to the cent, half up (French practice, and what EN 16931 expects per line)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


NOT_NEGATIVE = MinValueValidator(Decimal(0), message=_("This cannot be negative."))


share_validators = [
    MinValueValidator(Decimal(0), message=_("A share is between 0 and 1.")),
    MaxValueValidator(Decimal(1), message=_("A share is between 0 and 1.")),
]
vat_validators = [
    MinValueValidator(Decimal(0), message=_("A VAT rate is between 0 and 100.")),
    MaxValueValidator(HUNDRED, message=_("A VAT rate is between 0 and 100.")),
]
account_validator = RegexValidator(
    r"^[A-Za-z0-9]{1,20}$", _("Use letters and digits only, e.g. 411 or 44571.")
)
prefix_validator = RegexValidator(
    r"^[A-Z0-9]{1,10}$", _("Use 1 to 10 capital letters or digits, e.g. FAB.")
)

LATE_PAYMENT_MENTIONS = _(
    "Payment due by the due date; no discount for early payment. Late payment incurs "
    "penalties at three times the French legal interest rate (art. L441-10 of the Code de "
    "commerce) and a fixed indemnity of €40 for recovery costs (art. D441-5)."
)


# --- Who may see what --------------------------------------------------------------------------


def _staffed(user, roles=None):
    return Platform.objects.staffed_by(user, roles)


FINANCE_ROLES = (PlatformStaff.Role.MANAGER, PlatformStaff.Role.ACCOUNTANT)


class StaffOnlyQuerySet(models.QuerySet):
    """Rows only a platform's staff see (its billing settings, its runs)."""

    def visible_to(self, user):
        return self.filter(platform__in=_staffed(user))


class ConsumableUseQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(booking__in=Booking.objects.visible_to(user))


class FundingProgrammeQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Programmes of the labels of the platforms the user sees."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        # A subquery, not a join: joined to the label's platforms, a sum over the
        # allocations (the API's `spent`) counted each once per visible platform.
        labels = Label.objects.filter(platforms__in=Platform.objects.visible_to(user))
        return self.filter(label__in=labels)


# An SME's administrators and accountants see its issued invoices and pay them.
SME_PAYERS = (Membership.Role.ADMIN, Membership.Role.ACCOUNTANT)


def paying_organizations(user):
    """The organizations whose invoices `user` sees and pays (superusers: all)."""
    if not user.is_authenticated:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(
        pk__in=Membership.objects.filter(user=user, role__in=SME_PAYERS).values("organization")
    )


class InvoiceQuerySet(models.QuerySet):
    def visible_to(self, user):
        """A platform's managers and accountants see all its documents, drafts
        included; an SME's administrators and accountants see its issued ones."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(
            Q(platform__in=_staffed(user, FINANCE_ROLES))
            | Q(status=Invoice.Status.ISSUED, organization__in=paying_organizations(user))
        )


class InvoiceLineQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(invoice__in=Invoice.objects.visible_to(user))


# --- Settings and price lists ------------------------------------------------------------------


class BillingSettings(models.Model):
    """How a platform invoices: who the seller is, the number series, terms."""

    class BillableTime(models.TextChoices):
        ACTUAL = "actual", _("Checked in to checked out, where recorded")
        BOOKED = "booked", _("Booked time")

    platform = models.OneToOneField(
        Platform, on_delete=models.CASCADE, related_name="billing_settings"
    )
    legal_name = models.CharField(
        _("seller's legal name"), max_length=200, validators=[validate_single_line]
    )
    address_line1 = models.CharField(_("address"), max_length=200)
    address_line2 = models.CharField(_("address (continued)"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20)
    city = models.CharField(_("city"), max_length=100)
    country = CountryField(_("country"), default="FR")
    siret = models.CharField(_("SIRET"), max_length=20, blank=True, validators=[validate_siret])
    vat_number = models.CharField(
        _("VAT number"), max_length=20, blank=True, validators=[validate_vat_number]
    )
    invoice_prefix = models.CharField(
        _("invoice number prefix"), max_length=10, validators=[prefix_validator]
    )
    payment_terms_days = models.PositiveIntegerField(
        _("payment terms (days)"),
        default=30,
        validators=[MaxValueValidator(60)],  # French law: at most 60 days from issue
    )
    late_payment_mentions = models.TextField(
        _("late-payment mentions"), default=LATE_PAYMENT_MENTIONS
    )
    billable_time = models.CharField(
        _("billable time"), max_length=10, choices=BillableTime.choices, default=BillableTime.ACTUAL
    )
    # Where SMEs send bank transfers: shown on their invoice pages (the current
    # account, whatever it was when an invoice was issued).
    iban = models.CharField(
        _("IBAN"),
        max_length=34,
        blank=True,
        validators=[validate_iban],
        help_text=_("The account SMEs pay invoices into by bank transfer."),
    )
    bic = models.CharField(_("BIC"), max_length=11, blank=True, validators=[validate_bic])

    # The accounting entries of the FEC export (billing/exports.py).
    journal_code = models.CharField(
        _("sales journal code"), max_length=10, default="VE", validators=[account_validator]
    )
    journal_label = models.CharField(
        _("sales journal label"),
        max_length=100,
        default="Ventes",
        validators=[validate_single_line],
    )
    customer_account = models.CharField(
        _("customer account"), max_length=20, default="411", validators=[account_validator]
    )
    customer_auxiliary_prefix = models.CharField(
        _("customer auxiliary account prefix"),
        max_length=10,
        default="C",
        validators=[account_validator],
        help_text=_("Each SME's auxiliary account is this prefix and its id, e.g. C000042."),
    )
    revenue_account = models.CharField(
        _("revenue account"), max_length=20, default="706", validators=[account_validator]
    )
    vat_account = models.CharField(
        _("VAT collected account"), max_length=20, default="44571", validators=[account_validator]
    )

    objects = StaffOnlyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "billing settings"
        ordering = ["platform_id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice_prefix"], name="billingsettings_unique_prefix")
        ]

    def __str__(self) -> str:
        return f"{self.platform}: {self.legal_name}"

    def clean(self) -> None:
        self.siret = compact_siret(self.siret)
        self.vat_number = compact_vat_number(self.vat_number)
        self.iban = compact_iban(self.iban)
        self.bic = compact_bic(self.bic)
        errors = {}
        if self.country == "FR" and not self.siret:
            errors["siret"] = _("A French seller needs its SIRET number.")
        others = BillingSettings.objects.filter(invoice_prefix=self.invoice_prefix)
        if self.invoice_prefix and others.exclude(pk=self.pk).exists():
            errors["invoice_prefix"] = _("Another platform uses this prefix.")
        if errors:
            raise ValidationError(errors)


class Tariff(models.Model):
    """An hourly rate on a platform, for one machine, a machine type or every
    machine, and one membership tier or all, valid over [valid_from, valid_until]
    (inclusive; open-ended without an end). The most specific tariff wins:
    machine before type before platform-wide, a tier before all tiers."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="tariffs")
    machine = models.ForeignKey(
        Machine, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    machine_type = models.ForeignKey(
        MachineType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    tier = models.CharField(
        _("membership tier"),
        max_length=20,
        choices=PlatformMembership.Tier.choices,
        blank=True,
        help_text=_("Blank: every tier."),
    )
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    hourly_rate = models.DecimalField(
        _("hourly rate (without tax)"), **MONEY, validators=[NOT_NEGATIVE]
    )
    increment_minutes = models.PositiveIntegerField(
        _("billing increment (minutes)"),
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text=_("Time is billed by started increment, e.g. 15 for started quarter-hours."),
    )
    minimum_minutes = models.PositiveIntegerField(
        _("minimum charge (minutes)"),
        default=0,
        validators=[MaxValueValidator(24 * 60)],
        help_text=_("A booking is billed at least this long."),
    )
    setup_fee = models.DecimalField(
        _("setup fee per booking"), **MONEY, default=Decimal(0), validators=[NOT_NEGATIVE]
    )
    late_cancellation_share = models.DecimalField(
        _("late-cancellation fee (share of the booked amount)"),
        **SHARE,
        default=Decimal("0.5"),
        validators=share_validators,
    )
    no_show_share = models.DecimalField(
        _("no-show fee (share of the booked amount)"),
        **SHARE,
        default=Decimal(1),
        validators=share_validators,
    )
    vat_rate = models.DecimalField(
        _("VAT rate (%)"), **RATE, default=DEFAULT_VAT, validators=vat_validators
    )

    # Price lists: whoever sees the platform (its staff and the SMEs booking there).
    objects = PlatformScopedQuerySet.as_manager()

    class Meta:
        ordering = ["platform_id", "valid_from", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gte=F("valid_from")),
                name="tariff_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(machine__isnull=True) | Q(machine_type__isnull=True),
                name="tariff_machine_or_type",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hourly_rate}/h from {self.valid_from}"

    def scope(self) -> dict:
        return {
            "platform_id": self.platform_id,
            "machine_id": self.machine_id,
            "machine_type_id": self.machine_type_id,
            "tier": self.tier,
        }

    def clean(self) -> None:
        errors = {}
        if self.machine_id and self.machine_type_id:
            errors["machine_type"] = _("Give a machine or a machine type, not both.")
        if self.machine_id and self.platform_id and self.machine.platform_id != self.platform_id:
            errors["machine"] = _("This machine is on another platform.")
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            errors["valid_until"] = _("The end of validity cannot be before its start.")
        if not errors and self.valid_from and self.overlapping().exists():
            errors["valid_from"] = _(
                "Another tariff for the same machine or type and tier is valid over part "
                "of this period."
            )
        if errors:
            raise ValidationError(errors)

    def overlapping(self) -> models.QuerySet:
        others = Tariff.objects.filter(**self.scope()).exclude(pk=self.pk)
        others = others.filter(Q(valid_until__isnull=True) | Q(valid_until__gte=self.valid_from))
        if self.valid_until:
            others = others.filter(valid_from__lte=self.valid_until)
        return others


class Consumable(models.Model):
    """Material a platform sells by the unit: filament grams, resin ml, sheets."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="consumables")
    name = models.CharField(_("name"), max_length=150, validators=[validate_single_line])
    unit = models.CharField(
        _("unit"), max_length=20, validators=[validate_single_line], help_text=_("e.g. g, ml")
    )
    unit_price = models.DecimalField(
        _("unit price (without tax)"), **UNIT_PRICE, validators=[NOT_NEGATIVE]
    )
    vat_rate = models.DecimalField(
        _("VAT rate (%)"), **RATE, default=DEFAULT_VAT, validators=vat_validators
    )
    is_active = models.BooleanField(_("on sale"), default=True)

    # Price lists: whoever sees the platform (its staff and the SMEs booking there).
    objects = PlatformScopedQuerySet.as_manager()

    class Meta:
        ordering = ["platform_id", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "name"], name="consumable_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.unit})"

    def clean(self) -> None:
        others = Consumable.objects.filter(platform_id=self.platform_id, name=self.name)
        if self.platform_id and others.exclude(pk=self.pk).exists():
            raise ValidationError(
                {"name": _("This platform already sells a consumable of that name.")}
            )


class ConsumableUse(models.Model):
    """Material used during a booking, recorded by the platform's operators."""

    booking = models.ForeignKey(Booking, on_delete=models.PROTECT, related_name="+")
    consumable = models.ForeignKey(Consumable, on_delete=models.PROTECT, related_name="uses")
    quantity = models.DecimalField(
        _("quantity"),
        **QUANTITY,
        validators=[MinValueValidator(Decimal("0.0001"), message=_("Give a positive quantity."))],
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = ConsumableUseQuerySet.as_manager()

    class Meta:
        ordering = ["recorded_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="consumableuse_positive")
        ]

    def __str__(self) -> str:
        return f"{self.quantity} {self.consumable.unit} {self.consumable.name}"


# --- Funding programmes ------------------------------------------------------------------------


class FundingProgramme(models.Model):
    """A labelled programme co-financing a share of SMEs' machine time on the
    platforms carrying its label, up to a budget, over [starts_on, ends_on]."""

    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="funding_programmes")
    name = models.CharField(_("name"), max_length=200, validators=[validate_single_line])
    share = models.DecimalField(
        _("funded share of machine time"), **SHARE, validators=share_validators
    )
    budget = models.DecimalField(_("budget"), **MONEY, validators=[NOT_NEGATIVE])
    starts_on = models.DateField(_("first day"))
    ends_on = models.DateField(_("last day"))
    organizations = models.ManyToManyField(
        Organization,
        blank=True,
        related_name="+",
        help_text=_("The SMEs it funds; none: every SME."),
    )

    objects = FundingProgrammeQuerySet.as_manager()

    class Meta:
        ordering = ["starts_on", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=F("starts_on")), name="fundingprogramme_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValidationError({"ends_on": _("The last day cannot be before the first day.")})

    def spent(self) -> Decimal:
        return self.allocations.aggregate(total=Sum("amount"))["total"] or Decimal(0)


# --- What happened -----------------------------------------------------------------------------


class UsageRecord(models.Model):
    """One billable event, and where it came from (`source`, e.g. "booking:42").
    (source, kind) is unique: billing the same event again finds this row instead
    of adding one. Once its invoice is issued the record is never touched again."""

    class Kind(models.TextChoices):
        MACHINE_TIME = "machine_time", _("Machine time")
        SETUP_FEE = "setup_fee", _("Setup fee")
        LATE_CANCELLATION = "late_cancellation", _("Late cancellation")
        NO_SHOW = "no_show", _("No-show")
        CONSUMABLE = "consumable", _("Consumable")

    # No index of its own: the (platform, period_start) index below starts with it,
    # and each index costs every billing run its share of writes.
    platform = models.ForeignKey(
        Platform, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateField(_("billing month"))
    kind = models.CharField(max_length=20, choices=Kind.choices)
    source = models.CharField(max_length=50)
    # Never looked up by booking (a record is found by its source): an index would
    # only add its writes to every billing run.
    booking = models.ForeignKey(Booking, on_delete=models.PROTECT, related_name="+", db_index=False)
    # Indexed only where set (see Meta): most records are machine time, without one.
    consumable_use = models.ForeignKey(
        ConsumableUse,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    tariff = models.ForeignKey(
        Tariff, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    occurred_at = models.DateTimeField()
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(**QUANTITY)
    unit = models.CharField(max_length=20)
    unit_price = models.DecimalField(**UNIT_PRICE)
    vat_rate = models.DecimalField(**RATE)
    amount = models.DecimalField(**MONEY)
    invoice = models.ForeignKey(
        "Invoice", on_delete=models.PROTECT, null=True, blank=True, related_name="usage_records"
    )
    # Its line was removed from a draft by an accountant: a new run leaves it out.
    excluded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [
            models.Index(fields=["platform", "period_start"]),
            models.Index(
                fields=["consumable_use"],
                condition=Q(consumable_use__isnull=False),
                name="usagerecord_consumable_use",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["source", "kind"], name="usagerecord_unique_source")
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.kind}"


class FundingAllocation(models.Model):
    """The part of one machine-time record a programme pays."""

    programme = models.ForeignKey(
        FundingProgramme, on_delete=models.PROTECT, related_name="allocations"
    )
    usage = models.OneToOneField(UsageRecord, on_delete=models.PROTECT, related_name="funding")
    amount = models.DecimalField(**MONEY)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.programme}: {self.amount}"


class BillingRun(models.Model):
    """One run of billing for a platform and a month, and what it did."""

    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateField(_("month"))
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True)

    objects = StaffOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.platform} {self.period_start:%Y-%m}"


# --- Documents ---------------------------------------------------------------------------------


class InvoiceIssued(Conflict):
    code = "invoice_issued"


class Invoice(models.Model):
    """An invoice or a credit note. Drafts change freely; issuing numbers it,
    copies both parties' identity, fixes its totals and chains its hash to the
    platform's previous document. From then on nothing about it changes."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ISSUED = "issued", _("Issued")

    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, related_name="invoices")
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="invoices"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.INVOICE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    period_start = models.DateField(_("billed month"), null=True, blank=True)
    period_end = models.DateField(_("billed until"), null=True, blank=True)
    credited_invoice = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="credit_notes"
    )
    currency = models.CharField(max_length=3, default="EUR")
    # Set when issued.
    number = models.CharField(max_length=40, null=True, blank=True, unique=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    payment_terms_days = models.PositiveIntegerField(null=True, blank=True)
    late_payment_mentions = models.TextField(blank=True)
    seller_name = models.CharField(max_length=200, blank=True)
    seller_address = models.TextField(blank=True)
    seller_country = models.CharField(max_length=2, blank=True)
    seller_siret = models.CharField(max_length=20, blank=True)
    seller_vat_number = models.CharField(max_length=20, blank=True)
    buyer_name = models.CharField(max_length=200, blank=True)
    buyer_address = models.TextField(blank=True)
    buyer_country = models.CharField(max_length=2, blank=True)
    buyer_siret = models.CharField(max_length=20, blank=True)
    buyer_vat_number = models.CharField(max_length=20, blank=True)
    # Totals: kept up to date on drafts, fixed at issue.
    total_without_tax = models.DecimalField(**MONEY, default=Decimal(0))
    total_vat = models.DecimalField(**MONEY, default=Decimal(0))
    total_with_tax = models.DecimalField(**MONEY, default=Decimal(0))
    vat_breakdown = models.JSONField(default=list, blank=True)
    # The chain of the platform's issued documents.
    chain_index = models.PositiveIntegerField(null=True, blank=True)
    previous_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One invoice per organization, platform and billed month: runs find it again.
            models.UniqueConstraint(
                fields=["platform", "organization", "period_start"],
                condition=Q(kind="invoice"),
                name="invoice_one_per_period",
            ),
            models.UniqueConstraint(
                fields=["platform", "chain_index"], name="invoice_unique_chain_index"
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | (Q(number__isnull=False) & ~Q(hash="")),
                name="invoice_issued_numbered",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"{self.get_kind_display()} draft #{self.pk}"

    def save(self, *args, **kwargs):
        if self._was_issued():
            raise InvoiceIssued(_("An issued invoice never changes; issue a credit note."))
        super().save(*args, **kwargs)
        self._stored_status = self.status

    def delete(self, *args, **kwargs):
        if self._was_issued():
            raise InvoiceIssued(_("An issued invoice is never deleted; issue a credit note."))
        return super().delete(*args, **kwargs)

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._stored_status = instance.__dict__.get("status")
        return instance

    @property
    def is_issued(self) -> bool:
        return self.status == self.Status.ISSUED

    def _was_issued(self) -> bool:
        if self._state.adding or self.pk is None:
            return False
        stored = getattr(self, "_stored_status", None)
        if stored is None:
            stored = Invoice.objects.filter(pk=self.pk).values_list("status", flat=True).first()
        return stored == self.Status.ISSUED

    def amount_paid(self) -> Decimal:
        return self.payments.aggregate(total=Sum("amount"))["total"] or Decimal(0)

    def credited_total(self) -> Decimal:
        """What its issued credit notes take off this invoice."""
        return self.credit_notes.filter(status=Invoice.Status.ISSUED).aggregate(
            total=Sum("total_with_tax")
        )["total"] or Decimal(0)

    def remaining_due(self) -> Decimal:
        """The total, less payments received and issued credit notes (to the cent:
        SQLite's sums carry more digits)."""
        return money(self.total_with_tax - self.amount_paid() - self.credited_total())


class InvoiceLine(models.Model):
    class Kind(models.TextChoices):
        MACHINE_TIME = "machine_time", _("Machine time")
        SETUP_FEE = "setup_fee", _("Setup fee")
        LATE_CANCELLATION = "late_cancellation", _("Late cancellation")
        NO_SHOW = "no_show", _("No-show")
        CONSUMABLE = "consumable", _("Consumable")
        FUNDING = "funding", _("Funding")
        MANUAL = "manual", _("Other")

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.MANUAL)
    description = models.CharField(
        _("description"), max_length=300, validators=[validate_single_line]
    )
    service_date = models.DateField(_("date of service"), null=True, blank=True)
    quantity = models.DecimalField(
        _("quantity"),
        **QUANTITY,
        validators=[MinValueValidator(Decimal(0), message=_("A quantity cannot be negative."))],
    )
    unit = models.CharField(_("unit"), max_length=20, validators=[validate_single_line])
    unit_price = models.DecimalField(_("unit price (without tax)"), **UNIT_PRICE)
    vat_rate = models.DecimalField(
        _("VAT rate (%)"), **RATE, default=DEFAULT_VAT, validators=vat_validators
    )
    amount = models.DecimalField(_("amount (without tax)"), **MONEY)
    usage = models.OneToOneField(
        UsageRecord, on_delete=models.SET_NULL, null=True, blank=True, related_name="line"
    )
    # One line per allocation, unique where set (see Meta): a full unique index would
    # also hold the NULL of every other line, and cost each billing run its writes.
    allocation = models.ForeignKey(
        FundingAllocation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # Revenue joins lines to their bookings, never the other way round: no index.
    booking = models.ForeignKey(
        Booking, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )

    objects = InvoiceLineQuerySet.as_manager()

    class Meta:
        ordering = ["invoice_id", "service_date", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=0), name="invoiceline_quantity"),
            models.UniqueConstraint(
                fields=["allocation"],
                condition=Q(allocation__isnull=False),
                name="invoiceline_one_per_allocation",
                violation_error_message=_("This funding allocation already has its line."),
            ),
        ]

    def __str__(self) -> str:
        return self.description

    def save(self, *args, **kwargs):
        if self._invoice_issued():
            raise InvoiceIssued(_("The lines of an issued invoice never change."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self._invoice_issued():
            raise InvoiceIssued(_("The lines of an issued invoice never change."))
        return super().delete(*args, **kwargs)

    def compute_amount(self) -> None:
        self.amount = money(self.quantity * self.unit_price)

    def _invoice_issued(self) -> bool:
        return Invoice.objects.filter(pk=self.invoice_id, status=Invoice.Status.ISSUED).exists()


class InvoiceSequence(models.Model):
    """The last number given in a platform's series for a year and a kind.
    Issuing locks this row (select_for_update), so numbers never skip or repeat."""

    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, related_name="+")
    year = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=Invoice.Kind.choices)
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "year", "kind"], name="invoicesequence_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.platform} {self.year} {self.kind}: {self.last_number}"


class Payment(models.Model):
    """Money received for an issued invoice (bank transfer recorded by hand,
    later card payments). Its own row: the invoice itself never changes."""

    class Method(models.TextChoices):
        BANK_TRANSFER = "bank_transfer", _("Bank transfer")
        CARD = "card", _("Card")
        OTHER = "other", _("Other")

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(**MONEY)
    method = models.CharField(max_length=20, choices=Method.choices, default=Method.BANK_TRANSFER)
    reference = models.CharField(max_length=200, blank=True)
    received_on = models.DateField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # A card payment's PaymentIntent: unique, so a replayed webhook cannot pay twice.
    stripe_payment_intent = models.CharField(max_length=255, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["received_on", "id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="payment_positive")]

    def __str__(self) -> str:
        return f"{self.amount} for {self.invoice}"


# --- Stripe ------------------------------------------------------------------------------------


class StripeCustomer(models.Model):
    """An organization's customer at Stripe, created the first time it pays by card."""

    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, related_name="stripe_customer"
    )
    stripe_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.stripe_id


class CardPaymentQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(invoice__in=Invoice.objects.visible_to(user))


class CardPayment(models.Model):
    """One attempt at paying an invoice by card: a PaymentIntent at Stripe. The
    invoice is paid only when Stripe says so (webhook `payment_intent.succeeded`),
    which adds a Payment; a failure is recorded here and the invoice stays unpaid."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the card")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    class Kind(models.TextChoices):
        ON_SESSION = "on_session", _("Paid by the customer")
        OFF_SESSION = "off_session", _("Saved card charged by the platform")

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="card_payments")
    attempt = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ON_SESSION)
    # Unknown only when Stripe refused the card before naming the PaymentIntent.
    payment_intent = models.CharField(max_length=255, null=True, blank=True, unique=True)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    failure_message = models.CharField(max_length=500, blank=True)
    amount_refunded = models.DecimalField(**MONEY, default=Decimal(0))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CardPaymentQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "attempt"], name="cardpayment_attempt"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="cardpayment_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.payment_intent} ({self.status})"


class StripeRefund(models.Model):
    """Money given back by card because a credit note was issued on a card-paid
    invoice. Created with the credit note; sent to Stripe after commit;
    confirmed by the `charge.refunded` webhook."""

    class Status(models.TextChoices):
        PENDING = "pending", _("To send to Stripe")
        REQUESTED = "requested", _("Requested from Stripe")
        SUCCEEDED = "succeeded", _("Refunded")
        FAILED = "failed", _("Failed")

    credit_note = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="refunds")
    card_payment = models.ForeignKey(CardPayment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(**MONEY)
    stripe_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    failure_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="striperefund_positive")
        ]

    def __str__(self) -> str:
        return f"{self.stripe_id or 'refund'} {self.amount}"


class StripeEvent(models.Model):
    """Each webhook event Stripe sent, stored once: its id is unique, so a replay
    finds this row and changes nothing. Unknown types are stored and ignored."""

    stripe_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(help_text=_("When Stripe created the event."))
    payload = models.JSONField()
    outcome = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self) -> str:
        return f"{self.stripe_id} {self.type}"
