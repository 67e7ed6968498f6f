"""Booking emails: who gets which, with the invitation that keeps calendars in step.

`lab` is world.a's platform open every day 08:00–18:00 (Paris); `day` is a Tuesday
one to two weeks ahead. The services run as the API runs them, and their emails
leave when the test's transaction "commits" (`committed()` runs the on-commit
callbacks); emails land in Django's locmem outbox. Every message is read back as
the bytes a mail server would get, and its invitation parsed with `icalendar`.

Who hears about what:
- the booker, about every event of their booking, with the invitation;
- the organization's admins, about no-shows and late cancellations (money), and
  about bookings the platform's staff made on its behalf; never with an invitation;
- the platform's managers, the approval requests; never with an invitation.
"""

import email
import io
import json
import logging
import re
import smtplib
from contextlib import suppress
from datetime import timedelta

import pytest
import time_machine
from django.core.mail.backends import locmem
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from icalendar import Calendar

from booking import notifications, services
from booking.calendar import PRODID, booking_uid
from booking.models import Booking, EmailPreferences
from booking.preferences import update_email_preferences
from core.models import Membership, User
from equipment.models import PlatformStaff
from tests import factories
from tests.booking.conftest import at, next_weekday

NBSP = "\u00a0"


@pytest.fixture
def day():
    return next_weekday(1)


@pytest.fixture
def lab(lab):
    """Everyone reads English unless a test says otherwise; side A's SME has a
    second admin, and its platform a second manager."""
    User.objects.update(language="en")
    lab.a.other_admin = factories.UserFactory(email="admin2.a@sme.example", language="en")
    factories.MembershipFactory(
        user=lab.a.other_admin, organization=lab.a.org, role=Membership.Role.ADMIN
    )
    lab.a.other_manager = factories.UserFactory(email="manager2.a@platform.example", language="en")
    factories.PlatformStaffFactory(user=lab.a.other_manager, platform=lab.a.platform)
    for user in (lab.a.org_member, lab.a.org_admin, lab.a.manager):
        user.refresh_from_db()
    return lab


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`with committed(): ...` — what runs inside commits at the end, and its
    on-commit callbacks (the emails) run then."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def approval_machine(lab):
    lab.a.machine.approval_required = True
    lab.a.machine.save()
    return lab.a.machine


def book(lab, day, *, by=None, hour=9, **extra) -> Booking:
    return services.create_booking(
        machine=lab.a.machine,
        organization=lab.a.org,
        by=by or lab.a.org_member,
        start=at(day, hour),
        end=at(day, hour + 2),
        **extra,
    )


def fresh(booking: Booking) -> Booking:
    booking.refresh_from_db()
    return booking


def recipients(outbox) -> list[str]:
    return sorted(address for message in outbox for address in message.to)


def only_message_to(outbox, address: str):
    found = [message for message in outbox if message.to == [address]]
    assert len(found) == 1, [(m.to, m.subject) for m in outbox]
    return found[0]


def parsed(message) -> email.message.Message:
    """The message as the mail server receives it."""
    return email.message_from_bytes(message.message().as_bytes())


def invitations(message) -> list[tuple[str, Calendar]]:
    """(Content-Type method, calendar) of each text/calendar part."""
    return [
        (part.get_param("method"), Calendar.from_ical(part.get_payload(decode=True)))
        for part in parsed(message).walk()
        if part.get_content_type() == "text/calendar"
    ]


def the_invitation(message, method: str, booking: Booking):
    """The one invitation of `message`: its METHOD (header and body), and an event
    agreeing with the feed about `booking` (UID, SEQUENCE, STATUS, UTC times)."""
    found = invitations(message)
    assert len(found) == 1, found
    header_method, calendar = found[0]
    assert header_method == method
    assert calendar["METHOD"] == method
    assert calendar["PRODID"] == PRODID
    (event,) = calendar.walk("VEVENT")
    booking = fresh(booking)
    assert str(event["UID"]) == booking_uid(booking.pk)
    assert event["SEQUENCE"] == booking.sequence
    assert event.start == booking.start and event.end == booking.end
    assert event.start.utcoffset() == timedelta(0)
    assert str(event["ATTENDEE"]) == f"mailto:{message.to[0]}"
    assert str(event["ORGANIZER"]) == "mailto:no-reply@fabpool.localhost"
    assert event.get("DTSTAMP") is not None
    return event


