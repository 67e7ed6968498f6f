"""Billing demo data for the demo platforms (called by seed_demo when billing is
installed): billing settings, tariffs per machine type and tier, consumables, and
two past months of machine time: the month before last billed and issued (one
invoice paid), last month left for the platforms' accountants to run.
Idempotent: rows are found by their natural keys and brought back to the demo state;
a month already billed is not billed again."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from billing.models import BillingSettings, Consumable, ConsumableUse, Invoice, Payment, Tariff
from billing.runs import bill_period
from billing.services import issue_invoice, record_payment
from booking.models import Booking
from core.models import Membership
from equipment.models import Machine, Platform, PlatformMembership, PlatformStaff

SELLERS = {
    "cobotique-lyon": {
        "legal_name": "Cobotique Lyon SAS",
        "address_line1": "12 rue de Gerland",
        "postal_code": "69007",
        "city": "Lyon",
        "siret": "73282932000074",
        "vat_number": "FR44732829320",
        "invoice_prefix": "COBL",
        "billable_time": BillingSettings.BillableTime.ACTUAL,
        "iban": "FR7630006000011234567890189",
        "bic": "AGRIFRPP",
    },
    "additive-nantes": {
        "legal_name": "Additive Lab Nantes SAS",
        "address_line1": "5 boulevard de l'Estuaire",
        "postal_code": "44200",
        "city": "Nantes",
        "siret": "44112233000018",
        "vat_number": "FR76441122330",
        "invoice_prefix": "ADLN",
        "billable_time": BillingSettings.BillableTime.BOOKED,
        "iban": "FR1420041010050500013M02606",
        "bic": "PSSTFRPPNTE",
    },
}
# Hourly rates per machine type (standard tier); members pay 80 %, partners 70 %.
RATES = {
    "fdm-printer": "18.00",
    "sla-printer": "25.00",
    "metal-printer": "160.00",
    "cobot": "45.00",
    "cnc-mill": "85.00",
    "laser-cutter": "40.00",
}
SETUP_FEES = {"metal-printer": "150.00", "cnc-mill": "30.00"}
TIERS = {"": Decimal(1), "member": Decimal("0.8"), "partner": Decimal("0.7")}
CONSUMABLES = [
    ("PLA filament", "g", "0.0450"),
    ("Photopolymer resin", "ml", "0.1800"),
    ("Plywood sheet 600×400×3 mm", "sheet", "4.5000"),
]


class Command(BaseCommand):
    help = "Load (or refresh) billing settings, tariffs and consumables for the demo platforms."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("seed_billing_demo refuses to run with FABPOOL_ENV=production.")
        self.load()
        self.history()

    @transaction.atomic
    def load(self):
        for slug, seller in SELLERS.items():
            platform = Platform.objects.filter(slug=slug).first()
            if platform is None:
                continue  # seed_demo makes the platforms first
            BillingSettings.objects.update_or_create(platform=platform, defaults=seller)
            types = (
                Machine.objects.filter(platform=platform)
                .values_list("machine_type_id", "machine_type__slug")
                .distinct()
            )
            for type_id, type_slug in types:
                for tier, factor in TIERS.items():
                    Tariff.objects.update_or_create(
                        platform=platform,
                        machine=None,
                        machine_type_id=type_id,
                        tier=tier,
                        valid_from=date(2026, 1, 1),
                        defaults={
                            "hourly_rate": (
                                Decimal(RATES.get(type_slug, "30.00")) * factor
                            ).quantize(Decimal("0.01")),
                            "setup_fee": Decimal(SETUP_FEES.get(type_slug, "0")),
                            "increment_minutes": 15,
                            "minimum_minutes": 30,
                        },
                    )
            for name, unit, price in CONSUMABLES:
                Consumable.objects.update_or_create(
                    platform=platform, name=name, defaults={"unit": unit, "unit_price": price}
                )
        self.stdout.write("Billing demo data ready.")

    # --- Past machine time ---------------------------------------------------------------------

    # (day of the month, start hour, hours, what happened) for each organization and month.
    PAST = [
        (3, 9, 2, Booking.Status.COMPLETED),
        (9, 14, 3, Booking.Status.COMPLETED),
        (16, 10, 1, Booking.Status.NO_SHOW),
        (22, 9, 4, Booking.Status.COMPLETED),
    ]

    def history(self):
        """The month before last billed and issued, last month booked but not billed."""
        today = timezone.localdate()
        last = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        before = (last - timedelta(days=1)).replace(day=1)
        for platform in Platform.objects.filter(slug__in=SELLERS).order_by("slug"):
            with transaction.atomic():
                for month in (before, last):
                    self.book_month(platform, month)
            accountant = (
                PlatformStaff.objects.filter(platform=platform, role=PlatformStaff.Role.ACCOUNTANT)
                .select_related("user")
                .first()
            )
            already = Invoice.objects.filter(platform=platform, period_start=before).exists()
            if accountant is None or already:
                continue
            bill_period(platform=platform, month=before, by=accountant.user)
            drafts = Invoice.objects.filter(
                platform=platform, period_start=before, status=Invoice.Status.DRAFT
            ).order_by("organization__legal_name")
            for n, draft in enumerate(drafts):
                issued = issue_invoice(invoice=draft, by=accountant.user)
                if n == 0 and not Payment.objects.filter(invoice=issued).exists():
                    record_payment(invoice=issued, by=accountant.user, reference="VIR SEPA DEMO")

    def book_month(self, platform: Platform, month: date) -> None:
        tz = platform.tzinfo
        machines = list(
            Machine.objects.filter(platform=platform, is_active=True)
            .select_related("machine_type")
            .order_by("name")
        )
        operator = PlatformStaff.objects.filter(
            platform=platform, role=PlatformStaff.Role.OPERATOR
        ).first()
        filament = Consumable.objects.filter(platform=platform, name="PLA filament").first()
        organizations = PlatformMembership.objects.filter(platform=platform).order_by(
            "organization__legal_name"
        )
        for n, membership in enumerate(organizations):
            booker = (
                Membership.objects.filter(
                    organization_id=membership.organization_id, role=Membership.Role.MEMBER
                )
                .select_related("user")
                .first()
            )
            if booker is None or not machines:
                continue
            for i, (day, hour, hours, status) in enumerate(self.PAST):
                machine = machines[(n * 2 + i) % len(machines)]
                when = month.replace(day=day)
                while when.weekday() >= 5:  # the labs are open on weekdays
                    when += timedelta(days=1)
                start = datetime.combine(when, time(hour + n % 2), tzinfo=tz)
                end = start + timedelta(hours=hours)
                done = status == Booking.Status.COMPLETED
                booking, created = Booking.objects.get_or_create(
                    machine=machine,
                    start=start,
                    defaults={
                        "organization_id": membership.organization_id,
                        "booked_by": booker.user,
                        "end": end,
                        "blocked_until": end,
                        "status": status,
                        "title": "Demo",
                        "checked_in_at": start + timedelta(minutes=5) if done else None,
                        "checked_out_at": end - timedelta(minutes=10) if done else None,
                    },
                )
                fdm = machine.machine_type.slug == "fdm-printer"
                if created and done and fdm and filament and operator:
                    use = ConsumableUse.objects.create(
                        booking=booking,
                        consumable=filament,
                        quantity=Decimal(120 + 40 * i),
                        recorded_by=operator.user,
                    )
                    # Billed in the month it is recorded: the day of the booking.
                    ConsumableUse.objects.filter(pk=use.pk).update(recorded_at=end)
