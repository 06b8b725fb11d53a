"""Celery tasks of the recommender app: each area's tasks module is imported here so that
``app.autodiscover_tasks()`` (which looks for ``recommender.tasks``) registers them."""

from recommender.ingest import tasks as ingest_tasks  # noqa: F401
from recommender.training import tasks as training_tasks  # noqa: F401
