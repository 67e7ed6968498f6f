"""Availability: free intervals of a machine, the earliest bookable slots, the
search across a platform, and the suggestions a conflict answers with.

Unless a test says otherwise the `hours` platform (world.a's) is open every day
08:00–12:00 and 13:30–18:00 in Paris; its printer takes 30 min to 8 h bookings on a
15-minute grid, at least 1 h and at most 90 days ahead, with no buffer. Selector
tests run on fixed days of 2027 with a fixed `now`; API tests on `day`, a Tuesday
one to two weeks ahead.

A booking [s, e) holds [s, e + buffer): it clashes when that meets a held period
(another booking up to its `blocked_until`) or maintenance. Opening hours constrain
s and e only, so a buffer may run past closing time.
"""

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from booking.errors import BookingConflict
from booking.models import Booking
from booking.rules import booking_problems
from booking.selectors import earliest_slots, free_intervals, search_slots, searchable_machines
from booking.services import clashes, create_booking
from equipment.models import Closure, MaintenanceWindow, OpeningHours, PlatformMembership
from tests import factories
from tests.booking.conftest import PARIS, at, next_weekday
from tests.booking.support import iso_z, make_booking, paris, utc

TUESDAY = date(2027, 2, 9)  # winter: Paris is UTC+1
SPRING_FORWARD = date(2027, 3, 28)  # 02:00 CET becomes 03:00 CEST
FALL_BACK = date(2027, 10, 31)  # 03:00 CEST becomes 02:00 CET
NOW = utc(2027, 1, 15, 12)  # TUESDAY and SPRING_FORWARD are within the 90-day horizon
ONE_DAY = timedelta(days=1)
LUNCH_BREAK = ((time(8), time(12)), (time(13, 30), time(18)))


def set_hours(platform, *spans, weekdays=range(7)):
    OpeningHours.objects.filter(platform=platform, weekday__in=list(weekdays)).delete()
    for weekday in weekdays:
        for opens_at, closes_at in spans:
            factories.OpeningHoursFactory(
                platform=platform, weekday=weekday, opens_at=opens_at, closes_at=closes_at
            )


def set_policy(machine, **policy):
    for name, value in policy.items():
        setattr(machine, name, value)
    machine.save()


def local(intervals, tz_day=None) -> list[tuple[str, str]]:
    """Intervals as Paris wall-clock "HH:MM" pairs (prefixed "+1 " on the next day
    after `tz_day`), so expectations read like the opening hours."""

    def show(moment):
        moment = moment.astimezone(PARIS)
        prefix = f"+{(moment.date() - tz_day).days} " if tz_day and moment.date() != tz_day else ""
        return f"{prefix}{moment:%H:%M}"

    return [(show(s), show(e)) for s, e in intervals]


def whole_day(day: date) -> dict:
    return {"start": paris(day, 0), "end": paris(day + ONE_DAY, 0)}


@pytest.fixture
def hours(lab):
    """Every day 08:00–12:00 and 13:30–18:00; nothing else on platform A."""
    set_hours(lab.a.platform, *LUNCH_BREAK)
    return lab


@pytest.fixture
def busy_tuesday(hours):
    """On TUESDAY, with a 15-minute buffer when booked: a confirmed booking 09:00–10:00
    (held until 10:15), a pending one 14:00–15:30 (held until 15:45), a cancelled one
    11:00–11:30 (holds nothing), maintenance 16:30–17:00; and another machine booked
    all day (not this one's business)."""
    lab = hours
    a = lab.a

    def booked(start, end, **fields):
        return make_booking(
            a.machine,
            a.org,
            a.org_member,
            start,
            end,
            blocked_until=end + timedelta(minutes=15),
            **fields,
        )

    booked(paris(TUESDAY, 9), paris(TUESDAY, 10))
    booked(paris(TUESDAY, 14), paris(TUESDAY, 15, 30), status=Booking.Status.PENDING)
    booked(paris(TUESDAY, 11), paris(TUESDAY, 11, 30), status=Booking.Status.CANCELLED)
    MaintenanceWindow.objects.create(
        machine=a.machine, start=paris(TUESDAY, 16, 30), end=paris(TUESDAY, 17)
    )
    neighbour = factories.MachineFactory(platform=a.platform, machine_type=a.machine.machine_type)
    make_booking(neighbour, a.org, a.org_member, paris(TUESDAY, 8), paris(TUESDAY, 18))
    return lab


# --- Free intervals ------------------------------------------------------------------------


def test_free_intervals_are_opening_hours_minus_bookings_buffers_and_maintenance(busy_tuesday):
    free = free_intervals(machine=busy_tuesday.a.machine, **whole_day(TUESDAY))

    assert local(free) == [
        ("08:00", "09:00"),
        ("10:15", "12:00"),  # the 09:00–10:00 booking holds its 15-minute buffer
        ("13:30", "14:00"),
        ("15:45", "16:30"),  # a pending booking holds its slot too
        ("17:00", "18:00"),  # after the maintenance
    ]
    assert free[0] == (utc(2027, 2, 9, 7), utc(2027, 2, 9, 8))  # aware, in UTC
    assert all(s.tzinfo == UTC and e.tzinfo == UTC for s, e in free)


def test_the_window_cuts_the_free_intervals(busy_tuesday):
    free = free_intervals(
        machine=busy_tuesday.a.machine, start=paris(TUESDAY, 10, 30), end=paris(TUESDAY, 13, 45)
    )

    assert local(free) == [("10:30", "12:00"), ("13:30", "13:45")]


def test_a_window_given_in_another_offset_is_the_same_instants(busy_tuesday):
    free = free_intervals(
        machine=busy_tuesday.a.machine,
        start=datetime(2027, 2, 9, 4, 30, tzinfo=ZoneInfo("America/Sao_Paulo")),  # 07:30Z
        end=utc(2027, 2, 9, 8, 30),
    )

    assert local(free) == [("08:30", "09:00")]


def test_adjacent_opening_spans_make_one_free_interval(lab):
    set_hours(lab.a.platform, (time(8), time(12)), (time(12), time(18)))

    assert local(free_intervals(machine=lab.a.machine, **whole_day(TUESDAY))) == [
        ("08:00", "18:00")
    ]


