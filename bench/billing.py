"""Billing-run benchmark on PostgreSQL, next to a baseline measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fabpool_billbench \
        .venv/bin/python bench/billing.py [--quick]

Drops and recreates the database named in DATABASE_URL (127.0.0.1 only), migrates
it, and seeds two platforms with bulk inserts (not through the services):
- "small": 500 organizations, 100,000 bookings in October 2026;
- "large": 1,000 organizations, 200,000 bookings in the same month;
each with tiered tariffs, setup fees, a funding programme on its label, no-shows,
late cancellations and 5 % of bookings with consumables. Then it prints, per
platform (each from empty billing tables, after a CHECKPOINT, so that the second
does not pay for the first one's rows), the time and query count of a first
billing run (everything new), the median of --rounds (3) first runs alternated
between the platforms, and of a second one (nothing changes), next to the time
of reading the month's bookings in one raw SQL query. Targets: first run of
"small" <= 30 s; large/small <= 2.2; queries independent of the bookings per
organization.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

from bench.booking import recreate_database  # noqa: E402

MONTH = date(2026, 10, 1)


def seed(name: str, organizations: int, bookings: int) -> int:
    from billing.models import BillingSettings, Consumable, ConsumableUse, FundingProgramme, Tariff
    from booking.models import Booking
    from core.models import Organization, User
    from equipment.models import Label, Machine, MachineType, Platform, PlatformMembership

    rng = random.Random(name)
    platform = Platform.objects.create(name=f"Bench {name}", slug=f"bench-{name}")
    label = Label.objects.create(name=f"Label {name}", slug=f"label-{name}", issuer="Bench")
    platform.labels.add(label)
    BillingSettings.objects.create(
        platform=platform,
        legal_name=f"Bench {name} SAS",
        address_line1="1 rue du Banc",
        postal_code="69007",
        city="Lyon",
        siret="73282932000074",
        invoice_prefix=name.upper()[:10],
        billable_time="actual",
    )
    types = [
        MachineType.objects.get_or_create(
            slug=f"type-{k}", defaults={"name": f"Type {k}", "category": "other"}
        )[0]
        for k in range(4)
    ]
    machines = Machine.objects.bulk_create(
        Machine(platform=platform, machine_type=types[k % 4], name=f"m-{k}") for k in range(200)
    )
    for machine_type in types:
        for tier, rate in (("", "45.00"), ("member", "35.00"), ("partner", "30.00")):
            Tariff.objects.create(
                platform=platform,
                machine_type=machine_type,
                tier=tier,
                valid_from=date(2026, 1, 1),
                hourly_rate=Decimal(rate),
                minimum_minutes=30,
                setup_fee=Decimal("10.00"),
            )
    filament = Consumable.objects.create(
        platform=platform, name="PLA", unit="g", unit_price=Decimal("0.045")
    )
    FundingProgramme.objects.create(
        label=label,
        name=f"Programme {name}",
        share=Decimal("0.3"),
        budget=Decimal(organizations * 500),
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 12, 31),
    )
    user = User.objects.create_user(email=f"booker@{name}.bench", password="x")
    orgs = Organization.objects.bulk_create(
        Organization(legal_name=f"SME {name} {k}", country="DE") for k in range(organizations)
    )
    PlatformMembership.objects.bulk_create(
        PlatformMembership(
            organization=org, platform=platform, tier=("standard", "member", "partner")[k % 3]
        )
        for k, org in enumerate(orgs)
    )
    # Completed, no-show and cancelled bookings are not "active": the exclusion
    # constraint lets them overlap, so they are spread at random over the month.
    first = datetime(2026, 9, 30, 22, tzinfo=UTC)  # October 1st, 00:00 in Paris
    statuses = ["completed"] * 17 + ["no_show", "cancelled", "cancelled"]
    rows = []
    for k in range(bookings):
        start = first + timedelta(minutes=15 * rng.randrange(30 * 24 * 4 - 40))
        end = start + timedelta(minutes=rng.choice((30, 45, 60, 90, 120, 240)))
        status = statuses[k % len(statuses)]
        checked = status == "completed" and k % 2 == 0
        rows.append(
            Booking(
                machine=machines[k % len(machines)],
                organization=orgs[k % organizations],
                booked_by=user,
                start=start,
                end=end,
                blocked_until=end,
                status=status,
                late_cancellation=status == "cancelled" and k % 2 == 0,
                checked_in_at=start + timedelta(minutes=3) if checked else None,
                checked_out_at=end + timedelta(minutes=7) if checked else None,
            )
        )
    created = Booking.objects.bulk_create(rows, batch_size=5000)
    uses = ConsumableUse.objects.bulk_create(
        (
            ConsumableUse(
                booking=b,
                consumable=filament,
                quantity=Decimal(rng.randrange(5, 500)),
                recorded_by=user,
            )
            for b in created[::20]
            if b.status == "completed"
        ),
        batch_size=5000,
    )
    ConsumableUse.objects.filter(pk__in=[u.pk for u in uses]).update(
        recorded_at=datetime(2026, 10, 15, 12, tzinfo=UTC)
    )
    return platform.pk


def backend_cpu(pid: int) -> float:
    """CPU seconds used so far by a PostgreSQL backend of this machine (/proc): on
    a shared machine, wall-clock time measures the neighbours as much as the run."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wal_and_checkpoints() -> tuple[str, int]:
    """Where PostgreSQL's write-ahead log stands, and how many checkpoints it has
    made: a run writing more WAL than about half of max_wal_size (1 GB by default)
    forces a checkpoint while it runs, and pays for the pages written again. Both
    are the whole server's: only meaningful on a server nothing else writes to."""
    from django.db import connection

    counters = (
        "num_timed + num_requested FROM pg_stat_checkpointer"  # PostgreSQL 17 on
        if connection.pg_version >= 170000
        else "checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_current_wal_lsn()::text, {counters}")
        return cursor.fetchone()


