"""Accountants' exports of a platform's period: the FEC file (columns, format,
balanced entries, credit notes reversed, configurable accounts), invoices and
lines as CSV and XLSX (the same table), the VAT summary, a ZIP of the PDFs;
who may take which; the export_invoices command."""

import csv
import io
import re
import zipfile
from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from openpyxl import load_workbook

from billing import exports, services
from billing.models import Invoice
from tests import factories
from tests.billing.conftest import booking, paris
from tests.billing.support import draft_of, run

API = "/api/v1"
NOVEMBER = exports.Period.month(date(2026, 11, 1))
FEC_HEADER = (
    "JournalCode\tJournalLib\tEcritureNum\tEcritureDate\tCompteNum\tCompteLib\tCompAuxNum\t"
    "CompAuxLib\tPieceRef\tPieceDate\tEcritureLib\tDebit\tCredit\tEcritureLet\tDateLet\t"
    "ValidDate\tMontantdevise\tIdevise"
)


@pytest.fixture
def period(billing):
    """On platform A in November 2026: SME a's October invoice (107.13 + 21.43 =
    128.56) issued on 3 November, a partial credit note of its first line issued on
    10 November, and a draft (never exported); an invoice issued in December (outside)."""
    a = billing.a
    booking(a, paris(5, 9), paris(5, 10, 10))
    booking(a, paris(6, 9), paris(6, 9, 20))
    run(billing)
    a.invoice = services.issue_invoice(
        invoice=draft_of(a), by=a.accountant, issue_date=date(2026, 11, 3)
    )
    note = services.create_credit_note(invoice=a.invoice, by=a.accountant)
    for line in list(note.lines.order_by("pk"))[1:]:
        services.remove_line(line=line, by=a.accountant)
    a.credit_note = services.issue_invoice(
        invoice=note, by=a.accountant, issue_date=date(2026, 11, 10)
    )
    booking(a, paris(5, 9, month=11), paris(5, 10, month=11))
    run(billing, month=date(2026, 11, 1))
    a.draft = Invoice.objects.get(period_start=date(2026, 11, 1))
    booking(a, paris(5, 9, month=12), paris(5, 10, month=12))
    run(billing, month=date(2026, 12, 1))
    a.december = services.issue_invoice(
        invoice=Invoice.objects.get(period_start=date(2026, 12, 1)),
        by=a.accountant,
        issue_date=date(2026, 12, 31),
    )
    return billing


def fec_rows(content: bytes) -> tuple[str, list[list[str]]]:
    text = content.decode("utf-8")
    lines = text.split("\r\n")
    assert lines[-1] == ""  # every line ends with CRLF
    return lines[0], [line.split("\t") for line in lines[1:-1]]


def cents(text: str) -> Decimal:
    assert re.fullmatch(r"\d+,\d{2}", text), text
    return Decimal(text.replace(",", "."))


# --- FEC ---------------------------------------------------------------------------------------


def test_the_fec_has_the_18_legal_columns_in_order_dates_yyyymmdd_and_decimal_commas(period):
    rendered = exports.FEC(period.a.platform, NOVEMBER).render()

    header, rows = fec_rows(rendered.content)
    assert header == FEC_HEADER
    assert rendered.filename == "732829320FEC20261130.txt"  # SIREN FEC closing date
    assert rows and all(len(row) == 18 for row in rows)
    for row in rows:
        entry = dict(zip(FEC_HEADER.split("\t"), row, strict=True))
        for field in ("EcritureDate", "PieceDate", "ValidDate"):
            assert re.fullmatch(r"2026(0[1-9]|1[0-2])\d\d", entry[field]), entry
        cents(entry["Debit"]), cents(entry["Credit"])
        assert (entry["Montantdevise"], entry["Idevise"]) == ("", "")  # euros


def test_each_fec_entry_balances_and_so_does_the_file(period):
    _header, rows = fec_rows(exports.FEC(period.a.platform, NOVEMBER).render().content)

    per_entry = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for row in rows:
        per_entry[row[2]][0] += cents(row[11])
        per_entry[row[2]][1] += cents(row[12])
    assert sorted(per_entry) == ["1", "2"]  # the invoice and the credit note; no draft
    for debit, credit in per_entry.values():
        assert debit == credit
    assert sum(d for d, _c in per_entry.values()) == sum(c for _d, c in per_entry.values())


