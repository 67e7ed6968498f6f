"""Server-side render time and query count of every main page, with demo data.

    .venv/bin/python bench/pages.py [--quick]                  # SQLite in a fresh temp dir
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fabpool_bench_pages \\
        .venv/bin/python bench/pages.py                          # PostgreSQL (recreated)

Seeds the demo (manage.py seed_demo) plus bookings: upcoming and past ones for
every SME person, pending ones for the approval queue, a few maintenance windows.
Then renders each page through Django's test client (the whole middleware stack,
templates included; no network) and prints a table: rows shown, p50 and p95 in
milliseconds, queries, against the target of 150 ms, next to a same-run baseline
(the sign-in page, which reads almost nothing). Not part of the test suite.
"""

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
if not os.environ.get("DATABASE_URL"):
    os.environ["FABPOOL_VAR_DIR"] = tempfile.mkdtemp(prefix="fabpool-bench-pages-")

TARGET_MS = 150


def setup_database() -> None:
    import django

    if os.environ.get("DATABASE_URL"):
        from bench.booking import recreate_database

        recreate_database(os.environ["DATABASE_URL"])
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115


def seed_bookings(per_person: int) -> dict:
    """Upcoming bookings through the booking service (every rule checked), past
    ones written directly (the service refuses the past, rightly)."""
    from django.utils import timezone

    from booking import services
    from booking.errors import BookingConflict, BookingRejected
    from booking.models import Booking
    from core.models import Membership
    from equipment.models import Machine, MaintenanceWindow

    people = list(
        Membership.objects.filter(role__in=["admin", "member"]).select_related(
            "user", "organization"
        )
    )
    booked = 0
    for n, membership in enumerate(people):
        machines = list(
            Machine.objects.filter(
                platform__memberships__organization=membership.organization,
                qualification_required=False,
                is_active=True,
            ).select_related("platform")
        )
        for i in range(per_person):
            machine = machines[(i + n) % len(machines)]
            tz = machine.platform.tzinfo
            day = timezone.localdate() + timedelta(days=1 + (i * 3 + n) % 60)
            while day.weekday() >= 5:
                day += timedelta(days=1)
            start = datetime.combine(day, datetime.min.time()).replace(tzinfo=tz)
            start += timedelta(hours=9 + (i + n) % 3 * 3)
            try:
                services.create_booking(
                    machine=machine,
                    organization=membership.organization,
                    by=membership.user,
                    start=start,
                    end=start + timedelta(hours=2),
                    title=f"Bench {i}",
                )
                booked += 1
            except (BookingRejected, BookingConflict):
                pass
            past = start - timedelta(days=90)
            Booking.objects.create(
                machine=machine,
                organization=membership.organization,
                booked_by=membership.user,
                start=past,
                end=past + timedelta(hours=2),
                blocked_until=past + timedelta(hours=2),
                status=Booking.Status.COMPLETED,
                title=f"Past {i}",
            )
    for machine in Machine.objects.all()[:6]:
        start = timezone.now() + timedelta(days=20)
        MaintenanceWindow.objects.create(
            machine=machine, start=start, end=start + timedelta(hours=4), reason="Bench"
        )
    return {"upcoming": booked, "people": len(people)}


def measure(client, url: str, runs: int) -> tuple[float, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):  # warm: template loading, caches
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        client.get(url)
        samples.append((time.perf_counter() - t0) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], len(queries)


