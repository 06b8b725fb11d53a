"""Offline evaluation: splits, accuracy, top-k ranking, beyond-accuracy, per-group, and cost figures.

Definitions (k = 20; relevant = rated ≥ 4 in the test part):

- RMSE, MAE over every test rating (Surprise's prediction, clipped to 1–5; unknown users or items
  get Surprise's default, the training mean).
- precision@k = hits/k; recall@k = hits/|relevant|; hit rate = 1 if any hit;
  NDCG@k = Σ_hits 1/log2(rank+1) / Σ_{r ≤ min(|relevant|, k)} 1/log2(r+1);
  AP@k = Σ_hits precision@rank / min(|relevant|, k); MAP = mean AP. Averaged over evaluated users
  with at least one relevant test item; recommendations leave out the user's training items.
- coverage = distinct recommended items / items in the training set;
  novelty = mean over recommended items of −log2(share of training users who rated the item);
  personalization = 1 − mean pairwise cosine similarity of users' recommendation lists;
  average popularity = mean training rating count of recommended items;
  Gini of exposure over the training catalog (0 = every item shown equally, 1 = one item only).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from portal.errors import ValidationError

SPLIT_KINDS = ("random", "temporal", "leave_last_n", "kfold")
RELEVANT_RATING = 4.0


# --- splits --------------------------------------------------------------------------------------

def split_validate(spec: dict | None, *, seed: int) -> dict:
    """Normalise a split specification; ValidationError names what is wrong."""
    spec = dict(spec or {"kind": "random"})
    kind = spec.get("kind", "random")
    if kind not in SPLIT_KINDS:
        raise ValidationError(f"unknown split kind '{kind}'", detail={"allowed": list(SPLIT_KINDS)},
                              field="split.kind")
    allowed = {"random": {"test_fraction", "seed"}, "temporal": {"test_fraction"}, "leave_last_n": {"n"},
               "kfold": {"folds", "seed"}}[kind] | {"kind"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValidationError(f"unknown option(s) for a {kind} split: {', '.join(unknown)}",
                              detail={"allowed": sorted(allowed)}, field="split")
    out: dict = {"kind": kind}
    if kind in ("random", "temporal"):
        fraction = spec.get("test_fraction", 0.2)
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
            raise ValidationError(f"test_fraction must be a number between 0 and 1 (exclusive), got {fraction!r}",
                                  field="split.test_fraction")
        out["test_fraction"] = float(fraction)
    if kind == "leave_last_n":
        n = spec.get("n", 1)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1000:
            raise ValidationError(f"n must be a whole number from 1 to 1000, got {n!r}", field="split.n")
        out["n"] = n
    if kind == "kfold":
        folds = spec.get("folds", 5)
        if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= 20:
            raise ValidationError(f"folds must be a whole number from 2 to 20, got {folds!r}", field="split.folds")
        out["folds"] = folds
    if kind in ("random", "kfold"):
        split_seed = spec.get("seed", seed)
        if isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0:
            raise ValidationError(f"seed must be a whole number ≥ 0, got {split_seed!r}", field="split.seed")
        out["seed"] = split_seed
    return out


def split_frame(ratings: pd.DataFrame, spec: dict) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(train, test) pairs: one for random/temporal/leave-last-n, ``folds`` for kfold."""
    n = len(ratings)
    kind = spec["kind"]
    if kind == "random":
        order = np.random.default_rng(spec["seed"]).permutation(n)
        n_test = max(1, int(round(n * spec["test_fraction"])))
        test_idx = np.sort(order[:n_test])
        mask = np.zeros(n, dtype=bool)
        mask[test_idx] = True
        return [(ratings[~mask], ratings[mask])]
    if kind == "temporal":
        ordered = ratings.sort_values(["timestamp", "user_id", "movie_id"], kind="mergesort")
        cut = n - max(1, int(round(n * spec["test_fraction"])))
        return [(ordered.iloc[:cut], ordered.iloc[cut:])]
    if kind == "leave_last_n":
        ordered = ratings.sort_values(["user_id", "timestamp", "movie_id"], kind="mergesort")
        rank_from_end = ordered.groupby("user_id").cumcount(ascending=False)
        size = ordered.groupby("user_id")["movie_id"].transform("size")
        test_mask = (rank_from_end < spec["n"]) & (size > spec["n"])
        return [(ordered[~test_mask], ordered[test_mask])]
    pairs = []
    for train_positions, test_positions in kfold_positions(n, spec):
        pairs.append((ratings.iloc[train_positions], ratings.iloc[test_positions]))
    return pairs


