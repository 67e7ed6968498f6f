"""The bookings API: who sees which bookings, who books for whom, cancelling,
filtering, and what a refusal says.

`lab` is world.a's platform open every day 08:00–18:00 (Paris); `day` is a Tuesday
one to two weeks ahead. Errors have one shape: {"error": {"code", "message", "details"}}.
"""

from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers

from booking.api import BookingSerializer
from booking.models import Booking
from core.models import AuditEvent, Membership
from equipment.models import PlatformMembership
from tests import factories
from tests.booking.conftest import at, next_weekday
from tests.booking.support import BOOKINGS, book, iso_z, make_booking, written


@pytest.fixture
def day():
    return next_weekday(1)


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


# --- Booking -------------------------------------------------------------------------


def test_a_member_books_a_free_slot(api, lab, day):
    response = book(
        api.as_user(lab.a.org_member), lab.a.machine, at(day, 9), at(day, 11), title="Jig"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "confirmed"
    assert body["organization"] == lab.a.org.pk
    assert body["machine"] == lab.a.machine.pk
    assert body["booked_by"] == lab.a.org_member.email
    assert (body["start"], body["end"]) == (iso_z(at(day, 9)), iso_z(at(day, 11)))
    assert (body["title"], body["sequence"], body["late_cancellation"]) == ("Jig", 0, False)
    assert Booking.objects.get(pk=body["id"]).start == at(day, 9)


def test_a_bookings_fields_are_built_from_the_model_once_and_each_answer_gets_its_own(lab, day):
    booking = make_booking(lab.a.machine, lab.a.org, lab.a.org_member, at(day, 9), at(day, 10))
    expected = BookingSerializer(booking).data  # built by now, if not by an earlier test

    with mock.patch.object(
        serializers.ModelSerializer, "build_field", side_effect=AssertionError("built again")
    ):
        first, second = BookingSerializer(booking), BookingSerializer(booking)
        assert first.data == second.data == expected

    assert first.fields["status"] is not second.fields["status"]
    assert first.fields["status"].parent is first
    assert expected["booked_by"] == lab.a.org_member.email
    assert expected["status"] == "confirmed"


def test_a_machine_requiring_approval_gets_a_pending_booking(api, lab, day):
    lab.a.machine.approval_required = True
    lab.a.machine.save()

    response = book(api.as_user(lab.a.org_member), lab.a.machine, at(day, 9), at(day, 11))

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending"


def test_every_broken_rule_is_reported_at_once(api, lab, day):
    response = book(api.as_user(lab.a.org_member), lab.a.machine, at(day, 7, 5), at(day, 7, 20))

    problems = error_of(response, 400)["details"]["problems"]
    assert [p["code"] for p in problems] == ["too_short", "misaligned", "outside_opening_hours"]
    assert not Booking.objects.exists()


@pytest.mark.parametrize("field", ["start", "end"])
def test_a_date_time_without_an_offset_is_refused(api, lab, day, field):
    times = {"start": at(day, 9).isoformat(), "end": at(day, 11).isoformat()}
    times[field] = at(day, 9 if field == "start" else 11).replace(tzinfo=None).isoformat()

    response = api.as_user(lab.a.org_member).post(BOOKINGS, {"machine": lab.a.machine.pk, **times})

    error = error_of(response, 400)
    assert error["code"] == "invalid"
    assert list(error["details"]["fields"]) == [field]
    assert "offset" in error["details"]["fields"][field][0]
    assert written() == (0, 0)


def test_a_date_time_error_speaks_the_callers_language(api, lab, day):
    client = api.as_user(lab.a.org_member)
    naive = {"start": at(day, 9).replace(tzinfo=None).isoformat(), "end": at(day, 11).isoformat()}
    # Year 1 at +01:00 is before the first instant Python holds: DRF's own overflow.
    too_early = {"start": "0001-01-01T00:00:00+01:00", "end": at(day, 11).isoformat()}

    refusals = [
        error_of(
            client.post(
                BOOKINGS, {"machine": lab.a.machine.pk, **times}, HTTP_ACCEPT_LANGUAGE="fr"
            ),
            400,
        )["details"]["fields"]["start"]
        for times in (naive, too_early)
    ]

    assert refusals == [
        ["Indiquez le décalage horaire, par exemple 2027-03-01T08:00:00+01:00 ou …Z."],
        ["Indiquez une date entre 1970 et 2999."],
    ]


@pytest.mark.parametrize("bound", ["ends_after", "starts_before"])
def test_a_list_filter_without_an_offset_is_refused_not_read_as_utc(api, lab, day, bound):
    response = api.as_user(lab.a.org_member).get(
        BOOKINGS, {bound: at(day, 9).replace(tzinfo=None).isoformat()}
    )

    error = error_of(response, 400)
    assert list(error["details"]["fields"]) == [bound]
    assert "offset" in error["details"]["fields"][bound][0]


def test_an_offset_other_than_utc_is_the_same_instant(api, lab, day):
    start = at(day, 9)  # "…T09:00:00+01:00" or "+02:00"

    response = book(api.as_user(lab.a.org_member), lab.a.machine, start, at(day, 10))

    assert response.status_code == 201, response.content
    assert response.json()["start"] == iso_z(start)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("9999-12-31T22:00:00Z", "9999-12-31T23:00:00Z"),
        ("9999-12-31T23:00:00Z", "9999-12-31T23:45:00Z"),
    ],
)
def test_dates_at_the_end_of_the_calendar_are_refused_not_a_server_error(api, lab, start, end):
    api.raise_request_exception = False

    response = api.as_user(lab.a.org_member).post(
        BOOKINGS, {"machine": lab.a.machine.pk, "start": start, "end": end}
    )

    assert response.status_code == 400, response.content
    assert written() == (0, 0)


