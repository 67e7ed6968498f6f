"""Writes on bookings. Each is atomic and audited; the API and the pages call
these, so a booking rule lives here and in booking/rules.py only."""

from datetime import UTC, datetime, timedelta
from functools import partial

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from booking import notifications, recurrence
from booking.errors import BookingConflict, BookingRejected, SeriesNotBookable
from booking.models import Booking, BookingSeries, Quota
from booking.refusals import record_rejection, records_refusals, records_series_refusals
from booking.rules import (
    BOOKING_ROLES,
    BOOKING_STAFF_ROLES,
    booking_problems,
    cancellation_deadline,
    late_move_problems,
    standing,
)
from booking.selectors import conflict_suggestions, held_periods
from core.audit import record
from core.errors import Conflict, Forbidden
from core.models import Membership, Organization, User
from core.writes import delete_recorded, save_changes, save_new
from equipment import permissions as perms
from equipment.models import Machine, PlatformStaff
from equipment.services import stay_on_platform

EXCLUSION_VIOLATION = "23P01"  # PostgreSQL's sqlstate for a broken exclusion constraint


def clashes(
    *, machine: Machine, start: datetime, blocked_until: datetime, ignoring: Booking | None = None
) -> list[dict]:
    """What holds any part of [start, blocked_until) on `machine`: active bookings
    (with their buffers; `ignoring` one being moved) and maintenance windows, in one
    query. Anonymous on purpose: the answer goes to people of other SMEs too."""
    held = held_periods([machine], start, blocked_until, ignoring)[machine.pk]
    return [{"start": s, "end": e, "kind": kind} for s, e, kind in sorted(held)]


def _raise_conflict(
    machine: Machine,
    start: datetime,
    blocked_until: datetime,
    *,
    end: datetime | None = None,
    by: User | None = None,
    ignoring: Booking | None = None,
) -> None:
    """Raise BookingConflict if anything holds part of [start, blocked_until);
    given the booking's `end` and who books (`by`), with suggestions of other
    slots and machines (booking.selectors.conflict_suggestions), computed when
    read: not under the transaction's lock, not for callers that don't ask.
    `ignoring`: the booking being moved, which holds nothing against itself."""
    found = clashes(machine=machine, start=start, blocked_until=blocked_until, ignoring=ignoring)
    if found:
        suggestions = None
        if end is not None and by is not None:
            suggestions = partial(
                conflict_suggestions,
                machine=machine,
                start=start,
                end=end,
                by=by,
                ignoring=ignoring,
            )
        raise BookingConflict(
            _("This machine is already taken for part of that time."), found, suggestions
        )


def _lock_machine(machine: Machine) -> None:
    """Writers of one machine's bookings take turns until they commit, so the
    clash check that follows sees every earlier booking. Without this, two
    clashing inserts wait on each other inside PostgreSQL's exclusion constraint
    and can deadlock. The constraint stays as the guarantee; SQLite's IMMEDIATE
    transactions already run one at a time. FOR NO KEY UPDATE: rows that merely
    refer to the machine (a maintenance window) are not held up. Plain SQL: the
    ORM's locking query cost a millisecond of Python per booking."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM equipment_machine WHERE id = %s FOR NO KEY UPDATE", [machine.pk]
            )


def _lock_organization(organization: Organization) -> None:
    """A quota counts an organization's hours on every machine of a platform, so its
    bookings take turns from the quota check until they commit: otherwise two, on
    two machines, would each pass the quota without counting the other. Taken
    before the machine's lock, always in that order. PostgreSQL only, as above."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM core_organization WHERE id = %s FOR NO KEY UPDATE",
                [organization.pk],
            )


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


def _check_fields(booking: Booking) -> None:
    """The fields' own validation (lengths, choices). Not the foreign keys nor
    the check constraints: the instances are at hand and the database enforces
    both, and re-checking them cost a query each."""
    booking.full_clean(
        exclude=["machine", "organization", "booked_by", "series", "cancelled_by", "decided_by"],
        validate_constraints=False,
    )


def _may_override(user: User, machine: Machine) -> bool:
    return (
        user.is_superuser
        or PlatformStaff.objects.filter(
            user=user, platform_id=machine.platform_id, role=PlatformStaff.Role.MANAGER
        ).exists()
    )


