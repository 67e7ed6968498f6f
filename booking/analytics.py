"""Utilisation analytics: every metric defined here, once (the README's
"Utilisation" section says the same in words).

A table has one row per group (machine, machine type, organization or platform,
and/or a local day, week or month) over a period of local days [start, end) in
each platform's time zone. What is summed over bookings is summed in SQL, one
query for bookings and their lead-time percentiles (on PostgreSQL, one more for
those that cross a period's bound; on SQLite, one more for the percentiles) and
one for refused requests, whatever the number of machines or bookings; available
hours come
from opening hours, closures and maintenance windows, loaded with two queries
and combined per machine and period in Python.

Metrics (hours are elapsed time, so a DST day has 23 or 25 hours):

- available_hours: opening hours (the platform's local wall clock) on days that
  are not closed, minus maintenance windows, of bookable machines (a retired
  machine has none: there is no record of when it was retired).
- booked_hours: time of bookings that held or used their slot (pending,
  confirmed, completed, no-show), without the buffer, cut to each period. An
  unattended booking running past closing time counts whole, so utilisation can
  exceed 1.
- used_hours: checked-in time, from check-in to check-out (or to the booking's
  end, or now, while it is under way), cut to each period.
- utilisation_booked = booked / available; utilisation_used = used / available
  (null without available hours).
- bookings: bookings that held their slot, by the period of their start; so are
  the counts below.
- no_show_rate = no-shows / bookings whose outcome is known (checked in,
  completed or no-show).
- late_cancellation_rate = late cancellations / (bookings + cancellations).
- lead time: from a booking's creation to its start: average hours, median and
  90th percentile (continuous: interpolated between the two nearest bookings, as
  percentile_cont), and counts under 1 day, 1-7 days, 7-30 days, 30 days and more.
- demand refused: requests refused for a conflict, for broken rules, and pending
  bookings rejected by a manager (booking/refusals.py), by the period of the
  requested start; refused_hours is the time they asked for.
- share_of_booked_hours: the row's booked hours / the booked hours of every row
  of the same period (the whole table's when not grouped by time).
- An organization's row has the available hours of all the machines counted
  (its utilisation is its part of the capacity).
- revenue: from billing (billing.selectors.revenue_by, registered when billing
  is installed; null without it): amounts without tax of the issued invoices'
  lines about the bookings counted (machine time, setup, late-cancellation and
  no-show fees, consumables), less the issued credit notes', by the lines' date
  of service. The funded share counts: a programme pays it, not the SME.

Peak hours (peak_hours()): a week × hour heatmap. Each local hour of the period
falls in a cell (weekday, hour) of the platform's week; a cell has the booked
and available hours of all its hours, and occupancy = booked / available. Cut
on the platform's local hours, across changes of the clocks and in zones whose
offset is not a whole number of hours; booked seconds are summed in SQL.
"""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from math import floor
from operator import itemgetter
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from booking.models import Booking
from booking.selectors import Interval, _merged, _wall_to_utc, platform_calendars
from booking.services import CHECK_IN_OPENS_BEFORE
from core.errors import Forbidden
from core.models import Organization
from equipment.models import (
    Machine,
    MachineType,
    MaintenanceWindow,
    Platform,
    PlatformStaff,
)

ENTITY_GROUPS = ("machine", "machine_type", "organization", "platform")
TIME_GROUPS = ("day", "week", "month")
GROUPS = ENTITY_GROUPS + TIME_GROUPS

# Statuses of bookings that held (or used) their slot: they count as booked time.
BOOKED = (
    Booking.Status.PENDING,
    Booking.Status.CONFIRMED,
    Booking.Status.COMPLETED,
    Booking.Status.NO_SHOW,
)
BOOKED_SQL = ", ".join(f"'{s}'" for s in BOOKED)
# Lead-time bounds, in days: under 1, 1 to 7, 7 to 30, 30 and more.
LEAD_BOUNDS_DAYS = (1, 7, 30)
# A booking lasts at most 14 days (Machine.max_duration_minutes); bookings that
# started this long before the period are not read (an index bounds the scan).
LOOKBACK = timedelta(days=31)

# Columns naming a row's group, by grouping.
GROUP_COLUMNS = {
    "machine": ["machine", "machine_name"],
    "machine_type": ["machine_type", "machine_type_name"],
    "organization": ["organization", "organization_name"],
    "platform": ["platform", "platform_name"],
    "time": ["period_start", "period_end"],
}
METRIC_COLUMNS = [
    "available_hours",
    "booked_hours",
    "used_hours",
    "utilisation_booked",
    "utilisation_used",
    "share_of_booked_hours",
    "bookings",
    "no_shows",
    "no_show_rate",
    "cancellations",
    "late_cancellations",
    "late_cancellation_rate",
    "lead_time_avg_hours",
    "lead_time_p50_hours",
    "lead_time_p90_hours",
    "lead_time_under_1d",
    "lead_time_1d_to_7d",
    "lead_time_7d_to_30d",
    "lead_time_30d_or_more",
    "refused_conflicts",
    "refused_rules",
    "rejected_by_manager",
    "refused_hours",
    "revenue",
]

# --- Revenue: a hook for billing ----------------------------------------------------------
# booking never imports billing (DESIGN.md); billing registers a function from its
# AppConfig.ready(). It is called once per table with the bookings' scope and
# answers {row key: Decimal}, keys as in Table.keys (group values by grouping name).

RevenueSource = Callable[..., dict]
_revenue_source: RevenueSource | None = None


def register_revenue(source: RevenueSource | None) -> None:
    """`source(machines=QuerySet, organizations=QuerySet | None, periods=[(first
    local day, following local day)], group_by=[...])` -> {key tuple: Decimal}, a
    key being (entity value, period index), either left out when not grouped by."""
    global _revenue_source
    _revenue_source = source


# --- Periods --------------------------------------------------------------------------------


def buckets(start: date, end: date, unit: str | None) -> list[tuple[date, date]]:
    """The local days [start, end) cut by day, week (from Monday) or month; the
    first and last are cut to the period. One bucket without a unit."""
    if unit is None:
        return [(start, end)]
    found = []
    day = start
    while day < end:
        if unit == "day":
            following = day + timedelta(days=1)
        elif unit == "week":
            following = day + timedelta(days=7 - day.weekday())
        else:
            following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        found.append((day, min(following, end)))
        day = following
    return found


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """When `day` begins in `tz`, in UTC (the first instant of that date, should
    the clocks jump over midnight)."""
    return _wall_to_utc(day, time(0), tz, last=False)


