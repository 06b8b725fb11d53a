"""Writes on findings and sign-offs: acknowledge, resolve (four eyes above the review level), waive
(four eyes), close what a configured re-run no longer finds, expire waivers, sign off runs.

Every transition happens here, inside a transaction, and leaves an activity-log entry, so the
portal, the API, the admin and the schedules leave the same trace.

Closing a finding: one at or above ``audits.conf.review_severity()`` (medium by default, never
above high) is resolved only by a reviewer approving someone else's proposal (review kind
``audits.finding_resolution``) or by a configured re-run of the same version that no longer finds
it. A finding below that level may be resolved by the one person who fixed it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from audits.conf import audit_setting, review_severity
from audits.errors import Conflict, PermissionDenied, ValidationError
from audits.models import AuditFinding, AuditRun, FindingResolution, FindingWaiver, severity_rank
from portal.models import ReviewRequest
from portal.permissions import require, user_has_role
from portal.services import activity_log_record, review_request_cancel, review_request_create

WAIVER_REVIEW_KIND = "audits.finding_waiver"
SIGNOFF_REVIEW_KIND = "audits.run_signoff"
RESOLUTION_REVIEW_KIND = "audits.finding_resolution"
# The run's check (CheckOutcome.name) that drafts findings of each check name, where they differ.
OUTCOME_OF_CHECK = {
    "fairness.disparity": "fairness.model", "fairness.service": "fairness.system",
    "fairness.exposure": "fairness.system", "security.deploy_check": "security.deploy_config",
    "security.debug": "security.deploy_config", "security.secret_strength": "security.deploy_config",
    "security.admin_exposure": "security.deploy_config",
}
WORKING_ROLES = ("data_scientist", "operator", "reviewer")
MIN_JUSTIFICATION_CHARS = 20
MAX_JUSTIFICATION_CHARS = 4000


def _require_working_role(actor: Any, action: str) -> None:
    if actor is None:  # a schedule or a command acting as the system
        return
    if not user_has_role(actor, *WORKING_ROLES):
        raise PermissionDenied(f"To {action} you need one of the roles: {', '.join(WORKING_ROLES)}.")


def _locked(finding: AuditFinding) -> AuditFinding:
    return AuditFinding.objects.select_for_update().get(pk=finding.pk)


def _set_status(finding: AuditFinding, *, status: str, actor: Any | None, comment: str) -> str:
    before = finding.status
    finding.status = status
    finding.status_changed_at = timezone.now()
    finding.status_changed_by = actor if getattr(actor, "is_authenticated", False) else None
    finding.status_comment = comment
    finding.save(update_fields=["status", "status_changed_at", "status_changed_by", "status_comment"])
    return before


def resolution_needs_review(finding: AuditFinding) -> bool:
    """True when closing the finding needs a second person (it blocks the release gate)."""
    return severity_rank(finding.severity) >= severity_rank(review_severity())


def _cancel_pending_resolutions(finding: AuditFinding, *, actor: Any | None, reason: str,
                                system: str | None) -> None:
    for resolution in FindingResolution.objects.select_for_update().filter(
            finding=finding, status=FindingResolution.Status.PENDING):
        resolution.status = FindingResolution.Status.CANCELLED
        resolution.review_comment = reason
        resolution.save(update_fields=["status", "review_comment"])
        if resolution.review_id and resolution.review.status == ReviewRequest.Status.PENDING:
            review_request_cancel(review=resolution.review, actor=actor, reason=reason, system=system)


def _cancel_pending_waivers(finding: AuditFinding, *, actor: Any | None, reason: str, system: str | None) -> None:
    for waiver in FindingWaiver.objects.select_for_update().filter(finding=finding, status=FindingWaiver.Status.PENDING):
        waiver.status = FindingWaiver.Status.CANCELLED
        waiver.review_comment = reason
        waiver.save(update_fields=["status", "review_comment"])
        if waiver.review_id and waiver.review.status == ReviewRequest.Status.PENDING:
            review_request_cancel(review=waiver.review, actor=actor, reason=reason, system=system)


def finding_acknowledge(*, finding: AuditFinding, actor: Any, comment: str = "") -> AuditFinding:
    """open → acknowledged: someone owns the problem now (``finding.acknowledge``)."""
    require(actor, "finding.acknowledge", target=finding)
    with transaction.atomic():
        locked = _locked(finding)
        if locked.status != AuditFinding.Status.OPEN:
            raise Conflict(f"finding #{locked.pk} is {locked.status}; only an open finding can be acknowledged")
        before = _set_status(locked, status=AuditFinding.Status.ACKNOWLEDGED, actor=actor, comment=comment)
        activity_log_record(actor=actor, action="audit_finding.acknowledged", target=locked,
                            data={"before": before, "after": locked.status, "comment": comment})
    return locked


def finding_resolve(*, finding: AuditFinding, actor: Any, comment: str) -> AuditFinding:
    """Close a finding with a note on what was done.

    Below the review level: open/acknowledged → resolved at once (one person; a pending waiver is
    withdrawn). At or above it: only a proposal — a review opens in the inbox and the finding stays
    as it is until a reviewer who is not ``actor`` approves (``finding_resolution_propose``).
    """
    require(actor, "resolution.propose", target=finding)
    if not comment or not comment.strip():
        raise ValidationError("a comment saying how the finding was resolved is required", field="comment")
    if resolution_needs_review(finding):
        finding_resolution_propose(finding=finding, actor=actor, comment=comment)
        return AuditFinding.objects.get(pk=finding.pk)
    with transaction.atomic():
        locked = _locked(finding)
        if locked.status not in (AuditFinding.Status.OPEN, AuditFinding.Status.ACKNOWLEDGED):
            raise Conflict(f"finding #{locked.pk} is {locked.status}; only an open or acknowledged finding "
                           "can be resolved")
        if resolution_needs_review(locked):  # its severity rose meanwhile
            raise Conflict(f"finding #{locked.pk} is now {locked.severity}: propose its resolution for review")
        _cancel_pending_waivers(locked, actor=actor, reason=f"finding resolved: {comment}", system=None)
        _cancel_pending_resolutions(locked, actor=actor, reason=f"finding resolved: {comment}", system=None)
        before = _set_status(locked, status=AuditFinding.Status.RESOLVED, actor=actor, comment=comment)
        locked.resolved_via = AuditFinding.ResolvedVia.SINGLE
        locked.save(update_fields=["resolved_via"])
        activity_log_record(actor=actor, action="audit_finding.resolved", target=locked,
                            data={"before": before, "after": locked.status, "comment": comment,
                                  "via": locked.resolved_via})
    return locked


def finding_resolution_propose(*, finding: AuditFinding, actor: Any, comment: str) -> FindingResolution:
    """Propose that a finding is fixed; a reviewer who is not ``actor`` decides it in the inbox."""
    require(actor, "resolution.propose", target=finding)
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError("a comment saying how the finding was resolved is required", field="comment")
    with transaction.atomic():
        locked = _locked(finding)
        if locked.status not in (AuditFinding.Status.OPEN, AuditFinding.Status.ACKNOWLEDGED):
            raise Conflict(f"finding #{locked.pk} is {locked.status}; only an open or acknowledged finding "
                           "can be resolved")
        pending = FindingResolution.objects.filter(finding=locked, status=FindingResolution.Status.PENDING).first()
        if pending is not None:
            raise Conflict(f"finding #{locked.pk} already has a resolution waiting for review "
                           f"(review #{pending.review_id})", detail={"review": pending.review_id})
        resolution = FindingResolution.objects.create(finding=locked, comment=comment, proposed_by=actor)
        review = review_request_create(
            kind=RESOLUTION_REVIEW_KIND, target=locked, requester=actor, system="audits",
            title=f"Resolve {locked.severity} finding #{locked.pk}: {locked.title}",
            evidence={"finding": locked.pk, "severity": locked.severity, "check": locked.check_name,
                      "comment": comment, "model_version": locked.model_version_id, "evidence": locked.evidence},
        )
        resolution.review = review
        resolution.save(update_fields=["review"])
        activity_log_record(actor=actor, action="audit_finding.resolution_proposed", target=locked,
                            data={"resolution": resolution.pk, "review": review.pk, "comment": comment})
    return resolution


def finding_resolution_on_decision(*, review: ReviewRequest, actor: Any) -> None:
    """Review-inbox handler: an approved proposal resolves the finding (four eyes: never the proposer)."""
    resolution = (FindingResolution.objects.select_for_update().select_related("finding")
                  .filter(review=review).first())
    if resolution is None:
        raise ValidationError(f"review #{review.pk} has no resolution attached")
    if resolution.status != FindingResolution.Status.PENDING:
        raise Conflict(f"resolution #{resolution.pk} is already {resolution.status}")
    if resolution.proposed_by_id is not None and resolution.proposed_by_id == getattr(actor, "pk", None):
        raise PermissionDenied("Four eyes: you proposed this resolution, so someone else must decide it.")
    finding = _locked(resolution.finding)
    resolution.reviewed_by = actor
    resolution.reviewed_at = timezone.now()
    resolution.review_comment = review.decision_comment
    if review.status != ReviewRequest.Status.APPROVED:
        resolution.status = FindingResolution.Status.REJECTED
        resolution.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_comment"])
        activity_log_record(actor=actor, action="audit_finding.resolution_rejected", target=finding,
                            data={"resolution": resolution.pk, "decision": review.status,
                                  "comment": review.decision_comment})
        return
    if finding.status not in AuditFinding.ACTIVE_STATUSES:
        raise Conflict(f"finding #{finding.pk} is {finding.status}; it can no longer be resolved")
    resolution.status = FindingResolution.Status.APPROVED
    resolution.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_comment"])
    reason = f"finding resolved (resolution #{resolution.pk} approved)"
    _cancel_pending_waivers(finding, actor=actor, reason=reason, system=None)
    proposer = resolution.proposed_by.get_username() if resolution.proposed_by else "system"
    before = _set_status(finding, status=AuditFinding.Status.RESOLVED, actor=actor,
                         comment=f"{resolution.comment} (proposed by {proposer}, approved by {actor.get_username()})")
    finding.resolved_via = AuditFinding.ResolvedVia.REVIEW
    finding.save(update_fields=["resolved_via"])
    activity_log_record(actor=actor, action="audit_finding.resolved", target=finding,
                        data={"before": before, "after": finding.status, "via": finding.resolved_via,
                              "resolution": resolution.pk, "proposed_by": proposer,
                              "comment": resolution.comment, "review_comment": review.decision_comment})


def findings_resolve_not_found(*, run: AuditRun, outcomes: list, seen: set[str], system: str) -> list[int]:
    """Inside a configured run's closing transaction: close as resolved (by the system) every active
    finding of the run's model version that one of the run's checks looks for, that check ran
    (status ok), and did not find again. Exploratory runs, live runs and runs of another artifact
    close nothing. Returns the closed finding ids."""
    if run.exploratory or run.model_version_id is None or run.target != AuditRun.Target.MODEL_VERSION:
        return []
    if (run.model_version.artifact_sha256 or "") != run.artifact_sha256:
        return []
    ran_ok = {o.name for o in outcomes if o.status == "ok"}
    candidates = (AuditFinding.objects.select_for_update()
                  .filter(kind=run.kind, model_version_id=run.model_version_id,
                          status__in=AuditFinding.ACTIVE_STATUSES)
                  .exclude(fingerprint__in=seen).order_by("pk"))
    closed = []
    for finding in candidates:
        if OUTCOME_OF_CHECK.get(finding.check_name, finding.check_name) not in ran_ok:
            continue
        reason = f"configured {run.kind} audit #{run.pk} no longer finds it"
        _cancel_pending_waivers(finding, actor=None, reason=reason, system=system)
        _cancel_pending_resolutions(finding, actor=None, reason=reason, system=system)
        before = _set_status(finding, status=AuditFinding.Status.RESOLVED, actor=None, comment=reason)
        finding.resolved_via = AuditFinding.ResolvedVia.RERUN
        finding.save(update_fields=["resolved_via"])
        activity_log_record(actor=None, system=system, action="audit_finding.resolved", target=finding,
                            data={"before": before, "after": finding.status, "via": finding.resolved_via,
                                  "run": run.pk, "comment": reason})
        closed.append(finding.pk)
    return closed


def finding_waiver_request(
    *, finding: AuditFinding, actor: Any, justification: str, expires_at: datetime
) -> FindingWaiver:
    """Ask a reviewer to accept the finding's risk until ``expires_at``; the request goes to the inbox."""
    require(actor, "waiver.request", target=finding)
    justification = (justification or "").strip()
    if len(justification) < MIN_JUSTIFICATION_CHARS:
        raise ValidationError(
            f"a waiver needs a justification of at least {MIN_JUSTIFICATION_CHARS} characters",
            detail={"justification": justification}, field="justification",
        )
    if len(justification) > MAX_JUSTIFICATION_CHARS:
        raise ValidationError(f"justification: at most {MAX_JUSTIFICATION_CHARS} characters, got {len(justification)}",
                              field="justification")
    if expires_at is None or timezone.is_naive(expires_at):
        raise ValidationError("expires_at must be a time with a time zone", field="expires_at")
    now = timezone.now()
    max_days = int(audit_setting("WAIVER_MAX_DAYS"))
    if expires_at <= now:
        raise ValidationError(f"expires_at {expires_at.isoformat()} is not in the future", field="expires_at")
    if expires_at > now + timedelta(days=max_days):
        raise ValidationError(f"a waiver may last at most {max_days} days; expires_at {expires_at.isoformat()} "
                              "is later", field="expires_at")
    with transaction.atomic():
        locked = _locked(finding)
        if locked.status not in (AuditFinding.Status.OPEN, AuditFinding.Status.ACKNOWLEDGED):
            raise Conflict(f"finding #{locked.pk} is {locked.status}; only an open or acknowledged finding "
                           "can be waived")
        if FindingWaiver.objects.filter(finding=locked, status__in=["pending", "active"]).exists():
            raise Conflict(f"finding #{locked.pk} already has a pending waiver")
        waiver = FindingWaiver.objects.create(
            finding=locked, justification=justification, expires_at=expires_at,
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        review = review_request_create(
            kind=WAIVER_REVIEW_KIND, target=locked, requester=actor,
            title=f"Waive finding #{locked.pk} until {expires_at:%Y-%m-%d}: {locked.title}",
            evidence={"finding": locked.pk, "severity": locked.severity, "check": locked.check_name,
                      "justification": justification, "expires_at": expires_at.isoformat(),
                      "evidence": locked.evidence},
            system="audits",
        )
        waiver.review = review
        waiver.save(update_fields=["review"])
        activity_log_record(actor=actor, action="audit_finding.waiver_requested", target=locked,
                            data={"waiver": waiver.pk, "review": review.pk, "justification": justification,
                                  "expires_at": expires_at.isoformat()})
    return waiver


def finding_waiver_on_decision(*, review: ReviewRequest, actor: Any) -> None:
    """Review-inbox handler: an approved waiver waives the finding (the approver is its reviewer)."""
    waiver = FindingWaiver.objects.select_for_update().select_related("finding").filter(review=review).first()
    if waiver is None:
        raise ValidationError(f"review #{review.pk} has no waiver attached")
    if waiver.status != FindingWaiver.Status.PENDING:
        raise Conflict(f"waiver #{waiver.pk} is already {waiver.status}")
    if waiver.requested_by_id is not None and waiver.requested_by_id == getattr(actor, "pk", None):
        raise PermissionDenied("Four eyes: you requested this waiver, so someone else must decide it.")
    now = timezone.now()
    finding = _locked(waiver.finding)
    waiver.reviewed_by = actor
    waiver.reviewed_at = now
    waiver.review_comment = review.decision_comment
    if review.status == ReviewRequest.Status.APPROVED:
        if waiver.expires_at <= now:
            raise ValidationError(f"waiver #{waiver.pk} expired on {waiver.expires_at.isoformat()} before it was "
                                  "approved; ask for a new one")
        if finding.status not in (AuditFinding.Status.OPEN, AuditFinding.Status.ACKNOWLEDGED):
            raise Conflict(f"finding #{finding.pk} is {finding.status}; it can no longer be waived")
        waiver.status = FindingWaiver.Status.ACTIVE
        waiver.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_comment"])
        before = _set_status(finding, status=AuditFinding.Status.WAIVED, actor=actor,
                             comment=f"waived until {waiver.expires_at:%Y-%m-%d}: {waiver.justification}")
        activity_log_record(actor=actor, action="audit_finding.waived", target=finding,
                            data={"before": before, "after": finding.status, "waiver": waiver.pk,
                                  "justification": waiver.justification,
                                  "expires_at": waiver.expires_at.isoformat(), "comment": review.decision_comment})
    else:
        waiver.status = FindingWaiver.Status.REJECTED
        waiver.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_comment"])
        activity_log_record(actor=actor, action="audit_finding.waiver_rejected", target=finding,
                            data={"waiver": waiver.pk, "decision": review.status, "comment": review.decision_comment})


def finding_waivers_expire(*, now: datetime | None = None, system: str = "audits.expire_waivers") -> list[int]:
    """Every active waiver past its expiry ends, and its finding is open again. Returns the finding ids."""
    now = now or timezone.now()
    reopened: list[int] = []
    due = list(FindingWaiver.objects.filter(status=FindingWaiver.Status.ACTIVE, expires_at__lte=now)
               .values_list("pk", flat=True))
    for waiver_id in due:
        with transaction.atomic():
            waiver = FindingWaiver.objects.select_for_update().filter(
                pk=waiver_id, status=FindingWaiver.Status.ACTIVE).first()
            if waiver is None:  # handled by a concurrent run
                continue
            waiver.status = FindingWaiver.Status.EXPIRED
            waiver.save(update_fields=["status"])
            finding = _locked(waiver.finding)
            if finding.status != AuditFinding.Status.WAIVED:
                continue
            before = _set_status(finding, status=AuditFinding.Status.OPEN, actor=None,
                                 comment=f"waiver #{waiver.pk} expired on {waiver.expires_at:%Y-%m-%d %H:%M}")
            activity_log_record(actor=None, system=system, action="audit_finding.waiver_expired", target=finding,
                                data={"before": before, "after": finding.status, "waiver": waiver.pk,
                                      "expired_at": waiver.expires_at.isoformat()})
            reopened.append(finding.pk)
    return reopened


def audit_run_signoff_request(*, run: AuditRun, actor: Any | None, comment: str = "",
                              system: str | None = None) -> ReviewRequest:
    """Ask a reviewer to sign off a finished run (its findings all handled: none still open)."""
    _require_working_role(actor, "request a sign-off")
    with transaction.atomic():
        locked = AuditRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != AuditRun.Status.SUCCEEDED:
            raise Conflict(f"audit run #{locked.pk} is {locked.status}; only a succeeded run can be signed off")
        if locked.signed_off_at is not None:
            raise Conflict(f"audit run #{locked.pk} was already signed off by {locked.signed_off_by}")
        if ReviewRequest.objects.filter(kind=SIGNOFF_REVIEW_KIND, target_type="audits.auditrun",
                                        target_id=str(locked.pk), status=ReviewRequest.Status.PENDING).exists():
            raise Conflict(f"audit run #{locked.pk} already has a pending sign-off request")
        findings = list(locked.findings.values("id", "severity", "status", "title"))
        review = review_request_create(
            kind=SIGNOFF_REVIEW_KIND, target=locked, requester=actor, system=system or "audits",
            title=f"Sign off {locked.kind} audit #{locked.pk} ({locked.target_repr}): {len(findings)} finding(s)",
            evidence={"run": locked.pk, "kind": locked.kind, "passed": locked.passed, "report": locked.report,
                      "findings": findings, "comment": comment},
        )
        activity_log_record(actor=actor, system=system, action="audit_run.signoff_requested", target=locked,
                            data={"review": review.pk, "comment": comment})
    return review


def audit_run_signoff_on_decision(*, review: ReviewRequest, actor: Any) -> None:
    """Review-inbox handler: an approved sign-off records the reviewer on the run."""
    run = AuditRun.objects.select_for_update().filter(pk=int(review.target_id)).first()
    if run is None:
        raise ValidationError(f"review #{review.pk} names audit run #{review.target_id}, which does not exist")
    if review.status != ReviewRequest.Status.APPROVED:
        activity_log_record(actor=actor, action="audit_run.signoff_rejected", target=run,
                            data={"review": review.pk, "decision": review.status, "comment": review.decision_comment})
        return
    still_open = list(run.findings.filter(status=AuditFinding.Status.OPEN).values_list("pk", flat=True))
    if still_open:
        raise Conflict(
            f"audit run #{run.pk} cannot be signed off while findings are open: "
            + ", ".join(f"#{pk}" for pk in still_open)
            + " (acknowledge, resolve or waive them first)",
            detail={"open_findings": still_open},
        )
    if run.signed_off_at is not None:
        raise Conflict(f"audit run #{run.pk} was already signed off")
    run.signed_off_by = actor
    run.signed_off_at = timezone.now()
    run.signoff_comment = review.decision_comment
    run.save(update_fields=["signed_off_by", "signed_off_at", "signoff_comment"])
    activity_log_record(actor=actor, action="audit_run.signed_off", target=run,
                        data={"review": review.pk, "comment": review.decision_comment})
