"""Two model versions compared like with like: one evaluation set both are scored on, and candidate −
production per metric with a paired bootstrap interval over viewers.

The one implementation for both decisions that compare a candidate with production: the release
gate's offline-metrics check (``releases.services.gate``, through the releases'
integrations) and scheduled retraining's "does the candidate win" (``recommender.training.retraining``).
Each caller brings its own knobs (sample size, seed, resamples, confidence) and its own rule.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from recommender.models import ModelVersion
from recommender.training.evaluation import paired_bootstrap, split_frame, viewer_scores

EVALUATION_RULE = (
    "the candidate's held-out part (its training run's split of its snapshot, rebuilt), without the rows "
    "production was fitted on and without viewers either model does not know; each model ranks the items a "
    "viewer did not rate outside this set"
)
RATING_METRICS = ("rmse", "mae")
_MEASURED = re.compile(r"^(rmse|mae)$|^(precision|recall|ndcg|map|hit_rate)_at_(\d+)$")


class NoCommonSet(LookupError):
    """No evaluation set both versions can be scored on without leakage (the reason is the message)."""


def measured_metric(name: str, *, default_k: int = 20) -> tuple[str, int] | None:
    """``(short name, k)`` of a metric that can be re-measured on an evaluation set (``rmse``, ``mae``,
    ``precision|recall|ndcg|map|hit_rate_at_<k>``), else None. RMSE/MAE get ``default_k``."""
    match = _MEASURED.match(name)
    if match is None:
        return None
    return (match.group(1), default_k) if match.group(1) else (match.group(2), int(match.group(3)))


def split_words(split: dict) -> str:
    """A recorded split in words (``random 20 % split, seed 0``)."""
    kind = split.get("kind", "random")
    if kind in ("random", "temporal"):
        text = f"{kind} {round(100 * float(split.get('test_fraction', 0.2)))} % split"
    elif kind == "leave_last_n":
        text = f"last {split.get('n', 1)} ratings of each viewer held out"
    else:
        text = f"{split.get('folds', 5)}-fold split"
    return text + (f", seed {split['seed']}" if "seed" in split else "")


def version_evaluation_data(*, version: ModelVersion) -> dict:
    """What a version was fitted and held out on, rebuilt from its training run: the snapshot's ratings
    (verified against their sha256) cut by the run's recorded split. A k-fold run's artifact was fitted
    on every rating, so its ``test`` is empty. Raises ``LookupError`` when the version has no run or
    its snapshot's files are gone or differ from their sha256."""
    from recommender.errors import ArtifactIntegrityError
    from recommender.training.snapshots import snapshot_load_ratings

    run = getattr(version, "training_run", None)
    if run is None or run.snapshot_id is None:
        raise LookupError(f"version {version.pk} has no training run with a snapshot")
    try:
        ratings = snapshot_load_ratings(snapshot=run.snapshot)
    except ArtifactIntegrityError as exc:
        raise LookupError(str(exc)) from exc
    split = dict(run.split or {})
    if split.get("kind") == "kfold":
        train, test = ratings, ratings.iloc[:0]
    else:
        train, test = split_frame(ratings, split)[0]
    return {"run": run.pk, "snapshot": run.snapshot_id, "split": split, "ratings": ratings, "train": train,
            "test": test}


def version_model(*, version: ModelVersion) -> Any:
    """The version's serving artifact, loaded and verified as serving loads it (numpy arrays, no pickle);
    ``LookupError`` when it is missing or differs from its sha256."""
    from recommender.errors import ArtifactIntegrityError
    from recommender.registry.selectors import model_version_load

    try:
        return model_version_load(version=version)
    except ArtifactIntegrityError as exc:
        raise LookupError(str(exc)) from exc


