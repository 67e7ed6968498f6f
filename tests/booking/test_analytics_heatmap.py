"""Peak hours (booking.analytics.peak_hours and
GET /api/v1/platforms/{id}/utilisation/heatmap/), specified on hand-computed weeks.

`lab` is world.a's platform open every day 08:00–18:00 (Europe/Paris) with its
printer (and a retired printer, which has no available hours). A cell is a local
(weekday, hour) of the platform's week, Monday 0; it sums every such hour of the
period."""

import csv
import io
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from booking import analytics
from booking.models import Booking
from core.models import Membership, Organization
from equipment.models import Machine, OpeningHours
from tests import factories
from tests.booking.support import make_booking, paris

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
FIRST_MONDAY = date(2027, 3, 1)
TWO_WEEKS = (FIRST_MONDAY, FIRST_MONDAY + timedelta(days=14))


def heatmap(world, start, end, machines=None, organizations=None):
    platform = world.a.platform
    return analytics.peak_hours(
        platform=platform,
        machines=machines or Machine.objects.filter(platform=platform),
        start=start,
        end=end,
        organizations=organizations,
    )


def nonzero(result, column) -> dict:
    return {(r["weekday"], r["hour"]): r[column] for r in result.rows if r[column]}


def cell(result, weekday, hour) -> dict:
    (found,) = [r for r in result.rows if (r["weekday"], r["hour"]) == (weekday, hour)]
    return found


def booking(world, start, end, *, org=None, status=Booking.Status.COMPLETED, **fields):
    return make_booking(
        world.a.machine, org or world.a.org, world.a.org_member, start, end, status=status, **fields
    )


@pytest.fixture
def fortnight(lab):
    """Monday 1 to Sunday 14 March 2027 (CET all along), the printer open 08:00–18:00:

    maintenance Tuesday 2, 12:00–13:30          available Tue 12 → 1 h, Tue 13 → 1.5 h
    Tuesday 2, 09:30–11:15                      Tue 9 → 0.5, Tue 10 → 1, Tue 11 → 0.25
    Tuesday 9, 10:00–11:00                      Tue 10 → 1 more: 2 of 2 available
    Wednesday 3, 23:00 to Thursday 4, 01:30     Wed 23 → 1, Thu 0 → 1, Thu 1 → 0.5
    Sunday 14, 17:00 to Monday 15, 01:00        Sun 17 → 1, Sun 18…23 → 1 each (the
                                                period ends at Monday's midnight)
    Sunday 28 February, 23:00 to Monday 1, 01:00  Mon 0 → 1 (its part in the period)
    a cancelled booking Friday 5, 09:00–10:00    nothing"""
    world = lab
    world.a.machine.maintenance_windows.create(
        start=paris(date(2027, 3, 2), 12), end=paris(date(2027, 3, 2), 13, 30), reason="Nozzle"
    )
    booking(world, paris(date(2027, 3, 2), 9, 30), paris(date(2027, 3, 2), 11, 15))
    booking(
        world,
        paris(date(2027, 3, 9), 10),
        paris(date(2027, 3, 9), 11),
        status=Booking.Status.CONFIRMED,
    )
    booking(world, paris(date(2027, 3, 3), 23), paris(date(2027, 3, 4), 1, 30))
    booking(world, paris(date(2027, 3, 14), 17), paris(date(2027, 3, 15), 1))
    booking(world, paris(date(2027, 2, 28), 23), paris(date(2027, 3, 1), 1))
    booking(
        world,
        paris(date(2027, 3, 5), 9),
        paris(date(2027, 3, 5), 10),
        status=Booking.Status.CANCELLED,
    )
    return world


def test_booked_hours_fall_in_the_local_hours_they_cover(fortnight):
    result = heatmap(fortnight, *TWO_WEEKS)

    assert nonzero(result, "booked_hours") == {
        (MON, 0): 1.0,
        (TUE, 9): 0.5,
        (TUE, 10): 2.0,
        (TUE, 11): 0.25,
        (WED, 23): 1.0,
        (THU, 0): 1.0,
        (THU, 1): 0.5,
        **{(SUN, hour): 1.0 for hour in range(17, 24)},
    }
    assert len(result.rows) == 168
    assert [(r["weekday"], r["hour"]) for r in result.rows[:2]] == [(MON, 0), (MON, 1)]
    assert result.columns == ["weekday", "hour", "booked_hours", "available_hours", "occupancy"]


def test_available_hours_are_opening_hours_of_every_such_hour_minus_maintenance(fortnight):
    result = heatmap(fortnight, *TWO_WEEKS)

    available = nonzero(result, "available_hours")
    expected = {(d, h): 2.0 for d in range(7) for h in range(8, 18)}  # two of each
    expected[(TUE, 12)], expected[(TUE, 13)] = 1.0, 1.5
    assert available == expected
    assert result.totals == {
        "booked_hours": 0.5 + 2 + 0.25 + 1 + 1 + 0.5 + 7 + 1,
        "available_hours": 140 - 1.5,
        "occupancy": round(13.25 / 138.5, 4),
    }


