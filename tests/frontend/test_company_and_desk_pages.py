"""The SME admin's company pages and the platform staff's desk: members and
roles, invitations, the company's bookings; approvals and maintenance windows.
Writes go through core/services.py and booking/equipment services."""

from datetime import timedelta
from html import unescape

import pytest
from django.contrib.messages import get_messages
from django.core import mail

from booking.models import Booking
from core.models import Invitation, Membership
from equipment.models import MaintenanceWindow
from tests import factories
from tests.booking.conftest import PARIS, at, next_weekday


@pytest.fixture
def admin_client(client, lab):
    client.force_login(lab.a.org_admin)
    return client


def test_an_admin_sees_members_with_their_roles_and_the_invite_form(admin_client, lab):
    response = admin_client.get(f"/organizations/{lab.a.org.pk}/")

    html = response.content.decode()
    assert lab.a.org_member.email in html and lab.a.org_accountant.email in html
    assert 'name="email"' in html and "Send the invitation" in html


def test_a_member_sees_colleagues_but_no_admin_forms(client, lab):
    client.force_login(lab.a.org_member)

    html = client.get(f"/organizations/{lab.a.org.pk}/").content.decode()

    assert lab.a.org_admin.email in html
    assert "Send the invitation" not in html


def test_another_smes_company_pages_are_not_found(admin_client, lab):
    member_b = Membership.objects.get(organization=lab.b.org, user=lab.b.org_member)
    for url in [f"/organizations/{lab.b.org.pk}/", f"/organizations/{lab.b.org.pk}/bookings/"]:
        assert admin_client.get(url).status_code == 404
    response = admin_client.post(
        f"/organizations/{lab.b.org.pk}/members/{member_b.pk}/role/", {"role": "admin"}
    )
    assert response.status_code == 404
    member_b.refresh_from_db()
    assert member_b.role == Membership.Role.MEMBER


def test_inviting_sends_an_email_and_lists_the_invitation(
    admin_client, lab, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/organizations/{lab.a.org.pk}/invite/",
            {"email": "New.Person@sme.example", "role": "member"},
        )

    assert response.status_code == 302
    assert mail.outbox[0].to == ["new.person@sme.example"]
    page = admin_client.get(f"/organizations/{lab.a.org.pk}/").content.decode()
    assert "new.person@sme.example" in page


def test_a_bad_invitation_is_refused_next_to_the_field_and_keeps_the_input(admin_client, lab):
    bad = admin_client.post(
        f"/organizations/{lab.a.org.pk}/invite/", {"email": "not-an-email", "role": "member"}
    )
    already = admin_client.post(
        f"/organizations/{lab.a.org.pk}/invite/",
        {"email": lab.a.org_member.email, "role": "member"},
    )

    assert bad.status_code == 400
    assert bad.context["invite_form"].errors["email"]
    assert 'value="not-an-email"' in bad.content.decode()
    assert "already a member" in str(already.context["invite_form"].errors["email"])
    assert not Invitation.objects.exists()


def test_an_admin_changes_a_role_revokes_an_invitation_and_removes_a_member(admin_client, lab):
    membership = Membership.objects.get(organization=lab.a.org, user=lab.a.org_member)
    admin_client.post(
        f"/organizations/{lab.a.org.pk}/invite/", {"email": "x@sme.example", "role": "member"}
    )
    invitation = Invitation.objects.get()

    admin_client.post(
        f"/organizations/{lab.a.org.pk}/members/{membership.pk}/role/", {"role": "accountant"}
    )
    admin_client.post(f"/organizations/{lab.a.org.pk}/invitations/{invitation.pk}/revoke/")
    admin_client.post(f"/organizations/{lab.a.org.pk}/members/{membership.pk}/remove/")

    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_the_last_admin_cannot_step_down_and_is_told_why(admin_client, lab):
    own = Membership.objects.get(organization=lab.a.org, user=lab.a.org_admin)

    response = admin_client.post(
        f"/organizations/{lab.a.org.pk}/members/{own.pk}/role/", {"role": "member"}, follow=True
    )

    assert "keeps at least one administrator" in response.content.decode()
    own.refresh_from_db()
    assert own.role == Membership.Role.ADMIN


