"""What platform staff change through the API: managers run their platform's
catalogue, operators keep machines maintained and people qualified. Every
write leaves an audit event."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.models import AuditEvent
from equipment.models import (
    Closure,
    Machine,
    MaintenanceWindow,
    OpeningHours,
    PlatformStaff,
    Qualification,
    UserQualification,
)
from tests import factories
from tests.equipment.support import API, audit_actions, field_errors, names

PARIS = ZoneInfo("Europe/Paris")
NEXT_MONDAY_9 = datetime(2031, 3, 3, 9, 0, tzinfo=PARIS)


def last_event() -> AuditEvent:
    return AuditEvent.objects.order_by("-id").first()


# --- Managers run their platform's catalogue --------------------------------------------


def test_a_manager_adds_a_machine_to_their_platform(api, world):
    cobot = factories.MachineTypeFactory(slug="cobot", name="Cobot")

    response = api.as_user(world.a.manager).post(
        f"{API}/machines/",
        {
            "platform": world.a.platform.pk,
            "machine_type": cobot.pk,
            "name": "UR10e",
            "specs": {"payload_kg": 12.5, "axes": 6, "tools": ["gripper", "vacuum"]},
            "min_duration_minutes": 60,
            "max_duration_minutes": 240,
            "granularity_minutes": 30,
            "qualification_required": True,
        },
    )

    assert response.status_code == 201, response.content
    machine = Machine.objects.get(pk=response.json()["id"])
    assert (machine.platform, machine.machine_type, machine.name) == (
        world.a.platform,
        cobot,
        "UR10e",
    )
    assert machine.specs == {"payload_kg": 12.5, "axes": 6, "tools": ["gripper", "vacuum"]}
    assert machine.qualification_required is True
    event = last_event()
    assert (event.action, event.actor, event.target_id) == (
        "machine.create",
        world.a.manager,
        str(machine.pk),
    )


def test_a_manager_updates_a_machine_and_the_audit_keeps_old_and_new_values(api, world):
    machine = world.a.machine

    response = api.as_user(world.a.manager).patch(
        f"{API}/machines/{machine.pk}/",
        {"description": "Now with a 0.6 mm nozzle.", "buffer_after_minutes": 15},
    )

    assert response.status_code == 200, response.content
    machine.refresh_from_db()
    assert machine.description == "Now with a 0.6 mm nozzle."
    assert machine.buffer_after_minutes == 15
    event = last_event()
    assert (event.action, event.actor_email) == ("machine.update", "manager.a@platform.example")
    assert event.changes == {
        "description": ["", "Now with a 0.6 mm nozzle."],
        "buffer_after_minutes": [0, 15],
    }


def test_an_update_that_changes_nothing_records_nothing(api, world):
    client = api.as_user(world.a.manager)
    before = AuditEvent.objects.count()

    response = client.patch(f"{API}/machines/{world.a.machine.pk}/", {"name": world.a.machine.name})

    assert response.status_code == 200
    assert AuditEvent.objects.count() == before


def test_a_manager_changes_the_platform_time_zone_and_labels(api, world):
    label = factories.LabelFactory(slug="vitrine")

    response = api.as_user(world.a.manager).patch(
        f"{API}/platforms/{world.a.platform.pk}/",
        {"timezone": "Europe/Brussels", "label_ids": [label.pk]},
    )

    assert response.status_code == 200, response.content
    assert [lab["slug"] for lab in response.json()["labels"]] == ["vitrine"]
    world.a.platform.refresh_from_db()
    assert world.a.platform.timezone == "Europe/Brussels"
    assert list(world.a.platform.labels.all()) == [label]
    # One request, one audit event, with both the field and the labels in it.
    assert audit_actions(world.a.platform) == ["platform.update"]
    event = AuditEvent.objects.get(action="platform.update", target_id=str(world.a.platform.pk))
    assert event.changes == {"timezone": ["Europe/Paris", "Europe/Brussels"], "labels": [label.pk]}


def test_a_manager_sets_opening_hours_and_changes_them(api, world):
    client = api.as_user(world.a.manager)

    created = client.post(
        f"{API}/opening-hours/",
        {"platform": world.a.platform.pk, "weekday": 2, "opens_at": "08:00", "closes_at": "12:30"},
    )
    updated = client.patch(f"{API}/opening-hours/{created.json()['id']}/", {"closes_at": "13:00"})

    assert created.status_code == 201, created.content
    assert updated.status_code == 200, updated.content
    hours = OpeningHours.objects.get(pk=created.json()["id"])
    assert (hours.weekday, f"{hours.opens_at:%H:%M}", f"{hours.closes_at:%H:%M}") == (
        2,
        "08:00",
        "13:00",
    )
    assert audit_actions(hours) == ["openinghours.create", "openinghours.update"]


def test_a_day_may_have_a_morning_and_an_afternoon_span(api, world):
    # world.a opens Monday 08:00–18:00; make it a morning, then add an afternoon.
    client = api.as_user(world.a.manager)

    morning = client.patch(
        f"{API}/opening-hours/{world.a.opening_hours.pk}/", {"closes_at": "12:00"}
    )
    afternoon = client.post(
        f"{API}/opening-hours/",
        {"platform": world.a.platform.pk, "weekday": 0, "opens_at": "12:00", "closes_at": "18:00"},
    )

    assert morning.status_code == 200, morning.content
    assert afternoon.status_code == 201, afternoon.content
    assert OpeningHours.objects.filter(platform=world.a.platform, weekday=0).count() == 2


def test_a_manager_closes_the_platform_for_holidays_and_changes_the_dates(api, world):
    client = api.as_user(world.a.manager)

    created = client.post(
        f"{API}/closures/",
        {
            "platform": world.a.platform.pk,
            "start_date": "2031-12-24",
            "end_date": "2032-01-01",
            "reason": "Winter holidays",
        },
    )
    updated = client.patch(f"{API}/closures/{created.json()['id']}/", {"end_date": "2032-01-02"})

    assert created.status_code == 201, created.content
    assert updated.status_code == 200, updated.content
    closure = Closure.objects.get(pk=created.json()["id"])
    assert (closure.start_date, closure.end_date) == (date(2031, 12, 24), date(2032, 1, 2))
    assert audit_actions(closure) == ["closure.create", "closure.update"]


def test_a_one_day_closure_ends_on_the_day_it_starts(api, world):
    response = api.as_user(world.a.manager).post(
        f"{API}/closures/",
        {"platform": world.a.platform.pk, "start_date": "2031-05-01", "end_date": "2031-05-01"},
    )

    assert response.status_code == 201, response.content


def test_a_manager_plans_and_moves_a_maintenance_window(api, world):
    client = api.as_user(world.a.manager)

    created = client.post(
        f"{API}/maintenance-windows/",
        {
            "machine": world.a.machine.pk,
            "start": NEXT_MONDAY_9.isoformat(),
            "end": (NEXT_MONDAY_9 + timedelta(hours=3)).isoformat(),
            "reason": "Nozzle change",
        },
    )
    updated = client.patch(
        f"{API}/maintenance-windows/{created.json()['id']}/",
        {"end": (NEXT_MONDAY_9 + timedelta(hours=5)).isoformat()},
    )

    assert created.status_code == 201, created.content
    assert updated.status_code == 200, updated.content
    window = MaintenanceWindow.objects.get(pk=created.json()["id"])
    assert window.end - window.start == timedelta(hours=5)
    assert window.created_by == world.a.manager
    assert audit_actions(window) == ["maintenancewindow.create", "maintenancewindow.update"]


@pytest.mark.parametrize(
    "target", ["machine_type", "machine"], ids=["for a machine type", "for one machine"]
)
def test_a_manager_defines_a_qualification_and_renames_it(api, world, target):
    covers = (
        {"machine_type": world.a.machine.machine_type_id}
        if target == "machine_type"
        else {"machine": world.a.machine.pk}
    )
    client = api.as_user(world.a.manager)

    created = client.post(
        f"{API}/qualifications/",
        {"platform": world.a.platform.pk, "name": "Printer basics", **covers},
    )
    updated = client.patch(
        f"{API}/qualifications/{created.json()['id']}/", {"name": "Printer basics (2031)"}
    )

    assert created.status_code == 201, created.content
    assert updated.status_code == 200, updated.content
    qualification = Qualification.objects.get(pk=created.json()["id"])
    assert qualification.name == "Printer basics (2031)"
    assert audit_actions(qualification) == ["qualification.create", "qualification.update"]


# --- Operators maintain machines and qualify people -------------------------------------------


def test_an_operator_plans_a_maintenance_window(api, world):
    response = api.as_user(world.a.operator).post(
        f"{API}/maintenance-windows/",
        {
            "machine": world.a.machine.pk,
            "start": NEXT_MONDAY_9.isoformat(),
            "end": (NEXT_MONDAY_9 + timedelta(hours=2)).isoformat(),
        },
    )

    assert response.status_code == 201, response.content
    window = MaintenanceWindow.objects.get(pk=response.json()["id"])
    assert window.created_by == world.a.operator
    assert (last_event().action, last_event().actor) == (
        "maintenancewindow.create",
        world.a.operator,
    )


def test_an_operator_grants_a_qualification_to_a_member_of_a_platform_sme_by_email(api, world):
    response = api.as_user(world.a.operator).post(
        f"{API}/user-qualifications/",
        {
            "qualification": world.a.qualification.pk,
            "user": "admin.a@sme.example",
            "granted_on": "2031-01-10",
            "expires_on": "2032-01-10",
        },
    )

    assert response.status_code == 201, response.content
    assert response.json()["user"] == "admin.a@sme.example"
    assert response.json()["granted_by"] == "operator.a@platform.example"
    grant = UserQualification.objects.get(pk=response.json()["id"])
    assert (grant.user, grant.qualification, grant.granted_by) == (
        world.a.org_admin,
        world.a.qualification,
        world.a.operator,
    )
    assert (last_event().action, last_event().actor) == (
        "userqualification.create",
        world.a.operator,
    )


def test_an_operator_extends_and_revokes_a_grant(api, world):
    client = api.as_user(world.a.operator)
    grant = world.a.grant

    extended = client.patch(
        f"{API}/user-qualifications/{grant.pk}/",
        {"expires_on": str(grant.granted_on + timedelta(days=730))},
    )
    revoked = client.delete(f"{API}/user-qualifications/{grant.pk}/")

    assert extended.status_code == 200, extended.content
    assert revoked.status_code == 204
    assert not UserQualification.objects.filter(pk=grant.pk).exists()
    assert audit_actions(grant) == ["userqualification.update", "userqualification.delete"]


def test_a_grant_keeps_its_holder_and_qualification(api, world):
    response = api.as_user(world.a.operator).patch(
        f"{API}/user-qualifications/{world.a.grant.pk}/", {"user": "admin.a@sme.example"}
    )

    assert response.status_code == 200
    world.a.grant.refresh_from_db()
    assert world.a.grant.user == world.a.org_member


@pytest.mark.parametrize(
    "email",
    ["outsider@example.com", "member.b@sme.example", "nobody@nowhere.example"],
    ids=["in no SME", "in an SME of another platform", "unknown address"],
)
def test_qualifications_go_only_to_people_of_the_platforms_smes(api, world, email):
    before = UserQualification.objects.count()

    response = api.as_user(world.a.operator).post(
        f"{API}/user-qualifications/",
        {"qualification": world.a.qualification.pk, "user": email, "granted_on": "2031-01-10"},
    )

    assert response.status_code == 400
    assert "user" in field_errors(response)
    assert UserQualification.objects.count() == before


def test_staff_of_two_platforms_cannot_grant_one_platforms_qualification_to_the_others_sme(
    api, world
):
    # The operator also works on platform b, so member.b is a known address to them;
    # still, SME b does not book on platform a.
    factories.PlatformStaffFactory(
        user=world.a.operator, platform=world.b.platform, role=PlatformStaff.Role.OPERATOR
    )

    response = api.as_user(world.a.operator).post(
        f"{API}/user-qualifications/",
        {
            "qualification": world.a.qualification.pk,
            "user": "member.b@sme.example",
            "granted_on": "2031-01-10",
        },
    )

    assert response.status_code == 400
    assert "user" in field_errors(response)
    assert (
        not UserQualification.objects.filter(user=world.b.org_member)
        .exclude(qualification=world.b.qualification)
        .exists()
    )


# --- What each role may not do ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "endpoint", "payload"),
    [
        ("operator", "machines", {"name": "Sneaky"}),
        ("operator", "qualifications", {"name": "Sneaky"}),
        ("accountant", "maintenance-windows", {"reason": "Sneaky"}),
        ("accountant", "closures", {"reason": "Sneaky"}),
    ],
)
def test_staff_without_the_role_for_it_are_refused_and_nothing_changes(
    api, world, role, endpoint, payload
):
    target = {
        "machines": world.a.machine,
        "qualifications": world.a.qualification,
        "maintenance-windows": world.a.maintenance,
        "closures": world.a.closure,
    }[endpoint]
    client = api.as_user(getattr(world.a, role))
    before = AuditEvent.objects.count()

    response = client.patch(f"{API}/{endpoint}/{target.pk}/", payload)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    target.refresh_from_db()
    assert getattr(target, next(iter(payload))) != "Sneaky"
    assert AuditEvent.objects.count() == before


def test_sme_members_cannot_write_the_catalogue(api, world):
    response = api.as_user(world.a.org_admin).patch(
        f"{API}/machines/{world.a.machine.pk}/", {"name": "Mine now"}
    )

    assert response.status_code == 403


def test_staff_of_another_platform_do_not_even_see_the_machine(api, world):
    response = api.as_user(world.b.manager).patch(
        f"{API}/machines/{world.a.machine.pk}/", {"name": "Mine now"}
    )

    assert response.status_code == 404


# --- Retiring and moving machines ---------------------------------------------------------------


def test_a_retired_machine_leaves_the_members_list_but_stays_visible_to_staff(api, world):
    machine = world.a.machine

    response = api.as_user(world.a.manager).patch(
        f"{API}/machines/{machine.pk}/", {"is_active": False}
    )

    assert response.status_code == 200, response.content
    assert last_event().changes == {"is_active": [True, False]}
    member = api.as_user(world.a.org_member)
    assert machine.name not in names(member.get(f"{API}/machines/"))
    assert member.get(f"{API}/machines/{machine.pk}/").status_code == 404
    for staff in (world.a.manager, world.a.operator, world.a.accountant):
        staff_view = api.as_user(staff)
        assert machine.name in names(staff_view.get(f"{API}/machines/"))
        assert staff_view.get(f"{API}/machines/{machine.pk}/").status_code == 200


def test_a_retired_machine_can_be_brought_back(api, world):
    retired = world.a.retired_machine

    response = api.as_user(world.a.manager).patch(
        f"{API}/machines/{retired.pk}/", {"is_active": True}
    )

    assert response.status_code == 200
    assert retired.name in names(api.as_user(world.a.org_member).get(f"{API}/machines/"))


@pytest.mark.parametrize(
    "manages_both", [False, True], ids=["other platform unseen", "manager of both platforms"]
)
def test_a_machine_cannot_move_to_another_platform(api, world, manages_both):
    if manages_both:
        factories.PlatformStaffFactory(user=world.a.manager, platform=world.b.platform)
    client = api.as_user(world.a.manager)
    before = AuditEvent.objects.count()

    response = client.patch(
        f"{API}/machines/{world.a.machine.pk}/", {"platform": world.b.platform.pk}
    )

    assert response.status_code == 400
    assert "platform" in field_errors(response)
    world.a.machine.refresh_from_db()
    assert world.a.machine.platform == world.a.platform
    assert AuditEvent.objects.count() == before


# --- Every write is audited ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "obj", "action"),
    [
        ("opening-hours", "opening_hours", "openinghours.delete"),
        ("closures", "closure", "closure.delete"),
        ("maintenance-windows", "maintenance", "maintenancewindow.delete"),
        ("qualifications", "qualification", "qualification.delete"),
        ("user-qualifications", "grant", "userqualification.delete"),
    ],
)
def test_deletes_are_audited_with_who_and_what(api, world, endpoint, obj, action):
    target = getattr(world.a, obj)
    target_repr = str(target)

    response = api.as_user(world.a.manager).delete(f"{API}/{endpoint}/{target.pk}/")

    assert response.status_code == 204
    assert not type(target).objects.filter(pk=target.pk).exists()
    event = last_event()
    assert (event.action, event.actor, event.target_id, event.target_repr) == (
        action,
        world.a.manager,
        str(target.pk),
        target_repr,
    )


def test_machines_are_retired_never_deleted(api, world):
    response = api.as_user(world.a.manager).delete(f"{API}/machines/{world.a.machine.pk}/")

    assert response.status_code == 405
    assert Machine.objects.filter(pk=world.a.machine.pk).exists()


@pytest.mark.parametrize("endpoint", ["labels", "machine-types", "platforms"])
def test_labels_machine_types_and_platforms_are_not_created_through_the_api(api, world, endpoint):
    response = api.as_user(world.a.manager).post(
        f"{API}/{endpoint}/", {"name": "New", "slug": "new"}
    )

    assert response.status_code == 405
