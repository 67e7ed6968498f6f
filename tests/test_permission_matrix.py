"""Who may do what through /api/v1/: the permission and tenancy matrix.

`world` holds two mirror-image sides, A and B (a platform with its staff, an SME
booking there, machines, hours, ...). Every role below acts from side A:

    outsider                                a user with no organization and no platform
    org_member, org_admin, org_accountant   the SME of side A
    manager, operator, accountant           the staff of platform A
    superuser                               sees and may do everything

Rules the tables spell out:

- Reads go through `visible_to(user)`: what a list shows is exactly what answers 200
  on its own URL; everything else answers 404, never 403, so nobody learns that a
  foreign object exists.
- A foreign id in the URL answers 404. A foreign (or invisible) platform, machine,
  organization, qualification or person named in a request body answers 400 with
  "... does not exist" on that field.
- A visible object the role may not change answers 403.
- Anonymous requests answer 401; methods an endpoint does not offer answer 405.
- Every error body is {"error": {"code", "message", "details"}}.
- A refused write leaves nothing behind (same rows, no audit event); an accepted one
  changes rows and leaves an audit event naming the caller.
"""

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.utils import timezone

from billing.models import (
    BillingRun,
    BillingSettings,
    CardPayment,
    Consumable,
    ConsumableUse,
    FundingProgramme,
    Invoice,
    InvoiceLine,
    Payment,
    StripeCustomer,
    Tariff,
)
from booking.feeds import create_feed_token
from booking.models import EmailPreferences, FeedToken
from core.models import ApiToken, AuditEvent, Invitation, Membership, Organization, User
from core.services import create_api_token, invite_member, revoke_api_token
from equipment.models import (
    Closure,
    Label,
    Machine,
    MachineType,
    MaintenanceWindow,
    OpeningHours,
    Platform,
    PlatformMembership,
    Qualification,
    UserQualification,
)
from tests import factories
from tests.billing.support import bill_side

API = "/api/v1"
SME_ROLES = ("org_member", "org_admin", "org_accountant")
STAFF_ROLES = ("manager", "operator", "accountant")
ROLES = ("outsider", *SME_ROLES, *STAFF_ROLES, "superuser")


# --- The world, and how a role logs in ---------------------------------------------------


@pytest.fixture
def world(world):
    """conftest's `world`, plus what the matrix needs on both sides: a maintenance
    window on the retired machine, a pending invitation, an API token of the SME
    member; a superuser; two labels; a neighbour SME "c" that books on platform A
    too (A's staff see it, SME A never does); and an API token for each role."""
    world.superuser = factories.UserFactory(
        email="root@fabpool.example", is_superuser=True, is_staff=True
    )
    world.labels = [factories.LabelFactory(), factories.LabelFactory()]
    for s, name in ((world.a, "a"), (world.b, "b")):
        s.platform_membership = PlatformMembership.objects.get(organization=s.org)
        s.retired_maintenance = factories.MaintenanceWindowFactory(machine=s.retired_machine)
        s.invitation, s.invitation_secret = invite_member(
            organization=s.org,
            by=s.org_admin,
            email=f"invitee.{name}@example.com",
            role=Membership.Role.MEMBER,
        )
        s.token, _secret = create_api_token(user=s.org_member, name="script")
        bill_side(s, name.upper() * 3)  # settings, prices, an issued and a draft invoice
    c = world.c = SimpleNamespace()
    c.org = factories.OrganizationFactory(legal_name="SME c")
    c.platform_membership = factories.PlatformMembershipFactory(
        organization=c.org, platform=world.a.platform
    )
    c.org_member = factories.UserFactory(email="member.c@sme.example")
    factories.MembershipFactory(user=c.org_member, organization=c.org)
    # One API token per role, minted once (what `api.as_user` does on every call).
    world.secrets = {
        role: create_api_token(user=user_of(world, role), name="tests")[1] for role in ROLES
    }
    # A calendar feed of each role's own bookings, and one of SME B's member.
    for role in ROLES:
        create_feed_token(by=user_of(world, role), kind="user", name="calendar")
    world.b.feed, _secret = create_feed_token(by=world.b.org_member, kind="user", name="calendar")
    return world


def user_of(world, role: str) -> User:
    if role in ("outsider", "superuser"):
        return getattr(world, role)
    return getattr(world.a, role)


def login(api, world, role: str) -> User:
    """Authenticate `api` as `role` (of side A) with that role's API token."""
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world.secrets[role]}")
    return user_of(world, role)


