"""Accountants' journeys in a real browser, on the demo (whose month before last is
billed and issued, last month booked but not billed): a platform accountant runs
last month, issues an invoice, downloads its PDF and the month's FEC, in English
and in French; an SME's accountant finds the invoice, its PDF and how to pay it
(bank transfer without Stripe; with localstripe's fake Stripe.js, by card), or
saves a card that the platform's accountant then charges."""

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import BillingRun, CardPayment, Invoice, Payment
from tests.billing import localstripe as fake_stripe
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
localstripe = fake_stripe.localstripe  # a fixture shared with tests/billing
SECRET_KEY, WEBHOOK_SECRET = fake_stripe.SECRET_KEY, fake_stripe.WEBHOOK_SECRET

ACCOUNTANT = "accounting@additive-nantes.example"
SME_ACCOUNTANT = "compta@mps-savoie.example"
FEC_HEADER = "JournalCode\tJournalLib\tEcritureNum\tEcritureDate\tCompteNum\tCompteLib"


def last_month() -> date:
    today = timezone.localdate()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def downloaded(page, click) -> tuple[str, bytes]:
    with page.expect_download() as info:
        click()
    download = info.value
    return download.suggested_filename, Path(download.path()).read_bytes()


def bill_last_month_issue_and_export(page, base_url, screenshot, tag):
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, base_url, ACCOUNTANT)
    page.locator("nav.nav a[href='/billing/']").click()
    expect(page.locator("#id_month")).to_have_value(f"{last_month():%Y-%m}")  # by default
    screenshot(page, f"{tag}-billing-runs")

    # The progress bar shows while the run is under way (checked as htmx sends it).
    page.evaluate(
        """document.body.addEventListener('htmx:beforeSend', () => {
             const bar = document.getElementById('run-progress');
             window.progressShown = getComputedStyle(bar).display !== 'none';
           }, {once: true})"""
    )
    page.locator("#run-button").click()
    outcome = page.locator("#run-outcome")
    expect(outcome).to_be_visible()
    assert page.evaluate("window.progressShown") is True
    run = BillingRun.objects.get(period_start=last_month(), platform__slug="additive-nantes")
    assert run.report["draft_invoices"] == 2  # Atelier Lumière and MPS
    expect(page.locator("#run-progress")).to_be_hidden()
    screenshot(page, f"{tag}-billing-run-done")

    outcome.locator("a.button").click()
    expect(page.locator("main table tbody tr")).to_have_count(2)
    screenshot(page, f"{tag}-billing-drafts")
    page.locator("main table tbody tr").first.locator("a.button").click()
    expect(page.locator("table.lines tbody tr").first).to_be_visible()
    screenshot(page, f"{tag}-billing-draft")

    page.locator("#issue-button").click()
    expect(page.locator(".messages .success")).to_contain_text("ADLN-")
    issued = Invoice.objects.get(
        platform__slug="additive-nantes", period_start=last_month(), status="issued"
    )
    expect(page.locator("main h2").first).to_contain_text(issued.number)
    screenshot(page, f"{tag}-billing-issued")
    name, pdf = downloaded(page, lambda: page.locator("#pdf-link").click())
    assert name == f"{issued.number}.pdf" and pdf.startswith(b"%PDF")

    page.locator("nav.tabs a[href$='/exports/']").click()
    page.locator("input[name=export][value=fec]").check()
    screenshot(page, f"{tag}-billing-exports")
    name, fec = downloaded(page, lambda: page.locator("#export-button").click())
    text = fec.decode("utf-8")
    assert name.endswith(".txt") and "FEC" in name
    assert text.startswith(FEC_HEADER)
    assert issued.number in text  # issued today, so in this month's FEC
    assert not problems


def test_an_accountant_bills_a_month_issues_an_invoice_and_exports_it_in_english(
    demo, english, screenshot
):
    bill_last_month_issue_and_export(english, demo.url, screenshot, "en")

    assert english.locator("html").get_attribute("lang") == "en"


def test_an_accountant_bills_a_month_issues_an_invoice_and_exports_it_in_french(
    demo, french, screenshot
):
    bill_last_month_issue_and_export(french, demo.url, screenshot, "fr")

    assert french.locator("html").get_attribute("lang") == "fr"
    expect(french.locator("nav.tabs a[href$='/drafts/']")).to_have_text("Brouillons")


def test_an_sme_accountant_finds_an_invoice_and_how_to_pay_it_on_a_phone(
    demo, phone, screenshot, settings
):
    settings.STRIPE_SECRET_KEY = ""  # no card payments: bank transfer only
    log_in(phone, demo.url, SME_ACCOUNTANT)
    phone.locator("nav.nav a[href='/invoices/']").click()
    # The page it leads to, not the one left (its width was measured at times).
    phone.wait_for_url(re.compile(r"/organizations/\d+/invoices/$"))
    rows = phone.locator("main table tbody tr")
    expect(rows).to_have_count(2)  # one from each platform, issued by the demo
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "phone-sme-invoices")

    rows.filter(has_text="ADLN-").locator("a").first.click()
    expect(phone.locator("#transfer-details")).to_contain_text("FR14 2004")
    expect(phone.locator("#pay-by-card")).to_have_count(0)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "phone-sme-invoice")
    name, pdf = downloaded(phone, lambda: phone.locator("#pdf-link").click())
    assert name.startswith("ADLN-") and pdf.startswith(b"%PDF")


