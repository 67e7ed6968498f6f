"""Organizations (SMEs), their memberships and invitations."""

import hashlib
import re
from contextlib import suppress
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.throttling import ScopedRateThrottle

from core.models import AuditEvent, Invitation, Membership, Organization
from core.services import invite_member
from tests import factories

ORGS = "/api/v1/organizations/"
MEMBERSHIPS = "/api/v1/memberships/"
INVITATIONS = "/api/v1/invitations/"
ACCEPT = "/api/v1/invitations/accept/"

SIRET = "81234567600017"
VAT_OF_SIRET = "FR19812345676"  # the VAT number of SIREN 812345676
OTHER_SIRET = "79845612500011"


def french_org(**fields):
    return {"legal_name": "Atelier Dupont SARL", "country": "FR", "siret": SIRET, **fields}


def field_errors(response, status: int = 400) -> dict[str, list[str]]:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["message"]
    return error["details"]["fields"]


def error_code(response, status: int) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]["code"]


@pytest.fixture
def founder(db):
    return factories.UserFactory(email="founder@sme.example")


# --- Creating an organization -------------------------------------------------------------


def test_creating_an_organization_makes_the_creator_its_admin(api, founder):
    response = api.as_user(founder).post(ORGS, french_org(vat_number=VAT_OF_SIRET))

    assert response.status_code == 201
    body = response.json()
    assert (body["legal_name"], body["siret"], body["vat_number"]) == (
        "Atelier Dupont SARL",
        SIRET,
        VAT_OF_SIRET,
    )
    organization = Organization.objects.get(pk=body["id"])
    assert list(organization.memberships.values_list("user", "role")) == [(founder.pk, "admin")]
    assert api.get(f"{ORGS}{organization.pk}/").json()["my_role"] == "admin"


def test_the_creation_response_shows_the_creator_as_admin(api, founder):
    response = api.as_user(founder).post(ORGS, french_org())

    assert response.json()["my_role"] == "admin"


def test_a_foreign_organization_needs_no_siret(api, founder):
    response = api.as_user(founder).post(
        ORGS, {"legal_name": "Maschinenbau GmbH", "country": "DE", "vat_number": "DE136695976"}
    )

    assert response.status_code == 201
    assert response.json()["siret"] is None


def test_spaces_in_siret_and_vat_number_are_normalised(api, founder):
    response = api.as_user(founder).post(
        ORGS, french_org(siret="812 345 676 00017", vat_number="FR 19 812 345 676")
    )

    assert response.status_code == 201
    organization = Organization.objects.get()
    assert (organization.siret, organization.vat_number) == (SIRET, VAT_OF_SIRET)


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        pytest.param(french_org(siret="1234"), "siret", "14 digits", id="malformed-siret"),
        pytest.param(french_org(siret="8123456760001X"), "siret", "14 digits", id="letters"),
        pytest.param(
            french_org(siret="81234567600018"), "siret", "check digit", id="bad-check-digit"
        ),
        pytest.param(
            french_org(siret=""), "siret", "French organization needs", id="french-no-siret"
        ),
        pytest.param(
            french_org(siret=OTHER_SIRET, vat_number=VAT_OF_SIRET),
            "vat_number",
            "another SIREN",
            id="vat-of-another-siren",
        ),
        pytest.param(french_org(vat_number="FR123"), "vat_number", "EU VAT", id="malformed-vat"),
        pytest.param(
            french_org(vat_number="FR00812345676"), "vat_number", "EU VAT", id="vat-check-digits"
        ),
        pytest.param(
            french_org(vat_number="812345676"), "vat_number", "country prefix", id="vat-no-prefix"
        ),
    ],
)
def test_invalid_business_identifiers_answer_400_with_the_field_and_reason(
    api, founder, data, field, reason
):
    response = api.as_user(founder).post(ORGS, data)

    fields = field_errors(response)
    assert field in fields
    assert reason in " ".join(fields[field])


def test_nothing_is_written_when_creation_fails(api, founder):
    client = api.as_user(founder)
    events = AuditEvent.objects.count()

    client.post(ORGS, french_org(siret="81234567600018"))

    assert not Organization.objects.exists()
    assert not Membership.objects.exists()
    assert AuditEvent.objects.count() == events


def test_a_siret_already_registered_answers_400_on_the_siret_field(api, founder):
    client = api.as_user(founder)
    client.post(ORGS, french_org())

    response = client.post(ORGS, french_org(legal_name="Copycat SAS"))

    assert "siret" in field_errors(response)
    assert Organization.objects.count() == 1