@records_refusals("create")  # outside the transaction: recorded after its rollback
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
    series: BookingSeries | None = None,
) -> Booking:
    """Book `machine` for `organization`. Raises BookingRejected with every broken
    rule (a platform manager's `override_reason` waives the soft ones), or
    BookingConflict with the clashing intervals; nobody overrides a conflict."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)  # elapsed time across DST
    facts = standing(machine=machine, organization=organization, by=by, start=start, end=end)
    if override_reason and not facts.manager:
        raise Forbidden(_("Only the platform's managers may override booking rules."))
    _lock_organization(organization)
    problems = booking_problems(
        machine=machine,
        organization=organization,
        by=by,
        start=start,
        end=end,
        now=timezone.now(),
        known=facts,
    )
    blocking = [p for p in problems if not (override_reason and p.soft)]
    if blocking:
        raise BookingRejected([p.as_dict() for p in blocking])

    blocked_until = end + timedelta(minutes=machine.buffer_after_minutes)
    _lock_machine(machine)
    _raise_conflict(machine, start, blocked_until, end=end, by=by)
    approval_needed = machine.approval_required and not facts.manager
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
        series=series,
        override_reason=override_reason if problems else "",
    )
    _check_fields(booking)
    _insert_unless_taken(booking)
    record(
        actor=by,
        action="booking.create",
        target=booking,
        changes={"status": booking.status, "override_reason": booking.override_reason},
    )
    notifications.notify_booking_created(booking, by=by)
    return booking


def _is_booking_staff(user: User, platform_id: int) -> bool:
    """A manager or operator of the platform (or a superuser)."""
    return (
        user.is_superuser
        or PlatformStaff.objects.filter(
            user=user, platform_id=platform_id, role__in=BOOKING_STAFF_ROLES
        ).exists()
    )


def _require_may_change(user: User, booking: Booking) -> None:
    in_organization = Membership.objects.filter(
        user=user, organization_id=booking.organization_id, role__in=BOOKING_ROLES
    ).exists()
    if not (in_organization or _is_booking_staff(user, booking.machine.platform_id)):
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
    if booking.start <= now or booking.checked_in_at:  # checked in early: started
        raise Conflict(_("A booking that has started cannot be cancelled."), code="booking_started")
    booking.status = Booking.Status.CANCELLED
    booking.cancelled_at = now
    booking.cancelled_by = by
    booking.late_cancellation = now > cancellation_deadline(booking)
    booking.sequence += 1
    booking.save()
    record(
        actor=by,
        action="booking.cancel",
        target=booking,
        changes={"late": booking.late_cancellation, "reason": reason},
    )
    notifications.notify_booking_cancelled(booking, by=by, reason=reason)
    return booking


# --- After booking: move, approve, reject, check in and out, no-shows ---------------------------


def _locked(booking: Booking) -> Booking:
    """The booking's row, locked until the transaction ends, so that two changes
    of one booking (a cancel and a check-in, say) happen one after the other."""
    return (
        Booking.objects.select_for_update()
        .select_related("machine__platform", "organization")
        .get(pk=booking.pk)
    )


def _require_manager(user: User, booking: Booking) -> None:
    if not _may_override(user, booking.machine):
        raise Forbidden(_("Only the platform's managers may decide on bookings."))


def _require_status(booking: Booking, *statuses: str) -> None:
    if booking.status not in statuses:
        raise Conflict(
            _("This booking is %(status)s.") % {"status": booking.get_status_display().lower()},
            code="booking_wrong_status",
        )


@records_refusals("move")
@transaction.atomic
def move_booking(
    *, booking: Booking, by: User, start: datetime, end: datetime, override_reason: str = ""
) -> Booking:
    """Move or resize a booking that has not started, under the same rules as a
    new one. On a machine that needs approval, an SME's move asks again."""
    booking = _locked(booking)
    machine = booking.machine
    _require_may_change(by, booking)
    _require_status(booking, *Booking.ACTIVE_STATUSES)
    now = timezone.now()
    if booking.start <= now or booking.checked_in_at:  # checked in early: started
        raise Conflict(_("A booking that has started cannot be moved."), code="booking_started")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    facts = standing(
        machine=machine, organization=booking.organization, by=by, start=start, end=end
    )
    if override_reason and not facts.manager:
        raise Forbidden(_("Only the platform's managers may override booking rules."))
    _lock_organization(booking.organization)
    problems = booking_problems(
        machine=machine,
        organization=booking.organization,
        by=by,
        start=start,
        end=end,
        now=now,
        ignoring=booking,
        known=facts,
    ) + late_move_problems(booking, start, end, now)
    blocking = [p for p in problems if not (override_reason and p.soft)]
    if blocking:
        raise BookingRejected([p.as_dict() for p in blocking])
    blocked_until = end + timedelta(minutes=machine.buffer_after_minutes)
    _lock_machine(machine)
    _raise_conflict(machine, start, blocked_until, end=end, by=by, ignoring=booking)

    before = {"start": booking.start, "end": booking.end, "status": booking.status}
    if (start, end) == (booking.start, booking.end):
        return booking  # nothing moves: no new sequence, no new approval round
    booking.start, booking.end, booking.blocked_until = start, end, blocked_until
    if machine.approval_required and not facts.manager:
        # Asks again: the earlier decision was about other times.
        booking.status = Booking.Status.PENDING
        booking.decided_at, booking.decided_by, booking.decision_note = None, None, ""
    booking.override_reason = override_reason if problems else ""
    booking.sequence += 1
    if start > before["start"]:
        booking.reminded_at = None  # the new start gets a reminder of its own
    _check_fields(booking)
    try:
        with transaction.atomic():
            booking.save()
    except IntegrityError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != EXCLUSION_VIOLATION:
            raise
        found = clashes(machine=machine, start=start, blocked_until=blocked_until, ignoring=booking)
        raise BookingConflict(
            _("This machine is already taken for part of that time."), found
        ) from None
    after = {"start": booking.start, "end": booking.end, "status": booking.status}
    record(
        actor=by,
        action="booking.move",
        target=booking,
        changes={k: [before[k], after[k]] for k in before if before[k] != after[k]},
    )
    notifications.notify_booking_moved(
        booking, by=by, previous_start=before["start"], previous_end=before["end"]
    )
    return booking


