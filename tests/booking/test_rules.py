"""The booking policy, rule by rule: what a new booking must satisfy.

Every broken rule is reported at once in `details.problems` (a code, a message, and
whether a platform manager may override it: "soft"). Hard rules (who may book, a
retired machine, an end before the start) and conflicts with other bookings or
maintenance are never overridden. A refused booking writes nothing.

Unless a test says otherwise, the `lab` platform is open every day 08:00–18:00 in
Paris, and its printer takes 30 min to 8 h bookings on a 15-minute grid, at least
1 h ahead and at most 90 days ahead, with no buffer. `day` is a Tuesday one to two
weeks ahead.
"""

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.errors import BookingConflict, BookingRejected
from booking.models import Booking
from booking.rules import booking_problems
from booking.services import create_booking
from core.errors import Forbidden
from core.models import AuditEvent
from equipment.models import (
    Closure,
    MaintenanceWindow,
    OpeningHours,
    Qualification,
    UserQualification,
)
from tests import factories
from tests.booking.conftest import PARIS, at, next_weekday
from tests.booking.support import (
    book,
    codes,
    iso_z,
    next_dst_sunday,
    paris,
    utc,
    written,
)

SOFT = {
    "too_short",
    "too_long",
    "misaligned",
    "too_late_to_book",
    "beyond_horizon",
    "outside_opening_hours",
    "platform_closed",
    "qualification_missing",
}
HARD = {"machine_retired", "not_a_platform_member", "not_allowed_to_book", "end_before_start"}
COURSE_NUMBERS = itertools.count(1)  # unique qualification names


@pytest.fixture
def day():
    return next_weekday(1)


def attempt(lab, start, end, *, by=None, organization=None, machine=None, **extra) -> Booking:
    return create_booking(
        machine=machine or lab.a.machine,
        organization=organization or lab.a.org,
        by=by or lab.a.org_member,
        start=start,
        end=end,
        **extra,
    )


def refused(lab, start, end, **kwargs) -> list[str]:
    """The codes of every problem of a refused booking; checks that nothing was written."""
    before = written()
    with pytest.raises(BookingRejected) as refusal:
        attempt(lab, start, end, **kwargs)
    assert written() == before
    return codes(refusal.value.problems)


def conflicting(lab, start, end, **kwargs) -> list[dict]:
    """The clashes reported by a booking refused for a conflict; nothing written."""
    before = written()
    with pytest.raises(BookingConflict) as conflict:
        attempt(lab, start, end, **kwargs)
    assert written() == before
    return conflict.value.conflicts


def set_policy(machine, **policy):
    for field, value in policy.items():
        setattr(machine, field, value)
    machine.save()


def set_hours(platform, weekday: int, *spans: tuple[time, time]):
    OpeningHours.objects.filter(platform=platform, weekday=weekday).delete()
    for opens_at, closes_at in spans:
        factories.OpeningHoursFactory(
            platform=platform, weekday=weekday, opens_at=opens_at, closes_at=closes_at
        )


# --- A valid booking -------------------------------------------------------------


def test_a_booking_that_breaks_no_rule_is_confirmed_and_audited(lab, day):
    booking = attempt(lab, at(day, 9), at(day, 11), title="Housing v2", note="PETG")

    assert booking.status == Booking.Status.CONFIRMED
    assert (booking.start, booking.end, booking.blocked_until) == (
        at(day, 9),
        at(day, 11),
        at(day, 11),
    )
    assert (booking.organization, booking.booked_by) == (lab.a.org, lab.a.org_member)
    assert booking.override_reason == ""
    event = AuditEvent.objects.get(action="booking.create")
    assert event.target_id == str(booking.pk)
    assert event.actor == lab.a.org_member


# --- Duration --------------------------------------------------------------------


def test_a_booking_lasts_at_least_the_machines_minimum(lab, day):
    assert refused(lab, at(day, 9), at(day, 9, 15)) == ["too_short"]
    assert attempt(lab, at(day, 9), at(day, 9, 30)).pk


def test_a_booking_lasts_at_most_the_machines_maximum(lab, day):
    assert refused(lab, at(day, 8), at(day, 16, 15)) == ["too_long"]
    assert attempt(lab, at(day, 8), at(day, 16)).pk


def test_the_end_comes_after_the_start_and_nothing_else_is_said_about_the_period(lab, day):
    assert refused(lab, at(day, 9), at(day, 9)) == ["end_before_start"]
    # Before 08:00 and misaligned too, but a backwards period has no duration to judge.
    assert refused(lab, at(day, 7, 10), at(day, 6, 5)) == ["end_before_start"]


# --- Alignment, on the local clock ---------------------------------------------------


