"""Writes of the model registry: registering versions, their status, tags, promotion requests,
and moving the deployment aliases. Every change is recorded in the activity log."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from portal.errors import Conflict, ValidationError
from portal.permissions import may, require
from portal.services import activity_log_record, review_request_create
from recommender.models import ModelAlias, ModelVersion, RegisteredModel, TrainingRun

PROMOTION_KIND = "model_promotion"
BOOTSTRAP_SYSTEM = "bootstrap"


def _actor_label(actor: Any, system: str | None) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return f"system:{system or 'usher'}"


def registered_model_get_or_create(*, name: str | None = None) -> RegisteredModel:
    """The registered model of that name (default: ``RECOMMENDER['REGISTERED_MODEL_NAME']``)."""
    name = (name or settings.RECOMMENDER["REGISTERED_MODEL_NAME"]).strip()
    if not name:
        raise ValidationError("a registered model needs a name")
    model, _ = RegisteredModel.objects.get_or_create(name=name)
    return model


def model_version_register(
    *,
    run: TrainingRun,
    artifact_path: str,
    artifact_sha256: str,
    artifact_size: int,
    artifact_kind: str,
    metrics: dict,
    description: str = "",
    tags: list[str] | None = None,
    actor: Any | None = None,
    system: str | None = None,
) -> ModelVersion:
    """Register the next version of the run's registered model (one per run, numbered 1, 2, ...).

    Runs in the caller's transaction: the version exists exactly when the run is marked succeeded.
    The training task registers as the system; a person doing it needs ``model.build``.
    """
    require(actor, "model.build", system=system, target=run)
    with transaction.atomic():
        model = registered_model_get_or_create(name=run.registered_model_name or None)
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        if ModelVersion.objects.filter(training_run=run).exists():
            raise Conflict(f"run #{run.pk} already registered a model version")
        number = (model.versions.aggregate(n=Max("version"))["n"] or 0) + 1
        version = ModelVersion.objects.create(
            registered_model=model, version=number, training_run=run, algorithm=run.algorithm,
            artifact_path=artifact_path, artifact_sha256=artifact_sha256, artifact_size=artifact_size,
            artifact_kind=artifact_kind, metrics=metrics, description=description, tags=list(tags or []),
        )
        activity_log_record(
            actor=actor, system=system, action="model_version.registered", target=version,
            data={"run": run.pk, "snapshot": run.snapshot_id, "algorithm": run.algorithm,
                  "artifact_sha256": artifact_sha256, "artifact_size": artifact_size},
        )
    return version


def model_version_set_status(
    *, version: ModelVersion, status: str, actor: Any | None, reason: str, system: str | None = None
) -> ModelVersion:
    """Change a version's review status (candidate, approved, rejected, archived).

    Archiving (or restoring a candidate) is ``model.build``. Approving or rejecting follows a
    reviewer's decision (``review.decide``) or an approved canary completed by an operator
    (``release.operate``); no page, API or admin action sets those two directly."""
    if status not in ModelVersion.Status.values:
        raise ValidationError(f"unknown status '{status}'", detail={"allowed": ModelVersion.Status.values})
    work = "model.build"
    if status in (ModelVersion.Status.APPROVED, ModelVersion.Status.REJECTED):
        work = "release.operate" if may(actor, "release.operate") else "review.decide"
    require(actor, work, system=system, target=version)
    if not reason.strip():
        raise ValidationError("a reason is required to change a version's status")
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        before = locked.status
        if status == ModelVersion.Status.ARCHIVED and locked.aliases.exists():
            names = ", ".join(locked.aliases.values_list("name", flat=True))
            raise Conflict(f"{locked} is deployed as {names}; move the alias first")
        if before == status:
            return locked
        locked.status = status
        locked.save(update_fields=["status"])
        activity_log_record(actor=actor, system=system, action="model_version.status_changed", target=locked,
                            data={"before": before, "after": status, "reason": reason})
    return locked


def model_version_update(
    *, version: ModelVersion, actor: Any, tags: list[str] | None = None, description: str | None = None,
    system: str | None = None,
) -> ModelVersion:
    """Edit the descriptive fields (tags, description); the artifact and metrics never change (``model.build``)."""
    require(actor, "model.build", system=system, target=version)
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        before = {"tags": locked.tags, "description": locked.description}
        if tags is not None:
            cleaned = sorted({str(t).strip() for t in tags if str(t).strip()})
            if any(len(t) > 50 for t in cleaned):
                raise ValidationError("a tag is at most 50 characters")
            locked.tags = cleaned
        if description is not None:
            locked.description = description
        locked.save(update_fields=["tags", "description"])
        activity_log_record(actor=actor, system=system, action="model_version.updated", target=locked,
                            data={"before": before, "after": {"tags": locked.tags, "description": locked.description}})
    return locked


def model_alias_move(
    *, alias: str, version: ModelVersion | None, actor: Any, reason: str, system: str | None = None
) -> ModelAlias:
    """Point ``alias`` (production, canary, shadow) at ``version`` (None clears it); logged before/after.

    ``production`` takes only an approved version (four eyes happen in the promotion review); the one
    exception is the bootstrap step (``system='bootstrap'``) while nothing is in production.
    Rejected or archived versions are never deployed.
    """
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
            bootstrapping = system == BOOTSTRAP_SYSTEM and row.version_id is None
            if alias == ModelAlias.Name.PRODUCTION and version.status != ModelVersion.Status.APPROVED \
                    and not bootstrapping:
                raise Conflict(
                    f"{version} is {version.status}: production takes only an approved version "
                    "(request a promotion review first)"
                )
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


def model_version_request_promotion(
    *, version: ModelVersion, actor: Any | None, reason: str, evidence: dict | None = None, system: str | None = None
):
    """Open a ``model_promotion`` review for a candidate; a pending one is not opened twice."""
    from portal.models import ReviewRequest

    if version.status != ModelVersion.Status.CANDIDATE:
        raise Conflict(f"{version} is {version.status}; only a candidate can be proposed for promotion")
    pending = ReviewRequest.objects.filter(
        kind=PROMOTION_KIND, target_type="recommender.modelversion", target_id=str(version.pk),
        status=ReviewRequest.Status.PENDING,
    ).first()
    if pending is not None:
        raise Conflict(f"a promotion review for {version} is already pending (#{pending.pk})")
    run = version.training_run
    full_evidence = {
        "reason": reason,
        "version": version.pk, "algorithm": version.algorithm, "run": run.pk, "snapshot": run.snapshot_id,
        "metrics": {k: v for k, v in (version.metrics or {}).items() if not isinstance(v, dict | list)},
        **(evidence or {}),
    }
    return review_request_create(
        kind=PROMOTION_KIND, target=version, title=f"Promote {version} ({version.algorithm}) to production",
        requester=actor, evidence=full_evidence, system=system,
    )


def model_promotion_decided(*, review, actor: Any) -> None:
    """Review decision handler: an approval approves the version, a rejection rejects it.

    Moving the production alias is a separate, deliberate step (the release process).
    """
    version = ModelVersion.objects.filter(pk=review.target_id).first()
    if version is None or version.status != ModelVersion.Status.CANDIDATE:
        return
    mapping = {"approved": ModelVersion.Status.APPROVED, "rejected": ModelVersion.Status.REJECTED}
    status = mapping.get(review.status)
    if status:
        model_version_set_status(version=version, status=status, actor=actor,
                                 reason=f"promotion review #{review.pk}: {review.status}")
