"""Reads of releases and experiments, with their joins chosen here."""

from __future__ import annotations

from django.db import models
from django.db.models import Prefetch, QuerySet
from django.urls import reverse

from portal.reviews import stored_target_types
from portal.selectors import activity_log_list
from recommender.models import ModelVersion
from releases.models import (
    Experiment,
    ExperimentSnapshot,
    ExperimentVariant,
    PromotionRequest,
    ReleaseGateCheck,
    Rollout,
    RolloutStep,
    ShadowComparison,
    ShadowReport,
)


def promotion_list(*, filters: dict | None = None) -> QuerySet[PromotionRequest]:
    filters = filters or {}
    qs = PromotionRequest.objects.select_related(
        "version__registered_model", "baseline_version__registered_model", "requested_by", "decided_by", "review",
        "rollout",
    ).order_by("-created_at")
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("version"):
        qs = qs.filter(version_id=filters["version"])
    return qs


def promotion_checks(*, promotion: PromotionRequest) -> list[ReleaseGateCheck]:
    """The checks of the promotion's latest gate attempt."""
    return list(ReleaseGateCheck.objects.filter(promotion=promotion, attempt=promotion.gate_attempt).order_by("id"))


def rollout_list(*, filters: dict | None = None) -> QuerySet[Rollout]:
    filters = filters or {}
    qs = Rollout.objects.select_related(
        "version__registered_model", "baseline_version__registered_model", "promotion"
    ).order_by("-created_at")
    if filters.get("state"):
        qs = qs.filter(state=filters["state"])
    return qs


def rollout_active() -> Rollout | None:
    return rollout_list().filter(state__in=Rollout.ACTIVE).first()


def rollout_steps(*, rollout: Rollout) -> QuerySet[RolloutStep]:
    return RolloutStep.objects.filter(rollout=rollout).select_related("decided_by").order_by("revision")


def rollout_evidence(*, rollout: Rollout) -> dict | None:
    """What the current step of an active rollout still needs, as its latest check measured it
    ("needs N more lists, about M minutes at the current rate"), with ``checked_at``; before the
    step's first check, when that check is due. None once the rollout has finished."""
    if rollout.state not in Rollout.ACTIVE:
        return None
    last = RolloutStep.objects.filter(rollout=rollout).order_by("-revision").first()
    evidence = ((last.metrics or {}).get("evidence") if last else None) or {}
    if last is not None and last.outcome == RolloutStep.Outcome.HELD and last.step_index == rollout.step_index \
            and evidence:
        return {**evidence, "checked_at": last.created_at, "current": True}
    due = rollout.next_check_at
    if rollout.state == Rollout.State.PAUSED:
        message = f"paused at {rollout.applied_percent}%: no automatic check until someone resumes it"
    else:
        message = (f"the {rollout.applied_percent}% step has not been checked yet"
                   + (f"; its first check is due at {due:%Y-%m-%d %H:%M:%S} UTC" if due else ""))
    return {"current": False, "message": message, "checked_at": None, "next_check_at": due}


def experiment_list(*, filters: dict | None = None) -> QuerySet[Experiment]:
    filters = filters or {}
    qs = Experiment.objects.prefetch_related(
        Prefetch("arms", queryset=ExperimentVariant.objects.select_related("version__registered_model"))
    ).order_by("-created_at")
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    return qs


def experiment_snapshots(*, experiment: Experiment) -> QuerySet[ExperimentSnapshot]:
    return ExperimentSnapshot.objects.filter(experiment=experiment).order_by("computed_at")


def experiment_latest_snapshot(*, experiment: Experiment) -> ExperimentSnapshot | None:
    return ExperimentSnapshot.objects.filter(experiment=experiment).order_by("-computed_at").first()


