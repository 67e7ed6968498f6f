"""Revenue in the utilisation table (booking.analytics): billing's issued invoices
about the bookings counted, less issued credit notes, by date of service.

world.a bills October (issued) and November (a draft) with tests.billing.support's
bill_side: a 2-hour booking on 5 October at 40 €/h is 80.00 € of machine time, half
of it funded by a programme (a -40.00 € line the SME does not pay)."""

from datetime import date

import pytest

from billing import services
from booking.analytics import utilisation
from core.models import Organization
from equipment.models import Machine
from tests.billing.support import bill_side

OCTOBER, NOVEMBER, DECEMBER = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)


@pytest.fixture
def billed(world):
    bill_side(world.a, "FAB")
    return world


def table(side, group_by, organizations=None):
    return utilisation(
        platforms=[side.platform],
        machines=Machine.objects.filter(platform=side.platform),
        start=OCTOBER,
        end=DECEMBER,
        group_by=group_by,
        organizations=organizations,
    )


def revenue_of(rows, **where) -> list[str]:
    return [r["revenue"] for r in rows if all(r[k] == v for k, v in where.items())]


def test_a_machines_revenue_is_what_issued_invoices_billed_for_its_bookings(billed):
    a = billed.a

    result = table(a, ["machine", "month"])

    # October: the machine time, funded share included; November is still a draft.
    assert revenue_of(result.rows, machine=a.machine.pk) == ["80.00", "0.00"]
    assert result.totals["revenue"] == "80.00"


def test_an_issued_credit_note_takes_the_revenue_back_a_draft_one_does_not(billed):
    a = billed.a
    note = services.create_credit_note(invoice=a.issued, by=a.accountant)

    assert table(a, ["month"]).totals["revenue"] == "80.00"

    services.issue_invoice(invoice=note, by=a.accountant)

    assert revenue_of(table(a, ["month"]).rows) == ["0.00", "0.00"]


def test_an_organizations_view_counts_only_what_it_was_billed(billed):
    a, b = billed.a, billed.b

    assert table(a, [], Organization.objects.filter(pk=a.org.pk)).totals["revenue"] == "80.00"
    assert table(a, [], Organization.objects.filter(pk=b.org.pk)).totals["revenue"] == "0.00"


def test_revenue_by_organization_and_by_platform(billed):
    a = billed.a

    assert revenue_of(table(a, ["organization"]).rows, organization=a.org.pk) == ["80.00"]
    assert revenue_of(table(a, ["platform"]).rows, platform=a.platform.pk) == ["80.00"]
    assert revenue_of(table(a, ["machine_type"]).rows, machine_type=a.machine.machine_type_id) == [
        "80.00"
    ]
