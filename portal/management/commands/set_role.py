"""Give a user one role (or deactivate them) from the command line, through the user service: a
change revokes their API tokens and ends their sessions, and is written to the activity log."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from portal.errors import UsherError
from portal.roles import ROLE_NAMES
from portal.services import user_deactivate, user_set_role


class Command(BaseCommand):
    help = "Set a user's role (e.g. an account made by createsuperuser, which holds none), or --deactivate it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--role", choices=ROLE_NAMES)
        group.add_argument("--deactivate", action="store_true")

    def handle(self, *args, name: str, role: str | None, deactivate: bool, **options) -> None:
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise CommandError(f"no user named '{name}'")
        try:
            if deactivate:
                user_deactivate(user=user, system="set_role", reason="from the command line")
                self.stdout.write(f"{name} deactivated; tokens and sessions ended")
            else:
                user_set_role(user=user, role=role, system="set_role")
                self.stdout.write(f"{name} is {role}; tokens and sessions ended")
        except UsherError as exc:
            raise CommandError(exc.message)
