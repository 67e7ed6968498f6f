"""GET /api/v1/platforms/{id}/utilisation/ and /api/v1/labels/{id}/utilisation/:
who sees what, the parameters, and the same table as JSON, CSV and XLSX.

`lab` is world.a's platform open every day 08:00–18:00 (Paris). SME a and a
neighbour, SME c, book its printer on Tuesday 2 March 2027."""

import csv
import io
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from booking.models import Booking
from core.models import Membership
from tests import factories
from tests.booking.support import make_booking, paris

TUESDAY = date(2027, 3, 2)
PERIOD = {"start": "2027-03-01", "end": "2027-04-01"}


def platform_url(world, side="a"):
    return f"/api/v1/platforms/{getattr(world, side).platform.pk}/utilisation/"


@pytest.fixture
def used(lab):
    """SME a booked 08:00–10:00 and SME c 10:00–13:00 on the printer; both platforms
    carry one label; SME c's admin and a second admin of SME a."""
    world = lab
    world.c_org = factories.OrganizationFactory(legal_name="SME c")
    factories.PlatformMembershipFactory(organization=world.c_org, platform=world.a.platform)
    world.c_admin = factories.UserFactory(email="admin.c@sme.example")
    factories.MembershipFactory(
        user=world.c_admin, organization=world.c_org, role=Membership.Role.ADMIN
    )
    for org, start, end in ((world.a.org, 8, 10), (world.c_org, 10, 13)):
        make_booking(
            world.a.machine,
            org,
            world.a.org_member,
            paris(TUESDAY, start),
            paris(TUESDAY, end),
            status=Booking.Status.COMPLETED,
        )
    make_booking(
        world.b.machine,
        world.b.org,
        world.b.org_member,
        paris(TUESDAY, 9),
        paris(TUESDAY, 10),
    )
    world.label = factories.LabelFactory(name="Industrie du Futur")
    world.a.platform.labels.add(world.label)
    world.b.platform.labels.add(world.label)
    return world


# --- Tenancy ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["manager", "operator", "accountant"])
def test_platform_staff_see_every_sme_of_their_platform(api, used, role):
    api.as_user(getattr(used.a, role))

    response = api.get(platform_url(used), {**PERIOD, "group_by": "organization"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["platform"], body["timezone"]) == (used.a.platform.pk, "Europe/Paris")
    assert [(r["organization_name"], r["booked_hours"]) for r in body["rows"]] == [
        ("SME a", 2.0),
        ("SME c", 3.0),
    ]


def test_an_sme_admin_sees_only_its_own_organization(api, used):
    api.as_user(used.a.org_admin)

    by_org = api.get(platform_url(used), {**PERIOD, "group_by": "organization"}).json()
    asking_for_c = api.get(
        platform_url(used), {**PERIOD, "group_by": "organization", "organization": used.c_org.pk}
    ).json()

    assert [(r["organization_name"], r["booked_hours"]) for r in by_org["rows"]] == [("SME a", 2.0)]
    assert by_org["totals"]["booked_hours"] == 2.0
    assert asking_for_c["rows"] == [] and asking_for_c["totals"]["booked_hours"] == 0


def test_an_sme_admin_does_not_see_retired_machines(api, used):
    api.as_user(used.a.org_admin)

    rows = api.get(platform_url(used), {**PERIOD, "group_by": "machine"}).json()["rows"]

    assert [r["machine_name"] for r in rows] == ["Printer a"]


@pytest.mark.parametrize("role", ["org_member", "org_accountant"])
def test_other_sme_people_may_not_see_the_platform_utilisation(api, used, role):
    api.as_user(getattr(used.a, role))

    response = api.get(platform_url(used), PERIOD)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize("who", ["a.manager", "a.org_admin", "outsider"])
def test_a_foreign_platform_is_not_found(api, used, who):
    user = used.outsider if who == "outsider" else getattr(used.a, who.split(".")[1])
    api.as_user(user)

    response = api.get(platform_url(used, "b"), PERIOD)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_anonymous_callers_get_401_in_json_even_for_a_file(api, used):
    response = api.get(platform_url(used), {**PERIOD, "format": "csv"})

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"


def test_a_label_view_aggregates_its_platforms_for_their_managers(api, used):
    api.as_user(used.a.manager)

    response = api.get(
        f"/api/v1/labels/{used.label.pk}/utilisation/", {**PERIOD, "group_by": "platform"}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert sorted(body["platforms"]) == sorted([used.a.platform.pk, used.b.platform.pk])
    assert [(r["platform_name"], r["booked_hours"]) for r in body["rows"]] == [
        ("Platform a", 5.0),
        ("Platform b", 1.0),
    ]
    assert "organization" not in body["columns"] and "SME" not in response.content.decode()


def test_a_label_view_never_groups_or_filters_by_organization(api, used):
    api.as_user(used.a.manager)
    url = f"/api/v1/labels/{used.label.pk}/utilisation/"

    grouped = api.get(url, {**PERIOD, "group_by": "organization"})
    filtered = api.get(url, {**PERIOD, "organization": used.a.org.pk})

    assert grouped.status_code == 400
    assert "group_by" in grouped.json()["error"]["details"]["fields"]
    # An unknown parameter is ignored: the totals are every SME's.
    assert filtered.json()["totals"]["booked_hours"] == 6.0


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("a.operator", 403),
        ("a.accountant", 403),
        ("a.org_admin", 403),
        ("outsider", 403),
        ("superuser", 200),
    ],
)
def test_who_may_see_a_label_view(api, used, who, status):
    if who == "superuser":
        user = factories.UserFactory(is_superuser=True)
    elif who == "outsider":
        user = used.outsider
    else:
        user = getattr(used.a, who.split(".")[1])
    api.as_user(user)

    response = api.get(f"/api/v1/labels/{used.label.pk}/utilisation/", PERIOD)

    assert response.status_code == status


