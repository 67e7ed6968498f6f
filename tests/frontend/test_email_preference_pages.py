"""My email preferences: a switch per kind of booking email, saved through
booking/preferences.py; the emails the platform decides shown locked on."""

from booking.models import EmailPreferences


def test_every_kind_is_on_until_turned_off_and_the_mandatory_ones_are_locked(member_client, lab):
    response = member_client.get("/email-preferences/")

    html = response.content.decode()
    for kind in EmailPreferences.KINDS:
        assert f'id="id_{kind}" checked>' in html
    assert html.count("checked disabled") == 3
    assert "No-shows" in html and "Late cancellations" in html and "Approval requests" in html
    assert not EmailPreferences.objects.exists()  # reading writes nothing


def test_turning_emails_off_and_on_again(member_client, lab):
    wanted = {
        k: "on" for k in EmailPreferences.KINDS if k not in ("booking_reminder", "booking_moved")
    }

    response = member_client.post("/email-preferences/", wanted)

    assert response.status_code == 302
    stored = EmailPreferences.objects.get(user=lab.a.org_member)
    assert not stored.booking_reminder and not stored.booking_moved and stored.booking_confirmed
    html = member_client.get("/email-preferences/").content.decode()
    assert 'id="id_booking_reminder">' in html and 'id="id_booking_confirmed" checked>' in html

    member_client.post("/email-preferences/", dict.fromkeys(EmailPreferences.KINDS, "on"))
    stored.refresh_from_db()
    assert stored.booking_reminder


def test_a_mandatory_kind_posted_off_changes_nothing_and_others_are_untouched(client, lab):
    client.force_login(lab.a.org_admin)
    response = client.post(
        "/email-preferences/", {"booking_no_show": "", "booking_confirmed": "on"}
    )

    assert response.status_code == 302  # no error: the mandatory kind is simply not a choice
    stored = EmailPreferences.objects.get(user=lab.a.org_admin)
    assert {kind: getattr(stored, kind) for kind in EmailPreferences.KINDS} == {
        kind: kind == "booking_confirmed" for kind in EmailPreferences.KINDS
    }
    assert not hasattr(stored, "booking_no_show")  # never stored: always sent
    html = client.get("/email-preferences/").content.decode()
    assert html.count("checked disabled") == 3  # still shown on, locked
    assert not EmailPreferences.objects.filter(user=lab.a.org_member).exists()


def test_the_page_needs_a_login(client, db):
    assert client.get("/email-preferences/").status_code == 302


def test_the_page_costs_a_few_queries(member_client, lab, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        assert member_client.get("/email-preferences/").status_code == 200
