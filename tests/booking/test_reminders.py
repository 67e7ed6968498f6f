"""`manage.py send_reminders`: one reminder per booking, its platform's `reminder_hours`
before the start (24 h unless the platform says otherwise; 0 sends none).

- only confirmed bookings that have not started (nor been checked in early);
- a booking made within the lead time gets none: its confirmation just went out;
- once, however often the command runs, and when two copies run at once (threads
  with their own connections racing on the same rows);
- a move to a later start deserves a new reminder; a move earlier does not (the
  reminder went out, and the "moved" email tells the new time);
- someone who turned reminders off gets none, and is not reconsidered every minute;
- a reminder the mail server refused is tried again at the next run.

`lab` is world.a's platform open 08:00–18:00 (Paris); bookings fall on `day`, a
Tuesday one to two weeks ahead, and are made now, well before their lead time.
"""

import email
import threading
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from icalendar import Calendar

from booking import services
from booking.calendar import booking_uid
from booking.models import Booking
from booking.preferences import update_email_preferences
from booking.reminders import send_reminders
from core.models import User
from tests.booking.conftest import at, next_weekday
from tests.booking.support import make_booking


@pytest.fixture
def day():
    return next_weekday(1)


@pytest.fixture
def lab(lab):
    User.objects.update(language="en")
    lab.a.org_member.refresh_from_db()
    return lab


def book(lab, day, hour=9) -> Booking:
    return services.create_booking(
        machine=lab.a.machine,
        organization=lab.a.org,
        by=lab.a.org_member,
        start=at(day, hour),
        end=at(day, hour + 1),
    )


def run(moment) -> str:
    """`manage.py send_reminders` with the clock at `moment`; its output."""
    out = StringIO()
    with time_machine.travel(moment, tick=False):
        call_command("send_reminders", stdout=out)
    return out.getvalue()


def reminded_uids(outbox) -> list[str]:
    uids = []
    for message in outbox:
        assert message.subject.startswith("Reminder: "), message.subject
        for part in email.message_from_bytes(message.message().as_bytes()).walk():
            if part.get_content_type() == "text/calendar":
                calendar = Calendar.from_ical(part.get_payload(decode=True))
                uids.append(str(calendar.walk("VEVENT")[0]["UID"]))
    return uids


def test_a_reminder_goes_out_once_when_the_lead_time_comes(lab, day, mailoutbox):
    booking = book(lab, day)
    start = at(day, 9)

    assert run(start - timedelta(hours=24, minutes=1)) == "0 reminder(s) sent.\n"
    assert mailoutbox == []
    assert run(start - timedelta(hours=24)) == "1 reminder(s) sent.\n"
    assert run(start - timedelta(hours=23)) == "0 reminder(s) sent.\n"
    assert run(start - timedelta(minutes=1)) == "0 reminder(s) sent.\n"

    (message,) = mailoutbox
    assert message.to == ["member.a@sme.example"]
    assert message.subject.startswith("Reminder: Printer a, Tuesday ")
    assert reminded_uids(mailoutbox) == [booking_uid(booking.pk)]
    booking.refresh_from_db()
    assert booking.reminded_at == start - timedelta(hours=24)


def test_the_reminder_carries_the_invitation_as_the_feed_has_it(lab, day, mailoutbox):
    booking = book(lab, day)
    services.move_booking(booking=booking, by=lab.a.org_member, start=at(day, 10), end=at(day, 11))
    run(at(day, 8))

    (message,) = mailoutbox
    (part,) = [
        p
        for p in email.message_from_bytes(message.message().as_bytes()).walk()
        if p.get_content_type() == "text/calendar"
    ]
    assert part.get_param("method") == "REQUEST"
    event = Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")[0]
    assert (event["SEQUENCE"], event["STATUS"], event.start) == (1, "CONFIRMED", at(day, 10))


def test_the_platform_sets_the_lead_time_and_zero_sends_none(lab, day, mailoutbox):
    book(lab, day)
    book(lab, day, hour=13)
    lab.a.platform.reminder_hours = 48
    lab.a.platform.save()
    assert run(at(day, 9) - timedelta(hours=48)) == "1 reminder(s) sent.\n"

    lab.a.platform.reminder_hours = 0
    lab.a.platform.save()
    assert run(at(day, 12)) == "0 reminder(s) sent.\n"
    assert len(mailoutbox) == 1


