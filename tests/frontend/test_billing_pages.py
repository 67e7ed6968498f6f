"""The accountants' pages. Platform side: a billing desk per platform for its
accountants (managers read): runs, drafts to review, edit and issue, issued
documents with their status, credit notes, bank transfers received, PDFs and
exports. SME side: an organization's issued invoices for its administrators and
accountants, their PDFs, bank transfer details, and payment by card where Stripe
is configured; there too the card the SME saves, which the platform's accountant
then charges off-session from the invoice's page. Every write goes through
billing's services; another platform's or SME's pages and documents answer 404."""

import io
import zipfile
from datetime import date, timedelta
from decimal import Decimal
from html import unescape

import pytest
import stripe
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from billing import payments, services
from billing.models import (
    BillingRun,
    CardPayment,
    Invoice,
    InvoiceLine,
    Payment,
    StripeCustomer,
)
from billing.runs import bill_period
from billing.selectors import PaymentStatus, with_balance
from core.models import AuditEvent
from tests import factories
from tests.billing import conftest as billing_conftest
from tests.billing import localstripe as fake_stripe
from tests.billing.conftest import booking, paris

# Fixtures shared with tests/billing: world A ready to bill, and a localstripe server.
billing = billing_conftest.billing
localstripe = fake_stripe.localstripe
SECRET_KEY = fake_stripe.SECRET_KEY
OCTOBER = date(2026, 10, 1)
FEC_HEADER = (
    "JournalCode\tJournalLib\tEcritureNum\tEcritureDate\tCompteNum\tCompteLib\tCompAuxNum\t"
    "CompAuxLib\tPieceRef\tPieceDate\tEcritureLib\tDebit\tCredit\tEcritureLet\tDateLet\t"
    "ValidDate\tMontantdevise\tIdevise"
)


def desk(world, page: str, side: str = "a") -> str:
    return f"/billing/platforms/{getattr(world, side).platform.pk}/{page}/"


def page_of(invoice, action: str = "") -> str:
    tail = f"{action}/" if action else ""
    return f"/billing/platforms/{invoice.platform_id}/documents/{invoice.pk}/{tail}"


def sme_page(invoice, action: str = "") -> str:
    tail = f"{action}/" if action else ""
    return f"/organizations/{invoice.organization_id}/invoices/{invoice.pk}/{tail}"


def text(response) -> str:
    return unescape(response.content.decode())


def run(world, month=OCTOBER, side="a") -> BillingRun:
    s = getattr(world, side)
    return bill_period(platform=s.platform, month=month, by=s.accountant)


@pytest.fixture
def october(billing):
    """SME a booked world A's printer twice in October 2026: 2 h and 1 h 30 at
    47.50 €/h plus a 12 € setup fee each: 190.25 € + 38.05 € VAT = 228.30 €."""
    booking(billing.a, paris(5, 9), paris(5, 11))
    booking(billing.a, paris(12, 14), paris(12, 15, 30))
    return billing


@pytest.fixture
def draft(october):
    run(october)
    return Invoice.objects.get(platform=october.a.platform, period_start=OCTOBER)


@pytest.fixture
def issued(draft, billing):
    """October's invoice issued today: due in 30 days."""
    return services.issue_invoice(invoice=draft, by=billing.a.accountant)


@pytest.fixture
def accountant(client, billing):
    client.force_login(billing.a.accountant)
    return client


# --- Who opens the desk ------------------------------------------------------------------------


def test_the_billing_link_opens_the_first_platform_one_bills(client, billing):
    for who in ("accountant", "manager"):
        client.force_login(getattr(billing.a, who))
        response = client.get("/billing/")
        assert response.status_code == 302 and response["Location"] == desk(billing, "runs")
    for who in ("operator", "org_member", "org_accountant", "org_admin"):
        client.force_login(getattr(billing.a, who))
        assert client.get("/billing/").status_code == 404, who


@pytest.mark.parametrize("page", ["runs", "drafts", "invoices", "exports"])
def test_another_platforms_staff_and_operators_get_404(client, billing, page):
    for user in (billing.b.accountant, billing.b.manager, billing.a.operator, billing.a.org_admin):
        client.force_login(user)
        assert client.get(desk(billing, page)).status_code == 404


def test_another_platforms_documents_answer_404_even_under_ones_own_platform(
    client,
    issued,
    billing,
):
    client.force_login(billing.b.accountant)
    own_desk = f"/billing/platforms/{billing.b.platform.pk}/documents/{issued.pk}/"

    assert client.get(page_of(issued)).status_code == 404
    assert client.get(own_desk).status_code == 404
    assert client.post(f"{own_desk}credit-note/").status_code == 404
    assert client.post(f"{own_desk}payments/", {"amount": "1"}).status_code == 404
    assert client.get(f"/billing/documents/{issued.pk}/pdf/").status_code == 404
    assert not Payment.objects.exists() and Invoice.objects.count() == 1


def test_navigation_offers_billing_to_platform_finance_and_invoices_to_sme_finance(
    client,
    billing,
):
    def nav(user) -> str:
        client.force_login(user)
        html = client.get("/").content.decode()
        return html[html.index('<nav class="nav"') : html.index("</nav>")]

    assert 'href="/billing/"' in nav(billing.a.accountant)
    assert 'href="/billing/"' in nav(billing.a.manager)
    assert 'href="/billing/"' not in nav(billing.a.operator)
    for who in ("org_accountant", "org_admin"):
        menu = nav(getattr(billing.a, who))
        assert 'href="/invoices/"' in menu and 'href="/billing/"' not in menu
    assert 'href="/invoices/"' not in nav(billing.a.org_member)


