"""Utilisation metrics (booking/analytics.py), specified on hand-computed fixtures.

`lab` is world.a's platform open every day 08:00–18:00 (Europe/Paris) with its
printer (and a retired printer, which has no available hours). Bookings are
written as rows (make_booking): the metrics read what happened, not the rules.
Times are Paris wall-clock times; periods are local days [start, end)."""

from datetime import date, datetime, time, timedelta
from fractions import Fraction
from math import floor
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from booking import analytics
from booking.models import Booking, RefusedRequest
from core.models import Organization
from equipment.models import Machine, OpeningHours
from tests import factories
from tests.booking.support import make_booking, paris

TUESDAY = date(2027, 3, 2)
AFTERWARDS = datetime(2027, 6, 1, tzinfo=paris(TUESDAY, 0).tzinfo)


def table(world, start, end, group_by=(), machines=None, organizations=None, now=AFTERWARDS):
    platform = world.a.platform
    return analytics.utilisation(
        platforms=[platform],
        machines=machines or Machine.objects.filter(platform=platform),
        start=start,
        end=end,
        group_by=group_by,
        organizations=organizations,
        now=now,
    )


def booking(world, start, end, *, machine=None, org=None, created=None, **fields):
    made = make_booking(
        machine or world.a.machine, org or world.a.org, world.a.org_member, start, end, **fields
    )
    if created is not None:  # auto_now_add: set afterwards
        Booking.objects.filter(pk=made.pk).update(created_at=created)
    return made


@pytest.fixture
def tuesday(lab):
    """The hand-computed day, Tuesday 2 March 2027 (CET), printer open 08:00–18:00:

    maintenance 12:00–13:30                         → available 10 − 1.5 = 8.5 h
    08:00–10:00 completed, in 08:05, out 09:50      booked 2, used 1.75, lead 12 h
    10:00–12:00 no-show                             booked 2, used 0,    lead 3 days
    14:00–17:00 confirmed, in 14:00, never out      booked 3, used 3,    lead 10 days
    17:00–18:00 cancelled late                      not booked
    15:00–16:00 rejected                            not booked, not counted
    a conflict refused for 16:00–18:00 and a request breaking rules 07:00–08:00."""
    world = lab
    world.a.machine.maintenance_windows.create(
        start=paris(TUESDAY, 12), end=paris(TUESDAY, 13, 30), reason="Nozzle"
    )
    s = Booking.Status
    booking(
        world,
        paris(TUESDAY, 8),
        paris(TUESDAY, 10),
        status=s.COMPLETED,
        checked_in_at=paris(TUESDAY, 8, 5),
        checked_out_at=paris(TUESDAY, 9, 50),
        created=paris(TUESDAY, 8) - timedelta(hours=12),
    )
    booking(
        world,
        paris(TUESDAY, 10),
        paris(TUESDAY, 12),
        status=s.NO_SHOW,
        created=paris(TUESDAY, 10) - timedelta(days=3),
    )
    booking(
        world,
        paris(TUESDAY, 14),
        paris(TUESDAY, 17),
        status=s.CONFIRMED,
        checked_in_at=paris(TUESDAY, 14),
        created=paris(TUESDAY, 14) - timedelta(days=10),
    )
    booking(
        world, paris(TUESDAY, 17), paris(TUESDAY, 18), status=s.CANCELLED, late_cancellation=True
    )
    booking(world, paris(TUESDAY, 15), paris(TUESDAY, 16), status=s.REJECTED)
    for kind, hour in ((RefusedRequest.Kind.CONFLICT, 16), (RefusedRequest.Kind.RULES, 7)):
        RefusedRequest.objects.create(
            machine=world.a.machine,
            organization=world.a.org,
            kind=kind,
            action=RefusedRequest.Action.CREATE,
            start=paris(TUESDAY, hour),
            end=paris(TUESDAY, hour + 2 if hour == 16 else hour + 1),
        )
    return world


