"""frontend/outcomes.py: how every page shows a service's refusal. `reported`
says it in a message (or says `done` on success); `onto` puts it next to the
field it is about, or above the form."""

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.exceptions import ValidationError

from core.errors import Conflict
from frontend.outcomes import onto, reported


@pytest.fixture
def request_(rf):
    request = rf.post("/")
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def said(request) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(request)]


class NameForm(forms.Form):
    name = forms.CharField()
    email = forms.EmailField()


def test_a_success_is_said_after_the_call_which_may_change_what_it_says(request_):
    changed = {"name": "before"}

    with reported(request_, done=lambda: f"now {changed['name']}") as outcome:
        changed["name"] = "after"

    assert outcome.ok and said(request_) == [("success", "now after")]


@pytest.mark.parametrize(
    ("refusal", "message"),
    [
        (Conflict("Already checked in.", code="x"), "Already checked in."),
        (ValidationError({"a": ["One."], "b": ["Two."]}), "One. Two."),
        (ValidationError("Plain."), "Plain."),
    ],
)
def test_a_refusal_is_said_instead_of_done(request_, refusal, message):
    with reported(request_, done=lambda: "never") as outcome:
        raise refusal

    assert not outcome.ok and outcome.error == message
    assert said(request_) == [("error", message)]


def test_other_exceptions_are_not_swallowed(request_):
    with pytest.raises(KeyError), reported(request_):
        raise KeyError("bug")


def test_a_broken_model_rule_goes_next_to_its_field_renamed_or_above_the_form():
    form = NameForm({"name": "x", "email": "x@example.com"})
    assert form.is_valid()

    with onto(form, rename={"user": "email"}) as outcome:
        raise ValidationError({"name": ["Too short."], "user": ["Unknown."], "zone": ["No."]})

    assert not outcome.ok
    assert form.errors == {"name": ["Too short."], "email": ["Unknown."], "__all__": ["No."]}


def test_a_domain_refusal_goes_above_the_form_or_on_the_field_named():
    above, on_name = NameForm({"name": "x", "email": "x@example.com"}), NameForm({})
    for form, field in [(above, None), (on_name, "name")]:
        form.is_valid()
        with onto(form, refusal_field=field):
            raise Conflict("Taken.", code="x")

    assert above.non_field_errors() == ["Taken."]
    assert "Taken." in on_name.errors["name"]


def test_onto_leaves_a_form_alone_when_the_call_succeeds():
    form = NameForm({"name": "x", "email": "x@example.com"})
    form.is_valid()

    with onto(form) as outcome:
        pass

    assert outcome.ok and not form.errors
