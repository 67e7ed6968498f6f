"""What a page shows when a service refuses. The services raise a DomainError
(core/errors.py: forbidden, conflict…) or, for a model rule, Django's
ValidationError; the pages catch both in the same two ways, written once here:

    with reported(request, done=lambda: _("Closure removed.")):
        equipment_services.delete_closure(closure=closure, by=request.user)
    return redirect(...)

says the refusal (or `done`) in a message on the page the view redirects to;

    with onto(form) as outcome:
        equipment_services.update_machine(machine=machine, by=request.user, data=data)
    if outcome.ok:
        return redirect(...)

puts a refusal next to the field it names (or above the form), for the view to
render the form again with what was typed."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms import Form

from core.errors import DomainError


@dataclass
class Outcome:
    error: str | None = None  # what the service said, when it refused

    @property
    def ok(self) -> bool:
        return self.error is None


def _said(refusal: Exception) -> str:
    if isinstance(refusal, ValidationError):
        return " ".join(refusal.messages)
    return refusal.message


@contextmanager
def reported(request, done: Callable[[], str] | None = None) -> Iterator[Outcome]:
    """Run a service call inside: a refusal becomes an error message, success the
    message `done()` gives (called after the call, so it may read what changed)."""
    outcome = Outcome()
    try:
        yield outcome
    except (DomainError, ValidationError) as refusal:
        outcome.error = _said(refusal)
        messages.error(request, outcome.error)
    else:
        if done is not None:
            messages.success(request, done())


@contextmanager
def onto(
    form: Form, *, rename: dict | None = None, refusal_field: str | None = None
) -> Iterator[Outcome]:
    """Run a service call inside: a model rule it broke goes next to its field
    (`rename` maps the model's field names to the form's; a name the form lacks
    goes above it), any other refusal above the form, or on `refusal_field`."""
    outcome = Outcome()
    try:
        yield outcome
    except ValidationError as invalid:
        outcome.error = _said(invalid)
        put_back(form, invalid, rename)
    except DomainError as error:
        outcome.error = error.message
        form.add_error(refusal_field, error.message)


def put_back(form: Form, invalid: ValidationError, rename: dict | None = None) -> None:
    """A model rule the service broke, next to its field (or above the form)."""
    rename = rename or {}
    if not hasattr(invalid, "error_dict"):  # a rule about no field in particular
        form.add_error(None, invalid.messages)
        return
    for field, errors in invalid.message_dict.items():
        field = rename.get(field, field)
        form.add_error(field if field in form.fields else None, errors)