@contextmanager
def rolled_back():
    """Run one role's turn in a savepoint and undo it, so every role meets the same world."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# --- What every answer must look like ---------------------------------------------------------


def assert_error_shape(response, code: str | None = None) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, body
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["details"], dict), body
    if code is not None:
        assert error["code"] == code, body
    return error


def assert_does_not_exist(response, fields: tuple[str, ...]) -> None:
    """A 400 about one of `fields` naming an object the caller cannot see."""
    error = assert_error_shape(response, "invalid")
    messages = error["details"]["fields"]
    assert any("does not exist" in m for f in fields for m in messages.get(f, [])), messages


def assert_well_formed(response) -> None:
    assert response.status_code != 500, response.content
    if response.status_code >= 400:
        assert_error_shape(response)


# --- Reads: what each role sees --------------------------------------------------------------
#
# Each endpoint's objects carry a name: "A" and "B" are the sides' objects, "A_retired"
# hangs on A's retired machine, "C" is the neighbour SME that also books on platform A,
# "mine"/"others" are API tokens of the caller and of the SME members of A and B.


def _one(*objects) -> list[int]:
    return [o.pk for o in objects]


UNIVERSE: dict[str, Callable] = {
    "platforms": lambda w, me: {"A": _one(w.a.platform), "B": _one(w.b.platform)},
    "machines": lambda w, me: {
        "A": _one(w.a.machine),
        "A_retired": _one(w.a.retired_machine),
        "B": _one(w.b.machine),
        "B_retired": _one(w.b.retired_machine),
    },
    "opening-hours": lambda w, me: {"A": _one(w.a.opening_hours), "B": _one(w.b.opening_hours)},
    "closures": lambda w, me: {"A": _one(w.a.closure), "B": _one(w.b.closure)},
    "maintenance-windows": lambda w, me: {
        "A": _one(w.a.maintenance),
        "A_retired": _one(w.a.retired_maintenance),
        "B": _one(w.b.maintenance),
        "B_retired": _one(w.b.retired_maintenance),
    },
    "qualifications": lambda w, me: {"A": _one(w.a.qualification), "B": _one(w.b.qualification)},
    "user-qualifications": lambda w, me: {"A": _one(w.a.grant), "B": _one(w.b.grant)},
    "platform-memberships": lambda w, me: {
        "A": _one(w.a.platform_membership),
        "C": _one(w.c.platform_membership),
        "B": _one(w.b.platform_membership),
    },
    "organizations": lambda w, me: {"A": _one(w.a.org), "C": _one(w.c.org), "B": _one(w.b.org)},
    "memberships": lambda w, me: {
        side: list(Membership.objects.filter(organization=org).values_list("pk", flat=True))
        for side, org in (("A", w.a.org), ("C", w.c.org), ("B", w.b.org))
    },
    "invitations": lambda w, me: {"A": _one(w.a.invitation), "B": _one(w.b.invitation)},
    "labels": lambda w, me: {label.name: [label.pk] for label in Label.objects.all()},
    "machine-types": lambda w, me: {t.slug: [t.pk] for t in MachineType.objects.all()},
    "billing-settings": lambda w, me: {
        "A": _one(w.a.billing_settings),
        "B": _one(w.b.billing_settings),
    },
    "tariffs": lambda w, me: {"A": _one(w.a.tariff), "B": _one(w.b.tariff)},
    "consumables": lambda w, me: {"A": _one(w.a.filament), "B": _one(w.b.filament)},
    "consumable-uses": lambda w, me: {"A": _one(w.a.use), "B": _one(w.b.use)},
    "funding-programmes": lambda w, me: {"A": _one(w.a.programme), "B": _one(w.b.programme)},
    "billing-runs": lambda w, me: {
        side: list(BillingRun.objects.filter(platform=s.platform).values_list("pk", flat=True))
        for side, s in (("A", w.a), ("B", w.b))
    },
    "invoices": lambda w, me: {
        f"{side}_{state}": _one(getattr(s, state))
        for side, s in (("A", w.a), ("B", w.b))
        for state in ("draft", "issued")
    },
    "invoice-lines": lambda w, me: {
        f"{side}_{state}": list(getattr(s, state).lines.values_list("pk", flat=True))
        for side, s in (("A", w.a), ("B", w.b))
        for state in ("draft", "issued")
    },
    "me/tokens": lambda w, me: {
        "mine": list(ApiToken.objects.filter(user=me).values_list("pk", flat=True)),
        "others": _one(*{w.a.token, w.b.token} - set(ApiToken.objects.filter(user=me))),
    },
    "feeds": lambda w, me: {
        "mine": list(FeedToken.objects.filter(owner=me).values_list("pk", flat=True)),
        "others": list(FeedToken.objects.exclude(owner=me).values_list("pk", flat=True)),
    },
}

# Names each role sees; "staff" stands for manager, operator and accountant alike
# (reading never depends on the staff role), "*" for every object there is.
# fmt: off
#   endpoint                outsider  org_member  org_admin  org_acct  staff          superuser
VISIBLE = [
    ("platforms",            "",       "A",        "A",       "A",      "A",           "A B"),
    ("machines",             "",       "A",        "A",       "A",      "A A_retired", "*"),
    ("opening-hours",        "",       "A",        "A",       "A",      "A",           "A B"),
    ("closures",             "",       "A",        "A",       "A",      "A",           "A B"),
    ("maintenance-windows",  "",       "A",        "A",       "A",      "A A_retired", "*"),
    ("qualifications",       "",       "A",        "A",       "A",      "A",           "A B"),
    ("user-qualifications",  "",       "A",        "",        "",       "A",           "A B"),
    ("platform-memberships", "",       "A",        "A",       "A",      "A C",         "A C B"),
    ("organizations",        "",       "A",        "A",       "A",      "",            "A C B"),
    ("memberships",          "",       "A",        "A",       "A",      "",            "A C B"),
    ("invitations",          "",       "",         "A",       "",       "",            "A B"),
    ("labels",               "*",      "*",        "*",       "*",      "*",           "*"),
    ("machine-types",        "*",      "*",        "*",       "*",      "*",           "*"),
    ("me/tokens",            "mine",   "mine",     "mine",    "mine",   "mine",        "mine"),
    ("feeds",                "mine",   "mine",     "mine",    "mine",   "mine",        "mine"),
    ("billing-settings",     "",       "",         "",        "",       "A",           "A B"),
    ("tariffs",              "",       "A",        "A",       "A",      "A",           "A B"),
    ("consumables",          "",       "A",        "A",       "A",      "A",           "A B"),
    ("consumable-uses",      "",       "A",        "A",       "A",      "A",           "A B"),
    ("funding-programmes",   "",       "A",        "A",       "A",      "A",           "A B"),
    ("billing-runs",         "",       "",         "",        "",       "A",           "A B"),
    # SMEs' administrators and accountants see their issued invoices, never drafts;
    # of the platform's staff, operators see none (STAFF_EXCEPTIONS).
    ("invoices",             "",       "",         "A_issued", "A_issued", "A_draft A_issued", "*"),
    ("invoice-lines",        "",       "",         "A_issued", "A_issued", "A_draft A_issued", "*"),
]
# fmt: on

# Where one staff role reads less than the others.
STAFF_EXCEPTIONS = {"invoices": {"operator": ""}, "invoice-lines": {"operator": ""}}


def _expected_visible(row) -> dict[str, str]:
    endpoint, outsider, member, admin, org_accountant, staff, superuser = row
    return {
        "outsider": outsider,
        "org_member": member,
        "org_admin": admin,
        "org_accountant": org_accountant,
        **dict.fromkeys(STAFF_ROLES, staff),
        **STAFF_EXCEPTIONS.get(endpoint, {}),
        "superuser": superuser,
    }


def _names(spec: str, universe: dict) -> set[str]:
    return set(universe) if spec == "*" else set(spec.split())


@pytest.mark.parametrize("row", VISIBLE, ids=[row[0] for row in VISIBLE])
def test_each_role_lists_and_retrieves_exactly_what_it_may_see(api, world, row):
    endpoint = row[0]
    listed, retrievable, expected = {}, {}, {}
    for role, spec in _expected_visible(row).items():
        me = login(api, world, role)
        universe = UNIVERSE[endpoint](world, me)
        expected[role] = _names(spec, universe)

        response = api.get(f"{API}/{endpoint}/", {"page_size": 200})
        assert response.status_code == 200, (role, response.content)
        ids = {item["id"] for item in response.json()["results"]}
        known = {pk for pks in universe.values() for pk in pks}
        listed[role] = {name for name, pks in universe.items() if pks and set(pks) <= ids}
        listed[role] |= {f"unexpected id {pk}" for pk in ids - known}

        retrievable[role] = set()
        for name, pks in universe.items():
            responses = [api.get(f"{API}/{endpoint}/{pk}/") for pk in pks]
            statuses = {r.status_code for r in responses}
            if statuses == {200}:
                retrievable[role].add(name)
            elif statuses == {404}:
                # The 404 of a foreign object looks like any other 404.
                assert_error_shape(responses[0], "not_found")
            else:
                retrievable[role].add(f"{name} answered {sorted(statuses)}")

    assert listed == expected
    assert retrievable == expected


def test_me_is_always_the_caller(api, world):
    for role in ROLES:
        me = login(api, world, role)
        response = api.get(f"{API}/me/")
        assert (role, response.status_code, response.json()["email"]) == (role, 200, me.email)


def test_a_neighbour_sme_on_the_same_platform_stays_invisible(api, world):
    """Platform A's staff know both SMEs that book there; each SME knows only itself."""
    login(api, world, "org_admin")
    for url in (
        f"{API}/organizations/{world.c.org.pk}/",
        f"{API}/platform-memberships/{world.c.platform_membership.pk}/",
    ):
        assert api.get(url).status_code == 404
    listed = api.get(f"{API}/platform-memberships/", {"platform": world.a.platform.pk}).json()
    assert [m["organization_name"] for m in listed["results"]] == ["SME a"]

    login(api, world, "manager")
    listed = api.get(f"{API}/platform-memberships/", {"platform": world.a.platform.pk}).json()
    assert sorted(m["organization_name"] for m in listed["results"]) == ["SME a", "SME c"]


