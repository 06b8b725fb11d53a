"""The metrics alert rules can watch: name → a function of the window and the rule's params.

Each returns a ``MetricValue``: ``value`` None means no data in the window (reported as such,
never as healthy). ``evidence`` is what an incident shows: the figures behind the value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from monitoring import selectors
from monitoring.conf import monitoring_setting
from monitoring.models import SLO, DataQualityReport, DriftReport, TelemetryMinute
from portal.errors import ValidationError


@dataclass(frozen=True)
class MetricValue:
    value: float | None
    evidence: dict = field(default_factory=dict)
    # Why a value past the rule's threshold is still too little evidence to fire (a burn rate from a
    # handful of requests, a gap the traffic's own rate makes ordinary); "" when the value stands.
    held: str = ""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    label: str
    unit: str
    fn: Callable[..., MetricValue]
    params: dict[str, str]


def _slo(params: dict) -> SLO:
    name = params.get("slo")
    slo = SLO.objects.filter(name=name).first()
    if slo is None:
        raise ValidationError(f"no SLO named {name!r}", detail={"param": "slo"})
    return slo


def _burn_tier(params: dict):
    from monitoring.services.slo import burn_tier

    slo = _slo(params)
    try:
        return slo, burn_tier(tier=str(params["tier"]), period_days=slo.window_days)
    except ValueError as exc:
        raise ValidationError(str(exc), detail={"param": "tier"})


def rule_window_threshold(*, metric: str, params: dict, window_minutes: int, threshold: float) -> tuple[int, float]:
    """The window and threshold a rule is evaluated with: its own, except for a burn-rate rule that
    names a ``tier``, whose long window and factor follow from its SLO's period (``slo_burn_tiers``)."""
    if metric == "slo_burn_rate" and (params or {}).get("tier"):
        _, tier = _burn_tier(params)
        return tier.long_minutes, tier.factor
    return window_minutes, threshold


