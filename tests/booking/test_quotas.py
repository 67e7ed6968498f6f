"""Quotas: a platform caps an organization's booked hours per week or month."""

from datetime import timedelta

import pytest

from booking.models import Booking, Quota
from tests import factories
from tests.booking.conftest import at, next_weekday
from tests.booking.support import book, make_booking

QUOTAS = "/api/v1/quotas/"


def test_a_booking_beyond_the_weekly_quota_is_refused_with_the_reason(api, lab):
    Quota.objects.create(platform=lab.a.platform, period="week", max_hours=3)
    tuesday = next_weekday(1)
    make_booking(lab.a.machine, lab.a.org, lab.a.org_member, at(tuesday, 9), at(tuesday, 11))

    response = book(api.as_user(lab.a.org_member), lab.a.machine, at(tuesday, 14), at(tuesday, 16))

    assert response.status_code == 400, response.content
    problems = response.json()["error"]["details"]["problems"]
    assert [p["code"] for p in problems] == ["quota_exceeded"]
    assert "3 hours per week" in problems[0]["message"]


@pytest.mark.parametrize(
    ("status", "counted"),
    [
        (Booking.Status.PENDING, True),
        (Booking.Status.CONFIRMED, True),
        (Booking.Status.COMPLETED, True),  # used: its hours were booked all the same
        (Booking.Status.NO_SHOW, True),  # missed: the slot was held, and is billed
        (Booking.Status.CANCELLED, False),
        (Booking.Status.REJECTED, False),
    ],
)
def test_booked_hours_count_until_cancelled_or_rejected(api, lab, status, counted):
    Quota.objects.create(platform=lab.a.platform, period="week", max_hours=3)
    tuesday = next_weekday(1)
    make_booking(
        lab.a.machine, lab.a.org, lab.a.org_member, at(tuesday, 9), at(tuesday, 11), status=status
    )
    thursday = tuesday + timedelta(days=2)

    response = book(api.as_user(lab.a.org_member), lab.a.machine, at(thursday, 9), at(thursday, 11))

    assert response.status_code == (400 if counted else 201), response.content


def test_the_quota_counts_each_organization_alone_and_only_its_period(api, lab):
    Quota.objects.create(platform=lab.a.platform, period="week", max_hours=2)
    factories.PlatformMembershipFactory(organization=lab.b.org, platform=lab.a.platform)
    tuesday = next_weekday(1)
    make_booking(lab.a.machine, lab.a.org, lab.a.org_member, at(tuesday, 9), at(tuesday, 11))
    next_week = tuesday + timedelta(days=7)

    other_sme = book(api.as_user(lab.b.org_member), lab.a.machine, at(tuesday, 14), at(tuesday, 16))
    same_sme_next_week = book(
        api.as_user(lab.a.org_member), lab.a.machine, at(next_week, 9), at(next_week, 11)
    )

    assert other_sme.status_code == 201, other_sme.content
    assert same_sme_next_week.status_code == 201, same_sme_next_week.content


def test_a_quota_on_a_machine_type_ignores_other_types(api, lab):
    other_type = factories.MachineTypeFactory()
    Quota.objects.create(
        platform=lab.a.platform, period="month", max_hours=1, machine_type=other_type
    )
    tuesday = next_weekday(1)

    response = book(api.as_user(lab.a.org_member), lab.a.machine, at(tuesday, 9), at(tuesday, 11))

    assert response.status_code == 201, response.content


def test_cancelled_bookings_do_not_count_and_a_move_does_not_count_itself(api, lab):
    Quota.objects.create(
        platform=lab.a.platform, organization=lab.a.org, period="week", max_hours=2
    )
    tuesday = next_weekday(1)
    make_booking(
        lab.a.machine, lab.a.org, lab.a.org_member, at(tuesday, 9), at(tuesday, 11),
        status=Booking.Status.CANCELLED,
    )  # fmt: skip
    client = api.as_user(lab.a.org_member)
    booking_id = book(client, lab.a.machine, at(tuesday, 13), at(tuesday, 15)).json()["id"]

    moved = client.post(
        f"/api/v1/bookings/{booking_id}/move/",
        {"start": at(tuesday, 14).isoformat(), "end": at(tuesday, 16).isoformat()},
    )

    assert moved.status_code == 200, moved.content


def test_a_manager_may_override_a_quota(api, lab):
    Quota.objects.create(platform=lab.a.platform, period="week", max_hours=1)
    tuesday = next_weekday(1)

    response = book(
        api.as_user(lab.a.manager), lab.a.machine, at(tuesday, 9), at(tuesday, 11),
        organization=lab.a.org.pk, override_reason="Training week",
    )  # fmt: skip

    assert response.status_code == 201, response.content