def wal_megabytes_since(lsn: str) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", [lsn])
        return float(cursor.fetchone()[0]) / 1e6


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def seeded(url: str) -> bool:
    """Whether the database exists and holds both bench platforms."""
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            found = conn.execute(
                "SELECT count(*) FROM equipment_platform "
                "WHERE slug IN ('bench-small', 'bench-large')"
            ).fetchone()[0]
    except psycopg.Error:
        return False
    return found == 2


def reset_billing(sizes: dict) -> dict:
    """Remove what earlier runs wrote (drafts only: the bench never issues), so
    that the next run is a first run again."""
    from django.db import connection

    from equipment.models import Platform

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE billing_invoiceline, billing_fundingallocation, billing_usagerecord, "
            "billing_invoice, billing_billingrun, core_auditevent CASCADE"
        )
        cursor.execute("VACUUM ANALYZE")
    return {name: Platform.objects.get(slug=f"bench-{name}").pk for name in sizes}


class QueryCounter:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def measure(platform_id: int, *, second: bool) -> dict:
    from django.db import connection

    from billing.models import InvoiceLine
    from billing.runs import bill_period, month_bounds
    from equipment.models import Platform

    platform = Platform.objects.get(pk=platform_id)
    start, end = month_bounds(MONTH, platform.tzinfo)
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT b.id, b.organization_id, b.machine_id, m.machine_type_id, m.name, b.start,
                      b."end", b.status, b.late_cancellation, b.checked_in_at, b.checked_out_at
               FROM booking_booking b JOIN equipment_machine m ON m.id = b.machine_id
               WHERE m.platform_id = %s AND b.start >= %s AND b.start < %s
               ORDER BY b.start, b.id""",
            [platform_id, start, end],
        )
        read = len(cursor.fetchall())
    baseline = time.perf_counter() - t0
    figures = {"bookings": read, "baseline_read_s": baseline}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    for label in ("first", "second") if second else ("first",):
        counter = QueryCounter()
        lsn, checkpoints = wal_and_checkpoints()
        t0, cpu0, db0 = time.perf_counter(), time.process_time(), backend_cpu(backend)
        with connection.execute_wrapper(counter):
            run = bill_period(platform=platform, month=MONTH)
        figures[f"{label}_s"] = time.perf_counter() - t0
        figures[f"{label}_cpu"] = time.process_time() - cpu0
        figures[f"{label}_db_cpu"] = backend_cpu(backend) - db0
        figures[f"{label}_queries"] = counter.count
        figures[f"{label}_wal_mb"] = wal_megabytes_since(lsn)
        figures[f"{label}_checkpoints"] = wal_and_checkpoints()[1] - checkpoints
        figures[f"{label}_report"] = run.report
    figures["lines"] = InvoiceLine.objects.filter(invoice__platform=platform).count()
    return figures


def medians(runs: list[dict]) -> dict:
    """The median, over the rounds, of each first-run figure (CPU: of each round's
    Python + PostgreSQL total, as well as of each part)."""
    keys = ["baseline_read_s", "first_s", "first_cpu", "first_db_cpu"]
    found = {key: statistics.median(run[key] for run in runs) for key in keys}
    found["first_total_cpu"] = statistics.median(r["first_cpu"] + r["first_db_cpu"] for r in runs)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the volume")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database seeded by a previous run; only its billing output is reset",
    )
    parser.add_argument("--seed-only", action="store_true", help="seed, measure nothing")
    parser.add_argument("--only", choices=["small", "large"], help="measure one platform only")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="first runs of each platform, alternated; the medians are compared (default 3)",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database on 127.0.0.1.")
    reuse = args.reuse and seeded(url)
    if not reuse:
        recreate_database(url)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    scale = 10 if args.quick else 1
    sizes = {"small": (500 // scale, 100_000 // scale), "large": (1000 // scale, 200_000 // scale)}
    print(f"load average before: {load()}", flush=True)
    platforms = {}
    if reuse:
        platforms = reset_billing(sizes)
    for name, (orgs, bookings) in sizes.items():
        if name in platforms:
            continue
        t0 = time.perf_counter()
        platforms[name] = seed(name, orgs, bookings)
        print(
            f"seeded {name}: {orgs} organizations, {bookings} bookings "
            f"in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    if args.seed_only:
        return
    if args.only:
        platforms = {args.only: platforms[args.only]}
    # The platforms' first runs alternate, round after round, and each figure is the
    # median of its rounds: one run's time varies by 10 % or more on a shared machine,
    # as much as the growth target leaves. The last round also times a second run.
    samples: dict[str, list[dict]] = {name: [] for name in platforms}
    for round_number in range(1, args.rounds + 1):
        # Small first, then large first, and so on: neither always runs second.
        order = list(platforms.items())
        for name, pk in order if round_number % 2 else order[::-1]:
            # Each platform from the same state: billing tables empty, statistics fresh,
            # no checkpoint due (else the second one pays for the rows of the first).
            reset_billing(sizes)
            with connection.cursor() as cursor:
                cursor.execute("CHECKPOINT")
            samples[name].append(measure(pk, second=round_number == args.rounds))
            run = samples[name][-1]
            print(
                f"round {round_number}: {name} first run {run['first_s']:.2f} s,"
                f" {run['first_wal_mb']:.0f} MB of WAL, {run['first_checkpoints']} checkpoint(s)"
                f" during it; load average: {load()}",
                flush=True,
            )
    results = {name: {**runs[-1], **medians(runs)} for name, runs in samples.items()}
    print()
    print(f"Times and CPU of first runs: medians of {args.rounds} round(s); the rest: the last.")
    print(
        f"{'platform':10} {'bookings':>9} {'lines':>8} {'raw read':>9} "
        f"{'1st run':>8} {'queries':>8} {'2nd run':>8} {'queries':>8}"
    )
    for name, r in results.items():
        print(
            f"{name:10} {r['bookings']:>9} {r['lines']:>8} {r['baseline_read_s']:>8.2f}s "
            f"{r['first_s']:>7.2f}s {r['first_queries']:>8} {r['second_s']:>7.2f}s "
            f"{r['second_queries']:>8}"
        )
    if len(results) < 2:
        return
    print()
    print("CPU seconds (Python process + PostgreSQL backend; first runs: medians):")
    for name, r in results.items():
        print(
            f"{name:10} 1st run {r['first_cpu']:.1f} + {r['first_db_cpu']:.1f} = "
            f"{r['first_cpu'] + r['first_db_cpu']:.1f}; "
            f"2nd run {r['second_cpu']:.1f} + {r['second_db_cpu']:.1f} = "
            f"{r['second_cpu'] + r['second_db_cpu']:.1f}"
        )
    small, large = results["small"], results["large"]
    ratio = large["first_s"] / small["first_s"]
    print()
    for name, runs in samples.items():
        times = ", ".join(f"{run['first_s']:.2f}" for run in runs)
        print(f"first runs, {name}: {times} s (median {results[name]['first_s']:.2f} s)")
    print(f"first run, small: {small['first_s']:.1f} s (target <= 30 s)")
    print(f"growth large/small: {ratio:.2f} (target <= 2.2)")
    print(
        f"second run changed nothing: {small['second_report']['usage_created']} new, "
        f"{small['second_report']['usage_updated']} updated usage records"
    )
    cpu = {n: r["first_total_cpu"] for n, r in results.items()}
    print(f"growth large/small in CPU seconds: {cpu['large'] / cpu['small']:.2f}")
    print(
        "queries (COPY statements, one per table written, not counted): a fixed number "
        "plus one per batch of 2,000 rows updated; per organization: "
        f"{small['first_queries'] / sizes['small'][0]:.2f} (small) vs "
        f"{large['first_queries'] / sizes['large'][0]:.2f} (large)"
    )


if __name__ == "__main__":
    main()