def test_an_invoice_debits_the_smes_customer_account_and_a_credit_note_reverses_it(period):
    a = period.a
    _header, rows = fec_rows(exports.FEC(a.platform, NOVEMBER).render().content)
    invoice_rows = [r for r in rows if r[8] == a.invoice.number]
    note_rows = [r for r in rows if r[8] == a.credit_note.number]
    aux = f"C{a.org.pk:06d}"

    assert [(r[4], r[6], r[11], r[12]) for r in invoice_rows] == [
        ("411", aux, "128,56", "0,00"),
        ("706", "", "0,00", "107,13"),
        ("44571", "", "0,00", "21,43"),
    ]
    assert invoice_rows[0][7] == "SME a" and invoice_rows[0][3] == "20261103"
    total = a.credit_note.total_with_tax
    assert [(r[4], r[6], cents(r[11]), cents(r[12])) for r in note_rows] == [
        ("411", aux, Decimal(0), total),
        ("706", "", a.credit_note.total_without_tax, Decimal(0)),
        ("44571", "", a.credit_note.total_vat, Decimal(0)),
    ]
    assert note_rows[0][10].startswith("Avoir ")


def test_fec_account_codes_come_from_the_platforms_billing_settings(period):
    settings = period.a.settings
    settings.journal_code, settings.customer_account = "VT", "41100000"
    settings.revenue_account, settings.vat_account = "70600000", "44571200"
    settings.customer_auxiliary_prefix = "CLI"
    settings.save()

    _header, rows = fec_rows(exports.FEC(period.a.platform, NOVEMBER).render().content)

    assert {r[0] for r in rows} == {"VT"}
    assert {r[4] for r in rows} == {"41100000", "70600000", "44571200"}
    assert {r[6] for r in rows} - {""} == {f"CLI{period.a.org.pk:06d}"}


# --- Lines, VAT, PDFs --------------------------------------------------------------------------


def test_the_csv_and_the_xlsx_hold_the_same_table(period):
    platform = period.a.platform
    csv_rows = list(
        csv.reader(io.StringIO(exports.InvoiceLinesCSV(platform, NOVEMBER).content().decode()))
    )
    sheet = load_workbook(io.BytesIO(exports.InvoiceLinesXLSX(platform, NOVEMBER).content())).active
    xlsx_rows = [[cell or "" for cell in row] for row in sheet.iter_rows(values_only=True)]

    assert csv_rows[0][0] == "\ufeffnumber"
    csv_rows[0][0] = "number"
    assert csv_rows == xlsx_rows
    numbers = {row[0] for row in csv_rows[1:]}
    assert numbers == {period.a.invoice.number, period.a.credit_note.number}
    note_amounts = [Decimal(row[16]) for row in csv_rows[1:] if row[1] == "credit_note"]
    assert note_amounts == [-period.a.credit_note.total_without_tax]


def test_the_vat_summary_gives_base_vat_and_total_per_rate_net_of_credit_notes(period):
    a = period.a
    content = exports.VatSummaryCSV(a.platform, NOVEMBER).content().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(content)))

    base = a.invoice.total_without_tax - a.credit_note.total_without_tax
    vat = a.invoice.total_vat - a.credit_note.total_vat
    assert rows == [
        ["vat_rate", "base_without_tax", "vat", "total_with_tax"],
        ["20.00", f"{base:.2f}", f"{vat:.2f}", f"{base + vat:.2f}"],
        ["total", f"{base:.2f}", f"{vat:.2f}", f"{base + vat:.2f}"],
    ]


def test_the_zip_holds_one_pdf_per_issued_document_of_the_period(period):
    content = exports.PdfZip(period.a.platform, NOVEMBER).content()

    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(
            [f"{period.a.invoice.number}.pdf", f"{period.a.credit_note.number}.pdf"]
        )
        assert all(archive.read(name).startswith(b"%PDF-") for name in names)


def test_a_date_range_selects_by_issue_date(period):
    december = exports.Period(date(2026, 11, 5), date(2026, 12, 31))
    _header, rows = fec_rows(exports.FEC(period.a.platform, december).render().content)
    assert {r[8] for r in rows} == {period.a.credit_note.number, period.a.december.number}