@pytest.mark.parametrize(
    ("granularity", "start", "end", "aligned"),
    [
        (15, (9, 15), (10, 45), True),
        (15, (9, 10), (10, 45), False),
        (15, (9, 15), (10, 50), False),
        (30, (9, 30), (11, 0), True),
        (30, (9, 15), (11, 0), False),
        (30, (9, 0), (10, 45), False),
        (60, (10, 0), (12, 0), True),
        (60, (10, 30), (12, 0), False),
        (60, (10, 0), (11, 30), False),
    ],
)
def test_start_and_end_fall_on_the_machines_grid(lab, day, granularity, start, end, aligned):
    set_policy(lab.a.machine, granularity_minutes=granularity, min_duration_minutes=granularity)

    if aligned:
        assert attempt(lab, at(day, *start), at(day, *end)).pk
    else:
        assert refused(lab, at(day, *start), at(day, *end)) == ["misaligned"]


def test_seconds_off_the_grid_are_misaligned(lab, day):
    assert refused(lab, at(day, 9).replace(second=30), at(day, 10)) == ["misaligned"]


def test_the_grid_counts_from_local_midnight_not_from_utc(lab):
    """In Kolkata (UTC+05:30) a 60-minute grid puts starts on the local hour,
    which is half past the hour in UTC."""
    lab.a.platform.timezone = "Asia/Kolkata"
    lab.a.platform.save()
    set_policy(lab.a.machine, granularity_minutes=60, min_duration_minutes=60)
    kolkata = ZoneInfo("Asia/Kolkata")
    tuesday = next_weekday(1).date()
    local = datetime.combine(tuesday, time(10), tzinfo=kolkata)

    booking = attempt(lab, local, local + timedelta(hours=2))

    assert (booking.start.astimezone(UTC).hour, booking.start.astimezone(UTC).minute) == (4, 30)
    # 14:30–16:30 in Kolkata is 09:00Z–11:00Z: on the UTC hour, off the local one.
    assert refused(lab, local.replace(hour=14, minute=30), local.replace(hour=16, minute=30)) == [
        "misaligned"
    ]


@pytest.mark.parametrize("day_", [date(2027, 1, 12), date(2027, 3, 28), date(2027, 6, 15)])
def test_a_two_hour_grid_follows_the_paris_clock_whatever_the_offset(lab, day_):
    """08:00 in Paris is 07:00Z in winter and 06:00Z in summer: both on the grid."""
    set_policy(
        lab.a.machine, granularity_minutes=120, min_duration_minutes=120, max_duration_minutes=600
    )
    now = paris(day_, 0) - timedelta(days=7)

    def problems(start_hour, end_hour):
        return codes(
            p.as_dict()
            for p in booking_problems(
                machine=lab.a.machine,
                organization=lab.a.org,
                by=lab.a.org_member,
                start=paris(day_, start_hour),
                end=paris(day_, end_hour),
                now=now,
            )
        )

    assert problems(8, 10) == []
    assert problems(9, 11) == ["misaligned"]


# --- Notice and horizon ------------------------------------------------------------


def test_a_booking_is_made_far_enough_ahead(lab, day):
    set_policy(lab.a.machine, min_notice_minutes=30 * 24 * 60)

    assert refused(lab, at(day, 9), at(day, 10)) == ["too_late_to_book"]


def test_a_booking_in_the_past_is_too_late(lab):
    last_week = next_weekday(0, weeks_ahead=0) - timedelta(days=7)

    assert refused(lab, at(last_week, 9), at(last_week, 10)) == ["too_late_to_book"]


def test_a_booking_is_not_beyond_the_machines_horizon(lab, day):
    set_policy(lab.a.machine, booking_horizon_days=3)

    assert refused(lab, at(day, 9), at(day, 10)) == ["beyond_horizon"]


def test_notice_and_horizon_boundaries(lab):
    """Exactly the notice ahead, or exactly the horizon ahead, is allowed."""
    now = utc(2027, 1, 11, 8, 0)  # a Monday, 09:00 in Paris

    def problems(start):
        return codes(
            p.as_dict()
            for p in booking_problems(
                machine=lab.a.machine,
                organization=lab.a.org,
                by=lab.a.org_member,
                start=start,
                end=start + timedelta(hours=1),
                now=now,
            )
        )

    assert problems(now + timedelta(minutes=60)) == []
    assert problems(now + timedelta(minutes=45)) == ["too_late_to_book"]
    assert problems(now + timedelta(days=90)) == []
    assert problems(now + timedelta(days=90, minutes=15)) == ["beyond_horizon"]


# --- Opening hours -----------------------------------------------------------------


def test_a_booking_fits_in_the_opening_hours(lab, day):
    set_policy(lab.a.machine, max_duration_minutes=600)

    assert refused(lab, at(day, 7, 45), at(day, 9)) == ["outside_opening_hours"]
    assert refused(lab, at(day, 17), at(day, 18, 15)) == ["outside_opening_hours"]
    assert refused(lab, at(day, 19), at(day, 20)) == ["outside_opening_hours"]
    assert attempt(lab, at(day, 8), at(day, 18)).pk


