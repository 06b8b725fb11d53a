"""Statistics for releases and experiments: pure functions of counts, no database.

The fixed-horizon two-proportion z-test, the unit of analysis (``UnitMoments``, the delta-method
variance) and the agreement of two ranked lists are shared with audits and serving and live in
``portal.stats``; what is built on them for releases alone is here:

* ``srm_check`` — sample-ratio mismatch: Pearson's chi-square goodness of fit of the observed
  arm sizes against the planned allocation; ``p < 0.001`` flags the experiment as untrustworthy.
* ``msprt`` — an always-valid sequential test: the mixture sequential probability ratio test
  with a normal mixture (Johari, Koomen, Pekelis & Walsh, "Peeking at A/B tests", KDD 2017;
  Johari, Pekelis & Walsh, "Always valid inference", Operations Research 2022). Looking at it
  every hour does not inflate the false-positive rate (Ville's inequality).
* ``sample_size_two_proportions`` — the sample per arm needed to detect a minimum effect
  (Fleiss, "Statistical Methods for Rates and Proportions", eq. 4.14 without continuity correction).
* ``simulate_aa`` — repeated A/A tests with hourly peeking: the false-positive rate of the
  sequential test against the naive "peek at the z-test every hour" habit.
* ``canary_plan`` / ``evidence_eta`` — the canary lists each rollout step needs to detect a given
  drop in the success rate, and how long they take at the measured traffic rate.
* ``sample_size_viewers`` / ``power_two_proportions`` — the same in viewers per arm for a
  viewer-randomised experiment (the independent-trials lists × the measured design effect ÷ lists per
  viewer), and the power a given sample has; ``simulate_power_viewers`` checks the plan's power.
* ``simulate_aa_viewers`` — the same where viewers (the unit of randomisation) each get many
  lists: the list-level variance is too small, the viewer-level (delta-method) one is right.

The unit of analysis. Arms are assigned by viewer, and one viewer is served many lists, whose
outcomes go together (some viewers follow recommendations far more than others). Treating lists as
independent trials understates the variance and inflates false positives. Every test here takes the
per-viewer second moments of an arm (``portal.stats.UnitMoments``) and then uses the delta-method
variance of the ratio S/N (``portal.stats.rate_variance``; with one list per viewer it is the
binomial one).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

from portal.stats import (
    UnitMoments,
    counts_check,
    delta_variance,
    difference_variances,
    two_proportion_ztest,
    unit_of_analysis,
)

SRM_THRESHOLD = 0.001


# --- sample-ratio mismatch ----------------------------------------------------------------------


@dataclass(frozen=True)
class SrmResult:
    counts: list[int]
    expected: list[float]
    chi2: float
    dof: int
    p_value: float
    threshold: float
    flagged: bool

    def as_dict(self) -> dict:
        return asdict(self)


def srm_check(
    *, counts: Sequence[int], allocations: Sequence[float], threshold: float = SRM_THRESHOLD
) -> SrmResult:
    """Chi-square goodness of fit of ``counts`` (units per arm) against ``allocations``.

    chi2 = sum_i (O_i - E_i)^2 / E_i with E_i = N * w_i / sum(w), dof = k - 1. ``flagged`` when
    p < ``threshold`` (0.001 by convention: SRM checks run on every look, so they use a strict
    threshold, and a true mismatch yields astronomically small p-values anyway).
    """
    if len(counts) != len(allocations) or len(counts) < 2:
        raise ValueError("srm_check needs one count per arm and at least two arms")
    if any(c < 0 for c in counts) or any(w <= 0 for w in allocations):
        raise ValueError("counts must be >= 0 and allocations > 0")
    total = float(sum(counts))
    weight = float(sum(allocations))
    expected = [total * w / weight for w in allocations]
    if total == 0:
        return SrmResult(list(counts), expected, 0.0, len(counts) - 1, 1.0, threshold, False)
    chi2 = float(sum((o - e) ** 2 / e for o, e in zip(counts, expected, strict=True)))
    dof = len(counts) - 1
    p_value = float(sps.chi2.sf(chi2, dof))
    return SrmResult([int(c) for c in counts], expected, chi2, dof, p_value, threshold, p_value < threshold)


# --- always-valid sequential test (mSPRT, normal mixture) ---------------------------------------


@dataclass(frozen=True)
class SequentialResult:
    successes_a: int
    trials_a: int
    successes_b: int
    trials_b: int
    difference: float
    tau: float
    alpha: float
    log_likelihood_ratio: float
    p_value: float  # always-valid p-value at this look (min over earlier looks applied by callers)
    cs_low: float
    cs_high: float
    reject: bool
    enough_data: bool
    unit: str = "list"  # "viewer" (delta-method variance) or "list"
    design_effect: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)


def _msprt_log_lr(diff, variance, tau: float):
    """log Λ for an estimate ``diff`` with sampling ``variance`` V under a N(0, tau²) mixture.

    Λ = sqrt(V / (V + τ²)) · exp(τ² θ̂² / (2 V (V + τ²))). With equal arms, V = 2σ²/n and this is
    exactly Johari et al. (2017), eq. (11): sqrt(2σ²/(2σ²+nτ²)) · exp(n²τ²(Ȳ−X̄)²/(4σ²(2σ²+nτ²))).
    Vectorised over numpy arrays; V = 0 (no variation yet) gives log Λ = 0 (no evidence).
    """
    diff = np.asarray(diff, dtype=float)
    variance = np.asarray(variance, dtype=float)
    tau2 = tau * tau
    safe_v = np.where(variance > 0, variance, 1.0)
    log_lr = 0.5 * np.log(safe_v / (safe_v + tau2)) + tau2 * diff**2 / (2 * safe_v * (safe_v + tau2))
    return np.where(variance > 0, log_lr, 0.0)


def _pooled_variance(sa, na, sb, nb):
    sa, na, sb, nb = (np.asarray(x, dtype=float) for x in (sa, na, sb, nb))
    pooled = (sa + sb) / np.maximum(na + nb, 1)
    return pooled * (1 - pooled) * (1 / np.maximum(na, 1) + 1 / np.maximum(nb, 1))


def msprt(
    *,
    successes_a: int,
    trials_a: int,
    successes_b: int,
    trials_b: int,
    alpha: float = 0.05,
    tau: float = 0.03,
    min_trials: int = 100,
    moments_a: UnitMoments | None = None,
    moments_b: UnitMoments | None = None,
) -> SequentialResult:
    """The mixture SPRT for H0: p_b - p_a = 0, valid at any number of looks.

    Under H0, Λ_n is a non-negative martingale with mean 1, so by Ville's inequality
    P(sup_n Λ_n ≥ 1/α) ≤ α: rejecting the first time Λ_n ≥ 1/α keeps the type-I error ≤ α however
    often one looks. The always-valid p-value is p_n = min(1, min_{k≤n} 1/Λ_k). The variance uses
    the pooled rate (the plug-in of Johari et al. for Bernoulli data; with both arms' ``moments``,
    the delta-method variance at the pooled rate, so a viewer's many lists count as one unit's
    evidence, not as independent trials). The matching always-valid
    confidence sequence (where Λ < 1/α for the shifted hypothesis θ) is
        θ̂ ± sqrt( 2 V (V + τ²) / τ² · ( log(1/α) + ½ log((V + τ²) / V) ) ),
    here with the unpooled V. ``tau`` is the mixture's scale: the size of difference the test is
    tuned to detect fastest (rates of 0.1–0.4 and effects of a few points: 0.03). Below
    ``min_trials`` per arm the plug-in variance is too noisy, so no decision is taken.
    """
    counts_check(successes=successes_a, trials=trials_a, arm="a")
    counts_check(successes=successes_b, trials=trials_b, arm="b")
    if tau <= 0 or not 0 < alpha < 1:
        raise ValueError("tau must be > 0 and alpha in (0, 1)")
    rate_a = successes_a / trials_a if trials_a else 0.0
    rate_b = successes_b / trials_b if trials_b else 0.0
    diff = rate_b - rate_a
    enough = min(trials_a, trials_b) >= max(min_trials, 1)
    unit = unit_of_analysis(moments_a, moments_b)
    if not enough:
        return SequentialResult(successes_a, trials_a, successes_b, trials_b, diff, tau, alpha,
                                0.0, 1.0, -1.0, 1.0, False, False, unit)
    v_pooled, v, design_effect = difference_variances(successes_a=successes_a, trials_a=trials_a,
                                                      successes_b=successes_b, trials_b=trials_b,
                                                      moments_a=moments_a, moments_b=moments_b)
    log_lr = float(_msprt_log_lr(diff, v_pooled, tau))
    p_value = float(min(1.0, math.exp(-log_lr)))
    v = v if v > 0 else max(v_pooled, 1e-12)
    tau2 = tau * tau
    half = math.sqrt(2 * v * (v + tau2) / tau2 * (math.log(1 / alpha) + 0.5 * math.log((v + tau2) / v)))
    return SequentialResult(successes_a, trials_a, successes_b, trials_b, diff, tau, alpha,
                            log_lr, p_value, diff - half, diff + half, p_value <= alpha, True, unit,
                            float(design_effect))


def msprt_running(looks: Sequence[tuple[int, int, int, int]], **kwargs) -> list[SequentialResult]:
    """``msprt`` over cumulative looks (s_a, n_a, s_b, n_b), oldest first, carrying the running
    minimum of the always-valid p-value and the intersection of the confidence sequence."""
    out: list[SequentialResult] = []
    best_p, low, high = 1.0, -1.0, 1.0
    for sa, na, sb, nb in looks:
        r = msprt(successes_a=sa, trials_a=na, successes_b=sb, trials_b=nb, **kwargs)
        if r.enough_data:
            best_p = min(best_p, r.p_value)
            low, high = max(low, r.cs_low), min(high, r.cs_high)
        r = SequentialResult(**{**asdict(r), "p_value": best_p, "cs_low": low, "cs_high": high,
                                "reject": best_p <= r.alpha})
        out.append(r)
    return out


# --- sample size ----------------------------------------------------------------------------------


def sample_size_two_proportions(
    *, baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8, relative: bool = False
) -> int:
    """Trials per arm for a two-sided test to detect ``mde`` (absolute, or relative to
    ``baseline`` when ``relative``) with the given power (Fleiss, no continuity correction):

        n = ( z_{1-α/2} sqrt(2 p̄ q̄) + z_{1-β} sqrt(p₁q₁ + p₂q₂) )² / (p₂ - p₁)²,  p̄ = (p₁ + p₂)/2.

    Example: baseline 0.10, mde 0.02, α 0.05, power 0.8 → 3841 per arm.
    """
    p1 = baseline
    p2 = baseline * (1 + mde) if relative else baseline + mde
    if not (0 < p1 < 1 and 0 < p2 < 1) or p1 == p2:
        raise ValueError(f"need 0 < baseline, baseline+effect < 1 and a non-zero effect (got {p1} → {p2})")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must be in (0, 1)")
    z_a = sps.norm.ppf(1 - alpha / 2)
    z_b = sps.norm.ppf(power)
    p_bar = (p1 + p2) / 2
    num = z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    n = num**2 / (p2 - p1) ** 2
    if not math.isfinite(n) or n > 1e15:
        # An effect this small (or a z this large) needs more trials than any experiment has.
        raise ValueError(f"the effect {p2 - p1:.3g} is too small to detect: it needs more than 10^15 trials per arm")
    return int(math.ceil(n))


@dataclass(frozen=True)
class ViewerPlan:
    """The sample size of a viewer-randomised experiment, in viewers per arm."""

    lists_independent: int  # lists per arm if lists were independent trials (Fleiss)
    design_effect: float  # the variance with the viewer as the unit ÷ the binomial one
    lists_per_viewer: float  # mean lists per viewer over the experiment so far
    lists_needed: int  # lists_independent × design_effect
    viewers: int  # lists_needed / lists_per_viewer, rounded up

    def as_dict(self) -> dict:
        return asdict(self)


def sample_size_viewers(
    *, baseline: float, mde: float, design_effect: float, lists_per_viewer: float, alpha: float = 0.05,
    power: float = 0.8, relative: bool = False,
) -> ViewerPlan:
    """Viewers per arm for a viewer-randomised test of ``mde`` with the given power.

    With K viewers per arm each served on average m̄ lists (N = K m̄), the ratio estimator's variance
    is Var(p̂) = deff · p(1 − p)/N, where deff is the design effect the analysis measures (the
    delta-method variance ÷ the binomial one). So the test has the power of an independent-trials test
    with N / deff lists, and reaches the planned power when N / deff ≥ n, Fleiss' independent-trials
    sample size (``sample_size_two_proportions``):

        K = ⌈ n · deff / m̄ ⌉.

    Both deff and m̄ grow as viewers stay in the experiment longer (deff ≈ 1 + (m̄ₑ − 1)·ICC with m̄ₑ the
    size-weighted lists per viewer), so the plan holds for an experiment whose viewers are served the
    way they were so far; it is recomputed at every look from the measured moments.
    """
    if design_effect <= 0 or not math.isfinite(design_effect):
        raise ValueError(f"the design effect must be a positive number (got {design_effect})")
    if lists_per_viewer <= 0 or not math.isfinite(lists_per_viewer):
        raise ValueError(f"lists per viewer must be a positive number (got {lists_per_viewer})")
    n = sample_size_two_proportions(baseline=baseline, mde=mde, alpha=alpha, power=power, relative=relative)
    lists = int(math.ceil(n * design_effect))
    return ViewerPlan(n, float(design_effect), float(lists_per_viewer), lists,
                      int(math.ceil(lists / lists_per_viewer)))


def power_two_proportions(
    *, baseline: float, mde: float, trials_a: float, trials_b: float, alpha: float = 0.05,
    design_effect: float = 1.0, relative: bool = False,
) -> float:
    """The power of the two-sided z-test to detect ``mde`` with these lists per arm, their variance
    inflated by ``design_effect`` (the inverse of ``sample_size_viewers``; same approximation as Fleiss):

        power = Φ( (|δ| − z_{1−α/2} √V₀) / √V₁ ),  V₀ = deff · p̄q̄ (1/n_a + 1/n_b),  V₁ = deff · (p₁q₁/n_a + p₂q₂/n_b).
    """
    p1 = baseline
    p2 = baseline * (1 + mde) if relative else baseline + mde
    if not (0 < p1 < 1 and 0 < p2 < 1) or p1 == p2:
        raise ValueError(f"need 0 < baseline, baseline+effect < 1 and a non-zero effect (got {p1} → {p2})")
    if trials_a <= 0 or trials_b <= 0:
        return 0.0
    p_bar = (p1 + p2) / 2
    v0 = design_effect * p_bar * (1 - p_bar) * (1 / trials_a + 1 / trials_b)
    v1 = design_effect * (p1 * (1 - p1) / trials_a + p2 * (1 - p2) / trials_b)
    z_a = sps.norm.ppf(1 - alpha / 2)
    return float(sps.norm.cdf((abs(p2 - p1) - z_a * math.sqrt(v0)) / math.sqrt(v1)))



# --- the evidence a canary needs ---------------------------------------------------------------------


@dataclass(frozen=True)
class CanaryPlan:
    """The canary lists each step of a rollout needs before it may move on, from the smallest harm
    worth detecting. ``lists_total`` canary lists (and as many production lists) give the fixed-horizon
    test ``power`` to detect a drop of ``mde`` in the success rate from ``baseline``; the lists are
    spread over the checked steps in proportion to their share, so every step takes about the same
    time at a given traffic rate, and each step gets at least ``min_trials``."""

    baseline: float
    mde: float
    alpha: float
    power: float
    design_effect: float
    lists_independent: int  # per side, Fleiss, lists as independent trials
    lists_total: int  # × the design effect: canary lists over the whole rollout
    per_step: list[int]  # canary lists needed at each checked step (the steps below the last)
    production_needed: list[int]  # production lists needed (cumulative) by the end of each checked step

    def as_dict(self) -> dict:
        return asdict(self)


def checked_steps(steps: Sequence[int]) -> list[int]:
    """The steps whose check decides (the last step, usually 100 %, is where a completed canary ends)."""
    steps = [int(s) for s in steps]
    return steps[:-1] if len(steps) > 1 else steps


def canary_plan(*, steps: Sequence[int], baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8,
                design_effect: float = 1.0, min_trials: int = 0) -> CanaryPlan:
    """Lists per step for a canary to detect a drop of ``mde`` (absolute) from ``baseline``.

    n = Fleiss' per-side sample size for ``baseline`` → ``baseline − mde`` (``sample_size_two_proportions``),
    N = ⌈n · deff⌉ canary lists in all (the viewer is the unit: ``sample_size_viewers``). Step i of
    the checked steps s₁…s_k needs nᵢ = max(min_trials, ⌈N · sᵢ / Σ s⌉) lists served at that step, so the
    time a step takes, nᵢ / (rate · sᵢ), is the same at every step, and Σ nᵢ ≥ N at completion.
    """
    if not 0 < mde < 1:
        raise ValueError(f"the minimum detectable degradation must be in (0, 1) (got {mde})")
    if design_effect <= 0 or not math.isfinite(design_effect):
        raise ValueError(f"the design effect must be a positive number (got {design_effect})")
    # Detect a drop: baseline → baseline − mde (kept inside (0, 1)).
    base = min(max(baseline, mde + 1e-3), 1 - 1e-3)
    n = sample_size_two_proportions(baseline=base, mde=-mde, alpha=alpha, power=power)
    total = int(math.ceil(n * design_effect))
    shares = [s for s in checked_steps(steps)]
    weight = float(sum(shares)) or 1.0
    per_step = [max(int(min_trials), int(math.ceil(total * s / weight))) for s in shares]
    production, running = [], 0
    for need in per_step:
        running += need
        production.append(max(int(min_trials), min(running, total)))
    return CanaryPlan(float(base), float(mde), float(alpha), float(power), float(design_effect), n, total,
                      per_step, production)


def evidence_eta(*, needed: int, have: int, pending: int, lists_per_minute: float,
                 window_minutes: float) -> tuple[int, float | None]:
    """(lists still needed, minutes until they are in) for one side of a canary.

    ``have`` lists already count (their success window has closed), ``pending`` were served but are
    still inside it. The lists still to be served arrive at ``lists_per_minute``, and the last one
    counts ``window_minutes`` after it was served: minutes = max(0, more − pending) / rate + window.
    With every needed list already served, at most a window remains. None when none arrive (rate 0)."""
    more = max(0, int(needed) - int(have))
    if more == 0:
        return 0, 0.0
    to_serve = max(0, more - max(0, int(pending)))
    if to_serve == 0:
        return more, float(window_minutes)
    if lists_per_minute <= 0:
        return more, None
    return more, to_serve / lists_per_minute + float(window_minutes)

# --- A/A simulation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AASimulation:
    replicates: int
    looks: int
    trials_per_look: int
    rate: float
    alpha: float
    tau: float
    sequential_false_positive_rate: float
    sequential_ci_high: float  # upper end of a 95% Wilson interval for that rate
    naive_peeking_false_positive_rate: float
    fixed_horizon_false_positive_rate: float

    def as_dict(self) -> dict:
        return asdict(self)


def _wilson_high(k: int, n: int, z: float = 1.959964) -> float:
    if n == 0:
        return 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    return (centre + z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / denom


def simulate_aa(
    *,
    replicates: int = 2000,
    looks: int = 168,
    trials_per_look: int = 50,
    rate: float = 0.2,
    alpha: float = 0.05,
    tau: float = 0.03,
    min_trials: int = 100,
    seed: int = 0,
) -> AASimulation:
    """Run ``replicates`` A/A experiments (both arms at ``rate``), looking after every batch of
    ``trials_per_look`` trials per arm (hourly for a week by default). Reports how often the
    sequential test ever rejects, how often a z-test peeked at on every look ever rejects, and the
    z-test's rate at the final look only (the fixed-horizon reference, ≈ alpha)."""
    rng = np.random.default_rng(seed)
    shape = (replicates, looks)
    sa = rng.binomial(trials_per_look, rate, size=shape).cumsum(axis=1)
    sb = rng.binomial(trials_per_look, rate, size=shape).cumsum(axis=1)
    n = (np.arange(1, looks + 1) * trials_per_look)[None, :].repeat(replicates, axis=0)
    diff = sb / n - sa / n
    variance = _pooled_variance(sa, n, sb, n)
    log_lr = _msprt_log_lr(diff, variance, tau)
    log_lr = np.where(n >= min_trials, log_lr, 0.0)
    seq_hits = int((log_lr >= math.log(1 / alpha)).any(axis=1).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 0, diff / np.sqrt(variance), 0.0)
    crit = sps.norm.ppf(1 - alpha / 2)
    naive_hits = int((np.abs(z) >= crit).any(axis=1).sum())
    fixed_hits = int((np.abs(z[:, -1]) >= crit).sum())
    return AASimulation(
        replicates, looks, trials_per_look, rate, alpha, tau,
        seq_hits / replicates, _wilson_high(seq_hits, replicates),
        naive_hits / replicates, fixed_hits / replicates,
    )


