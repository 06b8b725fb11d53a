"""Incidents: opened (once) by a firing rule, then acknowledged, annotated and resolved by people.

Every change writes the activity log with the incident as target, so the log is the incident's
timeline. An open incident has a review of kind ``incident_ack`` in the operators' inbox (or its
rule owner's): approving it acknowledges the incident, rejecting it resolves it as a false alarm,
requesting changes acknowledges it with the comment kept as a note.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from monitoring.models import AlertRule, Incident, IncidentNote
from monitoring.services.notifications import notifications_queue
from portal.errors import Conflict, PermissionDenied, ValidationError
from portal.permissions import require
from portal.services import activity_log_record, review_request_cancel, review_request_create, review_request_decide

REVIEW_KIND = "incident_ack"
SYSTEM = "monitoring.evaluate_alerts"


def _check_operator(actor: Any, incident: Incident) -> None:
    require(actor, "incident.handle", target=incident)


def _title(rule: AlertRule, value: float | None) -> str:
    shown = "no data" if value is None else f"{value:.4g}"
    return f"{rule.name}: {rule.metric} = {shown} ({rule.get_operator_display()} {rule.threshold:g})"


def incident_fire(*, rule: AlertRule, value: float | None, evidence: dict, now: datetime) -> tuple[Incident, bool]:
    """Record that ``rule`` fired. Updates the rule's active incident if there is one (no new
    incident while it keeps firing), else opens one with its review and notifications.
    Returns (incident, opened)."""
    with transaction.atomic():
        active = Incident.objects.select_for_update().filter(rule=rule).exclude(status=Incident.Status.RESOLVED).first()
        if active is not None:
            refired = active.cleared_at is not None
            active.last_fired_at = now
            active.fire_count += 1
            active.value = value
            if value is not None and (active.peak_value is None or _worse(rule, value, active.peak_value)):
                active.peak_value = value
            active.evidence = evidence
            active.cleared_at = None
            active.save(update_fields=["last_fired_at", "fire_count", "value", "peak_value", "evidence", "cleared_at"])
            if refired:
                activity_log_record(actor=None, system=SYSTEM, action="incident.refired", target=active,
                                    data={"value": value, "fire_count": active.fire_count})
                notifications_queue(incident=active, event="refired")
            return active, False
        try:
            with transaction.atomic():
                incident = Incident.objects.create(
                    rule=rule, title=_title(rule, value)[:255], severity=rule.severity, opened_at=now,
                    last_fired_at=now, value=value, peak_value=value, evidence=evidence,
                )
        except IntegrityError:
            # Another evaluator opened it a moment ago: the constraint keeps it to one.
            return Incident.objects.get(rule=rule, status__in=[Incident.Status.OPEN, Incident.Status.ACKNOWLEDGED]), False
        review = review_request_create(
            kind=REVIEW_KIND, target=incident, title=f"Incident: {incident.title}"[:255], requester=None,
            evidence={"incident": incident.pk, "rule": rule.name, "condition": rule.condition,
                      "severity": rule.severity, "value": value, "evidence": evidence},
            assigned_to=rule.owner, system=SYSTEM,
        )
        incident.review = review
        incident.save(update_fields=["review"])
        activity_log_record(actor=None, system=SYSTEM, action="incident.opened", target=incident,
                            data={"rule": rule.name, "condition": rule.condition, "value": value,
                                  "severity": rule.severity, "review": review.pk})
        notifications_queue(incident=incident, event="opened")
    return incident, True


def _worse(rule: AlertRule, value: float, than: float) -> bool:
    return value > than if rule.operator in (AlertRule.Operator.GT, AlertRule.Operator.GTE) else value < than


def incident_clear(*, incident: Incident, now: datetime, value: float | None) -> Incident:
    """The condition no longer holds: noted once on the timeline; the incident stays until resolved."""
    if incident.cleared_at is not None or not incident.is_active:
        return incident
    with transaction.atomic():
        incident.cleared_at = now
        incident.save(update_fields=["cleared_at"])
        activity_log_record(actor=None, system=SYSTEM, action="incident.cleared", target=incident,
                            data={"value": value})
    return incident


def _acknowledge(incident: Incident, actor: Any, comment: str) -> Incident:
    locked = Incident.objects.select_for_update().get(pk=incident.pk)
    if locked.status != Incident.Status.OPEN:
        raise Conflict(f"incident #{locked.pk} is already {locked.status}")
    locked.status = Incident.Status.ACKNOWLEDGED
    locked.acknowledged_by = actor
    locked.acknowledged_at = timezone.now()
    locked.save(update_fields=["status", "acknowledged_by", "acknowledged_at"])
    if comment.strip():
        IncidentNote.objects.create(incident=locked, author=actor, author_label=actor.get_username(), text=comment)
    activity_log_record(actor=actor, action="incident.acknowledged", target=locked,
                        data={"before": "open", "after": locked.status, "comment": comment})
    notifications_queue(incident=locked, event="acknowledged")
    return locked


def incident_acknowledge(*, incident: Incident, actor: Any, comment: str = "") -> Incident:
    """An operator takes the incident. Its pending review is approved with the same comment."""
    _check_operator(actor, incident)
    with transaction.atomic():
        review = incident.review
        if review is not None and review.status == "pending":
            try:
                review_request_decide(review=review, actor=actor, decision="approve", comment=comment or "acknowledged")
                return Incident.objects.get(pk=incident.pk)
            except PermissionDenied:
                # The review waits for the rule's owner; another operator may still take the incident.
                locked = _acknowledge(incident, actor, comment)
                review_request_cancel(review=review, actor=actor,
                                      reason=f"incident acknowledged by {actor.get_username()}")
                return locked
        return _acknowledge(incident, actor, comment)


def incident_annotate(*, incident: Incident, actor: Any, text: str) -> IncidentNote:
    """Add a note to the incident's timeline."""
    _check_operator(actor, incident)
    if not text.strip():
        raise ValidationError("a note needs some text", field="text")
    with transaction.atomic():
        note = IncidentNote.objects.create(incident=incident, author=actor, author_label=actor.get_username(),
                                           text=text.strip())
        activity_log_record(actor=actor, action="incident.annotated", target=incident, data={"note": text.strip()})
    return note