def rows_shown(client, url: str):
    """How many rows the page lists (its paginated `page`, or its result list)."""
    context = client.get(url).context
    if context is None:
        return ""
    keys = ("page", "machines", "results", "bookings", "members", "windows", "platforms")
    for key in ("rows", "grants", "active", "opening_hours", "runs", "lines", *keys):
        if key in context and context[key] is not None:
            value = context[key]
            if isinstance(value, str):  # rows rendered in the view: count them
                return value.count("<tr>")
            return len(value.object_list if hasattr(value, "object_list") else value)
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer bookings and runs")
    args = parser.parse_args()
    per_person, runs = (8, 10) if args.quick else (40, 30)

    setup_database()
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.utils import timezone

    from booking.models import Booking
    from core.models import User
    from equipment.models import Machine, MachineType

    seeded = seed_bookings(per_person)
    total = Booking.objects.count()
    people, upcoming = seeded["people"], seeded["upcoming"]
    print(f"demo data: {people} SME people, {total} bookings ({upcoming} upcoming)")

    member = User.objects.get(email="hugo.bernard@mps-savoie.example")
    admin = User.objects.get(email="claire.martin@mps-savoie.example")
    manager = User.objects.get(email="manager@cobotique-lyon.example")
    organization = admin.memberships.get().organization_id
    printer = Machine.objects.get(name="Prusa Core One #1")
    mill = Machine.objects.get(name="Haas Mini Mill 2")
    # Pending bookings for the manager's queue.
    from booking import services
    from booking.errors import BookingConflict, BookingRejected

    for i in range(10):
        day = timezone.localdate() + timedelta(days=2 + i)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        start = datetime.combine(day, datetime.min.time()).replace(tzinfo=mill.platform.tzinfo)
        with contextlib.suppress(BookingRejected, BookingConflict):  # the queue gets shorter
            services.create_booking(
                machine=mill,
                organization=admin.memberships.get().organization,
                by=member,
                start=start + timedelta(hours=14),
                end=start + timedelta(hours=16),
            )
    booking = Booking.objects.filter(
        booked_by=member, status="confirmed", start__gt=timezone.now()
    ).first()
    # Today's board: bookings of the manager's platform under way or due today.
    lyon = mill.platform
    midnight = datetime.combine(timezone.now().astimezone(lyon.tzinfo).date(), datetime.min.time())
    midnight = midnight.replace(tzinfo=lyon.tzinfo)
    # The 08:00 ones are over (checked out, with consumables recorded), the 11:00 ones
    # checked in: their rows carry the consumables form.
    from billing.models import Consumable, ConsumableUse

    people = list(User.objects.filter(memberships__role="member"))
    filament = Consumable.objects.filter(platform=lyon).first()
    for i, machine in enumerate(Machine.objects.filter(platform=lyon)):
        for hour in (8, 11, 14, 17):
            start = midnight + timedelta(hours=hour)
            booking = Booking.objects.create(
                machine=machine,
                organization=people[i % len(people)].memberships.first().organization,
                booked_by=people[i % len(people)],
                start=start,
                end=start + timedelta(hours=2),
                blocked_until=start + timedelta(hours=2),
                title="Today",
                status=Booking.Status.COMPLETED if hour == 8 else Booking.Status.CONFIRMED,
                checked_in_at=start if hour in (8, 11) else None,
                checked_out_at=start + timedelta(hours=2) if hour == 8 else None,
            )
            if hour == 8 and filament is not None:
                ConsumableUse.objects.create(
                    booking=booking, consumable=filament, quantity=120, recorded_by=manager
                )
    # Calendar feeds of the member.
    from booking import feeds

    for kind, target in [("user", None), ("machine", printer.pk), ("organization", organization)]:
        feeds.create_feed_token(by=member, kind=kind, name=f"Bench {kind}", target_id=target)
    today = timezone.localdate()
    season = (
        f"/dashboard/platforms/{lyon.pk}/?first_day={(today - timedelta(days=120)).isoformat()}"
        f"&last_day={today.isoformat()}&unit=week&entity=machine"
    )
    week = timezone.localdate() + timedelta(days=7 - timezone.localdate().weekday())
    fdm = MachineType.objects.get(slug="fdm-printer").pk
    first, last = week.isoformat(), (week + timedelta(days=6)).isoformat()

    # Billing: last month run (the demo issued the month before), and an SME's accountant.
    from billing.models import Invoice
    from billing.runs import bill_period

    accountant = User.objects.get(email="accounting@cobotique-lyon.example")
    sme_accountant = User.objects.get(email="compta@mps-savoie.example")
    last_month = (timezone.localdate().replace(day=1) - timedelta(days=1)).replace(day=1)
    bill_period(platform=lyon, month=last_month, by=accountant)
    draft = Invoice.objects.filter(platform=lyon, status="draft").first()
    issued = Invoice.objects.filter(platform=lyon, status="issued", organization=organization)
    issued = issued.first()
    billing = f"/billing/platforms/{lyon.pk}"

    anonymous = Client()
    clients = {}
    for who in (member, admin, manager, accountant, sme_accountant):
        clients[who.email] = Client()
        clients[who.email].force_login(who)
    pages = [
        ("baseline: sign-in page", anonymous, "/accounts/login/"),
        ("home", clients[member.email], "/"),
        ("platforms", clients[member.email], "/platforms/"),
        ("machines", clients[member.email], "/machines/"),
        ("machines, filtered", clients[member.email], f"/machines/?type={fdm}&q=prusa"),
        ("machine page", clients[member.email], f"/machines/{printer.pk}/"),
        (
            "machine week (JSON)",
            clients[member.email],
            f"/machines/{printer.pk}/events/?start={first}T00:00:00&end={last}T23:59:00",
        ),
        (
            "find me a machine",
            clients[member.email],
            f"/find/?machine_type={fdm}&duration=120&first_day={first}&last_day={last}",
        ),
        ("my bookings", clients[member.email], "/bookings/"),
        ("my bookings, past", clients[member.email], "/bookings/?show=past"),
        ("booking", clients[member.email], f"/bookings/{booking.pk}/"),
        ("cancel booking", clients[member.email], f"/bookings/{booking.pk}/cancel/"),
        ("company members", clients[admin.email], f"/organizations/{organization}/"),
        ("company bookings", clients[admin.email], f"/organizations/{organization}/bookings/"),
        ("approvals", clients[manager.email], "/desk/approvals/"),
        ("maintenance", clients[manager.email], "/desk/maintenance/"),
        ("desk: today", clients[manager.email], f"/desk/platforms/{lyon.pk}/today/"),
        ("desk: machines", clients[manager.email], f"/desk/platforms/{lyon.pk}/machines/"),
        (
            "desk: machine policy",
            clients[manager.email],
            f"/desk/platforms/{lyon.pk}/machines/{mill.pk}/",
        ),
        ("desk: hours", clients[manager.email], f"/desk/platforms/{lyon.pk}/hours/"),
        (
            "desk: qualifications",
            clients[manager.email],
            f"/desk/platforms/{lyon.pk}/qualifications/",
        ),
        ("dashboard (5 weeks)", clients[manager.email], f"/dashboard/platforms/{lyon.pk}/"),
        ("dashboard (4 months)", clients[manager.email], season),
        ("dashboard, SME admin", clients[admin.email], season),
        ("calendar feeds", clients[member.email], "/calendar-feeds/"),
        ("email preferences", clients[member.email], "/email-preferences/"),
        ("billing: runs", clients[accountant.email], f"{billing}/runs/"),
        ("billing: drafts", clients[accountant.email], f"{billing}/drafts/"),
        ("billing: draft", clients[accountant.email], f"{billing}/documents/{draft.pk}/"),
        ("billing: issued", clients[accountant.email], f"{billing}/invoices/"),
        ("billing: exports", clients[accountant.email], f"{billing}/exports/"),
        (
            "invoices (SME)",
            clients[sme_accountant.email],
            f"/organizations/{organization}/invoices/",
        ),
        (
            "invoice (SME)",
            clients[sme_accountant.email],
            f"/organizations/{organization}/invoices/{issued.pk}/",
        ),
    ]
    timings = [(name, measure(client, url, runs)) for name, client, url in pages]
    # Only now: the test environment's template instrumentation (which gives the
    # context, hence the rows) costs time of its own.
    setup_test_environment()
    rows = [rows_shown(client, url) for _name, client, url in pages]
    print(f"\n{'page':<24} {'rows':>5} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}  target")
    slow = []
    baseline = timings[0][1][0]
    for (name, (p50, p95, queries)), shown in zip(timings, rows, strict=True):
        verdict = "ok" if p50 <= TARGET_MS else "SLOW"
        if verdict == "SLOW":
            slow.append(name)
        ratio = f"{p50 / baseline:.1f}× baseline"
        print(f"{name:<24} {shown!s:>5} {p50:8.1f} {p95:8.1f} {queries:8d}  {verdict} ({ratio})")
    print(
        f"\ntarget: p50 <= {TARGET_MS} ms per page; "
        + ("all met" if not slow else f"missed: {', '.join(slow)}")
    )


if __name__ == "__main__":
    main()
