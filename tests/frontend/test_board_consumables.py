"""Consumables on today's board: at check-out (or later that day) an operator or
manager records what was used during a booking, through billing/services.py as
the API's /consumable-uses/ does; the row shows what was recorded, and a wrong
entry can be removed. Refusals are shown next to their field with what was
typed; another platform's booking or entry answers 404; the board's queries do
not grow with its rows."""

from decimal import Decimal
from html import unescape

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Consumable, ConsumableUse
from booking import services
from tests import factories
from tests.booking.conftest import at, next_weekday

DAY = next_weekday(1)  # a Tuesday ahead; the lab is open 08:00–18:00


def board(lab, side="a") -> str:
    return f"/desk/platforms/{getattr(lab, side).platform.pk}/today/"


def record_url(lab, booking, side="a") -> str:
    return f"/desk/platforms/{getattr(lab, side).platform.pk}/bookings/{booking.pk}/consumables/"


def remove_url(lab, use, side="a") -> str:
    return f"/desk/platforms/{getattr(lab, side).platform.pk}/consumable-uses/{use.pk}/remove/"


def used(booking, consumable, quantity) -> dict:
    """What the row's form posts (its fields are prefixed with the booking)."""
    return {
        f"use-{booking.pk}-consumable": str(consumable.pk),
        f"use-{booking.pk}-quantity": str(quantity),
    }


def travel(hour, minute=0):
    return time_machine.travel(at(DAY, hour, minute), tick=False)


@pytest.fixture
def filament(lab):
    return Consumable.objects.create(
        platform=lab.a.platform, name="PLA filament", unit="g", unit_price=Decimal("0.045")
    )


@pytest.fixture
def session(lab, book):
    """Hugo's 09:00–10:00 printing session on DAY, checked in at 08:55."""
    booking = book(DAY, 9, title="Housing")
    with travel(8, 55):
        services.check_in(booking=booking, by=lab.a.operator)
    booking.refresh_from_db()
    return booking


def test_checking_out_opens_the_rows_consumables_and_an_operator_records_them(
    client, lab, session, filament
):
    client.force_login(lab.a.operator)

    with travel(10):
        out = client.post(f"/desk/platforms/{lab.a.platform.pk}/bookings/{session.pk}/check-out/")
        assert out["Location"] == f"{board(lab)}?record={session.pk}#booking-{session.pk}"
        html = client.get(out["Location"]).content.decode()
        form = html.split(f'action="{record_url(lab, session)}"')[1].split("</form>")[0]
        assert f'id="use-{session.pk}-consumable"' in form and "autofocus" in form  # ready
        response = client.post(record_url(lab, session), used(session, filament, "250"))

    assert response.status_code == 302
    assert response["Location"] == f"{board(lab)}#booking-{session.pk}"
    use = ConsumableUse.objects.get(booking=session)
    assert (use.consumable, use.quantity, use.recorded_by) == (
        filament,
        Decimal("250"),
        lab.a.operator,
    )
    with travel(10, 5):
        page = client.get(board(lab))
    row = unescape(page.content.decode()).split(f'id="booking-{session.pk}"')[1].split("</tr>")[0]
    assert "PLA filament, 250 g" in row
    assert remove_url(lab, use) in row
    messages = [str(m) for m in page.context["messages"]]
    assert any("PLA filament, 250 g" in m for m in messages)


def test_a_manager_records_while_the_person_is_still_in_the_lab(client, lab, session, filament):
    client.force_login(lab.a.manager)

    with travel(9, 30):
        html = client.get(board(lab)).content.decode()
        # One form at a time: the row offers a link that opens its own.
        assert f'action="{record_url(lab, session)}"' not in html
        link = f'href="{board(lab)}?record={session.pk}#booking-{session.pk}"'
        assert link in html
        opened = client.get(f"{board(lab)}?record={session.pk}").content.decode()
        assert f'action="{record_url(lab, session)}"' in opened
        client.post(record_url(lab, session), used(session, filament, "12.5"))

    assert ConsumableUse.objects.get(booking=session).quantity == Decimal("12.5")


@pytest.mark.parametrize("quantity", ["-5", "0"])
def test_a_quantity_that_is_not_positive_is_refused_next_to_the_field(
    client, lab, session, filament, quantity
):
    client.force_login(lab.a.operator)

    with travel(10), CaptureQueriesContext(connection) as queries:
        response = client.post(record_url(lab, session), used(session, filament, quantity))

    assert response.status_code == 400
    html = response.content.decode()
    field = html.split(f'id="use-{session.pk}-quantity"')[1].split("</div>")[0]
    assert f'value="{quantity}"' in field and 'aria-invalid="true"' in field  # kept, marked
    assert "Give a positive quantity." in field
    assert f'<option value="{filament.pk}" selected>' in html
    assert not ConsumableUse.objects.exists()
    # The consumables on sale are read once, for the form and the board it is shown on.
    on_sale = 'FROM "billing_consumable" WHERE ("billing_consumable"."is_active"'
    assert sum(on_sale in q["sql"] for q in queries.captured_queries) == 1


