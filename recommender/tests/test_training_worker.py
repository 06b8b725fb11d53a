"""A real Celery worker process on Redis trains runs end to end; killing it mid-run never leaves a
half-registered model. Needs REDIS_URL and PostgreSQL (the worker process shares the test database)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from recommender.models import ModelVersion, TrainingRun
from recommender.registry.artifacts import artifact_root
from recommender.registry.selectors import model_version_load
from recommender.tests.factories_training import synthetic_ratings
from recommender.training.runs import training_run_cancel, training_run_create, training_run_repair_stuck
from recommender.training.snapshots import snapshot_create

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]
LONG = {"n_factors": 600, "n_epochs": 1000}


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def start_worker(tmp_path):
    """Start ``celery worker`` subprocesses sharing the test database, broker and artifact root."""
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()  # this helper's own Redis database
    started: list[subprocess.Popen] = []

    def start(pool: str = "prefork") -> subprocess.Popen:
        env = {**os.environ, "DATABASE_URL": _database_url(), "USHER_ARTIFACT_ROOT": settings.RECOMMENDER["ARTIFACT_ROOT"],
               "CELERY_BROKER_URL": os.environ["REDIS_URL"], "DB_CONN_MAX_AGE": "0"}
        log = open(tmp_path / f"worker-{len(started)}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", pool, "--concurrency", "1",
             "--loglevel", "INFO", "-n", f"training-test-{len(started)}@%h", "--without-gossip", "--without-mingle"],
            cwd=str(settings.BASE_DIR), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


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
    start_worker()
    run = training_run_create(actor=None, system="test", snapshot=snapshot, algorithm="knnbaseline",
                              hyperparameters={"k": 10})
    assert run.status == "queued"
    done = wait_for(lambda: terminal(run.pk), 120, "the run to finish")
    assert done.status == "succeeded", done.error
    assert done.worker and done.worker.split(":")[1] != str(os.getpid())  # another process trained it
    version = ModelVersion.objects.get(training_run=done)
    assert model_version_load(version=version).recommend(1, 5)

    long = training_run_create(actor=None, system="test", snapshot=snapshot, algorithm="svdpp", hyperparameters=LONG)
    wait_for(lambda: fitting(long.pk), 120, "the long run to be fitting")
    training_run_cancel(run=long, actor=None, system="test", reason="enough")
    cancelled = wait_for(lambda: terminal(long.pk), 60, "the cancellation")
    assert cancelled.status == "cancelled" and cancelled.percent < 55
    assert not ModelVersion.objects.filter(training_run=cancelled).exists()


def test_killed_worker_process_leaves_the_run_failed_and_nothing_registered(start_worker, snapshot):
    worker = start_worker(pool="solo")  # the task runs in the worker process itself
    run = training_run_create(actor=None, system="test", snapshot=snapshot, algorithm="svdpp", hyperparameters=LONG)
    wait_for(lambda: fitting(run.pk), 120, "the run to be fitting")
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
    start_worker(pool="prefork")
    run = training_run_create(actor=None, system="test", snapshot=snapshot, algorithm="svdpp",
                              hyperparameters={"n_factors": 400, "n_epochs": 1000})
    first = wait_for(lambda: fitting(run.pk), 120, "the run to be fitting")
    child_pid = int(first.worker.rsplit(":", 1)[1])
    os.kill(child_pid, signal.SIGKILL)  # the pool process dies mid-fit; the task message is requeued
    done = wait_for(lambda: terminal(run.pk), 240, "the retried run to finish")
    assert done.status == "succeeded", done.error
    assert done.attempts == 2 and done.worker != first.worker
    assert ModelVersion.objects.filter(training_run=done).count() == 1
    assert "was lost; restarting (attempt 2)" in done.log
    leftovers = [p.name for p in Path(artifact_root() / "models").glob(f"*/run-{run.pk}-*")]
    assert leftovers == [f"run-{run.pk}-a2"]
