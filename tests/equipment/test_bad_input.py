"""Every write endpoint of the catalogue refuses bad input with a 400 that names the
field at fault (details.fields.<field>), and writes nothing: no row, no change, no
audit event.

Each case is (who, method, url, payload) built from `world`, and the field the
reason must be filed under."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from core.models import AuditEvent
from equipment.models import (
    Closure,
    Machine,
    MaintenanceWindow,
    OpeningHours,
    Platform,
    PlatformStaff,
    Qualification,
    UserQualification,
)
from tests import factories
from tests.equipment.support import API, field_errors

UNKNOWN = 999_999
START = (timezone.now() + timedelta(days=10)).replace(microsecond=0)


@dataclass
class Case:
    field: str
    request: Any  # world -> (user, method, path, payload)
    id: str

    def param(self):
        return pytest.param(self, id=self.id)


def as_manager_of_both(w):
    factories.PlatformStaffFactory(
        user=w.a.manager, platform=w.b.platform, role=PlatformStaff.Role.MANAGER
    )
    return w.a.manager


# --- Platforms ---------------------------------------------------------------------------


def platform(payload):
    return lambda w: (w.a.manager, "patch", f"platforms/{w.a.platform.pk}", payload)


PLATFORM_CASES = [
    Case("timezone", platform({"timezone": "Mars/Olympus_Mons"}), "unknown time zone"),
    Case("timezone", platform({"timezone": "CEST"}), "abbreviation, not a time zone"),
    Case("timezone", platform({"timezone": ""}), "blank time zone"),
    Case("label_ids", platform({"label_ids": [UNKNOWN]}), "unknown label id"),
    Case("contact_email", platform({"contact_email": "not-an-address"}), "bad contact email"),
]


# --- Opening hours -------------------------------------------------------------------------
# world.a opens on Monday (weekday 0) from 08:00 to 18:00.


def new_hours(**payload):
    def request(w):
        body = {"platform": w.a.platform.pk, "weekday": 0, **payload}
        return w.a.manager, "post", "opening-hours", body

    return request


def change_tuesday_hours(**payload):
    """Tuesday 08:00–12:00 exists too; change it."""

    def request(w):
        tuesday = factories.OpeningHoursFactory(
            platform=w.a.platform, weekday=1, opens_at="08:00", closes_at="12:00"
        )
        return w.a.manager, "patch", f"opening-hours/{tuesday.pk}", payload

    return request


HOURS_CASES = [
    Case("opens_at", new_hours(opens_at="17:00", closes_at="19:00"), "overlaps the end"),
    Case("opens_at", new_hours(opens_at="07:00", closes_at="08:30"), "overlaps the start"),
    Case("opens_at", new_hours(opens_at="06:00", closes_at="20:00"), "spans another span"),
    Case("opens_at", new_hours(opens_at="10:00", closes_at="11:00"), "inside another span"),
    Case("opens_at", change_tuesday_hours(weekday=0), "update moves onto an open day"),
    Case(
        "opens_at",
        change_tuesday_hours(weekday=0, opens_at="17:00", closes_at="19:00"),
        "update overlaps",
    ),
    Case(
        "closes_at", new_hours(weekday=3, opens_at="10:00", closes_at="10:00"), "closes at opening"
    ),
    Case("closes_at", new_hours(weekday=3, opens_at="10:00", closes_at="09:00"), "closes before"),
    Case("closes_at", change_tuesday_hours(closes_at="07:00"), "update closes before opening"),
    Case("weekday", new_hours(weekday=7, opens_at="08:00", closes_at="09:00"), "weekday 7"),
    Case("opens_at", new_hours(weekday=3, opens_at="25:00", closes_at="26:00"), "hour 25"),
    Case(
        "opens_at", new_hours(weekday=3, opens_at="08:00Z", closes_at="09:00"), "time with offset"
    ),
    Case(
        "platform",
        lambda w: (
            w.a.manager,
            "post",
            "opening-hours",
            {"platform": UNKNOWN, "weekday": 3, "opens_at": "08:00", "closes_at": "09:00"},
        ),
        "unknown platform id",
    ),
]


# --- Closures ----------------------------------------------------------------------------


def new_closure(**payload):
    return lambda w: (
        w.a.manager,
        "post",
        "closures",
        {"platform": w.a.platform.pk, **payload},
    )


CLOSURE_CASES = [
    Case(
        "end_date",
        new_closure(start_date="2031-08-10", end_date="2031-08-01"),
        "closure ends before it starts",
    ),
    Case(
        "end_date",
        lambda w: (w.a.manager, "patch", f"closures/{w.a.closure.pk}", {"end_date": "2000-01-01"}),
        "closure update ends before it starts",
    ),
    Case(
        "platform",
        lambda w: (
            w.a.manager,
            "post",
            "closures",
            {"platform": UNKNOWN, "start_date": "2031-08-01", "end_date": "2031-08-02"},
        ),
        "unknown platform id",
    ),
    Case("start_date", new_closure(start_date="31/08/2031", end_date="2031-09-01"), "bad date"),
]


# --- Machines ------------------------------------------------------------------------------


def new_machine(**payload):
    def request(w):
        body = {
            "platform": w.a.platform.pk,
            "machine_type": w.a.machine.machine_type_id,
            "name": "New machine",
            **payload,
        }
        return w.a.manager, "post", "machines", body

    return request


def change_machine(**payload):
    # world.a.machine: min 30, max 480, granularity 15 minutes.
    return lambda w: (w.a.manager, "patch", f"machines/{w.a.machine.pk}", payload)


MACHINE_CASES = [
    Case("min_duration_minutes", new_machine(min_duration_minutes=0), "zero min duration"),
    Case("min_duration_minutes", new_machine(min_duration_minutes=-30), "negative min duration"),
    Case("max_duration_minutes", new_machine(max_duration_minutes=0), "zero max duration"),
    Case(
        "max_duration_minutes",
        new_machine(max_duration_minutes=15 * 24 * 60),
        "max duration over two weeks",
    ),
    Case("granularity_minutes", new_machine(granularity_minutes=0), "zero granularity"),
    Case("granularity_minutes", change_machine(granularity_minutes=-15), "negative granularity"),
    Case("buffer_after_minutes", new_machine(buffer_after_minutes=-5), "negative buffer"),
    Case("min_notice_minutes", change_machine(min_notice_minutes=-60), "negative notice"),
    Case("booking_horizon_days", new_machine(booking_horizon_days=0), "zero horizon"),
    Case(
        "max_duration_minutes",
        new_machine(min_duration_minutes=120, max_duration_minutes=60),
        "max below min",
    ),
    Case("max_duration_minutes", change_machine(max_duration_minutes=15), "update max below min"),
    Case(
        "min_duration_minutes",
        new_machine(min_duration_minutes=50, granularity_minutes=15),
        "min not a multiple of granularity",
    ),
    Case(
        "min_duration_minutes",
        change_machine(granularity_minutes=45),
        "update granularity so min is not a multiple",
    ),
    Case("specs", new_machine(specs=[1, 2]), "specs a list"),
    Case("specs", new_machine(specs="fast"), "specs a string"),
    Case("specs", new_machine(specs=None), "specs null"),
    Case("specs", new_machine(specs={"bed": {"x": 300, "y": 200}}), "specs nested object"),
    Case("specs", new_machine(specs={"heads": [{"nozzle": 0.4}]}), "specs list of objects"),
    Case("specs", new_machine(specs={"matrix": [[1, 2], [3, 4]]}), "specs list of lists"),
    Case("specs", new_machine(specs={"": 1}), "specs blank name"),
    Case("specs", change_machine(specs={"bed": {"x": 300}}), "update specs nested object"),
    Case("name", new_machine(name="Printer a"), "duplicate machine name"),
    Case("name", change_machine(name="Old printer a"), "update to a duplicate machine name"),
    Case("name", new_machine(name=""), "blank name"),
    Case("machine_type", new_machine(machine_type=UNKNOWN), "unknown machine type id"),
    Case("platform", new_machine(platform=UNKNOWN), "unknown platform id"),
    Case(
        "platform",
        lambda w: new_machine(platform=w.b.platform.pk)(w),
        "platform one does not work on",
    ),
]


# --- Maintenance windows ---------------------------------------------------------------------


def new_window(start, end, machine=None):
    def request(w):
        body = {
            "machine": machine(w) if machine else w.a.machine.pk,
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        return w.a.operator, "post", "maintenance-windows", body

    return request


def naive_window(w):
    """A start without offset would be read as UTC, hours away from what was meant."""
    body = {"machine": w.a.machine.pk, "start": "2030-03-04T08:00:00", "end": "2030-03-04T12:00Z"}
    return w.a.operator, "post", "maintenance-windows", body


MAINTENANCE_CASES = [
    Case("start", naive_window, "maintenance start without a time zone offset"),
    Case("end", new_window(START, START), "maintenance ends when it starts"),
    Case("end", new_window(START, START - timedelta(hours=1)), "maintenance ends before start"),
    Case(
        "end",
        lambda w: (
            w.a.operator,
            "patch",
            f"maintenance-windows/{w.a.maintenance.pk}",
            {"end": (w.a.maintenance.start - timedelta(minutes=1)).isoformat()},
        ),
        "maintenance update ends before start",
    ),
    Case(
        "machine",
        new_window(START, START + timedelta(hours=1), machine=lambda w: UNKNOWN),
        "unknown machine id",
    ),
    Case(
        "machine",
        new_window(START, START + timedelta(hours=1), machine=lambda w: w.b.machine.pk),
        "machine of another platform",
    ),
    Case(
        "machine",
        lambda w: (
            as_manager_of_both(w),
            "patch",
            f"maintenance-windows/{w.a.maintenance.pk}",
            {"machine": w.b.machine.pk},
        ),
        "update moves it to another platform's machine",
    ),
    Case(
        "start",
        lambda w: (
            w.a.operator,
            "post",
            "maintenance-windows",
            {"machine": w.a.machine.pk, "start": "tomorrow", "end": START.isoformat()},
        ),
        "start not a date-time",
    ),
]


# --- Qualifications ----------------------------------------------------------------------------


def new_qualification(covers):
    def request(w):
        body = {"platform": w.a.platform.pk, "name": "Safety first", **covers(w)}
        return w.a.manager, "post", "qualifications", body

    return request


def qualification_for_a_machine_elsewhere(w):
    user = as_manager_of_both(w)
    body = {"platform": w.a.platform.pk, "name": "Wrong place", "machine": w.b.machine.pk}
    return user, "post", "qualifications", body


QUALIFICATION_CASES = [
    Case(
        "non_field_errors",
        new_qualification(
            lambda w: {"machine": w.a.machine.pk, "machine_type": w.a.machine.machine_type_id}
        ),
        "both machine and machine type",
    ),
    Case("non_field_errors", new_qualification(lambda w: {}), "neither machine nor type"),
    Case(
        "non_field_errors",
        lambda w: (
            w.a.manager,
            "patch",
            f"qualifications/{w.a.qualification.pk}",
            {"machine": w.a.machine.pk},
        ),
        "update to both machine and machine type",
    ),
    Case("machine", qualification_for_a_machine_elsewhere, "machine on another platform"),
    Case(
        "machine",
        new_qualification(lambda w: {"machine": w.b.machine.pk}),
        "machine on a platform one does not work on",
    ),
    Case("machine", new_qualification(lambda w: {"machine": UNKNOWN}), "unknown machine id"),
    Case(
        "machine_type",
        new_qualification(lambda w: {"machine_type": UNKNOWN}),
        "unknown machine type id",
    ),
    Case(
        "name",
        new_qualification(
            lambda w: {"name": w.a.qualification.name, "machine_type": w.a.machine.machine_type_id}
        ),
        "duplicate qualification name",
    ),
]


# --- Granted qualifications ----------------------------------------------------------------------


def grant(**payload):
    def request(w):
        body = {
            "qualification": w.a.qualification.pk,
            "user": "admin.a@sme.example",
            "granted_on": "2031-01-10",
            **payload,
        }
        return w.a.operator, "post", "user-qualifications", body

    return request


GRANT_CASES = [
    Case("expires_on", grant(expires_on="2031-01-10"), "expires the day it is granted"),
    Case("expires_on", grant(expires_on="2030-12-31"), "expires before it is granted"),
    Case(
        "expires_on",
        lambda w: (
            w.a.operator,
            "patch",
            f"user-qualifications/{w.a.grant.pk}",
            {"expires_on": str(w.a.grant.granted_on - timedelta(days=1))},
        ),
        "update expiry before the grant",
    ),
    Case("qualification", grant(qualification=UNKNOWN), "unknown qualification id"),
    Case(
        "qualification",
        lambda w: grant(qualification=w.b.qualification.pk)(w),
        "another platform's qualification",
    ),
    Case("user", grant(user="nobody@nowhere.example"), "unknown email"),
    Case("user", grant(user="member.a@sme.example"), "already holds it"),
    Case("granted_on", grant(granted_on=None), "no grant date"),
]

ALL_CASES = (
    PLATFORM_CASES
    + HOURS_CASES
    + CLOSURE_CASES
    + MACHINE_CASES
    + MAINTENANCE_CASES
    + QUALIFICATION_CASES
    + GRANT_CASES
)


def snapshot():
    """Every row a catalogue write could touch, with all its values."""
    tables = [
        Platform,
        Machine,
        OpeningHours,
        Closure,
        MaintenanceWindow,
        Qualification,
        UserQualification,
        AuditEvent,
    ]
    rows = {
        model.__name__: [model_to_dict(obj) for obj in model.objects.order_by("pk")]
        for model in tables
    }
    rows["labels"] = sorted(Platform.labels.through.objects.values_list("platform", "label"))
    return rows


@pytest.mark.parametrize("case", [case.param() for case in ALL_CASES])
def test_bad_input_is_refused_per_field_and_writes_nothing(api, world, case):
    user, method, path, payload = case.request(world)
    client = api.as_user(user)
    before = snapshot()

    response = getattr(client, method)(f"{API}/{path}/", payload)

    assert response.status_code == 400, response.content
    assert snapshot() == before
    fields = field_errors(response)
    assert case.field in fields, fields
    assert all(reason and isinstance(reason, str) for reason in fields[case.field])
    # Django's internal key for "the whole object" never leaks into the API.
    assert "__all__" not in fields


def test_the_message_names_the_first_field_at_fault(api, world):
    response = api.as_user(world.a.manager).patch(
        f"{API}/platforms/{world.a.platform.pk}/", {"timezone": "Mars/Olympus_Mons"}
    )

    error = response.json()["error"]
    assert error["message"].startswith("timezone: ")
    assert "Mars/Olympus_Mons" in error["message"]


def test_overlapping_hours_say_which_span_they_overlap(api, world):
    response = api.as_user(world.a.manager).post(
        f"{API}/opening-hours/",
        {"platform": world.a.platform.pk, "weekday": 0, "opens_at": "17:00", "closes_at": "19:00"},
    )

    assert "08:00–18:00" in field_errors(response)["opens_at"][0]