@transaction.atomic
def approve_booking(*, booking: Booking, by: User, note: str = "") -> Booking:
    booking = _locked(booking)
    _require_manager(by, booking)
    _require_status(booking, Booking.Status.PENDING)
    if booking.start <= timezone.now():
        # expire_pending rejects it (the next minute): a slot nobody approved in time
        # was not held, and confirming it now would bill time nobody could use.
        raise Conflict(
            _("The start has passed without an approval: book again."), code="booking_started"
        )
    return _decide(booking, by=by, status=Booking.Status.CONFIRMED, note=note)


@transaction.atomic
def reject_booking(*, booking: Booking, by: User, reason: str) -> Booking:
    """Refuse a pending booking; the slot is freed. The reason goes to the SME."""
    booking = _locked(booking)
    _require_manager(by, booking)
    _require_status(booking, Booking.Status.PENDING)
    record_rejection(booking, by=by)
    return _decide(booking, by=by, status=Booking.Status.REJECTED, note=reason)


def _decide(booking: Booking, *, by: User, status: str, note: str) -> Booking:
    booking.status = status
    booking.decided_at = timezone.now()
    booking.decided_by = by
    booking.decision_note = note
    booking.sequence += 1
    booking.save()
    record(actor=by, action=f"booking.{status}", target=booking, changes={"note": note})
    notifications.notify_booking_decided(booking, by=by)
    return booking


# Check-in opens this long before the start, so people arriving early can begin.
CHECK_IN_OPENS_BEFORE = timedelta(minutes=15)


# The two moments of the desk's day, kept here with the services that enforce them:
# the pages ask these too, to offer a button only when the service would accept it.


def check_in_opens(booking: Booking) -> datetime:
    """When check-in opens: CHECK_IN_OPENS_BEFORE before the start. It closes at the end."""
    return booking.start - CHECK_IN_OPENS_BEFORE


def check_in_open(booking: Booking, now: datetime) -> bool:
    """Whether `now` lies in the booking's check-in window (its status aside)."""
    return check_in_opens(booking) <= now < booking.end


def no_show_due(booking: Booking, now: datetime) -> bool:
    """Whether the platform's grace period after the start has passed at `now`, so
    that a booking nobody checked in may be marked a no-show (its status aside).
    Reads booking.machine.platform: load them with the booking."""
    return _grace_ends(booking) <= now


