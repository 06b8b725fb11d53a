"""Run services: validation before queueing, cancel, idempotent execution, take-over, repair."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from portal.errors import Conflict, ValidationError
from portal.models import ActivityLogEntry
from recommender.models import ModelVersion, TrainingRun
from recommender.registry.artifacts import artifact_root
from recommender.tests.factories_training import synthetic_ratings
from recommender.training.runs import (
    training_run_cancel,
    training_run_create,
    training_run_execute,
    training_run_repair_stuck,
)
from recommender.training.snapshots import snapshot_create
from recommender.training.tasks import train


@pytest.fixture
def snapshot(db):
    synthetic_ratings(n_users=40, n_items=30, density=0.4)
    return snapshot_create(actor=None, system="test")


@pytest.mark.django_db
@pytest.mark.parametrize("kwargs,match", [
    ({"algorithm": "deep"}, "unknown algorithm"),
    ({"algorithm": "svd", "hyperparameters": {"n_factors": -1}}, "n_factors"),
    ({"algorithm": "svd", "split": {"kind": "random", "test_fraction": 0}}, "test_fraction"),
    ({"algorithm": "svd", "seed": -4}, "seed"),
])
def test_invalid_runs_are_refused_before_anything_is_queued(snapshot, users, kwargs, match):
    with pytest.raises(ValidationError, match=match):
        training_run_create(actor=users["data_scientist"], snapshot=snapshot, **kwargs)
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_tiny_snapshot_is_refused(users):
    synthetic_ratings(n_users=3, n_items=3, density=1.0)
    tiny = snapshot_create(actor=None, system="test")
    with pytest.raises(ValidationError, match="too small"):
        training_run_create(actor=users["data_scientist"], snapshot=tiny, algorithm="svd")
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_execution_is_idempotent(snapshot, users):
    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm="baselineonly",
                              enqueue=False)
    assert train.run(run.pk) == "succeeded"
    assert train.run(run.pk) == "skipped"          # a second delivery does nothing
    assert training_run_execute(run_id=run.pk) is None
    assert train.run(987654) == "skipped"          # a vanished run too
    assert ModelVersion.objects.filter(training_run=run).count() == 1
    assert ActivityLogEntry.objects.filter(action="training_run.succeeded").count() == 1


@pytest.mark.django_db
def test_cancel_a_queued_run(snapshot, users):
    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm="svd", enqueue=False)
    run = training_run_cancel(run=run, actor=users["data_scientist"], reason="wrong params")
    assert run.status == "cancelled"
    assert train.run(run.pk) == "skipped"
    with pytest.raises(Conflict, match="already cancelled"):
        training_run_cancel(run=run, actor=users["data_scientist"])
    assert not ModelVersion.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_cancel_a_running_run_between_epochs(snapshot, users):
    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm="svdpp",
                              hyperparameters={"n_factors": 300, "n_epochs": 1000}, enqueue=False)

    def cancel_when_fitting():
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                current = TrainingRun.objects.get(pk=run.pk)
                if current.stage == "fitting" and current.percent > 5:
                    try:
                        training_run_cancel(run=current, actor=users["data_scientist"], reason="enough")
                        return
                    except OperationalError:
                        pass
                time.sleep(0.05)
        finally:
            connection.close()

    thread = threading.Thread(target=cancel_when_fitting)
    thread.start()
    result = training_run_execute(run_id=run.pk)
    thread.join()
    assert result.status == "cancelled"
    assert result.percent < 55  # stopped inside the fit, long before its 1000 epochs ended
    assert not ModelVersion.objects.exists()
    assert not list((artifact_root() / "models").glob("*/run-*")) if (artifact_root() / "models").exists() else True


@pytest.mark.django_db
def test_a_run_whose_worker_died_is_taken_over(snapshot, users):
    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm="baselineonly",
                              enqueue=False)
    import socket

    # A previous delivery claimed it in a process that no longer exists on this host.
    TrainingRun.objects.filter(pk=run.pk).update(status="running", attempts=1, worker=f"{socket.gethostname()}:999999",
                                                 heartbeat_at=timezone.now())
    result = training_run_execute(run_id=run.pk)
    assert result.status == "succeeded" and result.attempts == 2
    assert ActivityLogEntry.objects.filter(action="training_run.restarted").exists()


@pytest.mark.django_db
def test_a_run_that_lost_too_many_workers_fails(snapshot, users, settings):
    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm="svd", enqueue=False)
    import socket

    TrainingRun.objects.filter(pk=run.pk).update(status="running", attempts=settings.RECOMMENDER["TRAINING_MAX_ATTEMPTS"],
                                                 worker=f"{socket.gethostname()}:999999", heartbeat_at=timezone.now())
    assert training_run_execute(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.status == "failed" and "worker lost" in run.error


@pytest.mark.django_db
def test_a_live_duplicate_is_left_alone(snapshot, users):
    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm="svd", enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(status="running", attempts=1, worker="elsewhere:1",
                                                 heartbeat_at=timezone.now())
    assert training_run_execute(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.status == "running" and run.attempts == 1


@pytest.mark.django_db
def test_repair_fails_stuck_runs_and_removes_their_files(snapshot, users):
    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm="svd", enqueue=False)
    fresh = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm="svd", enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(status="running", worker="elsewhere:1",
                                                 heartbeat_at=timezone.now() - dt.timedelta(hours=3))
    TrainingRun.objects.filter(pk=fresh.pk).update(status="running", worker="elsewhere:2", heartbeat_at=timezone.now())
    leftover = artifact_root() / "models" / "movie-recommender" / f"run-{run.pk}-a1"
    leftover.mkdir(parents=True)
    assert training_run_repair_stuck() == [run.pk]
    run.refresh_from_db()
    fresh.refresh_from_db()
    assert run.status == "failed" and "repair" in run.error
    assert fresh.status == "running"
    assert not leftover.exists()


@pytest.mark.django_db
def test_failure_is_recorded_with_its_reason(snapshot, users):
    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm="svd", enqueue=False)
    (artifact_root() / snapshot.storage_path / "ratings.csv.gz").unlink()
    result = training_run_execute(run_id=run.pk)
    assert result.status == "failed" and "ratings.csv.gz is missing" in result.error
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_kfold_run_reports_cross_validated_accuracy(snapshot, users):
    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm="svd",
                              hyperparameters={"n_factors": 5}, split={"kind": "kfold", "folds": 3}, enqueue=False)
    result = training_run_execute(run_id=run.pk)
    assert result.status == "succeeded", result.error
    assert len(result.metrics["fold_rmse"]) == 3
    assert result.metrics["rmse"] == pytest.approx(sum(result.metrics["fold_rmse"]) / 3)
    assert ModelVersion.objects.filter(training_run=result).exists()


@pytest.mark.django_db
def test_a_cancel_request_stops_surprise_inside_its_fit(snapshot, users):
    """The pieces of a running cancellation, in one thread (SQLite's in-memory test database cannot
    share a table between threads; the threaded version runs on PostgreSQL above)."""
    import contextlib

    from recommender.errors import TrainingCancelled
    from recommender.training.algorithms import FitWatcher, algorithm_build, validate_hyperparameters
    from recommender.training.runs import Progress, _trainset
    from recommender.training.snapshots import snapshot_load_ratings

    run = training_run_create(actor=users["data_scientist"], snapshot=snapshot, algorithm="svd", enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(status="running")
    progress = Progress(run)
    epochs_seen = []

    def on_epoch(done: int, total: int) -> None:
        epochs_seen.append(done)
        if done == 3:
            training_run_cancel(run=run, actor=users["data_scientist"], reason="stop")
        progress.set(percent=5 + done / total * 50, force=True)

    algo = algorithm_build("svd", validate_hyperparameters("svd", {"n_epochs": 500}), seed=0)
    watcher = FitWatcher(total_epochs=500, on_epoch=on_epoch, on_message=progress.log)
    with pytest.raises(TrainingCancelled), contextlib.redirect_stdout(watcher):
        algo.fit(_trainset(snapshot_load_ratings(snapshot=snapshot)))
    assert epochs_seen == [0, 1, 2, 3]
    assert not hasattr(algo, "pu")  # the fit never finished
