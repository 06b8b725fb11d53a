"""Monitoring's cards on the portal's dashboard: service health, SLO budgets, incidents, drift."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest
from django.utils import timezone

from monitoring import selectors
from monitoring.services.slo import slo_status


def _pct(value: float | None) -> str:
    return "no data" if value is None else f"{value:.2%}"


def cards(request: HttpRequest) -> list[dict]:
    now = timezone.now()
    hour = selectors.telemetry_window(since=now - timedelta(hours=1), until=now, source="client")
    out = [
        {"title": "Availability, last hour (200 within 600 ms)",
         "value": "no data" if hour.get("no_data") else _pct(hour["availability"]),
         "link": "monitoring:dashboard"},
        {"title": "Active incidents", "value": selectors.incident_list(filters={"active": True}).count(),
         "link": "monitoring:incidents"},
    ]
    for slo in selectors.slo_list(enabled_only=True):
        status = slo_status(slo=slo, now=now)
        out.append({"title": f"SLO {slo.name}: budget left", "value": _pct(status["budget_remaining"]),
                    "link": "monitoring:slos"})
    drift = selectors.drift_report_list().first()
    out.append({"title": "Latest drift report", "value": "none yet" if drift is None else
                f"{drift.get_status_display()} ({drift.drifted_features}/{drift.tested_features})",
                "link": "monitoring:drift"})
    return out


def charts(request: HttpRequest) -> list[dict]:
    """The last 24 hours of the service, per hour, on the portal's dashboard (hours without requests
    are gaps: no data is not zero)."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = now - timedelta(hours=24)
    points = {p["time"]: p for p in selectors.telemetry_series(since=since, until=now, step_minutes=60)}
    hours = [since + timedelta(hours=i) for i in range(24)]
    labels = [f"{h:%H:00}" for h in hours]

    def series(key: str, scale: float = 1.0) -> list:
        return [None if h not in points or points[h].get(key) is None else round(points[h][key] * scale, 3)
                for h in hours]

    return [
        {"title": "Recommendation requests per hour (platform side)", "type": "line", "link": "monitoring:dashboard",
         "x_title": "hour (UTC)", "y_title": "requests", "y_unit": "per hour", "y_integer": True,
         "empty": "No data yet — the platform's recommendation requests in the last 24 hours are counted here "
                  "(the simulator or the event stream sends them).",
         "data": {"labels": labels, "datasets": [{"label": "requests", "data": series("requests")},
                                                 {"label": "errors", "data": series("errors"), "tone": "bad"}]}},
        {"title": "Availability per hour", "type": "line", "link": "monitoring:slos",
         "x_title": "hour (UTC)", "y_title": "availability", "y_unit": "%", "y_max": 100,
         "description": "Share of requests answered with status 200 within 600 ms; hours without requests are gaps.",
         "empty": "No data yet — availability is measured on the platform's recommendation requests.",
         "data": {"labels": labels, "datasets": [{"label": "availability", "data": series("availability", 100)}]}},
        {"title": "p95 latency per hour", "type": "line", "link": "monitoring:slos",
         "x_title": "hour (UTC)", "y_title": "p95 latency", "y_unit": "ms",
         "description": "The platform waits at most 600 ms.",
         "empty": "No data yet — latency is measured on the platform's recommendation requests.",
         "data": {"labels": labels, "datasets": [{"label": "p95 latency", "data": series("latency_p95_ms")}]}},
    ]
