"""Reads of the monitoring app: its records, and figures aggregated from the telemetry rollups."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta

import numpy as np
from django.db.models import QuerySet

from monitoring.drift_metrics import DRIFT_METRICS
from monitoring.models import (
    LATENCY_BUCKETS_MS,
    SLO,
    AlertRule,
    DataQualityReport,
    DriftFeature,
    DriftReport,
    FeedbackLoopSnapshot,
    Incident,
    Notification,
    NotificationChannel,
    TelemetryMinute,
)
from monitoring.stats import bucket_count_at_most, bucket_quantile

N_BUCKETS = len(LATENCY_BUCKETS_MS) + 1


def telemetry_minute_list(*, filters: dict | None = None) -> QuerySet[TelemetryMinute]:
    filters = filters or {}
    qs = TelemetryMinute.objects.all()
    if filters.get("source"):
        qs = qs.filter(source=filters["source"])
    if filters.get("since"):
        qs = qs.filter(minute__gte=filters["since"])
    if filters.get("until"):
        qs = qs.filter(minute__lt=filters["until"])
    if filters.get("model_version_id") not in (None, ""):
        qs = qs.filter(model_version_id=filters["model_version_id"])
    if filters.get("arm") not in (None, ""):
        qs = qs.filter(arm=filters["arm"])
    return qs.order_by("minute", "model_version_id", "arm")


_WINDOW_FIELDS = ("minute", "requests", "ok", "errors", "available", "latency_buckets", "personalized",
                  "fallback_reasons", "status_counts", "latency_sum_ms", "latency_p50_ms", "latency_p95_ms",
                  "latency_p99_ms", "model_version_id", "model_version", "arm")


def _summarise(rows: list[dict]) -> dict:
    buckets = np.zeros(N_BUCKETS, dtype="float64")
    requests = ok = available = 0
    personalized = 0
    personal_known = 0
    reasons: Counter = Counter()
    statuses: Counter = Counter()
    latency_sum = 0.0
    for row in rows:
        requests += row["requests"]
        ok += row["ok"]
        available += row["available"]
        latency_sum += row["latency_sum_ms"] or 0.0
        if row["latency_buckets"]:
            buckets[: len(row["latency_buckets"])] += row["latency_buckets"]
        if row["personalized"] is not None:
            personalized += row["personalized"]
            personal_known += row["ok"]
        reasons.update(row["fallback_reasons"] or {})
        statuses.update(row["status_counts"] or {})
    if requests == 0:
        return {"requests": 0, "no_data": True}
    return {
        "no_data": False,
        "requests": requests,
        "ok": ok,
        "errors": requests - ok,
        "error_rate": (requests - ok) / requests,
        "available": available,
        "availability": available / requests,
        "latency_mean_ms": latency_sum / requests,
        "latency_p50_ms": bucket_quantile(buckets, LATENCY_BUCKETS_MS, 0.50),
        "latency_p95_ms": bucket_quantile(buckets, LATENCY_BUCKETS_MS, 0.95),
        "latency_p99_ms": bucket_quantile(buckets, LATENCY_BUCKETS_MS, 0.99),
        "latency_buckets": buckets.astype(int).tolist(),
        "personalization_rate": (personalized / personal_known) if personal_known else None,
        "fallback_rate": ((personal_known - personalized) / personal_known) if personal_known else None,
        "fallback_reasons": dict(reasons),
        "status_counts": dict(statuses),
    }


def telemetry_window(*, since: datetime, until: datetime, source: str = TelemetryMinute.Source.CLIENT,
                     model_version_id: int | None = None, arm: str | None = None) -> dict:
    """Totals of the rollups in ``[since, until)``: requests, error rate, availability, latency
    quantiles (from the merged histograms), personalization and fallback rates.
    ``{"requests": 0, "no_data": True}`` when there were no requests."""
    rows = list(
        telemetry_minute_list(filters={"source": source, "since": since, "until": until,
                                       "model_version_id": model_version_id, "arm": arm})
        .values(*_WINDOW_FIELDS)
    )
    summary = _summarise(rows)
    summary.update({"since": since, "until": until, "source": source})
    return summary


def telemetry_good_total(*, since: datetime, until: datetime, source: str, kind: str,
                         latency_threshold_ms: float) -> tuple[float, int]:
    """(good requests, all requests) in ``[since, until)`` for an SLO of ``kind``."""
    rows = telemetry_minute_list(filters={"source": source, "since": since, "until": until})
    if kind == SLO.Kind.AVAILABILITY:
        total = good = 0
        for requests, available in rows.values_list("requests", "available"):
            total += requests
            good += available
        return float(good), total
    buckets = np.zeros(N_BUCKETS, dtype="float64")
    for (values,) in rows.values_list("latency_buckets"):
        if values:
            buckets[: len(values)] += values
    total = int(buckets.sum())
    return float(bucket_count_at_most(buckets, LATENCY_BUCKETS_MS, latency_threshold_ms)), total


def telemetry_series(*, since: datetime, until: datetime, source: str = TelemetryMinute.Source.CLIENT,
                     step_minutes: int = 1, by_version: bool = False) -> list[dict]:
    """Points of ``step_minutes`` from the rollups, for charts; minutes without requests are left
    out (no data is not zero). With ``by_version``, one series per model version and arm."""
    step = timedelta(minutes=max(1, step_minutes))
    rows = telemetry_minute_list(filters={"source": source, "since": since, "until": until}).values(*_WINDOW_FIELDS)
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        offset = (row["minute"] - since) // step
        start = since + offset * step
        key = (start, row["model_version_id"], row["model_version"], row["arm"]) if by_version else (start,)
        groups.setdefault(key, []).append(row)
    points = []
    for key in sorted(groups, key=lambda k: (k[0], str(k[1:]))):
        summary = _summarise(groups[key])
        if step_minutes <= 1 and len(groups[key]) == 1:
            only = groups[key][0]
            # A single minute keeps its exact percentiles rather than the histogram's estimate.
            summary.update({k: only[k] for k in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")})
        summary.pop("latency_buckets", None)
        point = {"time": key[0], **summary}
        if by_version:
            point.update({"model_version_id": key[1], "model_version": key[2], "arm": key[3]})
        points.append(point)
    return points


def slo_list(*, enabled_only: bool = False) -> QuerySet[SLO]:
    qs = SLO.objects.all()
    return qs.filter(enabled=True) if enabled_only else qs


def alert_rule_list(*, filters: dict | None = None) -> QuerySet[AlertRule]:
    filters = filters or {}
    qs = AlertRule.objects.select_related("owner").prefetch_related("channels")
    for key in ("state", "severity", "metric"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    if filters.get("enabled") is not None:
        qs = qs.filter(enabled=filters["enabled"])
    return qs.order_by("name")


def incident_list(*, filters: dict | None = None) -> QuerySet[Incident]:
    filters = filters or {}
    qs = Incident.objects.select_related("rule", "acknowledged_by", "resolved_by", "review")
    if filters.get("status"):
        statuses = filters["status"] if isinstance(filters["status"], list | tuple) else [filters["status"]]
        qs = qs.filter(status__in=statuses)
    if filters.get("active"):
        qs = qs.exclude(status=Incident.Status.RESOLVED)
    for key in ("severity",):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    if filters.get("rule"):
        qs = qs.filter(rule_id=filters["rule"])
    if filters.get("metric"):
        qs = qs.filter(rule__metric=filters["metric"])
    return qs.order_by("-opened_at", "-id")


def incident_timeline(*, incident: Incident) -> QuerySet:
    """The incident's kept timeline: its activity-log entries, oldest first."""
    from portal import selectors as portal_selectors

    return portal_selectors.activity_log_list(
        filters={"target_type": "monitoring.incident", "target_id": incident.pk}
    ).order_by("seq")


