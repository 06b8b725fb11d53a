"""The algorithms Usher trains: Surprise's seven plus a popularity baseline.

Each is one ``Algorithm`` entry in ``ALGORITHMS`` (at the end of this file) carrying everything
about it: a hyperparameter specification (types, defaults = Surprise's, ranges) used to validate a
run before anything is queued, its builder, the artifact kind it exports to
(``recommender/registry/kinds.py``) and its exporter, which turns the fitted model into that kind's
arrays (docs/artifacts.md). Adding an algorithm is one entry there; the API, the portal's training
form and ``manage.py train`` read the list. Progress of Surprise's fit is read from its verbose
output ("Processing epoch N"), which is also where a cancellation request interrupts it.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from surprise import NMF, SVD, AlgoBase, BaselineOnly, CoClustering, KNNBaseline, SlopeOne, SVDpp
from surprise.prediction_algorithms.predictions import PredictionImpossible

from portal.errors import ValidationError
from recommender.registry.artifacts import seen_csr
from recommender.registry.kinds import artifact_kind_get, artifact_kind_missing


@dataclass(frozen=True)
class Param:
    """One hyperparameter: type, default, allowed range or choices."""

    type: str  # int | float | bool | choice
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple = ()
    help: str = ""

    def describe(self) -> dict:
        out: dict[str, Any] = {"type": self.type, "default": self.default}
        if self.minimum is not None:
            out["minimum"] = self.minimum
            if self.exclusive_minimum:
                out["exclusive_minimum"] = True
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.choices:
            out["choices"] = list(self.choices)
        if self.help:
            out["help"] = self.help
        return out


Tick = Callable[[float], None]


@dataclass(frozen=True)
class ExportJob:
    """What an exporter works from: the trainset, its inner users in ``user_ids`` order, the top-n
    length of precomputed lists, a progress callback and the chunk of users to work on at once."""

    trainset: Any
    order: np.ndarray
    topn: int
    tick: Tick | None = None
    chunk: int = 2048


@dataclass(frozen=True)
class Algorithm:
    """One algorithm: its hyperparameters, how to build it, and how to export it to its artifact kind.

    ``build(params, seed)`` gets validated parameters; ``export(algo, job)`` gets the fitted model and
    an ``ExportJob`` and returns (manifest constants, arrays) beyond the ids and seen lists that
    ``algorithm_export`` adds; ``check(params)`` (optional) returns cross-parameter errors by name.
    """

    name: str
    label: str
    kind: str  # the artifact kind (recommender/registry/kinds.py)
    params: dict[str, Param] = field(default_factory=dict)
    epochs_param: str | None = None  # the parameter counting SGD/ALS epochs printed by the fit
    seeded: bool = False
    build: Callable[[dict, int], AlgoBase] = field(kw_only=True)
    export: Callable[[Any, ExportJob], tuple[dict, dict[str, np.ndarray]]] = field(kw_only=True)
    check: Callable[[dict], dict[str, str]] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        artifact_kind_get(self.kind)  # an unknown kind fails here, when the entry is made

    def describe(self) -> dict:
        return {"name": self.name, "label": self.label, "artifact_kind": self.kind, "seeded": self.seeded,
                "hyperparameters": {k: p.describe() for k, p in self.params.items()}}


def _pos_int(default: int, maximum: int, help: str = "") -> Param:
    return Param("int", default, minimum=1, maximum=maximum, help=help)


def _rate(default: float, help: str = "") -> Param:
    return Param("float", default, minimum=0.0, maximum=10.0, exclusive_minimum=True, help=help)


def _reg(default: float, help: str = "") -> Param:
    return Param("float", default, minimum=0.0, maximum=1000.0, help=help)


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _coerce(name: str, spec: Param, value: Any) -> Any:
    if value is None and spec.default is None:
        return None
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError("must be true or false")
    if spec.type == "choice":
        if value not in spec.choices:
            raise ValueError(f"must be one of {', '.join(map(str, spec.choices))}")
        return value
    if isinstance(value, bool):
        raise ValueError(f"must be a number ({spec.type}), not a boolean")
    if spec.type == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            value = int(value)
        if not isinstance(value, int):
            raise ValueError("must be a whole number")
    else:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError("must be a number")
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError("must be a finite number")
        value = float(value)
    if spec.minimum is not None and (value < spec.minimum or (spec.exclusive_minimum and value == spec.minimum)):
        raise ValueError(f"must be {'>' if spec.exclusive_minimum else '≥'} {spec.minimum}")
    if spec.maximum is not None and value > spec.maximum:
        raise ValueError(f"must be ≤ {spec.maximum}")
    return value


def algorithm_get(name: str) -> Algorithm:
    """The algorithm of that name, or a ValidationError listing the known ones."""
    key = (name or "").strip().lower()
    if key not in ALGORITHMS:
        raise ValidationError(f"unknown algorithm '{name}'", detail={"allowed": sorted(ALGORITHMS)},
                              field="algorithm")
    return ALGORITHMS[key]


def validate_hyperparameters(algorithm: str, params: dict | None) -> dict:
    """Check and coerce every parameter; return them with Surprise's defaults filled in.

    Raises ValidationError whose detail maps each bad parameter to what is wrong with it.
    """
    algo = algorithm_get(algorithm)
    if params is not None and not isinstance(params, dict):
        raise ValidationError("hyperparameters must be an object of name → value", field="hyperparameters")
    params = params or {}
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name in params:
        if name not in algo.params:
            errors[name] = f"unknown hyperparameter for {algo.name}; known: {', '.join(algo.params) or 'none'}"
    for name, spec in algo.params.items():
        try:
            clean[name] = _coerce(name, spec, params[name]) if name in params else spec.default
        except ValueError as exc:
            errors[name] = f"{exc} (got {params[name]!r})"
    if algo.check is not None and not errors:
        errors.update(algo.check(clean))
    if errors:
        summary = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        raise ValidationError(f"invalid hyperparameters for {algo.name}: {summary}", detail=errors,
                              field="hyperparameters")
    return clean


class Popularity(AlgoBase):
    """Ranks movies by how many ratings (≥ ``min_rating``) they have; predicts a damped item mean."""

    def __init__(self, min_rating: int = 1, damping: float = 5.0) -> None:
        AlgoBase.__init__(self)
        self.min_rating = min_rating
        self.damping = damping

    def fit(self, trainset):
        AlgoBase.fit(self, trainset)
        n_items = trainset.n_items
        counts = np.zeros(n_items)
        sums = np.zeros(n_items)
        n_ratings = np.zeros(n_items)
        for i, ratings in trainset.ir.items():
            values = np.fromiter((r for _, r in ratings), dtype=np.float64, count=len(ratings))
            counts[i] = np.count_nonzero(values >= self.min_rating)
            sums[i] = values.sum()
            n_ratings[i] = values.size
        mu = trainset.global_mean
        self.counts = counts
        self.item_means = (sums + self.damping * mu) / (n_ratings + self.damping)
        return self

    def estimate(self, u, i):
        if not self.trainset.knows_item(i):
            raise PredictionImpossible("unknown item")
        return float(self.item_means[i])


def algorithm_build(name: str, params: dict, *, seed: int) -> AlgoBase:
    """A Surprise algorithm (verbose, so its epochs can be followed) from validated parameters."""
    return algorithm_get(name).build(params, seed)


class FitWatcher(io.TextIOBase):
    """Stands in for stdout during Surprise's fit: turns its verbose lines into progress callbacks.

    ``on_epoch(done, total)`` is called as each epoch starts (it may raise to cancel the fit);
    ``on_message(text)`` gets the other lines (similarity matrix, baselines).
    """

    _EPOCH = re.compile(r"processing epoch (\d+)", re.IGNORECASE)

    def __init__(self, *, total_epochs: int | None, on_epoch: Callable[[int, int], None],
                 on_message: Callable[[str], None]) -> None:
        super().__init__()
        self.total_epochs = total_epochs
        self.on_epoch = on_epoch
        self.on_message = on_message
        self._buffer = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            line = line.strip()
            if not line:
                continue
            match = self._EPOCH.match(line)
            if match and self.total_epochs:
                self.on_epoch(int(match.group(1)), self.total_epochs)
            else:
                self.on_message(line)
        return len(text)


# --- export to the serving artifact -----------------------------------------------------------

def _ids(trainset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    raw_users = np.array([int(trainset.to_raw_uid(u)) for u in range(trainset.n_users)], dtype=np.int64)
    order = np.argsort(raw_users, kind="stable")
    item_ids = np.array([str(trainset.to_raw_iid(i)) for i in range(trainset.n_items)])
    if item_ids.size == 0:
        item_ids = np.array([], dtype="<U1")
    return raw_users[order], order, item_ids


def _seen(trainset, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return seen_csr([sorted(j for j, _ in trainset.ur[int(u)]) for u in order])


def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _svdpp_user_vectors(algo, trainset) -> np.ndarray:
    """p_u + |I_u|^-1/2 Σ y_j: SVD++'s implicit term folded into one vector per user."""
    rows, cols, vals = [], [], []
    for u in range(trainset.n_users):
        items = [j for j, _ in trainset.ur[u]]
        if items:
            rows.extend([u] * len(items))
            cols.extend(items)
            vals.extend([1.0 / math.sqrt(len(items))] * len(items))
    weights = sp.csr_matrix((vals, (rows, cols)), shape=(trainset.n_users, trainset.n_items))
    return np.asarray(algo.pu) + weights @ np.asarray(algo.yj)