# --- Writes: what each role may change -----------------------------------------------------


@dataclass(frozen=True)
class Write:
    """One write, addressed to side A's objects ("own") or side B's ("foreign").
    `url` and `body` take (world, side, caller)."""

    method: str
    url: Callable
    body: Callable = lambda w, s, me: None
    model: type | None = None  # whose rows a refused write must leave untouched
    fields: tuple[str, ...] = field(default=())  # body fields naming objects


def _in_days(days: int, hour: int = 9):
    return (timezone.now() + timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )


def _url(endpoint: str, pk=None) -> str:
    return f"{API}/{endpoint}/" if pk is None else f"{API}/{endpoint}/{pk}/"


def _own_token(w, s, me) -> int:
    token, _secret = create_api_token(user=me, name="script")
    return token.pk


def _own_feed(w, s, me) -> int:
    token, _secret = create_feed_token(by=me, kind="user", name="calendar")
    return token.pk


def _membership(s, user) -> int:
    return Membership.objects.get(organization=s.org, user=user).pk


WRITES = {
    "me.update": Write(
        "patch", lambda w, s, me: f"{API}/me/", lambda w, s, me: {"full_name": "Renamed"}, User
    ),
    "email-preferences.update": Write(
        "patch",
        lambda w, s, me: f"{API}/me/email-preferences/",
        lambda w, s, me: {"booking_reminder": False},
        EmailPreferences,
    ),
    "tokens.create": Write(
        "post", lambda w, s, me: _url("me/tokens"), lambda w, s, me: {"name": "ci"}, ApiToken
    ),
    "tokens.rename": Write(
        "patch",
        lambda w, s, me: _url("me/tokens", _own_token(w, s, me)),
        lambda w, s, me: {"name": "renamed"},
        ApiToken,
    ),
    "tokens.revoke": Write(
        "delete", lambda w, s, me: _url("me/tokens", _own_token(w, s, me)), model=ApiToken
    ),
    "feeds.create": Write(
        "post",
        lambda w, s, me: _url("feeds"),
        lambda w, s, me: {"name": "calendar", "kind": "user"},
        FeedToken,
    ),
    "feeds.rename": Write(
        "patch",
        lambda w, s, me: _url("feeds", _own_feed(w, s, me)),
        lambda w, s, me: {"name": "renamed"},
        FeedToken,
    ),
    "feeds.revoke": Write(
        "delete", lambda w, s, me: _url("feeds", _own_feed(w, s, me)), model=FeedToken
    ),
    "organizations.create": Write(
        "post",
        lambda w, s, me: _url("organizations"),
        lambda w, s, me: {"legal_name": "New SME GmbH", "country": "DE"},
        Organization,
    ),
    "organizations.update": Write(
        "patch",
        lambda w, s, me: _url("organizations", s.org.pk),
        lambda w, s, me: {"city": "Hamburg"},
        Organization,
    ),
    "memberships.update": Write(
        "patch",
        lambda w, s, me: _url("memberships", _membership(s, s.org_member)),
        lambda w, s, me: {"role": "accountant"},
        Membership,
    ),
    "memberships.delete(member)": Write(
        "delete",
        lambda w, s, me: _url("memberships", _membership(s, s.org_member)),
        model=Membership,
    ),
    "memberships.delete(accountant)": Write(
        "delete",
        lambda w, s, me: _url("memberships", _membership(s, s.org_accountant)),
        model=Membership,
    ),
    "invitations.create": Write(
        "post",
        lambda w, s, me: _url("invitations"),
        lambda w, s, me: {"organization": s.org.pk, "email": "new@example.com", "role": "member"},
        Invitation,
        ("organization",),
    ),
    "invitations.revoke": Write(
        "delete", lambda w, s, me: _url("invitations", s.invitation.pk), model=Invitation
    ),
    "platforms.update": Write(
        "patch",
        lambda w, s, me: _url("platforms", s.platform.pk),
        lambda w, s, me: {"description": "Updated"},
        Platform,
    ),
    "machines.create": Write(
        "post",
        lambda w, s, me: _url("machines"),
        lambda w, s, me: {
            "platform": s.platform.pk,
            "machine_type": s.machine.machine_type_id,
            "name": "New machine",
        },
        Machine,
        ("platform",),
    ),
    "machines.update": Write(
        "patch",
        lambda w, s, me: _url("machines", s.machine.pk),
        lambda w, s, me: {"description": "Updated"},
        Machine,
    ),
    "machines.update(retired)": Write(
        "patch",
        lambda w, s, me: _url("machines", s.retired_machine.pk),
        lambda w, s, me: {"description": "Updated"},
        Machine,
    ),
    "opening-hours.create": Write(
        "post",
        lambda w, s, me: _url("opening-hours"),
        lambda w, s, me: {
            "platform": s.platform.pk,
            "weekday": 2,
            "opens_at": "09:00",
            "closes_at": "12:00",
        },
        OpeningHours,
        ("platform",),
    ),
    "opening-hours.update": Write(
        "patch",
        lambda w, s, me: _url("opening-hours", s.opening_hours.pk),
        lambda w, s, me: {"closes_at": "17:00"},
        OpeningHours,
    ),
    "opening-hours.delete": Write(
        "delete", lambda w, s, me: _url("opening-hours", s.opening_hours.pk), model=OpeningHours
    ),
    "closures.create": Write(
        "post",
        lambda w, s, me: _url("closures"),
        lambda w, s, me: {
            "platform": s.platform.pk,
            "start_date": str(timezone.localdate() + timedelta(days=60)),
            "end_date": str(timezone.localdate() + timedelta(days=61)),
        },
        Closure,
        ("platform",),
    ),
    "closures.update": Write(
        "patch",
        lambda w, s, me: _url("closures", s.closure.pk),
        lambda w, s, me: {"reason": "Updated"},
        Closure,
    ),
    "closures.delete": Write(
        "delete", lambda w, s, me: _url("closures", s.closure.pk), model=Closure
    ),
    "maintenance-windows.create": Write(
        "post",
        lambda w, s, me: _url("maintenance-windows"),
        lambda w, s, me: {
            "machine": s.machine.pk,
            "start": _in_days(10).isoformat(),
            "end": _in_days(10, hour=11).isoformat(),
        },
        MaintenanceWindow,
        ("machine",),
    ),
    "maintenance-windows.create(retired)": Write(
        "post",
        lambda w, s, me: _url("maintenance-windows"),
        lambda w, s, me: {
            "machine": s.retired_machine.pk,
            "start": _in_days(10).isoformat(),
            "end": _in_days(10, hour=11).isoformat(),
        },
        MaintenanceWindow,
        ("machine",),
    ),
    "maintenance-windows.update": Write(
        "patch",
        lambda w, s, me: _url("maintenance-windows", s.maintenance.pk),
        lambda w, s, me: {"reason": "Updated"},
        MaintenanceWindow,
    ),
    "maintenance-windows.delete": Write(
        "delete",
        lambda w, s, me: _url("maintenance-windows", s.maintenance.pk),
        model=MaintenanceWindow,
    ),
    "qualifications.create": Write(
        "post",
        lambda w, s, me: _url("qualifications"),
        lambda w, s, me: {
            "platform": s.platform.pk,
            "name": "New training",
            "machine_type": s.machine.machine_type_id,
        },
        Qualification,
        ("platform",),
    ),
    "qualifications.update": Write(
        "patch",
        lambda w, s, me: _url("qualifications", s.qualification.pk),
        lambda w, s, me: {"description": "Updated"},
        Qualification,
    ),
    "qualifications.delete": Write(
        "delete",
        lambda w, s, me: _url("qualifications", s.qualification.pk),
        model=Qualification,
    ),
    "user-qualifications.grant": Write(
        "post",
        lambda w, s, me: _url("user-qualifications"),
        lambda w, s, me: {
            "qualification": s.qualification.pk,
            "user": s.org_admin.email,
            "granted_on": str(timezone.localdate()),
        },
        UserQualification,
        ("qualification", "user"),
    ),
    "user-qualifications.update": Write(
        "patch",
        lambda w, s, me: _url("user-qualifications", s.grant.pk),
        lambda w, s, me: {"expires_on": str(timezone.localdate() + timedelta(days=365))},
        UserQualification,
    ),
    "user-qualifications.revoke": Write(
        "delete",
        lambda w, s, me: _url("user-qualifications", s.grant.pk),
        model=UserQualification,
    ),
    # --- Billing ---
    "billing-settings.update": Write(
        "patch",
        lambda w, s, me: _url("billing-settings", s.billing_settings.pk),
        lambda w, s, me: {"payment_terms_days": 45},
        BillingSettings,
    ),
    "tariffs.create": Write(
        "post",
        lambda w, s, me: _url("tariffs"),
        lambda w, s, me: {
            "platform": s.platform.pk,
            "machine": s.machine.pk,
            "valid_from": "2031-01-01",
            "hourly_rate": "10.00",
        },
        Tariff,
        ("platform", "machine"),
    ),
    "tariffs.update": Write(
        "patch",
        lambda w, s, me: _url("tariffs", s.tariff.pk),
        lambda w, s, me: {"hourly_rate": "50.00"},
        Tariff,
    ),
    "tariffs.delete(unbilled)": Write(
        "delete",
        lambda w, s, me: _url(
            "tariffs",
            Tariff.objects.create(
                platform=s.platform, machine=s.machine, valid_from="2035-01-01", hourly_rate=1
            ).pk,
        ),
        model=Tariff,
    ),
    "consumables.create": Write(
        "post",
        lambda w, s, me: _url("consumables"),
        lambda w, s, me: {
            "platform": s.platform.pk,
            "name": "Resin",
            "unit": "ml",
            "unit_price": "0.20",
        },
        Consumable,
        ("platform",),
    ),
    "consumables.update": Write(
        "patch",
        lambda w, s, me: _url("consumables", s.filament.pk),
        lambda w, s, me: {"unit_price": "0.05"},
        Consumable,
    ),
    "consumable-uses.create": Write(
        "post",
        lambda w, s, me: _url("consumable-uses"),
        lambda w, s, me: {"booking": s.booking.pk, "consumable": s.filament.pk, "quantity": "10"},
        ConsumableUse,
        ("booking", "consumable"),
    ),
    "consumable-uses.delete": Write(
        "delete", lambda w, s, me: _url("consumable-uses", s.use.pk), model=ConsumableUse
    ),
    "funding-programmes.create": Write(
        "post",
        lambda w, s, me: _url("funding-programmes"),
        lambda w, s, me: {
            "label": s.programme.label_id,
            "name": "New programme",
            "share": "0.3",
            "budget": "5000.00",
            "starts_on": "2027-01-01",
            "ends_on": "2027-12-31",
        },
        FundingProgramme,
    ),
    "billing-runs.create": Write(
        "post",
        lambda w, s, me: _url("billing-runs"),
        lambda w, s, me: {"platform": s.platform.pk, "month": "2026-11"},
        BillingRun,
        ("platform",),
    ),
    "invoice-lines.create": Write(
        "post",
        lambda w, s, me: _url("invoice-lines"),
        lambda w, s, me: {
            "invoice": s.draft.pk,
            "description": "Training",
            "quantity": "2",
            "unit": "h",
            "unit_price": "30.00",
        },
        InvoiceLine,
        ("invoice",),
    ),
    "invoice-lines.update": Write(
        "patch",
        lambda w, s, me: _url("invoice-lines", s.draft.lines.first().pk),
        lambda w, s, me: {"quantity": "3"},
        InvoiceLine,
    ),
    "invoice-lines.delete": Write(
        "delete",
        lambda w, s, me: _url("invoice-lines", s.draft.lines.first().pk),
        model=InvoiceLine,
    ),
    "invoices.issue": Write(
        "post", lambda w, s, me: f"{_url('invoices', s.draft.pk)}issue/", model=Invoice
    ),
    "invoices.credit-note": Write(
        "post", lambda w, s, me: f"{_url('invoices', s.issued.pk)}credit-note/", model=Invoice
    ),
    "invoices.payments": Write(
        "post",
        lambda w, s, me: f"{_url('invoices', s.issued.pk)}payments/",
        lambda w, s, me: {"reference": "VIR 42"},
        Payment,
    ),
    # Stripe is not configured here: whoever may pay gets 409 payments_not_configured.
    "invoices.pay-by-card": Write(
        "post", lambda w, s, me: f"{_url('invoices', s.issued.pk)}pay-by-card/", model=CardPayment
    ),
    "invoices.charge-saved-card": Write(
        "post",
        lambda w, s, me: f"{_url('invoices', s.issued.pk)}charge-saved-card/",
        model=CardPayment,
    ),
    "saved-cards.setup": Write(
        "post",
        lambda w, s, me: "/api/v1/saved-cards/setup/",
        lambda w, s, me: {"organization": s.org.pk},
        StripeCustomer,
        ("organization",),
    ),
    "saved-cards.delete": Write(
        "delete", lambda w, s, me: f"/api/v1/saved-cards/{s.org.pk}/", model=StripeCustomer
    ),
}

