"""What the layout needs on every page: who the user is to the product (their
organizations and roles, the platforms they staff), for navigation by role."""

from dataclasses import dataclass, field

from django.utils.functional import SimpleLazyObject

from billing.models import FINANCE_ROLES, SME_PAYERS
from core.models import Membership
from equipment.models import PlatformStaff


@dataclass
class Roles:
    organizations: list = field(default_factory=list)  # Membership rows, organization loaded
    staff: list = field(default_factory=list)  # PlatformStaff rows, platform loaded
    superuser: bool = False

    @property
    def books(self) -> bool:
        """Books machines: an SME's admin or member (accountants handle invoices)."""
        return any(m.role != Membership.Role.ACCOUNTANT for m in self.organizations)

    @property
    def administers(self) -> list:
        return [m.organization for m in self.organizations if m.role == Membership.Role.ADMIN]

    @property
    def manages(self) -> bool:
        return self.superuser or any(s.role == PlatformStaff.Role.MANAGER for s in self.staff)

    @property
    def bills(self) -> bool:
        """Opens a platform's billing desk: its accountants (who act) and managers (who read)."""
        return self.superuser or any(s.role in FINANCE_ROLES for s in self.staff)

    @property
    def pays_invoices(self) -> bool:
        """Sees an organization's invoices: its administrators and accountants."""
        return any(m.role in SME_PAYERS for m in self.organizations)

    @property
    def works_on_platforms(self) -> bool:
        return self.superuser or any(
            s.role in (PlatformStaff.Role.MANAGER, PlatformStaff.Role.OPERATOR) for s in self.staff
        )


def roles_of(user) -> Roles:
    if not user.is_authenticated:
        return Roles()
    return Roles(
        organizations=list(
            Membership.objects.filter(user=user)
            .select_related("organization")
            .order_by("organization__legal_name")
        ),
        staff=list(PlatformStaff.objects.filter(user=user).select_related("platform")),
        superuser=user.is_superuser,
    )


def nav(request):
    return {"roles": SimpleLazyObject(lambda: roles_of(request.user))}
