"""Issued invoices and credit notes as PDF/A-3 files with their Factur-X
(EN 16931, CII) XML embedded.

Rendered on demand, never stored: everything printed comes from the issued
document's own rows (the invoice's copied identities, dates, mentions, totals and
its lines), which never change (model guards and database triggers) and are
covered by the hash chain. So the same document always gives the same XML, byte
for byte, and the same printed content; only the PDF container's timestamps
(set by the factur-x library) say when this copy was produced. Storing the bytes
would add blobs to keep and back up without making the document any more fixed
than its rows already are; what changes a rendering is a change of this code or
template, which is reviewed like any other.

The printed wording is in French by default (French law wants the legal
mentions in French) or English. Its labels are the table below rather than the
translation catalogue: a legal document must never fall back to another language
because a catalogue entry is missing."""

import copy
from dataclasses import dataclass
from decimal import Decimal

import facturx
from django.template.loader import render_to_string
from django.utils import translation

from billing.models import LATE_PAYMENT_MENTIONS, Invoice, InvoiceLine
from core.errors import Conflict

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"

# UN/ECE Recommendation 20 unit codes (BT-130) for the units billing writes.
UNIT_CODES = {
    "h": "HUR",
    "hour": "HUR",
    "min": "MIN",
    "g": "GRM",
    "kg": "KGM",
    "ml": "MLT",
    "l": "LTR",
    "m": "MTR",
    "cm": "CMT",
    "m2": "MTK",
}
PIECE = "C62"  # "one": bookings, fees, sheets, anything counted

LABELS = {
    "fr": {
        "colon": "\u00a0:",
        "invoice": "Facture",
        "credit_note": "Avoir",
        "number": "N°",
        "issue_date": "Date d'émission",
        "due_date": "Date d'échéance",
        "period": "Période facturée",
        "seller": "Vendeur",
        "buyer": "Client",
        "siret": "SIRET",
        "vat_number": "N° TVA intracommunautaire",
        "corrects": "Avoir portant sur la facture",
        "of": "du",
        "description": "Désignation",
        "date": "Date",
        "quantity": "Quantité",
        "unit": "Unité",
        "unit_price": "Prix unitaire HT",
        "vat_rate": "TVA",
        "amount": "Montant HT",
        "vat_summary": "Récapitulatif de la TVA",
        "rate": "Taux",
        "base": "Base HT",
        "vat": "TVA",
        "total_without_tax": "Total HT",
        "total_vat": "Total TVA",
        "total_with_tax": "Total TTC",
        "amount_due": "Net à payer",
        "amount_credited": "Montant de l'avoir",
        "payment_terms": "Conditions de paiement",
        "payment_terms_text": "paiement à {days} jours à compter de la date d'émission, "
        "au plus tard le {due}.",
        "late_payment": "Pénalités de retard",
        "hash": "Empreinte",
        "units": {"h": "h", "unit": "unité", "g": "g", "ml": "ml"},
        "default_mentions": (
            "Paiement à l'échéance ; pas d'escompte pour paiement anticipé. Tout retard de "
            "paiement entraîne des pénalités égales à trois fois le taux d'intérêt légal "
            "(art. L441-10 du Code de commerce) et une indemnité forfaitaire de 40 € pour "
            "frais de recouvrement (art. D441-5)."
        ),
    },
    "en": {
        "colon": ":",
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "number": "No.",
        "issue_date": "Issue date",
        "due_date": "Due date",
        "period": "Billed period",
        "seller": "Seller",
        "buyer": "Customer",
        "siret": "SIRET",
        "vat_number": "VAT number",
        "corrects": "Credit note for invoice",
        "of": "of",
        "description": "Description",
        "date": "Date",
        "quantity": "Quantity",
        "unit": "Unit",
        "unit_price": "Unit price excl. VAT",
        "vat_rate": "VAT",
        "amount": "Amount excl. VAT",
        "vat_summary": "VAT summary",
        "rate": "Rate",
        "base": "Base excl. VAT",
        "vat": "VAT",
        "total_without_tax": "Total excl. VAT",
        "total_vat": "Total VAT",
        "total_with_tax": "Total incl. VAT",
        "amount_due": "Amount due",
        "amount_credited": "Amount credited",
        "payment_terms": "Payment terms",
        "payment_terms_text": "payment within {days} days of the issue date, by {due} at the "
        "latest.",
        "late_payment": "Late payment",
        "hash": "Fingerprint",
        "units": {"h": "h", "unit": "unit", "g": "g", "ml": "ml"},
        "default_mentions": None,  # the stored (English) text
    },
}


class DraftHasNoDocument(Conflict):
    code = "invoice_draft"


def language_for(requested: str | None, user=None) -> str:
    """?lang= first, then the user's language, then French."""
    for candidate in (requested, getattr(user, "language", None)):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


# --- Formatting ------------------------------------------------------------------------------


