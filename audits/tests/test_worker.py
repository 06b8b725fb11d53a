"""A real Celery worker process on Redis executes an audit run enqueued on commit, and a scheduled
audit sent the way beat sends it. Needs REDIS_URL and PostgreSQL (the worker shares the test database)."""

from __future__ import annotations

import pytest

from audits import services
from audits.models import AuditRun
from audits.tests.factories import rating_events
from audits.tests.test_security_checks import _ordinary_ratings, _shilling
from portal.testing import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(start_worker):
    """A real worker on the test database and Redis; its log's path."""
    return start_worker("audits-test").log_path


def test_the_worker_runs_an_enqueued_audit_and_a_scheduled_one(worker):
    from audits.tasks import scheduled_audit

    rating_events(_ordinary_ratings() + _shilling(25))
    run = services.audit_run_create(kind="security", actor=None, system="test",
                                    overrides={"SECURITY_CHECKS": ["rating_poisoning", "rating_velocity"]})

    done = wait_until(lambda: AuditRun.objects.filter(pk=run.pk, status__in=["succeeded", "failed"]).first(), 120,
                      "the worker to execute the run", worker)
    assert done.status == "succeeded", done.error
    assert done.task_id  # the id of the Celery task that ran it
    finding = done.findings.get()
    assert finding.check_name == "security.rating_poisoning" and finding.evidence["accounts"] == 25

    scheduled_audit.apply_async(kwargs={"kind": "security", "window_hours": 24})  # as beat sends it
    scheduled = wait_until(lambda: AuditRun.objects.filter(trigger="schedule", status="succeeded").first(), 180,
                           "the scheduled audit", worker)
    assert scheduled.requested_label == "system:audits.scheduled_audit:security"
    # the schedule's run saw the same attack: the same finding, seen twice
    finding.refresh_from_db()
    assert finding.times_seen == 2 and scheduled.findings.filter(pk=finding.pk).exists()
