"""Writes on platforms and their machines. Each checks the caller's platform
role, validates the whole row (model rules and constraints), writes, and
records an audit event, all in one transaction."""

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.models import User
from core.writes import delete_recorded, save_changes, save_new
from equipment import permissions as perms
from equipment.models import (
    Closure,
    Machine,
    MaintenanceWindow,
    OpeningHours,
    Platform,
    PlatformMembership,
    Qualification,
    UserQualification,
)


def stay_on_platform(data: dict, platform: Platform) -> None:
    """Rows stay on the platform they were created on (its staff, its bookings)."""
    if "platform" in data and data["platform"] != platform:
        raise ValidationError({"platform": _("This cannot move to another platform.")})


# --- Platform -------------------------------------------------------------------------


@transaction.atomic
def update_platform(*, platform: Platform, by: User, data: dict) -> Platform:
    perms.require_platform_role(by, platform, perms.CAN_EDIT_PLATFORM)
    data = dict(data)
    labels = data.pop("labels", None)
    label_change = {}
    if labels is not None and set(labels) != set(platform.labels.all()):
        platform.labels.set(labels)
        label_change = {"labels": sorted(label.pk for label in labels)}
    return save_changes(platform, by=by, data=data, also=label_change)


# --- Machines -----------------------------------------------------------------------------


@transaction.atomic
def create_machine(*, platform: Platform, by: User, **fields) -> Machine:
    perms.require_platform_role(by, platform, perms.CAN_EDIT_MACHINES)
    return save_new(Machine(platform=platform, **fields), by=by)


@transaction.atomic
def update_machine(*, machine: Machine, by: User, data: dict) -> Machine:
    perms.require_platform_role(by, machine.platform, perms.CAN_EDIT_MACHINES)
    stay_on_platform(data, machine.platform)
    return save_changes(machine, by=by, data=data)


# --- Opening hours and closures ------------------------------------------------------------


def _check_no_overlapping_hours(hours: OpeningHours) -> None:
    overlapping = OpeningHours.objects.filter(
        platform=hours.platform,
        weekday=hours.weekday,
        opens_at__lt=hours.closes_at,
        closes_at__gt=hours.opens_at,
    ).exclude(pk=hours.pk)
    if overlapping.exists():
        span = overlapping.first()
        raise ValidationError(
            {
                "opens_at": _("Overlaps the opening hours %(span)s on the same day.")
                % {"span": f"{span.opens_at:%H:%M}–{span.closes_at:%H:%M}"}
            },
            code="overlapping_hours",
        )


@transaction.atomic
def create_opening_hours(*, platform: Platform, by: User, **fields) -> OpeningHours:
    perms.require_platform_role(by, platform, perms.CAN_EDIT_HOURS_AND_CLOSURES)
    hours = OpeningHours(platform=platform, **fields)
    return save_new(hours, by=by, check=_check_no_overlapping_hours)


@transaction.atomic
def update_opening_hours(*, hours: OpeningHours, by: User, data: dict) -> OpeningHours:
    perms.require_platform_role(by, hours.platform, perms.CAN_EDIT_HOURS_AND_CLOSURES)
    stay_on_platform(data, hours.platform)
    return save_changes(hours, by=by, data=data, check=_check_no_overlapping_hours)


@transaction.atomic
def delete_opening_hours(*, hours: OpeningHours, by: User) -> None:
    perms.require_platform_role(by, hours.platform, perms.CAN_EDIT_HOURS_AND_CLOSURES)
    delete_recorded(hours, by=by)


@transaction.atomic
def create_closure(*, platform: Platform, by: User, **fields) -> Closure:
    perms.require_platform_role(by, platform, perms.CAN_EDIT_HOURS_AND_CLOSURES)
    return save_new(Closure(platform=platform, **fields), by=by)