def test_a_buffer_past_the_end_of_the_calendar_is_refused_not_a_server_error(api, lab):
    """A manager's override waives the horizon; the held period still has to exist."""
    api.raise_request_exception = False
    lab.a.machine.buffer_after_minutes = 600
    lab.a.machine.save()

    response = api.as_user(lab.a.manager).post(
        BOOKINGS,
        {
            "machine": lab.a.machine.pk,
            "organization": lab.a.org.pk,
            "start": "9999-12-31T20:00:00Z",
            "end": "9999-12-31T21:00:00Z",
            "override_reason": "Far future",
        },
    )

    assert response.status_code == 400, response.content
    assert written() == (0, 0)


def test_an_empty_title_is_the_same_as_none(api, lab, day):
    response = book(
        api.as_user(lab.a.org_member), lab.a.machine, at(day, 9), at(day, 10), title="", note=""
    )

    assert response.status_code == 201, response.content
    assert response.json()["title"] == ""


# --- Which machine -------------------------------------------------------------------


@pytest.mark.parametrize("machine", ["other platform", "unknown", "retired"])
def test_a_machine_you_cannot_see_is_not_found(api, lab, day, machine):
    target = {
        "other platform": lab.b.machine,
        "unknown": SimpleNamespace(pk=987654321),
        "retired": lab.a.retired_machine,
    }[machine]

    response = book(api.as_user(lab.a.org_member), target, at(day, 9), at(day, 10))

    assert error_of(response, 404)["code"] == "not_found"
    assert written() == (0, 0)


def test_staff_see_their_retired_machine_but_cannot_book_it(api, lab, day):
    response = book(
        api.as_user(lab.a.manager),
        lab.a.retired_machine,
        at(day, 9),
        at(day, 10),
        organization=lab.a.org.pk,
        override_reason="Last job",
    )

    problems = error_of(response, 400)["details"]["problems"]
    assert [p["code"] for p in problems] == ["machine_retired"]


def test_another_platforms_staff_cannot_book_here(api, lab, day):
    response = book(
        api.as_user(lab.b.manager),
        lab.a.machine,
        at(day, 9),
        at(day, 10),
        organization=lab.a.org.pk,
    )

    assert error_of(response, 404)["code"] == "not_found"


def test_an_sme_that_is_not_a_member_of_the_platform_is_told_so(api, lab, day):
    # b's member sees platform A's machine once their SME is a member of a second
    # organization there; booking for b's SME is refused by the rules.
    other = factories.OrganizationFactory()
    PlatformMembership.objects.create(organization=other, platform=lab.a.platform)
    factories.MembershipFactory(user=lab.b.org_member, organization=other)

    response = book(
        api.as_user(lab.b.org_member),
        lab.a.machine,
        at(day, 9),
        at(day, 10),
        organization=lab.b.org.pk,
    )

    problems = error_of(response, 400)["details"]["problems"]
    assert [p["code"] for p in problems] == ["not_a_platform_member"]


# --- For which organization ------------------------------------------------------------


@pytest.fixture
def second_org(lab):
    """a's member also works for a second SME, which books on platform A too."""
    org = factories.OrganizationFactory(legal_name="Second SME")
    PlatformMembership.objects.create(organization=org, platform=lab.a.platform)
    factories.MembershipFactory(user=lab.a.org_member, organization=org)
    return org


