"""A real Celery worker process on Redis executes an audit run enqueued on commit, and a scheduled
audit sent the way beat sends it. Needs REDIS_URL and PostgreSQL (the worker shares the test database)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from audits import services
from audits.models import AuditRun
from audits.tests.factories import rating_events
from audits.tests.test_security_checks import _ordinary_ratings, _shilling

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path):
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()  # this helper's own Redis database
    env = {**os.environ, "DATABASE_URL": _database_url(), "CELERY_BROKER_URL": os.environ["REDIS_URL"],
           "DB_CONN_MAX_AGE": "0", "CACHE_URL": os.environ.get("CACHE_URL", "locmemcache://")}
    log_path = tmp_path / "worker.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "solo", "--loglevel", "INFO",
         "-n", "audits-test@%h", "--without-gossip", "--without-mingle"],
        cwd=str(settings.BASE_DIR), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    yield log_path
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    log.close()


def _wait(predicate, timeout: float, what: str, log_path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n{log_path.read_text()[-3000:]}")


def test_the_worker_runs_an_enqueued_audit_and_a_scheduled_one(worker):
    from audits.tasks import scheduled_audit

    rating_events(_ordinary_ratings() + _shilling(25))
    run = services.audit_run_create(kind="security", actor=None, system="test",
                                    overrides={"SECURITY_CHECKS": ["rating_poisoning", "rating_velocity"]})

    done = _wait(lambda: AuditRun.objects.filter(pk=run.pk, status__in=["succeeded", "failed"]).first(), 120,
                 "the worker to execute the run", worker)
    assert done.status == "succeeded", done.error
    assert done.task_id  # the id of the Celery task that ran it
    finding = done.findings.get()
    assert finding.check_name == "security.rating_poisoning" and finding.evidence["accounts"] == 25

    scheduled_audit.apply_async(kwargs={"kind": "security", "window_hours": 24})  # as beat sends it
    scheduled = _wait(lambda: AuditRun.objects.filter(trigger="schedule", status="succeeded").first(), 180,
                      "the scheduled audit", worker)
    assert scheduled.requested_label == "system:audits.scheduled_audit:security"
    # the schedule's run saw the same attack: the same finding, seen twice
    finding.refresh_from_db()
    assert finding.times_seen == 2 and scheduled.findings.filter(pk=finding.pk).exists()
