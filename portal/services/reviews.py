"""The review inbox: create review requests and record decisions, four eyes enforced."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.errors import Conflict, PermissionDenied, ValidationError
from portal.models import ReviewRequest
from portal.reviews import get_review_kind
from portal.selectors import review_request_may_decide
from portal.services.activity import _target_parts, activity_log_record

DECISIONS = {
    "approve": ReviewRequest.Status.APPROVED,
    "reject": ReviewRequest.Status.REJECTED,
    "request_changes": ReviewRequest.Status.CHANGES_REQUESTED,
}


def review_request_create(
    *,
    kind: str,
    target: Any,
    title: str,
    requester: Any | None,
    evidence: dict | None = None,
    assigned_to: Any | None = None,
    due_at: datetime | None = None,
    system: str | None = None,
) -> ReviewRequest:
    """Open a review request in the inbox of the kind's deciding role (or one named person)."""
    review_kind = get_review_kind(kind)
    if review_kind is None:
        raise ValidationError(f"unknown review kind '{kind}'")
    target_type, target_id, target_repr = _target_parts(target)
    requester_user = requester if getattr(requester, "is_authenticated", False) else None
    with transaction.atomic():
        review = ReviewRequest.objects.create(
            kind=kind,
            title=title[:255],
            target_type=target_type,
            target_id=target_id,
            target_repr=target_repr,
            evidence=evidence or {},
            requester=requester_user,
            requester_label=requester_user.get_username() if requester_user else f"system:{system or 'usher'}",
            assigned_role=review_kind.decider_role,
            assigned_to=assigned_to,
            due_at=due_at or timezone.now() + timedelta(days=settings.USHER["REVIEW_DUE_DAYS"]),
        )
        activity_log_record(
            actor=requester_user, system=system, action="review.requested", target=review,
            data={"kind": kind, "target": f"{target_type}:{target_id}", "title": title},
        )
    return review


def review_request_decide(
    *, review: ReviewRequest, actor: Any, decision: str, comment: str = ""
) -> ReviewRequest:
    """Record a decision. The requester may not decide where the kind needs four eyes;
    a refused attempt is itself logged."""
    if decision not in DECISIONS:
        raise ValidationError(
            f"unknown decision '{decision}'", detail={"allowed": sorted(DECISIONS)}, field="decision"
        )
    review_kind = get_review_kind(review.kind)
    if review_kind is None:
        raise ValidationError(f"unknown review kind '{review.kind}'")
    if review_kind.four_eyes and review.requester_id is not None and review.requester_id == actor.pk:
        activity_log_record(
            actor=actor, action="review.refused", target=review,
            data={"decision": decision, "reason": "four eyes: the requester cannot decide"},
        )
        raise PermissionDenied(
            "Four eyes: you requested this review, so someone else must decide it."
        )
    if not review_request_may_decide(review=review, user=actor):
        reason = f"assigned to the role '{review.assigned_role}'" + (
            " and a named person" if review.assigned_to_id else ""
        )
        activity_log_record(
            actor=actor, action="review.refused", target=review,
            data={"decision": decision, "reason": f"wrong role: {reason}"},
        )
        raise PermissionDenied(f"This review is {reason}; you cannot decide it.")
    if decision in ("reject", "request_changes") and not comment.strip():
        raise ValidationError("a comment is required to reject or request changes", field="comment")
    with transaction.atomic():
        locked = ReviewRequest.objects.select_for_update().get(pk=review.pk)
        if locked.status != ReviewRequest.Status.PENDING:
            raise Conflict(f"review #{locked.pk} is already {locked.status}", detail={"status": locked.status})
        before = locked.status
        locked.status = DECISIONS[decision]
        locked.decision_comment = comment
        locked.decided_by = actor
        locked.decided_at = timezone.now()
        locked.save(update_fields=["status", "decision_comment", "decided_by", "decided_at"])
        activity_log_record(
            actor=actor, action=f"review.{decision}", target=locked,
            data={"before": before, "after": locked.status, "comment": comment, "kind": locked.kind},
        )
        handler = review_kind.decision_handler()
        if handler is not None:
            handler(review=locked, actor=actor)
    return locked


def review_request_cancel(*, review: ReviewRequest, actor: Any | None, reason: str,
                          system: str | None = None) -> ReviewRequest:
    """Withdraw a pending request (its target went away or was superseded)."""
    with transaction.atomic():
        locked = ReviewRequest.objects.select_for_update().get(pk=review.pk)
        if locked.status != ReviewRequest.Status.PENDING:
            raise Conflict(f"review #{locked.pk} is already {locked.status}", detail={"status": locked.status})
        locked.status = ReviewRequest.Status.CANCELLED
        locked.decision_comment = reason
        locked.decided_at = timezone.now()
        locked.save(update_fields=["status", "decision_comment", "decided_at"])
        activity_log_record(actor=actor, system=system, action="review.cancelled", target=locked,
                            data={"reason": reason})
    return locked