def _amount(value: Decimal, lang: str, places: int = 2) -> str:
    text = f"{Decimal(value):,.{places}f}"
    if lang == "fr":
        # 1 234,56 (narrow no-break space between thousands, as French typography wants)
        return text.replace(",", "\u202f").replace(".", ",")
    return text


def _price(value: Decimal, lang: str) -> str:
    """A unit price to 2 places, or up to 4 where it has them (0.045 €/g)."""
    value = Decimal(value)
    places = 2 if value == value.quantize(Decimal("0.01")) else 4
    return _amount(value.normalize() if places == 4 else value, lang, places)


def _quantity(value: Decimal, lang: str) -> str:
    text = f"{Decimal(value).normalize():f}"
    return text.replace(".", ",") if lang == "fr" else text


def _date(value, lang: str) -> str:
    if value is None:
        return ""
    return value.strftime("%d/%m/%Y") if lang == "fr" else value.isoformat()


def _money_text(value: Decimal, currency: str, lang: str) -> str:
    symbol = "€" if currency == "EUR" else currency
    amount = _amount(value, lang)
    return f"{amount}\u00a0{symbol}" if lang == "fr" else f"{symbol}\u00a0{amount}"


# --- Factur-X --------------------------------------------------------------------------------


def _party(name: str, address: str, country: str, siret: str, vat: str) -> dict:
    """A party from the issued text block: street lines, then "postcode city"."""
    rows = [row.strip() for row in address.splitlines() if row.strip()]
    postcode, city = "", ""
    if rows:
        postcode, _sep, city = rows[-1].partition(" ")
        rows = rows[:-1]
    party = {"name": name, "country_code": country or "FR"}
    if postcode:
        party["postcode"] = postcode
    if city:
        party["city"] = city
    for key, row in zip(("addr_l1", "addr_l2", "addr_l3"), rows, strict=False):
        party[key] = row
    if siret:
        # ISO 6523 ICD 0009: SIRET
        party["legal_identifier"] = siret
        party["legal_identifier_schemeid"] = "0009"
    if vat:
        party["vat_identifier"] = vat
    return party


def _category(rate: Decimal) -> str:
    return "S" if Decimal(rate) > 0 else "Z"


def _xml_line(index: int, line: InvoiceLine) -> dict:
    # EN 16931 wants non-negative prices (BR-27): a negative line (a funded share)
    # is a negative quantity at a positive price.
    quantity, price = Decimal(line.quantity), Decimal(line.unit_price)
    if price < 0:
        quantity, price = -quantity, -price
    row = {
        "BT-126": str(index),
        "BT-129": f"{quantity:.4f}",
        "BT-130": UNIT_CODES.get(line.unit.lower(), PIECE),
        "BT-131": f"{line.amount:.2f}",
        "BT-146": f"{price:.4f}",
        "BT-151": _category(line.vat_rate),
        "BT-152": f"{line.vat_rate:.2f}",
        "BT-153": line.description[:200],
    }
    if line.service_date:
        row["BT-134"] = row["BT-135"] = line.service_date
    return row


def cii_data(invoice: Invoice, lines: list[InvoiceLine]) -> dict:
    """The EN 16931 fields of an issued document, keyed by their BT/BG codes."""
    data = {
        "BT-1": invoice.number,
        "BT-2": invoice.issue_date,
        "BT-3": "381" if invoice.kind == Invoice.Kind.CREDIT_NOTE else "380",
        "BT-5": invoice.currency,
        "BT-9": invoice.due_date,
        # Services: delivered over the billed period (its last day), else on the issue date.
        "BT-72": invoice.period_end or invoice.issue_date,
        "BT-20": f"{invoice.payment_terms_days} days net",
        "BG-1": [{"BT-21": "PMD", "BT-22": invoice.late_payment_mentions}],
        "BG-4": _party(
            invoice.seller_name,
            invoice.seller_address,
            invoice.seller_country,
            invoice.seller_siret,
            invoice.seller_vat_number,
        ),
        "BG-7": _party(
            invoice.buyer_name,
            invoice.buyer_address,
            invoice.buyer_country,
            invoice.buyer_siret,
            invoice.buyer_vat_number,
        ),
        "BG-25": [_xml_line(i, line) for i, line in enumerate(lines, start=1)],
        "BG-23": [
            {
                "BT-116": row["base"],
                "BT-117": row["vat"],
                "BT-118": _category(Decimal(row["rate"])),
                "BT-119": row["rate"],
            }
            for row in invoice.vat_breakdown
        ],
        "BT-106": f"{sum((line.amount for line in lines), Decimal(0)):.2f}",
        "BT-109": f"{invoice.total_without_tax:.2f}",
        "BT-110": f"{invoice.total_vat:.2f}",
        "BT-112": f"{invoice.total_with_tax:.2f}",
        "BT-115": f"{invoice.total_with_tax:.2f}",
    }
    if invoice.period_start and invoice.period_end:
        data["BT-73"], data["BT-74"] = invoice.period_start, invoice.period_end
    if invoice.kind == Invoice.Kind.CREDIT_NOTE and invoice.credited_invoice_id:
        credited = invoice.credited_invoice
        data["BG-3"] = [{"BT-25": credited.number, "BT-26": credited.issue_date}]
    return data


