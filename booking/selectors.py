"""Reads that need thought: when machines are free, and the earliest slots a
booking could take.

Computed in Python on intervals loaded by a fixed number of queries (opening
hours with closures, then maintenance windows and bookings), however many
bookings or machines a window holds. On PostgreSQL, the search asks the database
for each machine's first few gaps where a slot could fit (_GAPS_SQL: one query,
three at most); elsewhere Python finds the gaps between the busy periods, read
in one query (held_periods). All instants are aware, in UTC.

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

import json
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import NamedTuple
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
from equipment.models import Machine, MachineType, MaintenanceWindow, Platform

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

    def possible_starts(self, duration: timedelta, start: datetime, end: datetime):
        """The instants s in [start, end] from which [s, s + duration] starts and
        ends in opening hours, on open days, as closed intervals: more than the
        rules allow (they also want the grid, and a day's booking in one span),
        never less. For the database to skip the gaps where no slot can start."""
        opened = _merged(self.open_intervals(start, end + duration))
        ends = [(opens - duration, closes - duration) for opens, closes in opened]
        found, i, j = [], 0, 0
        while i < len(opened) and j < len(ends):
            lower, upper = max(opened[i][0], ends[j][0]), min(opened[i][1], ends[j][1])
            if lower <= upper:
                found.append((lower, upper))
            if opened[i][1] < ends[j][1]:
                i += 1
            else:
                j += 1
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
        instants: list[datetime] = []
        locals_: list[datetime] = []
        for day in self.days(start, end):
            spans = tuple(self.by_weekday.get(day.weekday(), ()))
            day_instants, day_locals = _day_grid(day, spans, step, self.tz)
            instants += day_instants
            locals_ += day_locals
        first, last = bisect_left(instants, start), bisect_right(instants, end)
        return instants[first:last], locals_[first:last]


# Remembered like _wall_to_utc: searches come back to the same days, and a week's
# grid for every search cost more than finding the slots in it (bench/booking.py).
@lru_cache(maxsize=4096)
def _day_grid(day: date, spans: tuple[Span, ...], step: int, tz: ZoneInfo):
    """The instants of local `day` on a `step`-minute grid from local midnight
    within `spans` (their ends included), and their local times, sorted."""
    midnight = datetime.combine(day, time(0))
    offsets = {
        tz.utcoffset(midnight.replace(fold=0)),
        tz.utcoffset(midnight.replace(fold=1)),
        tz.utcoffset(midnight + timedelta(days=1)),
    }
    moments: dict[datetime, datetime] = {}
    for span in spans:
        opens = span.opens_at.hour * 3600 + span.opens_at.minute * 60 + span.opens_at.second
        closes = span.closes_at.hour * 3600 + span.closes_at.minute * 60 + span.closes_at.second
        minute = -(-opens // (step * 60)) * step  # the first grid minute at or after
        while minute * 60 <= closes:
            wall = midnight + timedelta(minutes=minute)
            if len(offsets) == 1:  # no clock change today: plain arithmetic
                (offset,) = offsets
                instant = (wall - offset).replace(tzinfo=UTC)
                moments[instant] = wall.replace(tzinfo=tz)
            else:  # keep the instants that show this wall time (none, one or two)
                for fold in (0, 1):
                    instant = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
                    local = instant.astimezone(tz)
                    if local.replace(tzinfo=None) == wall:
                        moments[instant] = local
            minute += step
    instants = sorted(moments)
    return tuple(instants), tuple(moments[m] for m in instants)


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


# held_periods() on PostgreSQL: the query Booking.objects.holding() and the maintenance
# windows make, written out: building it and reading its rows through the ORM cost
# more than running it, for a machine's busy month and for each booking's conflict
# check (bench/booking.py). The machines as a joined set: `= ANY(array)` compared
# every row with each of them. The period as a range, written as in the exclusion
# constraint (migration booking/0002), and the ids as bigints, which btree_gist
# needs: PostgreSQL then finds a machine's period in that constraint's GiST index.
_HELD_SQL = """
SELECT machine_id, start, blocked_until AS "end", 'booking' AS kind FROM booking_booking
WHERE {machines} AND status = ANY(%(active)s)
  AND id IS DISTINCT FROM %(ignoring)s
  AND tstzrange(start, blocked_until, '[)') && tstzrange(%(start)s, %(end)s, '[)')
UNION ALL
SELECT machine_id, start, "end", 'maintenance' FROM equipment_maintenancewindow
WHERE {machines} AND start < %(end)s AND "end" > %(start)s
"""
# One machine (every conflict check) is named alone: with a set, the planner may
# join it after reading the period's bookings of every machine.
_HELD_MACHINE = "machine_id = (%(machines)s::bigint[])[1]"
_HELD_MACHINES = "machine_id IN (SELECT unnest(%(machines)s::bigint[]))"


def held_periods(
    machines: list[Machine], start: datetime, end: datetime, ignoring: Booking | None = None
) -> dict[int, list[tuple[datetime, datetime, str]]]:
    """What holds the machines during [start, end), by machine: active bookings
    until their `blocked_until` (but `ignoring`, a booking being moved), and
    maintenance windows, as (start, end, "booking" or "maintenance"). One query:
    the conflict check of every booking write, and the availability reads."""
    machine_ids = [m.pk for m in machines]
    held: dict[int, list] = {pk: [] for pk in machine_ids}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            which = _HELD_MACHINE if len(machine_ids) == 1 else _HELD_MACHINES
            cursor.execute(
                _HELD_SQL.format(machines=which),
                {
                    "machines": machine_ids,
                    "active": list(Booking.ACTIVE_STATUSES),
                    "ignoring": ignoring.pk if ignoring is not None else None,
                    "start": start,
                    "end": end,
                },
            )
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
    """What held_periods() answers, as each machine's merged busy periods."""
    return {pk: _merged((s, e) for s, e, _kind in periods) for pk, periods in held.items()}


# A search's free gaps, found by PostgreSQL: for each machine, its active bookings
# in order of start from where the search looks (the (machine, start) index), the
# gap before each, and only the first gaps long enough for a slot and its buffer
# whose slot could start and end in opening hours (`starts`); the LIMIT stops each
# machine's scan there. The exclusion constraint keeps a machine's active bookings
# apart, so a gap is simply from one's blocked_until to the next one's start; the
# last one before `free_from` gives the first gap's beginning, and a row at
# `until` the last gap's end. A search of 200 machines reads about 13 bookings of
# each, where reading a day of them all, in rounds, took three times as long
# (bench/booking.py). Maintenance windows follow: few, and subtracted in Python.
_GAPS_SQL = """
WITH m AS MATERIALIZED (
    SELECT id, free_from, until, need, starts
    FROM json_to_recordset(%(looks)s::json) AS bounds(
             ids bigint[], free_from timestamptz, until timestamptz, need interval,
             starts tstzmultirange
         ),
         unnest(bounds.ids) AS id
)
SELECT m.id, g.free_from, g.free_until, 'gap'
FROM m CROSS JOIN LATERAL (
    SELECT free_from, free_until FROM (
        SELECT coalesce(
                   lag(b.blocked_until) OVER (ORDER BY b.start),
                   greatest(m.free_from, (
                       SELECT blocked_until FROM booking_booking
                       WHERE machine_id = m.id AND status = ANY(%(active)s) AND start < m.free_from
                       ORDER BY start DESC LIMIT 1))
               ) AS free_from,
               b.start AS free_until
        FROM (
            (SELECT start, blocked_until FROM booking_booking
             WHERE machine_id = m.id AND status = ANY(%(active)s)
               AND start >= m.free_from AND start < m.until
             ORDER BY start)
            UNION ALL SELECT m.until, NULL
        ) AS b
    ) AS g
    WHERE g.free_until - g.free_from >= m.need
      -- greatest(): SQL may test this before the length, and a range must not end
      -- before it starts
      AND tstzrange(g.free_from, greatest(g.free_from, g.free_until - m.need), '[]')
          && m.starts
    ORDER BY g.free_until  -- the order the rows come in: no sort, but said
    LIMIT %(rows)s
) AS g
UNION ALL
SELECT machine_id, start, "end", 'maintenance' FROM equipment_maintenancewindow
WHERE machine_id IN (SELECT id FROM m)
  AND start < (SELECT max(until) FROM m) AND "end" > (SELECT min(free_from) FROM m)
"""


@dataclass(frozen=True)
class _Look:
    """Where a search looks for one machine's slots: starts in [first, last]."""

    machine: Machine
    first: datetime
    last: datetime
    need: timedelta  # a slot and the machine's buffer after it
    limit: int  # slots still wanted

    @property
    def until(self) -> datetime:
        """How far a slot starting at `last` holds the machine: as far as gaps matter."""
        return self.last + self.need


def _free_gaps(
    looks: list[_Look], starts: dict[int, list[Interval]], rows: int | None
) -> tuple[dict[int, list[Interval]], dict[int, datetime]]:
    """Each machine's free gaps, sorted, from its look's `first` until its
    `until`, maintenance subtracted. On PostgreSQL only the first `rows` gaps
    (all when None) long enough for a slot and the machine's buffer in which a
    slot could start (`starts`, closed intervals, by platform id); then also, for
    each machine whose gaps were cut at `rows`, where the next gaps would be
    looked for. Elsewhere every gap, from every busy period. One query."""
    if connection.vendor != "postgresql":
        machines = [look.machine for look in looks]
        frm, until = min(lk.first for lk in looks), max(lk.until for lk in looks)
        busy = _merged_by_machine(held_periods(machines, frm, until, None))
        return {
            lk.machine.pk: _subtract([(lk.first, lk.until)], busy[lk.machine.pk]) for lk in looks
        }, {}
    # As one JSON text, the machines that share their bounds together: psycopg took
    # ~10 µs to write each date-time of a list, and most machines share them.
    bounds: dict[tuple, list[int]] = defaultdict(list)
    for lk in looks:
        bounds[lk.first, lk.until, lk.need, lk.machine.platform_id].append(lk.machine.pk)
    multiranges = {
        pk: "{" + ",".join(f"[{s.isoformat()},{e.isoformat()}]" for s, e in intervals) + "}"
        for pk, intervals in starts.items()
    }
    machines = [
        {
            "ids": ids,
            "free_from": first.isoformat(),
            "until": until.isoformat(),
            "need": f"{need.total_seconds()} seconds",
            "starts": multiranges[platform_id],
        }
        for (first, until, need, platform_id), ids in bounds.items()
    ]
    params = {"looks": json.dumps(machines), "active": list(Booking.ACTIVE_STATUSES), "rows": rows}
    with connection.cursor() as cursor:
        cursor.execute(_GAPS_SQL, params)
        found = cursor.fetchall()
    gaps: dict[int, list[Interval]] = {lk.machine.pk: [] for lk in looks}
    maintenance: dict[int, list[Interval]] = defaultdict(list)
    for machine_id, free_from, free_until, kind in found:
        (gaps if kind == "gap" else maintenance)[machine_id].append((free_from, free_until))
    cut = {}
    for pk, read in gaps.items():
        read.sort()
        if rows is not None and len(read) == rows:
            cut[pk] = read[-1][1]  # where a busy period starts, after the last gap read
    for pk, windows in maintenance.items():
        gaps[pk] = _subtract(gaps[pk], _merged(windows))
    return gaps, cut


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
        held = held_periods(machines, start, end, ignoring)
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
    ) -> list[Interval]:
        """The earliest bookable [s, s + duration) within [start, end), one after
        the other: each next one starts at or after the end of the previous."""
        look = _look(machine, duration, start, end, limit, now)
        if look is None:
            return []
        gaps = _subtract([(look.first, look.until)], self.busy[machine.pk])
        calendar = self.calendars[machine.platform_id]
        return _first_slots(calendar, look, gaps, duration, grid=(start, end))


