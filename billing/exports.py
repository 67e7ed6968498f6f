"""What accountants take away for a platform and a period of issue dates: the
documents and their lines (CSV, XLSX), a VAT summary, the French FEC file and a
ZIP of the documents' PDFs.

Each export is a small class with an `identifier` and a `render()` (as pretix's
exporters): the API and `manage.py export_invoices` pick one by its identifier.
Only issued documents are exported, from their issued rows. In the tables a
credit note's amounts are negative, so that columns add up to what was billed."""

import csv
import io
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Prefetch
from django.utils.translation import gettext as _
from openpyxl import Workbook

from billing import documents
from billing.models import BillingSettings, Invoice, InvoiceLine
from core.errors import Conflict, Forbidden
from core.models import Membership
from equipment import permissions as perms
from equipment.models import Platform, PlatformStaff

CSV_MEDIA = "text/csv"
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEXT_MEDIA = "text/plain"
ZIP_MEDIA = "application/zip"


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @classmethod
    def month(cls, first: date) -> "Period":
        first = first.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return cls(first, following - timedelta(days=1))

    @property
    def label(self) -> str:
        if self == Period.month(self.start):
            return f"{self.start:%Y-%m}"
        return f"{self.start:%Y%m%d}-{self.end:%Y%m%d}"


@dataclass(frozen=True)
class ExportFile:
    filename: str
    media_type: str
    content: bytes


def issued_documents(platform: Platform, period: Period, invoices=None):
    """The platform's issued invoices and credit notes dated in the period, in
    the order they were issued, with their lines. `invoices` narrows to what a
    caller sees (an SME: its own)."""
    queryset = Invoice.objects.all() if invoices is None else invoices
    return (
        queryset.filter(
            platform=platform,
            status=Invoice.Status.ISSUED,
            issue_date__gte=period.start,
            issue_date__lte=period.end,
        )
        .select_related("credited_invoice")
        .prefetch_related(
            Prefetch("lines", queryset=InvoiceLine.objects.order_by("service_date", "pk"))
        )
        .order_by("chain_index")
    )


def _sign(invoice: Invoice) -> int:
    return -1 if invoice.kind == Invoice.Kind.CREDIT_NOTE else 1


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


class Exporter:
    identifier: str = ""
    verbose_name: str = ""
    media_type: str = ""
    extension: str = ""

    def __init__(self, platform: Platform, period: Period, invoices=None):
        self.platform = platform
        self.period = period
        self.invoices = invoices

    def documents(self):
        return issued_documents(self.platform, self.period, self.invoices)

    def filename(self) -> str:
        return f"{self.platform.slug}-{self.identifier}-{self.period.label}.{self.extension}"

    def render(self) -> ExportFile:
        return ExportFile(self.filename(), self.media_type, self.content())

    def content(self) -> bytes:  # pragma: no cover - every exporter defines it
        raise NotImplementedError


# --- Documents and their lines -----------------------------------------------------------------

LINE_COLUMNS = [
    "number",
    "kind",
    "issue_date",
    "due_date",
    "credited_invoice",
    "organization_id",
    "buyer_name",
    "buyer_siret",
    "buyer_vat_number",
    "line",
    "description",
    "service_date",
    "quantity",
    "unit",
    "unit_price",
    "vat_rate",
    "amount_without_tax",
    "invoice_total_without_tax",
    "invoice_total_vat",
    "invoice_total_with_tax",
    "currency",
]


def line_rows(invoices) -> list[list[str]]:
    """One row per line, with its document's columns (credit notes negative)."""
    rows = []
    for invoice in invoices:
        sign = _sign(invoice)
        for index, line in enumerate(invoice.lines.all(), start=1):
            rows.append(
                [
                    invoice.number,
                    invoice.kind,
                    invoice.issue_date.isoformat(),
                    invoice.due_date.isoformat() if invoice.due_date else "",
                    invoice.credited_invoice.number if invoice.credited_invoice_id else "",
                    str(invoice.organization_id),
                    invoice.buyer_name,
                    invoice.buyer_siret,
                    invoice.buyer_vat_number,
                    str(index),
                    line.description,
                    line.service_date.isoformat() if line.service_date else "",
                    f"{line.quantity.normalize():f}",
                    line.unit,
                    f"{line.unit_price.normalize():f}",
                    f"{line.vat_rate:.2f}",
                    _money(sign * line.amount),
                    _money(sign * invoice.total_without_tax),
                    _money(sign * invoice.total_vat),
                    _money(sign * invoice.total_with_tax),
                    invoice.currency,
                ]
            )
    return rows


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    # A BOM, so that spreadsheet programs open the accents right.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


