"""Journeys through the pages in a real browser: an SME member finds a free 3D
printer, books it by dragging on the calendar, meets a conflict and takes a
suggested slot, finds the booking in "my bookings" and cancels it; a platform
manager approves a pending booking and plans a maintenance window. In English
and in French (the browser's language decides), and at a phone's width."""

import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import ConsumableUse
from booking import services
from booking.models import Booking
from core.models import Organization, User
from equipment.models import Machine, MachineType, MaintenanceWindow
from tests.booking.conftest import next_weekday
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEMBER = "hugo.bernard@mps-savoie.example"


def drag(page, day: str, start: str, end: str) -> None:
    """Press on `day` (YYYY-MM-DD) at the half-hour lane `start` and release at
    the bottom of the lane before `end` (both HH:MM), as a person would."""
    column = page.locator(f".fc-timegrid-col[data-date='{day}']").bounding_box()
    first = page.locator(f".fc-timegrid-slot-lane[data-time='{start}:00']").bounding_box()
    hours, minutes = map(int, end.split(":"))
    total = hours * 60 + minutes - 30  # the last half-hour lane inside the slot
    last = page.locator(
        f".fc-timegrid-slot-lane[data-time='{total // 60:02d}:{total % 60:02d}:00']"
    ).bounding_box()
    x = column["x"] + column["width"] / 2
    page.mouse.move(x, first["y"] + 4)
    page.mouse.down()
    page.mouse.move(x, (first["y"] + last["y"]) / 2, steps=5)
    page.mouse.move(x, last["y"] + last["height"] - 4, steps=5)
    page.mouse.up()


def book_by_dragging_then_cancel(page, base_url, screenshot, tag):
    log_in(page, base_url, MEMBER)
    screenshot(page, f"{tag}-home")
    page.locator("nav.nav a[href='/machines/']").click()
    screenshot(page, f"{tag}-catalogue")

    # Find a free 3D printer for two hours, between tomorrow and next week.
    page.locator("nav.nav a[href='/find/']").click()
    page.select_option("#id_machine_type", label="3D printer (FDM)")
    page.select_option("#id_duration", "120")
    page.locator("main form button[type=submit]").click()
    results = page.locator("main article")
    expect(results.first).to_contain_text("Prusa Core One #1")
    screenshot(page, f"{tag}-find")

    # Its week opens on the day of the first free slot.
    results.first.locator("h3 a").click()
    expect(page.locator("#calendar[data-ready='true']")).to_be_visible()
    page.wait_for_selector(".fc-bg-event.free")
    day = page.locator("#id_start_date").input_value()
    assert day, "the slot's day fills the form"

    drag(page, day, "10:00", "12:00")
    expect(page.locator("#id_start_time")).to_have_value("10:00")
    expect(page.locator("#id_end_time")).to_have_value("12:00")
    page.locator("#book-button").click()
    expect(page.locator("#booking-panel .notice.ok")).to_be_visible()
    expect(page.locator(".fc-event.mine")).to_have_count(1)  # the calendar shows it at once
    screenshot(page, f"{tag}-machine-booked")

    # The same slot again: taken; the reasons and the alternatives are shown in place.
    page.locator("#book-button").click()
    expect(page.locator("#conflict")).to_be_visible()
    suggestions = page.locator("#suggestions .slot-button")
    expect(suggestions.first).to_be_visible()
    screenshot(page, f"{tag}-machine-conflict")
    suggestions.first.click()
    expect(page.locator("#booking-panel .notice.ok")).to_be_visible()
    expect(page.locator(".fc-event.mine")).to_have_count(2)

    # Both are in "my bookings"; cancel one.
    page.locator("nav a[href='/bookings/']").click()
    items = page.locator(".booking-list li")
    expect(items).to_have_count(2)
    screenshot(page, f"{tag}-my-bookings")
    items.first.locator("a[href$='/cancel/']").click()
    screenshot(page, f"{tag}-cancel")
    page.locator("main form button[type=submit]").click()
    expect(page.locator(".messages .success")).to_be_visible()
    expect(page.locator(".booking-list li")).to_have_count(1)
    assert Booking.objects.filter(status=Booking.Status.CANCELLED).count() == 1


def test_a_member_books_a_3d_printer_by_dragging_in_english(demo, english, screenshot):
    book_by_dragging_then_cancel(english, demo.url, screenshot, "en")

    assert english.locator("html").get_attribute("lang") == "en"