# --- Runs --------------------------------------------------------------------------------------


def test_the_month_to_bill_defaults_to_last_month(accountant, billing):
    today = timezone.localtime(timezone.now(), billing.a.platform.tzinfo).date()
    last = (today.replace(day=1) - timedelta(days=1)).replace(day=1)

    html = text(accountant.get(desk(billing, "runs")))

    assert f'type="month" name="month" value="{last:%Y-%m}"' in html
    assert "No billing run yet." in html


def test_an_accountant_runs_a_month_and_sees_what_it_did(accountant, october):
    response = accountant.post(desk(october, "runs"), {"month": "2026-10"})

    made = BillingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{desk(october, 'runs')}?run={made.pk}"
    html = text(accountant.get(response["Location"]))
    assert "October 2026 billed." in html
    assert "<div><dt>Bookings read</dt><dd>2</dd></div>" in html
    assert "<div><dt>Draft invoices</dt><dd>1</dd></div>" in html
    assert f"{desk(october, 'drafts')}?month=2026-10" in html
    assert made.started_by == october.a.accountant  # billing.runs did it, as the API does


def test_a_run_through_htmx_answers_its_panel_with_a_progress_bar_and_the_outcome(
    accountant, october
):
    page = text(accountant.get(desk(october, "runs")))
    assert 'hx-indicator="#run-progress"' in page and "<progress" in page

    response = accountant.post(desk(october, "runs"), {"month": "2026-10"}, HTTP_HX_REQUEST="true")

    html = text(response)
    assert response.status_code == 200
    assert html.startswith('<div id="runs-panel">') and "<html" not in html
    assert 'id="run-outcome"' in html and "October 2026 billed." in html
    assert f'id="run-{BillingRun.objects.get().pk}" class="current"' in html


def test_a_run_lists_the_bookings_no_tariff_prices(accountant, october):
    october.a.tariff.delete()

    accountant.post(desk(october, "runs"), {"month": "2026-10"})
    html = text(accountant.get(f"{desk(october, 'runs')}?run={BillingRun.objects.get().pk}"))

    assert "2 bookings could not be priced:" in html
    assert "No tariff applies to Printer a on 2026-10-05." in html


@pytest.mark.parametrize("typed", ["2026-13", "October", ""])
def test_a_month_typed_wrong_is_refused_next_to_its_field_and_kept(accountant, october, typed):
    response = accountant.post(desk(october, "runs"), {"month": typed})

    html = text(response)
    assert response.status_code == 400
    assert not BillingRun.objects.exists()
    field = html[html.index('<div class="field has-error">') :]
    assert 'id="id_month"' in field[: field.index("</div>")]
    assert 'aria-invalid="true"' in html
    if typed:
        assert f'value="{typed}"' in html


def test_a_platform_without_billing_settings_says_so(accountant, billing):
    billing.a.settings.delete()

    page = text(accountant.get(desk(billing, "runs")))
    response = accountant.post(desk(billing, "runs"), {"month": "2026-10"})

    assert "This platform has no billing settings yet" in page
    assert response.status_code == 400
    assert "Set up this platform's billing settings first." in text(response)


def test_managers_read_the_desk_but_neither_run_nor_issue(client, draft, billing):
    client.force_login(billing.a.manager)

    runs = text(client.get(desk(billing, "runs")))
    document = text(client.get(page_of(draft)))
    client.post(desk(billing, "runs"), {"month": "2026-10"})
    refused = client.post(page_of(draft, "issue"), follow=True)

    assert 'id="run-form"' not in runs and "Only the platform's accountants run billing." in runs
    assert (
        'id="issue-button"' not in document and 'action="' + page_of(draft, "lines") not in document
    )
    assert BillingRun.objects.count() == 1  # the fixture's
    assert "Only this platform's staff (accountant) may do this." in text(refused)
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DRAFT


# --- Drafts ------------------------------------------------------------------------------------


def test_drafts_of_the_latest_month_are_listed_with_their_totals(accountant, draft, billing):
    html = text(accountant.get(desk(billing, "drafts")))

    assert "Draft invoices of October 2026" in html
    assert f'id="draft-{draft.pk}"' in html and "SME a" in html
    assert "€190.25" in html and "€228.30" in html


def test_no_draft_says_what_to_do_next(accountant, billing):
    html = text(accountant.get(desk(billing, "drafts")))

    assert "No draft to review." in html
    assert "Run billing for a month" in html and desk(billing, "runs") in html


def test_a_draft_shows_its_lines_totals_and_vat_per_rate(accountant, draft):
    html = text(accountant.get(page_of(draft)))

    assert "Draft invoice · SME a" in html
    assert html.count('<tr id="line-') == 4  # time and setup fee of each booking
    assert "€95.00" in html and "€71.25" in html and "€12.00" in html
    assert "<td>20%</td>" in html  # the VAT rate's row
    assert '<dd id="total-with-tax">€228.30</dd>' in html


