"""The drift distances a large-sample feature can be judged by: one entry each in ``DRIFT_METRICS``.

A metric measures how far the current window's distribution is from the reference's, in one of
two ways (``monitoring/services/drift.py`` picks the one the feature's data allows):

- ``on_values(ref_values, ref_weights, cur_values, cur_weights)``: on the weighted numeric values
  themselves (it needs an order, so numeric features only);
- ``on_counts(ref_counts, cur_counts)``: on counts over the same bins — a categorical feature's
  categories, or a numeric feature's reference deciles.

A metric with only ``on_values`` names the ``unordered`` metric that stands in for it on a
categorical feature. ``DriftFeature.large_metric``'s choices are this map (a new entry needs
``makemigrations`` for the choice list, nothing else).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from monitoring import stats

OnValues = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]
OnCounts = Callable[[np.ndarray, np.ndarray], float]


class UnknownDriftMetric(ValueError):
    """A metric name that ``DRIFT_METRICS`` does not hold."""


@dataclass(frozen=True)
class DriftMetric:
    name: str
    label: str  # the feature's choice (admin, API)
    short: str  # in a sentence: "Wasserstein needs an order"
    title: str  # the test's name in the report's table and charts
    on_values: OnValues | None = None
    on_counts: OnCounts | None = None
    unordered: str | None = None  # stands in on categorical features when on_counts is None

    def __post_init__(self) -> None:
        if self.on_values is None and self.on_counts is None:
            raise ValueError(f"drift metric '{self.name}' needs on_values or on_counts")
        if self.on_counts is None and self.unordered is None:
            raise ValueError(f"drift metric '{self.name}' works on values only, so it must name an unordered stand-in")


DRIFT_METRICS: dict[str, DriftMetric] = {
    m.name: m
    for m in [
        DriftMetric("wasserstein", "Wasserstein / reference std", "Wasserstein", "Wasserstein ÷ reference std",
                    on_values=stats.wasserstein_normed,
                    unordered="jensen_shannon"),
        DriftMetric("jensen_shannon", "Jensen–Shannon distance", "Jensen–Shannon", "Jensen–Shannon",
                    on_counts=stats.jensen_shannon),
        DriftMetric("psi", "population stability index", "PSI", "PSI", on_counts=stats.psi),
    ]
}


def drift_metric_get(name: str) -> DriftMetric:
    """The metric of that name, or ``UnknownDriftMetric`` listing the known ones."""
    metric = DRIFT_METRICS.get(name)
    if metric is None:
        raise UnknownDriftMetric(f"unknown drift metric {name!r}; expected one of {sorted(DRIFT_METRICS)}")
    return metric
