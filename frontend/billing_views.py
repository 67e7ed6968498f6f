"""Accountants' pages.

- Platform side, one billing desk per platform: billing runs, the drafts of a
  month (review, edit lines, issue), issued documents (status, PDF, credit notes,
  bank transfers received) and exports for accounting. The platform's accountants
  act; its managers read, as the API lets them.
- SME side: an organization's issued invoices and credit notes for its
  administrators and accountants, their PDFs, and payment by card where Stripe is
  configured (bank transfer details otherwise); there too, the card the
  organization saves for its platforms to charge off-session, which a platform's
  accountant then charges from the invoice's page.

Views only type what people enter: every write is billing/services.py,
billing/runs.py or billing/payments.py (which check the role again), every read
starts from `Invoice.objects.visible_to` and billing/selectors.py. A platform or
an organization where the user holds none of the page's roles, and another one's
document, answer 404."""

from datetime import date, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth
from django.forms import Form
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing import documents, exports, payments, services, stripe_api
from billing.files_api import PDF_MEDIA, file_response
from billing.models import (
    FINANCE_ROLES,
    BillingRun,
    BillingSettings,
    Invoice,
    money,
    paying_organizations,
)
from billing.runs import bill_period
from billing.selectors import PaymentStatus, with_balance
from core.errors import DomainError
from core.models import Organization
from equipment import permissions as perms
from equipment.models import Platform
from frontend.billing_forms import (
    ExportForm,
    LineForm,
    PaymentForm,
    PeriodForm,
    RunForm,
    SavedCardForm,
    StatusForm,
)
from frontend.outcomes import onto, reported
from frontend.templatetags.billing_tags import money as shown_money

FINANCE = set(FINANCE_ROLES)  # who opens a platform's billing desk
RUNS_SHOWN = 20
PER_PAGE = 50
PAYABLE = (PaymentStatus.DUE, PaymentStatus.OVERDUE)


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _local_today(platform: Platform) -> date:
    return timezone.localtime(timezone.now(), platform.tzinfo).date()


def _page(request, queryset):
    return Paginator(queryset, PER_PAGE).get_page(request.GET.get("page"))


# --- The platform's billing desk ---------------------------------------------------------------


def _platform(request, pk: int) -> Platform:
    return get_object_or_404(Platform.objects.staffed_by(request.user, FINANCE), pk=pk)


def _desk(request, platform: Platform, **extra) -> dict:
    return {
        "platform": platform,
        "platforms": Platform.objects.staffed_by(request.user, FINANCE).order_by("name"),
        "can_invoice": perms.has_platform_role(request.user, platform, services.CAN_INVOICE),
        "today": _local_today(platform),
        **extra,
    }


def _documents(request, platform: Platform):
    return Invoice.objects.visible_to(request.user).filter(platform=platform)


@login_required
def billing_index(request):
    platform = Platform.objects.staffed_by(request.user, FINANCE).order_by("name").first()
    if platform is None:
        raise Http404
    return redirect("billing-runs", pk=platform.pk)


def _previous_month(today: date) -> date:
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


@login_required
@require_http_methods(["GET", "POST"])
def runs(request, pk):
    """Billing runs: pick a month and run it (synchronously: the page shows a
    progress bar meanwhile, then what the run did), and the runs before."""
    platform = _platform(request, pk)
    context = _desk(request, platform)
    form = RunForm(
        request.POST if request.method == "POST" else None,
        initial={"month": _previous_month(context["today"])},
    )
    run, status = None, 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            with onto(form) as outcome:
                run = bill_period(
                    platform=platform, month=form.cleaned_data["month"], by=request.user
                )
            if outcome.ok:
                status = 200
                if not _is_htmx(request):
                    messages.success(request, _("Billing run done."))
                    return redirect(f"{reverse('billing-runs', args=[platform.pk])}?run={run.pk}")
    elif request.GET.get("run", "").isdigit():
        run = BillingRun.objects.filter(platform=platform, pk=int(request.GET["run"])).first()
    context.update(
        form=form,
        run=run,
        runs=list(
            BillingRun.objects.filter(platform=platform).select_related("started_by")[:RUNS_SHOWN]
        ),
        has_settings=BillingSettings.objects.filter(platform=platform).exists(),
    )
    if _is_htmx(request) and request.method == "POST":
        # htmx swaps 4xx answers only when told to; the panel is a normal answer.
        return render(request, "frontend/billing/_runs_panel.html", context)
    return render(request, "frontend/billing/runs.html", context, status=status)