def test_an_accountant_adds_edits_and_removes_lines_through_the_services(accountant, draft):
    accountant.post(
        page_of(draft, "lines"),
        {
            "new-description": "Training session",
            "new-service_date": "2026-10-20",
            "new-quantity": "2",
            "new-unit": "h",
            "new-unit_price": "60",
            "new-vat_rate": "20",
        },
    )
    added = InvoiceLine.objects.get(description="Training session")
    edit_form = text(accountant.get(f"{page_of(draft)}?edit={added.pk}"))
    accountant.post(
        page_of(draft, f"lines/{added.pk}"),
        {
            f"line-{added.pk}-description": "Training session (half day)",
            f"line-{added.pk}-service_date": "2026-10-20",
            f"line-{added.pk}-quantity": "3.5",
            f"line-{added.pk}-unit": "h",
            f"line-{added.pk}-unit_price": "60",
            f"line-{added.pk}-vat_rate": "20",
        },
    )
    setup_fee = draft.lines.get(kind="setup_fee", service_date=date(2026, 10, 5))
    accountant.post(page_of(draft, f"lines/{setup_fee.pk}/remove"))

    added.refresh_from_db()
    draft.refresh_from_db()
    assert 'value="Training session"' in edit_form  # the line's values, to change
    assert (added.kind, added.amount) == (InvoiceLine.Kind.MANUAL, Decimal("210.00"))
    assert not InvoiceLine.objects.filter(pk=setup_fee.pk).exists()
    assert setup_fee.usage.excluded  # stays out of later runs (billing.services.remove_line)
    assert draft.total_without_tax == Decimal("190.25") + Decimal("210.00") - Decimal("12.00")
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"invoiceline.create", "invoiceline.update", "invoiceline.delete"} <= actions


def test_a_line_with_errors_is_refused_next_to_its_fields_and_keeps_what_was_typed(
    accountant, draft
):
    response = accountant.post(
        page_of(draft, "lines"),
        {
            "new-description": "Bad line",
            "new-quantity": "-2",
            "new-unit": "h",
            "new-unit_price": "abc",
            "new-vat_rate": "120",
        },
    )

    html = text(response)
    assert response.status_code == 400
    assert not InvoiceLine.objects.filter(description="Bad line").exists()
    assert 'value="Bad line"' in html and 'value="-2"' in html and 'value="120"' in html
    assert "A quantity cannot be negative." in html
    assert "A VAT rate is between 0 and 100." in html
    assert html.count('aria-invalid="true"') == 3


def test_issuing_numbers_the_draft_with_the_next_number_of_the_series(accountant, draft):
    response = accountant.post(page_of(draft, "issue"), follow=True)

    draft.refresh_from_db()
    assert draft.status == Invoice.Status.ISSUED and draft.number == f"FAB-{date.today():%Y}-000001"
    html = text(response)
    assert f"{draft.number} issued." in html
    assert f"Invoice {draft.number} · SME a" in html
    assert 'id="issue-button"' not in html and f"/billing/documents/{draft.pk}/pdf/" in html


def test_an_empty_draft_is_not_issued_and_the_page_says_why(accountant, draft, billing):
    for line in draft.lines.all():
        services.remove_line(line=line, by=billing.a.accountant)

    html = text(accountant.post(page_of(draft, "issue"), follow=True))

    assert "An invoice without lines cannot be issued." in html
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DRAFT


# --- Issued documents --------------------------------------------------------------------------


@pytest.fixture
def four_months(billing):
    """SME a's invoices of July to October 2026: July's issued on 1 August (overdue
    since 31 August), August's paid, September's credited in full, October's due."""
    a = billing.a
    invoices = {}
    for month in (7, 8, 9, 10):
        booking(a, paris(5, 9, month=month), paris(5, 10, month=month))
        run(billing, date(2026, month, 1))
        invoices[month] = Invoice.objects.get(period_start=date(2026, month, 1))
    invoices[7] = services.issue_invoice(
        invoice=invoices[7], by=a.accountant, issue_date=date(2026, 8, 1)
    )
    for month in (8, 9, 10):
        invoices[month] = services.issue_invoice(invoice=invoices[month], by=a.accountant)
    services.record_payment(invoice=invoices[8], by=a.accountant)
    note = services.create_credit_note(invoice=invoices[9], by=a.accountant)
    invoices["note"] = services.issue_invoice(invoice=note, by=a.accountant)
    return invoices


def test_issued_documents_show_whether_they_are_due_overdue_paid_or_credited(
    accountant,
    billing,
    four_months,
):
    html = text(accountant.get(desk(billing, "invoices")))

    def row(invoice) -> str:
        start = html.index(f'<tr id="invoice-{invoice.pk}">')
        return html[start : html.index("</tr>", start)]

    assert '<span class="badge overdue">Overdue</span>' in row(four_months[7])
    assert '<span class="badge paid">Paid</span>' in row(four_months[8])
    assert '<span class="badge credited">Credited</span>' in row(four_months[9])
    assert '<span class="badge due">Due</span>' in row(four_months[10])
    assert '<span class="badge credit_note">Credit note</span>' in row(four_months["note"])
    assert f"credits {four_months[9].number}" in row(four_months["note"])


def test_issued_documents_filter_by_status(accountant, billing, four_months):
    overdue = accountant.get(desk(billing, "invoices"), {"status": "overdue"})
    nothing = accountant.get(desk(billing, "invoices"), {"status": "paid", "month": "2025-01"})

    assert [i.pk for i in overdue.context["page"]] == [four_months[7].pk]
    assert "Nothing matches." in text(nothing)


def test_the_status_is_the_same_as_what_pay_by_card_would_charge(billing, four_months):
    today = timezone.localdate()
    for key in (7, 8, 9, 10):
        annotated = with_balance(Invoice.objects.all(), today).get(pk=four_months[key].pk)
        assert Decimal(annotated.balance_due).quantize(Decimal("0.01")) == (
            four_months[key].remaining_due()
        )
    statuses = dict(with_balance(Invoice.objects.all(), today).values_list("pk", "payment_status"))
    assert statuses[four_months[9].pk] == PaymentStatus.CREDITED


