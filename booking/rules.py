"""The booking policy: every rule a new booking must satisfy, checked at once.

`booking_problems()` returns all broken rules (not the first only), each with a
code, a message and whether a platform manager may override it ("soft")."""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta

from django.db import connection
from django.utils.translation import gettext as _

from booking.models import Booking, Quota
from core.models import Membership, Organization, User
from equipment.models import (
    Closure,
    Machine,
    OpeningHours,
    PlatformStaff,
)

# People of an SME who may book for it (accountants handle invoices, not machines).
BOOKING_ROLES = (Membership.Role.ADMIN, Membership.Role.MEMBER)
# Platform staff who may book for any SME of their platform.
BOOKING_STAFF_ROLES = (PlatformStaff.Role.MANAGER, PlatformStaff.Role.OPERATOR)


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    soft: bool  # a platform manager may override it, with a recorded reason

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Standing:
    """Who stands where, for one booking: the facts the rules need from the
    database, read in one query (see standing())."""

    platform_member: bool  # the organization may book on the machine's platform
    in_organization: bool  # the booker is an admin or member of the organization
    booking_staff: bool  # the booker is a manager or operator of the platform
    manager: bool  # the booker may override soft rules and needs no approval
    qualified: bool  # the booker holds a valid qualification on the booking's dates
    closure_id: int | None  # a closure of the platform on the first or last day


# The hot path of every booking and move: one round trip, and SQL written out
# because composing these six subqueries with the ORM cost ~4 ms of Python per
# booking (bench/booking.py), eight times the query itself. Plain SQL that
# SQLite and PostgreSQL both read; every value is a parameter.
_STANDING_SQL = """
SELECT
  EXISTS (SELECT 1 FROM equipment_platformmembership
          WHERE organization_id = %(org)s AND platform_id = %(platform)s),
  EXISTS (SELECT 1 FROM core_membership
          WHERE user_id = %(user)s AND organization_id = %(org)s
            AND role IN (%(admin)s, %(member)s)),
  EXISTS (SELECT 1 FROM equipment_platformstaff
          WHERE user_id = %(user)s AND platform_id = %(platform)s
            AND role IN (%(manager)s, %(operator)s)),
  EXISTS (SELECT 1 FROM equipment_platformstaff
          WHERE user_id = %(user)s AND platform_id = %(platform)s AND role = %(manager)s),
  EXISTS (SELECT 1 FROM equipment_userqualification uq
          JOIN equipment_qualification q ON q.id = uq.qualification_id
          WHERE uq.user_id = %(user)s AND q.platform_id = %(platform)s
            AND (q.machine_id = %(machine)s OR q.machine_type_id = %(machine_type)s)
            AND uq.granted_on <= %(first_day)s
            AND (uq.expires_on IS NULL OR uq.expires_on >= %(last_day)s)),
  (SELECT id FROM equipment_closure
   WHERE platform_id = %(platform)s
     AND ((start_date <= %(first_day)s AND end_date >= %(first_day)s)
          OR (start_date <= %(last_day)s AND end_date >= %(last_day)s))
   ORDER BY start_date LIMIT 1)
"""


def standing(
    *, machine: Machine, organization: Organization, by: User, start: datetime, end: datetime
) -> Standing:
    """The facts about who books, in one query (see _STANDING_SQL); the
    qualification and closures are those of the booking's first and last local days."""
    tz = machine.platform.tzinfo
    first_day = start.astimezone(tz).date()
    # The end is excluded: a booking until midnight does not touch the next day.
    last_day = max(first_day, (end - timedelta(microseconds=1)).astimezone(tz).date())
    with connection.cursor() as cursor:
        cursor.execute(
            _STANDING_SQL,
            {
                "org": organization.pk,
                "user": by.pk,
                "platform": machine.platform_id,
                "machine": machine.pk,
                "machine_type": machine.machine_type_id,
                "first_day": first_day.isoformat(),
                "last_day": last_day.isoformat(),
                "admin": Membership.Role.ADMIN.value,
                "member": Membership.Role.MEMBER.value,
                "manager": PlatformStaff.Role.MANAGER.value,
                "operator": PlatformStaff.Role.OPERATOR.value,
            },
        )
        member, in_org, staff, manager, qualified, closure_id = cursor.fetchone()
    return Standing(
        platform_member=bool(member),
        in_organization=bool(in_org),
        booking_staff=bool(staff) or by.is_superuser,
        manager=bool(manager) or by.is_superuser,
        qualified=bool(qualified),
        closure_id=closure_id,
    )