def test_an_sme_accountant_pays_by_card_with_stripe_js(
    demo,
    english,
    screenshot,
    settings,
    localstripe,
):
    """localstripe serves a fake Stripe.js at /js.stripe.com/v3/: its card field is
    plain inputs, and its confirmCardPayment only completes a PaymentIntent that
    waits for 3-D Secure, whatever was typed. So once the page has opened the
    PaymentIntent, the test gives it a 3-D Secure test card at localstripe, as a
    real Stripe.js would on confirmation; the rest is the page's own code, then
    Stripe's signed webhook marks the invoice paid."""
    import stripe

    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_fabpool"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = localstripe.base
    settings.STRIPE_JS_URL = f"{localstripe.base}/js.stripe.com/v3/"
    localstripe.deliver_webhooks_to(
        f"{demo.url}/api/v1/stripe/webhook/", ["payment_intent.succeeded"]
    )
    invoice = Invoice.objects.get(number__startswith="ADLN-", organization__siret="81234567600017")
    page = english
    log_in(page, demo.url, SME_ACCOUNTANT)
    page.goto(f"{demo.url}/organizations/{invoice.organization_id}/invoices/{invoice.pk}/")
    page.locator("#pay-by-card").click()
    expect(page.locator("#card-element input[placeholder=number]")).to_be_visible()
    screenshot(page, "en-sme-pay-by-card")

    attempt = CardPayment.objects.get(invoice=invoice)
    assert attempt.amount == invoice.total_with_tax
    api = stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe.base})
    method = api.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4000002500003155", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    api.v1.payment_intents.update(attempt.payment_intent, params={"payment_method": method.id})
    api.v1.payment_intents.confirm(attempt.payment_intent)

    page.locator("#card-element input[placeholder=number]").fill("4000002500003155")
    page.locator("#card-submit").click()
    page.get_by_role("button", name="Complete authentication").click()  # localstripe's 3-D Secure
    expect(page.locator("#card-done")).to_be_visible()
    expect(page.locator("#balance-due")).to_have_text("€0.00", timeout=15000)  # after the reload
    assert Payment.objects.get(invoice=invoice).method == Payment.Method.CARD
    screenshot(page, "en-sme-paid-by-card")


def test_an_sme_accountant_saves_a_card_with_stripe_js_and_the_platform_charges_it(
    demo,
    english,
    french,
    screenshot,
    settings,
    localstripe,
):
    """localstripe's Stripe.js confirms a SetupIntent with what is typed in its plain
    card inputs: the SME's accountant saves a card in English, then the platform's
    accountant charges it off-session from the invoice's page, in French."""
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_fabpool"
    settings.STRIPE_API_BASE = localstripe.base
    settings.STRIPE_JS_URL = f"{localstripe.base}/js.stripe.com/v3/"
    invoice = Invoice.objects.get(number__startswith="ADLN-", organization__siret="81234567600017")
    problems = []
    page = english
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, demo.url, SME_ACCOUNTANT)
    page.locator("nav.nav a[href='/invoices/']").click()
    expect(page.locator("#no-saved-card")).to_be_visible()

    page.locator("#save-card").click()
    card = page.locator("#setup-card-element")
    for field, typed in (("number", "4242424242424242"), ("exp_month", "12"), ("exp_year", "34")):
        card.locator(f"input[placeholder={field}]").fill(typed)
    card.locator("input[placeholder=cvc]").fill("123")
    screenshot(page, "en-sme-save-card")
    page.locator("#save-card-submit").click()

    expect(page.locator(".messages .success")).to_contain_text("Card saved: Visa ending in 4242.")
    expect(page.locator("#saved-card")).to_have_text("Visa ending in 4242, expires 12/2034")
    screenshot(page, "en-sme-card-saved")

    platform = french
    platform.on("pageerror", lambda error: problems.append(str(error)))
    log_in(platform, demo.url, ACCOUNTANT)
    platform.goto(f"{demo.url}/billing/platforms/{invoice.platform_id}/documents/{invoice.pk}/")
    expect(platform.locator("#card-to-charge")).to_contain_text("Visa se terminant par 4242")
    platform.locator("#charge-card").click()

    expect(platform.locator(".messages .success")).to_contain_text(
        "débités sur la carte enregistrée\u00a0: la facture est payée."
    )
    expect(platform.locator("#balance-due")).to_have_text("0,00\u00a0€")
    expect(platform.locator("#charge-card")).to_have_count(0)
    screenshot(platform, "fr-billing-saved-card-charged")
    payment = Payment.objects.get(invoice=invoice)
    assert (payment.method, payment.amount) == (Payment.Method.CARD, invoice.total_with_tax)
    assert CardPayment.objects.get(invoice=invoice).kind == CardPayment.Kind.OFF_SESSION
    assert not problems