def test_a_member_books_a_3d_printer_by_dragging_in_french(demo, french, screenshot):
    french.goto(f"{demo.url}/accounts/login/")
    assert french.locator("html").get_attribute("lang") == "fr"  # the browser asked for it

    book_by_dragging_then_cancel(french, demo.url, screenshot, "fr")

    french.goto(f"{demo.url}/machines/")
    french.locator("main article h3 a").first.click()
    expect(french.locator(".fc-today-button")).to_have_text("Aujourd'hui")


def test_the_language_switch_turns_the_pages_to_english(demo, french, screenshot):
    french.goto(f"{demo.url}/accounts/login/")
    screenshot(french, "fr-login")

    french.locator("form.lang button[value=en]").click()

    expect(french.locator("html")).to_have_attribute("lang", "en")
    expect(french.locator("form.lang button[value=en]")).to_have_attribute("aria-pressed", "true")


def test_a_member_books_by_form_on_a_phone(demo, phone, screenshot):
    log_in(phone, demo.url, MEMBER)
    screenshot(phone, "phone-home")
    printer = Machine.objects.get(name="Prusa Core One #2")
    day = next_weekday(2).date()  # a Wednesday, next week

    phone.goto(f"{demo.url}/machines/{printer.pk}/")
    expect(phone.locator("#calendar[data-ready='true']")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing overflows
    phone.fill("#id_start_date", day.isoformat())
    phone.fill("#id_start_time", "14:00")
    phone.fill("#id_end_time", "15:30")
    phone.locator("#book-button").click()
    expect(phone.locator("#booking-panel .notice.ok")).to_be_visible()
    screenshot(phone, "phone-machine")

    phone.goto(f"{demo.url}/bookings/")
    expect(phone.locator(".booking-list li")).to_have_count(1)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "phone-my-bookings")
    phone.goto(f"{demo.url}/machines/")
    screenshot(phone, "phone-catalogue")