# --- API ---------------------------------------------------------------------------------------


def get_export(api, platform, export, **params):
    return api.get(
        f"{API}/invoice-exports/",
        {"platform": platform.pk, "export": export, "month": "2026-11", **params},
    )


def test_a_platform_accountant_downloads_every_export(api, period):
    api.as_user(period.a.accountant)
    for export, media in (
        ("csv", "text/csv; charset=utf-8"),
        ("xlsx", exports.XLSX_MEDIA),
        ("vat", "text/csv; charset=utf-8"),
        ("fec", "text/plain; charset=utf-8"),
        ("zip", "application/zip"),
    ):
        response = get_export(api, period.a.platform, export)
        assert (export, response.status_code, response["Content-Type"]) == (export, 200, media)
        assert "attachment" in response["Content-Disposition"]
    fec = get_export(api, period.a.platform, "fec")
    assert fec.content.decode().startswith("JournalCode\t")


def test_an_sme_accountant_downloads_its_own_documents_only(api, period):
    a = period.a
    other = factories.OrganizationFactory(legal_name="SME other")
    factories.PlatformMembershipFactory(organization=other, platform=a.platform)
    draft = Invoice.objects.create(platform=a.platform, organization=other)
    services.add_line(
        invoice=draft,
        by=a.accountant,
        description="Training",
        quantity=Decimal(1),
        unit="unit",
        unit_price=Decimal(100),
    )
    theirs = services.issue_invoice(invoice=draft, by=a.accountant, issue_date=date(2026, 11, 4))
    api.as_user(a.org_accountant)

    listed = get_export(api, a.platform, "csv")
    assert listed.status_code == 200
    numbers = {row[0] for row in csv.reader(io.StringIO(listed.content.decode("utf-8-sig")))}
    assert a.invoice.number in numbers and theirs.number not in numbers
    with zipfile.ZipFile(io.BytesIO(get_export(api, a.platform, "zip").content)) as archive:
        assert f"{theirs.number}.pdf" not in archive.namelist()
        assert f"{a.invoice.number}.pdf" in archive.namelist()
    # The platform's books are the platform's.
    for export in ("fec", "vat"):
        assert get_export(api, a.platform, export).status_code == 403


@pytest.mark.parametrize(
    ("who", "status"),
    [("org_member", 403), ("operator", 403), ("manager", 200), ("org_admin", 200)],
)
def test_who_may_take_the_invoice_list(api, period, who, status):
    api.as_user(getattr(period.a, who))
    assert get_export(api, period.a.platform, "csv").status_code == status


def test_another_platform_is_a_400_that_does_not_exist(api, period):
    api.as_user(period.a.accountant)
    response = get_export(api, period.b.platform, "fec")
    assert response.status_code == 400
    assert "does not exist" in response.json()["error"]["details"]["fields"]["platform"][0]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"month": "2026-13"}, "month"),
        ({"month": "", "start": "2026-11-01"}, "end"),
        ({"month": "2026-11", "start": "2026-11-01"}, "month"),
        ({"export": "pdf"}, "export"),
    ],
)
def test_bad_periods_and_exports_are_400s_naming_the_field(api, period, params, field):
    api.as_user(period.a.accountant)
    query = {"platform": period.a.platform.pk, "export": "csv", "month": "2026-11", **params}
    query = {k: v for k, v in query.items() if v != ""}
    response = api.get(f"{API}/invoice-exports/", query)
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]


# --- Command -----------------------------------------------------------------------------------


def test_export_invoices_writes_the_file(period, tmp_path):
    output = tmp_path / "fec.txt"
    call_command(
        "export_invoices",
        "--platform",
        period.a.platform.slug,
        "--month",
        "2026-11",
        "--format",
        "fec",
        "--output",
        str(output),
    )
    assert output.read_bytes() == exports.FEC(period.a.platform, NOVEMBER).render().content

    with pytest.raises(CommandError):
        call_command(
            "export_invoices",
            "--platform",
            period.a.platform.slug,
            "--month",
            "2026-1",
            "--format",
            "csv",
            "--output",
            str(output),
        )
