"""Card payments through Stripe: against localstripe (started by the test suite, with
real signed webhooks delivered to the live server) and with webhooks signed here."""

import json
import time
from decimal import Decimal

import pytest
import stripe

from billing.models import CardPayment, Invoice, Payment, StripeEvent, StripeRefund
from billing.services import add_line, create_credit_note, issue_invoice, remove_line
from tests.billing.localstripe import SECRET_KEY, WEBHOOK_SECRET, localstripe  # noqa: F401
from tests.billing.support import bill_side, flush_despite_the_guard

WEBHOOK = "/api/v1/stripe/webhook/"
EVENTS = ["payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"]


def pay_url(invoice) -> str:
    return f"/api/v1/invoices/{invoice.pk}/pay-by-card/"


def charge_url(invoice) -> str:
    return f"/api/v1/invoices/{invoice.pk}/charge-saved-card/"


def wait_for(condition, seconds: float = 15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.2)
    raise AssertionError("Stripe's webhook did not arrive in time")


@pytest.fixture
def billed(world):
    bill_side(world.a, "FAB")
    bill_side(world.b, "OTH")
    return world


@pytest.fixture
def emptied_after(transactional_db):
    """Committed rows are flushed after the test, issued invoices included."""
    yield
    flush_despite_the_guard()


@pytest.fixture
def stripe_on(emptied_after, settings, localstripe, live_server):  # noqa: F811
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = localstripe.base
    with localstripe.webhooks_to(f"{live_server.url}{WEBHOOK}", EVENTS):
        yield stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe.base})


@pytest.fixture
def webhook_secret(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET


def card(client, number: str) -> str:
    method = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    return method.id


def save_card(client, customer_id: str, number: str) -> str:
    method = card(client, number)
    client.v1.payment_methods.attach(method, params={"customer": customer_id})
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": method}}
    )
    return method


def browser_confirms(client, intent_id: str, number: str):
    """What Stripe.js does in the customer's browser with the client_secret."""
    client.v1.payment_intents.update(intent_id, params={"payment_method": card(client, number)})
    return client.v1.payment_intents.confirm(intent_id)


def signed(event: dict, secret: str = WEBHOOK_SECRET) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    header = stripe.WebhookSignature.generate_signature_header(payload.decode(), secret)
    return payload, header


def post_event(client, event: dict, **kwargs):
    payload, header = signed(event, **kwargs)
    return client.post(
        WEBHOOK, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )


def intent_event(event_id: str, kind: str, intent: str, invoice, cents: int, **extra) -> dict:
    obj = {
        "id": intent,
        "object": "payment_intent",
        "amount": cents,
        "amount_received": cents if kind.endswith("succeeded") else 0,
        "currency": "eur",
        "metadata": {"fabpool_invoice_id": str(invoice.pk)},
        **extra,
    }
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }


def cents(amount: Decimal) -> int:
    return int(amount * 100)


# --- End to end against localstripe ------------------------------------------------------------


def test_an_sme_accountant_pays_by_card_and_the_webhook_marks_the_invoice_paid(
    api, billed, stripe_on
):
    invoice = billed.a.issued
    api.as_user(billed.a.org_accountant)

    response = api.post(pay_url(invoice))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["client_secret"].startswith(body["payment_intent"])
    assert (body["amount"], body["currency"], body["status"]) == (
        f"{invoice.total_with_tax:.2f}",
        "EUR",
        "pending",
    )
    intent = stripe_on.v1.payment_intents.retrieve(body["payment_intent"])
    assert intent.amount == cents(invoice.total_with_tax)
    assert intent.metadata.to_dict() == {
        "fabpool_invoice_id": str(invoice.pk),
        "invoice_number": invoice.number,
        "attempt": "1",
    }
    customer = billed.a.org.stripe_customer
    assert intent.customer == customer.stripe_id

    assert browser_confirms(stripe_on, intent.id, "4242424242424242").status == "succeeded"

    payment = wait_for(lambda: Payment.objects.filter(invoice=invoice).first())
    assert (payment.amount, payment.method, payment.reference) == (
        invoice.total_with_tax,
        "card",
        intent.id,
    )
    assert CardPayment.objects.get(payment_intent=intent.id).status == "succeeded"
    assert StripeEvent.objects.filter(type="payment_intent.succeeded").count() == 1
    shown = api.get(f"/api/v1/invoices/{invoice.pk}/").json()
    assert shown["paid"] is True
    # Paid: nothing left to pay, and nothing changes.
    again = api.post(pay_url(invoice))
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invoice_paid")