def _utc_buckets(periods: list[tuple[date, date]], tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    return [(local_midnight(s, tz), local_midnight(e, tz)) for s, e in periods]


# --- Available hours ------------------------------------------------------------------------


def _seconds(intervals: Iterable[tuple[datetime, datetime]]) -> float:
    return sum((e - s).total_seconds() for s, e in intervals)


@dataclass
class _Capacity:
    """Opening hours of platforms per bucket, and the maintenance of machines."""

    open: dict[int, list[list[Interval]]]  # platform -> per bucket
    maintenance: dict[int, list[Interval]]  # machine -> merged
    _flat: dict[int, tuple] = field(default_factory=dict)

    @classmethod
    def load(cls, platforms, machine_ids: QuerySet, periods, utc_by_tz) -> "_Capacity":
        """Two queries: opening hours with closures, maintenance windows."""
        calendars = platform_calendars(platforms, periods[0][0], periods[-1][1])
        opened = {
            platform.pk: [
                calendars[platform.pk].open_intervals(s, e) for s, e in utc_by_tz[platform.timezone]
            ]
            for platform in platforms
        }
        everything = [t for per_tz in utc_by_tz.values() for t in per_tz]
        lo, hi = min(s for s, _e in everything), max(e for _s, e in everything)
        windows = defaultdict(list)
        for machine_id, s, e in MaintenanceWindow.objects.filter(
            machine_id__in=machine_ids, start__lt=hi, end__gt=lo
        ).values_list("machine_id", "start", "end"):
            windows[machine_id].append((s, e))
        return cls(opened, {pk: _merged(v) for pk, v in windows.items()})

    def _platform(self, platform_id: int) -> tuple:
        """A platform's open intervals in one sorted list, their ends, their buckets,
        and its open seconds per bucket (what a machine without maintenance has)."""
        if platform_id not in self._flat:
            per_bucket = self.open[platform_id]
            spans = [(s, e, idx) for idx, found in enumerate(per_bucket) for s, e in found]
            plain = [_seconds(found) for found in per_bucket]
            self._flat[platform_id] = (spans, [e for _s, e, _i in spans], plain)
        return self._flat[platform_id]

    def closed_for_maintenance(self, machine: dict) -> Iterable[tuple[int, datetime, datetime]]:
        """(bucket, start, end): where `machine`'s maintenance falls in opening hours.
        Bisected: the cost grows with its maintenance windows, not with the period."""
        spans, ends, _plain = self._platform(machine["platform_id"])
        for start, end in self.maintenance.get(machine["id"], ()):
            i = bisect_right(ends, start)  # the first open interval ending after `start`
            while i < len(spans) and spans[i][0] < end:
                s, e, idx = spans[i]
                if max(s, start) < min(e, end):
                    yield idx, max(s, start), min(e, end)
                i += 1

    def seconds(self, machine: dict) -> list[float]:
        """Available seconds of `machine` in each bucket: its platform's opening
        hours, minus its maintenance within them."""
        _spans, _ends, plain = self._platform(machine["platform_id"])
        if not machine["is_active"]:
            return [0.0] * len(plain)
        if machine["id"] not in self.maintenance:
            return plain  # shared by the machines without maintenance: not to be changed
        found = list(plain)
        for idx, s, e in self.closed_for_maintenance(machine):
            found[idx] -= (e - s).total_seconds()
        return found


# --- SQL ------------------------------------------------------------------------------------


def _sql_seconds(later: str, earlier: str) -> str:
    if connection.vendor == "postgresql":
        return f"date_part('epoch', ({later}) - ({earlier}))"  # a float: faster than numeric
    # SQLite keeps UTC date-times as text; julianday() reads them (to ~0.1 ms).
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


def _least(*terms: str) -> str:
    return f"{'LEAST' if connection.vendor == 'postgresql' else 'MIN'}({', '.join(terms)})"


def _greatest(*terms: str) -> str:
    return f"{'GREATEST' if connection.vendor == 'postgresql' else 'MAX'}({', '.join(terms)})"


def _adapt(moment: datetime):
    return connection.ops.adapt_datetimefield_value(moment)


def _values_cte(utc_by_tz: dict[str, list[Interval]], *, seconds: bool = True) -> tuple[str, list]:
    """The buckets as a table k(tz, idx, ks, ke): one row per time zone and bucket,
    their bounds in seconds since 1970 (or as date-times)."""
    rows, params = [], []
    for tz, periods in utc_by_tz.items():
        for idx, (s, e) in enumerate(periods):
            rows.append("(%s, %s, %s, %s)")
            bounds = (s.timestamp(), e.timestamp()) if seconds else (_adapt(s), _adapt(e))
            params += [tz, idx, *bounds]
    return f"k(tz, idx, ks, ke) AS (VALUES {', '.join(rows)})", params


def _subquery(queryset: QuerySet) -> tuple[str, list]:
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    return sql, list(params)


# "end" is a reserved word in SQL.
B_END, R_END = 'b."end"', 'r."end"'

DIMENSION_SQL = {
    "machine": "{t}.machine_id",
    "machine_type": "m.machine_type_id",
    "platform": "m.platform_id",
    "organization": "{t}.organization_id",
}


def _epoch(moment: str) -> str:
    """Seconds since 1970 (UTC) of a date-time expression, as a float."""
    if connection.vendor == "postgresql":
        return f"date_part('epoch', {moment})"
    # julianday() reads SQLite's text date-times to the millisecond, as a float that
    # misses by ~0.05 ms: rounded, an instant on a bucket's edge stays on it.
    return f"ROUND((julianday({moment}) - 2440587.5) * 86400.0, 3)"


def _bookings_sql(
    scope: "_Scope", columns: list[str], *, booked_only: bool = False, extra=()
) -> tuple[str, list]:
    """SELECT `columns` FROM the scope's bookings that may meet its period, and
    `extra` conditions ([(condition, its params)]), as (sql, params of the FROM and WHERE
    clauses: those of `columns` go before them). `b` is the booking, `m` its
    machine and `p` its platform when needed."""
    several_zones = len(scope.utc_by_tz) > 1
    machines_sql, params = _subquery(scope.machines)
    where = [f"b.machine_id IN ({machines_sql})", "b.start < %s", "b.start >= %s"]
    params += [
        _adapt(scope.utc_end + CHECK_IN_OPENS_BEFORE),
        _adapt(scope.utc_start - LOOKBACK),
    ]
    if booked_only:
        where.append(f"b.status IN ({BOOKED_SQL})")
    if scope.organizations is not None:
        orgs_sql, orgs_params = _subquery(scope.organizations)
        where.append(f"b.organization_id IN ({orgs_sql})")
        params += orgs_params
    for condition, condition_params in extra:
        where.append(condition)
        params += condition_params
    joins = ""
    if several_zones or {"machine_type", "platform"} & set(scope.entities):
        joins += " JOIN equipment_machine m ON m.id = b.machine_id"
    if several_zones:
        joins += " JOIN equipment_platform p ON p.id = m.platform_id"
    sql = f"SELECT {', '.join(columns)} FROM booking_booking b{joins} WHERE {' AND '.join(where)}"
    return sql, params


def _per_zone(values: dict[str, object], cast: str = "") -> tuple[str, list]:
    """An expression worth values[tz] in each booking's time zone, and its
    parameters; one zone (every platform of a label, usually) needs no CASE."""
    if len(values) == 1:
        return f"%s{cast}", [next(iter(values.values()))]
    cases = " ".join(f"WHEN %s THEN %s{cast}" for _tz in values)
    return f"(CASE p.timezone {cases} END)", [v for pair in values.items() for v in pair]


def _bounds(scope: "_Scope", convert=lambda moment: moment.timestamp()) -> dict[str, list]:
    """Per time zone, the first instant of each bucket and the end of the last one."""
    return {
        tz: [convert(s) for s, _e in periods] + [convert(periods[-1][1])]
        for tz, periods in scope.utc_by_tz.items()
    }


def _booking_sums(scope: "_Scope", now: datetime) -> tuple[dict[tuple, dict], dict]:
    """The additive figures of bookings per group and bucket, and the quantiles of
    their lead times (as _lead_percentiles() answers them).

    Each booking counts in the bucket of its start; its booked and used time is
    cut to each bucket it meets, its "hull" (from the earlier of start and
    check-in to the later of end and check-out) telling which. The sums over
    bookings paired with buckets compare and subtract seconds since 1970 (floats),
    read once per booking. SQLite pairs each booking with every bucket of its zone
    that it meets. On PostgreSQL, most bookings (shorter than a bucket) lie within
    one: they are summed whole, by the bucket that width_bucket() finds, with no
    pairing or cutting; only the others are paired, by generate_series() from
    their first bucket to their last, in a second query that reads them by id
    (the first one names them) and around the period's edges. The first query
    also gathers each group's lead times and takes their quantiles: the bookings
    are read and sorted once, not a second time by _lead_percentiles()."""
    hull_start = _least("b.start", "COALESCE(b.checked_in_at, b.start)")
    hull_end = _greatest(B_END, f"COALESCE(b.checked_out_at, {B_END})")
    # Under way without a check-out: used until its end or now, whichever first.
    used_until = f"COALESCE(b.checked_out_at, {_least(B_END, '%s')})"
    dims = [f"{DIMENSION_SQL[g].format(t='b')} AS g{i}" for i, g in enumerate(scope.entities)]
    group = [f"g{i}" for i in range(len(scope.entities))]
    columns = [
        *dims,
        f"b.status IN ({BOOKED_SQL}) AS booked",
        "b.status = 'no_show' AS no_show",
        "(b.status IN ('completed', 'no_show') OR (b.status = 'confirmed' "
        "AND b.checked_in_at IS NOT NULL)) AS outcome",
        "b.status = 'cancelled' AS cancelled",
        "(b.status = 'cancelled' AND b.late_cancellation) AS late",
        f"{_epoch('b.start')} AS s",
        f"{_epoch(B_END)} AS e",
        f"{_epoch('b.checked_in_at')} AS ci",
        f"{_epoch(used_until)} AS co",
        f"{_epoch('b.start')} - {_epoch('b.created_at')} AS lead",
    ]
    columns_params = [_adapt(now)]
    b0, b1, b2 = (d * 86400 for d in LEAD_BOUNDS_DAYS)

    def cut(ks: str, ke: str) -> list[str]:
        """The sums (BOOKING_SUMS) over bookings paired with a bucket [ks, ke)."""
        starts = f"x.s >= {ks} AND x.s < {ke}"
        return [
            f"SUM({_least('x.e', ke)} - {_greatest('x.s', ks)}) "
            f"FILTER (WHERE x.booked AND x.s < {ke} AND x.e > {ks})",
            f"SUM({_least('x.co', ke)} - {_greatest('x.ci', ks)}) "
            f"FILTER (WHERE x.ci IS NOT NULL AND x.ci < {ke} AND x.co > {ks} AND x.co > x.ci)",
            f"COUNT(*) FILTER (WHERE x.booked AND {starts})",
            f"COUNT(*) FILTER (WHERE x.no_show AND {starts})",
            f"COUNT(*) FILTER (WHERE x.outcome AND {starts})",
            f"COUNT(*) FILTER (WHERE x.cancelled AND {starts})",
            f"COUNT(*) FILTER (WHERE x.late AND {starts})",
            f"SUM(x.lead) FILTER (WHERE x.booked AND {starts})",
            f"COUNT(*) FILTER (WHERE x.booked AND {starts} AND x.lead < {b0})",
            f"COUNT(*) FILTER (WHERE x.booked AND {starts} AND x.lead >= {b0} AND x.lead < {b1})",
            f"COUNT(*) FILTER (WHERE x.booked AND {starts} AND x.lead >= {b1} AND x.lead < {b2})",
            f"COUNT(*) FILTER (WHERE x.booked AND {starts} AND x.lead >= {b2})",
        ]

    if connection.vendor != "postgresql":
        zone, zone_params = _per_zone({tz: tz for tz in scope.utc_by_tz})
        inner, inner_params = _bookings_sql(
            scope,
            [*columns, f"{zone} AS tz", f"{_epoch(hull_start)} AS hs", f"{_epoch(hull_end)} AS he"],
        )
        cte, cte_params = _values_cte(scope.utc_by_tz)
        keys = ", ".join([*(f"x.{g}" for g in group), "k.idx"])
        sql = (
            f"WITH {cte} SELECT {keys}, {', '.join(cut('k.ks', 'k.ke'))}"
            f" FROM ({inner}) x JOIN k ON k.tz = x.tz AND k.ks < x.he AND k.ke > x.hs"
            f" GROUP BY {keys}"
        )
        params = [*cte_params, *columns_params, *zone_params, *inner_params]
        return _summed(sql, params, group), _lead_percentiles(scope)

    # PostgreSQL. First every booking starting in the period, summed whole in the
    # bucket of its start: all the counts are right, and so are the hours of the
    # bookings that stay within that bucket (most of them). Then, for the others
    # (their hull crosses a bucket's bound), the hours cut to each bucket of the
    # period they meet, minus what the first part put in the bucket of their start.
    # width_bucket(): 0 before the first bound, i within the i-th bucket.
    stamps, stamps_params = _per_zone(_bounds(scope, lambda moment: moment), "::timestamptz[]")
    seconds, seconds_params = _per_zone(_bounds(scope), "::float8[]")
    count = len(scope.periods)
    first = f"width_bucket({hull_start}, {stamps})"
    last = f"width_bucket({hull_end} - interval '1 microsecond', {stamps})"
    # Each booking's figures worked out once, in a subquery that OFFSET 0 keeps
    # whole: PostgreSQL would otherwise copy every expression into each aggregate
    # that names it, and evaluate it there again (a year's sums took three times
    # as long, more than parallel workers win back).
    per_booking, per_booking_params = _bookings_sql(
        scope,
        [
            *dims,
            f"width_bucket(b.start, {stamps}) - 1 AS idx",
            "b.status AS st",
            f"b.status IN ({BOOKED_SQL}) AS booked",
            f"{B_END} - b.start AS dur",
            f"{used_until} - b.checked_in_at AS used",
            "b.checked_in_at IS NOT NULL AS checked_in",
            "b.late_cancellation AS late",
            "b.start - b.created_at AS lead",
            # Its hull meets another bucket: the second query cuts it.
            f"{first} <> {last} AS crosses",
            "b.id",
        ],
        # Plain bounds on the start (the planner can estimate them): a zone whose
        # period starts later or ends earlier gets buckets out of range, left out below.
        extra=[
            ("b.start >= %s AND b.start < %s", [_adapt(scope.utc_start), _adapt(scope.utc_end)])
        ],
    )
    d0, d1, d2 = (f"interval '{d} days'" for d in LEAD_BOUNDS_DAYS)
    whole = [
        "date_part('epoch', SUM(y.dur) FILTER (WHERE y.booked))",
        "date_part('epoch', SUM(y.used) FILTER (WHERE y.used > interval '0'))",
        "COUNT(*) FILTER (WHERE y.booked)",
        "COUNT(*) FILTER (WHERE y.st = 'no_show')",
        "COUNT(*) FILTER (WHERE y.st IN ('completed', 'no_show') "
        "OR (y.st = 'confirmed' AND y.checked_in))",
        "COUNT(*) FILTER (WHERE y.st = 'cancelled')",
        "COUNT(*) FILTER (WHERE y.st = 'cancelled' AND y.late)",
        "date_part('epoch', SUM(y.lead) FILTER (WHERE y.booked))",
        # Counted below each bound (one comparison a booking), told apart in Python.
        f"COUNT(*) FILTER (WHERE y.booked AND y.lead < {d0})",
        f"COUNT(*) FILTER (WHERE y.booked AND y.lead < {d1})",
        f"COUNT(*) FILTER (WHERE y.booked AND y.lead < {d2})",
        "NULL",
    ]
    started_keys = ", ".join([*(f"y.{g}" for g in group), "y.idx"])
    summed_keys = ", ".join([*group, "idx"])
    whole_sql = ", ".join(f"{sql} AS v{n}" for n, sql in enumerate(whole))
    summed_sums = ", ".join(f"v{n}" for n in range(len(whole)))
    # Lead times' quantiles, as percentile_cont() takes them (LEAD_QUANTILES): of each
    # group's bookings, and of every group of the period (the same for every row).
    quantiles = f"percentile_cont(ARRAY[{', '.join(str(q) for q in LEAD_QUANTILES)}])"
    started = (
        f"WITH s AS MATERIALIZED (SELECT {started_keys}, {whole_sql},"
        " array_agg(y.id) FILTER (WHERE y.crosses) AS crossing,"
        " array_agg(date_part('epoch', y.lead)) FILTER (WHERE y.booked) AS leads"
        f" FROM ({per_booking} OFFSET 0) y GROUP BY {started_keys})"
        f" SELECT {summed_keys}, {summed_sums}, crossing,"
        f" (SELECT {quantiles} WITHIN GROUP (ORDER BY lead) FROM unnest(s.leads) lead),"
        f" (SELECT {quantiles} WITHIN GROUP (ORDER BY lead) FROM s, unnest(s.leads) lead"
        f" WHERE s.idx >= 0 AND s.idx < {count})"
        " FROM s"
    )
    started_params = [
        *stamps_params,
        _adapt(now),
        *stamps_params,
        *stamps_params,
        *per_booking_params,
    ]
    crossing_ids: list[int] = []
    lead_quantiles: dict = {}

    def crossing_and_quantiles(key: tuple, crossing, of_group, of_every_group) -> None:
        crossing_ids.extend(crossing or ())
        lead_quantiles[key] = of_group
        lead_quantiles[TOTAL] = of_every_group

    found = _summed(started, started_params, group, extra=crossing_and_quantiles)

    # The bookings that cross a bucket's bound: those the first query named, and
    # those that started before the period (or start just after it, checked in
    # early) and meet it. Both read through indexes: scanning a year of bookings
    # again to find the few that cross took a third of the first query's time.
    crossing, crossing_params = _bookings_sql(
        scope,
        [
            *columns,
            f"{seconds} AS bounds",
            f"GREATEST({first} - 1, 0) AS fb",
            f"LEAST({last} - 1, {count - 1}) AS lb",
        ],
        extra=[
            (
                "(b.id = ANY(%s::bigint[]) OR b.start < %s OR b.start >= %s)",
                [crossing_ids, _adapt(scope.utc_start), _adapt(scope.utc_end)],
            ),
            (f"{first} <> {last}", [*stamps_params, *stamps_params]),
        ],
    )
    crossing_params = [
        *columns_params,
        *seconds_params,
        *stamps_params,
        *stamps_params,
        *crossing_params,
    ]
    ks, ke = "x.bounds[x.idx + 1]", "x.bounds[x.idx + 2]"
    starts = f"x.s >= {ks} AND x.s < {ke}"
    cut_sums = cut(ks, ke)
    corrections = [
        f"COALESCE({cut_sums[0]}, 0) - COALESCE(SUM(x.e - x.s) FILTER (WHERE x.booked AND "
        f"{starts}), 0)",
        f"COALESCE({cut_sums[1]}, 0) - COALESCE(SUM(x.co - x.ci) FILTER (WHERE "
        f"x.ci IS NOT NULL AND x.co > x.ci AND {starts}), 0)",
        *(["0"] * (len(BOOKING_SUMS) - 2)),
    ]
    keys = ", ".join([*group, "idx"])
    sql = (
        f"SELECT {keys}, {', '.join(corrections)}"
        f" FROM (SELECT y.*, generate_series(y.fb, y.lb) AS idx FROM ({crossing}) y) x"
        f" GROUP BY {keys}"
    )
    _summed(sql, crossing_params, group, into=found)
    for sums in found.values():  # cumulative lead-time counts, and the last one
        below_1, below_2, below_3 = sums["lead_0"], sums["lead_1"], sums["lead_2"]
        sums["lead_1"], sums["lead_2"] = below_2 - below_1, below_3 - below_2
        sums["lead_3"] = sums["bookings"] - below_3
    in_period = {key: sums for key, sums in found.items() if 0 <= key[-1] < count}
    return in_period, lead_quantiles


# The figures _booking_sums() answers, in the order of its sums.
BOOKING_SUMS = [
    "booked_s",
    "used_s",
    "bookings",
    "no_shows",
    "outcomes",
    "cancellations",
    "late_cancellations",
    "lead_s",
    "lead_0",
    "lead_1",
    "lead_2",
    "lead_3",
]


def _summed(
    sql: str, params: list, group: list[str], *, into: dict | None = None, extra=None
) -> dict[tuple, dict]:
    """{(group values..., bucket): {BOOKING_SUMS}}, adding rows with the same key
    (to those of `into`, if given). `extra`: called with each row's key and the
    columns the query answers after the sums."""
    found: dict[tuple, dict] = {} if into is None else into
    width = len(group) + 1
    end = width + len(BOOKING_SUMS)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            key, figures = tuple(row[:width]), [float(value or 0) for value in row[width:end]]
            if extra is not None:
                extra(key, *row[end:])
            if key not in found:  # the usual case: one row a key
                found[key] = dict(zip(BOOKING_SUMS, figures, strict=True))
                continue
            sums = found[key]
            for name, value in zip(BOOKING_SUMS, figures, strict=True):
                sums[name] += value
    return found


# Lead-time percentiles: non-additive, so computed per row and over the whole table.
LEAD_QUANTILES = (0.5, 0.9)
TOTAL = "total"


def _lead_percentiles(scope: "_Scope") -> dict:
    """One query: the quantiles LEAD_QUANTILES of the lead time, in seconds, of the
    bookings per group and bucket of their start, and of all of them (key TOTAL).
    Continuous, as percentile_cont: between the two nearest bookings, interpolated.
    SQLite only: on PostgreSQL, _booking_sums() takes them with percentile_cont()."""
    dims = [f"{DIMENSION_SQL[g].format(t='b')} AS g{i}" for i, g in enumerate(scope.entities)]
    names = [f"g{i}" for i in range(len(scope.entities))]
    keys = ", ".join([*names, "idx"])
    lead = f"{_epoch('b.start')} - {_epoch('b.created_at')} AS lead"
    # Portable: rank the leads of each group (window functions), then weigh the
    # two ranks around each quantile's position as percentile_cont does.
    cte, cte_params = _values_cte(scope.utc_by_tz)
    zone, zone_params = _per_zone({tz: tz for tz in scope.utc_by_tz})
    inner, inner_params = _bookings_sql(
        scope, [*dims, lead, f"{_epoch('b.start')} AS s", f"{zone} AS tz"], booked_only=True
    )
    weighted = []
    for q in LEAD_QUANTILES:
        position = f"({q} * top)"
        low = f"CAST({position} AS INTEGER)"
        weighted.append(
            f"SUM(CASE WHEN rn = {low} THEN lead * (1 - ({position} - {low})) "
            f"WHEN rn = {low} + 1 THEN lead * ({position} - {low}) ELSE 0 END)"
        )
    every = ", ".join(["1", *(["NULL"] * len(names)), "NULL", "lead"])
    within = f"PARTITION BY total, {keys}"
    sql = (
        f"WITH {cte}, l AS (SELECT {', '.join([*('x.' + n for n in names), 'k.idx', 'x.lead'])}"
        f" FROM ({inner}) x JOIN k ON k.tz = x.tz AND x.s >= k.ks AND x.s < k.ke),"
        f" w AS (SELECT 0 AS total, {keys}, lead FROM l UNION ALL SELECT {every} FROM l),"
        f" r AS (SELECT w.*, ROW_NUMBER() OVER ({within} ORDER BY lead) - 1 AS rn,"
        f" COUNT(*) OVER ({within}) - 1 AS top FROM w)"
        f" SELECT total, {keys}, {', '.join(weighted)} FROM r GROUP BY total, {keys}"
    )
    params = [*cte_params, *zone_params, *inner_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    width = len(names) + 2
    return {TOTAL if row[0] else tuple(row[1:width]): list(row[width:]) for row in rows}


@contextmanager
def _tuned():
    """For the queries over bookings, on PostgreSQL, in a transaction of their own
    (REPEATABLE READ: they read one snapshot), with:
    - no JIT: the planner overestimates the rows of generate_series() and would
      spend ~60 ms compiling a query that runs in less;
    - the memory to sort a year of bookings without writing them to disk, and eight
      times that for hash tables: the planner reckons 8 kB for each group's
      array_agg() of crossing bookings (most hold none) and as much for its lead
      times (a few dozen), and would otherwise sort a year's bookings rather than
      hash them (a third slower);
    - parallel workers, which the planner thinks too costly to start for a table
      of 100,000 bookings, though they cut a year's table by a third on two cores
      (bench/utilisation.py)."""
    if connection.vendor != "postgresql":
        yield
        return
    outermost = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if outermost:
            # One snapshot for every query within: the crossing bookings' query takes
            # back what the sums' query counted of them, so both must see the same
            # bookings even if one changes in between. (A caller's transaction keeps
            # its own isolation: this must be a transaction's first statement.)
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute(
            "SELECT set_config('jit', 'off', true), set_config('work_mem', '32MB', true),"
            " set_config('hash_mem_multiplier', '8', true),"
            " set_config('parallel_setup_cost', '10', true),"
            " set_config('parallel_tuple_cost', '0.001', true)"
        )
        yield


def _refusal_sums(scope: "_Scope") -> dict[tuple, dict]:
    """One query: refused demand per group and bucket of the requested start."""
    dims = [DIMENSION_SQL[g].format(t="r") for g in scope.entities]
    sums = [  # REFUSAL_SUMS, in its order
        "CASE WHEN r.kind = 'conflict' THEN 1 ELSE 0 END",
        "CASE WHEN r.kind = 'rules' THEN 1 ELSE 0 END",
        "CASE WHEN r.kind = 'rejected' THEN 1 ELSE 0 END",
        f"CASE WHEN {R_END} > r.start THEN {_sql_seconds(R_END, 'r.start')} ELSE 0 END",
    ]
    machines_sql, machines_params = _subquery(scope.machines)
    where = [f"r.machine_id IN ({machines_sql})", "r.start >= %s", "r.start < %s"]
    where_params = [*machines_params, _adapt(scope.utc_start), _adapt(scope.utc_end)]
    if scope.organizations is not None:
        orgs_sql, orgs_params = _subquery(scope.organizations)
        where.append(f"r.organization_id IN ({orgs_sql})")
        where_params += orgs_params
    joins = (
        " FROM booking_refusedrequest r JOIN equipment_machine m ON m.id = r.machine_id"
        " JOIN equipment_platform p ON p.id = m.platform_id"
    )
    summed = ", ".join(f"SUM({expression})" for expression in sums)
    width = len(dims) + 1
    if connection.vendor == "postgresql":
        # The bucket of each request's start found by width_bucket(), as for bookings,
        # rather than by joining a table of buckets (a third of the time, planning included).
        stamps, params = _per_zone(_bounds(scope, lambda moment: moment), "::timestamptz[]")
        group = ", ".join([*dims, f"width_bucket(r.start, {stamps}) - 1"])
        positions = ", ".join(str(n) for n in range(1, width + 1))  # the params once
        sql = f"SELECT {group}, {summed}{joins} WHERE {' AND '.join(where)} GROUP BY {positions}"
    else:
        cte, params = _values_cte(scope.utc_by_tz, seconds=False)
        group = ", ".join([*dims, "k.idx"])
        sql = (
            f"WITH {cte} SELECT {group}, {summed}{joins}"
            " JOIN k ON k.tz = p.timezone AND r.start >= k.ks AND r.start < k.ke"
            f" WHERE {' AND '.join(where)} GROUP BY {group}"
        )
    count = len(scope.periods)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *where_params])
        return {
            tuple(row[:width]): {
                name: float(value or 0)
                for name, value in zip(REFUSAL_SUMS, row[width:], strict=True)
            }
            for row in cursor.fetchall()
            # A zone whose period starts later or ends earlier: out of its buckets.
            if 0 <= row[width - 1] < count
        }


