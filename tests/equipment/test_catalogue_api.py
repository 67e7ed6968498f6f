"""The catalogue as an SME member browses it: platforms with their labels, machines
filtered and searched, machine types and labels. Lists cost a fixed number of
queries however many rows they hold."""

from datetime import time

import pytest

from core.models import Membership
from equipment.models import MachineType
from tests import factories
from tests.equipment.support import API, names


@pytest.fixture
def catalogue(world):
    """`world` plus labels, typed machines on both platforms, and SME a booking on both.

    SME a's member sees these active machines: Haas Mini Mill, Printer a, Printer b,
    Prusa Core One, UR5e (the two "Old printer"s are retired)."""
    c = world
    c.vitrine = factories.LabelFactory(name="Vitrine Industrie du Futur", slug="vitrine")
    c.iot = factories.LabelFactory(name="IoT4Industry", slug="iot4industry")
    world.a.platform.labels.set([c.vitrine, c.iot])
    world.b.platform.labels.set([c.iot])
    factories.PlatformMembershipFactory(organization=world.a.org, platform=world.b.platform)

    c.cobot = factories.MachineTypeFactory(
        slug="cobot", name="Collaborative robot", category=MachineType.Category.ROBOTICS
    )
    c.mill = factories.MachineTypeFactory(
        slug="cnc-mill", name="CNC mill", category=MachineType.Category.SUBTRACTIVE
    )
    c.fdm = factories.MachineTypeFactory(
        slug="fdm-printer", name="3D printer (FDM)", category=MachineType.Category.ADDITIVE
    )
    c.ur5e = factories.MachineFactory(
        platform=world.a.platform,
        machine_type=c.cobot,
        name="UR5e",
        description="Six-axis arm with a gripper.",
    )
    c.haas = factories.MachineFactory(
        platform=world.a.platform,
        machine_type=c.mill,
        name="Haas Mini Mill",
        description="Three-axis milling of aluminium.",
    )
    c.prusa = factories.MachineFactory(
        platform=world.b.platform,
        machine_type=c.fdm,
        name="Prusa Core One",
        description="Prints PETG and ASA.",
    )
    c.member = world.a.org_member
    return c


def machines(api, user, query: str = "") -> list[str]:
    response = api.as_user(user).get(f"{API}/machines/{query}")
    assert response.status_code == 200, response.content
    return names(response)


# --- Platforms and labels ---------------------------------------------------------------


def test_platforms_are_listed_with_their_labels(api, catalogue):
    response = api.as_user(catalogue.member).get(f"{API}/platforms/")

    assert response.status_code == 200
    platforms = {p["name"]: p for p in response.json()["results"]}
    assert list(platforms) == ["Platform a", "Platform b"]
    assert platforms["Platform a"]["labels"] == [
        {
            "id": catalogue.iot.pk,
            "name": "IoT4Industry",
            "slug": "iot4industry",
            "issuer": "Alliance Industrie du Futur",
            "description": "",
            "website": "",
        },
        {
            "id": catalogue.vitrine.pk,
            "name": "Vitrine Industrie du Futur",
            "slug": "vitrine",
            "issuer": "Alliance Industrie du Futur",
            "description": "",
            "website": "",
        },
    ]
    assert [label["slug"] for label in platforms["Platform b"]["labels"]] == ["iot4industry"]
    assert platforms["Platform a"]["timezone"] == "Europe/Paris"
    assert "label_ids" not in platforms["Platform a"]


def test_platforms_list_only_those_where_ones_smes_may_book(api, catalogue):
    response = api.as_user(catalogue.b.org_member).get(f"{API}/platforms/")

    assert names(response) == ["Platform b"]


def test_platforms_filter_by_label_slug(api, catalogue):
    response = api.as_user(catalogue.member).get(f"{API}/platforms/?label=vitrine")

    assert names(response) == ["Platform a"]


def test_labels_list_every_label_by_name(api, catalogue):
    response = api.as_user(catalogue.b.org_member).get(f"{API}/labels/")

    assert response.status_code == 200
    assert names(response) == ["IoT4Industry", "Vitrine Industrie du Futur"]


def test_machine_types_list_by_category_then_name_and_filter_by_category(api, catalogue):
    client = api.as_user(catalogue.member)

    everything = client.get(f"{API}/machine-types/").json()["results"]
    robotics = client.get(f"{API}/machine-types/?category=robotics").json()["results"]

    categories = [t["category"] for t in everything]
    assert categories == sorted(categories)
    assert {"cobot", "cnc-mill", "fdm-printer"} <= {t["slug"] for t in everything}
    assert robotics == [
        {
            "id": catalogue.cobot.pk,
            "name": "Collaborative robot",
            "slug": "cobot",
            "category": "robotics",
            "description": "",
        }
    ]