@transaction.atomic
def update_closure(*, closure: Closure, by: User, data: dict) -> Closure:
    perms.require_platform_role(by, closure.platform, perms.CAN_EDIT_HOURS_AND_CLOSURES)
    stay_on_platform(data, closure.platform)
    return save_changes(closure, by=by, data=data)


@transaction.atomic
def delete_closure(*, closure: Closure, by: User) -> None:
    perms.require_platform_role(by, closure.platform, perms.CAN_EDIT_HOURS_AND_CLOSURES)
    delete_recorded(closure, by=by)


# --- Maintenance ------------------------------------------------------------------------------


@transaction.atomic
def create_maintenance_window(*, machine: Machine, by: User, **fields) -> MaintenanceWindow:
    perms.require_platform_role(by, machine.platform, perms.CAN_EDIT_MAINTENANCE)
    return save_new(MaintenanceWindow(machine=machine, created_by=by, **fields), by=by)


@transaction.atomic
def update_maintenance_window(
    *, window: MaintenanceWindow, by: User, data: dict
) -> MaintenanceWindow:
    perms.require_platform_role(by, window.machine.platform, perms.CAN_EDIT_MAINTENANCE)
    if "machine" in data and data["machine"].platform_id != window.machine.platform_id:
        raise ValidationError({"machine": _("This machine is on another platform.")})
    return save_changes(window, by=by, data=data)


@transaction.atomic
def delete_maintenance_window(*, window: MaintenanceWindow, by: User) -> None:
    perms.require_platform_role(by, window.machine.platform, perms.CAN_EDIT_MAINTENANCE)
    delete_recorded(window, by=by)


# --- Qualifications ------------------------------------------------------------------------------


@transaction.atomic
def create_qualification(*, platform: Platform, by: User, **fields) -> Qualification:
    perms.require_platform_role(by, platform, perms.CAN_EDIT_QUALIFICATIONS)
    return save_new(Qualification(platform=platform, **fields), by=by)


@transaction.atomic
def update_qualification(*, qualification: Qualification, by: User, data: dict) -> Qualification:
    perms.require_platform_role(by, qualification.platform, perms.CAN_EDIT_QUALIFICATIONS)
    stay_on_platform(data, qualification.platform)
    return save_changes(qualification, by=by, data=data)


@transaction.atomic
def delete_qualification(*, qualification: Qualification, by: User) -> None:
    perms.require_platform_role(by, qualification.platform, perms.CAN_EDIT_QUALIFICATIONS)
    delete_recorded(qualification, by=by)


def _check_may_use_platform(user: User, platform: Platform) -> None:
    """Qualifications go to people who may book there: members of a member SME."""
    if not PlatformMembership.objects.filter(
        platform=platform, organization__memberships__user=user
    ).exists():
        raise ValidationError(
            {"user": _("This person belongs to no organization that may book on this platform.")},
            code="not_a_platform_user",
        )


@transaction.atomic
def grant_qualification(
    *,
    qualification: Qualification,
    user: User,
    by: User,
    granted_on: date,
    expires_on: date | None = None,
) -> UserQualification:
    perms.require_platform_role(by, qualification.platform, perms.CAN_GRANT_QUALIFICATIONS)
    _check_may_use_platform(user, qualification.platform)
    grant = UserQualification(
        qualification=qualification,
        user=user,
        granted_by=by,
        granted_on=granted_on,
        expires_on=expires_on,
    )
    return save_new(grant, by=by)


@transaction.atomic
def update_granted_qualification(
    *, grant: UserQualification, by: User, data: dict
) -> UserQualification:
    perms.require_platform_role(by, grant.qualification.platform, perms.CAN_GRANT_QUALIFICATIONS)
    return save_changes(grant, by=by, data=data)


@transaction.atomic
def revoke_qualification(*, grant: UserQualification, by: User) -> None:
    perms.require_platform_role(by, grant.qualification.platform, perms.CAN_GRANT_QUALIFICATIONS)
    delete_recorded(grant, by=by)
