"""Utilisation analytics: every metric defined here, once (the README's
"Utilisation" section says the same in words).

A table has one row per group (machine, machine type, organization or platform,
and/or a local day, week or month) over a period of local days [start, end) in
each platform's time zone. What is summed over bookings is summed in SQL, one
query for bookings and one for refused requests, whatever the number of machines
or bookings; available hours come from opening hours, closures and maintenance
windows, loaded with three queries and combined per machine and period in Python.

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
- lead time: from a booking's creation to its start: average hours, and counts
  under 1 day, 1-7 days, 7-30 days, 30 days and more.
- demand refused: requests refused for a conflict, for broken rules, and pending
  bookings rejected by a manager (booking/refusals.py), by the period of the
  requested start; refused_hours is the time they asked for.
- share_of_booked_hours: the row's booked hours / the booked hours of every row
  of the same period (the whole table's when not grouped by time).
- An organization's row has the available hours of all the machines counted
  (its utilisation is its part of the capacity).
- revenue: from billing, once it registers a source (register_revenue); null
  until then.

Peak hours (peak_hours()): booked hours per local weekday and hour, next to the
available hours of those hours, cut on UTC hours (exact for zones whose offsets
are whole hours, i.e. every European one).
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from booking.models import Booking
from booking.rules import merged_spans
from booking.selectors import _Calendar, _merged, _subtract, _wall_to_utc
from booking.services import CHECK_IN_OPENS_BEFORE
from core.errors import Forbidden
from core.models import Organization
from equipment.models import (
    Closure,
    Machine,
    MachineType,
    MaintenanceWindow,
    OpeningHours,
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
    """`source(machines=QuerySet, organizations=QuerySet | None, buckets=[(tz,
    index, start_utc, end_utc)], group_by=[...])` -> {key tuple: Decimal}."""
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

    open: dict[int, list[list[tuple[datetime, datetime]]]]  # platform -> per bucket
    maintenance: dict[int, list[tuple[datetime, datetime]]]  # machine -> merged
    _plain: dict[int, list[float]] = field(default_factory=dict)

    @classmethod
    def load(cls, platforms, machine_ids: QuerySet, periods, utc_by_tz) -> "_Capacity":
        """Three queries: opening hours, closures, maintenance windows."""
        ids = [p.pk for p in platforms]
        first, last = periods[0][0], periods[-1][1]
        hours = defaultdict(list)
        for row in OpeningHours.objects.filter(platform_id__in=ids):
            hours[row.platform_id].append(row)
        closed = defaultdict(set)
        for closure in Closure.objects.filter(
            platform_id__in=ids, start_date__lt=last, end_date__gte=first
        ):
            day = max(closure.start_date, first)
            while day <= min(closure.end_date, last):
                closed[closure.platform_id].add(day)
                day += timedelta(days=1)
        opened = {}
        for platform in platforms:
            calendar = _Calendar(
                platform.tzinfo, merged_spans(hours[platform.pk]), closed[platform.pk]
            )
            opened[platform.pk] = [
                calendar.open_intervals(s, e) for s, e in utc_by_tz[platform.timezone]
            ]
        everything = [t for per_tz in utc_by_tz.values() for t in per_tz]
        lo, hi = min(s for s, _e in everything), max(e for _s, e in everything)
        windows = defaultdict(list)
        for machine_id, s, e in MaintenanceWindow.objects.filter(
            machine_id__in=machine_ids, start__lt=hi, end__gt=lo
        ).values_list("machine_id", "start", "end"):
            windows[machine_id].append((s, e))
        return cls(opened, {pk: _merged(v) for pk, v in windows.items()})

    def seconds(self, machine: dict) -> list[float]:
        """Available seconds of `machine` in each bucket."""
        if not machine["is_active"]:
            return [0.0] * len(self.open[machine["platform_id"]])
        maintenance = self.maintenance.get(machine["id"])
        if maintenance:
            return [
                _seconds(_subtract(spans, maintenance))
                for spans in self.open[machine["platform_id"]]
            ]
        if machine["platform_id"] not in self._plain:  # machines without maintenance share it
            self._plain[machine["platform_id"]] = [
                _seconds(spans) for spans in self.open[machine["platform_id"]]
            ]
        return self._plain[machine["platform_id"]]


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


def _values_cte(utc_by_tz: dict[str, list[tuple[datetime, datetime]]]) -> tuple[str, list]:
    """The buckets as a table k(tz, idx, ks, ke): one row per time zone and bucket."""
    rows, params = [], []
    for tz, periods in utc_by_tz.items():
        for idx, (s, e) in enumerate(periods):
            rows.append("(%s, %s, %s, %s)")
            params += [tz, idx, _adapt(s), _adapt(e)]
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


def _booking_sums(scope: "_Scope", now: datetime) -> dict[tuple, dict]:
    """One query: the additive figures of bookings per group and bucket.

    The inner query reads each booking once, with what the sums need; each is then
    paired with the buckets it meets. On PostgreSQL, width_bucket() finds the first
    and last of them and the pairs are an equality join (a booking meets one or two
    buckets, not all of them); SQLite compares it with every bucket of its zone."""
    postgres = connection.vendor == "postgresql"
    several_zones = len(scope.utc_by_tz) > 1
    cte, cte_params = _values_cte(scope.utc_by_tz)
    hull_start = _least("b.start", "COALESCE(b.checked_in_at, b.start)")
    hull_end = _greatest(B_END, f"COALESCE(b.checked_out_at, {B_END})")
    columns = [f"{DIMENSION_SQL[g].format(t='b')} AS g{i}" for i, g in enumerate(scope.entities)]
    columns += [
        # One zone (every platform of a label, usually): no need to read it per row.
        "p.timezone AS tz" if several_zones else "%s AS tz",
        "b.status AS st",
        "b.late_cancellation AS late",
        "b.start AS s",
        f"{B_END} AS e",
        "b.checked_in_at AS ci",
        # Under way without a check-out: used until its end or now, whichever first.
        f"COALESCE(b.checked_out_at, {_least(B_END, '%s')}) AS co",
        f"{_sql_seconds('b.start', 'b.created_at')} AS lead",
        f"{hull_start} AS hs",
        f"{hull_end} AS he",
    ]
    inner_params = ([] if several_zones else [next(iter(scope.utc_by_tz))]) + [_adapt(now)]
    if postgres:
        first, last, arrays = [], [], []
        for tz, periods in scope.utc_by_tz.items():
            first.append(f"WHEN %s THEN width_bucket({hull_start}, %s::timestamptz[])")
            last.append(
                f"WHEN %s THEN width_bucket({hull_end} - interval '1 microsecond', "
                "%s::timestamptz[])"
            )
            arrays.append([tz, [s for s, _e in periods] + [periods[-1][1]]])
        count = len(scope.periods)
        zone = "p.timezone" if several_zones else "%s"
        columns.append(f"GREATEST((CASE {zone} {' '.join(first)} END) - 1, 0) AS sb")
        columns.append(f"LEAST((CASE {zone} {' '.join(last)} END) - 1, {count - 1}) AS eb")
        cases = [v for pair in arrays for v in pair]
        inner_params += ([] if several_zones else [arrays[0][0]]) + cases
        inner_params += ([] if several_zones else [arrays[0][0]]) + cases
        pairing = (
            "CROSS JOIN LATERAL generate_series(x.sb, x.eb) AS n(i) "
            "JOIN k ON k.tz = x.tz AND k.idx = n.i"
        )
    else:
        pairing = "JOIN k ON k.tz = x.tz AND k.ks < x.he AND k.ke > x.hs"
    machines_sql, machines_params = _subquery(scope.machines)
    where = [f"b.machine_id IN ({machines_sql})", "b.start < %s", "b.start >= %s"]
    inner_params += [
        *machines_params,
        _adapt(scope.utc_end + CHECK_IN_OPENS_BEFORE),
        _adapt(scope.utc_start - LOOKBACK),
    ]
    if scope.organizations is not None:
        orgs_sql, orgs_params = _subquery(scope.organizations)
        where.append(f"b.organization_id IN ({orgs_sql})")
        inner_params += orgs_params
    joins = ""
    if several_zones or {"machine_type", "platform"} & set(scope.entities):
        joins += " JOIN equipment_machine m ON m.id = b.machine_id"
    if several_zones:
        joins += " JOIN equipment_platform p ON p.id = m.platform_id"
    inner = f"SELECT {', '.join(columns)} FROM booking_booking b{joins} WHERE {' AND '.join(where)}"

    booked = "x.st IN (" + ", ".join(f"'{s}'" for s in BOOKED) + ")"
    starts = f"x.s >= k.ks AND x.s < k.ke AND {booked}"
    started = "x.s >= k.ks AND x.s < k.ke"
    b0, b1, b2 = (d * 86400 for d in LEAD_BOUNDS_DAYS)
    sums = {
        "booked_s": f"SUM({_sql_seconds(_least('x.e', 'k.ke'), _greatest('x.s', 'k.ks'))}) "
        f"FILTER (WHERE {booked} AND x.s < k.ke AND x.e > k.ks)",
        "used_s": f"SUM({_sql_seconds(_least('x.co', 'k.ke'), _greatest('x.ci', 'k.ks'))}) "
        "FILTER (WHERE x.ci IS NOT NULL AND x.ci < k.ke AND x.co > k.ks AND x.co > x.ci)",
        "bookings": f"COUNT(*) FILTER (WHERE {starts})",
        "no_shows": f"COUNT(*) FILTER (WHERE {started} AND x.st = 'no_show')",
        "outcomes": f"COUNT(*) FILTER (WHERE {started} AND (x.st IN ('completed', 'no_show') "
        "OR (x.st = 'confirmed' AND x.ci IS NOT NULL)))",
        "cancellations": f"COUNT(*) FILTER (WHERE {started} AND x.st = 'cancelled')",
        "late_cancellations": f"COUNT(*) FILTER (WHERE {started} AND x.st = 'cancelled' "
        "AND x.late)",
        "lead_s": f"SUM(x.lead) FILTER (WHERE {starts})",
        "lead_0": f"COUNT(*) FILTER (WHERE {starts} AND x.lead < {b0})",
        "lead_1": f"COUNT(*) FILTER (WHERE {starts} AND x.lead >= {b0} AND x.lead < {b1})",
        "lead_2": f"COUNT(*) FILTER (WHERE {starts} AND x.lead >= {b1} AND x.lead < {b2})",
        "lead_3": f"COUNT(*) FILTER (WHERE {starts} AND x.lead >= {b2})",
    }
    group = [*(f"x.g{i}" for i in range(len(scope.entities))), "k.idx"]
    sql = (
        f"WITH {cte} SELECT {', '.join(group)}, {', '.join(sums.values())}"
        f" FROM ({inner}) x {pairing} GROUP BY {', '.join(group)}"
    )
    with _without_jit(), connection.cursor() as cursor:
        cursor.execute(sql, [*cte_params, *inner_params])
        return {
            tuple(row[: len(group)]): {
                name: float(value or 0) for name, value in zip(sums, row[len(group) :], strict=True)
            }
            for row in cursor.fetchall()
        }


@contextmanager
def _without_jit():
    """PostgreSQL overestimates the rows of generate_series() and compiles the
    query (JIT): ~60 ms spent before a query that runs in less. Off for this
    transaction only."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        yield


