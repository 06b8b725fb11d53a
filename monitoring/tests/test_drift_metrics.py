"""Drift metrics are a name → function map: a new metric is one entry, an unknown one an error."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring import selectors, stats
from monitoring.drift_metrics import DRIFT_METRICS, DriftMetric, UnknownDriftMetric, drift_metric_get
from monitoring.models import DriftFeature
from monitoring.services.drift import Sample, drift_compare


def _largest_share_gap(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """A toy distance: the largest difference of one bin's share between the two windows."""
    return float(np.max(np.abs(ref_counts / ref_counts.sum() - cur_counts / cur_counts.sum())))


@pytest.fixture
def share_gap():
    """The toy metric, registered for one test and removed after it."""
    DRIFT_METRICS["share_gap"] = DriftMetric("share_gap", "largest share gap", "share gap", "share gap",
                                             on_counts=_largest_share_gap)
    try:
        yield DRIFT_METRICS["share_gap"]
    finally:
        del DRIFT_METRICS["share_gap"]


def _feature(kind: str, metric: str) -> DriftFeature:
    return DriftFeature(name=f"f_{kind}", label="x", kind=kind, large_metric=metric, large_threshold=0.1, alpha=0.01,
                        large_sample_min=1000)


def test_a_registered_metric_judges_categorical_and_numeric_features(share_gap):
    ref = Sample(np.array(["M", "F"]), np.array([6000.0, 4000.0]))
    result = drift_compare(_feature("categorical", "share_gap"), ref,
                           Sample(np.array(["M", "F"]), np.array([3000.0, 7000.0])))
    assert result["test"] == "share_gap" and result["score"] == pytest.approx(0.3) and result["drifted"] is True
    assert result["note"] == ""
    assert selectors.drift_test_label("share_gap") == "share gap"

    rng = np.random.default_rng(0)
    values = rng.normal(35, 10, 20_000).round()
    same = drift_compare(_feature("numeric", "share_gap"), Sample(values, np.ones(20_000)),
                         Sample(rng.normal(35, 10, 20_000).round(), np.ones(20_000)))
    shifted = drift_compare(_feature("numeric", "share_gap"), Sample(values, np.ones(20_000)),
                            Sample(rng.normal(45, 10, 20_000).round(), np.ones(20_000)))
    # numeric values are binned at the reference's deciles, each bin a tenth of the reference
    assert same["test"] == shifted["test"] == "share_gap"
    assert same["score"] < 0.03 and same["drifted"] is False
    assert shifted["score"] > 0.1 and shifted["drifted"] is True


def test_a_values_only_metric_hands_categorical_features_to_its_stand_in():
    ref = Sample(np.array(["M", "F"]), np.array([6000.0, 4000.0]))
    cur = Sample(np.array(["M", "F"]), np.array([3000.0, 7000.0]))
    result = drift_compare(_feature("categorical", "wasserstein"), ref, cur)
    assert result["test"] == "jensen_shannon"
    assert result["score"] == pytest.approx(stats.jensen_shannon(np.array([6000.0, 4000.0]),
                                                                 np.array([3000.0, 7000.0])))
    assert result["note"] == "Wasserstein needs an order; categorical features use Jensen–Shannon"


def test_an_unknown_metric_is_an_error_naming_the_feature_and_the_known_ones():
    ref = Sample(np.array([1.0, 2.0]), np.array([600.0, 400.0]))
    with pytest.raises(UnknownDriftMetric, match=r"drift feature 'f_numeric': unknown drift metric 'share_gap'; "
                                                 r"expected one of \['jensen_shannon', 'psi', 'wasserstein'\]"):
        drift_compare(_feature("numeric", "share_gap"), ref, ref)  # not registered outside its fixture
    with pytest.raises(ValueError, match="needs on_values or on_counts"):
        DriftMetric("empty", "empty", "empty", "empty")
    with pytest.raises(ValueError, match="must name an unordered stand-in"):
        DriftMetric("ordered", "ordered", "ordered", "ordered", on_values=stats.wasserstein_normed)


def test_the_features_choices_are_the_map():
    assert DriftFeature.Metric.values == list(DRIFT_METRICS)
    assert dict(DriftFeature.Metric.choices) == {name: m.label for name, m in DRIFT_METRICS.items()}
    assert DriftFeature.Metric.WASSERSTEIN == "wasserstein"
    assert drift_metric_get("psi").on_counts is stats.psi
    assert selectors.drift_test_label("wasserstein") == "Wasserstein ÷ reference std"
    assert selectors.drift_test_label("chi2") == "chi-square"