# --- The table ------------------------------------------------------------------------------


@dataclass
class _Scope:
    platforms: list
    machines: QuerySet
    organizations: QuerySet | None
    entities: list[str]
    unit: str | None
    periods: list[tuple[date, date]]
    utc_by_tz: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)

    def __post_init__(self):
        for tz in {p.timezone for p in self.platforms}:
            self.utc_by_tz[tz] = _utc_buckets(self.periods, ZoneInfo(tz))
        everything = [t for per_tz in self.utc_by_tz.values() for t in per_tz] or [
            (datetime(2000, 1, 1, tzinfo=UTC),) * 2
        ]
        self.utc_start = min(s for s, _e in everything)
        self.utc_end = max(e for _s, e in everything)


@dataclass
class Table:
    """`columns` in order; `rows` as dicts of them; `totals` the same metrics over
    every row (its group columns empty)."""

    group_by: list[str]
    columns: list[str]
    rows: list[dict]
    totals: dict


# The figures _refusal_sums() answers, in the order of its sums.
REFUSAL_SUMS = ["refused_conflicts", "refused_rules", "rejected_by_manager", "refused_s"]


# Rounded half away from zero, as an accountant rounds, and by hand: round(x, n)
# rounds the nearest binary float (94.535 h would become 94.53) and costs ~0.4 µs,
# and a year's table of machines × months rounds 60,000 figures (bench/utilisation.py).
# One division each, of a whole numerator: exact on whole seconds and counts
# (tests/booking/test_analytics.py).
def _ratio(part: float, whole: float) -> float | None:
    """part / whole (both >= 0) to 4 decimals; None when there is no whole."""
    return floor(part * 10000 / whole + 0.5) / 10000 if whole else None


