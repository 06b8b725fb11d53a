"""Queueing a task while the broker is down: the caller gets None and a warning, never an exception.
And the services' one way to queue: by name through ``task_send``, after their transaction commits."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from celery.signals import before_task_publish
from django.conf import settings
from django.db import transaction

from audits.services import audit_run_create
from monitoring.services.notifications import notification_send
from portal.queue import task_send
from portal.tasks import verify_activity_log
from portal.testing import database_url_of_this_run
from recommender.tests.factories_training import synthetic_ratings
from recommender.training.runs import training_run_create
from recommender.training.snapshots import snapshot_create


def test_a_refused_broker_is_a_warning_and_none(broker_down, caplog):
    with caplog.at_level(logging.WARNING, logger="portal.queue"):
        assert task_send(verify_activity_log, what="a test") is None
        assert task_send("portal.verify_activity_log") is None
    assert "could not queue portal.verify_activity_log for a test: broker unreachable" in caplog.text


def test_with_the_broker_back_the_task_is_queued(broker_down):
    broker_down()  # restore
    assert task_send(verify_activity_log)


# --- services queue by name, after their transaction commits -------------------------------------------


class RolledBack(Exception):
    pass


@pytest.fixture
def published() -> Iterator[list[tuple[str, tuple]]]:
    """(task name, args) of every message Celery hands to the broker while the test runs."""
    sent: list[tuple[str, tuple]] = []

    def record(sender=None, headers=None, body=None, **_) -> None:
        sent.append((headers["task"], tuple(body[0])))

    before_task_publish.connect(record, weak=False)
    yield sent
    before_task_publish.disconnect(record)


def _training_run():
    synthetic_ratings(n_users=20, n_items=15, density=0.4)
    snapshot = snapshot_create(actor=None, system="test")
    return lambda: training_run_create(actor=None, system="test", snapshot=snapshot, algorithm="svd")


def _audit_run():
    return lambda: audit_run_create(kind="security", actor=None, system="test")


def _notification():
    return lambda: notification_send(event="release.test", subject="s", body="b", payload={},
                                     recipients={"email": ["ops@example.org"]})[0]


@pytest.mark.django_db
@pytest.mark.parametrize(("make", "task"), [
    (_training_run, "recommender.train"),
    (_audit_run, "audits.execute_run"),
    (_notification, "monitoring.deliver_notification"),
])
def test_a_service_sends_its_task_by_name_after_commit_and_not_on_rollback(make, task, published,
                                                                          django_capture_on_commit_callbacks):
    create = make()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RolledBack), transaction.atomic():
            create()
            raise RolledBack
        record = create()
        assert published == []  # not before the commit
    assert published == [(task, (record.pk,))]


@pytest.mark.django_db(transaction=True)
def test_eager_mode_runs_a_task_named_before_any_module_imported_it():
    """A fresh process (a one-process demo, a live-server test) in eager mode: the service names the
    task and nothing has imported its tasks module yet; ``task_send`` loads them as a worker would."""
    script = ("import django; django.setup()\n"
              "from portal.queue import task_send\n"
              "print(task_send('monitoring.deliver_due_notifications'))\n")
    env = {**os.environ, "DATABASE_URL": database_url_of_this_run(), "DJANGO_SETTINGS_MODULE": "portal.settings",
           "CELERY_TASK_ALWAYS_EAGER": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=str(settings.BASE_DIR), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() not in ("", "None")  # an id: it ran here