def _look(
    machine: Machine, duration: timedelta, start: datetime, end: datetime, limit: int, now
) -> _Look | None:
    """Where slots of `duration` within [start, end) may start on `machine`, by
    its own rules (duration, notice, horizon); None if nowhere."""
    shortest, longest = duration_limits(machine)
    if not machine.is_active or limit < 1 or not shortest <= duration <= longest:
        return None
    earliest, latest = start_limits(machine, now)
    first, last = max(start, earliest), min(end - duration, latest)
    if first > last:
        return None
    return _Look(machine, first, last, duration + _buffer(machine), limit)


def _looks(
    machines: list[Machine], duration: timedelta, start: datetime, end: datetime, limit: int, now
) -> list[_Look]:
    """_look() of each machine that has one. The machines of a search mostly
    share their rules: each set of rules is worked out once."""
    shared: dict[tuple, _Look | None] = {}
    looks = []
    for machine in machines:
        rules = (  # what _look() reads of a machine
            machine.is_active,
            machine.min_duration_minutes,
            machine.max_duration_minutes,
            machine.min_notice_minutes,
            machine.booking_horizon_days,
            machine.buffer_after_minutes,
        )
        if rules not in shared:
            shared[rules] = _look(machine, duration, start, end, limit, now)
        if (look := shared[rules]) is not None:
            looks.append(_Look(machine, look.first, look.last, look.need, look.limit))
    return looks


