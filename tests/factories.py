from datetime import time, timedelta

import factory
from allauth.account.models import EmailAddress
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

PASSWORD = "correct-horse-battery"

# Valid SIRET numbers (Luhn) and the matching French VAT numbers.
SIRETS = ["81234567600017", "79845612500011", "88412039500014", "73282932000074"]


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified(user, create, extracted, **kwargs):
        if create and extracted is not False:
            EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        user.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    legal_name = factory.Sequence(lambda n: f"SME number {n} SAS")
    # Foreign organizations need no SIRET, so factories never clash on it.
    country = "DE"
    city = "Berlin"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.MEMBER


class LabelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Label

    name = factory.Sequence(lambda n: f"Label {n}")
    slug = factory.Sequence(lambda n: f"label-{n}")
    issuer = "Alliance Industrie du Futur"


class PlatformFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Platform

    name = factory.Sequence(lambda n: f"Platform {n}")
    slug = factory.Sequence(lambda n: f"platform-{n}")
    city = "Lyon"
    timezone = "Europe/Paris"


class PlatformStaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlatformStaff

    user = factory.SubFactory(UserFactory)
    platform = factory.SubFactory(PlatformFactory)
    role = PlatformStaff.Role.MANAGER


class PlatformMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlatformMembership

    organization = factory.SubFactory(OrganizationFactory)
    platform = factory.SubFactory(PlatformFactory)


class MachineTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MachineType
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Machine type {n}")
    slug = factory.Sequence(lambda n: f"machine-type-{n}")
    category = MachineType.Category.ADDITIVE


class MachineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Machine

    platform = factory.SubFactory(PlatformFactory)
    machine_type = factory.SubFactory(MachineTypeFactory)
    name = factory.Sequence(lambda n: f"Machine {n}")
    specs = factory.LazyFunction(lambda: {"build_volume_mm": [250, 210, 220]})


class OpeningHoursFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OpeningHours

    platform = factory.SubFactory(PlatformFactory)
    weekday = 0
    opens_at = time(8)
    closes_at = time(18)


class ClosureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Closure

    platform = factory.SubFactory(PlatformFactory)
    start_date = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=30))
    end_date = factory.LazyAttribute(lambda o: o.start_date + timedelta(days=2))
    reason = "Holidays"


class MaintenanceWindowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MaintenanceWindow

    machine = factory.SubFactory(MachineFactory)
    start = factory.LazyFunction(lambda: timezone.now() + timedelta(days=3))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(hours=4))
    reason = "Calibration"


class QualificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Qualification

    platform = factory.SubFactory(PlatformFactory)
    name = factory.Sequence(lambda n: f"Training {n}")
    machine_type = factory.SubFactory(MachineTypeFactory)


class UserQualificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UserQualification

    user = factory.SubFactory(UserFactory)
    qualification = factory.SubFactory(QualificationFactory)
    granted_on = factory.LazyFunction(timezone.localdate)
