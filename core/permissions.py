"""Who may change what in an organization. Services call these; reads go
through the `visible_to(user)` querysets."""

from core.models import Membership, Organization, User


def organization_role(user: User, organization: Organization) -> str | None:
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(user=user, organization=organization)
        .values_list("role", flat=True)
        .first()
    )


def can_administer_organization(user: User, organization: Organization) -> bool:
    return user.is_superuser or organization_role(user, organization) == Membership.Role.ADMIN