def test_a_day_of_one_machine_gives_exact_hours_and_ratios(tuesday):
    totals = table(tuesday, TUESDAY, TUESDAY + timedelta(days=1)).totals

    assert totals == {
        "available_hours": 8.5,
        "booked_hours": 7.0,
        "used_hours": 4.75,
        "utilisation_booked": round(7 / 8.5, 4),
        "utilisation_used": round(4.75 / 8.5, 4),
        "share_of_booked_hours": 1.0,
        "bookings": 3,
        "no_shows": 1,
        "no_show_rate": round(1 / 3, 4),
        "cancellations": 1,
        "late_cancellations": 1,
        "late_cancellation_rate": 0.25,
        "lead_time_avg_hours": (12 + 72 + 240) / 3,
        # Leads 12, 72 and 240 h: the median is the middle one; p90 sits 0.9 × 2 = 1.8
        # ranks up, 0.8 of the way from 72 to 240.
        "lead_time_p50_hours": 72.0,
        "lead_time_p90_hours": round(72 + 0.8 * (240 - 72), 2),
        "lead_time_under_1d": 1,
        "lead_time_1d_to_7d": 1,
        "lead_time_7d_to_30d": 1,
        "lead_time_30d_or_more": 0,
        "refused_conflicts": 1,
        "refused_rules": 1,
        "rejected_by_manager": 0,
        "refused_hours": 3.0,
        "revenue": "0.00",  # nothing billed
    }


def test_a_booking_under_way_is_used_until_now(tuesday):
    now = paris(TUESDAY, 15, 30)

    totals = table(tuesday, TUESDAY, TUESDAY + timedelta(days=1), now=now).totals

    assert totals["used_hours"] == 1.75 + 1.5


def test_each_machine_has_its_row_and_a_retired_one_no_available_hours(tuesday):
    rows = table(tuesday, TUESDAY, TUESDAY + timedelta(days=1), ["machine"]).rows

    by_name = {row["machine_name"]: row for row in rows}
    assert set(by_name) == {"Printer a", "Old printer a"}
    assert by_name["Printer a"]["available_hours"] == 8.5
    assert by_name["Printer a"]["share_of_booked_hours"] == 1.0
    assert by_name["Old printer a"]["available_hours"] == 0
    assert by_name["Old printer a"]["utilisation_booked"] is None


def test_hours_per_organization_and_their_share(tuesday):
    other = factories.OrganizationFactory(legal_name="Another SME")
    booking(
        tuesday,
        paris(TUESDAY, 16),
        paris(TUESDAY, 17),
        machine=tuesday.a.retired_machine,
        org=other,
    )

    rows = table(tuesday, TUESDAY, TUESDAY + timedelta(days=1), ["organization"]).rows

    shares = {
        row["organization_name"]: (row["booked_hours"], row["share_of_booked_hours"])
        for row in rows
    }
    assert shares == {"Another SME": (1.0, 0.125), "SME a": (7.0, 0.875)}
    # An organization's row measures itself against the whole capacity.
    assert {row["available_hours"] for row in rows} == {8.5}


def test_restricted_to_organizations_only_their_bookings_count(tuesday):
    other = factories.OrganizationFactory(legal_name="Another SME")
    booking(
        tuesday,
        paris(TUESDAY, 16),
        paris(TUESDAY, 17),
        machine=tuesday.a.retired_machine,
        org=other,
    )
    mine = Organization.objects.filter(pk=tuesday.a.org.pk)
    result = table(
        tuesday, TUESDAY, TUESDAY + timedelta(days=1), ["organization"], organizations=mine
    )

    assert [row["organization_name"] for row in result.rows] == ["SME a"]
    assert result.totals["booked_hours"] == 7.0
    assert result.totals["share_of_booked_hours"] == 1.0