def test_a_siret_already_registered_is_caught_even_when_spelled_with_spaces(api, founder):
    client = api.as_user(founder)
    client.post(ORGS, french_org())

    response = client.post(ORGS, french_org(legal_name="Copycat SAS", siret="812 345 676 00017"))

    assert "siret" in field_errors(response)
    assert Organization.objects.count() == 1


def test_an_organization_requires_authentication(api, db):
    assert error_code(api.post(ORGS, french_org()), 401) == "not_authenticated"
    assert not Organization.objects.exists()


# --- Reading and updating -------------------------------------------------------------------


def test_members_see_only_their_organizations(api, world):
    body = api.as_user(world.a.org_member).get(ORGS).json()

    assert [(o["legal_name"], o["my_role"]) for o in body["results"]] == [("SME a", "member")]


def test_an_organization_of_others_is_not_found(api, world):
    response = api.as_user(world.b.org_admin).get(f"{ORGS}{world.a.org.pk}/")

    assert error_code(response, 404) == "not_found"


def test_an_admin_updates_the_organization(api, world):
    response = api.as_user(world.a.org_admin).patch(
        f"{ORGS}{world.a.org.pk}/", {"city": "Munich", "billing_email": "ap@sme-a.example"}
    )

    assert response.status_code == 200
    assert response.json()["my_role"] == "admin"
    world.a.org.refresh_from_db()
    assert (world.a.org.city, world.a.org.billing_email) == ("Munich", "ap@sme-a.example")


@pytest.mark.parametrize("role", ["member", "accountant"])
def test_only_admins_update_the_organization(api, world, role):
    user = getattr(world.a, f"org_{role}")

    response = api.as_user(user).patch(f"{ORGS}{world.a.org.pk}/", {"city": "Munich"})

    assert error_code(response, 403) == "permission_denied"
    world.a.org.refresh_from_db()
    assert world.a.org.city == "Berlin"


def test_an_outsider_cannot_update_an_organization(api, world):
    response = api.as_user(world.outsider).patch(f"{ORGS}{world.a.org.pk}/", {"city": "Munich"})

    assert error_code(response, 404) == "not_found"


def test_an_admin_changes_the_country(api, world):
    response = api.as_user(world.a.org_admin).patch(f"{ORGS}{world.a.org.pk}/", {"country": "AT"})

    assert response.status_code == 200
    assert response.json()["country"] == "AT"
    world.a.org.refresh_from_db()
    assert world.a.org.country == "AT"


def test_an_update_is_validated_like_a_creation(api, founder):
    organization = factories.OrganizationFactory(country="FR", siret=SIRET)
    factories.MembershipFactory(user=founder, organization=organization, role="admin")
    client = api.as_user(founder)

    bad_check_digit = client.patch(f"{ORGS}{organization.pk}/", {"siret": "81234567600018"})
    vat_of_another_siren = client.patch(
        f"{ORGS}{organization.pk}/", {"vat_number": "FR44798456125"}
    )
    siret_removed = client.patch(f"{ORGS}{organization.pk}/", {"siret": ""})

    assert "check digit" in field_errors(bad_check_digit)["siret"][0]
    assert "another SIREN" in field_errors(vat_of_another_siren)["vat_number"][0]
    assert "French organization needs" in field_errors(siret_removed)["siret"][0]
    organization.refresh_from_db()
    assert (organization.siret, organization.vat_number) == (SIRET, "")


# --- Memberships -------------------------------------------------------------------------------


def membership(user, organization) -> Membership:
    return Membership.objects.get(user=user, organization=organization)


def test_members_list_the_memberships_of_their_organizations_only(api, world):
    body = api.as_user(world.a.org_member).get(MEMBERSHIPS).json()

    assert sorted(m["email"] for m in body["results"]) == [
        "accountant.a@sme.example",
        "admin.a@sme.example",
        "member.a@sme.example",
    ]


def test_an_admin_changes_a_members_role(api, world):
    target = membership(world.a.org_member, world.a.org)

    response = api.as_user(world.a.org_admin).patch(
        f"{MEMBERSHIPS}{target.pk}/", {"role": "accountant"}
    )

    assert response.status_code == 200
    assert response.json()["role"] == "accountant"
    target.refresh_from_db()
    assert target.role == "accountant"