def cii_xml(invoice: Invoice, lines: list[InvoiceLine] | None = None) -> bytes:
    lines = _lines(invoice) if lines is None else lines
    # The library edits the dict it is given.
    return facturx.generate_cii_xml(
        copy.deepcopy(cii_data(invoice, lines)), level="en16931", check_schematron=False
    )


# --- PDF -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    filename: str
    content: bytes
    media_type: str = "application/pdf"


def _lines(invoice: Invoice) -> list[InvoiceLine]:
    # By date then id (the model's ordering); from the prefetch an export made.
    return list(invoice.lines.all())


def _mentions(invoice: Invoice, labels: dict) -> str:
    """The stored mentions; the default text in the document's language. The default
    is stored in whichever language was active when the settings were made (it is
    translated), so it is recognised in every language."""
    defaults = {}
    for code in LANGUAGES:
        with translation.override(code):
            defaults[code] = str(LATE_PAYMENT_MENTIONS)
    if invoice.late_payment_mentions.strip() in defaults.values():
        return labels["default_mentions"] or defaults["en"]
    return invoice.late_payment_mentions


def html(invoice: Invoice, lang: str, lines: list[InvoiceLine] | None = None) -> str:
    lines = _lines(invoice) if lines is None else lines
    labels = LABELS[lang]
    currency = invoice.currency
    is_credit = invoice.kind == Invoice.Kind.CREDIT_NOTE
    credited = invoice.credited_invoice if is_credit else None
    context = {
        "lang": lang,
        "l": labels,
        "invoice": invoice,
        "title": labels["credit_note" if is_credit else "invoice"],
        "issue_date": _date(invoice.issue_date, lang),
        "due_date": _date(invoice.due_date, lang),
        "period": (
            f"{_date(invoice.period_start, lang)} – {_date(invoice.period_end, lang)}"
            if invoice.period_start and invoice.period_end
            else ""
        ),
        "credited": credited,
        "credited_date": _date(credited.issue_date, lang) if credited else "",
        "seller_address": invoice.seller_address.splitlines(),
        "buyer_address": invoice.buyer_address.splitlines(),
        "lines": [
            {
                "description": line.description,
                "date": _date(line.service_date, lang),
                "quantity": _quantity(line.quantity, lang),
                "unit": labels["units"].get(line.unit, line.unit),
                "unit_price": _price(line.unit_price, lang),
                "vat_rate": f"{_amount(line.vat_rate, lang)}\u00a0%",
                "amount": _amount(line.amount, lang),
            }
            for line in lines
        ],
        "vat_rows": [
            {
                "rate": f"{_amount(Decimal(row['rate']), lang)}\u00a0%",
                "base": _money_text(Decimal(row["base"]), currency, lang),
                "vat": _money_text(Decimal(row["vat"]), currency, lang),
            }
            for row in invoice.vat_breakdown
        ],
        "total_without_tax": _money_text(invoice.total_without_tax, currency, lang),
        "total_vat": _money_text(invoice.total_vat, currency, lang),
        "total_with_tax": _money_text(invoice.total_with_tax, currency, lang),
        "payment_terms": labels["payment_terms_text"].format(
            days=invoice.payment_terms_days, due=_date(invoice.due_date, lang)
        ),
        "mentions": _mentions(invoice, labels),
    }
    return render_to_string("billing/invoice_pdf.html", context)


def render_pdf(invoice: Invoice, lang: str = DEFAULT_LANGUAGE) -> Rendered:
    """The issued document as a Factur-X PDF (PDF/A-3b with its CII XML attached)."""
    import weasyprint  # heavy (pango, fonts): loaded when a PDF is asked for

    if not invoice.is_issued:
        raise DraftHasNoDocument(
            translation.gettext("A draft has no PDF; issue it first."), code="invoice_draft"
        )
    lines = _lines(invoice)
    pdf = weasyprint.HTML(string=html(invoice, lang, lines)).write_pdf(pdf_variant="pdf/a-3b")
    xml = cii_xml(invoice, lines)
    labels = LABELS[lang]
    title = f"{labels['credit_note' if invoice.kind == 'credit_note' else 'invoice']} "
    content = facturx.generate_from_binary(
        pdf,
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        lang=lang,
        pdf_metadata={
            "author": invoice.seller_name,
            "keywords": "Factur-X",
            "title": f"{title}{invoice.number}",
            "subject": f"{title}{invoice.number} – {invoice.buyer_name}",
        },
    )
    return Rendered(filename=f"{invoice.number}.pdf", content=content)
