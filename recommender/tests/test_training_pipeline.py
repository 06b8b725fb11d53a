"""Training runs end to end on a small synthetic data set with real Surprise: every algorithm."""

from __future__ import annotations

import pytest

from portal.models import ActivityLogEntry
from recommender.models import ModelVersion, TrainingRun
from recommender.registry.selectors import model_version_load
from recommender.tests.factories_training import synthetic_ratings
from recommender.training.algorithms import ALGORITHMS
from recommender.training.runs import training_run_create, training_run_execute
from recommender.training.snapshots import snapshot_create

pytestmark = pytest.mark.django_db

SMALL = {
    "svd": {"n_factors": 5, "n_epochs": 5}, "svdpp": {"n_factors": 5, "n_epochs": 3}, "nmf": {"n_factors": 5},
    "knnbaseline": {"k": 10}, "baselineonly": {}, "slopeone": {}, "coclustering": {"n_epochs": 5},
    "popularity": {},
}


@pytest.fixture
def snapshot(users):
    synthetic_ratings(n_users=40, n_items=30, density=0.4)
    return snapshot_create(actor=users["data_scientist"], name="synthetic")


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_each_algorithm_trains_evaluates_and_registers(snapshot, users, algorithm):
    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm=algorithm,
                              hyperparameters=SMALL[algorithm], seed=3, enqueue=False)
    result = training_run_execute(run_id=run.pk)
    assert result.status == TrainingRun.Status.SUCCEEDED, result.error
    assert result.percent == 100.0 and result.stage == "done"
    m = result.metrics
    assert 0 < m["rmse"] < 2.5 and 0 < m["mae"] <= m["rmse"]
    for key in ("precision_at_20", "recall_at_20", "ndcg_at_20", "map_at_20", "hit_rate_at_20", "coverage",
                "personalization", "gini"):
        assert m[key] is None or 0 <= m[key] <= 1, key
    assert m["latency_p99_ms"] >= m["latency_p50_ms"] > 0
    assert m["artifact_bytes"] > 0 and m["peak_memory_bytes"] > 0 and m["training_seconds"] > 0
    assert set(result.group_metrics) == {"gender", "age_band", "occupation"}
    assert result.environment["libraries"]["scikit-surprise"] == "1.1.5"
    version = ModelVersion.objects.get(training_run=result)
    assert version.version == 1 and version.artifact_kind == ALGORITHMS[algorithm].kind
    model = model_version_load(version=version)
    recs = model.recommend(1, 10)
    assert recs and len(recs) <= 10 and len({i for i, _ in recs}) == len(recs)
    assert ActivityLogEntry.objects.filter(action="training_run.succeeded", target_id=str(run.pk)).exists()
