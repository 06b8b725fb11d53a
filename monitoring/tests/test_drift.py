"""Drift against the reference window: the right test per column kind and sample size, editable
thresholds, histograms for the page, and "no reference"/"no data" rather than "ok"."""

import random
from datetime import timedelta

import numpy as np
import pytest

from monitoring.models import DriftFeature, DriftReport
from monitoring.services.drift import Sample, drift_compare, drift_report_create
from monitoring.sources import Reference
from monitoring.tests.factories import make_production_version, rating_event, watch
from recommender.models import RatingEvent, WatchSession

pytestmark = pytest.mark.django_db


def _events(t0, *, ratings_weights, n, movies, viewers, seed, genre_bias=None):
    rng = random.Random(seed)
    ratings, watches = [], []
    for i in range(n):
        t = t0 + timedelta(seconds=i * 30)
        viewer = rng.choice(viewers)
        movie = rng.choice(movies if genre_bias is None else genre_bias)
        ratings.append(rating_event(viewer=viewer, movie=movie, rating=rng.choices([1, 2, 3, 4, 5], ratings_weights)[0],
                                    time=t))
        watches.append(watch(viewer=viewer, movie=movie, started_at=t))
    RatingEvent.objects.bulk_create(ratings)
    WatchSession.objects.bulk_create(watches)


def _reference(t0, hours=24):
    return Reference(since=t0, until=t0 + timedelta(hours=hours), description={"kind": "test window"})


def test_without_a_production_model_the_report_says_no_reference(catalog, t0):
    report = drift_report_create(current_since=t0, current_until=t0 + timedelta(hours=1))
    assert report.status == "no_reference" and report.results.count() == 0


def test_an_empty_current_window_is_no_data(catalog, t0):
    _events(t0, ratings_weights=[1, 1, 1, 1, 1], n=200, movies=catalog[0], viewers=catalog[1], seed=1)
    report = drift_report_create(current_since=t0 + timedelta(days=3), current_until=t0 + timedelta(days=4),
                                 reference=_reference(t0))
    assert report.status == "no_data" and report.tested_features == 0
    assert {r.note for r in report.results.all()} >= {"no data in the current window"}


def test_the_same_process_shows_no_drift_and_a_shifted_one_does(catalog, t0):
    movies, viewers = catalog
    weights = [5, 10, 25, 35, 25]
    _events(t0, ratings_weights=weights, n=1500, movies=movies, viewers=viewers, seed=1)
    same_start = t0 + timedelta(days=1)
    _events(same_start, ratings_weights=weights, n=1500, movies=movies, viewers=viewers, seed=2)
    quiet = drift_report_create(current_since=same_start, current_until=same_start + timedelta(days=1),
                                reference=_reference(t0))
    drifted = {r.feature for r in quiet.results.all() if r.drifted}
    assert quiet.status == "ok", drifted
    # A later day: harsher ratings and watches piled onto four movies
    shifted_start = t0 + timedelta(days=2)
    _events(shifted_start, ratings_weights=[35, 30, 20, 10, 5], n=1500, movies=movies, viewers=viewers, seed=3,
            genre_bias=movies[:4])
    report = drift_report_create(current_since=shifted_start, current_until=shifted_start + timedelta(days=1),
                                 reference=_reference(t0))
    results = {r.feature: r for r in report.results.all()}
    assert report.status == "drift"
    assert results["rating"].drifted and results["rating"].test == "chi2" and results["rating"].p_value < 1e-6
    assert results["watch_genre"].drifted
    assert results["rating"].histogram["labels"] and len(results["rating"].histogram["reference"]) == len(
        results["rating"].histogram["current"])
    from portal import selectors as portal_selectors

    entry = portal_selectors.activity_log_list(filters={"action": "drift.reported", "target_id": report.pk}).get()
    assert "rating" in entry.data["drifted"]


def test_large_samples_use_a_distance_and_the_threshold_is_editable():
    feature = DriftFeature(name="viewer_age", label="age", kind="numeric", large_metric="wasserstein",
                           large_threshold=0.15, alpha=0.01, large_sample_min=1000)
    rng = np.random.default_rng(0)
    ref = Sample(rng.normal(35, 10, 20_000).round(), np.ones(20_000))
    cur = Sample(rng.normal(36, 10, 20_000).round(), np.ones(20_000))
    result = drift_compare(feature, ref, cur)
    # With 20,000 a side, KS would call a 1-year shift significant; the normed distance (≈0.1) does not
    assert result["test"] == "wasserstein" and result["score"] == pytest.approx(0.1, abs=0.03)
    assert result["drifted"] is False
    feature.large_threshold = 0.05
    assert drift_compare(feature, ref, cur)["drifted"] is True
    # Small samples of the same feature get the KS test
    small = drift_compare(feature, Sample(ref.values[:200], ref.weights[:200]), Sample(cur.values[:200] + 15,
                                                                                  cur.weights[:200]))
    assert small["test"] == "ks" and small["drifted"] is True and small["p_value"] < 0.01


@pytest.mark.parametrize("metric", ["jensen_shannon", "psi"])
def test_categorical_large_samples(metric):
    feature = DriftFeature(name="viewer_gender", label="g", kind="categorical", large_metric=metric,
                           large_threshold=0.1, alpha=0.01, large_sample_min=1000)
    ref = Sample(np.array(["M", "F"]), np.array([6000.0, 4000.0]))
    same = drift_compare(feature, ref, Sample(np.array(["F", "M"]), np.array([4100.0, 5900.0])))
    flipped = drift_compare(feature, ref, Sample(np.array(["M", "F"]), np.array([3000.0, 7000.0])))
    assert same["test"] == metric and same["drifted"] is False
    assert flipped["drifted"] is True


def test_reference_is_the_production_models_training_snapshot(catalog, t0):
    from monitoring import sources

    assert sources.production_reference() is None
    _events(t0, ratings_weights=[1, 1, 1, 1, 1], n=300, movies=catalog[0], viewers=catalog[1], seed=5)
    version = make_production_version(window_start=t0, window_end=t0 + timedelta(hours=3))
    reference = sources.production_reference()
    assert (reference.since, reference.until) == (t0, t0 + timedelta(hours=3))
    report = drift_report_create(current_since=t0, current_until=t0 + timedelta(hours=3))
    assert report.reference["model_version_id"] == version.pk and report.reference_since == t0
    assert report.status == DriftReport.Status.OK  # the same events on both sides


def test_recommended_lists_are_sampled_evenly_for_big_windows(catalog, t0):
    from monitoring import sources
    from monitoring.tests.factories import request_line
    from recommender.models import RecommendationRequest

    RecommendationRequest.objects.bulk_create([
        request_line(time=t0 + timedelta(seconds=i), viewer=1 + i % 10, items=[catalog[0][i % 40]]) for i in range(40)
    ] + [request_line(time=t0, viewer=1, status=0)])
    everything, source = sources.served_lists(t0, t0 + timedelta(hours=1), items_only=True)
    assert source == "client" and len(everything) == 40
    sample, _ = sources.served_lists(t0, t0 + timedelta(hours=1), max_rows=10, items_only=True)
    assert 8 <= len(sample) <= 11 and all(items for items in sample["items"])