# Status each role gets on side A's object ("own"), and the status every role but the
# superuser gets on side B's ("foreign": 404 for an id in the URL, 400 "does not exist"
# for one in the body). The superuser gets the same on B as on A. "-": the write concerns
# the caller only (their profile, their tokens, a new organization of theirs); for
# other people's tokens see test_api_tokens_are_personal_even_for_the_superuser.
# fmt: off
#                                       ------- SME A -------   --- platform A ---
#   action                         out  member admin  acct     manager oper  acct   super  foreign
WRITE_MATRIX = [
    ("me.update",                  200, 200,   200,   200,     200,    200,  200,   200,   "-"),
    # Everyone chooses their own booking emails (GET /me/email-preferences/ likewise).
    ("email-preferences.update",   200, 200,   200,   200,     200,    200,  200,   200,   "-"),
    # A token cannot mint tokens (a leaked one would breed): only a logged-in session can.
    ("tokens.create",              403, 403,   403,   403,     403,    403,  403,   403,   "-"),
    ("tokens.rename",              200, 200,   200,   200,     200,    200,  200,   200,   "-"),
    ("tokens.revoke",              204, 204,   204,   204,     204,    204,  204,   204,   "-"),
    # Calendar feeds: the same (who may create which, from a session: see below).
    ("feeds.create",               403, 403,   403,   403,     403,    403,  403,   403,   "-"),
    ("feeds.rename",               200, 200,   200,   200,     200,    200,  200,   200,   "-"),
    ("feeds.revoke",               204, 204,   204,   204,     204,    204,  204,   204,   "-"),
    ("organizations.create",       201, 201,   201,   201,     201,    201,  201,   201,   "-"),
    ("organizations.update",       404, 403,   200,   403,     404,    404,  404,   200,   404),
    ("memberships.update",         404, 403,   200,   403,     404,    404,  404,   200,   404),
    # Anyone may leave; only admins remove someone else.
    ("memberships.delete(member)", 404, 204,   204,   403,     404,    404,  404,   204,   404),
    ("memberships.delete(accountant)",
                                   404, 403,   204,   204,     404,    404,  404,   204,   404),
    # Only admins see invitations; the others may name their organization, not use it.
    ("invitations.create",         400, 403,   201,   403,     400,    400,  400,   201,   400),
    ("invitations.revoke",         404, 404,   204,   404,     404,    404,  404,   204,   404),
    ("platforms.update",           404, 403,   403,   403,     200,    403,  403,   200,   404),
    ("machines.create",            400, 403,   403,   403,     201,    403,  403,   201,   400),
    ("machines.update",            404, 403,   403,   403,     200,    403,  403,   200,   404),
    # A retired machine is staff-only: to SME users it does not exist.
    ("machines.update(retired)",   404, 404,   404,   404,     200,    403,  403,   200,   404),
    ("opening-hours.create",       400, 403,   403,   403,     201,    403,  403,   201,   400),
    ("opening-hours.update",       404, 403,   403,   403,     200,    403,  403,   200,   404),
    ("opening-hours.delete",       404, 403,   403,   403,     204,    403,  403,   204,   404),
    ("closures.create",            400, 403,   403,   403,     201,    403,  403,   201,   400),
    ("closures.update",            404, 403,   403,   403,     200,    403,  403,   200,   404),
    ("closures.delete",            404, 403,   403,   403,     204,    403,  403,   204,   404),
    ("maintenance-windows.create", 400, 403,   403,   403,     201,    201,  403,   201,   400),
    ("maintenance-windows.create(retired)",
                                   400, 400,   400,   400,     201,    201,  403,   201,   400),
    ("maintenance-windows.update", 404, 403,   403,   403,     200,    200,  403,   200,   404),
    ("maintenance-windows.delete", 404, 403,   403,   403,     204,    204,  403,   204,   404),
    ("qualifications.create",      400, 403,   403,   403,     201,    403,  403,   201,   400),
    ("qualifications.update",      404, 403,   403,   403,     200,    403,  403,   200,   404),
    ("qualifications.delete",      404, 403,   403,   403,     204,    403,  403,   204,   404),
    # Only staff see who may hold a qualification: to SME users the holder does not exist.
    ("user-qualifications.grant",  400, 400,   400,   400,     201,    201,  403,   201,   400),
    # The holder (org_member) sees the grant but may not extend or revoke it.
    ("user-qualifications.update", 404, 403,   404,   404,     200,    200,  403,   200,   404),
    ("user-qualifications.revoke", 404, 403,   404,   404,     204,    204,  403,   204,   404),
    # --- Billing: managers and accountants keep prices; operators record consumables;
    # accountants bill, issue, credit and record payments. SMEs read, never write.
    ("billing-settings.update",    404, 404,   404,   404,     200,    403,  200,   200,   404),
    ("tariffs.create",             400, 403,   403,   403,     201,    403,  201,   201,   400),
    ("tariffs.update",             404, 403,   403,   403,     200,    403,  200,   200,   404),
    ("tariffs.delete(unbilled)",   404, 403,   403,   403,     204,    403,  204,   204,   404),
    ("consumables.create",         400, 403,   403,   403,     201,    403,  201,   201,   400),
    ("consumables.update",         404, 403,   403,   403,     200,    403,  200,   200,   404),
    ("consumable-uses.create",     400, 403,   403,   403,     201,    201,  403,   201,   400),
    ("consumable-uses.delete",     404, 403,   403,   403,     204,    204,  403,   204,   404),
    ("funding-programmes.create",  403, 403,   403,   403,     403,    403,  403,   201,   "-"),
    ("billing-runs.create",        400, 403,   403,   403,     403,    403,  201,   201,   400),
    # Drafts are the platform's business: to SMEs and operators they do not exist.
    ("invoice-lines.create",       400, 400,   400,   400,     403,    400,  201,   201,   400),
    ("invoice-lines.update",       404, 404,   404,   404,     403,    404,  200,   200,   404),
    ("invoice-lines.delete",       404, 404,   404,   404,     403,    404,  204,   204,   404),
    ("invoices.issue",             404, 404,   404,   404,     403,    404,  200,   200,   404),
    ("invoices.credit-note",       404, 404,   403,   403,     403,    404,  201,   201,   404),
    ("invoices.payments",          404, 404,   403,   403,     403,    404,  201,   201,   404),
    # The SME's administrators and accountants pay by card; platform accountants charge
    # a saved card. 409: card payments are not configured in these tests.
    ("invoices.pay-by-card",       404, 404,   409,   409,     403,    404,  403,   409,   404),
    ("invoices.charge-saved-card", 404, 404,   403,   403,     403,    404,  409,   409,   404),
    # The SME's administrators and accountants keep its saved card (409 likewise).
    ("saved-cards.setup",          400, 403,   409,   409,     400,    400,  400,   409,   400),
    ("saved-cards.delete",         404, 403,   409,   409,     404,    404,  404,   409,   404),
]
# fmt: on


