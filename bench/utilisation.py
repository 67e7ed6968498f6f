"""Utilisation analytics benchmark on PostgreSQL, next to a baseline measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fabpool_utilbench \
        .venv/bin/python bench/utilisation.py [--quick]

Drops and recreates the database named in DATABASE_URL (127.0.0.1 only), migrates
it and seeds a year of one platform: 200 machines (some with maintenance windows),
opening hours, closures, 100,000 bookings of every status (bulk_create). Then:
1. monthly utilisation per machine over the year (booking.analytics.utilisation,
   group_by machine,month: 200 x 12 rows), and one month per machine, each next
   to the raw SQL query summing booked hours per machine and month (the floor);
   the year's peak-hours heatmap (booking.analytics.peak_hours);
2. the same through the API (Django's test client, JSON and CSV);
3. the query count of the table and of the heatmap with 200 machines and with
   20: the same.
The load average is printed before and after: the machine may be shared, so
compare figures within one run. --reuse keeps a database seeded by an earlier
run (same scale) instead of seeding again.
Not part of the test suite. Only 127.0.0.1.
"""

import argparse
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

from bench.booking import percentiles, recreate_database, timed  # noqa: E402

TZ = ZoneInfo("Europe/Paris")
YEAR = 2027


def seed(scale: dict) -> dict:
    from booking.models import Booking, RefusedRequest
    from core.models import Membership, Organization, User
    from core.services import create_api_token
    from equipment.models import (
        Closure,
        Machine,
        MachineType,
        MaintenanceWindow,
        OpeningHours,
        Platform,
        PlatformMembership,
        PlatformStaff,
    )

    rng = random.Random(7)
    platform = Platform.objects.create(name="Bench lab", slug="bench-lab", timezone=str(TZ))
    OpeningHours.objects.bulk_create(
        OpeningHours(platform=platform, weekday=d, opens_at=dtime(8), closes_at=dtime(20))
        for d in range(6)
    )
    Closure.objects.create(
        platform=platform, start_date=date(YEAR, 8, 1), end_date=date(YEAR, 8, 15)
    )
    Closure.objects.create(
        platform=platform, start_date=date(YEAR, 12, 24), end_date=date(YEAR, 12, 31)
    )
    manager = User.objects.create_user(email="manager@bench.test", password="x")
    PlatformStaff.objects.create(user=manager, platform=platform, role="manager")
    _token, secret = create_api_token(user=manager, name="bench")
    types = MachineType.objects.bulk_create(
        MachineType(name=f"Type {i}", slug=f"type-{i}", category="other") for i in range(8)
    )
    machines = Machine.objects.bulk_create(
        Machine(platform=platform, machine_type=types[i % 8], name=f"m-{i:03}")
        for i in range(scale["machines"])
    )
    MaintenanceWindow.objects.bulk_create(
        MaintenanceWindow(
            machine=m,
            start=datetime(YEAR, month, 10, 8, tzinfo=TZ),
            end=datetime(YEAR, month, 10, 12, tzinfo=TZ),
        )
        for m in machines[::4]
        for month in range(1, 13)
    )
    orgs = Organization.objects.bulk_create(
        Organization(legal_name=f"SME {i}", country="DE") for i in range(40)
    )
    user = User.objects.create_user(email="user@bench.test", password="x")
    Membership.objects.create(user=user, organization=orgs[0], role="admin")
    PlatformMembership.objects.bulk_create(
        PlatformMembership(organization=o, platform=platform) for o in orgs
    )

    # Each machine: bookings spread over the year, 1-4 h long in one of three
    # local slots (08-12, 12-16, 16-20) that alternate, so they never overlap.
    per_machine = scale["bookings"] // len(machines)
    days = 365
    statuses = ["completed"] * 6 + ["confirmed", "no_show", "cancelled", "pending"]
    rows = []
    for machine in machines:
        for k in range(per_machine):
            day = date(YEAR, 1, 1) + timedelta(days=k * days // per_machine)
            start = datetime.combine(day, dtime(8 + 4 * (k % 3)), tzinfo=TZ)
            end = start + timedelta(hours=1 + rng.randrange(4))
            status = rng.choice(statuses)
            checked_in = start + timedelta(minutes=rng.randrange(-10, 20))
            rows.append(
                Booking(
                    machine=machine,
                    organization=orgs[rng.randrange(len(orgs))],
                    booked_by=user,
                    start=start.astimezone(UTC),
                    end=end.astimezone(UTC),
                    blocked_until=end.astimezone(UTC),
                    status=status,
                    late_cancellation=status == "cancelled" and rng.random() < 0.3,
                    checked_in_at=checked_in if status == "completed" else None,
                    checked_out_at=end - timedelta(minutes=rng.randrange(30))
                    if status == "completed"
                    else None,
                )
            )
    Booking.objects.bulk_create(rows, batch_size=5000)
    RefusedRequest.objects.bulk_create(
        RefusedRequest(
            machine=machines[rng.randrange(len(machines))],
            organization=orgs[rng.randrange(len(orgs))],
            kind=rng.choice(["conflict", "rules", "rejected"]),
            action="create",
            start=datetime(YEAR, 1, 1, 9, tzinfo=TZ) + timedelta(days=rng.randrange(365)),
            end=datetime(YEAR, 1, 1, 11, tzinfo=TZ) + timedelta(days=rng.randrange(365)),
        )
        for _ in range(scale["bookings"] // 20)
    )
    # created_at is auto_now_add: spread it before the start (lead times).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE booking_booking SET created_at = start - (id % 45) * interval '1 day'"
        )
        cursor.execute("ANALYZE")
    return {"platform": platform, "token": secret, "machines": machines}


def bench(ctx: dict, count: int, budget: float) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from booking import analytics
    from booking.models import Booking
    from equipment.models import Machine

    platform = ctx["platform"]
    year = (date(YEAR, 1, 1), date(YEAR + 1, 1, 1))
    march = (date(YEAR, 3, 1), date(YEAR, 4, 1))

    def table(period, group_by, machines=None):
        return analytics.utilisation(
            platforms=[platform],
            machines=machines or Machine.objects.filter(platform=platform),
            start=period[0],
            end=period[1],
            group_by=group_by,
        )

    baseline_sql = """
        SELECT b.machine_id, date_trunc('month', b.start AT TIME ZONE 'Europe/Paris') AS month,
               SUM(EXTRACT(EPOCH FROM b."end" - b.start))
        FROM booking_booking b JOIN equipment_machine m ON m.id = b.machine_id
        WHERE m.platform_id = %s AND b.status IN ('pending', 'confirmed', 'completed', 'no_show')
          AND b.start >= %s AND b.start < %s
        GROUP BY 1, 2
    """

    def baseline(period):
        def run():
            with connection.cursor() as cursor:
                cursor.execute(
                    baseline_sql,
                    [
                        platform.pk,
                        datetime.combine(period[0], dtime(0), tzinfo=TZ),
                        datetime.combine(period[1], dtime(0), tzinfo=TZ),
                    ],
                )
                cursor.fetchall()

        return run

    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {ctx['token']}"}
    url = f"/api/v1/platforms/{platform.pk}/utilisation/"

    def api(fmt):
        def run():
            query = {"start": str(year[0]), "end": str(year[1]), "group_by": "machine,month"}
            response = client.get(url, {**query, "format": fmt}, **auth)
            assert response.status_code == 200, response.content[:300]

        return run

    def heatmap(machines=None):
        return analytics.peak_hours(
            platform=platform,
            machines=machines or Machine.objects.filter(platform=platform),
            start=year[0],
            end=year[1],
        )

    n = Booking.objects.filter(machine__platform=platform).count()
    print(f"1. Utilisation of {len(ctx['machines'])} machines, {n} bookings over {YEAR}")
    cases = {
        "year, machine x month": lambda: table(year, ["machine", "month"]),
        "March, per machine": lambda: table(march, ["machine"]),
        "year, per week (all)": lambda: table(year, ["week"]),
        "year, heatmap": heatmap,
        "baseline raw SQL year": baseline(year),
        "baseline raw SQL March": baseline(march),
        "API JSON year m x month": api("json"),
        "API CSV year m x month": api("csv"),
    }
    for fn in cases.values():
        timed(fn, 2, budget)  # warm-up
    # Round robin: every case is sampled across the same stretch of time, so that
    # a change of the machine's load weighs on all of them alike.
    samples = {name: [] for name in cases}
    deadline = time.perf_counter() + budget * len(cases)
    for _round in range(count):
        for name, fn in cases.items():
            samples[name] += timed(fn, 1, budget)
        if time.perf_counter() > deadline:
            break
    medians = {}
    for name, found in samples.items():
        p50, p99 = percentiles(found)
        medians[name] = p50
        mark = ""
        if name.startswith(("year, machine", "March")):
            mark = f"  (target <= 300 ms) {'OK' if p50 <= 300 else 'MISSED'}"
        print(f"   {name:26} p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  (n={len(found)}){mark}")
    for name, floor in (("year, machine x month", "year"), ("March, per machine", "March")):
        ratio = medians[name] / medians[f"baseline raw SQL {floor}"]
        print(f"   {name:26} = {ratio:.2f} x its raw SQL baseline of this run")

    print("2. Query count of the year's machine x month table, and of its heatmap")
    all_machines = Machine.objects.filter(platform=platform).order_by("pk")
    for label, fn in (
        ("table", lambda machines: table(year, ["machine", "month"], machines)),
        ("heatmap", heatmap),
    ):
        counts = {}
        for size in (len(ctx["machines"]), 20):
            ids = list(all_machines.values_list("pk", flat=True)[:size])
            with CaptureQueriesContext(connection) as queries:
                fn(Machine.objects.filter(pk__in=ids))
            counts[size] = len(queries)
            print(f"   {label:8} {size:4} machines: {len(queries)} queries")
        same = len(set(counts.values())) == 1
        print(f"   {label:8} independent of the number of machines: {'OK' if same else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a scaled-down run, in seconds")
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/fabpool_utilbench")
    if args.quick:
        scale, count, budget = {"machines": 20, "bookings": 10_000}, 10, 3
    else:
        scale, count, budget = {"machines": 200, "bookings": 100_000}, 30, 20

    t0 = time.perf_counter()
    ctx = reused(scale) if args.reuse else None
    if ctx is None:
        recreate_database(url)
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        ctx = seed(scale)
        print(
            f"Seeded in {time.perf_counter() - t0:.1f} s ({'quick' if args.quick else 'full'} run)"
        )
    else:
        print(f"Reusing the seeded database ({'quick' if args.quick else 'full'} run)")
    print("Load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    bench(ctx, count, budget)
    print("Load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


def reused(scale: dict) -> dict | None:
    """The context of a database seeded at this scale by an earlier run, or None."""
    import django
    from django.db import DatabaseError

    django.setup()
    from core.models import User
    from core.services import create_api_token
    from equipment.models import Machine, Platform

    try:
        platform = Platform.objects.filter(slug="bench-lab").first()
    except DatabaseError:
        return None
    machines = list(Machine.objects.filter(platform=platform)) if platform else []
    if len(machines) != scale["machines"]:
        return None
    _token, secret = create_api_token(
        user=User.objects.get(email="manager@bench.test"), name="bench again"
    )
    return {"platform": platform, "token": secret, "machines": machines}


if __name__ == "__main__":
    main()
