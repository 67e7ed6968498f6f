from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from core.models import AuditEvent, User


def jsonable(value):
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, list | tuple | set):
        return [jsonable(item) for item in value]
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
        changes={key: jsonable(value) for key, value in (changes or {}).items()},
    )
