"""Dashboard figures: the portal's own, plus what each app's ``dashboard.py`` contributes.

An app's ``dashboard.py`` defines ``cards(request) -> list[dict]`` and may define
``charts(request) -> list[dict]``:

- card: ``{"title": str, "value": int | float | str, "link": "<url name>" or "/path"
  (optional), "description": str (optional), "icon": "<material symbol>" (optional)}``
- chart: ``{"title": str, "type": "bar" | "line", "data": {"labels": [...], "datasets":
  [{"label": str, "data": [numbers]}, ...]}, "x_title": str, "y_title": str, "y_unit": str
  (optional), "empty": "No data yet — <why>", "zero_is_empty": bool (optional, for counts), "description": str (optional), "link": (optional)}``
  — made into a ``portal.charts.chart_spec`` (axis titles and the empty message are required) and
  drawn by ``portal/static/portal/charts.js`` with unfold's bundled Chart.js (no CDN).

A contribution that raises is logged and shown as an error card, so one app's bug never takes
the dashboard down for everyone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from portal import selectors
from portal.charts import chart_spec
from portal.contrib import app_modules
from portal.models import ActivityLogEntry

logger = logging.getLogger(__name__)



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
            "link": "portal:activity",
            "x_title": "day (month-day, UTC)",
            "y_title": "activity-log entries",
            "y_unit": "per day",
            "zero_is_empty": True,
            "empty": "No data yet — every change made by a person or a schedule is logged here.",
            "data": {
                "labels": [day[5:] for day, _ in daily],
                "datasets": [{"label": "activity-log entries", "data": [n for _, n in daily]}],
            },
        },
        {
            "title": "Reviews by status",
            "type": "bar",
            "link": "portal:inbox",
            "x_title": "status",
            "y_title": "reviews",
            "zero_is_empty": True,
            "empty": "No data yet — reviews appear when someone requests a promotion or a waiver.",
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
    data = raw.get("data") or {}
    spec = chart_spec(
        id=f"dashboard-{source}-{raw.get('title', '')}".lower(),
        title=str(raw.get("title", "")), kind=raw.get("type", "bar"),
        labels=data.get("labels") or [], datasets=data.get("datasets") or [],
        x_title=raw.get("x_title", ""), y_title=raw.get("y_title", ""), y_unit=raw.get("y_unit", ""),
        y_min=raw.get("y_min"), y_max=raw.get("y_max"), empty=raw.get("empty", ""),
        zero_is_empty=bool(raw.get("zero_is_empty")), y_integer=bool(raw.get("y_integer")),
        description=raw.get("description", ""), href=_href(raw.get("link")),
    )
    spec["source"] = source
    return spec


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
