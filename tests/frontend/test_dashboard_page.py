"""The utilisation dashboard: booking/analytics.py's tables as charts and a table,
with the API's exports. Platform staff see every SME; an SME administrator only
its own organizations'; others get 404."""

import json
from datetime import timedelta

import pytest
import time_machine

from booking import analytics, services
from equipment.models import Machine
from tests import factories
from tests.booking.conftest import at, next_weekday

DAY = next_weekday(1)


def url(lab, side="a") -> str:
    return f"/dashboard/platforms/{getattr(lab, side).platform.pk}/"


def period(**extra) -> dict:
    return {
        "first_day": DAY.date().isoformat(),
        "last_day": (DAY + timedelta(days=6)).date().isoformat(),
        "unit": "day",
        "entity": "machine",
        **extra,
    }


@pytest.fixture
def activity(lab, book):
    """Two hours booked by SME a and one by SME b (which books on A too) on DAY."""
    factories.PlatformMembershipFactory(organization=lab.b.org, platform=lab.a.platform)
    mine = book(DAY, 9, hours=2)
    theirs = services.create_booking(
        machine=lab.a.machine,
        organization=lab.b.org,
        by=lab.b.org_member,
        start=at(DAY, 14),
        end=at(DAY, 15),
    )
    return mine, theirs


def test_staff_see_charts_the_table_and_every_smes_hours(client, lab, activity):
    client.force_login(lab.a.manager)

    response = client.get(url(lab), period())

    assert response.status_code == 200
    html = response.content.decode()
    for canvas in ["chart-utilisation", "chart-organizations", "chart-no-shows", "chart-refused"]:
        assert f'id="{canvas}"' in html
    assert "/static/vendor/chart.js/dist/chart.umd.js" in html
    charts = response.context["charts"]
    assert dict(
        zip(charts["organizations"]["labels"], charts["organizations"]["data"], strict=True)
    ) == {
        "SME a": 2.0,
        "SME b": 1.0,
    }
    assert response.context["totals"]["booked_hours"] == 3.0
    data = json.loads(html.split('id="dashboard-data" type="application/json">')[1].split("<")[0])
    assert len(data["periods"]) == 7


def test_an_sme_admin_sees_only_its_own_usage(client, lab, activity):
    client.force_login(lab.a.org_admin)

    response = client.get(url(lab), period())

    assert response.status_code == 200
    assert response.context["totals"]["booked_hours"] == 2.0
    assert response.context["charts"]["organizations"]["labels"] == ["SME a"]
    assert "SME b" not in response.content.decode()


def test_members_outsiders_and_other_platforms_get_404(client, lab, activity):
    for who in [lab.a.org_member, lab.b.manager, lab.outsider]:
        client.force_login(who)
        assert client.get(url(lab), period()).status_code == 404, who


def test_the_export_buttons_link_to_the_apis_csv_and_xlsx_of_the_same_table(client, lab, activity):
    client.force_login(lab.a.manager)
    response = client.get(url(lab), period(entity="organization", unit="week"))
    exports = response.context["exports"]

    csv = client.get(exports["csv"])

    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    header = csv.content.decode().splitlines()[0]
    assert header.startswith("organization,organization_name,period_start")
    assert client.get(exports["xlsx"]).status_code == 200


def test_a_bad_period_is_refused_next_to_the_field_and_keeps_the_input(client, lab):
    client.force_login(lab.a.manager)

    response = client.get(url(lab), period(last_day="2020-01-01"))

    assert response.status_code == 400
    assert response.context["form"].errors["last_day"]
    assert 'value="2020-01-01"' in response.content.decode()


@pytest.mark.parametrize("first_day", ["0001-01-01", "9999-12-25"])
def test_days_outside_1970_to_2999_are_refused_next_to_the_field(client, lab, first_day):
    client.force_login(lab.a.manager)

    response = client.get(url(lab), period(first_day=first_day, last_day=first_day))

    assert response.status_code == 400
    assert response.context["form"].errors["first_day"] == ["Give a date between 1970 and 2999."]


def test_the_dashboard_link_opens_the_first_platform_and_defaults_to_recent_weeks(client, lab):
    client.force_login(lab.a.operator)

    response = client.get("/dashboard/", follow=True)

    assert response.redirect_chain[-1][0] == url(lab)
    assert response.status_code == 200 and response.context["charts"]["periods"]


@pytest.mark.parametrize("n", [1, 12])
def test_the_dashboard_costs_the_same_queries_for_1_or_12_machines(
    client, lab, book, n, django_assert_max_num_queries
):
    for i in range(n):
        machine = factories.MachineFactory(platform=lab.a.platform, name=f"Printer {i}")
        book(DAY, 9, machine=machine)
    client.force_login(lab.a.manager)

    with time_machine.travel(DAY, tick=False), django_assert_max_num_queries(45):
        response = client.get(url(lab), period())
    assert response.context["rows"].count("<tr>") == (n + 2) * 7