@login_required
@require_GET
def drafts(request, pk):
    """The draft invoices of a month (the latest with drafts unless asked), and
    draft credit notes, each to review and issue."""
    platform = _platform(request, pk)
    context = _desk(request, platform)
    base = _documents(request, platform).filter(status=Invoice.Status.DRAFT)
    months = list(
        base.filter(kind=Invoice.Kind.INVOICE)
        .order_by("-period_start")
        .values_list("period_start", flat=True)
        .distinct()
    )
    form = PeriodForm(request.GET)
    status = 200
    if form.is_valid():
        month = form.cleaned_data["month"] or (months[0] if months else None)
    else:
        month, status = None, 400
    invoices = (
        base.filter(kind=Invoice.Kind.INVOICE, period_start=month)
        .select_related("organization")
        .annotate(line_count=Count("lines"))
        .order_by("organization__legal_name", "pk")
    )
    credit_notes = (
        base.filter(kind=Invoice.Kind.CREDIT_NOTE)
        .select_related("organization", "credited_invoice")
        .annotate(line_count=Count("lines"))
        .order_by("-created_at", "-pk")
    )
    context.update(
        form=form,
        month=month,
        months=months,
        page=_page(request, invoices),
        sums=invoices.aggregate(
            count=Count("pk"), without_tax=Sum("total_without_tax"), with_tax=Sum("total_with_tax")
        ),
        credit_notes=list(credit_notes),
    )
    return render(request, "frontend/billing/drafts.html", context, status=status)


@login_required
@require_GET
def invoices(request, pk):
    """Issued invoices and credit notes, newest first, with where each stands."""
    platform = _platform(request, pk)
    context = _desk(request, platform)
    form = StatusForm(request.GET)
    found = (
        with_balance(_documents(request, platform), context["today"])
        .filter(status=Invoice.Status.ISSUED)
        .select_related("organization", "credited_invoice")
        .order_by("-issue_date", "-chain_index")
    )
    status = 200
    if form.is_valid():
        if form.cleaned_data["status"]:
            found = found.filter(payment_status=form.cleaned_data["status"])
        if form.cleaned_data["month"]:
            period = exports.Period.month(form.cleaned_data["month"])
            found = found.filter(issue_date__gte=period.start, issue_date__lte=period.end)
    else:
        status = 400
    context.update(form=form, page=_page(request, found))
    return render(request, "frontend/billing/invoices.html", context, status=status)


def _document(request, platform: Platform, doc_pk: int, today: date) -> Invoice:
    documents_ = with_balance(_documents(request, platform), today).select_related(
        "organization", "credited_invoice", "issued_by"
    )
    return get_object_or_404(documents_, pk=doc_pk)


def _document_page(request, platform, invoice, *, forms=None, status=200):
    """One document: its lines, VAT per rate and totals; on a draft, the line
    forms and "issue"; once issued, payments, credit notes and the PDF."""
    forms = forms or {}
    context = _desk(request, platform)
    editable = context["can_invoice"] and not invoice.is_issued
    lines = list(invoice.lines.order_by("service_date", "pk"))
    # The line being edited: the one whose form came back with errors, or ?edit=.
    wanted = next((key for key in forms if isinstance(key, int)), None)
    if wanted is None and request.GET.get("edit", "").isdigit():
        wanted = int(request.GET["edit"])
    editing = next((line for line in lines if line.pk == wanted), None) if editable else None
    if editing is not None:
        editing.form = forms.get(editing.pk) or LineForm.of(editing, prefix=f"line-{editing.pk}")
    payable = invoice.payment_status in PAYABLE
    card, card_unknown = None, None
    if context["can_invoice"] and payable and stripe_api.configured():
        try:  # asked of Stripe: the card "charge the saved card" would charge
            card = payments.card_to_charge(invoice=invoice, by=request.user)
        except DomainError as error:
            card_unknown = error.message
    context.update(
        invoice=invoice,
        lines=lines,
        editable=editable,
        editing=editing,
        new_line=forms.get("new") or LineForm.blank(prefix="new"),
        payments=list(invoice.payments.select_related("recorded_by")),
        credit_notes=list(invoice.credit_notes.order_by("created_at", "pk")),
        payment_form=forms.get("payment")
        or PaymentForm(
            initial={"amount": money(max(invoice.balance_due, 0)), "received_on": context["today"]}
        ),
        payable=payable,
        saved_card=card,
        saved_card_unknown=card_unknown,
        card_payments=list(invoice.card_payments.order_by("attempt")) if invoice.is_issued else [],
    )
    return render(request, "frontend/billing/document.html", context, status=status)