def test_finding_a_slot_and_the_company_page_fit_a_phone(demo, phone, screenshot):
    admin = "claire.martin@mps-savoie.example"
    log_in(phone, demo.url, admin)
    fdm = MachineType.objects.get(slug="fdm-printer")
    first = next_weekday(0).date()
    window = urlencode(
        {
            "machine_type": fdm.pk,
            "duration": 120,
            "first_day": first.isoformat(),
            "last_day": (first + timedelta(days=4)).isoformat(),
        }
    )

    phone.goto(f"{demo.url}/find/?{window}")
    expect(phone.locator("main article").first).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "phone-find")

    company = Organization.objects.get(memberships__user__email=admin)
    phone.goto(f"{demo.url}/organizations/{company.pk}/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    current = phone.locator("nav.nav a[aria-current=page]")
    expect(current).to_have_text("Mon entreprise")  # the phone is French
    expect(current).to_be_in_viewport()
    expect(phone.locator("form[action$='/remove/'] button").first).to_be_in_viewport()
    screenshot(phone, "phone-company-members")

    # A refused invitation is shown on the same page, which stays the current one.
    phone.fill("#id_email", "not an address")
    phone.locator("form[action$='/invite/'] button[type=submit]").click()
    expect(phone.locator("#id_email")).to_have_attribute("aria-invalid", "true")
    expect(phone.locator("nav.nav a[aria-current=page]")).to_have_text("Mon entreprise")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_phone_sees_field_errors_next_to_the_fields(demo, phone):
    log_in(phone, demo.url, MEMBER)
    printer = Machine.objects.get(name="Prusa Core One #2")
    phone.goto(f"{demo.url}/machines/{printer.pk}/")

    phone.fill("#id_start_date", next_weekday(2).date().isoformat())
    phone.fill("#id_start_time", "14:00")
    phone.fill("#id_end_time", "13:00")
    phone.fill("#id_title", "Prototype housing")
    phone.locator("#book-button").click()

    end_field = phone.locator(".field", has=phone.locator("#id_end_time"))
    expect(end_field.locator(".errorlist")).to_be_visible()
    expect(phone.locator("#id_end_time")).to_have_attribute("aria-invalid", "true")
    expect(phone.locator("#id_title")).to_have_value("Prototype housing")  # kept


def test_a_manager_approves_a_pending_booking_and_plans_maintenance(demo, english, screenshot):
    mill = Machine.objects.select_related("platform").get(name="Haas Mini Mill 2")
    member = User.objects.get(email=MEMBER)
    start = next_weekday(1).replace(hour=9)  # a Tuesday, next week, 09:00 Paris
    pending = services.create_booking(
        machine=mill,
        organization=Organization.objects.get(memberships__user=member),
        by=member,
        start=start,
        end=start + timedelta(hours=3),
        title="Bracket batch",
    )
    assert pending.status == Booking.Status.PENDING
    page = english

    log_in(page, demo.url, "manager@cobotique-lyon.example")
    page.locator("nav a[href='/desk/approvals/']").click()
    expect(page.locator(".booking-list li")).to_contain_text("Bracket batch")
    screenshot(page, "en-desk-approvals")
    page.locator(".booking-list li form[action$='/approve/'] button").click()
    expect(page.locator(".messages .success")).to_be_visible()
    expect(page.locator(".empty")).to_be_visible()
    pending.refresh_from_db()
    assert pending.status == Booking.Status.CONFIRMED

    page.locator("nav.nav a[href='/desk/today/']").click()
    page.locator("nav.tabs a[href='/desk/maintenance/']").click()
    page.select_option("#id_machine", label="Haas Mini Mill 2")
    day = next_weekday(3).date()
    page.fill("#id_start_date", day.isoformat())
    page.fill("#id_start_time", "08:00")
    page.fill("#id_end_time", "12:30")
    page.fill("#id_reason", "Spindle service")
    page.locator("main form button[type=submit]").click()
    expect(page.locator(".messages .success")).to_be_visible()
    expect(page.locator(".booking-list")).to_contain_text("Spindle service")
    screenshot(page, "en-desk-maintenance")
    window = MaintenanceWindow.objects.get(reason="Spindle service")
    assert window.start.astimezone(mill.platform.tzinfo).hour == 8
    assert window.start > timezone.now()

    week = urlencode({"start": window.start.isoformat(), "end": window.end.isoformat()})
    page.goto(f"{demo.url}/machines/{mill.pk}/?{week}")
    expect(page.locator(".fc-event.maintenance")).to_have_count(1)


def test_a_company_admin_invites_a_colleague(demo, english, screenshot):
    log_in(english, demo.url, "claire.martin@mps-savoie.example")
    english.locator("nav.nav a[href^='/organizations/']").click()

    english.fill("#id_email", "not an address")
    english.locator("form[action$='/invite/'] button[type=submit]").click()
    expect(english.locator("#id_email")).to_have_attribute("aria-invalid", "true")
    expect(english.locator("#id_email")).to_have_value("not an address")
    english.fill("#id_email", "lea.roux@mps-savoie.example")
    english.locator("form[action$='/invite/'] button[type=submit]").click()

    expect(english.locator(".messages .success")).to_be_visible()
    expect(english.locator("main")).to_contain_text("lea.roux@mps-savoie.example")
    screenshot(english, "en-company-members")


def test_an_operator_checks_a_member_in_and_out_on_todays_board(demo, english, screenshot):
    printer = Machine.objects.select_related("platform").get(name="Prusa Core One #2")
    member = User.objects.get(email=MEMBER)
    now = timezone.now()
    # Under way since five minutes: written directly, as the rules forbid booking the past.
    due = Booking.objects.create(
        machine=printer,
        organization=Organization.objects.get(memberships__user=member),
        booked_by=member,
        start=now - timedelta(minutes=5),
        end=now + timedelta(minutes=55),
        blocked_until=now + timedelta(minutes=55),
        title="Housing prototype",
    )
    page = english
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    log_in(page, demo.url, "operator@additive-nantes.example")
    page.locator("nav.nav a[href='/desk/today/']").click()
    row = page.locator(f"#booking-{due.pk}")
    expect(row).to_have_class("late")  # due five minutes ago, not there yet
    expect(row).to_contain_text("Hugo Bernard")
    row.locator("form[action$='/check-in/'] button").click()
    expect(page.locator(".messages .success")).to_contain_text("checked in")
    expect(row.locator("form[action$='/check-out/'] button")).to_be_visible()
    row.locator("form[action$='/check-out/'] button").click()
    expect(page.locator(".messages .success")).to_contain_text("checked out")
    expect(row).to_contain_text("Completed")

    # Checked out: the row's consumables form is open, to record what was used.
    quantity = row.locator("input[name$='-quantity']")
    expect(quantity).to_be_visible()
    screenshot(page, "en-desk-today-consumables")
    row.locator("select[name$='-consumable']").select_option(label="PLA filament (g)")
    quantity.fill("-5")
    row.locator(".record-form button[type=submit]").click()
    expect(quantity).to_have_attribute("aria-invalid", "true")  # next to the field, kept
    expect(quantity).to_have_value("-5")
    expect(row.locator(".errorlist")).to_contain_text("positive")
    quantity.fill("250")
    row.locator(".record-form button[type=submit]").click()
    expect(page.locator(".messages .success")).to_contain_text("PLA filament, 250 g")
    expect(row.locator(".use-list")).to_contain_text("PLA filament, 250 g")
    screenshot(page, "en-desk-today")

    due.refresh_from_db()
    assert due.status == Booking.Status.COMPLETED and due.checked_in_at and due.checked_out_at
    assert [(u.consumable.name, u.quantity) for u in ConsumableUse.objects.filter(booking=due)] == [
        ("PLA filament", 250)
    ]
    assert not errors


def test_the_utilisation_dashboard_draws_its_charts(demo, english, screenshot):
    # Some history: the demo only books ahead. Written directly, as the rules forbid the past.
    robots = Machine.objects.filter(platform__slug="cobotique-lyon").order_by("name")
    companies = list(
        Organization.objects.filter(platform_memberships__platform__slug="cobotique-lyon")
    )
    person = User.objects.get(email=MEMBER)
    monday = timezone.now().replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(
        days=timezone.now().weekday() + 21
    )
    for n in range(18):
        start = monday + timedelta(days=n, hours=n % 5)
        Booking.objects.create(
            machine=robots[n % len(robots)],
            organization=companies[n % len(companies)],
            booked_by=person,
            start=start,
            end=start + timedelta(hours=2 + n % 3),
            blocked_until=start + timedelta(hours=2 + n % 3),
            status=Booking.Status.NO_SHOW if n % 6 == 0 else Booking.Status.COMPLETED,
            checked_in_at=None if n % 6 == 0 else start,
            checked_out_at=None if n % 6 == 0 else start + timedelta(hours=2),
        )
    page = english
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    log_in(page, demo.url, "manager@cobotique-lyon.example")
    page.locator("nav.nav a[href='/dashboard/']").click()

    for canvas in ["utilisation", "organizations", "no-shows", "refused"]:
        expect(page.locator(f"canvas#chart-{canvas}")).to_be_visible()
    # Chart.js has drawn: it sizes each canvas and registers a chart for it.
    drawn = page.evaluate(
        "[...document.querySelectorAll('canvas')].filter(c => Chart.getChart(c)).length"
    )
    assert drawn == 4
    expect(page.locator("table.numbers tbody tr").first).to_be_visible()
    # Peak hours: a table of local hours × weekdays, each cell saying its occupancy.
    heatmap = page.locator("table.heatmap")
    expect(heatmap.locator("caption")).to_contain_text("Europe/Paris")
    expect(heatmap.locator("th[scope=row]").first).to_have_text(re.compile(r"^\d\d:00$"))
    # The demo's bookings: some open hours of the week were booked.
    assert heatmap.locator("td").filter(has_text=re.compile(r"^[1-9]\d*\u00a0%")).count() > 0
    screenshot(page, "en-dashboard")
    assert not problems


def test_a_member_subscribes_to_a_calendar_and_turns_off_reminders(demo, english, screenshot):
    page = english
    log_in(page, demo.url, MEMBER)
    page.locator("details.menu summary").click()
    page.locator(".menu-body a[href='/calendar-feeds/']").click()

    page.select_option("#id_about", "user")
    page.fill("#id_name", "Lab bookings")
    page.locator("main form button[type=submit]").click()
    link = page.locator("#feed-link")
    expect(link).to_have_value(re.compile(r"^http://.+/feeds/[A-Za-z0-9_-]{22}\.ics$"))
    expect(page.locator("#new-feed a[href^='webcal://']")).to_be_visible()
    expect(page.locator("#new-feed a[href^='https://calendar.google.com/']")).to_be_visible()
    screenshot(page, "en-calendar-feeds")
    page.reload()  # shown once: gone when the page is loaded again
    expect(page.locator("#feed-link")).to_have_count(0)
    expect(page.locator(".booking-list")).to_contain_text("Lab bookings")

    page.goto(f"{demo.url}/email-preferences/")
    page.locator("label[for='id_booking_reminder']").click()  # the switch, as a person would
    expect(page.locator("#id_booking_reminder")).not_to_be_checked()
    page.locator("main form button[type=submit]").click()
    expect(page.locator(".messages .success")).to_be_visible()
    expect(page.locator("#id_booking_reminder")).not_to_be_checked()
    expect(page.locator("input[disabled]")).to_have_count(3)
    screenshot(page, "en-email-preferences")
