"""The statistics every app shares: pure functions of counts and ranked lists, no database.

Audits (the fairness checks' significance), releases (rollouts, experiments, shadow reports) and
serving (the shadow thread's running means) all use these, so they live at the bottom of the house;
this module imports nothing of the project.

* ``two_proportion_ztest`` — the fixed-horizon two-proportion z-test (pooled standard error under
  H0) with a Wald confidence interval for the difference (unpooled standard error); with both arms'
  per-viewer ``UnitMoments`` the same with the delta-method variances. ``two_proportion_p_value``
  is its two-sided p-value, None when an arm has no trials (the fairness checks' "undefined").
* ``UnitMoments`` / ``rate_variance`` / ``delta_variance`` / ``difference_variances`` — the unit of
  analysis. One viewer is served many lists whose outcomes go together; treating lists as
  independent trials understates the variance. With the per-viewer second moments of an arm the
  delta-method variance of the ratio S/N (Deng, Knoblich & Lu, "Applying the Delta Method in
  Metric Analytics", KDD 2018) is

      Var(p̂) = K/(K-1) · Σᵢ (sᵢ - p̂ nᵢ)² / N²,   N = Σ nᵢ, K viewers,

  which equals the binomial p̂(1-p̂)/N (times K/(K-1)) when every viewer has one list. Without
  moments (the lists are the units) the binomial variance is used.
* ``ranking_agreement`` — how much two ranked top-k lists agree: overlap@k, and Kendall's tau-b and
  Spearman's rho over the union of the two lists, an item a list lacks at rank k + 1 (Fagin, Kumar &
  Sivakumar, "Comparing top k lists", 2003). The union, not only the shared items: two lists that
  share two items in the same order and differ in every other one are not in full agreement, and
  the correlation stays defined however few items they share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

# --- the unit of analysis: per-viewer moments and the delta-method variance ---------------------


@dataclass(frozen=True)
class UnitMoments:
    """One arm's lists summed per viewer (sᵢ successes of nᵢ lists): K and the second moments."""

    units: int
    sum_trials_sq: float
    sum_successes_sq: float
    sum_cross: float

    @classmethod
    def from_dict(cls, data: dict | None) -> UnitMoments | None:
        if not data:
            return None
        return cls(
            int(data["units"]), float(data["sum_trials_sq"]), float(data["sum_successes_sq"]), float(data["sum_cross"])
        )

    @classmethod
    def from_units(cls, successes: Sequence[int], trials: Sequence[int]) -> UnitMoments:
        s = np.asarray(successes, dtype=float)
        n = np.asarray(trials, dtype=float)
        return cls(len(n), float((n * n).sum()), float((s * s).sum()), float((s * n).sum()))


def rate_variance(
    *, successes: int, trials: int, moments: UnitMoments | None = None, rate: float | None = None
) -> float:
    """Sampling variance of the success rate S/N, evaluated at ``rate`` (default S/N).

    With ``moments`` (at least two viewers) the delta-method variance with the viewer as the unit;
    otherwise the binomial ``rate (1 - rate) / N`` (lists as the units)."""
    if trials <= 0:
        return 0.0
    r = successes / trials if rate is None else rate
    if moments is None or moments.units < 2:
        return r * (1 - r) / trials
    return float(
        delta_variance(
            sum_ss=moments.sum_successes_sq,
            sum_sn=moments.sum_cross,
            sum_nn=moments.sum_trials_sq,
            trials=trials,
            units=moments.units,
            rate=r,
        )
    )


def delta_variance(*, sum_ss, sum_sn, sum_nn, trials, units, rate):
    """K/(K-1) · Σ(sᵢ - r nᵢ)² / N² from the moments (Σsᵢ², Σsᵢnᵢ, Σnᵢ²); vectorised over numpy
    arrays, so simulations of many experiments use the analysis' own formula (no division by zero:
    N and K - 1 are floored at 1)."""
    residual = np.maximum(sum_ss - 2 * rate * sum_sn + rate * rate * sum_nn, 0.0)
    return residual / np.maximum(trials, 1) ** 2 * units / np.maximum(units - 1, 1)


def unit_of_analysis(moments_a: UnitMoments | None, moments_b: UnitMoments | None) -> str:
    """What a test on these arms treats as independent: "viewer" with both arms' moments, else "list"."""
    return "viewer" if moments_a is not None and moments_b is not None else "list"


def difference_variances(
    *,
    successes_a: int,
    trials_a: int,
    successes_b: int,
    trials_b: int,
    moments_a: UnitMoments | None = None,
    moments_b: UnitMoments | None = None,
) -> tuple[float, float, float]:
    """The variances of p̂_b - p̂_a: (pooled under H0, unpooled, design effect = the unpooled one used
    ÷ the binomial one). Moments on one side only count as none: one rule for both arms."""
    ma, mb = moments_a, moments_b
    if ma is None or mb is None:
        ma = mb = None
    sa, na, sb, nb = successes_a, trials_a, successes_b, trials_b
    pooled = (sa + sb) / (na + nb)
    v0 = rate_variance(successes=sa, trials=na, moments=ma, rate=pooled) + rate_variance(
        successes=sb, trials=nb, moments=mb, rate=pooled
    )
    v = rate_variance(successes=sa, trials=na, moments=ma) + rate_variance(successes=sb, trials=nb, moments=mb)
    binomial = rate_variance(successes=sa, trials=na) + rate_variance(successes=sb, trials=nb)
    design_effect = v / binomial if ma is not None and binomial > 0 else 1.0
    return v0, v, design_effect


