"""Dashboard figures: the portal's own, plus what each app's ``dashboard.py`` contributes."""

from __future__ import annotations

from importlib import import_module

from django.http import HttpRequest

from portal import selectors
from portal.models import ActivityLogEntry


def _portal_cards(request: HttpRequest) -> list[dict]:
    return [
        {
            "title": "Reviews waiting for you",
            "value": selectors.review_request_inbox(user=request.user).count(),
            "link": "portal:inbox",
        },
        {
            "title": "Activity log entries",
            "value": ActivityLogEntry.objects.count(),
            "link": "portal:activity",
        },
    ]


def dashboard_context(request: HttpRequest) -> dict:
    cards = _portal_cards(request)
    charts: list[dict] = []
    for app in ("recommender", "monitoring", "audits"):
        try:
            module = import_module(f"{app}.dashboard")
        except ModuleNotFoundError:
            continue
        cards.extend(module.cards(request))
        if hasattr(module, "charts"):
            charts.extend(module.charts(request))
    recent = selectors.activity_log_list()[:10]
    return {"usher_cards": cards, "usher_charts": charts, "usher_recent_activity": recent}