@transaction.atomic
def check_in(*, booking: Booking, by: User) -> Booking:
    """Record the real start (billing may use it instead of the booked time)."""
    booking = _locked(booking)
    _require_may_change(by, booking)
    _require_status(booking, Booking.Status.CONFIRMED)
    now = timezone.now()
    if booking.checked_in_at:
        raise Conflict(_("This booking is already checked in."), code="already_checked_in")
    if not check_in_open(booking, now):
        raise Conflict(
            _("Check in from 15 minutes before the start until the end."), code="not_check_in_time"
        )
    booking.checked_in_at = now
    booking.save(update_fields=["checked_in_at", "updated_at"])
    record(actor=by, action="booking.check_in", target=booking)
    return booking


@transaction.atomic
def check_out(*, booking: Booking, by: User) -> Booking:
    """Record the real end and complete the booking; leaving early frees the rest."""
    booking = _locked(booking)
    _require_may_change(by, booking)
    _require_status(booking, Booking.Status.CONFIRMED)
    if not booking.checked_in_at:
        raise Conflict(_("Check in before checking out."), code="not_checked_in")
    booking.checked_out_at = max(timezone.now(), booking.checked_in_at)
    booking.status = Booking.Status.COMPLETED
    booking.save(update_fields=["checked_out_at", "status", "updated_at"])
    record(actor=by, action="booking.check_out", target=booking)
    return booking


@transaction.atomic
def mark_no_show(*, booking: Booking, by: User) -> Booking:
    """The desk marks one booking a no-show once its grace period has passed
    without a check-in (mark_no_shows does the same for all, unattended). Only
    the platform's managers and operators: the SME would not say it of itself."""
    booking = _locked(booking)
    if not _is_booking_staff(by, booking.machine.platform_id):
        raise Forbidden(_("Only the platform's managers and operators may mark a no-show."))
    _require_status(booking, Booking.Status.CONFIRMED)
    if booking.checked_in_at:
        raise Conflict(_("This booking is already checked in."), code="already_checked_in")
    if not no_show_due(booking, timezone.now()):
        raise Conflict(
            _("A no-show can be marked once the grace period after the start has passed."),
            code="too_early_for_no_show",
        )
    _become_no_show(booking, by=by)
    return booking


def _grace_ends(booking: Booking) -> datetime:
    """When a booking nobody checked in becomes a no-show (load machine__platform)."""
    return booking.start + timedelta(minutes=booking.machine.platform.no_show_grace_minutes)


def _become_no_show(booking: Booking, *, by: User | None) -> None:
    """The transition itself, for the desk (`by`) and for mark_no_shows (nobody)."""
    booking.status = Booking.Status.NO_SHOW
    booking.sequence += 1
    booking.save(update_fields=["status", "sequence", "updated_at"])
    record(actor=by, action="booking.no_show", target=booking)
    notifications.notify_no_show(booking)


def mark_no_shows(*, now: datetime | None = None) -> list[Booking]:
    """Confirmed bookings nobody checked in within their platform's grace period
    become no-shows, which frees the rest of their slot. Idempotent: a booking is
    marked once, however often this runs; each is its own short transaction."""
    now = now or timezone.now()
    due = (
        Booking.objects.filter(
            status=Booking.Status.CONFIRMED, checked_in_at__isnull=True, start__lt=now
        )
        .select_related("machine__platform")
        .order_by("start")
    )
    marked = []
    for candidate in list(due):  # read first: the loop writes
        if not no_show_due(candidate, now):
            continue
        with transaction.atomic():
            booking = _locked(candidate)
            if booking.status != Booking.Status.CONFIRMED or booking.checked_in_at:
                continue  # checked in or cancelled meanwhile
            _become_no_show(booking, by=None)
            marked.append(booking)
    return marked


def expire_pending(*, now: datetime | None = None) -> list[Booking]:
    """Pending bookings whose start has come without a decision are rejected, so
    they stop holding the slot: nobody may use a machine the platform never
    approved. Idempotent, one short transaction each, like mark_no_shows."""
    now = now or timezone.now()
    expired = []
    due = Booking.objects.filter(status=Booking.Status.PENDING, start__lte=now).order_by("start")
    for candidate in list(due.only("pk")):  # read first: the loop writes
        with transaction.atomic():
            booking = _locked(candidate)
            if booking.status != Booking.Status.PENDING:
                continue  # decided meanwhile
            booking.status = Booking.Status.REJECTED
            booking.decided_at = now
            booking.decision_note = _("Not approved before its start.")
            booking.sequence += 1
            booking.save(
                update_fields=["status", "decided_at", "decision_note", "sequence", "updated_at"]
            )
            record(actor=None, action="booking.expire", target=booking)
            notifications.notify_booking_decided(booking, by=None)
            expired.append(booking)
    return expired


