"""Billing runs: what a month is worth, priced by hand here, and runs that can be repeated."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from billing import services
from billing.models import ConsumableUse, FundingProgramme, Invoice, InvoiceLine, UsageRecord
from booking.models import Booking
from core.models import AuditEvent
from tests import factories
from tests.billing.conftest import MONTH, booking, paris
from tests.billing.support import draft_of, lines_of, run


def month_of_everything(world):
    """Five bookings and a consumable, one of each billable case."""
    a = world.a
    first = booking(
        a,
        paris(5, 9),
        paris(5, 10, 10),
        checked_in_at=paris(5, 9, 5),
        checked_out_at=paris(5, 10, 40),
    )
    booking(a, paris(6, 9), paris(6, 9, 20))  # 20 min, billed as the 30-minute minimum
    booking(a, paris(7, 9), paris(7, 11), status=Booking.Status.CANCELLED, late_cancellation=True)
    booking(a, paris(8, 9), paris(8, 10), status=Booking.Status.NO_SHOW)
    booking(a, paris(9, 9), paris(9, 10), status=Booking.Status.CANCELLED)  # in time: free
    booking(a, paris(2, 9, month=11), paris(2, 10, month=11))  # November: another run
    use = ConsumableUse.objects.create(
        booking=first, consumable=a.filament, quantity=Decimal("123.5"), recorded_by=a.operator
    )
    ConsumableUse.objects.filter(pk=use.pk).update(recorded_at=paris(5, 10, 45))
    return first


def test_a_month_is_priced_per_line_rounded_half_up_as_computed_by_hand(billing):
    month_of_everything(billing)

    run(billing)

    invoice = draft_of(billing.a)
    assert lines_of(invoice) == [
        # 70 min booked → 5 started quarter-hours = 1.25 h × 47.50 = 59.375 → 59.38
        ("machine_time", "1.2500", "47.5000", "59.38"),
        ("setup_fee", "1.0000", "12.0000", "12.00"),
        # 123.5 g × 0.045 = 5.5575 → 5.56
        ("consumable", "123.5000", "0.0450", "5.56"),
        # 20 min, raised to the 30-minute minimum: 0.5 h × 47.50
        ("machine_time", "0.5000", "47.5000", "23.75"),
        ("setup_fee", "1.0000", "12.0000", "12.00"),
        # 2 h booked = 95.00, half of it
        ("late_cancellation", "1.0000", "47.5000", "47.50"),
        # 1 h booked = 47.50, all of it
        ("no_show", "1.0000", "47.5000", "47.50"),
    ]
    # 207.69 without tax; VAT 20 % = 41.538 → 41.54
    assert (invoice.total_without_tax, invoice.total_vat, invoice.total_with_tax) == (
        Decimal("207.69"),
        Decimal("41.54"),
        Decimal("249.23"),
    )
    assert invoice.vat_breakdown == [{"rate": "20.00", "base": "207.69", "vat": "41.54"}]
    assert (invoice.period_start, invoice.period_end) == (MONTH, date(2026, 10, 31))


def test_actual_time_is_billed_when_the_platform_says_so(billing):
    billing.a.settings.billable_time = "actual"
    billing.a.settings.save()
    month_of_everything(billing)

    run(billing)

    time_lines = draft_of(billing.a).lines.filter(kind="machine_time").order_by("service_date")
    # Checked in 09:05, out 10:40: 95 min → 105 min = 1.75 h × 47.50 = 83.125 → 83.13.
    # The second booking was never checked in or out: its booked time.
    assert [(str(line.quantity), str(line.amount)) for line in time_lines] == [
        ("1.7500", "83.13"),
        ("0.5000", "23.75"),
    ]


def test_the_most_specific_tariff_and_the_tier_apply(billing):
    from billing.models import Tariff

    a = billing.a
    a.platform_membership = a.org.platform_memberships.get()
    a.platform_membership.tier = "member"
    a.platform_membership.save()
    Tariff.objects.create(
        platform=a.platform,
        machine=a.machine,
        tier="member",
        valid_from=date(2026, 10, 6),
        hourly_rate=Decimal("30.00"),
        increment_minutes=60,
    )
    booking(a, paris(5, 9), paris(5, 10))  # before the member tariff: the type's
    booking(a, paris(6, 9), paris(6, 9, 30))  # member tariff, started hour

    run(billing)

    assert [
        (line.kind, str(line.amount)) for line in draft_of(a).lines.order_by("service_date", "kind")
    ] == [("machine_time", "47.50"), ("setup_fee", "12.00"), ("machine_time", "30.00")]


def test_a_booking_without_tariff_is_reported_not_billed(billing):
    other_type = factories.MachineFactory(platform=billing.a.platform)
    missing = booking(billing.a, paris(5, 9), paris(5, 10), machine=other_type)

    report = run(billing).report

    assert [p["booking"] for p in report["problems"]] == [missing.pk]
    assert report["draft_invoices"] == 0
    assert not Invoice.objects.exists()


def test_running_again_adds_nothing_and_updates_drafts(billing):
    month_of_everything(billing)
    run(billing)
    counts = (UsageRecord.objects.count(), InvoiceLine.objects.count(), Invoice.objects.count())

    again = run(billing).report

    assert (UsageRecord.objects.count(), InvoiceLine.objects.count(), Invoice.objects.count()) == (
        counts
    )
    assert (again["usage_created"], again["usage_updated"], again["usage_removed"]) == (0, 0, 0)

    # The 20-minute booking is corrected to an hour: the draft follows, and the trail says so.
    short = Booking.objects.get(start=paris(6, 9))
    Booking.objects.filter(pk=short.pk).update(end=paris(6, 10), blocked_until=paris(6, 10))
    report = run(billing).report
    assert report["usage_updated"] == 1
    line = InvoiceLine.objects.get(booking=short, kind="machine_time")
    assert (str(line.quantity), str(line.amount)) == ("1.0000", "47.50")
    event = AuditEvent.objects.get(action="usagerecord.update")
    assert event.changes["amount"] == ["23.75", "47.50"]
    assert draft_of(billing.a).total_without_tax == Decimal("231.44")


def test_an_issued_period_is_never_touched_again(billing):
    month_of_everything(billing)
    run(billing)
    invoice = services.issue_invoice(invoice=draft_of(billing.a), by=billing.a.accountant)
    lines = lines_of(invoice)
    booking(billing.a, paris(20, 9), paris(20, 10))  # late news about October

    report = run(billing).report

    assert report["organizations_already_invoiced"] == [billing.a.org.pk]
    assert report["usage_created"] == 0
    assert lines_of(Invoice.objects.get(pk=invoice.pk)) == lines
    assert Invoice.objects.count() == 1


def test_a_removed_line_stays_out_of_later_runs(billing):
    month_of_everything(billing)
    run(billing)
    fee = InvoiceLine.objects.filter(kind="no_show").get()

    services.remove_line(line=fee, by=billing.a.accountant)
    run(billing)

    assert not InvoiceLine.objects.filter(kind="no_show").exists()
    assert draft_of(billing.a).total_without_tax == Decimal("160.19")


def test_query_count_does_not_depend_on_bookings_per_organization(billing):
    def queries_for(side, days) -> int:
        for day in days:
            booking(side, paris(day, 9), paris(day, 10))
            booking(side, paris(day, 14), paris(day, 15), status=Booking.Status.NO_SHOW)
        with CaptureQueriesContext(connection) as context:
            run(billing)
        return len(context.captured_queries)

    few = queries_for(billing.a, [1, 2])
    # The same organization books six times as much (within one insert batch even on
    # SQLite, whose 999 parameters per query cut bulk inserts into batches).
    InvoiceLine.objects.all().delete()
    UsageRecord.objects.all().delete()
    Invoice.objects.all().delete()
    Booking.objects.all().delete()
    many = queries_for(billing.a, range(1, 13))

    assert many == few


def test_the_command_bills_a_month_with_a_progress_bar(billing, capsys):
    month_of_everything(billing)

    call_command("bill_period", platform=billing.a.platform.slug, month="2026-10")

    out, err = capsys.readouterr()
    assert "1 draft invoices (1 new)" in out
    assert "booking" in err  # tqdm's bar
    assert draft_of(billing.a).total_with_tax == Decimal("249.23")


@pytest.mark.parametrize("month", ["2026-13", "26-10", "october"])
def test_the_command_refuses_a_malformed_month(billing, month):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("bill_period", platform=billing.a.platform.slug, month=month)


# --- Funding ---------------------------------------------------------------------------------


def half_funded(platform, budget: str, name: str = "Industrie du Futur 2026"):
    """A programme of a new label of `platform` paying half of 2026's machine time."""
    label = factories.LabelFactory()
    platform.labels.add(label)
    return FundingProgramme.objects.create(
        label=label,
        name=name,
        share=Decimal("0.5"),
        budget=Decimal(budget),
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 12, 31),
    )