def test_the_organization_is_implicit_when_you_belong_to_one(api, lab, day):
    response = book(api.as_user(lab.a.org_member), lab.a.machine, at(day, 9), at(day, 10))

    assert response.status_code == 201, response.content
    assert response.json()["organization"] == lab.a.org.pk


def test_the_organization_is_required_when_you_belong_to_several(api, lab, second_org, day):
    client = api.as_user(lab.a.org_member)

    response = book(client, lab.a.machine, at(day, 9), at(day, 10))
    error = error_of(response, 400)
    assert list(error["details"]["fields"]) == ["organization"]
    assert written() == (0, 0)

    for org, hour in ((second_org, 9), (lab.a.org, 11)):
        response = book(
            client, lab.a.machine, at(day, hour), at(day, hour + 1), organization=org.pk
        )
        assert response.status_code == 201, response.content
        assert response.json()["organization"] == org.pk


@pytest.mark.parametrize("org", ["foreign", "unknown"])
def test_a_foreign_or_unknown_organization_is_refused_alike(api, lab, day, org):
    org_id = lab.b.org.pk if org == "foreign" else 987654321

    response = book(
        api.as_user(lab.a.org_member), lab.a.machine, at(day, 9), at(day, 10), organization=org_id
    )

    error = error_of(response, 400)
    assert error["details"]["fields"] == {"organization": ["No such organization."]}
    assert written() == (0, 0)


@pytest.mark.parametrize("role", ["manager", "operator"])
def test_staff_book_on_behalf_of_an_sme_of_their_platform(api, lab, day, role):
    staff = getattr(lab.a, role)

    response = book(
        api.as_user(staff), lab.a.machine, at(day, 9), at(day, 10), organization=lab.a.org.pk
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["organization"], body["booked_by"]) == (lab.a.org.pk, staff.email)
    # The SME sees it among its bookings.
    assert ids(api.as_user(lab.a.org_member).get(BOOKINGS)) == {body["id"]}


def test_staff_name_the_organization(api, lab, day):
    response = book(api.as_user(lab.a.manager), lab.a.machine, at(day, 9), at(day, 10))

    assert list(error_of(response, 400)["details"]["fields"]) == ["organization"]


def test_staff_cannot_book_for_an_sme_that_does_not_book_on_their_platform(api, lab, day):
    response = book(
        api.as_user(lab.a.manager),
        lab.a.machine,
        at(day, 9),
        at(day, 10),
        organization=lab.b.org.pk,
    )

    assert error_of(response, 400)["details"]["fields"] == {
        "organization": ["No such organization."]
    }


def test_the_platforms_accountant_may_not_book(api, lab, day):
    response = book(
        api.as_user(lab.a.accountant),
        lab.a.machine,
        at(day, 9),
        at(day, 10),
        organization=lab.a.org.pk,
    )

    problems = error_of(response, 400)["details"]["problems"]
    assert [p["code"] for p in problems] == ["not_allowed_to_book"]


# --- Who sees which bookings -------------------------------------------------------------


@pytest.fixture
def bookings(lab, day):
    """b's SME also books on platform A. Bookings, by name:
    a_print (SME a, platform A), b_on_a (SME b, platform A), b_home (SME b, platform B)."""
    PlatformMembership.objects.create(organization=lab.b.org, platform=lab.a.platform)
    return {
        "a_print": make_booking(
            lab.a.machine, lab.a.org, lab.a.org_member, at(day, 9), at(day, 10)
        ),
        "b_on_a": make_booking(
            lab.a.machine, lab.b.org, lab.b.org_member, at(day, 11), at(day, 12)
        ),
        "b_home": make_booking(lab.b.machine, lab.b.org, lab.b.org_member, at(day, 9), at(day, 10)),
    }


@pytest.mark.parametrize(
    ("who", "visible"),
    [
        ("a.org_member", {"a_print"}),
        ("a.org_admin", {"a_print"}),
        ("a.org_accountant", {"a_print"}),
        ("b.org_member", {"b_on_a", "b_home"}),
        ("a.manager", {"a_print", "b_on_a"}),
        ("a.operator", {"a_print", "b_on_a"}),
        ("a.accountant", {"a_print", "b_on_a"}),
        ("b.manager", {"b_home"}),
        ("outsider", set()),
    ],
)
def test_who_sees_which_bookings(api, lab, bookings, who, visible):
    user = lab.outsider if who == "outsider" else getattr(getattr(lab, who[0]), who[2:])
    client = api.as_user(user)

    assert ids(client.get(BOOKINGS)) == {bookings[name].pk for name in visible}
    for name, booking in bookings.items():
        response = client.get(f"{BOOKINGS}{booking.pk}/")
        if name in visible:
            assert response.status_code == 200, response.content
            assert response.json()["id"] == booking.pk
        else:
            assert error_of(response, 404)["code"] == "not_found"