def _snapshot(model) -> tuple[list[dict], int]:
    volatile = {"last_used_at", "updated_at"}
    rows = [
        {k: v for k, v in row.items() if k not in volatile}
        for row in model.objects.order_by("pk").values()
    ]
    return rows, AuditEvent.objects.count()


def _attempt(api, world, action: Write, side, me, role: str, label: str) -> int:
    """Send one write and check the invariants every answer obeys; returns the status."""
    url, body = action.url(world, side, me), action.body(world, side, me)
    rows_before, events_before = _snapshot(action.model)
    response = getattr(api, action.method)(url, body)
    status = response.status_code
    where = f"{role} {label}: {action.method.upper()} {url} -> {status} {response.content!r}"

    assert_well_formed(response)
    rows_after, events_after = _snapshot(action.model)
    if status < 300:
        assert rows_after != rows_before, f"{where}: nothing changed"
        last = AuditEvent.objects.order_by("-id").first()
        assert events_after > events_before and last.actor_id == me.pk, f"{where}: not audited"
    else:
        assert rows_after == rows_before, f"{where}: a refused write changed rows"
        assert events_after == events_before, f"{where}: a refused write was audited"
    if status == 400:
        assert_does_not_exist(response, action.fields)
    elif status == 404:
        assert_error_shape(response, "not_found")
    elif status == 403:
        assert_error_shape(response, "permission_denied")
    return status


