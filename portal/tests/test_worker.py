"""A real Celery worker (a subprocess) takes a task from the broker — Redis when REDIS_URL is
set, else the filesystem broker — runs it against the test database and returns its result."""

from __future__ import annotations

import os
import signal
import uuid

import pytest

from portal.celery import app as celery_app
from portal.models import ActivityLogEntry
from portal.services import activity_log_head, activity_log_record
from portal.tasks import verify_activity_log


@pytest.fixture
def worker(start_worker):
    """A real worker on a queue of its own (so no other worker takes our tasks)."""
    queue = f"usher-test-{uuid.uuid4().hex[:10]}"
    proc = start_worker("portal-test", queues=queue)
    proc.queue = queue
    return proc


@pytest.mark.worker
@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_worker_runs_verify_activity_log(worker, users):
    # Given three entries in the test database
    for i in range(3):
        activity_log_record(actor=users["operator"], action="thing.created", target=("demo.thing", i))
    if os.environ.get("REDIS_URL"):
        assert celery_app.conf.broker_url.startswith("redis://")
    # When the task is sent through the broker to the worker
    result = verify_activity_log.apply_async(queue=worker.queue)
    # Then the worker's answer comes back through the result backend
    try:
        value = result.get(timeout=120)
    except Exception:
        pytest.fail("no result from the worker:\n" + worker.log_path.read_text()[-3000:])
    head_seq, head_hash = activity_log_head()
    assert value == {"ok": True, "checked": 3, "first_broken_seq": None, "problem": None,
                     "head_seq": head_seq, "head_hash": head_hash}

    # And it reads the same database: after tampering it names the broken entry
    ActivityLogEntry.objects.filter(seq=2).update(action="thing.forged")
    second = verify_activity_log.apply_async(queue=worker.queue).get(timeout=120)
    assert second["ok"] is False and second["first_broken_seq"] == 2

    # And the worker stops cleanly on SIGTERM
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    assert "Task portal.verify_activity_log" in worker.log_path.read_text()