def booking_problems(
    *,
    machine: Machine,
    organization: Organization,
    by: User,
    start: datetime,
    end: datetime,
    now: datetime,
    ignoring: Booking | None = None,
    known: Standing | None = None,
) -> list[Problem]:
    """`ignoring`: the booking being moved, whose current hours do not count
    against the quotas it is checked with. `known`: the standing() of this
    booking, when the caller has read it already."""
    # Elapsed time, not wall-clock time: Python subtracts two datetimes of one
    # zone by their wall clocks, which is an hour off across a DST change.
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    facts = known or standing(
        machine=machine, organization=organization, by=by, start=start, end=end
    )
    problems = [*_who_may_book(machine, organization, by, facts)]
    if end <= start:
        # Every other rule is about the period: nothing more to say about it.
        return [
            *problems,
            Problem("end_before_start", _("The end must be after the start."), False),
        ]
    problems += _duration_and_alignment(machine, start, end)
    problems += _notice_and_horizon(machine, start, now)
    problems += _opening_hours_and_closures(machine, start, end, facts.closure_id)
    problems += _qualification(machine, facts)
    problems += _quotas(machine, organization, start, end, ignoring)
    return problems


def _quota_period(period: str, local_start: datetime) -> tuple[datetime, datetime]:
    """The local week (from Monday) or calendar month holding `local_start`, in UTC."""
    day = local_start.date()
    if period == Quota.Period.WEEK:
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    tz = local_start.tzinfo
    return (
        datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC),
        datetime.combine(after, time(0), tzinfo=tz).astimezone(UTC),
    )


# Quotas that apply to one booking, each with the hours the organization already
# holds in the quota's period (counted by their start), in one query. Plain SQL,
# as _STANDING_SQL: the ORM's filtered sums cost ~4 ms of Python per booking.
_QUOTAS_SQL = """
SELECT q.id, q.period, q.max_hours,
  (SELECT {booked} FROM booking_booking b JOIN equipment_machine m ON m.id = b.machine_id
   WHERE b.organization_id = %(org)s AND m.platform_id = q.platform_id
     AND b.status NOT IN (%(cancelled)s, %(rejected)s)
     AND b.start >= CASE q.period WHEN %(week)s THEN %(week_first)s ELSE %(month_first)s END
     AND b.start < CASE q.period WHEN %(week)s THEN %(week_after)s ELSE %(month_after)s END
     AND (q.machine_type_id IS NULL OR m.machine_type_id = q.machine_type_id)
     AND b.id <> %(ignoring)s)
FROM booking_quota q
WHERE q.platform_id = %(platform)s
  AND (q.organization_id = %(org)s OR q.organization_id IS NULL)
  AND (q.machine_type_id = %(machine_type)s OR q.machine_type_id IS NULL)
ORDER BY q.period, q.id
"""
# The summed lengths of bookings in microseconds, exact on both databases. On
# SQLite, django_timestamp_diff is the function Django registers on every
# connection for the ORM's own date-time arithmetic.
_BOOKED_MICROSECONDS = {
    "postgresql": '(EXTRACT(EPOCH FROM SUM(b."end" - b.start)) * 1000000)::bigint',
    "sqlite": 'SUM(django_timestamp_diff(b."end", b.start))',
}


