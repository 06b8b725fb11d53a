"""The statistics of releases and experiments against hand-computed and scipy values (the shared
z-test, unit moments and rank agreement: portal/tests/test_stats.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from portal.stats import UnitMoments, two_proportion_ztest
from releases import stats


def test_srm_matches_scipy_chisquare_and_hand_value():
    # Given 5000 vs 5200 units on a 50/50 split: chi2 = 2 * 100² / 5100 = 3.9216
    result = stats.srm_check(counts=[5000, 5200], allocations=[0.5, 0.5])
    assert result.chi2 == pytest.approx(2 * 100**2 / 5100)
    reference = sps.chisquare([5000, 5200], [5100, 5100])
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.p_value == pytest.approx(0.04767, abs=1e-5)
    assert not result.flagged  # 0.048 is not below 0.001


def test_srm_flags_a_real_mismatch_with_unequal_allocations():
    # Given a 90/10 plan that delivered 85/15
    result = stats.srm_check(counts=[8500, 1500], allocations=[90, 10])
    assert result.expected == pytest.approx([9000, 1000])
    assert result.chi2 == pytest.approx(500**2 / 9000 + 500**2 / 1000)
    assert result.flagged and result.p_value < 1e-50


def test_srm_three_arms_uses_two_degrees_of_freedom():
    result = stats.srm_check(counts=[340, 330, 330], allocations=[1, 1, 1])
    assert result.dof == 2
    assert result.p_value == pytest.approx(sps.chisquare([340, 330, 330]).pvalue)


@pytest.mark.parametrize("counts, allocations", [([1], [1]), ([1, 2], [0.5]), ([1, -1], [1, 1]), ([1, 1], [0, 1])])
def test_srm_rejects_bad_input(counts, allocations):
    with pytest.raises(ValueError):
        stats.srm_check(counts=counts, allocations=allocations)


def test_msprt_equals_johari_equal_sample_formula():
    # Johari et al. 2017 eq. (11), with σ² the pooled Bernoulli variance and n per arm.
    n, sa, sb, tau = 2000, 400, 470, 0.03
    r = stats.msprt(successes_a=sa, trials_a=n, successes_b=sb, trials_b=n, tau=tau)
    p = (sa + sb) / (2 * n)
    sigma2 = p * (1 - p)
    d = sb / n - sa / n
    lam = math.sqrt(2 * sigma2 / (2 * sigma2 + n * tau**2)) * math.exp(
        n**2 * tau**2 * d**2 / (4 * sigma2 * (2 * sigma2 + n * tau**2))
    )
    assert r.log_likelihood_ratio == pytest.approx(math.log(lam))
    assert r.p_value == pytest.approx(min(1, 1 / lam))
    # The confidence sequence excludes 0 exactly when the test rejects at the same alpha
    # (up to the pooled/unpooled variance) and is wider than the fixed-horizon interval.
    z = two_proportion_ztest(successes_a=sa, trials_a=n, successes_b=sb, trials_b=n)
    assert r.cs_low < z.ci_low and r.cs_high > z.ci_high
    assert r.reject == (r.cs_low > 0)


def test_msprt_waits_for_enough_data():
    r = stats.msprt(successes_a=1, trials_a=50, successes_b=40, trials_b=50)
    assert not r.enough_data and not r.reject and r.p_value == 1.0


def test_msprt_running_keeps_the_minimum_p_value_and_narrows():
    looks = [(20 * k, 100 * k, 26 * k, 100 * k) for k in range(1, 30)]
    results = stats.msprt_running(looks)
    ps = [r.p_value for r in results]
    assert all(b <= a for a, b in zip(ps, ps[1:], strict=False))
    widths = [r.cs_high - r.cs_low for r in results if r.enough_data]
    assert all(b <= a + 1e-12 for a, b in zip(widths, widths[1:], strict=False))
    assert results[-1].reject  # a 6-point lift is found


def test_sample_size_matches_hand_computation():
    # p1 = 0.10, p2 = 0.12: (1.95996·sqrt(2·0.11·0.89) + 0.84162·sqrt(0.09 + 0.1056))² / 0.02² = 3840.8
    assert stats.sample_size_two_proportions(baseline=0.10, mde=0.02) == 3841
    assert stats.sample_size_two_proportions(baseline=0.10, mde=0.2, relative=True) == 3841
    # More power or a smaller effect needs more data.
    assert stats.sample_size_two_proportions(baseline=0.10, mde=0.02, power=0.9) > 3841
    assert stats.sample_size_two_proportions(baseline=0.10, mde=0.01) > 4 * 3841 * 0.9


def test_sample_size_delivers_the_power_it_promises():
    # Simulate at the computed n: the z-test should reject about 80% of the time.
    n = stats.sample_size_two_proportions(baseline=0.2, mde=0.03)
    rng = np.random.default_rng(7)
    sa = rng.binomial(n, 0.2, size=4000)
    sb = rng.binomial(n, 0.23, size=4000)
    pooled = (sa + sb) / (2 * n)
    z = (sb - sa) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    power = float((np.abs(z) > 1.959964).mean())
    assert 0.77 < power < 0.83


def test_sample_size_rejects_bad_input():
    with pytest.raises(ValueError, match="non-zero effect"):
        stats.sample_size_two_proportions(baseline=0.1, mde=0)
    with pytest.raises(ValueError):
        stats.sample_size_two_proportions(baseline=0.95, mde=0.1)


def test_aa_with_hourly_peeking_keeps_sequential_false_positives_below_alpha():
    # 2000 A/A experiments, looked at every hour for a week (168 looks).
    sim = stats.simulate_aa(replicates=2000, looks=168, trials_per_look=50, rate=0.2, alpha=0.05, seed=1)
    assert sim.sequential_false_positive_rate <= 0.05
    assert sim.sequential_ci_high <= 0.05 + 0.01  # not a lucky draw
    # The naive habit (peek at the z-test every hour) is badly inflated, the fixed horizon is not.
    assert sim.naive_peeking_false_positive_rate > 0.2
    assert sim.fixed_horizon_false_positive_rate == pytest.approx(0.05, abs=0.015)


def test_sequential_test_has_power_against_a_real_effect():
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(200):
        sa = rng.binomial(50, 0.20, size=168).cumsum()
        sb = rng.binomial(50, 0.25, size=168).cumsum()
        n = np.arange(1, 169) * 50
        results = stats.msprt_running(list(zip(sa, n, sb, n, strict=True)))
        hits += results[-1].reject and results[-1].difference > 0
    assert hits / 200 > 0.9


def test_sample_size_of_a_vanishing_effect_is_a_clear_error_not_an_overflow():
    # Given an effect so small the sample size is infinite (found by schemathesis)
    # When asked, Then a ValueError names the problem instead of an OverflowError
    with pytest.raises(ValueError, match="too small to detect"):
        stats.sample_size_two_proportions(baseline=4.8e-272, mde=4.8e-272)


# --- the viewer as the unit of analysis ---------------------------------------------------------


def test_tests_with_unit_moments_report_the_unit_and_widen():
    rng = np.random.default_rng(2)
    p = rng.beta(1, 4, size=(2, 300))
    n = rng.poisson(6, size=(2, 300)) + 1
    s = rng.binomial(n, p)
    ma, mb = (UnitMoments.from_units(s[i], n[i]) for i in (0, 1))
    counts = {"successes_a": int(s[0].sum()), "trials_a": int(n[0].sum()),
              "successes_b": int(s[1].sum()), "trials_b": int(n[1].sum())}
    by_list = two_proportion_ztest(**counts)
    by_viewer = two_proportion_ztest(**counts, moments_a=ma, moments_b=mb)
    assert (by_list.unit, by_viewer.unit) == ("list", "viewer")
    assert by_viewer.design_effect > 2
    assert by_viewer.ci_high - by_viewer.ci_low == pytest.approx(
        (by_list.ci_high - by_list.ci_low) * math.sqrt(by_viewer.design_effect), rel=1e-9)
    assert abs(by_viewer.z) < abs(by_list.z)
    seq = stats.msprt(**counts, moments_a=ma, moments_b=mb, min_trials=10)
    assert seq.unit == "viewer" and seq.design_effect == pytest.approx(by_viewer.design_effect)
    assert seq.p_value >= stats.msprt(**counts, min_trials=10).p_value
    # Moments on one side only: the rule stays the same for both arms (lists).
    assert two_proportion_ztest(**counts, moments_a=ma).unit == "list"


def test_viewer_randomised_aa_needs_the_viewer_as_the_unit():
    sim = stats.simulate_aa_viewers(replicates=600, looks=72, viewers=200, lists_per_viewer_per_look=0.15,
                                    rate=0.2, concentration=4.0, seed=4)
    assert sim.mean_design_effect > 2
    # Lists as independent trials: far too many false alarms, with or without peeking.
    assert sim.list_level_sequential_false_positive_rate > 0.15
    assert sim.list_level_fixed_horizon_false_positive_rate > 0.15
    # Viewers as the unit: the always-valid test stays at or below alpha, the fixed horizon near it.
    assert sim.viewer_level_sequential_false_positive_rate <= 0.05
    assert sim.viewer_level_fixed_horizon_false_positive_rate == pytest.approx(0.05, abs=0.03)


# --- the sample size in viewers ---------------------------------------------------------------------


def test_viewer_sample_size_is_the_independent_lists_times_the_design_effect_per_lists_per_viewer():
    one = stats.sample_size_viewers(baseline=0.1, mde=0.02, design_effect=1.0, lists_per_viewer=1.0)
    assert one.viewers == one.lists_independent == 3841  # one list per viewer: Fleiss' textbook figure
    plan = stats.sample_size_viewers(baseline=0.2, mde=0.03, design_effect=4.6, lists_per_viewer=10.0)
    assert plan.lists_independent == stats.sample_size_two_proportions(baseline=0.2, mde=0.03)
    assert plan.lists_needed == math.ceil(plan.lists_independent * 4.6)
    assert plan.viewers == math.ceil(plan.lists_needed / 10.0)
    with pytest.raises(ValueError, match="design effect"):
        stats.sample_size_viewers(baseline=0.2, mde=0.03, design_effect=0.0, lists_per_viewer=10.0)
    with pytest.raises(ValueError, match="lists per viewer"):
        stats.sample_size_viewers(baseline=0.2, mde=0.03, design_effect=2.0, lists_per_viewer=0.0)


def test_power_is_the_inverse_of_the_sample_size():
    n = stats.sample_size_two_proportions(baseline=0.1, mde=0.02, power=0.8)
    assert stats.power_two_proportions(baseline=0.1, mde=0.02, trials_a=n, trials_b=n) == pytest.approx(0.8, abs=0.002)
    # The same lists with a design effect of 3 have the power of a third of them.
    inflated = stats.power_two_proportions(baseline=0.1, mde=0.02, trials_a=n, trials_b=n, design_effect=3.0)
    third = stats.power_two_proportions(baseline=0.1, mde=0.02, trials_a=n / 3, trials_b=n / 3)
    assert inflated == pytest.approx(third) and inflated < 0.4


def test_the_viewer_plan_has_its_nominal_power_in_viewer_randomised_experiments():
    # A pilot A/A measures the design effect and lists per viewer as the analysis does; experiments
    # with a true effect equal to the MDE then run at the planned viewers per arm.
    sim = stats.simulate_power_viewers(replicates=600, rate=0.2, effect=0.03, concentration=4.0,
                                       lists_per_viewer=10.0, pilot_viewers=2000, seed=0)
    assert sim.pilot_design_effect > 3  # heavy-tailed activity and an ICC of 0.2
    assert sim.predicted_power == pytest.approx(0.8, abs=0.01)
    low, _high = sim.viewer_plan_power_ci
    assert 0.72 <= sim.viewer_plan_power <= 0.88 and low < 0.8
    # Planning in lists (independent-trials lists ÷ lists per viewer) leaves the same test far short.
    assert sim.list_plan_viewers < sim.plan["viewers"] / 3 and sim.list_plan_power < 0.45
