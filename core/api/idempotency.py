"""`Idempotency-Key` for POSTs that must not happen twice (a booking, a payment).

The first request with a key runs and its successful answer is stored with the
key, in the same transaction; a retry with the same key and the same request
gets that answer again, without acting; the same key with another request is a
422. Failed requests store nothing, so they may be retried as they are."""

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from core.errors import DomainError, Unprocessable
from core.models import IdempotentRequest

HEADER = "Idempotency-Key"
SCHEMA_PARAMETER = OpenApiParameter(
    HEADER,
    type=str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="A unique string (e.g. a UUID) per intended request: "
    "a retry with the same key never acts twice.",
)


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotent(request, perform: Callable[[], Response]) -> Response:
    """Run `perform` once per Idempotency-Key (when the request has one)."""
    key = request.headers.get(HEADER)
    if key is None:
        return perform()
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise ValidationError({HEADER: [_("Use 1 to 255 printable ASCII characters.")]})
    fingerprint = _fingerprint(request)
    with transaction.atomic():
        try:
            # Claimed first: a concurrent twin waits on this row, then replays it.
            with transaction.atomic():
                claim = IdempotentRequest.objects.create(
                    user=request.user,
                    key=key,
                    fingerprint=fingerprint,
                    response_status=0,
                    response_body={},
                )
        except IntegrityError:
            return _replay(request, key, fingerprint)
        try:
            response = perform()
        except DomainError as exc:
            # A refusal stores no answer (the request may be retried), but what
            # the service recorded after rolling itself back (refused demand,
            # booking/refusals.py) stays: drop the claim and commit the rest.
            claim.delete()
            refusal = exc
        else:
            claim.response_status = response.status_code
            claim.response_body = response.data
            claim.save(update_fields=["response_status", "response_body"])
            return response
    raise refusal


def _replay(request, key: str, fingerprint: str) -> Response:
    earlier = IdempotentRequest.objects.get(user=request.user, key=key)
    if earlier.fingerprint != fingerprint:
        raise Unprocessable(
            _("This Idempotency-Key was used for another request."), code="idempotency_key_reused"
        )
    response = Response(earlier.response_body, status=earlier.response_status)
    response["Idempotent-Replayed"] = "true"
    return response
