"""Forms of the billing pages. They only type what people enter (a month, a line,
a payment); every billing rule stays in billing/services.py and billing/runs.py,
whose refusals are put back on the field they name."""

from datetime import date
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from billing import documents
from billing.models import InvoiceLine
from billing.runs import parse_month
from billing.selectors import PaymentStatus
from frontend.forms import DateInput

# Each language in its own words, as language switches do.
LANGUAGE_NAMES = {"fr": "Français", "en": "English"}


class MonthInput(forms.TextInput):
    input_type = "month"

    def format_value(self, value):
        if isinstance(value, date):
            return f"{value:%Y-%m}"
        return super().format_value(value)


class MonthField(forms.Field):
    """A month as YYYY-MM (what <input type="month"> sends), cleaned to its first day."""

    widget = MonthInput
    default_error_messages = {"invalid": _("Give a month as YYYY-MM, e.g. 2026-10.")}

    def to_python(self, value):
        value = (value or "").strip() if isinstance(value, str) else value
        if value in self.empty_values:
            return None
        if isinstance(value, date):
            return value.replace(day=1)
        month = parse_month(value)
        if month is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return month


class RunForm(forms.Form):
    month = MonthField(label=_("Month to bill"))


class PeriodForm(forms.Form):
    """Which month's drafts, or issued documents, to show."""

    month = MonthField(label=_("Month"), required=False)


LINE_FIELDS = ["description", "service_date", "quantity", "unit", "unit_price", "vat_rate"]


class LineForm(forms.Form):
    """A draft's line: the model's own fields (labels, limits, validators); the
    amount is the service's to compute."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(
            forms.fields_for_model(
                InvoiceLine,
                fields=LINE_FIELDS,
                widgets={
                    "service_date": DateInput(),
                    "quantity": forms.NumberInput(attrs={"step": "any"}),
                    "unit_price": forms.NumberInput(attrs={"step": "any"}),
                    "vat_rate": forms.NumberInput(attrs={"step": "any"}),
                },
            )
        )
        # The model's own validators (limits, single line), so that every broken one
        # shows at once next to its field, before the service validates the whole line.
        for name in LINE_FIELDS:
            extra = [
                v
                for v in InvoiceLine._meta.get_field(name).validators
                if v not in self.fields[name].validators
            ]
            self.fields[name].validators = [*self.fields[name].validators, *extra]

    @classmethod
    def of(cls, line: InvoiceLine, **kwargs) -> "LineForm":
        return cls(initial={name: getattr(line, name) for name in LINE_FIELDS}, **kwargs)

    @classmethod
    def blank(cls, **kwargs) -> "LineForm":
        vat_rate = InvoiceLine._meta.get_field("vat_rate").default
        return cls(initial={"quantity": Decimal(1), "unit": "unit", "vat_rate": vat_rate}, **kwargs)


class PaymentForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount received"), max_digits=12, decimal_places=2, min_value=Decimal("0.01")
    )
    received_on = forms.DateField(label=_("Received on"), widget=DateInput())
    reference = forms.CharField(
        label=_("Bank reference"),
        max_length=200,
        required=False,
        help_text=_("As on the bank statement, e.g. VIR SEPA 0042."),
    )


class StatusForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("All"))] + [(s, PaymentStatus.labels[s]) for s in PaymentStatus.filters],
    )
    month = MonthField(label=_("Issued in"), required=False)


EXPORT_CHOICES = [
    ("csv", _("Invoices and their lines (CSV)")),
    ("xlsx", _("Invoices and their lines (Excel)")),
    ("vat", _("VAT summary per rate (CSV)")),
    ("fec", _("FEC, Fichier des écritures comptables")),
    ("zip", _("PDFs of the documents (ZIP)")),
]


class ExportForm(forms.Form):
    month = MonthField(
        label=_("Documents issued in"),
        help_text=_("Exports hold the invoices and credit notes issued that month."),
    )
    export = forms.ChoiceField(label=_("Export"), choices=EXPORT_CHOICES, widget=forms.RadioSelect)
    lang = forms.ChoiceField(
        label=_("Language of the PDFs"),
        required=False,
        choices=[(code, LANGUAGE_NAMES[code]) for code in documents.LANGUAGES],
        help_text=_("For the ZIP of PDFs."),
    )


class SavedCardForm(forms.Form):
    """What the page posts once Stripe.js has confirmed the card: the SetupIntent's
    id only (billing/payments.py asks Stripe for its card and customer)."""

    setup_intent = forms.RegexField(
        regex=r"^seti_[A-Za-z0-9]{1,200}$",
        widget=forms.HiddenInput,
        error_messages={"invalid": _("The card form did not finish: try again.")},
    )
