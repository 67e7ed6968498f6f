"""Small helpers shared by the equipment tests."""

from django.contrib.contenttypes.models import ContentType

from core.models import AuditEvent

API = "/api/v1"


def field_errors(response) -> dict[str, list[str]]:
    """The per-field reasons of a 400 in the API's error shape."""
    body = response.json()
    assert body["error"]["code"] == "invalid", body
    return body["error"]["details"]["fields"]


def audit_actions(target=None) -> list[str]:
    """Actions recorded so far, oldest first (optionally for one object)."""
    events = AuditEvent.objects.order_by("id")
    if target is not None:
        events = events.filter(
            target_type=ContentType.objects.get_for_model(target), target_id=str(target.pk)
        )
    return list(events.values_list("action", flat=True))


def names(response) -> list[str]:
    return [row["name"] for row in response.json()["results"]]