def test_asking_twice_reuses_the_pending_payment_intent(api, billed, stripe_on):
    api.as_user(billed.a.org_admin)

    first = api.post(pay_url(billed.a.issued)).json()
    second = api.post(pay_url(billed.a.issued)).json()

    assert first["payment_intent"] == second["payment_intent"]
    assert CardPayment.objects.filter(invoice=billed.a.issued).count() == 1
    assert StripeCustomer_count(billed) == 1


def StripeCustomer_count(world) -> int:
    from billing.models import StripeCustomer

    return StripeCustomer.objects.filter(organization=world.a.org).count()


def test_a_declined_card_is_recorded_as_failed_and_the_invoice_stays_unpaid(api, billed, stripe_on):
    api.as_user(billed.a.org_accountant)
    intent_id = api.post(pay_url(billed.a.issued)).json()["payment_intent"]

    with pytest.raises(stripe.CardError):
        browser_confirms(stripe_on, intent_id, "4000000000000341")

    attempt = wait_for(
        lambda: CardPayment.objects.filter(payment_intent=intent_id, status="failed").first()
    )
    assert attempt.failure_message
    assert not Payment.objects.filter(invoice=billed.a.issued).exists()
    assert StripeEvent.objects.get(type="payment_intent.payment_failed").outcome.startswith(
        "failed"
    )


def test_the_platform_charges_a_saved_card_off_session(api, billed, stripe_on):
    from billing.payments import ensure_customer

    customer = ensure_customer(billed.a.org, stripe_on)
    save_card(stripe_on, customer.stripe_id, "4242424242424242")
    api.as_user(billed.a.accountant)

    response = api.post(charge_url(billed.a.issued), {})

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "succeeded"
    intent = stripe_on.v1.payment_intents.retrieve(response.json()["payment_intent"])
    assert intent.status == "succeeded"
    # Recorded at once; the webhook that follows adds nothing.
    wait_for(lambda: StripeEvent.objects.filter(type="payment_intent.succeeded").exists())
    assert Payment.objects.filter(invoice=billed.a.issued).count() == 1
    assert StripeEvent.objects.get(type="payment_intent.succeeded").outcome == "already recorded"


def test_a_declined_saved_card_answers_402_and_keeps_the_failed_attempt(api, billed, stripe_on):
    from billing.payments import ensure_customer

    customer = ensure_customer(billed.a.org, stripe_on)
    save_card(stripe_on, customer.stripe_id, "4000000000000341")
    api.as_user(billed.a.accountant)

    response = api.post(charge_url(billed.a.issued), {})

    assert response.status_code == 402, response.content
    assert response.json()["error"]["code"] == "card_declined"
    assert CardPayment.objects.get(invoice=billed.a.issued).status == "failed"
    assert not Payment.objects.filter(invoice=billed.a.issued).exists()


SAVED_CARDS = "/api/v1/saved-cards/"


def set_up_card(api, stripe_on, organization, number: str) -> str:
    """The SME's side: start a SetupIntent, have the browser confirm it (what
    Stripe.js does with the client_secret), and answer its id."""
    started = api.post(f"{SAVED_CARDS}setup/", {"organization": organization.pk})
    assert started.status_code == 201, started.content
    body = started.json()
    assert body["client_secret"].startswith(body["setup_intent"])
    stripe_on.v1.setup_intents.confirm(
        body["setup_intent"], params={"payment_method": card(stripe_on, number)}
    )
    return body["setup_intent"]


