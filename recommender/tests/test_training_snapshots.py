"""Snapshots: reproducible content hash, time window, filters, implicit ratings, refusals."""

from __future__ import annotations

import datetime as dt
import gzip

import pytest
from django.utils import timezone

from portal.errors import ValidationError
from recommender.errors import ArtifactIntegrityError
from recommender.models import DatasetSnapshot, Rating, WatchSession
from recommender.registry.artifacts import artifact_abspath
from recommender.tests.factories_training import MovieFactory, RatingFactory, ViewerFactory, synthetic_ratings
from recommender.training.snapshots import (
    implicit_rating,
    snapshot_check_trainable,
    snapshot_create,
    snapshot_load_ratings,
    snapshot_load_viewers,
)

pytestmark = pytest.mark.django_db
END = timezone.now()


def test_same_inputs_same_hash_and_one_copy_of_the_files(users):
    synthetic_ratings(n_users=10, n_items=8, with_watch=True)
    a = snapshot_create(actor=users["data_scientist"], window_end=END, include_implicit=True)
    b = snapshot_create(actor=None, system="test", window_end=END, include_implicit=True)
    assert a.content_sha256 == b.content_sha256 and a.storage_path == b.storage_path
    assert a.rating_count == a.explicit_rating_count + a.implicit_rating_count
    assert a.rating_count == len(snapshot_load_ratings(snapshot=a))
    assert (a.created_by_label, b.created_by_label) == ("data_scientist_user", "system:test")


def test_a_change_in_the_data_changes_the_hash():
    synthetic_ratings(n_users=10, n_items=8)
    a = snapshot_create(actor=None, system="test", window_end=END)
    rating = Rating.objects.order_by("pk").first()
    Rating.objects.filter(pk=rating.pk).update(rating=1 if rating.rating != 1 else 2)
    b = snapshot_create(actor=None, system="test", window_end=END)
    assert a.content_sha256 != b.content_sha256


def test_window_and_filters():
    viewer, other = ViewerFactory(id=1), ViewerFactory(id=2)
    movies = [MovieFactory() for _ in range(3)]
    for i, movie in enumerate(movies):
        RatingFactory(viewer=viewer, movie=movie, rating=5, time=END - dt.timedelta(days=10 + i))
    RatingFactory(viewer=other, movie=movies[0], rating=3, time=END - dt.timedelta(days=1))
    RatingFactory(viewer=other, movie=movies[1], rating=3, time=END - dt.timedelta(days=40))
    window = snapshot_create(actor=None, system="test", window_start=END - dt.timedelta(days=30), window_end=END)
    assert (window.rating_count, window.viewer_count) == (4, 2)
    filtered = snapshot_create(actor=None, system="test", window_end=END, filters={"min_viewer_ratings": 3})
    assert filtered.viewer_count == 1 and filtered.rating_count == 3
    by_movie = snapshot_create(actor=None, system="test", window_end=END, filters={"min_movie_ratings": 2})
    assert set(snapshot_load_ratings(snapshot=by_movie)["movie_id"]) == {movies[0].id, movies[1].id}
    assert snapshot_load_viewers(snapshot=window)["user_id"].tolist() == [1, 2]


@pytest.mark.parametrize("minutes,runtime,expected", [
    (2, 100, None), (10, 100, 1), (30, 100, 2), (55, 100, 3), (85, 100, 4), (300, 100, 4), (60, None, 3),
])
def test_implicit_rule(minutes, runtime, expected):
    assert implicit_rating(minutes, runtime) == expected


def test_explicit_rating_wins_over_watching():
    viewer, movie, movie2 = ViewerFactory(id=5), MovieFactory(runtime=100), MovieFactory(runtime=100)
    RatingFactory(viewer=viewer, movie=movie, rating=2, time=END - dt.timedelta(days=1))
    t0 = END - dt.timedelta(days=2)
    for m in (movie, movie2):
        WatchSession.objects.create(viewer=viewer, movie=m, started_at=t0, last_seen_at=t0, first_minute=0,
                                    last_minute=90, highest_minute=90, minutes_watched=90)
    snap = snapshot_create(actor=None, system="test", window_end=END, include_implicit=True)
    frame = snapshot_load_ratings(snapshot=snap).set_index("movie_id")
    assert frame.loc[movie.id, "rating"] == 2 and frame.loc[movie.id, "source"] == "e"
    assert frame.loc[movie2.id, "rating"] == 4 and frame.loc[movie2.id, "source"] == "i"
    assert snap.watch_session_count == 2


def test_empty_window_is_refused():
    synthetic_ratings(n_users=3, n_items=3, density=1.0)
    with pytest.raises(ValidationError, match="no ratings"):
        snapshot_create(actor=None, system="test", window_start=END - dt.timedelta(days=500), window_end=END - dt.timedelta(days=400))
    with pytest.raises(ValidationError, match="unknown snapshot filter"):
        snapshot_create(actor=None, system="test", filters={"genre": "drama"})
    with pytest.raises(ValidationError, match="before window_end"):
        snapshot_create(actor=None, system="test", window_start=END, window_end=END)
    assert not DatasetSnapshot.objects.exists()


def test_tiny_snapshot_cannot_be_trained():
    synthetic_ratings(n_users=3, n_items=3, density=1.0)
    snap = snapshot_create(actor=None, system="test", window_end=END)
    with pytest.raises(ValidationError, match="too small") as info:
        snapshot_check_trainable(snapshot=snap)
    assert "ratings" in info.value.message


def test_tampered_snapshot_file_is_refused():
    synthetic_ratings(n_users=5, n_items=5, density=1.0)
    snap = snapshot_create(actor=None, system="test", window_end=END)
    path = artifact_abspath(snap.storage_path) / "ratings.csv.gz"
    data = gzip.decompress(path.read_bytes()).replace(b",5,", b",1,", 1)
    path.write_bytes(gzip.compress(data))
    with pytest.raises(ArtifactIntegrityError, match="ratings.csv.gz"):
        snapshot_load_ratings(snapshot=snap)
