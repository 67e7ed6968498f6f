"""`manage.py seed_demo` loads a demo someone can log into and click around: two
labelled platforms in France, a dozen machines, three SMEs and every role."""

from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command

from core.models import AuditEvent, Membership, Organization, User
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
MODELS = [
    User,
    EmailAddress,
    Organization,
    Membership,
    Label,
    MachineType,
    Platform,
    PlatformStaff,
    PlatformMembership,
    OpeningHours,
    Closure,
    Machine,
    MaintenanceWindow,
    Qualification,
    UserQualification,
    AuditEvent,
]

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def demo_logins(output: str) -> list[str]:
    return [line.split()[0] for line in output.splitlines() if line.startswith("  ")]


def test_seeding_twice_changes_no_row_count():
    seed()
    first = row_counts()

    seed()

    assert row_counts() == first


def test_seeding_again_restores_what_someone_changed():
    seed()
    machine = Machine.objects.get(name="Universal Robots UR5e")
    machine.min_duration_minutes = 90
    machine.save()
    Platform.objects.get(slug="cobotique-lyon").labels.clear()

    seed()

    machine.refresh_from_db()
    assert machine.min_duration_minutes == 60
    assert Platform.objects.get(slug="cobotique-lyon").labels.count() == 2


def test_the_demo_has_a_dozen_machines_of_several_types():
    seed()

    machines = Machine.objects.filter(is_active=True)
    assert machines.count() >= 12
    assert machines.values("machine_type").distinct().count() >= 5
    assert {"additive", "robotics", "subtractive", "cutting"} <= set(
        machines.values_list("machine_type__category", flat=True)
    )


def test_the_demo_has_two_labelled_platforms_in_paris_time_with_opening_hours():
    seed()

    platforms = Platform.objects.all()
    assert platforms.count() == 2
    for platform in platforms:
        assert platform.timezone == "Europe/Paris"
        assert platform.labels.exists(), platform
        assert platform.opening_hours.exists(), platform
        assert platform.machines.count() >= 5, platform


def test_the_demo_plans_a_maintenance_window():
    seed()

    window = MaintenanceWindow.objects.get()
    assert window.end > window.start
    assert window.reason


def test_the_demo_has_three_smes_each_with_an_admin_a_member_and_an_accountant():
    seed()

    organizations = Organization.objects.all()
    assert organizations.count() == 3
    for organization in organizations:
        roles = set(organization.memberships.values_list("role", flat=True))
        assert roles == {"admin", "member", "accountant"}, organization
        assert organization.platform_memberships.exists(), organization


def test_each_demo_platform_has_a_manager_an_operator_and_an_accountant():
    seed()

    for platform in Platform.objects.all():
        roles = set(platform.staff.values_list("role", flat=True))
        assert roles == {"manager", "operator", "accountant"}, platform


def test_seeding_prints_the_logins_and_their_password():
    output = seed()

    assert PASSWORD in output
    logins = demo_logins(output)
    assert "admin@fabpool.example" in logins
    assert "manager@cobotique-lyon.example" in logins
    assert "claire.martin@mps-savoie.example" in logins
    # Everyone the demo creates is listed.
    assert sorted(logins) == sorted(User.objects.values_list("email", flat=True))


def test_every_printed_login_can_log_in_with_the_demo_password(client):
    logins = demo_logins(seed())

    assert len(logins) >= 16
    for email in logins:
        assert client.login(email=email, password=PASSWORD), email
        client.logout()
    assert not client.login(email=logins[0], password="wrong-password")


def test_demo_logins_have_verified_email_addresses():
    seed()

    for user in User.objects.all():
        assert EmailAddress.objects.filter(user=user, email=user.email, verified=True).exists()


def test_demo_members_can_browse_their_platforms_through_the_api(api):
    seed()
    member = User.objects.get(email="hugo.bernard@mps-savoie.example")

    response = api.as_user(member).get("/api/v1/machines/?page_size=100")

    assert response.status_code == 200
    # MPS books on both platforms.
    assert response.json()["count"] == Machine.objects.filter(is_active=True).count()