def test_a_manager_of_a_platform_without_the_label_may_not_see_it(api, used):
    other_label = factories.LabelFactory()
    api.as_user(used.a.manager)

    response = api.get(f"/api/v1/labels/{other_label.pk}/utilisation/", PERIOD)

    assert response.status_code == 403


def test_an_unknown_label_is_not_found(api, used):
    api.as_user(used.a.manager)

    assert api.get("/api/v1/labels/987654/utilisation/", PERIOD).status_code == 404


# --- Parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2027-03-01"}, "end"),
        ({"start": "2027-03-05", "end": "2027-03-01"}, "end"),
        ({"start": "2027-01-01", "end": "2028-01-03"}, "end"),
        # The calendar's first and last days are no instant in every zone: refused.
        ({"start": "0001-01-01", "end": "0001-01-09"}, "start"),
        ({"start": "9999-12-20", "end": "9999-12-31"}, "start"),
        ({"start": "1969-12-31", "end": "1970-01-02"}, "start"),
        ({"start": "2999-12-30", "end": "3000-01-01"}, "end"),
        ({**PERIOD, "group_by": "machine,organization"}, "group_by"),
        ({**PERIOD, "group_by": "day,month"}, "group_by"),
        ({**PERIOD, "group_by": "year"}, "group_by"),
        ({**PERIOD, "machine": "x"}, "machine"),
    ],
)
def test_bad_parameters_are_named(api, used, query, field):
    api.as_user(used.a.manager)

    response = api.get(platform_url(used), query)

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]


def test_filters_by_machine_and_type_and_foreign_ids_match_nothing(api, used):
    api.as_user(used.a.manager)

    own = api.get(platform_url(used), {**PERIOD, "machine": used.a.machine.pk}).json()
    foreign = api.get(platform_url(used), {**PERIOD, "machine": used.b.machine.pk}).json()
    by_type = api.get(
        platform_url(used), {**PERIOD, "machine_type": used.a.machine.machine_type_id}
    ).json()

    assert own["totals"]["booked_hours"] == 5.0
    assert foreign["totals"]["booked_hours"] == 0 and foreign["totals"]["available_hours"] == 0
    assert by_type["totals"] == own["totals"]


