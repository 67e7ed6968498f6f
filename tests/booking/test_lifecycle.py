"""What happens to a booking after it is made: moving and resizing it, approving or
rejecting it, checking in and out, and the no-shows `manage.py mark_no_shows` marks.

`lab` is world.a's platform open every day 08:00–18:00 (Paris), its printer taking
30 min to 8 h in 15-minute steps, 1 h ahead at least; `day` is a Tuesday one to two
weeks ahead. Times are Paris wall-clock times on `day`. The clock is stopped with
`time_machine` wherever "now" matters. Errors have one shape:
{"error": {"code", "message", "details"}}.
"""

from datetime import datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from booking import services
from booking.models import Booking
from core.errors import Conflict, Forbidden
from core.models import AuditEvent
from equipment.models import Closure, MaintenanceWindow, PlatformMembership
from tests import factories
from tests.booking.conftest import at, next_weekday
from tests.booking.support import BOOKINGS, book, codes, iso_z, make_booking, written


@pytest.fixture
def day():
    return next_weekday(1)


def travel(moment: datetime):
    """Stop the clock at `moment` (a context manager)."""
    return time_machine.travel(moment, tick=False)


def person(lab, who: str):
    """ "a.org_member" → lab.a.org_member; "outsider" → lab.outsider."""
    if who == "outsider":
        return lab.outsider
    side, role = who.split(".")
    return getattr(getattr(lab, side), role)


def client_for(api, user):
    """A client of its own: `api.as_user()` re-authenticates the one `api` client."""
    return type(api)().as_user(user)


def act(client, booking, action: str, **body):
    """POST /api/v1/bookings/{id}/{action}/ with a JSON body."""
    return client.post(f"{BOOKINGS}{booking.pk}/{action}/", body)


def move(client, booking, start: datetime, end: datetime, **extra):
    return act(client, booking, "move", start=start.isoformat(), end=end.isoformat(), **extra)


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def state(booking: Booking) -> tuple:
    """Everything a refused action must leave as it was."""
    booking.refresh_from_db()
    return (
        booking.status,
        booking.start,
        booking.end,
        booking.blocked_until,
        booking.sequence,
        booking.override_reason,
        booking.decided_at,
        booking.decision_note,
        booking.checked_in_at,
        booking.checked_out_at,
    )


class Untouched:
    """`with Untouched(booking):` — the block must change neither the booking nor
    the number of bookings, nor add a booking.* line to the audit trail."""

    def __init__(self, *bookings: Booking):
        self.bookings = bookings

    def __enter__(self):
        self.before = [state(b) for b in self.bookings], written()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            assert ([state(b) for b in self.bookings], written()) == self.before


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


@pytest.fixture
def booked(lab, day):
    """A confirmed booking of SME a, 09:00–11:00 on `day`, made by its member."""
    return make_booking(lab.a.machine, lab.a.org, lab.a.org_member, at(day, 9), at(day, 11))


@pytest.fixture
def b_books_on_a(lab):
    """b's SME may book on platform A too (someone else to take a freed slot)."""
    PlatformMembership.objects.create(organization=lab.b.org, platform=lab.a.platform)
    return lab.b.org_member


# === Moving and resizing ================================================================


def test_a_member_moves_their_booking_to_a_free_slot(api, lab, booked, day):
    response = move(api.as_user(lab.a.org_member), booked, at(day, 14), at(day, 16))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["start"], body["end"], body["blocked_until"]) == (
        iso_z(at(day, 14)),
        iso_z(at(day, 16)),
        iso_z(at(day, 16)),
    )
    assert (body["status"], body["sequence"]) == ("confirmed", 1)
    booked.refresh_from_db()
    assert (booked.start, booked.end, booked.blocked_until, booked.sequence) == (
        at(day, 14),
        at(day, 16),
        at(day, 16),
        1,
    )
    [event] = events("booking.move")
    assert (event.actor, event.target_id) == (lab.a.org_member, str(booked.pk))
    assert event.changes == {
        "start": [iso_z(at(day, 9)), iso_z(at(day, 14))],
        "end": [iso_z(at(day, 11)), iso_z(at(day, 16))],
    }
    assert Booking.objects.count() == 1


def test_moving_keeps_the_machines_buffer_after_the_new_end(api, lab, day):
    lab.a.machine.buffer_after_minutes = 30
    lab.a.machine.save()
    booking = make_booking(
        lab.a.machine,
        lab.a.org,
        lab.a.org_member,
        at(day, 9),
        at(day, 11),
        blocked_until=at(day, 11, 30),
    )

    response = move(api.as_user(lab.a.org_member), booking, at(day, 13), at(day, 14, 45))

    assert response.status_code == 200, response.content
    assert response.json()["blocked_until"] == iso_z(at(day, 15, 15))
    booking.refresh_from_db()
    assert booking.blocked_until == at(day, 15, 15)


def test_resizing_records_only_what_changed(api, lab, booked, day):
    response = move(api.as_user(lab.a.org_member), booked, at(day, 9), at(day, 12, 30))

    assert response.status_code == 200, response.content
    assert response.json()["sequence"] == 1
    [event] = events("booking.move")
    assert event.changes == {"end": [iso_z(at(day, 11)), iso_z(at(day, 12, 30))]}


def test_each_move_raises_the_sequence(api, lab, booked, day):
    client = api.as_user(lab.a.org_member)

    for n, hour in enumerate((10, 12, 14), start=1):
        response = move(client, booked, at(day, hour), at(day, hour + 1))
        assert response.status_code == 200, response.content
        assert response.json()["sequence"] == n

    assert len(events("booking.move")) == 3


def _close_the_next_day(lab, day):
    Closure.objects.create(
        platform=lab.a.platform,
        start_date=(day + timedelta(days=1)).date(),
        end_date=(day + timedelta(days=1)).date(),
        reason="Inventory",
    )


