"""The releases' section of the portal sidebar."""

from __future__ import annotations

from django.urls import reverse_lazy

from releases.selectors import rollout_active


def releases_badge(request) -> str:
    """An active canary's share, shown beside the Releases link."""
    if not request.user.is_authenticated:
        return ""
    active = rollout_active()
    return f"{active.applied_percent}%" if active else ""


def sections(request) -> list[dict]:
    return [{
        "title": "Releases and experiments",
        "separator": True,
        "collapsible": True,
        "items": [
            {"title": "Releases", "icon": "rocket_launch", "link": reverse_lazy("releases:overview"),
             "badge": "releases.navigation.releases_badge"},
            {"title": "Experiments", "icon": "science", "link": reverse_lazy("releases:experiments")},
            {"title": "Shadow", "icon": "contrast", "link": reverse_lazy("releases:shadow")},
        ],
    }]
