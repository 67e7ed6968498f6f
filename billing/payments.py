"""Card payments through Stripe: customers, PaymentIntents, webhooks, refunds.

- An SME's administrator or accountant pays an issued invoice: a PaymentIntent for
  what remains due; the browser confirms it with the client_secret (Stripe.js).
- An SME's administrator or accountant saves a card for later (a SetupIntent the
  browser confirms); a platform accountant then charges it off-session.
- The invoice is paid when Stripe says so: the `payment_intent.succeeded` webhook
  adds a Payment (unique per PaymentIntent). Each event is stored once
  (StripeEvent.stripe_id is unique), so replays change nothing.
- Issuing a credit note on a card-paid invoice refunds what was overpaid, through
  Stripe after commit; `charge.refunded` confirms it.

Stripe is called inside the invoice's transaction (the invoice row is locked):
two clicks on "pay" take turns and the second reuses the first PaymentIntent."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import stripe
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import stripe_api
from billing.models import (
    CardPayment,
    Invoice,
    Payment,
    StripeCustomer,
    StripeEvent,
    StripeRefund,
    paying_organizations,
)
from billing.services import CAN_INVOICE, lock_payable
from billing.stripe_api import from_minor, to_minor
from core.audit import record
from core.errors import Conflict, DomainError, Forbidden
from core.models import AuditEvent, Organization, User
from core.writes import save_new
from equipment import permissions as perms

log = logging.getLogger(__name__)

REUSABLE = {"requires_payment_method", "requires_confirmation", "requires_action"}


class CardDeclined(DomainError):
    status_code = 402
    code = "card_declined"


class PaymentProviderError(DomainError):
    status_code = 502
    code = "payment_provider_error"


class InvalidWebhook(DomainError):
    status_code = 400
    code = "invalid_webhook"


def _provider_error(exc: stripe.StripeError) -> PaymentProviderError:
    log.warning("Stripe refused a request: %s", exc)
    return PaymentProviderError(
        _("The card payment service did not answer as expected; try again later."),
        details={"provider_message": str(getattr(exc, "user_message", "") or "")[:300]},
    )


# --- Attempts -----------------------------------------------------------------------------------


def _next_attempt(invoice: Invoice) -> int:
    last = invoice.card_payments.order_by("-attempt").values_list("attempt", flat=True).first()
    return (last or 0) + 1


def _metadata(invoice: Invoice, attempt: int) -> dict:
    return {
        "fabpool_invoice_id": str(invoice.pk),
        "invoice_number": invoice.number,
        "attempt": str(attempt),
    }


# --- Customers ---------------------------------------------------------------------------------


@transaction.atomic
def ensure_customer(organization: Organization, api: stripe.StripeClient) -> StripeCustomer:
    """The organization's Stripe customer, created the first time. The organization
    row is locked and the idempotency key is the organization's: one customer each."""
    Organization.objects.select_for_update().filter(pk=organization.pk).exists()
    found = StripeCustomer.objects.filter(organization=organization).first()
    if found is not None:
        return found
    try:
        customer = api.v1.customers.create(
            params={
                "name": organization.legal_name,
                "metadata": {"fabpool_organization_id": str(organization.pk)},
            },
            options={"idempotency_key": f"fabpool-customer-org-{organization.pk}"},
        )
    except stripe.StripeError as exc:
        raise _provider_error(exc) from exc
    return StripeCustomer.objects.create(organization=organization, stripe_id=customer.id)


# --- Paying ------------------------------------------------------------------------------------


def _require_payer(user: User, organization_id: int) -> None:
    if not paying_organizations(user).filter(pk=organization_id).exists():
        raise Forbidden(
            _("Only the organization's administrators and accountants pay its invoices.")
        )


