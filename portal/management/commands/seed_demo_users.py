"""First-run helper for `make run`: one demo user per role, passwords printed once."""

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from portal.roles import ROLE_NAMES


class Command(BaseCommand):
    help = "Create demo users (demo_<role>) when none exist yet; prints each password once."

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        if User.objects.filter(username__startswith="demo_").exists():
            self.stdout.write("demo users exist already (their passwords were printed on the first run)")
            return
        for role in ROLE_NAMES:
            call_command("create_user", f"demo_{role}", role=role, stdout=self.stdout)