@pytest.mark.parametrize("row", WRITE_MATRIX, ids=[row[0] for row in WRITE_MATRIX])
def test_write_matrix(api, world, row):
    name, *own, foreign = row
    action = WRITES[name]
    expected, observed = {}, {}
    for role, own_status in zip(ROLES, own, strict=True):
        if foreign == "-":
            expected[role] = own_status
        else:
            expected[role] = (own_status, own_status if role == "superuser" else foreign)
        me = login(api, world, role)
        with rolled_back():
            observed[role] = _attempt(api, world, action, world.a, me, role, "own")
        if foreign != "-":
            with rolled_back():
                foreign_status = _attempt(api, world, action, world.b, me, role, "foreign")
            observed[role] = (observed[role], foreign_status)

    assert observed == expected


# --- Unsupported methods, anonymous callers, other people's tokens ----------------------------

NOT_OFFERED = [
    ("post", "platforms", None),
    ("delete", "platforms", "platform"),
    ("delete", "machines", "machine"),
    ("delete", "organizations", "org"),
    ("post", "memberships", None),
    ("post", "platform-memberships", None),
    ("patch", "platform-memberships", "platform_membership"),
    ("delete", "platform-memberships", "platform_membership"),
    ("post", "labels", None),
    ("post", "machine-types", None),
    ("patch", "invitations", "invitation"),
    ("delete", "me", None),
    ("post", "me/email-preferences", None),
    ("put", "me/email-preferences", None),
    ("delete", "me/email-preferences", None),
    ("delete", "invoices", "issued"),
    ("patch", "invoices", "issued"),
    ("post", "invoices", None),
    ("delete", "billing-settings", "billing_settings"),
    ("delete", "consumables", "filament"),
    ("patch", "billing-runs", "run"),
    ("delete", "funding-programmes", "programme"),
]


@pytest.mark.parametrize(
    ("method", "endpoint", "attr"),
    NOT_OFFERED,
    ids=[f"{m} {e}{'/<id>' if a else ''}" for m, e, a in NOT_OFFERED],
)
def test_methods_not_offered_answer_405_even_to_the_superuser(api, world, method, endpoint, attr):
    login(api, world, "superuser")
    url = _url(endpoint, getattr(world.a, attr).pk if attr else None)

    response = getattr(api, method)(url, {})

    assert response.status_code == 405
    assert_error_shape(response, "method_not_allowed")


# Which feeds each role may create, from a logged-in session: a foreign or invisible
# target answers 404, as in a URL (the feed's target is what the feed would show).
# fmt: off
#                                 ------- SME A -------   --- platform A ---
#   target                   out  member admin  acct     manager oper  acct   super
FEED_CREATE_MATRIX = [
    ("user",                 201, 201,   201,   201,     201,    201,  201,   201),
    ("organization A",       404, 201,   201,   201,     404,    404,  404,   201),
    ("organization C",       404, 404,   404,   404,     404,    404,  404,   201),
    ("organization B",       404, 404,   404,   404,     404,    404,  404,   201),
    ("machine A",            404, 201,   201,   201,     201,    201,  201,   201),
    ("retired machine A",    404, 404,   404,   404,     201,    201,  201,   201),
    ("machine B",            404, 404,   404,   404,     404,    404,  404,   201),
    ("platform A",           404, 201,   201,   201,     201,    201,  201,   201),
    ("platform B",           404, 404,   404,   404,     404,    404,  404,   201),
]
# fmt: on
FEED_TARGETS = {
    "user": ("user", None),
    "organization A": ("organization", lambda w: w.a.org),
    "organization C": ("organization", lambda w: w.c.org),
    "organization B": ("organization", lambda w: w.b.org),
    "machine A": ("machine", lambda w: w.a.machine),
    "retired machine A": ("machine", lambda w: w.a.retired_machine),
    "machine B": ("machine", lambda w: w.b.machine),
    "platform A": ("platform", lambda w: w.a.platform),
    "platform B": ("platform", lambda w: w.b.platform),
}


@pytest.mark.parametrize("row", FEED_CREATE_MATRIX, ids=[row[0] for row in FEED_CREATE_MATRIX])
def test_feed_creation_matrix(api, world, row):
    target_name, *statuses = row
    kind, target = FEED_TARGETS[target_name]
    body = {"name": "calendar", "kind": kind}
    if target is not None:
        body[kind] = target(world).pk
    observed = {}
    for role in ROLES:
        me = user_of(world, role)
        api.credentials()
        api.force_login(me)
        with rolled_back():
            rows_before = _snapshot(FeedToken)
            response = api.post(_url("feeds"), body)
            observed[role] = response.status_code
            assert_well_formed(response)
            if response.status_code == 201:
                event = AuditEvent.objects.order_by("-id").first()
                assert (event.action, event.actor_id) == ("feedtoken.create", me.pk)
                assert set(response.json()["links"]) == {"https", "webcal", "google"}
            else:
                assert_error_shape(response, "not_found")
                assert _snapshot(FeedToken) == rows_before
        api.logout()

    assert observed == dict(zip(ROLES, statuses, strict=True))


@pytest.mark.parametrize("role", ROLES)
def test_feeds_are_personal_even_for_the_superuser(api, world, role):
    """Another person's feed is not found, whoever asks."""
    login(api, world, role)
    url = _url("feeds", world.b.feed.pk)
    for method, body in (("get", None), ("patch", {"name": "mine now"}), ("delete", None)):
        response = getattr(api, method)(url, body)
        assert response.status_code == 404, (method, response.content)
        assert_error_shape(response, "not_found")
    feed = FeedToken.objects.get(pk=world.b.feed.pk)
    assert (feed.name, feed.revoked_at) == ("calendar", None)


def _some_id(world, endpoint: str) -> int:
    if endpoint == "me/tokens":
        return world.a.token.pk
    return next(iter(UNIVERSE[endpoint](world, world.a.org_member).values()))[0]


@pytest.mark.parametrize(
    "endpoint", ["me", "me/email-preferences", *UNIVERSE, "invitations/accept"]
)
def test_anonymous_callers_get_401_everywhere(api, world, endpoint):
    requests = [("get", f"{API}/{endpoint}/"), ("post", f"{API}/{endpoint}/")]
    if endpoint in UNIVERSE:
        detail = _url(endpoint, _some_id(world, endpoint))
        requests += [(m, detail) for m in ("get", "put", "patch", "delete")]
    for method, url in requests:
        response = getattr(api, method)(url, {})
        assert response.status_code == 401, (method, url)
        assert_error_shape(response, "not_authenticated")
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_or_unknown_token_is_refused(api, world):
    token, revoked = create_api_token(user=world.a.manager, name="old")
    revoke_api_token(token=token, by=world.a.manager)
    for secret in (revoked, "fbp_not-a-real-token"):
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        response = api.get(f"{API}/me/")
        assert response.status_code == 401
        assert_error_shape(response, "authentication_failed")


