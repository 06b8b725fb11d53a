"""A real Celery worker process on Redis trains runs end to end; killing it mid-run never leaves a
half-registered model. Needs REDIS_URL and PostgreSQL (the worker process shares the test database)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from portal.testing import wait_until
from recommender.models import ModelVersion, TrainingRun
from recommender.registry.artifacts import artifact_root
from recommender.registry.selectors import model_version_load
from recommender.tests.factories_training import synthetic_ratings
from recommender.training.runs import training_run_cancel, training_run_create, training_run_repair_stuck
from recommender.training.snapshots import snapshot_create

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]
LONG = {"n_factors": 600, "n_epochs": 1000}


def fitting(run_id: int) -> TrainingRun | None:
    run = TrainingRun.objects.get(pk=run_id)
    return run if run.status == "running" and run.stage == "fitting" and run.percent > 6 else None


def terminal(run_id: int) -> TrainingRun | None:
    run = TrainingRun.objects.get(pk=run_id)
    return run if run.is_terminal else None


@pytest.fixture
def snapshot(db):
    synthetic_ratings(n_users=40, n_items=30, density=0.4)
    return snapshot_create(actor=None, system="test")


def test_worker_trains_a_run_end_to_end_and_cancels_another(start_worker, snapshot):
    start_worker("training-test", pool="prefork")
    run = training_run_create(actor=None, system="test", snapshot=snapshot, algorithm="knnbaseline",
                              hyperparameters={"k": 10})
    assert run.status == "queued"
    done = wait_until(lambda: terminal(run.pk), 120, "the run to finish")
    assert done.status == "succeeded", done.error
    assert done.worker and done.worker.split(":")[1] != str(os.getpid())  # another process trained it
    version = ModelVersion.objects.get(training_run=done)
    assert model_version_load(version=version).recommend(1, 5)

    long = training_run_create(actor=None, system="test", snapshot=snapshot, algorithm="svdpp", hyperparameters=LONG)
    wait_until(lambda: fitting(long.pk), 120, "the long run to be fitting")
    training_run_cancel(run=long, actor=None, system="test", reason="enough")
    cancelled = wait_until(lambda: terminal(long.pk), 60, "the cancellation")
    assert cancelled.status == "cancelled" and cancelled.percent < 55
    assert not ModelVersion.objects.filter(training_run=cancelled).exists()


def test_killed_worker_process_leaves_the_run_failed_and_nothing_registered(start_worker, snapshot):
    worker = start_worker("training-test", pool="solo")  # the task runs in the worker process itself
    run = training_run_create(actor=None, system="test", snapshot=snapshot, algorithm="svdpp", hyperparameters=LONG)
    wait_until(lambda: fitting(run.pk), 120, "the run to be fitting")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    run.refresh_from_db()
    assert run.status == "running"  # nobody is left to say otherwise ...
    assert training_run_repair_stuck(older_than_minutes=0) == [run.pk]  # ... until the repair task runs
    run.refresh_from_db()
    assert run.status == "failed" and "repair" in run.error
    assert not ModelVersion.objects.exists()
    models = artifact_root() / "models"
    assert not list(models.glob(f"*/run-{run.pk}-*")) if models.exists() else True


def test_killed_pool_process_is_retried_and_registers_once(start_worker, snapshot):
    start_worker("training-test", pool="prefork")
    run = training_run_create(actor=None, system="test", snapshot=snapshot, algorithm="svdpp",
                              hyperparameters={"n_factors": 400, "n_epochs": 1000})
    first = wait_until(lambda: fitting(run.pk), 120, "the run to be fitting")
    child_pid = int(first.worker.rsplit(":", 1)[1])
    os.kill(child_pid, signal.SIGKILL)  # the pool process dies mid-fit; the task message is requeued
    done = wait_until(lambda: terminal(run.pk), 240, "the retried run to finish")
    assert done.status == "succeeded", done.error
    assert done.attempts == 2 and done.worker != first.worker
    assert ModelVersion.objects.filter(training_run=done).count() == 1
    assert "was lost; restarting (attempt 2)" in done.log
    leftovers = [p.name for p in Path(artifact_root() / "models").glob(f"*/run-{run.pk}-*")]
    assert leftovers == [f"run-{run.pk}-a2"]