def _require_a_qualification(lab, day):
    # a's member holds a qualification for another machine type only.
    lab.a.machine.qualification_required = True
    lab.a.machine.save()


MOVES_BREAKING_RULES = [
    # (id, start, end as (day offset, hour, minute), setup, expected codes)
    (
        "all-at-once",
        (0, 7, 5),
        (0, 7, 20),
        None,
        ["too_short", "misaligned", "outside_opening_hours"],
    ),
    ("too-long", (0, 9, 0), (0, 17, 15), None, ["too_long"]),
    ("misaligned", (0, 9, 10), (0, 10, 10), None, ["misaligned"]),
    ("after-closing", (0, 17, 0), (0, 18, 30), None, ["outside_opening_hours"]),
    ("beyond-horizon", (100, 9, 0), (100, 10, 0), None, ["beyond_horizon"]),
    ("closed-day", (1, 9, 0), (1, 10, 0), _close_the_next_day, ["platform_closed"]),
    ("untrained", (0, 14, 0), (0, 15, 0), _require_a_qualification, ["qualification_missing"]),
    ("end-before-start", (0, 14, 0), (0, 13, 0), None, ["end_before_start"]),
    ("empty", (0, 14, 0), (0, 14, 0), None, ["end_before_start"]),
]


@pytest.mark.parametrize(
    ("start", "end", "setup", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in MOVES_BREAKING_RULES],
)
def test_a_move_obeys_the_rules_of_a_new_booking_all_reported_at_once(
    api, lab, booked, day, start, end, setup, expected
):
    if setup:
        setup(lab, day)

    def moment(offset_hour_minute):
        offset, hour, minute = offset_hour_minute
        return at(day + timedelta(days=offset), hour, minute)

    with Untouched(booked):
        response = move(api.as_user(lab.a.org_member), booked, moment(start), moment(end))

        error = error_of(response, 400)
    assert error["code"] == "booking_rejected"
    assert codes(error["details"]["problems"]) == expected


def test_a_move_too_close_to_now_is_refused(api, lab, booked, day):
    client = api.as_user(lab.a.org_member)

    with travel(at(day, 8)), Untouched(booked):
        response = move(client, booked, at(day, 8, 30), at(day, 9, 30))

        problems = codes(error_of(response, 400)["details"]["problems"])
        assert problems == ["too_late_to_book", "too_late_to_move"]


@pytest.mark.parametrize("field", ["start", "end"])
def test_a_move_without_an_offset_is_refused(api, lab, booked, day, field):
    body = {"start": at(day, 14).isoformat(), "end": at(day, 15).isoformat()}
    body[field] = at(day, 14 if field == "start" else 15).replace(tzinfo=None).isoformat()

    with Untouched(booked):
        response = act(api.as_user(lab.a.org_member), booked, "move", **body)

        error = error_of(response, 400)
    assert list(error["details"]["fields"]) == [field]


def test_moving_onto_another_booking_is_a_conflict(api, lab, booked, day, b_books_on_a):
    other = make_booking(lab.a.machine, lab.b.org, b_books_on_a, at(day, 14), at(day, 16))

    with Untouched(booked, other):
        response = move(api.as_user(lab.a.org_member), booked, at(day, 15), at(day, 17))

        error = error_of(response, 409)
    assert error["code"] == "booking_conflict"
    assert error["details"]["conflicts"] == [
        {"start": iso_z(at(day, 14)), "end": iso_z(at(day, 16)), "kind": "booking"}
    ]


def test_a_move_that_clashes_suggests_slots_where_the_booking_itself_is_no_obstacle(
    api, lab, booked, day, b_books_on_a
):
    """booked holds 09:00–11:00; b holds 08:00–09:00. Moving booked to 08:30–10:30
    clashes with b; 09:00–11:00, where booked already is, is the first suggestion."""
    make_booking(lab.a.machine, lab.b.org, b_books_on_a, at(day, 8), at(day, 9))

    with Untouched(booked):
        response = move(api.as_user(lab.a.org_member), booked, at(day, 8, 30), at(day, 10, 30))

        error = error_of(response, 409)
    same_machine = error["details"]["suggestions"]["same_machine"]
    assert same_machine[:2] == [
        {"start": iso_z(at(day, 9)), "end": iso_z(at(day, 11))},
        {"start": iso_z(at(day, 11)), "end": iso_z(at(day, 13))},
    ]


def test_moving_so_that_the_buffer_reaches_another_booking_is_a_conflict(api, lab, day):
    lab.a.machine.buffer_after_minutes = 30
    lab.a.machine.save()
    first = make_booking(
        lab.a.machine,
        lab.a.org,
        lab.a.org_member,
        at(day, 9),
        at(day, 10),
        blocked_until=at(day, 10, 30),
    )
    second = make_booking(
        lab.a.machine,
        lab.a.org,
        lab.a.org_member,
        at(day, 12),
        at(day, 13),
        blocked_until=at(day, 13, 30),
    )
    client = api.as_user(lab.a.org_member)

    with Untouched(first, second):
        # Ends at 11:45, held until 12:15: into the second booking.
        assert error_of(move(client, first, at(day, 11), at(day, 11, 45)), 409)["code"] == (
            "booking_conflict"
        )
    # Ending at 11:30, held until 12:00, it fits.
    assert move(client, first, at(day, 10, 30), at(day, 11, 30)).status_code == 200


