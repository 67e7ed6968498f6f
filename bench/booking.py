"""Booking benchmarks on PostgreSQL, each figure next to a baseline measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fabpool_bench \
        .venv/bin/python bench/booking.py [--quick]

Drops and recreates the database named in DATABASE_URL, migrates it, seeds it, then:
1. bookings created per second over HTTP (gunicorn, 16 keep-alive clients, API
   tokens, every booking rule on) vs a minimal DRF endpoint inserting one row into
   a table with the same btree_gist exclusion constraint, and vs the create's own
   SQL statements run with no ORM and no rule evaluated in Python (bench/urls.py);
2. availability search p50/p99 (200 machines, 100,000 bookings) vs one raw SQL
   query answering "which machines are free for this interval";
3. free intervals of one machine over a month with 1,000 bookings, as the
   availability endpoint computes them (with the busy periods), vs the raw SQL
   query loading that month's bookings.
Not part of the test suite. Only 127.0.0.1.
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

TZ = "Europe/Paris"
CLIENTS = 16


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"Unexpected database name: {name!r}")
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("The benchmark only runs against 127.0.0.1.")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return statistics.median(samples), p99


def timed(fn, count: int, budget: float) -> list[float]:
    """Milliseconds per call, at most `count` calls or `budget` seconds."""
    out = []
    deadline = time.perf_counter() + budget
    for _ in range(count):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
        if time.perf_counter() > deadline:
            break
    return out


# --- Seeding ------------------------------------------------------------------------------


def seed(scale: dict) -> dict:
    from django.db import connection

    from booking.models import Quota
    from core.models import Membership, Organization, User
    from core.services import create_api_token
    from equipment.models import (
        Machine,
        MachineType,
        OpeningHours,
        Platform,
        PlatformMembership,
        PlatformStaff,
        Qualification,
        UserQualification,
    )

    platform = Platform.objects.create(name="Bench lab", slug="bench-lab", timezone=TZ)
    for weekday in range(7):
        OpeningHours.objects.create(
            platform=platform, weekday=weekday, opens_at=dtime(6), closes_at=dtime(22)
        )
    manager = User.objects.create_user(email="manager@bench.test", password="x")
    PlatformStaff.objects.create(user=manager, platform=platform, role="manager")
    http_type = MachineType.objects.create(name="HTTP", slug="http", category="other")
    search_type = MachineType.objects.create(name="Search", slug="search", category="other")
    month_type = MachineType.objects.create(name="Month", slug="month", category="other")
    qualification = Qualification.objects.create(
        platform=platform, name="HTTP machines", machine_type=http_type
    )
    # Every rule on: membership, qualification, quota, notice, horizon, grid, hours.
    Quota.objects.create(platform=platform, period="month", max_hours=1_000_000)

    clients = []
    for i in range(CLIENTS):
        user = User.objects.create_user(email=f"user{i}@bench.test", password="x")
        org = Organization.objects.create(legal_name=f"SME {i}")
        Membership.objects.create(user=user, organization=org, role="member")
        PlatformMembership.objects.create(organization=org, platform=platform)
        UserQualification.objects.create(
            user=user,
            qualification=qualification,
            granted_by=manager,
            granted_on=date.today() - timedelta(days=1),
        )
        _token, secret = create_api_token(user=user, name="bench")
        machines = [
            Machine.objects.create(
                platform=platform,
                machine_type=http_type,
                name=f"http-{i}-{k}",
                qualification_required=True,
                min_duration_minutes=30,
                granularity_minutes=30,
            ).pk
            for k in range(2)
        ]
        clients.append({"token": secret, "machines": machines, "user": user})

    search_machines = Machine.objects.bulk_create(
        Machine(
            platform=platform,
            machine_type=search_type,
            name=f"search-{i:03}",
            buffer_after_minutes=15,
            min_duration_minutes=30,
        )
        for i in range(scale["machines"])
    )
    month_machine = Machine.objects.create(platform=platform, machine_type=month_type, name="month")

    # Bookings by set-based SQL: machine m, booking k; 8 a day, every 2 hours from
    # 06:00 UTC, lasting 30-105 minutes (buffer 15: never overlapping).
    first_day = datetime.combine(date.today() + timedelta(days=2), dtime(0), tzinfo=UTC)
    org0 = clients[0]["user"].memberships.get().organization_id
    user0 = clients[0]["user"].pk
    ids = [m.pk for m in search_machines]
    per_machine = scale["bookings"] // len(ids)
    insert = """
        INSERT INTO booking_booking (machine_id, organization_id, booked_by_id, start, "end",
            blocked_until, status, title, note, sequence, override_reason, late_cancellation,
            decision_note, created_at, updated_at)
        SELECT machine_id, %(org)s, %(user)s, s, e, e + %(buffer)s, 'confirmed', '', '', 0, '',
            false, '', now(), now()
        FROM ({rows}) AS r
    """
    search_rows = """
        SELECT m AS machine_id, s, s + (30 + 15 * floor(random() * 6)) * interval '1 minute' AS e
        FROM (SELECT m, %(first)s::timestamptz + (k / 8) * interval '1 day'
                  + interval '6 hours' + (k %% 8) * interval '2 hours'
                  + (m %% 4) * interval '15 minutes' AS s
              FROM unnest(%(ids)s::bigint[]) AS m, generate_series(0, %(n)s - 1) AS k) AS x
    """
    month_rows = """
        SELECT %(machine)s::bigint AS machine_id, s, s + interval '20 minutes' AS e
        FROM (SELECT %(first)s::timestamptz + k * interval '40 minutes' AS s
              FROM generate_series(0, %(n)s - 1) AS k) AS x
    """
    common = {"org": org0, "user": user0, "first": first_day}
    with connection.cursor() as cursor:
        cursor.execute(
            insert.format(rows=search_rows),
            {**common, "ids": ids, "n": per_machine, "buffer": timedelta(minutes=15)},
        )
        cursor.execute(
            insert.format(rows=month_rows),
            {**common, "machine": month_machine.pk, "n": scale["month"], "buffer": timedelta()},
        )
        cursor.execute("""
            CREATE TABLE bench_slot (id bigserial PRIMARY KEY, machine_id bigint NOT NULL,
                start timestamptz NOT NULL, "end" timestamptz NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                EXCLUDE USING gist (machine_id WITH =, tstzrange(start, "end", '[)') WITH &&))
        """)
        # A table in use has been vacuumed: its rows' visibility known, so the
        # first searches do not pay for marking 100,000 fresh rows (nor race the
        # autovacuum that would start for them).
        cursor.execute("VACUUM ANALYZE")
    return {
        "platform": platform,
        "clients": clients,
        "search_type": search_type,
        "search_machines": ids,
        "month_machine": month_machine,
        "first_day": first_day,
        "data_days": per_machine // 8,
    }


# --- 1. Bookings per second over HTTP ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    process = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "core.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--worker-class=sync",
            "--log-level=warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def stop_gunicorn(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def local_slots(first: date, days: int, minutes: int = 30):
    """Slots of `minutes` within 06:00-22:00 local time, as UTC ISO strings."""
    tz = ZoneInfo(TZ)
    for d in range(days):
        day = first + timedelta(days=d)
        t = datetime.combine(day, dtime(6), tzinfo=tz)
        close = datetime.combine(day, dtime(22), tzinfo=tz)
        while t + timedelta(minutes=minutes) <= close:
            end = t + timedelta(minutes=minutes)
            yield t.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat()
            t = end


def hammer(port: int, path: str, payloads: list[list[dict]], seconds: float) -> dict:
    """CLIENTS threads, each with its own keep-alive connection and payloads."""
    counts = [0] * len(payloads)
    errors: list[str] = []
    start_barrier = threading.Barrier(len(payloads) + 1)
    deadline = [0.0]

    def client(i: int, token: str, bodies: list[dict]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        start_barrier.wait()
        for body in bodies:
            if time.perf_counter() >= deadline[0]:
                break
            try:
                conn.request("POST", path, json.dumps(body), headers)
                response = conn.getresponse()
                text = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                errors.append(repr(exc))
                continue
            if response.status == 201:
                counts[i] += 1
            else:
                errors.append(f"{response.status} {text[:300]!r}")
        conn.close()

    threads = [
        threading.Thread(target=client, args=(i, token, bodies))
        for i, (token, bodies) in enumerate(payloads)
    ]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    deadline[0] = t0 + seconds
    start_barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return {"ok": sum(counts), "rate": sum(counts) / elapsed, "errors": errors}


def _years_on(moment: str) -> str:
    return (datetime.fromisoformat(moment) + timedelta(days=3 * 365)).isoformat()


def bench_http(ctx: dict, seconds: float, workers: int) -> None:
    first = date.today() + timedelta(days=1)
    slot_lists = []
    for c in ctx["clients"]:
        slots = []
        for machine in c["machines"]:
            slots += [{"machine": machine, "start": s, "end": e} for s, e in local_slots(first, 85)]
        random.Random(c["machines"][0]).shuffle(slots)
        slot_lists.append(slots)
    warm = 40
    booking_payloads = [(c["token"], s) for c, s in zip(ctx["clients"], slot_lists, strict=True)]
    # The baseline gets the same bodies on its own table (distinct machines per client).
    baseline_payloads = [(c["token"], s) for c, s in zip(ctx["clients"], slot_lists, strict=True)]
    # The create's statements book the same slots three years on, clear of the API's.
    statements_payloads = [
        (token, [{**b, "start": _years_on(b["start"]), "end": _years_on(b["end"])} for b in s])
        for token, s in booking_payloads
    ]

    port = free_port()
    process = start_gunicorn(port, workers)
    try:
        results = {}
        for name, path, payloads in (
            ("baseline", "/bench/insert/", baseline_payloads),
            ("booking", "/api/v1/bookings/", booking_payloads),
            ("statements", "/bench/statements/", statements_payloads),
        ):
            # Warm-up: every worker imports its views, opens its DB connection.
            hammer(port, path, [(t, b[:warm]) for t, b in payloads], 5)
            rest = [(t, b[warm:]) for t, b in payloads]
            results[name] = hammer(port, path, rest, seconds)
            r = results[name]
            if r["errors"]:
                print(f"  {name}: {len(r['errors'])} errors, first: {r['errors'][0]}")
    finally:
        stop_gunicorn(process)
    base, book, sql = results["baseline"], results["booking"], results["statements"]
    ratio = book["rate"] / base["rate"] if base["rate"] else float("nan")
    print(
        f"1. HTTP creates ({workers} gunicorn sync workers, {CLIENTS} clients, {seconds:.0f} s)\n"
        f"   POST /api/v1/bookings/     {book['rate']:8.1f} req/s  ({book['ok']} bookings)\n"
        f"   baseline /bench/insert/    {base['rate']:8.1f} req/s  ({base['ok']} rows)\n"
        f"   ratio booking/baseline     {ratio:8.2f}   (target >= 0.5) "
        f"{'OK' if ratio >= 0.5 else 'MISSED'}\n"
        f"   the create's statements    {sql['rate']:8.1f} req/s  ({sql['ok']} bookings; "
        f"ratio {sql['rate'] / base['rate']:.2f}): /bench/statements/, no ORM, no rule in Python"
    )
    drain_email_queue()


def drain_email_queue() -> None:
    """The booking emails were queued in the bookings' transactions, as in
    production; the worker that sends them runs after the measure, not beside it."""
    from django.core.management import call_command
    from django_tasks_db.models import DBTaskResult

    queued = DBTaskResult.objects.filter(queue_name="default").count()
    t0 = time.perf_counter()
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    seconds = time.perf_counter() - t0
    sent = DBTaskResult.objects.filter(status="SUCCESSFUL").count()
    print(
        f"   booking emails queued      {queued:8d}   sent afterwards by one db_worker in "
        f"{seconds:.1f} s ({sent / seconds:.0f}/s; {queued - sent} not sent)"
    )


# --- 2. and 3. Latencies -----------------------------------------------------------------


def bench_search(ctx: dict, count: int, budget: float) -> None:
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from booking import selectors

    platform, machine_type = ctx["platform"], ctx["search_type"]
    rng = random.Random(1)
    days = max(ctx["data_days"] - 8, 1)

    def window():
        start = ctx["first_day"] + timedelta(days=rng.randrange(days), hours=rng.randrange(24))
        return start, start + timedelta(days=7)

    def selector():
        start, end = window()
        machines = selectors.searchable_machines(platform=platform, machine_type=machine_type)
        selectors.search_slots(
            machines=machines,
            duration=timedelta(minutes=60),
            start=start,
            end=end,
            limit=3,
            now=timezone.now(),
        )

    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {ctx['clients'][0]['token']}"}
    url = f"/api/v1/platforms/{platform.pk}/availability-search/"

    def api():
        start, end = window()
        response = client.get(
            url,
            {
                "machine_type": "search",
                "duration_minutes": 60,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "limit": 3,
            },
            **auth,
        )
        assert response.status_code == 200, response.content[:300]

    free_sql = """
        SELECT m.id FROM equipment_machine m
        WHERE m.platform_id = %s AND m.machine_type_id = %s AND m.is_active
          AND NOT EXISTS (
            SELECT 1 FROM booking_booking b
            WHERE b.machine_id = m.id AND b.status IN ('pending', 'confirmed')
              AND tstzrange(b.start, b.blocked_until, '[)') && tstzrange(%s, %s, '[)'))
    """

    def raw():
        start = ctx["first_day"] + timedelta(
            days=rng.randrange(days), hours=rng.randrange(6, 21), minutes=15 * rng.randrange(4)
        )
        with connection.cursor() as cursor:
            cursor.execute(
                free_sql, [platform.pk, machine_type.pk, start, start + timedelta(hours=1)]
            )
            cursor.fetchall()

    n_bookings = count_bookings(ctx["search_machines"])
    print(
        f"2. Availability search: {len(ctx['search_machines'])} machines, {n_bookings} bookings,"
        f" random 7-day windows, 60-minute slots, 3 per machine"
    )
    for name, fn in (
        ("search_slots() selector", selector),
        ("API via test Client", api),
        ("baseline raw SQL free?", raw),
    ):
        if fn is raw:
            # Its best plan probes the exclusion constraint's GiST index for each
            # machine; PostgreSQL would rather read every booking of each machine
            # from the search's covering index (booking_active_by_machine): 2 x slower.
            with connection.cursor() as cursor:
                cursor.execute("SET enable_indexonlyscan = off")
        timed(fn, 3, budget)  # warm-up
        p50, p99 = percentiles(timed(fn, count, budget))
        mark = ""
        if name.startswith("search_slots"):
            mark = f"  (target p50 <= 10 ms) {'OK' if p50 <= 10 else 'MISSED'}"
        print(f"   {name:26} p50 {p50:8.2f} ms  p99 {p99:8.2f} ms{mark}")
    with connection.cursor() as cursor:
        cursor.execute("RESET enable_indexonlyscan")


def count_bookings(machine_ids: list[int]) -> int:
    from booking.models import Booking

    return Booking.objects.filter(machine_id__in=machine_ids).count()


def bench_month(ctx: dict, count: int, budget: float) -> None:
    from django.db import connection
    from django.test import Client

    from booking import selectors
    from equipment.models import Machine

    machine = Machine.objects.select_related("platform").get(pk=ctx["month_machine"].pk)
    start = ctx["first_day"]
    end = start + timedelta(days=31)

    # What GET /api/v1/machines/{id}/availability/ computes: the free intervals and
    # the anonymous busy periods.
    def selector():
        selectors.machine_availability(machine=machine, start=start, end=end)

    def free_only():
        selectors.free_intervals(machine=machine, start=start, end=end)

    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {ctx['clients'][0]['token']}"}
    url = f"/api/v1/machines/{machine.pk}/availability/"
    window = {"start": start.isoformat(), "end": end.isoformat()}

    def api():
        response = client.get(url, window, **auth)
        assert response.status_code == 200, response.content[:300]

    def raw():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT start, blocked_until FROM booking_booking WHERE machine_id = %s"
                " AND status IN ('pending', 'confirmed') AND start < %s AND blocked_until > %s"
                " ORDER BY start",
                [machine.pk, end, start],
            )
            cursor.fetchall()

    n = count_bookings([machine.pk])
    print(f"3. Free intervals of one machine over 31 days, {n} bookings")
    for name, fn in (
        ("machine_availability()", selector),
        ("free_intervals() alone", free_only),
        ("API via test Client", api),
        ("baseline raw SQL bookings", raw),
    ):
        timed(fn, 3, budget)
        p50, p99 = percentiles(timed(fn, count, budget))
        mark = ""
        if fn is selector:
            mark = f"  (target p50 <= 5 ms) {'OK' if p50 <= 5 else 'MISSED'}"
        print(f"   {name:26} p50 {p50:8.2f} ms  p99 {p99:8.2f} ms{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a scaled-down run, in seconds")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (2-4)")
    parser.add_argument(
        "--only", choices=("http", "search", "month"), help="run one of the three measures"
    )
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/fabpool_bench")
    if args.quick:
        scale = {"machines": 20, "bookings": 4_000, "month": 1_000}
        seconds, count, budget = 3, 50, 3
    else:
        scale = {"machines": 200, "bookings": 100_000, "month": 1_000}
        seconds, count, budget = 15, 300, 20

    t0 = time.perf_counter()
    recreate_database(url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    ctx = seed(scale)
    print(f"Seeded in {time.perf_counter() - t0:.1f} s ({'quick' if args.quick else 'full'} run)")
    if args.only in (None, "search"):
        bench_search(ctx, count, budget)
    if args.only in (None, "month"):
        bench_month(ctx, count, budget)
    if args.only in (None, "http"):
        from django.db import connections

        connections.close_all()
        bench_http(ctx, seconds, args.workers)


if __name__ == "__main__":
    main()
