"""Monitoring's figures as Prometheus metrics at ``/metrics`` (django-prometheus' export).

A custom collector registered with ``prometheus_client.REGISTRY`` reads the latest complete
minute of the telemetry rollups, the SLOs, open incidents and the latest drift report when
scraped (cached per process for ``MONITORING['METRICS_CACHE_SECONDS']``). A database problem
yields ``usher_monitoring_collector_up 0`` instead of a failed scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger(__name__)
_registered = False
_lock = threading.Lock()


class MonitoringCollector:
    def __init__(self) -> None:
        self._cache: tuple[float, list] | None = None

    def describe(self):
        # Describing nothing keeps registration from calling collect() (and the database) at import.
        return []

    def collect(self):
        from monitoring.conf import monitoring_setting

        ttl = float(monitoring_setting("METRICS_CACHE_SECONDS"))
        now = time.monotonic()
        with _lock:
            if self._cache is None or now - self._cache[0] > ttl:
                self._cache = (now, self._build())
            families = self._cache[1]
        yield from families

    def _build(self) -> list:
        up = GaugeMetricFamily("usher_monitoring_collector_up", "1 when monitoring's figures could be read.")
        try:
            families = _families()
            up.add_metric([], 1)
            return [up, *families]
        except Exception:  # noqa: BLE001 - a scrape must never fail because the database did
            log.exception("monitoring metrics collection failed")
            up.add_metric([], 0)
            return [up]


def _families() -> list:
    from django.db.models import Count, Max, Sum
    from django.utils import timezone

    from monitoring import selectors
    from monitoring.models import DriftReport, Incident, TelemetryMinute
    from monitoring.services.slo import slo_burn_rate, slo_status

    labels = ["source", "model_version", "arm"]
    requests = GaugeMetricFamily("usher_recommend_requests_per_minute", "Requests in the latest rolled-up minute.",
                                 labels=labels)
    errors = GaugeMetricFamily("usher_recommend_errors_per_minute", "Non-200 answers in the latest minute.",
                               labels=labels)
    availability = GaugeMetricFamily("usher_recommend_availability_ratio",
                                     "Share of status 200 within 600 ms in the latest minute.", labels=labels)
    latency = GaugeMetricFamily("usher_recommend_latency_ms", "Latency quantiles in the latest minute.",
                                labels=[*labels, "quantile"])
    personalized = GaugeMetricFamily("usher_recommend_personalization_ratio",
                                     "Share of answers not from the fallback in the latest minute.", labels=labels)
    fallbacks = GaugeMetricFamily("usher_recommend_fallbacks_per_minute", "Fallback answers by reason.",
                                  labels=[*labels, "reason"])
    totals = CounterMetricFamily("usher_recommend_requests", "Requests in all stored rollups.", labels=["source"])
    latest = TelemetryMinute.objects.aggregate(m=Max("minute"))["m"]
    if latest is not None:
        for row in TelemetryMinute.objects.filter(minute=latest):
            values = [row.source, row.model_version or "", row.arm or ""]
            requests.add_metric(values, row.requests)
            errors.add_metric(values, row.errors)
            if row.requests:
                availability.add_metric(values, row.available / row.requests)
            for q, v in (("0.5", row.latency_p50_ms), ("0.95", row.latency_p95_ms), ("0.99", row.latency_p99_ms)):
                if v is not None:
                    latency.add_metric([*values, q], v)
            if row.personalized is not None and row.ok:
                personalized.add_metric(values, row.personalized / row.ok)
            for reason, count in (row.fallback_reasons or {}).items():
                fallbacks.add_metric([*values, reason], count)
    for source, total in TelemetryMinute.objects.values("source").annotate(n=Sum("requests")).values_list("source", "n"):
        totals.add_metric([source], total or 0)

    now = timezone.now()
    sli = GaugeMetricFamily("usher_slo_sli_ratio", "Share of good requests over the SLO window.", labels=["slo"])
    budget = GaugeMetricFamily("usher_slo_error_budget_remaining_ratio", "Error budget left (1 = untouched).",
                               labels=["slo"])
    burn = GaugeMetricFamily("usher_slo_burn_rate", "Error-budget burn rate over a window.", labels=["slo", "window"])
    for slo in selectors.slo_list(enabled_only=True):
        status = slo_status(slo=slo, now=now)
        if status["sli"] is not None:
            sli.add_metric([slo.name], status["sli"])
            budget.add_metric([slo.name], status["budget_remaining"])
        for minutes in (5, 60, 360):
            rate, _ = slo_burn_rate(slo=slo, minutes=minutes, now=now)
            if rate is not None:
                burn.add_metric([slo.name, f"{minutes}m"], rate)

    incidents = GaugeMetricFamily("usher_incidents_active", "Incidents open or acknowledged.",
                                  labels=["severity", "status"])
    for severity, status, n in (
        Incident.objects.exclude(status=Incident.Status.RESOLVED).values("severity", "status")
        .annotate(n=Count("id")).values_list("severity", "status", "n")
    ):
        incidents.add_metric([severity, status], n)

    drift = GaugeMetricFamily("usher_drift_features_drifted", "Drifted features in the latest drift report.")
    drift_score = GaugeMetricFamily(
        "usher_drift_score", "Each feature's drift score in the latest drift report: higher is more drift, above 1 "
        "is drifted (-log10 p / -log10 alpha for ks and chi2, distance / threshold otherwise).",
        labels=["feature", "test"])
    report = DriftReport.objects.order_by("-created_at", "-id").first()
    if report is not None and report.created_at >= now - timedelta(days=2):
        drift.add_metric([], report.drifted_features)
        for feature, test, score, threshold, p_value in report.results.exclude(score=None).values_list(
                "feature", "test", "score", "threshold", "p_value"):
            value = selectors.drift_score(test=test, score=score, threshold=threshold, p_value=p_value)
            if value is not None:
                drift_score.add_metric([feature, test], value)
    return [requests, errors, availability, latency, personalized, fallbacks, totals, sli, budget, burn,
            incidents, drift, drift_score]


def register() -> None:
    global _registered
    with _lock:
        if _registered:
            return
        REGISTRY.register(MonitoringCollector())
        _registered = True
