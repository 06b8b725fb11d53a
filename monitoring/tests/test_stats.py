"""The statistics behind feedback loops, drift and latency SLOs."""

import numpy as np
import pytest

from monitoring import stats
from monitoring.models import LATENCY_BUCKETS_MS


def test_gini_is_zero_when_even_and_near_one_when_all_on_one_item():
    assert stats.gini(np.ones(100)) == pytest.approx(0.0, abs=1e-12)
    concentrated = np.zeros(100)
    concentrated[0] = 50
    assert stats.gini(concentrated) == pytest.approx(0.99)
    assert stats.gini(np.zeros(10)) is None


def test_top_share_takes_the_top_one_percent_at_least_one_item():
    counts = np.ones(200)
    counts[:2] = 99
    assert stats.top_share(counts, 0.01) == pytest.approx(198 / (198 + 198))
    assert stats.top_share(np.array([5.0, 1.0]), 0.01) == pytest.approx(5 / 6)


def test_mann_kendall_flags_a_rising_series_and_not_noise():
    rng = np.random.default_rng(3)
    rising = np.linspace(0.2, 0.5, 14) + rng.normal(0, 0.01, 14)
    trend = stats.mann_kendall(rising)
    assert trend.direction == "rising" and trend.p_value < 0.001 and trend.slope > 0
    flat = rng.normal(0.3, 0.01, 14)
    assert stats.mann_kendall(flat).p_value > 0.05
    assert stats.mann_kendall(np.array([1.0, 2.0, 3.0])).p_value is None  # too short to say


def test_mann_kendall_ignores_missing_points_and_handles_ties():
    trend = stats.mann_kendall(np.array([1, np.nan, 1, 1, 1, 1, 1], dtype=float))
    assert trend.n == 6 and trend.p_value == 1.0


def test_histogram_quantiles_interpolate_inside_buckets():
    buckets = np.zeros(len(LATENCY_BUCKETS_MS) + 1)
    buckets[LATENCY_BUCKETS_MS.index(100)] = 100  # all in (50, 100]
    assert stats.bucket_quantile(buckets, LATENCY_BUCKETS_MS, 0.5) == pytest.approx(75)
    assert stats.bucket_count_at_most(buckets, LATENCY_BUCKETS_MS, 100) == 100
    assert stats.bucket_count_at_most(buckets, LATENCY_BUCKETS_MS, 75) == pytest.approx(50)
    assert stats.bucket_count_at_most(buckets, LATENCY_BUCKETS_MS, 50) == 0
    assert stats.bucket_quantile(np.zeros(5), LATENCY_BUCKETS_MS, 0.5) is None


def test_distances_are_zero_for_equal_distributions_and_grow_with_shift():
    same = np.array([10.0, 20.0, 30.0])
    assert stats.jensen_shannon(same, same * 3) == pytest.approx(0.0, abs=1e-9)
    assert stats.psi(same, same) == pytest.approx(0.0, abs=1e-12)
    shifted = np.array([30.0, 20.0, 10.0])
    assert stats.jensen_shannon(same, shifted) > 0.1
    assert stats.psi(same, shifted) > 0.2
    values = np.arange(10, dtype=float)
    weights = np.ones(10)
    assert stats.wasserstein_normed(values, weights, values + 1, weights) == pytest.approx(1 / values.std())