def test_moving_onto_a_maintenance_window_is_a_conflict(api, lab, booked, day):
    MaintenanceWindow.objects.create(
        machine=lab.a.machine, start=at(day, 13), end=at(day, 15), reason="Calibration"
    )

    with Untouched(booked):
        response = move(api.as_user(lab.a.org_member), booked, at(day, 14), at(day, 16))

        error = error_of(response, 409)
    assert error["code"] == "booking_conflict"
    assert error["details"]["conflicts"] == [
        {"start": iso_z(at(day, 13)), "end": iso_z(at(day, 15)), "kind": "maintenance"}
    ]


def test_nobody_overrides_a_conflict(api, lab, booked, day):
    make_booking(lab.a.machine, lab.a.org, lab.a.org_member, at(day, 14), at(day, 16))

    with Untouched(booked):
        response = move(
            api.as_user(lab.a.manager), booked, at(day, 15), at(day, 17), override_reason="Urgent"
        )

        assert error_of(response, 409)["code"] == "booking_conflict"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param((10, 0), (12, 0), id="later-overlapping"),
        pytest.param((8, 0), (10, 0), id="earlier-overlapping"),
        pytest.param((9, 30), (10, 30), id="inside"),
        pytest.param((8, 0), (12, 0), id="around"),
        pytest.param((11, 0), (12, 0), id="back-to-back"),
    ],
)
def test_a_booking_does_not_clash_with_its_own_old_period(api, lab, booked, day, start, end):
    response = move(api.as_user(lab.a.org_member), booked, at(day, *start), at(day, *end))

    assert response.status_code == 200, response.content
    booked.refresh_from_db()
    assert (booked.start, booked.end, booked.sequence) == (at(day, *start), at(day, *end), 1)
    assert Booking.objects.active().count() == 1


def test_moving_to_the_same_times_changes_nothing(api, lab, booked, day):
    client = api.as_user(lab.a.org_member)
    before = AuditEvent.objects.count()

    response = move(client, booked, at(day, 9), at(day, 11))

    assert response.status_code == 200, response.content
    booked.refresh_from_db()
    assert (booked.start, booked.end, booked.sequence) == (at(day, 9), at(day, 11), 0)
    assert AuditEvent.objects.count() == before


def test_a_booking_does_not_clash_with_its_own_buffer(api, lab, day):
    lab.a.machine.buffer_after_minutes = 60
    lab.a.machine.save()
    booking = make_booking(
        lab.a.machine,
        lab.a.org,
        lab.a.org_member,
        at(day, 9),
        at(day, 11),
        blocked_until=at(day, 12),
    )

    response = move(api.as_user(lab.a.org_member), booking, at(day, 11, 30), at(day, 12, 30))

    assert response.status_code == 200, response.content
    assert response.json()["blocked_until"] == iso_z(at(day, 13, 30))


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("a.org_member", "pending"),
        ("a.org_admin", "pending"),
        # Operators book for SMEs but do not approve: their move asks again too.
        ("a.operator", "pending"),
        ("a.manager", "confirmed"),
    ],
)
def test_a_moved_booking_on_a_machine_needing_approval_asks_again_unless_a_manager_moves_it(
    api, lab, booked, day, who, status
):
    lab.a.machine.approval_required = True
    lab.a.machine.save()  # `booked` was approved already

    response = move(api.as_user(person(lab, who)), booked, at(day, 14), at(day, 16))

    assert response.status_code == 200, response.content
    assert response.json()["status"] == status
    [event] = events("booking.move")
    if status == "pending":
        assert event.changes["status"] == ["confirmed", "pending"]
    else:
        assert "status" not in event.changes
    # Pending or not, the new slot is held and the old one free.
    client = api.as_user(lab.a.org_member)
    assert book(client, lab.a.machine, at(day, 15), at(day, 16)).status_code == 409
    assert book(client, lab.a.machine, at(day, 9), at(day, 11)).status_code == 201


def test_a_managers_move_of_a_pending_booking_is_not_an_approval(api, lab, booked, day):
    lab.a.machine.approval_required = True
    lab.a.machine.save()
    Booking.objects.filter(pk=booked.pk).update(status=Booking.Status.PENDING)

    response = move(api.as_user(lab.a.manager), booked, at(day, 14), at(day, 16))

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending"


def test_a_managers_override_reason_waives_the_soft_rules(api, lab, booked, day):
    client = api.as_user(lab.a.manager)

    with Untouched(booked):
        refused = move(client, booked, at(day, 7), at(day, 8))
        assert codes(error_of(refused, 400)["details"]["problems"]) == ["outside_opening_hours"]

    response = move(client, booked, at(day, 7), at(day, 8), override_reason="Early shift")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["start"], body["override_reason"]) == (iso_z(at(day, 7)), "Early shift")
    booked.refresh_from_db()
    assert booked.override_reason == "Early shift"


def test_an_override_reason_is_kept_only_when_a_rule_was_waived(api, lab, booked, day):
    response = move(
        api.as_user(lab.a.manager), booked, at(day, 14), at(day, 15), override_reason="Just in case"
    )

    assert response.status_code == 200, response.content
    assert response.json()["override_reason"] == ""


def test_an_override_reason_does_not_waive_the_hard_rules(api, lab, booked, day):
    with Untouched(booked):
        response = move(
            api.as_user(lab.a.manager), booked, at(day, 14), at(day, 13), override_reason="Please"
        )

        assert codes(error_of(response, 400)["details"]["problems"]) == ["end_before_start"]


@pytest.mark.parametrize("who", ["a.org_member", "a.org_admin", "a.operator"])
def test_only_managers_may_give_an_override_reason(api, lab, booked, day, who):
    with Untouched(booked):
        response = move(
            api.as_user(person(lab, who)), booked, at(day, 7), at(day, 8), override_reason="Early"
        )

        assert error_of(response, 403)["code"] == "permission_denied"


