"""The shared statistics (portal/stats.py) against hand-computed and scipy values: the two-proportion
z-test audits and releases use, the unit of analysis, and the rank agreement of shadow comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from portal import stats

# --- the two-proportion z-test ------------------------------------------------------------------


def test_ztest_hand_computed():
    # p_a = 0.10, p_b = 0.13, n = 1000 each; pooled 0.115.
    r = stats.two_proportion_ztest(successes_a=100, trials_a=1000, successes_b=130, trials_b=1000)
    se_pooled = math.sqrt(0.115 * 0.885 * (2 / 1000))
    assert r.z == pytest.approx(0.03 / se_pooled)
    assert r.z == pytest.approx(2.1027, abs=1e-4)
    assert r.p_value == pytest.approx(0.035488, abs=1e-5)
    se = math.sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000)
    assert r.ci_low == pytest.approx(0.03 - 1.959964 * se, abs=1e-6)
    assert r.ci_high == pytest.approx(0.03 + 1.959964 * se, abs=1e-6)
    assert r.relative_lift == pytest.approx(0.3)
    assert r.significant and r.unit == "list" and r.design_effect == 1.0


@pytest.mark.parametrize("sa, na, sb, nb", [(100, 1000, 130, 1000), (37, 420, 29, 390), (5000, 20000, 5100, 20500)])
def test_ztest_squared_equals_pearson_chi2_without_correction(sa, na, sb, nb):
    r = stats.two_proportion_ztest(successes_a=sa, trials_a=na, successes_b=sb, trials_b=nb)
    chi2, p, _, _ = sps.chi2_contingency([[sa, na - sa], [sb, nb - sb]], correction=False)
    assert r.z**2 == pytest.approx(chi2)
    assert r.p_value == pytest.approx(p)


def test_ztest_without_any_variation_is_not_significant():
    r = stats.two_proportion_ztest(successes_a=0, trials_a=40, successes_b=0, trials_b=60)
    assert (r.z, r.p_value, r.significant) == (0.0, 1.0, False)


def test_ztest_refuses_impossible_counts():
    with pytest.raises(ValueError, match="arm a: need 0 <= successes <= trials"):
        stats.two_proportion_ztest(successes_a=11, trials_a=10, successes_b=1, trials_b=10)
    with pytest.raises(ValueError, match="arm b: need 0 <= successes <= trials"):
        stats.two_proportion_ztest(successes_a=1, trials_a=10, successes_b=-1, trials_b=10)
    with pytest.raises(ValueError, match="at least one trial"):
        stats.two_proportion_ztest(successes_a=0, trials_a=0, successes_b=1, trials_b=10)


def test_p_value_is_the_ztests_two_sided_one_and_undefined_without_trials():
    # 12 of 30 against 30 of 50 (the fairness checks' counts): pooled 42/80,
    # z = (0.4 - 0.6) / sqrt(0.525 · 0.475 · (1/30 + 1/50)) = -1.73422, p = 2 Φ(-1.73422) = 0.082879.
    p = stats.two_proportion_p_value(successes_a=12, trials_a=30, successes_b=30, trials_b=50)
    assert p == pytest.approx(0.0828791, abs=1e-7)
    # two-sided: the order of the arms does not matter; float counts (aequitas' crosstabs) are welcome
    assert stats.two_proportion_p_value(
        successes_a=30.0, trials_a=50.0, successes_b=12.0, trials_b=30.0
    ) == pytest.approx(p, rel=1e-12)
    assert stats.two_proportion_p_value(successes_a=3, trials_a=0, successes_b=1, trials_b=10) is None
    assert stats.two_proportion_p_value(successes_a=3, trials_a=10, successes_b=0, trials_b=0) is None


# --- the unit of analysis -------------------------------------------------------------------------


def test_delta_method_variance_is_the_binomial_one_when_every_viewer_has_one_list():
    outcomes = [1] * 30 + [0] * 70
    moments = stats.UnitMoments.from_units(outcomes, [1] * 100)
    clustered = stats.rate_variance(successes=30, trials=100, moments=moments)
    assert clustered == pytest.approx(0.3 * 0.7 / 100 * 100 / 99)
    assert stats.rate_variance(successes=30, trials=100) == pytest.approx(0.3 * 0.7 / 100)


def test_delta_variance_by_hand_and_vectorised():
    # Two viewers: 1 of 2 lists and 3 of 4. N = 6, p̂ = 4/6; Σ(sᵢ - p̂nᵢ)² = (1 - 4/3)² + (3 - 8/3)² = 2/9;
    # K/(K-1) · (2/9) / 36 = 2 · 2/9 / 36 = 1/81.
    m = stats.UnitMoments.from_units([1, 3], [2, 4])
    assert stats.rate_variance(successes=4, trials=6, moments=m) == pytest.approx(1 / 81)
    batch = stats.delta_variance(
        sum_ss=np.array([m.sum_successes_sq] * 3),
        sum_sn=np.array([m.sum_cross] * 3),
        sum_nn=np.array([m.sum_trials_sq] * 3),
        trials=np.array([6] * 3),
        units=np.array([2] * 3),
        rate=np.array([4 / 6] * 3),
    )
    assert batch == pytest.approx([1 / 81] * 3)


def test_delta_method_variance_matches_the_spread_of_viewer_level_resamples():
    # Viewers who differ a lot (some follow nearly every list, some none): the spread of the rate over
    # many independent draws of viewers is what the delta method must estimate, not the binomial one.
    rng = np.random.default_rng(7)
    rates, estimates = [], []
    for _ in range(2000):
        p = rng.beta(0.8, 3.2, size=200)
        n = rng.poisson(8, size=200) + 1
        s = rng.binomial(n, p)
        rates.append(s.sum() / n.sum())
        estimates.append(
            stats.rate_variance(successes=int(s.sum()), trials=int(n.sum()), moments=stats.UnitMoments.from_units(s, n))
        )
    true_variance = float(np.var(rates))
    assert np.mean(estimates) == pytest.approx(true_variance, rel=0.1)
    binomial = np.mean(rates) * (1 - np.mean(rates)) / (200 * 9)
    assert true_variance > 2 * binomial  # what treating lists as independent would miss


# --- rank agreement -------------------------------------------------------------------------------


def test_agreement_by_hand_where_the_shared_items_alone_would_say_full_agreement():
    # A = a b c, B = a c d (k = 3). The shared items a, c are in the same order (Spearman over them
    # alone: 1), but b fell out, d came in and c moved up. Over the union a b c d, absent at rank 4:
    # A ranks 1 2 3 4, B ranks 1 4 2 3; d = 0 -2 1 1, Σd² = 6, rho = 1 - 6·6 / (4·15) = 0.4;
    # pairs concordant ab ac ad cd, discordant bc bd: tau = (4 - 2) / 6 = 1/3.
    r = stats.ranking_agreement(["a", "b", "c"], ["a", "c", "d"], k=3)
    assert r.overlap == pytest.approx(2 / 3)
    assert r.spearman_rho == pytest.approx(0.4)
    assert r.kendall_tau == pytest.approx(1 / 3)


def test_agreement_by_hand_with_ties_for_disjoint_lists():
    # A = a b, B = c d (k = 2). Ranks over a b c d: A 1 2 3 3, B 3 3 1 2.
    # Spearman (mid-ranks 1 2 3.5 3.5 / 3.5 3.5 1 2, mean 2.5): Σ dev·dev = -4, Σ dev² = 4.5 each: -4/4.5.
    # Kendall tau-b: 4 discordant pairs, none concordant, one tie in A only (cd) and one in B only (ab):
    # (0 - 4) / sqrt((4 + 1)(4 + 1)) = -0.8.
    r = stats.ranking_agreement(["a", "b"], ["c", "d"], k=2)
    assert r.overlap == 0.0
    assert r.spearman_rho == pytest.approx(-4 / 4.5)
    assert r.kendall_tau == pytest.approx(-0.8)


def test_agreement_identical_disjoint_reversed_and_partial():
    items = [f"m{i}" for i in range(20)]
    same = stats.ranking_agreement(items, items, k=20)
    assert (same.overlap, same.kendall_tau, same.spearman_rho) == (1.0, pytest.approx(1.0), pytest.approx(1.0))
    other = stats.ranking_agreement(items, [f"x{i}" for i in range(20)], k=20)
    assert other.overlap == 0.0 and other.kendall_tau < 0 and other.spearman_rho < 0
    reversed_ = stats.ranking_agreement(items, items[::-1], k=20)
    assert reversed_.overlap == 1.0 and reversed_.kendall_tau == pytest.approx(-1.0)
    assert reversed_.spearman_rho == pytest.approx(-1.0)
    # Half shared, same order: overlap 0.5; the ranks over the union are
    # P = 1..20, 21×10 and C = 1..10, 21×10, 11..20 — compare with scipy directly.
    half = stats.ranking_agreement(items, items[:10] + [f"x{i}" for i in range(10)], k=20)
    assert half.overlap == 0.5
    ra = list(range(1, 21)) + [21] * 10
    rb = list(range(1, 11)) + [21] * 10 + list(range(11, 21))
    assert half.kendall_tau == pytest.approx(sps.kendalltau(ra, rb).statistic)
    assert half.spearman_rho == pytest.approx(sps.spearmanr(ra, rb).statistic)


def test_agreement_cuts_at_k_counts_duplicates_once_and_is_undefined_under_two_items():
    # Only the top k count: beyond it the lists may differ freely.
    r = stats.ranking_agreement(["a", "b", "c", "x"], ["a", "b", "c", "y"], k=3)
    assert (r.overlap, r.kendall_tau, r.spearman_rho) == (1.0, pytest.approx(1.0), pytest.approx(1.0))
    # A shorter list than k: overlap is still over k.
    assert stats.ranking_agreement(["a", "a", "b"], ["a", "b"], k=4).overlap == 0.5
    assert stats.ranking_agreement([], [], k=5) == stats.Agreement(5, 0.0, None, None)
    assert stats.ranking_agreement(["a"], ["a"], k=5) == stats.Agreement(5, 0.2, None, None)
    with pytest.raises(ValueError, match="k must be at least 1"):
        stats.ranking_agreement(["a"], ["a"], k=0)