@dataclass(frozen=True)
class ViewerAASimulation:
    replicates: int
    looks: int
    viewers_per_arm: int
    lists_per_viewer: float  # mean over the whole experiment
    rate: float
    concentration: float
    alpha: float
    tau: float
    list_level_sequential_false_positive_rate: float
    viewer_level_sequential_false_positive_rate: float
    viewer_level_sequential_ci_high: float
    list_level_fixed_horizon_false_positive_rate: float
    viewer_level_fixed_horizon_false_positive_rate: float
    mean_design_effect: float  # at the final look

    def as_dict(self) -> dict:
        return asdict(self)


def simulate_aa_viewers(
    *,
    replicates: int = 2000,
    looks: int = 168,
    viewers: int = 300,
    lists_per_viewer_per_look: float = 0.1,
    rate: float = 0.2,
    concentration: float = 4.0,
    alpha: float = 0.05,
    tau: float = 0.03,
    min_trials: int = 100,
    seed: int = 0,
) -> ViewerAASimulation:
    """A/A experiments randomised by viewer, looked at every hour: each arm has ``viewers`` viewers
    with their own success propensity (Beta with mean ``rate`` and ``concentration`` a + b: the
    smaller, the more viewers differ) and their own activity (lists per look exponential around
    ``lists_per_viewer_per_look``, then Poisson). Counts how often the mSPRT ever rejects with
    lists as the units (binomial variance) and with viewers as the units (delta method), and the
    same for the z-test at the final look."""
    rng = np.random.default_rng(seed)
    a_shape, b_shape = rate * concentration, (1 - rate) * concentration
    crit = sps.norm.ppf(1 - alpha / 2)
    threshold = math.log(1 / alpha)

    def arm():
        propensity = rng.beta(a_shape, b_shape, size=(replicates, viewers))
        activity = rng.exponential(lists_per_viewer_per_look, size=(replicates, viewers))
        return propensity, activity, np.zeros((replicates, viewers)), np.zeros((replicates, viewers))

    arms = [arm(), arm()]
    hit_list = np.zeros(replicates, dtype=bool)
    hit_viewer = np.zeros(replicates, dtype=bool)
    z_list = z_viewer = deff = np.zeros(replicates)
    for _ in range(looks):
        totals = []
        for propensity, activity, n, s in arms:
            new = rng.poisson(activity)
            s += rng.binomial(new, propensity)
            n += new
            totals.append((s.sum(axis=1), n.sum(axis=1), (n * n).sum(axis=1), (s * s).sum(axis=1),
                           (s * n).sum(axis=1), (n > 0).sum(axis=1)))
        (sa, na, nna, ssa, sna, ka), (sb, nb, nnb, ssb, snb, kb) = totals
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = np.where((na > 0) & (nb > 0), sb / np.maximum(nb, 1) - sa / np.maximum(na, 1), 0.0)
            pooled = (sa + sb) / np.maximum(na + nb, 1)
            v_list = _pooled_variance(sa, na, sb, nb)
            v_viewer = (delta_variance(sum_ss=ssa, sum_sn=sna, sum_nn=nna, trials=na, units=ka, rate=pooled)
                        + delta_variance(sum_ss=ssb, sum_sn=snb, sum_nn=nnb, trials=nb, units=kb, rate=pooled))
            enough = np.minimum(na, nb) >= max(min_trials, 1)
            hit_list |= enough & (_msprt_log_lr(diff, v_list, tau) >= threshold)
            hit_viewer |= enough & (_msprt_log_lr(diff, v_viewer, tau) >= threshold)
            z_list = np.where(v_list > 0, diff / np.sqrt(v_list), 0.0)
            z_viewer = np.where(v_viewer > 0, diff / np.sqrt(v_viewer), 0.0)
            deff = np.where(v_list > 0, v_viewer / v_list, 1.0)
    total_lists = sum(a[2].sum() for a in arms)
    k = int(hit_viewer.sum())
    return ViewerAASimulation(
        replicates, looks, viewers, float(total_lists / (2 * replicates * viewers)), rate, concentration, alpha, tau,
        float(hit_list.mean()), float(hit_viewer.mean()), _wilson_high(k, replicates),
        float((np.abs(z_list) >= crit).mean()), float((np.abs(z_viewer) >= crit).mean()), float(deff.mean()),
    )