def test_a_booking_that_has_started_cannot_be_moved(api, lab, booked, day):
    client = api.as_user(lab.a.manager)

    for now in (at(day, 9), at(day, 10, 59), at(day, 12)):
        with travel(now), Untouched(booked):
            response = move(client, booked, at(day, 14), at(day, 16), override_reason="Late")

            assert error_of(response, 409)["code"] == "booking_started", now


def test_a_booking_just_before_its_start_can_still_be_moved(api, lab, booked, day):
    """By a manager: the notice and the cancellation deadline are past, soft rules."""
    with travel(at(day, 8, 59)):
        response = move(
            api.as_user(lab.a.manager), booked, at(day, 14), at(day, 16), override_reason="Repair"
        )

    assert response.status_code == 200, response.content


def test_after_the_cancellation_deadline_a_booking_may_grow_but_not_give_time_back(
    api, lab, booked, day
):
    """Moving it away would free the slot as late as a late cancellation does,
    without the late cancellation's charge (24 h here)."""
    client = api.as_user(lab.a.org_member)
    next_week = day + timedelta(days=7)

    with travel(at(day - timedelta(days=1), 9, 1)), Untouched(booked):
        for start, end in [
            (at(next_week, 9), at(next_week, 11)),  # away
            (at(day, 10), at(day, 11)),  # shorter
            (at(day, 10), at(day, 12)),  # later: frees 09:00-10:00
        ]:
            response = move(client, booked, start, end)
            assert codes(error_of(response, 400)["details"]["problems"]) == ["too_late_to_move"]
    with travel(at(day - timedelta(days=1), 8, 59)):  # before the deadline: anywhere
        assert move(client, booked, at(next_week, 9), at(next_week, 11)).status_code == 200
    with travel(at(next_week - timedelta(days=1), 12)):  # grows on both sides
        assert move(client, booked, at(next_week, 8), at(next_week, 12)).status_code == 200

    booked.refresh_from_db()
    assert (booked.start, booked.end) == (at(next_week, 8), at(next_week, 12))


@pytest.mark.parametrize("status", ["cancelled", "rejected", "completed", "no_show"])
def test_a_booking_that_is_not_active_cannot_be_moved(api, lab, booked, day, status):
    Booking.objects.filter(pk=booked.pk).update(status=status)

    with Untouched(booked):
        response = move(api.as_user(lab.a.org_member), booked, at(day, 14), at(day, 16))

        assert error_of(response, 409)["code"] == "booking_wrong_status"


def test_a_booking_cancelled_through_the_api_cannot_be_moved(api, lab, booked, day):
    client = api.as_user(lab.a.org_member)
    assert act(client, booked, "cancel").status_code == 200

    with Untouched(booked):
        assert error_of(move(client, booked, at(day, 14), at(day, 16)), 409)["code"] == (
            "booking_wrong_status"
        )


@pytest.mark.parametrize("who", ["b.org_member", "b.manager", "outsider"])
def test_someone_who_cannot_see_the_booking_cannot_move_it(api, lab, booked, day, who):
    with Untouched(booked):
        response = move(api.as_user(person(lab, who)), booked, at(day, 14), at(day, 16))

        assert error_of(response, 404)["code"] == "not_found"


@pytest.mark.parametrize("who", ["a.org_accountant", "a.accountant"])
def test_accountants_see_the_booking_but_may_not_move_it(api, lab, booked, day, who):
    with Untouched(booked):
        response = move(api.as_user(person(lab, who)), booked, at(day, 14), at(day, 16))

        assert error_of(response, 403)["code"] == "permission_denied"


def test_moving_frees_the_old_slot_for_others(api, lab, booked, day, b_books_on_a):
    assert move(api.as_user(lab.a.org_member), booked, at(day, 14), at(day, 16)).status_code == 200

    response = book(api.as_user(b_books_on_a), lab.a.machine, at(day, 9), at(day, 11))

    assert response.status_code == 201, response.content


def test_moving_through_the_service_is_the_same(lab, booked, day):
    moved = services.move_booking(
        booking=booked, by=lab.a.org_member, start=at(day, 14), end=at(day, 15)
    )

    assert (moved.start, moved.end, moved.sequence) == (at(day, 14), at(day, 15), 1)
    booked.refresh_from_db()
    assert booked.end == at(day, 15)


# === Approving and rejecting ============================================================


@pytest.fixture
def pending(lab, booked):
    """`booked`, waiting for approval on a printer that needs it."""
    lab.a.machine.approval_required = True
    lab.a.machine.save()
    Booking.objects.filter(pk=booked.pk).update(status=Booking.Status.PENDING)
    booked.refresh_from_db()
    return booked


def test_a_manager_approves_a_pending_booking(api, lab, pending, day):
    with travel(at(day - timedelta(days=3), 10)):
        response = act(api.as_user(lab.a.manager), pending, "approve", note="Bring your own resin")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["sequence"]) == ("confirmed", 1)
    assert body["decided_at"] == iso_z(at(day - timedelta(days=3), 10))
    assert body["decision_note"] == "Bring your own resin"
    pending.refresh_from_db()
    assert (pending.status, pending.decided_by) == (Booking.Status.CONFIRMED, lab.a.manager)
    [event] = events("booking.confirmed")
    assert (event.actor, event.changes) == (lab.a.manager, {"note": "Bring your own resin"})


def test_a_pending_booking_whose_start_has_passed_cannot_be_approved(api, lab, pending, day):
    with travel(at(day, 9)), Untouched(pending):
        response = act(api.as_user(lab.a.manager), pending, "approve")

        assert error_of(response, 409)["code"] == "booking_started"
    with travel(at(day, 8, 59)):
        assert act(api.as_user(lab.a.manager), pending, "approve").status_code == 200


def test_approving_needs_no_note(api, lab, pending):
    response = act(api.as_user(lab.a.manager), pending, "approve")

    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["decision_note"]) == ("confirmed", "")


