"""The monitoring app's knobs (``settings.MONITORING``), read through one accessor with defaults."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "AVAILABILITY_LATENCY_MS": 600,
    "ROLLUP_RECOMPUTE_MINUTES": 5,
    "ROLLUP_LATE_HOURS": 1,
    "ONLINE_QUALITY_WINDOW_MINUTES": 30,
    "ONLINE_QUALITY_MAX_LISTS": 200_000,
    "DATA_QUALITY_WINDOW_MINUTES": 60,
    "DRIFT_WINDOW_HOURS": 24,
    "DRIFT_MAX_LISTS": 20_000,
    "DRIFT_PARALLEL": True,
    # "bonferroni": a report's significance tests share each feature's alpha (alpha / features tested), so a
    # stable world raises a drift report by chance in at most alpha of reports; "none": alpha per feature
    "DRIFT_CORRECTION": "bonferroni",
    # a significant difference is drift only when its distance also exceeds the feature's large-sample
    # threshold (a clean simulated week's ratings move a little, significantly: benchmarks/calibration.py)
    "DRIFT_EFFECT_FLOOR": True,
    # Minimum evidence for a burn-rate rule (benchmarks/calibration.py: at 300 visits a day a 6-hour window
    # holds ~75 requests, and two timeouts made a burn above the factor). The long window's bad requests
    # must be significantly more than the error budget allows (exact one-sided binomial test, p < BURN_ALPHA;
    # None: off), and a short window holding fewer than BURN_SHORT_MIN_REQUESTS requests is widened (doubling,
    # at most to the long window) until it holds that many. Both are a rule's own params too (alpha,
    # short_min_requests).
    "BURN_ALPHA": 0.01,
    "BURN_SHORT_MIN_REQUESTS": 30,
    # A freshness rule fires when the gap exceeds its threshold *and* a gap that long is improbable for the
    # traffic's own rate (Poisson: P(no event in the gap) < FRESHNESS_ALPHA; None: off), the rate measured over
    # FRESHNESS_RATE_WINDOW_MINUTES before the last event. At 300 visits a day a 15-minute gap is ordinary.
    "FRESHNESS_ALPHA": 0.001,
    "FRESHNESS_RATE_WINDOW_MINUTES": 360,
    "LATE_EVENT_SECONDS": 300,
    "FEEDBACK_BUCKET_HOURS": 24,
    "FEEDBACK_TREND_POINTS": 14,
    "TREND_ALPHA": 0.05,
    "WEBHOOK_TIMEOUT_SECONDS": 5.0,
    "WEBHOOK_SECRET": "",
    "WEBHOOK_ALLOWED_HOSTS": [],
    "NOTIFY_MAX_ATTEMPTS": 5,
    "NOTIFY_RETRY_SECONDS": 30,
    "METRICS_CACHE_SECONDS": 15.0,
    "DASHBOARD_REFRESH_SECONDS": 30,
}


def monitoring_setting(name: str) -> Any:
    """One knob of ``settings.MONITORING``, falling back to the default above."""
    configured = getattr(settings, "MONITORING", None) or {}
    if name in configured:
        return configured[name]
    return DEFAULTS[name]