# --- Files ---------------------------------------------------------------------------------


def test_the_csv_is_the_api_table(api, used):
    api.as_user(used.a.manager)
    query = {**PERIOD, "group_by": "machine,week"}

    table = api.get(platform_url(used), query).json()
    response = api.get(platform_url(used), {**query, "format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(response.content.decode())))
    assert lines[0] == table["columns"]
    expected = [
        ["" if row[c] is None else str(row[c]) for c in table["columns"]] for row in table["rows"]
    ]
    assert lines[1:] == expected
    assert len(expected) == 2 * 5  # two machines, five weeks touching March 2027


def test_the_accept_header_asks_for_a_file_too(api, used):
    api.as_user(used.a.manager)

    response = api.get(platform_url(used), PERIOD, HTTP_ACCEPT="text/csv")

    assert response["Content-Type"].startswith("text/csv")


def test_the_xlsx_is_the_api_table(api, used):
    api.as_user(used.a.manager)
    query = {**PERIOD, "group_by": "organization"}

    table = api.get(platform_url(used), query).json()
    response = api.get(platform_url(used), {**query, "format": "xlsx"})

    assert response.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    rows = list(workbook["utilisation"].iter_rows(values_only=True))
    assert list(rows[0]) == table["columns"]
    assert [list(r) for r in rows[1:]] == [
        [row[c] for c in table["columns"]] for row in table["rows"]
    ]
    totals = dict(workbook["totals"].iter_rows(values_only=True))
    assert totals == table["totals"]


def test_errors_are_json_whatever_format_was_asked(api, used):
    api.as_user(used.a.manager)

    response = api.get(platform_url(used), {"start": "2027-03-01", "format": "xlsx"})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "end" in response.json()["error"]["details"]["fields"]


def test_the_query_count_of_the_api_does_not_depend_on_the_number_of_machines(
    api, used, django_assert_max_num_queries
):
    api.as_user(used.a.manager)
    query = {**PERIOD, "group_by": "machine,day"}
    for n in range(10):
        factories.MachineFactory(platform=used.a.platform, name=f"Extra {n}")

    with django_assert_max_num_queries(15):  # revenue from billing included
        response = api.get(platform_url(used), query)

    assert response.status_code == 200
    assert len(response.json()["rows"]) == 12 * 31


def test_a_label_across_time_zones_cuts_each_platform_on_its_own_days(api, used):
    """Platform b moves to London: its 23:30–00:30 (London) booking is split at
    London's midnight, while Paris is already an hour into the next day."""
    used.b.platform.timezone = "Europe/London"
    used.b.platform.save()
    london = ZoneInfo("Europe/London")
    start = datetime.combine(TUESDAY, time(23, 30), tzinfo=london)
    make_booking(used.b.machine, used.b.org, used.b.org_member, start, start + timedelta(hours=1))
    api.as_user(factories.UserFactory(is_superuser=True))

    rows = api.get(
        f"/api/v1/labels/{used.label.pk}/utilisation/",
        {"start": "2027-03-02", "end": "2027-03-04", "group_by": "platform,day"},
    ).json()["rows"]

    assert [(r["period_start"], r["platform_name"], r["booked_hours"]) for r in rows] == [
        ("2027-03-02", "Platform a", 5.0),
        ("2027-03-02", "Platform b", 1.5),  # 09:00–10:00 and 23:30–00:00
        ("2027-03-03", "Platform a", 0.0),
        ("2027-03-03", "Platform b", 0.5),
    ]


def test_an_unknown_format_is_a_bad_parameter(api, used):
    assert api.get(platform_url(used), {**PERIOD, "format": "pdf"}).status_code == 401
    api.as_user(used.a.manager)

    response = api.get(platform_url(used), {**PERIOD, "format": "pdf"})

    assert response.status_code == 400
    assert "format" in response.json()["error"]["details"]["fields"]
