"""Scheduled retraining: snapshot → production configuration → candidate → compare → the releases'
promotion request (gate → review → canary), the same path as a data scientist's request."""

from __future__ import annotations

import pytest

from portal.models import ActivityLogEntry, ReviewRequest
from recommender.models import ModelAlias, PromotionRequest, TrainingRun
from recommender.releases.tests.factories import in_production
from recommender.tests.factories_training import synthetic_ratings
from recommender.training.retraining import retraining_start
from recommender.training.runs import training_run_create, training_run_execute
from recommender.training.snapshots import snapshot_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(db):
    synthetic_ratings(n_users=40, n_items=30, density=0.4)
    snapshot = snapshot_create(actor=None, system="test")
    run = training_run_create(actor=None, system="test", snapshot=snapshot, algorithm="svd",
                              hyperparameters={"n_factors": 5, "n_epochs": 5}, enqueue=False)
    version = training_run_execute(run_id=run.pk).model_version
    return in_production(version, reason="setup")


def run_scheduled() -> TrainingRun:
    run = retraining_start(system="recommender.retrain")
    assert run is not None and run.origin == "scheduled" and run.status == "queued"
    return training_run_execute(run_id=run.pk)


@pytest.mark.parametrize("metric", ["ndcg_at_20", "rmse"])
def test_a_winning_candidate_files_a_promotion_request(production, settings, metric, monkeypatch,
                                                       django_capture_on_commit_callbacks):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "PROMOTION_MARGIN": -10.0, "PROMOTION_METRIC": metric}
    sent = []  # what would reach the broker (the gate itself is tested in the releases' tests)
    monkeypatch.setattr("portal.queue.task_send", lambda name, **kw: sent.append((name, tuple(kw["args"]))) or "id")
    with django_capture_on_commit_callbacks(execute=True):
        run = run_scheduled()
    assert run.status == "succeeded"
    assert run.algorithm == "svd" and run.hyperparameters["n_factors"] == 5  # the production configuration
    assert run.split == {"kind": "temporal", "test_fraction": 0.1}
    candidate = run.model_version
    assert candidate.status == "candidate"
    promotion = PromotionRequest.objects.get(version=candidate)
    assert promotion.status == "gate_pending" and promotion.requested_label == "system:recommender.retrain"
    assert promotion.requested_by is None and promotion.baseline_version_id == production.pk
    assert f"scheduled retraining: {metric}" in promotion.reason
    assert ("recommender.releases.release_gate", (promotion.pk,)) in sent  # its release gate is queued
    assert not ReviewRequest.objects.filter(target_type="recommender.modelversion").exists()  # no registry review
    comparison = ActivityLogEntry.objects.get(action="retraining.compared").data
    assert comparison["outcome"] == "candidate wins" and comparison["metric"] == metric
    assert comparison["production_version"] == production.pk and comparison["promotion"] == promotion.pk
    assert comparison["candidate_score"] is not None and comparison["production_score"] is not None
    assert ModelAlias.objects.get(name="production").version_id == production.pk  # nothing moved by itself


def test_a_retraining_started_by_a_person_is_filed_on_their_behalf(production, settings, users):
    """Four eyes: whoever started the scheduled configuration's run cannot approve its promotion."""
    settings.RECOMMENDER = {**settings.RECOMMENDER, "PROMOTION_MARGIN": -10.0}
    run = retraining_start(system="recommender.retrain", actor=users["data_scientist"])
    run = training_run_execute(run_id=run.pk)
    promotion = PromotionRequest.objects.get(version=run.model_version)
    assert promotion.requested_by == users["data_scientist"]
    entry = ActivityLogEntry.objects.get(action="release.promotion.requested")
    assert entry.actor_label == "system:recommender.retrain" and entry.data["on_behalf_of"] == "data_scientist_user"


def test_a_losing_candidate_opens_nothing(production, settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "PROMOTION_MARGIN": 10.0}
    run = run_scheduled()
    assert run.model_version.status == "candidate"
    assert not PromotionRequest.objects.filter(version=run.model_version).exists()
    assert not ReviewRequest.objects.filter(kind="model_promotion", status="pending").exists()
    entry = ActivityLogEntry.objects.get(action="retraining.compared")
    assert entry.data["outcome"] == "production holds" and entry.actor_label == "system:recommender.retrain"


def test_nothing_to_train_is_logged_not_raised():
    assert retraining_start(system="recommender.retrain") is None
    assert ActivityLogEntry.objects.filter(action="retraining.skipped").exists()


def test_the_schedule_is_seeded_every_three_days():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="recommender.retrain")
    assert task.task == "recommender.retrain" and task.enabled
    assert (task.interval.every, task.interval.period) == (3, "days")
    assert PeriodicTask.objects.get(name="recommender.training_repair").interval.period == "minutes"
    assert "never reached the broker" in PeriodicTask.objects.get(name="recommender.training_repair").description