def test_an_sme_saves_a_card_and_the_platform_then_charges_it_off_session(api, billed, stripe_on):
    organization = billed.a.org
    api.as_user(billed.a.org_accountant)
    assert api.get(f"{SAVED_CARDS}{organization.pk}/").json()["error"]["code"] == "no_saved_card"

    setup_intent = set_up_card(api, stripe_on, organization, "4242424242424242")
    saved = api.post(SAVED_CARDS, {"organization": organization.pk, "setup_intent": setup_intent})

    assert saved.status_code == 201, saved.content
    assert {k: saved.json()[k] for k in ("brand", "last4", "exp_month", "exp_year")} == {
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2034,
    }
    assert api.get(f"{SAVED_CARDS}{organization.pk}/").json() == saved.json()
    customer = stripe_on.v1.customers.retrieve(organization.stripe_customer.stripe_id)
    assert customer.invoice_settings.default_payment_method == saved.json()["payment_method"]

    api.as_user(billed.a.accountant)  # the platform's
    charged = api.post(charge_url(billed.a.issued), {})
    assert (charged.status_code, charged.json()["status"]) == (201, "succeeded"), charged.content
    shown = api.get(f"/api/v1/invoices/{billed.a.issued.pk}/").json()
    assert [c["kind"] for c in shown["card_payments"]] == ["off_session"]
    assert (shown["paid"], shown["remaining_due"]) == (True, "0.00")


def test_a_card_not_yet_confirmed_or_set_up_for_another_sme_is_not_saved(api, billed, stripe_on):
    api.as_user(billed.a.org_admin)
    pending = api.post(f"{SAVED_CARDS}setup/", {"organization": billed.a.org.pk}).json()
    early = api.post(
        SAVED_CARDS, {"organization": billed.a.org.pk, "setup_intent": pending["setup_intent"]}
    )
    assert (early.status_code, early.json()["error"]["code"]) == (409, "card_setup_incomplete")

    api.as_user(billed.b.org_admin)
    theirs = set_up_card(api, stripe_on, billed.b.org, "4242424242424242")
    api.as_user(billed.a.org_admin)
    stolen = api.post(SAVED_CARDS, {"organization": billed.a.org.pk, "setup_intent": theirs})
    assert stolen.status_code == 400
    assert "setup_intent" in stolen.json()["error"]["details"]["fields"]
    foreign = api.post(SAVED_CARDS, {"organization": billed.b.org.pk, "setup_intent": theirs})
    assert "organization" in foreign.json()["error"]["details"]["fields"]  # not visible
    assert api.get(f"{SAVED_CARDS}{billed.b.org.pk}/").status_code == 404
    assert api.delete(f"{SAVED_CARDS}{billed.b.org.pk}/").status_code == 404
    default = stripe_on.v1.customers.retrieve(billed.a.org.stripe_customer.stripe_id)
    assert not default.invoice_settings.default_payment_method


def test_a_removed_card_can_no_longer_be_charged(api, billed, stripe_on):
    api.as_user(billed.a.org_admin)
    setup_intent = set_up_card(api, stripe_on, billed.a.org, "4242424242424242")
    api.post(SAVED_CARDS, {"organization": billed.a.org.pk, "setup_intent": setup_intent})

    assert api.delete(f"{SAVED_CARDS}{billed.a.org.pk}/").status_code == 204
    assert api.delete(f"{SAVED_CARDS}{billed.a.org.pk}/").status_code == 204  # a second click
    assert api.get(f"{SAVED_CARDS}{billed.a.org.pk}/").status_code == 404

    api.as_user(billed.a.accountant)
    refused = api.post(charge_url(billed.a.issued), {})
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "no_saved_card")


