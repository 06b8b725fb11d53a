"""The monitoring section of the portal's sidebar."""

from __future__ import annotations

from django.urls import reverse_lazy


def active_incidents_badge(request) -> str:
    """Active incidents, shown beside the Incidents link."""
    from monitoring import selectors

    if not request.user.is_authenticated:
        return ""
    count = selectors.incident_list(filters={"active": True}).count()
    return str(count) if count else ""


def sections(request) -> list[dict]:
    return [
        {
            "title": "Monitoring",
            "separator": True,
            "collapsible": True,
            "items": [
                {"title": "Health dashboard", "icon": "monitoring", "link": reverse_lazy("monitoring:dashboard")},
                {"title": "Incidents", "icon": "e911_emergency", "link": reverse_lazy("monitoring:incidents"),
                 "badge": "monitoring.navigation.active_incidents_badge"},
                {"title": "SLOs and error budgets", "icon": "speed", "link": reverse_lazy("monitoring:slos")},
                {"title": "Online quality", "icon": "thumb_up", "link": reverse_lazy("monitoring:online_quality")},
                {"title": "Data quality", "icon": "fact_check", "link": reverse_lazy("monitoring:data_quality")},
                {"title": "Drift", "icon": "compare_arrows", "link": reverse_lazy("monitoring:drift")},
                {"title": "Feedback loops", "icon": "autorenew", "link": reverse_lazy("monitoring:feedback")},
                {"title": "Alert rules", "icon": "notifications_active", "link": reverse_lazy("monitoring:rules")},
                {"title": "Prometheus metrics", "icon": "data_object", "link": "/metrics"},
            ],
        }
    ]