def test_the_charts_per_period_sum_the_machines_rows_as_the_period_table_would(
    client, lab, activity
):
    client.force_login(lab.a.manager)
    charts = client.get(url(lab), period()).context["charts"]

    table = analytics.utilisation(
        platforms=[lab.a.platform],
        machines=Machine.objects.filter(platform=lab.a.platform),
        start=DAY.date(),
        end=(DAY + timedelta(days=7)).date(),
        group_by=["day"],
    )
    expected = [
        None if r["utilisation_booked"] is None else round(r["utilisation_booked"] * 100, 1)
        for r in table.rows
    ]
    assert charts["utilisation"]["all"] == expected
    assert charts["no_shows"]["series"][0]["data"] == [r["no_shows"] for r in table.rows]


# --- Peak hours -------------------------------------------------------------------------


def heat(response) -> dict:
    """The heatmap's cells as {(weekday's short name, "HH:00"): text}."""
    heatmap = response.context["heatmap"]
    return {
        (day["short"], row["hour"]): cell["text"]
        for row in heatmap["rows"]
        for day, cell in zip(heatmap["days"], row["cells"], strict=True)
    }


def test_peak_hours_show_each_weekday_and_local_hour_of_the_period(client, lab, activity):
    client.force_login(lab.a.manager)

    response = client.get(url(lab), period())

    cells = heat(response)
    hours = [row["hour"] for row in response.context["heatmap"]["rows"]]
    assert hours == [f"{h:02d}:00" for h in range(8, 18)]  # opening hours, local (Paris)
    # DAY is a Tuesday; one active printer, open every day: each cell is one hour.
    assert cells[("Tue", "09:00")] == cells[("Tue", "10:00")] == "100\u00a0%"
    assert cells[("Tue", "14:00")] == "100\u00a0%"
    assert cells[("Tue", "12:00")] == cells[("Wed", "09:00")] == "0\u00a0%"
    html = response.content.decode()
    assert '<table class="heatmap">' in html and "<caption" in html and "Europe/Paris" in html
    assert '<th scope="row">09:00</th>' in html
    assert "1.0 h booked of 1.0 h" in html  # the hours behind a cell, for screen readers


def test_peak_hours_follow_the_filters_and_the_audience(client, lab, activity):
    client.force_login(lab.a.manager)
    only_b = heat(client.get(url(lab), period(organization=lab.b.org.pk)))
    client.force_login(lab.a.org_admin)
    own = heat(client.get(url(lab), period()))

    assert only_b[("Tue", "14:00")] == "100\u00a0%" and only_b[("Tue", "09:00")] == "0\u00a0%"
    assert own[("Tue", "09:00")] == "100\u00a0%" and own[("Tue", "14:00")] == "0\u00a0%"


def test_peak_hours_are_the_apis_heatmap_of_the_same_period_and_filters(client, lab, activity):
    client.force_login(lab.a.manager)
    response = client.get(url(lab), period(machine=lab.a.machine.pk, unit="week"))
    csv_link = response.context["heatmap_csv"]

    api = client.get(csv_link.replace("format=csv", "format=json")).json()

    assert "machine=" in csv_link and "group_by" not in csv_link
    assert client.get(csv_link)["Content-Type"].startswith("text/csv")
    expected = {
        (r["weekday"], r["hour"]): "—"
        if r["occupancy"] is None
        else f"{round(r['occupancy'] * 100)}\u00a0%"
        for r in api["rows"]
    }
    heatmap = response.context["heatmap"]
    for row in heatmap["rows"]:
        hour = int(row["hour"][:2])
        for weekday, cell in enumerate(row["cells"]):
            assert cell["text"] == expected[(weekday, hour)], (weekday, hour)


def test_a_period_without_opening_hours_says_so_instead_of_an_empty_heatmap(client, lab):
    lab.a.platform.opening_hours.all().delete()
    client.force_login(lab.a.manager)

    response = client.get(url(lab), period())

    assert response.context["heatmap"] is None
    assert "No opening hours in this period." in response.content.decode()


def test_peak_hours_speak_french(client, lab, activity):
    client.force_login(lab.a.manager)

    response = client.get(url(lab), period(), HTTP_ACCEPT_LANGUAGE="fr")

    assert response.context["heatmap"]["days"][1] == {"short": "mar", "name": "mardi"}
    assert "1,0\u00a0h réservées sur 1,0\u00a0h" in response.content.decode()