def _hours(seconds: float) -> float:
    """Seconds as hours, to 2 decimals (a booking made after its start has a
    negative lead time)."""
    hundredths = floor(abs(seconds) / 36 + 0.5)
    return (hundredths if seconds >= 0 else -hundredths) / 100


CENT = Decimal("0.01")


def _metrics(
    sums: dict, refused: dict, available: float, period_booked_s: float, revenue, lead_quantiles
) -> dict:
    """The published metrics of one row, from its additive figures (`sums`: BOOKING_SUMS,
    `refused`: REFUSAL_SUMS, `available` seconds) and its lead time's quantiles in
    seconds (LEAD_QUANTILES; none without bookings). Given its figures as they come:
    a year's table has thousands of rows (bench/utilisation.py)."""
    p50, p90 = lead_quantiles or (None, None)
    booked, used = sums["booked_s"], sums["used_s"]
    bookings, cancellations = sums["bookings"], sums["cancellations"]
    outcomes, no_shows, late = sums["outcomes"], sums["no_shows"], sums["late_cancellations"]
    return {
        "available_hours": _hours(available),
        "booked_hours": _hours(booked),
        "used_hours": _hours(used),
        "utilisation_booked": _ratio(booked, available),
        "utilisation_used": _ratio(used, available),
        "share_of_booked_hours": _ratio(booked, period_booked_s),
        "bookings": int(bookings),
        "no_shows": int(no_shows),
        "no_show_rate": _ratio(no_shows, outcomes),
        "cancellations": int(cancellations),
        "late_cancellations": int(late),
        "late_cancellation_rate": _ratio(late, bookings + cancellations),
        "lead_time_avg_hours": _hours(sums["lead_s"] / bookings) if bookings else None,
        "lead_time_p50_hours": None if p50 is None else _hours(p50),
        "lead_time_p90_hours": None if p90 is None else _hours(p90),
        "lead_time_under_1d": int(sums["lead_0"]),
        "lead_time_1d_to_7d": int(sums["lead_1"]),
        "lead_time_7d_to_30d": int(sums["lead_2"]),
        "lead_time_30d_or_more": int(sums["lead_3"]),
        "refused_conflicts": int(refused["refused_conflicts"]),
        "refused_rules": int(refused["refused_rules"]),
        "rejected_by_manager": int(refused["rejected_by_manager"]),
        "refused_hours": _hours(refused["refused_s"]),
        # Money as text with its cents, in JSON as in CSV (never a binary float).
        "revenue": None if revenue is None else str(revenue.quantize(CENT)),
    }