def test_recording_a_bank_transfer_defaults_to_what_remains_due(accountant, issued, billing):
    page = text(accountant.get(page_of(issued)))
    today = timezone.localtime(timezone.now(), billing.a.platform.tzinfo).date()

    assert 'name="amount" value="228.30"' in page
    assert f'name="received_on" value="{today:%Y-%m-%d}"' in page
    response = accountant.post(
        page_of(issued, "payments"),
        {"amount": "228.30", "received_on": today.isoformat(), "reference": "VIR 42"},
        follow=True,
    )

    payment = Payment.objects.get()
    assert (payment.amount, payment.reference, payment.recorded_by) == (
        Decimal("228.30"),
        "VIR 42",
        billing.a.accountant,
    )
    html = text(response)
    assert "Payment recorded." in html and '<span class="badge paid">Paid</span>' in html
    assert 'id="payment-form"' not in html  # nothing remains due


def test_a_payment_beyond_what_is_due_or_in_the_future_is_refused_next_to_its_field(
    accountant, issued
):
    too_much = accountant.post(
        page_of(issued, "payments"),
        {"amount": "500", "received_on": timezone.localdate().isoformat(), "reference": "X"},
    )
    future = accountant.post(
        page_of(issued, "payments"),
        {"amount": "10", "received_on": (date.today() + timedelta(days=9)).isoformat()},
    )

    assert too_much.status_code == future.status_code == 400
    assert not Payment.objects.exists()
    html = text(too_much)
    amount_field = html[html.index('<div class="field has-error">') :]
    assert 'id="id_amount"' in amount_field and "More than what remains due (228.30)." in html
    assert 'value="500"' in html and 'value="X"' in html
    assert "Give a date between 2000 and today." in text(future)


def test_a_credit_note_is_drafted_from_an_issued_invoice_then_issued(accountant, issued):
    response = accountant.post(page_of(issued, "credit-note"))

    note = Invoice.objects.get(kind=Invoice.Kind.CREDIT_NOTE)
    assert response.status_code == 302 and response["Location"] == page_of(note)
    html = text(accountant.get(page_of(note)))
    assert "Draft credit note · SME a" in html and "Credits invoice" in html
    assert html.count('<tr id="line-') == 4
    first = note.lines.order_by("pk").first()
    accountant.post(page_of(note, f"lines/{first.pk}/remove"))
    accountant.post(page_of(note, "issue"))
    note.refresh_from_db()
    assert note.is_issued and note.number == f"FAB-AV-{date.today():%Y}-000001"
    assert note.total_with_tax < issued.total_with_tax  # a partial credit


def test_the_pdf_downloads_as_a_factur_x_pdf_for_whoever_sees_the_document(
    client,
    issued,
    draft,
    billing,
):
    for user in (billing.a.accountant, billing.a.manager, billing.a.org_accountant):
        client.force_login(user)
        response = client.get(f"/billing/documents/{issued.pk}/pdf/")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == f'attachment; filename="{issued.number}.pdf"'
        assert response.content.startswith(b"%PDF")
    for user in (billing.a.org_member, billing.b.org_accountant, billing.a.operator):
        client.force_login(user)
        assert client.get(f"/billing/documents/{issued.pk}/pdf/").status_code == 404


def test_a_draft_has_no_pdf(accountant, draft):
    assert accountant.get(f"/billing/documents/{draft.pk}/pdf/").status_code == 404


# --- Exports -----------------------------------------------------------------------------------


def exported(client, world, export: str, month: str | None = None):
    month = month or f"{timezone.localdate():%Y-%m}"
    return client.get(desk(world, "exports"), {"month": month, "export": export, "lang": "en"})


def test_the_fec_export_downloads_as_tab_separated_text(accountant, issued, billing):
    response = exported(accountant, billing, "fec")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="732829320FEC')
    lines = response.content.decode("utf-8").split("\r\n")
    assert lines[0] == FEC_HEADER
    assert issued.number in lines[1]


