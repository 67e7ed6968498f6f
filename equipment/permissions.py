"""Who may change what on a platform. Services call these before writing."""

from django.utils.translation import gettext as _

from core.errors import Forbidden
from equipment.models import Platform, PlatformStaff

MANAGER = PlatformStaff.Role.MANAGER
OPERATOR = PlatformStaff.Role.OPERATOR

# What each staff role may change on its own platform.
CAN_EDIT_PLATFORM = {MANAGER}
CAN_EDIT_MACHINES = {MANAGER}
CAN_EDIT_HOURS_AND_CLOSURES = {MANAGER}
CAN_EDIT_MAINTENANCE = {MANAGER, OPERATOR}
CAN_EDIT_QUALIFICATIONS = {MANAGER}
CAN_GRANT_QUALIFICATIONS = {MANAGER, OPERATOR}


def has_platform_role(user, platform: Platform, roles: set[str]) -> bool:
    if user.is_superuser:
        return True
    return PlatformStaff.objects.filter(user=user, platform=platform, role__in=roles).exists()


def require_platform_role(user, platform: Platform, roles: set[str]) -> None:
    if not has_platform_role(user, platform, roles):
        names = ", ".join(sorted(str(PlatformStaff.Role(r).label).lower() for r in roles))
        raise Forbidden(_("Only this platform's staff (%(roles)s) may do this.") % {"roles": names})