@login_required
@require_GET
def document(request, pk, doc_pk):
    platform = _platform(request, pk)
    return _document_page(
        request, platform, _document(request, platform, doc_pk, _local_today(platform))
    )


def _document_action(request, pk, doc_pk):
    platform = _platform(request, pk)
    return platform, _document(request, platform, doc_pk, _local_today(platform))


def _back_to(invoice: Invoice):
    return redirect("billing-document", pk=invoice.platform_id, doc_pk=invoice.pk)


@login_required
@require_POST
def line_add(request, pk, doc_pk):
    platform, invoice = _document_action(request, pk, doc_pk)
    form = LineForm(request.POST, prefix="new")
    if form.is_valid():
        with onto(form) as outcome:
            services.add_line(invoice=invoice, by=request.user, **form.cleaned_data)
        if outcome.ok:
            messages.success(request, _("Line added."))
            return _back_to(invoice)
    return _document_page(request, platform, invoice, forms={"new": form}, status=400)


@login_required
@require_POST
def line_edit(request, pk, doc_pk, line_pk):
    platform, invoice = _document_action(request, pk, doc_pk)
    line = get_object_or_404(invoice.lines.all(), pk=line_pk)
    form = LineForm(request.POST, prefix=f"line-{line.pk}")
    if form.is_valid():
        with onto(form) as outcome:
            services.update_line(line=line, by=request.user, data=form.cleaned_data)
        if outcome.ok:
            messages.success(request, _("Line saved."))
            return _back_to(invoice)
    return _document_page(request, platform, invoice, forms={line.pk: form}, status=400)


def _simple_action(service, done):
    """A button that calls a service on the document, then goes back to it."""

    @login_required
    @require_POST
    def view(request, pk, doc_pk, **kwargs):
        invoice = _document_action(request, pk, doc_pk)[1]
        result = invoice  # back to it when the service refuses
        with reported(request, done=lambda: done(result)):
            result = service(request, invoice, **kwargs)
        return _back_to(result)

    return view


def _remove_line(request, invoice, line_pk):
    services.remove_line(line=get_object_or_404(invoice.lines.all(), pk=line_pk), by=request.user)
    return invoice


line_remove = _simple_action(_remove_line, lambda invoice: _("Line removed."))
issue = _simple_action(
    lambda request, invoice: services.issue_invoice(invoice=invoice, by=request.user),
    lambda issued: _("%(number)s issued.") % {"number": issued.number},
)
credit_note = _simple_action(
    lambda request, invoice: services.create_credit_note(invoice=invoice, by=request.user),
    lambda note: _(
        "Credit note drafted with every line of the invoice: remove or change lines for "
        "a partial credit, then issue it."
    ),
)


@login_required
@require_POST
def record_payment(request, pk, doc_pk):
    platform, invoice = _document_action(request, pk, doc_pk)
    form = PaymentForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        with onto(form) as outcome:
            services.record_payment(
                invoice=invoice,
                by=request.user,
                amount=data["amount"],
                received_on=data["received_on"],
                reference=data["reference"],
            )
        if outcome.ok:
            messages.success(request, _("Payment recorded."))
            return _back_to(invoice)
    return _document_page(request, platform, invoice, forms={"payment": form}, status=400)


@login_required
@require_POST
def charge_saved_card(request, pk, doc_pk):
    """Charge the organization's saved card off-session for what remains due (the
    API's service). A decline, no saved card or an invoice already paid are said
    on the invoice's page; the failed attempt is listed there."""
    invoice = _document_action(request, pk, doc_pk)[1]
    charged = None
    with reported(request, done=lambda: _charged(charged)):
        charged = payments.charge_saved_card(invoice=invoice, by=request.user)
    return _back_to(invoice)


def _charged(card) -> str:
    amount = shown_money(card.amount, card.currency)
    if card.status == card.Status.SUCCEEDED:
        return _("%(amount)s charged to the saved card: the invoice is paid.") % {"amount": amount}
    return _(
        "%(amount)s asked of the saved card: the invoice shows as paid once Stripe confirms it."
    ) % {"amount": amount}