def _refusal_sums(scope: "_Scope") -> dict[tuple, dict]:
    """One query: refused demand per group and bucket of the requested start."""
    cte, params = _values_cte(scope.utc_by_tz)
    dims = [DIMENSION_SQL[g].format(t="r") for g in scope.entities]
    sums = {
        "refused_conflicts": "CASE WHEN r.kind = 'conflict' THEN 1 ELSE 0 END",
        "refused_rules": "CASE WHEN r.kind = 'rules' THEN 1 ELSE 0 END",
        "rejected_by_manager": "CASE WHEN r.kind = 'rejected' THEN 1 ELSE 0 END",
        "refused_s": f"CASE WHEN {R_END} > r.start THEN {_sql_seconds(R_END, 'r.start')} "
        "ELSE 0 END",
    }
    machines_sql, machines_params = _subquery(scope.machines)
    where = [f"r.machine_id IN ({machines_sql})"]
    where_params = list(machines_params)
    if scope.organizations is not None:
        orgs_sql, orgs_params = _subquery(scope.organizations)
        where.append(f"r.organization_id IN ({orgs_sql})")
        where_params += orgs_params
    group = [*dims, "k.idx"]
    sql = (
        f"WITH {cte} SELECT {', '.join(group)}, "
        + ", ".join(f"SUM({expression})" for expression in sums.values())
        + " FROM booking_refusedrequest r"
        " JOIN equipment_machine m ON m.id = r.machine_id"
        " JOIN equipment_platform p ON p.id = m.platform_id"
        " JOIN k ON k.tz = p.timezone AND r.start >= k.ks AND r.start < k.ke"
        f" WHERE {' AND '.join(where)} GROUP BY {', '.join(group)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *where_params])
        return {
            tuple(row[: len(group)]): {
                name: float(value or 0) for name, value in zip(sums, row[len(group) :], strict=True)
            }
            for row in cursor.fetchall()
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


ADDITIVE = [
    "available_s",
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
    "refused_conflicts",
    "refused_rules",
    "rejected_by_manager",
    "refused_s",
]


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _hours(seconds: float) -> float:
    return round(seconds / 3600, 2)


def _metrics(sums: dict, period_booked_s: float, revenue) -> dict:
    """The published metrics of one row, from its additive figures."""
    return {
        "available_hours": _hours(sums["available_s"]),
        "booked_hours": _hours(sums["booked_s"]),
        "used_hours": _hours(sums["used_s"]),
        "utilisation_booked": _ratio(sums["booked_s"], sums["available_s"]),
        "utilisation_used": _ratio(sums["used_s"], sums["available_s"]),
        "share_of_booked_hours": _ratio(sums["booked_s"], period_booked_s),
        "bookings": int(sums["bookings"]),
        "no_shows": int(sums["no_shows"]),
        "no_show_rate": _ratio(sums["no_shows"], sums["outcomes"]),
        "cancellations": int(sums["cancellations"]),
        "late_cancellations": int(sums["late_cancellations"]),
        "late_cancellation_rate": _ratio(
            sums["late_cancellations"], sums["bookings"] + sums["cancellations"]
        ),
        "lead_time_avg_hours": (
            _hours(sums["lead_s"] / sums["bookings"]) if sums["bookings"] else None
        ),
        "lead_time_under_1d": int(sums["lead_0"]),
        "lead_time_1d_to_7d": int(sums["lead_1"]),
        "lead_time_7d_to_30d": int(sums["lead_2"]),
        "lead_time_30d_or_more": int(sums["lead_3"]),
        "refused_conflicts": int(sums["refused_conflicts"]),
        "refused_rules": int(sums["refused_rules"]),
        "rejected_by_manager": int(sums["rejected_by_manager"]),
        "refused_hours": _hours(sums["refused_s"]),
        "revenue": revenue,
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

    Queries: machines, machine types or platforms' names, opening hours,
    closures, maintenance, bookings, refused requests (and organizations' names):
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
        return _assemble(scope, machine_rows, {}, {}, {}, None)

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

    booking_sums = _booking_sums(scope, now)
    refusal_sums = _refusal_sums(scope)
    revenue = None
    if _revenue_source is not None:
        revenue = _revenue_source(
            machines=machines,
            organizations=organizations,
            buckets=[
                (tz, idx, s, e)
                for tz, per in scope.utc_by_tz.items()
                for idx, (s, e) in enumerate(per)
            ],
            group_by=group_by,
        )
    return _assemble(scope, machine_rows, available, booking_sums, refusal_sums, revenue)


def _assemble(scope, machine_rows, available, booking_sums, refusal_sums, revenue) -> Table:
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

    def figures(value, idx) -> dict:
        sums = dict.fromkeys(ADDITIVE, 0.0)
        key = (value, idx) if entity else (idx,)
        for source in (booking_sums, refusal_sums):
            for name, amount in source.get(key, {}).items():
                sums[name] += amount
        capacity_key = None if entity == "organization" else value
        sums["available_s"] = available.get((capacity_key, idx), 0.0)
        return sums

    keyed = {
        (value, idx): figures(value, idx) for idx in range(len(scope.periods)) for value in values
    }
    booked_by_period = defaultdict(float)
    for (_value, idx), sums in keyed.items():
        booked_by_period[idx] += sums["booked_s"]
    rows = []
    for value in values:
        for idx, (first, following) in enumerate(scope.periods):
            sums = keyed[(value, idx)]
            row = {}
            if entity:
                row[entity] = value
                row[f"{entity}_name"] = names[value]
            if scope.unit:
                row["period_start"] = first.isoformat()
                row["period_end"] = following.isoformat()
            key = (*([value] if entity else []), *([idx] if scope.unit else []))
            money = revenue.get(key) if revenue is not None else None
            row.update(_metrics(sums, booked_by_period[idx], money))
            rows.append(row)
    if scope.unit and entity:  # by period, then by entity: what a chart over time reads
        order = {value: n for n, value in enumerate(values)}
        rows.sort(key=lambda r: (r["period_start"], order[r[entity]]))

    total = dict.fromkeys(ADDITIVE, 0.0)
    for sums in keyed.values():
        for name in ADDITIVE:
            if name != "available_s":
                total[name] += sums[name]
    total["available_s"] = sum(available.values())
    total_revenue = sum(revenue.values()) if revenue else None
    totals = _metrics(total, total["booked_s"], total_revenue)
    return Table(list(scope.entities) + ([scope.unit] if scope.unit else []), columns, rows, totals)


# --- Who sees what -------------------------------------------------------------------------
# Platform staff (manager, operator, accountant) run, staff and bill the machines:
# they see their platform's whole table. An SME admin sees its organizations'
# usage of the platform's bookable machines, and never another SME's. A label's
# programme view aggregates the label's platforms for their managers and for
# superusers, never naming or grouping by an SME.


@dataclass(frozen=True)
class Audience:
    machines: QuerySet
    organizations: QuerySet | None  # None: every organization's bookings count
    names_organizations: bool  # whether rows may be grouped or filtered by organization


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
