"""Booking emails, each with the iCalendar invitation that keeps the booker's calendar
in step with the feeds (same UID, STATUS and SEQUENCE: booking/calendar.py).

Services call one `notify_…` per event from inside their transaction; nothing is
rendered or sent there. The notice keeps a copy of the booking as it stands at that
moment and becomes a task, `deliver_notices` (django-tasks, settings.TASKS): a row
written in the booking's own transaction with the database backend (production),
which `manage.py db_worker` composes and sends; with the immediate backend
(development, tests), it runs after the commit. Either way a rolled-back booking
sends nothing, a slow mail server never holds the machine's lock nor the request,
and a mail server that fails is logged without undoing the booking (the worker tries
its emails again later: SEND_AGAIN_AFTER).

Who hears about what (README, "Notifications"):

- the booker, about every event of their booking, with the invitation (they are its
  one attendee), unless they turned that kind of email off;
- the organization's admins, without an invitation, about what may cost it money
  (no-shows, late cancellations; always sent), and about bookings platform staff made
  on its behalf (the booker is then no member of it);
- the platform's managers, without an invitation, the approval requests (always sent);
- nobody else; whoever acted is not told of their own act unless they hold the booking.

The emails that tell about several bookings at once (a recurring series booked or
cancelled) carry one invitation per booking, as each has its own UID in the feeds.
"""

import copy
import logging
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from email.mime.text import MIMEText
from email.utils import parseaddr
from functools import partial

from django.conf import settings
from django.core import serializers
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.formats import date_format, time_format
from django.utils.translation import gettext as _
from django_tasks import TaskResultStatus, task
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult
from icalendar import Calendar, Event, vCalAddress

from booking.calendar import ICAL_STATUS, PRODID, booking_uid
from booking.models import Booking, BookingSeries, EmailPreferences
from core.models import Membership, Organization, User
from equipment.models import Machine, PlatformStaff

logger = logging.getLogger(__name__)

# Kinds a person may turn off: EmailPreferences.KINDS. The platform decides these:
APPROVAL_REQUEST = "approval_request"
NO_SHOW = "booking_no_show"
LATE_CANCELLATION = "booking_late_cancellation"
ALWAYS_SENT = (APPROVAL_REQUEST, NO_SHOW, LATE_CANCELLATION)
# What may cost the organization money: its admins hear about it too.
ABOUT_MONEY = (NO_SHOW, LATE_CANCELLATION)

REQUEST, CANCEL = "REQUEST", "CANCEL"


@dataclass(frozen=True)
class Notice:
    """One event to tell, about one booking or several of one series."""

    template: str  # booking/email/<template>.txt, laid out as subject, text and HTML
    kind: str  # a preference (EmailPreferences.KINDS) or one of ALWAYS_SENT
    bookings: tuple[Booking, ...]  # as they stood when the event happened
    by_id: int | None = None  # who acted; None for the platform's own jobs
    method: str = REQUEST  # of the booker's invitation
    reason: str = ""
    previous: tuple[datetime, datetime] | None = None  # a move's former period
    to_managers: bool = False  # an approval request, for the platform's managers

    @property
    def booking(self) -> Booking:
        return self.bookings[0]


# --- What services call, inside their transaction ---------------------------------------


def notify_booking_created(booking: Booking, *, by: User) -> None:
    """Confirmed, or awaiting approval (and then the managers are asked). The
    occurrences of a series are told once, by notify_series_created."""
    if booking.series_id is not None:
        return
    _notify(*_created_notices((_snapshot(booking),), by=by))


def notify_series_created(*, series: BookingSeries, report: list[dict], by: User) -> None:
    """One email for the occurrences create_series booked (its `report`)."""
    ids = [line["booking"] for line in report if line.get("booked")]
    bookings = Booking.objects.filter(pk__in=ids).select_related(
        "machine__platform", "organization"
    )
    _notify(*_created_notices(tuple(bookings), by=by))


def notify_booking_decided(booking: Booking, *, by: User | None) -> None:
    """Approved, or rejected with the reason (the invitation then cancels the event);
    `by` None: rejected by expire_pending, as no decision came before the start."""
    by_id = by.pk if by else None
    if booking.status == Booking.Status.REJECTED:
        notice = Notice(
            "rejected",
            "booking_rejected",
            (_snapshot(booking),),
            by_id=by_id,
            method=CANCEL,
            reason=booking.decision_note,
        )
    else:
        notice = Notice("approved", "booking_approved", (_snapshot(booking),), by_id=by_id)
    _notify(notice)


