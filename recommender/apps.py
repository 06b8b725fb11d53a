"""Catalog, event ingestion, simulator, training, registry, serving, experiments and releases."""

from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Releases register the promotion review kind (gate → review → canary) and record shadow comparisons.
        from recommender.releases.setup import releases_ready

        releases_ready()
