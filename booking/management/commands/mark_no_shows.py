from django.core.management.base import BaseCommand

from booking.services import expire_pending, mark_no_shows


class Command(BaseCommand):
    help = (
        "Mark confirmed bookings not checked in within their platform's grace period as "
        "no-shows, freeing the rest of their slot, and reject pending bookings whose start "
        "came without a decision. Idempotent: safe to run every minute."
    )

    def handle(self, *args, **options):
        marked = mark_no_shows()
        expired = expire_pending()
        self.stdout.write(f"{len(marked)} booking(s) marked as no-show.")
        self.stdout.write(
            f"{len(expired)} pending booking(s) rejected: no decision before the start."
        )
