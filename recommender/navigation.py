"""The recommender app's sections of the portal sidebar (one per area)."""

from __future__ import annotations

from django.urls import reverse_lazy


def _releases_section() -> dict:
    return {
        "title": "Releases and experiments",
        "separator": True,
        "collapsible": True,
        "items": [
            {"title": "Releases", "icon": "rocket_launch", "link": reverse_lazy("recommender:releases"),
             "badge": "recommender.navigation.releases_badge"},
            {"title": "Experiments", "icon": "science", "link": reverse_lazy("recommender:release_experiments")},
            {"title": "Shadow", "icon": "contrast", "link": reverse_lazy("recommender:release_shadow")},
        ],
    }


def releases_badge(request) -> str:
    """An active canary's share, shown beside the Releases link."""
    from recommender.releases.selectors import rollout_active

    if not request.user.is_authenticated:
        return ""
    active = rollout_active()
    return f"{active.applied_percent}%" if active else ""


def sections(request) -> list[dict]:
    return [_releases_section()]