def test_a_closed_day_has_no_free_time(hours):
    Closure.objects.create(
        platform=hours.a.platform, start_date=TUESDAY, end_date=TUESDAY, reason="Audit"
    )
    free = free_intervals(
        machine=hours.a.machine,
        start=paris(TUESDAY - ONE_DAY, 0),
        end=paris(TUESDAY + 2 * ONE_DAY, 0),
    )

    monday, wednesday = TUESDAY - ONE_DAY, TUESDAY + ONE_DAY
    assert [s.astimezone(PARIS).date() for s, _e in free] == [
        monday,
        monday,
        wednesday,
        wednesday,
    ]


def test_a_window_straddling_midnight_takes_the_evening_and_the_morning(busy_tuesday):
    free = free_intervals(
        machine=busy_tuesday.a.machine, start=paris(TUESDAY, 16), end=paris(TUESDAY + ONE_DAY, 9)
    )

    assert local(free, TUESDAY) == [
        ("16:00", "16:30"),
        ("17:00", "18:00"),
        ("+1 08:00", "+1 09:00"),
    ]


def test_local_days_are_the_platforms_not_utcs(lab):
    """Auckland is UTC+13 in February: a UTC day holds the afternoon of one local day
    and the morning of the next; a closure removes a local day."""
    platform = lab.a.platform
    platform.timezone = "Pacific/Auckland"
    platform.save()
    set_hours(platform, *LUNCH_BREAK)
    window = {"start": utc(2027, 2, 9, 0), "end": utc(2027, 2, 10, 0)}

    assert free_intervals(machine=lab.a.machine, **window) == [
        (utc(2027, 2, 9, 0, 30), utc(2027, 2, 9, 5)),  # 9 Feb 13:30–18:00 in Auckland
        (utc(2027, 2, 9, 19), utc(2027, 2, 9, 23)),  # 10 Feb 08:00–12:00 in Auckland
    ]
    Closure.objects.create(
        platform=platform, start_date=date(2027, 2, 10), end_date=date(2027, 2, 10)
    )
    assert free_intervals(machine=lab.a.machine, **window) == [
        (utc(2027, 2, 9, 0, 30), utc(2027, 2, 9, 5))
    ]


def test_a_retired_machine_has_no_free_time(hours):
    set_policy(hours.a.machine, is_active=False)

    assert free_intervals(machine=hours.a.machine, **whole_day(TUESDAY)) == []


# --- DST -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        # The Saturday in winter time (UTC+1), the Sunday in summer time (UTC+2).
        (
            (SPRING_FORWARD - ONE_DAY, SPRING_FORWARD),
            [
                (utc(2027, 3, 27, 7), utc(2027, 3, 27, 11)),
                (utc(2027, 3, 27, 12, 30), utc(2027, 3, 27, 17)),
                (utc(2027, 3, 28, 6), utc(2027, 3, 28, 10)),
                (utc(2027, 3, 28, 11, 30), utc(2027, 3, 28, 16)),
            ],
        ),
        # The Saturday in summer time, the Sunday in winter time.
        (
            (FALL_BACK - ONE_DAY, FALL_BACK),
            [
                (utc(2027, 10, 30, 6), utc(2027, 10, 30, 10)),
                (utc(2027, 10, 30, 11, 30), utc(2027, 10, 30, 16)),
                (utc(2027, 10, 31, 7), utc(2027, 10, 31, 11)),
                (utc(2027, 10, 31, 12, 30), utc(2027, 10, 31, 17)),
            ],
        ),
    ],
)
def test_opening_hours_follow_the_paris_clock_across_dst(hours, days, expected):
    first, last = days
    window = {"start": paris(first, 0), "end": paris(last + ONE_DAY, 0)}

    assert free_intervals(machine=hours.a.machine, **window) == expected


@pytest.mark.parametrize(
    ("day", "spans", "expected"),
    [
        # 01:00 CET to 04:00 CEST is two hours, not three.
        (SPRING_FORWARD, (time(1), time(4)), (utc(2027, 3, 28, 0), utc(2027, 3, 28, 2))),
        # 02:30 never happens that night: the platform opens when the clock jumps.
        (SPRING_FORWARD, (time(2, 30), time(4)), (utc(2027, 3, 28, 1), utc(2027, 3, 28, 2))),
        # 01:00 CEST to 04:00 CET is four hours.
        (FALL_BACK, (time(1), time(4)), (utc(2027, 10, 30, 23), utc(2027, 10, 31, 3))),
        # 02:30 happens twice: open from the first, closed after the second.
        (FALL_BACK, (time(2, 30), time(4)), (utc(2027, 10, 31, 0, 30), utc(2027, 10, 31, 3))),
        (FALL_BACK, (time(1), time(2, 30)), (utc(2027, 10, 30, 23), utc(2027, 10, 31, 1, 30))),
    ],
)
def test_night_opening_hours_on_dst_nights(lab, day, spans, expected):
    set_hours(lab.a.platform, spans)

    assert free_intervals(machine=lab.a.machine, **whole_day(day)) == [expected]


def test_slots_on_a_two_hour_grid_follow_the_paris_clock_on_the_dst_day(hours):
    set_policy(hours.a.machine, granularity_minutes=120, min_duration_minutes=120)

    slots = earliest_slots(
        machine=hours.a.machine,
        duration=timedelta(hours=2),
        limit=4,
        now=NOW,
        **whole_day(SPRING_FORWARD),
    )

    # 08–10, 10–12, then 14–16 (13:30 is off the grid), 16–18: Paris time, UTC+2.
    assert slots == [
        (utc(2027, 3, 28, 6), utc(2027, 3, 28, 8)),
        (utc(2027, 3, 28, 8), utc(2027, 3, 28, 10)),
        (utc(2027, 3, 28, 12), utc(2027, 3, 28, 14)),
        (utc(2027, 3, 28, 14), utc(2027, 3, 28, 16)),
    ]


def test_an_overnight_slot_across_the_dst_night_lasts_its_elapsed_time(hours):
    """Saturday 17:00 CET to Sunday 18:00 CEST is 24 h elapsed."""
    set_policy(hours.a.machine, max_duration_minutes=2 * 24 * 60)
    saturday = SPRING_FORWARD - ONE_DAY
    MaintenanceWindow.objects.create(
        machine=hours.a.machine, start=paris(saturday, 8), end=paris(saturday, 17)
    )

    slots = earliest_slots(
        machine=hours.a.machine,
        duration=timedelta(hours=24),
        start=paris(saturday, 0),
        end=paris(SPRING_FORWARD + ONE_DAY, 0),
        limit=1,
        now=NOW,
    )

    assert slots == [(paris(saturday, 17), paris(SPRING_FORWARD, 18))]
    assert local(slots, saturday) == [("17:00", "+1 18:00")]