@transaction.atomic
def pay_by_card(*, invoice: Invoice, by: User) -> tuple[CardPayment, str]:
    """A PaymentIntent for what remains due on an issued invoice; returns the attempt
    and the client_secret the browser confirms with. A pending attempt for the same
    amount is reused rather than opening a second one."""
    _require_payer(by, invoice.organization_id)
    api = stripe_api.client()
    invoice, due = lock_payable(invoice)
    pending = (
        invoice.card_payments.filter(
            status=CardPayment.Status.PENDING, kind=CardPayment.Kind.ON_SESSION, amount=due
        )
        .exclude(payment_intent=None)
        .order_by("-attempt")
        .first()
    )
    try:
        if pending is not None:
            intent = api.v1.payment_intents.retrieve(pending.payment_intent)
            if intent.status in REUSABLE:
                return pending, intent.client_secret
        customer = ensure_customer(invoice.organization, api)
        attempt = _next_attempt(invoice)
        intent = api.v1.payment_intents.create(
            params={
                "amount": to_minor(due, invoice.currency),
                "currency": invoice.currency.lower(),
                "customer": customer.stripe_id,
                "payment_method_types": ["card"],
                "metadata": _metadata(invoice, attempt),
            },
            # The same attempt number after a failed request: Stripe answers the same intent.
            options={"idempotency_key": f"fabpool-invoice-{invoice.pk}-attempt-{attempt}"},
        )
    except stripe.StripeError as exc:
        raise _provider_error(exc) from exc
    card = save_new(
        CardPayment(
            invoice=invoice,
            attempt=attempt,
            kind=CardPayment.Kind.ON_SESSION,
            payment_intent=intent.id,
            amount=due,
            currency=invoice.currency,
            requested_by=by,
        ),
        by=by,
    )
    return card, intent.client_secret


def charge_saved_card(
    *, invoice: Invoice, by: User, payment_method: str | None = None
) -> CardPayment:
    """A platform accountant charges the organization's saved card (its default
    payment method, or the one named) off-session. A decline is recorded (the
    attempt is kept as failed) and then raised as CardDeclined (402)."""
    card = _charge_saved_card(invoice=invoice, by=by, payment_method=payment_method)
    if card.status == CardPayment.Status.FAILED:
        raise CardDeclined(
            card.failure_message or _("The card was declined."),
            details={"card_payment": card.pk},
        )
    return card


@transaction.atomic
def _charge_saved_card(*, invoice: Invoice, by: User, payment_method: str | None) -> CardPayment:
    perms.require_platform_role(by, invoice.platform, CAN_INVOICE)
    api = stripe_api.client()
    invoice, due = lock_payable(invoice)
    customer = StripeCustomer.objects.filter(organization=invoice.organization).first()
    no_card = Conflict(
        _("This organization has no saved card; ask it to pay online."), code="no_saved_card"
    )
    if customer is None:
        raise no_card
    try:
        if payment_method:
            found = api.v1.payment_methods.retrieve(payment_method)
            if getattr(found, "customer", None) != customer.stripe_id:
                raise stripe.InvalidRequestError("not this customer's", "payment_method")
        else:
            settings_ = api.v1.customers.retrieve(customer.stripe_id).invoice_settings
            payment_method = getattr(settings_, "default_payment_method", None)
    except stripe.InvalidRequestError as exc:
        raise ValidationError({"payment_method": _("This saved card does not exist.")}) from exc
    except stripe.StripeError as exc:
        raise _provider_error(exc) from exc
    if not payment_method:
        raise no_card
    attempt = _next_attempt(invoice)
    card = CardPayment(
        invoice=invoice,
        attempt=attempt,
        kind=CardPayment.Kind.OFF_SESSION,
        amount=due,
        currency=invoice.currency,
        requested_by=by,
    )
    try:
        intent = api.v1.payment_intents.create(
            params={
                "amount": to_minor(due, invoice.currency),
                "currency": invoice.currency.lower(),
                "customer": customer.stripe_id,
                "payment_method": payment_method,
                "payment_method_types": ["card"],
                "off_session": True,
                "confirm": True,
                "metadata": _metadata(invoice, attempt),
            },
            options={"idempotency_key": f"fabpool-invoice-{invoice.pk}-attempt-{attempt}"},
        )
    except stripe.CardError as exc:
        declined = getattr(getattr(exc, "error", None), "payment_intent", None)
        card.payment_intent = getattr(declined, "id", None)
        card.status = CardPayment.Status.FAILED
        card.failure_message = str(exc.user_message or _("The card was declined."))[:500]
        return save_new(card, by=by)
    except stripe.StripeError as exc:
        raise _provider_error(exc) from exc
    card.payment_intent = intent.id
    save_new(card, by=by)
    if intent.status == "succeeded":
        # Known now; the webhook that follows finds the Payment and adds nothing.
        _record_success(intent.to_dict(), when=timezone.now())
        card.refresh_from_db()
    return card


