"""API tokens of portal users: created (rotated) and revoked only here, each step logged."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework.authtoken.models import Token

from portal.services.activity import activity_log_record


def _target(user: Any) -> tuple[str, int, str]:
    return ("auth.user", user.pk, user.get_username())


def api_token_create(*, user: Any) -> Token:
    """Give ``user`` a new token; any previous token stops working."""
    with transaction.atomic():
        replaced = Token.objects.filter(user=user).delete()[0] > 0
        token = Token.objects.create(user=user)
        activity_log_record(actor=user, action="api_token.created", target=_target(user),
                            data={"replaced_previous": replaced})
    return token


def api_token_revoke(*, user: Any) -> bool:
    """Delete ``user``'s token; True when there was one."""
    with transaction.atomic():
        deleted = Token.objects.filter(user=user).delete()[0] > 0
        if deleted:
            activity_log_record(actor=user, action="api_token.revoked", target=_target(user))
    return deleted