def test_a_logged_in_session_may_mint_a_token(api, world):
    api.force_login(world.a.org_member)

    response = api.post(_url("me/tokens"), {"name": "ci"})

    assert response.status_code == 201
    assert response.json()["token"].startswith(ApiToken.PREFIX)
    assert ApiToken.objects.filter(user=world.a.org_member, name="ci").exists()


@pytest.mark.parametrize("role", ROLES)
def test_api_tokens_are_personal_even_for_the_superuser(api, world, role):
    """Another person's token is not found, whoever asks."""
    login(api, world, role)
    url = _url("me/tokens", world.b.token.pk)
    for method, body in (("get", None), ("patch", {"name": "mine now"}), ("delete", None)):
        response = getattr(api, method)(url, body)
        assert response.status_code == 404, (method, response.content)
        assert_error_shape(response, "not_found")
    token = ApiToken.objects.get(pk=world.b.token.pk)
    assert (token.name, token.revoked_at) == ("script", None)


def test_unknown_api_paths_answer_404_in_the_api_shape(api, world):
    login(api, world, "superuser")
    response = api.get(f"{API}/no-such-thing/")
    assert response.status_code == 404
    assert_error_shape(response, "not_found")


# --- Bodies naming foreign objects --------------------------------------------------------------


MOVES = [
    # (role, endpoint, own object, body field, foreign object it points at)
    ("manager", "machines", "machine", "platform", "platform"),
    ("manager", "opening-hours", "opening_hours", "platform", "platform"),
    ("manager", "closures", "closure", "platform", "platform"),
    ("manager", "qualifications", "qualification", "platform", "platform"),
    ("manager", "qualifications", "qualification", "machine", "machine"),
    ("operator", "maintenance-windows", "maintenance", "machine", "machine"),
]


@pytest.mark.parametrize(
    ("role", "endpoint", "attr", "body_field", "foreign_attr"),
    MOVES,
    ids=[f"{r} {e}.{f}" for r, e, _a, f, _fa in MOVES],
)
def test_own_objects_cannot_point_at_foreign_ones(
    api, world, role, endpoint, attr, body_field, foreign_attr
):
    login(api, world, role)
    own = getattr(world.a, attr)
    before = _snapshot(type(own))

    response = api.patch(_url(endpoint, own.pk), {body_field: getattr(world.b, foreign_attr).pk})

    assert response.status_code == 400
    assert_does_not_exist(response, (body_field,))
    assert _snapshot(type(own)) == before


def test_a_grant_keeps_its_holder_and_qualification(api, world):
    login(api, world, "manager")

    response = api.patch(
        _url("user-qualifications", world.a.grant.pk),
        {"qualification": world.b.qualification.pk, "user": world.b.org_member.email},
    )

    assert response.status_code == 200
    grant = UserQualification.objects.get(pk=world.a.grant.pk)
    assert (grant.qualification_id, grant.user_id) == (
        world.a.qualification.pk,
        world.a.org_member.pk,
    )


def test_staff_grant_only_to_people_who_may_book_on_their_platform(api, world):
    login(api, world, "manager")
    for holder, status in (
        (world.c.org_member, 201),  # the neighbour SME books on platform A too
        (world.b.org_member, 400),  # books on B only
        (world.outsider, 400),  # books nowhere
    ):
        body = {
            "qualification": world.a.qualification.pk,
            "user": holder.email,
            "granted_on": str(timezone.localdate()),
        }
        response = api.post(_url("user-qualifications"), body)
        assert response.status_code == status, (holder.email, response.content)
        if status == 400:
            assert_does_not_exist(response, ("user",))


# --- Query filters -------------------------------------------------------------------------------

FILTERS = [
    # (endpoint, filter, side B's object it names)
    ("machines", "platform", "platform"),
    ("opening-hours", "platform", "platform"),
    ("closures", "platform", "platform"),
    ("maintenance-windows", "machine", "machine"),
    ("maintenance-windows", "machine__platform", "platform"),
    ("qualifications", "platform", "platform"),
    ("qualifications", "machine", "machine"),
    ("user-qualifications", "qualification", "qualification"),
    ("user-qualifications", "qualification__platform", "platform"),
    ("platform-memberships", "platform", "platform"),
    ("platform-memberships", "organization", "org"),
    ("memberships", "organization", "org"),
    ("invitations", "organization", "org"),
]


def test_filtering_by_a_foreign_id_answers_like_an_unknown_id(api, world):
    """A list filter must not tell whether a foreign id exists: naming side B's object
    answers exactly as naming an id nobody has."""
    login(api, world, "org_admin")
    telling = []
    for endpoint, param, attr in FILTERS:
        by_foreign = api.get(_url(endpoint), {param: getattr(world.b, attr).pk})
        by_unknown = api.get(_url(endpoint), {param: 987654})
        assert_well_formed(by_foreign)
        assert_well_formed(by_unknown)
        answers = (by_foreign.status_code, by_unknown.status_code)
        if answers != (200, 200) and answers != (400, 400):
            telling.append(f"{endpoint}?{param}: foreign {answers[0]}, unknown {answers[1]}")
        elif answers == (200, 200):
            assert by_foreign.json()["results"] == by_unknown.json()["results"] == []

    assert not telling, "\n".join(telling)


# --- Refused writes leave nothing behind ---------------------------------------------------------


def test_refused_writes_leave_no_rows_and_no_audit_trail(api, world):
    """The matrix checks this for every refused write; here it is spelled out."""

    def counts():
        return {
            "machines": Machine.objects.count(),
            "invitations": Invitation.objects.count(),
            "grants": UserQualification.objects.count(),
            "audit events": AuditEvent.objects.count(),
        }

    a, b = world.a, world.b
    machine = {"machine_type": a.machine.machine_type_id, "name": "X"}
    grant = {"qualification": a.qualification.pk, "user": a.org_admin.email}
    invite = {"email": "x@example.com", "role": "member"}
    attempts = [
        # An operator may not add machines to their own platform.
        ("operator", "machines", {**machine, "platform": a.platform.pk}, 403),
        # A manager cannot add machines to someone else's platform.
        ("manager", "machines", {**machine, "platform": b.platform.pk}, 400),
        # An org admin cannot invite into another SME.
        ("org_admin", "invitations", {**invite, "organization": b.org.pk}, 400),
        # An SME member cannot invite into their own.
        ("org_member", "invitations", {**invite, "organization": a.org.pk}, 403),
        # A platform accountant may not grant qualifications.
        ("accountant", "user-qualifications", {**grant, "granted_on": "2030-01-01"}, 403),
    ]
    before = counts()

    for role, endpoint, body, status in attempts:
        login(api, world, role)
        response = api.post(_url(endpoint), body)
        assert response.status_code == status, (role, endpoint, response.content)

    assert counts() == before


