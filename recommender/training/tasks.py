"""Celery entry points of the training side: thin wrappers that take ids and call the services.

Services queue these by name (``portal.queue.task_send``) and never import this module."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from recommender.training.retraining import retraining_conclude, retraining_start
from recommender.training.runs import training_run_execute, training_run_repair_stuck, training_run_requeue_unsent


@shared_task(name="recommender.train", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def train(self, run_id: int) -> str:
    """Execute one training run. Idempotent: a run already running elsewhere or finished is left alone;
    a run whose worker died is taken over (up to ``TRAINING_MAX_ATTEMPTS``). A scheduled run that
    succeeded is then compared with production (``retraining_conclude``)."""
    try:
        run = training_run_execute(run_id=run_id)
    except OperationalError as exc:  # the database went away before the run could be claimed or closed
        raise self.retry(exc=exc, countdown=30)
    if run is None:
        return "skipped"
    retraining_conclude(run=run)
    return run.status


@shared_task(name="recommender.training_repair")
def training_repair() -> dict:
    """Fail runs stuck in ``running`` past ``TRAINING_STUCK_MINUTES`` (their worker died), and send
    again the queued runs that never reached the broker (it was down when they were created)."""
    return {"failed": training_run_repair_stuck(), "requeued": training_run_requeue_unsent()}


@shared_task(name="recommender.retrain", bind=True, acks_late=True, max_retries=1)
def retrain(self) -> int | None:
    """Scheduled retraining: snapshot the latest data and queue a run of the production configuration.

    The run's completion compares the candidate with production (recommender.training.retraining).
    """
    run = retraining_start(system="recommender.retrain")
    return run.pk if run is not None else None