# --- Saved cards -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedCard:
    """What may be shown of a card: never its number."""

    payment_method: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int

    @property
    def label(self) -> str:
        """How the pages name it: "Visa ending in 4242, expires 12/2034"."""
        return _("%(brand)s ending in %(last4)s, expires %(month)s/%(year)s") % {
            "brand": self.brand.capitalize(),
            "last4": self.last4,
            "month": f"{self.exp_month:02d}",
            "year": self.exp_year,
        }


def _card_of(method) -> SavedCard:
    card = method.card
    return SavedCard(
        payment_method=method.id,
        brand=str(getattr(card, "brand", "") or ""),
        last4=str(getattr(card, "last4", "") or ""),
        exp_month=int(getattr(card, "exp_month", 0) or 0),
        exp_year=int(getattr(card, "exp_year", 0) or 0),
    )


def start_card_setup(*, organization: Organization, by: User) -> tuple[str, str]:
    """A SetupIntent for a card the organization keeps for later (off-session)
    charges: (its id, the client_secret the browser confirms it with, Stripe.js).
    Then `save_card` (the browser's call back) or the `setup_intent.succeeded`
    webhook makes it the organization's default card."""
    _require_payer(by, organization.pk)
    api = stripe_api.client()
    customer = ensure_customer(organization, api)
    try:
        intent = api.v1.setup_intents.create(
            params={
                "customer": customer.stripe_id,
                "usage": "off_session",
                "payment_method_types": ["card"],
                "metadata": {"fabpool_organization_id": str(organization.pk)},
            }
        )
    except stripe.StripeError as exc:
        raise _provider_error(exc) from exc
    return intent.id, intent.client_secret


@transaction.atomic
def save_card(*, organization: Organization, setup_intent: str, by: User) -> SavedCard:
    """Make the card of a confirmed SetupIntent the organization's default card.
    The browser names the SetupIntent only: its card and customer are asked of
    Stripe, so nobody saves a card set up for another organization."""
    _require_payer(by, organization.pk)
    api = stripe_api.client()
    customer = StripeCustomer.objects.filter(organization=organization).first()
    unknown = ValidationError(
        {"setup_intent": _("No card set up for this organization has this id.")}
    )
    if customer is None:
        raise unknown
    try:
        intent = api.v1.setup_intents.retrieve(setup_intent)
    except stripe.InvalidRequestError:
        raise unknown from None
    except stripe.StripeError as exc:
        raise _provider_error(exc) from exc
    if intent.customer != customer.stripe_id:
        raise unknown
    if intent.status != "succeeded" or not intent.payment_method:
        raise Conflict(
            _("The card is not confirmed yet; finish the card form first."),
            code="card_setup_incomplete",
        )
    card = _make_default(api, customer, intent.payment_method)
    record(actor=by, action="card.save", target=organization, changes={"last4": card.last4})
    return card


def _make_default(api: stripe.StripeClient, customer: StripeCustomer, method_id: str) -> SavedCard:
    """Attach the card to the customer (Stripe has done so when the SetupIntent
    named the customer; some servers have not) and make it the default one."""
    try:
        method = api.v1.payment_methods.retrieve(method_id)
        if getattr(method, "customer", None) != customer.stripe_id:
            method = api.v1.payment_methods.attach(
                method_id, params={"customer": customer.stripe_id}
            )
        api.v1.customers.update(
            customer.stripe_id, params={"invoice_settings": {"default_payment_method": method_id}}
        )
    except stripe.StripeError as exc:
        raise _provider_error(exc) from exc
    return _card_of(method)


def saved_card(*, organization: Organization, by: User) -> SavedCard | None:
    """The card a platform would charge off-session, or None."""
    _require_payer(by, organization.pk)
    return _default_card(organization.pk)