def test_a_late_setup_intent_succeeded_webhook_does_not_bring_back_a_removed_card(
    api, billed, stripe_on
):
    """Stripe delivers late and retries for days: a card removed after its set-up
    stays removed when the event about that set-up arrives."""
    api.as_user(billed.a.org_admin)
    setup_intent = set_up_card(api, stripe_on, billed.a.org, "4242424242424242")
    api.post(SAVED_CARDS, {"organization": billed.a.org.pk, "setup_intent": setup_intent})
    intent = stripe_on.v1.setup_intents.retrieve(setup_intent).to_dict()
    set_up_at = int(time.time())
    assert api.delete(f"{SAVED_CARDS}{billed.a.org.pk}/").status_code == 204

    late = {
        "id": "evt_seti_late",
        "object": "event",
        "type": "setup_intent.succeeded",
        "created": set_up_at,
        "data": {"object": intent},
    }
    assert post_event(api, late).status_code == 200

    assert StripeEvent.objects.get(stripe_id="evt_seti_late").outcome == (
        "ignored: the organization removed its card since"
    )
    assert api.get(f"{SAVED_CARDS}{billed.a.org.pk}/").status_code == 404


def test_the_setup_intent_succeeded_webhook_saves_the_card_if_the_browser_did_not(
    api, billed, stripe_on
):
    api.as_user(billed.a.org_accountant)
    setup_intent = set_up_card(api, stripe_on, billed.a.org, "5555555555554444")
    intent = stripe_on.v1.setup_intents.retrieve(setup_intent).to_dict()
    event = {
        "id": "evt_seti_1",
        "object": "event",
        "type": "setup_intent.succeeded",
        "created": int(time.time()),
        "data": {"object": intent},
    }

    assert post_event(api, event).status_code == 200

    assert StripeEvent.objects.get(stripe_id="evt_seti_1").outcome.endswith("4444 saved")
    assert api.get(f"{SAVED_CARDS}{billed.a.org.pk}/").json()["last4"] == "4444"


def test_only_the_smes_administrators_and_accountants_handle_its_card(
    api, billed, keys_without_server
):
    setup = {"organization": billed.a.org.pk}
    api.as_user(billed.a.org_member)  # sees the organization, does not pay for it
    assert api.post(f"{SAVED_CARDS}setup/", setup).status_code == 403
    assert api.delete(f"{SAVED_CARDS}{billed.a.org.pk}/").status_code == 403
    for staff in (billed.a.manager, billed.a.accountant):  # the platform's: not theirs to name
        api.as_user(staff)
        refused = api.post(f"{SAVED_CARDS}setup/", setup)
        assert (
            refused.status_code == 400
            and "organization" in refused.json()["error"]["details"]["fields"]
        )
        assert api.delete(f"{SAVED_CARDS}{billed.a.org.pk}/").status_code == 404
    assert not StripeCustomer_count(billed)


def test_a_credit_note_on_a_card_paid_invoice_refunds_through_stripe(api, billed, stripe_on):
    from billing.payments import ensure_customer

    customer = ensure_customer(billed.a.org, stripe_on)
    save_card(stripe_on, customer.stripe_id, "4242424242424242")
    api.as_user(billed.a.accountant)
    paid = api.post(charge_url(billed.a.issued), {}).json()
    note = create_credit_note(invoice=billed.a.issued, by=billed.a.accountant)
    for line in note.lines.all():  # a partial credit: 10 € without tax, 12 € with
        remove_line(line=line, by=billed.a.accountant)
    add_line(
        invoice=note,
        by=billed.a.accountant,
        description="Goodwill",
        quantity=Decimal(1),
        unit="unit",
        unit_price=Decimal("10.00"),
    )
    note = issue_invoice(invoice=note, by=billed.a.accountant)  # commits: refund sent after

    refund = StripeRefund.objects.get(credit_note=note)
    assert (refund.status, refund.amount) == ("requested", note.total_with_tax)
    at_stripe = stripe_on.v1.refunds.retrieve(refund.stripe_id)
    assert at_stripe.amount == cents(note.total_with_tax)
    # localstripe sends no charge.refunded: Stripe's event is built from its charge.
    latest = stripe_on.v1.payment_intents.retrieve(paid["payment_intent"]).latest_charge
    charge = stripe_on.v1.charges.retrieve(getattr(latest, "id", latest)).to_dict()
    charge.setdefault("refunds", {"data": [at_stripe.to_dict()]})
    event = {"id": "evt_refund_1", "type": "charge.refunded", "created": int(time.time())}
    response = post_event(api, {**event, "data": {"object": charge}})

    assert response.status_code == 200, response.content
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert CardPayment.objects.get(pk=paid["id"]).amount_refunded == note.total_with_tax


