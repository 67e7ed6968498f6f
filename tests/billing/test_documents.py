"""Issued invoices and credit notes as Factur-X PDFs: the PDF opens, says what the
invoice says (in French or English), carries an EN 16931 XML that passes the XSD
and whose amounts are the invoice's; drafts have none; SMEs get only their own."""

import io
from datetime import date
from decimal import Decimal

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from billing import documents, services
from billing.models import Invoice
from tests.billing.conftest import booking, paris
from tests.billing.support import draft_of, run

API = "/api/v1"
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}


@pytest.fixture
def issued(billing):
    """October billed and issued on 3 November: 107.13 + 21.43 VAT = 128.56."""
    org = billing.a.org
    org.siret, org.vat_number = "44306184100047", "FR83443061841"
    org.address_line1, org.postal_code, org.city = "5 quai Perrache", "69002", "Lyon"
    org.save()
    booking(billing.a, paris(5, 9), paris(5, 10, 10))
    booking(billing.a, paris(6, 9), paris(6, 9, 20))
    run(billing)
    return services.issue_invoice(
        invoice=draft_of(billing.a), by=billing.a.accountant, issue_date=date(2026, 11, 3)
    )


def text_of(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def xml_of(pdf: bytes) -> etree._Element:
    _filename, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    return etree.fromstring(xml)


def amount(root, path: str) -> Decimal:
    return Decimal(root.xpath(path, namespaces=NS)[0].text)


SUMMATION = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"


def test_an_issued_invoice_renders_to_a_pdf_with_its_legal_mentions_in_french(issued):
    rendered = documents.render_pdf(issued)

    assert rendered.content.startswith(b"%PDF-") and rendered.filename == "FAB-2026-000001.pdf"
    text = text_of(rendered.content)
    for expected in (
        "Facture",
        "FAB-2026-000001",
        "03/11/2026",  # issue date
        "03/12/2026",  # due date
        "Platform a SAS",
        "73282932000074",  # seller SIRET
        "FR44732829320",  # seller VAT number
        "SME a",
        "44306184100047",
        "FR83443061841",
        "Total HT",
        "107,13",
        "21,43",
        "128,56",
        "Prix unitaire HT",
        "20,00",  # VAT rate
        "40 €",  # the recovery indemnity
        "trois fois le taux d'intérêt légal",
        "30 jours",
    ):
        assert expected in text, expected
    assert "Invoice" not in text


def test_english_on_request(issued):
    text = text_of(documents.render_pdf(issued, "en").content)

    for expected in ("Invoice", "FAB-2026-000001", "Total excl. VAT", "107.13", "128.56", "€40"):
        assert expected in text, expected
    assert "Facture" not in text


def test_the_embedded_factur_x_xml_passes_the_xsd_and_carries_the_invoice_amounts(issued):
    root = xml_of(documents.render_pdf(issued).content)

    assert root.xpath("//rsm:ExchangedDocument/ram:ID", namespaces=NS)[0].text == issued.number
    assert root.xpath("//rsm:ExchangedDocument/ram:TypeCode", namespaces=NS)[0].text == "380"
    assert amount(root, f"{SUMMATION}/ram:TaxBasisTotalAmount") == Decimal("107.13")  # BT-109
    assert amount(root, f"{SUMMATION}/ram:TaxTotalAmount") == Decimal("21.43")  # BT-110
    assert amount(root, f"{SUMMATION}/ram:GrandTotalAmount") == Decimal("128.56")  # BT-112
    assert amount(root, f"{SUMMATION}/ram:DuePayableAmount") == Decimal("128.56")  # BT-115
    lines = root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS)
    assert len(lines) == issued.lines.count()
    line_total = sum(
        Decimal(x.text) for x in root.xpath("//ram:LineTotalAmount", namespaces=NS)[:-1]
    )
    assert line_total == Decimal("107.13")
    seller_ids = root.xpath(
        "//ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID", namespaces=NS
    )
    assert seller_ids[0].text == "73282932000074"
    buyer_vat = root.xpath(
        "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID", namespaces=NS
    )
    assert buyer_vat[0].text == "FR83443061841"