def slo_burn_rate(*, since: datetime, until: datetime, params: dict) -> MetricValue:
    """Multi-window burn rate: the smaller of the burn over the rule's window and over the short
    window, so ``> factor`` means both windows burn faster than the factor. With ``tier`` (fast, slow,
    leak) both windows come from the SLO's period; otherwise ``short_window_minutes`` (default 1/12)."""
    from monitoring.services.slo import slo_burn_rate as burn

    tier = None
    if params.get("tier"):
        slo, tier = _burn_tier(params)
        long_minutes, short_minutes = tier.long_minutes, tier.short_minutes
    else:
        slo = _slo(params)
        long_minutes = int((until - since).total_seconds() // 60)
        short_minutes = int(params.get("short_window_minutes") or max(1, long_minutes // 12))
    long_rate, long_figures = burn(slo=slo, minutes=long_minutes, now=until)
    # Minimum evidence (MONITORING's BURN_SHORT_MIN_REQUESTS): a short window of a few requests says
    # nothing about whether the burn goes on, so it is widened until it holds enough (at most the long window).
    min_short = int(params.get("short_min_requests", monitoring_setting("BURN_SHORT_MIN_REQUESTS")) or 0)
    widened = short_minutes
    short_rate, short_figures = burn(slo=slo, minutes=widened, now=until)
    while short_figures["requests"] < min_short and widened < long_minutes:
        widened = min(long_minutes, widened * 2)
        short_rate, short_figures = burn(slo=slo, minutes=widened, now=until)
    if widened != short_minutes:
        short_figures = {**short_figures, "widened_from_minutes": short_minutes, "min_requests": min_short}
    evidence = {"slo": str(slo), "objective": slo.objective, "long_window": long_figures, "short_window": short_figures}
    if tier is not None:
        evidence["tier"] = tier.as_dict()
    if long_rate is None or short_rate is None:
        return MetricValue(None, evidence)
    return MetricValue(min(long_rate, short_rate), evidence, held=_burn_held(slo, long_figures, params, evidence))


def _burn_held(slo: SLO, figures: dict, params: dict, evidence: dict) -> str:
    """Minimum evidence (MONITORING's BURN_ALPHA): the long window's bad requests must be significantly
    more than the error budget allows — exact one-sided binomial test of H0 "bad share ≤ budget"."""
    alpha = params.get("alpha", monitoring_setting("BURN_ALPHA"))
    if alpha is None:
        return ""
    from scipy.stats import binom

    total = int(figures["requests"])
    bad = int(round(total - float(figures["good"])))
    p_value = float(binom.sf(bad - 1, total, slo.error_budget)) if bad > 0 else 1.0
    evidence["significance"] = {"bad": bad, "requests": total, "error_budget": slo.error_budget,
                                "p_value": p_value, "alpha": float(alpha)}
    if p_value < float(alpha):
        return ""
    return (f"{bad} bad of {total} requests in the long window is not significantly more than the "
            f"{slo.error_budget:.2%} budget (binomial p={p_value:.3g} ≥ {float(alpha):g})")


def _telemetry(since: datetime, until: datetime, params: dict) -> dict:
    return selectors.telemetry_window(
        since=since, until=until, source=params.get("source", TelemetryMinute.Source.CLIENT),
        model_version_id=params.get("model_version_id"), arm=params.get("arm"),
    )


def _telemetry_metric(key: str) -> Callable[..., MetricValue]:
    def fn(*, since: datetime, until: datetime, params: dict) -> MetricValue:
        summary = _telemetry(since, until, params)
        evidence = {k: summary.get(k) for k in ("requests", "error_rate", "availability", "latency_p50_ms",
                                                 "latency_p95_ms", "latency_p99_ms", "personalization_rate",
                                                 "fallback_rate", "fallback_reasons", "status_counts", "source")}
        if summary.get("no_data"):
            return MetricValue(None, evidence)
        return MetricValue(summary.get(key), evidence)

    fn.__doc__ = f"``{key}`` of the telemetry rollups in the window."
    return fn


def online_quality_rate(*, since: datetime, until: datetime, params: dict) -> MetricValue:
    """Share of served lists followed by a watch within the online-quality window. The window
    ends one attribution window before now, so every list counted had its full chance."""
    from monitoring.services.quality import online_quality

    groups = online_quality(
        since=since, until=until, group_by=(), source=params.get("source", "server"),
        window_minutes=params.get("window_minutes"),
        model_version_ids=[params["model_version_id"]] if params.get("model_version_id") else None,
        now=until,
    )
    if not groups:
        return MetricValue(None, {"trials": 0})
    g = groups[0]
    return MetricValue(g.rate, {"trials": g.trials, "successes": g.successes, "mean_rating": g.mean_rating})


def quarantine_rate(*, since: datetime, until: datetime, params: dict) -> MetricValue:
    """Quarantined / read lines that arrived in the window (the ingestion sources' counters)."""
    from monitoring.services.data_quality import quarantine_rate_by_arrival

    figures = quarantine_rate_by_arrival(since=since)
    return MetricValue(figures["rate"], {"read": figures["read"], "quarantined": figures["quarantined"]})


def freshness_seconds(*, since: datetime, until: datetime, params: dict) -> MetricValue:
    """Seconds since the last event of ``event_type`` (rating, watch, recommendation, prediction)."""
    from monitoring import sources

    kind = params.get("event_type", "rating")
    times = sources.last_event_times()
    if kind not in times:
        raise ValidationError(f"unknown event_type {kind!r}", detail={"allowed": sorted(times)})
    last = times[kind]
    if last is None:
        return MetricValue(None, {"event_type": kind, "last_event": None})
    gap = (until - last).total_seconds()
    evidence = {"event_type": kind, "last_event": last.isoformat()}
    return MetricValue(gap, evidence, held=_freshness_held(kind, last, gap, params, evidence))


def _freshness_held(kind: str, last: datetime, gap: float, params: dict, evidence: dict) -> str:
    """Minimum evidence (MONITORING's FRESHNESS_ALPHA): a gap is stale only when the traffic's own rate,
    over FRESHNESS_RATE_WINDOW_MINUTES before the last event, makes a gap that long improbable
    (Poisson: P(no event for ``gap``) = exp(-rate · gap) < alpha). Measured up to the last event, so a
    stream that stopped keeps the rate it had and its gap soon becomes improbable."""
    import math
    from datetime import timedelta

    from monitoring import sources

    alpha = params.get("alpha", monitoring_setting("FRESHNESS_ALPHA"))
    if alpha is None:
        return ""
    minutes = float(params.get("rate_window_minutes", monitoring_setting("FRESHNESS_RATE_WINDOW_MINUTES")))
    events = sources.event_count(event_type=kind, since=last - timedelta(minutes=minutes), until=last)
    per_second = events / (minutes * 60)
    p_value = math.exp(-per_second * gap)
    expected_gap = -math.log(float(alpha)) / per_second if per_second else None
    evidence["traffic"] = {"events": events, "rate_window_minutes": minutes, "per_minute": per_second * 60,
                           "p_value": p_value, "alpha": float(alpha), "improbable_after_seconds": expected_gap}
    if p_value < float(alpha):
        return ""
    return (f"a {gap / 60:.0f}-minute gap is ordinary at {per_second * 3600:.1f} {kind} events an hour "
            f"(P(no event) = {p_value:.3g} ≥ {float(alpha):g})")


def drift_features_drifted(*, since: datetime, until: datetime, params: dict) -> MetricValue:
    """Features drifted in the latest drift report made in the window (no report: no data)."""
    report = (
        DriftReport.objects.filter(created_at__gte=since, created_at__lte=until)
        .exclude(status__in=[DriftReport.Status.NO_DATA, DriftReport.Status.NO_REFERENCE])
        .order_by("-created_at", "-id").first()
    )
    if report is None:
        return MetricValue(None, {"report": None})
    drifted = list(report.results.filter(drifted=True).values(
        "feature", "test", "score", "threshold", "p_value", "n_reference", "n_current"))
    return MetricValue(float(report.drifted_features), {
        "report_id": report.pk, "status": report.status, "reference": report.reference,
        "current": [report.current_since.isoformat(), report.current_until.isoformat()], "drifted": drifted,
    })


def feedback_adverse_trends(*, since: datetime, until: datetime, params: dict) -> MetricValue:
    """How many feedback-loop metrics show a significant adverse trend (Mann–Kendall)."""
    from monitoring.services.feedback import feedback_trends

    trends = feedback_trends(until=until, points=params.get("points"), metrics=params.get("metrics"),
                             alpha=params.get("alpha"), min_relative_change=params.get("min_relative_change", 0.05))
    tested = {k: v for k, v in trends.items() if not v["no_data"]}
    if not tested:
        return MetricValue(None, {"trends": trends})
    adverse = {k: v for k, v in tested.items() if v["adverse"]}
    return MetricValue(float(len(adverse)), {"adverse": sorted(adverse), "trends": trends})


def data_quality_issues(*, since: datetime, until: datetime, params: dict) -> MetricValue:
    """Issues in the latest data-quality report made in the window (no data: no report or empty window)."""
    report = DataQualityReport.objects.filter(created_at__gte=since, created_at__lte=until).order_by(
        "-created_at", "-id").first()
    if report is None or report.status == DataQualityReport.Status.NO_DATA:
        return MetricValue(None, {"report_id": report.pk if report else None})
    return MetricValue(float(len(report.issues)), {"report_id": report.pk, "issues": report.issues})


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in [
        MetricSpec("slo_burn_rate", "SLO burn rate (long and short window)", "×", slo_burn_rate,
                   {"slo": "SLO name", "tier": "fast|slow|leak: windows and factor from the SLO's period "
                                               "(the rule's own window and threshold are then kept in step)",
                    "short_window_minutes": "without a tier: the short window (default window/12)"}),
        MetricSpec("availability", "availability (status 200 within 600 ms)", "ratio",
                   _telemetry_metric("availability"), {"source": "client|server", "model_version_id": "", "arm": ""}),
        MetricSpec("error_rate", "error rate (status other than 200)", "ratio", _telemetry_metric("error_rate"),
                   {"source": "client|server", "model_version_id": "", "arm": ""}),
        MetricSpec("latency_p95_ms", "latency p95", "ms", _telemetry_metric("latency_p95_ms"),
                   {"source": "client|server", "model_version_id": "", "arm": ""}),
        MetricSpec("latency_p99_ms", "latency p99", "ms", _telemetry_metric("latency_p99_ms"),
                   {"source": "client|server", "model_version_id": "", "arm": ""}),
        MetricSpec("personalization_rate", "personalization rate (answers not from the fallback)", "ratio",
                   _telemetry_metric("personalization_rate"), {"source": "server", "model_version_id": "", "arm": ""}),
        MetricSpec("fallback_rate", "fallback rate", "ratio", _telemetry_metric("fallback_rate"),
                   {"source": "server", "model_version_id": "", "arm": ""}),
        MetricSpec("online_quality", "online quality (lists followed by a watch)", "ratio", online_quality_rate,
                   {"source": "server|client|auto", "window_minutes": "", "model_version_id": ""}),
        MetricSpec("quarantine_rate", "quarantine rate", "ratio", quarantine_rate, {}),
        MetricSpec("freshness_seconds", "seconds since the last event", "s", freshness_seconds,
                   {"event_type": "rating|watch|recommendation|prediction"}),
        MetricSpec("drift_features_drifted", "drifted features in the latest drift report", "features",
                   drift_features_drifted, {}),
        MetricSpec("feedback_adverse_trends", "feedback-loop metrics trending the wrong way", "metrics",
                   feedback_adverse_trends, {"metrics": "list", "points": "", "alpha": "", "min_relative_change": ""}),
        MetricSpec("data_quality_issues", "issues in the latest data-quality report", "issues",
                   data_quality_issues, {}),
    ]
}


def metric_evaluate(*, metric: str, since: datetime, until: datetime, params: dict | None = None) -> MetricValue:
    spec = METRICS.get(metric)
    if spec is None:
        raise ValidationError(f"unknown metric {metric!r}", detail={"allowed": sorted(METRICS)})
    return spec.fn(since=since, until=until, params=params or {})


def metric_choices() -> list[tuple[str, str]]:
    return [(name, f"{name} — {spec.label}") for name, spec in METRICS.items()]
