"""Writes on bookings. Each is atomic and audited; the API and the pages call
these, so a booking rule lives here and in booking/rules.py only."""

from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from booking.errors import BookingConflict, BookingRejected
from booking.models import Booking
from booking.rules import BOOKING_ROLES, BOOKING_STAFF_ROLES, booking_problems
from core.audit import record
from core.errors import Conflict, Forbidden
from core.models import Membership, Organization, User
from equipment.models import Machine, MaintenanceWindow, PlatformStaff

EXCLUSION_VIOLATION = "23P01"  # PostgreSQL's sqlstate for a broken exclusion constraint


def clashes(*, machine: Machine, start: datetime, blocked_until: datetime) -> list[dict]:
    """What holds any part of [start, blocked_until) on `machine`: active bookings
    (with their buffers) and maintenance windows. Anonymous on purpose: the
    answer goes to people of other SMEs too."""
    bookings = Booking.objects.overlapping(machine.pk, start, blocked_until).values_list(
        "start", "blocked_until"
    )
    maintenance = MaintenanceWindow.objects.filter(
        machine=machine, start__lt=blocked_until, end__gt=start
    ).values_list("start", "end")
    return sorted(
        [{"start": s, "end": e, "kind": "booking"} for s, e in bookings]
        + [{"start": s, "end": e, "kind": "maintenance"} for s, e in maintenance],
        key=lambda clash: clash["start"],
    )


def _raise_conflict(machine: Machine, start: datetime, blocked_until: datetime) -> None:
    found = clashes(machine=machine, start=start, blocked_until=blocked_until)
    if found:
        raise BookingConflict(_("This machine is already taken for part of that time."), found)


def _insert_unless_taken(booking: Booking, attempts: int = 3) -> None:
    """Insert; on PostgreSQL the exclusion constraint may refuse it, and then the
    caller gets the clashes. If the clashing booking was cancelled in between,
    the slot is free again: try once more rather than fail."""
    for _attempt in range(attempts):
        try:
            with transaction.atomic():  # a savepoint: the transaction survives a refusal
                booking.save()
            return
        except IntegrityError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != EXCLUSION_VIOLATION:
                raise
            _raise_conflict(booking.machine, booking.start, booking.blocked_until)
    raise BookingConflict(_("This machine is already taken for part of that time."), [])


def _may_override(user: User, machine: Machine) -> bool:
    return (
        user.is_superuser
        or PlatformStaff.objects.filter(
            user=user, platform_id=machine.platform_id, role=PlatformStaff.Role.MANAGER
        ).exists()
    )


@transaction.atomic
def create_booking(
    *,
    machine: Machine,
    organization: Organization,
    by: User,
    start: datetime,
    end: datetime,
    title: str = "",
    note: str = "",
    override_reason: str = "",
) -> Booking:
    """Book `machine` for `organization`. Raises BookingRejected with every broken
    rule (a platform manager's `override_reason` waives the soft ones), or
    BookingConflict with the clashing intervals; nobody overrides a conflict."""
    if override_reason and not _may_override(by, machine):
        raise Forbidden(_("Only the platform's managers may override booking rules."))
    start, end = start.astimezone(UTC), end.astimezone(UTC)  # elapsed time across DST
    problems = booking_problems(
        machine=machine, organization=organization, by=by, start=start, end=end, now=timezone.now()
    )
    blocking = [p for p in problems if not (override_reason and p.soft)]
    if blocking:
        raise BookingRejected([p.as_dict() for p in blocking])

    blocked_until = end + timedelta(minutes=machine.buffer_after_minutes)
    # Tells the user now; on SQLite, IMMEDIATE transactions make this check and
    # the insert below one step. On PostgreSQL the exclusion constraint decides
    # between two transactions that both passed this check.
    _raise_conflict(machine, start, blocked_until)
    approval_needed = machine.approval_required and not _may_override(by, machine)
    booking = Booking(
        machine=machine,
        organization=organization,
        booked_by=by,
        start=start,
        end=end,
        blocked_until=blocked_until,
        status=Booking.Status.PENDING if approval_needed else Booking.Status.CONFIRMED,
        title=title,
        note=note,
        override_reason=override_reason if problems else "",
    )
    booking.full_clean()
    _insert_unless_taken(booking)
    record(
        actor=by,
        action="booking.create",
        target=booking,
        changes={"status": booking.status, "override_reason": booking.override_reason},
    )
    return booking


def _require_may_change(user: User, booking: Booking) -> None:
    in_organization = Membership.objects.filter(
        user=user, organization_id=booking.organization_id, role__in=BOOKING_ROLES
    ).exists()
    is_staff = PlatformStaff.objects.filter(
        user=user, platform_id=booking.machine.platform_id, role__in=BOOKING_STAFF_ROLES
    ).exists()
    if not (in_organization or is_staff or user.is_superuser):
        raise Forbidden(_("Only the organization's members or the platform's staff may do this."))


@transaction.atomic
def cancel_booking(*, booking: Booking, by: User, reason: str = "") -> Booking:
    """Free the slot. Allowed until the start; after the platform's deadline the
    cancellation is marked late (billing may charge it)."""
    booking = (
        Booking.objects.select_for_update().select_related("machine__platform").get(pk=booking.pk)
    )
    _require_may_change(by, booking)
    now = timezone.now()
    if not booking.is_active:
        raise Conflict(_("This booking is not active any more."), code="booking_not_active")
    if booking.start <= now:
        raise Conflict(_("A booking that has started cannot be cancelled."), code="booking_started")
    deadline = booking.start - timedelta(hours=booking.machine.platform.cancellation_deadline_hours)
    booking.status = Booking.Status.CANCELLED
    booking.cancelled_at = now
    booking.cancelled_by = by
    booking.late_cancellation = now > deadline
    booking.sequence += 1
    booking.save()
    record(
        actor=by,
        action="booking.cancel",
        target=booking,
        changes={"late": booking.late_cancellation, "reason": reason},
    )
    return booking
