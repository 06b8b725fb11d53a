"""Feedback loops: concentration, coverage, follow-through and diversity per bucket, and a
Mann–Kendall trend test that flags a sustained tightening and stays quiet on a stationary world."""

import random
from datetime import timedelta

import pytest

from monitoring.services.feedback import feedback_compute, feedback_snapshot_create, feedback_trends
from monitoring.services.metrics import metric_evaluate
from monitoring.tests.factories import request_line, watch
from recommender.models import RecommendationRequest, WatchSession

pytestmark = pytest.mark.django_db


def _day(t0, day, movies, viewers, *, pool_size, seed):
    """One day: each viewer gets a list drawn from the ``pool_size`` most popular movies and watches
    one of its movies 10 minutes later."""
    rng = random.Random(seed)
    start = t0 + timedelta(days=day)
    lines, sessions = [], []
    for n, viewer in enumerate(viewers):
        t = start + timedelta(minutes=n * 10)
        items = rng.sample(movies[:pool_size], 5)
        lines.append(request_line(time=t, viewer=viewer, items=items))
        sessions.append(watch(viewer=viewer, movie=rng.choice(items), started_at=t + timedelta(minutes=10)))
    RecommendationRequest.objects.bulk_create(lines)
    WatchSession.objects.bulk_create(sessions)
    return start


def test_figures_of_one_bucket(catalog, t0):
    movies, viewers = catalog
    start = _day(t0, 0, movies, viewers, pool_size=10, seed=1)
    figures = feedback_compute(since=start, until=start + timedelta(days=1))
    assert figures["lists"] == len(viewers) and figures["watches"] == len(viewers)
    assert figures["coverage_recommended"] == pytest.approx(10 / len(movies))
    assert figures["share_watches_after_recommendation"] == 1.0
    assert 0.7 < figures["gini_recommended"] < 1.0
    assert figures["per_viewer_diversity"] is None  # nobody watched twice


def test_a_tightening_loop_shows_as_a_rising_trend(catalog, t0):
    movies, viewers = catalog
    for day in range(12):
        start = _day(t0, day, movies, viewers, pool_size=40 - 3 * day, seed=day)
        feedback_snapshot_create(since=start, until=start + timedelta(days=1))
    until = t0 + timedelta(days=12)
    trends = feedback_trends(until=until, points=12)
    assert trends["gini_recommended"]["adverse"] and trends["gini_recommended"]["direction"] == "rising"
    assert trends["coverage_recommended"]["adverse"] and trends["coverage_recommended"]["direction"] == "falling"
    value = metric_evaluate(metric="feedback_adverse_trends", since=until - timedelta(days=1), until=until,
                            params={"points": 12})
    assert value.value >= 2 and "gini_recommended" in value.evidence["adverse"]


def test_a_stationary_world_flags_nothing(catalog, t0):
    movies, viewers = catalog
    for day in range(12):
        start = _day(t0, day, movies, viewers, pool_size=30, seed=100 + day)
        feedback_snapshot_create(since=start, until=start + timedelta(days=1))
    trends = feedback_trends(until=t0 + timedelta(days=12), points=12)
    assert not [m for m, t in trends.items() if t["adverse"]], trends


def test_no_snapshots_is_no_data(db, t0):
    value = metric_evaluate(metric="feedback_adverse_trends", since=t0, until=t0 + timedelta(days=1), params={})
    assert value.value is None