def test_an_invitation_without_a_role_is_refused_or_made_like_any_other(api, world):
    """`role` is optional (the model defaults to member): leaving it out changes nothing
    about who may invite."""
    body = {"organization": world.a.org.pk, "email": "new@example.com"}
    before = Invitation.objects.count()

    login(api, world, "org_member")
    response = api.post(_url("invitations"), body)
    assert response.status_code == 403, response.content
    assert Invitation.objects.count() == before

    login(api, world, "org_admin")
    response = api.post(_url("invitations"), body)
    assert response.status_code == 201, response.content
    assert response.json()["role"] == "member"


def test_the_last_admin_cannot_leave(api, world):
    login(api, world, "org_admin")
    membership = Membership.objects.get(user=world.a.org_admin, organization=world.a.org)
    events = AuditEvent.objects.count()

    response = api.delete(_url("memberships", membership.pk))

    assert response.status_code == 400
    error = assert_error_shape(response, "invalid")
    assert "role" in error["details"]["fields"]
    assert Membership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.count() == events


# --- Accepting an invitation -----------------------------------------------------------------


def test_only_the_invited_address_can_accept(api, world):
    _invitation, secret = invite_member(
        organization=world.a.org,
        by=world.a.org_admin,
        email=world.outsider.email,
        role=Membership.Role.MEMBER,
    )
    accept = f"{API}/invitations/accept/"

    # Someone else holding the link cannot use it.
    login(api, world, "org_member")
    response = api.post(accept, {"token": secret})
    assert response.status_code == 403
    assert_error_shape(response, "permission_denied")

    # An unknown token is simply not found.
    login(api, world, "outsider")
    response = api.post(accept, {"token": "fbp_nope"})
    assert response.status_code == 404
    assert_error_shape(response, "not_found")

    # The invitee joins, and from then on sees the organization.
    assert api.get(_url("organizations", world.a.org.pk)).status_code == 404
    response = api.post(accept, {"token": secret})
    assert response.status_code == 200
    assert (response.json()["organization"], response.json()["role"]) == (world.a.org.pk, "member")
    assert api.get(_url("organizations", world.a.org.pk)).status_code == 200

    # A used invitation is gone.
    response = api.post(accept, {"token": secret})
    assert response.status_code == 410
    assert_error_shape(response, "invitation_used")


# --- Utilisation analytics ------------------------------------------------------------------
# Platform staff see their platform's table; an SME admin sees its own usage there
# (tests/booking/test_analytics_api.py checks what it contains); the other SME
# people see the platform but not its utilisation (403). A label's view is for
# the managers of its platforms. Labels are public, so a refused label view is a 403.
# The peak-hours heatmap has the platform table's audience.

# fmt: off
#   view                            outsider member admin acct manager oper acct super foreign
UTILISATION_MATRIX = [
    ("platforms/utilisation",          404,     403,   200,  403, 200,    200, 200, 200,  404),
    ("platforms/utilisation/heatmap",  404,     403,   200,  403, 200,    200, 200, 200,  404),
    ("labels/utilisation",             403,     403,   403,  403, 200,    403, 403, 200,  403),
]
# fmt: on


@pytest.mark.parametrize("row", UTILISATION_MATRIX, ids=[row[0] for row in UTILISATION_MATRIX])
def test_utilisation_matrix(api, world, row):
    """ "foreign": platform B, or a label only platform B carries."""
    view, *own, foreign = row
    endpoint, suffix = view.split("/", 1)
    own_label, foreign_label = world.labels
    world.a.platform.labels.add(own_label)
    world.b.platform.labels.add(foreign_label)
    ids = {
        "platforms": (world.a.platform.pk, world.b.platform.pk),
        "labels": (own_label.pk, foreign_label.pk),
    }[endpoint]
    period = {"start": "2027-03-01", "end": "2027-04-01", "group_by": "machine"}
    expected, observed = {}, {}
    for role, own_status in zip(ROLES, own, strict=True):
        expected[role] = (own_status, own_status if role == "superuser" else foreign)
        login(api, world, role)
        responses = [api.get(f"{API}/{endpoint}/{pk}/{suffix}/", period) for pk in ids]
        for response in responses:
            assert_well_formed(response)
        observed[role] = tuple(r.status_code for r in responses)

    assert observed == expected

    api.credentials()
    anonymous = api.get(f"{API}/{endpoint}/{ids[0]}/{suffix}/", period)
    assert anonymous.status_code == 401
    assert_error_shape(anonymous, "not_authenticated")


# --- Files: an invoice's PDF, accountants' exports ---------------------------------------------
#
# A PDF is had by whoever sees the issued document; a draft has none (409 to those who
# see it). Exports: the platform's managers and accountants take all; an SME's
# administrators and accountants take the list and the PDFs of their own documents;
# a platform one does not see is a 400 "does not exist" (it is a query parameter).

# fmt: off
#   download               outsider  member  admin  acct   manager  oper  acct   super  foreign
DOWNLOAD_MATRIX = [
    ("invoices.pdf",       404,      404,    200,   200,   200,     404,  200,   200,   404),
    ("invoices.pdf(draft)", 404,     404,    404,   404,   409,     404,  409,   409,   404),
    ("exports.csv",        400,      403,    200,   200,   200,     403,  200,   200,   400),
    ("exports.xlsx",       400,      403,    200,   200,   200,     403,  200,   200,   400),
    ("exports.zip",        400,      403,    200,   200,   200,     403,  200,   200,   400),
    ("exports.vat",        400,      403,    403,   403,   200,     403,  200,   200,   400),
    ("exports.fec",        400,      403,    403,   403,   200,     403,  200,   200,   400),
]
# fmt: on


def _download_url(name: str, side) -> tuple[str, dict]:
    if name == "invoices.pdf":
        return f"{API}/invoices/{side.issued.pk}/pdf/", {}
    if name == "invoices.pdf(draft)":
        return f"{API}/invoices/{side.draft.pk}/pdf/", {}
    month = f"{side.issued.issue_date:%Y-%m}"
    export = name.split(".")[1]
    return f"{API}/invoice-exports/", {
        "platform": side.platform.pk,
        "export": export,
        "month": month,
    }


@pytest.mark.parametrize("row", DOWNLOAD_MATRIX, ids=[row[0] for row in DOWNLOAD_MATRIX])
def test_download_matrix(api, world, row):
    name, *own, foreign = row
    expected, observed = {}, {}
    for role, own_status in zip(ROLES, own, strict=True):
        expected[role] = (own_status, own_status if role == "superuser" else foreign)
        login(api, world, role)
        responses = [api.get(*_download_url(name, side)) for side in (world.a, world.b)]
        for response in responses:
            if response.status_code >= 400:
                assert_well_formed(response)
            if response.status_code == 400:
                assert_does_not_exist(response, ("platform",))
        observed[role] = tuple(r.status_code for r in responses)

    assert observed == expected

    api.credentials()
    anonymous = api.get(*_download_url(name, world.a))
    assert anonymous.status_code == 401
    assert_error_shape(anonymous, "not_authenticated")