def notify_booking_moved(
    booking: Booking, *, by: User, previous_start: datetime, previous_end: datetime
) -> None:
    """The new period; a move that asks for approval again asks the managers too."""
    snapshot = _snapshot(booking)
    notices = [
        Notice(
            "moved",
            "booking_moved",
            (snapshot,),
            by_id=by.pk,
            previous=(previous_start, previous_end),
        )
    ]
    if booking.status == Booking.Status.PENDING:
        notices.append(
            Notice("approval_request", APPROVAL_REQUEST, (snapshot,), by_id=by.pk, to_managers=True)
        )
    _notify(*notices)


def notify_booking_cancelled(booking: Booking, *, by: User, reason: str = "") -> None:
    kind = LATE_CANCELLATION if booking.late_cancellation else "booking_cancelled"
    _notify(
        Notice("cancelled", kind, (_snapshot(booking),), by_id=by.pk, method=CANCEL, reason=reason)
    )


def notify_no_show(booking: Booking) -> None:
    _notify(Notice("no_show", NO_SHOW, (_snapshot(booking),)))


@contextmanager
def one_email_for_many():
    """Notices raised inside (a series' occurrences being cancelled one by one) go out
    as one email per event and recipient, listing the bookings."""
    gathered: list[Notice] = []
    token = _gathering.set(gathered)
    try:
        yield
    finally:
        _gathering.reset(token)
    _schedule(_merged(gathered))


# --- Reminders (booking.reminders claims them; this sends) ------------------------------


def send_reminder(booking: Booking) -> bool:
    """Send the reminder now (the caller has claimed it). False if it could not be
    sent: the caller releases the claim so that a later run tries again."""
    notice = Notice("reminder", "booking_reminder", (booking,))
    return all(_send(message) for message in _messages(notice))


# --- Scheduling -------------------------------------------------------------------------------

_gathering: ContextVar[list[Notice] | None] = ContextVar("booking_notices", default=None)


def _snapshot(booking: Booking) -> Booking:
    """The booking as it is now: a later change before the email leaves (a cancel
    right after a move) must not rewrite what this email says."""
    return copy.copy(booking)


def _created_notices(bookings: tuple[Booking, ...], *, by: User) -> list[Notice]:
    confirmed = tuple(b for b in bookings if b.status == Booking.Status.CONFIRMED)
    pending = tuple(b for b in bookings if b.status == Booking.Status.PENDING)
    notices = []
    if confirmed:
        notices.append(Notice("confirmed", "booking_confirmed", confirmed, by_id=by.pk))
    if pending:
        notices.append(Notice("pending", "booking_pending", pending, by_id=by.pk))
        notices.append(
            Notice("approval_request", APPROVAL_REQUEST, pending, by_id=by.pk, to_managers=True)
        )
    return notices


def _notify(*notices: Notice) -> None:
    gathered = _gathering.get()
    if gathered is not None:
        gathered.extend(notices)
    else:
        _schedule(list(notices))


def _merged(notices: list[Notice]) -> list[Notice]:
    """Notices that differ only by their bookings become one."""
    merged: dict[tuple, Notice] = {}
    for notice in notices:
        key = (notice.template, notice.kind, notice.by_id, notice.method, notice.reason)
        key += (notice.previous, notice.to_managers)
        if key in merged:
            merged[key] = replace(merged[key], bookings=merged[key].bookings + notice.bookings)
        else:
            merged[key] = notice
    return list(merged.values())


def _schedule(notices: list[Notice]) -> None:
    if not notices:
        return
    letters = [_as_json(notice) for notice in notices]
    if isinstance(deliver_notices.get_backend(), DatabaseBackend):
        # A stored task: it commits or rolls back with the booking.
        deliver_notices.enqueue(letters)
    else:
        # A task run at once: only once the booking is committed. robust: whatever
        # goes wrong is logged, never raised into the request that committed it.
        transaction.on_commit(partial(deliver_notices.enqueue, letters), robust=True)


@task()
def deliver_notices(letters: list[dict]) -> None:
    """Compose and send the emails of these notices (as _as_json() wrote them). What
    the mail server did not take is tried again later (_send_later): the letters of
    such a task say which attempt they are and the addresses they still owe."""
    notices = _from_json(letters)
    attempt = max(letter.get("attempt", 0) for letter in letters)
    owed = [letter.get("only_to") for letter in letters]
    if attempt:
        owed = _unless_changed(notices, owed)
    _send_later(letters, _deliver(notices, owed), attempt)


# When an email the mail server did not take (down, refusing, timing out) is tried
# again, after each failed attempt; then it is given up, and logged. Each time the
# notice is composed again and sent to the addresses it still owes only.
SEND_AGAIN_AFTER = (
    timedelta(minutes=1),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)