def test_a_member_cannot_change_roles(api, world):
    target = membership(world.a.org_accountant, world.a.org)

    response = api.as_user(world.a.org_member).patch(
        f"{MEMBERSHIPS}{target.pk}/", {"role": "admin"}
    )

    assert error_code(response, 403) == "permission_denied"
    target.refresh_from_db()
    assert target.role == "accountant"


def test_a_member_cannot_make_themself_admin(api, world):
    mine = membership(world.a.org_member, world.a.org)

    response = api.as_user(world.a.org_member).patch(f"{MEMBERSHIPS}{mine.pk}/", {"role": "admin"})

    assert error_code(response, 403) == "permission_denied"


def test_an_unknown_role_answers_400(api, world):
    target = membership(world.a.org_member, world.a.org)

    response = api.as_user(world.a.org_admin).patch(f"{MEMBERSHIPS}{target.pk}/", {"role": "boss"})

    assert "role" in field_errors(response)


def test_the_last_admin_cannot_be_demoted(api, world):
    mine = membership(world.a.org_admin, world.a.org)

    response = api.as_user(world.a.org_admin).patch(f"{MEMBERSHIPS}{mine.pk}/", {"role": "member"})

    assert "at least one administrator" in field_errors(response)["role"][0]
    mine.refresh_from_db()
    assert mine.role == "admin"


def test_an_admin_can_step_down_once_another_admin_exists(api, world):
    other = membership(world.a.org_member, world.a.org)
    client = api.as_user(world.a.org_admin)
    client.patch(f"{MEMBERSHIPS}{other.pk}/", {"role": "admin"})
    mine = membership(world.a.org_admin, world.a.org)

    response = client.patch(f"{MEMBERSHIPS}{mine.pk}/", {"role": "member"})

    assert response.status_code == 200
    assert set(world.a.org.memberships.filter(role="admin").values_list("user", flat=True)) == {
        world.a.org_member.pk
    }


def test_the_last_admin_cannot_leave(api, world):
    mine = membership(world.a.org_admin, world.a.org)

    response = api.as_user(world.a.org_admin).delete(f"{MEMBERSHIPS}{mine.pk}/")

    assert "at least one administrator" in field_errors(response)["role"][0]
    assert Membership.objects.filter(pk=mine.pk).exists()


def test_a_member_can_leave(api, world):
    mine = membership(world.a.org_member, world.a.org)

    response = api.as_user(world.a.org_member).delete(f"{MEMBERSHIPS}{mine.pk}/")

    assert response.status_code == 204
    assert not Membership.objects.filter(pk=mine.pk).exists()
    assert api.get(f"{ORGS}{world.a.org.pk}/").status_code == 404


def test_an_admin_removes_a_member(api, world):
    target = membership(world.a.org_member, world.a.org)

    response = api.as_user(world.a.org_admin).delete(f"{MEMBERSHIPS}{target.pk}/")

    assert response.status_code == 204
    assert not Membership.objects.filter(pk=target.pk).exists()


def test_a_member_cannot_remove_someone_else(api, world):
    target = membership(world.a.org_accountant, world.a.org)

    response = api.as_user(world.a.org_member).delete(f"{MEMBERSHIPS}{target.pk}/")

    assert error_code(response, 403) == "permission_denied"
    assert Membership.objects.filter(pk=target.pk).exists()


def test_memberships_of_other_organizations_are_not_found(api, world):
    target = membership(world.a.org_member, world.a.org)
    client = api.as_user(world.b.org_admin)

    assert error_code(client.get(f"{MEMBERSHIPS}{target.pk}/"), 404) == "not_found"
    assert error_code(client.delete(f"{MEMBERSHIPS}{target.pk}/"), 404) == "not_found"
    assert Membership.objects.filter(pk=target.pk).exists()


# --- Invitations -----------------------------------------------------------------------------


def secret_in(message) -> str:
    match = re.search(r"/invitations/accept/\?token=(\S+)", message.body)
    assert match, message.body
    return match.group(1)


@pytest.fixture
def invite(api, world, mailoutbox, django_capture_on_commit_callbacks):
    """`invite(email, role=…)` as admin of SME a: the invitation and the secret from its email."""

    def invite(email="newcomer@sme.example", role="member", by=None):
        client = api.as_user(by or world.a.org_admin)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                INVITATIONS, {"organization": world.a.org.pk, "email": email, "role": role}
            )
        assert response.status_code == 201, response.content
        invitation = Invitation.objects.get(pk=response.json()["id"])
        return invitation, secret_in(mailoutbox[-1])

    return invite