def card_to_charge(*, invoice: Invoice, by: User) -> SavedCard | None:
    """For the platform's accountants: the saved card `charge_saved_card` would
    charge for `invoice` (its organization's default card), or None."""
    perms.require_platform_role(by, invoice.platform, CAN_INVOICE)
    return _default_card(invoice.organization_id)


def _default_card(organization_id: int) -> SavedCard | None:
    customer = StripeCustomer.objects.filter(organization_id=organization_id).first()
    if customer is None or not stripe_api.configured():
        return None
    api = stripe_api.client()
    try:
        # One call: the customer with its default card expanded (a page shows it).
        found = api.v1.customers.retrieve(
            customer.stripe_id, params={"expand": ["invoice_settings.default_payment_method"]}
        ).invoice_settings
    except stripe.StripeError as exc:
        raise _provider_error(exc) from exc
    method = getattr(found, "default_payment_method", None)
    return _card_of(method) if method else None


@transaction.atomic
def remove_saved_card(*, organization: Organization, by: User) -> None:
    """Forget the default card: detached from the customer, it can no longer be
    charged. Nothing to remove is not an error (a second click)."""
    _require_payer(by, organization.pk)
    api = stripe_api.client()
    customer = StripeCustomer.objects.filter(organization=organization).first()
    if customer is None:
        return
    try:
        found = api.v1.customers.retrieve(customer.stripe_id).invoice_settings
        method_id = getattr(found, "default_payment_method", None)
        if not method_id:
            return
        api.v1.customers.update(
            customer.stripe_id, params={"invoice_settings": {"default_payment_method": ""}}
        )
        api.v1.payment_methods.detach(method_id)
    except stripe.StripeError as exc:
        raise _provider_error(exc) from exc
    record(actor=by, action="card.remove", target=organization)


# --- Webhooks ----------------------------------------------------------------------------------


def receive_event(payload: bytes, signature: str | None) -> tuple[StripeEvent, bool]:
    """Verify, store once and apply one webhook event. Returns the stored event and
    whether it was new (False for a replay, which changes nothing)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise stripe_api.PaymentsNotConfigured(_("Stripe webhooks are not set up here."))
    invalid = InvalidWebhook(_("This is not an event signed by Stripe."))
    try:
        event = stripe.Webhook.construct_event(payload, signature or "", secret).to_dict()
    except (ValueError, TypeError, AttributeError, KeyError, stripe.SignatureVerificationError):
        raise invalid from None
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    event_id, kind = event.get("id"), event.get("type")
    if not (isinstance(event_id, str) and event_id and isinstance(kind, str)) or not isinstance(
        obj, dict
    ):
        raise invalid
    try:
        created = datetime.fromtimestamp(int(event.get("created") or 0), tz=UTC)
    except (ValueError, TypeError, OverflowError):
        raise invalid from None
    with transaction.atomic():
        found = StripeEvent.objects.filter(stripe_id=event_id[:255]).first()
        if found is not None:
            return found, False
        try:
            with transaction.atomic():
                stored = StripeEvent.objects.create(
                    stripe_id=event_id[:255],
                    type=kind[:100],
                    object_id=str(obj.get("id") or "")[:255],
                    created=created,
                    payload=event,
                )
        except IntegrityError:  # the same event delivered twice at once
            return StripeEvent.objects.get(stripe_id=event_id[:255]), False
        handler = HANDLERS.get(kind)
        outcome = handler(obj, when=created) if handler else "ignored: event type not handled"
        stored.outcome = outcome[:300]
        stored.save(update_fields=["outcome"])
    return stored, True


def _invoice_of(obj: dict) -> tuple[Invoice | None, CardPayment | None]:
    """The invoice a PaymentIntent pays (locked), and fabpool's attempt for it."""
    pi = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
    card = CardPayment.objects.filter(payment_intent=pi).first() if isinstance(pi, str) else None
    if card is not None:
        invoice_id = card.invoice_id
    else:
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        invoice_id = str(metadata.get("fabpool_invoice_id", ""))
        if not invoice_id.isdigit():
            return None, None
    invoice = (
        Invoice.objects.select_for_update().select_related("platform").filter(pk=invoice_id).first()
    )
    if invoice is None or not invoice.is_issued or invoice.kind != Invoice.Kind.INVOICE:
        return None, None
    if card is not None:
        card = CardPayment.objects.select_for_update().get(pk=card.pk)
    return invoice, card


