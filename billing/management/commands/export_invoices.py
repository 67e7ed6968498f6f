from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing import documents, exports
from billing.runs import parse_month
from equipment.models import Platform


class Command(BaseCommand):
    help = (
        "Export a platform's issued invoices and credit notes of a period for accounting: "
        "csv or xlsx (a row per line), vat (VAT per rate), fec (the French FEC file) or "
        "zip (their Factur-X PDFs)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--platform", required=True, help="the platform's slug")
        parser.add_argument("--month", help="YYYY-MM, e.g. 2026-10")
        parser.add_argument("--start", help="first issue date, YYYY-MM-DD (with --end)")
        parser.add_argument("--end", help="last issue date, YYYY-MM-DD (included)")
        parser.add_argument("--format", required=True, choices=sorted(exports.EXPORTERS))
        parser.add_argument("--lang", choices=documents.LANGUAGES, default="fr", help="zip's PDFs")
        parser.add_argument("--output", required=True, help="the file to write")

    def handle(self, *args, platform, month, start, end, format, lang, output, **options):
        try:
            platform = Platform.objects.get(slug=platform)
        except Platform.DoesNotExist:
            raise CommandError(f"No platform with the slug {platform!r}.") from None
        period = self._period(month, start, end)
        extra = {"lang": lang} if format == "zip" else {}
        rendered = exports.EXPORTERS[format](platform, period, **extra).render()
        Path(output).write_bytes(rendered.content)
        self.stderr.write(f"{output}: {len(rendered.content)} bytes ({rendered.filename})")

    @staticmethod
    def _period(month, start, end) -> exports.Period:
        if month and (start or end):
            raise CommandError("Give --month, or --start and --end, not both.")
        if month:
            first = parse_month(month)
            if first is None:
                raise CommandError("Give the month as YYYY-MM, e.g. 2026-10.")
            return exports.Period.month(first)
        if not (start and end):
            raise CommandError("Give --month, or --start and --end.")
        try:
            period = exports.Period(date.fromisoformat(start), date.fromisoformat(end))
        except ValueError:
            raise CommandError("Give dates as YYYY-MM-DD.") from None
        if period.end < period.start:
            raise CommandError("--end cannot be before --start.")
        return period