class InvoiceLinesCSV(Exporter):
    identifier = "csv"
    verbose_name = "Invoices and their lines (CSV)"
    media_type = CSV_MEDIA
    extension = "csv"

    def content(self) -> bytes:
        return _csv(LINE_COLUMNS, line_rows(self.documents()))


class InvoiceLinesXLSX(Exporter):
    """The CSV's table as a workbook: the same columns and cells (text), so both agree."""

    identifier = "xlsx"
    verbose_name = "Invoices and their lines (Excel)"
    media_type = XLSX_MEDIA
    extension = "xlsx"

    def content(self) -> bytes:
        workbook = Workbook()
        sheet = workbook.active
        sheet.title = "lines"
        sheet.append(LINE_COLUMNS)
        for row in line_rows(self.documents()):
            sheet.append(row)
        out = io.BytesIO()
        workbook.save(out)
        return out.getvalue()


# --- VAT summary -------------------------------------------------------------------------------

VAT_COLUMNS = ["vat_rate", "base_without_tax", "vat", "total_with_tax"]


def vat_summary(invoices) -> list[dict]:
    """Per rate: the documents' bases and VAT as issued (credit notes subtract)."""
    bases, vats = defaultdict(Decimal), defaultdict(Decimal)
    for invoice in invoices:
        sign = _sign(invoice)
        for row in invoice.vat_breakdown:
            rate = Decimal(row["rate"])
            bases[rate] += sign * Decimal(row["base"])
            vats[rate] += sign * Decimal(row["vat"])
    return [
        {"rate": rate, "base": bases[rate], "vat": vats[rate], "total": bases[rate] + vats[rate]}
        for rate in sorted(bases)
    ]


class VatSummaryCSV(Exporter):
    identifier = "vat"
    verbose_name = "VAT summary per rate (CSV)"
    media_type = CSV_MEDIA
    extension = "csv"

    def content(self) -> bytes:
        summary = vat_summary(self.documents())
        rows = [
            [f"{r['rate']:.2f}", _money(r["base"]), _money(r["vat"]), _money(r["total"])]
            for r in summary
        ]
        total = [sum((r[key] for r in summary), Decimal(0)) for key in ("base", "vat", "total")]
        rows.append(["total", *(_money(value) for value in total)])
        return _csv(VAT_COLUMNS, rows)


# --- FEC ---------------------------------------------------------------------------------------

FEC_COLUMNS = [
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
]


def fec_amount(value: Decimal) -> str:
    """Amounts with a decimal comma and no thousands separator: 1234,56."""
    return f"{value:.2f}".replace(".", ",")


def fec_date(value: date) -> str:
    return value.strftime("%Y%m%d")


def _clean(text: str) -> str:
    # A field never holds the separator or a line break.
    return " ".join(text.replace("\t", " ").split())


