"""SME admin pages: members and roles, invitations, the organization's bookings.
Writes go through core/services.py, which checks that the caller administers
the organization; another SME's organization is not found (404)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from booking.models import Booking
from core import services
from core.models import Invitation, Membership, Organization
from core.permissions import can_administer_organization
from frontend.booking_views import actions
from frontend.forms import InviteForm, RoleForm
from frontend.outcomes import onto, reported


def _organization(request, pk) -> Organization:
    return get_object_or_404(Organization.objects.visible_to(request.user), pk=pk)


def _members_page(request, organization, invite_form=None, status=200):
    members = list(
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__email")
    )
    invitations = Invitation.objects.filter(
        organization=organization,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).select_related("invited_by")
    return render(
        request,
        "frontend/organization/members.html",
        {
            "organization": organization,
            "members": members,
            "invitations": invitations,
            "is_admin": can_administer_organization(request.user, organization),
            "invite_form": invite_form or InviteForm(),
            "role_choices": Membership.Role.choices,  # not "roles": the navigation's
        },
        status=status,
    )


@login_required
def members(request, pk):
    return _members_page(request, _organization(request, pk))


@login_required
@require_POST
def invite(request, pk):
    organization = _organization(request, pk)
    form = InviteForm(request.POST)
    if form.is_valid():
        with onto(form) as outcome:
            services.invite_member(organization=organization, by=request.user, **form.cleaned_data)
        if outcome.ok:
            messages.success(
                request, _("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"]}
            )
            return redirect("organization", pk=organization.pk)
    return _members_page(request, organization, invite_form=form, status=400)


def _membership(request, organization, member_pk) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "organization"),
        organization=organization,
        pk=member_pk,
    )


@login_required
@require_POST
def change_role(request, pk, member_pk):
    organization = _organization(request, pk)
    membership = _membership(request, organization, member_pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a role."))
    else:
        done = _("%(who)s is now %(role)s.")
        with reported(
            request,
            done=lambda: (
                done
                % {"who": membership.user.get_full_name(), "role": membership.get_role_display()}
            ),
        ):
            services.change_member_role(
                membership=membership, by=request.user, role=form.cleaned_data["role"]
            )
    return redirect("organization", pk=organization.pk)


@login_required
@require_POST
def remove_member(request, pk, member_pk):
    organization = _organization(request, pk)
    membership = _membership(request, organization, member_pk)
    who = membership.user.get_full_name()
    with reported(request, done=lambda: _("%(who)s was removed.") % {"who": who}):
        services.remove_member(membership=membership, by=request.user)
    return redirect("organization", pk=organization.pk)


@login_required
@require_POST
def revoke_invitation(request, pk, invitation_pk):
    organization = _organization(request, pk)
    invitation = get_object_or_404(Invitation, organization=organization, pk=invitation_pk)
    with reported(request, done=lambda: _("Invitation revoked.")):
        services.revoke_invitation(invitation=invitation, by=request.user)
    return redirect("organization", pk=organization.pk)


@login_required
def bookings(request, pk):
    organization = _organization(request, pk)
    now = timezone.now()
    which = "past" if request.GET.get("show") == "past" else "upcoming"
    found = Booking.objects.filter(organization=organization).select_related(
        "machine__platform", "booked_by"
    )
    current = Q(end__gt=now, status__in=Booking.ACTIVE_STATUSES)
    if which == "upcoming":
        found = found.filter(current).order_by("start", "pk")
    else:
        found = found.exclude(current).order_by("-start", "-pk")
    page = Paginator(found, 50).get_page(request.GET.get("page"))
    for booking in page:
        booking.actions = actions(booking, now)
    return render(
        request,
        "frontend/organization/bookings.html",
        {"organization": organization, "page": page, "which": which},
    )