def knnbaseline_estimates(algo, trainset, *, tick: Tick | None = None) -> np.ndarray:
    """Every (user, item) estimate of a fitted KNNBaseline as a dense [users, items] matrix.

    A vectorised form of Surprise's ``KNNBaseline.estimate``: for each y (item when user-based),
    the k most similar x' among those who rated y, positive similarities only, ``min_k`` respected.
    """
    mu = trainset.global_mean
    sim = np.asarray(algo.sim)
    bx, by = np.asarray(algo.bx), np.asarray(algo.by)
    n_x, n_y = algo.n_x, algo.n_y
    k, min_k = algo.k, algo.min_k
    out = np.empty((n_x, n_y), dtype=np.float64)
    for y in range(n_y):
        pairs = algo.yr[y]
        base = mu + bx + by[y]
        if not pairs:
            out[:, y] = base
            continue
        xs = np.fromiter((x for x, _ in pairs), dtype=np.int64, count=len(pairs))
        rs = np.fromiter((r for _, r in pairs), dtype=np.float64, count=len(pairs))
        resid = rs - (mu + bx[xs] + by[y])
        sims = sim[:, xs]
        if xs.size > k:
            # The k largest per row; among equal similarities at the boundary the earliest raters win,
            # exactly as Surprise's heapq.nlargest picks them.
            kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1:k]
            greater = sims > kth
            equal = sims == kth
            room = k - greater.sum(axis=1, keepdims=True)
            selected = greater | (equal & (np.cumsum(equal, axis=1) <= room))
        else:
            selected = np.ones(sims.shape, dtype=bool)
        positive = selected & (sims > 0)
        weights = np.where(positive, sims, 0.0)
        den = weights.sum(axis=1)
        num = weights @ resid
        count = positive.sum(axis=1)
        ok = (count >= min_k) & (den > 0)
        out[:, y] = base + np.where(ok, num / np.where(den > 0, den, 1.0), 0.0)
        if tick and y % 200 == 0:
            tick(y / n_y)
    return out if algo.sim_options["user_based"] else out.T