# --- Webhooks signed here ---------------------------------------------------------------------


@pytest.fixture
def attempt(billed):
    invoice = billed.a.issued
    return CardPayment.objects.create(
        invoice=invoice,
        attempt=1,
        payment_intent="pi_test_1",
        amount=invoice.total_with_tax,
        currency="EUR",
    )


def test_a_replayed_event_pays_once(api, billed, attempt, webhook_secret):
    invoice = billed.a.issued
    event = intent_event(
        "evt_1", "payment_intent.succeeded", "pi_test_1", invoice, cents(invoice.total_with_tax)
    )

    first, second = post_event(api, event), post_event(api, event)

    assert (first.status_code, first.json()["duplicate"]) == (200, False)
    assert (second.status_code, second.json()["duplicate"]) == (200, True)
    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert StripeEvent.objects.count() == 1


def test_another_event_for_the_same_payment_intent_pays_once_too(
    api, billed, attempt, webhook_secret
):
    invoice = billed.a.issued
    amount = cents(invoice.total_with_tax)
    post_event(api, intent_event("evt_1", "payment_intent.succeeded", "pi_test_1", invoice, amount))
    post_event(api, intent_event("evt_2", "payment_intent.succeeded", "pi_test_1", invoice, amount))

    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert StripeEvent.objects.count() == 2


