"""The artifact kinds: what arrays each carries and how serving scores it, one entry per kind.

A kind is the shape of a serving artifact (docs/artifacts.md). Training's algorithm specs name the
kind they export to (``recommender/training/algorithms.py``), the registry checks an artifact's
arrays against it when writing and loading one, and ``ServingModel`` and serving's ``Scorer`` score
through it. This module is the lowest layer all three import (numpy only), so a new kind is one
``ArtifactKind`` in ``ARTIFACT_KINDS`` below, and nothing else asks a kind by its name.

Each scoring function takes the loaded ``ServingModel`` (its ``arrays`` and ``global_mean``):

- ``scores(model, row)``: float64 scores of every catalog item for a user row, higher is better
  (``row`` is None only for a kind that ``serves_unknown_users``). Serving masks seen items and
  takes the top k. A kind without a full score vector sets ``ranked`` instead:
- ``ranked(model, row)``: (item positions, scores) precomputed best first, −1 = padding.
- ``predict(model, row, col)``: the unclipped predicted rating of one (user row, item position),
  or None where the kind has none for that pair; None for a kind that predicts no ratings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

SEEN_ARRAYS = frozenset({"seen_indptr", "seen_indices"})

Scores = Callable[[Any, "int | None"], np.ndarray]
Ranked = Callable[[Any, int], "tuple[np.ndarray, np.ndarray]"]
Predict = Callable[[Any, int, int], "float | None"]


class UnknownArtifactKind(ValueError):
    """A kind that no entry of ``ARTIFACT_KINDS`` describes."""


@dataclass(frozen=True)
class ArtifactKind:
    """One artifact kind: its arrays (besides ``item_ids``) and how serving scores it."""

    name: str
    arrays: frozenset[str]
    scores: Scores | None = None
    ranked: Ranked | None = None
    predict: Predict | None = None
    predicts_ratings: bool = False  # a rating for every (known user, item): evaluation's RMSE/MAE
    serves_unknown_users: bool = False  # scores(model, None) is a ranking for anyone
    item_vectors: str | None = None  # the array of item vectors behind "because you watched …"

    def __post_init__(self) -> None:
        if (self.scores is None) == (self.ranked is None):
            raise ValueError(f"artifact kind '{self.name}' needs exactly one of scores and ranked")
        if self.serves_unknown_users and self.scores is None:
            raise ValueError(f"artifact kind '{self.name}' serves unknown users, so it needs scores")
        if self.predicts_ratings and self.predict is None:
            raise ValueError(f"artifact kind '{self.name}' predicts ratings, so it needs predict")
        if self.item_vectors is not None and self.item_vectors not in self.arrays:
            raise ValueError(f"artifact kind '{self.name}': item_vectors '{self.item_vectors}' is not one of its arrays")

    @property
    def scores_every_item(self) -> bool:
        """True when serving can score the whole catalog (and mask exclusions itself)."""
        return self.scores is not None

    @property
    def keeps_seen(self) -> bool:
        """True when the artifact carries each user's training items (``seen_indptr``/``seen_indices``)."""
        return SEEN_ARRAYS <= self.arrays


# --- the scoring functions of the kinds -------------------------------------------------------

def _factors_scores(model, row: int | None) -> np.ndarray:
    a = model.arrays
    return (model.global_mean + float(a["user_bias"][row]) + a["item_bias"]
            + a["item_factors"] @ a["user_factors"][row]).astype(np.float64)


def _factors_predict(model, row: int, col: int) -> float:
    a = model.arrays
    return (model.global_mean + float(a["user_bias"][row]) + float(a["item_bias"][col])
            + float(np.dot(a["item_factors"][col], a["user_factors"][row])))


def _biases_scores(model, row: int | None) -> np.ndarray:
    a = model.arrays
    return (model.global_mean + float(a["user_bias"][row]) + a["item_bias"]).astype(np.float64)


def _biases_predict(model, row: int, col: int) -> float:
    a = model.arrays
    return model.global_mean + float(a["user_bias"][row]) + float(a["item_bias"][col])


def _ranking_scores(model, row: int | None) -> np.ndarray:
    return np.asarray(model.arrays["item_scores"], dtype=np.float64)


def _coclusters_scores(model, row: int | None) -> np.ndarray:
    a = model.arrays
    cu = int(a["user_cluster"][row])
    ci = a["item_cluster"]
    return (a["cocluster_mean"][cu][ci] + (float(a["user_mean"][row]) - float(a["user_cluster_mean"][cu]))
            + (a["item_mean"] - a["item_cluster_mean"][ci])).astype(np.float64)


def _coclusters_predict(model, row: int, col: int) -> float:
    return float(_coclusters_scores(model, row)[col])


def _topn_ranked(model, row: int) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(model.arrays["topn_items"][row]), np.asarray(model.arrays["topn_scores"][row])


def _topn_predict(model, row: int, col: int) -> float | None:
    items, scores = _topn_ranked(model, row)
    hits = np.nonzero(items == col)[0]
    return None if hits.size == 0 else float(scores[hits[0]])


ARTIFACT_KINDS: dict[str, ArtifactKind] = {
    k.name: k
    for k in [
        ArtifactKind("factors", frozenset({"user_ids", "user_factors", "item_factors", "user_bias", "item_bias",
                                           *SEEN_ARRAYS}),
                     scores=_factors_scores, predict=_factors_predict, predicts_ratings=True,
                     item_vectors="item_factors"),
        ArtifactKind("biases", frozenset({"user_ids", "user_bias", "item_bias", *SEEN_ARRAYS}),
                     scores=_biases_scores, predict=_biases_predict, predicts_ratings=True),
        ArtifactKind("ranking", frozenset({"item_scores", "user_ids", *SEEN_ARRAYS}),
                     scores=_ranking_scores, serves_unknown_users=True),
        ArtifactKind("coclusters", frozenset({"user_ids", "user_cluster", "item_cluster", "user_mean", "item_mean",
                                              "cocluster_mean", "user_cluster_mean", "item_cluster_mean",
                                              *SEEN_ARRAYS}),
                     scores=_coclusters_scores, predict=_coclusters_predict, predicts_ratings=True),
        ArtifactKind("topn", frozenset({"user_ids", "topn_items", "topn_scores"}),
                     ranked=_topn_ranked, predict=_topn_predict),
    ]
}


def artifact_kind_get(name: str | None) -> ArtifactKind:
    """The kind of that name, or ``UnknownArtifactKind`` listing the known ones."""
    kind = ARTIFACT_KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise UnknownArtifactKind(f"unknown artifact kind {name!r}; expected one of {sorted(ARTIFACT_KINDS)}")
    return kind


def artifact_kind_missing(name: str | None, arrays) -> list[str]:
    """The arrays (sorted) that an artifact of kind ``name`` lacks, ``item_ids`` included."""
    return sorted((artifact_kind_get(name).arrays | {"item_ids"}) - set(arrays))