def test_nothing_is_booked_on_a_weekday_without_opening_hours(lab):
    sunday = next_weekday(6)
    set_hours(lab.a.platform, 6)

    assert refused(lab, at(sunday, 9), at(sunday, 10)) == ["outside_opening_hours"]


def test_other_platforms_hours_do_not_count(lab):
    sunday = next_weekday(6)
    set_hours(lab.a.platform, 6)
    set_hours(lab.b.platform, 6, (time(0), time(23)))

    assert refused(lab, at(sunday, 9), at(sunday, 10)) == ["outside_opening_hours"]


@pytest.fixture
def lunch_break(lab, day):
    """Tuesdays and Wednesdays: 08:00–12:00 and 13:30–18:00; up to 2 days per booking."""
    for weekday in (day.weekday(), day.weekday() + 1):
        set_hours(lab.a.platform, weekday, (time(8), time(12)), (time(13, 30), time(18)))
    set_policy(lab.a.machine, max_duration_minutes=2 * 24 * 60)
    return lab


@pytest.mark.parametrize(
    ("start", "end"),
    [((9, 0), (12, 0)), ((8, 0), (9, 0)), ((13, 30), (15, 0)), ((16, 0), (18, 0))],
)
def test_a_same_day_booking_fits_in_one_opening_span(lunch_break, day, start, end):
    assert attempt(lunch_break, at(day, *start), at(day, *end)).pk


@pytest.mark.parametrize(
    ("start", "end"),
    [((11, 0), (14, 0)), ((12, 15), (13, 15)), ((11, 30), (12, 30)), ((9, 0), (17, 0))],
)
def test_a_same_day_booking_across_the_lunch_break_is_refused(lunch_break, day, start, end):
    assert refused(lunch_break, at(day, *start), at(day, *end)) == ["outside_opening_hours"]


def test_back_to_back_opening_spans_count_as_one(lab, day):
    set_hours(lab.a.platform, day.weekday(), (time(8), time(12)), (time(12), time(18)))

    assert attempt(lab, at(day, 11), at(day, 13)).pk


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ((0, 16, 0), (1, 10, 0)),  # overnight
        ((0, 11, 0), (1, 15, 0)),  # the breaks in between do not matter
        ((0, 8, 0), (1, 18, 0)),
    ],
)
def test_an_unattended_booking_over_several_days_needs_only_its_start_and_end_in_hours(
    lunch_break, day, start, end
):
    (d0, *start_time), (d1, *end_time) = start, end
    booking = attempt(
        lunch_break,
        at(day + timedelta(days=d0), *start_time),
        at(day + timedelta(days=d1), *end_time),
    )
    assert booking.pk


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ((0, 12, 30), (1, 10, 0)),  # starts during the lunch break
        ((0, 16, 0), (1, 12, 45)),  # ends during the lunch break
        ((0, 19, 0), (1, 10, 0)),  # starts after closing
        ((0, 16, 0), (1, 7, 0)),  # ends before opening
    ],
)
def test_an_unattended_booking_starting_or_ending_outside_hours_is_refused(
    lunch_break, day, start, end
):
    (d0, *start_time), (d1, *end_time) = start, end
    assert refused(
        lunch_break,
        at(day + timedelta(days=d0), *start_time),
        at(day + timedelta(days=d1), *end_time),
    ) == ["outside_opening_hours"]


def test_an_unattended_booking_ending_on_a_day_without_hours_is_refused(lab, day):
    set_hours(lab.a.platform, day.weekday() + 1)
    set_policy(lab.a.machine, max_duration_minutes=2 * 24 * 60)

    assert refused(lab, at(day, 16), at(day + timedelta(days=1), 10)) == ["outside_opening_hours"]


# --- Closures --------------------------------------------------------------------


def close(platform, first: datetime, last: datetime, reason="Inventory") -> Closure:
    return Closure.objects.create(
        platform=platform, start_date=first.date(), end_date=last.date(), reason=reason
    )


def test_nothing_is_booked_on_a_closed_day(lab, day):
    close(lab.a.platform, day - timedelta(days=1), day + timedelta(days=1))

    before = written()
    with pytest.raises(BookingRejected) as refusal:
        attempt(lab, at(day, 9), at(day, 10))

    assert written() == before
    (problem,) = refusal.value.problems
    assert problem["code"] == "platform_closed"
    assert (day - timedelta(days=1)).date().isoformat() in problem["message"]
    assert (day + timedelta(days=1)).date().isoformat() in problem["message"]
    assert "Inventory" in problem["message"]


