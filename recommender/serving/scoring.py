"""Top-k with the serving snapshot's exclusions applied as integer arrays.

``ServingModel.recommend(user, k, exclude)`` takes the movies to leave out as ids (strings). On the
request path the seen index already holds them as integer codes, so ``Scorer`` maps each snapshot's
codes to the model's item positions once (one array per snapshot and model) and masks the scores
with one fancy-index assignment, instead of turning a hundred codes into strings and back per
request. It uses the model's own ``scores(row)`` and ``seen_items(row)`` and the same top-k steps
as ``ServingModel.recommend`` (argpartition, then best first with ties by catalog position), so
the answers are identical (``tests/test_scoring.py`` checks it). Kinds without a full score vector
(``ArtifactKind.ranked``: ``topn``) go through ``ServingModel.recommend``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np


class Scorer:
    """Wraps one loaded ``ServingModel``."""

    def __init__(self, model) -> None:
        self.model = model
        self.kind = model.kind
        self.kind_spec = model.kind_spec
        self.item_ids: list[str] = list(model.item_ids)
        self.index: dict[str, int] = {item: i for i, item in enumerate(self.item_ids)}
        self._maps: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def code_map(self, snapshot) -> np.ndarray:
        """Snapshot movie code → this model's item position (−1 when the model lacks the movie)."""
        cached = self._maps.get(snapshot.name)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._maps.get(snapshot.name)
            if cached is None:
                cached = np.fromiter((self.index.get(m, -1) for m in snapshot.movies), dtype=np.int64,
                                     count=len(snapshot.movies))
                if len(self._maps) >= 2:  # the current snapshot and the one before are enough
                    self._maps.pop(next(iter(self._maps)))
                self._maps[snapshot.name] = cached
        return cached

    def recommend(self, viewer_id: int, k: int, *, snapshot, seen_codes: np.ndarray,
                  extra_seen: Iterable[str] = ()) -> tuple[list[str], list[float]] | None:
        """(items, scores) best first, or None when the model does not know the viewer."""
        model = self.model
        if not self.kind_spec.scores_every_item:
            exclude = [snapshot.movies[c] for c in seen_codes.tolist()] + list(extra_seen)
            result = model.recommend(viewer_id, k, exclude)
            if result is None:
                return None
            return [i for i, _ in result], [round(float(s), 5) for _, s in result]
        row = model.user_row(viewer_id)
        if row is None and not self.kind_spec.serves_unknown_users:
            return None
        if k <= 0:
            return [], []
        scores = model.scores(row)
        if row is not None:
            scores[model.seen_items(row)] = -np.inf
        if seen_codes.shape[0]:
            positions = self.code_map(snapshot)[seen_codes]
            scores[positions[positions >= 0]] = -np.inf
        for movie in extra_seen:
            position = self.index.get(movie)
            if position is not None:
                scores[position] = -np.inf
        available = int(np.count_nonzero(np.isfinite(scores)))
        k = min(k, available)
        if k == 0:
            return [], []
        if k < scores.shape[0]:
            top = np.argpartition(-scores, k - 1)[:k]
        else:
            top = np.arange(scores.shape[0])
        top = top[np.lexsort((top, -scores[top]))]
        item_ids = self.item_ids
        return [item_ids[i] for i in top.tolist()], np.round(scores[top], 5).tolist()
