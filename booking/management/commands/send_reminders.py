from django.core.management.base import BaseCommand

from booking.reminders import send_reminders


class Command(BaseCommand):
    help = (
        "Email a reminder before each confirmed booking, its platform's reminder_hours "
        "ahead. Idempotent, and safe when two copies run at once: run it every minute."
    )

    def handle(self, *args, **options):
        sent = send_reminders()
        self.stdout.write(f"{len(sent)} reminder(s) sent.")