def kfold_positions(n: int, spec: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """Row positions (train, test) of each fold: a seeded permutation cut into ``folds`` parts."""
    order = np.random.default_rng(spec["seed"]).permutation(n)
    folds = np.array_split(order, spec["folds"])
    out = []
    for fold in folds:
        mask = np.zeros(n, dtype=bool)
        mask[fold] = True
        out.append((np.flatnonzero(~mask), np.flatnonzero(mask)))
    return out


# --- metric functions (each tested against hand-computed values) ----------------------------------

def rmse(errors: Sequence[float] | np.ndarray) -> float:
    errors = np.asarray(errors, dtype=np.float64)
    return float(np.sqrt(np.mean(errors ** 2))) if errors.size else float("nan")


def mae(errors: Sequence[float] | np.ndarray) -> float:
    errors = np.asarray(errors, dtype=np.float64)
    return float(np.mean(np.abs(errors))) if errors.size else float("nan")


def precision_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    return sum(1 for item in recommended[:k] if item in relevant) / k


def recall_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    if not relevant:
        return 0.0
    return sum(1 for item in recommended[:k] if item in relevant) / len(relevant)


def hit_rate_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    return 1.0 if any(item in relevant for item in recommended[:k]) else 0.0


def ndcg_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(rank + 2) for rank, item in enumerate(recommended[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def average_precision_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    hits, total = 0, 0.0
    for rank, item in enumerate(recommended[:k], start=1):
        if item in relevant:
            hits += 1
            total += hits / rank
    denominator = min(len(relevant), k)
    return total / denominator if denominator else 0.0


def catalog_coverage(lists: Sequence[Sequence[str]], catalog_size: int) -> float:
    if catalog_size == 0:
        return 0.0
    return len({item for items in lists for item in items}) / catalog_size


def novelty(lists: Sequence[Sequence[str]], popularity_share: dict[str, float]) -> float:
    values = [-math.log2(popularity_share[item]) for items in lists for item in items
              if popularity_share.get(item, 0) > 0]
    return float(np.mean(values)) if values else 0.0


def average_popularity(lists: Sequence[Sequence[str]], counts: dict[str, int]) -> float:
    values = [counts.get(item, 0) for items in lists for item in items]
    return float(np.mean(values)) if values else 0.0


def personalization(lists: Sequence[Sequence[str]]) -> float:
    """1 − mean cosine similarity over all pairs of (binary) recommendation lists."""
    lists = [list(dict.fromkeys(items)) for items in lists if items]
    if len(lists) < 2:
        return 0.0
    index: dict[str, int] = {}
    rows, cols = [], []
    for r, items in enumerate(lists):
        for item in items:
            rows.append(r)
            cols.append(index.setdefault(item, len(index)))
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(lists), len(index)))
    overlap = (matrix @ matrix.T).toarray()
    lengths = np.sqrt(np.diag(overlap))
    cosine = overlap / np.outer(lengths, lengths)
    n = len(lists)
    mean_similarity = (cosine.sum() - np.trace(cosine)) / (n * (n - 1))
    return float(1.0 - mean_similarity)


def gini(values: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = equal, → 1 = concentrated)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(np.sum((2 * ranks - n - 1) * x) / (n * x.sum()))


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else 0.0


# --- evaluation of a trained model ------------------------------------------------------------------

def evaluation_users(train: pd.DataFrame, test: pd.DataFrame, *, seed: int, limit: int) -> list[int]:
    """Test users the model was trained on (sorted), a seeded sample of ``limit`` when there are more."""
    known = set(train["user_id"].unique().tolist())
    users = sorted(int(u) for u in test["user_id"].unique().tolist() if u in known)
    if len(users) > limit:
        users = sorted(np.random.default_rng(seed).choice(users, size=limit, replace=False).tolist())
    return users


def relevant_items(test: pd.DataFrame) -> dict[int, set[str]]:
    """Per user, the test items rated ≥ 4."""
    rows = test[test["rating"] >= RELEVANT_RATING]
    return {int(u): set(g.tolist()) for u, g in rows.groupby("user_id")["movie_id"]}


def ranking_lists(model, users: Sequence[int], k: int) -> dict[int, list[str]]:
    out = {}
    for user in users:
        recs = model.recommend(int(user), k)
        out[int(user)] = [item for item, _ in recs] if recs else []
    return out


def ranking_metrics(lists: dict[int, list[str]], relevant: dict[int, set[str]], k: int) -> dict:
    users = [u for u in lists if relevant.get(u)]
    if not users:
        return {f"{name}_at_{k}": None for name in ("precision", "recall", "ndcg", "map", "hit_rate")} | {
            "ranking_users": 0}
    return {
        f"precision_at_{k}": float(np.mean([precision_at_k(lists[u], relevant[u], k) for u in users])),
        f"recall_at_{k}": float(np.mean([recall_at_k(lists[u], relevant[u], k) for u in users])),
        f"ndcg_at_{k}": float(np.mean([ndcg_at_k(lists[u], relevant[u], k) for u in users])),
        f"map_at_{k}": float(np.mean([average_precision_at_k(lists[u], relevant[u], k) for u in users])),
        f"hit_rate_at_{k}": float(np.mean([hit_rate_at_k(lists[u], relevant[u], k) for u in users])),
        "ranking_users": len(users),
    }


def beyond_accuracy(lists: dict[int, list[str]], train: pd.DataFrame) -> dict:
    counts_series = train["movie_id"].value_counts()
    counts = counts_series.to_dict()
    n_train_users = max(1, train["user_id"].nunique())
    share = {item: c / n_train_users for item, c in counts.items()}
    all_lists = list(lists.values())
    exposure = pd.Series([item for items in all_lists for item in items]).value_counts()
    exposure_full = exposure.reindex(counts_series.index, fill_value=0).to_numpy()
    return {
        "coverage": catalog_coverage(all_lists, len(counts)),
        "novelty": novelty(all_lists, share),
        "personalization": personalization(all_lists[:1000]),
        "average_popularity": average_popularity(all_lists, counts),
        "gini": gini(exposure_full),
    }


def latency_figures(model, users: Sequence[int], k: int) -> dict:
    timings = []
    for user in users:
        started = time.perf_counter()
        model.recommend(int(user), k)
        timings.append((time.perf_counter() - started) * 1000)
    return {"latency_p50_ms": percentile(timings, 50), "latency_p99_ms": percentile(timings, 99),
            "latency_sample": len(timings)}


def rating_errors(algo, test: pd.DataFrame | list) -> pd.DataFrame:
    """Prediction error of every test rating, with its user (Surprise's own ``test``).

    ``test`` is a frame of ratings or a Surprise testset (a list of (user, item, rating)).
    """
    if isinstance(test, pd.DataFrame):
        testset = list(zip(test["user_id"].tolist(), test["movie_id"].tolist(), test["rating"].tolist(),
                           strict=True))
    else:
        testset = test
    predictions = algo.test(testset)
    return pd.DataFrame({"user_id": [p.uid for p in predictions],
                         "error": [p.est - p.r_ui for p in predictions]})


def group_metrics(*, errors: pd.DataFrame, lists: dict[int, list[str]], relevant: dict[int, set[str]],
                  viewers: pd.DataFrame, k: int) -> dict:
    """RMSE, MAE and the ranking metrics per gender, age band and occupation."""
    attributes = viewers.set_index("user_id")
    out: dict[str, dict] = {}
    for attribute in ("gender", "age_band", "occupation"):
        mapping = attributes[attribute].replace("", "unknown").to_dict() if len(attributes) else {}
        groups: dict[str, dict] = {}
        error_groups = errors.assign(group=errors["user_id"].map(mapping).fillna("unknown"))
        for value, part in error_groups.groupby("group"):
            groups[str(value)] = {"ratings": len(part), "rmse": rmse(part["error"]), "mae": mae(part["error"])}
        by_group: dict[str, dict[int, list[str]]] = {}
        for user, items in lists.items():
            by_group.setdefault(str(mapping.get(user, "unknown")), {})[user] = items
        for value, group_lists in by_group.items():
            entry = groups.setdefault(value, {"ratings": 0, "rmse": None, "mae": None})
            entry.update(ranking_metrics(group_lists, relevant, k))
            entry["users"] = len(group_lists)
        out[attribute] = dict(sorted(groups.items()))
    return out


def sanitize(value):
    """NaN/inf → None, numpy scalars → Python, so metrics are valid JSON."""
    if isinstance(value, dict):
        return {str(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sanitize(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- two models on one evaluation set, per viewer (the release gate's comparison) -----------------

VIEWER_METRICS = ("rmse", "mae", "precision", "recall", "ndcg", "map", "hit_rate")
_RANKING = {"precision": precision_at_k, "recall": recall_at_k, "ndcg": ndcg_at_k,
            "map": average_precision_at_k, "hit_rate": hit_rate_at_k}


def viewer_scores(model, evaluation: pd.DataFrame, *, history: dict[int, set[str]], k: int,
                  fallback: float) -> pd.DataFrame:
    """Per viewer of ``evaluation`` (user_id, movie_id, rating): what a serving model scores there.

    Columns: ``n`` ratings, ``sse``/``sae`` (sums of squared and absolute rating errors; NaN when the
    artifact's kind predicts no ratings: a popularity ranking, top-n lists), ``fallbacks`` (pairs the
    model could not predict, scored ``fallback``), ``relevant`` (1 when the viewer has an evaluation
    rating ≥ 4) and, for those, ``precision``/``recall``/``ndcg``/``map``/``hit_rate`` at ``k`` of the
    model's top ``k`` among the items not in ``history[viewer]`` (what the viewer rated outside the
    evaluation set: both models rank the same pool). ``model`` is a ``ServingModel``.
    """
    predicts = model.kind_spec.predicts_ratings
    relevant = relevant_items(evaluation)
    rows = []
    for user, part in evaluation.groupby("user_id", sort=True):
        user = int(user)
        row: dict = {"user_id": user, "n": len(part), "relevant": 1.0 if relevant.get(user) else 0.0}
        if predicts:
            predictions = [model.predict(user, str(m)) for m in part["movie_id"].tolist()]
            row["fallbacks"] = sum(p is None for p in predictions)
            values = np.array([fallback if p is None else p for p in predictions], dtype=np.float64)
            errors = values - part["rating"].to_numpy(dtype=np.float64)
            row["sse"], row["sae"] = float(np.sum(errors ** 2)), float(np.sum(np.abs(errors)))
        else:
            row["fallbacks"], row["sse"], row["sae"] = 0, float("nan"), float("nan")
        if relevant.get(user):
            recs = model.recommend(user, k, exclude=history.get(user, ()))
            items = [item for item, _ in recs] if recs else []
            for name, fn in _RANKING.items():
                row[name] = fn(items, relevant[user], k)
        else:
            for name in _RANKING:
                row[name] = 0.0
        rows.append(row)
    columns = ["user_id", "n", "sse", "sae", "fallbacks", "relevant", *_RANKING]
    return pd.DataFrame(rows, columns=columns).set_index("user_id")


def viewer_metric(table: pd.DataFrame, metric: str, weights: np.ndarray | None = None) -> np.ndarray | float:
    """A metric from a ``viewer_scores`` table: RMSE/MAE pooled over ratings, ranking metrics averaged
    over viewers with a relevant item (as ``ranking_metrics``). ``weights`` (resamples × viewers:
    how often each viewer is drawn) gives one value per resample."""
    if metric in ("rmse", "mae"):
        numerator = table["sse" if metric == "rmse" else "sae"].to_numpy(dtype=np.float64)
        denominator = table["n"].to_numpy(dtype=np.float64)
    else:
        relevant = table["relevant"].to_numpy(dtype=np.float64)
        numerator = table[metric].to_numpy(dtype=np.float64) * relevant
        denominator = relevant
    if weights is None:
        total = denominator.sum()
        value = numerator.sum() / total if total else float("nan")
        return float(np.sqrt(value)) if metric == "rmse" else float(value)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (weights @ numerator) / (weights @ denominator)
    return np.sqrt(values) if metric == "rmse" else values


def paired_bootstrap(candidate: pd.DataFrame, production: pd.DataFrame, *, metrics: Sequence[str],
                     resamples: int, seed: int, confidence: float = 0.95) -> dict[str, dict]:
    """Candidate − production per metric, with a percentile interval from resampling viewers.

    Both tables score the same viewers (the index); each resample draws viewers with replacement and
    recomputes both models' metric on the same draw, so what the viewers have in common cancels out.
    Seeded: the same inputs give the same interval.
    """
    viewers = candidate.index.intersection(production.index).sort_values()
    candidate, production = candidate.loc[viewers], production.loc[viewers]
    n = len(viewers)
    out: dict[str, dict] = {}
    if n == 0:
        return {m: {"candidate": None, "production": None, "difference": None, "interval": None} for m in metrics}
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    tail = (1.0 - confidence) / 2 * 100
    for metric in metrics:
        cand, prod = viewer_metric(candidate, metric), viewer_metric(production, metric)
        if not (math.isfinite(cand) and math.isfinite(prod)):
            out[metric] = {"candidate": sanitize(cand), "production": sanitize(prod), "difference": None,
                           "interval": None}
            continue
        diffs = viewer_metric(candidate, metric, weights) - viewer_metric(production, metric, weights)
        diffs = diffs[np.isfinite(diffs)]
        interval = [float(np.percentile(diffs, tail)), float(np.percentile(diffs, 100 - tail))] if diffs.size else None
        out[metric] = {"candidate": cand, "production": prod, "difference": cand - prod, "interval": interval}
    return out