@dataclass(frozen=True)
class ViewerPowerSimulation:
    replicates: int
    rate: float
    effect: float  # the true difference planted in the treatment arm (the planned MDE)
    concentration: float
    lists_per_viewer: float  # the mean the simulation draws
    alpha: float
    power: float  # the nominal power the plan asks for
    pilot_viewers: int
    pilot_design_effect: float  # measured on the pilot (an A/A experiment), as the analysis measures it
    pilot_lists_per_viewer: float
    plan: dict  # ViewerPlan from the pilot's figures
    viewer_plan_power: float  # empirical power of the viewer-level z-test at plan["viewers"] per arm
    viewer_plan_power_ci: tuple[float, float]  # 95% Wilson interval
    viewer_plan_msprt_power: float  # the mSPRT's at the same horizon (one look): it pays for peeking
    predicted_power: float  # power_two_proportions at the plan with the pilot's design effect
    list_plan_viewers: int  # the old plan: independent-trials lists / lists per viewer
    list_plan_power: float  # empirical power of the viewer-level z-test there
    mean_design_effect: float  # measured at the planned horizon

    def as_dict(self) -> dict:
        return asdict(self)


def _wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / denom, (centre + half) / denom


def _viewer_arm(rng, replicates: int, viewers: int, rate: float, concentration: float, lists_per_viewer: float):
    """(successes, lists) per viewer, shape (replicates, viewers): a Beta propensity with mean ``rate``
    and ``concentration`` a + b; every viewer has at least one list, 1 + Poisson(Exponential) in all,
    with mean ``lists_per_viewer`` (activity differs a lot between viewers, as it does on the platform)."""
    propensity = rng.beta(rate * concentration, (1 - rate) * concentration, size=(replicates, viewers))
    n = 1 + rng.poisson(rng.exponential(max(lists_per_viewer - 1, 0.0), size=(replicates, viewers)))
    return rng.binomial(n, propensity).astype(float), n.astype(float)


