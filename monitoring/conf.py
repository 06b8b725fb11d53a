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
