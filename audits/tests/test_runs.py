"""Audit runs: queued → running → succeeded/failed, findings written at once, dedup, pass/fail, sign-off."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audits import runners, services
from audits.checks.base import CheckOutcome, FindingDraft
from audits.errors import PermissionDenied, ValidationError
from audits.models import AuditFinding, AuditRun
from audits.tests.factories import AuditRunFactory
from portal.models import ActivityLogEntry, ReviewRequest

pytestmark = pytest.mark.django_db


def _draft(subject: str, severity: str = "high") -> FindingDraft:
    return FindingDraft(check="security.test", subject=subject, severity=severity, title=f"problem {subject}",
                        evidence={"subject": subject, "count": 3})


def _fake_perform(outcomes):
    def perform(*, run, config):
        return outcomes
    return perform


def test_a_run_writes_its_findings_and_report(monkeypatch, users):
    outcome = CheckOutcome(name="security.test", summary="two problems",
                           findings=[_draft("a"), _draft("b", "low")])
    monkeypatch.setattr(runners, "perform", _fake_perform([outcome]))
    run = services.audit_run_create(kind="security", actor=users["operator"], enqueue=False)

    run = services.audit_run_execute(run_id=run.pk)

    assert run.status == "succeeded" and run.passed is False
    assert run.started_at <= run.finished_at
    assert sorted(run.findings.values_list("fingerprint", flat=True)) == ["security.test:a", "security.test:b"]
    assert "[high]" in run.report and "problem a" in run.report
    assert run.results["checks"][0]["summary"] == "two problems"
    actions = list(ActivityLogEntry.objects.filter(target_type="audits.auditrun", target_id=str(run.pk))
                   .order_by("seq").values_list("action", flat=True))
    assert actions[:3] == ["audit_run.queued", "audit_run.started", "audit_run.succeeded"]
    # a new finding at or above medium asks a reviewer to sign off
    review = ReviewRequest.objects.get(kind="audits.run_signoff")
    assert review.target_id == str(run.pk) and review.requester_label == "system:audits"


def test_a_crash_midway_leaves_a_failed_run_and_no_findings(monkeypatch, users):
    outcome = CheckOutcome(name="security.test", findings=[_draft("a"), _draft("b")])
    monkeypatch.setattr(runners, "perform", _fake_perform([outcome]))
    real_create = AuditFinding.objects.create
    calls = {"n": 0}

    def create_then_crash(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the first finding is already written when the second one fails
            raise RuntimeError("disk full")
        return real_create(**kwargs)

    monkeypatch.setattr(AuditFinding.objects, "create", create_then_crash)
    run = services.audit_run_create(kind="security", actor=users["operator"], enqueue=False)

    run = services.audit_run_execute(run_id=run.pk)

    assert calls["n"] == 2
    assert run.status == "failed" and run.passed is None
    assert "RuntimeError: disk full" in run.error
    assert AuditFinding.objects.count() == 0
    assert not ActivityLogEntry.objects.filter(action="audit_finding.raised").exists()
    assert ActivityLogEntry.objects.filter(action="audit_run.failed", target_id=str(run.pk)).exists()


def test_a_check_that_raises_fails_the_run_with_its_error(monkeypatch, users):
    def perform(*, run, config):
        raise ValueError("the test part is empty")

    monkeypatch.setattr(runners, "perform", perform)
    run = services.audit_run_create(kind="fairness", actor=users["operator"], enqueue=False)
    run = services.audit_run_execute(run_id=run.pk)
    assert run.status == "failed"
    assert run.error.startswith("ValueError: the test part is empty")


def test_executing_twice_is_a_no_op(monkeypatch, users):
    monkeypatch.setattr(runners, "perform", _fake_perform([CheckOutcome(name="x", findings=[_draft("a")])]))
    run = services.audit_run_create(kind="security", actor=users["operator"], enqueue=False)
    services.audit_run_execute(run_id=run.pk)
    again = services.audit_run_execute(run_id=run.pk)
    assert again.status == "succeeded"
    assert AuditFinding.objects.count() == 1


def test_the_same_problem_seen_again_is_one_finding_until_resolved(monkeypatch, users):
    monkeypatch.setattr(runners, "perform", _fake_perform([CheckOutcome(name="x", findings=[_draft("a", "medium")])]))
    first = services.audit_run_execute(run_id=services.audit_run_create(kind="security", actor=None,
                                                                        enqueue=False).pk)
    monkeypatch.setattr(runners, "perform", _fake_perform([CheckOutcome(name="x", findings=[_draft("a", "high")])]))
    second = services.audit_run_execute(run_id=services.audit_run_create(kind="security", actor=None,
                                                                         enqueue=False).pk)

    finding = AuditFinding.objects.get()
    assert finding.times_seen == 2 and finding.severity == "high"  # escalated, not duplicated
    assert set(finding.runs.values_list("pk", flat=True)) == {first.pk, second.pk}
    assert second.results["findings"] == {"new": [], "seen_again": [finding.pk], "no_longer_found": []}

    from portal.services import review_request_decide

    resolution = services.finding_resolution_propose(finding=finding, actor=users["operator"], comment="fixed")
    review_request_decide(review=resolution.review, actor=users["reviewer"], decision="approve")
    third = services.audit_run_execute(run_id=services.audit_run_create(kind="security", actor=None,
                                                                        enqueue=False).pk)
    assert AuditFinding.objects.count() == 2  # it came back: a new finding
    assert third.findings.get().status == "open"


def test_a_waived_finding_does_not_fail_the_next_run(monkeypatch, users):
    from portal.services import review_request_decide

    monkeypatch.setattr(runners, "perform", _fake_perform([CheckOutcome(name="x", findings=[_draft("a")])]))
    services.audit_run_execute(run_id=services.audit_run_create(kind="security", actor=None, enqueue=False).pk)
    finding = AuditFinding.objects.get()
    waiver = services.finding_waiver_request(
        finding=finding, actor=users["operator"], expires_at=timezone.now() + dt.timedelta(days=5),
        justification="known and accepted until the proxy rules ship next week")
    review_request_decide(review=waiver.review, actor=users["reviewer"], decision="approve")

    run = services.audit_run_execute(run_id=services.audit_run_create(kind="security", actor=None, enqueue=False).pk)

    assert run.passed is True
    assert run.findings.get().status == "waived"


def test_a_run_without_findings_passes_and_asks_for_no_signoff(monkeypatch):
    monkeypatch.setattr(runners, "perform", _fake_perform([CheckOutcome(name="x", summary="clean")]))
    run = services.audit_run_execute(run_id=services.audit_run_create(kind="security", actor=None, enqueue=False).pk)
    assert run.passed is True and "No findings." in run.report
    assert not ReviewRequest.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "privacy"}, "unknown audit kind"),
        ({"kind": "fairness", "window_hours": 0}, "window_hours must be between"),
        ({"kind": "fairness", "overrides": {"FAIRNESS_BAND": [1.2, 0.8]}}, "0 < low < 1 < high"),
        ({"kind": "fairness", "overrides": {"FAIRNESS_METRICS": ["accuracy"]}}, "FAIRNESS_METRICS"),
        ({"kind": "fairness", "overrides": {"FAIRNESS_REFERENCE_GROUPS": {"race": "x"}}}, "REFERENCE_GROUPS"),
        ({"kind": "fairness", "overrides": {"SECRET": 1}}, "cannot be overridden"),
        ({"kind": "security", "overrides": {"SECURITY_CHECKS": ["port_scan"]}}, "SECURITY_CHECKS"),
    ],
)
def test_bad_run_requests_are_refused_before_anything_is_written(kwargs, message, users):
    with pytest.raises(ValidationError, match=message):
        services.audit_run_create(actor=users["operator"], enqueue=False, **kwargs)
    assert not AuditRun.objects.exists()


def test_only_working_roles_start_audits(users):
    with pytest.raises(PermissionDenied):
        services.audit_run_create(kind="security", actor=users["viewer"], enqueue=False)


def test_stuck_runs_end_as_failed():
    old = AuditRunFactory(status="running", passed=None, finished_at=None)
    AuditRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=5),
                                               started_at=timezone.now() - dt.timedelta(hours=5))
    fresh = AuditRunFactory(status="running", passed=None, finished_at=None, started_at=timezone.now())

    assert services.audit_runs_fail_stuck() == [old.pk]

    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == "failed" and "its worker stopped" in old.error
    assert fresh.status == "running"