def test_a_closure_on_the_start_or_the_end_day_refuses_a_multi_day_booking(lab, day):
    set_policy(lab.a.machine, max_duration_minutes=3 * 24 * 60)
    start, end = at(day, 16), at(day + timedelta(days=2), 10)

    closure = close(lab.a.platform, day, day)
    assert refused(lab, start, end) == ["platform_closed"]
    closure.delete()

    close(lab.a.platform, day + timedelta(days=2), day + timedelta(days=2))
    assert refused(lab, start, end) == ["platform_closed"]


def test_a_closed_day_in_the_middle_of_an_unattended_booking_does_not_matter(lab, day):
    """Someone must be there to start and to end; the machine runs alone in between."""
    set_policy(lab.a.machine, max_duration_minutes=3 * 24 * 60)
    close(lab.a.platform, day + timedelta(days=1), day + timedelta(days=1))

    assert attempt(lab, at(day, 16), at(day + timedelta(days=2), 10)).pk


@pytest.fixture
def round_the_clock(lab):
    """Platform A open day and night: every day from 00:00 to 23:59."""
    OpeningHours.objects.filter(platform=lab.a.platform).delete()
    OpeningHours.objects.bulk_create(
        OpeningHours(platform=lab.a.platform, weekday=w, opens_at=time(0), closes_at=time(23, 59))
        for w in range(7)
    )


def test_a_booking_until_midnight_does_not_touch_the_next_days_closure(lab, round_the_clock, day):
    close(lab.a.platform, day + timedelta(days=1), day + timedelta(days=1))

    assert attempt(lab, at(day, 22), at(day + timedelta(days=1), 0)).pk
    assert refused(lab, at(day, 22), at(day + timedelta(days=1), 1)) == ["platform_closed"]


def test_closures_of_other_platforms_do_not_count(lab, day):
    close(lab.b.platform, day, day)

    assert attempt(lab, at(day, 9), at(day, 10)).pk


# --- Qualifications ----------------------------------------------------------------


@pytest.fixture
def trained(lab):
    """The printer needs a qualification; returns a function granting one."""
    set_policy(lab.a.machine, qualification_required=True)

    def grant(user, *, granted_on, expires_on=None, machine=None, machine_type=None, platform=None):
        qualification = Qualification.objects.create(
            platform=platform or lab.a.platform,
            name=f"Course {next(COURSE_NUMBERS)}",
            machine=machine,
            machine_type=machine_type,
        )
        return UserQualification.objects.create(
            user=user,
            qualification=qualification,
            granted_by=lab.a.manager,
            granted_on=granted_on,
            expires_on=expires_on,
        )

    return grant


def test_a_machine_requiring_a_qualification_refuses_the_untrained(lab, trained, day):
    assert refused(lab, at(day, 9), at(day, 10)) == ["qualification_missing"]


def test_a_qualification_for_the_machine_itself_is_enough(lab, trained, day):
    trained(lab.a.org_member, granted_on=day.date() - timedelta(days=30), machine=lab.a.machine)

    assert attempt(lab, at(day, 9), at(day, 10)).pk


def test_a_qualification_for_the_machines_type_is_enough(lab, trained, day):
    trained(
        lab.a.org_member,
        granted_on=day.date() - timedelta(days=30),
        machine_type=lab.a.machine.machine_type,
    )

    assert attempt(lab, at(day, 9), at(day, 10)).pk


def test_a_qualification_for_another_machine_or_type_or_platform_is_not_enough(lab, trained, day):
    long_ago = day.date() - timedelta(days=30)
    other_printer = factories.MachineFactory(platform=lab.a.platform)
    trained(lab.a.org_member, granted_on=long_ago, machine=other_printer)
    trained(lab.a.org_member, granted_on=long_ago, machine_type=other_printer.machine_type)
    # The same machine type, but trained on the other platform.
    trained(
        lab.a.org_member,
        granted_on=long_ago,
        machine_type=lab.a.machine.machine_type,
        platform=lab.b.platform,
    )

    assert refused(lab, at(day, 9), at(day, 10)) == ["qualification_missing"]


def test_only_the_bookers_own_qualification_counts(lab, trained, day):
    trained(lab.a.org_member, granted_on=day.date() - timedelta(days=30), machine=lab.a.machine)

    assert refused(lab, at(day, 9), at(day, 10), by=lab.a.org_admin) == ["qualification_missing"]


@pytest.mark.parametrize(
    ("granted", "expires", "valid"),
    [
        (-30, None, True),
        (0, None, True),  # granted on the booking's day
        (1, None, False),  # granted the day after
        (-30, 1, True),
        (-30, -1, False),  # expired the day before
    ],
)
def test_the_qualification_is_valid_on_the_bookings_day(lab, trained, day, granted, expires, valid):
    trained(
        lab.a.org_member,
        granted_on=day.date() + timedelta(days=granted),
        expires_on=None if expires is None else day.date() + timedelta(days=expires),
        machine=lab.a.machine,
    )

    if valid:
        assert attempt(lab, at(day, 9), at(day, 10)).pk
    else:
        assert refused(lab, at(day, 9), at(day, 10)) == ["qualification_missing"]


