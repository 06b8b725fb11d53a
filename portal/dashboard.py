"""Dashboard figures: the portal's own, plus what each app's ``dashboard.py`` contributes.

An app's ``dashboard.py`` defines ``cards(request) -> list[dict]`` and may define
``charts(request) -> list[dict]``:

- card: ``{"title": str, "value": int | float | str, "link": "<url name>" or "/path"
  (optional), "description": str (optional), "icon": "<material symbol>" (optional)}``
- chart: ``{"title": str, "type": "bar" | "line", "data": {"labels": [...], "datasets":
  [{"label": str, "data": [numbers]}, ...]}, "description": str (optional)}`` — Chart.js data,
  drawn by unfold's bundled Chart.js (no CDN).

A contribution that raises is logged and shown as an error card, so one app's bug never takes
the dashboard down for everyone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from portal import selectors
from portal.contrib import app_modules
from portal.models import ActivityLogEntry

logger = logging.getLogger(__name__)

# Unfold resolves ``var(--color-…)`` in datasets to the theme's colours.
_PALETTE = ["var(--color-primary-600)", "var(--color-primary-300)", "var(--color-base-400)", "var(--color-primary-800)"]


def _portal_cards(request: HttpRequest) -> list[dict]:
    counts = selectors.review_request_status_counts()
    last = selectors.activity_log_list().values("created_at").first()
    check = selectors.activity_log_last_check()
    if check is None:
        chain_value, chain_description = "not checked yet", "runs nightly (beat), or: manage.py verify_activity_log"
    elif check["result"].get("ok"):
        chain_value = "intact"
        chain_description = f"{intcomma(check['result'].get('checked', 0))} entries, checked {check['at']:%Y-%m-%d %H:%M}"
    else:
        chain_value = "BROKEN"
        chain_description = str(check["result"].get("problem"))
    return [
        {
            "title": "Reviews waiting for you",
            "value": selectors.review_request_inbox(user=request.user).count(),
            "link": "portal:inbox",
            "icon": "inbox",
            "description": "pending, assigned to you or your role",
        },
        {
            "title": "Pending reviews (everyone)",
            "value": counts.get("pending", 0),
            "link": "portal:inbox",
            "icon": "pending_actions",
            "description": f"{counts.get('approved', 0)} approved, {counts.get('rejected', 0)} rejected so far",
        },
        {
            "title": "Activity log entries",
            "value": ActivityLogEntry.objects.count(),
            "link": "portal:activity",
            "icon": "history",
            "description": f"last at {last['created_at']:%Y-%m-%d %H:%M}" if last else "nothing recorded yet",
        },
        {
            "title": "Activity log chain",
            "value": chain_value,
            "link": "portal:activity",
            "icon": "verified" if chain_value != "BROKEN" else "gpp_bad",
            "description": chain_description,
        },
    ]


def _portal_charts(request: HttpRequest) -> list[dict]:
    daily = selectors.activity_log_daily_counts(days=14)
    counts = selectors.review_request_status_counts()
    return [
        {
            "title": "Activity, last 14 days",
            "type": "bar",
            "data": {
                "labels": [day[5:] for day, _ in daily],
                "datasets": [{"label": "entries", "data": [n for _, n in daily]}],
            },
        },
        {
            "title": "Reviews by status",
            "type": "bar",
            "data": {
                "labels": [status.replace("_", " ") for status in counts],
                "datasets": [{"label": "reviews", "data": list(counts.values())}],
            },
        },
    ]


def _href(link: str | None) -> str | None:
    if not link:
        return None
    if link.startswith(("/", "http://", "https://")):
        return link
    try:
        return reverse(link)
    except NoReverseMatch:
        logger.warning("dashboard link %r does not resolve", link)
        return None


def _card(raw: dict, source: str) -> dict:
    value = raw.get("value")
    return {
        "title": str(raw.get("title", "")),
        "value": intcomma(value) if isinstance(value, int | float) and not isinstance(value, bool) else value,
        "href": _href(raw.get("link")),
        "description": raw.get("description", ""),
        "icon": raw.get("icon", ""),
        "source": source,
        "error": False,
    }


def _chart(raw: dict, source: str) -> dict:
    data = json.loads(json.dumps(raw.get("data") or {"labels": [], "datasets": []}))
    for i, dataset in enumerate(data.get("datasets", [])):
        color = _PALETTE[i % len(_PALETTE)]
        dataset.setdefault("backgroundColor", color)
        dataset.setdefault("borderColor", color)
    chart_type = raw.get("type", "bar")
    return {
        "title": str(raw.get("title", "")),
        "type": chart_type if chart_type in ("bar", "line") else "bar",
        "data_json": json.dumps(data),
        "description": raw.get("description", ""),
        "href": _href(raw.get("link")),
        "source": source,
    }


def _collect(source: str, fn: Callable[[HttpRequest], list[dict]], request: HttpRequest,
             make: Callable[[dict, str], dict], errors: list[dict]) -> list[dict]:
    try:
        return [make(raw, source) for raw in fn(request)]
    except Exception:  # one app's failure must not take the dashboard down
        logger.exception("dashboard contribution of %s failed", source)
        errors.append({"title": f"{source}: figures unavailable", "value": "error", "href": None,
                       "description": "see the server log", "icon": "error", "source": source, "error": True})
        return []


def dashboard_context(request: HttpRequest) -> dict:
    """``usher_cards``, ``usher_charts`` and ``usher_recent_activity`` for the dashboard template."""
    errors: list[dict] = []
    cards = _collect("portal", _portal_cards, request, _card, errors)
    charts = _collect("portal", _portal_charts, request, _chart, errors)
    for module in app_modules("dashboard"):
        source = module.__name__.split(".")[0]
        cards += _collect(source, module.cards, request, _card, errors)
        if hasattr(module, "charts"):
            charts += _collect(source, module.charts, request, _chart, errors)
    recent = list(selectors.activity_log_list()[:10])
    return {"usher_cards": cards + errors, "usher_charts": charts, "usher_recent_activity": recent}
