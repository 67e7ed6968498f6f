from django.core.management.base import BaseCommand

from booking.notifications import LOST_AFTER, requeue_lost_deliveries


class Command(BaseCommand):
    help = (
        "Queue again the booking email tasks left running by a worker that died "
        f"(running for over {LOST_AFTER.total_seconds() / 60:.0f} minutes): the next "
        "db_worker sends them. Idempotent: safe to run every few minutes."
    )

    def handle(self, *args, **options):
        count = requeue_lost_deliveries()
        self.stdout.write(f"{count} email task(s) queued again.")
