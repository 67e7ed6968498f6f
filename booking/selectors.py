"""Reads that need thought: when machines are free, and the earliest slots a
booking could take.

Everything is computed in Python on intervals loaded at once: a window of one
machine, or of all the machines of a type on a platform, costs a fixed number of
queries (opening hours, closures, maintenance windows, bookings), however many
bookings or machines there are. On PostgreSQL, the search lets the database
merge the busy periods and answer only the gaps long enough for a slot
(_GAPS_SQL); elsewhere Python merges the periods, read in one query (_held). All
instants are aware, in UTC.

What "free" means, and the buffer
---------------------------------
- `free_intervals()` is raw free time: within opening hours (the platform's
  local wall clock, adjacent spans joined, DST days included), on days that are
  not closed, and held by no active booking (up to its `blocked_until`, i.e.
  with its buffer) nor maintenance window. No notice, horizon, duration or grid
  is applied: it is what a calendar shows.
- A new booking [s, e) holds [s, e + buffer), exactly as `create_booking` sees
  it: it conflicts when [s, e + buffer) meets a held period or a maintenance
  window. Opening hours constrain s and e only (the buffer may run after closing
  time). So a free interval [a, b) takes a booking ending at b when b is a
  closing time, but not when b is where a busy period starts and the machine
  has a buffer. `earliest_slots()` applies all of this, and every rule of
  booking/rules.py about the period (duration, grid, notice, horizon, opening
  hours, closures), through the same predicates: to find a bookable slot, use
  it rather than free_intervals().
- Who books is not considered (membership, qualification): slots are about the
  machine; `create_booking` still checks the person.
"""

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Value
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_time

from booking.models import Booking
from booking.rules import (
    Span,
    duration_limits,
    merged_spans,
    on_grid,
    start_limits,
    within_opening_hours,
)
from core.models import User
from equipment.models import Machine, MaintenanceWindow, Platform

Interval = tuple[datetime, datetime]

# Conflict suggestions: how far after the requested start to look, and how many.
SUGGESTION_DAYS = 14
SUGGESTION_LIMIT = 3


# --- Intervals -------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("Aware date-times only.")
    return moment.astimezone(UTC)


