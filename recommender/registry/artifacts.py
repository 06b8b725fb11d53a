"""The serving artifact: plain numpy arrays plus a canonical JSON manifest, checked by sha256 on load.

An artifact is a folder::

    manifest.json        canonical JSON (sorted keys, no spaces, ASCII): kind, algorithm, constants,
                         and for every array its file, dtype, shape, byte size and sha256
    <name>.npy           one file per array, written by ``np.save(..., allow_pickle=False)``

The artifact's sha256 is the sha256 of the manifest's bytes; since the manifest holds the sha256 of
every array file, it covers the whole folder. Loading re-hashes every file, refuses any mismatch
with ``ArtifactIntegrityError``, and maps arrays with ``np.load(mmap_mode="r", allow_pickle=False)``:
nothing is ever unpickled. See docs/artifacts.md for the kinds and their arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from recommender.errors import ArtifactIntegrityError

FORMAT = "usher-recommender-artifact"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ALLOWED_DTYPE_KINDS = {"i", "u", "f", "U", "b"}

# Arrays every kind must carry (besides ``item_ids``); see docs/artifacts.md.
KIND_ARRAYS: dict[str, set[str]] = {
    "factors": {"user_ids", "user_factors", "item_factors", "user_bias", "item_bias", "seen_indptr", "seen_indices"},
    "biases": {"user_ids", "user_bias", "item_bias", "seen_indptr", "seen_indices"},
    "ranking": {"item_scores", "user_ids", "seen_indptr", "seen_indices"},
    "coclusters": {
        "user_ids", "user_cluster", "item_cluster", "user_mean", "item_mean", "cocluster_mean",
        "user_cluster_mean", "item_cluster_mean", "seen_indptr", "seen_indices",
    },
    "topn": {"user_ids", "topn_items", "topn_scores"},
}


def canonical_json(value: Any) -> bytes:
    """The one byte form of a manifest that the sha256 is computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_root() -> Path:
    return Path(settings.RECOMMENDER["ARTIFACT_ROOT"])