def test_each_export_downloads_with_its_content_type(accountant, issued, billing):
    csv = exported(accountant, billing, "csv")
    vat = exported(accountant, billing, "vat")
    xlsx = exported(accountant, billing, "xlsx")
    pdfs = exported(accountant, billing, "zip")

    assert csv["Content-Type"] == vat["Content-Type"] == "text/csv; charset=utf-8"
    assert csv.content.decode("utf-8-sig").startswith("number,kind,issue_date")
    assert vat.content.decode("utf-8-sig").splitlines()[1] == "20.00,190.25,38.05,228.30"
    assert xlsx["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet["A2"].value == issued.number
    assert pdfs["Content-Type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(pdfs.content)).namelist() == [f"{issued.number}.pdf"]


def test_an_export_form_with_errors_keeps_what_was_typed(accountant, billing):
    response = accountant.get(desk(billing, "exports"), {"month": "2026/11", "export": "nope"})

    html = text(response)
    assert response.status_code == 400
    assert 'value="2026/11"' in html
    assert "Give a month as YYYY-MM, e.g. 2026-10." in html
    assert "Select a valid choice." in html


def test_managers_take_exports_too(client, issued, billing):
    client.force_login(billing.a.manager)

    assert exported(client, billing, "fec").status_code == 200


def test_no_document_issued_yet_says_what_to_do(accountant, billing):
    html = text(accountant.get(desk(billing, "exports")))

    assert "Nothing issued yet." in html and desk(billing, "drafts") in html


# --- CSRF --------------------------------------------------------------------------------------


def test_every_billing_form_needs_its_csrf_token(draft, billing):
    client = Client(enforce_csrf_checks=True)
    client.force_login(billing.a.accountant)

    page = client.get(page_of(draft)).content.decode()
    for action in ("issue", "lines", f"lines/{draft.lines.first().pk}/remove"):
        assert client.post(page_of(draft, action), {}).status_code == 403
    assert client.post(desk(billing, "runs"), {"month": "2026-10"}).status_code == 403

    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DRAFT and BillingRun.objects.count() == 1
    assert page.count('name="csrfmiddlewaretoken"') >= 3  # language, line forms, issue


# --- Query counts ------------------------------------------------------------------------------


def organizations_billed(billing, n: int) -> list[Invoice]:
    """n SMEs of world A, each with a booking in October, billed."""
    for i in range(n):
        org = factories.OrganizationFactory(legal_name=f"SME {i:02d}")
        factories.PlatformMembershipFactory(organization=org, platform=billing.a.platform)
        booking(billing.a, paris(5 + i % 20, 9), paris(5 + i % 20, 10), organization=org)
    run(billing)
    return list(Invoice.objects.filter(status=Invoice.Status.DRAFT))


@pytest.mark.parametrize("n", [2, 12])
def test_drafts_and_issued_lists_cost_the_same_queries_for_2_or_12_documents(
    accountant,
    billing,
    n,
    django_assert_max_num_queries,
):
    for invoice in organizations_billed(billing, n)[: n // 2]:
        issued = services.issue_invoice(invoice=invoice, by=billing.a.accountant)
        services.record_payment(invoice=issued, by=billing.a.accountant, amount=Decimal(1))

    with django_assert_max_num_queries(12):
        drafts = accountant.get(desk(billing, "drafts"))
    with django_assert_max_num_queries(10):
        issued_list = accountant.get(desk(billing, "invoices"))
    with django_assert_max_num_queries(10):
        runs = accountant.get(desk(billing, "runs"))

    assert drafts.status_code == issued_list.status_code == runs.status_code == 200
    assert len(drafts.context["page"]) == len(issued_list.context["page"]) == n // 2


@pytest.mark.parametrize("n", [1, 15])
def test_a_draft_costs_the_same_queries_for_1_or_15_lines(
    accountant,
    draft,
    billing,
    n,
    django_assert_max_num_queries,
):
    for line in draft.lines.all():
        services.remove_line(line=line, by=billing.a.accountant)
    for i in range(n):
        services.add_line(
            invoice=draft,
            by=billing.a.accountant,
            description=f"Line {i}",
            quantity=Decimal(1),
            unit="unit",
            unit_price=Decimal(10),
        )

    with django_assert_max_num_queries(12):
        response = accountant.get(f"{page_of(draft)}?edit={draft.lines.first().pk}")

    assert len(response.context["lines"]) == n


@pytest.mark.parametrize("n", [1, 10])
def test_an_smes_invoice_list_costs_the_same_queries_for_1_or_10_invoices(
    client,
    billing,
    n,
    django_assert_max_num_queries,
):
    for month in range(1, n + 1):
        booking(billing.a, paris(5, 9, month=month), paris(5, 10, month=month))
        run(billing, date(2026, month, 1))
        draft = Invoice.objects.get(period_start=date(2026, month, 1))
        services.issue_invoice(invoice=draft, by=billing.a.accountant)
    client.force_login(billing.a.org_accountant)

    with django_assert_max_num_queries(10):
        response = client.get(f"/organizations/{billing.a.org.pk}/invoices/")

    assert len(response.context["page"]) == n


# --- The SME's side ----------------------------------------------------------------------------


def test_an_smes_accountant_and_admin_see_its_issued_invoices_never_drafts(
    client,
    issued,
    billing,
):
    booking(billing.a, paris(5, 9, month=11), paris(5, 10, month=11))
    run(billing, date(2026, 11, 1))  # November: a draft
    for who in ("org_accountant", "org_admin"):
        client.force_login(getattr(billing.a, who))
        index = client.get("/invoices/")
        html = text(client.get(index["Location"]))
        assert index["Location"] == f"/organizations/{billing.a.org.pk}/invoices/"
        assert f'<tr id="invoice-{issued.pk}">' in html
        assert html.count('<tr id="invoice-') == 1
        assert "€228.30 to pay on 1 invoice." in html


def test_an_smes_invoices_show_in_its_company_tabs_for_its_finance_people_only(
    client,
    issued,
    billing,
):
    client.force_login(billing.a.org_accountant)
    tabs = text(client.get(f"/organizations/{billing.a.org.pk}/"))
    client.force_login(billing.a.org_member)
    members_tabs = text(client.get(f"/organizations/{billing.a.org.pk}/"))

    assert f"/organizations/{billing.a.org.pk}/invoices/" in tabs
    assert f"/organizations/{billing.a.org.pk}/invoices/" not in members_tabs


def test_members_and_other_smes_get_404_on_an_smes_invoices(client, issued, billing):
    client.force_login(billing.a.org_member)
    assert client.get("/invoices/").status_code == 404
    assert client.get(f"/organizations/{billing.a.org.pk}/invoices/").status_code == 404
    assert client.get(sme_page(issued)).status_code == 404

    client.force_login(billing.b.org_accountant)
    assert client.get(f"/organizations/{billing.a.org.pk}/invoices/").status_code == 404
    assert client.get(sme_page(issued)).status_code == 404
    own = f"/organizations/{billing.b.org.pk}/invoices/{issued.pk}/"
    assert client.get(own).status_code == 404
    assert client.post(f"{own}pay-by-card/").status_code == 404


def test_no_invoice_yet_says_when_they_come(client, billing):
    client.force_login(billing.a.org_accountant)

    html = text(client.get(f"/organizations/{billing.a.org.pk}/invoices/"))

    assert "No invoice yet." in html and "once a month" in html


def test_without_stripe_the_invoice_shows_bank_transfer_details_and_no_card_button(
    client,
    issued,
    billing,
    settings,
):
    settings.STRIPE_SECRET_KEY = ""
    billing.a.settings.iban = "FR7630006000011234567890189"
    billing.a.settings.bic = "AGRIFRPP"
    billing.a.settings.save()
    client.force_login(billing.a.org_accountant)

    html = text(client.get(sme_page(issued)))

    assert "FR76 3000 6000 0112 3456 7890 189" in html and "AGRIFRPP" in html
    assert f'<dd class="mono">{issued.number}</dd>' in html  # the reference to quote
    assert "Pay by bank transfer" in html
    assert "pay-by-card" not in html and "js.stripe.com" not in html


def test_card_payments_need_both_keys_and_load_stripe_js_from_its_setting(
    client,
    issued,
    billing,
    settings,
):
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_PUBLISHABLE_KEY = ""
    client.force_login(billing.a.org_accountant)
    without_publishable_key = text(client.get(sme_page(issued)))
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_x"
    settings.STRIPE_JS_URL = "http://127.0.0.1:8420/js.stripe.com/v3/"

    html = text(client.get(sme_page(issued)))

    assert 'id="pay-by-card"' not in without_publishable_key
    assert '<script src="http://127.0.0.1:8420/js.stripe.com/v3/" defer></script>' in html
    assert 'id="pay-by-card"' in html and "Pay €228.30 by card" in html
    assert "Or pay by bank transfer" in html


def test_the_stripe_js_url_defaults_to_stripe(settings):
    from core import settings as defaults

    assert defaults.STRIPE_JS_URL == "https://js.stripe.com/v3/"


def test_a_paid_invoice_offers_no_payment(client, issued, billing, settings):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_PUBLISHABLE_KEY = "sk_test_x", "pk_test_x"
    services.record_payment(invoice=issued, by=billing.a.accountant)
    client.force_login(billing.a.org_admin)

    html = text(client.get(sme_page(issued)))

    assert "Paid. Thank you." in html
    assert "pay-by-card" not in html and 'id="transfer-details"' not in html


def test_pay_by_card_without_stripe_says_so_instead_of_failing(client, issued, billing, settings):
    settings.STRIPE_SECRET_KEY = ""
    client.force_login(billing.a.org_accountant)

    response = client.post(sme_page(issued, "pay-by-card"), HTTP_HX_REQUEST="true")

    assert response.status_code == 200  # the panel, for htmx to swap
    assert "Card payments are not set up on this fabpool; pay by bank transfer." in text(response)
    assert not CardPayment.objects.exists()


def test_pay_by_card_opens_a_payment_intent_and_hands_its_secret_to_stripe_js(
    client,
    issued,
    billing,
    settings,
    localstripe,
):
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_fabpool"
    settings.STRIPE_API_BASE = localstripe.base
    client.force_login(billing.a.org_accountant)

    response = client.post(sme_page(issued, "pay-by-card"), HTTP_HX_REQUEST="true")

    card = CardPayment.objects.get()
    html = text(response)
    assert response.status_code == 200 and html.startswith('<div id="card-panel"')
    assert (card.amount, card.requested_by) == (Decimal("228.30"), billing.a.org_accountant)
    assert f'data-client-secret="{card.payment_intent}_secret_' in html
    assert 'data-publishable-key="pk_test_fabpool"' in html
    assert "no-store" in response["Cache-Control"]


def test_the_pay_by_card_button_needs_its_csrf_token(issued, billing, settings):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_PUBLISHABLE_KEY = "sk_test_x", "pk_test_x"
    client = Client(enforce_csrf_checks=True)
    client.force_login(billing.a.org_accountant)

    assert client.post(sme_page(issued, "pay-by-card")).status_code == 403
    assert not CardPayment.objects.exists()


# --- Saved cards: the SME saves one, the platform's accountant charges it ----------------------


def sme_invoices(billing, side: str = "a") -> str:
    return f"/organizations/{getattr(billing, side).org.pk}/invoices/"


@pytest.fixture
def stripe_keys(settings, localstripe):
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_fabpool"
    settings.STRIPE_API_BASE = localstripe.base
    settings.STRIPE_JS_URL = f"{localstripe.base}/js.stripe.com/v3/"
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe.base})


@pytest.fixture
def stripe_unreachable(settings):
    """Keys set but no Stripe answering: refusals must come before any call to it."""
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_fabpool"
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"


def card_saved_at_stripe(api, organization, number: str = "4242424242424242") -> str:
    """What the SME's page and Stripe.js do, straight at Stripe: the organization's
    customer with a default card."""
    customer = payments.ensure_customer(organization, api)
    method = api.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    api.v1.payment_methods.attach(method.id, params={"customer": customer.stripe_id})
    api.v1.customers.update(
        customer.stripe_id, params={"invoice_settings": {"default_payment_method": method.id}}
    )
    return method.id


def test_an_smes_invoices_offer_no_saved_card_without_both_stripe_keys(client, billing, settings):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_PUBLISHABLE_KEY = "sk_test_x", ""
    client.force_login(billing.a.org_accountant)

    html = text(client.get(sme_invoices(billing)))

    assert "Saved card" not in html and "saved-card" not in html and "js.stripe.com" not in html


def test_an_smes_accountant_saves_a_card_with_stripe_js_then_removes_it(
    client, billing, stripe_keys
):
    client.force_login(billing.a.org_accountant)
    before = text(client.get(sme_invoices(billing)))
    assert "No card saved." in before and 'id="save-card"' in before
    assert "billing-card.js" in before

    opened = client.post(f"{sme_invoices(billing)}saved-card/setup/", HTTP_HX_REQUEST="true")

    html = text(opened)
    assert opened.status_code == 200 and html.startswith('<div id="saved-card-panel"')
    assert "no-store" in opened["Cache-Control"]
    setup_intent = html.split('name="setup_intent" value="')[1].split('"')[0]
    assert f'data-client-secret="{setup_intent}_secret_' in html
    assert 'data-publishable-key="pk_test_fabpool"' in html
    # What Stripe.js does in the browser with the client secret and the typed card.
    method = stripe_keys.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {
                "number": "4242424242424242",
                "exp_month": 12,
                "exp_year": 2034,
                "cvc": "123",
            },
        }
    )
    stripe_keys.v1.setup_intents.confirm(setup_intent, params={"payment_method": method.id})

    saved = client.post(
        f"{sme_invoices(billing)}saved-card/", {"setup_intent": setup_intent}, follow=True
    )

    html = text(saved)
    assert saved.redirect_chain == [(sme_invoices(billing), 302)]
    assert "Card saved: Visa ending in 4242." in html
    assert '<p id="saved-card"><strong>Visa ending in 4242, expires 12/2034</strong></p>' in html
    assert 'id="remove-card"' in html and "Replace the card" in html
    customer = stripe_keys.v1.customers.retrieve(billing.a.org.stripe_customer.stripe_id)
    assert customer.invoice_settings.default_payment_method == method.id

    removed = text(client.post(f"{sme_invoices(billing)}saved-card/remove/", follow=True))

    assert "Card removed: it can no longer be charged." in removed
    assert "No card saved." in removed and 'id="remove-card"' not in removed
    customer = stripe_keys.v1.customers.retrieve(billing.a.org.stripe_customer.stripe_id)
    assert not customer.invoice_settings.default_payment_method
    assert list(
        AuditEvent.objects.filter(action__startswith="card.")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["card.save", "card.remove"]


def test_a_card_not_confirmed_or_not_a_setup_intent_is_not_saved_and_the_page_says_why(
    client, billing, stripe_keys
):
    client.force_login(billing.a.org_admin)
    html = text(client.post(f"{sme_invoices(billing)}saved-card/setup/", HTTP_HX_REQUEST="true"))
    setup_intent = html.split('name="setup_intent" value="')[1].split('"')[0]
    save = f"{sme_invoices(billing)}saved-card/"

    early = text(client.post(save, {"setup_intent": setup_intent}, follow=True))
    typed = text(client.post(save, {"setup_intent": "pm_123"}, follow=True))

    assert "The card is not confirmed yet; finish the card form first." in early
    assert "The card form did not finish: try again." in typed
    assert "No card saved." in typed
    assert not AuditEvent.objects.filter(action="card.save").exists()


def test_when_stripe_does_not_answer_the_saved_card_panel_says_so_and_the_page_works(
    client, issued, billing, stripe_unreachable
):
    StripeCustomer.objects.create(organization=billing.a.org, stripe_id="cus_unreachable")
    client.force_login(billing.a.org_accountant)

    page = client.get(sme_invoices(billing))
    opened = client.post(f"{sme_invoices(billing)}saved-card/setup/", HTTP_HX_REQUEST="true")

    assert page.status_code == 200 and f'<tr id="invoice-{issued.pk}">' in text(page)
    assert "The card payment service did not answer as expected" in text(page)
    assert opened.status_code == 200  # the panel, for htmx to swap
    assert text(opened).count("The card payment service did not answer as expected") == 1


def test_only_the_smes_administrators_and_accountants_handle_its_saved_card(
    client, billing, stripe_unreachable
):
    base = sme_invoices(billing)
    for user in (
        billing.a.org_member,  # sees the organization, does not pay for it
        billing.b.org_accountant,
        billing.b.org_admin,
        billing.a.accountant,  # the platform's staff: not theirs to set up
        billing.a.manager,
    ):
        client.force_login(user)
        assert client.post(f"{base}saved-card/setup/").status_code == 404
        assert client.post(f"{base}saved-card/", {"setup_intent": "seti_1"}).status_code == 404
        assert client.post(f"{base}saved-card/remove/").status_code == 404
    assert not StripeCustomer.objects.exists()


def test_every_saved_card_button_needs_its_csrf_token(billing, stripe_unreachable):
    client = Client(enforce_csrf_checks=True)
    client.force_login(billing.a.org_accountant)
    base = sme_invoices(billing)

    assert client.post(f"{base}saved-card/setup/").status_code == 403
    assert client.post(f"{base}saved-card/", {"setup_intent": "seti_1"}).status_code == 403
    assert client.post(f"{base}saved-card/remove/").status_code == 403


@pytest.mark.parametrize("n", [1, 10])
def test_an_smes_invoices_with_a_saved_card_cost_the_same_queries_for_1_or_10_invoices(
    client, billing, stripe_keys, n, django_assert_max_num_queries
):
    for month in range(1, n + 1):
        booking(billing.a, paris(5, 9, month=month), paris(5, 10, month=month))
        run(billing, date(2026, month, 1))
        draft = Invoice.objects.get(period_start=date(2026, month, 1))
        services.issue_invoice(invoice=draft, by=billing.a.accountant)
    card_saved_at_stripe(stripe_keys, billing.a.org)
    client.force_login(billing.a.org_accountant)

    with django_assert_max_num_queries(12):
        response = client.get(sme_invoices(billing))

    assert len(response.context["page"]) == n and response.context["saved_card"].last4 == "4242"


def test_an_accountant_charges_the_saved_card_and_the_invoice_is_paid(
    accountant, issued, billing, stripe_keys
):
    card_saved_at_stripe(stripe_keys, billing.a.org)
    page = text(accountant.get(page_of(issued)))
    assert "SME A saved a card: Visa ending in 4242, expires 12/2034." in page.replace(
        billing.a.org.legal_name, "SME A"
    )
    assert "Charge €228.30 to the card" in page

    charged = accountant.post(page_of(issued, "charge-saved-card"), follow=True)

    html = text(charged)
    assert charged.redirect_chain == [(page_of(issued), 302)]
    assert "€228.30 charged to the saved card: the invoice is paid." in html
    payment = Payment.objects.get(invoice=issued)
    assert (payment.method, payment.amount) == (Payment.Method.CARD, Decimal("228.30"))
    card = CardPayment.objects.get(invoice=issued)
    assert (card.kind, card.status, card.requested_by) == (
        "off_session",
        "succeeded",
        billing.a.accountant,
    )
    assert 'id="charge-card"' not in html  # nothing remains due
    assert "Saved card charged by the platform · €228.30 · Succeeded" in html


def test_a_declined_saved_card_is_said_and_the_failed_attempt_listed(
    accountant, issued, billing, stripe_keys
):
    card_saved_at_stripe(stripe_keys, billing.a.org, "4000000000000341")

    html = text(accountant.post(page_of(issued, "charge-saved-card"), follow=True))

    failed = CardPayment.objects.get(invoice=issued)
    assert failed.status == "failed"
    assert f'<li class="error">{failed.failure_message}</li>' in html
    attempt = f"Saved card charged by the platform · €228.30 · Failed: {failed.failure_message}"
    assert attempt in html
    assert not Payment.objects.exists()
    assert 'id="charge-card"' in html  # still due: another try, or a bank transfer


def page_and_forced_charge(client, invoice) -> tuple[str, str]:
    """The invoice's page, then what a charge posted anyway answers."""
    page = text(client.get(page_of(invoice)))
    return page, text(client.post(page_of(invoice, "charge-saved-card"), follow=True))


def test_no_saved_card_no_charge_button_and_a_forced_charge_says_why(
    accountant, issued, billing, stripe_keys
):
    payments.ensure_customer(billing.a.org, stripe_keys)  # a customer, no card

    page, refused = page_and_forced_charge(accountant, issued)

    assert 'id="charge-card"' not in page
    assert "This organization has no saved card; ask it to pay online." in refused
    assert not CardPayment.objects.exists()


def test_a_paid_invoice_is_not_charged_again(accountant, issued, billing, stripe_keys):
    card_saved_at_stripe(stripe_keys, billing.a.org)
    services.record_payment(invoice=issued, by=billing.a.accountant)

    page, refused = page_and_forced_charge(accountant, issued)

    assert 'id="charge-card"' not in page
    assert "This invoice is already paid." in refused
    assert not CardPayment.objects.exists()


def test_without_stripe_no_charge_button_and_a_forced_charge_says_so(
    accountant, issued, billing, settings
):
    settings.STRIPE_SECRET_KEY = ""

    page, refused = page_and_forced_charge(accountant, issued)

    assert 'id="charge-card"' not in page
    assert "Card payments are not set up on this fabpool; pay by bank transfer." in refused
    assert not CardPayment.objects.exists()


def test_managers_see_no_charge_button_and_are_refused(client, issued, billing, stripe_keys):
    card_saved_at_stripe(stripe_keys, billing.a.org)
    client.force_login(billing.a.manager)

    page, refused = page_and_forced_charge(client, issued)

    assert 'id="charge-card"' not in page and "saved a card" not in page
    assert "Only this platform's staff (accountant) may do this." in refused
    assert not CardPayment.objects.exists()


def test_another_platforms_or_smes_people_get_404_on_charging_a_saved_card(
    client, issued, billing, stripe_unreachable
):
    own_desk = f"/billing/platforms/{billing.b.platform.pk}/documents/{issued.pk}/"
    for user in (
        billing.b.accountant,
        billing.a.operator,
        billing.a.org_accountant,
        billing.a.org_admin,
    ):
        client.force_login(user)
        assert client.post(page_of(issued, "charge-saved-card")).status_code == 404
        assert client.post(f"{own_desk}charge-saved-card/").status_code == 404
    assert not CardPayment.objects.exists()


def test_the_charge_button_needs_its_csrf_token(issued, billing, stripe_unreachable):
    client = Client(enforce_csrf_checks=True)
    client.force_login(billing.a.accountant)

    assert client.post(page_of(issued, "charge-saved-card")).status_code == 403
    assert not CardPayment.objects.exists()


@pytest.mark.parametrize("n", [1, 6])
def test_an_invoice_with_a_saved_card_costs_the_same_queries_for_1_or_6_card_attempts(
    accountant, issued, billing, stripe_keys, n, django_assert_max_num_queries
):
    for attempt in range(1, n + 1):
        CardPayment.objects.create(
            invoice=issued, attempt=attempt, amount=Decimal("228.30"), currency="EUR"
        )
    card_saved_at_stripe(stripe_keys, billing.a.org)

    with django_assert_max_num_queries(15):
        response = accountant.get(page_of(issued))

    assert len(response.context["card_payments"]) == n
    assert response.context["saved_card"].last4 == "4242"
