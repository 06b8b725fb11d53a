"""First-run steps of `make run` that later issues extend (simulated data, a first model)."""

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Prepare a fresh embedded install: idempotent, safe to run on every start."

    def handle(self, *args, **options) -> None:
        from portal import bootstrap

        for line in bootstrap.run_steps():
            self.stdout.write(line)
