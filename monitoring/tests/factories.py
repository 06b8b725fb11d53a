"""Helpers that write catalog rows and events straight into the tables monitoring reads
(the simulator-driven tests use the world simulator instead)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.utils import timezone

GENRES = ["Drama", "Comedy", "Action", "Thriller", "Romance", "Horror", "Animation", "Documentary"]
OCCUPATIONS = ["college/grad student", "technician/engineer", "K-12 student", "other or not specified"]


def make_catalog(*, movies: int = 40, viewers: int = 60) -> tuple[list[str], list[int]]:
    """Enriched movies (``movie-0`` …) and viewers (1 …) with metadata."""
    from recommender.models import Movie, Viewer

    now = timezone.now()
    Movie.objects.bulk_create([
        Movie(id=f"movie+{i}+2000", title=f"Movie {i}", genres=[GENRES[i % len(GENRES)], GENRES[(i * 3 + 1) % len(GENRES)]],
              year=1990 + i % 30, runtime=90 + i % 40, popularity=float(1 + (i * 7) % 50), enriched_at=now)
        for i in range(movies)
    ], ignore_conflicts=True)
    Viewer.objects.bulk_create([
        Viewer(id=i, age=18 + (i * 7) % 50, gender="MF"[i % 2], occupation=OCCUPATIONS[i % len(OCCUPATIONS)],
               enriched_at=now)
        for i in range(1, viewers + 1)
    ], ignore_conflicts=True)
    return [f"movie+{i}+2000" for i in range(movies)], list(range(1, viewers + 1))


def request_line(*, time: datetime, viewer: int, status: int = 200, ms: int = 50, items: list[str] | None = None):
    from recommender.models import RecommendationRequest

    return RecommendationRequest(time=time, viewer_id=viewer, server="rec:8082", status=status,
                                 movie_ids=items or [], response_ms=ms,
                                 error="" if status == 200 else "connect timeout: no answer")


def prediction(*, time: datetime, viewer: int, items: list[str], version_id: int | None = 1, arm: str = "production",
               latency: float = 10.0, status: int = 200, fallback: str = ""):
    from recommender.models.serving import PredictionLog

    return PredictionLog(request_id=uuid.uuid4(), created_at=time, endpoint="plain", viewer_id=viewer,
                         model_version_id=version_id, model_label=f"v{version_id}" if version_id else "fallback",
                         arm=arm, items=items, latency_ms=latency, status=status, fallback_reason=fallback)


def watch(*, viewer: int, movie: str, started_at: datetime, minutes: int = 20):
    from recommender.models import WatchSession

    return WatchSession(viewer_id=viewer, movie_id=movie, started_at=started_at,
                        last_seen_at=started_at + timedelta(minutes=minutes - 1), first_minute=0,
                        last_minute=minutes - 1, highest_minute=minutes - 1, minutes_watched=minutes)


def rating_event(*, viewer: int, movie: str, rating: int, time: datetime):
    from recommender.models import RatingEvent

    return RatingEvent(viewer_id=viewer, movie_id=movie, rating=rating, time=time)


def make_production_version(*, window_start: datetime | None, window_end: datetime):
    """A registered, approved model version trained on a snapshot of ``[window_start, window_end)``,
    pointed at by the ``production`` alias."""
    from recommender.models import DatasetSnapshot, ModelAlias, ModelVersion, RegisteredModel, TrainingRun

    snapshot = DatasetSnapshot.objects.create(
        name="monitoring reference", window_start=window_start, window_end=window_end,
        content_sha256=uuid.uuid4().hex * 2, storage_path=f"snapshots/{uuid.uuid4().hex}",
    )
    run = TrainingRun.objects.create(snapshot=snapshot, algorithm="svd", status=TrainingRun.Status.SUCCEEDED)
    registered, _ = RegisteredModel.objects.get_or_create(name="movie-recommender")
    version = ModelVersion.objects.create(
        registered_model=registered, version=registered.versions.count() + 1, training_run=run, algorithm="svd",
        artifact_path=f"models/{uuid.uuid4().hex}", artifact_sha256="0" * 64, artifact_size=1,
        artifact_kind="factors", status=ModelVersion.Status.APPROVED,
    )
    # Set directly: the registry's model_alias_move locks with an outer join PostgreSQL refuses
    # (reported to the training helper); the row it would write is this one.
    ModelAlias.objects.update_or_create(name="production", defaults={"version": version, "reason": "monitoring test"})
    return version
