"""REST API for billing's files: an issued document's Factur-X PDF, and the
accountants' exports of a platform's period (billing/exports.py).

A file is the answer's body as is (application/pdf, text/csv, …); errors are
JSON in the usual shape whatever the Accept header says, so these views ignore
content negotiation."""

from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer

from billing import documents, exports
from billing.api import MonthField
from billing.models import Invoice
from core.api.filters import MAX_ID
from equipment.models import Platform

PDF_MEDIA = "application/pdf"


class JsonErrors(BaseContentNegotiation):
    """Files are answered as HttpResponses; whatever else (errors) is JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


def file_response(content: bytes, media_type: str, filename: str, inline: bool = False):
    response = HttpResponse(content, content_type=media_type)
    disposition = "inline" if inline else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    # Invoices are personal data: no shared cache keeps them.
    response["Cache-Control"] = "private, no-store"
    return response


class _FileView(generics.GenericAPIView):
    content_negotiation_class = JsonErrors
    renderer_classes = [JSONRenderer]
    filter_backends = []
    pagination_class = None


class PdfQuerySerializer(serializers.Serializer):
    lang = serializers.ChoiceField(
        choices=documents.LANGUAGES,
        required=False,
        help_text="fr or en; default: your language, else French.",
    )


class InvoicePdfView(_FileView):
    queryset = Invoice.objects.none()  # narrowed to what the caller sees

    def get_queryset(self):
        return Invoice.objects.visible_to(self.request.user).select_related("credited_invoice")

    @extend_schema(
        operation_id="invoices_pdf",
        parameters=[
            OpenApiParameter(
                "lang",
                type=str,
                enum=list(documents.LANGUAGES),
                required=False,
                description="fr or en; default: your language, else French.",
            )
        ],
        responses={
            (200, PDF_MEDIA): OpenApiResponse(
                OpenApiTypes.BINARY, description="PDF/A-3b with its Factur-X XML embedded."
            ),
        },
    )
    def get(self, request, *args, **kwargs):
        """An issued invoice or credit note as a Factur-X PDF (PDF/A-3b with the
        EN 16931 CII XML embedded), with every legal mention it carries. Whoever
        sees the invoice gets it: the platform's managers and accountants, the
        SME's administrators and accountants (issued documents only). A draft: 409."""
        invoice = self.get_object()
        query = PdfQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        lang = documents.language_for(query.validated_data.get("lang"), request.user)
        rendered = documents.render_pdf(invoice, lang)
        return file_response(rendered.content, PDF_MEDIA, rendered.filename, inline=True)


# --- Exports -----------------------------------------------------------------------------------

EXPORT_MEDIA = {
    "csv": exports.CSV_MEDIA,
    "xlsx": exports.XLSX_MEDIA,
    "vat": exports.CSV_MEDIA,
    "fec": exports.TEXT_MEDIA,
    "zip": exports.ZIP_MEDIA,
}
MAX_DAYS = 366


class ExportQuerySerializer(serializers.Serializer):
    platform = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    export = serializers.ChoiceField(choices=list(exports.EXPORTERS))
    month = MonthField(required=False, help_text="YYYY-MM; or give start and end.")
    start = serializers.DateField(required=False, help_text="First issue date (included).")
    end = serializers.DateField(required=False, help_text="Last issue date (included).")
    lang = serializers.ChoiceField(
        choices=documents.LANGUAGES, required=False, help_text="The PDFs' language (zip)."
    )

    def validate_platform(self, value):
        found = Platform.objects.visible_to(self.context["request"].user).filter(pk=value).first()
        if found is None:
            raise serializers.ValidationError(
                _('Invalid pk "%(pk)s" - object does not exist.') % {"pk": value}
            )
        return found

    def validate(self, data):
        if "month" in data:
            if "start" in data or "end" in data:
                raise serializers.ValidationError(
                    {"month": [_("Give a month, or start and end, not both.")]}
                )
            data["period"] = exports.Period.month(data["month"])
            return data
        missing = {
            name: [_("Give a month, or start and end.")]
            for name in ("start", "end")
            if name not in data
        }
        if missing:
            raise serializers.ValidationError(missing)
        if data["end"] < data["start"]:
            raise serializers.ValidationError({"end": [_("The end cannot be before the start.")]})
        if (data["end"] - data["start"]).days >= MAX_DAYS:
            raise serializers.ValidationError({"end": [_("At most 366 days at a time.")]})
        data["period"] = exports.Period(data["start"], data["end"])
        return data


class InvoiceExportView(_FileView):
    @extend_schema(
        operation_id="invoice_exports",
        parameters=[ExportQuerySerializer],
        responses={
            (200, exports.CSV_MEDIA): OpenApiResponse(
                OpenApiTypes.STR, description="csv: documents and lines; vat: VAT per rate."
            ),
            (200, exports.XLSX_MEDIA): OpenApiResponse(
                OpenApiTypes.BINARY, description="xlsx: documents and lines."
            ),
            (200, exports.TEXT_MEDIA): OpenApiResponse(
                OpenApiTypes.STR, description="fec: the FEC file (tab-separated)."
            ),
            (200, exports.ZIP_MEDIA): OpenApiResponse(
                OpenApiTypes.BINARY, description="zip: one Factur-X PDF per document."
            ),
        },
    )
    def get(self, request, *args, **kwargs):
        """A platform's issued documents dated in a month (or from start to end, at
        most 366 days) for accounting: `csv`/`xlsx` (a row per line, credit notes
        negative), `vat` (base, VAT and total per rate), `fec` (the French FEC,
        one balanced entry per document) or `zip` (their PDFs). The platform's
        accountants and managers take every export; an SME's administrators and
        accountants take csv, xlsx and zip of their own organization's documents."""
        query = ExportQuerySerializer(data=request.query_params, context={"request": request})
        query.is_valid(raise_exception=True)
        data = query.validated_data
        options = {}
        if data["export"] == "zip":
            options["lang"] = documents.language_for(data.get("lang"), request.user)
        exporter = exports.export_for(
            user=request.user,
            platform=data["platform"],
            period=data["period"],
            identifier=data["export"],
            **options,
        )
        rendered = exporter.render()
        media = rendered.media_type
        if media.startswith("text/"):
            media = f"{media}; charset=utf-8"
        return file_response(rendered.content, media, rendered.filename)