def _record_success(obj: dict, *, when: datetime) -> str:
    invoice, card = _invoice_of(obj)
    if invoice is None:
        return "ignored: not a payment of a fabpool invoice"
    currency = str(obj.get("currency") or "").upper()
    if currency != invoice.currency.upper():
        return f"ignored: paid in {currency}, invoiced in {invoice.currency}"
    received = obj.get("amount_received")
    received = obj.get("amount") if received is None else received
    try:
        amount = from_minor(int(received), currency)
    except (TypeError, ValueError):
        return "ignored: no amount"
    if card is None:  # made outside fabpool's endpoints but naming the invoice
        card = CardPayment(
            invoice=invoice,
            attempt=_next_attempt(invoice),
            payment_intent=obj["id"],
            amount=amount,
            currency=invoice.currency,
        )
    card.status = CardPayment.Status.SUCCEEDED
    card.failure_message = ""
    card.save()
    if amount <= 0 or Payment.objects.filter(stripe_payment_intent=obj["id"]).exists():
        return "already recorded"
    payment = Payment.objects.create(
        invoice=invoice,
        amount=amount,
        method=Payment.Method.CARD,
        reference=obj["id"],
        stripe_payment_intent=obj["id"],
        received_on=timezone.localtime(when, invoice.platform.tzinfo).date(),
    )
    record(actor=None, action="payment.create", target=payment, changes={"amount": amount})
    left = invoice.remaining_due()
    return f"paid {amount}" + (f", {left} still due" if left > 0 else "")


def _payment_failed(obj: dict, *, when: datetime) -> str:
    _invoice, card = _invoice_of(obj)
    if card is None:
        return "ignored: not a payment of a fabpool invoice"
    if card.status == CardPayment.Status.SUCCEEDED:
        return "ignored: this payment already succeeded"  # a late, out-of-order event
    error = obj.get("last_payment_error")
    message = error.get("message") if isinstance(error, dict) else None
    card.status = CardPayment.Status.FAILED
    card.failure_message = str(message or _("The card was declined."))[:500]
    card.save(update_fields=["status", "failure_message", "updated_at"])
    record(actor=None, action="cardpayment.fail", target=card)
    return "failed: invoice stays unpaid"


def _charge_refunded(obj: dict, *, when: datetime) -> str:
    pi = obj.get("payment_intent")
    card = (
        CardPayment.objects.select_for_update().filter(payment_intent=pi).first()
        if isinstance(pi, str)
        else None
    )
    if card is None:
        return "ignored: not a payment of a fabpool invoice"
    try:
        refunded = from_minor(int(obj.get("amount_refunded") or 0), card.currency)
    except (TypeError, ValueError):
        return "ignored: no amount"
    # Totals only grow: an older event arriving late cannot lower what is recorded.
    card.amount_refunded = max(card.amount_refunded, min(refunded, card.amount))
    card.save(update_fields=["amount_refunded", "updated_at"])
    refunds = obj.get("refunds")
    confirmed = 0
    for refund in refunds.get("data", []) if isinstance(refunds, dict) else []:
        if not isinstance(refund, dict) or refund.get("status") not in (None, "succeeded"):
            continue
        metadata = refund.get("metadata") if isinstance(refund.get("metadata"), dict) else {}
        ours = str(metadata.get("fabpool_refund_id", ""))
        rows = StripeRefund.objects.filter(card_payment=card).exclude(
            status=StripeRefund.Status.SUCCEEDED
        )
        rows = rows.filter(pk=ours) if ours.isdigit() else rows.filter(stripe_id=refund.get("id"))
        confirmed += rows.update(
            stripe_id=refund.get("id"), status=StripeRefund.Status.SUCCEEDED, failure_message=""
        )
    return f"refunded {card.amount_refunded} in all; {confirmed} refund(s) confirmed"


