"""Create a portal user with one role and a generated password, printed once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from portal.errors import UsherError
from portal.roles import ROLE_NAMES
from portal.services import user_create


class Command(BaseCommand):
    help = "Create a user with a role; a strong password is generated and printed once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--role", required=True, choices=ROLE_NAMES)
        parser.add_argument("--email", default="")

    def handle(self, *args, name: str, role: str, email: str, **options) -> None:
        try:
            _, password = user_create(username=name, role=role, email=email, system="create_user")
        except UsherError as exc:
            raise CommandError(exc.message)
        self.stdout.write(f"created {name} ({role}); password (shown once): {password}")