def utilisation(
    *,
    platforms: Sequence,
    machines: QuerySet,
    start: date,
    end: date,
    group_by: Sequence[str] = (),
    organizations: QuerySet | None = None,
    now: datetime | None = None,
) -> Table:
    """The utilisation table of `machines` (a Machine queryset, already narrowed to
    `platforms` and to what the caller may see) over the local days [start, end),
    grouped by at most one entity of ENTITY_GROUPS and one unit of TIME_GROUPS.
    `organizations`: count only these organizations' bookings and requests.

    Queries: machines, machine types or platforms' names, opening hours with closures,
    maintenance, bookings with their lead times (on PostgreSQL, a second query for those
    crossing a bucket's bound; on SQLite, one for lead times), refused requests, revenue
    (and organizations' names):
    the same number whatever the number of machines or bookings."""
    now = now or timezone.now()
    group_by = list(group_by)
    entities = [g for g in group_by if g in ENTITY_GROUPS]
    units = [g for g in group_by if g in TIME_GROUPS]
    if len(entities) > 1 or len(units) > 1 or len(entities) + len(units) != len(group_by):
        raise ValueError(f"Group by one entity and one time unit at most: {group_by}")
    unit = units[0] if units else None
    periods = buckets(start, end, unit)
    scope = _Scope(list(platforms), machines, organizations, entities, unit, periods)
    machine_rows = list(
        machines.order_by("platform_id", "name", "pk").values(
            "id", "name", "platform_id", "machine_type_id", "is_active"
        )
    )
    if not platforms or not periods:
        return _assemble(scope, machine_rows, {}, {}, {}, {}, None)

    capacity = _Capacity.load(scope.platforms, machines.values("pk"), periods, scope.utc_by_tz)
    entity = entities[0] if entities else None
    # Available seconds by (entity value, bucket); organizations share the capacity.
    available: dict[tuple, float] = defaultdict(float)
    for machine in machine_rows:
        value = {
            "machine": machine["id"],
            "machine_type": machine["machine_type_id"],
            "platform": machine["platform_id"],
        }.get(entity)
        for idx, seconds in enumerate(capacity.seconds(machine)):
            available[(value, idx)] += seconds

    with _tuned():
        booking_sums, lead_quantiles = _booking_sums(scope, now)
    refusal_sums = _refusal_sums(scope)
    revenue = None
    if _revenue_source is not None:
        revenue = _revenue_source(
            machines=machines, organizations=organizations, periods=periods, group_by=group_by
        )
    return _assemble(
        scope, machine_rows, available, booking_sums, refusal_sums, lead_quantiles, revenue
    )