# --- Earliest slots ---------------------------------------------------------------------------


def test_a_slot_keeps_room_for_its_own_buffer_but_not_after_closing(busy_tuesday):
    """With a 30-minute buffer, an hour fits at 10:15 (held until 11:45); not before
    09:00 (its buffer would meet the 09:00 booking), not 13:30 (meets 14:00), not 15:45
    (meets the 16:30 maintenance); at 17:00 its buffer runs past closing, which is fine."""
    set_policy(busy_tuesday.a.machine, buffer_after_minutes=30)

    slots = earliest_slots(
        machine=busy_tuesday.a.machine,
        duration=timedelta(hours=1),
        start=paris(TUESDAY, 0),
        end=paris(TUESDAY + 2 * ONE_DAY, 0),
        limit=3,
        now=NOW,
    )

    assert local(slots, TUESDAY) == [
        ("10:15", "11:15"),
        ("17:00", "18:00"),
        ("+1 08:00", "+1 09:00"),
    ]


def test_slots_never_overlap_the_busy_periods_or_the_lunch_break(busy_tuesday):
    slots = earliest_slots(
        machine=busy_tuesday.a.machine,
        duration=timedelta(minutes=45),
        limit=10,
        now=NOW,
        **whole_day(TUESDAY),
    )

    assert local(slots) == [
        ("08:00", "08:45"),
        ("10:15", "11:00"),
        ("11:00", "11:45"),
        ("15:45", "16:30"),  # ends where the maintenance starts: no buffer, fits
        ("17:00", "17:45"),
    ]


def test_a_gap_exactly_as_long_as_a_slot_and_its_buffer_takes_it_a_minute_less_does_not(hours):
    """On PostgreSQL the search reads only the gaps long enough for a slot and its
    buffer: the boundary counts, overlapping busy periods (a booking inside
    maintenance) are one, and the day's first and last free stretches stay free."""
    lab = hours
    machine = lab.a.machine
    set_policy(machine, buffer_after_minutes=15)

    def booked(start, end):
        make_booking(machine, lab.a.org, lab.a.org_member, start, end, blocked_until=end)

    booked(paris(TUESDAY, 8, 45), paris(TUESDAY, 9))  # 08:00-08:45: an hour does not fit
    booked(paris(TUESDAY, 9, 59), paris(TUESDAY, 10, 15))  # 09:00-09:59: a minute short
    booked(paris(TUESDAY, 11, 30), paris(TUESDAY, 13, 30))  # 10:15-11:30: exactly 1 h 15
    MaintenanceWindow.objects.create(
        machine=machine, start=paris(TUESDAY, 13, 30), end=paris(TUESDAY, 16)
    )
    booked(paris(TUESDAY, 14), paris(TUESDAY, 15))  # inside the maintenance

    slots = earliest_slots(
        machine=machine, duration=timedelta(hours=1), limit=5, now=NOW, **whole_day(TUESDAY)
    )

    assert local(slots) == [("10:15", "11:15"), ("16:00", "17:00"), ("17:00", "18:00")]


def test_the_notice_and_the_horizon_count_from_now(busy_tuesday):
    machine = busy_tuesday.a.machine
    search = {"machine": machine, "duration": timedelta(hours=1), "limit": 1}

    # At 10:20 with an hour's notice, 11:30 is the earliest start on the grid: too
    # late for the morning; 13:30 and 15:45 meet busy periods.
    now = paris(TUESDAY, 10, 20)
    assert local(earliest_slots(**search, now=now, **whole_day(TUESDAY))) == [("17:00", "18:00")]
    now = paris(TUESDAY, 7, 30)  # 08:30–09:30 would meet the 09:00 booking
    assert local(earliest_slots(**search, now=now, **whole_day(TUESDAY))) == [("10:15", "11:15")]
    # 90 days before TUESDAY at 09:00, only slots starting by 09:00 are in the horizon.
    now = paris(TUESDAY, 9) - timedelta(days=90)
    assert local(earliest_slots(**search, now=now, **whole_day(TUESDAY))) == [("08:00", "09:00")]
    now = paris(TUESDAY, 7, 59) - timedelta(days=90)
    assert earliest_slots(**search, now=now, **whole_day(TUESDAY)) == []


def test_a_duration_outside_the_machines_limits_has_no_slot(hours):
    machine = hours.a.machine  # 30 minutes to 8 hours
    for minutes in (15, 8 * 60 + 15):
        assert (
            earliest_slots(
                machine=machine,
                duration=timedelta(minutes=minutes),
                limit=3,
                now=NOW,
                **whole_day(TUESDAY),
            )
            == []
        )


def test_a_duration_off_the_grid_has_no_slot(hours):
    assert (
        earliest_slots(
            machine=hours.a.machine,
            duration=timedelta(minutes=50),
            limit=3,
            now=NOW,
            **whole_day(TUESDAY),
        )
        == []
    )


def test_multi_day_slots_start_and_end_in_hours_and_skip_closed_days(busy_tuesday):
    machine = busy_tuesday.a.machine
    set_policy(machine, max_duration_minutes=2 * 24 * 60)
    search = {
        "machine": machine,
        "duration": timedelta(hours=24),
        "start": paris(TUESDAY, 0),
        "end": paris(TUESDAY + 5 * ONE_DAY, 0),
        "limit": 1,
        "now": NOW,
    }

    # Nothing may hold any of the 24 hours: the first start after the maintenance.
    assert local(earliest_slots(**search), TUESDAY) == [("17:00", "+1 17:00")]
    # Wednesday closed: it can be neither the start nor the end day.
    wednesday = TUESDAY + ONE_DAY
    Closure.objects.create(platform=machine.platform, start_date=wednesday, end_date=wednesday)
    assert local(earliest_slots(**search), TUESDAY) == [("+2 08:00", "+3 08:00")]


def test_a_retired_machine_has_no_slot(hours):
    set_policy(hours.a.machine, is_active=False)

    assert (
        earliest_slots(
            machine=hours.a.machine,
            duration=timedelta(hours=1),
            limit=3,
            now=NOW,
            **whole_day(TUESDAY),
        )
        == []
    )


