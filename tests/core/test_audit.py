"""The audit trail: every service write leaves one AuditEvent (who, what, which
object, what changed); a write that fails leaves nothing."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError

from core import services
from core.errors import Forbidden, Gone
from core.models import ApiToken, AuditEvent, Invitation, Membership, Organization
from tests import factories

ACCEPT_URL = "http://testserver/invitations/accept/?token={token}"


def only_event(action: str) -> AuditEvent:
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, [str(e) for e in AuditEvent.objects.all()]
    return events[0]


def assert_event(event: AuditEvent, *, actor, target, changes=None):
    assert event.actor == actor
    assert event.actor_email == actor.email
    assert event.target_type == ContentType.objects.get_for_model(target)
    assert event.target_id == str(target.pk)
    assert event.target_repr == str(target)
    assert event.changes == (changes or {})


@pytest.fixture
def admin(world):
    return world.a.org_admin


def membership_of(user, organization) -> Membership:
    return Membership.objects.get(user=user, organization=organization)


def invite(world, email="newcomer@sme.example", role="member"):
    return services.invite_member(
        organization=world.a.org,
        by=world.a.org_admin,
        email=email,
        role=role,
    )


# --- Each write is recorded ------------------------------------------------------------------


def test_creating_an_organization_is_recorded(db):
    founder = factories.UserFactory()

    organization = services.create_organization(
        by=founder, legal_name="Atelier Dupont SARL", country="FR", siret="81234567600017"
    )

    assert_event(only_event("organization.create"), actor=founder, target=organization)


def test_updating_an_organization_records_old_and_new_values(world, admin):
    services.update_organization(
        organization=world.a.org,
        by=admin,
        data={"city": "Munich", "legal_name": "SME a", "billing_email": "ap@sme-a.example"},
    )

    # legal_name did not change, so it is not listed.
    assert_event(
        only_event("organization.update"),
        actor=admin,
        target=world.a.org,
        changes={"city": ["Berlin", "Munich"], "billing_email": ["", "ap@sme-a.example"]},
    )


def test_changing_the_country_records_country_codes(world, admin):
    services.update_organization(organization=world.a.org, by=admin, data={"country": "AT"})

    assert only_event("organization.update").changes == {"country": ["DE", "AT"]}


def test_an_update_that_changes_nothing_records_nothing(world, admin):
    services.update_organization(organization=world.a.org, by=admin, data={"city": "Berlin"})

    assert not AuditEvent.objects.filter(action="organization.update").exists()


def test_updating_a_profile_is_recorded(world):
    user = world.a.org_member
    old_name = user.full_name

    services.update_profile(user=user, data={"full_name": "Hugo B.", "language": "en"})

    assert_event(
        only_event("user.update"),
        actor=user,
        target=user,
        changes={"full_name": [old_name, "Hugo B."], "language": ["fr", "en"]},
    )


def test_changing_a_role_is_recorded(world, admin):
    target = membership_of(world.a.org_member, world.a.org)

    services.change_member_role(membership=target, by=admin, role="accountant")

    assert_event(
        only_event("membership.change_role"),
        actor=admin,
        target=target,
        changes={"role": ["member", "accountant"]},
    )


def test_removing_a_member_is_recorded_on_the_organization(world, admin):
    target = membership_of(world.a.org_member, world.a.org)

    services.remove_member(membership=target, by=admin)

    assert_event(
        only_event("membership.remove"),
        actor=admin,
        target=world.a.org,
        changes={"user": "member.a@sme.example", "role": "member"},
    )


def test_inviting_revoking_and_accepting_are_recorded(world, admin):
    invitation, _secret = invite(world, role="accountant")
    assert_event(
        only_event("invitation.create"),
        actor=admin,
        target=invitation,
        changes={"role": "accountant"},
    )

    services.revoke_invitation(invitation=invitation, by=admin)
    assert_event(only_event("invitation.revoke"), actor=admin, target=invitation)

    invitation, secret = invite(world)
    newcomer = factories.UserFactory(email="newcomer@sme.example")
    services.accept_invitation(secret=secret, user=newcomer)
    assert_event(only_event("invitation.accept"), actor=newcomer, target=invitation)


def test_api_token_creation_rename_and_revocation_are_recorded(db):
    user = factories.UserFactory()

    token, _secret = services.create_api_token(user=user, name="CI")
    assert_event(only_event("apitoken.create"), actor=user, target=token)

    services.rename_api_token(token=token, by=user, name="Nightly export")
    assert_event(
        only_event("apitoken.update"),
        actor=user,
        target=token,
        changes={"name": ["CI", "Nightly export"]},
    )

    services.revoke_api_token(token=token, by=user)
    services.revoke_api_token(token=token, by=user)  # already revoked: nothing more
    assert_event(only_event("apitoken.revoke"), actor=user, target=token)


def test_writes_through_the_api_are_recorded_with_the_caller_as_actor(api, world, admin):
    response = api.as_user(admin).patch(f"/api/v1/organizations/{world.a.org.pk}/", {"city": "Ulm"})

    assert response.status_code == 200
    assert_event(
        only_event("organization.update"),
        actor=admin,
        target=world.a.org,
        changes={"city": ["Berlin", "Ulm"]},
    )


def test_the_trail_keeps_the_actors_email_after_the_actor_is_deleted(db):
    user = factories.UserFactory(email="gone@sme.example")
    services.create_api_token(user=user, name="CI")
    event = only_event("apitoken.create")

    user.delete()

    event.refresh_from_db()
    assert (event.actor, event.actor_email) == (None, "gone@sme.example")


# --- A failed write records nothing --------------------------------------------------------------


def test_a_forbidden_update_records_nothing(world):
    before = AuditEvent.objects.count()

    with pytest.raises(Forbidden):
        services.update_organization(
            organization=world.a.org, by=world.a.org_member, data={"city": "Munich"}
        )

    assert AuditEvent.objects.count() == before


def test_an_invalid_update_records_nothing(world, admin):
    before = AuditEvent.objects.count()

    with pytest.raises(ValidationError):
        services.update_organization(
            organization=world.a.org, by=admin, data={"vat_number": "FR123"}
        )

    assert AuditEvent.objects.count() == before


def test_a_refused_demotion_of_the_last_admin_records_nothing(world, admin):
    before = AuditEvent.objects.count()

    with pytest.raises(ValidationError):
        services.change_member_role(
            membership=membership_of(admin, world.a.org), by=admin, role="member"
        )
    with pytest.raises(ValidationError):
        services.remove_member(membership=membership_of(admin, world.a.org), by=admin)

    assert AuditEvent.objects.count() == before


def test_a_refused_invitation_acceptance_records_nothing(world):
    _invitation, secret = invite(world)
    newcomer = factories.UserFactory(email="newcomer@sme.example")
    services.accept_invitation(secret=secret, user=newcomer)
    before = AuditEvent.objects.count()

    with pytest.raises(Gone):
        services.accept_invitation(secret=secret, user=newcomer)

    assert AuditEvent.objects.count() == before


def test_when_a_write_fails_after_recording_the_event_is_rolled_back_with_it(db, monkeypatch):
    founder = factories.UserFactory()

    def broken_create(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(Membership.objects, "create", broken_create)

    with pytest.raises(RuntimeError):
        services.create_organization(by=founder, legal_name="Doomed GmbH", country="DE")

    assert not Organization.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_failed_api_write_records_nothing(api, world):
    client = api.as_user(world.a.org_member)
    before = AuditEvent.objects.count()

    client.patch(f"/api/v1/organizations/{world.a.org.pk}/", {"city": "Munich"})
    client.post("/api/v1/me/tokens/", {"name": ""})

    assert AuditEvent.objects.count() == before
    assert ApiToken.objects.filter(user=world.a.org_member).count() == 1  # the client's own
    assert not Invitation.objects.exists()
