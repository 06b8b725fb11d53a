"""The portal's sidebar: each app contributes its sections from its own ``navigation.py``."""

from __future__ import annotations

from importlib import import_module

from django.urls import reverse_lazy

APPS_WITH_NAVIGATION = ["portal", "recommender", "monitoring", "audits"]


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
                {"title": "API docs", "icon": "api", "link": reverse_lazy("swagger-ui")},
            ],
        }
    ]


def pending_reviews_badge(request) -> str:
    """The count of reviews waiting for the signed-in user, shown beside the inbox link."""
    from portal import selectors

    if not request.user.is_authenticated:
        return ""
    count = selectors.review_request_inbox(user=request.user).count()
    return str(count) if count else ""


def sidebar_navigation(request) -> list[dict]:
    sections = _portal_sections()
    for app in APPS_WITH_NAVIGATION[1:]:
        try:
            module = import_module(f"{app}.navigation")
        except ModuleNotFoundError:
            continue
        sections.extend(module.sections(request))
    return sections
