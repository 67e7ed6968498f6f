"""The platform staff's desk, per platform: today's board (check in, check out,
no-shows, late arrivals), machines and their booking policy, opening hours and
closures, qualifications granted. Another platform's pages answer 404; the
services check the role again."""

from datetime import date, datetime, time, timedelta
from html import unescape

import pytest
import time_machine

from booking.models import Booking
from equipment.models import Closure, Machine, OpeningHours, UserQualification
from tests import factories
from tests.booking.conftest import at, next_weekday

# A Tuesday in the future, the lab open 08:00–18:00: the board is "today" then.
DAY = next_weekday(1)


def desk(lab, page: str, side: str = "a") -> str:
    return f"/desk/platforms/{getattr(lab, side).platform.pk}/{page}/"


@pytest.fixture
def morning(lab, book):
    """Three bookings on DAY: 09:00 (one hour), 11:00 and 14:00."""
    return [book(DAY, 9, title="Early"), book(DAY, 11, title="Mid"), book(DAY, 14, title="Late")]


def travel(moment: datetime):
    return time_machine.travel(moment, tick=False)


# --- Today's board ----------------------------------------------------------------------


def test_the_board_lists_todays_bookings_and_highlights_late_arrivals(client, lab, morning):
    client.force_login(lab.a.operator)

    with travel(at(DAY, 9, 10)):
        response = client.get(desk(lab, "today"))

    html = response.content.decode()
    assert response.status_code == 200
    assert [b.title for b in response.context["bookings"]] == ["Early", "Mid", "Late"]
    assert f'<tr class="late" id="booking-{morning[0].pk}">' in html
    assert f'<tr id="booking-{morning[1].pk}">' in html
    assert f"/bookings/{morning[0].pk}/check-in/" in html
    assert f"/bookings/{morning[1].pk}/check-in/" not in html  # opens 15 min before


def test_an_operator_checks_a_member_in_and_out_from_the_board(client, lab, morning):
    client.force_login(lab.a.operator)
    early = morning[0]

    with travel(at(DAY, 8, 50)):
        response = client.post(desk(lab, f"bookings/{early.pk}/check-in"), follow=True)
    assert "checked in" in unescape(response.content.decode())
    with travel(at(DAY, 9, 40)):
        board = client.get(desk(lab, "today")).content.decode()
        assert f"/bookings/{early.pk}/check-out/" in board
        client.post(desk(lab, f"bookings/{early.pk}/check-out"))

    early.refresh_from_db()
    assert early.status == Booking.Status.COMPLETED
    assert early.checked_in_at == at(DAY, 8, 50) and early.checked_out_at == at(DAY, 9, 40)


def test_a_no_show_is_offered_after_the_grace_period_only(client, lab, morning):
    client.force_login(lab.a.operator)
    early = morning[0]
    grace = lab.a.platform.no_show_grace_minutes

    with travel(at(DAY, 9) + timedelta(minutes=grace - 1)):
        assert (
            f"/bookings/{early.pk}/no-show/" not in client.get(desk(lab, "today")).content.decode()
        )
        response = client.post(desk(lab, f"bookings/{early.pk}/no-show"), follow=True)
        assert "grace period" in unescape(response.content.decode())
    with travel(at(DAY, 9) + timedelta(minutes=grace)):
        assert f"/bookings/{early.pk}/no-show/" in client.get(desk(lab, "today")).content.decode()
        client.post(desk(lab, f"bookings/{early.pk}/no-show"))

    early.refresh_from_db()
    assert early.status == Booking.Status.NO_SHOW


def test_an_sme_member_cannot_mark_a_no_show_nor_open_the_board(client, lab, morning):
    client.force_login(lab.a.org_member)

    with travel(at(DAY, 11)):
        assert client.get(desk(lab, "today")).status_code == 404
        assert client.post(desk(lab, f"bookings/{morning[0].pk}/no-show")).status_code == 404
    morning[0].refresh_from_db()
    assert morning[0].status == Booking.Status.CONFIRMED


def test_another_platforms_staff_get_404_on_the_board_and_its_buttons(client, lab, morning):
    client.force_login(lab.b.manager)

    with travel(at(DAY, 9)):
        assert client.get(desk(lab, "today")).status_code == 404
        assert client.post(desk(lab, f"bookings/{morning[0].pk}/check-in")).status_code == 404
        # Its own board, with another platform's booking in the URL: 404 too.
        assert (
            client.post(desk(lab, f"bookings/{morning[0].pk}/check-in", side="b")).status_code
            == 404
        )
    morning[0].refresh_from_db()
    assert morning[0].checked_in_at is None


def test_the_desk_link_opens_the_first_platform_staffed(client, lab):
    client.force_login(lab.a.operator)

    response = client.get("/desk/today/")

    assert response.status_code == 302 and response["Location"] == desk(lab, "today")
    client.force_login(lab.a.org_member)
    assert client.get("/desk/today/").status_code == 404


