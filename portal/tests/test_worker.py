"""A real Celery worker (a subprocess) takes a task from the broker — Redis when REDIS_URL is
set, else the filesystem broker — runs it against the test database and returns its result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

from portal.celery import app as celery_app
from portal.models import ActivityLogEntry
from portal.services import activity_log_head, activity_log_record
from portal.tasks import verify_activity_log

BASE_DIR = Path(__file__).resolve().parents[2]


def _test_database_url() -> str:
    """The URL of the database this test run uses (the test database, not the configured one)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path):
    """``celery -A portal worker`` on a queue of its own (so no other worker takes our tasks),
    stopped with SIGTERM (warm shutdown) at the end."""
    queue = f"usher-test-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "DATABASE_URL": _test_database_url(), "DJANGO_SETTINGS_MODULE": "portal.settings"}
    log_path = tmp_path / "worker.log"
    celery = Path(sys.executable).with_name("celery")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(celery), "-A", "portal", "worker", "--pool", "solo", "--queues", queue, "--hostname", f"{queue}@%h",
             "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    proc.queue = queue
    proc.log_path = log_path
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail("the worker did not stop on SIGTERM:\n" + log_path.read_text()[-3000:])


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