def notification_channel_list() -> QuerySet[NotificationChannel]:
    return NotificationChannel.objects.order_by("name")


def notification_list(*, filters: dict | None = None) -> QuerySet[Notification]:
    filters = filters or {}
    qs = Notification.objects.select_related("incident", "channel")
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("incident"):
        qs = qs.filter(incident_id=filters["incident"])
    return qs.order_by("-created_at", "-id")


def data_quality_report_list() -> QuerySet[DataQualityReport]:
    return DataQualityReport.objects.order_by("-window_end", "-id")


def drift_feature_list() -> QuerySet[DriftFeature]:
    return DriftFeature.objects.order_by("name")


def drift_report_list() -> QuerySet[DriftReport]:
    return DriftReport.objects.prefetch_related("results").order_by("-created_at", "-id")


# --- the drift score: one reading direction for every test --------------------------------------------
P_VALUE_TESTS = ("ks", "chi2")
# Charts draw drift scores above this at the cap (the table and the tooltip give the true value): one
# feature at p = 1e-300 (a score of 150 against alpha 0.01) would otherwise flatten every other line.
DRIFT_CHART_CAP = 5.0
_TEST_NAMES = {"ks": "Kolmogorov–Smirnov", "chi2": "chi-square"}  # the distances: their DRIFT_METRICS title
_SMALLEST_P = 1e-300


