"""REST API for billing: thin views over billing.services and billing.runs."""

from decimal import Decimal

from django.db.models import Prefetch, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from billing import payments, runs, services
from billing.models import (
    BillingRun,
    BillingSettings,
    CardPayment,
    Consumable,
    ConsumableUse,
    FundingAllocation,
    FundingProgramme,
    Invoice,
    InvoiceLine,
    Payment,
    Tariff,
    money,
)
from billing.selectors import PaymentStatus, with_balance
from booking.models import Booking
from core.api.filters import MAX_ID, IdFilter, IdFilterSet
from core.errors import NotVisible
from core.models import Organization
from equipment.api import VisibleMachineField, VisiblePlatformField

# --- Settings and price lists ------------------------------------------------------------------


class BillingSettingsSerializer(serializers.ModelSerializer):
    platform = VisiblePlatformField()

    class Meta:
        model = BillingSettings
        validators = []  # the prefix's uniqueness is checked by clean(), which names the field
        fields = [
            "id",
            "platform",
            "legal_name",
            "address_line1",
            "address_line2",
            "postal_code",
            "city",
            "country",
            "siret",
            "vat_number",
            "invoice_prefix",
            "payment_terms_days",
            "late_payment_mentions",
            "billable_time",
            "iban",
            "bic",
            "journal_code",
            "journal_label",
            "customer_account",
            "customer_auxiliary_prefix",
            "revenue_account",
            "vat_account",
        ]
        extra_kwargs = {"invoice_prefix": {"validators": []}}


class BillingSettingsViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """How a platform invoices: the seller's identity, the number prefix
    (PREFIX-YYYY-000001), payment terms, late-payment mentions and which time is
    billed. Platform staff read them; managers and accountants edit them."""

    serializer_class = BillingSettingsSerializer
    filterset_fields = ["platform"]

    def get_queryset(self):
        return BillingSettings.objects.visible_to(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.create_billing_settings(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_billing_settings(
            settings=serializer.instance, by=self.request.user, data=serializer.validated_data
        )


class TariffSerializer(serializers.ModelSerializer):
    platform = VisiblePlatformField()
    machine = VisibleMachineField(required=False, allow_null=True)

    class Meta:
        model = Tariff
        fields = [
            "id",
            "platform",
            "machine",
            "machine_type",
            "tier",
            "valid_from",
            "valid_until",
            "hourly_rate",
            "increment_minutes",
            "minimum_minutes",
            "setup_fee",
            "late_cancellation_share",
            "no_show_share",
            "vat_rate",
        ]


class TariffViewSet(viewsets.ModelViewSet):
    """Hourly rates per machine or machine type (or the whole platform) and per
    membership tier, with their validity; the most specific one applies. Two
    tariffs of the same scope may not be valid on the same day (400)."""

    serializer_class = TariffSerializer
    filterset_fields = ["platform", "machine", "machine_type", "tier"]

    def get_queryset(self):
        return Tariff.objects.visible_to(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.create_tariff(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_tariff(
            tariff=serializer.instance, by=self.request.user, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.delete_tariff(tariff=instance, by=self.request.user)


class ConsumableSerializer(serializers.ModelSerializer):
    platform = VisiblePlatformField()

    class Meta:
        model = Consumable
        validators = []  # the name's uniqueness is checked by clean(), which names the field
        fields = ["id", "platform", "name", "unit", "unit_price", "vat_rate", "is_active"]


class ConsumableViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Material sold by the unit. Take one off sale with `is_active: false`."""

    serializer_class = ConsumableSerializer
    filterset_fields = ["platform", "is_active"]

    def get_queryset(self):
        return Consumable.objects.visible_to(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.create_consumable(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_consumable(
            consumable=serializer.instance, by=self.request.user, data=serializer.validated_data
        )


class VisibleBookingField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return Booking.objects.visible_to(self.context["request"].user).select_related(
            "machine__platform"
        )


class VisibleConsumableField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return Consumable.objects.visible_to(self.context["request"].user)


class ConsumableUseSerializer(serializers.ModelSerializer):
    booking = VisibleBookingField()
    consumable = VisibleConsumableField()
    recorded_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = ConsumableUse
        fields = ["id", "booking", "consumable", "quantity", "note", "recorded_by", "recorded_at"]


class ConsumableUseViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Consumables used during a booking, recorded by the platform's managers and
    operators once it is checked in (at check-out or after); billed in the month
    they are recorded. A mistaken entry is deleted while not on an issued invoice."""

    serializer_class = ConsumableUseSerializer
    filterset_fields = ["booking", "consumable"]

    def get_queryset(self):
        return ConsumableUse.objects.visible_to(self.request.user).select_related(
            "recorded_by", "booking__machine__platform"
        )

    def perform_create(self, serializer):
        serializer.instance = services.record_consumable_use(
            by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.delete_consumable_use(use=instance, by=self.request.user)


# --- Funding programmes ------------------------------------------------------------------------


class FundingProgrammeSerializer(serializers.ModelSerializer):
    organizations = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.all(), many=True, required=False
    )
    spent = serializers.SerializerMethodField()

    class Meta:
        model = FundingProgramme
        fields = [
            "id",
            "label",
            "name",
            "share",
            "budget",
            "spent",
            "starts_on",
            "ends_on",
            "organizations",
        ]

    def get_spent(self, programme) -> str:
        return f"{getattr(programme, 'spent_total', None) or 0:.2f}"


class AllocationSerializer(serializers.ModelSerializer):
    platform = serializers.IntegerField(source="usage.platform_id")
    organization = serializers.IntegerField(source="usage.organization_id")
    organization_name = serializers.CharField(source="usage.organization.legal_name")
    booking = serializers.IntegerField(source="usage.booking_id")
    occurred_at = serializers.DateTimeField(source="usage.occurred_at")
    machine_time_amount = serializers.DecimalField(
        source="usage.amount", max_digits=12, decimal_places=2
    )
    invoice = serializers.IntegerField(source="usage.invoice_id", allow_null=True)
    invoice_number = serializers.CharField(source="usage.invoice.number", allow_null=True)

    class Meta:
        model = FundingAllocation
        fields = [
            "id",
            "platform",
            "organization",
            "organization_name",
            "booking",
            "occurred_at",
            "machine_time_amount",
            "amount",
            "invoice",
            "invoice_number",
        ]


class FundingReportSerializer(serializers.Serializer):
    programme = FundingProgrammeSerializer()
    remaining = serializers.DecimalField(max_digits=12, decimal_places=2)
    allocations = AllocationSerializer(many=True)


class FundingProgrammeViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Programmes of a label co-financing a share of SMEs' machine time on the
    platforms carrying it, up to a budget, over a period (fabpool's administrators
    manage them). `spent` counts what billing runs allocated, drafts included."""

    serializer_class = FundingProgrammeSerializer
    filterset_fields = ["label"]

    def get_queryset(self):
        return (
            FundingProgramme.objects.visible_to(self.request.user)
            .annotate(spent_total=Sum("allocations__amount"))
            .prefetch_related("organizations")
            .order_by("starts_on", "pk")
        )

    def perform_create(self, serializer):
        serializer.instance = services.create_funding_programme(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_funding_programme(
            programme=serializer.instance, by=self.request.user, data=serializer.validated_data
        )

    @extend_schema(responses={200: FundingReportSerializer})
    @action(detail=True, methods=["get"])
    def report(self, request, pk=None):
        """What the programme financed: one row per funded booking. Platform managers
        and accountants see their platforms' rows; administrators see all."""
        programme = self.get_object()
        allocations = services.funding_report(programme=programme, by=request.user)
        remaining = programme.budget - (programme.spent_total or 0)
        body = {"programme": programme, "remaining": remaining, "allocations": allocations}
        return Response(FundingReportSerializer(body).data)


# --- Billing runs ------------------------------------------------------------------------------


class MonthField(serializers.CharField):
    """A month as YYYY-MM."""

    def to_internal_value(self, data):
        month = runs.parse_month(super().to_internal_value(data))
        if month is None:
            raise serializers.ValidationError(_("Give a month as YYYY-MM, e.g. 2026-10."))
        return month

    def to_representation(self, value):
        return f"{value:%Y-%m}"


class BillingRunSerializer(serializers.ModelSerializer):
    platform = VisiblePlatformField()
    month = MonthField(source="period_start", help_text="YYYY-MM")
    started_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = BillingRun
        fields = ["id", "platform", "month", "started_by", "started_at", "finished_at", "report"]
        read_only_fields = ["started_at", "finished_at", "report"]


class BillingRunViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Bill a platform's month: one draft invoice per organization with a line per
    booking, fee and consumable. Idempotent: running it again updates the drafts
    and adds nothing twice; organizations whose invoice is issued are left alone.
    Platform accountants run it; `report` says what it did and what it could not price."""

    serializer_class = BillingRunSerializer
    filterset_fields = ["platform"]

    def get_queryset(self):
        return BillingRun.objects.visible_to(self.request.user).select_related("started_by")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = runs.bill_period(
            platform=data["platform"], month=data["period_start"], by=self.request.user
        )


# --- Invoices ----------------------------------------------------------------------------------


class PaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = ["id", "amount", "method", "reference", "received_on", "created_at"]


class NewPaymentSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text="Defaults to what remains due.",
    )
    received_on = serializers.DateField(
        required=False, help_text="Defaults to today; not before 2000 nor after today."
    )
    reference = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class LineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = [
            "id",
            "kind",
            "description",
            "service_date",
            "quantity",
            "unit",
            "unit_price",
            "vat_rate",
            "amount",
            "booking",
        ]
        read_only_fields = fields


class CardPaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = CardPayment
        fields = [
            "id",
            "invoice",
            "attempt",
            "kind",
            "payment_intent",
            "amount",
            "currency",
            "status",
            "failure_message",
            "amount_refunded",
            "created_at",
        ]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    lines = LineSerializer(many=True, read_only=True)
    payments = PaymentSerializer(many=True, read_only=True)
    card_payments = CardPaymentSerializer(many=True, read_only=True)
    organization_name = serializers.CharField(source="organization.legal_name", read_only=True)
    amount_paid = serializers.SerializerMethodField()
    remaining_due = serializers.SerializerMethodField()
    payment_status = serializers.CharField(
        read_only=True,
        help_text="draft, credit_note, due, overdue, paid or credited (wholly, by credit notes).",
    )
    paid = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = [
            "id",
            "platform",
            "organization",
            "organization_name",
            "kind",
            "status",
            "number",
            "period_start",
            "period_end",
            "credited_invoice",
            "currency",
            "issue_date",
            "due_date",
            "payment_terms_days",
            "late_payment_mentions",
            "seller_name",
            "seller_address",
            "seller_country",
            "seller_siret",
            "seller_vat_number",
            "buyer_name",
            "buyer_address",
            "buyer_country",
            "buyer_siret",
            "buyer_vat_number",
            "total_without_tax",
            "total_vat",
            "total_with_tax",
            "vat_breakdown",
            "lines",
            "payments",
            "card_payments",
            "amount_paid",
            "remaining_due",
            "payment_status",
            "paid",
            "issued_at",
            "previous_hash",
            "hash",
            "created_at",
        ]
        read_only_fields = fields

    # From the view's annotations (billing.selectors.with_balance): no query per invoice.
    def get_amount_paid(self, invoice) -> str:
        return f"{invoice.amount_paid_total:.2f}"

    def get_remaining_due(self, invoice) -> str | None:
        """What is still to pay: the total less payments and issued credit notes
        (negative when overpaid); null for drafts and credit notes."""
        if not invoice.is_issued or invoice.kind != Invoice.Kind.INVOICE:
            return None
        return f"{money(invoice.balance_due):.2f}"

    def get_paid(self, invoice) -> bool:
        return invoice.payment_status == PaymentStatus.PAID


class InvoiceFilter(IdFilterSet):
    platform = IdFilter()
    organization = IdFilter()

    class Meta:
        model = Invoice
        fields = ["platform", "organization", "kind", "status", "period_start"]


class NoBodySerializer(serializers.Serializer):
    pass


class CardPaymentStartSerializer(CardPaymentSerializer):
    client_secret = serializers.CharField(read_only=True)

    class Meta(CardPaymentSerializer.Meta):
        fields = [*CardPaymentSerializer.Meta.fields, "client_secret"]
        read_only_fields = fields


class ChargeSavedCardSerializer(serializers.Serializer):
    payment_method = serializers.RegexField(
        r"^(pm|card|src)_[A-Za-z0-9]{1,200}$",
        required=False,
        help_text="A saved card of the organization (pm_…); defaults to its default card.",
    )


class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Invoices and credit notes. A platform's managers and accountants see all of
    its documents, drafts included; an SME's administrators and accountants see
    its issued ones. Accountants issue drafts, credit issued invoices and record
    bank transfers."""

    serializer_class = InvoiceSerializer
    filterset_class = InvoiceFilter
    ordering_fields = ["created_at", "issue_date", "number"]

    def get_queryset(self):
        return (
            with_balance(Invoice.objects.visible_to(self.request.user), timezone.localdate())
            .select_related("organization")
            .prefetch_related(
                Prefetch("lines", queryset=InvoiceLine.objects.order_by("service_date", "pk")),
                "payments",
                Prefetch("card_payments", queryset=CardPayment.objects.order_by("attempt")),
            )
        )

    def _answer(self, invoice, code=status.HTTP_200_OK):
        invoice = self.get_queryset().get(pk=invoice.pk)
        return Response(InvoiceSerializer(invoice).data, status=code)

    @extend_schema(request=NoBodySerializer, responses={200: InvoiceSerializer})
    @action(detail=True, methods=["post"], serializer_class=NoBodySerializer)
    def issue(self, request, pk=None):
        """Number the draft (next number of the platform's series, no gaps), copy
        seller and buyer identity, fix its dates and totals, chain its hash. From
        then on it never changes. 400 for an empty draft, 409 if already issued."""
        invoice = services.issue_invoice(invoice=self.get_object(), by=request.user)
        return self._answer(invoice)

    @extend_schema(request=NoBodySerializer, responses={201: InvoiceSerializer})
    @action(
        detail=True, methods=["post"], url_path="credit-note", serializer_class=NoBodySerializer
    )
    def credit_note(self, request, pk=None):
        """A draft credit note repeating the issued invoice's lines; edit its lines
        for a partial credit, then issue it."""
        note = services.create_credit_note(invoice=self.get_object(), by=request.user)
        return self._answer(note, status.HTTP_201_CREATED)

    @extend_schema(request=NewPaymentSerializer, responses={201: PaymentSerializer})
    @action(detail=True, methods=["post"], serializer_class=NewPaymentSerializer)
    def payments(self, request, pk=None):
        """Record a payment received by bank transfer (all that remains due by default)."""
        serializer = NewPaymentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payment = services.record_payment(
            invoice=self.get_object(),
            by=request.user,
            amount=data.get("amount"),
            received_on=data.get("received_on"),
            reference=data["reference"],
        )
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=NoBodySerializer,
        responses={
            201: CardPaymentStartSerializer,
            502: OpenApiResponse(description="Stripe did not answer as expected."),
        },
    )
    @action(
        detail=True, methods=["post"], url_path="pay-by-card", serializer_class=NoBodySerializer
    )
    def pay_by_card(self, request, pk=None):
        """Pay an issued invoice by card (the SME's administrators and accountants):
        a Stripe PaymentIntent for what remains due; confirm it in the browser with
        Stripe.js and `client_secret`. The invoice is marked paid when Stripe's
        webhook confirms the payment. 409 for a paid invoice (`invoice_paid`) or when
        card payments are not set up (`payments_not_configured`)."""
        card, secret = payments.pay_by_card(invoice=self.get_object(), by=request.user)
        body = {**CardPaymentSerializer(card).data, "client_secret": secret}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=ChargeSavedCardSerializer,
        responses={
            201: CardPaymentSerializer,
            402: OpenApiResponse(description="The card was declined (the attempt is recorded)."),
            502: OpenApiResponse(description="Stripe did not answer as expected."),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="charge-saved-card",
        serializer_class=ChargeSavedCardSerializer,
    )
    def charge_saved_card(self, request, pk=None):
        """Charge the organization's saved card off-session for what remains due
        (platform accountants): its default card, or `payment_method`. 402
        `card_declined` when the bank refuses (the failed attempt is kept)."""
        serializer = ChargeSavedCardSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        card = payments.charge_saved_card(
            invoice=self.get_object(),
            by=request.user,
            payment_method=serializer.validated_data.get("payment_method") or None,
        )
        return Response(CardPaymentSerializer(card).data, status=status.HTTP_201_CREATED)


class VisibleInvoiceField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return Invoice.objects.visible_to(self.context["request"].user).select_related("platform")


class InvoiceLineSerializer(serializers.ModelSerializer):
    invoice = VisibleInvoiceField()

    class Meta:
        model = InvoiceLine
        fields = [
            "id",
            "invoice",
            "kind",
            "description",
            "service_date",
            "quantity",
            "unit",
            "unit_price",
            "vat_rate",
            "amount",
            "booking",
        ]
        read_only_fields = ["kind", "amount", "booking"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance is not None:
            self.fields["invoice"].read_only = True  # a line stays on its invoice


class InvoiceLineFilter(IdFilterSet):
    invoice = IdFilter()

    class Meta:
        model = InvoiceLine
        fields = ["invoice", "kind"]


class InvoiceLineViewSet(viewsets.ModelViewSet):
    """Lines of the invoices you see. Accountants add, change and remove lines of
    drafts (the amount is quantity × unit price, rounded half up to the cent);
    an issued invoice's lines never change (409). A removed line billed from usage
    stays out of later billing runs."""

    serializer_class = InvoiceLineSerializer
    filterset_class = InvoiceLineFilter

    def get_queryset(self):
        return InvoiceLine.objects.visible_to(self.request.user).select_related("invoice__platform")

    def perform_create(self, serializer):
        serializer.instance = services.add_line(by=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_line(
            line=serializer.instance, by=self.request.user, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.remove_line(line=instance, by=self.request.user)


# --- Saved cards ---------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.INT)
class VisibleOrganizationField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return Organization.objects.visible_to(self.context["request"].user)


class CardSetupRequestSerializer(serializers.Serializer):
    organization = VisibleOrganizationField(help_text="Your organization the card is for.")


class CardSetupSerializer(serializers.Serializer):
    setup_intent = serializers.CharField(read_only=True)
    client_secret = serializers.CharField(read_only=True)


class SaveCardSerializer(CardSetupRequestSerializer):
    setup_intent = serializers.RegexField(
        r"^seti_[A-Za-z0-9]{1,200}$",
        help_text="The SetupIntent the browser confirmed (seti_…).",
    )


class SavedCardSerializer(serializers.Serializer):
    payment_method = serializers.CharField(read_only=True)
    brand = serializers.CharField(read_only=True)
    last4 = serializers.CharField(read_only=True)
    exp_month = serializers.IntegerField(read_only=True)
    exp_year = serializers.IntegerField(read_only=True)


class SavedCardViewSet(viewsets.GenericViewSet):
    """An organization's saved card, which its platforms may charge off-session
    (`…/invoices/{id}/charge-saved-card/`). Its administrators and accountants set
    it up (`setup/`, then confirm the card in the browser with Stripe.js), save it,
    see it and remove it; the id in the path is the organization's. Stripe holds
    the card: fabpool shows its brand, last four digits and expiry, never more."""

    queryset = Organization.objects.none()  # for the schema; get_object() reads visible_to
    serializer_class = SavedCardSerializer

    def get_object(self):
        pk = str(self.kwargs["pk"])
        visible = Organization.objects.visible_to(self.request.user)
        known = pk.isdigit() and int(pk) <= MAX_ID
        organization = visible.filter(pk=int(pk)).first() if known else None
        if organization is None:
            raise NotVisible(_("No such organization."))
        return organization

    @extend_schema(
        request=CardSetupRequestSerializer,
        responses={201: CardSetupSerializer, 502: OpenApiResponse(description="Stripe failed.")},
    )
    @action(detail=False, methods=["post"], serializer_class=CardSetupRequestSerializer)
    def setup(self, request):
        """Start saving a card: a Stripe SetupIntent for off-session use. Confirm it
        in the browser with Stripe.js and `client_secret`, then post its id here
        (`POST /saved-cards/`). 409 `payments_not_configured` without Stripe."""
        serializer = CardSetupRequestSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        setup_intent, secret = payments.start_card_setup(
            organization=serializer.validated_data["organization"], by=request.user
        )
        body = {"setup_intent": setup_intent, "client_secret": secret}
        return Response(CardSetupSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=SaveCardSerializer,
        responses={201: SavedCardSerializer, 502: OpenApiResponse(description="Stripe failed.")},
    )
    def create(self, request):
        """Save the card of a confirmed SetupIntent as the organization's default
        card (replacing the one before). 409 `card_setup_incomplete` before the
        browser has confirmed it."""
        serializer = SaveCardSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        card = payments.save_card(by=request.user, **serializer.validated_data)
        return Response(SavedCardSerializer(card).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: SavedCardSerializer})
    def retrieve(self, request, pk=None):
        """The organization's saved card; 404 `no_saved_card` when it has none."""
        card = payments.saved_card(organization=self.get_object(), by=request.user)
        if card is None:
            raise NotVisible(_("This organization has no saved card."), code="no_saved_card")
        return Response(SavedCardSerializer(card).data)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, pk=None):
        """Remove the saved card: it can no longer be charged (204, also when none)."""
        payments.remove_saved_card(organization=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
