"""Reminders before bookings start, for `manage.py send_reminders` to run every minute.

Each reminder is claimed before it is sent: one UPDATE … WHERE reminded_at IS NULL,
which only one of several runs at once can win (PostgreSQL makes the second wait
for the first and then finds the row taken; SQLite runs writers one at a time).
A reminder the mail server refused is released, so that the next run tries again."""

from datetime import datetime, timedelta

from django.db.models import F
from django.utils import timezone

from booking import notifications
from booking.models import Booking
from equipment.models import Platform


def due_reminders(*, now: datetime) -> list[Booking]:
    """Confirmed bookings whose platform's reminder time has come and that have not
    started. A booking made within that lead time gets none: its confirmation has
    just told the booker. One query per platform that sends reminders."""
    due = []
    for platform in Platform.objects.filter(reminder_hours__gt=0).order_by("pk"):
        lead = timedelta(hours=platform.reminder_hours)
        due += (
            Booking.objects.filter(
                machine__platform=platform,
                status=Booking.Status.CONFIRMED,
                reminded_at__isnull=True,
                checked_in_at__isnull=True,
                start__gt=now,
                start__lte=now + lead,
                created_at__lte=F("start") - lead,
            )
            .select_related("machine__platform", "organization")
            .order_by("start", "pk")
        )
    return due


def send_reminders(*, now: datetime | None = None) -> list[Booking]:
    """Send every due reminder once; returns the bookings whose reminder this run
    claimed (a booker who turned reminders off is counted, and not emailed)."""
    now = now or timezone.now()
    claimed = []
    for booking in due_reminders(now=now):
        won = Booking.objects.filter(
            pk=booking.pk,
            start=booking.start,  # not moved since it was read
            status=Booking.Status.CONFIRMED,
            reminded_at__isnull=True,
            checked_in_at__isnull=True,
        ).update(reminded_at=now)  # update(): no new updated_at, the feeds stay as they are
        if not won:
            continue  # another run has it, or it changed meanwhile
        booking.reminded_at = now
        if notifications.send_reminder(booking):
            claimed.append(booking)
        else:
            Booking.objects.filter(pk=booking.pk, reminded_at=now).update(reminded_at=None)
    return claimed