@pytest.mark.parametrize("n", [1, 12])
def test_the_board_costs_the_same_queries_for_1_or_12_bookings(
    client, lab, book, n, django_assert_max_num_queries
):
    for i in range(n):
        machine = factories.MachineFactory(platform=lab.a.platform, name=f"Printer {i}")
        book(DAY, 9, machine=machine)
    client.force_login(lab.a.operator)

    with travel(at(DAY, 9, 5)), django_assert_max_num_queries(10):
        response = client.get(desk(lab, "today"))
    assert len(response.context["bookings"]) == n


# --- Machines ------------------------------------------------------------------------------


def test_a_manager_sees_every_machine_retired_ones_too(client, lab):
    client.force_login(lab.a.manager)

    html = client.get(desk(lab, "machines")).content.decode()

    assert lab.a.machine.name in html and lab.a.retired_machine.name in html
    assert lab.b.machine.name not in html


def test_operators_and_other_platforms_cannot_edit_machines(client, lab):
    for who in [lab.a.operator, lab.b.manager, lab.a.org_admin]:
        client.force_login(who)
        assert client.get(desk(lab, "machines")).status_code == 404
        assert client.get(desk(lab, f"machines/{lab.a.machine.pk}")).status_code == 404
    client.force_login(lab.b.manager)
    assert client.get(desk(lab, f"machines/{lab.a.machine.pk}", side="b")).status_code == 404


def policy(machine: Machine, **changes) -> dict:
    data = {
        "name": machine.name,
        "description": machine.description,
        "min_duration_minutes": machine.min_duration_minutes,
        "max_duration_minutes": machine.max_duration_minutes,
        "granularity_minutes": machine.granularity_minutes,
        "buffer_after_minutes": machine.buffer_after_minutes,
        "min_notice_minutes": machine.min_notice_minutes,
        "booking_horizon_days": machine.booking_horizon_days,
        "approval_required": "on",
    }
    data.update(changes)
    return data


def test_a_manager_changes_the_booking_policy(client, lab):
    client.force_login(lab.a.manager)

    response = client.post(
        desk(lab, f"machines/{lab.a.machine.pk}"), policy(lab.a.machine, buffer_after_minutes=30)
    )

    assert response.status_code == 302
    lab.a.machine.refresh_from_db()
    assert lab.a.machine.buffer_after_minutes == 30 and lab.a.machine.approval_required


def test_a_broken_policy_rule_is_shown_next_to_its_field_and_keeps_the_input(client, lab):
    client.force_login(lab.a.manager)

    response = client.post(
        desk(lab, f"machines/{lab.a.machine.pk}"),
        policy(lab.a.machine, min_duration_minutes=120, max_duration_minutes=60, name="Renamed"),
    )

    assert response.status_code == 400
    assert response.context["form"].errors["max_duration_minutes"]
    assert 'value="Renamed"' in response.content.decode()
    lab.a.machine.refresh_from_db()
    assert lab.a.machine.max_duration_minutes != 60 and lab.a.machine.name != "Renamed"


def test_retiring_and_bringing_back_a_machine(client, lab):
    client.force_login(lab.a.manager)
    url = desk(lab, f"machines/{lab.a.machine.pk}/retire")

    client.post(url, {"active": "0"})
    lab.a.machine.refresh_from_db()
    assert not lab.a.machine.is_active
    client.post(url, {"active": "1"})
    lab.a.machine.refresh_from_db()
    assert lab.a.machine.is_active


@pytest.mark.parametrize("n", [1, 12])
def test_the_machines_page_costs_the_same_queries_for_1_or_12(
    client, lab, n, django_assert_max_num_queries
):
    for i in range(n):
        factories.MachineFactory(platform=lab.a.platform, name=f"Extra {i}")
    client.force_login(lab.a.manager)

    with django_assert_max_num_queries(9):
        response = client.get(desk(lab, "machines"))
    assert len(response.context["machines"]) == n + 2


# --- Opening hours and closures ---------------------------------------------------------------


def test_a_manager_adds_and_removes_opening_hours(client, lab):
    client.force_login(lab.a.manager)
    before = OpeningHours.objects.filter(platform=lab.a.platform).count()

    # Monday already opens 08:00–18:00: 18:30–21:00 does not overlap.
    response = client.post(
        desk(lab, "hours"),
        {
            "form": "hours",
            "hours-weekday": 0,
            "hours-opens_at": "18:30",
            "hours-closes_at": "21:00",
        },
    )
    assert response.status_code == 302
    added = OpeningHours.objects.get(platform=lab.a.platform, opens_at=time(18, 30))
    client.post(desk(lab, f"hours/{added.pk}/delete"))

    assert OpeningHours.objects.filter(platform=lab.a.platform).count() == before


def test_overlapping_opening_hours_are_refused_next_to_the_field(client, lab):
    client.force_login(lab.a.manager)

    response = client.post(
        desk(lab, "hours"),
        {
            "form": "hours",
            "hours-weekday": 0,
            "hours-opens_at": "12:00",
            "hours-closes_at": "20:00",
        },
    )

    assert response.status_code == 400
    assert "Overlaps" in response.context["hours_form"].errors["opens_at"][0]
    assert 'value="20:00"' in response.content.decode()


