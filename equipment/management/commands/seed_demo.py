"""Demo data: two labelled platforms, fourteen machines, three SMEs and their people.

Idempotent: rows are found by their natural keys and brought back to the demo
state, so running it again changes nothing and duplicates nothing."""

from datetime import time, timedelta

from allauth.account.models import EmailAddress
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from core.models import Membership, Organization, User
from equipment.models import (
    Closure,
    Label,
    Machine,
    MachineType,
    MaintenanceWindow,
    OpeningHours,
    Platform,
    PlatformMembership,
    PlatformStaff,
    Qualification,
    UserQualification,
)

PASSWORD = "fabpool-demo"

LABELS = [
    {
        "slug": "vitrine-industrie-du-futur",
        "name": "Vitrine Industrie du Futur",
        "issuer": "Alliance Industrie du Futur",
        "website": "https://www.industrie-dufutur.org/",
    },
    {
        "slug": "iot4industry",
        "name": "IoT4Industry",
        "issuer": "European Commission — IoT demonstrator programme",
        "website": "",
    },
]

MACHINE_TYPES = [
    ("fdm-printer", "3D printer (FDM)", MachineType.Category.ADDITIVE),
    ("sla-printer", "3D printer (SLA resin)", MachineType.Category.ADDITIVE),
    ("metal-printer", "3D printer (metal powder bed)", MachineType.Category.ADDITIVE),
    ("cobot", "Collaborative robot", MachineType.Category.ROBOTICS),
    ("cnc-mill", "CNC mill", MachineType.Category.SUBTRACTIVE),
    ("laser-cutter", "Laser cutter", MachineType.Category.CUTTING),
]

PLATFORMS = [
    {
        "slug": "cobotique-lyon",
        "name": "Cobotique Lyon",
        "description": "Collaborative robotics and machining platform of the Lyon basin.",
        "address_line1": "12 rue de Gerland",
        "postal_code": "69007",
        "city": "Lyon",
        "contact_email": "contact@cobotique-lyon.example",
        "labels": ["vitrine-industrie-du-futur", "iot4industry"],
        "hours": [(d, time(8), time(12, 30)) for d in range(5)]
        + [(d, time(13, 30), time(18)) for d in range(5)],
    },
    {
        "slug": "additive-nantes",
        "name": "Additive Lab Nantes",
        "description": "Additive manufacturing lab: polymer, resin and metal 3D printing.",
        "address_line1": "5 boulevard de l'Estuaire",
        "postal_code": "44200",
        "city": "Nantes",
        "contact_email": "contact@additive-nantes.example",
        "labels": ["iot4industry"],
        "hours": [(d, time(8, 30), time(19)) for d in range(5)] + [(5, time(9), time(13))],
    },
]