def _quotas(
    machine: Machine,
    organization: Organization,
    start: datetime,
    end: datetime,
    ignoring: Booking | None,
) -> list[Problem]:
    """Hours already booked in the quota's period (counted by their start) plus
    this booking's hours stay within each quota that applies. Booked hours stay
    booked once used or missed (completed, no-show): only cancelled and rejected
    bookings give theirs back. The caller holds the organization's lock
    (services._lock_organization), so no booking of it commits in between."""
    local_start = start.astimezone(machine.platform.tzinfo)
    adapt = connection.ops.adapt_datetimefield_value
    week_first, week_after = _quota_period(Quota.Period.WEEK, local_start)
    month_first, month_after = _quota_period(Quota.Period.MONTH, local_start)
    with connection.cursor() as cursor:
        cursor.execute(
            _QUOTAS_SQL.format(booked=_BOOKED_MICROSECONDS[connection.vendor]),
            {
                "org": organization.pk,
                "platform": machine.platform_id,
                "machine_type": machine.machine_type_id,
                "cancelled": Booking.Status.CANCELLED.value,
                "rejected": Booking.Status.REJECTED.value,
                "week": Quota.Period.WEEK.value,
                "week_first": adapt(week_first),
                "week_after": adapt(week_after),
                "month_first": adapt(month_first),
                "month_after": adapt(month_after),
                "ignoring": ignoring.pk if ignoring is not None else 0,  # ids start at 1
            },
        )
        rows = cursor.fetchall()
    problems = []
    for pk, period, max_hours, booked in rows:
        used = timedelta(microseconds=int(booked or 0))
        if used + (end - start) > timedelta(hours=max_hours):
            quota = Quota(pk=pk, period=period, max_hours=max_hours)
            problems.append(
                Problem(
                    "quota_exceeded",
                    _("This goes beyond %(org)s's quota of %(n)d hours per %(period)s.")
                    % {
                        "org": organization,
                        "n": quota.max_hours,
                        "period": quota.get_period_display().lower(),
                    },
                    True,
                )
            )
    return problems


def _who_may_book(
    machine: Machine, organization: Organization, by: User, facts: Standing
) -> list[Problem]:
    problems = []
    if not machine.is_active:
        problems.append(Problem("machine_retired", _("This machine cannot be booked."), False))
    if not facts.platform_member:
        problems.append(
            Problem(
                "not_a_platform_member",
                _("%(org)s may not book on %(platform)s.")
                % {"org": organization, "platform": machine.platform},
                False,
            )
        )
    if not (facts.booking_staff or facts.in_organization):
        problems.append(
            Problem(
                "not_allowed_to_book",
                _("Only the organization's members and administrators may book for it."),
                False,
            )
        )
    return problems


# --- Pure predicates: booking_problems() below and the availability search
# (booking/selectors.py) share them, so a rule is written once. -----------------------


def duration_limits(machine: Machine) -> tuple[timedelta, timedelta]:
    """The shortest and the longest booking of `machine`, in elapsed time."""
    return (
        timedelta(minutes=machine.min_duration_minutes),
        timedelta(minutes=machine.max_duration_minutes),
    )


def start_limits(machine: Machine, now: datetime) -> tuple[datetime, datetime]:
    """The earliest and the latest start allowed at `now`: notice and horizon."""
    return (
        now + timedelta(minutes=machine.min_notice_minutes),
        now + timedelta(days=machine.booking_horizon_days),
    )


def on_grid(local: datetime, step_minutes: int) -> bool:
    """On the machine's grid, counted from local midnight."""
    since_midnight = local.hour * 60 + local.minute
    return local.second == 0 and local.microsecond == 0 and since_midnight % step_minutes == 0


@dataclass(frozen=True)
class Span:
    """One opening span of a weekday, in local time."""

    weekday: int
    opens_at: time
    closes_at: time


def merged_spans(hours) -> list[Span]:
    """Opening spans with the adjacent ones of a day joined (08–12 and 12–18 is 08–18)."""
    merged: list[Span] = []
    for h in sorted(hours, key=lambda h: (h.weekday, h.opens_at)):
        last = merged[-1] if merged else None
        if last and last.weekday == h.weekday and h.opens_at <= last.closes_at:
            merged[-1] = Span(h.weekday, last.opens_at, max(last.closes_at, h.closes_at))
        else:
            merged.append(Span(h.weekday, h.opens_at, h.closes_at))
    return merged


def _span_holding(spans: list[Span], day: datetime, opens_before: time, closes_after: time):
    return next(
        (
            s
            for s in spans
            if s.weekday == day.weekday()
            and s.opens_at <= opens_before
            and closes_after <= s.closes_at
        ),
        None,
    )