def accepted_slots(lab, machine, duration, start, end, now, limit=3) -> list:
    """The slots the rules themselves give: every quarter hour from `start`, tried
    in order with booking_problems() and clashes() (the next try after a hit at
    its end). What earliest_slots() must answer."""
    buffer = timedelta(minutes=machine.buffer_after_minutes)

    def accepted(moment):
        problems = booking_problems(
            machine=machine,
            organization=lab.a.org,
            by=lab.a.org_member,
            start=moment,
            end=moment + duration,
            now=now,
        )
        return not problems and not clashes(
            machine=machine, start=moment, blocked_until=moment + duration + buffer
        )

    moment, found = start.astimezone(UTC), []
    hour = moment.replace(minute=0, second=0, microsecond=0)
    moment += (hour - moment) % timedelta(minutes=15)  # the first quarter hour from `start`
    while moment + duration <= end and len(found) < limit:
        if accepted(moment):
            found.append((moment, moment + duration))
            moment += duration
        else:
            moment += timedelta(minutes=15)
    return found


@pytest.mark.parametrize("day", [TUESDAY, SPRING_FORWARD, FALL_BACK])
@pytest.mark.parametrize("minutes", [45, 90, 240, 24 * 60])
def test_slots_are_the_starts_create_booking_would_accept_in_order(busy_tuesday, day, minutes):
    """Against the rules themselves (accepted_slots), over two days with bookings,
    buffers, maintenance, a lunch break, and a DST change."""
    lab = busy_tuesday
    machine = lab.a.machine
    set_policy(machine, buffer_after_minutes=30, max_duration_minutes=2 * 24 * 60)
    make_booking(machine, lab.a.org, lab.a.org_member, paris(day, 10, 30), paris(day, 11))
    make_booking(
        machine, lab.a.org, lab.a.org_member, paris(day + ONE_DAY, 15), paris(day + ONE_DAY, 16)
    )
    now = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(days=30)
    duration = timedelta(minutes=minutes)
    window = {"start": paris(day, 0), "end": paris(day + 2 * ONE_DAY, 0)}

    expected = accepted_slots(lab, machine, duration, now=now, **window)

    found = earliest_slots(machine=machine, duration=duration, limit=3, now=now, **window)
    assert found == expected
    assert expected or minutes == 24 * 60


@pytest.mark.parametrize("seed", range(12))
def test_slots_among_random_bookings_are_the_starts_the_rules_accept(hours, seed):
    """Random two days of one machine (its grid, buffer, bookings of any status,
    maintenance) and a random window and duration: the search's slots are those of
    accepted_slots(). On PostgreSQL this is where the database's gap filter and the
    rounds meet every kind of gap."""
    rng = random.Random(seed)
    lab = hours
    machine = lab.a.machine
    buffer = rng.choice([0, 15, 30])
    set_policy(machine, granularity_minutes=rng.choice([15, 30, 60]), buffer_after_minutes=buffer)
    moment = paris(TUESDAY, 7)
    while moment < paris(TUESDAY + 2 * ONE_DAY, 12):
        moment += timedelta(minutes=15 * rng.choice([0, 1, 2, 3, 4, 5, 6, 8, 12]))
        end = moment + timedelta(minutes=15 * rng.randint(1, 12))
        status = rng.choice(["confirmed"] * 4 + ["pending", "cancelled"])
        make_booking(
            machine,
            lab.a.org,
            lab.a.org_member,
            moment,
            end,
            blocked_until=end + timedelta(minutes=buffer),
            status=status,
        )
        moment = end + timedelta(minutes=buffer)
    if rng.random() < 0.5:
        start = paris(TUESDAY, 8) + timedelta(minutes=15 * rng.randint(0, 150))
        MaintenanceWindow.objects.create(
            machine=machine, start=start, end=start + timedelta(minutes=15 * rng.randint(1, 16))
        )
    duration = timedelta(minutes=rng.choice([30, 45, 60, 90, 120, 240]))
    start = paris(TUESDAY, 0) + timedelta(minutes=5 * rng.randint(0, 12 * 24))
    window = {"start": start, "end": start + 2 * ONE_DAY}

    expected = accepted_slots(lab, machine, duration, now=NOW, **window)

    found = earliest_slots(machine=machine, duration=duration, limit=3, now=NOW, **window)
    assert found == expected


# --- The availability API --------------------------------------------------------------------


def availability(client, machine, start, end):
    return client.get(
        f"/api/v1/machines/{machine.pk}/availability/",
        {"start": start.isoformat(), "end": end.isoformat()},
    )


@pytest.fixture
def day():
    return next_weekday(1)


@pytest.fixture
def rival(hours, day):
    """SME b books on platform A too: its booking of A's printer, 09:00–10:00 held
    until 10:30, with things nobody else should read."""
    lab = hours
    PlatformMembership.objects.create(organization=lab.b.org, platform=lab.a.platform)
    return make_booking(
        lab.a.machine,
        lab.b.org,
        lab.b.org_member,
        at(day, 9),
        at(day, 10),
        blocked_until=at(day, 10, 30),
        title="Secret prototype",
        note="For Customer Zeta",
    )


def test_availability_answers_free_and_anonymous_busy_time(api, hours, rival, day):
    MaintenanceWindow.objects.create(
        machine=hours.a.machine, start=at(day, 16), end=at(day, 17), reason="Nozzle change"
    )

    response = availability(api.as_user(hours.a.org_member), hours.a.machine, day, day + ONE_DAY)

    assert response.status_code == 200, response.content
    assert response.json() == {
        "machine": hours.a.machine.pk,
        "timezone": "Europe/Paris",
        "free": [
            {"start": iso_z(at(day, 8)), "end": iso_z(at(day, 9))},
            {"start": iso_z(at(day, 10, 30)), "end": iso_z(at(day, 12))},
            {"start": iso_z(at(day, 13, 30)), "end": iso_z(at(day, 16))},
            {"start": iso_z(at(day, 17)), "end": iso_z(at(day, 18))},
        ],
        "busy": [
            {"start": iso_z(at(day, 9)), "end": iso_z(at(day, 10, 30)), "kind": "booking"},
            {"start": iso_z(at(day, 16)), "end": iso_z(at(day, 17)), "kind": "maintenance"},
        ],
    }
    text = response.content.decode()
    for secret in (
        "Secret prototype",
        "Customer Zeta",
        hours.b.org.legal_name,
        hours.b.org_member.email,
        "Nozzle",
    ):
        assert secret not in text


