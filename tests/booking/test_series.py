"""Recurring bookings: an RRULE subset, all or nothing unless asked otherwise,
at the same local time across DST."""

from datetime import timedelta

import pytest
import time_machine

from booking.models import Booking, BookingSeries
from tests.booking.conftest import at, next_weekday
from tests.booking.support import iso_z, make_booking, next_dst_sunday, paris

SERIES = "/api/v1/booking-series/"


def hours(day, first, last):
    return at(day, first), at(day, last)


def series_body(lab, start, end, rule, **extra):
    return {
        "machine": lab.a.machine.pk,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "rule": rule,
        **extra,
    }


def test_a_weekly_series_books_every_occurrence_at_the_same_local_time(api, lab):
    tuesday = next_weekday(1)
    client = api.as_user(lab.a.org_member)

    response = client.post(
        SERIES, series_body(lab, at(tuesday, 9), at(tuesday, 11), "FREQ=WEEKLY;BYDAY=TU,TH;COUNT=4")
    )

    assert response.status_code == 201, response.content
    occurrences = response.json()["occurrences"]
    expected_days = [tuesday, tuesday + timedelta(days=2), tuesday + timedelta(days=7),
                     tuesday + timedelta(days=9)]  # fmt: skip
    assert [o["start"] for o in occurrences] == [iso_z(at(day, 9)) for day in expected_days]
    assert all(o["booked"] for o in occurrences)
    series = BookingSeries.objects.get()
    assert list(series.bookings.values_list("start", flat=True)) == [
        at(d, 9) for d in expected_days
    ]


def test_across_a_dst_change_the_wall_clock_time_stays(api, lab):
    sunday = next_dst_sunday(3)
    lab.a.machine.booking_horizon_days = 730
    lab.a.machine.save()
    first = sunday - timedelta(days=5)  # the Tuesday before the change

    response = api.as_user(lab.a.org_member).post(
        SERIES,
        series_body(lab, paris(first, 9), paris(first, 10), "FREQ=WEEKLY;COUNT=2"),
    )

    assert response.status_code == 201, response.content
    starts = [o["start"] for o in response.json()["occurrences"]]
    # 09:00 in Paris: 08:00 UTC in winter, 07:00 UTC once summer time has begun.
    assert starts == [iso_z(paris(first, 9)), iso_z(paris(first + timedelta(days=7), 9))]
    assert starts[0][11:13] == "08" and starts[1][11:13] == "07"


def test_one_clashing_occurrence_books_nothing_and_reports_each_occurrence(api, lab):
    tuesday = next_weekday(1)
    blocked_day = tuesday + timedelta(days=7)
    make_booking(
        lab.a.machine, lab.b.org, lab.b.org_member, at(blocked_day, 10), at(blocked_day, 12)
    )

    response = api.as_user(lab.a.org_member).post(
        SERIES, series_body(lab, at(tuesday, 9), at(tuesday, 11), "FREQ=WEEKLY;COUNT=3")
    )

    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "series_not_bookable"
    report = error["details"]["occurrences"]
    assert [o["bookable"] for o in report] == [True, False, True]
    assert report[1]["conflicts"][0]["kind"] == "booking"
    assert "SME b" not in str(error)
    assert Booking.objects.filter(series__isnull=False).count() == 0
    assert not BookingSeries.objects.exists()


def test_skip_conflicts_books_the_rest_and_reports_the_refused(api, lab):
    tuesday = next_weekday(1)
    blocked_day = tuesday + timedelta(days=7)
    make_booking(
        lab.a.machine, lab.b.org, lab.b.org_member, at(blocked_day, 10), at(blocked_day, 12)
    )

    response = api.as_user(lab.a.org_member).post(
        SERIES,
        series_body(
            lab, at(tuesday, 9), at(tuesday, 11), "FREQ=WEEKLY;COUNT=3", skip_conflicts=True
        ),
    )

    assert response.status_code == 201, response.content
    assert [o["booked"] for o in response.json()["occurrences"]] == [True, False, True]
    assert BookingSeries.objects.get().bookings.count() == 2


def test_a_rule_broken_by_some_occurrences_answers_400_with_the_problems(api, lab):
    tuesday = next_weekday(1)
    lab.a.machine.booking_horizon_days = 10
    lab.a.machine.save()

    response = api.as_user(lab.a.org_member).post(
        SERIES, series_body(lab, at(tuesday, 9), at(tuesday, 11), "FREQ=WEEKLY;COUNT=3")
    )

    assert response.status_code == 400, response.content
    report = response.json()["error"]["details"]["occurrences"]
    assert [o["bookable"] for o in report] == [True, False, False]
    assert report[2]["problems"][0]["code"] == "beyond_horizon"