def drift_score(*, test: str, score: float | None, threshold: float | None,
                p_value: float | None = None) -> float | None:
    """How far a feature has drifted, on one scale for every test: higher is more drift, above 1 is
    drifted, 1 is the threshold.

    - p-value tests (KS, chi-square; drifted when p < alpha): −log10(p) ÷ −log10(alpha). p = alpha
      gives 1, p = alpha² gives 2; p = 1 gives 0.
    - distances (Wasserstein ÷ std, Jensen–Shannon, PSI; drifted when distance > threshold):
      distance ÷ threshold.

    None when the feature was not tested (no data on one side) or the threshold cannot be read."""
    if score is None or threshold is None:
        return None
    if test in P_VALUE_TESTS:
        if not 0 < threshold < 1:
            return None
        p = min(max(p_value if p_value is not None else score, _SMALLEST_P), 1.0)
        return abs(math.log10(p) / math.log10(threshold))
    if threshold <= 0:
        return None
    return score / threshold


def drift_test_label(test: str) -> str:
    metric = DRIFT_METRICS.get(test)
    return metric.title if metric is not None else _TEST_NAMES.get(test, test)


def drift_threshold_text(*, test: str, threshold: float | None) -> str:
    """The rule the score's 1 stands for: "p < 0.01" or "Jensen–Shannon > 0.1"."""
    if threshold is None:
        return "–"
    if test in P_VALUE_TESTS:
        return f"p < {threshold:g}"
    return f"{drift_test_label(test)} > {threshold:g}"


def drift_result_rows(*, report: DriftReport) -> list[dict]:
    """A report's results as the report page shows them, each with its drift score (above 1 =
    drifted), most drifted first."""
    rows = []
    for r in report.results.all():
        rows.append({
            "feature": r.feature, "kind": r.kind, "test": r.test, "test_label": drift_test_label(r.test),
            "statistic": r.statistic, "p_value": r.p_value if r.test in P_VALUE_TESTS else None,
            "threshold_text": drift_threshold_text(test=r.test, threshold=r.threshold),
            "drift_score": drift_score(test=r.test, score=r.score, threshold=r.threshold, p_value=r.p_value),
            "drifted": r.drifted, "n_reference": r.n_reference, "n_current": r.n_current, "note": r.note,
            "histogram": r.histogram,
        })
    rows.sort(key=lambda row: (row["drift_score"] is None, -(row["drift_score"] or 0.0), row["feature"]))
    return rows


def drift_trend(*, reports: int = 48) -> dict:
    """Each feature's drift score over the last ``reports`` reports, oldest first: ``{"reports":
    [{id, time, status}], "features": {feature: [{time, report, test, score, drift_score,
    drifted}]}}``."""
    chosen = list(drift_report_list()[:reports])[::-1]
    series: dict[str, list] = {}
    for report in chosen:
        for r in report.results.all():
            series.setdefault(r.feature, []).append({
                "time": report.created_at, "report": report.pk, "test": r.test, "score": r.score,
                "drift_score": drift_score(test=r.test, score=r.score, threshold=r.threshold, p_value=r.p_value),
                "drifted": r.drifted})
    return {"reports": [{"id": r.pk, "time": r.created_at, "status": r.status} for r in chosen],
            "features": series}


def feedback_snapshot_list(*, since: datetime | None = None, until: datetime | None = None
                           ) -> QuerySet[FeedbackLoopSnapshot]:
    qs = FeedbackLoopSnapshot.objects.all()
    if since:
        qs = qs.filter(bucket_start__gte=since)
    if until:
        qs = qs.filter(bucket_end__lte=until)
    return qs.order_by("bucket_start")