def artifact_abspath(relative: str) -> Path:
    """The absolute folder of an artifact stored as a path relative to ``ARTIFACT_ROOT``."""
    path = (artifact_root() / relative).resolve()
    if artifact_root().resolve() not in path.parents:
        raise ArtifactIntegrityError(f"artifact path '{relative}' leaves ARTIFACT_ROOT")
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_artifact(*, directory: str | os.PathLike, manifest: dict, arrays: dict[str, np.ndarray]) -> tuple[str, int]:
    """Write an artifact folder atomically; return (sha256, size in bytes).

    Files are written to a temporary sibling folder, flushed to disk and renamed into place, so a
    crash leaves either the whole artifact or nothing at ``directory`` (which must not exist yet).
    """
    target = Path(directory)
    if target.exists():
        raise FileExistsError(f"artifact folder {target} already exists")
    if "item_ids" not in arrays:
        raise ValueError("an artifact needs an 'item_ids' array")
    kind = manifest.get("kind")
    if kind not in KIND_ARRAYS:
        raise ValueError(f"unknown artifact kind {kind!r}; expected one of {sorted(KIND_ARRAYS)}")
    missing = KIND_ARRAYS[kind] - set(arrays)
    if missing:
        raise ValueError(f"artifact kind '{kind}' needs arrays {sorted(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        entries: dict[str, dict] = {}
        total = 0
        for name in sorted(arrays):
            if not _NAME.match(name):
                raise ValueError(f"array name {name!r} is not a lowercase identifier")
            array = np.ascontiguousarray(arrays[name])
            if array.dtype.kind not in _ALLOWED_DTYPE_KINDS:
                raise ValueError(f"array {name!r} has dtype {array.dtype}, which is not allowed (no objects)")
            path = tmp / f"{name}.npy"
            with open(path, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
            size = path.stat().st_size
            total += size
            entries[name] = {
                "file": path.name, "dtype": array.dtype.str, "shape": list(array.shape),
                "bytes": size, "sha256": _file_sha256(path),
            }
        full = {**manifest, "format": FORMAT, "format_version": FORMAT_VERSION, "arrays": entries}
        data = canonical_json(full)
        with open(tmp / MANIFEST_FILE, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_dir(tmp)
        os.rename(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return hashlib.sha256(data).hexdigest(), total + len(data)


def read_manifest(*, directory: str | os.PathLike, expected_sha256: str) -> dict:
    """The manifest, after checking its sha256 (which is the artifact's)."""
    folder = Path(directory)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactIntegrityError(f"artifact {folder} has no {MANIFEST_FILE}", detail={"directory": str(folder)})
    data = path.read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != expected_sha256:
        raise ArtifactIntegrityError(
            f"artifact {folder}: manifest sha256 {found[:12]}… does not match the registered {expected_sha256[:12]}…",
            detail={"directory": str(folder), "expected": expected_sha256, "found": found},
        )
    manifest = json.loads(data)
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactIntegrityError(
            f"artifact {folder}: unsupported format {manifest.get('format')!r} v{manifest.get('format_version')!r}"
        )
    return manifest


def load_serving_model(*, directory: str | os.PathLike, expected_sha256: str) -> ServingModel:
    """Verify and map an artifact; refuse any file whose sha256 differs from the manifest's."""
    folder = Path(directory)
    manifest = read_manifest(directory=folder, expected_sha256=expected_sha256)
    entries: dict[str, dict] = manifest["arrays"]
    expected_files = {MANIFEST_FILE} | {entry["file"] for entry in entries.values()}
    present = {p.name for p in folder.iterdir()}
    if present != expected_files:
        raise ArtifactIntegrityError(
            f"artifact {folder}: files differ from the manifest",
            detail={"missing": sorted(expected_files - present), "unexpected": sorted(present - expected_files)},
        )
    arrays: dict[str, np.ndarray] = {}
    for name, entry in entries.items():
        if not _NAME.match(name) or entry["file"] != f"{name}.npy":
            raise ArtifactIntegrityError(f"artifact {folder}: bad array entry {name!r}")
        path = folder / entry["file"]
        found = _file_sha256(path)
        if found != entry["sha256"]:
            raise ArtifactIntegrityError(
                f"artifact {folder}: {entry['file']} sha256 {found[:12]}… does not match the manifest",
                detail={"file": entry["file"], "expected": entry["sha256"], "found": found},
            )
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:  # an object array would need pickle: refused
            raise ArtifactIntegrityError(f"artifact {folder}: {entry['file']} cannot be loaded safely: {exc}")
        if array.dtype.str != entry["dtype"] or list(array.shape) != entry["shape"]:
            raise ArtifactIntegrityError(f"artifact {folder}: {entry['file']} dtype/shape differ from the manifest")
        arrays[name] = array
    kind = manifest.get("kind")
    if kind not in KIND_ARRAYS or KIND_ARRAYS[kind] - set(arrays) or "item_ids" not in arrays:
        raise ArtifactIntegrityError(f"artifact {folder}: kind {kind!r} lacks required arrays")
    return ServingModel(manifest=manifest, arrays=arrays, sha256=expected_sha256)


class ServingModel:
    """A loaded artifact with vectorised scoring: ``recommend``, ``predict``, ``nearest_items``.

    Arrays stay memory-mapped (read-only); per request the work is one matrix-vector product (or a
    row lookup) and an ``argpartition`` over the catalog.
    """

    def __init__(self, *, manifest: dict, arrays: dict[str, np.ndarray], sha256: str = "") -> None:
        self.manifest = manifest
        self.sha256 = sha256
        self.kind: str = manifest["kind"]
        self.algorithm: str = manifest.get("algorithm", "")
        self.rating_scale: tuple[float, float] = tuple(manifest.get("rating_scale", (1, 5)))  # type: ignore[assignment]
        self.global_mean = float(manifest.get("global_mean", 0.0))
        self._a = arrays
        self._item_ids: list[str] = [str(x) for x in arrays["item_ids"]]
        self._item_index: dict[str, int] = {item: i for i, item in enumerate(self._item_ids)}
        self._user_ids = arrays.get("user_ids")

    # --- identity -------------------------------------------------------------------------
    @property
    def item_ids(self) -> list[str]:
        return self._item_ids

    @property
    def n_users(self) -> int:
        return 0 if self._user_ids is None else int(self._user_ids.shape[0])

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self._a.values()))

    def user_row(self, user_id: int) -> int | None:
        """The row of a known user (``user_ids`` is sorted), or None."""
        ids = self._user_ids
        if ids is None or ids.shape[0] == 0:
            return None
        pos = int(np.searchsorted(ids, user_id))
        if pos < ids.shape[0] and int(ids[pos]) == int(user_id):
            return pos
        return None

    def knows_user(self, user_id: int) -> bool:
        return self.user_row(user_id) is not None

    def seen_items(self, row: int) -> np.ndarray:
        if "seen_indptr" not in self._a:
            return np.empty(0, dtype=np.int64)
        ptr = self._a["seen_indptr"]
        return np.asarray(self._a["seen_indices"][int(ptr[row]):int(ptr[row + 1])])

    # --- scoring ----------------------------------------------------------------------------
    def scores(self, row: int | None) -> np.ndarray:
        """Scores of every item for a user row (float64; higher is better)."""
        a = self._a
        if self.kind == "factors":
            return (self.global_mean + float(a["user_bias"][row]) + a["item_bias"]
                    + a["item_factors"] @ a["user_factors"][row]).astype(np.float64)
        if self.kind == "biases":
            return (self.global_mean + float(a["user_bias"][row]) + a["item_bias"]).astype(np.float64)
        if self.kind == "ranking":
            return np.asarray(a["item_scores"], dtype=np.float64)
        if self.kind == "coclusters":
            cu = int(a["user_cluster"][row])
            ci = a["item_cluster"]
            return (a["cocluster_mean"][cu][ci] + (float(a["user_mean"][row]) - float(a["user_cluster_mean"][cu]))
                    + (a["item_mean"] - a["item_cluster_mean"][ci])).astype(np.float64)
        raise ValueError(f"kind '{self.kind}' has no full scoring function")

    def _clip(self, value: float) -> float:
        low, high = self.rating_scale
        return float(min(high, max(low, value)))

    def predict(self, user_id: int, item_id: str) -> float | None:
        """Predicted rating (clipped to the scale) where the kind predicts ratings, else None."""
        row = self.user_row(user_id)
        col = self._item_index.get(item_id)
        if row is None or col is None:
            return None
        a = self._a
        if self.kind == "factors":
            value = (self.global_mean + float(a["user_bias"][row]) + float(a["item_bias"][col])
                     + float(np.dot(a["item_factors"][col], a["user_factors"][row])))
        elif self.kind == "biases":
            value = self.global_mean + float(a["user_bias"][row]) + float(a["item_bias"][col])
        elif self.kind == "coclusters":
            value = float(self.scores(row)[col])
        elif self.kind == "topn":
            hits = np.nonzero(np.asarray(a["topn_items"][row]) == col)[0]
            if hits.size == 0:
                return None
            value = float(a["topn_scores"][row][hits[0]])
        else:
            return None
        return self._clip(value)

    def recommend(self, user_id: int, k: int, exclude: Iterable[str] = ()) -> list[tuple[str, float]] | None:
        """The top ``k`` items (id, score), best first, leaving out the user's training items and
        ``exclude``. None for a user the model does not know (the popularity ranking serves anyone)."""
        row = self.user_row(user_id)
        if row is None and self.kind != "ranking":
            return None
        if k <= 0:
            return []
        excluded = [self._item_index[i] for i in exclude if i in self._item_index]
        if self.kind == "topn":
            items = np.asarray(self._a["topn_items"][row])
            values = np.asarray(self._a["topn_scores"][row])
            keep = items >= 0
            if excluded:
                keep &= ~np.isin(items, excluded)
            items, values = items[keep][:k], values[keep][:k]
            return [(self._item_ids[int(i)], float(s)) for i, s in zip(items, values, strict=True)]
        scores = self.scores(row)
        if row is not None:
            scores[self.seen_items(row)] = -np.inf
        if excluded:
            scores[excluded] = -np.inf
        available = int(np.count_nonzero(np.isfinite(scores)))
        k = min(k, available)
        if k == 0:
            return []
        if k < scores.shape[0]:
            top = np.argpartition(-scores, k - 1)[:k]
        else:
            top = np.arange(scores.shape[0])
        # Best first; ties broken by catalog position so the answer is deterministic.
        order = np.lexsort((top, -scores[top]))
        top = top[order]
        return [(self._item_ids[int(i)], float(scores[i])) for i in top]

    def nearest_items(self, item_id: str, among: Sequence[str], n: int) -> list[str]:
        """Of ``among``, the ``n`` items closest to ``item_id`` by cosine of item factors.

        Only factor models carry item vectors; other kinds answer ``[]``.
        """
        if self.kind != "factors" or self._a["item_factors"].shape[1] == 0:
            return []
        col = self._item_index.get(item_id)
        cols = [self._item_index[i] for i in among if i in self._item_index and i != item_id]
        if col is None or not cols or n <= 0:
            return []
        vectors = np.asarray(self._a["item_factors"][cols], dtype=np.float64)
        target = np.asarray(self._a["item_factors"][col], dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1) * (np.linalg.norm(target) or 1.0)
        cosine = vectors @ target / np.where(norms == 0, 1.0, norms)
        order = np.argsort(-cosine, kind="stable")[:n]
        return [self._item_ids[cols[int(i)]] for i in order]


def seen_csr(user_items: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Pack per-user item index lists into CSR arrays (indptr int64, indices int32)."""
    lengths = np.fromiter((len(x) for x in user_items), dtype=np.int64, count=len(user_items))
    indptr = np.zeros(len(user_items) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    for row, items in enumerate(user_items):
        indices[indptr[row]:indptr[row + 1]] = items
    return indptr, indices


