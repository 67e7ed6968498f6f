from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from billing.runs import bill_period, month_bounds, parse_month
from booking.models import Booking
from equipment.models import Platform


class Command(BaseCommand):
    help = (
        "Bill a platform's month: one draft invoice per organization. Idempotent: "
        "running it again updates the drafts and adds nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--platform", required=True, help="the platform's slug")
        parser.add_argument("--month", required=True, help="YYYY-MM, e.g. 2026-10")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, platform, month, no_progress=False, **options):
        first = parse_month(month)
        if first is None:
            raise CommandError("Give the month as YYYY-MM, e.g. 2026-10.")
        try:
            platform = Platform.objects.get(slug=platform)
        except Platform.DoesNotExist:
            raise CommandError(f"No platform with the slug {platform!r}.") from None
        start, end = month_bounds(first, platform.tzinfo)
        total = Booking.objects.filter(
            machine__platform=platform, start__gte=start, start__lt=end
        ).count()
        with tqdm(
            total=None if no_progress else total,
            unit="booking",
            disable=no_progress,
            file=self.stderr,
        ) as bar:
            run = bill_period(platform=platform, month=first, by=None, progress=bar.update)
        report = run.report
        self.stdout.write(
            f"{platform.slug} {report['month']}: {report['bookings']} bookings, "
            f"{report['draft_invoices']} draft invoices ({report['invoices_created']} new); "
            f"usage records {report['usage_created']} new, {report['usage_updated']} updated, "
            f"{report['usage_removed']} removed."
        )
        for problem in report["problems"]:
            self.stdout.write(f"  booking {problem['booking']}: {problem['message']}")