def test_an_approved_booking_keeps_its_slot(api, lab, pending, day, b_books_on_a):
    assert act(api.as_user(lab.a.manager), pending, "approve").status_code == 200

    response = book(api.as_user(b_books_on_a), lab.a.machine, at(day, 9), at(day, 11))

    assert error_of(response, 409)["code"] == "booking_conflict"


def test_a_manager_rejects_a_pending_booking_saying_why(api, lab, pending, day):
    with travel(at(day - timedelta(days=3), 10)):
        response = act(api.as_user(lab.a.manager), pending, "reject", reason="Nozzle broken")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["sequence"]) == ("rejected", 1)
    assert body["decided_at"] == iso_z(at(day - timedelta(days=3), 10))
    assert body["decision_note"] == "Nozzle broken"
    pending.refresh_from_db()
    assert (pending.status, pending.decided_by) == (Booking.Status.REJECTED, lab.a.manager)
    [event] = events("booking.rejected")
    assert (event.actor, event.changes) == (lab.a.manager, {"note": "Nozzle broken"})


def test_a_rejected_booking_frees_its_slot(api, lab, pending, day, b_books_on_a):
    client = client_for(api, b_books_on_a)
    assert book(client, lab.a.machine, at(day, 9), at(day, 11)).status_code == 409
    assert act(api.as_user(lab.a.manager), pending, "reject", reason="No").status_code == 200

    response = book(client, lab.a.machine, at(day, 9), at(day, 11))

    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "body",
    [{}, {"reason": ""}, {"reason": "   "}],
    ids=["missing", "empty", "blank"],
)
def test_rejecting_needs_a_reason(api, lab, pending, body):
    with Untouched(pending):
        response = api.as_user(lab.a.manager).post(f"{BOOKINGS}{pending.pk}/reject/", body)

        error = error_of(response, 400)
    assert error["code"] == "invalid"
    assert list(error["details"]["fields"]) == ["reason"]


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("a.operator", 403),
        ("a.accountant", 403),
        # The SME's own people see their booking, so they are told they may not (403).
        ("a.org_member", 403),
        ("a.org_admin", 403),
        ("a.org_accountant", 403),
        # Those who cannot see it are told it does not exist.
        ("b.manager", 404),
        ("b.org_member", 404),
        ("outsider", 404),
    ],
)
def test_only_the_platforms_managers_decide(api, lab, pending, who, status):
    client = api.as_user(person(lab, who))

    with Untouched(pending):
        for action in ("approve", "reject"):
            response = act(client, pending, action, reason="Because")

            error = error_of(response, status)
            assert error["code"] == {403: "permission_denied", 404: "not_found"}[status], action


@pytest.mark.parametrize("status", ["confirmed", "cancelled", "rejected", "completed", "no_show"])
def test_only_pending_bookings_are_decided(api, lab, pending, status):
    Booking.objects.filter(pk=pending.pk).update(status=status)
    client = api.as_user(lab.a.manager)

    with Untouched(pending):
        for action in ("approve", "reject"):
            response = act(client, pending, action, reason="Because")

            assert error_of(response, 409)["code"] == "booking_wrong_status", action


@pytest.mark.parametrize("first", ["approve", "reject"])
def test_a_decision_is_taken_once(api, lab, pending, first):
    client = api.as_user(lab.a.manager)
    assert act(client, pending, first, reason="First").status_code == 200

    with Untouched(pending):
        for second in ("approve", "reject"):
            response = act(client, pending, second, reason="Second")

            assert error_of(response, 409)["code"] == "booking_wrong_status", second


def test_a_booking_made_by_a_member_on_a_machine_needing_approval_is_approved_once(api, lab, day):
    """From the member's request to the manager's approval, through the API."""
    lab.a.machine.approval_required = True
    lab.a.machine.save()
    made = book(api.as_user(lab.a.org_member), lab.a.machine, at(day, 9), at(day, 11))
    assert (made.status_code, made.json()["status"]) == (201, "pending")
    booking = Booking.objects.get(pk=made.json()["id"])

    response = act(api.as_user(lab.a.manager), booking, "approve")

    assert (response.json()["status"], response.json()["sequence"]) == ("confirmed", 1)


# === Checking in and out ================================================================


def check_in(client, booking):
    return act(client, booking, "check-in")


def check_out(client, booking):
    return act(client, booking, "check-out")


@pytest.mark.parametrize(
    ("hour", "minute", "allowed"),
    [
        (8, 0, False),
        (8, 44, False),
        (8, 45, True),  # 15 minutes before the start
        (9, 0, True),
        (10, 59, True),
        (11, 0, False),  # the end
        (12, 0, False),
    ],
)
def test_check_in_opens_15_minutes_before_the_start_and_closes_at_the_end(
    api, lab, booked, day, hour, minute, allowed
):
    client = api.as_user(lab.a.org_member)

    with travel(at(day, hour, minute)):
        if allowed:
            response = check_in(client, booked)
            assert response.status_code == 200, response.content
            assert response.json()["checked_in_at"] == iso_z(at(day, hour, minute))
            assert response.json()["status"] == "confirmed"
        else:
            with Untouched(booked):
                error = error_of(check_in(client, booked), 409)
            assert error["code"] == "not_check_in_time"

    booked.refresh_from_db()
    assert (booked.checked_in_at is not None) is allowed
    assert len(events("booking.check_in")) == int(allowed)


@pytest.mark.parametrize(
    ("hour", "minute", "open_"), [(8, 44, False), (8, 45, True), (10, 59, True), (11, 0, False)]
)
def test_the_pages_ask_the_services_for_the_check_in_window(lab, booked, day, hour, minute, open_):
    # The pages offer "Check in" by this; check_in() refuses outside it.
    assert services.check_in_opens(booked) == at(day, 8, 45)
    assert services.check_in_open(booked, at(day, hour, minute)) is open_


