"""REST API for billing's files: an issued document's Factur-X PDF, and the
accountants' exports of a platform's period (billing/exports.py).

A file is the answer's body as is (application/pdf, text/csv, …); errors are
JSON in the usual shape whatever the Accept header says, so these views ignore
content negotiation."""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer

from billing import documents
from billing.models import Invoice

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