def test_the_qualification_is_valid_until_the_last_day_of_a_multi_day_booking(lab, trained, day):
    set_policy(lab.a.machine, max_duration_minutes=3 * 24 * 60)
    trained(
        lab.a.org_member,
        granted_on=day.date() - timedelta(days=30),
        expires_on=day.date() + timedelta(days=1),
        machine=lab.a.machine,
    )

    assert refused(lab, at(day, 16), at(day + timedelta(days=2), 10)) == ["qualification_missing"]


def test_a_qualification_expiring_on_the_day_covers_a_booking_until_midnight(
    lab, trained, round_the_clock, day
):
    trained(
        lab.a.org_member,
        granted_on=day.date() - timedelta(days=30),
        expires_on=day.date(),
        machine=lab.a.machine,
    )

    assert attempt(lab, at(day, 22), at(day + timedelta(days=1), 0)).pk
    assert refused(lab, at(day, 23), at(day + timedelta(days=1), 1)) == ["qualification_missing"]


@pytest.mark.parametrize("role", ["manager", "operator"])
def test_platform_staff_need_no_qualification(lab, trained, day, role):
    booking = attempt(lab, at(day, 9), at(day, 10), by=getattr(lab.a, role))

    assert booking.booked_by == getattr(lab.a, role)


# --- Who may book --------------------------------------------------------------------


@pytest.mark.parametrize("who", ["org_admin", "org_member", "manager", "operator"])
def test_the_organizations_members_and_the_platforms_staff_may_book_for_it(lab, day, who):
    assert attempt(lab, at(day, 9), at(day, 10), by=getattr(lab.a, who)).pk


@pytest.mark.parametrize(
    "who",
    [
        "a.org_accountant",  # the SME's accountant handles invoices, not machines
        "a.accountant",  # nor does the platform's
        "b.org_member",  # another SME's member
        "b.manager",  # another platform's staff
        "outsider",
    ],
)
def test_nobody_else_may_book_for_an_organization(lab, day, who):
    user = lab.outsider if who == "outsider" else getattr(getattr(lab, who[0]), who[2:])

    assert refused(lab, at(day, 9), at(day, 10), by=user) == ["not_allowed_to_book"]


def test_only_the_platforms_member_organizations_may_book_there(lab, day):
    assert refused(lab, at(day, 9), at(day, 10), organization=lab.b.org, by=lab.b.org_member) == [
        "not_a_platform_member"
    ]


def test_a_retired_machine_cannot_be_booked(lab, day):
    assert refused(lab, at(day, 9), at(day, 10), machine=lab.a.retired_machine) == [
        "machine_retired"
    ]


# --- Every problem at once -----------------------------------------------------------


def test_every_broken_rule_is_reported_together_in_a_stable_order(lab):
    sunday = next_weekday(6)
    set_hours(lab.a.platform, 6)
    close(lab.a.platform, sunday, sunday)
    set_policy(
        lab.a.retired_machine,
        qualification_required=True,
        min_notice_minutes=30 * 24 * 60,
        booking_horizon_days=3,
    )

    found = refused(
        lab,
        at(sunday, 7, 5),
        at(sunday, 7, 20),
        machine=lab.a.retired_machine,
        organization=lab.b.org,
        by=lab.outsider,
    )

    assert found == [
        "machine_retired",
        "not_a_platform_member",
        "not_allowed_to_book",
        "too_short",
        "misaligned",
        "too_late_to_book",
        "beyond_horizon",
        "outside_opening_hours",
        "platform_closed",
        "qualification_missing",
    ]


def test_each_problem_says_whether_a_manager_may_override_it(lab, day):
    sunday = next_weekday(6)
    set_hours(lab.a.platform, 6)
    close(lab.a.platform, sunday, sunday)
    set_policy(
        lab.a.retired_machine,
        qualification_required=True,
        min_notice_minutes=30 * 24 * 60,
        booking_horizon_days=3,
    )
    problems = []
    for kwargs in (
        {
            "start": at(sunday, 7, 5),
            "end": at(sunday, 7, 20),
            "machine": lab.a.retired_machine,
            "organization": lab.b.org,
            "by": lab.outsider,
        },
        {"start": at(day, 8), "end": at(day, 17)},
        {"start": at(day, 9), "end": at(day, 8)},
    ):
        with pytest.raises(BookingRejected) as refusal:
            attempt(lab, **kwargs)
        problems += refusal.value.problems

    assert {p["code"] for p in problems} == SOFT | HARD
    for problem in problems:
        assert set(problem) == {"code", "message", "soft"}
        assert problem["message"]
        assert problem["soft"] == (problem["code"] in SOFT), problem