def _assemble(
    scope, machine_rows, available, booking_sums, refusal_sums, lead_quantiles, revenue
) -> Table:
    entity = scope.entities[0] if scope.entities else None
    # The rows: every machine, type or platform counted (even idle), every
    # organization with activity (or that the view is restricted to), every period.
    names: dict = {}
    if entity == "machine":
        names = {m["id"]: m["name"] for m in machine_rows}
    elif entity == "machine_type":
        ids = {m["machine_type_id"] for m in machine_rows}
        names = dict(
            MachineType.objects.filter(pk__in=ids).order_by("name").values_list("pk", "name")
        )
    elif entity == "platform":
        names = {p.pk: p.name for p in sorted(scope.platforms, key=lambda p: (p.name, p.pk))}
    elif entity == "organization":
        ids = {k[0] for k in booking_sums} | {k[0] for k in refusal_sums}
        if scope.organizations is not None:
            ids |= set(scope.organizations.values_list("pk", flat=True))
        names = dict(
            Organization.objects.filter(pk__in=ids - {None})
            .order_by("legal_name", "pk")
            .values_list("pk", "legal_name")
        )
        if None in ids:  # refusals of requests made for no organization
            names[None] = ""
    values = list(names) if entity else [None]
    columns = [
        *(GROUP_COLUMNS[entity] if entity else []),
        *(GROUP_COLUMNS["time"] if scope.unit else []),
        *METRIC_COLUMNS,
    ]

    no_bookings = dict.fromkeys(BOOKING_SUMS, 0.0)
    no_refusals = dict.fromkeys(REFUSAL_SUMS, 0.0)
    capacity_of_entity = entity != "organization"  # organizations share the capacity

    # By period, then by entity: what a chart over time reads. Each cell's figures:
    # (booking sums, refusal sums, available seconds, its key in the queries' answers).
    cells = []
    for idx in range(len(scope.periods)):
        for value in values:
            key = (value, idx) if entity else (idx,)
            cells.append(
                (
                    value,
                    idx,
                    booking_sums.get(key, no_bookings),
                    refusal_sums.get(key, no_refusals),
                    available.get((value if capacity_of_entity else None, idx), 0.0),
                    key,
                )
            )
    booked_by_period = [0.0] * len(scope.periods)
    for _value, idx, sums, *_rest in cells:
        booked_by_period[idx] += sums["booked_s"]
    bounds = [(first.isoformat(), following.isoformat()) for first, following in scope.periods]
    no_revenue = None if revenue is None else Decimal(0)
    rows = []
    for value, idx, sums, refused, available_s, key in cells:
        row = {}
        if entity:
            row[entity] = value
            row[f"{entity}_name"] = names[value]
        if scope.unit:
            row["period_start"], row["period_end"] = bounds[idx]
        money = None
        if revenue is not None:  # keyed by the groupings asked for
            money = revenue.get(
                (*([value] if entity else []), *([idx] if scope.unit else [])), no_revenue
            )
        row.update(
            _metrics(
                sums, refused, available_s, booked_by_period[idx], money, lead_quantiles.get(key)
            )
        )
        rows.append(row)

    every_sums = [sums for _value, _idx, sums, *_rest in cells]
    every_refused = [refused for _value, _idx, _sums, refused, *_rest in cells]
    total = {name: sum(map(itemgetter(name), every_sums)) for name in BOOKING_SUMS}
    total_refused = {name: sum(map(itemgetter(name), every_refused)) for name in REFUSAL_SUMS}
    total_revenue = sum(revenue.values(), Decimal(0)) if revenue is not None else None
    totals = _metrics(
        total,
        total_refused,
        sum(available.values()),  # organizations' rows share it
        total["booked_s"],
        total_revenue,
        lead_quantiles.get(TOTAL),
    )
    return Table(list(scope.entities) + ([scope.unit] if scope.unit else []), columns, rows, totals)