def _viewer_tests(arm_a, arm_b, *, alpha: float, tau: float):
    """Per replicate: significant in the right direction (viewer-level z-test), the mSPRT's rejection at
    this one look, and the design effect — with the analysis' own formulas (``delta_variance``)."""
    (sa, na), (sb, nb) = arm_a, arm_b
    k = sa.shape[1]
    tot = [(s.sum(axis=1), n.sum(axis=1), (n * n).sum(axis=1), (s * s).sum(axis=1), (s * n).sum(axis=1))
           for s, n in ((sa, na), (sb, nb))]
    (Sa, Na, nna, ssa, sna), (Sb, Nb, nnb, ssb, snb) = tot
    pooled = (Sa + Sb) / (Na + Nb)
    diff = Sb / Nb - Sa / Na
    v0 = (delta_variance(sum_ss=ssa, sum_sn=sna, sum_nn=nna, trials=Na, units=k, rate=pooled)
          + delta_variance(sum_ss=ssb, sum_sn=snb, sum_nn=nnb, trials=Nb, units=k, rate=pooled))
    z = np.where(v0 > 0, diff / np.sqrt(np.where(v0 > 0, v0, 1.0)), 0.0)
    crit = sps.norm.ppf(1 - alpha / 2)
    v_list = _pooled_variance(Sa, Na, Sb, Nb)
    deff = np.where(v_list > 0, v0 / np.where(v_list > 0, v_list, 1.0), 1.0)
    seq = _msprt_log_lr(diff, v0, tau) >= math.log(1 / alpha)
    return z >= crit, seq & (diff > 0), deff