def test_bookings_across_midnight_and_the_end_of_the_month_are_split(lab):
    # 31 March 2027 22:00 to 1 April 02:00, Paris summer time: 2 h each side.
    booking(lab, paris(date(2027, 3, 31), 22), paris(date(2027, 4, 1), 2))

    by_day = table(lab, date(2027, 3, 31), date(2027, 4, 2), ["day"]).rows
    by_month = table(lab, date(2027, 3, 1), date(2027, 5, 1), ["month"]).rows
    april_only = table(lab, date(2027, 4, 1), date(2027, 5, 1)).totals

    assert [(r["period_start"], r["period_end"], r["booked_hours"]) for r in by_day] == [
        ("2027-03-31", "2027-04-01", 2.0),
        ("2027-04-01", "2027-04-02", 2.0),
    ]
    assert [(r["period_start"], r["booked_hours"], r["bookings"]) for r in by_month] == [
        ("2027-03-01", 2.0, 1),  # counted once, in the month of its start
        ("2027-04-01", 2.0, 0),
    ]
    assert (april_only["booked_hours"], april_only["bookings"]) == (2.0, 0)


def test_weeks_start_on_monday_and_are_cut_to_the_period(lab):
    booking(lab, paris(date(2027, 3, 7), 9), paris(date(2027, 3, 7), 10))  # a Sunday
    booking(lab, paris(date(2027, 3, 8), 9), paris(date(2027, 3, 8), 11))  # the Monday after

    rows = table(lab, date(2027, 3, 3), date(2027, 3, 10), ["week"]).rows

    assert [
        (r["period_start"], r["period_end"], r["available_hours"], r["booked_hours"]) for r in rows
    ] == [
        ("2027-03-03", "2027-03-08", 50.0, 1.0),  # Wednesday to Sunday: 5 days of 10 h
        ("2027-03-08", "2027-03-10", 20.0, 2.0),
    ]


@pytest.mark.parametrize(
    ("sunday", "day_hours", "week_hours"),
    [(date(2027, 3, 28), 23, 167), (date(2027, 10, 31), 25, 169)],
    ids=["march", "october"],
)
def test_dst_days_and_weeks_have_their_elapsed_hours(lab, sunday, day_hours, week_hours):
    """Europe/Paris changes its clocks on the last Sunday of March (02:00 → 03:00)
    and of October (03:00 → 02:00). A machine booked from the Monday before to the
    Monday after, midnight to midnight, is booked 23 or 25 hours on the Sunday;
    open 01:00–05:00 on Sundays, it is available 3 or 5 hours then."""
    platform = lab.a.platform
    OpeningHours.objects.filter(platform=platform, weekday=6).update(
        opens_at=time(1), closes_at=time(5)
    )
    monday = sunday - timedelta(days=6)
    booking(lab, paris(monday, 0), paris(sunday + timedelta(days=1), 0))

    by_day = table(lab, sunday - timedelta(days=1), sunday + timedelta(days=2), ["day"]).rows
    by_week = table(lab, monday, sunday + timedelta(days=1), ["week"]).rows

    assert [r["booked_hours"] for r in by_day] == [24, day_hours, 0]
    assert [r["available_hours"] for r in by_day] == [10, day_hours - 20, 10]
    assert [(r["period_start"], r["booked_hours"]) for r in by_week] == [
        (monday.isoformat(), week_hours)
    ]
    assert by_week[0]["available_hours"] == 6 * 10 + day_hours - 20


def test_closed_days_have_no_available_hours(lab):
    lab.a.platform.closures.create(start_date=date(2027, 3, 3), end_date=date(2027, 3, 4))

    rows = table(lab, date(2027, 3, 2), date(2027, 3, 6), ["day"]).rows

    assert [r["available_hours"] for r in rows] == [10, 0, 0, 10]


def test_machine_types_and_time_together_make_a_chartable_grid(lab):
    cobot_type = factories.MachineTypeFactory(name="Cobot", slug="cobot")
    cobot = factories.MachineFactory(platform=lab.a.platform, machine_type=cobot_type, name="UR5")
    booking(lab, paris(date(2027, 3, 2), 8), paris(date(2027, 3, 2), 13), machine=cobot)

    active = Machine.objects.filter(platform=lab.a.platform, is_active=True)
    rows = table(lab, date(2027, 3, 1), date(2027, 3, 3), ["machine_type", "day"], active).rows

    assert [
        (r["period_start"], r["machine_type_name"], r["booked_hours"], r["available_hours"])
        for r in rows
    ] == [
        ("2027-03-01", "Cobot", 0, 10),
        ("2027-03-01", lab.a.machine.machine_type.name, 0, 10),
        ("2027-03-02", "Cobot", 5, 10),
        ("2027-03-02", lab.a.machine.machine_type.name, 0, 10),
    ]
    assert [r["share_of_booked_hours"] for r in rows] == [None, None, 1.0, 0.0]