def test_an_admin_invites_by_email_and_the_email_leaves_after_commit(
    api, world, mailoutbox, django_capture_on_commit_callbacks
):
    client = api.as_user(world.a.org_admin)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            INVITATIONS,
            {"organization": world.a.org.pk, "email": "New@SME.example", "role": "accountant"},
        )
        assert mailoutbox == []  # not before the transaction commits

    assert response.status_code == 201
    body = response.json()
    assert (body["email"], body["role"], body["status"]) == (
        "new@sme.example",
        "accountant",
        "pending",
    )
    assert len(callbacks) == 1
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["new@sme.example"]
    assert "SME a" in mailoutbox[0].subject
    assert "token" not in body


def test_an_invitation_without_a_role_invites_a_member(api, world, mailoutbox):
    response = api.as_user(world.a.org_admin).post(
        INVITATIONS, {"organization": world.a.org.pk, "email": "newcomer@sme.example"}
    )

    assert response.status_code == 201, response.content
    assert response.json()["role"] == "member"


def test_no_invitation_email_leaves_when_the_transaction_rolls_back(
    world, mailoutbox, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        suppress(RuntimeError),
        transaction.atomic(),
    ):
        invite_member(
            organization=world.a.org,
            by=world.a.org_admin,
            email="newcomer@sme.example",
            role="member",
        )
        raise RuntimeError("something later in the same transaction failed")

    assert callbacks == []
    assert mailoutbox == []
    assert not Invitation.objects.exists()


def test_the_invitation_link_carries_a_secret_of_which_only_the_hash_is_stored(invite):
    invitation, secret = invite()

    assert invitation.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = list(Invitation.objects.values_list()) + list(AuditEvent.objects.values_list())
    assert secret not in repr(stored)


def test_the_invited_person_accepts_and_becomes_a_member_with_the_role(api, world, invite):
    _invitation, secret = invite("newcomer@sme.example", role="accountant")
    newcomer = factories.UserFactory(email="newcomer@sme.example")

    response = api.as_user(newcomer).post(ACCEPT, {"token": secret})

    assert response.status_code == 200
    assert (response.json()["organization"], response.json()["role"]) == (
        world.a.org.pk,
        "accountant",
    )
    assert membership(newcomer, world.a.org).role == "accountant"
    assert Invitation.objects.get().status == "accepted"


def test_an_invitation_sent_to_another_address_answers_403(api, world, invite):
    _invitation, secret = invite("newcomer@sme.example")

    response = api.as_user(world.b.org_member).post(ACCEPT, {"token": secret})

    assert error_code(response, 403) == "permission_denied"
    assert not Membership.objects.filter(user=world.b.org_member, organization=world.a.org)
    assert Invitation.objects.get().status == "pending"


def test_a_used_invitation_answers_410(api, world, invite):
    _invitation, secret = invite("newcomer@sme.example")
    newcomer = factories.UserFactory(email="newcomer@sme.example")
    client = api.as_user(newcomer)
    client.post(ACCEPT, {"token": secret})

    assert error_code(client.post(ACCEPT, {"token": secret}), 410) == "invitation_used"


def test_an_expired_invitation_answers_410(api, world, invite):
    invitation, secret = invite("newcomer@sme.example")
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    newcomer = factories.UserFactory(email="newcomer@sme.example")

    response = api.as_user(newcomer).post(ACCEPT, {"token": secret})

    assert response.status_code == 410
    assert not Membership.objects.filter(user=newcomer).exists()


def test_invitations_expire_after_fourteen_days(invite):
    invitation, _secret = invite()

    lifetime = invitation.expires_at - invitation.created_at
    assert timedelta(days=14) - timedelta(minutes=1) < lifetime <= timedelta(days=14)


def test_an_unknown_invitation_answers_404(api, world):
    response = api.as_user(world.outsider).post(ACCEPT, {"token": "fbp_no-such-invitation"})

    assert error_code(response, 404) == "not_found"


def test_accepting_needs_a_token(api, world):
    assert "token" in field_errors(api.as_user(world.outsider).post(ACCEPT, {}))


def test_a_revoked_invitation_answers_404(api, world, invite):
    invitation, secret = invite("newcomer@sme.example")
    revoke = api.as_user(world.a.org_admin).delete(f"{INVITATIONS}{invitation.pk}/")
    assert revoke.status_code == 204
    newcomer = factories.UserFactory(email="newcomer@sme.example")

    response = api.as_user(newcomer).post(ACCEPT, {"token": secret})

    assert error_code(response, 404) == "not_found"
    assert not Membership.objects.filter(user=newcomer).exists()


