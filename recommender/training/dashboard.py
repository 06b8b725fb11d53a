"""Dashboard cards of the training side (added to ``recommender/dashboard.py``'s cards)."""

from __future__ import annotations

from django.http import HttpRequest


def training_cards(request: HttpRequest) -> list[dict]:
    """Runs in progress, failed runs in the last 7 days, versions, and what is in production."""
    from datetime import timedelta

    from django.utils import timezone

    from recommender.models import ModelVersion, TrainingRun
    from recommender.registry.selectors import model_alias_version

    production = model_alias_version(alias="production")
    week = timezone.now() - timedelta(days=7)
    return [
        {"title": "Training runs in progress",
         "value": TrainingRun.objects.filter(status__in=["queued", "running"]).count(),
         "link": "recommender:training_runs"},
        {"title": "Failed runs (7 days)",
         "value": TrainingRun.objects.filter(status="failed", finished_at__gte=week).count(),
         "link": "recommender:training_runs"},
        {"title": "Model versions", "value": ModelVersion.objects.count(), "link": "recommender:registry"},
        {"title": "In production", "value": str(production) if production else "nothing yet",
         "link": "recommender:registry"},
    ]
