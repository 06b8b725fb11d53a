"""The offline-metrics check compares like with like: both versions scored now on one evaluation set
(the candidate's held-out rows neither model was fitted on), a paired bootstrap over viewers for the
noise. Real Surprise on a small synthetic world, through the training pipeline and the registry."""

from __future__ import annotations

import pytest

from recommender.models import ModelVersion, TrainingRun
from recommender.tests.factories_training import synthetic_ratings
from recommender.training.runs import training_run_create, training_run_execute
from recommender.training.snapshots import snapshot_create
from releases import integrations
from releases.models import PromotionRequest, ReleaseGateCheck
from releases.services import gate
from releases.tests.factories import in_production

pytestmark = pytest.mark.django_db
Outcome = ReleaseGateCheck.Outcome
# A configuration that learns this world (a crippled one and a popularity ranking rank clearly worse).
SVD = {"n_factors": 3, "n_epochs": 25, "lr_all": 0.01, "reg_all": 0.1}


@pytest.fixture
def snapshot(users):
    synthetic_ratings(n_users=250, n_items=80, density=0.25, seed=5)
    return snapshot_create(actor=users["data_scientist"], name="gate world")


def trained(users, snapshot, *, algorithm="svd", hyperparameters=None, seed=0, split=None) -> ModelVersion:
    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm=algorithm,
                              hyperparameters=SVD if hyperparameters is None else hyperparameters, seed=seed,
                              split=split, enqueue=False)
    run = training_run_execute(run_id=run.pk)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    return ModelVersion.objects.get(training_run=run)


@pytest.fixture
def production(users, snapshot):
    return in_production(trained(users, snapshot, seed=0))


def rows_by_metric(result) -> dict:
    return {r["metric"]: r for r in result.evidence["metrics"]}


def test_production_config_retrained_with_other_seeds_passes(users, snapshot, production):
    """The default form's retrain: another seed also draws another split (split seed = run seed), so
    most of the candidate's held-out rows were in production's training part and are left out."""
    for seed in (1, 2, 3):
        candidate = trained(users, snapshot, seed=seed)
        result = gate.check_offline_metrics(version=candidate, baseline=production)
        assert result.outcome == Outcome.PASSED, result.summary
        rows = rows_by_metric(result)
        assert rows["rmse"]["method"] == "paired" and rows["ndcg_at_20"]["method"] == "paired"
        low, high = rows["rmse"]["interval"]
        assert low <= rows["rmse"]["difference"] <= high
        assert "within tolerance of production on the same" in result.summary


def test_a_crippled_model_fails_with_its_interval_beyond_tolerance(users, snapshot, production):
    crippled = trained(users, snapshot, hyperparameters={"n_factors": 1, "n_epochs": 1}, seed=0)
    result = gate.check_offline_metrics(version=crippled, baseline=production)
    assert result.outcome == Outcome.FAILED
    ndcg = rows_by_metric(result)["ndcg_at_20"]
    assert ndcg["result"] == "failed" and ndcg["worse_by_interval"][0] > ndcg["tolerance"]
    assert ndcg["candidate"] < ndcg["production"] and ndcg["interval"][1] < -ndcg["tolerance"]
    assert "ndcg_at_20" in result.summary and "worse by" in result.summary


def test_a_popularity_ranking_fails_on_ranking_and_its_missing_rmse_is_reported(users, snapshot, production):
    popularity = trained(users, snapshot, algorithm="popularity", hyperparameters={})
    result = gate.check_offline_metrics(version=popularity, baseline=production)
    assert result.outcome == Outcome.FAILED
    rows = rows_by_metric(result)
    assert rows["ndcg_at_20"]["result"] == "failed"
    assert rows["rmse"]["result"] == "missing" and rows["rmse"]["candidate"] is None  # a ranking predicts no ratings


def test_evidence_names_one_evaluation_set_for_both_without_rows_production_was_fitted_on(users, snapshot,
                                                                                          production):
    candidate = trained(users, snapshot, seed=1)
    result = gate.check_offline_metrics(version=candidate, baseline=production)
    described = result.evidence["evaluation_set"]
    assert described["snapshot"] == snapshot.pk and described["training_run"] == candidate.training_run_id
    assert described["production_training_run"] == production.training_run_id
    # Both models were scored on the same viewers and rows, counted from each model's own table.
    scored = result.evidence["scored"]
    assert scored["candidate"]["viewers"] == scored["production"]["viewers"] == described["viewers"]
    assert scored["candidate"]["rows"] == scored["production"]["rows"] == described["rows"]
    leaked = [e for e in described["excluded"] if "production was fitted on them" in e["why"]]
    assert leaked and leaked[0]["rows"] > 0
    # No row of the set is in production's (or the candidate's) training part.
    common = gate.evaluation_set(version=candidate, baseline=production)
    for version in (production, candidate):
        train = integrations.version_evaluation_data(version=version)["train"]
        fitted = set(zip(train["user_id"], train["movie_id"], strict=True))
        assert not fitted & set(zip(common["rows"]["user_id"], common["rows"]["movie_id"], strict=True))
    assert len(common["rows"]) == described["rows"]


