"""The releases' repair pass (beat, every minute): nothing is left half-done after a crash."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q

from portal.errors import Conflict
from portal.services import activity_log_record
from releases import clock, integrations
from releases.conf import release_setting
from releases.models import PromotionRequest
from releases.services.promotions import GATE_TASK, promotions_waiting_for_canary
from releases.services.rollouts import rollout_start_if_free, rollouts_reconcile

SYSTEM = "recommender.releases.repair"


def releases_repair(*, now: datetime | None = None, system: str = SYSTEM) -> dict:
    """Restore the recorded traffic split of active rollouts, re-queue release gates that were
    lost or interrupted, and start the canary of approved promotions once traffic is free."""
    now = now or clock.now()
    fixes = rollouts_reconcile(system=system)
    grace = timedelta(seconds=int(release_setting("REPAIR_GRACE_SECONDS")))
    stuck_gate = timedelta(minutes=int(release_setting("GATE_STUCK_MINUTES")))
    requeued = []
    lost = PromotionRequest.objects.filter(
        Q(status=PromotionRequest.Status.GATE_PENDING, updated_at__lt=now - grace)
        | Q(status=PromotionRequest.Status.GATE_RUNNING, updated_at__lt=now - stuck_gate)
    )
    for promotion in lost:
        activity_log_record(actor=None, system=system, action="release.gate.requeued", target=promotion,
                            data={"status": promotion.status, "last_change": promotion.updated_at.isoformat()})
        PromotionRequest.objects.filter(pk=promotion.pk).update(updated_at=now)
        integrations.enqueue(GATE_TASK, promotion.pk)
        requeued.append(promotion.pk)
    started = []
    for promotion in promotions_waiting_for_canary():
        try:
            rollout = rollout_start_if_free(promotion=promotion, system=system)
        except Conflict:
            rollout = None
        if rollout is None:
            break  # traffic is still held; try again next time
        started.append(rollout.pk)
    return {"reconciled": fixes, "gates_requeued": requeued, "canaries_started": started}