def _merged(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping and touching intervals joined."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _subtract(intervals: list[Interval], busy: list[Interval]) -> list[Interval]:
    """`intervals` (sorted, disjoint) minus `busy` (sorted, merged)."""
    free: list[Interval] = []
    ends = [end for _start, end in busy]
    for start, end in intervals:
        i = bisect_right(ends, start)  # the first busy period ending after `start`
        cursor = start
        while i < len(busy) and busy[i][0] < end:
            if busy[i][0] > cursor:
                free.append((cursor, busy[i][0]))
            cursor = max(cursor, busy[i][1])
            i += 1
        if cursor < end:
            free.append((cursor, end))
    return free


# --- A platform's calendar: opening hours and closures ---------------------------------


# Remembered: the same days and opening times come back again and again (the
# dashboard's tables and heatmap each read a period's opening hours; every request
# reads the same weeks), and the answer only depends on the time zone's rules.
@lru_cache(maxsize=16384)
def _wall_to_utc(day: date, wall: time, tz: ZoneInfo, *, last: bool) -> datetime:
    """The first instant whose local wall time on `day` is `wall` or later, or
    (last=True, for a closing time) the last one that is `wall` or earlier.
    On a DST day a wall time may happen twice (October: the first one opens,
    the second closes) or never (March: the clock jumps over it, and the jump
    is the answer either way)."""
    naive = datetime.combine(day, wall)
    early = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    late = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if early.astimezone(tz).replace(tzinfo=None) == naive:  # the wall time exists
        return late if last else early
    # In a gap: fold=1 reads `wall` with the offset after the jump, an instant
    # before it; fold=0 with the offset before, an instant after it. Bisect.
    before, after = min(early, late), max(early, late)
    while after - before > timedelta(seconds=1):
        middle = before + (after - before) / 2
        if middle.astimezone(tz).replace(tzinfo=None) >= naive:
            after = middle
        else:
            before = middle
    return after.replace(microsecond=0)


@dataclass
class _Calendar:
    """When a platform is open: its merged opening spans and its closed days."""

    tz: ZoneInfo
    spans: list[Span]
    closed: set[date]
    by_weekday: dict[int, list[Span]] = field(init=False)
    _grids: dict = field(init=False, default_factory=dict)
    # Whether a period from a grid start ends where the rules allow, by
    # (step, duration, start): the same for every machine of the platform.
    _period_fits: dict = field(init=False, default_factory=dict)

    def __post_init__(self):
        self.by_weekday = defaultdict(list)
        for span in self.spans:
            self.by_weekday[span.weekday].append(span)

    def days(self, start: datetime, end: datetime) -> Iterable[date]:
        """The local days that [start, end] touches, closed ones left out."""
        day, last = start.astimezone(self.tz).date(), end.astimezone(self.tz).date()
        while day <= last:
            if day not in self.closed:
                yield day
            day += timedelta(days=1)

    def open_intervals(self, start: datetime, end: datetime) -> list[Interval]:
        """Opening hours within [start, end), in UTC."""
        found = []
        for day in self.days(start, end):
            for span in self.by_weekday.get(day.weekday(), ()):
                opens = max(_wall_to_utc(day, span.opens_at, self.tz, last=False), start)
                closes = min(_wall_to_utc(day, span.closes_at, self.tz, last=True), end)
                if opens < closes:
                    found.append((opens, closes))
        return found

    def starts(self, step: int, start: datetime, end: datetime):
        """Where a booking may start on a `step`-minute grid (from local midnight):
        every grid instant within an opening span (its ends included), on open
        days, between `start` and `end` — as (UTC instants, their local times),
        sorted. Cached: the machines of one platform share it."""
        key = (step, start, end)
        if key not in self._grids:
            self._grids[key] = self._starts(step, start, end)
        return self._grids[key]

    def _starts(self, step: int, start: datetime, end: datetime):
        moments: dict[datetime, datetime] = {}
        for day in self.days(start, end):
            midnight = datetime.combine(day, time(0))
            offsets = {
                self.tz.utcoffset(midnight.replace(fold=0)),
                self.tz.utcoffset(midnight.replace(fold=1)),
                self.tz.utcoffset(midnight + timedelta(days=1)),
            }
            for span in self.by_weekday.get(day.weekday(), ()):
                opens = span.opens_at.hour * 3600 + span.opens_at.minute * 60 + span.opens_at.second
                closes = (
                    span.closes_at.hour * 3600 + span.closes_at.minute * 60 + span.closes_at.second
                )
                minute = -(-opens // (step * 60)) * step  # the first grid minute at or after
                while minute * 60 <= closes:
                    wall = midnight + timedelta(minutes=minute)
                    if len(offsets) == 1:  # no clock change today: plain arithmetic
                        (offset,) = offsets
                        instant = (wall - offset).replace(tzinfo=UTC)
                        moments[instant] = wall.replace(tzinfo=self.tz)
                    else:  # keep the instants that show this wall time (none, one or two)
                        for fold in (0, 1):
                            instant = wall.replace(tzinfo=self.tz, fold=fold).astimezone(UTC)
                            local = instant.astimezone(self.tz)
                            if local.replace(tzinfo=None) == wall:
                                moments[instant] = local
                    minute += step
        instants = sorted(m for m in moments if start <= m <= end)
        return instants, [moments[m] for m in instants]


# --- Loading, once per window ------------------------------------------------------------


def _calendars(machines: list[Machine], start: datetime, end: datetime) -> dict[int, _Calendar]:
    """The calendars of the machines' platforms around [start, end): one query."""
    platforms = {m.platform_id: m.platform for m in machines}
    # Local days are within a day of UTC ones, whatever the zone.
    return platform_calendars(
        platforms.values(), start.date() - timedelta(days=1), end.date() + timedelta(days=1)
    )


# Opening hours and closures side by side, in one plain query: through the ORM (a
# union of two querysets), building it and reading its rows took five times as
# long as running it, and most of a machine's free month (bench/booking.py).
_CALENDAR_SQL = """
SELECT platform_id, weekday, opens_at, closes_at, NULL, NULL FROM equipment_openinghours
WHERE platform_id IN ({platforms})
UNION ALL
SELECT platform_id, NULL, NULL, NULL, start_date, end_date FROM equipment_closure
WHERE platform_id IN ({platforms}) AND start_date <= %s AND end_date >= %s
"""


def _adapt_date(day: date):
    return connection.ops.adapt_datefield_value(day)


def _as_time(value) -> time:
    return parse_time(value) if isinstance(value, str) else value  # SQLite: text, at times


def _as_date(value) -> date:
    return parse_date(value) if isinstance(value, str) else value


def platform_calendars(
    platforms: Iterable[Platform], first: date, last: date
) -> dict[int, _Calendar]:
    """Each platform's calendar (opening hours, closed days) from local day `first`
    to `last` included: one query, whatever the number of platforms."""
    platforms = {platform.pk: platform for platform in platforms}
    hours: dict[int, list[Span]] = defaultdict(list)
    closed: dict[int, set[date]] = defaultdict(set)
    ids = list(platforms) or [0]  # no platform: a query that finds nothing
    placeholders = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            _CALENDAR_SQL.format(platforms=placeholders),
            [*ids, *ids, _adapt_date(last), _adapt_date(first)],
        )
        rows = cursor.fetchall()
    for platform_id, weekday, opens_at, closes_at, closed_from, closed_until in rows:
        if closed_from is None:
            hours[platform_id].append(Span(weekday, _as_time(opens_at), _as_time(closes_at)))
            continue
        day = max(_as_date(closed_from), first)
        while day <= min(_as_date(closed_until), last):
            closed[platform_id].add(day)
            day += timedelta(days=1)
    return {
        pk: _Calendar(platform.tzinfo, merged_spans(hours[pk]), closed[pk])
        for pk, platform in platforms.items()
    }


# _held() on PostgreSQL: the query Booking.objects.holding() and the maintenance
# windows make, written out: building it and reading its rows through the ORM cost
# more than running it, for a machine's busy month (bench/booking.py).
# The machines as a joined set: `= ANY(array)` compared every row with each of them.
_HELD_SQL = """
SELECT machine_id, start, blocked_until AS "end", 'booking' AS kind FROM booking_booking
WHERE machine_id IN (SELECT unnest(%(machines)s::bigint[])) AND status = ANY(%(active)s)
  AND id IS DISTINCT FROM %(ignoring)s
  AND tstzrange(start, blocked_until, '[)') && tstzrange(%(start)s, %(end)s, '[)')
UNION ALL
SELECT machine_id, start, "end", 'maintenance' FROM equipment_maintenancewindow
WHERE machine_id IN (SELECT unnest(%(machines)s::bigint[]))
  AND start < %(end)s AND "end" > %(start)s
"""


def _held_params(machines: list[Machine], start, end, ignoring: Booking | None) -> dict:
    return {
        "machines": [m.pk for m in machines],
        "active": list(Booking.ACTIVE_STATUSES),
        "ignoring": ignoring.pk if ignoring is not None else None,
        "start": start,
        "end": end,
    }


def _held(
    machines: list[Machine], start: datetime, end: datetime, ignoring: Booking | None
) -> dict[int, list[tuple[datetime, datetime, str]]]:
    """What holds the machines during [start, end), by machine: active bookings
    until their `blocked_until`, and maintenance windows. One query."""
    machine_ids = [m.pk for m in machines]
    held: dict[int, list] = {pk: [] for pk in machine_ids}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_HELD_SQL, _held_params(machines, start, end, ignoring))
            for machine_id, s, e, kind in cursor.fetchall():
                held[machine_id].append((s, e, kind))
        return held
    bookings = Booking.objects.holding(machine_ids, start, end)
    if ignoring is not None:
        bookings = bookings.exclude(pk=ignoring.pk)
    maintenance = MaintenanceWindow.objects.filter(
        machine_id__in=machine_ids, start__lt=end, end__gt=start
    )
    rows = (
        bookings.order_by()
        .values_list("machine_id", "start", "blocked_until", Value("booking"))
        .union(
            maintenance.order_by().values_list("machine_id", "start", "end", Value("maintenance")),
            all=True,
        )
    )
    for machine_id, s, e, kind in rows:
        held[machine_id].append((s, e, kind))
    return held