def _send_later(letters: list[dict], unsent: list[list[str]], attempt: int) -> None:
    # The attempt and the addresses travel in the letters, not as arguments of their
    # own: a worker still on the previous version (during a deploy) runs the task too.
    owed = [
        {**letter, "only_to": to, "attempt": attempt + 1}
        for letter, to in zip(letters, unsent, strict=True)
        if to
    ]
    if not owed:
        return
    addresses = sorted({address for letter in owed for address in letter["only_to"]})
    # The immediate backend (development) cannot defer a task: no second attempt.
    if attempt >= len(SEND_AGAIN_AFTER) or not deliver_notices.get_backend().supports_defer:
        _give_up(addresses)
        return
    when = timezone.now() + SEND_AGAIN_AFTER[attempt]
    deliver_notices.using(run_after=when).enqueue(owed)
    logger.warning("Will try the booking emails to %s again at %s", ", ".join(addresses), when)


# A worker that dies in the middle of a task (killed, out of memory, its machine
# lost) leaves it RUNNING for good: django-tasks-db never takes a task back. One
# task's emails leave in seconds, each bounded by EMAIL_TIMEOUT (settings), so a
# task still running after this long has lost its worker.
LOST_AFTER = timedelta(minutes=30)


def requeue_lost_deliveries(*, now: datetime | None = None) -> int:
    """Put back in the queue the email tasks that a worker took over LOST_AFTER ago
    and never finished, for the next worker to send; how many. Those of their
    emails that left before the worker died leave again: twice is better than a
    booking nobody was told of. One UPDATE, which leaves alone a task that
    finishes meanwhile."""
    lost_before = (now or timezone.now()) - LOST_AFTER
    count = DBTaskResult.objects.filter(
        status=TaskResultStatus.RUNNING,
        started_at__lt=lost_before,
        task_path=deliver_notices.module_path,
    ).update(status=TaskResultStatus.READY)
    if count:
        logger.warning("Queued again %d booking email task(s) whose worker was lost", count)
    return count


def _give_up(addresses: list[str], why: str = "", level: int = logging.ERROR) -> None:
    logger.log(level, "Gave up sending booking emails to %s%s", ", ".join(addresses), why)


def _unless_changed(notices: list[Notice], owed: list[list[str] | None]) -> list[list[str] | None]:
    """What a retry still owes, but nothing about a booking that changed since (its
    sequence rose: the change had its own email). An approval request for a booking
    decided meanwhile, or a confirmation arriving after the cancellation, would mislead.
    One query."""
    ids = {booking.pk for notice in notices for booking in notice.bookings}
    current = dict(Booking.objects.filter(pk__in=ids).values_list("pk", "sequence"))
    still = []
    for notice, addresses in zip(notices, owed, strict=True):
        if any(current.get(booking.pk) != booking.sequence for booking in notice.bookings):
            _give_up(addresses or [], ": the booking changed since", logging.WARNING)
            addresses = []
        still.append(addresses)
    return still


# What the emails and invitations read of a booking, kept in the queued task: no
# notes or override reasons lingering in the queue, and a task queued before a
# deploy that drops another field still reads back.
NOTICE_BOOKING_FIELDS = [
    "machine",
    "organization",
    "booked_by",
    "start",
    "end",
    "status",
    "title",
    "sequence",
    "late_cancellation",
    "decision_note",
]


def _as_json(notice: Notice) -> dict:
    """A notice as a task's argument: plain JSON, its bookings as they stand now
    (their machine, platform and organization are read when the email is sent)."""
    return {
        **{field.name: getattr(notice, field.name) for field in fields(Notice)},
        "bookings": serializers.serialize("json", notice.bookings, fields=NOTICE_BOOKING_FIELDS),
        "previous": [moment.isoformat() for moment in notice.previous or ()],
    }


def _from_json(letters: list[dict]) -> list[Notice]:
    """The notices again; every booking's machine, platform and organization read
    in two queries, whatever the number of bookings. Keys and fields this version
    does not know (a task queued before a deploy) are left out."""
    names = {field.name for field in fields(Notice)}
    notices = [
        Notice(
            **{
                **{key: value for key, value in letter.items() if key in names},
                "bookings": tuple(
                    found.object
                    for found in serializers.deserialize(
                        "json", letter["bookings"], ignorenonexistent=True
                    )
                ),
                "previous": tuple(datetime.fromisoformat(m) for m in letter["previous"]) or None,
            }
        )
        for letter in letters
    ]
    bookings = [booking for notice in notices for booking in notice.bookings]
    machines = Machine.objects.select_related("platform").in_bulk(
        {booking.machine_id for booking in bookings}
    )
    organizations = Organization.objects.in_bulk({booking.organization_id for booking in bookings})
    for booking in bookings:
        booking.machine = machines[booking.machine_id]
        booking.organization = organizations[booking.organization_id]
    return notices