def html_of(message) -> str:
    (alternative,) = message.alternatives
    assert alternative.mimetype == "text/html"
    return alternative.content


# --- Each event, its recipients and its invitation -----------------------------------------


def test_a_confirmed_booking_sends_its_booker_an_invitation(lab, day, mailoutbox, committed):
    with committed():
        booking = book(lab, day, title="Prototype")

    assert recipients(mailoutbox) == ["member.a@sme.example"]
    message = mailoutbox[0]
    assert message.subject.startswith("Booking confirmed: Printer a, Tuesday ")
    assert message.subject.endswith(", 9 a.m. – 11 a.m. (Europe/Paris)")
    event = the_invitation(message, "REQUEST", booking)
    assert event["STATUS"] == "CONFIRMED"
    assert str(event["SUMMARY"]) == "Printer a — Prototype"
    assert "Your booking is confirmed." in message.body
    assert "http://127.0.0.1:8000/" in message.body
    assert '<a href="http://127.0.0.1:8000/">' in html_of(message)


def test_times_are_shown_in_the_platform_time_zone(lab, day, mailoutbox, committed):
    lab.a.platform.timezone = "America/New_York"
    lab.a.platform.save()
    with committed():
        book(lab, day, hour=15)  # 15:00 Paris: 9:00 in New York (10:00 a few weeks a year)

    (message,) = mailoutbox
    assert message.subject.endswith(" a.m. – 11 a.m. (America/New_York)") or (
        message.subject.endswith(" a.m. – noon (America/New_York)")
    )
    assert "p.m." not in message.body


def test_awaiting_approval_the_booker_hears_and_every_manager_is_asked(
    lab, day, approval_machine, mailoutbox, committed
):
    with committed():
        booking = book(lab, day)

    assert recipients(mailoutbox) == [
        "manager.a@platform.example",
        "manager2.a@platform.example",
        "member.a@sme.example",
    ]
    to_booker = only_message_to(mailoutbox, "member.a@sme.example")
    assert to_booker.subject.startswith("Booking awaiting approval: Printer a")
    assert the_invitation(to_booker, "REQUEST", booking)["STATUS"] == "TENTATIVE"
    request = only_message_to(mailoutbox, "manager.a@platform.example")
    assert request.subject.startswith("Approval requested: Printer a")
    assert request.subject.endswith("for SME a")
    assert booking.booked_by.full_name in request.body
    # A request to decide, not an event for the manager's calendar.
    assert invitations(request) == []


def test_approval_confirms_to_the_booker_only(lab, day, approval_machine, mailoutbox, committed):
    booking = book(lab, day)
    with committed():
        services.approve_booking(booking=booking, by=lab.a.manager, note="Bring your filament")

    assert recipients(mailoutbox) == ["member.a@sme.example"]
    assert mailoutbox[0].subject.startswith("Booking approved: Printer a")
    assert "Bring your filament" in mailoutbox[0].body
    event = the_invitation(mailoutbox[0], "REQUEST", booking)
    assert (event["STATUS"], event["SEQUENCE"]) == ("CONFIRMED", 1)


def test_rejection_cancels_the_invitation_and_gives_the_reason(
    lab, day, approval_machine, mailoutbox, committed
):
    booking = book(lab, day)
    with committed():
        services.reject_booking(booking=booking, by=lab.a.manager, reason="Nozzle under repair")

    assert recipients(mailoutbox) == ["member.a@sme.example"]
    message = mailoutbox[0]
    assert message.subject.startswith("Booking rejected: Printer a")
    assert "Reason: Nozzle under repair" in message.body
    assert "Nozzle under repair" in html_of(message)
    assert the_invitation(message, "CANCEL", booking)["STATUS"] == "CANCELLED"


def test_a_pending_booking_left_undecided_past_its_start_is_rejected_to_the_booker(
    lab, day, approval_machine, mailoutbox, committed
):
    booking = book(lab, day)
    with time_machine.travel(at(day, 9, 1), tick=False), committed():
        assert services.expire_pending() == [booking]

    assert recipients(mailoutbox) == ["member.a@sme.example"]
    assert "Reason: Not approved before its start." in mailoutbox[0].body
    the_invitation(mailoutbox[0], "CANCEL", booking)


