"""The artifact exporters reproduce Surprise's own estimates; hyperparameters are validated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from surprise import Dataset, Reader

from portal.errors import ValidationError
from recommender.registry.artifacts import load_serving_model, write_artifact
from recommender.training.algorithms import (
    ALGORITHMS,
    algorithm_build,
    algorithm_export,
    validate_hyperparameters,
)


def small_trainset(seed: int = 1, n_users: int = 30, n_items: int = 25):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for i in range(n_items):
            if rng.random() < 0.45:
                rows.append((1000 - u * 7, f"m{i}", int(rng.integers(1, 6))))
    frame = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating"])
    return Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()


def export_and_load(name, params, tmp_path, topn=1000):
    trainset = small_trainset()
    algo = algorithm_build(name, validate_hyperparameters(name, params), seed=0)
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        algo.fit(trainset)
    kind, constants, arrays = algorithm_export(name, algo, trainset, topn=topn)
    sha, _ = write_artifact(directory=tmp_path / name, manifest={"kind": kind, "algorithm": name, **constants},
                            arrays=arrays)
    return algo, trainset, load_serving_model(directory=tmp_path / name, expected_sha256=sha)


def unseen_estimates(algo, trainset, inner_u):
    seen = {j for j, _ in trainset.ur[inner_u]}
    return {trainset.to_raw_iid(i): float(algo.estimate(inner_u, i)[0] if isinstance(algo.estimate(inner_u, i), tuple)
                                          else algo.estimate(inner_u, i))
            for i in range(trainset.n_items) if i not in seen}


@pytest.mark.parametrize("name,params", [
    ("svd", {"n_factors": 4, "n_epochs": 5}),
    ("svd", {"n_factors": 4, "n_epochs": 5, "biased": False}),
    ("svdpp", {"n_factors": 4, "n_epochs": 3}),
    ("nmf", {"n_factors": 4, "n_epochs": 10}),
    ("nmf", {"n_factors": 4, "n_epochs": 10, "biased": True}),
    ("baselineonly", {}),
    ("baselineonly", {"method": "sgd"}),
    ("coclustering", {"n_epochs": 5}),
    ("knnbaseline", {"k": 5}),
    ("knnbaseline", {"k": 5, "user_based": False, "sim_name": "pearson_baseline"}),
    ("knnbaseline", {"k": 3, "min_k": 3, "sim_name": "cosine"}),
    ("slopeone", {}),
])
def test_serving_scores_equal_surprise_estimates(tmp_path, name, params):
    algo, trainset, model = export_and_load(name, params, tmp_path)
    for inner_u in (0, 7, 19):
        raw_u = int(trainset.to_raw_uid(inner_u))
        expected = unseen_estimates(algo, trainset, inner_u)
        recs = model.recommend(raw_u, len(expected))
        got = dict(recs)
        assert set(got) == set(expected)  # every unseen item, no seen one
        for item, score in got.items():
            assert score == pytest.approx(expected[item], abs=2e-4), (item, name)
        # best first
        assert [s for _, s in recs] == sorted((s for _, s in recs), reverse=True)


def test_topn_keeps_the_best_n(tmp_path):
    algo, trainset, model = export_and_load("slopeone", {}, tmp_path, topn=5)
    expected = unseen_estimates(algo, trainset, 4)
    recs = model.recommend(int(trainset.to_raw_uid(4)), 20)
    assert len(recs) == 5
    assert [s for _, s in recs] == pytest.approx(sorted(expected.values(), reverse=True)[:5], abs=1e-4)


def test_popularity_ranks_by_rating_count(tmp_path):
    algo, trainset, model = export_and_load("popularity", {}, tmp_path)
    counts = {trainset.to_raw_iid(i): len(r) for i, r in trainset.ir.items()}
    recs = model.recommend(123456, 3)  # an unknown viewer still gets the ranking
    assert [c for c in sorted(counts.values(), reverse=True)[:3]] == [counts[i] for i, _ in recs]


@pytest.mark.parametrize("algorithm,params,field", [
    ("svd", {"n_factors": 0}, "n_factors"),
    ("svd", {"n_factors": "many"}, "n_factors"),
    ("svd", {"lr_all": 0}, "lr_all"),
    ("svd", {"n_epochs": True}, "n_epochs"),
    ("svd", {"reg_all": float("nan")}, "reg_all"),
    ("svd", {"learning": 0.1}, "learning"),
    ("knnbaseline", {"sim_name": "jaccard"}, "sim_name"),
    ("nmf", {"init_low": 2, "init_high": 1}, "init_low"),
    ("baselineonly", {"method": "newton"}, "method"),
    ("slopeone", {"k": 3}, "k"),
])
def test_bad_hyperparameters_are_named(algorithm, params, field):
    with pytest.raises(ValidationError) as info:
        validate_hyperparameters(algorithm, params)
    assert field in info.value.detail
    assert field in info.value.message


def test_unknown_algorithm_lists_the_known_ones():
    with pytest.raises(ValidationError, match="unknown algorithm 'xgboost'") as info:
        validate_hyperparameters("xgboost", {})
    assert info.value.detail["allowed"] == sorted(ALGORITHMS)


def test_defaults_and_string_coercion():
    params = validate_hyperparameters("svd", {"n_factors": "50", "biased": "false", "lr_all": "0.01"})
    assert params["n_factors"] == 50 and params["biased"] is False and params["lr_all"] == 0.01
    assert params["n_epochs"] == 20 and params["reg_all"] == 0.02
