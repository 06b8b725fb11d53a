"""Reads of the model registry: versions, aliases, lineage, and the artifact loader for a version."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from recommender.models import ModelAlias, ModelVersion, RegisteredModel
from recommender.registry.artifacts import ServingModel, artifact_abspath, load_serving_model


def registered_model_list() -> QuerySet[RegisteredModel]:
    return RegisteredModel.objects.order_by("name")


def model_version_list(*, filters: dict | None = None) -> QuerySet[ModelVersion]:
    """Versions newest first, with their run, snapshot and aliases fetched in the same queries."""
    filters = filters or {}
    qs = (
        ModelVersion.objects.select_related("registered_model", "training_run__snapshot")
        .prefetch_related(Prefetch("aliases", queryset=ModelAlias.objects.order_by("name")))
        .order_by("-created_at", "-pk")
    )
    for key in ("status", "algorithm"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    if filters.get("registered_model"):
        qs = qs.filter(registered_model__name=filters["registered_model"])
    if filters.get("snapshot"):
        qs = qs.filter(training_run__snapshot_id=filters["snapshot"])
    if filters.get("tag"):
        qs = qs.filter(tags__contains=[filters["tag"]]) if _json_contains_supported() else qs
    return qs


def _json_contains_supported() -> bool:
    from django.db import connection

    return connection.features.supports_json_field_contains


def model_version_get(*, version_id: int) -> ModelVersion | None:
    return model_version_list().filter(pk=version_id).first()


def model_alias_list() -> QuerySet[ModelAlias]:
    return ModelAlias.objects.select_related(
        "version__registered_model", "version__training_run__snapshot", "moved_by"
    ).order_by("name")


def model_alias_version(*, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None."""
    row = model_alias_list().filter(name=alias).first()
    return row.version if row else None


def model_version_lineage(*, version: ModelVersion) -> dict:
    """Snapshot → run → version → where deployed, as one dictionary (the lineage page and API)."""
    from portal.selectors import activity_log_list

    run = version.training_run
    snapshot = run.snapshot
    deployments = [
        {"alias": a.name, "moved_at": a.moved_at, "moved_by": a.moved_by_label, "reason": a.reason}
        for a in version.aliases.all()
    ]
    history = [
        {"seq": e.seq, "at": e.created_at, "actor": e.actor_label, "action": e.action, "data": e.data}
        for e in activity_log_list(filters={"action": "model_alias.moved"})[:500]
        if version.pk in (e.data.get("before", {}).get("version_id"), e.data.get("after", {}).get("version_id"))
    ]
    return {
        "snapshot": {
            "id": snapshot.pk, "name": snapshot.name, "window_start": snapshot.window_start,
            "window_end": snapshot.window_end, "filters": snapshot.filters,
            "include_implicit": snapshot.include_implicit, "rating_count": snapshot.rating_count,
            "watch_session_count": snapshot.watch_session_count, "viewer_count": snapshot.viewer_count,
            "movie_count": snapshot.movie_count, "content_sha256": snapshot.content_sha256,
            "storage_path": snapshot.storage_path,
        },
        "run": {
            "id": run.pk, "algorithm": run.algorithm, "hyperparameters": run.hyperparameters, "seed": run.seed,
            "split": run.split, "status": run.status, "started_at": run.started_at, "finished_at": run.finished_at,
            "environment": run.environment, "origin": run.origin, "created_by": run.created_by_label,
        },
        "version": {
            "id": version.pk, "name": str(version), "registered_model": version.registered_model.name,
            "version": version.version, "status": version.status, "artifact_path": version.artifact_path,
            "artifact_sha256": version.artifact_sha256, "artifact_size": version.artifact_size,
            "artifact_kind": version.artifact_kind, "created_at": version.created_at,
        },
        "deployments": deployments,
        "deployment_history": history,
    }


def model_version_load(*, version: ModelVersion) -> ServingModel:
    """Load (and verify) a version's artifact; raises ArtifactIntegrityError on any mismatch."""
    return load_serving_model(directory=artifact_abspath(version.artifact_path), expected_sha256=version.artifact_sha256)
