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
