"""The SME member's pages: catalogue, a machine's week, booking (form, conflicts
and suggestions, series), "find me a machine", my bookings and their lifecycle.
The pages call booking/services.py: these tests check what people see."""

from datetime import timedelta
from html import unescape

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from booking.models import Booking
from equipment.models import Machine
from tests import factories
from tests.booking.conftest import PARIS, at, next_weekday


def period(day, start_hour, end_hour, **extra):
    return {
        "start_date": day.date().isoformat(),
        "start_time": f"{start_hour:02d}:00",
        "end_time": f"{end_hour:02d}:00",
        **extra,
    }


def test_the_catalogue_lists_the_machines_of_my_platforms_only(member_client, lab):
    html = member_client.get("/machines/").content.decode()

    assert "Printer a" in html
    assert "Printer b" not in html
    assert "Old printer a" not in html  # retired


def test_the_catalogue_filters_by_type_label_platform_and_text(member_client, lab):
    label = factories.LabelFactory(name="Vitrine Industrie du Futur")
    lab.a.platform.labels.add(label)
    cobot = factories.MachineFactory(platform=lab.a.platform, name="UR5e cobot")

    def names(query):
        response = member_client.get("/machines/", query)
        return {m.name for m in response.context["machines"]}

    assert names({"type": cobot.machine_type_id}) == {"UR5e cobot"}
    assert names({"q": "ur5"}) == {"UR5e cobot"}
    assert names({"label": label.pk}) == {"UR5e cobot", "Printer a"}
    assert names({"platform": lab.a.platform.pk, "q": "printer"}) == {"Printer a"}
    assert names({"q": "nothing like it"}) == set()


def test_an_empty_catalogue_says_what_to_do(member_client):
    html = member_client.get("/machines/", {"q": "nothing like it"}).content.decode()

    assert "No machine matches." in html
    assert "Show all machines" in html


def test_a_foreign_platform_in_the_filter_is_an_error_not_a_leak(member_client, lab):
    response = member_client.get("/machines/", {"platform": lab.b.platform.pk})

    assert response.context["form"].errors["platform"]


def test_the_machine_page_shows_specs_policy_and_the_qualification_needed(member_client, lab):
    Machine.objects.filter(pk=lab.a.machine.pk).update(qualification_required=True)
    lab.a.qualification.machine_type = lab.a.machine.machine_type
    lab.a.qualification.save()

    html = member_client.get(f"/machines/{lab.a.machine.pk}/").content.decode()

    assert "Build volume (mm)" in html and "250 × 210 × 220" in html
    assert lab.a.qualification.name in html
    assert "You hold it" in html
    assert 'id="calendar"' in html
    assert "/static/vendor/fullcalendar/index.global.min.js" in html


def test_the_machine_page_shows_the_price_of_my_tier_and_staff_see_every_tier(
    member_client, lab, client
):
    from datetime import date
    from decimal import Decimal

    from billing.models import Tariff

    since = {"platform": lab.a.platform, "valid_from": date(2020, 1, 1)}
    Tariff.objects.create(  # every tier
        **since,
        machine_type=lab.a.machine.machine_type,
        hourly_rate=Decimal("47.50"),
        increment_minutes=15,
        minimum_minutes=30,
        setup_fee=Decimal("12.00"),
        no_show_share=Decimal("1"),
    )
    Tariff.objects.create(**since, machine=lab.a.machine, tier="member", hourly_rate=30)
    url = f"/machines/{lab.a.machine.pk}/"

    mine = unescape(member_client.get(url).content.decode())  # a standard-tier SME
    assert "€47.50 per hour excl. VAT" in mine and "started 15 min, at least 30 min" in mine
    assert "€12.00" in mine and "100% of the booked amount" in mine
    assert "€30.00" not in mine and "Price tier" not in mine

    client.force_login(lab.a.manager)
    theirs = unescape(client.get(url).content.decode())
    assert "€47.50 per hour" in theirs and "€30.00 per hour" in theirs and "Price tier" in theirs

    client.force_login(lab.b.manager)  # another platform: no price, no page
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/machines/{b}/",
        "/machines/{b}/events/?start=2030-01-01T00:00:00&end=2030-01-08T00:00:00",
    ],
)
def test_another_platforms_machine_is_not_found(member_client, lab, url):
    response = member_client.get(url.format(b=lab.b.machine.pk))

    assert response.status_code == 404


