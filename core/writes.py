"""The save-and-record steps most services share: validate the whole row, write
it, and append to the audit trail. Callers hold the transaction."""

from collections.abc import Callable

from django.db import models

from core.audit import jsonable, record
from core.models import User

Check = Callable[[models.Model], None]


def save_new(instance: models.Model, *, by: User, check: Check | None = None) -> models.Model:
    """Validate (model rules, then `check` for rules across rows), save, audit."""
    instance.full_clean()
    if check:
        check(instance)
    instance.save()
    record(actor=by, action=f"{instance._meta.model_name}.create", target=instance)
    return instance


def save_changes(
    instance: models.Model,
    *,
    by: User,
    data: dict,
    check: Check | None = None,
    also: dict | None = None,
) -> models.Model:
    """Apply `data`, validate, and save and audit what really changed, compared
    after validation so a value that only normalises to itself is no change.
    Many-to-many fields are the caller's to write; it passes what it changed
    as `also`, recorded in the same audit event."""
    before = {field: getattr(instance, field) for field in data}
    for field, value in data.items():
        setattr(instance, field, value)
    instance.full_clean()
    changes = {
        field: [jsonable(old), jsonable(getattr(instance, field))]
        for field, old in before.items()
        if getattr(instance, field) != old
    }
    if changes:
        if check:
            check(instance)
        instance.save()
    if changes or also:
        record(
            actor=by,
            action=f"{instance._meta.model_name}.update",
            target=instance,
            changes={**changes, **(also or {})},
        )
    return instance


def delete_recorded(instance: models.Model, *, by: User) -> None:
    record(actor=by, action=f"{instance._meta.model_name}.delete", target=instance)
    instance.delete()