def test_a_move_updates_the_invitation_and_says_what_it_was(lab, day, mailoutbox, committed):
    booking = book(lab, day)
    with committed():
        services.move_booking(
            booking=booking, by=lab.a.org_member, start=at(day, 14), end=at(day, 15)
        )

    assert recipients(mailoutbox) == ["member.a@sme.example"]
    message = mailoutbox[0]
    assert "2 p.m. – 3 p.m." in message.subject
    assert "It was booked for" in message.body and "9 a.m. – 11 a.m." in message.body
    assert "Your booking has moved" in message.body
    event = the_invitation(message, "REQUEST", booking)
    assert (event["STATUS"], event["SEQUENCE"]) == ("CONFIRMED", 1)


def test_a_manager_moving_a_booking_tells_the_booker_who_did(lab, day, mailoutbox, committed):
    booking = book(lab, day)
    with committed():
        services.move_booking(booking=booking, by=lab.a.manager, start=at(day, 14), end=at(day, 15))

    assert recipients(mailoutbox) == ["member.a@sme.example"]
    assert f"{lab.a.manager.full_name} moved this booking" in mailoutbox[0].body


def test_a_move_that_asks_again_asks_the_managers_again(
    lab, day, approval_machine, mailoutbox, committed
):
    booking = book(lab, day)
    services.approve_booking(booking=booking, by=lab.a.manager)
    with committed():
        services.move_booking(
            booking=booking, by=lab.a.org_member, start=at(day, 14), end=at(day, 15)
        )

    assert recipients(mailoutbox) == [
        "manager.a@platform.example",
        "manager2.a@platform.example",
        "member.a@sme.example",
    ]
    to_booker = only_message_to(mailoutbox, "member.a@sme.example")
    assert "needs the approval of Platform a again" in to_booker.body
    assert the_invitation(to_booker, "REQUEST", booking)["STATUS"] == "TENTATIVE"
    assert only_message_to(mailoutbox, "manager.a@platform.example").subject.startswith(
        "Approval requested"
    )


def test_the_booker_cancelling_in_time_hears_alone(lab, day, mailoutbox, committed):
    booking = book(lab, day)
    with committed():
        services.cancel_booking(booking=booking, by=lab.a.org_member)

    assert recipients(mailoutbox) == ["member.a@sme.example"]
    message = mailoutbox[0]
    assert message.subject.startswith("Booking cancelled: Printer a")
    assert "Your booking is cancelled" in message.body
    assert "may be charged" not in message.body
    event = the_invitation(message, "CANCEL", booking)
    assert (event["STATUS"], event["SEQUENCE"]) == ("CANCELLED", 1)


def test_a_manager_cancelling_tells_the_booker_who_and_why(lab, day, mailoutbox, committed):
    booking = book(lab, day)
    with committed():
        services.cancel_booking(booking=booking, by=lab.a.manager, reason="Power cut")

    assert recipients(mailoutbox) == ["member.a@sme.example"]
    assert f"{lab.a.manager.full_name} cancelled this booking" in mailoutbox[0].body
    assert "Reason: Power cut" in mailoutbox[0].body


def test_a_late_cancellation_says_so_and_tells_the_organizations_admins(
    lab, day, mailoutbox, committed
):
    booking = book(lab, day)
    with time_machine.travel(at(day, 7), tick=False), committed():  # 2 h before the start
        services.cancel_booking(booking=booking, by=lab.a.org_member)

    assert recipients(mailoutbox) == [
        "admin.a@sme.example",
        "admin2.a@sme.example",
        "member.a@sme.example",
    ]
    to_booker = only_message_to(mailoutbox, "member.a@sme.example")
    assert "after the platform's deadline: it may be charged" in to_booker.body
    the_invitation(to_booker, "CANCEL", booking)
    to_admin = only_message_to(mailoutbox, "admin.a@sme.example")
    assert "may be charged" in to_admin.body
    assert "always sent" in to_admin.body
    assert invitations(to_admin) == []  # not the admin's event


def test_an_admin_cancelling_late_is_not_told_of_their_own_act(lab, day, mailoutbox, committed):
    booking = book(lab, day)
    with time_machine.travel(at(day, 7), tick=False), committed():
        services.cancel_booking(booking=booking, by=lab.a.org_admin)

    assert recipients(mailoutbox) == ["admin2.a@sme.example", "member.a@sme.example"]