def test_pages_ask_anonymous_people_to_sign_in(client, lab):
    for url in ["/machines/", f"/machines/{lab.a.machine.pk}/", "/bookings/", "/find/"]:
        response = client.get(url)

        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


# --- The week -------------------------------------------------------------------------


def test_the_week_shows_free_time_busy_time_and_my_bookings_in_local_time(member_client, lab, book):
    day = next_weekday(1)
    mine = book(day, 10, title="Housing v2")
    other_sme = factories.OrganizationFactory(legal_name="Secret SME")
    factories.PlatformMembershipFactory(organization=other_sme, platform=lab.a.platform)
    someone = factories.MembershipFactory(organization=other_sme).user
    book(day, 14, by=lab.a.manager)  # staff books for the SME: still ours
    from booking import services

    services.create_booking(
        machine=lab.a.machine,
        organization=other_sme,
        by=someone,
        start=at(day, 16),
        end=at(day, 17),
    )

    events = member_client.get(
        f"/machines/{lab.a.machine.pk}/events/",
        {
            "start": day.date().isoformat() + "T00:00:00",
            "end": (day + timedelta(days=1)).date().isoformat() + "T00:00:00",
        },
    ).json()

    titled = {e["start"]: e for e in events if e.get("display") != "background"}
    assert titled[day.date().isoformat() + "T10:00"]["title"] == "Housing v2"
    assert titled[day.date().isoformat() + "T10:00"]["url"] == f"/bookings/{mine.pk}/"
    assert titled[day.date().isoformat() + "T16:00"]["title"] == "Booked"  # whose, never said
    assert "Secret SME" not in str(events)
    free = [(e["start"][11:], e["end"][11:]) for e in events if e.get("display") == "background"]
    assert free == [("08:00", "10:00"), ("11:00", "14:00"), ("15:00", "16:00"), ("17:00", "18:00")]


def test_the_week_shows_no_free_time_in_the_past(member_client, lab):
    day = next_weekday(1)
    window = {
        "start": day.date().isoformat() + "T00:00:00",
        "end": (day + timedelta(days=1)).date().isoformat() + "T00:00:00",
    }

    with time_machine.travel(at(day, 12, 20), tick=False):
        events = member_client.get(f"/machines/{lab.a.machine.pk}/events/", window).json()

    free = [(e["start"][11:], e["end"][11:]) for e in events if e.get("display") == "background"]
    assert free == [("12:20", "18:00")]


def test_the_week_refuses_a_window_that_is_too_long(member_client, lab):
    response = member_client.get(
        f"/machines/{lab.a.machine.pk}/events/",
        {"start": "2030-01-01T00:00:00", "end": "2030-06-01T00:00:00"},
    )

    assert response.status_code == 400


# --- Booking ----------------------------------------------------------------------------


def test_booking_by_form_books_and_shows_the_booking(member_client, lab):
    day = next_weekday(1)

    response = member_client.post(
        f"/machines/{lab.a.machine.pk}/book/",
        period(day, 9, 11, organization=lab.a.org.pk, title="Jig"),
    )

    booking = Booking.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/bookings/{booking.pk}/"
    assert (booking.start, booking.end, booking.title) == (at(day, 9), at(day, 11), "Jig")
    assert booking.booked_by == lab.a.org_member


