"""`manage.py audit` exit codes for CI, and the Celery tasks the schedules call."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audits import tasks
from audits.models import AuditFinding, AuditRun
from audits.tests.factories import AuditRunFactory
from audits.tests.test_security_checks import _ordinary_ratings, _shilling
from recommender.tests.factories_training import VersionFactory

pytestmark = pytest.mark.django_db
RATING_CHECKS = 'SECURITY_CHECKS=["rating_poisoning", "rating_velocity"]'


def _call(*args) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("audit", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code)
    return code, out.getvalue(), err.getvalue()


def test_exit_1_on_a_finding_at_or_above_the_level():
    from audits.tests.factories import rating_events

    rating_events(_ordinary_ratings() + _shilling(20))
    code, out, err = _call("security", "--override", RATING_CHECKS, "--fail-on", "high")
    assert code == 1
    assert "Rating poisoning" in out and "at or above high" in err
    # a subset of the checks: stored as an exploratory run that the release gate ignores
    assert "Exploratory run" in out and AuditRun.objects.get().exploratory is True
    code, _, _ = _call("security", "--override", RATING_CHECKS, "--fail-on", "critical")
    assert code == 0  # the same (high) finding is below critical
    assert AuditFinding.objects.count() == 1  # seen twice, one finding


def test_exit_0_on_a_clean_world_and_json_output():
    from audits.tests.factories import rating_events

    rating_events(_ordinary_ratings())
    code, out, _ = _call("security", "--override", RATING_CHECKS, "--json")
    assert code == 0
    data = json.loads(out[: out.rindex("}") + 1])
    assert data["run"]["status"] == "succeeded" and data["findings"] == []


def test_exit_2_when_the_audit_itself_fails():
    version = VersionFactory()  # its artifact folder does not exist
    code, _, err = _call("fairness", "--version", str(version.pk))
    assert code == 2 and "failed" in err
    run = AuditRun.objects.get()
    assert run.status == "failed" and run.model_version == version and run.error


def test_bad_arguments_are_clear_errors():
    with pytest.raises(CommandError, match="model version #424242 does not exist"):
        call_command("audit", "fairness", "--version", "424242")
    with pytest.raises(CommandError, match="is not JSON"):
        call_command("audit", "fairness", "--override", "FAIRNESS_BAND=[0.8,")


def test_scheduled_task_runs_an_audit_and_skips_while_one_is_busy():
    run_id = tasks.scheduled_audit("security", window_hours=1)
    run = AuditRun.objects.get(pk=run_id)
    assert run.trigger == "schedule" and run.status == "succeeded"
    assert run.requested_label == "system:audits.scheduled_audit:security"
    AuditRunFactory(kind="security", trigger="schedule", status="running", passed=None)
    assert tasks.scheduled_audit("security") is None


def test_execute_task_is_idempotent():
    run = AuditRunFactory(status="succeeded")
    assert tasks.execute_audit_run(run.pk) == "skipped"
    assert tasks.execute_audit_run(999999) == "skipped"


def test_expiry_and_stuck_run_tasks(users):
    from audits import services
    from audits.tests.factories import AuditFindingFactory
    from portal.services import review_request_decide

    finding = AuditFindingFactory()
    waiver = services.finding_waiver_request(finding=finding, actor=users["operator"],
                                             justification="accepted for the duration of the migration",
                                             expires_at=timezone.now() + dt.timedelta(seconds=2))
    review_request_decide(review=waiver.review, actor=users["reviewer"], decision="approve")
    from audits.models import FindingWaiver

    FindingWaiver.objects.filter(pk=waiver.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert tasks.expire_waivers() == [finding.pk]
    assert tasks.fail_stuck_runs() == []