def test_a_no_show_tells_the_booker_and_the_admins(lab, day, mailoutbox, committed):
    booking = book(lab, day)
    with time_machine.travel(at(day, 9, 30), tick=False), committed():
        assert services.mark_no_shows() == [booking]

    assert recipients(mailoutbox) == [
        "admin.a@sme.example",
        "admin2.a@sme.example",
        "member.a@sme.example",
    ]
    to_booker = only_message_to(mailoutbox, "member.a@sme.example")
    assert to_booker.subject.startswith("Missed booking: Printer a")
    assert "marked as a no-show" in to_booker.body
    event = the_invitation(to_booker, "REQUEST", booking)
    assert event["SEQUENCE"] == 1
    assert invitations(only_message_to(mailoutbox, "admin.a@sme.example")) == []


def test_a_booking_staff_made_for_an_sme_tells_its_admins(lab, day, mailoutbox, committed):
    with committed():
        booking = book(lab, day, by=lab.a.operator)

    assert recipients(mailoutbox) == [
        "admin.a@sme.example",
        "admin2.a@sme.example",
        "operator.a@platform.example",
    ]
    to_admin = only_message_to(mailoutbox, "admin.a@sme.example")
    assert f"{lab.a.operator.full_name}, of the platform's staff, booked this for SME a" in (
        to_admin.body
    )
    assert invitations(to_admin) == []
    the_invitation(only_message_to(mailoutbox, "operator.a@platform.example"), "REQUEST", booking)


def test_nobody_of_another_organization_or_platform_hears_anything(
    lab, day, approval_machine, mailoutbox, committed
):
    with committed():
        booking = book(lab, day)
    with time_machine.travel(at(day, 7), tick=False), committed():
        services.cancel_booking(booking=booking, by=lab.a.manager)

    outsiders = {lab.b.manager.email, lab.b.org_admin.email, lab.b.org_member.email}
    outsiders |= {lab.a.operator.email, lab.a.accountant.email, lab.a.org_accountant.email}
    assert outsiders.isdisjoint(recipients(mailoutbox))
    # Only the booker (pending, then cancelled), the platform's managers (asked to
    # approve) and the organization's admins (a late cancellation) hear of it.
    managers = PlatformStaff.objects.filter(platform=lab.a.platform, role="manager")
    admins = lab.a.org.memberships.filter(role="admin")
    assert set(recipients(mailoutbox)) == {
        lab.a.org_member.email,
        *(staff.user.email for staff in managers),
        *(membership.user.email for membership in admins),
    }


def test_inactive_people_get_no_email(lab, day, mailoutbox, committed):
    booking = book(lab, day)
    lab.a.org_member.is_active = False
    lab.a.org_member.save()
    with time_machine.travel(at(day, 7), tick=False), committed():
        services.cancel_booking(booking=booking, by=lab.a.manager)  # late: admins hear

    assert recipients(mailoutbox) == ["admin.a@sme.example", "admin2.a@sme.example"]


# --- Series: one email, one invitation per occurrence ------------------------------------


def test_a_series_is_confirmed_in_one_email_with_an_invitation_per_booking(
    lab, day, mailoutbox, committed
):
    with committed():
        series, report = services.create_series(
            machine=lab.a.machine,
            organization=lab.a.org,
            by=lab.a.org_member,
            start=at(day, 9),
            end=at(day, 10),
            rule="FREQ=DAILY;COUNT=3",
        )

    assert recipients(mailoutbox) == ["member.a@sme.example"]
    message = mailoutbox[0]
    assert message.subject == "3 bookings confirmed: Printer a"
    found = invitations(message)
    uids = [str(calendar.walk("VEVENT")[0]["UID"]) for _method, calendar in found]
    assert uids == [booking_uid(line["booking"]) for line in report]
    assert {method for method, _calendar in found} == {"REQUEST"}

    mailoutbox.clear()
    with committed():
        services.cancel_series(series=series, by=lab.a.org_member)

    assert recipients(mailoutbox) == ["member.a@sme.example"]
    assert mailoutbox[0].subject == "3 bookings cancelled: Printer a"
    found = invitations(mailoutbox[0])
    assert [calendar["METHOD"] for _m, calendar in found] == ["CANCEL"] * 3
    assert [calendar.walk("VEVENT")[0]["SEQUENCE"] for _m, calendar in found] == [1, 1, 1]


# --- Language ---------------------------------------------------------------------------------


