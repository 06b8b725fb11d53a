"""Helpers shared by the releases services: who acted, and notifications after commit."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from portal.errors import ValidationError
from releases import integrations


def actor_label(actor: Any | None, system: str | None) -> str:
    """The name an actor is recorded under: the user name, or ``system:<task>``."""
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return f"system:{system or 'usher'}"


def human(actor: Any | None) -> Any | None:
    """The user when ``actor`` is a signed-in person, else None (schedules and tasks)."""
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


REASON_MAX = 2000


def require_reason(reason: str, what: str = "a reason") -> str:
    """The reason every release action carries: required, at most ``REASON_MAX`` characters (the
    rule of the API and of the portal's forms alike)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(f"{what} is required", field="reason")
    if len(reason) > REASON_MAX:
        raise ValidationError(f"reason: at most {REASON_MAX} characters, got {len(reason)}", field="reason")
    return reason


def notify_on_commit(*, event: str, subject: str, body: str, payload: dict, emails: list[str] | None = None) -> None:
    """Send the release notification (e-mail + signed webhooks) once the change is committed."""
    transaction.on_commit(
        lambda: integrations.notify(event=event, subject=subject, body=body, payload=payload, emails=emails or [])
    )