def _pairs(frame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([frame["user_id"].to_numpy(), frame["movie_id"].astype(str).to_numpy()])


def evaluation_set(*, candidate: ModelVersion, production: ModelVersion, max_viewers: int, seed: int,
                   limit_name: str = "max_viewers") -> dict:
    """The one evaluation set both versions are scored on, the history each model ranks around, and
    its description (snapshot, rows, excluded rows and why) for the evidence.

    Rows: the candidate's held-out part, rebuilt from its snapshot and recorded split; less the rows
    (viewer, movie) that production was fitted on (its own run's training part: an older or the same
    snapshot overlaps); less the viewers one of the models does not know (neither could rank for them);
    at most ``max_viewers`` viewers (a sample seeded by ``seed``; ``limit_name`` names the caller's knob
    in the description). No model was fitted on any row left. ``NoCommonSet`` (a ``LookupError``) when
    the candidate holds nothing out.
    """
    cand = version_evaluation_data(version=candidate)
    prod = version_evaluation_data(version=production)
    test = cand["test"]
    if test.empty:
        raise NoCommonSet(f"the candidate's run #{cand['run']} used a {split_words(cand['split'])}: its artifact "
                          f"was fitted on every rating of snapshot #{cand['snapshot']}, none is held out")
    cand_model = version_model(version=candidate)
    prod_model = version_model(version=production)
    excluded = []
    leaked = _pairs(test).isin(_pairs(prod["train"]))
    if leaked.any():
        excluded.append({"rows": int(leaked.sum()), "why": f"production was fitted on them (its run #{prod['run']}, "
                                                         f"snapshot #{prod['snapshot']}, {split_words(prod['split'])})"})
    rows = test[~leaked]
    viewers = rows["user_id"].unique()
    known = [u for u in viewers.tolist() if cand_model.knows_user(int(u)) and prod_model.knows_user(int(u))]
    unknown = rows["user_id"].isin(set(viewers.tolist()) - set(known))
    if unknown.any():
        excluded.append({"rows": int(unknown.sum()), "viewers": int(rows.loc[unknown, "user_id"].nunique()),
                         "why": "viewer unknown to one of the models (not in its training data)"})
    rows = rows[~unknown]
    if len(known) > max_viewers:
        keep = set(np.random.default_rng(seed).choice(
            np.array(sorted(known)), size=max_viewers, replace=False).tolist())
        beyond = ~rows["user_id"].isin(keep)
        excluded.append({"rows": int(beyond.sum()), "viewers": len(known) - max_viewers,
                         "why": f"beyond the seeded sample of {limit_name} = {max_viewers} viewers"})
        rows = rows[~beyond]
    # What each viewer rated outside the set (either snapshot): neither model may recommend it, so both
    # rank the same pool, and the rows production saw are no reward for memorising them.
    evaluated = set(rows["user_id"].unique().tolist())
    outside = pd.concat([cand["ratings"][["user_id", "movie_id"]], prod["ratings"][["user_id", "movie_id"]]])
    outside = outside[outside["user_id"].isin(evaluated)]
    outside = outside[~_pairs(outside).isin(_pairs(rows))]
    history = {int(u): set(g.astype(str).tolist()) for u, g in outside.groupby("user_id")["movie_id"]}
    description = {
        "rule": EVALUATION_RULE, "snapshot": cand["snapshot"], "training_run": cand["run"], "split": cand["split"],
        "split_words": split_words(cand["split"]),
        "held_out_rows": int(len(test)), "excluded": excluded, "rows": int(len(rows)), "viewers": len(evaluated),
        "production_snapshot": prod["snapshot"], "production_training_run": prod["run"],
    }
    fallback = float(cand["train"]["rating"].mean())
    return {"rows": rows, "history": history, "description": description, "fallback": fallback,
            "models": (cand_model, prod_model)}


def compare_on_set(*, common: dict, metrics: list[str], resamples: int, seed: int, confidence: float,
                   default_k: int = 20) -> dict:
    """Both models of an ``evaluation_set`` scored per viewer (``viewer_scores``) and candidate −
    production per metric (full names, e.g. ``ndcg_at_20``, ``rmse``) with a ``confidence`` paired
    bootstrap interval over viewers (``paired_bootstrap``, ``resamples`` draws seeded by ``seed``).

    Returns ``{"metrics": {name: {candidate, production, difference, interval, viewers}}, "scored":
    {"candidate"|"production": {viewers, rows, ranking_viewers, fallback_predictions}}}``; ``viewers``
    of a metric is how many viewers it is averaged over (ranking metrics: those with a relevant item).
    A metric that cannot be re-measured raises ``ValueError`` naming it.
    """
    by_k: dict[int, list[tuple[str, str]]] = {}
    for metric in metrics:
        parsed = measured_metric(metric, default_k=default_k)
        if parsed is None:
            raise ValueError(f"metric {metric!r} cannot be measured on an evaluation set")
        by_k.setdefault(parsed[1], []).append((metric, parsed[0]))
    cand_model, prod_model = common["models"]
    found: dict[str, dict] = {}
    scored: dict = {}
    for k, names in by_k.items():
        tables = {name: viewer_scores(model, common["rows"], history=common["history"], k=k,
                                      fallback=common["fallback"])
                  for name, model in (("candidate", cand_model), ("production", prod_model))}
        compared = paired_bootstrap(tables["candidate"], tables["production"], metrics=[s for _, s in names],
                                    resamples=resamples, seed=seed, confidence=confidence)
        scored = {name: {"viewers": int(len(t)), "rows": int(t["n"].sum()),
                         "ranking_viewers": int(t["relevant"].sum()), "fallback_predictions": int(t["fallbacks"].sum())}
                  for name, t in tables.items()}
        for metric, short in names:
            counted = scored["candidate"]["viewers" if short in RATING_METRICS else "ranking_viewers"]
            found[metric] = {**compared[short], "viewers": counted}
    return {"metrics": {m: found[m] for m in metrics}, "scored": scored}