def test_each_recipient_reads_their_own_language(lab, day, approval_machine, mailoutbox, committed):
    User.objects.filter(pk=lab.a.org_member.pk).update(language="fr")
    with committed():
        book(lab, day)

    to_booker = only_message_to(mailoutbox, "member.a@sme.example")
    to_manager = only_message_to(mailoutbox, "manager.a@platform.example")
    weekday_fr, weekday_en = "mardi", "Tuesday"  # `day` is a Tuesday
    assert weekday_fr in to_booker.subject.lower() and weekday_en not in to_booker.subject
    assert to_booker.subject.startswith(f"Réservation en attente de validation{NBSP}: ")
    # French dates (lower-case weekday) and times (24-hour clock), in a French sentence.
    assert re.search(r"mardi \d{1,2} \w+ \d{4}, de 09:00 à 11:00 \(Europe/Paris\)", to_booker.body)
    assert to_booker.body.startswith("Bonjour ")
    assert parsed(to_booker)["Content-Language"] == "fr"
    assert '<html lang="fr">' in html_of(to_booker)
    assert weekday_en in to_manager.subject and "9 a.m. – 11 a.m." in to_manager.subject
    assert '<html lang="en">' in html_of(to_manager)
    # Words the French catalogue already has (the status, shown to the manager)...
    assert "Pending approval" in to_manager.body
    # ...and the same in French for a French manager.
    User.objects.filter(pk=lab.a.manager.pk).update(language="fr")
    mailoutbox.clear()
    with committed():
        book(lab, day, hour=13)
    assert "En attente de validation" in only_message_to(mailoutbox, lab.a.manager.email).body


# --- After the commit only, and never breaking the booking -------------------------------


def test_emails_leave_after_the_commit_not_before(lab, day, mailoutbox, committed):
    with committed():
        book(lab, day)
        assert mailoutbox == []

    assert len(mailoutbox) == 1


def test_no_email_leaves_when_the_transaction_rolls_back(
    lab, day, approval_machine, mailoutbox, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        suppress(RuntimeError),
        transaction.atomic(),
    ):
        booking = book(lab, day)
        services.cancel_booking(booking=booking, by=lab.a.org_member)
        raise RuntimeError("something later in the same transaction failed")

    assert callbacks == []
    assert mailoutbox == []
    assert not Booking.objects.exists()


def test_a_refused_occurrence_of_a_series_sends_nothing_about_it(lab, day, mailoutbox, committed):
    book(lab, day + timedelta(days=1))  # takes the second occurrence's slot
    with committed():
        _series, report = services.create_series(
            machine=lab.a.machine,
            organization=lab.a.org,
            by=lab.a.org_member,
            start=at(day, 9),
            end=at(day, 10),
            rule="FREQ=DAILY;COUNT=3",
            skip_conflicts=True,
        )

    booked = [line["booking"] for line in report if line["booked"]]
    assert len(booked) == 2
    (message,) = mailoutbox
    uids = [str(c.walk("VEVENT")[0]["UID"]) for _m, c in invitations(message)]
    assert uids == [booking_uid(pk) for pk in booked]


@pytest.mark.django_db(transaction=True)
def test_a_mail_server_that_fails_does_not_break_the_booking(lab, day, api, settings, caplog):
    """Real commits, and a real SMTP backend aimed at a port where nothing listens."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    client = api.as_user(lab.a.org_member)

    with caplog.at_level(logging.ERROR, logger="booking.notifications"):
        response = client.post(
            "/api/v1/bookings/",
            {
                "machine": lab.a.machine.pk,
                "start": at(day, 9).isoformat(),
                "end": at(day, 11).isoformat(),
            },
        )

    assert response.status_code == 201, response.content
    assert Booking.objects.get(pk=response.json()["id"]).status == "confirmed"
    assert any("Could not send" in record.getMessage() for record in caplog.records)
    # Development's immediate backend cannot put a task off: no second attempt.
    assert any("Gave up sending" in record.getMessage() for record in caplog.records)


@pytest.mark.django_db(transaction=True)
def test_with_real_commits_the_email_follows_the_api_call(lab, day, api, mailoutbox):
    client = api.as_user(lab.a.org_member)
    response = client.post(
        "/api/v1/bookings/",
        {
            "machine": lab.a.machine.pk,
            "start": at(day, 9).isoformat(),
            "end": at(day, 11).isoformat(),
        },
    )

    assert response.status_code == 201
    (message,) = mailoutbox
    the_invitation(message, "REQUEST", Booking.objects.get(pk=response.json()["id"]))


# --- From the database queue (production) ---------------------------------------------------


@pytest.fixture
def queued(settings):
    """As in production: each email is a task stored with the booking, which
    `manage.py db_worker` composes and sends."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def run_the_worker():
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_a_queued_email_leaves_with_the_worker_and_only_once(lab, day, api, mailoutbox, queued):
    response = api.as_user(lab.a.org_member).post(
        "/api/v1/bookings/",
        {
            "machine": lab.a.machine.pk,
            "start": at(day, 9).isoformat(),
            "end": at(day, 11).isoformat(),
        },
    )
    assert response.status_code == 201, response.content
    assert mailoutbox == [] and DBTaskResult.objects.count() == 1

    run_the_worker()
    run_the_worker()

    (message,) = mailoutbox
    the_invitation(message, "REQUEST", Booking.objects.get(pk=response.json()["id"]))
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"