def _first_slots(
    calendar: _Calendar, look: _Look, gaps: list[Interval], duration: timedelta, grid: Interval
) -> list[Interval]:
    """The earliest slots [s, s + duration) of `look`, one after the other, in
    free `gaps` (sorted): s on the machine's grid, in opening hours on an open
    day, between look.first and look.last; the slot's end where the rules allow
    (booking/rules.py); the slot and its buffer inside one gap. `grid`: the span
    of the grid of starts, which a search's machines share."""
    machine = look.machine
    step = machine.granularity_minutes
    instants, locals_ = calendar.starts(step, *grid)
    tz, spans, closed, fits = calendar.tz, calendar.spans, calendar.closed, calendar._period_fits
    found: list[Interval] = []
    i, count = 0, len(instants)
    for free_from, free_until in gaps:
        latest = min(look.last, free_until - look.need)
        i = bisect_left(instants, max(free_from, look.first), i)
        while i < count and instants[i] <= latest:
            s = instants[i]
            fit = fits.get((step, duration, s))
            if fit is None:
                local_end = (s + duration).astimezone(tz)
                fit = fits[step, duration, s] = (
                    on_grid(local_end, step)
                    and local_end.date() not in closed
                    and within_opening_hours(spans, locals_[i], local_end)
                )
            if not fit:
                i += 1
                continue
            found.append((s, s + duration))
            if len(found) == look.limit:
                return found
            i = bisect_left(instants, s + duration, i + 1)
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
    busy = _merged_by_machine(held_periods([machine], start, end, None))[machine.pk]
    return _subtract(calendar.open_intervals(start, end), busy)


