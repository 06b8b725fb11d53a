"""Writes of the model registry: registering versions, their status and tags, and moving the
deployment aliases (through serving's one door to live traffic). Every change is recorded in the
activity log. Promotions are the releases' promotion requests (gate → review → canary)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from portal.errors import Conflict, ValidationError
from portal.permissions import may, require
from portal.services import activity_log_record
from recommender.models import ModelAlias, ModelVersion, RegisteredModel, TrainingRun


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
        raise ValidationError("a reason is required to change a version's status", field="reason")
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
                raise ValidationError("a tag is at most 50 characters", field="tags")
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
    """Point ``alias`` (production, canary, shadow) at ``version`` (None clears it).

    The move goes through serving's ``deployment_update``, the one door to live traffic: a version
    reaches viewers only with an approved promotion (the bootstrap step excepted), and the change is
    a deployment revision like any other.
    """
    if alias not in ModelAlias.Name.values:
        raise ValidationError(f"unknown alias '{alias}'", detail={"allowed": ModelAlias.Name.values}, field="alias")
    from recommender.serving.services import deployment_update

    deployment_update(actor=actor, reason=reason, system=system, **{alias: version})
    row, _ = ModelAlias.objects.select_related("version__registered_model").get_or_create(name=alias)
    return row