# (platform, type, name, specs, policy overrides)
MACHINES = [
    (
        "cobotique-lyon",
        "cobot",
        "Universal Robots UR5e",
        {"payload_kg": 5, "reach_mm": 850, "axes": 6, "repeatability_mm": 0.03},
        {"qualification_required": True, "min_duration_minutes": 60, "granularity_minutes": 30},
    ),
    (
        "cobotique-lyon",
        "cobot",
        "Universal Robots UR10e",
        {"payload_kg": 12.5, "reach_mm": 1300, "axes": 6, "repeatability_mm": 0.05},
        {"qualification_required": True, "min_duration_minutes": 60, "granularity_minutes": 30},
    ),
    (
        "cobotique-lyon",
        "cobot",
        "FANUC CRX-10iA/L",
        {"payload_kg": 10, "reach_mm": 1418, "axes": 6, "repeatability_mm": 0.04},
        {"qualification_required": True, "min_duration_minutes": 60, "granularity_minutes": 30},
    ),
    (
        "cobotique-lyon",
        "cobot",
        "KUKA LBR iisy 11 R1300",
        {"payload_kg": 11, "reach_mm": 1300, "axes": 6, "repeatability_mm": 0.15},
        {"qualification_required": True, "min_duration_minutes": 60, "granularity_minutes": 30},
    ),
    (
        "cobotique-lyon",
        "cnc-mill",
        "Haas Mini Mill 2",
        {"travel_mm": [406, 305, 254], "spindle_rpm": 10000, "tool_changer": 10, "axes": 3},
        {
            "min_duration_minutes": 120,
            "max_duration_minutes": 600,
            "buffer_after_minutes": 30,
            "granularity_minutes": 30,
            "approval_required": True,
        },
    ),
    (
        "cobotique-lyon",
        "cnc-mill",
        "DMG MORI DMU 50",
        {"travel_mm": [650, 520, 475], "spindle_rpm": 14000, "tool_changer": 30, "axes": 5},
        {
            "min_duration_minutes": 120,
            "max_duration_minutes": 600,
            "buffer_after_minutes": 30,
            "granularity_minutes": 30,
            "approval_required": True,
            "qualification_required": True,
        },
    ),
    (
        "cobotique-lyon",
        "laser-cutter",
        "Trotec Speedy 400",
        {
            "bed_mm": [1000, 610],
            "laser": "CO2",
            "power_w": 120,
            "materials": ["wood", "acrylic", "leather"],
        },
        {"buffer_after_minutes": 15},
    ),
    (
        "additive-nantes",
        "fdm-printer",
        "Prusa Core One #1",
        {"build_volume_mm": [250, 220, 270], "nozzle_mm": 0.4, "materials": ["PLA", "PETG", "ASA"]},
        {"max_duration_minutes": 48 * 60, "granularity_minutes": 30},
    ),
    (
        "additive-nantes",
        "fdm-printer",
        "Prusa Core One #2",
        {"build_volume_mm": [250, 220, 270], "nozzle_mm": 0.4, "materials": ["PLA", "PETG", "ASA"]},
        {"max_duration_minutes": 48 * 60, "granularity_minutes": 30},
    ),
    (
        "additive-nantes",
        "fdm-printer",
        "UltiMaker S7",
        {
            "build_volume_mm": [330, 240, 300],
            "extruders": 2,
            "materials": ["PLA", "Tough PLA", "PVA"],
        },
        {"max_duration_minutes": 72 * 60, "granularity_minutes": 30},
    ),
    (
        "additive-nantes",
        "sla-printer",
        "Formlabs Form 4",
        {
            "build_volume_mm": [200, 125, 210],
            "xy_resolution_um": 50,
            "materials": ["Grey", "Tough 2000"],
        },
        {"buffer_after_minutes": 30, "max_duration_minutes": 24 * 60},
    ),
    (
        "additive-nantes",
        "sla-printer",
        "Formlabs Form 4L",
        {
            "build_volume_mm": [353, 196, 350],
            "xy_resolution_um": 50,
            "materials": ["Grey", "Clear"],
        },
        {"buffer_after_minutes": 30, "max_duration_minutes": 24 * 60},
    ),
    (
        "additive-nantes",
        "metal-printer",
        "EOS M 290",
        {
            "build_volume_mm": [250, 250, 325],
            "laser_w": 400,
            "materials": ["316L", "AlSi10Mg", "Ti64"],
        },
        {
            "min_duration_minutes": 240,
            "max_duration_minutes": 5 * 24 * 60,
            "granularity_minutes": 60,
            "buffer_after_minutes": 240,
            "min_notice_minutes": 48 * 60,
            "approval_required": True,
            "qualification_required": True,
        },
    ),
    (
        "additive-nantes",
        "laser-cutter",
        "Trotec Speedy 360",
        {
            "bed_mm": [813, 508],
            "laser": "CO2",
            "power_w": 80,
            "materials": ["wood", "acrylic", "cardboard"],
        },
        {"buffer_after_minutes": 15},
    ),
]