def slopeone_estimates(algo, trainset, *, users: np.ndarray) -> np.ndarray:
    """Estimates of a fitted SlopeOne for the given inner users, as [len(users), items]."""
    freq = np.asarray(algo.freq)
    dev = np.asarray(algo.dev)
    positive = (freq > 0).astype(np.float64)
    weighted = dev * positive
    rows, cols = [], []
    for r, u in enumerate(users):
        items = [j for j, _ in trainset.ur[int(u)]]
        rows.extend([r] * len(items))
        cols.extend(items)
    rated = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(users), trainset.n_items))
    num = np.asarray(rated @ weighted.T)
    cnt = np.asarray(rated @ positive.T)
    means = np.asarray(algo.user_mean)[users]
    return means[:, None] + np.where(cnt > 0, num / np.where(cnt > 0, cnt, 1.0), 0.0)


def _topn(estimates: np.ndarray, seen_rows: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    n_rows, n_items = estimates.shape
    items = np.full((n_rows, n), -1, dtype=np.int32)
    scores = np.zeros((n_rows, n), dtype=np.float32)
    work = estimates.astype(np.float64, copy=True)
    for r, seen in enumerate(seen_rows):
        work[r, seen] = -np.inf
    take = min(n, n_items)
    if take == 0:
        return items, scores
    if take < n_items:
        top = np.argpartition(-work, take - 1, axis=1)[:, :take]
    else:
        top = np.tile(np.arange(n_items), (n_rows, 1))
    top_scores = np.take_along_axis(work, top, axis=1)
    order = np.lexsort((top, -top_scores), axis=1)
    top = np.take_along_axis(top, order, axis=1)
    top_scores = np.take_along_axis(top_scores, order, axis=1)
    valid = np.isfinite(top_scores)
    items[:, :take] = np.where(valid, top, -1)
    scores[:, :take] = np.where(valid, top_scores, 0.0)
    return items, scores

def algorithm_export(name: str, algo, trainset, *, topn: int, tick: Tick | None = None,
                     chunk: int = 2048) -> tuple[str, dict, dict[str, np.ndarray]]:
    """(artifact kind, manifest constants, arrays) of a fitted algorithm; rows in ``user_ids`` order.

    The ids (and, for a kind that keeps them, each user's training items) are common to every
    algorithm; the rest is the algorithm's own ``export``. An export lacking an array of its kind
    is refused here, naming the algorithm, the kind and the arrays.
    """
    spec = algorithm_get(name)
    kind = artifact_kind_get(spec.kind)
    user_ids, order, item_ids = _ids(trainset)
    arrays: dict[str, np.ndarray] = {"item_ids": item_ids, "user_ids": user_ids}
    if kind.keeps_seen:
        arrays["seen_indptr"], arrays["seen_indices"] = _seen(trainset, order)
    constants, own = spec.export(algo, ExportJob(trainset=trainset, order=order, topn=topn, tick=tick, chunk=chunk))
    arrays.update(own)
    missing = artifact_kind_missing(kind.name, arrays)
    if missing:
        raise ValueError(f"algorithm '{spec.name}' exported no {missing} for its artifact kind '{kind.name}'")
    return kind.name, {"global_mean": float(trainset.global_mean), **constants}, arrays


# --- each algorithm's builder and exporter ------------------------------------------------------

def _factor_arrays(algo, job: ExportJob, users: np.ndarray, *, biased: bool) -> tuple[dict, dict]:
    order, n_users, n_items = job.order, job.trainset.n_users, job.trainset.n_items
    arrays = {
        "user_factors": _f32(users[order]),
        "item_factors": _f32(algo.qi),
        "user_bias": _f32(np.asarray(algo.bu)[order]) if biased else np.zeros(n_users, np.float32),
        "item_bias": _f32(algo.bi) if biased else np.zeros(n_items, np.float32),
    }
    return ({} if biased else {"global_mean": 0.0}), arrays


def _export_factors(algo, job: ExportJob) -> tuple[dict, dict]:
    return _factor_arrays(algo, job, np.asarray(algo.pu), biased=bool(getattr(algo, "biased", True)))


def _export_svdpp(algo, job: ExportJob) -> tuple[dict, dict]:
    return _factor_arrays(algo, job, _svdpp_user_vectors(algo, job.trainset), biased=True)


def _export_biases(algo, job: ExportJob) -> tuple[dict, dict]:
    return {}, {"user_bias": _f32(np.asarray(algo.bu)[job.order]), "item_bias": _f32(algo.bi)}


def _export_coclusters(algo, job: ExportJob) -> tuple[dict, dict]:
    order = job.order
    return {}, {
        "user_cluster": np.asarray(algo.cltr_u, dtype=np.int32)[order],
        "item_cluster": np.asarray(algo.cltr_i, dtype=np.int32),
        "user_mean": _f32(np.asarray(algo.user_mean)[order]),
        "item_mean": _f32(algo.item_mean),
        "cocluster_mean": _f32(algo.avg_cocltr),
        "user_cluster_mean": _f32(algo.avg_cltr_u),
        "item_cluster_mean": _f32(algo.avg_cltr_i),
    }


def _export_popularity(algo, job: ExportJob) -> tuple[dict, dict]:
    return {}, {"item_scores": _f32(algo.counts)}


def _topn_lists(job: ExportJob, estimate_rows: Callable[[np.ndarray], np.ndarray]) -> tuple[dict, dict]:
    """The best ``job.topn`` unseen items per user from ``estimate_rows(inner users)``, a chunk at a time."""
    trainset, order, topn, chunk = job.trainset, job.order, job.topn, job.chunk
    n_users = trainset.n_users
    items_parts, scores_parts = [], []
    for start in range(0, n_users, chunk):
        rows = order[start:start + chunk]
        seen = [np.fromiter((j for j, _ in trainset.ur[int(u)]), dtype=np.int64) for u in rows]
        top_items, top_scores = _topn(estimate_rows(rows), seen, topn)
        items_parts.append(top_items)
        scores_parts.append(top_scores)
        if job.tick:
            job.tick(min(1.0, (start + chunk) / max(n_users, 1)))
    return {"topn": topn}, {
        "topn_items": np.concatenate(items_parts) if items_parts else np.zeros((0, topn), np.int32),
        "topn_scores": np.concatenate(scores_parts) if scores_parts else np.zeros((0, topn), np.float32),
    }


def _export_knnbaseline(algo, job: ExportJob) -> tuple[dict, dict]:
    full = knnbaseline_estimates(algo, job.trainset, tick=job.tick)
    return _topn_lists(job, lambda rows: full[rows])


def _export_slopeone(algo, job: ExportJob) -> tuple[dict, dict]:
    return _topn_lists(job, lambda rows: slopeone_estimates(algo, job.trainset, users=rows))


def _build_svd(p: dict, seed: int) -> AlgoBase:
    return SVD(n_factors=p["n_factors"], n_epochs=p["n_epochs"], biased=p["biased"], init_mean=p["init_mean"],
               init_std_dev=p["init_std_dev"], lr_all=p["lr_all"], reg_all=p["reg_all"], random_state=seed,
               verbose=True)


def _build_svdpp(p: dict, seed: int) -> AlgoBase:
    return SVDpp(n_factors=p["n_factors"], n_epochs=p["n_epochs"], init_mean=p["init_mean"],
                 init_std_dev=p["init_std_dev"], lr_all=p["lr_all"], reg_all=p["reg_all"], random_state=seed,
                 verbose=True)


def _build_nmf(p: dict, seed: int) -> AlgoBase:
    return NMF(n_factors=p["n_factors"], n_epochs=p["n_epochs"], biased=p["biased"], reg_pu=p["reg_pu"],
               reg_qi=p["reg_qi"], reg_bu=p["reg_bu"], reg_bi=p["reg_bi"], lr_bu=p["lr_bu"], lr_bi=p["lr_bi"],
               init_low=p["init_low"], init_high=p["init_high"], random_state=seed, verbose=True)


def _check_nmf(p: dict) -> dict[str, str]:
    return {"init_low": "must be below init_high"} if p["init_low"] >= p["init_high"] else {}


def _build_knnbaseline(p: dict, seed: int) -> AlgoBase:
    return KNNBaseline(
        k=p["k"], min_k=p["min_k"], verbose=True,
        sim_options={"name": p["sim_name"], "user_based": p["user_based"], "min_support": p["min_support"],
                     "shrinkage": p["shrinkage"]},
        bsl_options={"method": "als", "n_epochs": p["bsl_n_epochs"], "reg_u": p["bsl_reg_u"],
                     "reg_i": p["bsl_reg_i"]},
    )


def _build_baselineonly(p: dict, seed: int) -> AlgoBase:
    if p["method"] == "als":
        bsl = {"method": "als", "reg_u": p["reg_u"], "reg_i": p["reg_i"]}
    else:
        bsl = {"method": "sgd", "reg": p["reg"], "learning_rate": p["learning_rate"]}
    if p["n_epochs"] is not None:
        bsl["n_epochs"] = p["n_epochs"]
    return BaselineOnly(bsl_options=bsl, verbose=True)


def _build_coclustering(p: dict, seed: int) -> AlgoBase:
    return CoClustering(n_cltr_u=p["n_cltr_u"], n_cltr_i=p["n_cltr_i"], n_epochs=p["n_epochs"],
                        random_state=seed, verbose=True)


# --- the algorithms: adding one is one entry here (plus its test) -----------------------------------

ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in [
        Algorithm("svd", "SVD (Funk matrix factorisation, SGD)", "factors", {
            "n_factors": _pos_int(100, 1000, "latent factors"),
            "n_epochs": _pos_int(20, 1000, "SGD epochs"),
            "biased": Param("bool", True, help="use user and item biases"),
            "init_mean": Param("float", 0.0, minimum=-10, maximum=10),
            "init_std_dev": Param("float", 0.1, minimum=0, maximum=10),
            "lr_all": _rate(0.005, "learning rate"),
            "reg_all": _reg(0.02, "regularisation"),
        }, epochs_param="n_epochs", seeded=True, build=_build_svd, export=_export_factors),
        Algorithm("svdpp", "SVD++ (implicit feedback)", "factors", {
            "n_factors": _pos_int(20, 1000), "n_epochs": _pos_int(20, 1000),
            "init_mean": Param("float", 0.0, minimum=-10, maximum=10),
            "init_std_dev": Param("float", 0.1, minimum=0, maximum=10),
            "lr_all": _rate(0.007), "reg_all": _reg(0.02),
        }, epochs_param="n_epochs", seeded=True, build=_build_svdpp, export=_export_svdpp),
        Algorithm("nmf", "NMF (non-negative matrix factorisation)", "factors", {
            "n_factors": _pos_int(15, 1000), "n_epochs": _pos_int(50, 1000),
            "biased": Param("bool", False),
            "reg_pu": _reg(0.06), "reg_qi": _reg(0.06), "reg_bu": _reg(0.02), "reg_bi": _reg(0.02),
            "lr_bu": _rate(0.005), "lr_bi": _rate(0.005),
            "init_low": Param("float", 0.0, minimum=0, maximum=100),
            "init_high": Param("float", 1.0, minimum=0, maximum=100),
        }, epochs_param="n_epochs", seeded=True, build=_build_nmf, export=_export_factors, check=_check_nmf),
        Algorithm("knnbaseline", "KNNBaseline (neighbourhood with baselines)", "topn", {
            "k": _pos_int(40, 10_000, "maximum neighbours"),
            "min_k": Param("int", 1, minimum=0, maximum=10_000, help="minimum neighbours, else the baseline"),
            "sim_name": Param("choice", "msd", choices=("msd", "cosine", "pearson", "pearson_baseline")),
            "user_based": Param("bool", True, help="user-user (true) or item-item (false) similarities"),
            "min_support": Param("int", 1, minimum=0, maximum=100_000),
            "shrinkage": Param("int", 100, minimum=0, maximum=100_000, help="pearson_baseline only"),
            "bsl_n_epochs": _pos_int(10, 1000, "ALS epochs of the baselines"),
            "bsl_reg_u": _reg(15.0), "bsl_reg_i": _reg(10.0),
        }, build=_build_knnbaseline, export=_export_knnbaseline),
        Algorithm("baselineonly", "BaselineOnly (global mean + biases)", "biases", {
            "method": Param("choice", "als", choices=("als", "sgd")),
            "n_epochs": Param("int", None, minimum=1, maximum=1000, help="default: 10 (als) / 20 (sgd)"),
            "reg_u": _reg(15.0, "als"), "reg_i": _reg(10.0, "als"),
            "reg": _reg(0.02, "sgd"), "learning_rate": _rate(0.005, "sgd"),
        }, build=_build_baselineonly, export=_export_biases),
        Algorithm("slopeone", "SlopeOne", "topn", {},
                  build=lambda p, seed: SlopeOne(), export=_export_slopeone),
        Algorithm("coclustering", "CoClustering", "coclusters", {
            "n_cltr_u": _pos_int(3, 1000), "n_cltr_i": _pos_int(3, 1000), "n_epochs": _pos_int(20, 1000),
        }, epochs_param="n_epochs", seeded=True, build=_build_coclustering, export=_export_coclusters),
        Algorithm("popularity", "Popularity (most rated first)", "ranking", {
            "min_rating": Param("int", 1, minimum=1, maximum=5, help="count only ratings at or above this"),
            "damping": Param("float", 5.0, minimum=0, maximum=10_000,
                             help="prior weight of the global mean in the predicted rating"),
        }, build=lambda p, seed: Popularity(min_rating=p["min_rating"], damping=p["damping"]),
            export=_export_popularity),
    ]
}