def experiment_chart(*, experiment: Experiment) -> dict:
    """Per-arm series over time for the results page: success rate, trials, and the sequential
    confidence sequence of each treatment's difference from the control."""
    snaps = list(experiment_snapshots(experiment=experiment).only("computed_at", "arms", "sequential"))
    labels = [s.computed_at.strftime("%m-%d %H:%M") for s in snaps]
    arms = [a.name for a in experiment.arms.all()]
    rate = {a: [(s.arms.get(a) or {}).get("rate") for s in snaps] for a in arms}
    trials = {a: [(s.arms.get(a) or {}).get("trials", 0) for s in snaps] for a in arms}
    diff = {}
    for a in arms:
        series = [(s.sequential or {}).get(a) for s in snaps]
        if any(series):
            diff[a] = {
                "difference": [x.get("difference") if x else None for x in series],
                "low": [x.get("cs_low") if x and x.get("enough_data") else None for x in series],
                "high": [x.get("cs_high") if x and x.get("enough_data") else None for x in series],
            }
    return {"labels": labels, "rate": rate, "trials": trials, "difference": diff}


def shadow_report_list() -> QuerySet[ShadowReport]:
    return ShadowReport.objects.select_related(
        "shadow_version__registered_model", "production_version__registered_model"
    ).order_by("-created_at")


def shadow_comparison_list(*, version_id: int | None = None) -> QuerySet[ShadowComparison]:
    qs = ShadowComparison.objects.order_by("-created_at")
    return qs.filter(shadow_version_id=version_id) if version_id else qs


def release_history(*, target: models.Model):
    """The activity log of one release object (who or what decided, and why). Entries written before
    releases had its own app keep the name they were written with (the log is a hash chain): read
    under every name the object had (``portal.reviews.stored_target_types``)."""
    labels = stored_target_types(target._meta.label_lower)
    return activity_log_list(filters={"target_id": target.pk}).filter(target_type__in=labels).order_by("seq")


# --- the one door to live traffic: the policy serving asks (registered in ReleasesConfig.ready) ---

# A promotion in one of these states has passed the release gate and been approved in review.
LIVE_PROMOTION_STATUSES = ("approved", "rolling_out", "released")


def promotion_start_links(version: ModelVersion) -> dict:
    """Where to start (or follow) the promotion that would let ``version`` serve viewers."""
    open_one = (PromotionRequest.objects.filter(version=version, status__in=PromotionRequest.OPEN)
                .order_by("-created_at").first())
    links = {"page": f"{reverse('releases:overview')}?version={version.pk}#request-promotion",
             "api": "POST " + reverse("api-promotion-create")}
    if open_one is not None:
        links["open_promotion"] = {"id": open_one.pk, "status": open_one.status,
                                   "page": reverse("releases:promotion", args=[open_one.pk]),
                                   "api": reverse("api-promotion-detail", args=[open_one.pk])}
    return links


def live_traffic_clearance(version: ModelVersion) -> dict:
    """May ``version`` serve viewers? Only through a promotion request whose release gate passed
    and whose review was approved by a reviewer who is not its requester (``basis`` names it).

    Returns ``{"cleared", "basis", "promotion", "missing"}``; ``missing`` says in words what is
    not there yet. Serving asks it through ``recommender.serving.selectors.live_traffic_clearance`` (``ready()``
    registers it); the bootstrap exception is serving's to apply (``version_bootstrapped``).
    """
    promotions = (PromotionRequest.objects.filter(version=version, gate_passed=True,
                                                  status__in=LIVE_PROMOTION_STATUSES, review__status="approved")
                  .select_related("review").order_by("-decided_at", "-pk"))
    for promotion in promotions:
        review = promotion.review
        reviewer = review.decided_by_id
        requesters = {promotion.requested_by_id, review.requester_id} - {None}
        if reviewer is not None and reviewer == promotion.decided_by_id and reviewer not in requesters:
            return {"cleared": True, "basis": f"promotion #{promotion.pk}", "promotion": promotion.pk, "missing": None}
    latest = PromotionRequest.objects.filter(version=version).order_by("-created_at").first()
    if latest is None:
        missing = f"{version} has no promotion request"
    elif latest.status in ("gate_pending", "gate_running"):
        missing = f"promotion #{latest.pk} of {version} is still in the release gate"
    elif latest.status == "awaiting_review":
        missing = f"promotion #{latest.pk} of {version} awaits a reviewer's decision"
    else:
        missing = f"{version} has no promotion that passed the release gate and was approved (latest: #{latest.pk}, {latest.status})"
    return {"cleared": False, "basis": None, "promotion": latest.pk if latest else None, "missing": missing}