# --- Peak hours: a week × hour heatmap -------------------------------------------------------
# Each local hour of the period falls in a cell (weekday, hour) of the platform's
# week; a cell sums the booked and the available seconds of all its hours. Local
# time is UTC plus the zone's offset, which is constant between two changes of the
# clocks: the period is cut there (_offsets), and within each piece an instant's
# local hour is its shifted seconds since 1970 divided by 3600, whatever the offset
# (a half-hour zone's hours start at half past, UTC). On the Sunday the clocks go
# forward, its 02:00 cell gets nothing; when they go back, it gets two hours.

WEEK_HOURS = 7 * 24
# 1 January 1970, where the seconds start, was a Thursday: the local hour n since
# then falls in cell (n + 3 × 24) mod 168, that is weekday × 24 + hour (Monday 0).
THURSDAY_HOURS = 3 * 24
HEATMAP_COLUMNS = ["weekday", "hour", "booked_hours", "available_hours", "occupancy"]


@dataclass
class Heatmap:
    """`rows`: one per cell, Monday 00:00 first (weekday 0 is Monday; hours are
    the platform's local hours); `totals`: the same figures over the whole week."""

    columns: list[str]
    rows: list[dict]
    totals: dict


def _offsets(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, datetime, int]]:
    """[start, end) cut where `tz`'s UTC offset changes: (from, to, offset in seconds).
    The clocks change at most a few times a year, never twice in a day."""

    def offset(moment: datetime) -> int:
        return int(moment.astimezone(tz).utcoffset().total_seconds())

    found, since, current = [], start, offset(start)
    probe = start
    while probe < end:
        following = min(probe + timedelta(days=1), end)
        if offset(following) != current:
            # The change happens in (probe, following]: find its second.
            low, high = int(probe.timestamp()), int(following.timestamp())
            while high - low > 1:
                middle = (low + high) // 2
                if offset(datetime.fromtimestamp(middle, UTC)) == current:
                    low = middle
                else:
                    high = middle
            change = datetime.fromtimestamp(high, UTC)
            found.append((since, change, current))
            since, current = change, offset(change)
        probe = following
    if since < end:
        found.append((since, end, current))
    return found


