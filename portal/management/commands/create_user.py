"""Create a portal user with one role and a generated password, printed once."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.roles import ROLE_NAMES
from portal.services import activity_log_record


class Command(BaseCommand):
    help = "Create a user with a role; a strong password is generated and printed once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--role", required=True, choices=ROLE_NAMES)
        parser.add_argument("--email", default="")

    def handle(self, *args, name: str, role: str, email: str, **options) -> None:
        User = get_user_model()
        if User.objects.filter(username=name).exists():
            raise CommandError(f"user '{name}' already exists")
        password = secrets.token_urlsafe(18)
        with transaction.atomic():
            user = User.objects.create_user(username=name, email=email, password=password, is_staff=True,
                                            is_superuser=(role == "admin"))
            user.groups.add(Group.objects.get(name=role))
            activity_log_record(actor=None, system="create_user", action="user.created",
                                target=("auth.user", user.pk, name), data={"role": role})
        self.stdout.write(f"created {name} ({role}); password (shown once): {password}")