def test_the_api_reports_every_problem_with_its_message(api, lab, day):
    set_policy(lab.a.machine, booking_horizon_days=3)

    response = book(api.as_user(lab.a.org_member), lab.a.machine, at(day, 7, 5), at(day, 7, 20))

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "booking_rejected"
    problems = error["details"]["problems"]
    assert codes(problems) == ["too_short", "misaligned", "beyond_horizon", "outside_opening_hours"]
    assert error["message"] == problems[0]["message"] == "Book at least 30 minutes."
    assert all(p["soft"] for p in problems)
    assert not Booking.objects.exists()


# --- Daylight saving time ----------------------------------------------------------
# Paris springs forward on 2027-03-28 (02:00 → 03:00) and falls back on 2027-10-31
# (03:00 → 02:00). Opening hours are wall-clock times: 08:00–18:00 in Paris is a
# different UTC interval before and after the change.

DST_DAYS = [
    # day, 08:00 in Paris, 18:00 in Paris
    (date(2027, 3, 27), utc(2027, 3, 27, 7), utc(2027, 3, 27, 17)),  # Saturday, UTC+1
    (date(2027, 3, 28), utc(2027, 3, 28, 6), utc(2027, 3, 28, 16)),  # Sunday, UTC+2
    (date(2027, 10, 30), utc(2027, 10, 30, 6), utc(2027, 10, 30, 16)),  # Saturday, UTC+2
    (date(2027, 10, 31), utc(2027, 10, 31, 7), utc(2027, 10, 31, 17)),  # Sunday, UTC+1
]


def problems_at(lab, start, end, now):
    return codes(
        p.as_dict()
        for p in booking_problems(
            machine=lab.a.machine,
            organization=lab.a.org,
            by=lab.a.org_member,
            start=start,
            end=end,
            now=now,
        )
    )


@pytest.mark.parametrize(
    ("day_", "opens", "closes"), DST_DAYS, ids=[d.isoformat() for d, _, _ in DST_DAYS]
)
def test_opening_hours_follow_the_wall_clock_across_dst(lab, day_, opens, closes):
    set_policy(lab.a.machine, max_duration_minutes=600)
    now = opens - timedelta(days=10)
    quarter = timedelta(minutes=15)

    assert paris(day_, 8) == opens and paris(day_, 18) == closes
    assert problems_at(lab, opens, closes, now) == []
    hour = timedelta(hours=1)
    assert problems_at(lab, opens - quarter, opens + hour, now) == ["outside_opening_hours"]
    assert problems_at(lab, closes - hour, closes + quarter, now) == ["outside_opening_hours"]


OVERNIGHT = [
    # Saturday 12:00 → Sunday 13:00 on the Paris clock is 24 h: the night lost an hour.
    pytest.param(date(2027, 3, 27), 13, timedelta(hours=24), [], id="spring-forward"),
    # Saturday 12:00 → Sunday 12:00 is 25 h: the night gained one.
    pytest.param(date(2027, 10, 30), 12, timedelta(hours=25), ["too_long"], id="fall-back"),
]


@pytest.mark.parametrize(("saturday", "end_hour", "elapsed", "problems"), OVERNIGHT)
@pytest.mark.parametrize("given_in", [UTC, PARIS], ids=["given-in-utc", "given-in-paris"])
def test_durations_are_elapsed_time_across_a_dst_change(
    lab, saturday, end_hour, elapsed, problems, given_in
):
    """On a machine taking 24 h at most. The same instants, whichever zone the
    caller's datetimes are in (a page's form gives them in the platform's zone)."""
    set_policy(lab.a.machine, max_duration_minutes=24 * 60)
    start = paris(saturday, 12).astimezone(given_in)
    end = paris(saturday + timedelta(days=1), end_hour).astimezone(given_in)

    assert end.astimezone(UTC) - start.astimezone(UTC) == elapsed
    assert problems_at(lab, start, end, now=start - timedelta(days=10)) == problems


@pytest.mark.parametrize(
    ("month", "end_hour", "status"),
    [(3, 13, 201), (10, 12, 400)],
    ids=["march-24h", "october-25h"],
)
def test_an_overnight_booking_across_the_next_real_dst_change(api, lab, month, end_hour, status):
    sunday = next_dst_sunday(month)
    set_policy(lab.a.machine, max_duration_minutes=24 * 60, booking_horizon_days=730)
    start, end = paris(sunday - timedelta(days=1), 12), paris(sunday, end_hour)

    response = book(api.as_user(lab.a.org_member), lab.a.machine, start, end)

    assert response.status_code == status, response.content
    if status == 201:
        stored = Booking.objects.get()
        assert stored.end - stored.start == timedelta(hours=24)
    else:
        assert codes(response.json()["error"]["details"]["problems"]) == ["too_long"]


