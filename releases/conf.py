"""The releases knobs: defaults here, overridden by ``settings.RECOMMENDER['RELEASES']``; one accessor."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # --- release gate ---
    # Offline metric → how it may compare with production's. ``higher``: the candidate may be at
    # most ``tolerance`` below production (absolute); ``lower``: at most ``tolerance`` above —
    # measured on one evaluation set for both, and failed only when the whole interval below says
    # it is worse by more than that. rmse, mae and precision/recall/ndcg/map/hit_rate_at_<k> are
    # re-measured; any other key is compared on the figures stored at training (said so).
    # A metric missing on either side is reported, and fails only when ``required``.
    "GATE_METRICS": {
        "rmse": {"better": "lower", "tolerance": 0.02, "required": False},
        "mae": {"better": "lower", "tolerance": 0.02, "required": False},
        "ndcg_at_20": {"better": "higher", "tolerance": 0.01, "required": False},
        "precision_at_20": {"better": "higher", "tolerance": 0.01, "required": False},
        "recall_at_20": {"better": "higher", "tolerance": 0.01, "required": False},
        "hit_rate_at_20": {"better": "higher", "tolerance": 0.02, "required": False},
    },
    # How the offline metrics are compared (docs/releases.md, "Offline metrics: like with like"):
    # both versions are scored now on the candidate's held-out rows that neither was fitted on, and
    # candidate − production gets a GATE_CONFIDENCE interval from GATE_BOOTSTRAP_RESAMPLES resamples of
    # the viewers (seeded by GATE_SEED). A metric fails only when that whole interval says the
    # candidate is worse by more than its tolerance. At most GATE_MAX_VIEWERS viewers (a seeded
    # sample) are scored; with fewer than GATE_MIN_VIEWERS the check errs rather than guess.
    "GATE_BOOTSTRAP_RESAMPLES": 1000,
    "GATE_CONFIDENCE": 0.95,
    "GATE_SEED": 0,
    "GATE_MAX_VIEWERS": 2000,
    "GATE_MIN_VIEWERS": 30,
    # The gate needs a fairness audit of the version; when there is none it runs one (trigger
    # release_gate). Security: the latest security audit must be this recent, else one is run.
    # Which findings block is the audits app's rule (AUDITS['PASS_BELOW_SEVERITY']).
    "GATE_SECURITY_MAX_AGE_HOURS": 24,
    # A gate still running after this long (its worker died) is run again by the repair task.
    "GATE_STUCK_MINUTES": 30,
    # --- canary rollouts ---
    "CANARY_STEPS": [5, 25, 50, 100],
    "CANARY_INTERVAL_SECONDS": 3600,
    "CANARY_ALPHA": 0.05,
    "CANARY_TAU": 0.05,  # mSPRT mixture scale: a canary hunts for clear harm (experiments use 0.03)

    # The evidence each step needs follows from the smallest harm worth detecting: enough canary lists
    # in all for the fixed-horizon test to detect a drop of CANARY_MIN_DETECTABLE_DEGRADATION (absolute)
    # in the success rate with CANARY_POWER at CANARY_ALPHA, the viewer as the unit; spread over the
    # steps in proportion to their share (stats.canary_plan; docs/releases.md).
    "CANARY_MIN_DETECTABLE_DEGRADATION": 0.02,
    "CANARY_POWER": 0.8,
    # Until production's success rate and the design effect are measured (at least
    # CANARY_DESIGN_EFFECT_MIN_VIEWERS viewers on each side), the plan uses these.
    "CANARY_PRIOR_BASELINE": 0.2,
    "CANARY_PRIOR_DESIGN_EFFECT": 2.0,
    "CANARY_DESIGN_EFFECT_MIN_VIEWERS": 30,
    "CANARY_MIN_TRIALS": 200,  # served lists per side at a step before it may advance, whatever the plan says
    # The traffic rate behind "about M minutes": lists served per minute over this many recent minutes.
    "CANARY_RATE_WINDOW_MINUTES": 10,
    # A list's success window for canaries (None: monitoring's ONLINE_QUALITY_WINDOW_MINUTES). A list
    # counts only once its window has closed, so every step lasts at least this long.
    "CANARY_QUALITY_WINDOW_MINUTES": None,
    # A canary whose success rate is below production's by more than this does not advance even when
    # the difference is not (yet) significant: it holds at its share until the sequential test decides.
    "CANARY_MAX_DEGRADATION": 0.02,
    # Consecutive holds that bring nothing new before the rollout stops waiting: a canary that still
    # looks worse than CANARY_MAX_DEGRADATION is rolled back then; one that got no new lists pauses for
    # a person. A hold while the lists it waits for keep arriving does not count.
    "CANARY_MAX_HOLDS": 12,
    "CANARY_GUARDRAILS": {"max_error_rate": 0.02, "max_p99_ms": 300.0, "max_fallback_rate": 0.2},
    "CANARY_GUARDRAIL_MIN_REQUESTS": 50,
    # A running rollout whose check is this overdue is re-enqueued by the repair task.
    "REPAIR_GRACE_SECONDS": 120,
    # --- experiments ---
    "EXPERIMENT_ALPHA": 0.05,
    "EXPERIMENT_TAU": 0.03,
    "EXPERIMENT_MIN_TRIALS": 100,
    # The sample size is planned in viewers (the unit arms are assigned by): the independent-trials
    # lists × the design effect ÷ lists per viewer, both measured by the analysis. Until every arm
    # has this many viewers the measured design effect is too noisy and the prior below is used
    # (the simulated world measures 1.85–2.1; docs/releases.md). "No difference" is only said once
    # every arm has the planned viewers with a measured design effect.
    "EXPERIMENT_DESIGN_EFFECT_MIN_VIEWERS": 100,
    "EXPERIMENT_PRIOR_DESIGN_EFFECT": 2.0,
    "EXPERIMENT_GUARDRAILS": {"max_error_rate": 0.02, "max_p99_ms": 300.0, "max_fallback_rate": 0.2},
    # --- shadow ---
    "SHADOW_K": 20,
    "SHADOW_SAMPLE_RATE": 1.0,  # share of mirrored requests the shadow computes
    # --- notifications: besides monitoring's enabled channels, these addresses and webhook URLs
    # hear about every release event (webhooks signed as monitoring signs them) ---
    "NOTIFY_EMAILS": [],
    "NOTIFY_WEBHOOKS": [],
}


def release_setting(name: str) -> Any:
    """One knob: ``settings.RECOMMENDER['RELEASES'][name]`` when set, else the default above."""
    overrides = (getattr(settings, "RECOMMENDER", {}) or {}).get("RELEASES") or {}
    if name in overrides:
        return overrides[name]
    if name not in DEFAULTS:
        raise KeyError(f"unknown releases setting '{name}'")
    return DEFAULTS[name]