def _resolve(incident: Incident, actor: Any, resolution: str) -> Incident:
    locked = Incident.objects.select_for_update().get(pk=incident.pk)
    if locked.status == Incident.Status.RESOLVED:
        raise Conflict(f"incident #{locked.pk} is already resolved")
    before = locked.status
    locked.status = Incident.Status.RESOLVED
    locked.resolved_by = actor
    locked.resolved_at = timezone.now()
    locked.resolution = resolution
    locked.save(update_fields=["status", "resolved_by", "resolved_at", "resolution"])
    activity_log_record(actor=actor, action="incident.resolved", target=locked,
                        data={"before": before, "after": locked.status, "resolution": resolution})
    notifications_queue(incident=locked, event="resolved")
    return locked


def incident_resolve(*, incident: Incident, actor: Any, resolution: str) -> Incident:
    """Close the incident with what was done. A still-pending review is withdrawn."""
    _check_operator(actor, incident)
    if not resolution.strip():
        raise ValidationError("say how the incident was resolved", field="resolution")
    with transaction.atomic():
        locked = _resolve(incident, actor, resolution.strip())
        if locked.review_id and locked.review.status == "pending":
            review_request_cancel(review=locked.review, actor=actor, reason=f"incident resolved: {resolution.strip()}")
    return locked


def incident_review_decided(*, review, actor: Any) -> None:
    """The ``incident_ack`` review kind's decision handler (runs in the decision's transaction)."""
    incident = Incident.objects.filter(pk=review.target_id).first()
    if incident is None or not incident.is_active:
        return
    comment = review.decision_comment or ""
    if review.status == "approved":
        if incident.status == Incident.Status.OPEN:
            _acknowledge(incident, actor, comment)
    elif review.status == "rejected":
        _resolve(incident, actor, f"dismissed as a false alarm: {comment}")
    elif review.status == "changes_requested":
        if incident.status == Incident.Status.OPEN:
            _acknowledge(incident, actor, comment)
        elif comment.strip():
            IncidentNote.objects.create(incident=incident, author=actor, author_label=actor.get_username(),
                                        text=comment)