def test_same_split_keeps_every_held_out_row_and_the_bootstrap_is_deterministic(users, snapshot, production):
    candidate = trained(users, snapshot, seed=3, split={"kind": "random", "test_fraction": 0.2, "seed": 0})
    first = gate.check_offline_metrics(version=candidate, baseline=production)
    described = first.evidence["evaluation_set"]
    assert not [e for e in described["excluded"] if "fitted on" in e["why"]]
    assert described["rows"] + sum(e["rows"] for e in described["excluded"]) == described["held_out_rows"]
    again = gate.check_offline_metrics(version=candidate, baseline=production)
    assert rows_by_metric(first)["ndcg_at_20"]["interval"] == rows_by_metric(again)["ndcg_at_20"]["interval"]


def test_no_production_passes_and_says_so(users, snapshot):
    candidate = trained(users, snapshot, seed=1)
    result = gate.check_offline_metrics(version=candidate, baseline=None)
    assert result.outcome == Outcome.PASSED
    assert result.summary == "no version in production: nothing to compare against"
    assert result.evidence["production"] is None and result.evidence["candidate"]["rmse"] > 0


def test_a_kfold_candidate_is_compared_on_stored_figures_and_the_summary_says_so(users, snapshot, production):
    candidate = trained(users, snapshot, seed=1, split={"kind": "kfold", "folds": 3})
    result = gate.check_offline_metrics(version=candidate, baseline=production)
    assert "not like with like" in result.summary
    assert "3-fold split" in result.evidence["not_like_with_like"]
    assert {r["method"] for r in result.evidence["metrics"]} == {"stored"}


def test_too_few_common_viewers_is_an_error_not_a_guess(users, snapshot, production, settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "RELEASES": {"GATE_MIN_VIEWERS": 10_000}}
    candidate = trained(users, snapshot, seed=1)
    result = gate.check_offline_metrics(version=candidate, baseline=production)
    assert result.outcome == Outcome.ERROR and "too few" in result.summary
    assert "production was fitted on them" in result.summary  # why the set is small, in the summary


def test_paired_bootstrap_pools_ratings_per_viewer_and_sees_a_shift_beyond_the_noise():
    import numpy as np
    import pandas as pd

    from recommender.training.evaluation import paired_bootstrap, viewer_metric

    def table(sse):  # three viewers with 1, 2 and 3 ratings; only the first two have a relevant item
        return pd.DataFrame({"n": [1, 2, 3], "sse": sse, "sae": [1.0, 1.0, 1.0], "relevant": [1.0, 1.0, 0.0],
                             "ndcg": [0.5, 0.25, 0.0]}, index=pd.Index([7, 8, 9], name="user_id"))

    production = table([1.0, 2.0, 3.0])
    assert viewer_metric(production, "rmse") == pytest.approx(1.0)  # sqrt(6 / 6), pooled over ratings
    assert viewer_metric(production, "ndcg") == pytest.approx(0.375)  # viewers with a relevant item only
    same = paired_bootstrap(production, production, metrics=["rmse", "ndcg"], resamples=200, seed=0)
    assert same["rmse"]["difference"] == 0 and same["rmse"]["interval"] == [0.0, 0.0]
    rng = np.random.default_rng(1)
    n = 300
    base = pd.DataFrame({"n": np.full(n, 4), "sse": rng.uniform(1, 5, n), "sae": np.ones(n), "relevant": np.ones(n),
                         "ndcg": rng.uniform(0, 0.3, n)}, index=pd.Index(range(n), name="user_id"))
    worse = base.assign(sse=base["sse"] * 1.3)
    shifted = paired_bootstrap(worse, base, metrics=["rmse"], resamples=500, seed=0)["rmse"]
    assert 0 < shifted["interval"][0] < shifted["difference"] < shifted["interval"][1]
    assert paired_bootstrap(worse, base, metrics=["rmse"], resamples=500, seed=0)["rmse"] == shifted


def test_promotion_page_shows_both_figures_side_by_side_with_their_interval(client, users, snapshot, production):
    from releases import services

    candidate = trained(users, snapshot, seed=1)
    result = gate.check_offline_metrics(version=candidate, baseline=production)
    promotion = services.promotion_request_create(version=candidate, actor=users["data_scientist"], reason="seed 1")
    ReleaseGateCheck.objects.create(promotion=promotion, attempt=1, name=result.name, outcome=result.outcome,
                                    summary=result.summary, evidence=result.evidence)
    PromotionRequest.objects.filter(pk=promotion.pk).update(status="gate_failed", gate_attempt=1)
    client.force_login(users["admin"])
    html = client.get(f"/portal/releases/promotions/{promotion.pk}/").content.decode()
    table = html[html.index('data-testid="gate-offline-metrics"'):]
    table = table[:table.index("</table>")]
    ndcg = rows_by_metric(result)["ndcg_at_20"]
    for value in (ndcg["candidate"], ndcg["production"], *ndcg["interval"]):
        assert f"{value:.4f}" in table
    described = result.evidence["evaluation_set"]
    assert f"Both scored on the same {described['viewers']} viewers" in html
    assert "{'" not in table and "production was fitted on them" in html
