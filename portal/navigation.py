"""The portal's sidebar: each app contributes its sections from its own ``navigation.py``."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse_lazy
from django.utils.module_loading import import_string

from portal.contrib import app_modules


def _portal_sections() -> list[dict]:
    return [
        {
            "title": "Usher",
            "separator": False,
            "items": [
                {"title": "Dashboard", "icon": "dashboard", "link": reverse_lazy("admin:index")},
                {
                    "title": "Review inbox",
                    "icon": "inbox",
                    "link": reverse_lazy("portal:inbox"),
                    "badge": "portal.navigation.pending_reviews_badge",
                },
                {"title": "Activity log", "icon": "history", "link": reverse_lazy("portal:activity")},
                {"title": "Schedules", "icon": "schedule", "link": reverse_lazy("portal:schedules")},
                {"title": "My API token", "icon": "key", "link": reverse_lazy("portal:api-token")},
                {"title": "API docs", "icon": "api", "link": reverse_lazy("swagger-ui")},
            ],
        }
    ]


def pending_reviews_badge(request: HttpRequest) -> str:
    """The count of reviews waiting for the signed-in user, shown beside the inbox link."""
    from portal import selectors

    if not request.user.is_authenticated:
        return ""
    count = selectors.review_request_inbox(user=request.user).count()
    return str(count) if count else ""


def _resolve_badges(items: list[dict], request: HttpRequest) -> None:
    """Evaluate each badge callback once, here: an empty badge is dropped (unfold would draw an
    empty box), a count is shown as it is."""
    for item in items:
        badge = item.get("badge")
        if isinstance(badge, str) and "." in badge:
            value = import_string(badge)(request)
            if value in ("", None, 0, "0"):
                item.pop("badge")
            else:
                item["badge"] = str(value)  # not a dotted path: unfold shows it as text
        if item.get("items"):
            _resolve_badges(item["items"], request)


def sidebar_navigation(request: HttpRequest) -> list[dict]:
    """Unfold's sidebar groups: the portal's own, then each app's ``navigation.sections(request)``."""
    sections = _portal_sections()
    for module in app_modules("navigation"):
        sections.extend(module.sections(request))
    for section in sections:
        _resolve_badges(section.get("items", []), request)
    return sections
