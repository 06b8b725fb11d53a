"""The recommender's tasks operators may schedule (collected by ``portal.schedules``)."""

from __future__ import annotations

from portal.schedules import SchedulableTask

TASKS = [
    # Retraining snapshots the data and trains a model: not more often than hourly.
    SchedulableTask("recommender.retrain", "Scheduled retraining", min_interval_seconds=3600),
    SchedulableTask("recommender.training_repair", "Repair stuck or unsent training runs"),
    SchedulableTask("recommender.ingest.ledger_prune", "Prune the ingest ledger", min_interval_seconds=3600),
]