def test_the_query_count_does_not_depend_on_the_number_of_machines(lab):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            table(lab, date(2027, 3, 1), date(2027, 4, 1), ["machine", "week"])
        return len(queries)

    few = count()
    for n in range(8):
        machine = factories.MachineFactory(platform=lab.a.platform, name=f"Extra {n}")
        machine.maintenance_windows.create(
            start=paris(date(2027, 3, 3), 9), end=paris(date(2027, 3, 3), 11)
        )
        booking(lab, paris(date(2027, 3, 4), 9), paris(date(2027, 3, 4), 11), machine=machine)

    assert count() == few


def test_a_check_in_before_midnight_is_used_time_of_the_day_before(lab):
    """Booked 00:00–02:00 on Tuesday, checked in at 23:50 on Monday and out at 01:30:
    10 minutes used on Monday; the booking, its hours and the rest on Tuesday."""
    booking(
        lab,
        paris(TUESDAY, 0),
        paris(TUESDAY, 2),
        status=Booking.Status.COMPLETED,
        checked_in_at=paris(TUESDAY - timedelta(days=1), 23, 50),
        checked_out_at=paris(TUESDAY, 1, 30),
    )

    rows = table(lab, TUESDAY - timedelta(days=1), TUESDAY + timedelta(days=1), ["day"]).rows
    tuesday_only = table(lab, TUESDAY, TUESDAY + timedelta(days=1)).totals
    # A period that ends before the booking starts still has its early check-in.
    monday_only = table(lab, TUESDAY - timedelta(days=1), TUESDAY).totals

    assert [(r["used_hours"], r["booked_hours"], r["bookings"]) for r in rows] == [
        (round(10 / 60, 2), 0.0, 0),
        (1.5, 2.0, 1),
    ]
    assert (tuesday_only["used_hours"], tuesday_only["bookings"]) == (1.5, 1)
    assert (monday_only["used_hours"], monday_only["bookings"]) == (round(10 / 60, 2), 0)


def test_lead_time_percentiles_per_row_and_over_all(lab):
    """Tuesday: leads of 1, 2, 3 and 10 hours; Wednesday: 48 hours (and a cancelled
    booking, which is no booking); Thursday: none. Continuous percentiles: rank
    q × (n − 1), interpolated between the two bookings around it."""
    wednesday, thursday = TUESDAY + timedelta(days=1), TUESDAY + timedelta(days=2)
    for hour, lead in ((8, 1), (9, 2), (10, 3), (11, 10)):
        start = paris(TUESDAY, hour)
        booking(lab, start, start + timedelta(hours=1), created=start - timedelta(hours=lead))
    start = paris(wednesday, 9)
    booking(lab, start, start + timedelta(hours=1), created=start - timedelta(hours=48))
    booking(
        lab,
        start + timedelta(hours=2),
        start + timedelta(hours=3),
        status=Booking.Status.CANCELLED,
        created=start - timedelta(days=40),
    )

    result = table(lab, TUESDAY, thursday + timedelta(days=1), ["day"])

    assert [(r["lead_time_p50_hours"], r["lead_time_p90_hours"]) for r in result.rows] == [
        (2.5, round(3 + 0.7 * (10 - 3), 2)),  # ranks 1.5 and 2.7 of 1, 2, 3, 10
        (48.0, 48.0),
        (None, None),
    ]
    totals = result.totals
    assert (totals["lead_time_p50_hours"], totals["lead_time_p90_hours"]) == (
        3.0,
        round(10 + 0.6 * (48 - 10), 2),  # rank 3.6 of 1, 2, 3, 10, 48
    )