def _merged_by_machine(held: dict[int, list[tuple]]) -> dict[int, list[Interval]]:
    """What _held() answers, as each machine's merged busy periods."""
    return {pk: _merged((s, e) for s, e, _kind in periods) for pk, periods in held.items()}


# Gaps between a machine's busy periods, found by PostgreSQL: a search needs only
# those long enough for a slot and its buffer, a few per machine and day, rather
# than every booking of 200 machines (bench/booking.py: a third of the rows). The
# busy periods are what _held() reads.
_GAPS_SQL = f"""
WITH busy AS ({_HELD_SQL}), after_earlier AS (
    SELECT machine_id, start, max("end") OVER (
        PARTITION BY machine_id ORDER BY start ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS free_from
    FROM busy
)
SELECT machine_id, free_from, start FROM after_earlier
WHERE free_from IS NULL OR start - free_from >= %(need)s
UNION ALL
SELECT machine_id, max("end"), NULL FROM busy GROUP BY machine_id
"""


def _busy_with_short_gaps_filled(
    machines: list[Machine], start: datetime, end: datetime, need: timedelta
) -> dict[int, list[Interval]]:
    """Each machine's busy periods meeting [start, end), merged, where a free gap
    shorter than `need` counts as busy too (no slot fits it): the same slots as
    from every busy period. One query."""
    if connection.vendor != "postgresql":
        return _merged_by_machine(_held(machines, start, end, None))
    with connection.cursor() as cursor:
        cursor.execute(_GAPS_SQL, {**_held_params(machines, start, end, None), "need": need})
        rows = cursor.fetchall()
    # Per machine: the gaps before its busy periods (from None: before the first),
    # and the end of its last one (a row without a start).
    gaps: dict[int, list[tuple[datetime | None, datetime]]] = defaultdict(list)
    last_end: dict[int, datetime] = {}
    for machine_id, free_from, free_until in rows:
        if free_until is None:
            last_end[machine_id] = free_from
        else:
            gaps[machine_id].append((free_from, free_until))
    busy: dict[int, list[Interval]] = {m.pk: [] for m in machines}
    for machine_id, until in last_end.items():
        periods, busy_from = busy[machine_id], None
        for free_from, free_until in sorted(gaps[machine_id], key=lambda gap: gap[1]):
            if busy_from is not None:  # busy from the end of the previous gap
                periods.append((busy_from, free_from))
            busy_from = free_until
        periods.append((busy_from, until))
    return busy


