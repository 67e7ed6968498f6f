"""Calendar feed benchmark on PostgreSQL, next to a baseline measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fabpool_feedsbench \\
        .venv/bin/python bench/feeds.py [--quick]

Drops and recreates the database named in DATABASE_URL, migrates it, and seeds a
platform whose printer holds 1,000 bookings within the feeds' window (two SMEs,
titles and notes), then prints p50/p99 and the queries per request of:
1. the full 1,000-event feed (/feeds/<secret>.ics), as the platform's staff and as
   an SME member (busy blocks), through Django's test client; and its rendering alone;
2. a 304 answer to If-None-Match;
3. the baseline: the same 1,000 bookings as JSON from /api/v1/bookings/ with an API
   token (the API pages by at most 200: five requests), and one page of 200;
4. for reference, the same 1,000 events built by the `icalendar` library.
Targets: full feed <= 100 ms, 304 <= 10 ms, queries independent of the event count.
Besides wall-clock p50/p99, "cpu" is this process's median CPU time per request
(not PostgreSQL's): on a shared, loaded machine it shows the work apart from the
waits for a core.
Not part of the test suite. Only 127.0.0.1.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

from bench.booking import percentiles, recreate_database, timed  # noqa: E402

EVENTS = 1_000


def seed(events: int) -> dict:
    from django.utils import timezone

    from booking.feeds import create_feed_token
    from booking.models import Booking
    from core.models import Membership, Organization, User
    from core.services import create_api_token
    from equipment.models import (
        Machine,
        MachineType,
        Platform,
        PlatformMembership,
        PlatformStaff,
    )

    platform = Platform.objects.create(name="Bench lab", slug="bench-lab")
    manager = User.objects.create_user(email="manager@bench.test", password="x")
    PlatformStaff.objects.create(user=manager, platform=platform, role="manager")
    printer_type = MachineType.objects.create(name="Printer", slug="printer", category="additive")
    machine = Machine.objects.create(platform=platform, machine_type=printer_type, name="Printer 1")
    smes = []
    for i in range(2):
        org = Organization.objects.create(legal_name=f"Mécanique Précision {i} SAS", country="DE")
        PlatformMembership.objects.create(organization=org, platform=platform)
        user = User.objects.create_user(
            email=f"member{i}@bench.test", password="x", full_name=f"Claire Martin {i}"
        )
        Membership.objects.create(user=user, organization=org, role="member")
        smes.append((org, user))

    # One booking every 6 hours from 20 days ago: 1,000 fit in the window (30 days
    # back, 12 months ahead); a few cancelled, a few pending.
    first = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=20)
    rows = []
    for k in range(events):
        org, user = smes[k % 2]
        start = first + timedelta(hours=6 * k)
        status = "cancelled" if k % 50 == 7 else "pending" if k % 10 == 3 else "confirmed"
        rows.append(
            Booking(
                machine=machine,
                organization=org,
                booked_by=user,
                start=start,
                end=start + timedelta(hours=2),
                blocked_until=start + timedelta(hours=2),
                status=status,
                cancelled_at=timezone.now() if status == "cancelled" else None,
                sequence=1 if status == "cancelled" else 0,
                title=f"Prototype {k}: gabarit de perçage",
                note="Buse 0,4 mm; PETG; vérifier le plateau avant de lancer.\nAppeler Hugo.",
            )
        )
    Booking.objects.bulk_create(rows)
    _token, api_secret = create_api_token(user=manager, name="bench")
    _token, staff_secret = create_feed_token(
        by=manager, kind="platform", name="Bench lab", target_id=platform.pk
    )
    _token, sme_secret = create_feed_token(
        by=smes[0][1], kind="platform", name="Bench lab", target_id=platform.pk
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "machine": machine,
        "api_secret": api_secret,
        "staff_secret": staff_secret,
        "sme_secret": sme_secret,
    }


def queries_of(fn) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        fn()
    return len(queries)


def cpu_ms(fn, count: int) -> float:
    """Median CPU time of this process per call: on a shared machine, wall time
    also counts the waits for a core, which this does not (nor PostgreSQL's own)."""
    samples = []
    for _ in range(count):
        t0 = time.process_time()
        fn()
        samples.append((time.process_time() - t0) * 1000)
    return statistics.median(samples)


def report(name: str, fn, count: int, budget: float, target: float | None = None) -> None:
    timed(fn, 3, budget)  # warm-up
    p50, p99 = percentiles(timed(fn, count, budget))
    cpu = cpu_ms(fn, min(count, 20))
    mark = ""
    if target is not None:
        mark = f"  (target <= {target:g} ms) {'OK' if p50 <= target else 'MISSED'}"
    print(
        f"   {name:40} p50 {p50:8.2f} ms  p99 {p99:8.2f} ms  cpu {cpu:7.2f} ms"
        f"  {queries_of(fn):2} queries{mark}"
    )


def bench(ctx: dict, count: int, budget: float) -> None:
    from django.test import Client

    from booking import feeds
    from booking.calendar import ICAL_STATUS, booking_uid

    client = Client()

    def feed_of(secret):
        def get():
            response = client.get(f"/feeds/{secret}.ics")
            assert response.status_code == 200, response.content[:300]
            return response

        return get

    staff, sme = feed_of(ctx["staff_secret"]), feed_of(ctx["sme_secret"])
    body = staff().content
    n_events = body.count(b"BEGIN:VEVENT")
    etag = staff()["ETag"]
    print(
        f"Feed of {n_events} events, {len(body) / 1024:.0f} KiB"
        f" (SME view: {sme().content.count(b'BEGIN:VEVENT')} events)"
    )

    def not_modified():
        response = client.get(f"/feeds/{ctx['staff_secret']}.ics", HTTP_IF_NONE_MATCH=etag)
        assert response.status_code == 304, response.status_code

    token = feeds.active_token(ctx["staff_secret"])
    loaded = feeds.load_feed(token)

    def render_only():
        loaded.render()

    auth = {"HTTP_AUTHORIZATION": f"Bearer {ctx['api_secret']}"}
    url = "/api/v1/bookings/"
    params = {"machine": ctx["machine"].pk, "page_size": 200}

    def json_all():
        page, total = 1, 0
        while True:
            response = client.get(url, {**params, "page": page}, **auth)
            assert response.status_code == 200, response.content[:300]
            data = response.json()
            total += len(data["results"])
            if not data["next"]:
                break
            page += 1
        assert total == n_events, total

    def json_page():
        assert client.get(url, params, **auth).status_code == 200

    from booking.models import Booking

    rows = list(
        Booking.objects.filter(machine=ctx["machine"]).values_list(
            "id",
            "updated_at",
            "sequence",
            "status",
            "start",
            "end",
            "title",
            "note",
            "organization__legal_name",
            "booked_by__full_name",
        )
    )

    def with_icalendar():
        from icalendar import Calendar, Event

        calendar = Calendar.new(prodid="-//bench//EN", uid="bench", name="Bench")
        for pk, updated, sequence, status, start, end, title, note, org, booker in rows:
            calendar.add_component(
                Event.new(
                    uid=booking_uid(pk),
                    stamp=updated,
                    sequence=sequence,
                    status=ICAL_STATUS[status],
                    start=start,
                    end=end,
                    summary=f"Printer 1 — {title} — {org}",
                    description=f"{org}\n{booker}\n{note}",
                    location="Bench lab",
                )
            )
        calendar.to_ical()

    print("1. Full feed")
    report("GET feed, platform staff (1,000 events)", staff, count, budget, target=100)
    report("GET feed, SME member (busy blocks)", sme, count, budget, target=100)
    report("render only (no HTTP, no queries)", render_only, count, budget)
    print("2. Conditional")
    report("GET feed with If-None-Match -> 304", not_modified, count, budget, target=10)
    print("3. Baseline: the same bookings as JSON (API token)")
    report("GET /api/v1/bookings/ x5 pages of 200", json_all, count, budget)
    report("GET /api/v1/bookings/ 1 page of 200", json_page, count, budget)
    print("4. Reference: the same events built by the icalendar library")
    report("icalendar Calendar.to_ical()", with_icalendar, max(count // 10, 5), budget)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, in seconds")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/fabpool_feedsbench")
    count, budget = (30, 3) if args.quick else (200, 20)

    t0 = time.perf_counter()
    recreate_database(url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    ctx = seed(EVENTS)
    print(f"Seeded in {time.perf_counter() - t0:.1f} s ({'quick' if args.quick else 'full'} run)")
    bench(ctx, count, budget)


if __name__ == "__main__":
    main()