def test_a_booking_before_its_own_zones_period_that_crosses_into_it_counts_there(lab):
    """London's day starts an hour after Paris's: a London booking from 23:30 to
    00:30 starts within the two platforms' period in UTC but before London's own,
    and its half hour after midnight belongs to London's Tuesday."""
    lab.b.platform.timezone = "Europe/London"
    lab.b.platform.save()
    start = datetime.combine(TUESDAY - timedelta(days=1), time(23, 30), ZoneInfo("Europe/London"))
    make_booking(lab.b.machine, lab.b.org, lab.b.org_member, start, start + timedelta(hours=1))
    platforms = [lab.a.platform, lab.b.platform]

    found = analytics.utilisation(
        platforms=platforms,
        machines=Machine.objects.filter(platform__in=platforms),
        start=TUESDAY,
        end=TUESDAY + timedelta(days=1),
        group_by=["platform"],
        now=AFTERWARDS,
    )

    booked = {row["platform"]: (row["booked_hours"], row["bookings"]) for row in found.rows}
    assert booked[lab.b.platform.pk] == (0.5, 0)  # counted on Monday, where it starts
    # Nor is its lead time among the period's.
    assert (found.totals["bookings"], found.totals["lead_time_p50_hours"]) == (0, None)


@pytest.mark.django_db(transaction=True)
def test_the_queries_over_bookings_read_one_snapshot(lab, monkeypatch):
    """On PostgreSQL a booking crossing midnight is summed whole by one query and cut
    by the next: cancelled by someone else in between, it must count as it was
    before or as it is after, never half of each."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite answers with one query")
    crossing = booking(lab, paris(TUESDAY, 23), paris(TUESDAY, 23) + timedelta(hours=2))
    days = (TUESDAY, TUESDAY + timedelta(days=2), ["day"])
    before = [row["booked_hours"] for row in table(lab, *days).rows]
    summed, calls = analytics._summed, []

    def cancelled_after_the_first_query(*args, **kwargs):
        found = summed(*args, **kwargs)
        if not calls:
            db = connection.settings_dict
            with psycopg.connect(
                host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
            ) as other:
                other.execute(
                    "UPDATE booking_booking SET status = 'cancelled' WHERE id = %s", [crossing.pk]
                )
        calls.append(1)
        return found

    monkeypatch.setattr(analytics, "_summed", cancelled_after_the_first_query)
    during = [row["booked_hours"] for row in table(lab, *days).rows]
    monkeypatch.undo()
    after = [row["booked_hours"] for row in table(lab, *days).rows]

    assert (before, after) == ([1.0, 1.0], [0.0, 0.0])
    assert during == before  # the snapshot taken before the change


def test_hours_and_ratios_are_rounded_half_away_from_zero_on_their_exact_values():
    """Hours to 2 decimals, ratios to 4, as an accountant rounds, from the exact
    quotient: round() rounds the nearest binary float, and 340,326 s (94.535 h, a
    tie) would become 94.53."""
    assert analytics._hours(340_326) == 94.54
    assert analytics._hours(5400) == 1.5
    assert analytics._hours(0) == 0.0
    assert analytics._hours(-18) == -0.01  # a lead time: booked after the start
    assert analytics._hours(-17) == 0.0
    assert analytics._ratio(1, 3) == 0.3333
    assert analytics._ratio(2, 3) == 0.6667
    assert analytics._ratio(1, 32) == 0.0313  # 0.03125, a tie
    assert analytics._ratio(57, 800) == 0.0713  # 0.07125: part / whole * 10000 misses it
    assert analytics._ratio(171 * 60, 40 * 3600) == 0.0713  # 171 minutes of 40 hours
    assert analytics._ratio(5, 0) is None

    def half_away(exact: Fraction, digits: int) -> float:
        units = floor(abs(exact) * 10**digits + Fraction(1, 2))
        return (units if exact >= 0 else -units) / 10**digits

    for seconds in range(-400_000, 400_000, 7):
        assert analytics._hours(seconds) == half_away(Fraction(seconds, 3600), 2), seconds
    for whole in [*range(1, 400), *range(400, 3000, 37), 3600, 36_000]:
        for part in range(0, whole + 1, max(1, whole // 400)):
            expected = half_away(Fraction(part, whole), 4)
            assert analytics._ratio(part, whole) == expected, (part, whole)