# --- Conflicts: bookings, buffers, maintenance -------------------------------------


def test_maintenance_makes_the_machine_unavailable(lab, day):
    window = MaintenanceWindow.objects.create(
        machine=lab.a.machine, start=at(day, 10), end=at(day, 12), reason="Nozzle swap"
    )

    assert conflicting(lab, at(day, 11), at(day, 13)) == [
        {"start": window.start, "end": window.end, "kind": "maintenance"}
    ]
    assert conflicting(lab, at(day, 9), at(day, 17)) != []
    # Touching is not overlapping.
    assert attempt(lab, at(day, 8), at(day, 10)).pk
    assert attempt(lab, at(day, 12), at(day, 13)).pk


def test_maintenance_is_a_409_through_the_api(api, lab, day):
    MaintenanceWindow.objects.create(machine=lab.a.machine, start=at(day, 10), end=at(day, 12))

    response = book(api.as_user(lab.a.org_member), lab.a.machine, at(day, 11), at(day, 13))

    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "booking_conflict"
    assert error["details"]["conflicts"] == [
        {"start": iso_z(at(day, 10)), "end": iso_z(at(day, 12)), "kind": "maintenance"}
    ]
    assert not Booking.objects.exists()


def test_an_active_booking_holds_its_slot_and_the_buffer_after_it(lab, day):
    set_policy(lab.a.machine, buffer_after_minutes=30)
    first = attempt(lab, at(day, 9), at(day, 11))
    assert first.blocked_until == at(day, 11, 30)

    clash = {"start": at(day, 9), "end": at(day, 11, 30), "kind": "booking"}
    assert conflicting(lab, at(day, 10), at(day, 12), by=lab.a.org_admin) == [clash]
    assert conflicting(lab, at(day, 11, 15), at(day, 12), by=lab.a.org_admin) == [clash]
    assert attempt(lab, at(day, 11, 30), at(day, 12, 30), by=lab.a.org_admin).pk


def test_a_new_bookings_own_buffer_must_not_run_into_the_next_one(lab, day):
    set_policy(lab.a.machine, buffer_after_minutes=30)
    attempt(lab, at(day, 9), at(day, 11))

    assert conflicting(lab, at(day, 8), at(day, 8, 45)) != []
    assert attempt(lab, at(day, 8), at(day, 8, 30)).blocked_until == at(day, 9)


def test_every_clash_is_listed_in_time_order(lab, day):
    attempt(lab, at(day, 14), at(day, 15))
    attempt(lab, at(day, 9), at(day, 10))
    MaintenanceWindow.objects.create(machine=lab.a.machine, start=at(day, 11), end=at(day, 12))

    found = conflicting(lab, at(day, 9, 30), at(day, 14, 30), by=lab.a.manager)

    assert [(c["start"], c["kind"]) for c in found] == [
        (at(day, 9), "booking"),
        (at(day, 11), "maintenance"),
        (at(day, 14), "booking"),
    ]


def test_a_cancelled_booking_holds_nothing_and_a_pending_one_does(lab, day):
    cancelled = attempt(lab, at(day, 9), at(day, 10))
    Booking.objects.filter(pk=cancelled.pk).update(status=Booking.Status.CANCELLED)
    pending = attempt(lab, at(day, 9), at(day, 10))
    Booking.objects.filter(pk=pending.pk).update(status=Booking.Status.PENDING)

    assert conflicting(lab, at(day, 9), at(day, 10)) != []


def test_other_machines_do_not_clash(lab, day):
    other = factories.MachineFactory(platform=lab.a.platform)
    attempt(lab, at(day, 9), at(day, 10), machine=other)

    assert attempt(lab, at(day, 9), at(day, 10)).pk


# --- Approval ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("org_member", Booking.Status.PENDING),
        ("org_admin", Booking.Status.PENDING),
        ("manager", Booking.Status.CONFIRMED),
    ],
)
def test_a_machine_requiring_approval_takes_pending_bookings_from_smes(lab, day, who, status):
    set_policy(lab.a.machine, approval_required=True)

    booking = attempt(lab, at(day, 9), at(day, 10), by=getattr(lab.a, who))

    assert booking.status == status
    assert AuditEvent.objects.get(action="booking.create").changes["status"] == status


def test_a_pending_booking_already_holds_the_slot(lab, day):
    set_policy(lab.a.machine, approval_required=True)
    attempt(lab, at(day, 9), at(day, 10))

    assert conflicting(lab, at(day, 9), at(day, 10), by=lab.a.manager) != []


# --- A manager's override ----------------------------------------------------------


def _too_short(lab, day):
    return at(day, 9), at(day, 9, 15)


def _too_long(lab, day):
    return at(day, 8), at(day, 17)


def _misaligned(lab, day):
    return at(day, 9, 5), at(day, 10, 5)


