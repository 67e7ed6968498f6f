"""The accountants' pages (frontend/billing_views.py): the platforms' billing desks
under /billing/, an organization's invoices under /organizations/{id}/invoices/."""

from django.urls import path

from frontend import billing_views as views

DESK = "billing/platforms/<int:pk>"
DOCUMENT = f"{DESK}/documents/<int:doc_pk>"
SME = "organizations/<int:pk>/invoices"

urlpatterns = [
    path("billing/", views.billing_index, name="billing-index"),
    path(f"{DESK}/runs/", views.runs, name="billing-runs"),
    path(f"{DESK}/drafts/", views.drafts, name="billing-drafts"),
    path(f"{DESK}/invoices/", views.invoices, name="billing-invoices"),
    path(f"{DESK}/exports/", views.exports_page, name="billing-exports"),
    path(f"{DOCUMENT}/", views.document, name="billing-document"),
    path(f"{DOCUMENT}/lines/", views.line_add, name="billing-line-add"),
    path(f"{DOCUMENT}/lines/<int:line_pk>/", views.line_edit, name="billing-line-edit"),
    path(
        f"{DOCUMENT}/lines/<int:line_pk>/remove/",
        views.line_remove,
        name="billing-line-remove",
    ),
    path(f"{DOCUMENT}/issue/", views.issue, name="billing-issue"),
    path(f"{DOCUMENT}/credit-note/", views.credit_note, name="billing-credit-note"),
    path(f"{DOCUMENT}/payments/", views.record_payment, name="billing-payment"),
    path(
        f"{DOCUMENT}/charge-saved-card/",
        views.charge_saved_card,
        name="billing-charge-saved-card",
    ),
    path("billing/documents/<int:doc_pk>/pdf/", views.document_pdf, name="billing-pdf"),
    path("invoices/", views.sme_index, name="invoices-index"),
    path(f"{SME}/", views.sme_invoices, name="organization-invoices"),
    path(f"{SME}/saved-card/", views.sme_card_save, name="organization-card-save"),
    path(f"{SME}/saved-card/setup/", views.sme_card_setup, name="organization-card-setup"),
    path(f"{SME}/saved-card/remove/", views.sme_card_remove, name="organization-card-remove"),
    path(f"{SME}/<int:doc_pk>/", views.sme_invoice, name="organization-invoice"),
    path(
        f"{SME}/<int:doc_pk>/pay-by-card/",
        views.sme_pay_by_card,
        name="organization-invoice-pay",
    ),
]
