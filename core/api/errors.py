"""One error shape for the whole API:

    {"error": {"code": "…", "message": "…", "details": {…}}}

Validation errors list their reasons per field in details["fields"], keyed by
the field's path ("labels.0", "non_field_errors")."""

import logging

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _flatten(errors, prefix: str = "") -> dict[str, list[str]]:
    """{"a": {"0": ["x"]}} → {"a.0": ["x"]}."""
    if isinstance(errors, dict):
        flat = {}
        for key, value in errors.items():
            if key == NON_FIELD_ERRORS:  # Django's "__all__", from Model.full_clean()
                key = api_settings.NON_FIELD_ERRORS_KEY
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(errors, list) and errors and not all(isinstance(e, str) for e in errors):
        flat = {}
        for index, value in enumerate(errors):
            if value:
                flat.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    if isinstance(errors, list):
        return {prefix or "non_field_errors": [str(e) for e in errors]}
    return {prefix or "non_field_errors": [str(errors)]}


def _is_uniqueness_race(exc: IntegrityError) -> bool:
    """Unique or exclusion violations only; any other integrity error is a bug (500)."""
    sqlstate = getattr(exc.__cause__, "sqlstate", None)  # psycopg
    return sqlstate in {"23505", "23P01"} or str(exc).startswith("UNIQUE constraint failed")


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, IntegrityError) and _is_uniqueness_race(exc):
        # Services validate first; this is the database catching a race between
        # two writers of the same unique value. The loser gets a clear 409.
        logger.warning("Uniqueness race answered 409: %s", exc)
        return Response(
            error_body("conflict", "This change conflicts with data written meanwhile; retry."),
            status=status.HTTP_409_CONFLICT,
        )

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django answers 500 and logs it

    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.items()))
        message = f"{first[0]}: {first[1][0]}" if first[0] != "non_field_errors" else first[1][0]
        response.data = error_body("invalid", message, {"fields": fields})
    else:
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        if not isinstance(code, str):
            code = "error"
        response.data = error_body(code, str(getattr(exc, "detail", exc)))
    return response


@csrf_exempt  # a POST to an unknown URL is a 404, not a CSRF failure page
def api_not_found(request, *args, **kwargs):
    """404 for unknown URLs under /api/ in the API's shape (pages keep Django's)."""
    message = (
        _("No such endpoint.")
        if request.path.endswith("/")
        else _("No such endpoint (API paths end with a slash).")
    )
    return JsonResponse(error_body("not_found", message), status=404)