def _deliver(notices: list[Notice], only_to: list[list[str] | None]) -> list[list[str]]:
    """Each notice on its own, to every recipient or to `only_to`'s addresses (per
    notice; [] for none): one that cannot be composed (a broken translation) is logged,
    and the others still go. Answers, per notice, the addresses the mail server did
    not take."""
    unsent: list[list[str]] = []
    for notice, owed in zip(notices, only_to, strict=True):
        unsent.append([])
        if owed == []:
            continue
        try:
            messages = _messages(notice)
        except Exception:
            logger.exception("Could not compose the %r email", notice.template)
            messages = []
        tried = set()
        for message in messages:  # one recipient each
            if owed is None or message.to[0] in owed:
                tried.update(message.to)
                if not _send(message):
                    unsent[-1] += message.to
        # Owed, but no longer among the recipients (a new address, the email turned
        # off) or the email could not be composed: said, not silently dropped.
        if owed and (dropped := sorted(set(owed) - tried)):
            _give_up(dropped)
    return unsent


def _send(message: EmailMultiAlternatives) -> bool:
    try:
        message.send()
    except Exception:  # any mail failure (SMTP, DNS, TLS…): the booking stands
        logger.exception("Could not send %r to %s", message.subject, message.to)
        return False
    return True


# --- Recipients ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    user: User
    audience: str  # "booker", "admin" or "manager": what the email says to them

    @property
    def gets_invitation(self) -> bool:
        return self.audience == "booker"


def _recipients(notice: Notice, *, booker: User | None) -> list[Recipient]:
    booking = notice.booking
    users = User.objects.select_related("email_preferences").filter(is_active=True)
    if notice.to_managers:
        managers = users.filter(
            platform_roles__platform_id=booking.machine.platform_id,
            platform_roles__role=PlatformStaff.Role.MANAGER,
        ).exclude(pk=notice.by_id)
        return [Recipient(user, "manager") for user in managers.order_by("email")]

    recipients = []
    if booker is not None and booker.is_active and _wants(booker, notice.kind):
        recipients.append(Recipient(booker, "booker"))
    on_behalf = not Membership.objects.filter(
        user_id=booking.booked_by_id, organization_id=booking.organization_id
    ).exists()
    if notice.kind in ABOUT_MONEY or on_behalf:
        admins = (
            users.filter(
                memberships__organization_id=booking.organization_id,
                memberships__role=Membership.Role.ADMIN,
            )
            .exclude(pk__in=[booking.booked_by_id, notice.by_id])
            .order_by("email")
        )
        recipients += [Recipient(user, "admin") for user in admins if _wants(user, notice.kind)]
    return recipients


def _wants(user: User, kind: str) -> bool:
    if kind in ALWAYS_SENT:
        return True
    try:
        preferences = user.email_preferences
    except EmailPreferences.DoesNotExist:
        return True
    return preferences.wants(kind)


# --- Composing -------------------------------------------------------------------------------


def _messages(notice: Notice) -> list[EmailMultiAlternatives]:
    people = User.objects.select_related("email_preferences").in_bulk(
        {notice.booking.booked_by_id, notice.by_id} - {None}
    )
    booker, actor = people.get(notice.booking.booked_by_id), people.get(notice.by_id)
    recipients = _recipients(notice, booker=booker)
    return [_compose(notice, recipient, booker=booker, actor=actor) for recipient in recipients]