@dataclass
class _Machinery:
    """What the computations need about some machines over a window: the
    calendars of their platforms, and their busy periods, merged and sorted (by
    machine id). `held` keeps what the busy periods are made of, for blocks()."""

    calendars: dict[int, _Calendar]  # by platform id
    busy: dict[int, list[Interval]]
    held: dict[int, list[tuple[datetime, datetime, str]]] = field(default_factory=dict)
    busy_ends: dict[int, list[datetime]] = field(init=False)

    def __post_init__(self):
        self.busy_ends = {pk: [end for _start, end in v] for pk, v in self.busy.items()}

    def blocks(self, machine: Machine) -> list[dict]:
        """The busy periods of `machine`, sorted, anonymous: when, and what kind."""
        return [
            {"start": s, "end": e, "kind": kind} for s, e, kind in sorted(self.held[machine.pk])
        ]

    @classmethod
    def load(
        cls,
        machines: list[Machine],
        start: datetime,
        end: datetime,
        ignoring: Booking | None = None,
    ) -> "_Machinery":
        """Busy periods meeting [start, end), and the calendars around those days
        (two queries); `ignoring`: a booking being moved, which is not in its own way."""
        held = _held(machines, start, end, ignoring)
        return cls(_calendars(machines, start, end), _merged_by_machine(held), held)

    def clash(self, machine: Machine, start: datetime, held_until: datetime) -> Interval | None:
        """The first busy period of `machine` meeting [start, held_until), if any."""
        busy, ends = self.busy[machine.pk], self.busy_ends[machine.pk]
        i = bisect_right(ends, start)
        return busy[i] if i < len(busy) and busy[i][0] < held_until else None

    def period_fits(self, machine: Machine, local_start: datetime, end: datetime) -> bool:
        """The rules about a period that starts on the grid, inside opening hours,
        on an open day (as `_Calendar.starts` gives them): its end on the grid,
        within opening hours (booking/rules.py), not on a closed day."""
        calendar = self.calendars[machine.platform_id]
        local_end = end.astimezone(calendar.tz)
        return (
            on_grid(local_end, machine.granularity_minutes)
            and local_end.date() not in calendar.closed
            and within_opening_hours(calendar.spans, local_start, local_end)
        )

    def bookable(self, machine: Machine, start: datetime, end: datetime, now: datetime) -> bool:
        """Whether [start, end) passes every rule about the period and clashes with nothing."""
        calendar = self.calendars[machine.platform_id]
        local_start = start.astimezone(calendar.tz)
        shortest, longest = duration_limits(machine)
        earliest, latest = start_limits(machine, now)
        return (
            machine.is_active
            and shortest <= end - start <= longest
            and earliest <= start <= latest
            and on_grid(local_start, machine.granularity_minutes)
            and local_start.date() not in calendar.closed
            and self.period_fits(machine, local_start, end)
            and self.clash(machine, start, end + _buffer(machine)) is None
        )

    def slots(
        self,
        machine: Machine,
        duration: timedelta,
        start: datetime,
        end: datetime,
        limit: int,
        now: datetime,
        grid: Interval | None = None,
    ) -> list[Interval]:
        """The earliest bookable [s, s + duration) within [start, end), one after
        the other: each next one starts at or after the end of the previous.
        `grid`: the span of the grid of starts to use, if wider than [start, end]
        (a search's machines share one)."""
        shortest, longest = duration_limits(machine)
        if not machine.is_active or limit < 1 or not shortest <= duration <= longest:
            return []
        earliest, latest = start_limits(machine, now)
        first, last = max(start, earliest), min(end - duration, latest)
        if first > last:
            return []
        calendar = self.calendars[machine.platform_id]
        step = machine.granularity_minutes
        instants, locals_ = calendar.starts(step, *(grid or (start, end)))
        # The loop below is the search's hot path: clash() and period_fits()
        # inlined, with their data at hand.
        busy, ends, buffer = self.busy[machine.pk], self.busy_ends[machine.pk], _buffer(machine)
        tz, spans, closed = calendar.tz, calendar.spans, calendar.closed
        fits = calendar._period_fits
        found: list[Interval] = []
        i, count = bisect_left(instants, first), len(instants)
        while i < count and instants[i] <= last:
            s = instants[i]
            e = s + duration
            j = bisect_right(ends, s)  # the first busy period ending after s
            if j < len(busy) and busy[j][0] < e + buffer:
                # Every later start before that period's end meets it too: jump.
                i = bisect_left(instants, busy[j][1], i + 1)
                continue
            fit = fits.get((step, duration, s))
            if fit is None:
                local_end = e.astimezone(tz)
                fit = fits[step, duration, s] = (
                    on_grid(local_end, step)
                    and local_end.date() not in closed
                    and within_opening_hours(spans, locals_[i], local_end)
                )
            if not fit:
                i += 1
                continue
            found.append((s, e))
            if len(found) == limit:
                break
            i = bisect_left(instants, e, i + 1)
        return found