ORGANIZATIONS = [
    {
        "key": "mps",
        "legal_name": "Mécanique Précision Savoie SAS",
        "siret": "81234567600017",
        "vat_number": "FR19812345676",
        "address_line1": "8 avenue des Glaisins",
        "postal_code": "74940",
        "city": "Annecy",
        "billing_email": "compta@mps-savoie.example",
        "platforms": {"cobotique-lyon": "member", "additive-nantes": "standard"},
        "people": [
            ("claire.martin@mps-savoie.example", "Claire Martin", "admin"),
            ("hugo.bernard@mps-savoie.example", "Hugo Bernard", "member"),
            ("compta@mps-savoie.example", "Nadia Roux", "accountant"),
        ],
    },
    {
        "key": "lumiere",
        "legal_name": "Atelier Lumière SARL",
        "siret": "79845612500011",
        "vat_number": "FR44798456125",
        "address_line1": "21 quai de la Fosse",
        "postal_code": "44000",
        "city": "Nantes",
        "billing_email": "gestion@atelier-lumiere.example",
        "platforms": {"additive-nantes": "member"},
        "people": [
            ("ines.leroy@atelier-lumiere.example", "Inès Leroy", "admin"),
            ("tom.garnier@atelier-lumiere.example", "Tom Garnier", "member"),
            ("gestion@atelier-lumiere.example", "Paul Morel", "accountant"),
        ],
    },
    {
        "key": "robotix",
        "legal_name": "Robotix Conseil SAS",
        "siret": "88412039500014",
        "vat_number": "FR84884120395",
        "address_line1": "3 rue du Progrès",
        "postal_code": "69100",
        "city": "Villeurbanne",
        "billing_email": "finance@robotix-conseil.example",
        "platforms": {"cobotique-lyon": "partner"},
        "people": [
            ("julien.faure@robotix-conseil.example", "Julien Faure", "admin"),
            ("emma.petit@robotix-conseil.example", "Emma Petit", "member"),
            ("finance@robotix-conseil.example", "Léa Girard", "accountant"),
        ],
    },
]

STAFF = [
    ("manager@cobotique-lyon.example", "Sophie Lambert", "cobotique-lyon", "manager"),
    ("operator@cobotique-lyon.example", "Karim Haddad", "cobotique-lyon", "operator"),
    ("accounting@cobotique-lyon.example", "Anne Dubois", "cobotique-lyon", "accountant"),
    ("manager@additive-nantes.example", "Yann Le Gall", "additive-nantes", "manager"),
    ("operator@additive-nantes.example", "Chloé Moreau", "additive-nantes", "operator"),
    ("accounting@additive-nantes.example", "Marc Fontaine", "additive-nantes", "accountant"),
]

SUPERUSER = ("admin@fabpool.example", "fabpool administrator")


def _person(email: str, full_name: str, *, superuser: bool = False) -> User:
    user, _ = User.objects.update_or_create(
        email=email,
        defaults={"full_name": full_name, "is_superuser": superuser, "is_staff": superuser},
    )
    if not user.check_password(PASSWORD):
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user