def test_availability_on_the_dst_days(api, hours):
    client = api.as_user(hours.a.org_member)
    for day, first_open in ((SPRING_FORWARD, "06:00"), (FALL_BACK, "07:00")):
        response = availability(client, hours.a.machine, paris(day, 0), paris(day + ONE_DAY, 0))

        assert response.status_code == 200, response.content
        free = response.json()["free"]
        assert free[0]["start"] == f"{day.isoformat()}T{first_open}:00Z"
        assert len(free) == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "start"),
        ({"start": "2027-02-09T08:00:00+01:00"}, "end"),
        ({"start": "2027-02-09T08:00:00", "end": "2027-02-10T08:00:00+01:00"}, "start"),
        ({"start": "2027-02-09T08:00:00Z", "end": "2027-02-09T08:00:00Z"}, "end"),
        ({"start": "2027-02-09T08:00:00Z", "end": "2027-02-08T08:00:00Z"}, "end"),
        ({"start": "2027-02-09T00:00:00Z", "end": "2027-04-12T00:00:01Z"}, "end"),  # > 62 days
        ({"start": "soon", "end": "2027-02-09T08:00:00Z"}, "start"),
        ({"start": "0001-01-01T00:00:00Z", "end": "2027-02-09T08:00:00Z"}, "start"),
    ],
)
def test_availability_needs_a_bounded_window_of_aware_date_times(api, hours, query, field):
    response = api.as_user(hours.a.org_member).get(
        f"/api/v1/machines/{hours.a.machine.pk}/availability/", query
    )

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]["fields"]


def test_a_62_day_window_is_fine(api, hours):
    response = api.as_user(hours.a.org_member).get(
        f"/api/v1/machines/{hours.a.machine.pk}/availability/",
        {"start": "2027-02-09T00:00:00Z", "end": "2027-04-12T00:00:00Z"},
    )

    assert response.status_code == 200, response.content
    assert len(response.json()["free"]) == 62 * 2


@pytest.mark.parametrize(
    ("who", "machine", "status"),
    [
        ("a.org_member", "b.machine", 404),  # another platform's
        ("a.org_member", "a.retired_machine", 404),  # members see bookable machines only
        ("outsider", "a.machine", 404),
        ("a.manager", "a.retired_machine", 200),  # staff see theirs, with no free time
        ("b.manager", "a.machine", 404),
    ],
)
def test_availability_of_a_machine_you_cannot_see_is_not_found(
    api, hours, day, who, machine, status
):
    user = hours.outsider if who == "outsider" else getattr(getattr(hours, who[0]), who[2:])
    target = getattr(getattr(hours, machine[0]), machine[2:])

    response = availability(api.as_user(user), target, day, day + ONE_DAY)

    assert response.status_code == status, response.content
    if status == 200:
        assert response.json()["free"] == []


def test_availability_of_an_unknown_machine_is_not_found(api, hours, day):
    client = api.as_user(hours.a.org_member)
    for pk in ("999999", "abc", str(2**70)):
        response = client.get(
            f"/api/v1/machines/{pk}/availability/",
            {"start": iso_z(day), "end": iso_z(day + ONE_DAY)},
        )
        assert response.status_code == 404, (pk, response.content)
        assert response.json()["error"]["code"] == "not_found"


def test_availability_is_for_signed_in_users(api, hours, day):
    response = availability(api, hours.a.machine, day, day + ONE_DAY)

    assert response.status_code == 401


# --- The search across a platform --------------------------------------------------------------


SEARCH = "/api/v1/platforms/{}/availability-search/"


@pytest.fixture
def printers(hours, day):
    """Three FDM printers on platform A, busy on `day` until 12:00 (a), 09:00 (b) and
    08:30 (c, maintenance); a retired FDM printer, a laser cutter, and an FDM printer
    on platform B, which never show."""
    lab = hours
    fdm = factories.MachineTypeFactory(name="FDM printer", slug="fdm")
    laser = factories.MachineTypeFactory(name="Laser cutter", slug="laser")
    a = lab.a.machine
    a.machine_type = fdm
    a.save()
    b = factories.MachineFactory(platform=lab.a.platform, machine_type=fdm, name="Printer b")
    c = factories.MachineFactory(platform=lab.a.platform, machine_type=fdm, name="Printer c")
    factories.MachineFactory(platform=lab.a.platform, machine_type=fdm, is_active=False)
    factories.MachineFactory(platform=lab.a.platform, machine_type=laser)
    factories.MachineFactory(platform=lab.b.platform, machine_type=fdm)
    make_booking(a, lab.a.org, lab.a.org_member, at(day, 8), at(day, 12))
    make_booking(b, lab.a.org, lab.a.org_member, at(day, 8), at(day, 9))
    MaintenanceWindow.objects.create(machine=c, start=at(day, 8), end=at(day, 8, 30))
    return {"fdm": fdm, "a": a, "b": b, "c": c, "lab": lab}


def search(client, platform, **query):
    return client.get(SEARCH.format(platform.pk), query)


def test_the_search_answers_each_machines_earliest_slots_earliest_first(api, printers, day):
    lab = printers["lab"]

    response = search(
        api.as_user(lab.a.org_member),
        lab.a.platform,
        machine_type="fdm",
        duration_minutes=60,
        start=iso_z(day),
        end=iso_z(day + ONE_DAY),
        limit=2,
    )

    assert response.status_code == 200, response.content

    def slots(*pairs):
        return [{"start": iso_z(at(day, *s)), "end": iso_z(at(day, *e))} for s, e in pairs]

    assert response.json() == {
        "results": [
            {
                "machine": printers["c"].pk,
                "machine_name": "Printer c",
                "slots": slots(((8, 30), (9, 30)), ((9, 30), (10, 30))),
            },
            {
                "machine": printers["b"].pk,
                "machine_name": "Printer b",
                "slots": slots(((9,), (10,)), ((10,), (11,))),
            },
            {
                "machine": printers["a"].pk,
                "machine_name": "Printer a",
                "slots": slots(((13, 30), (14, 30)), ((14, 30), (15, 30))),
            },
        ]
    }