@pytest.mark.django_db(transaction=True)
def test_a_queued_email_tells_the_booking_as_it_was_when_it_happened(lab, day, mailoutbox, queued):
    booking = book(lab, day)
    services.cancel_booking(booking=booking, by=lab.a.manager, reason="Machine needed")

    run_the_worker()

    confirmed, cancelled = sorted(mailoutbox, key=lambda m: "cancelled" in m.subject.lower())
    ((_method, calendar),) = invitations(confirmed)
    event = calendar.walk("VEVENT")[0]
    assert (str(event["STATUS"]), event["SEQUENCE"]) == ("CONFIRMED", 0)
    assert "Machine needed" in cancelled.body
    the_invitation(cancelled, "CANCEL", booking)


def test_a_rolled_back_booking_leaves_no_email_in_the_queue(lab, day, queued):
    with suppress(RuntimeError), transaction.atomic():
        book(lab, day)
        raise RuntimeError("something later in the same transaction failed")
    assert not DBTaskResult.objects.exists()

    book(lab, day)

    assert DBTaskResult.objects.count() == 1


def test_a_queued_email_keeps_what_it_says_and_no_more(lab, day, queued):
    book(lab, day, note="Door code 4711", title="Prototype")

    stored = json.dumps(DBTaskResult.objects.get().args_kwargs)

    assert "Prototype" in stored
    assert "4711" not in stored


def test_an_email_queued_before_a_deploy_is_still_sent(lab, day, mailoutbox, queued):
    """A task written by an earlier version: a booking field and a notice key this
    version no longer knows are left out."""
    booking = book(lab, day)
    task = DBTaskResult.objects.get()
    (letter,) = task.args_kwargs["args"][0]
    letter["retired_key"] = "x"
    rows = json.loads(letter["bookings"])
    rows[0]["fields"]["retired_field"] = 1
    letter["bookings"] = json.dumps(rows)

    notifications.deliver_notices.call([letter])

    (message,) = mailoutbox
    the_invitation(message, "REQUEST", booking)


@pytest.mark.django_db(transaction=True)
def test_a_task_whose_worker_died_is_queued_again_after_half_an_hour_and_sent(
    lab, day, mailoutbox, queued, caplog
):
    """A worker killed mid-task leaves it RUNNING; django-tasks-db never takes it back."""
    book(lab, day)
    task = DBTaskResult.objects.get()
    task.claim("a worker that died")
    run_the_worker()
    assert mailoutbox == []  # nobody else takes a running task

    def requeue_at(minutes_later: int) -> str:
        with time_machine.travel(task.started_at + timedelta(minutes=minutes_later)):
            call_command("requeue_lost_emails", stdout=(out := io.StringIO()))
        return out.getvalue()

    assert requeue_at(29) == "0 email task(s) queued again.\n"  # may still be running
    with caplog.at_level(logging.WARNING, logger="booking.notifications"):
        assert requeue_at(31) == "1 email task(s) queued again.\n"
    assert "Queued again 1 booking email task(s) whose worker was lost" in caplog.text
    run_the_worker()

    assert recipients(mailoutbox) == [lab.a.org_member.email]
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"
    assert requeue_at(24 * 60) == "0 email task(s) queued again.\n"  # finished: left alone