def within_opening_hours(spans: list[Span], local_start: datetime, local_end: datetime) -> bool:
    """Someone must be there to start and to end: a booking within one local day
    fits in one opening span; a longer one (an unattended print running overnight)
    only needs its start and its end inside opening hours. `spans` from
    merged_spans(); the moments in the platform's time zone."""
    if local_start.date() == local_end.date():
        return _span_holding(spans, local_start, local_start.time(), local_end.time()) is not None
    return (
        _span_holding(spans, local_start, local_start.time(), local_start.time()) is not None
        and _span_holding(spans, local_end, local_end.time(), local_end.time()) is not None
    )


# --- The rules, as problems ---------------------------------------------------------


def _duration_and_alignment(machine: Machine, start: datetime, end: datetime) -> list[Problem]:
    problems = []
    shortest, longest = duration_limits(machine)
    if end - start < shortest:
        problems.append(
            Problem(
                "too_short",
                _("Book at least %(n)d minutes.") % {"n": machine.min_duration_minutes},
                True,
            )
        )
    if end - start > longest:
        problems.append(
            Problem(
                "too_long",
                _("Book at most %(n)d minutes.") % {"n": machine.max_duration_minutes},
                True,
            )
        )
    tz = machine.platform.tzinfo
    step = machine.granularity_minutes
    if any(not on_grid(moment.astimezone(tz), step) for moment in (start, end)):
        problems.append(
            Problem(
                "misaligned",
                _("Start and end must fall on multiples of %(n)d minutes (local time).")
                % {"n": step},
                True,
            )
        )
    return problems


def cancellation_deadline(booking: Booking) -> datetime:
    """Cancelled after this, a booking is a late cancellation (billing may charge it)."""
    return booking.start - timedelta(hours=booking.machine.platform.cancellation_deadline_hours)


def late_move_problems(
    booking: Booking, start: datetime, end: datetime, now: datetime
) -> list[Problem]:
    """Past the cancellation deadline a booking may grow but not give time back:
    a move that frees part of its period is a late cancellation in all but name,
    one that billing would not charge."""
    if now <= cancellation_deadline(booking) or (start <= booking.start and booking.end <= end):
        return []
    return [
        Problem(
            "too_late_to_move",
            _(
                "After the cancellation deadline (%(n)d h before the start), a booking can "
                "only be extended: cancel it (a late cancellation) and book again."
            )
            % {"n": booking.machine.platform.cancellation_deadline_hours},
            True,
        )
    ]


def _notice_and_horizon(machine: Machine, start: datetime, now: datetime) -> list[Problem]:
    problems = []
    earliest, latest = start_limits(machine, now)
    if start < earliest:
        problems.append(
            Problem(
                "too_late_to_book",
                _("Book at least %(n)d minutes ahead.") % {"n": machine.min_notice_minutes},
                True,
            )
        )
    if start > latest:
        problems.append(
            Problem(
                "beyond_horizon",
                _("Bookings open %(n)d days ahead.") % {"n": machine.booking_horizon_days},
                True,
            )
        )
    return problems


def _opening_hours_and_closures(
    machine: Machine, start: datetime, end: datetime, closure_id: int | None
) -> list[Problem]:
    """Start and end within opening hours (local time, so DST days follow the
    wall clock; see within_opening_hours), on days that are not closed."""
    tz = machine.platform.tzinfo
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    spans = merged_spans(OpeningHours.objects.filter(platform_id=machine.platform_id))
    problems = []
    if not within_opening_hours(spans, local_start, local_end):
        problems.append(
            Problem(
                "outside_opening_hours",
                _("The platform is not open at that time (%(tz)s).")
                % {"tz": machine.platform.timezone},
                True,
            )
        )
    if closure_id is not None:
        closure = Closure.objects.get(pk=closure_id)
        problems.append(
            Problem(
                "platform_closed",
                _("The platform is closed from %(first)s to %(last)s%(reason)s.")
                % {
                    "first": closure.start_date.isoformat(),
                    "last": closure.end_date.isoformat(),
                    "reason": f" ({closure.reason})" if closure.reason else "",
                },
                True,
            )
        )
    return problems


def _qualification(machine: Machine, facts: Standing) -> list[Problem]:
    if not machine.qualification_required or facts.booking_staff or facts.qualified:
        return []
    return [
        Problem(
            "qualification_missing",
            _("You need a valid qualification for this machine on the booking's dates."),
            True,
        )
    ]
