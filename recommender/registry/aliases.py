"""The one write of a deployment alias (production, canary, shadow), below the services that decide
whether it may happen: serving's ``deployment_update`` (the one door to live traffic) calls it inside
its transaction, after its checks; the registry's ``model_alias_move`` goes through that door."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from portal.errors import Conflict, ValidationError
from portal.services import activity_log_record
from recommender.models import ModelAlias, ModelVersion


def _actor_label(actor: Any, system: str | None) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return f"system:{system or 'usher'}"


def model_alias_write(
    *, alias: str, version: ModelVersion | None, actor: Any, reason: str, system: str | None = None
) -> ModelAlias:
    """Write an alias move, logged before/after. Only serving's ``deployment_update`` calls this,
    inside its transaction, after the live-traffic check; everyone else calls ``model_alias_move``.
    Rejected or archived versions are never deployed."""
    if alias not in ModelAlias.Name.values:
        raise ValidationError(f"unknown alias '{alias}'", detail={"allowed": ModelAlias.Name.values})
    if not reason.strip():
        raise ValidationError("a reason is required to move an alias")
    with transaction.atomic():
        row, _ = ModelAlias.objects.get_or_create(name=alias)
        row = ModelAlias.objects.select_for_update().get(pk=row.pk)
        if version is not None:
            version = ModelVersion.objects.select_related("registered_model").get(pk=version.pk)
            if version.status in (ModelVersion.Status.REJECTED, ModelVersion.Status.ARCHIVED):
                raise Conflict(f"{version} is {version.status} and cannot be deployed")
        before = {"version_id": row.version_id, "version": str(row.version) if row.version else None}
        if row.version_id == (version.pk if version else None):
            return row
        user = actor if getattr(actor, "is_authenticated", False) else None
        row.version = version
        row.moved_at = timezone.now()
        row.moved_by = user
        row.moved_by_label = _actor_label(actor, system)
        row.reason = reason
        row.save()
        activity_log_record(
            actor=user, system=system, action="model_alias.moved", target=row,
            data={"alias": alias, "before": before,
                  "after": {"version_id": version.pk if version else None, "version": str(version) if version else None},
                  "reason": reason},
        )
    return row
