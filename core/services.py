"""Writes for users, organizations, memberships, invitations and API tokens."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from core.audit import record
from core.errors import Forbidden, Gone, NotVisible
from core.models import ApiToken, Invitation, Membership, Organization, User, hash_secret
from core.permissions import can_administer_organization
from core.writes import save_changes, save_new


def _require_admin(user: User, organization: Organization) -> None:
    if not can_administer_organization(user, organization):
        raise Forbidden(_("Only the organization's administrators may do this."))


# --- Profile -------------------------------------------------------------------


@transaction.atomic
def update_profile(*, user: User, data: dict) -> User:
    return save_changes(user, by=user, data=data)


# --- Organizations --------------------------------------------------------------------


@transaction.atomic
def create_organization(*, by: User, **fields) -> Organization:
    """Register an SME; its creator becomes its first administrator."""
    organization = save_new(Organization(**fields), by=by)
    Membership.objects.create(user=by, organization=organization, role=Membership.Role.ADMIN)
    return organization


@transaction.atomic
def update_organization(*, organization: Organization, by: User, data: dict) -> Organization:
    _require_admin(by, organization)
    return save_changes(organization, by=by, data=data)


# --- Memberships -------------------------------------------------------------------------


def _ensure_an_admin_remains(membership: Membership) -> None:
    # Lock the admins' rows: otherwise two admins demoting each other at once
    # both see the other one and the organization is left with none.
    admins = list(
        Membership.objects.select_for_update()
        .filter(organization_id=membership.organization_id, role=Membership.Role.ADMIN)
        .values_list("pk", flat=True)
    )
    if membership.role == Membership.Role.ADMIN and set(admins) <= {membership.pk}:
        raise ValidationError(
            {"role": _("An organization keeps at least one administrator.")}, code="last_admin"
        )


@transaction.atomic
def change_member_role(*, membership: Membership, by: User, role: str) -> Membership:
    _require_admin(by, membership.organization)
    if role != membership.role:
        if role != Membership.Role.ADMIN:
            _ensure_an_admin_remains(membership)
        old = membership.role
        membership.role = role
        membership.full_clean()
        membership.save(update_fields=["role"])
        record(
            actor=by,
            action="membership.change_role",
            target=membership,
            changes={"role": [old, role]},
        )
    return membership


@transaction.atomic
def remove_member(*, membership: Membership, by: User) -> None:
    """Admins remove members; anyone may leave an organization."""
    if membership.user_id != by.pk:
        _require_admin(by, membership.organization)
    _ensure_an_admin_remains(membership)
    record(
        actor=by,
        action="membership.remove",
        target=membership.organization,
        changes={"user": membership.user.email, "role": membership.role},
    )
    membership.delete()


# --- Invitations -----------------------------------------------------------------------------


@transaction.atomic
def invite_member(
    *,
    organization: Organization,
    by: User,
    email: str,
    role: str = Membership.Role.MEMBER,
) -> tuple[Invitation, str]:
    """Invite `email` to join; returns the invitation and the secret of its link."""
    _require_admin(by, organization)
    email = email.strip().lower()
    if Membership.objects.filter(organization=organization, user__email=email).exists():
        raise ValidationError({"email": _("This person is already a member.")}, code="member")
    # A new invitation replaces any pending one for the same address.
    Invitation.objects.filter(
        organization=organization, email=email, accepted_at=None, revoked_at=None
    ).update(revoked_at=timezone.now())
    secret = ApiToken.generate_secret()
    invitation = Invitation(
        organization=organization,
        email=email,
        role=role,
        invited_by=by,
        token_hash=hash_secret(secret),
        expires_at=timezone.now() + timedelta(days=Invitation.LIFETIME_DAYS),
    )
    invitation.full_clean()
    invitation.save()
    record(actor=by, action="invitation.create", target=invitation, changes={"role": role})
    link = (
        f"{settings.FABPOOL_BASE_URL}{reverse('accept-invitation')}?{urlencode({'token': secret})}"
    )
    # robust: a mail server that is down must not turn a committed invitation
    # into an error for the caller (who would retry and revoke it); it is logged.
    transaction.on_commit(
        lambda: send_mail(
            subject=_("You are invited to join %(org)s on fabpool") % {"org": organization},
            message=_(
                "%(who)s invites you to join %(org)s on fabpool as %(role)s.\n\n"
                "Accept the invitation: %(link)s\n\nThe link is valid for %(days)d days."
            )
            % {
                "who": by.get_full_name(),
                "org": organization,
                "role": invitation.get_role_display(),
                "link": link,
                "days": Invitation.LIFETIME_DAYS,
            },
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[email],
        ),
        robust=True,
    )
    return invitation, secret


@transaction.atomic
def revoke_invitation(*, invitation: Invitation, by: User) -> Invitation:
    _require_admin(by, invitation.organization)
    if invitation.status == "pending":
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        record(actor=by, action="invitation.revoke", target=invitation)
    return invitation


@transaction.atomic
def accept_invitation(*, secret: str, user: User) -> Membership:
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("organization")
        .filter(token_hash=hash_secret(secret))
        .first()
    )
    if invitation is None or invitation.status == "revoked":
        raise NotVisible(_("This invitation does not exist."))
    if invitation.status != "pending":
        raise Gone(_("This invitation has expired or was already used."), code="invitation_used")
    if invitation.email != user.email:
        raise Forbidden(_("This invitation was sent to another email address."))
    membership, _created = Membership.objects.get_or_create(
        user=user, organization=invitation.organization, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    record(actor=user, action="invitation.accept", target=invitation)
    return membership


# --- API tokens ---------------------------------------------------------------------------------


@transaction.atomic
def create_api_token(*, user: User, name: str, with_token: bool = False) -> tuple[ApiToken, str]:
    """Returns the token row and its secret, which is never stored nor shown again.
    `with_token`: the caller authenticated with an API token, which may not mint
    more (a leaked token must not be able to give itself successors)."""
    if with_token:
        raise Forbidden(_("Create API tokens from a logged-in session, not with a token."))
    secret = ApiToken.generate_secret()
    token = ApiToken(user=user, name=name, hint=secret[:10], token_hash=hash_secret(secret))
    token.full_clean()
    token.save()
    record(actor=user, action="apitoken.create", target=token)
    return token, secret


@transaction.atomic
def rename_api_token(*, token: ApiToken, by: User, name: str) -> ApiToken:
    return save_changes(token, by=by, data={"name": name})


@transaction.atomic
def revoke_api_token(*, token: ApiToken, by: User) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(actor=by, action="apitoken.revoke", target=token)


# How stale last_used_at may get: one write a minute per token, not one a request.
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


def note_api_token_use(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= TOKEN_USE_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