def simulate_power_viewers(
    *,
    replicates: int = 2000,
    rate: float = 0.2,
    effect: float = 0.03,
    concentration: float = 4.0,
    lists_per_viewer: float = 10.0,
    alpha: float = 0.05,
    power: float = 0.8,
    tau: float = 0.03,
    pilot_viewers: int = 400,
    chunk: int = 250,
    seed: int = 0,
) -> ViewerPowerSimulation:
    """Is the viewer plan's power the nominal one? A pilot A/A experiment (``pilot_viewers`` per arm,
    both at ``rate``) gives the design effect, lists per viewer and baseline the way ``analyse`` measures
    them; ``sample_size_viewers`` plans from them; then ``replicates`` viewer-randomised experiments
    with a true difference of ``effect`` (= the MDE) run at the planned viewers per arm, analysed once
    at that horizon with the viewer-level z-test. Also the old plan (independent-trials lists ÷ lists
    per viewer) under the same honest test, to show how short it falls."""
    rng = np.random.default_rng(seed)
    pa = _viewer_arm(rng, 1, pilot_viewers, rate, concentration, lists_per_viewer)
    pb = _viewer_arm(rng, 1, pilot_viewers, rate, concentration, lists_per_viewer)
    ma, mb = (UnitMoments.from_units(s[0], n[0]) for s, n in (pa, pb))
    pilot = two_proportion_ztest(successes_a=int(pa[0].sum()), trials_a=int(pa[1].sum()),
                                 successes_b=int(pb[0].sum()), trials_b=int(pb[1].sum()), moments_a=ma, moments_b=mb)
    per_viewer = float((pa[1].sum() + pb[1].sum()) / (2 * pilot_viewers))
    plan = sample_size_viewers(baseline=pilot.rate_a, mde=effect, design_effect=pilot.design_effect,
                               lists_per_viewer=per_viewer, alpha=alpha, power=power)
    predicted = power_two_proportions(baseline=pilot.rate_a, mde=effect, trials_a=plan.viewers * per_viewer,
                                      trials_b=plan.viewers * per_viewer, alpha=alpha,
                                      design_effect=pilot.design_effect)
    list_plan = int(math.ceil(plan.lists_independent / per_viewer))

    def run(viewers: int) -> tuple[int, int, float]:
        hits = seq_hits = 0
        deff_sum = 0.0
        for start in range(0, replicates, chunk):
            size = min(chunk, replicates - start)
            a = _viewer_arm(rng, size, viewers, rate, concentration, lists_per_viewer)
            b = _viewer_arm(rng, size, viewers, rate + effect, concentration, lists_per_viewer)
            z_hit, seq_hit, deff = _viewer_tests(a, b, alpha=alpha, tau=tau)
            hits += int(z_hit.sum())
            seq_hits += int(seq_hit.sum())
            deff_sum += float(deff.sum())
        return hits, seq_hits, deff_sum / replicates

    hits, seq_hits, mean_deff = run(plan.viewers)
    list_hits, _, _ = run(list_plan)
    return ViewerPowerSimulation(
        replicates, rate, effect, concentration, lists_per_viewer, alpha, power, pilot_viewers,
        float(pilot.design_effect), per_viewer, plan.as_dict(), hits / replicates, _wilson(hits, replicates),
        seq_hits / replicates, predicted, list_plan, list_hits / replicates, mean_deff,
    )