def test_an_unknown_booking_is_not_found(api, lab):
    response = api.as_user(lab.a.manager).get(f"{BOOKINGS}987654321/")

    assert error_of(response, 404)["code"] == "not_found"


def test_bookings_are_for_signed_in_users(api, lab, bookings):
    assert error_of(api.get(BOOKINGS), 401)["code"] == "not_authenticated"


# --- Filters ----------------------------------------------------------------------


@pytest.fixture
def calendar(lab, day):
    """As seen by a's manager: four bookings on platform A, one elsewhere."""
    PlatformMembership.objects.create(organization=lab.b.org, platform=lab.a.platform)
    cutter = factories.MachineFactory(platform=lab.a.platform, name="Laser cutter")
    tomorrow = day + timedelta(days=1)
    return {
        "printer_9": make_booking(
            lab.a.machine, lab.a.org, lab.a.org_member, at(day, 9), at(day, 10)
        ),
        "printer_14_b": make_booking(
            lab.a.machine, lab.b.org, lab.b.org_member, at(day, 14), at(day, 16)
        ),
        "cutter_11": make_booking(
            cutter,
            lab.a.org,
            lab.a.org_member,
            at(day, 11),
            at(day, 12),
            status=Booking.Status.PENDING,
        ),
        "cutter_tomorrow": make_booking(
            cutter,
            lab.a.org,
            lab.a.org_member,
            at(tomorrow, 9),
            at(tomorrow, 10),
            status=Booking.Status.CANCELLED,
        ),
        "cutter": cutter,
        "elsewhere": make_booking(
            lab.b.machine, lab.b.org, lab.b.org_member, at(day, 9), at(day, 10)
        ),
    }


ALL_ON_A = {"printer_9", "printer_14_b", "cutter_11", "cutter_tomorrow"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({}, ALL_ON_A, id="none"),
        pytest.param({"machine": "printer"}, {"printer_9", "printer_14_b"}, id="machine"),
        pytest.param({"machine": "cutter"}, {"cutter_11", "cutter_tomorrow"}, id="machine-2"),
        pytest.param({"machine": "B's printer"}, set(), id="foreign-machine"),
        pytest.param({"platform": "A"}, ALL_ON_A, id="platform"),
        pytest.param({"platform": "B"}, set(), id="foreign-platform"),
        pytest.param({"organization": "SME b"}, {"printer_14_b"}, id="organization"),
        pytest.param({"status": "pending"}, {"cutter_11"}, id="status"),
        pytest.param({"status": "cancelled"}, {"cutter_tomorrow"}, id="cancelled"),
        pytest.param(
            {"status": ["pending", "confirmed"]},
            {"printer_9", "printer_14_b", "cutter_11"},
            id="statuses",
        ),
        # What ends after 10:00 and starts before 14:00 (Paris): bounds excluded.
        pytest.param({"ends_after": "10:00", "starts_before": "14:00"}, {"cutter_11"}, id="window"),
        pytest.param({"ends_after": "09:59"}, ALL_ON_A, id="ends-after"),
        pytest.param({"starts_before": "09:01"}, {"printer_9"}, id="starts-before"),
        pytest.param(
            {"machine": "cutter", "status": "pending", "ends_after": "09:00"},
            {"cutter_11"},
            id="combined",
        ),
    ],
)
def test_filters(api, lab, day, calendar, query, expected):
    """As a's manager. Times are sent with Paris's offset (ends_after) or in UTC
    (starts_before): both mean the same instant."""
    names = {
        "printer": lab.a.machine.pk,
        "cutter": calendar["cutter"].pk,
        "B's printer": lab.b.machine.pk,
        "A": lab.a.platform.pk,
        "B": lab.b.platform.pk,
        "SME b": lab.b.org.pk,
    }

    def value(key, given):
        if key in ("ends_after", "starts_before"):
            moment = at(day, *map(int, given.split(":")))
            return moment.isoformat() if key == "ends_after" else iso_z(moment)
        return names.get(given, given) if isinstance(given, str) else given

    response = api.as_user(lab.a.manager).get(
        BOOKINGS, {key: value(key, given) for key, given in query.items()}
    )

    assert ids(response) == {calendar[name].pk for name in expected}


