"""Catalog, event ingestion, simulator, training, registry and serving."""

from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"
    default_auto_field = "django.db.models.BigAutoField"