@pytest.mark.parametrize(("minute", "due"), [(14, False), (15, True)])
def test_the_pages_ask_the_services_when_a_no_show_is_due(lab, booked, day, minute, due):
    # The board offers "No-show" by this; mark_no_show() and mark_no_shows() keep it too.
    assert services.no_show_due(booked, at(day, 9, minute)) is due


def test_checking_in_twice_is_a_409(api, lab, booked, day):
    client = api.as_user(lab.a.org_member)
    with travel(at(day, 9)):
        assert check_in(client, booked).status_code == 200
    with travel(at(day, 9, 10)), Untouched(booked):
        assert error_of(check_in(client, booked), 409)["code"] == "already_checked_in"

    assert booked.checked_in_at == at(day, 9)


def test_checking_out_before_checking_in_is_a_409(api, lab, booked, day):
    with travel(at(day, 9, 30)), Untouched(booked):
        response = check_out(api.as_user(lab.a.org_member), booked)

        assert error_of(response, 409)["code"] == "not_checked_in"


def test_checking_out_completes_the_booking(api, lab, booked, day):
    client = api.as_user(lab.a.org_member)
    with travel(at(day, 8, 50)):
        assert check_in(client, booked).status_code == 200
    with travel(at(day, 10, 20)):
        response = check_out(client, booked)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "completed"
    assert (body["checked_in_at"], body["checked_out_at"]) == (
        iso_z(at(day, 8, 50)),
        iso_z(at(day, 10, 20)),
    )
    # The booked period stays as it was (billing compares both).
    assert (body["start"], body["end"]) == (iso_z(at(day, 9)), iso_z(at(day, 11)))
    assert [
        e.action for e in AuditEvent.objects.filter(action__startswith="booking.").order_by("id")
    ] == [
        "booking.check_in",
        "booking.check_out",
    ]


def test_checking_out_after_the_end_records_the_real_end(api, lab, booked, day):
    client = api.as_user(lab.a.org_member)
    with travel(at(day, 10)):
        assert check_in(client, booked).status_code == 200
    with travel(at(day, 11, 20)):
        response = check_out(client, booked)

    assert response.status_code == 200, response.content
    assert response.json()["checked_out_at"] == iso_z(at(day, 11, 20))


def test_checking_out_twice_is_a_409(api, lab, booked, day):
    client = api.as_user(lab.a.org_member)
    with travel(at(day, 9)):
        assert check_in(client, booked).status_code == 200
    with travel(at(day, 10)):
        assert check_out(client, booked).status_code == 200
    with travel(at(day, 10, 5)), Untouched(booked):
        assert error_of(check_out(client, booked), 409)["code"] == "booking_wrong_status"
        assert error_of(check_in(client, booked), 409)["code"] == "booking_wrong_status"


def test_a_booking_checked_in_early_has_started_it_cannot_be_moved(api, lab, booked, day):
    """Checked in at 08:45 for 09:00: someone is at the machine. Moving the booking
    to the afternoon would keep a morning check-in on an afternoon booking (billing
    reads it) and free the machine under them."""
    client = api.as_user(lab.a.org_member)
    with travel(at(day, 8, 45)):
        assert check_in(client, booked).status_code == 200
    with travel(at(day, 8, 50)), Untouched(booked):
        response = move(client, booked, at(day, 14), at(day, 16))

        assert error_of(response, 409)["code"] == "booking_started"


def test_a_booking_checked_in_early_has_started_it_cannot_be_cancelled(api, lab, booked, day):
    """Checked in at 08:45 for 09:00, then cancelled at 08:50: the slot would be
    freed while the machine is in use, and the check-in left on a cancelled booking."""
    client = api.as_user(lab.a.org_member)
    with travel(at(day, 8, 45)):
        assert check_in(client, booked).status_code == 200
    with travel(at(day, 8, 50)), Untouched(booked):
        response = act(client, booked, "cancel")

        assert error_of(response, 409)["code"] == "booking_started"


@pytest.fixture
def long_booking(lab, day):
    """a's member holds the printer 09:00–13:00, checks in at 09:00 and leaves at 09:30."""
    return make_booking(lab.a.machine, lab.a.org, lab.a.org_member, at(day, 9), at(day, 13))


def test_checking_out_early_frees_the_rest_of_the_slot(api, lab, long_booking, day, b_books_on_a):
    member, rival = client_for(api, lab.a.org_member), client_for(api, b_books_on_a)
    with travel(at(day, 9)):
        assert check_in(member, long_booking).status_code == 200
    with travel(at(day, 9, 30)):
        taken = book(rival, lab.a.machine, at(day, 10, 30), at(day, 13))
        assert error_of(taken, 409)["code"] == "booking_conflict"
        assert check_out(member, long_booking).status_code == 200

        response = book(rival, lab.a.machine, at(day, 10, 30), at(day, 13))

    assert response.status_code == 201, response.content


def test_the_freed_time_still_needs_the_notice_unless_a_manager_overrides_it(
    api, lab, long_booking, day
):
    member = api.as_user(lab.a.org_member)
    with travel(at(day, 9)):
        assert check_in(member, long_booking).status_code == 200
    with travel(at(day, 9, 30)):
        assert check_out(member, long_booking).status_code == 200

        soon = book(member, lab.a.machine, at(day, 9, 45), at(day, 13))
        assert codes(error_of(soon, 400)["details"]["problems"]) == ["too_late_to_book"]

        response = book(
            api.as_user(lab.a.manager),
            lab.a.machine,
            at(day, 9, 45),
            at(day, 13),
            organization=lab.a.org.pk,
            override_reason="Walk-in",
        )

    assert response.status_code == 201, response.content
    assert response.json()["override_reason"] == "Walk-in"


