"""Writes of releases and experiments: promotion requests and the release gate, canary rollouts,
A/B experiments, shadow reports and production rollback. Each is atomic and logged."""

from releases.services.experiments import (  # noqa: F401
    experiment_analyze,
    experiment_create,
    experiment_start,
    experiment_stop,
)
from releases.services.promotions import (  # noqa: F401
    promotion_cancel,
    promotion_decide,
    promotion_gate_rerun,
    promotion_request_create,
    promotion_review_decided,
    release_gate_run,
)
from releases.services.rollouts import (  # noqa: F401
    production_rollback,
    rollout_advance,
    rollout_evaluate,
    rollout_pause,
    rollout_resume,
    rollout_rollback,
    rollout_start,
    rollout_start_if_free,
    rollouts_reconcile,
)
from releases.services.shadow import (  # noqa: F401
    shadow_comparisons_record,
    shadow_report_create,
    shadow_start,
    shadow_stop,
)
