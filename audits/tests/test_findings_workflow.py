"""Findings: acknowledge, resolve, waive through the review inbox (four eyes), expiry, sign-off."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audits import services
from audits.errors import Conflict, PermissionDenied, ValidationError
from audits.models import AuditFinding, FindingWaiver
from audits.tests.factories import AuditFindingFactory, AuditRunFactory
from conftest import make_user
from portal.models import ActivityLogEntry, ReviewRequest
from portal.selectors import review_request_inbox
from portal.services import activity_log_verify, review_request_decide

pytestmark = pytest.mark.django_db

JUSTIFICATION = "The client is our own load tester; its traffic is expected until the test ends."


def _actions(finding: AuditFinding) -> list[str]:
    return list(ActivityLogEntry.objects.filter(target_type="audits.auditfinding", target_id=str(finding.pk))
                .order_by("seq").values_list("action", flat=True))


def test_acknowledge_then_resolve_is_logged_with_the_actor(users):
    finding = AuditFindingFactory(severity="low")  # below the review level: one person may resolve it

    services.finding_acknowledge(finding=finding, actor=users["operator"], comment="on it")
    services.finding_resolve(finding=finding, actor=users["operator"], comment="blocked the client at the proxy")

    finding.refresh_from_db()
    assert finding.status == "resolved" and finding.resolved_via == "single"
    assert finding.status_changed_by == users["operator"]
    assert finding.status_comment == "blocked the client at the proxy"
    entries = ActivityLogEntry.objects.filter(target_type="audits.auditfinding", target_id=str(finding.pk)).order_by("seq")
    assert [(e.action, e.actor_label, e.data["before"], e.data["after"]) for e in entries] == [
        ("audit_finding.acknowledged", "operator_user", "open", "acknowledged"),
        ("audit_finding.resolved", "operator_user", "acknowledged", "resolved"),
    ]
    assert activity_log_verify()[1] is None


def test_wrong_transitions_are_refused_with_a_clear_error(users):
    finding = AuditFindingFactory(severity="low")
    services.finding_resolve(finding=finding, actor=users["operator"], comment="fixed")

    with pytest.raises(Conflict, match="is resolved; only an open finding can be acknowledged"):
        services.finding_acknowledge(finding=finding, actor=users["reviewer"])
    with pytest.raises(Conflict, match="only an open or acknowledged finding can be resolved"):
        services.finding_resolve(finding=finding, actor=users["operator"], comment="again")


def test_resolve_needs_a_comment_and_viewers_cannot_act(users):
    finding = AuditFindingFactory()
    with pytest.raises(ValidationError, match="comment"):
        services.finding_resolve(finding=finding, actor=users["operator"], comment="  ")
    with pytest.raises(PermissionDenied):
        services.finding_acknowledge(finding=finding, actor=users["viewer"])
    finding.refresh_from_db()
    assert finding.status == "open"
    assert _actions(finding) == ["permission.refused"]  # the attempt is logged, nothing else


def test_waiver_goes_to_the_inbox_and_the_requester_cannot_grant_it(users):
    finding = AuditFindingFactory()
    requester = users["data_scientist"]
    other_reviewer = make_user("reviewer", "second_reviewer")
    expires = timezone.now() + dt.timedelta(days=30)

    waiver = services.finding_waiver_request(finding=finding, actor=requester, justification=JUSTIFICATION,
                                             expires_at=expires)

    review = waiver.review
    assert review.kind == "audits.finding_waiver" and review.status == "pending"
    assert review.evidence["justification"] == JUSTIFICATION
    assert review in review_request_inbox(user=other_reviewer)
    assert review not in review_request_inbox(user=requester)
    with pytest.raises(Exception, match="Four eyes"):
        review_request_decide(review=review, actor=requester, decision="approve")
    finding.refresh_from_db()
    assert finding.status == "open"

    review_request_decide(review=review, actor=other_reviewer, decision="approve", comment="accepted for a month")

    finding.refresh_from_db()
    waiver.refresh_from_db()
    assert finding.status == "waived"
    assert waiver.status == "active" and waiver.reviewed_by == other_reviewer
    assert waiver.expires_at == expires
    assert _actions(finding) == ["audit_finding.waiver_requested", "audit_finding.waived"]
    assert ActivityLogEntry.objects.filter(action="review.refused", target_id=str(review.pk)).exists()


def test_rejected_waiver_leaves_the_finding_open(users):
    finding = AuditFindingFactory()
    waiver = services.finding_waiver_request(finding=finding, actor=users["operator"], justification=JUSTIFICATION,
                                             expires_at=timezone.now() + dt.timedelta(days=7))
    review_request_decide(review=waiver.review, actor=users["reviewer"], decision="reject",
                          comment="fix it instead")
    finding.refresh_from_db()
    waiver.refresh_from_db()
    assert finding.status == "open"
    assert waiver.status == "rejected" and waiver.review_comment == "fix it instead"
    assert "audit_finding.waiver_rejected" in _actions(finding)


@pytest.mark.parametrize(
    ("justification", "delta", "message"),
    [
        ("too short", dt.timedelta(days=3), "at least 20 characters"),
        (JUSTIFICATION, dt.timedelta(days=-1), "not in the future"),
        (JUSTIFICATION, dt.timedelta(days=400), "at most 180 days"),
    ],
)
def test_bad_waiver_requests_name_what_is_wrong(users, justification, delta, message):
    finding = AuditFindingFactory()
    with pytest.raises(ValidationError, match=message):
        services.finding_waiver_request(finding=finding, actor=users["operator"], justification=justification,
                                        expires_at=timezone.now() + delta)
    assert not FindingWaiver.objects.exists()
    assert not ReviewRequest.objects.exists()


def test_a_second_pending_waiver_is_refused(users):
    finding = AuditFindingFactory()
    expires = timezone.now() + dt.timedelta(days=3)
    services.finding_waiver_request(finding=finding, actor=users["operator"], justification=JUSTIFICATION,
                                    expires_at=expires)
    with pytest.raises(Conflict, match="already has a pending waiver"):
        services.finding_waiver_request(finding=finding, actor=users["data_scientist"], justification=JUSTIFICATION,
                                        expires_at=expires)


def test_resolving_withdraws_a_pending_waiver(users):
    finding = AuditFindingFactory(severity="low")
    waiver = services.finding_waiver_request(finding=finding, actor=users["operator"], justification=JUSTIFICATION,
                                             expires_at=timezone.now() + dt.timedelta(days=3))
    services.finding_resolve(finding=finding, actor=users["operator"], comment="patched")
    waiver.refresh_from_db()
    waiver.review.refresh_from_db()
    assert waiver.status == "cancelled"
    assert waiver.review.status == "cancelled"


def test_an_expired_waiver_reopens_its_finding(users):
    finding = AuditFindingFactory()
    waiver = services.finding_waiver_request(finding=finding, actor=users["operator"], justification=JUSTIFICATION,
                                             expires_at=timezone.now() + dt.timedelta(days=2))
    review_request_decide(review=waiver.review, actor=users["reviewer"], decision="approve")

    assert services.finding_waivers_expire(now=timezone.now() + dt.timedelta(days=1)) == []
    reopened = services.finding_waivers_expire(now=timezone.now() + dt.timedelta(days=3))

    finding.refresh_from_db()
    waiver.refresh_from_db()
    assert reopened == [finding.pk]
    assert finding.status == "open" and waiver.status == "expired"
    entry = ActivityLogEntry.objects.filter(action="audit_finding.waiver_expired").get()
    assert entry.actor_label == "system:audits.expire_waivers"
    assert entry.data["before"] == "waived" and entry.data["after"] == "open"
    assert services.finding_waivers_expire(now=timezone.now() + dt.timedelta(days=4)) == []  # idempotent


def test_signoff_needs_every_finding_handled_and_a_second_person(users):
    run = AuditRunFactory()
    finding = AuditFindingFactory(run=run)
    review = services.audit_run_signoff_request(run=run, actor=users["operator"], comment="please check")

    with pytest.raises(Conflict, match="findings are open"):
        review_request_decide(review=review, actor=users["reviewer"], decision="approve")
    review.refresh_from_db()
    run.refresh_from_db()
    assert review.status == "pending" and run.signed_off_at is None  # the refused approval rolled back

    services.finding_acknowledge(finding=finding, actor=users["operator"])
    review_request_decide(review=review, actor=users["reviewer"], decision="approve", comment="looks right")
    run.refresh_from_db()
    assert run.signed_off_by == users["reviewer"] and run.signoff_comment == "looks right"
    assert ActivityLogEntry.objects.filter(action="audit_run.signed_off", target_id=str(run.pk)).exists()
    with pytest.raises(Conflict, match="already signed off"):
        services.audit_run_signoff_request(run=run, actor=users["operator"])


def test_signoff_of_an_unfinished_run_is_refused(users):
    run = AuditRunFactory(status="running", passed=None)
    with pytest.raises(Conflict, match="only a succeeded run can be signed off"):
        services.audit_run_signoff_request(run=run, actor=users["operator"])
