"""The serving artifact: plain numpy arrays plus a canonical JSON manifest, checked by sha256 on load.

An artifact is a folder::

    manifest.json        canonical JSON (sorted keys, no spaces, ASCII): kind, algorithm, constants,
                         and for every array its file, dtype, shape, byte size and sha256
    <name>.npy           one file per array, written by ``np.save(..., allow_pickle=False)``

The artifact's sha256 is the sha256 of the manifest's bytes; since the manifest holds the sha256 of
every array file, it covers the whole folder. Loading re-hashes every file, refuses any mismatch
with ``ArtifactIntegrityError``, and maps arrays with ``np.load(mmap_mode="r", allow_pickle=False)``:
nothing is ever unpickled. The kinds, their arrays and scoring are ``recommender/registry/kinds.py``
(docs/artifacts.md).
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
from recommender.registry.kinds import ArtifactKind, UnknownArtifactKind, artifact_kind_get, artifact_kind_missing

FORMAT = "usher-recommender-artifact"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ALLOWED_DTYPE_KINDS = {"i", "u", "f", "U", "b"}

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
    missing = artifact_kind_missing(kind, arrays)  # UnknownArtifactKind (a ValueError) for an unknown kind
    if missing:
        raise ValueError(f"artifact kind '{kind}' needs arrays {missing}")
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
    try:
        missing = artifact_kind_missing(kind, arrays)
    except UnknownArtifactKind as exc:
        raise ArtifactIntegrityError(f"artifact {folder}: {exc}")
    if missing:
        raise ArtifactIntegrityError(f"artifact {folder}: kind {kind!r} lacks required arrays {missing}")
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
        self.kind_spec: ArtifactKind = artifact_kind_get(self.kind)
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
    def arrays(self) -> dict[str, np.ndarray]:
        """The artifact's arrays by name (read-only memory maps when loaded from disk)."""
        return self._a

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
        """Scores of every item for a user row (float64; higher is better), by the kind's function."""
        if self.kind_spec.scores is None:
            raise ValueError(f"kind '{self.kind}' has no full scoring function")
        return self.kind_spec.scores(self, row)

    def _clip(self, value: float) -> float:
        low, high = self.rating_scale
        return float(min(high, max(low, value)))

    def predict(self, user_id: int, item_id: str) -> float | None:
        """Predicted rating (clipped to the scale) where the kind predicts ratings, else None."""
        row = self.user_row(user_id)
        col = self._item_index.get(item_id)
        if row is None or col is None:
            return None
        if self.kind_spec.predict is None:
            return None
        value = self.kind_spec.predict(self, row, col)
        if value is None:
            return None
        return self._clip(value)

    def recommend(self, user_id: int, k: int, exclude: Iterable[str] = ()) -> list[tuple[str, float]] | None:
        """The top ``k`` items (id, score), best first, leaving out the user's training items and
        ``exclude``. None for a user the model does not know (the popularity ranking serves anyone)."""
        row = self.user_row(user_id)
        spec = self.kind_spec
        if row is None and not spec.serves_unknown_users:
            return None
        if k <= 0:
            return []
        excluded = [self._item_index[i] for i in exclude if i in self._item_index]
        if spec.ranked is not None:
            items, values = spec.ranked(self, row)
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
        """Of ``among``, the ``n`` items closest to ``item_id`` by cosine of the kind's item vectors.

        Only kinds with ``item_vectors`` (the factor models) have them; other kinds answer ``[]``.
        """
        vectors_name = self.kind_spec.item_vectors
        if vectors_name is None or self._a[vectors_name].shape[1] == 0:
            return []
        col = self._item_index.get(item_id)
        cols = [self._item_index[i] for i in among if i in self._item_index and i != item_id]
        if col is None or not cols or n <= 0:
            return []
        vectors = np.asarray(self._a[vectors_name][cols], dtype=np.float64)
        target = np.asarray(self._a[vectors_name][col], dtype=np.float64)
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