def _cells(intervals: Iterable[Interval], offsets) -> list[float]:
    """Seconds of `intervals` (UTC) in each cell of the local week (as the SQL in
    _booked_cells() cuts bookings)."""
    cells = [0.0] * WEEK_HOURS
    for start, end in intervals:
        for since, until, offset in offsets:
            if start >= until or end <= since:
                continue
            low = max(start, since).timestamp() + offset
            high = min(end, until).timestamp() + offset
            hour = int(low // 3600)
            while hour * 3600 < high:
                piece = min(high, (hour + 1) * 3600) - max(low, hour * 3600)
                cells[(hour + THURSDAY_HOURS) % WEEK_HOURS] += piece
                hour += 1
    return cells


def _booked_cells(scope: "_Scope", offsets) -> list[float]:
    """One query: the booked seconds (as booked_hours counts them) of the scope's
    bookings in each cell of the local week, without expanding a booking into its
    hours. Cut at the changes of the clocks and shifted to local seconds u (counted
    from a Monday 00:00), a piece [u1, u2) of a booking puts G_c(u2) - G_c(u1) in
    cell c, where G_c(u) = 3600 × (weeks before u) + the part of hour c of u's week
    before u: 3600 if u's hour (of the week) is after c, u's seconds into that hour
    if it is c, 0 before. So the query only sums, per pair (hour of u1, hour of
    u2): the pieces, their seconds into those hours and the weeks they span; the
    cells are added up from those here."""
    rows, params = [], []
    for since, until, offset in offsets:
        rows.append("(%s, %s, %s)")
        # Monday 5 January 1970 00:00, local, is where u counts from.
        params += [_adapt(since), _adapt(until), offset - 4 * 86400]
    zones = f"z(zs, ze, off) AS (VALUES {', '.join(rows)})"
    inner, inner_params = _bookings_sql(
        scope,
        ["b.start AS s", f"{B_END} AS e"],
        booked_only=True,
        extra=[(f"{B_END} > %s", [_adapt(scope.utc_start)])],
    )
    week = 7 * 86400
    floor = "floor({})" if connection.vendor == "postgresql" else "CAST({} AS INTEGER)"
    sql = (
        f"WITH {zones} SELECT h1, h2, COUNT(*), SUM(r1 - 3600 * h1), SUM(r2 - 3600 * h2),"
        " SUM(w2 - w1) FROM ("
        f" SELECT w1, w2, r1, r2, {floor.format('r1 / 3600')} AS h1,"
        f" {floor.format('r2 / 3600')} AS h2 FROM ("
        f" SELECT w1, w2, u1 - {week} * w1 AS r1, u2 - {week} * w2 AS r2 FROM ("
        f" SELECT u1, u2, {floor.format(f'u1 / {week}')} AS w1,"
        f" {floor.format(f'u2 / {week}')} AS w2 FROM ("
        f" SELECT {_epoch(_greatest('x.s', 'z.zs'))} + z.off AS u1,"
        f" {_epoch(_least('x.e', 'z.ze'))} + z.off AS u2"
        f" FROM ({inner}) x JOIN z ON x.s < z.ze AND x.e > z.zs) p) q) r) t"
        " GROUP BY h1, h2"
    )
    everywhere = 0.0
    ends_after = [0.0] * (WEEK_HOURS + 1)  # by hour of the week: pieces ending after it…
    starts_after = [0.0] * (WEEK_HOURS + 1)  # …and starting after it, times 3600
    cells = [0.0] * WEEK_HOURS
    with _tuned(), connection.cursor() as cursor:
        cursor.execute(sql, [*params, *inner_params])
        for h1, h2, count, into_1, into_2, weeks in cursor.fetchall():
            h1, h2 = int(h1), int(h2)
            everywhere += 3600 * float(weeks)
            ends_after[h2] += 3600 * count
            starts_after[h1] += 3600 * count
            cells[h2] += float(into_2)
            cells[h1] -= float(into_1)
    later_ends = later_starts = 0.0
    for cell in range(WEEK_HOURS - 1, -1, -1):
        cells[cell] += everywhere + later_ends - later_starts
        later_ends += ends_after[cell]
        later_starts += starts_after[cell]
    return cells


def peak_hours(
    *,
    platform: Platform,
    machines: QuerySet,
    start: date,
    end: date,
    organizations: QuerySet | None = None,
) -> Heatmap:
    """The week × hour heatmap of `machines` (a Machine queryset of `platform`,
    already narrowed to what the caller may see) over the local days [start, end):
    in each cell, the booked hours (as booked_hours: pending, confirmed, completed
    and no-show bookings, cut to the cell), the available hours (as
    available_hours) and occupancy = booked / available (null without available
    hours). `organizations`: count only these organizations' bookings.

    Queries: machines, opening hours with closures, maintenance, bookings: the same
    number whatever the number of machines or bookings."""
    scope = _Scope([platform], machines, organizations, [], None, [(start, end)])
    period = scope.utc_by_tz[platform.timezone][0]
    offsets = _offsets(platform.tzinfo, *period)
    machine_rows = list(machines.values("id", "platform_id", "is_active"))
    capacity = _Capacity.load([platform], machines.values("pk"), scope.periods, scope.utc_by_tz)
    plain = _cells(capacity.open[platform.pk][0], offsets)
    available = [0.0] * WEEK_HOURS
    for machine in machine_rows:
        if not machine["is_active"]:
            continue
        closed = _cells(
            ((s, e) for _idx, s, e in capacity.closed_for_maintenance(machine)), offsets
        )
        for cell in range(WEEK_HOURS):
            available[cell] += plain[cell] - closed[cell]
    booked = _booked_cells(scope, offsets)

    def figures(booked_s: float, available_s: float) -> dict:
        return {
            "booked_hours": _hours(booked_s),
            "available_hours": _hours(available_s),
            "occupancy": _ratio(booked_s, available_s),
        }

    rows = [
        {"weekday": cell // 24, "hour": cell % 24, **figures(booked[cell], available[cell])}
        for cell in range(WEEK_HOURS)
    ]
    return Heatmap(list(HEATMAP_COLUMNS), rows, figures(sum(booked), sum(available)))


# --- Who sees what -------------------------------------------------------------------------
# Platform staff (manager, operator, accountant) run, staff and bill the machines:
# they see their platform's whole table. An SME admin sees its organizations'
# usage of the platform's bookable machines, and never another SME's. A label's
# programme view aggregates the label's platforms for their managers and for
# superusers, never naming or grouping by an SME.


def narrow_machines(machines: QuerySet, *, machine=None, machine_type=None) -> QuerySet:
    """`machines` narrowed to one machine and/or one type (ids or rows), when chosen."""
    if machine is not None:
        machines = machines.filter(pk=getattr(machine, "pk", machine))
    if machine_type is not None:
        machines = machines.filter(machine_type_id=getattr(machine_type, "pk", machine_type))
    return machines


@dataclass(frozen=True)
class Audience:
    machines: QuerySet
    organizations: QuerySet | None  # None: every organization's bookings count
    names_organizations: bool  # whether rows may be grouped or filtered by organization

    def narrowed(
        self, *, machine=None, machine_type=None, organization=None
    ) -> tuple[QuerySet, QuerySet | None]:
        """The machines and organizations a table counts, narrowed to the filters
        chosen (ids or rows); never beyond what this audience may see."""
        machines = narrow_machines(self.machines, machine=machine, machine_type=machine_type)
        organizations = self.organizations
        if organization is not None:
            chosen = Organization.objects.filter(pk=getattr(organization, "pk", organization))
            if organizations is not None:
                chosen = chosen.filter(pk__in=organizations.values("pk"))
            organizations = chosen
        return machines, organizations


def platform_audience(user, platform) -> Audience:
    """What `user` may see of `platform`'s utilisation; Forbidden otherwise
    (the caller has already checked that the platform is visible to them)."""
    if Platform.objects.staffed_by(user).filter(pk=platform.pk).exists():
        return Audience(Machine.objects.filter(platform=platform), None, True)
    administered = Organization.objects.administered_by(user)
    if administered.exists():
        return Audience(
            Machine.objects.visible_to(user).filter(platform=platform),
            Organization.objects.filter(pk__in=administered.values("pk")),
            True,
        )
    raise Forbidden(
        _("Only the platform's staff and SME administrators see its utilisation."),
    )


def label_platforms(user, label) -> list:
    """The platforms of `label` whose utilisation `user` may see aggregated:
    all of them, for superusers and for managers of any of them; Forbidden otherwise."""
    platforms = Platform.objects.filter(labels=label).order_by("name", "pk")
    managed = Platform.objects.staffed_by(user, roles=[PlatformStaff.Role.MANAGER])
    if not user.is_superuser and not platforms.filter(pk__in=managed.values("pk")).exists():
        raise Forbidden(
            _("Only managers of this label's platforms see the label's utilisation."),
        )
    return list(platforms)
