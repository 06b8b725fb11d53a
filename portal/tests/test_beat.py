"""Beat-side defence: an entry built from a ``PeriodicTask`` row sends the task the row names, with
beat's own header only, whatever headers the row carries; unlisted tasks never become entries.
Messages are published for real on kombu's in-memory transport and read back."""

from __future__ import annotations

import json
import logging

import pytest
from celery import Celery
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler
from kombu import Connection

from portal.beat import UsherDatabaseScheduler

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_log_memory():
    from portal import beat

    beat._logged.clear()


@pytest.fixture
def memory_app():
    app = Celery("beat-test", broker="memory://", set_as_current=False)
    app.conf.task_default_queue = "beat-test"
    yield app
    with Connection("memory://") as conn:  # leave the shared in-memory broker empty
        conn.SimpleQueue("beat-test").clear()


def _row(**extra) -> PeriodicTask:
    interval, _ = IntervalSchedule.objects.get_or_create(every=10, period="seconds")
    fields = {"name": "innocent", "task": "portal.verify_activity_log", "interval": interval,
              "headers": json.dumps({"task": "recommender.retrain", "id": "forged"}), **extra}
    return PeriodicTask.objects.create(**fields)


def _sent(app, scheduler_class, row) -> dict:
    scheduler = scheduler_class(app=app, lazy=True)
    entry = scheduler.Entry(row, app=app)
    scheduler.apply_async(entry, advance=False)
    with Connection("memory://") as conn:
        queue = conn.SimpleQueue("beat-test")
        message = queue.get(timeout=2)
        message.ack()
        return message.headers


def test_plain_database_scheduler_runs_the_task_named_in_the_headers(memory_app):
    # The hole this module closes: Celery merges the row's headers over its own.
    headers = _sent(memory_app, DatabaseScheduler, _row())
    assert headers["task"] == "recommender.retrain"


def test_usher_scheduler_sends_the_task_the_row_shows_with_beats_header_only(memory_app, caplog):
    with caplog.at_level(logging.ERROR, logger="portal.beat"):
        headers = _sent(memory_app, UsherDatabaseScheduler, _row(queue="beat-test", routing_key="elsewhere"))
    assert headers["task"] == "portal.verify_activity_log"
    assert headers["periodic_task_name"] == "innocent" and headers["id"] != "forged"
    assert "custom headers ['id', 'task']: dropped" in caplog.text
    assert "routing_key override: dropped" in caplog.text


@pytest.mark.parametrize(("fields", "reason"), [
    ({"task": "recommender.train", "headers": "{}"}, "is not listed"),
    ({"task": "celery.chord_unlock", "headers": "{}"}, "is not listed"),
    ({"task": "audits.scheduled_audit", "kwargs": json.dumps({"kind": "all"})}, "must be one of"),
    ({"task": "audits.scheduled_audit", "args": json.dumps(["security"])}, "positional arguments"),
])
def test_rows_naming_unlisted_tasks_or_bad_arguments_are_left_out_of_the_schedule(memory_app, caplog, fields, reason):
    _row(**fields)
    with caplog.at_level(logging.ERROR, logger="portal.beat"):
        schedule = UsherDatabaseScheduler(app=memory_app, lazy=True).all_as_schedule()
    assert "innocent" not in schedule and reason in caplog.text
    assert "audits: security hourly" in schedule  # the seeded, listed schedules stay


def test_settings_use_the_usher_scheduler():
    assert settings.CELERY_BEAT_SCHEDULER == "portal.beat:UsherDatabaseScheduler"
