"""Billing demo data for the demo platforms (called by seed_demo when billing is
installed): billing settings, tariffs per machine type and tier, consumables.
Idempotent: rows are found by their natural keys and brought back to the demo state."""

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.models import BillingSettings, Consumable, Tariff
from equipment.models import Machine, Platform

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