def test_a_notice_that_cannot_be_composed_does_not_hold_back_the_others(
    lab, day, approval_machine, mailoutbox, queued, monkeypatch, caplog
):
    book(lab, day)  # the booker's "pending" email and the managers' approval request
    (letters,) = DBTaskResult.objects.get().args_kwargs["args"]
    compose = notifications._messages

    def broken_for_managers(notice):
        if notice.to_managers:
            raise ValueError("a broken translation")
        return compose(notice)

    monkeypatch.setattr(notifications, "_messages", broken_for_managers)
    with caplog.at_level(logging.ERROR, logger="booking.notifications"):
        notifications.deliver_notices.call(letters)

    assert recipients(mailoutbox) == ["member.a@sme.example"]
    assert "Could not compose the 'approval_request' email" in caplog.text


class RefusingBackend(locmem.EmailBackend):
    """A mail server that refuses the addresses in `refused` (and delivers to the
    test outbox the others)."""

    refused: set[str] = set()

    def send_messages(self, messages):
        for message in messages:
            if set(message.to) & self.refused:
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"Mailbox busy")})
        return super().send_messages(messages)


@pytest.fixture
def refusing(settings, monkeypatch):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    monkeypatch.setattr(RefusingBackend, "refused", set())
    return RefusingBackend.refused