def test_until_includes_its_own_day(api, lab):
    tuesday = next_weekday(1)
    until = (tuesday + timedelta(days=2)).strftime("%Y%m%d")

    response = api.as_user(lab.a.org_member).post(
        SERIES, series_body(lab, at(tuesday, 9), at(tuesday, 10), f"FREQ=DAILY;UNTIL={until}")
    )

    assert response.status_code == 201, response.content
    assert len(response.json()["occurrences"]) == 3


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("FREQ=MONTHLY;COUNT=3", "FREQ must be DAILY or WEEKLY"),
        ("FREQ=WEEKLY;COUNT=3;BYMONTH=4", "Unsupported rule parts: BYMONTH"),
        ("FREQ=WEEKLY", "Give COUNT or UNTIL"),
        ("FREQ=WEEKLY;COUNT=3;UNTIL=20300101", "Give COUNT or UNTIL"),
        ("FREQ=WEEKLY;COUNT=60", "at most a year"),
        ("FREQ=DAILY;COUNT=0", "COUNT must be a whole number"),
        ("FREQ=DAILY;COUNT=²", "COUNT must be a whole number"),
        ("FREQ=DAILY;BYDAY=MO;COUNT=2", "BYDAY goes with FREQ=WEEKLY"),
        ("FREQ=WEEKLY;BYDAY=XX;COUNT=2", "BYDAY lists days"),
        ("FREQ=WEEKLY;INTERVAL=99;COUNT=2", "INTERVAL must be"),
        ("FREQ=DAILY;UNTIL=tomorrow", "UNTIL must be a date"),
        ("FREQ", "is not NAME=VALUE"),
        # The series starts on a Tuesday: its first booking would silently go.
        ("FREQ=WEEKLY;BYDAY=WE,TH;COUNT=2", "falls on TU, a day BYDAY leaves out"),
        ("FREQ=DAILY;UNTIL=20200101", "UNTIL is before the first booking"),
    ],
)
def test_a_rule_outside_the_supported_subset_answers_400_on_the_rule(api, lab, rule, reason):
    tuesday = next_weekday(1)

    response = api.as_user(lab.a.org_member).post(
        SERIES, series_body(lab, at(tuesday, 9), at(tuesday, 10), rule)
    )

    assert response.status_code == 400, response.content
    assert reason in response.json()["error"]["details"]["fields"]["rule"][0]
    assert not Booking.objects.exists() and not BookingSeries.objects.exists()


def test_cancelling_a_series_cancels_its_upcoming_occurrences(api, lab):
    tuesday = next_weekday(1)
    client = api.as_user(lab.a.org_member)
    series_id = client.post(
        SERIES, series_body(lab, at(tuesday, 9), at(tuesday, 10), "FREQ=DAILY;COUNT=3")
    ).json()["series"]["id"]

    response = client.post(f"{SERIES}{series_id}/cancel/", {"reason": "project over"})

    assert response.status_code == 200, response.content
    assert [b["status"] for b in response.json()] == ["cancelled"] * 3
    assert not Booking.objects.active().exists()
    assert client.post(f"{SERIES}{series_id}/cancel/", {}).status_code == 409


def test_cancelling_a_series_leaves_an_occurrence_checked_in_early(api, lab):
    """Check-in opens before the start: such an occurrence has started."""
    tuesday = next_weekday(1)
    client = api.as_user(lab.a.org_member)
    with time_machine.travel(at(tuesday - timedelta(days=1), 9), tick=False):
        series_id = client.post(
            SERIES, series_body(lab, at(tuesday, 9), at(tuesday, 10), "FREQ=DAILY;COUNT=3")
        ).json()["series"]["id"]
    first = Booking.objects.order_by("start").first()

    with time_machine.travel(at(tuesday, 8, 50), tick=False):
        assert client.post(f"/api/v1/bookings/{first.pk}/check-in/", {}).status_code == 200
        response = client.post(f"{SERIES}{series_id}/cancel/", {})

    assert response.status_code == 200, response.content
    assert [b["start"] for b in response.json()] == [
        iso_z(at(tuesday + timedelta(days=n), 9)) for n in (1, 2)
    ]
    first.refresh_from_db()
    assert first.status == Booking.Status.CONFIRMED and first.checked_in_at


def test_another_smes_series_is_not_found(api, lab):
    tuesday = next_weekday(1)
    series_id = (
        api.as_user(lab.a.org_member)
        .post(SERIES, series_body(lab, at(tuesday, 9), at(tuesday, 10), "FREQ=DAILY;COUNT=2"))
        .json()["series"]["id"]
    )

    outsider = api.as_user(lab.b.org_admin)

    assert outsider.get(f"{SERIES}{series_id}/").status_code == 404
    assert outsider.post(f"{SERIES}{series_id}/cancel/", {}).status_code == 404
    assert api.as_user(lab.a.manager).get(f"{SERIES}{series_id}/").status_code == 200
