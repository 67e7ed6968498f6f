"""Recording refused demand (RefusedRequest) for utilisation analytics.

A refused booking raises inside its service's `transaction.atomic()`, which rolls
back every row written there; so the refusal is recorded by a decorator *outside*
that block, after the rollback. Series call create_booking once per occurrence
inside savepoints of their own, which would roll such rows back too: a series is
recorded by its own decorator, from its report, whichever way it ends."""

import functools
import logging
from datetime import UTC

from django.db import DatabaseError, transaction

from booking.errors import BookingConflict, BookingRejected, SeriesNotBookable
from booking.models import Booking, RefusedRequest

logger = logging.getLogger(__name__)


def _codes(problems: list[dict]) -> list[str]:
    return sorted({str(p.get("code", "")) for p in problems})


def _save(rows: list[RefusedRequest]) -> None:
    """Best effort: a failure to record must never hide the refusal from its caller."""
    if not rows:
        return
    try:
        with transaction.atomic():  # a savepoint when a caller holds a transaction
            RefusedRequest.objects.bulk_create(rows)
    except DatabaseError:
        logger.exception("Could not record %d refused booking request(s)", len(rows))


def _row(*, kind: str, action: str, machine_id, organization_id, by, start, end, **extra):
    return RefusedRequest(
        kind=kind,
        action=action,
        machine_id=machine_id,
        organization_id=organization_id,
        requested_by=by if getattr(by, "pk", None) else None,
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        **extra,
    )


def _kind_of(exc: Exception) -> tuple[str, list[str]]:
    if isinstance(exc, BookingConflict):
        return RefusedRequest.Kind.CONFLICT, []
    return RefusedRequest.Kind.RULES, _codes(exc.problems)


def records_refusals(action: str):
    """For create_booking (action "create") and move_booking ("move"): record a
    BookingRejected or BookingConflict, then let it go on to the caller."""

    def decorate(service):
        @functools.wraps(service)
        def wrapper(**kwargs):
            try:
                return service(**kwargs)
            except (BookingRejected, BookingConflict) as exc:
                kind, codes = _kind_of(exc)
                booking: Booking | None = kwargs.get("booking")
                if booking is not None:
                    machine_id, organization_id = booking.machine_id, booking.organization_id
                else:
                    machine_id = kwargs["machine"].pk
                    organization_id = kwargs["organization"].pk
                _save(
                    [
                        _row(
                            kind=kind,
                            action=action,
                            machine_id=machine_id,
                            organization_id=organization_id,
                            by=kwargs.get("by"),
                            start=kwargs["start"],
                            end=kwargs["end"],
                            booking=booking,
                            codes=codes,
                        )
                    ]
                )
                raise

        return wrapper

    return decorate


def records_series_refusals(service):
    """For create_series: every occurrence that was not booked is refused demand,
    whether the series went through with `skip_conflicts` or was refused whole."""

    @functools.wraps(service)
    def wrapper(**kwargs):
        common = {
            "action": RefusedRequest.Action.SERIES,
            "machine_id": kwargs["machine"].pk,
            "organization_id": kwargs["organization"].pk,
            "by": kwargs.get("by"),
        }

        def rows(lines: list[dict]) -> list[RefusedRequest]:
            return [
                _row(
                    kind=RefusedRequest.Kind.CONFLICT
                    if line.get("conflicts")
                    else RefusedRequest.Kind.RULES,
                    start=line["start"],
                    end=line["end"],
                    codes=_codes(line.get("problems") or []),
                    **common,
                )
                for line in lines
            ]

        try:
            series, report = service(**kwargs)
        except SeriesNotBookable as exc:
            refused = [o for o in exc.details["occurrences"] if not o.get("bookable")]
            _save(rows(refused))
            raise
        _save(rows([line for line in report if not line["booked"]]))
        return series, report

    return wrapper


def record_rejection(booking: Booking, *, by) -> None:
    """A manager rejected a pending booking: called inside reject_booking's
    transaction, which commits (the rejection is not a failure of the service)."""
    RefusedRequest.objects.create(
        kind=RefusedRequest.Kind.REJECTED,
        action=RefusedRequest.Action.APPROVAL,
        machine_id=booking.machine_id,
        organization_id=booking.organization_id,
        requested_by_id=booking.booked_by_id,
        booking=booking,
        start=booking.start,
        end=booking.end,
    )