def _buffer(machine: Machine) -> timedelta:
    return timedelta(minutes=machine.buffer_after_minutes)


# --- The selectors -------------------------------------------------------------------------


@dataclass(frozen=True)
class Availability:
    free: list[Interval]
    busy: list[dict]  # {"start", "end", "kind": "booking" | "maintenance"}, whose never said


def machine_availability(*, machine: Machine, start: datetime, end: datetime) -> Availability:
    """Free time (see free_intervals) and the anonymous busy periods meeting
    [start, end) of `machine`: bookings until their `blocked_until`, and
    maintenance windows, as they are (not cut to the window). A retired machine
    has no free time."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return Availability([], [])
    machinery = _Machinery.load([machine], start, end)
    calendar = machinery.calendars[machine.platform_id]
    free = []
    if machine.is_active:
        free = _subtract(calendar.open_intervals(start, end), machinery.busy[machine.pk])
    return Availability(free, machinery.blocks(machine))


def free_intervals(*, machine: Machine, start: datetime, end: datetime) -> list[Interval]:
    """The free periods of `machine` within [start, end): opening hours (local
    time, adjacent spans joined) on days that are not closed, minus maintenance
    windows and active bookings with their buffers. Raw free time: a booking
    also needs room for its own buffer before the next busy period (see the
    module's docstring); earliest_slots() accounts for it."""
    start, end = _utc(start), _utc(end)
    if end <= start or not machine.is_active:
        return []
    calendar = _calendars([machine], start, end)[machine.platform_id]
    busy = _merged_by_machine(_held([machine], start, end, None))[machine.pk]
    return _subtract(calendar.open_intervals(start, end), busy)


# search_slots() reads the window a stretch at a time, from its start: the
# earliest slots are usually in the first day, and loading a week of a busy
# platform's bookings cost ten times the search itself (bench/booking.py).
FIRST_STRETCH = timedelta(days=1)


def search_slots(
    *,
    machines: list[Machine],
    duration: timedelta,
    start: datetime,
    end: datetime,
    limit: int,
    now: datetime | None = None,
) -> dict[int, list[Interval]]:
    """`earliest_slots()` of several machines (by id). Loads the busy periods of
    the machines still short of `limit` slots over a stretch of the window that
    doubles each round (a day, two, four…): one query for the calendars, then
    one a round (at most five rounds for a month), whatever the number of
    machines or bookings. Load the machines with their platform (select_related)."""
    start, end = _utc(start), _utc(end)
    now = _utc(now or timezone.now())
    found: dict[int, list[Interval]] = {machine.pk: [] for machine in machines}
    if end <= start or not machines or limit < 1:
        return found
    buffer = max(_buffer(m) for m in machines)
    calendars = _calendars(machines, start, end + duration + buffer)
    searching = [m for m in machines if m.is_active]
    stretch_start, stretch = start, FIRST_STRETCH
    while searching and stretch_start < end:
        # Slots starting in [stretch_start, stretch_end]: they end, buffer included,
        # before stretch_end + duration + buffer, which is as far as this round reads.
        stretch_end = min(stretch_start + stretch, end)
        need = duration + min(_buffer(m) for m in searching)
        busy = _busy_with_short_gaps_filled(
            searching, stretch_start, stretch_end + duration + buffer, need
        )
        machinery = _Machinery(calendars, busy)
        for machine in searching:
            slots = found[machine.pk]
            # Each slot starts at or after the end of the one before.
            first = max(stretch_start, slots[-1][1]) if slots else stretch_start
            slots += machinery.slots(
                machine,
                duration,
                first,
                min(stretch_end + duration, end),
                limit - len(slots),
                now,
                grid=(start, end),
            )
        searching = [m for m in searching if len(found[m.pk]) < limit]
        stretch_start, stretch = stretch_end, stretch * 2
    return found


def earliest_slots(
    *,
    machine: Machine,
    duration: timedelta,
    start: datetime,
    end: datetime,
    limit: int,
    now: datetime | None = None,
) -> list[Interval]:
    """The earliest bookable slots of exactly `duration` within [start, end): on
    the machine's grid in local time, within its minimum and maximum duration,
    notice and horizon (from `now`), opening hours and open days as
    booking/rules.py has them, and clear of every busy period including the
    slot's own buffer. Slots do not overlap: each starts at or after the end of
    the one before. At most `limit` of them."""
    return search_slots(
        machines=[machine], duration=duration, start=start, end=end, limit=limit, now=now
    )[machine.pk]


def conflict_suggestions(
    *,
    machine: Machine,
    start: datetime,
    end: datetime,
    by: User,
    now: datetime | None = None,
    ignoring: Booking | None = None,
) -> dict:
    """What to offer someone whose booking of [start, end) on `machine` clashed:
    the next slots of the same length on that machine (within SUGGESTION_DAYS of
    the requested start), and the other machines of its type on its platform,
    bookable and visible to `by`, free for exactly that period. Times only: whose
    the busy periods are is never said. `ignoring`: the booking being moved."""
    start, end = _utc(start), _utc(end)
    now = _utc(now or timezone.now())
    duration = end - start
    others = list(
        Machine.objects.visible_to(by)
        .filter(
            platform_id=machine.platform_id,
            machine_type_id=machine.machine_type_id,
            is_active=True,
        )
        .exclude(pk=machine.pk)
        .order_by("name", "pk")
    )
    for other in others:
        other.platform = machine.platform  # the same platform: no query per machine
    window_end = start + timedelta(days=SUGGESTION_DAYS) + duration
    everyone = [machine, *others]
    machinery = _Machinery.load(
        everyone, start, window_end + max(_buffer(m) for m in everyone), ignoring
    )
    same = machinery.slots(machine, duration, start, window_end, SUGGESTION_LIMIT, now)
    return {
        "same_machine": [{"start": s, "end": e} for s, e in same],
        "other_machines": [
            {"machine": other.pk, "name": other.name, "start": start, "end": end}
            for other in others
            if machinery.bookable(other, start, end, now)
        ],
    }
