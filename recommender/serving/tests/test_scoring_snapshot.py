"""The serving scorer matches the model's own recommend; the snapshot's seen index and fallback."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender.models import WatchSession
from recommender.registry.artifacts import ServingModel
from recommender.serving.scoring import Scorer
from recommender.serving.snapshot import (
    SeenDelta,
    SeenSnapshot,
    current_snapshot_dir,
    pack_pairs,
    snapshot_build,
    snapshot_write,
)
from recommender.serving.tests.conftest import ITEM_IDS, USER_IDS, factor_arrays
from recommender.tests.factories_training import MovieFactory, RatingFactory, ViewerFactory


def _snapshot(tmp_path, movies, seen_by_viewer: dict[int, list[str]]):
    codes = {m: i for i, m in enumerate(movies)}
    viewers = np.array([v for v, ms in seen_by_viewer.items() for _ in ms], dtype=np.int64)
    items = np.array([codes[m] for ms in seen_by_viewer.values() for m in ms], dtype=np.int32)
    v, ptr, it = pack_pairs(viewers, items)
    return SeenSnapshot.load(snapshot_write(root=tmp_path / "snap", viewers=v, indptr=ptr, items=it, movies=movies,
                                            popular=[], meta={}))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(viewer=st.sampled_from(USER_IDS + [10_000]), k=st.integers(0, 45),
       seen=st.lists(st.sampled_from(ITEM_IDS + ["not+in+model+2001"]), max_size=30),
       extra=st.lists(st.sampled_from(ITEM_IDS), max_size=5),
       kind=st.sampled_from(["factors", "biases", "ranking"]))
def test_scorer_gives_exactly_what_the_model_gives(tmp_path, viewer, k, seen, extra, kind):
    arrays = factor_arrays(seed=4, seen={1: [0, 1, 2], 5: [10, 11]})
    if kind == "biases":
        arrays = {k_: v for k_, v in arrays.items() if k_ not in ("user_factors", "item_factors")}
    if kind == "ranking":
        arrays = {"item_ids": arrays["item_ids"], "user_ids": arrays["user_ids"], "seen_indptr": arrays["seen_indptr"],
                  "seen_indices": arrays["seen_indices"],
                  "item_scores": np.round(arrays["item_bias"], 1).astype(np.float32)}  # ties on purpose
    model = ServingModel(manifest={"kind": kind, "global_mean": 3.5}, arrays=arrays)
    movies = ITEM_IDS[::-1] + ["not+in+model+2001"]  # the snapshot's own code order
    snapshot = _snapshot(tmp_path, movies, {viewer: sorted(set(seen))} if seen else {})
    expected = model.recommend(viewer, k, list(seen) + list(extra))
    got = Scorer(model).recommend(viewer, k, snapshot=snapshot, seen_codes=snapshot.seen_codes(viewer),
                                  extra_seen=frozenset(extra))
    if expected is None:
        assert got is None
    else:
        assert got[0] == [m for m, _ in expected]
        assert got[1] == [round(s, 5) for _, s in expected]


@pytest.mark.django_db
def test_snapshot_from_the_database_dedupes_and_ranks_popular_and_recent(tmp_path):
    now = timezone.now()
    movies = [MovieFactory(id=f"m{i}") for i in range(4)]
    viewers = [ViewerFactory(id=v) for v in (1, 2, 3)]
    RatingFactory(viewer=viewers[0], movie=movies[0], time=now)
    RatingFactory(viewer=viewers[1], movie=movies[0], time=now - dt.timedelta(days=1))
    RatingFactory(viewer=viewers[2], movie=movies[1], time=now - dt.timedelta(days=10))
    RatingFactory(viewer=viewers[0], movie=movies[1], time=now - dt.timedelta(days=9))
    RatingFactory(viewer=viewers[1], movie=movies[2], time=now - dt.timedelta(days=30))  # outside the window
    WatchSession.objects.create(viewer=viewers[0], movie=movies[0], started_at=now, last_seen_at=now, first_minute=0,
                                last_minute=1, highest_minute=1, minutes_watched=2)  # same pair as a rating
    WatchSession.objects.create(viewer=viewers[2], movie=movies[3], started_at=now, last_seen_at=now, first_minute=0,
                                last_minute=1, highest_minute=1, minutes_watched=2)
    path = snapshot_build(root=tmp_path / "snap", fallback_size=10, window_days=14, half_life_days=3)
    assert current_snapshot_dir(tmp_path / "snap") == path
    snap = SeenSnapshot.load(path)
    assert snap.seen(1) == sorted(["m0", "m1"], key=snap.movies.index)
    assert sorted(snap.seen(2)) == ["m0", "m2"] and sorted(snap.seen(3)) == ["m1", "m3"]
    assert snap.seen(99) == [] and snap.pairs == 6
    ranked = [m for m, _ in snap.popular]
    # m0: 3 recent events; m3: 1 today; m1: 2 events 9-10 days old; m2 outside the window
    assert ranked == ["m0", "m3", "m1"]


@pytest.mark.django_db
def test_delta_picks_up_new_rows_and_swaps_sets_whole():
    movie = MovieFactory(id="m1")
    first = RatingFactory(viewer=ViewerFactory(id=7), movie=MovieFactory(id="m0"))
    delta = SeenDelta(rating_from=first.id, session_from=0)
    assert delta.poll() == 0
    RatingFactory(viewer=ViewerFactory(id=7), movie=movie)
    before = delta.seen(7)
    assert delta.poll() == 1
    assert delta.seen(7) == frozenset({"m1"}) and before == frozenset()
    assert delta.poll() == 0  # re-reading the overlap adds nothing


def test_empty_snapshot_answers_nothing():
    snap = SeenSnapshot.empty()
    assert snap.seen(1) == [] and snap.seen_codes(1).shape == (0,) and snap.popular == []
