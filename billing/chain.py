"""The hash chain of a platform's issued documents: each document's sha256
covers its canonical content and the previous document's hash, so editing,
removing or reordering any issued row shows (`manage.py verify_invoice_chain`)."""

import hashlib
import json
from collections import defaultdict

from billing.models import Invoice, InvoiceLine


def _money(value) -> str:
    return f"{value:.2f}"


def canonical(invoice: Invoice, lines: list[InvoiceLine]) -> bytes:
    """Everything an issued document says, in a form that is the same whatever
    the database (decimals at fixed places, dates in ISO, keys sorted)."""
    content = {
        "platform": invoice.platform_id,
        "organization": invoice.organization_id,
        "kind": invoice.kind,
        "number": invoice.number,
        "chain_index": invoice.chain_index,
        "previous_hash": invoice.previous_hash,
        "credited_invoice": invoice.credited_invoice_id,
        "period": [str(invoice.period_start or ""), str(invoice.period_end or "")],
        "issue_date": str(invoice.issue_date),
        "due_date": str(invoice.due_date),
        "payment_terms_days": invoice.payment_terms_days,
        "late_payment_mentions": invoice.late_payment_mentions,
        "currency": invoice.currency,
        "seller": [
            invoice.seller_name,
            invoice.seller_address,
            invoice.seller_country,
            invoice.seller_siret,
            invoice.seller_vat_number,
        ],
        "buyer": [
            invoice.buyer_name,
            invoice.buyer_address,
            invoice.buyer_country,
            invoice.buyer_siret,
            invoice.buyer_vat_number,
        ],
        "totals": [
            _money(invoice.total_without_tax),
            _money(invoice.total_vat),
            _money(invoice.total_with_tax),
        ],
        "vat_breakdown": invoice.vat_breakdown,
        "lines": [
            [
                line.pk,
                line.kind,
                line.description,
                str(line.service_date or ""),
                f"{line.quantity:.4f}",
                line.unit,
                f"{line.unit_price:.4f}",
                f"{line.vat_rate:.2f}",
                _money(line.amount),
                line.booking_id,
            ]
            for line in sorted(lines, key=lambda line: line.pk)
        ],
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def document_hash(invoice: Invoice, lines: list[InvoiceLine]) -> str:
    return hashlib.sha256(invoice.previous_hash.encode() + canonical(invoice, lines)).hexdigest()


def verify(platform_id: int | None = None) -> list[str]:
    """Every break in the chains (and in the number series): an empty list when intact."""
    documents = Invoice.objects.filter(status=Invoice.Status.ISSUED).order_by(
        "platform_id", "chain_index"
    )
    if platform_id is not None:
        documents = documents.filter(platform_id=platform_id)
    lines = defaultdict(list)
    for line in InvoiceLine.objects.filter(invoice__in=documents.values("pk")):
        lines[line.invoice_id].append(line)
    problems = []
    previous_by_platform: dict[int, Invoice] = {}
    numbers = defaultdict(list)
    for document in documents:
        previous = previous_by_platform.get(document.platform_id)
        expected_index = previous.chain_index + 1 if previous else 1
        expected_previous = previous.hash if previous else ""
        name = document.number or f"#{document.pk}"
        if document.chain_index != expected_index:
            problems.append(
                f"{name}: position {document.chain_index} in the chain, expected {expected_index} "
                "(a document is missing or was reordered)"
            )
        if document.previous_hash != expected_previous:
            problems.append(f"{name}: does not follow the previous document's hash")
        if document_hash(document, lines[document.pk]) != document.hash:
            problems.append(f"{name}: its content does not match its hash (edited)")
        previous_by_platform[document.platform_id] = document
        if document.number:
            series, counter = document.number.rsplit("-", 1)
            numbers[(document.platform_id, series)].append(int(counter))
    for (_platform, series), counters in numbers.items():
        if sorted(counters) != list(range(1, len(counters) + 1)):
            problems.append(f"Series {series}: numbers are not 1 to {len(counters)} without gaps")
    return problems