def test_occupancy_is_booked_over_available_and_null_without_available_hours(fortnight):
    result = heatmap(fortnight, *TWO_WEEKS)

    assert cell(result, TUE, 10)["occupancy"] == 1.0
    assert cell(result, TUE, 9)["occupancy"] == 0.25
    assert cell(result, SUN, 17)["occupancy"] == 0.5
    assert cell(result, WED, 23)["occupancy"] is None  # unattended, after closing time
    assert cell(result, MON, 9)["occupancy"] == 0.0


@pytest.mark.parametrize(
    ("sunday", "booked", "available"),
    [
        # 02:00 never happens: the booking lasts 2 hours, none of them at 2.
        (date(2027, 3, 28), {1: 1.0, 3: 1.0}, {1: 1.0, 3: 1.0, 4: 1.0}),
        # 02:00 happens twice: the booking lasts 4 hours, two of them at 2.
        (date(2027, 10, 31), {1: 1.0, 2: 2.0, 3: 1.0}, {1: 1.0, 2: 2.0, 3: 1.0, 4: 1.0}),
    ],
    ids=["march", "october"],
)
def test_a_dst_week_counts_the_hours_the_clock_shows(lab, sunday, booked, available):
    """Europe/Paris goes from 02:00 to 03:00 on the last Sunday of March and back
    from 03:00 to 02:00 on the last Sunday of October. Open 01:00–05:00 on Sundays
    and booked 01:00–04:00 that Sunday."""
    OpeningHours.objects.filter(platform=lab.a.platform, weekday=SUN).update(
        opens_at=time(1), closes_at=time(5)
    )
    booking(lab, paris(sunday, 1), paris(sunday, 4))
    monday = sunday - timedelta(days=6)

    result = heatmap(lab, monday, sunday + timedelta(days=1))

    sunday_cells = {h: r for (d, h), r in nonzero(result, "booked_hours").items() if d == SUN}
    assert sunday_cells == booked
    assert {
        h: r for (d, h), r in nonzero(result, "available_hours").items() if d == SUN
    } == available
    assert cell(result, SUN, 2)["occupancy"] == (None if sunday.month == 3 else 1.0)
    assert result.totals["available_hours"] == 6 * 10 + sum(available.values())


def test_a_half_hour_zone_is_cut_on_its_own_hours(lab):
    """Kolkata is UTC+05:30: its hours begin at half past, UTC."""
    platform = lab.a.platform
    platform.timezone = "Asia/Kolkata"
    platform.save()
    kolkata = ZoneInfo("Asia/Kolkata")
    tuesday = date(2027, 3, 2)
    start = datetime.combine(tuesday, time(9), tzinfo=kolkata)
    booking(lab, start, start + timedelta(minutes=90))

    result = heatmap(lab, tuesday, tuesday + timedelta(days=1))

    assert nonzero(result, "booked_hours") == {(TUE, 9): 1.0, (TUE, 10): 0.5}
    assert nonzero(result, "available_hours") == {(TUE, h): 1.0 for h in range(8, 18)}


def test_restricted_to_organizations_only_their_bookings_count(fortnight):
    other = factories.OrganizationFactory(legal_name="Another SME")
    booking(fortnight, paris(date(2027, 3, 12), 8), paris(date(2027, 3, 12), 9), org=other)

    everyone = heatmap(fortnight, *TWO_WEEKS)
    theirs = heatmap(fortnight, *TWO_WEEKS, organizations=Organization.objects.filter(pk=other.pk))

    assert cell(everyone, FRI, 8)["booked_hours"] == 1.0
    assert nonzero(theirs, "booked_hours") == {(FRI, 8): 1.0}
    assert theirs.totals["available_hours"] == everyone.totals["available_hours"]


def test_the_query_count_does_not_depend_on_the_number_of_machines(
    fortnight, django_assert_max_num_queries
):
    for n in range(6):
        machine = factories.MachineFactory(platform=fortnight.a.platform, name=f"Extra {n}")
        machine.maintenance_windows.create(
            start=paris(date(2027, 3, 3), 9), end=paris(date(2027, 3, 3), 11)
        )

    with django_assert_max_num_queries(8):
        result = heatmap(fortnight, *TWO_WEEKS)

    assert cell(result, WED, 9)["available_hours"] == 2 + 6 * 1.0  # each extra: one of two


# --- API ------------------------------------------------------------------------------------


def url(world, side="a"):
    return f"/api/v1/platforms/{getattr(world, side).platform.pk}/utilisation/heatmap/"


PERIOD = {"start": "2027-03-01", "end": "2027-03-15"}