def test_the_search_takes_the_type_by_id_and_a_machine_without_slot_comes_last(api, printers, day):
    lab = printers["lab"]
    make_booking(printers["c"], lab.a.org, lab.a.org_member, at(day, 8, 30), at(day, 18))

    response = search(
        api.as_user(lab.a.org_member),
        lab.a.platform,
        machine_type=str(printers["fdm"].pk),
        duration_minutes=240,
        start=iso_z(at(day, 8)),
        end=iso_z(at(day, 18)),
    )

    assert response.status_code == 200, response.content
    assert [(r["machine_name"], r["slots"]) for r in response.json()["results"]] == [
        # Four hours fit in the afternoon span only; a and b tie, by name.
        ("Printer a", [{"start": iso_z(at(day, 13, 30)), "end": iso_z(at(day, 17, 30))}]),
        ("Printer b", [{"start": iso_z(at(day, 13, 30)), "end": iso_z(at(day, 17, 30))}]),
        ("Printer c", []),
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"machine_type": "unknown"}, "machine_type"),
        ({"machine_type": "999999"}, "machine_type"),
        ({"machine_type": ""}, "machine_type"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"duration_minutes": "an hour"}, "duration_minutes"),
        ({"duration_minutes": 15 * 24 * 60}, "duration_minutes"),
        ({"limit": 0}, "limit"),
        ({"limit": 11}, "limit"),
        ({"end": "2027-03-13T00:00:01Z"}, "end"),  # 31 days and a second
        ({"end": "2027-02-10T00:00:00Z"}, "end"),  # before the start
        ({"start": "2027-02-10T00:00:00"}, "start"),  # no offset
    ],
)
def test_the_search_refuses_bad_input(api, printers, query, field):
    lab = printers["lab"]
    good = {
        "machine_type": "fdm",
        "duration_minutes": 60,
        "start": "2027-02-10T00:00:00Z",
        "end": "2027-03-13T00:00:00Z",
    }

    response = search(api.as_user(lab.a.org_member), lab.a.platform, **{**good, **query})

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]["fields"]
    assert search(api.as_user(lab.a.org_member), lab.a.platform, **good).status_code == 200


@pytest.mark.parametrize("who", ["a.org_member", "b.manager", "outsider"])
def test_the_search_on_a_platform_you_cannot_see_is_not_found(api, printers, day, who):
    lab = printers["lab"]
    user = lab.outsider if who == "outsider" else getattr(getattr(lab, who[0]), who[2:])
    platform = lab.b.platform if who == "a.org_member" else lab.a.platform

    response = search(
        api.as_user(user),
        platform,
        machine_type="fdm",
        duration_minutes=60,
        start=iso_z(day),
        end=iso_z(day + ONE_DAY),
    )

    assert response.status_code == 404, response.content


def test_search_slots_of_several_machines_cost_the_same_queries_as_one(printers, day):
    lab = printers["lab"]
    machines = [printers[name] for name in "abc"]
    for machine in machines:
        machine.platform = lab.a.platform
    window = {"start": day, "end": day + ONE_DAY}

    with CaptureQueriesContext(connection) as one:
        search_slots(machines=machines[:1], duration=timedelta(hours=1), limit=3, **window)
    with CaptureQueriesContext(connection) as three:
        found = search_slots(machines=machines, duration=timedelta(hours=1), limit=3, **window)

    # Opening hours with closures, and what holds the machines (one day: one round).
    assert len(one) == len(three) == 2
    assert set(found) == {m.pk for m in machines}


def test_searchable_machines_are_a_platforms_active_machines_of_the_type_by_name(printers):
    lab = printers["lab"]

    with CaptureQueriesContext(connection) as queries:
        machines = searchable_machines(platform=lab.a.platform, machine_type=printers["fdm"])

    # Not the retired printer, the laser cutter, nor platform B's printer.
    assert [m.pk for m in machines] == [printers[name].pk for name in "abc"]
    assert all(m.platform is lab.a.platform for m in machines)
    assert len(queries) == 1


