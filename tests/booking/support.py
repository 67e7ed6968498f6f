"""Helpers shared by the booking specification tests (not fixtures: plain functions)."""

from datetime import UTC, date, datetime, time, timedelta

from booking.models import Booking
from core.models import AuditEvent
from tests.booking.conftest import PARIS

BOOKINGS = "/api/v1/bookings/"


def book(client, machine, start, end, **extra):
    """POST a new booking through the API; `start`/`end` are aware datetimes."""
    return client.post(
        BOOKINGS,
        {"machine": machine.pk, "start": start.isoformat(), "end": end.isoformat(), **extra},
    )


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def paris(day: date, hour: int, minute: int = 0) -> datetime:
    """Wall-clock time in Paris on `day` (the offset is whatever Paris uses then)."""
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS)


def iso_z(moment: datetime) -> str:
    """How the API writes a date-time: ISO 8601 in UTC, with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def codes(problems) -> list[str]:
    return [p["code"] for p in problems]


def last_sunday(year: int, month: int) -> date:
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    last = first_of_next - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 6) % 7)


def next_dst_sunday(month: int) -> date:
    """The next last Sunday of `month` (3: clocks go forward, 10: back) at least
    two days away, so that a booking on it and the Saturday before is in the future."""
    soon = datetime.now(PARIS).date() + timedelta(days=2)
    for year in (soon.year, soon.year + 1):
        sunday = last_sunday(year, month)
        if sunday - timedelta(days=1) >= soon:
            return sunday
    raise AssertionError("unreachable")


def written() -> tuple[int, int]:
    """What a refused booking must not have changed: bookings and their audit lines."""
    return Booking.objects.count(), AuditEvent.objects.filter(action__startswith="booking.").count()


def make_booking(machine, organization, by, start, end, **fields) -> Booking:
    """A booking row as it would be stored, without going through the rules
    (for reading, filtering and cancelling tests, and for the past)."""
    return Booking.objects.create(
        machine=machine,
        organization=organization,
        booked_by=by,
        start=start,
        end=end,
        blocked_until=fields.pop("blocked_until", end),
        **fields,
    )