@pytest.fixture
def shared(fortnight):
    """SME c books the printer on Friday 12 March, 08:00–09:00; its admin."""
    world = fortnight
    world.c_org = factories.OrganizationFactory(legal_name="SME c")
    factories.PlatformMembershipFactory(organization=world.c_org, platform=world.a.platform)
    world.c_admin = factories.UserFactory(email="admin.c@sme.example")
    factories.MembershipFactory(
        user=world.c_admin, organization=world.c_org, role=Membership.Role.ADMIN
    )
    booking(world, paris(date(2027, 3, 12), 8), paris(date(2027, 3, 12), 9), org=world.c_org)
    return world


@pytest.mark.parametrize("role", ["manager", "operator", "accountant"])
def test_platform_staff_see_every_smes_hours(api, shared, role):
    api.as_user(getattr(shared.a, role))

    response = api.get(url(shared), PERIOD)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["platform"], body["timezone"]) == (shared.a.platform.pk, "Europe/Paris")
    assert (body["start"], body["end"]) == ("2027-03-01", "2027-03-15")
    assert body["columns"] == analytics.HEATMAP_COLUMNS
    assert body["totals"]["booked_hours"] == 13.25 + 1
    assert cell(analytics.Heatmap(body["columns"], body["rows"], {}), FRI, 8)["booked_hours"] == 1


def test_an_sme_admin_sees_only_its_own_organizations_hours(api, shared):
    api.as_user(shared.c_admin)

    mine = api.get(url(shared), PERIOD).json()
    asking_for_a = api.get(url(shared), {**PERIOD, "organization": shared.a.org.pk}).json()

    assert mine["totals"]["booked_hours"] == 1.0
    assert asking_for_a["totals"]["booked_hours"] == 0
    # The capacity is the platform's bookable machines', whoever looks.
    assert mine["totals"]["available_hours"] == 138.5


@pytest.mark.parametrize("role", ["org_member", "org_accountant"])
def test_other_sme_people_may_not_see_the_heatmap(api, shared, role):
    api.as_user(getattr(shared.a, role))

    response = api.get(url(shared), PERIOD)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_a_foreign_platform_is_not_found(api, shared):
    api.as_user(shared.a.manager)

    assert api.get(url(shared, "b"), PERIOD).status_code == 404


def test_filters_by_machine_and_type(api, shared):
    api.as_user(shared.a.manager)

    retired = api.get(url(shared), {**PERIOD, "machine": shared.a.retired_machine.pk}).json()
    foreign = api.get(url(shared), {**PERIOD, "machine": shared.b.machine.pk}).json()
    by_type = api.get(
        url(shared), {**PERIOD, "machine_type": shared.a.machine.machine_type_id}
    ).json()

    assert retired["totals"] == {"booked_hours": 0, "available_hours": 0, "occupancy": None}
    assert foreign["totals"] == retired["totals"]
    assert by_type["totals"]["booked_hours"] == 14.25


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2027-03-01"}, "end"),
        ({"start": "2027-03-05", "end": "2027-03-01"}, "end"),
        ({"start": "2027-01-01", "end": "2028-01-03"}, "end"),
        ({**PERIOD, "machine": "x"}, "machine"),
        ({**PERIOD, "format": "pdf"}, "format"),
    ],
)
def test_bad_parameters_are_named(api, shared, query, field):
    api.as_user(shared.a.manager)

    response = api.get(url(shared), query)

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]


def test_the_csv_is_the_api_table(api, shared):
    api.as_user(shared.a.manager)

    table = api.get(url(shared), PERIOD).json()
    response = api.get(url(shared), {**PERIOD, "format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="heatmap-{shared.a.platform.pk}.csv"' in response["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(response.content.decode())))
    assert lines[0] == table["columns"]
    assert lines[1:] == [
        ["" if row[c] is None else str(row[c]) for c in table["columns"]] for row in table["rows"]
    ]


def test_the_xlsx_is_the_api_table(api, shared):
    api.as_user(shared.a.manager)

    table = api.get(url(shared), PERIOD).json()
    response = api.get(url(shared), {**PERIOD, "format": "xlsx"})

    assert response.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    rows = [list(r) for r in workbook["heatmap"].iter_rows(values_only=True)]
    assert rows[0] == table["columns"]
    assert rows[1:] == [[row[c] for c in table["columns"]] for row in table["rows"]]
    assert dict(workbook["totals"].iter_rows(values_only=True)) == table["totals"]


def test_the_api_query_count_does_not_depend_on_the_number_of_machines(
    api, shared, django_assert_max_num_queries
):
    api.as_user(shared.a.manager)
    for n in range(10):
        factories.MachineFactory(platform=shared.a.platform, name=f"Extra {n}")

    with django_assert_max_num_queries(14):
        response = api.get(url(shared), PERIOD)

    assert response.status_code == 200
    assert len(response.json()["rows"]) == 168