def test_a_search_of_searchable_machines_finds_what_one_of_the_machines_finds(printers, day):
    """search_slots() reads the same fields of either: what it finds is the same."""
    lab = printers["lab"]
    printers["b"].buffer_after_minutes = 30
    printers["b"].granularity_minutes = 60
    printers["b"].save()
    models = [printers[name] for name in "abc"]
    for machine in models:
        machine.platform = lab.a.platform
    query = {"duration": timedelta(hours=1), "limit": 3, "start": day, "end": day + 2 * ONE_DAY}

    light = searchable_machines(platform=lab.a.platform, machine_type=printers["fdm"])

    found = search_slots(machines=light, **query)
    assert found == search_slots(machines=models, **query)
    # After its booking, which holds it until 09:00; then each slot on the hour.
    assert found[printers["b"].pk] == [(at(day, h), at(day, h + 1)) for h in (9, 10, 11)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plan")
def test_a_search_reads_the_machines_gaps_from_the_index_of_active_bookings(printers, day):
    """The partial index on (machine, start, blocked_until) of active bookings holds
    all a search reads of them: once vacuumed, it need not visit the table."""
    lab = printers["lab"]
    machines = searchable_machines(platform=lab.a.platform, machine_type=printers["fdm"])
    # A year of bookings, two a day, then statistics: a plan as on real data.
    Booking.objects.bulk_create(
        Booking(
            machine_id=machine.pk,
            organization=lab.a.org,
            booked_by=lab.a.org_member,
            start=start,
            end=start + timedelta(hours=1),
            blocked_until=start + timedelta(hours=1),
            status=Booking.Status.CONFIRMED,
        )
        for machine in machines
        for n in range(730)
        for start in [at(day + timedelta(days=2 + n // 2), 8 + 4 * (n % 2))]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE booking_booking")
    with CaptureQueriesContext(connection) as search:
        search_slots(
            machines=machines, duration=timedelta(hours=1), limit=3, start=day, end=day + ONE_DAY
        )
    gaps = search.captured_queries[-1]["sql"]  # as sent: the values written in
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + gaps)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    # The gaps, and the booking before them.
    assert plan.count("using booking_active_by_machine") == 2, plan
    assert plan.count("Index Only Scan") == 2, plan


def test_the_index_of_active_bookings_is_of_exactly_the_active_statuses():
    (index,) = [i for i in Booking._meta.indexes if i.name == "booking_active_by_machine"]

    assert index.condition.children == [("status__in", list(Booking.ACTIVE_STATUSES))]


def test_a_month_with_nothing_free_costs_the_calendars_and_one_query_of_gaps(printers, day):
    """Maintenance all month: one query finds no gap on any machine; never a query
    per machine, per day or per booking."""
    lab = printers["lab"]
    machines = [printers[name] for name in "abc"]
    for machine in machines:
        machine.platform = lab.a.platform
        MaintenanceWindow.objects.create(
            machine=machine, start=day - ONE_DAY, end=day + 40 * ONE_DAY, reason="Overhaul"
        )

    with CaptureQueriesContext(connection) as queries:
        found = search_slots(
            machines=machines,
            duration=timedelta(hours=1),
            limit=3,
            start=day,
            end=day + 31 * ONE_DAY,
        )

    assert found == {m.pk: [] for m in machines}
    assert len(queries) == 2


def _hour_gaps_off_the_grid(lab, machine, day):
    """`day` (open 08:00–18:00) booked so that its free time is five gaps of exactly
    an hour, each starting at half past: long enough for an hour, yet off an hourly
    grid."""
    busy = [(8, 0, 8, 30), (9, 30, 10, 30), (11, 30, 12, 30), (13, 30, 14, 30)]
    busy += [(15, 30, 16, 30), (17, 30, 18, 0)]
    for h1, m1, h2, m2 in busy:
        make_booking(machine, lab.a.org, lab.a.org_member, paris(day, h1, m1), paris(day, h2, m2))


def test_gaps_that_hold_no_slot_make_the_search_look_further_for_that_machine_only(lab):
    """On PostgreSQL a round reads each machine's first gaps long enough for a slot,
    as many as slots are wanted; a gap may still hold none, off the grid here. Then
    the machine short of slots is read again after its last gap, with four times as
    many rows, then every gap: four days of 20 such gaps take three rounds, and the
    slots are those of the fifth day. The free machine is read once."""
    set_hours(lab.a.platform, (time(8), time(18)))
    hourly, free = lab.a.machine, factories.MachineFactory(platform=lab.a.platform)
    set_policy(hourly, granularity_minutes=60)
    set_policy(free, granularity_minutes=60)
    for n in range(4):
        _hour_gaps_off_the_grid(lab, hourly, TUESDAY + n * ONE_DAY)
    window = {"start": paris(TUESDAY, 0), "end": paris(TUESDAY + 7 * ONE_DAY, 0)}

    with CaptureQueriesContext(connection) as queries:
        found = search_slots(
            machines=[hourly, free], duration=timedelta(hours=1), limit=3, now=NOW, **window
        )

    saturday = TUESDAY + 4 * ONE_DAY
    assert local(found[hourly.pk], saturday) == [
        ("08:00", "09:00"),
        ("09:00", "10:00"),
        ("10:00", "11:00"),
    ]
    assert local(found[free.pk], TUESDAY) == [
        ("08:00", "09:00"),
        ("09:00", "10:00"),
        ("10:00", "11:00"),
    ]
    gap_queries = [q["sql"] for q in queries.captured_queries[1:]]
    if connection.vendor == "postgresql":
        assert len(gap_queries) == 3
        assert all(f"[{hourly.pk}]" in sql and f"{free.pk}]" not in sql for sql in gap_queries[1:])
    else:
        assert len(gap_queries) == 1  # every busy period of the window, at once
    assert found[hourly.pk] == earliest_slots(
        machine=hourly, duration=timedelta(hours=1), limit=3, now=NOW, **window
    )


def test_a_search_across_platforms_finds_each_machines_own_slots(lab):
    """The find page searches every platform: each machine keeps its platform's
    hours and time zone, as if searched alone. Montréal's machine is free in the
    evening only (18:00–22:00, 23:00–03:00 UTC), when Paris (08:00–18:00) is closed."""
    montreal = lab.b.platform
    montreal.timezone = "America/Montreal"
    montreal.save()
    set_hours(lab.a.platform, (time(8), time(18)))
    set_hours(montreal, (time(18), time(22)))
    paris_machine = lab.a.machine
    montreal_machine = factories.MachineFactory(platform=montreal)
    evening = datetime.combine(TUESDAY, time(18), tzinfo=montreal.tzinfo)
    make_booking(
        montreal_machine, lab.b.org, lab.b.org_member, evening, evening + timedelta(hours=1)
    )
    for n in range(-1, 2):  # and from each evening's 22:00 to the next one's 18:00
        closing = datetime.combine(TUESDAY + n * ONE_DAY, time(22), tzinfo=montreal.tzinfo)
        make_booking(
            montreal_machine, lab.b.org, lab.b.org_member, closing, closing + timedelta(hours=20)
        )
    make_booking(paris_machine, lab.a.org, lab.a.org_member, paris(TUESDAY, 8), paris(TUESDAY, 17))
    machines = [paris_machine, montreal_machine]
    query = {"duration": timedelta(hours=2), "limit": 3, "now": NOW}
    window = {"start": paris(TUESDAY, 0), "end": paris(TUESDAY + 3 * ONE_DAY, 0)}

    found = search_slots(machines=machines, **query, **window)

    assert found == {m.pk: earliest_slots(machine=m, **query, **window) for m in machines}
    in_montreal = [s.astimezone(montreal.tzinfo) for s, _e in found[montreal_machine.pk]]
    assert [f"{s:%a %H:%M}" for s in in_montreal] == ["Mon 18:00", "Mon 20:00", "Tue 19:00"]
    assert local(found[paris_machine.pk], TUESDAY) == [
        ("+1 08:00", "+1 10:00"),
        ("+1 10:00", "+1 12:00"),
        ("+1 12:00", "+1 14:00"),
    ]


# --- Suggestions in a 409 -------------------------------------------------------------------------


def test_a_conflict_suggests_the_next_slots_and_the_free_machines_of_the_type(api, printers, day):
    """Printer a is taken 08:00–12:00; SME a asks for 10:00–11:00 on it."""
    lab = printers["lab"]
    PlatformMembership.objects.create(organization=lab.b.org, platform=lab.a.platform)
    make_booking(
        printers["c"],
        lab.b.org,
        lab.b.org_member,
        at(day, 10, 30),
        at(day, 11, 30),
        title="Secret prototype",
    )

    response = api.as_user(lab.a.org_member).post(
        "/api/v1/bookings/",
        {
            "machine": printers["a"].pk,
            "start": at(day, 10).isoformat(),
            "end": at(day, 11).isoformat(),
        },
    )

    assert response.status_code == 409, response.content
    details = response.json()["error"]["details"]
    assert details["conflicts"] == [
        {"start": iso_z(at(day, 8)), "end": iso_z(at(day, 12)), "kind": "booking"}
    ]
    assert details["suggestions"] == {
        # The same hour on printer a: after the lunch break.
        "same_machine": [
            {"start": iso_z(at(day, 13, 30)), "end": iso_z(at(day, 14, 30))},
            {"start": iso_z(at(day, 14, 30)), "end": iso_z(at(day, 15, 30))},
            {"start": iso_z(at(day, 15, 30)), "end": iso_z(at(day, 16, 30))},
        ],
        # 10:00–11:00 elsewhere: printer b is free then; c is taken, by someone.
        "other_machines": [
            {
                "machine": printers["b"].pk,
                "name": "Printer b",
                "start": iso_z(at(day, 10)),
                "end": iso_z(at(day, 11)),
            }
        ],
    }
    text = response.content.decode()
    for secret in ("Secret prototype", lab.b.org.legal_name, lab.b.org_member.email):
        assert secret not in text
    assert Booking.objects.filter(organization=lab.a.org, start=at(day, 10)).count() == 0


def test_other_machines_are_suggested_only_if_their_own_rules_allow_the_period(printers, day):
    lab = printers["lab"]
    set_policy(printers["b"], granularity_minutes=60)  # 10:30 is off its grid
    set_policy(printers["c"], buffer_after_minutes=60)
    make_booking(printers["c"], lab.a.org, lab.a.org_member, at(day, 12), at(day, 13))

    with pytest.raises(BookingConflict) as conflict:
        create_booking(
            machine=printers["a"],
            organization=lab.a.org,
            by=lab.a.org_member,
            start=at(day, 10, 30),
            end=at(day, 11, 30),
        )

    # c is free, but its hour of buffer would meet the 12:00 booking.
    assert conflict.value.suggestions["other_machines"] == []
    assert [s["start"] for s in conflict.value.suggestions["same_machine"]] == [
        at(day, 13, 30),
        at(day, 14, 30),
        at(day, 15, 30),
    ]


def test_same_machine_suggestions_look_two_weeks_ahead_at_most(printers, day):
    lab = printers["lab"]
    a = printers["a"]
    make_booking(a, lab.a.org, lab.a.org_member, at(day, 12), at(day + 20 * ONE_DAY, 8))

    with pytest.raises(BookingConflict) as conflict:
        create_booking(
            machine=a,
            organization=lab.a.org,
            by=lab.a.org_member,
            start=at(day, 9),
            end=at(day, 10),
        )

    assert conflict.value.suggestions["same_machine"] == []
    assert conflict.value.suggestions["other_machines"] == [
        {
            "machine": printers[name].pk,
            "name": f"Printer {name}",
            "start": at(day, 9),
            "end": at(day, 10),
        }
        for name in "bc"
    ]


def test_suggestions_are_computed_once_when_read_after_the_transaction(printers, day):
    """A series reports conflicts only: it should not pay for suggestions. And they
    are read outside the booking's transaction (on SQLite, outside its write lock)."""
    lab = printers["lab"]
    with pytest.raises(BookingConflict) as conflict:
        create_booking(
            machine=printers["a"],
            organization=lab.a.org,
            by=lab.a.org_member,
            start=at(day, 9),
            end=at(day, 10),
        )

    with CaptureQueriesContext(connection) as first:
        suggestions = conflict.value.suggestions
    with CaptureQueriesContext(connection) as again:
        assert conflict.value.details["suggestions"] is suggestions

    # Machines of the type, opening hours with closures, what holds the machines.
    assert (len(first), len(again)) == (3, 0)
    assert suggestions["other_machines"][0]["name"] == "Printer b"


def test_a_conflict_raised_without_suggestions_keeps_its_old_shape():
    conflict = BookingConflict("Taken.", [])

    assert conflict.details == {"conflicts": []}
    assert conflict.suggestions is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's exclusion constraint")
def test_the_conflict_check_finds_a_machines_period_in_the_exclusion_constraints_index(lab):
    """The GiST index holds (machine, period): the check must look both up in it,
    not every machine's bookings in the period (btree_gist compares bigints only)."""
    with CaptureQueriesContext(connection) as check:
        clashes(machine=lab.a.machine, start=paris(TUESDAY, 9), blocked_until=paris(TUESDAY, 10))
    (query,) = check.captured_queries  # as sent: the values written in
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a test database is tiny
        cursor.execute("EXPLAIN " + query["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())

    index_scan = plan.split("booking_no_overlap", 1)[1].split("\n")[1]
    assert "Index Cond: ((machine_id = " in index_scan and " && " in index_scan, plan


# --- Query counts ---------------------------------------------------------------------------


def _fill(lab, machines, rows: int, day):
    """`rows` bookings, one an hour from 08:00 to 16:00, taking turns on `machines`."""
    for n in range(rows):
        start = at(day + timedelta(days=n // 8), 8 + n % 8)
        machine = machines[n % len(machines)]
        make_booking(machine, lab.a.org, lab.a.org_member, start, start + timedelta(hours=1))


@pytest.mark.parametrize("rows", [3, 30])
def test_availability_makes_a_fixed_number_of_queries(
    api, hours, day, django_assert_max_num_queries, rows
):
    _fill(hours, [hours.a.machine], rows, day)
    client = api.as_user(hours.a.org_member)
    client.get("/api/v1/me/")  # the token's last use is stamped once

    # Token, machine, hours, closures, maintenance, bookings.
    with django_assert_max_num_queries(6):
        response = availability(client, hours.a.machine, day, day + 7 * ONE_DAY)

    assert response.status_code == 200
    assert len(response.json()["busy"]) == rows


@pytest.mark.parametrize("rows", [3, 30])
def test_the_search_makes_a_fixed_number_of_queries(
    api, printers, day, django_assert_max_num_queries, rows
):
    lab = printers["lab"]
    _fill(lab, [printers[name] for name in "abc"], rows, day + ONE_DAY)
    client = api.as_user(lab.a.org_member)
    client.get("/api/v1/me/")

    # Token, platform, machine type, machines, the calendar (hours and closures),
    # then the machines' free gaps: one query, three at most (selectors.ROUNDS).
    with django_assert_max_num_queries(8):
        response = search(
            client,
            lab.a.platform,
            machine_type="fdm",
            duration_minutes=60,
            start=iso_z(day),
            end=iso_z(day + 14 * ONE_DAY),
            limit=10,
        )

    assert response.status_code == 200
    assert [len(r["slots"]) for r in response.json()["results"]] == [10, 10, 10]


def test_availability_and_search_cost_the_same_for_3_and_30_bookings(api, printers, day):
    lab = printers["lab"]
    machines = [printers[name] for name in "abc"]
    client = api.as_user(lab.a.org_member)
    client.get("/api/v1/me/")
    counts = []
    for rows in (3, 30):
        Booking.objects.all().delete()
        _fill(lab, machines, rows, day + ONE_DAY)
        with CaptureQueriesContext(connection) as queries:
            assert availability(client, machines[0], day, day + 7 * ONE_DAY).status_code == 200
            query = {"machine_type": "fdm", "duration_minutes": 60, "limit": 10}
            window = {"start": iso_z(day), "end": iso_z(day + 14 * ONE_DAY)}
            assert search(client, lab.a.platform, **query, **window).status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1]