@pytest.mark.parametrize("who", ["a.org_member", "a.org_admin", "a.operator", "a.manager"])
def test_the_smes_bookers_and_the_platforms_staff_check_people_in_and_out(
    api, lab, booked, day, who
):
    client = api.as_user(person(lab, who))
    with travel(at(day, 9, 5)):
        assert check_in(client, booked).status_code == 200
    with travel(at(day, 10)):
        response = check_out(client, booked)

    assert response.status_code == 200, response.content
    assert {e.actor for e in AuditEvent.objects.filter(action__startswith="booking.check_")} == {
        person(lab, who)
    }


@pytest.mark.parametrize("who", ["a.org_accountant", "a.accountant"])
def test_accountants_may_not_check_in_or_out(api, lab, booked, day, who):
    with travel(at(day, 9, 5)), Untouched(booked):
        response = check_in(api.as_user(person(lab, who)), booked)
        assert error_of(response, 403)["code"] == "permission_denied"

    with travel(at(day, 9, 5)):
        assert check_in(api.as_user(lab.a.org_member), booked).status_code == 200
    with travel(at(day, 10)), Untouched(booked):
        response = check_out(api.as_user(person(lab, who)), booked)
        assert error_of(response, 403)["code"] == "permission_denied"


@pytest.mark.parametrize("who", ["b.org_member", "b.manager", "outsider"])
def test_someone_who_cannot_see_the_booking_cannot_check_it_in(api, lab, booked, day, who):
    with travel(at(day, 9, 5)), Untouched(booked):
        response = check_in(api.as_user(person(lab, who)), booked)

        assert error_of(response, 404)["code"] == "not_found"


def test_only_confirmed_bookings_are_checked_in(api, lab, booked, day):
    client = api.as_user(lab.a.org_member)

    for status in ("pending", "cancelled", "rejected", "no_show"):
        Booking.objects.filter(pk=booked.pk).update(status=status)
        with travel(at(day, 9, 5)), Untouched(booked):
            response = check_in(client, booked)

            assert error_of(response, 409)["code"] == "booking_wrong_status", status


# === No-shows ===========================================================================


def mark_no_shows() -> str:
    out = StringIO()
    call_command("mark_no_shows", stdout=out)
    return out.getvalue().strip()


def marked(count: int, expired: int = 0) -> str:
    return (
        f"{count} booking(s) marked as no-show.\n"
        f"{expired} pending booking(s) rejected: no decision before the start."
    )


@pytest.fixture
def tuesday(lab, day):
    """Bookings of SME a on `day`, one a machine (active ones may not overlap on one):
    due (09:00–11:00, nobody came), checked_in, completed, pending, cancelled,
    late_start (09:10, still within a 15-minute grace at 09:20) and later (14:00)."""
    machines = [lab.a.machine] + [
        factories.MachineFactory(platform=lab.a.platform, name=f"Printer {n}") for n in range(6)
    ]
    a = (lab.a.org, lab.a.org_member)

    def booking(machine, start, end, **fields):
        return make_booking(machine, *a, start, end, **fields)

    return {
        "due": booking(machines[0], at(day, 9), at(day, 11)),
        "checked_in": booking(machines[1], at(day, 9), at(day, 11), checked_in_at=at(day, 9, 5)),
        "completed": booking(
            machines[2],
            at(day, 9),
            at(day, 11),
            status=Booking.Status.COMPLETED,
            checked_in_at=at(day, 8, 55),
            checked_out_at=at(day, 9, 10),
        ),
        "pending": booking(machines[3], at(day, 9), at(day, 11), status=Booking.Status.PENDING),
        "cancelled": booking(machines[0], at(day, 9), at(day, 11), status=Booking.Status.CANCELLED),
        "late_start": booking(machines[4], at(day, 9, 10), at(day, 11)),
        "later": booking(machines[5], at(day, 14), at(day, 15)),
    }


def statuses(bookings: dict) -> dict:
    return {name: Booking.objects.get(pk=b.pk).status for name, b in bookings.items()}


def test_a_confirmed_booking_nobody_checked_in_becomes_a_no_show(lab, tuesday, day):
    before = {name: state(b) for name, b in tuesday.items()}

    with travel(at(day, 9, 20)):
        assert mark_no_shows() == marked(1, expired=1)

    assert statuses(tuesday) == {
        "due": "no_show",
        "checked_in": "confirmed",
        "completed": "completed",
        "pending": "rejected",  # see test_a_pending_booking_not_decided_before_its_start_…
        "cancelled": "cancelled",
        "late_start": "confirmed",
        "later": "confirmed",
    }
    for name, booking in tuesday.items():
        if name not in ("due", "pending"):
            assert state(booking) == before[name], name
    due = Booking.objects.get(pk=tuesday["due"].pk)
    assert due.sequence == 1
    [event] = events("booking.no_show")
    assert (event.actor, event.actor_email, event.target_id) == (None, "", str(due.pk))


def test_a_pending_booking_not_decided_before_its_start_is_rejected_and_frees_its_slot(
    api, lab, day
):
    pending = make_booking(
        lab.a.machine,
        lab.a.org,
        lab.a.org_member,
        at(day, 9),
        at(day, 11),
        status=Booking.Status.PENDING,
    )

    with travel(at(day, 8, 59)):
        assert mark_no_shows() == marked(0, expired=0)
    with travel(at(day, 9)):
        assert mark_no_shows() == marked(0, expired=1)
        assert mark_no_shows() == marked(0, expired=0)

    pending.refresh_from_db()
    assert (pending.status, pending.sequence, pending.decided_by) == ("rejected", 1, None)
    assert pending.decision_note == "Not approved before its start."
    assert len(events("booking.expire")) == 1
    assert Booking.objects.overlapping(lab.a.machine.pk, at(day, 9), at(day, 11)).count() == 0