class SearchMachine(NamedTuple):
    """What the slot computations read of a machine (a Machine has it all too).
    A platform's 200 machines load as these in a quarter to a half of the time
    model instances took, even with QuerySet.only() (bench/booking.py). A named
    tuple: built in a tenth of the time of a frozen dataclass, whose __init__
    sets each field through object.__setattr__ (0.9 ms for 200 machines)."""

    pk: int
    name: str
    platform_id: int
    is_active: bool
    min_duration_minutes: int
    max_duration_minutes: int
    granularity_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int
    booking_horizon_days: int
    platform: Platform


_SEARCH_MACHINE_COLUMNS = SearchMachine._fields[:-1]  # all but the platform


def searchable_machines(*, platform: Platform, machine_type: MachineType) -> list[SearchMachine]:
    """The active machines of a type on `platform`, by name, as search_slots()
    reads them: one query. Visibility is the caller's: every active machine of
    a platform someone may see is visible to them (Machine.objects.visible_to)."""
    rows = (
        Machine.objects.filter(platform=platform, machine_type=machine_type, is_active=True)
        .order_by("name", "pk")
        .values_list(*_SEARCH_MACHINE_COLUMNS)
    )
    return [SearchMachine(*row, platform) for row in rows]


# A search's rounds, as the rows of gaps asked of each machine per slot wanted.
# The first round's gaps usually hold the slots: each can hold one. A gap may hold
# none (off the machine's grid, under maintenance), so the machines short of slots
# are looked at again after their last gap read, with more rows, then all of them:
# three queries at most, whatever the data.
ROUNDS = (1, 4, None)


def search_slots(
    *,
    machines: list[Machine] | list[SearchMachine],
    duration: timedelta,
    start: datetime,
    end: datetime,
    limit: int,
    now: datetime | None = None,
) -> dict[int, list[Interval]]:
    """`earliest_slots()` of several machines (by id): one query for the
    calendars, then one for the free gaps of every machine (ROUNDS: at most
    three), whatever the number of machines or bookings. Load the machines with
    their platform (select_related), or as searchable_machines() does."""
    start, end = _utc(start), _utc(end)
    now = _utc(now or timezone.now())
    found: dict[int, list[Interval]] = {machine.pk: [] for machine in machines}
    looks = _looks(machines, duration, start, end, limit, now)
    if not looks:
        return found
    calendars = _calendars([look.machine for look in looks], start, max(lk.until for lk in looks))
    # Where a slot could start, by platform: the database skips the other gaps.
    starts = {
        pk: calendar.possible_starts(duration, start, end) for pk, calendar in calendars.items()
    }
    for per_slot in ROUNDS:
        rows = per_slot and per_slot * max(look.limit for look in looks)
        gaps, cut = _free_gaps(looks, starts, rows)
        again = []
        for look in looks:
            pk = look.machine.pk
            calendar = calendars[look.machine.platform_id]
            slots = found[pk]
            slots += _first_slots(calendar, look, gaps[pk], duration, grid=(start, end))
            if pk in cut and len(slots) < limit and cut[pk] <= look.last:
                again.append(replace(look, first=cut[pk], limit=limit - len(slots)))
        looks = again
        if not looks:
            break
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
