"""Test helpers for releases: model versions with real (small) artifacts written by the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recommender.models import ModelVersion
from recommender.registry.artifacts import artifact_root, write_artifact
from recommender.tests.factories_training import VersionFactory


def version_with_artifact(*, metrics: dict | None = None, status: str = ModelVersion.Status.CANDIDATE,
                          n_items: int = 30, seed: int = 0) -> ModelVersion:
    """A version whose serving artifact (a popularity ranking) really exists under ARTIFACT_ROOT."""
    rng = np.random.default_rng(seed)
    version = VersionFactory(status=status, metrics=metrics if metrics is not None else {"ndcg_at_20": 0.1, "rmse": 0.95},
                             artifact_kind="ranking", algorithm="popularity")
    relative = f"models/test/{version.pk}"
    manifest = {"kind": "ranking", "algorithm": "popularity", "constants": {}}
    arrays = {
        "item_ids": np.array([f"movie+{i}+2000" for i in range(n_items)]),
        "item_scores": rng.random(n_items).astype("float32"),
        "user_ids": np.arange(1, 11, dtype="int64"),
        "seen_indptr": np.zeros(11, dtype="int64"),
        "seen_indices": np.zeros(0, dtype="int32"),
    }
    sha, size = write_artifact(directory=artifact_root() / relative, manifest=manifest, arrays=arrays)
    ModelVersion.objects.filter(pk=version.pk).update(artifact_path=relative, artifact_sha256=sha, artifact_size=size)
    version.refresh_from_db()
    return version


def artifact_folder(version: ModelVersion) -> Path:
    return artifact_root() / version.artifact_path


def _person(role: str, username: str):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from portal.roles import sync_role_permissions

    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        if not Group.objects.filter(name=role).exists():
            sync_role_permissions()
        user = get_user_model().objects.create_user(username=username, password=None, is_staff=True)
        user.groups.add(Group.objects.get(name=role))
    return user


def approved_promotion(version: ModelVersion, *, requester=None, reviewer=None, baseline: ModelVersion | None = None,
                       status: str = "released", canary_steps: list[int] | None = None,
                       canary_interval_seconds: int | None = None):
    """A promotion of ``version`` whose release gate passed and whose review a reviewer who is not the
    requester approved: what the one door to live traffic asks for before a version serves viewers.

    The records are the ones the gate and the review inbox leave (the gate itself is tested in
    ``test_gate_checks``; here it is the precondition). ``status`` ``released`` (the default) is a
    finished release, so nothing starts a canary on its own; ``approved`` waits for its canary.
    """
    from django.utils import timezone

    from portal.models import ReviewRequest
    from releases.models import PromotionRequest

    requester = requester or _person("data_scientist", "promotion_requester")
    reviewer = reviewer or _person("reviewer", "promotion_reviewer")
    assert requester.pk != reviewer.pk, "four eyes: the reviewer is not the requester"
    now = timezone.now()
    promotion = PromotionRequest.objects.create(
        version=version, baseline_version=baseline, status=status, reason="approved for live traffic (test)",
        requested_by=requester, requested_label=requester.get_username(), gate_attempt=1, gate_passed=True,
        gate_finished_at=now, decided_by=reviewer, decided_at=now, canary_steps=canary_steps or [],
        canary_interval_seconds=canary_interval_seconds,
    )
    promotion.review = ReviewRequest.objects.create(
        kind="model_promotion", title=f"Promote {version} to production", target_type="releases.promotionrequest",
        target_id=str(promotion.pk), target_repr=str(promotion)[:255], requester=requester,
        requester_label=requester.get_username(), assigned_role="reviewer", status="approved", decided_by=reviewer,
        decided_at=now, evidence={"promotion": promotion.pk, "version": version.pk},
    )
    promotion.save(update_fields=["review"])
    if version.status == ModelVersion.Status.CANDIDATE:
        ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.APPROVED)
        version.status = ModelVersion.Status.APPROVED
    return promotion


def in_production(version: ModelVersion, *, actor=None, reason: str = "first") -> ModelVersion:
    """``version`` in production through the one door: it gets an approved promotion (released) first,
    then the alias moves (as ``actor``, an operator, or as the system ``test``)."""
    from recommender.registry.services import model_alias_move
    from recommender.serving.selectors import live_traffic_clearance

    if not live_traffic_clearance(version=version)["cleared"]:
        approved_promotion(version)
    model_alias_move(alias="production", version=version, actor=actor, reason=reason,
                     system=None if actor is not None else "test")
    return version