def counts_check(*, successes: float, trials: float, arm: str) -> None:
    """ValueError naming the arm unless 0 <= successes <= trials."""
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"arm {arm}: need 0 <= successes <= trials (got {successes}/{trials})")


# --- fixed-horizon two-proportion z-test --------------------------------------------------------


@dataclass(frozen=True)
class ZTestResult:
    successes_a: int
    trials_a: int
    successes_b: int
    trials_b: int
    rate_a: float
    rate_b: float
    difference: float  # rate_b - rate_a
    relative_lift: float | None
    z: float
    p_value: float
    confidence: float
    ci_low: float
    ci_high: float
    significant: bool
    unit: str = "list"  # what the variance treats as independent: "viewer" (delta method) or "list"
    design_effect: float = 1.0  # the variance used / the binomial one

    def as_dict(self) -> dict:
        return asdict(self)


def two_proportion_ztest(
    *,
    successes_a: int,
    trials_a: int,
    successes_b: int,
    trials_b: int,
    alpha: float = 0.05,
    moments_a: UnitMoments | None = None,
    moments_b: UnitMoments | None = None,
) -> ZTestResult:
    """Two-sided z-test of H0: p_a = p_b and a (1 - alpha) CI for p_b - p_a.

    With lists as units: z = (p̂_b - p̂_a) / sqrt(p̂ (1 - p̂) (1/n_a + 1/n_b)) with the pooled
    p̂ = (x_a + x_b)/(n_a + n_b); CI = (p̂_b - p̂_a) ± z_{1-alpha/2} sqrt(p̂_a(1-p̂_a)/n_a + p̂_b(1-p̂_b)/n_b)
    (z² is then Pearson's chi-square of the 2x2 table without Yates' correction). With both arms'
    ``moments`` the same with the delta-method variances (``rate_variance``), pooled under H0.
    With no variation at all (both rates 0 or both 1) z = 0 and p = 1.
    """
    counts_check(successes=successes_a, trials=trials_a, arm="a")
    counts_check(successes=successes_b, trials=trials_b, arm="b")
    if trials_a == 0 or trials_b == 0:
        raise ValueError("both arms need at least one trial")
    rate_a = successes_a / trials_a
    rate_b = successes_b / trials_b
    diff = rate_b - rate_a
    v0, v, design_effect = difference_variances(
        successes_a=successes_a,
        trials_a=trials_a,
        successes_b=successes_b,
        trials_b=trials_b,
        moments_a=moments_a,
        moments_b=moments_b,
    )
    se_pooled = math.sqrt(v0)
    if se_pooled == 0:
        z, p_value = 0.0, 1.0
    else:
        z = diff / se_pooled
        p_value = float(2 * sps.norm.sf(abs(z)))
    se = math.sqrt(v)
    crit = float(sps.norm.ppf(1 - alpha / 2))
    return ZTestResult(
        successes_a,
        trials_a,
        successes_b,
        trials_b,
        rate_a,
        rate_b,
        diff,
        (diff / rate_a) if rate_a > 0 else None,
        float(z),
        p_value,
        1 - alpha,
        diff - crit * se,
        diff + crit * se,
        p_value < alpha,
        unit_of_analysis(moments_a, moments_b),
        float(design_effect),
    )


def two_proportion_p_value(*, successes_a: float, trials_a: float, successes_b: float, trials_b: float) -> float | None:
    """The two-sided p-value of ``two_proportion_ztest`` (lists as units); None when an arm has no
    trials, where the test is undefined."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    return two_proportion_ztest(
        successes_a=successes_a, trials_a=trials_a, successes_b=successes_b, trials_b=trials_b
    ).p_value


# --- agreement of two ranked top-k lists --------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    k: int
    overlap: float  # |A ∩ B| / k
    kendall_tau: float | None
    spearman_rho: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def ranking_agreement(first: Sequence[str], second: Sequence[str], *, k: int) -> Agreement:
    """How much two ranked lists agree: overlap@k and rank correlations over their union.

    overlap@k = |top_k(A) ∩ top_k(B)| / k. For the correlations every item of the union gets its
    rank in each list (1 = best) and the rank k + 1 where a list lacks it — the "location
    parameter" treatment of top-k lists (Fagin, Kumar & Sivakumar, "Comparing top k lists", 2003) —
    then Kendall's tau-b (which handles those ties) and Spearman's rho (ties at their mean rank) are
    computed. Identical lists give 1, 1, 1; disjoint lists give overlap 0 and negative
    correlations. With fewer than two distinct items the correlations are undefined (None); k < 1 is
    a ValueError.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1 (got {k})")
    a = list(dict.fromkeys(first))[:k]
    b = list(dict.fromkeys(second))[:k]
    overlap = len(set(a) & set(b)) / k
    union = list(dict.fromkeys(a + b))
    if len(union) < 2:
        return Agreement(k, overlap, None, None)
    rank_a = {item: i + 1 for i, item in enumerate(a)}
    rank_b = {item: i + 1 for i, item in enumerate(b)}
    ra = [rank_a.get(item, k + 1) for item in union]
    rb = [rank_b.get(item, k + 1) for item in union]
    tau = sps.kendalltau(ra, rb).statistic
    rho = sps.spearmanr(ra, rb).statistic
    clean = lambda x: None if x is None or math.isnan(x) else float(x)  # noqa: E731
    return Agreement(k, overlap, clean(tau), clean(rho))