# --- Machines: what a member sees and how they filter it ------------------------------------


def test_members_see_the_active_machines_of_their_platforms_by_platform_then_name(api, catalogue):
    assert machines(api, catalogue.member) == [
        "Haas Mini Mill",
        "Printer a",
        "UR5e",
        "Printer b",
        "Prusa Core One",
    ]


def test_a_machine_shows_its_platform_type_specs_and_booking_policy(api, catalogue):
    response = api.as_user(catalogue.member).get(f"{API}/machines/{catalogue.ur5e.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": catalogue.ur5e.pk,
        "platform": catalogue.a.platform.pk,
        "machine_type": catalogue.cobot.pk,
        "name": "UR5e",
        "description": "Six-axis arm with a gripper.",
        "specs": {"build_volume_mm": [250, 210, 220]},
        "image": None,
        "is_active": True,
        "min_duration_minutes": 30,
        "max_duration_minutes": 480,
        "granularity_minutes": 15,
        "buffer_after_minutes": 0,
        "min_notice_minutes": 60,
        "booking_horizon_days": 90,
        "qualification_required": False,
        "approval_required": False,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?platform={b}", ["Printer b", "Prusa Core One"]),
        ("?machine_type={cobot}", ["UR5e"]),
        ("?type=fdm-printer", ["Prusa Core One"]),
        ("?category=subtractive", ["Haas Mini Mill"]),
        ("?category=robotics&platform={b}", []),
        ("?label={vitrine}", ["Haas Mini Mill", "Printer a", "UR5e"]),
        ("?label=vitrine", ["Haas Mini Mill", "Printer a", "UR5e"]),
        # A label both platforms carry lists each machine once.
        (
            "?label=iot4industry",
            ["Haas Mini Mill", "Printer a", "Printer b", "Prusa Core One", "UR5e"],
        ),
        ("?label=no-such-label", []),
    ],
    ids=[
        "platform id",
        "machine type id",
        "type slug",
        "category",
        "category and platform",
        "label id",
        "label slug",
        "label on two platforms",
        "unknown label",
    ],
)
def test_machines_filter_by_platform_type_category_and_label(api, catalogue, query, expected):
    query = query.format(
        b=catalogue.b.platform.pk, cobot=catalogue.cobot.pk, vitrine=catalogue.vitrine.pk
    )

    assert sorted(machines(api, catalogue.member, query)) == expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ur5", ["UR5e"]),  # name, any case
        ("ALUMINIUM", ["Haas Mini Mill"]),  # description
        ("collaborative", ["UR5e"]),  # machine type name
        ("platform b", ["Printer b", "Prusa Core One"]),  # platform name
        ("nothing like this", []),
    ],
    ids=["name", "description", "type name", "platform name", "no match"],
)
def test_machines_text_search_q_looks_in_name_description_type_and_platform(
    api, catalogue, q, expected
):
    assert sorted(machines(api, catalogue.member, f"?q={q}")) == expected


def test_machines_search_parameter_looks_in_name_description_and_type(api, catalogue):
    assert machines(api, catalogue.member, "?search=petg") == ["Prusa Core One"]
    assert machines(api, catalogue.member, "?search=mill") == ["Haas Mini Mill"]


def test_machines_order_by_name_either_way(api, catalogue):
    ascending = machines(api, catalogue.member, "?ordering=name")
    descending = machines(api, catalogue.member, "?ordering=-name")

    assert ascending == ["Haas Mini Mill", "Printer a", "Printer b", "Prusa Core One", "UR5e"]
    assert descending == list(reversed(ascending))


def test_an_unknown_category_is_refused_with_the_field(api, catalogue):
    response = api.as_user(catalogue.member).get(f"{API}/machines/?category=teleportation")

    assert response.status_code == 400
    assert "category" in response.json()["error"]["details"]["fields"]


def test_machines_of_a_platform_ones_smes_do_not_book_on_are_not_found(api, catalogue):
    client = api.as_user(catalogue.b.org_member)

    assert machines(api, catalogue.b.org_member, f"?platform={catalogue.a.platform.pk}") == []
    assert client.get(f"{API}/machines/{catalogue.ur5e.pk}/").status_code == 404


# --- Pagination ---------------------------------------------------------------------------