def test_a_programme_funds_its_share_until_its_budget_runs_out_mid_month(billing, api):
    a = billing.a
    programme = half_funded(a.platform, "50.00")
    label = programme.label
    for day in (5, 6, 7):  # 2 h each: 95.00 of machine time
        booking(a, paris(day, 9), paris(day, 11))

    report = run(billing).report

    funding = InvoiceLine.objects.filter(kind="funding").order_by("service_date")
    # 47.50 (half of 95.00), then the 2.50 left, then nothing.
    assert [str(line.amount) for line in funding] == ["-47.50", "-2.50"]
    assert report["funding"] == {str(programme.pk): "50.00"}
    # 3 × (95.00 + 12.00) − 50.00
    assert draft_of(a).total_without_tax == Decimal("271.00")
    assert run(billing).report["funding"] == {str(programme.pk): "50.00"}  # again: the same
    assert InvoiceLine.objects.filter(kind="funding").count() == 2

    api.as_user(a.accountant)
    body = api.get(f"/api/v1/funding-programmes/{programme.pk}/report/").json()
    assert (body["remaining"], body["programme"]["spent"]) == ("0.00", "50.00")
    assert [row["amount"] for row in body["allocations"]] == ["47.50", "2.50"]
    api.as_user(a.org_admin)
    assert api.get(f"/api/v1/funding-programmes/{programme.pk}/report/").status_code == 403

    # Spent once, however many of the label's platforms the reader sees.
    billing.b.platform.labels.add(label)
    factories.PlatformStaffFactory(user=a.accountant, platform=billing.b.platform, role="manager")
    api.as_user(a.accountant)
    listed = api.get(f"/api/v1/funding-programmes/?label={label.pk}").json()["results"]
    assert [row["spent"] for row in listed] == ["50.00"]


def test_an_allocation_has_one_line_and_lines_without_one_are_many(billing):
    """Unique where set (a partial index since migration 0008, where it was a unique
    column): the database and the model's validation refuse a second line for the
    same allocation, while every line without an allocation is free of the rule."""
    a = billing.a
    half_funded(a.platform, "500.00")
    for day in (5, 6):
        booking(a, paris(day, 9), paris(day, 11))
    run(billing)
    funded = InvoiceLine.objects.filter(kind="funding").first()
    assert InvoiceLine.objects.filter(allocation__isnull=True).count() >= 2

    copy = InvoiceLine.objects.get(pk=funded.pk)
    copy.pk = None
    with pytest.raises(ValidationError, match="already has its line"):
        copy.validate_constraints()
    with pytest.raises(IntegrityError), transaction.atomic():
        copy.save()
    assert InvoiceLine.objects.filter(allocation=funded.allocation_id).count() == 1