@login_required
@require_GET
def exports_page(request, pk):
    """Exports of the documents issued in a month: the form, and the file itself
    once the form is valid (`export_for` decides who takes which)."""
    platform = _platform(request, pk)
    context = _desk(request, platform)
    if "export" in request.GET:
        form = ExportForm(request.GET)
        if form.is_valid():
            data = form.cleaned_data
            options = {}
            if data["export"] == "zip":
                options["lang"] = documents.language_for(
                    data["lang"] or translation.get_language(), request.user
                )
            with onto(form) as outcome:
                exporter = exports.export_for(
                    user=request.user,
                    platform=platform,
                    period=exports.Period.month(data["month"]),
                    identifier=data["export"],
                    **options,
                )
                rendered = exporter.render()
            if outcome.ok:
                media = rendered.media_type
                if media.startswith("text/"):
                    media = f"{media}; charset=utf-8"
                return file_response(rendered.content, media, rendered.filename)
        status = 400
    else:
        form = ExportForm(
            initial={
                "month": context["today"].replace(day=1),
                "export": "csv",
                "lang": translation.get_language(),
            }
        )
        status = 200
    issued = (
        _documents(request, platform)
        .filter(status=Invoice.Status.ISSUED)
        .annotate(month=TruncMonth("issue_date"))
        .order_by("-month")
        .values("month")
        .annotate(
            invoices=Count("pk", filter=Q(kind=Invoice.Kind.INVOICE)),
            credit_notes=Count("pk", filter=Q(kind=Invoice.Kind.CREDIT_NOTE)),
        )[:12]
    )
    context.update(form=form, months=list(issued))
    return render(request, "frontend/billing/exports.html", context, status=status)


# --- Documents' PDFs (both sides) --------------------------------------------------------------


@login_required
@require_GET
def document_pdf(request, doc_pk):
    """An issued document's Factur-X PDF, for whoever sees it; in the page's language
    unless ?lang= says otherwise."""
    invoice = get_object_or_404(
        Invoice.objects.visible_to(request.user)
        .filter(status=Invoice.Status.ISSUED)
        .select_related("credited_invoice"),
        pk=doc_pk,
    )
    lang = documents.language_for(
        request.GET.get("lang") or translation.get_language(), request.user
    )
    rendered = documents.render_pdf(invoice, lang)
    return file_response(rendered.content, PDF_MEDIA, rendered.filename)


# --- The SME's invoices ------------------------------------------------------------------------


def _organization(request, pk: int) -> Organization:
    return get_object_or_404(paying_organizations(request.user), pk=pk)


def _issued_to(request, organization: Organization, today: date):
    return with_balance(
        Invoice.objects.visible_to(request.user).filter(
            organization=organization, status=Invoice.Status.ISSUED
        ),
        today,
    )


@login_required
def sme_index(request):
    organization = paying_organizations(request.user).order_by("legal_name").first()
    if organization is None:
        raise Http404
    return redirect("organization-invoices", pk=organization.pk)


@login_required
@require_GET
def sme_invoices(request, pk):
    return _sme_invoices_page(request, _organization(request, pk))


def _sme_invoices_page(request, organization, *, setup=None, setup_form=None, status=200):
    """The organization's documents and, where Stripe is configured, its saved card
    (asked of Stripe), or the card form of a SetupIntent just opened (`setup`), or
    why one could not be opened (`setup_form`'s errors: Stripe is not asked again)."""
    card_enabled = stripe_api.browser_payments_enabled()
    card, card_unknown = None, None
    setup_failed = setup_form is not None and bool(setup_form.errors)
    if card_enabled and setup is None and not setup_failed:
        try:
            card = payments.saved_card(organization=organization, by=request.user)
        except DomainError as error:
            card_unknown = error.message
    context = {
        "organization": organization,
        "card_enabled": card_enabled,
        "saved_card": card,
        "saved_card_unknown": card_unknown,
        "setup": setup,
        "setup_failed": setup_failed,
        "setup_form": setup_form or Form(),
        "stripe_js_url": settings.STRIPE_JS_URL,
        "stripe_key": settings.STRIPE_PUBLISHABLE_KEY,
    }
    if _is_htmx(request) and request.method == "POST":
        # htmx swaps 4xx answers only when told to; the panel is a normal answer.
        response = render(request, "frontend/billing/_saved_card_panel.html", context)
    else:
        # Its invoices may come from platforms in several time zones: overdue from the
        # day after the due date in UTC, an hour or two late at worst.
        today = timezone.localdate()
        found = (
            _issued_to(request, organization, today)
            .select_related("platform", "credited_invoice")
            .order_by("-issue_date", "-pk")
        )
        context.update(
            page=_page(request, found),
            due=found.filter(payment_status__in=PAYABLE).aggregate(
                total=Sum("balance_due"),
                count=Count("pk"),
                overdue=Count("pk", filter=Q(payment_status=PaymentStatus.OVERDUE)),
            ),
        )
        response = render(request, "frontend/billing/sme_invoices.html", context, status=status)
    if setup is not None:
        patch_cache_control(response, private=True, no_store=True)  # it holds a client secret
    return response