def make_due(task: DBTaskResult) -> None:
    """As if its time had come."""
    DBTaskResult.objects.filter(pk=task.pk).update(run_after=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_an_email_the_mail_server_refused_is_sent_again_later_to_that_recipient_only(
    lab, day, approval_machine, mailoutbox, queued, refusing, caplog
):
    """The booker's "pending" email and the approval requests leave but one, which a
    manager's mail server refused: composed and sent again a minute later, to them alone."""
    refusing.add(lab.a.manager.email)
    book(lab, day)

    with caplog.at_level(logging.WARNING, logger="booking.notifications"):
        before = timezone.now()
        run_the_worker()

    delivered = recipients(mailoutbox)
    assert lab.a.org_member.email in delivered
    assert lab.a.manager.email not in delivered
    retry = DBTaskResult.objects.get(status="READY")
    ((owed,),) = retry.args_kwargs["args"]
    assert (owed["only_to"], owed["attempt"]) == ([lab.a.manager.email], 1)
    assert before + timedelta(minutes=1) <= retry.run_after <= timezone.now() + timedelta(minutes=1)
    assert f"Will try the booking emails to {lab.a.manager.email} again" in caplog.text

    run_the_worker()  # not yet due
    assert recipients(mailoutbox) == delivered

    refusing.clear()
    make_due(retry)
    run_the_worker()

    assert recipients(mailoutbox) == sorted([*delivered, lab.a.manager.email])
    assert "approval" in only_message_to(mailoutbox, lab.a.manager.email).subject.lower()
    assert not DBTaskResult.objects.filter(status="READY").exists()


@pytest.mark.django_db(transaction=True)
def test_an_email_refused_every_time_is_given_up_after_the_last_delay(
    lab, day, mailoutbox, queued, refusing, caplog
):
    refusing.add(lab.a.org_member.email)
    book(lab, day)

    waits = []
    for _delay in notifications.SEND_AGAIN_AFTER:
        before = timezone.now()
        run_the_worker()
        retry = DBTaskResult.objects.get(status="READY")
        waits.append(round((retry.run_after - before).total_seconds() / 60))
        make_due(retry)
    with caplog.at_level(logging.ERROR, logger="booking.notifications"):
        run_the_worker()

    assert waits == [1, 10, 60, 360]  # minutes
    assert mailoutbox == []
    assert not DBTaskResult.objects.filter(status="READY").exists()
    assert DBTaskResult.objects.filter(status="SUCCESSFUL").count() == 5
    assert f"Gave up sending booking emails to {lab.a.org_member.email}" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_retry_about_a_booking_that_changed_since_is_not_sent(
    lab, day, approval_machine, mailoutbox, queued, refusing, caplog
):
    """The approval request a manager's server refused is not sent again once the
    booking is decided: the decision had its own email."""
    refusing.add(lab.a.manager.email)
    booking = book(lab, day)
    run_the_worker()
    retry = DBTaskResult.objects.get(status="READY")
    services.approve_booking(booking=booking, by=lab.a.manager)
    refusing.clear()
    mailoutbox.clear()

    make_due(retry)
    with caplog.at_level(logging.WARNING, logger="booking.notifications"):
        run_the_worker()

    assert recipients(mailoutbox) == [lab.a.org_member.email]  # the decision
    assert "approved" in mailoutbox[0].subject.lower()
    assert f"Gave up sending booking emails to {lab.a.manager.email}: the booking changed" in (
        caplog.text
    )


@pytest.mark.django_db(transaction=True)
def test_a_retry_that_cannot_be_composed_any_more_says_who_is_not_told(
    lab, day, mailoutbox, queued, refusing, caplog, monkeypatch
):
    refusing.add(lab.a.org_member.email)
    book(lab, day)
    run_the_worker()
    make_due(DBTaskResult.objects.get(status="READY"))

    def broken(notice):
        raise ValueError("a broken translation")

    monkeypatch.setattr(notifications, "_messages", broken)
    with caplog.at_level(logging.ERROR, logger="booking.notifications"):
        run_the_worker()

    assert mailoutbox == []
    assert not DBTaskResult.objects.filter(status="READY").exists()
    assert f"Gave up sending booking emails to {lab.a.org_member.email}" in caplog.text


def test_a_retry_queued_by_this_version_reads_in_the_previous_ones_shape(lab, day, queued):
    """One argument, the letters, as before: a worker not yet updated (during a
    deploy) runs a retry too (to every recipient: it knows no "only_to")."""
    book(lab, day)
    first = DBTaskResult.objects.get()
    (letters,) = first.args_kwargs["args"]
    notifications._send_later(letters, [[lab.a.org_member.email]], attempt=0)

    retry = DBTaskResult.objects.exclude(pk=first.pk).get()
    assert retry.args_kwargs == {
        "args": [[{**letters[0], "only_to": [lab.a.org_member.email], "attempt": 1}]],
        "kwargs": {},
    }


@pytest.mark.parametrize("count", [2, 8])
def test_the_worker_composes_a_series_email_in_queries_independent_of_its_size(
    lab, day, mailoutbox, queued, count, django_assert_num_queries
):
    services.create_series(
        machine=lab.a.machine,
        organization=lab.a.org,
        by=lab.a.org_member,
        start=at(day, 9),
        end=at(day, 10),
        rule=f"FREQ=DAILY;COUNT={count}",
    )
    (stored,) = DBTaskResult.objects.all()

    # Machines with their platforms, organizations, the booker (who acted) with
    # their preferences, and whether the booker is a member of the organization.
    with django_assert_num_queries(4):
        stored.task.call(*stored.task_result.args, **stored.task_result.kwargs)

    (message,) = mailoutbox
    assert len(invitations(message)) == count


# --- Preferences -------------------------------------------------------------------------------


def test_a_kind_turned_off_is_not_sent(lab, day, mailoutbox, committed):
    update_email_preferences(
        user=lab.a.org_member, data={"booking_confirmed": False, "booking_cancelled": False}
    )
    with committed():
        booking = book(lab, day)
        services.move_booking(
            booking=booking, by=lab.a.org_member, start=at(day, 14), end=at(day, 15)
        )
        services.cancel_booking(booking=booking, by=lab.a.org_member)

    assert [m.subject.split(":")[0] for m in mailoutbox] == ["Booking moved"]


def test_emails_the_platform_decides_are_sent_whatever_the_preferences(
    lab, day, approval_machine, mailoutbox, committed
):
    everything_off = dict.fromkeys(EmailPreferences.KINDS, False)
    for user in (lab.a.org_member, lab.a.org_admin, lab.a.manager):
        update_email_preferences(user=user, data=everything_off)
    with committed():
        booking = book(lab, day)  # pending: the booker's notice is off, the request is not
    assert recipients(mailoutbox) == ["manager.a@platform.example", "manager2.a@platform.example"]

    services.approve_booking(booking=booking, by=lab.a.manager)
    mailoutbox.clear()
    with time_machine.travel(at(day, 7), tick=False), committed():
        services.cancel_booking(booking=booking, by=lab.a.org_member)  # late: about money
    assert recipients(mailoutbox) == [
        "admin.a@sme.example",
        "admin2.a@sme.example",
        "member.a@sme.example",
    ]
    the_invitation(only_message_to(mailoutbox, "member.a@sme.example"), "CANCEL", booking)


def test_an_admin_who_turned_off_a_kind_does_not_get_it_for_staff_bookings(
    lab, day, mailoutbox, committed
):
    update_email_preferences(user=lab.a.org_admin, data={"booking_confirmed": False})
    with committed():
        book(lab, day, by=lab.a.operator)

    assert recipients(mailoutbox) == ["admin2.a@sme.example", "operator.a@platform.example"]