def test_only_confirmed_bookings_that_have_not_started_are_reminded(lab, day, mailoutbox):
    machine = lab.a.machine
    org, member = lab.a.org, lab.a.org_member
    pending = make_booking(machine, org, member, at(day, 8), at(day, 9), status="pending")
    cancelled = make_booking(machine, org, member, at(day, 9), at(day, 10), status="cancelled")
    started = make_booking(machine, org, member, at(day, 10), at(day, 11))
    checked_in = make_booking(machine, org, member, at(day, 12), at(day, 13))
    due = make_booking(machine, org, member, at(day, 14), at(day, 15))
    Booking.objects.update(created_at=at(day, 0) - timedelta(days=7))
    with time_machine.travel(at(day, 11, 50), tick=False):
        services.check_in(booking=checked_in, by=member)

    assert [b.pk for b in send_reminders(now=at(day, 11, 55))] == [due.pk]
    assert reminded_uids(mailoutbox) == [booking_uid(due.pk)]
    for booking in (pending, cancelled, started, checked_in):
        booking.refresh_from_db()
        assert booking.reminded_at is None


def test_a_booking_made_within_the_lead_time_gets_no_reminder(lab, day, mailoutbox):
    with time_machine.travel(at(day, 9) - timedelta(hours=5), tick=False):
        book(lab, day)

    assert run(at(day, 9) - timedelta(hours=4)) == "0 reminder(s) sent.\n"
    assert mailoutbox == []


def test_a_move_to_a_later_start_gets_a_new_reminder(lab, day, mailoutbox):
    booking = book(lab, day)
    run(at(day, 9) - timedelta(hours=20))
    services.move_booking(
        booking=booking,
        by=lab.a.org_member,
        start=at(day + timedelta(days=1), 9),
        end=at(day + timedelta(days=1), 10),
    )

    assert run(at(day, 9) - timedelta(hours=19)) == "0 reminder(s) sent.\n"
    assert run(at(day, 9)) == "1 reminder(s) sent.\n"  # 24 h before the new start
    assert reminded_uids(mailoutbox) == [booking_uid(booking.pk)] * 2


def test_a_move_to_an_earlier_start_does_not_remind_again(lab, day, mailoutbox):
    lab.a.platform.cancellation_deadline_hours = 12  # a move 19 h ahead is no late one
    lab.a.platform.save()
    booking = book(lab, day, hour=14)
    run(at(day, 14) - timedelta(hours=20))
    with time_machine.travel(at(day, 14) - timedelta(hours=19), tick=False):
        services.move_booking(
            booking=booking, by=lab.a.org_member, start=at(day, 10), end=at(day, 11)
        )

    assert run(at(day, 9)) == "0 reminder(s) sent.\n"
    assert len(mailoutbox) == 1


def test_someone_who_turned_reminders_off_gets_none(lab, day, mailoutbox):
    booking = book(lab, day)
    update_email_preferences(user=lab.a.org_member, data={"booking_reminder": False})

    run(at(day, 8))
    run(at(day, 8, 1))

    assert mailoutbox == []
    booking.refresh_from_db()
    assert booking.reminded_at is not None  # handled: not looked at again every minute


def test_a_reminder_the_mail_server_refused_is_sent_at_the_next_run(lab, day, mailoutbox, settings):
    booking = book(lab, day)
    locmem = settings.EMAIL_BACKEND
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2

    assert run(at(day, 8)) == "0 reminder(s) sent.\n"
    booking.refresh_from_db()
    assert booking.reminded_at is None

    settings.EMAIL_BACKEND = locmem
    assert run(at(day, 8, 1)) == "1 reminder(s) sent.\n"
    assert reminded_uids(mailoutbox) == [booking_uid(booking.pk)]


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_send_each_reminder_once(lab, day, mailoutbox):
    """Real connections, one per thread, released together by a barrier: both runs
    read the same due bookings, and race to claim each of them."""
    machine, org, member = lab.a.machine, lab.a.org, lab.a.org_member
    bookings = [
        make_booking(machine, org, member, at(d, h), at(d, h, 30))
        for d in (day, day + timedelta(days=1))
        for h in range(8, 18)
    ]
    Booking.objects.update(created_at=at(day, 0) - timedelta(days=7))
    now = at(day, 7)
    lead = timedelta(hours=24)
    expected = sorted(booking_uid(b.pk) for b in bookings if b.start <= now + lead)
    assert len(expected) >= 10

    runs = 4
    barrier = threading.Barrier(runs, timeout=30)
    claimed: list[list[int]] = [[] for _ in range(runs)]
    errors: list[BaseException] = []

    def one_run(index: int) -> None:
        try:
            barrier.wait()
            claimed[index] = [b.pk for b in send_reminders(now=now)]
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one_run, args=(i,)) for i in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    all_claims = [pk for run_claims in claimed for pk in run_claims]
    assert len(all_claims) == len(set(all_claims)) == len(expected)
    assert sorted(reminded_uids(mailoutbox)) == expected