def _card_set_up(obj: dict, *, when: datetime) -> str:
    """A SetupIntent confirmed in the browser, should the browser not have called
    back: its card becomes the organization's default one (again, harmlessly)."""
    customer = StripeCustomer.objects.filter(stripe_id=str(obj.get("customer") or "")).first()
    method_id = obj.get("payment_method")
    if customer is None or not isinstance(method_id, str) or not method_id:
        return "ignored: not a card set up for a fabpool organization"
    # Stripe delivers late, and retries for days: a card removed after it was set
    # up must stay removed, whenever the event about its set-up arrives.
    removed_since = AuditEvent.objects.filter(
        action="card.remove",
        target_type=ContentType.objects.get_for_model(Organization),
        target_id=str(customer.organization_id),
        created_at__gte=when,
    )
    if removed_since.exists():
        return "ignored: the organization removed its card since"
    card = _make_default(stripe_api.client(), customer, method_id)
    record(
        actor=None, action="card.save", target=customer.organization, changes={"last4": card.last4}
    )
    return f"card {card.brand} {card.last4} saved"


HANDLERS = {
    "setup_intent.succeeded": _card_set_up,
    "payment_intent.succeeded": _record_success,
    "payment_intent.payment_failed": _payment_failed,
    "charge.refunded": _charge_refunded,
}


# --- Refunds follow credit notes ---------------------------------------------------------------


@receiver(post_save, sender=Invoice, dispatch_uid="billing.payments.refund_on_credit_note")
def refund_on_credit_note(sender, instance: Invoice, created: bool, **kwargs) -> None:
    """When a credit note is issued (the one save that turns it issued), refund by card
    what the customer has now overpaid, up to what was paid by card."""
    just_issued = instance.is_issued and getattr(instance, "_stored_status", None) != "issued"
    if instance.kind != Invoice.Kind.CREDIT_NOTE or not just_issued:
        return
    refunds = plan_refunds(instance)
    if refunds:
        ids = [refund.pk for refund in refunds]
        transaction.on_commit(lambda: send_refunds(ids))


def plan_refunds(note: Invoice) -> list[StripeRefund]:
    invoice = Invoice.objects.select_for_update().get(pk=note.credited_invoice_id)
    overpaid = -invoice.remaining_due()
    already = StripeRefund.objects.filter(card_payment__invoice=invoice).exclude(
        status=StripeRefund.Status.FAILED
    )
    overpaid -= already.aggregate(total=Sum("amount"))["total"] or Decimal(0)
    planned = []
    for card in invoice.card_payments.filter(status=CardPayment.Status.SUCCEEDED).order_by(
        "-created_at", "-pk"
    ):
        if overpaid <= 0:
            break
        taken = card.refunds.exclude(status=StripeRefund.Status.FAILED).aggregate(
            total=Sum("amount")
        )["total"] or Decimal(0)
        amount = min(overpaid, card.amount - taken)
        if amount > 0:
            planned.append(
                StripeRefund.objects.create(credit_note=note, card_payment=card, amount=amount)
            )
            overpaid -= amount
    return planned


def send_refunds(ids: list[int]) -> None:
    """After commit: ask Stripe for each refund. A failure is kept on the row for the
    accountants (the credit note stands either way)."""
    for refund in StripeRefund.objects.filter(pk__in=ids, status=StripeRefund.Status.PENDING):
        card, note = refund.card_payment, refund.credit_note
        try:
            api = stripe_api.client()
            answer = api.v1.refunds.create(
                params={
                    "payment_intent": card.payment_intent,
                    "amount": to_minor(refund.amount, card.currency),
                    "metadata": {"fabpool_refund_id": str(refund.pk), "credit_note": note.number},
                },
                options={"idempotency_key": f"fabpool-refund-{refund.pk}"},
            )
        except (DomainError, stripe.StripeError) as exc:
            log.warning("Refund %s for %s failed: %s", refund.pk, note.number, exc)
            StripeRefund.objects.filter(pk=refund.pk, status=StripeRefund.Status.PENDING).update(
                status=StripeRefund.Status.FAILED, failure_message=str(exc)[:500]
            )
            continue
        # The webhook may have confirmed it already: only a pending row moves to requested.
        StripeRefund.objects.filter(pk=refund.pk, status=StripeRefund.Status.PENDING).update(
            stripe_id=answer.id, status=StripeRefund.Status.REQUESTED
        )