def test_a_member_cannot_change_roles(client, lab):
    client.force_login(lab.a.org_member)
    other = Membership.objects.get(organization=lab.a.org, user=lab.a.org_accountant)

    response = client.post(
        f"/organizations/{lab.a.org.pk}/members/{other.pk}/role/", {"role": "admin"}, follow=True
    )

    assert "Only the organization's administrators" in unescape(response.content.decode())
    other.refresh_from_db()
    assert other.role == Membership.Role.ACCOUNTANT


def test_the_company_page_lists_everyones_bookings(admin_client, lab, book):
    day = next_weekday(1)
    mine = book(day, 9, by=lab.a.org_admin)
    theirs = book(day, 11)

    listed = admin_client.get(f"/organizations/{lab.a.org.pk}/bookings/").context["page"]

    assert list(listed) == [mine, theirs]


@pytest.mark.parametrize("n", [1, 12])
def test_the_company_bookings_cost_the_same_queries_for_1_or_12(
    admin_client, lab, book, n, django_assert_max_num_queries
):
    day = next_weekday(1)
    for i in range(n):
        book(day + timedelta(days=i), 9)

    with django_assert_max_num_queries(9):
        response = admin_client.get(f"/organizations/{lab.a.org.pk}/bookings/")

    assert len(response.context["page"].object_list) == n


@pytest.mark.parametrize("n", [1, 12])
def test_the_members_page_costs_the_same_queries_for_1_or_12_members(
    admin_client, lab, n, django_assert_max_num_queries
):
    for _ in range(n):
        factories.MembershipFactory(organization=lab.a.org)

    with django_assert_max_num_queries(12):
        response = admin_client.get(f"/organizations/{lab.a.org.pk}/")

    assert len(response.context["members"]) == n + 3


# --- The desk -------------------------------------------------------------------------


@pytest.fixture
def pending(lab, book):
    lab.a.machine.approval_required = True
    lab.a.machine.save()
    return book(next_weekday(1), 9, title="Bracket batch")


def test_a_manager_approves_from_the_queue(client, lab, pending):
    client.force_login(lab.a.manager)

    queue = client.get("/desk/approvals/").content.decode()
    assert "Bracket batch" in queue
    client.post(f"/desk/bookings/{pending.pk}/approve/")

    pending.refresh_from_db()
    assert pending.status == Booking.Status.CONFIRMED
    assert "Nothing to approve." in client.get("/desk/approvals/").content.decode()


def test_rejecting_needs_a_reason(client, lab, pending):
    client.force_login(lab.a.manager)

    client.post(f"/desk/bookings/{pending.pk}/reject/", {"reason": ""})
    pending.refresh_from_db()
    assert pending.status == Booking.Status.PENDING

    client.post(f"/desk/bookings/{pending.pk}/reject/", {"reason": "Mill under repair"})
    pending.refresh_from_db()
    assert (pending.status, pending.decision_note) == (Booking.Status.REJECTED, "Mill under repair")


def test_another_platforms_manager_sees_no_queue_and_cannot_approve(client, lab, pending):
    client.force_login(lab.b.manager)

    assert "Bracket batch" not in client.get("/desk/approvals/").content.decode()
    assert client.post(f"/desk/bookings/{pending.pk}/approve/").status_code == 404


@pytest.mark.parametrize(
    ("who", "approvals", "maintenance"),
    [
        ("manager", 200, 200),
        ("operator", 404, 200),  # operators keep machines running, managers decide
        ("org_member", 404, 404),
        ("org_admin", 404, 404),
    ],
)
def test_a_desk_page_the_role_lacks_answers_404(client, lab, who, approvals, maintenance):
    client.force_login(getattr(lab.a, who))

    assert client.get("/desk/approvals/").status_code == approvals
    assert client.get("/desk/maintenance/").status_code == maintenance


def test_an_operator_cannot_approve(client, lab, pending):
    client.force_login(lab.a.operator)

    response = client.post(f"/desk/bookings/{pending.pk}/approve/")

    said = [str(message) for message in get_messages(response.wsgi_request)]
    assert any("Only the platform's managers" in message for message in said)
    pending.refresh_from_db()
    assert pending.status == Booking.Status.PENDING


def test_an_operator_adds_a_maintenance_window_in_local_time(client, lab):
    client.force_login(lab.a.operator)
    day = next_weekday(3)

    response = client.post(
        "/desk/maintenance/",
        {
            "machine": lab.a.machine.pk,
            "start_date": day.date().isoformat(),
            "start_time": "08:00",
            "end_time": "12:00",
            "reason": "Nozzle change",
        },
    )

    assert response.status_code == 302
    window = MaintenanceWindow.objects.get(reason="Nozzle change")
    assert (window.start, window.end) == (at(day, 8), at(day, 12))
    assert window.start.astimezone(PARIS).hour == 8