def test_what_is_not_a_number_nor_on_sale_here_is_refused_next_to_its_field(
    client, lab, session, filament
):
    theirs = Consumable.objects.create(
        platform=lab.b.platform, name="Resin", unit="ml", unit_price=Decimal("0.2")
    )
    client.force_login(lab.a.operator)

    with travel(10):
        response = client.post(
            record_url(lab, session),
            {f"use-{session.pk}-consumable": str(theirs.pk), f"use-{session.pk}-quantity": "lots"},
        )

    assert response.status_code == 400
    form = next(b for b in response.context["bookings"] if b.pk == session.pk).use_form
    assert set(form.errors) == {"consumable", "quantity"}
    assert 'value="lots"' in response.content.decode()
    assert not ConsumableUse.objects.exists()


def test_a_booking_not_checked_in_takes_no_consumables(client, lab, book, filament):
    waiting = book(DAY, 11)
    client.force_login(lab.a.operator)

    with travel(10):
        board_html = client.get(f"{board(lab)}?record={waiting.pk}").content.decode()
        response = client.post(record_url(lab, waiting), used(waiting, filament, "10"))

    assert f'action="{record_url(lab, waiting)}"' not in board_html  # not offered
    assert response.status_code == 400
    assert "Record consumables on a booking that was checked in." in unescape(
        response.content.decode()
    )
    assert not ConsumableUse.objects.exists()


def test_a_retired_consumable_is_not_offered(client, lab, session, filament):
    Consumable.objects.create(
        platform=lab.a.platform,
        name="Old resin",
        unit="ml",
        unit_price=Decimal("0.1"),
        is_active=False,
    )
    client.force_login(lab.a.operator)

    with travel(10):
        response = client.get(board(lab))

    assert [c.name for c in response.context["consumables"]] == ["PLA filament"]


def test_a_wrong_entry_is_removed(client, lab, session, filament):
    client.force_login(lab.a.operator)
    with travel(10):
        client.post(record_url(lab, session), used(session, filament, "250"))
        use = ConsumableUse.objects.get()

        response = client.post(remove_url(lab, use))
        page = client.get(response["Location"])

    assert response.status_code == 302
    assert response["Location"] == f"{board(lab)}#booking-{session.pk}"
    assert not ConsumableUse.objects.exists()
    assert [str(m) for m in page.context["messages"]][-1] == "Removed: PLA filament, 250 g."


def test_other_platforms_sme_people_and_accountants_get_404(client, lab, session, filament):
    with travel(10):
        client.force_login(lab.a.operator)
        client.post(record_url(lab, session), used(session, filament, "250"))
        use = ConsumableUse.objects.get()
        for who in [lab.b.manager, lab.b.operator, lab.a.org_admin, lab.a.accountant]:
            client.force_login(who)
            assert (
                client.post(record_url(lab, session), used(session, filament, "1")).status_code
                == 404
            )
            assert client.post(remove_url(lab, use)).status_code == 404
        # Their own board's URL with platform A's booking or entry in it: 404 too.
        client.force_login(lab.b.manager)
        assert (
            client.post(
                record_url(lab, session, side="b"), used(session, filament, "1")
            ).status_code
            == 404
        )
        assert client.post(remove_url(lab, use, side="b")).status_code == 404

    assert list(ConsumableUse.objects.values_list("quantity", flat=True)) == [Decimal("250")]


def test_the_forms_carry_csrf_protection(lab, session, filament):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(lab.a.operator)

    with travel(10):
        assert (
            strict.post(record_url(lab, session), used(session, filament, "1")).status_code == 403
        )
        html = strict.get(f"{board(lab)}?record={session.pk}").content.decode()

    form = html.split(f'action="{record_url(lab, session)}"')[1].split("</form>")[0]
    assert 'name="csrfmiddlewaretoken"' in form


@pytest.mark.parametrize("n", [1, 12])
def test_the_board_with_consumables_costs_the_same_queries_for_1_or_12_sessions(
    client, lab, book, filament, n, django_assert_max_num_queries
):
    for i in range(n):
        machine = factories.MachineFactory(platform=lab.a.platform, name=f"Printer {i}")
        booking = book(DAY, 9, machine=machine)
        with travel(8, 55):
            services.check_in(booking=booking, by=lab.a.operator)
        ConsumableUse.objects.create(
            booking=booking,
            consumable=filament,
            quantity=Decimal(10 + i),
            recorded_by=lab.a.operator,
        )
    client.force_login(lab.a.operator)

    with travel(9, 30), django_assert_max_num_queries(12):
        response = client.get(board(lab))

    rows = response.context["bookings"]
    assert len(rows) == n and all(len(b.uses) == 1 for b in rows)
    assert response.content.decode().count("?record=") == n  # a link each, no form


def test_a_refusal_shown_at_the_forms_url_keeps_the_desk_tabs_and_platform_switch(
    client, lab, session, filament
):
    factories.PlatformStaffFactory(user=lab.a.manager, platform=lab.b.platform, role="manager")
    client.force_login(lab.a.manager)

    with travel(10):
        response = client.post(record_url(lab, session), used(session, filament, "-1"))

    assert response.status_code == 400
    html = response.content.decode()
    assert f'href="{board(lab)}" aria-current="page">Today</a>' in html
    assert f'href="{board(lab, side="b")}"' in html  # the other platform's board
    nav = html[html.index('<nav class="nav"') : html.index("</nav>")]
    assert 'href="/desk/today/" aria-current="page"' in nav