# --- Recurring series ----------------------------------------------------------------------------


@records_series_refusals
@transaction.atomic
def create_series(
    *,
    machine: Machine,
    organization: Organization,
    by: User,
    start: datetime,
    end: datetime,
    rule: str,
    title: str = "",
    note: str = "",
    skip_conflicts: bool = False,
    override_reason: str = "",
) -> tuple[BookingSeries, list[dict]]:
    """Book [start, end) and its repetitions by `rule`. All or nothing, unless
    `skip_conflicts`: then the bookable occurrences are booked and the others
    reported. Returns the series and a report of every occurrence."""
    occurrences = recurrence.expand(rule=rule, start=start, end=end, tz=machine.platform.tzinfo)
    series = BookingSeries.objects.create(
        machine=machine, organization=organization, booked_by=by, rule=rule, title=title
    )
    report = []
    for occurrence in occurrences:
        line = {"start": occurrence.start, "end": occurrence.end}
        try:
            with transaction.atomic():  # each occurrence alone: a refusal undoes only it
                booking = create_booking(
                    machine=machine,
                    organization=organization,
                    by=by,
                    start=occurrence.start,
                    end=occurrence.end,
                    title=title,
                    note=note,
                    override_reason=override_reason,
                    series=series,
                )
            report.append({**line, "booked": True, "booking": booking.pk})
        except BookingRejected as refusal:
            report.append({**line, "booked": False, "problems": refusal.problems})
        except BookingConflict as conflict:
            report.append({**line, "booked": False, "conflicts": conflict.conflicts})
    refused = [line for line in report if not line["booked"]]
    if refused and not skip_conflicts:
        raise SeriesNotBookable(
            _("%(n)d of %(total)d occurrences cannot be booked; nothing was booked.")
            % {"n": len(refused), "total": len(report)},
            [_as_bookable(line) for line in report],
        )
    if len(refused) == len(report):
        raise SeriesNotBookable(
            _("No occurrence can be booked."), [_as_bookable(line) for line in report]
        )
    record(actor=by, action="bookingseries.create", target=series, changes={"rule": rule})
    notifications.notify_series_created(series=series, report=report, by=by)
    return series, report


def _as_bookable(line: dict) -> dict:
    """A report line of a series that was not booked: whether it could have been."""
    kept = {k: v for k, v in line.items() if k not in {"booked", "booking"}}
    return {**kept, "bookable": line["booked"]}


@transaction.atomic
def cancel_series(*, series: BookingSeries, by: User, reason: str = "") -> list[Booking]:
    """Cancel every occurrence that has not started; the past ones stay as they are."""
    now = timezone.now()
    upcoming = list(
        series.bookings.filter(
            status__in=Booking.ACTIVE_STATUSES,
            start__gt=now,
            checked_in_at__isnull=True,  # checked in early: started
        ).order_by("start")
    )
    if not upcoming:
        raise Conflict(_("This series has no upcoming booking left."), code="series_over")
    with notifications.one_email_for_many():
        cancelled = [cancel_booking(booking=booking, by=by, reason=reason) for booking in upcoming]
    series.cancelled_at = now
    series.save(update_fields=["cancelled_at"])
    record(actor=by, action="bookingseries.cancel", target=series, changes={"reason": reason})
    return cancelled


# --- Quotas ---------------------------------------------------------------------------------------


@transaction.atomic
def create_quota(*, platform, by: User, **fields) -> Quota:
    perms.require_platform_role(by, platform, perms.CAN_EDIT_PLATFORM)
    return save_new(Quota(platform=platform, **fields), by=by)


@transaction.atomic
def update_quota(*, quota: Quota, by: User, data: dict) -> Quota:
    perms.require_platform_role(by, quota.platform, perms.CAN_EDIT_PLATFORM)
    stay_on_platform(data, quota.platform)
    return save_changes(quota, by=by, data=data)


@transaction.atomic
def delete_quota(*, quota: Quota, by: User) -> None:
    perms.require_platform_role(by, quota.platform, perms.CAN_EDIT_PLATFORM)
    delete_recorded(quota, by=by)