def test_a_maintenance_window_ending_before_it_starts_is_refused_next_to_the_field(client, lab):
    client.force_login(lab.a.operator)
    day = next_weekday(3)

    response = client.post(
        "/desk/maintenance/",
        {
            "machine": lab.a.machine.pk,
            "start_date": day.date().isoformat(),
            "start_time": "12:00",
            "end_time": "08:00",
            "reason": "Nozzle change",
        },
    )

    assert response.status_code == 400
    assert response.context["form"].errors["end_time"]
    assert 'value="Nozzle change"' in response.content.decode()


def test_another_platforms_machine_cannot_be_chosen_for_maintenance(client, lab):
    client.force_login(lab.b.operator)
    day = next_weekday(3)

    response = client.post(
        "/desk/maintenance/",
        {
            "machine": lab.a.machine.pk,
            "start_date": day.date().isoformat(),
            "start_time": "08:00",
            "end_time": "12:00",
        },
    )

    assert response.status_code == 400
    assert response.context["form"].errors["machine"]


# --- The shell -------------------------------------------------------------------------


def test_french_when_the_browser_asks_for_it_english_otherwise(client, db):
    french = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9").content.decode()
    other = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="de-DE").content.decode()

    assert '<html lang="fr">' in french
    assert '<html lang="en">' in other


def test_the_language_switch_remembers_the_choice(client, db):
    client.post("/i18n/setlang/", {"language": "fr", "next": "/"})

    assert '<html lang="fr">' in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.parametrize(
    ("who", "shown", "hidden"),
    [
        ("org_member", ["/find/", "/bookings/"], ["/organizations/", "/desk/", "/dashboard/"]),
        ("org_admin", ["/find/", "/organizations/", "/dashboard/"], ["/desk/"]),
        ("org_accountant", ["/platforms/"], ["/find/", "/desk/", "/organizations/"]),
        ("manager", ["/desk/approvals/", "/desk/today/", "/dashboard/"], ["/organizations/"]),
        ("operator", ["/desk/today/", "/dashboard/"], ["/desk/approvals/"]),
    ],
)
def test_navigation_follows_the_role(client, lab, who, shown, hidden):
    client.force_login(getattr(lab.a, who))

    html = client.get("/").content.decode()
    nav = html[html.index('<nav class="nav"') : html.index("</nav>")]

    for link in shown:
        assert f'href="{link}' in nav
    for link in hidden:
        assert f'href="{link}' not in nav


def nav_of(html: str) -> str:
    return html[html.index('<nav class="nav"') : html.index("</nav>")]


def test_the_company_pages_keep_the_navigation_with_my_company_current(admin_client, lab):
    company = f"/organizations/{lab.a.org.pk}/"
    refused = admin_client.post(f"{company}invite/", {"email": "not an address", "role": "member"})

    for html in [
        admin_client.get(company).content.decode(),
        admin_client.get(f"{company}bookings/").content.decode(),
        refused.content.decode(),  # shown at the form's own URL
    ]:
        nav = nav_of(html)
        assert f'<a href="{company}" aria-current="page">My company</a>' in nav
        assert 'href="/find/"' in nav and 'href="/dashboard/"' in nav  # the rest of it too


def test_an_admin_of_two_companies_sees_only_the_current_one_marked(admin_client, lab):
    factories.MembershipFactory(
        user=lab.a.org_admin, organization=lab.b.org, role=Membership.Role.ADMIN
    )

    nav = nav_of(admin_client.get(f"/organizations/{lab.b.org.pk}/").content.decode())

    assert f'<a href="/organizations/{lab.b.org.pk}/" aria-current="page">SME b</a>' in nav
    assert f'<a href="/organizations/{lab.a.org.pk}/">SME a</a>' in nav


def test_pages_have_landmarks_a_skip_link_and_labelled_fields(client, lab):
    client.force_login(lab.a.org_member)

    html = client.get(f"/machines/{lab.a.machine.pk}/").content.decode()

    assert 'class="skip" href="#main"' in html
    assert '<main id="main"' in html and "<header" in html and "<footer" in html
    for field in ["id_start_date", "id_start_time", "id_end_time", "id_title"]:
        assert f'for="{field}"' in html
    assert "cdn" not in html.lower()
