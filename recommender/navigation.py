"""The recommender app's sections of the portal sidebar (one per area)."""

from __future__ import annotations

from django.urls import reverse_lazy


def _training_section() -> dict:
    return {
        "title": "Models",
        "separator": True,
        "collapsible": True,
        "items": [
            {"title": "Training runs", "icon": "model_training", "link": reverse_lazy("recommender:training_runs"),
             "badge": "recommender.navigation.training_badge"},
            {"title": "Dataset snapshots", "icon": "dataset", "link": reverse_lazy("recommender:training_snapshots")},
            {"title": "Compare runs", "icon": "compare", "link": reverse_lazy("recommender:training_compare")},
            {"title": "Model registry", "icon": "inventory_2", "link": reverse_lazy("recommender:registry")},
        ],
    }


def _data_section() -> dict:
    return {
        "title": "Data",
        "separator": True,
        "collapsible": True,
        "items": [
            {"title": "Catalog", "icon": "movie", "link": reverse_lazy("recommender:catalog")},
            {"title": "Viewers", "icon": "group", "link": reverse_lazy("recommender:catalog_viewers")},
            {"title": "Ingestion status", "icon": "input", "link": reverse_lazy("recommender:catalog_ingestion")},
            {"title": "Quarantine", "icon": "report", "link": reverse_lazy("recommender:catalog_quarantine"),
             "badge": "recommender.navigation.quarantine_badge"},
        ],
    }


def training_badge(request) -> str:
    """How many runs are queued or running, shown beside the Training runs link."""
    from recommender.models import TrainingRun

    if not request.user.is_authenticated:
        return ""
    count = TrainingRun.objects.filter(status__in=["queued", "running"]).count()
    return str(count) if count else ""


def _serving_section() -> dict:
    return {
        "title": "Serving",
        "separator": True,
        "collapsible": True,
        "items": [
            {"title": "Deployments", "icon": "dns", "link": reverse_lazy("recommender:serving_deployments")},
            {"title": "Provenance", "icon": "manage_search", "link": reverse_lazy("recommender:serving_provenance")},
        ],
    }


def quarantine_badge(request) -> str:
    """Lines quarantined in the last 24 hours, beside the Quarantine link."""
    from datetime import timedelta

    from django.utils import timezone

    from recommender.models import QuarantinedLine

    if not request.user.is_authenticated:
        return ""
    count = QuarantinedLine.objects.filter(created_at__gte=timezone.now() - timedelta(hours=24)).count()
    return str(count) if count else ""


def sections(request) -> list[dict]:
    return [_data_section(), _training_section(), _serving_section()]
