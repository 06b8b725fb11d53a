"""The serving artifact: round trip, vectorised scoring, and refusal of tampered or swapped files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recommender.errors import ArtifactIntegrityError
from recommender.registry.artifacts import (
    MANIFEST_FILE,
    canonical_json,
    load_serving_model,
    seen_csr,
    write_artifact,
)


def factor_artifact(tmp_path, name="a"):
    item_ids = np.array(["m1", "m2", "m3", "m4"])
    user_ids = np.array([10, 20], dtype=np.int64)
    user_factors = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    item_factors = np.array([[0.5, 0.0], [0.1, 0.9], [0.9, 0.1], [0.0, 0.2]], dtype=np.float32)
    indptr, indices = seen_csr([[2], []])
    arrays = {
        "item_ids": item_ids, "user_ids": user_ids, "user_factors": user_factors, "item_factors": item_factors,
        "user_bias": np.array([0.1, -0.1], dtype=np.float32), "item_bias": np.zeros(4, dtype=np.float32),
        "seen_indptr": indptr, "seen_indices": indices,
    }
    manifest = {"kind": "factors", "algorithm": "svd", "global_mean": 3.0, "rating_scale": [1, 5]}
    directory = tmp_path / name
    sha, size = write_artifact(directory=directory, manifest=manifest, arrays=arrays)
    return directory, sha, size


def test_round_trip_scores_and_excludes_seen_items(tmp_path):
    directory, sha, size = factor_artifact(tmp_path)
    assert size == sum(p.stat().st_size for p in directory.iterdir())
    model = load_serving_model(directory=directory, expected_sha256=sha)
    # user 10 = [1, 0]: scores m1 .5, m2 .1, m3 .9 (seen, excluded), m4 0 → m1, m2, m4
    recs = model.recommend(10, 3)
    assert [item for item, _ in recs] == ["m1", "m2", "m4"]
    assert recs[0][1] == pytest.approx(3.0 + 0.1 + 0.5)
    assert model.recommend(10, 2, exclude=["m1"]) == [("m2", pytest.approx(3.2)), ("m4", pytest.approx(3.1))]
    assert model.recommend(20, 1)[0][0] == "m2"
    assert model.recommend(99, 5) is None
    assert model.predict(20, "m2") == pytest.approx(3.0 - 0.1 + 0.9)
    assert model.nearest_items("m1", ["m2", "m3", "m4"], 2) == ["m3", "m2"]
    assert model.item_ids == ["m1", "m2", "m3", "m4"]


def test_arrays_are_memory_mapped_read_only(tmp_path):
    directory, sha, _ = factor_artifact(tmp_path)
    model = load_serving_model(directory=directory, expected_sha256=sha)
    assert isinstance(model._a["item_factors"], np.memmap)
    with pytest.raises(ValueError):
        model._a["item_factors"][0, 0] = 1.0


def test_same_content_gives_same_sha(tmp_path):
    _, sha1, _ = factor_artifact(tmp_path, "one")
    _, sha2, _ = factor_artifact(tmp_path, "two")
    assert sha1 == sha2


def test_a_tampered_array_is_refused(tmp_path):
    directory, sha, _ = factor_artifact(tmp_path)
    path = directory / "item_factors.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="item_factors.npy sha256"):
        load_serving_model(directory=directory, expected_sha256=sha)


def test_an_edited_manifest_is_refused(tmp_path):
    directory, sha, _ = factor_artifact(tmp_path)
    manifest = json.loads((directory / MANIFEST_FILE).read_bytes())
    manifest["global_mean"] = 4.0
    (directory / MANIFEST_FILE).write_bytes(canonical_json(manifest))
    with pytest.raises(ArtifactIntegrityError, match="manifest sha256"):
        load_serving_model(directory=directory, expected_sha256=sha)


def test_a_swapped_artifact_is_refused(tmp_path):
    directory, sha, _ = factor_artifact(tmp_path)
    with pytest.raises(ArtifactIntegrityError):
        load_serving_model(directory=directory, expected_sha256="0" * 64)


def test_an_extra_file_is_refused(tmp_path):
    directory, sha, _ = factor_artifact(tmp_path)
    (directory / "evil.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(ArtifactIntegrityError, match="files differ"):
        load_serving_model(directory=directory, expected_sha256=sha)


def test_object_arrays_are_never_written(tmp_path):
    with pytest.raises(ValueError, match="not allowed"):
        write_artifact(
            directory=tmp_path / "x", manifest={"kind": "ranking"},
            arrays={"item_ids": np.array(["a"]), "item_scores": np.array([{"a": 1}], dtype=object),
                    "user_ids": np.zeros(0, dtype=np.int64), "seen_indptr": np.zeros(1, dtype=np.int64),
                    "seen_indices": np.zeros(0, dtype=np.int32)},
        )
    assert not any(tmp_path.iterdir())  # the temporary folder was cleaned up


def test_topn_and_ranking_kinds(tmp_path):
    arrays = {
        "item_ids": np.array(["a", "b", "c"]), "user_ids": np.array([1, 2], dtype=np.int64),
        "topn_items": np.array([[2, 0, -1], [1, -1, -1]], dtype=np.int32),
        "topn_scores": np.array([[4.5, 3.0, 0], [4.0, 0, 0]], dtype=np.float32),
    }
    sha, _ = write_artifact(directory=tmp_path / "t", manifest={"kind": "topn"}, arrays=arrays)
    model = load_serving_model(directory=tmp_path / "t", expected_sha256=sha)
    assert model.recommend(1, 5) == [("c", 4.5), ("a", 3.0)]
    assert model.recommend(1, 5, exclude=["c"]) == [("a", 3.0)]
    assert model.recommend(3, 5) is None
    indptr, indices = seen_csr([[0]])
    sha, _ = write_artifact(
        directory=tmp_path / "r", manifest={"kind": "ranking"},
        arrays={"item_ids": np.array(["a", "b", "c"]), "item_scores": np.array([3, 1, 2], dtype=np.float32),
                "user_ids": np.array([7], dtype=np.int64), "seen_indptr": indptr, "seen_indices": indices},
    )
    model = load_serving_model(directory=tmp_path / "r", expected_sha256=sha)
    assert [i for i, _ in model.recommend(7, 3)] == ["c", "b"]  # 'a' was seen by user 7
    assert [i for i, _ in model.recommend(12345, 2)] == ["a", "c"]  # popularity serves anyone
