"""Refused demand is recorded (booking/refusals.py) for the utilisation analytics:
a booking or a move refused for a conflict or broken rules, occurrences of a
series that could not be booked, and pending bookings a manager rejects. The
refusal itself still rolls back everything else, and answers as before.

`lab` is world.a's platform open every day 08:00–18:00 (Paris); `day` a Tuesday
one to two weeks ahead."""

import pytest

from booking import services
from booking.errors import BookingConflict, BookingRejected, SeriesNotBookable
from booking.models import Booking, RefusedRequest
from tests.booking.conftest import at, next_weekday
from tests.booking.support import BOOKINGS, book, written


@pytest.fixture
def day():
    return next_weekday(1)


def refusals() -> list[tuple]:
    return list(
        RefusedRequest.objects.order_by("id").values_list("kind", "action", "organization", "codes")
    )


def test_a_conflict_over_the_api_is_recorded_and_still_answers_409(api, lab, day):
    api.as_user(lab.a.org_member)
    assert book(api, lab.a.machine, at(day, 9), at(day, 11)).status_code == 201
    before = written()

    response = book(api, lab.a.machine, at(day, 10), at(day, 12))

    assert response.status_code == 409
    assert written() == before
    assert refusals() == [("conflict", "create", lab.a.org.pk, [])]
    refused = RefusedRequest.objects.get()
    assert (refused.machine, refused.start, refused.end, refused.requested_by) == (
        lab.a.machine,
        at(day, 10),
        at(day, 12),
        lab.a.org_member,
    )


def test_broken_rules_are_recorded_with_their_codes(api, lab, day):
    api.as_user(lab.a.org_member)

    response = book(api, lab.a.machine, at(day, 7), at(day, 7, 10))

    assert response.status_code == 400
    assert refusals() == [
        (
            "rules",
            "create",
            lab.a.org.pk,
            sorted(p["code"] for p in response.json()["error"]["details"]["problems"]),
        )
    ]


def test_a_refusal_with_an_idempotency_key_is_recorded_and_may_be_retried(api, lab, day):
    api.as_user(lab.a.org_member)
    assert book(api, lab.a.machine, at(day, 9), at(day, 11)).status_code == 201
    Booking.objects.update(status=Booking.Status.CONFIRMED)

    first = book(api, lab.a.machine, at(day, 10), at(day, 12), HTTP_IDEMPOTENCY_KEY="k-1")
    Booking.objects.update(status=Booking.Status.CANCELLED)  # the slot frees up
    retry = book(api, lab.a.machine, at(day, 10), at(day, 12), HTTP_IDEMPOTENCY_KEY="k-1")

    assert (first.status_code, retry.status_code) == (409, 201)
    assert refusals() == [("conflict", "create", lab.a.org.pk, [])]


def test_a_refused_move_is_recorded(lab, day):
    first = services.create_booking(
        machine=lab.a.machine,
        organization=lab.a.org,
        by=lab.a.org_member,
        start=at(day, 9),
        end=at(day, 10),
    )
    services.create_booking(
        machine=lab.a.machine,
        organization=lab.a.org,
        by=lab.a.org_member,
        start=at(day, 11),
        end=at(day, 12),
    )

    with pytest.raises(BookingConflict):
        services.move_booking(
            booking=first, by=lab.a.org_member, start=at(day, 11), end=at(day, 12)
        )
    with pytest.raises(BookingRejected):
        services.move_booking(booking=first, by=lab.a.org_member, start=at(day, 6), end=at(day, 7))

    assert refusals() == [
        ("conflict", "move", lab.a.org.pk, []),
        ("rules", "move", lab.a.org.pk, ["outside_opening_hours"]),
    ]
    assert RefusedRequest.objects.filter(booking=first).count() == 2


def test_a_manager_rejecting_a_pending_booking_is_refused_demand(lab, day):
    lab.a.machine.approval_required = True
    lab.a.machine.save()
    pending = services.create_booking(
        machine=lab.a.machine,
        organization=lab.a.org,
        by=lab.a.org_member,
        start=at(day, 9),
        end=at(day, 10),
    )

    services.reject_booking(booking=pending, by=lab.a.manager, reason="Reserved for training")

    assert refusals() == [("rejected", "approval", lab.a.org.pk, [])]
    assert RefusedRequest.objects.get().booking == pending


def test_the_refused_occurrences_of_a_series_are_recorded_however_it_ends(lab, day):
    services.create_booking(
        machine=lab.a.machine,
        organization=lab.a.org,
        by=lab.a.org_member,
        start=at(day, 9),
        end=at(day, 10),
    )
    series = {
        "machine": lab.a.machine,
        "organization": lab.a.org,
        "by": lab.a.org_member,
        "start": at(day, 9),
        "end": at(day, 10),
        "rule": "FREQ=DAILY;COUNT=3",
    }

    with pytest.raises(SeriesNotBookable):
        services.create_series(**series)
    assert refusals() == [("conflict", "series", lab.a.org.pk, [])]

    services.create_series(**series, skip_conflicts=True)
    assert refusals() == [("conflict", "series", lab.a.org.pk, [])] * 2
    assert Booking.objects.count() == 3


def test_a_refusal_is_not_recorded_when_nothing_was_asked_of_the_machine(api, lab, day):
    """Permission problems (an SME member overriding rules) are not demand."""
    api.as_user(lab.a.org_member)

    response = api.post(
        BOOKINGS,
        {
            "machine": lab.a.machine.pk,
            "start": at(day, 9).isoformat(),
            "end": at(day, 10).isoformat(),
            "override_reason": "please",
        },
    )

    assert response.status_code == 403
    assert refusals() == []
