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