class Command(BaseCommand):
    help = "Load (or refresh) the demo platforms, machines, SMEs and logins."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            # The demo logins share a published password, a superuser among them.
            raise CommandError("seed_demo refuses to run with FABPOOL_ENV=production.")
        self.load()
        # Billing is another app, which equipment does not import: named, not imported.
        if apps.is_installed("billing"):
            call_command("seed_billing_demo", stdout=self.stdout)

    @transaction.atomic
    def load(self):
        labels = {
            spec["slug"]: Label.objects.update_or_create(slug=spec["slug"], defaults=spec)[0]
            for spec in LABELS
        }
        types = {
            slug: MachineType.objects.update_or_create(
                slug=slug, defaults={"name": name, "category": category}
            )[0]
            for slug, name, category in MACHINE_TYPES
        }

        platforms = {}
        for spec in PLATFORMS:
            spec = dict(spec)
            label_slugs, hours = spec.pop("labels"), spec.pop("hours")
            platform, _ = Platform.objects.update_or_create(slug=spec["slug"], defaults=spec)
            platform.labels.set([labels[slug] for slug in label_slugs])
            for weekday, opens_at, closes_at in hours:
                OpeningHours.objects.get_or_create(
                    platform=platform, weekday=weekday, opens_at=opens_at, closes_at=closes_at
                )
            year = timezone.now().year
            Closure.objects.get_or_create(
                platform=platform,
                start_date=f"{year}-12-24",
                defaults={"end_date": f"{year + 1}-01-01", "reason": "Winter holidays"},
            )
            platforms[platform.slug] = platform

        machines = {}
        for platform_slug, type_slug, name, specs, policy in MACHINES:
            machine, _ = Machine.objects.update_or_create(
                platform=platforms[platform_slug],
                name=name,
                defaults={"machine_type": types[type_slug], "specs": specs, **policy},
            )
            machines[name] = machine

        # A maintenance window next week, created once.
        eos = machines["EOS M 290"]
        if not eos.maintenance_windows.exists():
            monday = timezone.localdate() + timedelta(days=7 - timezone.localdate().weekday())
            start = timezone.make_aware(
                timezone.datetime.combine(monday, time(8)), eos.platform.tzinfo
            )
            MaintenanceWindow.objects.create(
                machine=eos,
                start=start,
                end=start + timedelta(hours=10),
                reason="Annual laser calibration",
            )

        cobot_training, _ = Qualification.objects.update_or_create(
            platform=platforms["cobotique-lyon"],
            name="Cobot safety training",
            defaults={
                "machine_type": types["cobot"],
                "description": "ISO 10218 / TS 15066 basics.",
            },
        )
        dmu_training, _ = Qualification.objects.update_or_create(
            platform=platforms["cobotique-lyon"],
            name="5-axis machining on the DMU 50",
            defaults={"machine": machines["DMG MORI DMU 50"]},
        )
        eos_training, _ = Qualification.objects.update_or_create(
            platform=platforms["additive-nantes"],
            name="Metal powder handling and EOS M 290",
            defaults={"machine": eos},
        )

        logins = []
        admin = _person(*SUPERUSER, superuser=True)
        logins.append((admin.email, "superuser (Django admin at /admin/)"))
        staff_by_platform = {}
        for email, name, platform_slug, role in STAFF:
            user = _person(email, name)
            PlatformStaff.objects.update_or_create(
                user=user, platform=platforms[platform_slug], defaults={"role": role}
            )
            staff_by_platform.setdefault(platform_slug, user)
            logins.append((email, f"platform {role}, {platforms[platform_slug].name}"))

        for spec in ORGANIZATIONS:
            org_fields = {k: v for k, v in spec.items() if k not in {"key", "platforms", "people"}}
            organization, _ = Organization.objects.update_or_create(
                siret=spec["siret"], defaults=org_fields
            )
            for platform_slug, tier in spec["platforms"].items():
                PlatformMembership.objects.update_or_create(
                    organization=organization,
                    platform=platforms[platform_slug],
                    defaults={"tier": tier},
                )
            for email, name, role in spec["people"]:
                user = _person(email, name)
                Membership.objects.update_or_create(
                    user=user, organization=organization, defaults={"role": role}
                )
                logins.append((email, f"SME {role}, {organization.legal_name}"))
                if role != "member":
                    continue
                grants = {
                    "cobotique-lyon": [cobot_training, dmu_training],
                    "additive-nantes": [eos_training],
                }
                for platform_slug in spec["platforms"]:
                    for qualification in grants[platform_slug]:
                        UserQualification.objects.get_or_create(
                            user=user,
                            qualification=qualification,
                            defaults={
                                "granted_by": staff_by_platform[platform_slug],
                                "granted_on": timezone.localdate(),
                                "expires_on": timezone.localdate() + timedelta(days=365),
                            },
                        )

        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Logins (password: {PASSWORD}):"))
        width = max(len(email) for email, _ in logins)
        for email, what in logins:
            self.stdout.write(f"  {email.ljust(width)}  {what}")