def test_managers_set_quotas_and_smes_see_those_that_apply_to_them(api, lab):
    manager = api.as_user(lab.a.manager)

    created = manager.post(
        QUOTAS, {"platform": lab.a.platform.pk, "period": "month", "max_hours": 40}
    )
    targeted = manager.post(
        QUOTAS,
        {"platform": lab.a.platform.pk, "organization": lab.a.org.pk, "period": "week",
         "max_hours": 10},
    )  # fmt: skip

    assert created.status_code == targeted.status_code == 201, created.content
    seen_by_a = {q["id"] for q in api.as_user(lab.a.org_member).get(QUOTAS).json()["results"]}
    assert seen_by_a == {created.json()["id"], targeted.json()["id"]}
    assert api.as_user(lab.b.org_member).get(QUOTAS).json()["results"] == []


def test_only_managers_change_quotas(api, lab):
    quota = Quota.objects.create(platform=lab.a.platform, period="week", max_hours=5)

    assert (
        api.as_user(lab.a.operator).patch(f"{QUOTAS}{quota.pk}/", {"max_hours": 50}).status_code
        == 403
    )
    assert api.as_user(lab.a.org_admin).delete(f"{QUOTAS}{quota.pk}/").status_code == 403
    assert api.as_user(lab.b.manager).delete(f"{QUOTAS}{quota.pk}/").status_code == 404
    assert (
        api.as_user(lab.a.manager).patch(f"{QUOTAS}{quota.pk}/", {"max_hours": 50}).status_code
        == 200
    )
    quota.refresh_from_db()
    assert quota.max_hours == 50


def test_a_foreign_organization_cannot_be_named_in_a_quota(api, lab):
    response = api.as_user(lab.a.manager).post(
        QUOTAS,
        {"platform": lab.a.platform.pk, "organization": lab.b.org.pk, "period": "week",
         "max_hours": 10},
    )  # fmt: skip

    assert response.status_code == 400
    assert "organization" in response.json()["error"]["details"]["fields"]


def test_a_booking_may_fill_the_quota_to_the_minute_and_not_beyond(api, lab):
    Quota.objects.create(platform=lab.a.platform, period="week", max_hours=3)
    tuesday = next_weekday(1)
    make_booking(lab.a.machine, lab.a.org, lab.a.org_member, at(tuesday, 9), at(tuesday, 11))
    client = api.as_user(lab.a.org_member)

    filling = book(client, lab.a.machine, at(tuesday, 14), at(tuesday, 15))
    beyond = book(client, lab.a.machine, at(tuesday, 16), at(tuesday, 16, 30))

    assert filling.status_code == 201, filling.content
    assert beyond.status_code == 400, beyond.content


def test_a_monthly_quota_counts_the_bookings_that_start_in_the_local_month(api, lab):
    """Paris is one or two hours ahead of UTC: a booking at 00:30 on the 1st is the
    new month's, though it starts on the last day of the old one in UTC."""
    Quota.objects.create(platform=lab.a.platform, period="month", max_hours=2)
    first = next_weekday(0, weeks_ahead=0) + timedelta(days=1)
    while first.day != 1 or first.weekday() > 4:  # a weekday: the lab opens then
        first += timedelta(days=1)  # within 69 days, the booking horizon being 90
    make_booking(
        lab.a.machine, lab.a.org, lab.a.org_member, at(first, 0, 30), at(first, 1, 30)
    )  # the new month's first hour
    make_booking(
        lab.a.machine,
        lab.a.org,
        lab.a.org_member,
        at(first, 0) - timedelta(hours=2),
        at(first, 0) - timedelta(hours=1),
    )  # fmt: skip  (the old month's)
    client = api.as_user(lab.a.org_member)

    second_hour = book(client, lab.a.machine, at(first, 9), at(first, 10))
    third_hour = book(client, lab.a.machine, at(first, 11), at(first, 12))

    assert second_hour.status_code == 201, second_hour.content
    assert [p["code"] for p in third_hour.json()["error"]["details"]["problems"]] == [
        "quota_exceeded"
    ]


def test_every_quota_that_applies_is_checked_and_reported(api, lab):
    Quota.objects.create(platform=lab.a.platform, period="week", max_hours=1)
    Quota.objects.create(
        platform=lab.a.platform, organization=lab.a.org, period="month", max_hours=1
    )
    Quota.objects.create(
        platform=lab.a.platform, organization=lab.b.org, period="week", max_hours=100
    )  # fmt: skip  (another SME's)
    tuesday = next_weekday(1)

    response = book(api.as_user(lab.a.org_member), lab.a.machine, at(tuesday, 9), at(tuesday, 11))

    messages = [p["message"] for p in response.json()["error"]["details"]["problems"]]
    assert len(messages) == 2
    assert "1 hours per month" in messages[0] and "1 hours per week" in messages[1]
