from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from core.models import AuditEvent, User


def _jsonable(value):
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, list | tuple | set):
        return [_jsonable(item) for item in value]
    if isinstance(value, str | int | float | bool | dict) or value is None:
        return value
    try:
        return DjangoJSONEncoder().default(value)  # dates, decimals, UUIDs…
    except TypeError:
        return str(value)  # e.g. a django-countries Country: its code


def record(*, actor: User | None, action: str, target: models.Model, changes: dict | None = None):
    """Append one line to the audit trail. Call it inside the service's transaction,
    so the trail and the change commit or roll back together."""
    return AuditEvent.objects.create(
        actor=actor if actor and actor.pk else None,
        actor_email=actor.email if actor and actor.pk else "",
        action=action,
        target_type=ContentType.objects.get_for_model(target),
        target_id=str(target.pk),
        target_repr=str(target)[:200],
        changes={key: _jsonable(value) for key, value in (changes or {}).items()},
    )


def apply_changes(instance: models.Model, data: dict) -> dict:
    """Set `data` on `instance` and return {field: [old, new]} for what really changed
    (many-to-many fields are left to the caller)."""
    changes = {}
    for field, new in data.items():
        old = getattr(instance, field)
        if old != new:
            setattr(instance, field, new)
            changes[field] = [_jsonable(old), _jsonable(new)]
    return changes


# Save-and-record steps that most services share. Callers hold the transaction.


def save_new(instance: models.Model, *, by: User, check=None) -> models.Model:
    """Validate (model rules, then `check` for rules across rows), save, audit."""
    instance.full_clean()
    if check:
        check(instance)
    instance.save()
    record(actor=by, action=f"{instance._meta.model_name}.create", target=instance)
    return instance


def save_changes(instance: models.Model, *, by: User, data: dict, check=None) -> models.Model:
    changes = apply_changes(instance, data)
    if changes:
        instance.full_clean()
        if check:
            check(instance)
        instance.save()
        record(
            actor=by, action=f"{instance._meta.model_name}.update", target=instance, changes=changes
        )
    return instance


def delete_recorded(instance: models.Model, *, by: User) -> None:
    record(actor=by, action=f"{instance._meta.model_name}.delete", target=instance)
    instance.delete()