def test_re_inviting_revokes_the_pending_invitation(api, world, invite):
    first, first_secret = invite("newcomer@sme.example")
    second, second_secret = invite("newcomer@sme.example", role="accountant")
    first.refresh_from_db()
    assert (first.status, second.status) == ("revoked", "pending")
    newcomer = factories.UserFactory(email="newcomer@sme.example")
    client = api.as_user(newcomer)

    assert client.post(ACCEPT, {"token": first_secret}).status_code == 404
    assert client.post(ACCEPT, {"token": second_secret}).json()["role"] == "accountant"


def test_inviting_an_existing_member_answers_400(api, world, mailoutbox):
    response = api.as_user(world.a.org_admin).post(
        INVITATIONS,
        {"organization": world.a.org.pk, "email": "Member.A@sme.example", "role": "member"},
    )

    assert "already a member" in field_errors(response)["email"][0]
    assert not Invitation.objects.exists()
    assert mailoutbox == []


def test_only_admins_invite(api, world, mailoutbox):
    response = api.as_user(world.a.org_member).post(
        INVITATIONS,
        {"organization": world.a.org.pk, "email": "newcomer@sme.example", "role": "member"},
    )

    assert error_code(response, 403) == "permission_denied"
    assert not Invitation.objects.exists()


def test_an_organization_of_others_cannot_be_named_in_an_invitation(api, world):
    response = api.as_user(world.b.org_admin).post(
        INVITATIONS, {"organization": world.a.org.pk, "email": "newcomer@sme.example"}
    )

    assert "organization" in field_errors(response)
    assert not Invitation.objects.exists()


def test_only_admins_see_invitations(api, world, invite):
    invitation, _secret = invite()

    assert api.as_user(world.a.org_admin).get(INVITATIONS).json()["count"] == 1
    assert api.as_user(world.a.org_member).get(INVITATIONS).json()["count"] == 0
    response = api.as_user(world.a.org_member).delete(f"{INVITATIONS}{invitation.pk}/")
    assert error_code(response, 404) == "not_found"


# --- Accepting from the web page -------------------------------------------------------------


def test_the_accept_page_joins_a_logged_in_user(client, world, invite):
    _invitation, secret = invite("newcomer@sme.example")
    newcomer = factories.UserFactory(email="newcomer@sme.example")
    client.force_login(newcomer)

    page = client.get(f"/invitations/accept/?token={secret}")
    assert page.status_code == 200
    assert f'value="{secret}"' in page.content.decode()

    response = client.post("/invitations/accept/", {"token": secret}, follow=True)

    assert response.redirect_chain == [("/", 302)]
    assert "You joined SME a." in response.content.decode()
    assert membership(newcomer, world.a.org).role == "member"


def test_the_accept_page_shows_why_an_invitation_cannot_be_used(client, world, invite):
    _invitation, secret = invite("newcomer@sme.example")
    client.force_login(world.outsider)

    response = client.post("/invitations/accept/", {"token": secret})

    assert response.status_code == 200
    assert "sent to another email address" in response.content.decode()
    assert not Membership.objects.filter(user=world.outsider).exists()


def test_the_accept_page_asks_anonymous_visitors_to_log_in_first(client, db):
    response = client.get("/invitations/accept/?token=fbp_abc")

    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/?next=/invitations/accept/")


def test_sending_invitations_is_rate_limited_per_user(api, world, monkeypatch):
    """Each invitation emails an address the caller chose: a burst answers 429."""
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"invitations": "2/hour"})
    client = api.as_user(world.a.org_admin)

    statuses = [
        client.post(INVITATIONS, {"organization": world.a.org.pk, "email": f"p{n}@x.example"})
        for n in range(3)
    ]

    assert [r.status_code for r in statuses] == [201, 201, 429]
    assert statuses[-1].json()["error"]["code"] == "throttled"
    assert "Retry-After" in statuses[-1]
    assert Invitation.objects.filter(organization=world.a.org).count() == 2
    # Reading is not limited.
    assert client.get(INVITATIONS).status_code == 200


def test_a_mail_server_that_is_down_does_not_fail_a_committed_invitation(
    api, world, settings, django_capture_on_commit_callbacks, caplog
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there

    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_user(world.a.org_admin).post(
            INVITATIONS, {"organization": world.a.org.pk, "email": "late@sme.example"}
        )

    assert response.status_code == 201, response.content
    assert Invitation.objects.filter(email="late@sme.example").exists()
    assert "Error calling" in caplog.text  # logged for the operators, not lost
