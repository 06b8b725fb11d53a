"""Celery entry points of releases and experiments: thin, idempotent, each with an explicit name."""

from __future__ import annotations

from celery import shared_task

from releases.models import Experiment, PromotionRequest, Rollout


@shared_task(name="recommender.releases.release_gate", acks_late=True)
def release_gate(promotion_id: int) -> str | None:
    """Run the release gate of one promotion request (no-op once it has finished)."""
    from releases.services import release_gate_run

    promotion = PromotionRequest.objects.filter(
        pk=promotion_id, status__in=[PromotionRequest.Status.GATE_PENDING, PromotionRequest.Status.GATE_RUNNING]
    ).first()
    if promotion is None:
        return None
    return release_gate_run(promotion=promotion).status


@shared_task(name="recommender.releases.rollout_evaluate", acks_late=True)
def rollout_evaluate(rollout_id: int, revision: int) -> str | None:
    """The step check of one rollout at one revision (no-op when it has moved on)."""
    from releases.services import rollout_evaluate as evaluate

    rollout = Rollout.objects.filter(pk=rollout_id, state=Rollout.State.RUNNING, revision=revision).first()
    if rollout is None:
        return None
    step = evaluate(rollout=rollout, expected_revision=revision)
    return step.outcome if step else None


@shared_task(name="recommender.releases.rollouts_tick", acks_late=True)
def rollouts_tick() -> int:
    """Beat: queue the step check of every running rollout that is due."""
    from releases.services.rollouts import rollouts_due

    due = rollouts_due()
    for rollout_id, revision in due:
        rollout_evaluate.delay(rollout_id, revision)
    return len(due)


@shared_task(name="recommender.releases.repair", acks_late=True)
def repair() -> dict:
    """Beat: restore recorded traffic splits, re-queue lost gates, start waiting canaries."""
    from releases.services.repair import releases_repair

    return releases_repair()


@shared_task(name="recommender.releases.experiments_analyze", acks_late=True)
def experiments_analyze() -> list[int]:
    """Beat (hourly): an analysis snapshot of every running experiment."""
    from releases.services import experiment_analyze

    return [experiment_analyze(experiment=e).pk for e in Experiment.objects.filter(status=Experiment.Status.RUNNING)]


@shared_task(name="recommender.releases.shadow_report", acks_late=True)
def shadow_report() -> int | None:
    """Beat (hourly): the shadow's agreement with production over the last hour."""
    from releases.services import shadow_report_create

    report = shadow_report_create(system="recommender.releases.shadow_report")
    return report.pk if report else None