@pytest.mark.parametrize(
    "tamper",
    [
        lambda payload, header: (payload.replace(b'"amount": ', b'"amount": 1'), header),
        lambda payload, header: (payload, header.replace("v1=", "v1=0")),
        lambda payload, header: (payload, ""),
        lambda payload, header: (b"not json", header),
    ],
    ids=["edited payload", "edited signature", "no signature", "garbage"],
)
def test_a_tampered_event_is_refused_and_changes_nothing(
    api, billed, attempt, webhook_secret, tamper
):
    invoice = billed.a.issued
    event = intent_event(
        "evt_1", "payment_intent.succeeded", "pi_test_1", invoice, cents(invoice.total_with_tax)
    )
    payload, header = tamper(*signed(event))

    response = api.post(
        WEBHOOK, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_webhook"
    assert not Payment.objects.exists() and not StripeEvent.objects.exists()


def test_an_event_signed_with_another_secret_is_refused(api, billed, attempt, webhook_secret):
    event = intent_event("evt_1", "payment_intent.succeeded", "pi_test_1", billed.a.issued, 100)

    response = post_event(api, event, secret="whsec_someone_else")

    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_a_late_failure_after_success_changes_nothing(api, billed, attempt, webhook_secret):
    invoice = billed.a.issued
    amount = cents(invoice.total_with_tax)
    post_event(api, intent_event("evt_2", "payment_intent.succeeded", "pi_test_1", invoice, amount))

    late = intent_event("evt_1", "payment_intent.payment_failed", "pi_test_1", invoice, amount)
    response = post_event(api, late)

    assert response.status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_a_success_after_a_failure_pays(api, billed, attempt, webhook_secret):
    invoice = billed.a.issued
    amount = cents(invoice.total_with_tax)
    post_event(
        api, intent_event("evt_1", "payment_intent.payment_failed", "pi_test_1", invoice, amount)
    )
    post_event(api, intent_event("evt_2", "payment_intent.succeeded", "pi_test_1", invoice, amount))

    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert Payment.objects.get(invoice=invoice).amount == invoice.total_with_tax


def test_a_partial_amount_is_recorded_and_the_rest_stays_due(api, billed, attempt, webhook_secret):
    invoice = billed.a.issued
    event = intent_event("evt_1", "payment_intent.succeeded", "pi_test_1", invoice, 1000)

    response = post_event(api, event)

    assert "still due" in response.json()["outcome"]
    assert Payment.objects.get(invoice=invoice).amount == Decimal("10.00")
    api.as_user(billed.a.org_accountant)
    shown = api.get(f"/api/v1/invoices/{invoice.pk}/").json()
    assert (shown["amount_paid"], shown["paid"]) == ("10.00", False)


def test_an_unknown_event_type_is_stored_and_ignored(api, billed, webhook_secret):
    event = {
        "id": "evt_x",
        "type": "customer.created",
        "created": int(time.time()),
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    }

    response = post_event(api, event)

    assert response.status_code == 200
    assert StripeEvent.objects.get().outcome.startswith("ignored")
    assert not Payment.objects.exists()


def test_a_payment_intent_of_no_fabpool_invoice_is_ignored(api, billed, webhook_secret):
    event = intent_event("evt_1", "payment_intent.succeeded", "pi_other", billed.a.issued, 100)
    event["data"]["object"]["metadata"] = {}

    assert post_event(api, event).status_code == 200
    assert not Payment.objects.exists()


# --- Without Stripe, and who may pay what ------------------------------------------------------


def test_without_keys_card_payments_answer_409_and_bank_transfers_still_work(api, billed, settings):
    settings.STRIPE_SECRET_KEY = settings.STRIPE_WEBHOOK_SECRET = ""
    api.as_user(billed.a.org_accountant)
    response = api.post(pay_url(billed.a.issued))
    assert (response.status_code, response.json()["error"]["code"]) == (
        409,
        "payments_not_configured",
    )
    hook = api.post(WEBHOOK, data=b"{}", content_type="application/json")
    assert hook.status_code == 409

    api.as_user(billed.a.accountant)
    assert api.post(f"/api/v1/invoices/{billed.a.issued.pk}/payments/", {}).status_code == 201
    assert not CardPayment.objects.exists()


@pytest.fixture
def keys_without_server(settings):
    """Keys set but no Stripe answering: checks that refuse must come first."""
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"


def test_a_foreign_invoice_is_not_found(api, billed, keys_without_server):
    api.as_user(billed.a.org_accountant)
    assert api.post(pay_url(billed.b.issued)).status_code == 404
    api.as_user(billed.a.accountant)
    assert api.post(charge_url(billed.b.issued), {}).status_code == 404
    assert not CardPayment.objects.exists()


def test_a_draft_is_not_found_by_the_sme_and_not_payable_by_anyone(
    api, billed, keys_without_server
):
    api.as_user(billed.a.org_accountant)
    assert api.post(pay_url(billed.a.draft)).status_code == 404
    api.as_user(billed.superuser if hasattr(billed, "superuser") else billed.a.accountant)
    response = api.post(charge_url(billed.a.draft), {})
    assert (response.status_code, response.json()["error"]["code"]) == (409, "invoice_draft")
    assert not CardPayment.objects.exists()


def test_members_and_platform_staff_do_not_pay_for_the_sme(api, billed, keys_without_server):
    for user in (billed.a.manager, billed.a.accountant):
        api.as_user(user)
        assert api.post(pay_url(billed.a.issued)).status_code == 403
    api.as_user(billed.a.org_member)
    assert api.post(pay_url(billed.a.issued)).status_code == 404  # issued invoices: admins only
    api.as_user(billed.a.org_admin)
    assert api.post(charge_url(billed.a.issued), {}).status_code == 403
    assert not Invoice.objects.filter(card_payments__isnull=False).exists()