@login_required
@require_POST
def sme_card_setup(request, pk):
    """A SetupIntent for the card the organization saves (billing/payments.py); the
    panel then confirms it with Stripe.js, which sends the card to Stripe, never to
    fabpool, and posts the SetupIntent's id to `sme_card_save`."""
    organization = _organization(request, pk)
    form = Form(request.POST)
    with onto(form) as outcome:
        setup_intent, secret = payments.start_card_setup(organization=organization, by=request.user)
    if not outcome.ok:
        return _sme_invoices_page(request, organization, setup_form=form, status=409)
    setup = {"setup_intent": setup_intent, "client_secret": secret}
    return _sme_invoices_page(request, organization, setup=setup)


@login_required
@require_POST
def sme_card_save(request, pk):
    """The card of a SetupIntent Stripe.js confirmed becomes the organization's saved
    card (billing/payments.py asks Stripe whose it is)."""
    organization = _organization(request, pk)
    form = SavedCardForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["setup_intent"]))
        return redirect("organization-invoices", pk=organization.pk)
    saved = None
    with reported(request, done=lambda: _card_saved(saved)):
        saved = payments.save_card(
            organization=organization,
            setup_intent=form.cleaned_data["setup_intent"],
            by=request.user,
        )
    return redirect("organization-invoices", pk=organization.pk)


def _card_saved(card) -> str:
    return _(
        "Card saved: %(brand)s ending in %(last4)s. Your platforms may now charge it for "
        "your invoices."
    ) % {"brand": card.brand.capitalize(), "last4": card.last4}


@login_required
@require_POST
def sme_card_remove(request, pk):
    organization = _organization(request, pk)
    with reported(request, done=lambda: _("Card removed: it can no longer be charged.")):
        payments.remove_saved_card(organization=organization, by=request.user)
    return redirect("organization-invoices", pk=organization.pk)


def _sme_page(request, organization, invoice, *, card=None, card_error=None, status=200):
    seller = (
        BillingSettings.objects.filter(platform_id=invoice.platform_id)
        .values("legal_name", "iban", "bic")
        .first()
    )
    payable = invoice.payment_status in PAYABLE
    context = {
        "organization": organization,
        "invoice": invoice,
        "lines": list(invoice.lines.order_by("service_date", "pk")),
        "payments": list(invoice.payments.all()),
        "credit_notes": list(
            invoice.credit_notes.filter(status=Invoice.Status.ISSUED).order_by("issue_date", "pk")
        ),
        "payable": payable,
        "seller": seller,
        "card_enabled": payable and stripe_api.browser_payments_enabled(),
        "card": card,
        "card_error": card_error,
        "stripe_js_url": settings.STRIPE_JS_URL,
        "stripe_key": settings.STRIPE_PUBLISHABLE_KEY,
    }
    template = "frontend/billing/sme_invoice.html"
    if _is_htmx(request) and request.method == "POST":
        template = "frontend/billing/_card_panel.html"
        status = 200  # htmx swaps 4xx answers only when told to
    response = render(request, template, context, status=status)
    if card is not None:
        patch_cache_control(response, private=True, no_store=True)  # it holds a client secret
    return response


def _sme_document(request, pk, doc_pk):
    organization = _organization(request, pk)
    invoice = get_object_or_404(
        _issued_to(request, organization, timezone.localdate()).select_related(
            "platform", "credited_invoice"
        ),
        pk=doc_pk,
    )
    return organization, invoice


@login_required
@require_GET
def sme_invoice(request, pk, doc_pk):
    organization, invoice = _sme_document(request, pk, doc_pk)
    return _sme_page(request, organization, invoice)


@login_required
@require_POST
def sme_pay_by_card(request, pk, doc_pk):
    """A PaymentIntent for what remains due (billing/payments.py); the page then
    confirms it with Stripe.js, which sends the card to Stripe, never to fabpool.
    The invoice shows as paid once Stripe's webhook confirms the payment."""
    organization, invoice = _sme_document(request, pk, doc_pk)
    try:
        card, secret = payments.pay_by_card(invoice=invoice, by=request.user)
    except DomainError as error:
        return _sme_page(request, organization, invoice, card_error=error.message, status=409)
    card.client_secret = secret
    return _sme_page(request, organization, invoice, card=card)