def test_the_sequence_rises_by_one(lab, booked, day):
    Booking.objects.filter(pk=booked.pk).update(sequence=4)

    with travel(at(day, 9, 30)):
        mark_no_shows()

    booked.refresh_from_db()
    assert (booked.status, booked.sequence) == (Booking.Status.NO_SHOW, 5)


def test_marking_no_shows_is_idempotent(lab, tuesday, day):
    with travel(at(day, 9, 20)):
        assert mark_no_shows() == marked(1, expired=1)
        assert mark_no_shows() == marked(0)
    with travel(at(day, 9, 21)):
        assert mark_no_shows() == marked(0)

    assert Booking.objects.get(pk=tuesday["due"].pk).sequence == 1
    assert len(events("booking.no_show")) == 1


def test_bookings_become_no_shows_as_their_grace_periods_end(lab, tuesday, day):
    with travel(at(day, 9)):
        assert mark_no_shows() == marked(0, expired=1)  # not even started; pending expires
    with travel(at(day, 9, 15)):
        assert mark_no_shows() == marked(1)  # due: 15 minutes after its start
    with travel(at(day, 9, 24)):
        assert mark_no_shows() == marked(0)
    with travel(at(day, 9, 25)):
        assert mark_no_shows() == marked(1)  # late_start
    with travel(at(day, 14, 15)):
        assert mark_no_shows() == marked(1)  # later

    assert list(statuses(tuesday).values()).count("no_show") == 3
    assert statuses(tuesday)["checked_in"] == "confirmed"


@pytest.mark.parametrize(("minute", "no_show"), [(14, False), (15, True)])
def test_the_grace_period_ends_15_minutes_after_the_start(lab, booked, day, minute, no_show):
    with travel(at(day, 9, minute)):
        assert mark_no_shows() == marked(int(no_show))

    booked.refresh_from_db()
    assert (booked.status == Booking.Status.NO_SHOW) is no_show


def test_each_platform_has_its_own_grace_period(lab, booked, day):
    lab.b.platform.no_show_grace_minutes = 60
    lab.b.platform.save()
    on_b = make_booking(lab.b.machine, lab.b.org, lab.b.org_member, at(day, 9), at(day, 11))

    with travel(at(day, 9, 30)):
        assert mark_no_shows() == marked(1)
    assert Booking.objects.get(pk=booked.pk).status == Booking.Status.NO_SHOW
    assert Booking.objects.get(pk=on_b.pk).status == Booking.Status.CONFIRMED

    with travel(at(day, 10)):
        assert mark_no_shows() == marked(1)
    assert Booking.objects.get(pk=on_b.pk).status == Booking.Status.NO_SHOW


def test_a_booking_checked_in_late_but_within_the_grace_is_no_no_show(api, lab, booked, day):
    with travel(at(day, 9, 14)):
        assert check_in(api.as_user(lab.a.org_member), booked).status_code == 200
    with travel(at(day, 10)):
        assert mark_no_shows() == marked(0)

    booked.refresh_from_db()
    assert booked.status == Booking.Status.CONFIRMED


def test_a_no_show_frees_the_rest_of_its_slot(api, lab, day, b_books_on_a):
    make_booking(lab.a.machine, lab.a.org, lab.a.org_member, at(day, 9), at(day, 13))
    rival = api.as_user(b_books_on_a)

    with travel(at(day, 9, 15)):
        taken = book(rival, lab.a.machine, at(day, 10, 15), at(day, 13))
        assert error_of(taken, 409)["code"] == "booking_conflict"
        assert mark_no_shows() == marked(1)

        response = book(rival, lab.a.machine, at(day, 10, 15), at(day, 13))

    assert response.status_code == 201, response.content


def test_a_no_show_cannot_check_in_any_more(api, lab, booked, day):
    with travel(at(day, 9, 30)):
        mark_no_shows()
    with travel(at(day, 9, 40)), Untouched(booked):
        response = check_in(api.as_user(lab.a.org_member), booked)

        assert error_of(response, 409)["code"] == "booking_wrong_status"


def test_a_booking_long_past_that_nobody_checked_in_is_marked_too(lab, booked, day):
    with travel(at(day + timedelta(days=30), 12)):
        assert mark_no_shows() == marked(1)


def test_bookings_made_through_the_services_become_no_shows_too(lab, day):
    """Made a week before (through every rule), then nobody comes."""
    with travel(at(day - timedelta(days=7), 12)):
        booking = services.create_booking(
            machine=lab.a.machine,
            organization=lab.a.org,
            by=lab.a.org_member,
            start=at(day, 9),
            end=at(day, 10),
        )
    with travel(at(day, 9, 15)):
        assert [b.pk for b in services.mark_no_shows()] == [booking.pk]


def test_the_desk_marks_one_no_show_after_the_grace_period_and_only_staff_may(lab, booked, day):
    with travel(at(day, 9, 14)), pytest.raises(Conflict) as early:
        services.mark_no_show(booking=booked, by=lab.a.operator)
    assert early.value.code == "too_early_for_no_show"
    with travel(at(day, 9, 15)):
        for who in (lab.a.org_admin, lab.b.operator):
            with pytest.raises(Forbidden):
                services.mark_no_show(booking=booked, by=who)
        services.mark_no_show(booking=booked, by=lab.a.operator)
        with pytest.raises(Conflict):
            services.mark_no_show(booking=booked, by=lab.a.operator)

    booked.refresh_from_db()
    assert (booked.status, booked.sequence) == (Booking.Status.NO_SHOW, 1)
    [event] = events("booking.no_show")
    assert event.actor == lab.a.operator