def test_a_closure_of_one_day_and_one_ending_before_it_starts(client, lab):
    client.force_login(lab.a.manager)
    day = (DAY + timedelta(days=7)).date()

    client.post(
        desk(lab, "hours"),
        {"form": "closure", "closure-start_date": day.isoformat(), "closure-reason": "Fête"},
    )
    closure = Closure.objects.get(platform=lab.a.platform, reason="Fête")
    assert closure.start_date == closure.end_date == day

    response = client.post(
        desk(lab, "hours"),
        {
            "form": "closure",
            "closure-start_date": day.isoformat(),
            "closure-end_date": (day - timedelta(days=1)).isoformat(),
            "closure-reason": "Backwards",
        },
    )
    assert response.status_code == 400
    assert response.context["closure_form"].errors["end_date"]
    assert 'value="Backwards"' in response.content.decode()


def test_another_platforms_hours_cannot_be_removed(client, lab):
    client.force_login(lab.b.manager)
    span = OpeningHours.objects.filter(platform=lab.a.platform).first()

    assert client.post(desk(lab, f"hours/{span.pk}/delete", side="b")).status_code == 404
    assert client.post(desk(lab, f"closures/{lab.a.closure.pk}/delete")).status_code == 404
    assert OpeningHours.objects.filter(pk=span.pk).exists()


def test_operators_do_not_edit_hours(client, lab):
    client.force_login(lab.a.operator)

    assert client.get(desk(lab, "hours")).status_code == 404


# --- Qualifications granted ---------------------------------------------------------------------


def test_an_operator_grants_a_qualification_by_email_with_an_expiry(client, lab):
    client.force_login(lab.a.operator)

    response = client.post(
        desk(lab, "qualifications"),
        {
            "qualification": lab.a.qualification.pk,
            "email": lab.a.org_admin.email.upper(),
            "granted_on": "2026-01-10",
            "expires_on": "2027-01-10",
        },
    )

    assert response.status_code == 302
    grant = UserQualification.objects.get(user=lab.a.org_admin)
    assert (grant.granted_on, grant.expires_on) == (date(2026, 1, 10), date(2027, 1, 10))


def test_a_grant_to_someone_who_cannot_book_here_is_refused_next_to_the_email(client, lab):
    client.force_login(lab.a.manager)

    for email in [lab.b.org_member.email, "nobody@example.com"]:
        response = client.post(
            desk(lab, "qualifications"),
            {"qualification": lab.a.qualification.pk, "email": email, "granted_on": "2026-01-10"},
        )
        assert response.status_code == 400
        assert response.context["form"].errors["email"]
        assert f'value="{email}"' in response.content.decode()


def test_expiry_is_changed_and_a_grant_revoked(client, lab):
    client.force_login(lab.a.manager)
    grant = lab.a.grant

    client.post(desk(lab, f"grants/{grant.pk}/expiry"), {"expires_on": "2030-06-30"})
    grant.refresh_from_db()
    assert grant.expires_on == date(2030, 6, 30)
    client.post(desk(lab, f"grants/{grant.pk}/revoke"))
    assert not UserQualification.objects.filter(pk=grant.pk).exists()


def test_another_platforms_grants_are_not_found(client, lab):
    client.force_login(lab.b.manager)

    html = client.get(desk(lab, "qualifications", side="b")).content.decode()
    assert lab.a.org_member.email not in html
    assert client.get(desk(lab, "qualifications")).status_code == 404
    assert client.post(desk(lab, f"grants/{lab.a.grant.pk}/revoke", side="b")).status_code == 404
    assert UserQualification.objects.filter(pk=lab.a.grant.pk).exists()


@pytest.mark.parametrize("n", [1, 12])
def test_the_qualifications_page_costs_the_same_queries_for_1_or_12_grants(
    client, lab, n, django_assert_max_num_queries
):
    for i in range(n - 1):
        user = factories.UserFactory(email=f"trainee{i}@sme.example")
        factories.MembershipFactory(user=user, organization=lab.a.org)
        factories.UserQualificationFactory(
            user=user, qualification=lab.a.qualification, granted_by=lab.a.manager
        )
    client.force_login(lab.a.manager)

    with django_assert_max_num_queries(11):
        response = client.get(desk(lab, "qualifications"))
    assert len(response.context["grants"]) == n


def test_the_desk_tabs_follow_the_role(client, lab):
    client.force_login(lab.a.operator)
    operator = client.get(desk(lab, "today")).content.decode()
    client.force_login(lab.a.manager)
    manager = client.get(desk(lab, "today")).content.decode()

    assert desk(lab, "machines") not in operator and desk(lab, "qualifications") in operator
    assert desk(lab, "machines") in manager and desk(lab, "hours") in manager