def test_the_same_document_always_gives_the_same_xml(issued):
    first = facturx.get_xml_from_pdf(documents.render_pdf(issued).content, check_xsd=False)[1]
    second = facturx.get_xml_from_pdf(documents.render_pdf(issued).content, check_xsd=False)[1]
    assert first == second


def test_a_negative_funding_line_is_a_negative_quantity_at_a_positive_price(billing):
    from billing.models import FundingProgramme
    from tests import factories

    label = factories.LabelFactory()
    billing.a.platform.labels.add(label)
    FundingProgramme.objects.create(
        label=label,
        name="Région",
        share=Decimal("0.5"),
        budget=Decimal(1000),
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 12, 31),
    )
    booking(billing.a, paris(5, 9), paris(5, 11))
    run(billing)
    invoice = services.issue_invoice(invoice=draft_of(billing.a), by=billing.a.accountant)
    assert invoice.lines.filter(amount__lt=0).exists()

    root = xml_of(documents.render_pdf(invoice).content)

    prices = root.xpath("//ram:NetPriceProductTradePrice/ram:ChargeAmount", namespaces=NS)
    assert all(Decimal(p.text) >= 0 for p in prices)
    assert amount(root, f"{SUMMATION}/ram:GrandTotalAmount") == invoice.total_with_tax


def test_a_credit_note_names_the_invoice_it_corrects(issued, billing):
    note = services.create_credit_note(invoice=issued, by=billing.a.accountant)
    note = services.issue_invoice(invoice=note, by=billing.a.accountant)

    rendered = documents.render_pdf(note)
    text = text_of(rendered.content)
    assert "Avoir" in text and note.number in text
    assert "FAB-2026-000001" in text and "03/11/2026" in text
    root = xml_of(rendered.content)
    assert root.xpath("//rsm:ExchangedDocument/ram:TypeCode", namespaces=NS)[0].text == "381"
    referenced = root.xpath("//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", namespaces=NS)
    assert referenced[0].text == "FAB-2026-000001"
    assert amount(root, f"{SUMMATION}/ram:GrandTotalAmount") == Decimal("128.56")


# --- API -------------------------------------------------------------------------------------


def test_the_api_answers_the_pdf_in_the_users_language_or_the_one_asked_for(api, issued, billing):
    accountant = billing.a.org_accountant
    api.as_user(accountant)
    url = f"{API}/invoices/{issued.pk}/pdf/"

    response = api.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert 'filename="FAB-2026-000001.pdf"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert "Facture" in text_of(body)

    english = api.get(url, {"lang": "en"})
    assert "Invoice" in text_of(english.content)

    accountant.language = "en"
    accountant.save()
    assert "Invoice" in text_of(api.get(url).content)
    assert "Facture" in text_of(api.get(url, {"lang": "fr"}).content)


def test_a_draft_has_no_pdf(api, billing):
    booking(billing.a, paris(5, 9), paris(5, 10))
    run(billing)
    draft = draft_of(billing.a)
    api.as_user(billing.a.accountant)

    response = api.get(f"{API}/invoices/{draft.pk}/pdf/")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invoice_draft"


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("org_admin", 200),
        ("org_accountant", 200),
        ("org_member", 404),
        ("manager", 200),
        ("accountant", 200),
        ("operator", 404),
    ],
)
def test_who_may_download_an_invoice_pdf(api, issued, billing, who, status):
    api.as_user(getattr(billing.a, who))
    assert api.get(f"{API}/invoices/{issued.pk}/pdf/").status_code == status


def test_another_smes_invoice_pdf_does_not_exist(api, issued, billing):
    api.as_user(billing.b.org_admin)
    response = api.get(f"{API}/invoices/{issued.pk}/pdf/")
    assert response.status_code == 404
    assert Invoice.objects.filter(pk=issued.pk).exists()


def test_an_unknown_language_is_a_400(api, issued, billing):
    api.as_user(billing.a.accountant)
    response = api.get(f"{API}/invoices/{issued.pk}/pdf/", {"lang": "de"})
    assert response.status_code == 400
    assert "lang" in response.json()["error"]["details"]["fields"]
