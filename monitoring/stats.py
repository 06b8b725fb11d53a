"""Statistics used by monitoring: concentration, trend tests, drift distances, histogram quantiles.

Pure functions over numpy arrays (no database), so they are easy to test and fast on big samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sstats
from scipy.spatial import distance as sdistance


def gini(counts: np.ndarray) -> float | None:
    """Gini coefficient of non-negative counts (0 = even, →1 = all on one item); None if all zero."""
    x = np.sort(np.asarray(counts, dtype="float64"))
    n = x.size
    total = x.sum()
    if n == 0 or total <= 0:
        return None
    ranks = np.arange(1, n + 1, dtype="float64")
    return float((2.0 * np.sum(ranks * x)) / (n * total) - (n + 1.0) / n)


def top_share(counts: np.ndarray, fraction: float = 0.01) -> float | None:
    """Share of the total held by the top ``fraction`` of items (at least one item)."""
    x = np.asarray(counts, dtype="float64")
    total = x.sum()
    if x.size == 0 or total <= 0:
        return None
    k = max(1, int(math.ceil(x.size * fraction)))
    top = np.partition(x, x.size - k)[x.size - k:]
    return float(top.sum() / total)


@dataclass(frozen=True)
class Trend:
    """A Mann–Kendall test on a series: S, Kendall's tau, the two-sided p-value and Sen's slope."""

    n: int
    s: float
    tau: float | None
    p_value: float | None
    slope: float | None

    @property
    def direction(self) -> str:
        if self.p_value is None:
            return "unknown"
        return "rising" if self.s > 0 else ("falling" if self.s < 0 else "flat")


def mann_kendall(values: np.ndarray) -> Trend:
    """Mann–Kendall trend test with the tie correction (normal approximation, continuity-corrected).

    Needs at least 4 points to say anything; fewer give p = None.
    """
    y = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype="float64")
    n = y.size
    if n < 4:
        return Trend(n=n, s=0.0, tau=None, p_value=None, slope=None)
    i, j = np.triu_indices(n, k=1)
    diffs = y[j] - y[i]
    s = float(np.sign(diffs).sum())
    _, tie_counts = np.unique(y, return_counts=True)
    var_s = (n * (n - 1) * (2 * n + 5) - np.sum(tie_counts * (tie_counts - 1) * (2 * tie_counts + 5))) / 18.0
    if var_s <= 0:
        return Trend(n=n, s=s, tau=0.0, p_value=1.0, slope=0.0)
    if s > 0:
        z = (s - 1) / math.sqrt(var_s)
    elif s < 0:
        z = (s + 1) / math.sqrt(var_s)
    else:
        z = 0.0
    p = float(2 * sstats.norm.sf(abs(z)))
    tau = s / (n * (n - 1) / 2)
    slope = float(np.median(diffs / (j - i)))
    return Trend(n=n, s=s, tau=float(tau), p_value=p, slope=slope)


def weighted_std(values: np.ndarray, weights: np.ndarray) -> float:
    mean = np.average(values, weights=weights)
    return float(math.sqrt(np.average((values - mean) ** 2, weights=weights)))


def wasserstein_normed(ref_values: np.ndarray, ref_weights: np.ndarray, cur_values: np.ndarray,
                       cur_weights: np.ndarray) -> float:
    """Wasserstein-1 distance divided by the reference's standard deviation (scale-free)."""
    distance = sstats.wasserstein_distance(ref_values, cur_values, ref_weights, cur_weights)
    std = weighted_std(ref_values, ref_weights)
    return float(distance / std) if std > 0 else float(distance)


def ks_weighted(ref_values: np.ndarray, ref_weights: np.ndarray, cur_values: np.ndarray,
                cur_weights: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov on integer-weighted samples (expanded; used for small samples)."""
    a = np.repeat(ref_values, ref_weights.astype("int64"))
    b = np.repeat(cur_values, cur_weights.astype("int64"))
    result = sstats.ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


def chi_square(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity on two count vectors over the same categories."""
    table = np.vstack([ref_counts, cur_counts]).astype("float64")
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    statistic, p_value, _, _ = sstats.chi2_contingency(table, correction=False)
    return float(statistic), float(p_value)


def _shares(counts: np.ndarray, eps: float = 0.0) -> np.ndarray:
    x = np.asarray(counts, dtype="float64") + eps
    return x / x.sum()


def jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, so in [0, 1]) between two count vectors."""
    return float(sdistance.jensenshannon(_shares(ref_counts), _shares(cur_counts), base=2))


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index; empty bins are smoothed by ``eps`` so it stays finite."""
    r = np.clip(_shares(ref_counts), eps, None)
    c = np.clip(_shares(cur_counts), eps, None)
    return float(np.sum((c - r) * np.log(c / r)))


def bucket_count_at_most(buckets: np.ndarray, edges: tuple[int, ...], threshold: float) -> float:
    """How many observations in histogram ``buckets`` (counts per upper ``edge`` + overflow) are
    ≤ ``threshold`` — exact at an edge, linearly interpolated inside a bucket."""
    counts = np.asarray(buckets, dtype="float64")
    if counts.size == 0:
        return 0.0
    lower = 0.0
    total = 0.0
    for index, edge in enumerate(edges):
        if threshold >= edge:
            total += counts[index]
            lower = edge
            continue
        total += counts[index] * max(0.0, (threshold - lower) / (edge - lower))
        return float(total)
    return float(total + (counts[len(edges)] if threshold == math.inf else 0.0))


def bucket_quantile(buckets: np.ndarray, edges: tuple[int, ...], q: float) -> float | None:
    """The q-quantile of a histogram, interpolated inside the bucket like Prometheus'
    ``histogram_quantile``; an answer in the overflow bucket is the last edge."""
    counts = np.asarray(buckets, dtype="float64")
    total = counts.sum()
    if total <= 0:
        return None
    rank = q * total
    cumulative = np.cumsum(counts)
    index = int(np.searchsorted(cumulative, rank, side="left"))
    if index >= len(edges):
        return float(edges[-1])
    lower = 0.0 if index == 0 else float(edges[index - 1])
    below = 0.0 if index == 0 else cumulative[index - 1]
    inside = counts[index]
    if inside <= 0:
        return float(edges[index])
    return float(lower + (edges[index] - lower) * (rank - below) / inside)