def _compose(
    notice: Notice, recipient: Recipient, *, booker: User | None, actor: User | None
) -> EmailMultiAlternatives:
    booking = notice.booking
    platform = booking.machine.platform
    language = recipient.user.language or settings.LANGUAGE_CODE
    with translation.override(language):
        context = {
            "recipient": recipient.user,
            "audience": recipient.audience,
            "bookings": [_row(b) for b in notice.bookings],
            "booking": _row(booking),
            "count": len(notice.bookings),
            "platform": platform,
            "organization": booking.organization,
            "booker_name": booker.get_full_name() if booker else "",
            # Said when someone else acted: "Jane Doe cancelled this booking".
            "actor_name": actor.get_full_name() if actor and actor != recipient.user else "",
            "pending": booking.status == Booking.Status.PENDING,
            "reason": notice.reason,
            "decision_note": booking.decision_note,
            "previous": _period(notice.previous, platform) if notice.previous else "",
            "late": notice.kind == LATE_CANCELLATION,
            "always_sent": notice.kind in ALWAYS_SENT,
            "link": settings.FABPOOL_BASE_URL + "/",
            "language": language,
            "invitation": recipient.gets_invitation,
        }
        # One template per event holds its words; the layouts make the subject, the
        # text and the HTML of them, so the three never disagree.
        name = f"booking/email/{notice.template}.txt"
        parts = {
            layout: render_to_string(name, {**context, "layout": f"booking/email/{layout}"})
            for layout in ("_subject.txt", "_text.txt", "_html.html")
        }
    message = EmailMultiAlternatives(
        # One line; ASCII whitespace only, so French typography's non-breaking spaces stay.
        subject=re.sub(r"[ \t\r\n]+", " ", parts["_subject.txt"]).strip(),
        body=parts["_text.txt"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient.user.email],
        reply_to=[platform.contact_email] if platform.contact_email else None,
        headers={"Content-Language": language},
    )
    message.attach_alternative(parts["_html.html"], "text/html")
    if recipient.gets_invitation:
        for item in notice.bookings:
            message.attach(_invitation_part(item, method=notice.method, attendee=recipient.user))
    return message


def _row(booking: Booking) -> dict:
    """A booking as the templates show it, in the active language."""
    return {
        "id": booking.pk,
        "machine": booking.machine.name,
        "platform": booking.machine.platform.name,
        "organization": booking.organization.legal_name,
        "title": booking.title,
        "status": booking.get_status_display(),
        "when": _period((booking.start, booking.end), booking.machine.platform),
        "late": booking.late_cancellation,
    }


def _period(period: tuple[datetime, datetime], platform) -> str:
    """[start, end) in the platform's time zone, in the active language."""
    start, end = (timezone.localtime(moment, platform.tzinfo) for moment in period)
    end_text = time_format(end) if end.date() == start.date() else _local_day(end)
    return _("%(day)s, %(start)s – %(end)s (%(timezone)s)") % {
        "day": f"{date_format(start, 'l')} {date_format(start)}",
        "start": time_format(start),
        "end": end_text,
        "timezone": platform.timezone,
    }


def _local_day(moment: datetime) -> str:
    return f"{date_format(moment, 'l')} {date_format(moment)} {time_format(moment)}"


# --- The invitation ---------------------------------------------------------------------------


def invitation(booking: Booking, *, method: str, attendee: User) -> bytes:
    """An iTIP message (RFC 5546) about `booking` for its one attendee; UID, STATUS and
    SEQUENCE as in the feeds, times in UTC. Replies are not expected (RSVP=FALSE):
    changes go through fabpool."""
    platform = booking.machine.platform
    organizer_name, organizer_email = parseaddr(settings.DEFAULT_FROM_EMAIL)
    organizer = vCalAddress(f"mailto:{organizer_email}")
    organizer.params["CN"] = organizer_name or "fabpool"
    guest = vCalAddress(f"mailto:{attendee.email}")
    guest.params.update(
        {
            "CN": attendee.get_full_name(),
            "ROLE": "REQ-PARTICIPANT",
            "PARTSTAT": "ACCEPTED",
            "RSVP": "FALSE",
        }
    )
    link = settings.FABPOOL_BASE_URL + "/"
    summary = f"{booking.machine.name} — {booking.title}" if booking.title else booking.machine.name
    place = ", ".join(
        part for part in (platform.name, platform.address_line1, platform.postal_code) if part
    )
    if platform.city:
        place = f"{place} {platform.city}"
    event = Event.new(
        uid=booking_uid(booking.pk),
        sequence=booking.sequence,
        status=ICAL_STATUS[booking.status],
        stamp=timezone.now().astimezone(UTC),
        start=booking.start.astimezone(UTC),
        end=booking.end.astimezone(UTC),
        summary=summary,
        location=place,
        description=f"{booking.organization.legal_name}\n{link}",
        url=link,
        organizer=organizer,
        attendees=[guest],
    )
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    calendar.add_component(event)
    return calendar.to_ical()


def _invitation_part(booking: Booking, *, method: str, attendee: User) -> MIMEText:
    """text/calendar with its METHOD in the Content-Type, as calendar clients want it;
    base64, so that the CRLF line ends survive every mail server."""
    part = MIMEText(
        invitation(booking, method=method, attendee=attendee).decode(), "calendar", "utf-8"
    )
    part.set_param("method", method)
    part.add_header("Content-Disposition", "attachment", filename=f"booking-{booking.pk}.ics")
    return part
