"""GET/PATCH /api/v1/me/email-preferences/: each kind of booking email on or off.

Every kind is on until its owner turns it off; the emails the platform decides
(approval requests, no-shows, late cancellations) are listed as `always_sent` and
cannot be turned off. A PATCH names kinds with true or false, nothing else: an
unknown kind, an always-sent one, or a value that is not a boolean answers 400 and
changes nothing. Each person sees and changes their own preferences only.

The platform's `reminder_hours` (0 to 168; 0 sends no reminders) is part of the
platform API, which its managers change.
"""

import pytest

from booking.models import EmailPreferences
from core.models import AuditEvent

URL = "/api/v1/me/email-preferences/"
KINDS = [
    "booking_confirmed",
    "booking_pending",
    "booking_approved",
    "booking_rejected",
    "booking_moved",
    "booking_cancelled",
    "booking_reminder",
]
ALWAYS_SENT = ["approval_request", "booking_no_show", "booking_late_cancellation"]


def test_everything_is_on_until_turned_off_and_reading_writes_nothing(
    api, world, django_assert_max_num_queries
):
    client = api.as_user(world.a.org_member)
    with django_assert_max_num_queries(4):  # token, its user, the preferences, token use
        response = client.get(URL)

    assert response.status_code == 200
    assert response.json() == {**dict.fromkeys(KINDS, True), "always_sent": ALWAYS_SENT}
    assert not EmailPreferences.objects.exists()


def test_a_patch_turns_kinds_off_and_on_and_keeps_the_others(
    api, world, django_assert_max_num_queries
):
    client = api.as_user(world.a.org_member)

    with django_assert_max_num_queries(14):  # first write: the row is created
        first = client.patch(URL, {"booking_reminder": False, "booking_moved": False})
    second = client.patch(URL, {"booking_moved": True})

    assert first.status_code == second.status_code == 200
    expected = {**dict.fromkeys(KINDS, True), "booking_reminder": False}
    assert {k: second.json()[k] for k in KINDS} == expected
    assert {k: client.get(URL).json()[k] for k in KINDS} == expected
    stored = EmailPreferences.objects.get(user=world.a.org_member)
    assert (stored.booking_reminder, stored.booking_moved) == (False, True)
    events = AuditEvent.objects.filter(action="emailpreferences.update").order_by("id")
    assert [e.changes for e in events] == [
        {"booking_reminder": [True, False], "booking_moved": [True, False]},
        {"booking_moved": [False, True]},
    ]
    assert {e.actor_id for e in events} == {world.a.org_member.pk}


def test_preferences_are_personal(api, world):
    api.as_user(world.a.org_member).patch(URL, {"booking_confirmed": False})

    other = api.as_user(world.a.org_admin).get(URL).json()

    assert other["booking_confirmed"] is True


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"booking_remindr": False}, "booking_remindr", "Unknown kind of email."),
        ({"approval_request": False}, "approval_request", "always sent"),
        ({"booking_no_show": True}, "booking_no_show", "always sent"),
        ({"booking_late_cancellation": False}, "booking_late_cancellation", "always sent"),
        ({"always_sent": []}, "always_sent", "read-only"),
        ({"booking_reminder": "false"}, "booking_reminder", "Must be true or false."),
        ({"booking_reminder": 0}, "booking_reminder", "Must be true or false."),
        ({"booking_reminder": None}, "booking_reminder", "null"),
        ({"booking_reminder": [False]}, "booking_reminder", "Must be true or false."),
    ],
)
def test_bad_input_answers_400_naming_the_field_and_changes_nothing(
    api, world, body, field, message
):
    response = api.as_user(world.a.org_member).patch(URL, body)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert any(message in reason for reason in error["details"]["fields"][field]), error
    assert not EmailPreferences.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="emailpreferences").exists()


def test_a_body_that_is_not_an_object_answers_400(api, world):
    response = api.as_user(world.a.org_member).patch(URL, [{"booking_reminder": False}])

    assert response.status_code == 400
    assert not EmailPreferences.objects.exists()


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_other_methods_answer_405(api, world, method):
    response = getattr(api.as_user(world.a.org_member), method)(URL, {})

    assert response.status_code == 405


def test_anonymous_callers_get_401(api, world):
    assert api.get(URL).status_code == 401
    assert api.patch(URL, {"booking_reminder": False}).status_code == 401


def test_the_openapi_schema_documents_the_endpoint(api, world):
    schema = api.as_user(world.a.org_member).get("/api/schema/?format=json").json()

    operations = schema["paths"]["/api/v1/me/email-preferences/"]
    assert set(operations) == {"get", "patch"}
    assert {"200", "400", "401"} <= set(operations["patch"]["responses"])
    component = schema["components"]["schemas"]["EmailPreferences"]["properties"]
    assert all(component[kind]["type"] == "boolean" for kind in KINDS)


# --- The platform's reminder lead time ----------------------------------------------------


def test_managers_set_their_platforms_reminder_lead_time(api, world):
    url = f"/api/v1/platforms/{world.a.platform.pk}/"

    assert api.as_user(world.a.org_member).get(url).json()["reminder_hours"] == 24
    response = api.as_user(world.a.manager).patch(url, {"reminder_hours": 2})

    assert response.status_code == 200, response.content
    assert response.json()["reminder_hours"] == 2
    world.a.platform.refresh_from_db()
    assert world.a.platform.reminder_hours == 2
    assert api.as_user(world.a.org_admin).patch(url, {"reminder_hours": 0}).status_code == 403


@pytest.mark.parametrize("value", [-1, 169, "soon", None])
def test_a_reminder_lead_time_out_of_bounds_answers_400(api, world, value):
    url = f"/api/v1/platforms/{world.a.platform.pk}/"

    response = api.as_user(world.a.manager).patch(url, {"reminder_hours": value})

    assert response.status_code == 400, response.content
    assert "reminder_hours" in response.json()["error"]["details"]["fields"]