def test_filters_never_reach_foreign_bookings(api, lab, day, calendar):
    client = api.as_user(lab.a.org_member)

    assert ids(client.get(BOOKINGS, {"organization": lab.b.org.pk})) == set()
    assert ids(client.get(BOOKINGS, {"platform": lab.b.platform.pk})) == set()


def test_an_unknown_status_is_a_400(api, lab):
    error = error_of(api.as_user(lab.a.manager).get(BOOKINGS, {"status": "bogus"}), 400)

    assert list(error["details"]["fields"]) == ["status"]


# --- Query counts ----------------------------------------------------------------


def _fill(lab, rows: int, first: int = 0):
    """`rows` bookings of as many organizations and bookers on platform A,
    one an hour from 08:00 to 16:00, from next Monday on."""
    monday = next_weekday(0)
    for n in range(first, first + rows):
        org = factories.OrganizationFactory()
        PlatformMembership.objects.create(organization=org, platform=lab.a.platform)
        member = factories.MembershipFactory(organization=org, role=Membership.Role.MEMBER).user
        start = at(monday + timedelta(days=n // 8), 8 + n % 8)
        make_booking(lab.a.machine, org, member, start, start + timedelta(hours=1))


@pytest.mark.parametrize("rows", [3, 30])
def test_the_list_makes_a_fixed_number_of_queries_however_many_bookings(
    api, lab, django_assert_max_num_queries, rows
):
    _fill(lab, rows)
    client = api.as_user(lab.a.manager)

    # Token lookup and last-use stamp, count, page.
    with django_assert_max_num_queries(4):
        response = client.get(BOOKINGS)

    assert response.json()["count"] == rows


def test_the_list_costs_the_same_for_3_and_30_bookings(api, lab):
    client = api.as_user(lab.a.manager)
    counts = []
    client.get(BOOKINGS)  # the token's last use is stamped once, on the first request
    for first, rows in ((0, 3), (3, 27)):
        _fill(lab, rows, first)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(BOOKINGS).status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1]


# --- A conflict says when, never whose ----------------------------------------------


def test_a_conflict_lists_the_clashing_intervals_without_their_owner(api, lab, day):
    lab.a.machine.buffer_after_minutes = 15
    lab.a.machine.save()
    PlatformMembership.objects.create(organization=lab.b.org, platform=lab.a.platform)
    rival = book(
        api.as_user(lab.b.org_member),
        lab.a.machine,
        at(day, 9),
        at(day, 11),
        title="Secret prototype",
        note="For Customer Zeta",
    )
    assert rival.status_code == 201, rival.content

    response = book(api.as_user(lab.a.org_member), lab.a.machine, at(day, 10), at(day, 12))

    error = error_of(response, 409)
    assert error["code"] == "booking_conflict"
    assert error["details"]["conflicts"] == [
        # The held period: the booking and its buffer.
        {"start": iso_z(at(day, 9)), "end": iso_z(at(day, 11, 15)), "kind": "booking"}
    ]
    # Times to book instead (tests/booking/test_availability.py), nobody's data.
    assert set(error["details"]) == {"conflicts", "suggestions"}
    text = response.content.decode()
    for secret in (
        "Secret prototype",
        "Customer Zeta",
        lab.b.org.legal_name,
        lab.b.org_member.email,
        f'"id":{rival.json()["id"]}',
    ):
        assert secret not in text
    assert Booking.objects.count() == 1


def test_the_slot_after_a_buffer_is_free(api, lab, day):
    lab.a.machine.buffer_after_minutes = 30
    lab.a.machine.save()
    client = api.as_user(lab.a.org_member)
    assert book(client, lab.a.machine, at(day, 9), at(day, 11)).status_code == 201

    assert book(client, lab.a.machine, at(day, 11, 15), at(day, 12)).status_code == 409
    assert book(client, lab.a.machine, at(day, 11, 30), at(day, 12)).status_code == 201


# --- Cancelling -------------------------------------------------------------------


@pytest.fixture
def booked(lab, day):
    """A confirmed booking of SME a on next Tuesday 09:00–11:00, made by its member."""
    return make_booking(lab.a.machine, lab.a.org, lab.a.org_member, at(day, 9), at(day, 11))


def cancel(client, booking, **body):
    return client.post(f"{BOOKINGS}{booking.pk}/cancel/", body)


@pytest.mark.parametrize("who", ["a.org_member", "a.org_admin", "a.manager", "a.operator"])
def test_the_smes_bookers_and_the_platforms_staff_may_cancel(api, lab, booked, who):
    user = getattr(getattr(lab, who[0]), who[2:])

    response = cancel(api.as_user(user), booked, reason="Part redesigned")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["sequence"] == booked.sequence + 1
    assert body["cancelled_at"] is not None
    assert body["late_cancellation"] is False
    booked.refresh_from_db()
    assert (booked.status, booked.cancelled_by) == (Booking.Status.CANCELLED, user)
    event = AuditEvent.objects.get(action="booking.cancel")
    assert event.changes == {"late": False, "reason": "Part redesigned"}


def test_a_cancelled_slot_can_be_booked_again(api, lab, booked, day):
    client = api.as_user(lab.a.org_member)
    assert cancel(client, booked).status_code == 200

    assert book(client, lab.a.machine, at(day, 9), at(day, 11)).status_code == 201


@pytest.mark.parametrize("who", ["b.org_member", "b.manager", "outsider"])
def test_someone_who_cannot_see_the_booking_gets_a_404(api, lab, booked, who):
    user = lab.outsider if who == "outsider" else getattr(getattr(lab, who[0]), who[2:])

    assert error_of(cancel(api.as_user(user), booked), 404)["code"] == "not_found"
    booked.refresh_from_db()
    assert (booked.status, booked.sequence) == (Booking.Status.CONFIRMED, 0)


@pytest.mark.parametrize("who", ["org_accountant", "accountant"])
def test_accountants_see_the_booking_but_may_not_cancel_it(api, lab, booked, who):
    response = cancel(api.as_user(getattr(lab.a, who)), booked)

    assert error_of(response, 403)["code"] == "permission_denied"
    booked.refresh_from_db()
    assert (booked.status, booked.sequence) == (Booking.Status.CONFIRMED, 0)
    assert not AuditEvent.objects.filter(action="booking.cancel").exists()


def test_cancelling_twice_is_a_409(api, lab, booked):
    client = api.as_user(lab.a.org_member)
    assert cancel(client, booked).status_code == 200

    error = error_of(cancel(client, booked), 409)

    assert error["code"] == "booking_not_active"
    booked.refresh_from_db()
    assert booked.sequence == 1
    assert AuditEvent.objects.filter(action="booking.cancel").count() == 1


def test_a_booking_that_has_started_cannot_be_cancelled(api, lab):
    now = timezone.now()
    started = make_booking(
        lab.a.machine,
        lab.a.org,
        lab.a.org_member,
        now - timedelta(minutes=30),
        now + timedelta(minutes=30),
    )

    error = error_of(cancel(api.as_user(lab.a.org_member), started), 409)

    assert error["code"] == "booking_started"
    started.refresh_from_db()
    assert started.status == Booking.Status.CONFIRMED


def test_a_pending_booking_may_be_cancelled(api, lab, booked):
    Booking.objects.filter(pk=booked.pk).update(status=Booking.Status.PENDING)

    response = cancel(api.as_user(lab.a.org_member), booked)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("deadline_hours", "late"),
    [(24, False), (24 * 30, True)],
    ids=["before-the-deadline", "after-the-deadline"],
)
def test_cancelling_after_the_platforms_deadline_is_marked_late(
    api, lab, booked, deadline_hours, late
):
    """`booked` starts one to two weeks ahead: inside a 30-day deadline, not a 1-day one."""
    lab.a.platform.cancellation_deadline_hours = deadline_hours
    lab.a.platform.save()

    response = cancel(api.as_user(lab.a.org_member), booked)

    assert response.status_code == 200, response.content
    assert response.json()["late_cancellation"] is late
    assert AuditEvent.objects.get(action="booking.cancel").changes["late"] is late


def test_cancelling_is_post_only_and_bookings_are_not_edited_or_deleted_directly(api, lab, booked):
    client = api.as_user(lab.a.org_member)

    assert client.get(f"{BOOKINGS}{booked.pk}/cancel/").status_code == 405
    assert client.delete(f"{BOOKINGS}{booked.pk}/").status_code == 405
    assert client.patch(f"{BOOKINGS}{booked.pk}/", {"status": "cancelled"}).status_code == 405
    booked.refresh_from_db()
    assert booked.status == Booking.Status.CONFIRMED
