"""Promotion requests: a data scientist asks, the release gate checks on its own, a second person
decides in the review inbox, and approval starts the canary."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from portal.errors import Conflict, ValidationError
from portal.models import ReviewRequest
from portal.permissions import require
from portal.services import activity_log_record, review_request_cancel, review_request_create, review_request_decide
from recommender.models import ModelVersion
from releases import clock, integrations
from releases.conf import release_setting
from releases.models import PromotionRequest, ReleaseGateCheck
from releases.services import gate
from releases.services._common import (
    actor_label,
    human,
    notify_on_commit,
    require_reason,
)

REVIEW_KIND = "model_promotion"
GATE_TASK = "recommender.releases.release_gate"
Status = PromotionRequest.Status


CANARY_INTERVAL_MIN, CANARY_INTERVAL_MAX = 10, 7 * 24 * 3600


def validate_canary_plan(steps: list | None, interval_seconds: int | None) -> tuple[list[int], int]:
    """Steps strictly increasing percents in 1..100 ending at 100; an interval of at least 10 s."""
    # None = the default; anything given is checked (a 0 or a negative is refused, never replaced)
    steps = list(steps) if steps else list(release_setting("CANARY_STEPS"))
    try:
        steps = [int(s) for s in steps]
    except (TypeError, ValueError):
        raise ValidationError("canary_steps: the canary steps must be whole percents", detail={"steps": steps},
                              field="canary_steps") from None
    if len(steps) < 2 or steps[-1] != 100 or any(not 1 <= s <= 100 for s in steps):
        raise ValidationError("canary_steps: at least two percents in 1–100 ending at 100",
                              detail={"steps": steps}, field="canary_steps")
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise ValidationError("canary_steps: the canary steps must increase", detail={"steps": steps},
                              field="canary_steps")
    if interval_seconds is None:
        interval = int(release_setting("CANARY_INTERVAL_SECONDS"))
    elif isinstance(interval_seconds, bool) or not isinstance(interval_seconds, int):
        raise ValidationError(f"canary_interval_seconds: the seconds between steps must be a whole number, "
                              f"got {interval_seconds!r}", field="canary_interval_seconds")
    else:
        interval = interval_seconds
    if not CANARY_INTERVAL_MIN <= interval <= CANARY_INTERVAL_MAX:
        raise ValidationError(f"canary_interval_seconds: the seconds between steps must be from {CANARY_INTERVAL_MIN} "
                              f"to {CANARY_INTERVAL_MAX} (a week), got {interval}",
                              detail={"interval_seconds": interval}, field="canary_interval_seconds")
    return steps, interval


def promotion_request_create(
    *,
    version: ModelVersion,
    actor: Any | None,
    reason: str,
    canary_steps: list[int] | None = None,
    canary_interval_seconds: int | None = None,
    system: str | None = None,
    on_behalf_of: Any | None = None,
) -> PromotionRequest:
    """File a promotion request and queue its release gate.

    A schedule files with ``system=...``; ``on_behalf_of`` names the person the request is
    recorded for (so four eyes keeps them from deciding it)."""
    require(actor, "promotion.request", system=system, target=version)
    if on_behalf_of is not None and human(actor) is not None:
        raise ValidationError("on_behalf_of is only for requests filed by the system")
    reason = require_reason(reason, "a reason for the promotion")
    steps, interval = validate_canary_plan(canary_steps, canary_interval_seconds)
    if version.status in (ModelVersion.Status.REJECTED, ModelVersion.Status.ARCHIVED):
        raise ValidationError(f"{version} is {version.status}; only candidate or approved versions can be promoted")
    production = integrations.production_version()
    if production is not None and production.pk == version.pk:
        raise Conflict(f"{version} is already in production")
    with transaction.atomic():
        ModelVersion.objects.select_for_update().get(pk=version.pk)
        open_one = PromotionRequest.objects.filter(version=version, status__in=PromotionRequest.OPEN).first()
        if open_one is not None:
            raise Conflict(f"{version} already has an open promotion request (#{open_one.pk}, {open_one.status})",
                           detail={"promotion": open_one.pk})
        promotion = PromotionRequest.objects.create(
            version=version, baseline_version=production, reason=reason, requested_by=human(actor) or human(on_behalf_of),
            requested_label=actor_label(actor or on_behalf_of, system), canary_steps=steps,
            canary_interval_seconds=interval,
        )
        activity_log_record(
            actor=actor, system=system, action="release.promotion.requested", target=promotion,
            data={"version": version.pk, "production": production.pk if production else None, "reason": reason,
                  "on_behalf_of": actor_label(on_behalf_of, None) if on_behalf_of is not None else None,
                  "canary_steps": steps, "canary_interval_seconds": interval},
        )
        transaction.on_commit(lambda: integrations.enqueue(GATE_TASK, promotion.pk))
    return promotion


def release_gate_run(*, promotion: PromotionRequest, system: str = GATE_TASK) -> PromotionRequest:
    """Run every check of the gate, record each with its evidence, then open the review or fail.

    Idempotent: a gate that was interrupted (status still ``gate_running``) runs again as a new
    attempt; a finished one is left alone.
    """
    with transaction.atomic():
        locked = PromotionRequest.objects.select_for_update().get(pk=promotion.pk)
        if locked.status not in (Status.GATE_PENDING, Status.GATE_RUNNING):
            return locked
        before = locked.status
        locked.status = Status.GATE_RUNNING
        locked.gate_attempt += 1
        locked.save(update_fields=["status", "gate_attempt", "updated_at"])
        activity_log_record(actor=None, system=system, action="release.gate.started", target=locked,
                            data={"attempt": locked.gate_attempt, "before": before})
    attempt = locked.gate_attempt
    version = locked.version
    baseline = integrations.production_version()
    results: list[gate.CheckResult] = []
    runners = [
        lambda: gate.check_offline_metrics(version=version, baseline=baseline),
        lambda: gate.check_fairness(version=version, system=system),
        lambda: gate.check_security(version=version, system=system),
        lambda: gate.check_artifact(version=version),
    ]
    names = [ReleaseGateCheck.Name.OFFLINE_METRICS, ReleaseGateCheck.Name.FAIRNESS,
             ReleaseGateCheck.Name.SECURITY, ReleaseGateCheck.Name.ARTIFACT]
    for name, run in zip(names, runners, strict=True):
        try:
            result = run()
        except Exception as exc:  # a check that crashes fails the gate with its error, never passes it
            result = gate.CheckResult(name, ReleaseGateCheck.Outcome.ERROR, f"check crashed: {exc}"[:500],
                                      {"error": repr(exc)})
        evidence = json.loads(json.dumps(result.evidence, cls=DjangoJSONEncoder))
        ReleaseGateCheck.objects.update_or_create(
            promotion=locked, attempt=attempt, name=result.name,
            defaults={"outcome": result.outcome, "summary": result.summary, "evidence": evidence},
        )
        results.append(result)
    passed = all(r.outcome in (ReleaseGateCheck.Outcome.PASSED, ReleaseGateCheck.Outcome.WAIVED) for r in results)
    summary = {r.name: {"outcome": r.outcome, "summary": r.summary} for r in results}
    with transaction.atomic():
        locked = PromotionRequest.objects.select_for_update().get(pk=promotion.pk)
        if locked.status != Status.GATE_RUNNING or locked.gate_attempt != attempt:
            return locked  # cancelled or superseded meanwhile
        locked.gate_passed = passed
        locked.gate_finished_at = clock.now()
        locked.baseline_version = baseline
        if passed:
            locked.status = Status.AWAITING_REVIEW
            locked.review = review_request_create(
                kind=REVIEW_KIND, target=locked, requester=locked.requested_by, system=locked.requested_label.removeprefix("system:"),
                title=f"Promote {version} to production",
                evidence={"promotion": locked.pk, "version": version.pk, "reason": locked.reason,
                          "production": baseline.pk if baseline else None, "gate_attempt": attempt, "checks": summary},
            )
        else:
            locked.status = Status.GATE_FAILED
        locked.save()
        activity_log_record(
            actor=None, system=system, action="release.gate.passed" if passed else "release.gate.failed",
            target=locked, data={"attempt": attempt, "checks": summary},
        )
        if not passed:
            failed = [f"{r.name}: {r.summary}" for r in results if r.outcome not in ("passed", "waived")]
            _notify_requester(locked, event="promotion.gate_failed",
                              subject=f"Release gate failed for {version}",
                              body="The release gate failed:\n" + "\n".join(failed), extra={"checks": summary})
    return locked


def _notify_requester(promotion: PromotionRequest, *, event: str, subject: str, body: str, extra: dict) -> None:
    email = getattr(promotion.requested_by, "email", "") or ""
    notify_on_commit(
        event=event, subject=subject, body=body, emails=[email] if email else [],
        payload={"promotion": promotion.pk, "version": promotion.version_id, "status": promotion.status, **extra},
    )


def promotion_decide(*, promotion: PromotionRequest, actor: Any, decision: str, comment: str = "") -> PromotionRequest:
    """Approve or reject through the review inbox (four eyes; the refused attempt is logged there)."""
    require(actor, "review.decide", target=promotion)
    if promotion.review_id is None or promotion.status != Status.AWAITING_REVIEW:
        raise Conflict(f"promotion #{promotion.pk} is {promotion.status}, not awaiting review")
    review_request_decide(review=promotion.review, actor=actor, decision=decision, comment=comment)
    return PromotionRequest.objects.get(pk=promotion.pk)


def promotion_review_decided(*, review: ReviewRequest, actor: Any) -> None:
    """Decision handler of the ``model_promotion`` review kind (inside the decision's transaction)."""
    promotion = PromotionRequest.objects.select_for_update().filter(review=review).first()
    if promotion is None:
        raise Conflict(f"review #{review.pk} belongs to no promotion request; file one at "
                       "/portal/releases/ (API: POST /api/v1/releases/promotions/new)")
    if promotion.status != Status.AWAITING_REVIEW:
        raise Conflict(f"promotion #{promotion.pk} is {promotion.status}, not awaiting review")
    approved = review.status == ReviewRequest.Status.APPROVED
    promotion.status = Status.APPROVED if approved else Status.REJECTED
    promotion.decided_by = actor
    promotion.decision_comment = review.decision_comment
    promotion.decided_at = review.decided_at or clock.now()
    promotion.save()
    activity_log_record(
        actor=actor, action="release.promotion.approved" if approved else "release.promotion.rejected",
        target=promotion, data={"review": review.pk, "decision": review.status, "comment": review.decision_comment,
                                "version": promotion.version_id},
    )
    verdict = "approved" if approved else review.status.replace("_", " ")
    _notify_requester(
        promotion, event=f"promotion.{'approved' if approved else 'rejected'}",
        subject=f"Promotion of {promotion.version} {verdict} by {actor.get_username()}",
        body=f"{actor.get_username()} {verdict} the promotion of {promotion.version}: {review.decision_comment or '(no comment)'}",
        extra={"decided_by": actor.get_username(), "comment": review.decision_comment},
    )
    if approved:
        from releases.services.rollouts import SYSTEM as ROLLOUT_SYSTEM
        from releases.services.rollouts import rollout_start_if_free

        integrations.version_approve(version=promotion.version, actor=actor,
                                     reason=f"promotion #{promotion.pk} approved in review #{review.pk}")

        # The approved promotion drives its canary (as the rollout system, not as the reviewer:
        # reviewers decide, operators and the rollout move traffic).
        rollout_start_if_free(promotion=promotion, actor=None, system=ROLLOUT_SYSTEM)


def promotion_cancel(*, promotion: PromotionRequest, actor: Any, reason: str) -> PromotionRequest:
    """Withdraw a request that has not reached its canary yet (the requester or an operator)."""
    own = promotion.requested_by_id is not None and promotion.requested_by_id == getattr(actor, "pk", None)
    require(actor, "promotion.request" if own else "release.operate", target=promotion)
    reason = require_reason(reason)
    with transaction.atomic():
        locked = PromotionRequest.objects.select_for_update().get(pk=promotion.pk)
        if locked.status not in (Status.GATE_PENDING, Status.GATE_RUNNING, Status.GATE_FAILED,
                                 Status.AWAITING_REVIEW, Status.APPROVED):
            raise Conflict(f"promotion #{locked.pk} is {locked.status} and cannot be cancelled")
        before = locked.status
        if locked.review_id and locked.review.status == ReviewRequest.Status.PENDING:
            review_request_cancel(review=locked.review, actor=actor, reason=reason)
        locked.status = Status.CANCELLED
        locked.save(update_fields=["status", "updated_at"])
        activity_log_record(actor=actor, action="release.promotion.cancelled", target=locked,
                            data={"before": before, "reason": reason})
    return locked


def promotion_gate_rerun(*, promotion: PromotionRequest, actor: Any, reason: str) -> PromotionRequest:
    """Run the gate again after a failure (a finding was waived, an audit re-run, an artifact restored)."""
    require(actor, "promotion.request", target=promotion)
    reason = require_reason(reason)
    with transaction.atomic():
        locked = PromotionRequest.objects.select_for_update().get(pk=promotion.pk)
        if locked.status != Status.GATE_FAILED:
            raise Conflict(f"promotion #{locked.pk} is {locked.status}; only a failed gate can run again")
        locked.status = Status.GATE_PENDING
        locked.gate_passed = None
        locked.save(update_fields=["status", "gate_passed", "updated_at"])
        activity_log_record(actor=actor, action="release.gate.rerun", target=locked, data={"reason": reason})
        transaction.on_commit(lambda: integrations.enqueue(GATE_TASK, locked.pk))
    return locked


def promotions_waiting_for_canary() -> list[PromotionRequest]:
    """Approved promotions whose canary has not started (another rollout or experiment was running)."""
    return list(PromotionRequest.objects.filter(status=Status.APPROVED, rollout__isnull=True).order_by("decided_at"))