class FEC(Exporter):
    """The Fichier des Écritures Comptables (art. A47 A-1 of the Livre des
    procédures fiscales) of the sales journal: one balanced entry per document,
    the customer's account (with the SME's auxiliary account) against revenue and
    VAT collected per rate; a credit note's entry is the reverse. Tab-separated,
    UTF-8, dates YYYYMMDD, amounts with a decimal comma."""

    identifier = "fec"
    verbose_name = "FEC (Fichier des écritures comptables)"
    media_type = TEXT_MEDIA
    extension = "txt"

    def __init__(self, platform, period, invoices=None):
        super().__init__(platform, period, invoices)
        self.settings = BillingSettings.objects.filter(platform=platform).first()
        if self.settings is None:
            raise Conflict(
                _("Set up this platform's billing settings first."),
                code="billing_not_configured",
            )

    def filename(self) -> str:
        # SirenFECAAAAMMJJ.txt, the date being the period's last day.
        siren = (self.settings.siret or "")[:9] or self.platform.slug
        return f"{siren}FEC{fec_date(self.period.end)}.txt"

    def entries(self) -> list[list[str]]:
        rows = []
        for number, invoice in enumerate(self.documents(), start=1):
            rows.extend(self.entry(number, invoice))
        return rows

    def entry(self, number: int, invoice: Invoice) -> list[list[str]]:
        """One document's entry: an invoice debits the customer and credits revenue
        and VAT per rate; a credit note the reverse. Balanced by construction: the
        total with tax is the sum of the bases and VATs per rate."""
        s = self.settings
        credit_note = invoice.kind == Invoice.Kind.CREDIT_NOTE
        day = fec_date(invoice.issue_date)
        kind = "Avoir" if credit_note else "Facture"
        label = _clean(f"{kind} {invoice.number} {invoice.buyer_name}")
        foreign = invoice.currency != "EUR"

        def row(account, account_label, amount, aux="", aux_label="", *, debit_side):
            # A negative amount goes to the other side (e.g. a negative base).
            signed = amount if debit_side else -amount
            debit, credit = (signed, Decimal(0)) if signed >= 0 else (Decimal(0), -signed)
            return [
                s.journal_code,
                _clean(s.journal_label),
                str(number),
                day,
                account,
                account_label,
                aux,
                _clean(aux_label),
                invoice.number,
                day,
                label,
                fec_amount(debit),
                fec_amount(credit),
                "",
                "",
                day,
                fec_amount(amount) if foreign else "",
                invoice.currency if foreign else "",
            ]

        rows = [
            row(
                s.customer_account,
                "Clients",
                invoice.total_with_tax,
                f"{s.customer_auxiliary_prefix}{invoice.organization_id:06d}",
                invoice.buyer_name,
                debit_side=not credit_note,
            )
        ]
        for vat in invoice.vat_breakdown:
            rate = vat["rate"].replace(".", ",")
            rows.append(
                row(
                    s.revenue_account,
                    f"Prestations de services TVA {rate} %",
                    Decimal(vat["base"]),
                    debit_side=credit_note,
                )
            )
            if Decimal(vat["vat"]):
                rows.append(
                    row(
                        s.vat_account,
                        f"TVA collectée {rate} %",
                        Decimal(vat["vat"]),
                        debit_side=credit_note,
                    )
                )
        return rows

    def content(self) -> bytes:
        lines = ["\t".join(FEC_COLUMNS)] + ["\t".join(row) for row in self.entries()]
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")


# --- PDFs --------------------------------------------------------------------------------------


class PdfZip(Exporter):
    """Every issued document of the period as its Factur-X PDF, named by its number."""

    identifier = "zip"
    verbose_name = "PDFs of the period's documents (ZIP)"
    media_type = ZIP_MEDIA
    extension = "zip"

    def __init__(self, platform, period, invoices=None, lang: str = documents.DEFAULT_LANGUAGE):
        super().__init__(platform, period, invoices)
        self.lang = lang

    def content(self) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for invoice in self.documents():
                rendered = documents.render_pdf(invoice, self.lang)
                archive.writestr(rendered.filename, rendered.content)
        return out.getvalue()


EXPORTERS: dict[str, type[Exporter]] = {
    cls.identifier: cls for cls in (InvoiceLinesCSV, InvoiceLinesXLSX, VatSummaryCSV, FEC, PdfZip)
}
# What an SME's administrators and accountants may take: their own documents.
SME_EXPORTS = ("csv", "xlsx", "zip")


# --- Who takes what ----------------------------------------------------------------------------


def export_for(*, user, platform: Platform, period: Period, identifier: str, **options):
    """The exporter `user` may run: a platform's accountants (and managers) take
    every export of its documents; an SME's administrators and accountants take
    the list and the PDFs of their own organization's issued documents."""
    cls = EXPORTERS[identifier]
    finance = {PlatformStaff.Role.MANAGER, PlatformStaff.Role.ACCOUNTANT}
    if perms.has_platform_role(user, platform, finance):
        return cls(platform, period, **options)
    if identifier not in SME_EXPORTS:
        raise Forbidden(_("Only this platform's accountants and managers take this export."))
    if not _sme_finance(user):
        raise Forbidden(_("Only accountants and administrators take invoice exports."))
    return cls(platform, period, invoices=Invoice.objects.visible_to(user), **options)


def _sme_finance(user) -> bool:
    roles = (Membership.Role.ADMIN, Membership.Role.ACCOUNTANT)
    return Membership.objects.filter(user=user, role__in=roles).exists()