def test_machines_are_paginated_with_page_size_and_next_links(api, catalogue):
    client = api.as_user(catalogue.member)

    first = client.get(f"{API}/machines/?ordering=name&page_size=2").json()
    second = client.get(first["next"]).json()
    last = client.get(second["next"]).json()

    assert first["count"] == 5
    assert [m["name"] for m in first["results"]] == ["Haas Mini Mill", "Printer a"]
    assert first["previous"] is None
    assert "page=2" in first["next"]
    assert "page_size=2" in first["next"]
    assert "ordering=name" in first["next"]
    assert [m["name"] for m in second["results"]] == ["Printer b", "Prusa Core One"]
    assert [m["name"] for m in last["results"]] == ["UR5e"]
    assert last["next"] is None
    assert last["previous"] is not None


def test_a_page_past_the_end_is_not_found(api, catalogue):
    response = api.as_user(catalogue.member).get(f"{API}/machines/?page_size=2&page=9")

    assert response.status_code == 404


def test_page_size_is_capped_at_200(api, world):
    for n in range(205):
        factories.OpeningHoursFactory(
            platform=world.a.platform, weekday=n % 7, opens_at=time(0), closes_at=time(1)
        )

    body = api.as_user(world.a.org_member).get(f"{API}/opening-hours/?page_size=1000").json()

    assert len(body["results"]) == 200
    assert body["next"] is not None


# --- Query counts stay flat as rows grow ---------------------------------------------------
# Each list endpoint is requested with 3 rows and with 30 rows under the same bound;
# a query per row (N+1) would blow the bound at 30.


def _platforms_with_labels(world, rows):
    for _ in range(rows):
        platform = factories.PlatformFactory()
        platform.labels.set([factories.LabelFactory(), factories.LabelFactory()])
        factories.PlatformMembershipFactory(organization=world.a.org, platform=platform)
    return world.a.org_member, "platforms"


def _machines(world, rows):
    for _ in range(rows):
        factories.MachineFactory(platform=world.a.platform)
    return world.a.org_member, "machines"


def _user_qualifications(world, rows):
    for _ in range(rows):
        holder = factories.MembershipFactory(organization=world.a.org).user
        factories.UserQualificationFactory(
            user=holder, qualification=world.a.qualification, granted_by=world.a.operator
        )
    return world.a.manager, "user-qualifications"


def _platform_memberships(world, rows):
    for _ in range(rows):
        factories.PlatformMembershipFactory(platform=world.a.platform)
    return world.a.manager, "platform-memberships"


def _opening_hours(world, rows):
    for n in range(rows):
        factories.OpeningHoursFactory(
            platform=world.a.platform, weekday=n % 7, opens_at=time(n // 7), closes_at=time(23)
        )
    return world.a.org_member, "opening-hours"


@pytest.mark.parametrize("rows", [3, 30])
@pytest.mark.parametrize(
    ("make_rows", "max_queries"),
    [
        # Token lookup and last-use stamp, count, page (+ one prefetch of labels).
        (_platforms_with_labels, 5),
        (_machines, 4),
        (_user_qualifications, 4),
        (_platform_memberships, 4),
        (_opening_hours, 4),
    ],
    ids=["platforms", "machines", "user-qualifications", "platform-memberships", "opening-hours"],
)
def test_list_endpoints_make_a_fixed_number_of_queries_however_many_rows(
    api, world, django_assert_max_num_queries, make_rows, max_queries, rows
):
    user, endpoint = make_rows(world, rows)
    client = api.as_user(user)

    with django_assert_max_num_queries(max_queries):
        response = client.get(f"{API}/{endpoint}/")

    assert response.status_code == 200
    assert response.json()["count"] >= rows


def test_memberships_list_shows_the_organization_name(api, world):
    extra = factories.OrganizationFactory(legal_name="Zeta Usinage SAS")
    factories.PlatformMembershipFactory(organization=extra, platform=world.a.platform)
    factories.MembershipFactory(organization=extra, role=Membership.Role.MEMBER)

    rows = api.as_user(world.a.manager).get(f"{API}/platform-memberships/").json()["results"]

    assert sorted(r["organization_name"] for r in rows) == ["SME a", "Zeta Usinage SAS"]


@pytest.mark.filterwarnings("error::django.core.paginator.UnorderedObjectListWarning")
def test_platform_memberships_are_paginated_in_a_stable_order(api, world):
    for _ in range(3):
        factories.PlatformMembershipFactory(platform=world.a.platform)

    response = api.as_user(world.a.manager).get(f"{API}/platform-memberships/?page_size=2")

    assert response.status_code == 200
    assert response.json()["count"] == 4
