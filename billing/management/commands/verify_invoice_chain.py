from django.core.management.base import BaseCommand, CommandError

from billing.chain import verify
from billing.models import Invoice
from equipment.models import Platform


class Command(BaseCommand):
    help = (
        "Check every issued invoice and credit note against its hash and its place in "
        "its platform's chain; exits with an error when anything was tampered with."
    )

    def add_arguments(self, parser):
        parser.add_argument("--platform", help="only this platform (slug)")

    def handle(self, *args, platform=None, **options):
        platform_id = None
        if platform:
            platform_id = (
                Platform.objects.filter(slug=platform).values_list("pk", flat=True).first()
            )
            if platform_id is None:
                raise CommandError(f"No platform with the slug {platform!r}.")
        problems = verify(platform_id)
        checked = Invoice.objects.filter(status=Invoice.Status.ISSUED)
        if platform_id:
            checked = checked.filter(platform_id=platform_id)
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"{len(problems)} problem(s) in the invoice chain.")
        self.stdout.write(f"{checked.count()} issued document(s) checked: the chain is intact.")
