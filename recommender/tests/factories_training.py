"""Factories for the training side's tests: catalog rows, ratings, snapshots, runs, versions."""

from __future__ import annotations

import datetime as dt

import factory
import numpy as np
from django.utils import timezone

from recommender.models import (
    DatasetSnapshot,
    ModelVersion,
    Movie,
    Rating,
    RegisteredModel,
    TrainingRun,
    Viewer,
    WatchSession,
)

OCCUPATIONS = ["college/grad student", "technician/engineer", "other or not specified", "writer"]


class ViewerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Viewer
        django_get_or_create = ("id",)

    id = factory.Sequence(lambda n: 1000 + n)
    age = factory.Sequence(lambda n: 16 + (n * 7) % 50)
    gender = factory.Sequence(lambda n: "MF"[n % 2])
    occupation = factory.Sequence(lambda n: OCCUPATIONS[n % len(OCCUPATIONS)])
    enriched_at = factory.LazyFunction(timezone.now)


class MovieFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Movie
        django_get_or_create = ("id",)

    id = factory.Sequence(lambda n: f"movie+{n}+2000")
    title = factory.Sequence(lambda n: f"Movie {n}")
    runtime = 100


class RatingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rating

    viewer = factory.SubFactory(ViewerFactory)
    movie = factory.SubFactory(MovieFactory)
    rating = 4
    time = factory.LazyFunction(timezone.now)


class SnapshotFactory(factory.django.DjangoModelFactory):
    """A snapshot row without files (for registry tests that never read its data)."""

    class Meta:
        model = DatasetSnapshot

    name = factory.Sequence(lambda n: f"snap {n}")
    window_end = factory.LazyFunction(timezone.now)
    rating_count = 1000
    content_sha256 = factory.Sequence(lambda n: f"{n:064x}")
    storage_path = factory.Sequence(lambda n: f"snapshots/{n}")


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrainingRun

    snapshot = factory.SubFactory(SnapshotFactory)
    algorithm = "svd"
    hyperparameters = factory.LazyFunction(lambda: {"n_factors": 10})
    split = factory.LazyFunction(lambda: {"kind": "random", "test_fraction": 0.2, "seed": 0})
    status = TrainingRun.Status.SUCCEEDED


class VersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    registered_model = factory.LazyFunction(lambda: RegisteredModel.objects.get_or_create(name="movie-recommender")[0])
    version = factory.Sequence(lambda n: n + 1)
    training_run = factory.SubFactory(RunFactory)
    algorithm = "svd"
    artifact_path = factory.Sequence(lambda n: f"models/x/{n}")
    artifact_sha256 = "0" * 64
    artifact_size = 1
    artifact_kind = "factors"
    metrics = factory.LazyFunction(lambda: {"ndcg_at_20": 0.1, "rmse": 0.95})


def synthetic_ratings(
    *, n_users: int = 60, n_items: int = 40, density: float = 0.3, seed: int = 0, start: dt.datetime | None = None,
    with_watch: bool = False,
) -> dict:
    """Create viewers, movies and ratings with a latent structure (two taste groups), directly in the DB.

    Returns counts. Ratings are spread over 60 days from ``start`` so time windows can cut them.
    """
    rng = np.random.default_rng(seed)
    start = start or timezone.now() - dt.timedelta(days=60)
    viewers = [ViewerFactory(id=1 + u) for u in range(n_users)]
    movies = [MovieFactory(id=f"movie+{i}+{1990 + i % 30}", runtime=90 + i % 40) for i in range(n_items)]
    taste = rng.normal(size=(n_users, 3))
    trait = rng.normal(size=(n_items, 3))
    rows = []
    for u in range(n_users):
        for i in range(n_items):
            if rng.random() < density:
                score = 3.0 + taste[u] @ trait[i] * 0.8 + rng.normal(scale=0.3)
                rows.append(Rating(viewer=viewers[u], movie=movies[i], rating=int(np.clip(round(score), 1, 5)),
                                   time=start + dt.timedelta(minutes=int(rng.integers(0, 60 * 24 * 60)))))
    Rating.objects.bulk_create(rows)
    sessions = []
    if with_watch:
        rated = {(r.viewer_id, r.movie_id) for r in rows}
        for u in range(n_users):
            for i in rng.choice(n_items, size=3, replace=False):
                if (viewers[u].id, movies[int(i)].id) in rated:
                    continue
                minutes = int(rng.integers(1, 130))
                t0 = start + dt.timedelta(minutes=int(rng.integers(0, 60 * 24 * 59)))
                sessions.append(WatchSession(
                    viewer=viewers[u], movie=movies[int(i)], started_at=t0, last_seen_at=t0 + dt.timedelta(minutes=minutes),
                    first_minute=0, last_minute=minutes, highest_minute=minutes, minutes_watched=minutes,
                ))
        WatchSession.objects.bulk_create(sessions)
    return {"ratings": len(rows), "watch_sessions": len(sessions), "viewers": n_users, "movies": n_items}


def trained_svd_version() -> ModelVersion:
    """An SVD trained inline (random split, seed 0) on a snapshot of the ratings stored now; its version."""
    from recommender.training.runs import training_run_create, training_run_execute_inline
    from recommender.training.snapshots import snapshot_create

    snapshot = snapshot_create(actor=None, system="test")
    run = training_run_create(actor=None, system="test", snapshot=snapshot, algorithm="svd",
                              split={"kind": "random", "test_fraction": 0.2, "seed": 0}, enqueue=False)
    run = training_run_execute_inline(run=run)
    assert run.status == "succeeded", run.error
    return run.model_version
