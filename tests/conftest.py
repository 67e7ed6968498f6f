import pytest
from django.core.cache import cache
from django.utils import translation
from rest_framework.test import APIClient

from core.models import Membership
from core.services import create_api_token
from equipment.models import PlatformStaff
from tests import factories


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2 costs ~0.2 s a user and `world` makes sixteen; MD5 keeps tests fast.
    Password checks still go through Django's real hasher machinery."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_cache():
    """Rate-limit counters (allauth's, API throttles) live in the cache: each test
    starts with none, whatever ran before it."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def english_after_each_test():
    """A French request (LocaleMiddleware) leaves French active in this thread, and
    text made outside a request (an invoice's late-payment mentions) would follow
    it: each test starts in the default language, whatever ran before it."""
    yield
    translation.deactivate()


@pytest.fixture
def api():
    """An API client; `api.as_user(user)` authenticates it with a fresh API token."""

    class Client(APIClient):
        def as_user(self, user):
            _token, secret = create_api_token(user=user, name="tests")
            self.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
            return self

    return Client()


@pytest.fixture
def world(db):
    """Two platforms, each with its staff, an SME booking there, and machines.

    world.a / world.b each hold: platform, machine, manager, operator, accountant,
    org, org_admin, org_member, org_accountant. Nothing of A is visible from B."""

    class Side:
        pass

    def side(name: str):
        s = Side()
        s.platform = factories.PlatformFactory(name=f"Platform {name}", slug=f"platform-{name}")
        s.machine = factories.MachineFactory(platform=s.platform, name=f"Printer {name}")
        s.retired_machine = factories.MachineFactory(
            platform=s.platform, name=f"Old printer {name}", is_active=False
        )
        s.opening_hours = factories.OpeningHoursFactory(platform=s.platform)
        s.closure = factories.ClosureFactory(platform=s.platform)
        s.maintenance = factories.MaintenanceWindowFactory(machine=s.machine)
        s.qualification = factories.QualificationFactory(platform=s.platform)
        for role in PlatformStaff.Role:
            user = factories.UserFactory(email=f"{role}.{name}@platform.example")
            factories.PlatformStaffFactory(user=user, platform=s.platform, role=role)
            setattr(s, role, user)
        s.org = factories.OrganizationFactory(legal_name=f"SME {name}")
        factories.PlatformMembershipFactory(organization=s.org, platform=s.platform)
        for role in Membership.Role:
            user = factories.UserFactory(email=f"{role}.{name}@sme.example")
            factories.MembershipFactory(user=user, organization=s.org, role=role)
            setattr(s, f"org_{role}", user)
        s.grant = factories.UserQualificationFactory(
            user=s.org_member, qualification=s.qualification, granted_by=s.manager
        )
        return s

    w = Side()
    w.a = side("a")
    w.b = side("b")
    w.outsider = factories.UserFactory(email="outsider@example.com")
    return w