def test_booking_through_htmx_answers_the_panel_and_refreshes_the_calendar(member_client, lab):
    day = next_weekday(1)

    response = member_client.post(
        f"/machines/{lab.a.machine.pk}/book/",
        period(day, 9, 11, organization=lab.a.org.pk),
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert response["HX-Trigger"] == "booking-changed"
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card booking-panel" id="booking-panel"')
    assert "Booked." in html


def test_broken_rules_are_shown_next_to_their_fields_and_keep_what_was_typed(member_client, lab):
    day = next_weekday(1)

    response = member_client.post(
        f"/machines/{lab.a.machine.pk}/book/",
        {**period(day, 6, 7), "start_time": "06:10", "organization": lab.a.org.pk, "title": "Jig"},
    )

    assert response.status_code == 400
    form = response.context["form"]
    assert "misaligned" not in str(form.errors)  # messages, not codes
    assert any("multiples of 15 minutes" in e for e in form.errors["start_time"])
    assert any("not open" in e for e in form.errors["start_time"])
    html = response.content.decode()
    assert 'value="06:10"' in html and 'value="Jig"' in html
    assert 'aria-invalid="true"' in html
    assert not Booking.objects.exists()


def test_bad_input_is_refused_per_field(member_client, lab):
    response = member_client.post(
        f"/machines/{lab.a.machine.pk}/book/",
        {"start_date": "31/31/2030", "start_time": "25:00", "end_time": "", "organization": 99999},
    )

    assert response.status_code == 400
    assert set(response.context["form"].errors) >= {
        "start_date",
        "start_time",
        "end_time",
        "organization",
    }


@pytest.mark.parametrize("day", ["0001-01-01", "1969-12-31", "3000-01-01", "9999-12-31"])
def test_days_outside_1970_to_2999_are_refused_per_field_not_a_server_error(
    member_client, lab, day
):
    """The calendar's first and last days are no instant in Paris time."""
    booked = member_client.post(
        f"/machines/{lab.a.machine.pk}/book/",
        {"start_date": day, "start_time": "09:00", "end_time": "10:00"},
    )
    found = member_client.get(
        "/find/",
        {
            "machine_type": lab.a.machine.machine_type_id,
            "duration": 120,
            "first_day": day,
            "last_day": day,
        },
    )

    assert booked.status_code == 400
    assert booked.context["form"].errors["start_date"] == ["Give a date between 1970 and 2999."]
    assert found.context["form"].errors["first_day"] == ["Give a date between 1970 and 2999."]
    assert not Booking.objects.exists()


def test_another_smes_organization_cannot_be_booked_for(member_client, lab):
    day = next_weekday(1)

    response = member_client.post(
        f"/machines/{lab.a.machine.pk}/book/", period(day, 9, 11, organization=lab.b.org.pk)
    )

    assert response.status_code == 400
    assert "organization" in response.context["form"].errors  # not offered, not only refused
    assert not Booking.objects.exists()


def test_a_conflict_shows_the_clash_and_suggestions_to_take_in_one_click(
    member_client, lab, book, second_printer
):
    day = next_weekday(1)
    book(day, 9, hours=2)

    response = member_client.post(
        f"/machines/{lab.a.machine.pk}/book/",
        period(day, 10, 12, organization=lab.a.org.pk, title="Jig"),
        HTTP_HX_REQUEST="true",
    )

    html = response.content.decode()
    assert "This time is already taken." in html
    suggestions = response.context["suggestions"]
    assert suggestions["same_machine"][0] == {"start": at(day, 11), "end": at(day, 13)}
    assert [m["name"] for m in suggestions["other_machines"]] == ["Printer a2"]
    assert f'action="/machines/{second_printer.pk}/book/"' in html  # one click: a form
    assert 'name="start_time" value="11:00"' in html

    taken = member_client.post(
        f"/machines/{second_printer.pk}/book/",
        period(day, 10, 12, organization=lab.a.org.pk, title="Jig"),
    )
    assert taken.status_code == 302
    assert Booking.objects.filter(machine=second_printer, title="Jig").exists()


def test_a_weekly_series_reports_every_occurrence(member_client, lab, book):
    day = next_weekday(1)
    book(day + timedelta(days=7), 9)  # the second Tuesday is taken

    refused = member_client.post(
        f"/machines/{lab.a.machine.pk}/book/",
        period(day, 9, 10, organization=lab.a.org.pk, repeat="WEEKLY", count=3),
        HTTP_HX_REQUEST="true",
    )
    assert "1 of 3 occurrences cannot be booked" in refused.content.decode()
    assert [line["bookable"] for line in refused.context["report"]] == [True, False, True]

    booked = member_client.post(
        f"/machines/{lab.a.machine.pk}/book/",
        period(
            day, 9, 10, organization=lab.a.org.pk, repeat="WEEKLY", count=3, skip_conflicts="on"
        ),
        HTTP_HX_REQUEST="true",
    )
    assert [line["booked"] for line in booked.context["report"]] == [True, False, True]
    series = booked.context["series"]
    page = member_client.get(f"/series/{series.pk}/")
    assert page.status_code == 200
    assert len(page.context["occurrences"]) == 2


def test_forms_need_their_csrf_token(lab):
    client = Client(enforce_csrf_checks=True)
    client.force_login(lab.a.org_member)
    day = next_weekday(1)

    response = client.post(
        f"/machines/{lab.a.machine.pk}/book/", period(day, 9, 11, organization=lab.a.org.pk)
    )

    assert response.status_code == 403
    assert not Booking.objects.exists()
    page = client.get(f"/machines/{lab.a.machine.pk}/").content.decode()
    assert page.count('name="csrfmiddlewaretoken"') >= 2  # language switch, booking form


# --- Find me a machine ----------------------------------------------------------------


def test_find_lists_the_earliest_free_slots_of_each_machine(
    member_client, lab, book, second_printer
):
    day = next_weekday(1)
    book(day, 8, hours=8)
    book(day, 16, hours=2)  # the first printer is busy all that day

    response = member_client.get(
        "/find/",
        {
            "machine_type": lab.a.machine.machine_type_id,
            "duration": 120,
            "first_day": day.date().isoformat(),
            "last_day": day.date().isoformat(),
        },
    )

    results = response.context["results"]
    assert [r["machine"].name for r in results] == ["Printer a2", "Printer a"]
    assert results[0]["slots"][0] == {"start": at(day, 8), "end": at(day, 10)}
    assert results[1]["slots"] == []
    html = response.content.decode()
    assert f'action="/machines/{second_printer.pk}/book/"' in html
    assert "No free slot of that length in this window." in html


def test_find_refuses_a_backwards_or_too_long_window(member_client, lab):
    today = timezone.localdate()
    query = {"machine_type": lab.a.machine.machine_type_id, "duration": 120}

    backwards = member_client.get(
        "/find/", {**query, "first_day": today, "last_day": today - timedelta(days=1)}
    )
    too_long = member_client.get(
        "/find/", {**query, "first_day": today, "last_day": today + timedelta(days=60)}
    )

    assert backwards.context["form"].errors["last_day"]
    assert too_long.context["form"].errors["last_day"]


# --- My bookings ----------------------------------------------------------------------


def test_my_bookings_lists_mine_upcoming_and_past(member_client, lab, book):
    day = next_weekday(1)
    upcoming = book(day, 9)
    cancelled = book(day, 11)
    from booking import services

    services.cancel_booking(booking=cancelled, by=lab.a.org_member)
    book(day, 14, by=lab.a.org_admin)  # a colleague's: on the company page, not here

    listed = member_client.get("/bookings/").context["page"].object_list
    past = member_client.get("/bookings/", {"show": "past"}).context["page"].object_list

    assert list(listed) == [upcoming]
    assert list(past) == [cancelled]


def test_no_booking_yet_says_what_to_do(member_client):
    html = member_client.get("/bookings/").content.decode()

    assert "No upcoming booking." in html
    assert 'href="/find/"' in html


def test_another_smes_booking_is_not_found(client, lab, book):
    booking = book(next_weekday(1), 9)
    client.force_login(lab.b.org_member)

    for url in [
        f"/bookings/{booking.pk}/",
        f"/bookings/{booking.pk}/cancel/",
    ]:
        assert client.get(url).status_code == 404
    assert client.post(f"/bookings/{booking.pk}/cancel/").status_code == 404
    assert client.post(f"/bookings/{booking.pk}/check-in/").status_code == 404
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED


def test_cancelling_late_warns_first(member_client, lab, book, time_machine):
    day = next_weekday(1)
    booking = book(day, 9)
    time_machine.move_to(at(day, 9) - timedelta(hours=3))

    page = member_client.get(f"/bookings/{booking.pk}/cancel/").content.decode()
    assert "the cancellation is late" in page

    response = member_client.post(f"/bookings/{booking.pk}/cancel/")
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED and booking.late_cancellation


def test_cancelling_early_says_there_is_no_charge(member_client, lab, book):
    booking = book(next_weekday(1), 9)

    page = member_client.get(f"/bookings/{booking.pk}/cancel/").content.decode()

    assert "There is no charge." in page


def test_moving_a_booking_keeps_its_rules_next_to_the_fields(member_client, lab, book):
    day = next_weekday(1)
    booking = book(day, 9)
    book(day, 14)

    clash = member_client.post(f"/bookings/{booking.pk}/", period(day, 14, 15))
    assert clash.status_code == 400
    assert "This time is already taken." in clash.content.decode()

    closed = member_client.post(f"/bookings/{booking.pk}/", period(day, 19, 20))
    assert closed.context["form"].errors["start_time"]

    moved = member_client.post(f"/bookings/{booking.pk}/", period(day, 11, 12))
    assert moved.status_code == 302
    booking.refresh_from_db()
    assert booking.start == at(day, 11)


def test_check_in_and_out_from_my_bookings(member_client, lab, book, time_machine):
    day = next_weekday(1)
    booking = book(day, 9)
    time_machine.move_to(at(day, 9) - timedelta(minutes=10))

    listed = member_client.get("/bookings/").content.decode()
    assert f'action="/bookings/{booking.pk}/check-in/"' in listed
    member_client.post(f"/bookings/{booking.pk}/check-in/", {"next": "/bookings/"})
    member_client.post(f"/bookings/{booking.pk}/check-out/", {"next": "https://evil.example/"})

    booking.refresh_from_db()
    assert booking.status == Booking.Status.COMPLETED


def test_checking_in_too_early_says_why(member_client, lab, book):
    booking = book(next_weekday(1), 9)

    response = member_client.post(f"/bookings/{booking.pk}/check-in/", follow=True)

    assert "Check in from 15 minutes before the start" in response.content.decode()


# --- Query counts do not grow with the rows shown --------------------------------------


def _many_bookings(lab, book, n):
    day = next_weekday(1)
    for i in range(n):
        book(day + timedelta(days=i), 9)


@pytest.mark.parametrize("n", [1, 12])
def test_my_bookings_costs_the_same_queries_for_1_or_12_bookings(
    member_client, lab, book, n, django_assert_max_num_queries
):
    _many_bookings(lab, book, n)

    with django_assert_max_num_queries(9):
        response = member_client.get("/bookings/")

    assert len(response.context["page"].object_list) == n


@pytest.mark.parametrize("n", [1, 12])
def test_the_catalogue_costs_the_same_queries_for_1_or_12_machines(
    member_client, lab, n, django_assert_max_num_queries
):
    for i in range(n - 1):
        factories.MachineFactory(platform=lab.a.platform, name=f"Extra {i}")

    with django_assert_max_num_queries(12):
        response = member_client.get("/machines/")

    assert len(response.context["machines"]) == n


@pytest.mark.parametrize("n", [1, 12])
def test_the_week_costs_the_same_queries_for_1_or_12_bookings(
    member_client, lab, book, n, django_assert_max_num_queries
):
    _many_bookings(lab, book, n)
    day = next_weekday(1)

    with django_assert_max_num_queries(10):
        events = member_client.get(
            f"/machines/{lab.a.machine.pk}/events/",
            {"start": day.isoformat(), "end": (day + timedelta(days=14)).isoformat()},
        ).json()

    assert len([e for e in events if "mine" in e.get("classNames", [])]) == n


@pytest.mark.parametrize("n", [1, 8])
def test_find_costs_the_same_queries_for_1_or_8_machines(
    member_client, lab, n, django_assert_max_num_queries
):
    for i in range(n - 1):
        factories.MachineFactory(
            platform=lab.a.platform, machine_type=lab.a.machine.machine_type, name=f"Extra {i}"
        )
    day = next_weekday(1)

    with django_assert_max_num_queries(14):
        response = member_client.get(
            "/find/",
            {
                "machine_type": lab.a.machine.machine_type_id,
                "duration": 60,
                "first_day": day.date().isoformat(),
                "last_day": (day + timedelta(days=6)).date().isoformat(),
            },
        )

    assert len(response.context["results"]) == n


def test_dates_read_in_the_platforms_zone_and_the_readers_language(client, lab, book):
    day = next_weekday(1)  # a Tuesday
    booking = book(day, 9)
    client.force_login(lab.a.org_member)

    english = client.get(f"/bookings/{booking.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    french = client.get(f"/bookings/{booking.pk}/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()

    assert f"Tue {day.day} " in english and "09:00–10:00" in english
    assert f"mar {day.day} " in french and "09:00–10:00" in french
    assert booking.start.astimezone(PARIS).hour == 9


@pytest.mark.parametrize(
    ("path", "french", "english"),
    [
        ("/", ["Vos prochaines réservations", "Trouver une machine libre"], ["Your next bookings"]),
        ("/machines/", ["Toutes les machines que vous pouvez réserver", "Réserver"], ["Book</a>"]),
        ("/bookings/", ["Mes réservations", "Déplacer", "Annuler"], ["My bookings", "Cancel</a>"]),
        ("/booking/", ["Détails", "Réservé par", "Déplacer ou modifier la durée"], ["Booked by"]),
        (
            "/machine/",
            ["Réserver cette machine", "Conditions de réservation", "Heure de début"],
            ["Book this machine", "Start time"],
        ),
        ("/find/", ["Trouver une machine", "Type de machine", "Durée"], ["For how long"]),
    ],
)
def test_a_french_reader_gets_the_pages_in_french(member_client, lab, book, path, french, english):
    booking = book(next_weekday(1), 9)
    path = {
        "/booking/": f"/bookings/{booking.pk}/",
        "/machine/": f"/machines/{lab.a.machine.pk}/",
    }.get(path, path)

    html = unescape(member_client.get(path, HTTP_ACCEPT_LANGUAGE="fr").content.decode())

    assert '<html lang="fr">' in html
    assert [text for text in french if text not in html] == []
    assert [text for text in english if text in html] == []


def test_a_clashing_move_offers_the_machines_next_free_slots_and_one_click_takes_one(
    member_client, lab, book
):
    day = next_weekday(1)
    booking = book(day, 9)
    book(day, 14, hours=2)

    clash = member_client.post(
        f"/bookings/{booking.pk}/", period(day, 14, 15), HTTP_HX_REQUEST="true"
    )

    html = clash.content.decode()
    assert "This time is already taken." in html and 'id="suggestions"' in html
    first = clash.context["suggestions"][0]
    assert first["start"] >= at(day, 16) and first["end"] - first["start"] == timedelta(hours=1)
    assert f'hx-post="/bookings/{booking.pk}/"' in html
    assert f'name="start_time" value="{first["start"].astimezone(PARIS):%H:%M}"' in html

    taken = member_client.post(
        f"/bookings/{booking.pk}/",
        period(day, first["start"].astimezone(PARIS).hour, first["end"].astimezone(PARIS).hour),
        HTTP_HX_REQUEST="true",
    )
    assert taken.status_code == 204 and taken["HX-Redirect"] == f"/bookings/{booking.pk}/"
    booking.refresh_from_db()
    assert booking.start == first["start"]


def test_without_htmx_a_clashing_move_shows_the_suggestions_on_the_page(member_client, lab, book):
    day = next_weekday(1)
    booking = book(day, 9)
    book(day, 14)

    clash = member_client.post(f"/bookings/{booking.pk}/", period(day, 14, 15))

    assert clash.status_code == 400
    assert 'id="suggestions"' in clash.content.decode()
    assert 'value="14:00"' in clash.content.decode()  # what was typed is kept
