from django.core.management.base import BaseCommand

from booking.services import mark_no_shows


class Command(BaseCommand):
    help = (
        "Mark confirmed bookings not checked in within their platform's grace period as "
        "no-shows, freeing the rest of their slot. Idempotent: safe to run every minute."
    )

    def handle(self, *args, **options):
        marked = mark_no_shows()
        self.stdout.write(f"{len(marked)} booking(s) marked as no-show.")
