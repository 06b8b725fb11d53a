"""Portal users: created with one role and a generated password (there is no default password)."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from portal.errors import Conflict, ValidationError
from portal.roles import ROLE_NAMES
from portal.services.activity import activity_log_record


def generate_password() -> str:
    """24 URL-safe random characters (about 144 bits)."""
    return secrets.token_urlsafe(18)


def user_create(
    *, username: str, role: str, email: str = "", actor: Any | None = None, system: str | None = None
) -> tuple[Any, str]:
    """Create a staff user holding ``role``; return it with its generated password, which is
    not stored anywhere in clear: the caller shows it once."""
    username = username.strip()
    if not username:
        raise ValidationError("a user name is required")
    if role not in ROLE_NAMES:
        raise ValidationError(f"unknown role '{role}'", detail={"allowed": list(ROLE_NAMES)})
    User = get_user_model()
    password = generate_password()
    with transaction.atomic():
        if User.objects.filter(username=username).exists():
            raise Conflict(f"user '{username}' already exists")
        user = User.objects.create_user(
            username=username, email=email, password=password, is_staff=True, is_superuser=(role == "admin")
        )
        user.groups.add(Group.objects.get(name=role))
        activity_log_record(actor=actor, system=system, action="user.created",
                            target=("auth.user", user.pk, username), data={"role": role, "email": email})
    return user, password