def _too_late(lab, day):
    set_policy(lab.a.machine, min_notice_minutes=30 * 24 * 60)
    return at(day, 9), at(day, 10)


def _beyond_horizon(lab, day):
    set_policy(lab.a.machine, booking_horizon_days=3)
    return at(day, 9), at(day, 10)


def _outside_hours(lab, day):
    return at(day, 19), at(day, 20)


def _closed(lab, day):
    close(lab.a.platform, day, day)
    return at(day, 9), at(day, 10)


@pytest.mark.parametrize(
    ("scenario", "code"),
    [
        (_too_short, "too_short"),
        (_too_long, "too_long"),
        (_misaligned, "misaligned"),
        (_too_late, "too_late_to_book"),
        (_beyond_horizon, "beyond_horizon"),
        (_outside_hours, "outside_opening_hours"),
        (_closed, "platform_closed"),
    ],
)
def test_a_manager_overrides_a_soft_rule_with_a_recorded_reason(lab, day, scenario, code):
    start, end = scenario(lab, day)
    assert refused(lab, start, end, by=lab.a.manager) == [code]

    booking = attempt(lab, start, end, by=lab.a.manager, override_reason="Urgent repair part")

    assert booking.status == Booking.Status.CONFIRMED
    assert Booking.objects.get(pk=booking.pk).override_reason == "Urgent repair part"
    event = AuditEvent.objects.get(action="booking.create")
    assert event.changes["override_reason"] == "Urgent repair part"
    assert event.actor == lab.a.manager


def test_a_managers_override_waives_every_soft_rule_at_once_and_any_approval(lab):
    sunday = next_weekday(6)
    set_hours(lab.a.platform, 6)
    close(lab.a.platform, sunday, sunday)
    set_policy(lab.a.machine, approval_required=True, booking_horizon_days=3)

    booking = attempt(
        lab, at(sunday, 7, 5), at(sunday, 7, 20), by=lab.a.manager, override_reason="Demo day"
    )

    assert booking.status == Booking.Status.CONFIRMED
    assert booking.override_reason == "Demo day"


def test_a_reason_is_kept_only_when_a_rule_was_waived(lab, day):
    booking = attempt(
        lab, at(day, 9), at(day, 10), by=lab.a.manager, override_reason="Just in case"
    )

    assert booking.override_reason == ""


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"machine": "retired_machine"}, ["machine_retired"]),
        ({"organization": "b.org"}, ["not_a_platform_member"]),
        ({"backwards": True}, ["end_before_start"]),
    ],
    ids=["retired", "non-member", "backwards"],
)
def test_an_override_never_waives_a_hard_rule(lab, day, kwargs, expected):
    start, end = at(day, 9), at(day, 9, 5)  # also too short and misaligned: waived
    if kwargs.get("backwards"):
        start, end = end, start
    found = refused(
        lab,
        start,
        end,
        by=lab.a.manager,
        machine=lab.a.retired_machine if "machine" in kwargs else None,
        organization=lab.b.org if "organization" in kwargs else None,
        override_reason="Please",
    )

    assert found == expected


def test_an_override_never_waives_a_conflict(lab, day):
    attempt(lab, at(day, 9), at(day, 10))
    MaintenanceWindow.objects.create(machine=lab.a.machine, start=at(day, 12), end=at(day, 13))

    assert conflicting(lab, at(day, 9), at(day, 10), by=lab.a.manager, override_reason="VIP")
    assert conflicting(lab, at(day, 12), at(day, 13), by=lab.a.manager, override_reason="VIP")


@pytest.mark.parametrize("who", ["a.org_member", "a.org_admin", "a.operator", "b.manager"])
def test_only_the_platforms_managers_may_give_an_override_reason(lab, day, who):
    user = getattr(getattr(lab, who[0]), who[2:])
    before = written()

    with pytest.raises(Forbidden):
        # Even for a booking that breaks no rule.
        attempt(lab, at(day, 9), at(day, 10), by=user, override_reason="Trust me")

    assert written() == before


@pytest.mark.parametrize("who", ["org_member", "operator"])
def test_an_override_reason_from_anyone_but_a_manager_is_a_403(api, lab, day, who):
    response = book(
        api.as_user(getattr(lab.a, who)),
        lab.a.machine,
        at(day, 9),
        at(day, 9, 15),
        organization=lab.a.org.pk,
        override_reason="Trust me",
    )

    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"
    assert written() == (0, 0)


def test_a_managers_override_through_the_api(api, lab, day):
    response = book(
        api.as_user(lab.a.manager),
        lab.a.machine,
        at(day, 19),
        at(day, 20),
        organization=lab.a.org.pk,
        override_reason="Evening open house",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["override_reason"] == "Evening open house"
    assert body["booked_by"] == lab.a.manager.email
    assert body["organization"] == lab.a.org.pk
