"""A/B experiments on the real deployment: start/stop with serving's deterministic bucketing, the
analysis (SRM, z-test with CI, sequential test, sample size) and the decision the data supports."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.errors import Conflict
from portal.models import ActivityLogEntry
from recommender.models import ModelVersion
from recommender.tests.factories_training import VersionFactory
from releases import integrations, services
from releases.models import PromotionRequest
from releases.services.rollouts import SYSTEM as ROLLOUT_SYSTEM
from releases.tests.factories import approved_promotion, in_production
from releases.tests.helpers import served

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(users):
    in_production(VersionFactory(status=ModelVersion.Status.APPROVED), actor=users["operator"])
    # Arms serve viewers: each version went through an approved promotion (or is production).
    control, treatment = VersionFactory(), VersionFactory()
    approved_promotion(control)
    approved_promotion(treatment)
    return services.experiment_create(
        name="svd-vs-pop", hypothesis="SVD gets watched more", actor=users["operator"], minimum_detectable_effect=0.03,
        arms=[{"name": "control", "version": control.pk, "allocation": 50, "is_control": True},
              {"name": "svd", "version": treatment.pk, "allocation": 50}],
    )


def test_start_puts_the_arms_on_the_deployment_with_a_fresh_salt(experiment, users):
    before = integrations.deployment_state()["salt"]
    started = services.experiment_start(experiment=experiment, actor=users["operator"])
    state = integrations.deployment_state()
    assert started.status == "running" and state["salt"] == started.salt != before
    assert [(a["name"], float(a["percent"])) for a in state["arms"]] == [("control", 50.0), ("svd", 50.0)]
    # Serving's bucketing sends each viewer to the same arm every time, about half to each.
    from recommender.serving import bucketing

    layout = bucketing.build_layout(salt=state["salt"], canary_percent=0, arms=[("control", 50), ("svd", 50)])
    routes = [layout.route(v) for v in range(10_000)]
    assert routes == [layout.route(v) for v in range(10_000)]
    assert 0.47 < routes.count("arm:svd") / 10_000 < 0.53
    with pytest.raises(Conflict, match="only a draft"):
        services.experiment_start(experiment=experiment, actor=users["operator"])


def test_analysis_finds_the_better_arm_and_says_ship(experiment, users):
    t0 = timezone.now() - timedelta(hours=6)
    services.experiment_start(experiment=experiment, actor=users["operator"], now=t0)
    served(route="arm:control", version_id=1, lists=1500, successes=300, start=t0 + timedelta(minutes=1), spacing_seconds=2)
    served(route="arm:svd", version_id=2, lists=1500, successes=420, start=t0 + timedelta(minutes=1), spacing_seconds=2)
    experiment.refresh_from_db()
    snap = services.experiment_analyze(experiment=experiment, now=t0 + timedelta(hours=3))
    assert snap.arms["control"]["rate"] == pytest.approx(0.2) and snap.arms["svd"]["rate"] == pytest.approx(0.28)
    assert not snap.srm["flagged"]
    z = snap.ztest["svd"]
    assert z["difference"] == pytest.approx(0.08) and z["ci_low"] > 0 and z["p_value"] < 1e-5
    assert snap.sequential["svd"]["reject"] and snap.sequential["svd"]["cs_low"] > 0
    assert snap.sample_size["per_arm"] > 0 and snap.sample_size["baseline"] == pytest.approx(0.2)
    assert snap.decision == "ship:svd" and "ship svd" in snap.decision_reason
    stopped = services.experiment_stop(experiment=experiment, actor=users["operator"], reason="enough",
                                       now=t0 + timedelta(hours=3))
    assert stopped.decision == "ship:svd" and integrations.deployment_state()["arms"] == []
    entry = ActivityLogEntry.objects.get(action="release.experiment.stopped")
    assert entry.actor_label == "operator_user" and entry.data["decision"] == "ship:svd"


def test_a_sample_ratio_mismatch_overrides_everything(experiment, users):
    t0 = timezone.now() - timedelta(hours=6)
    services.experiment_start(experiment=experiment, actor=users["operator"], now=t0)
    served(route="arm:control", version_id=1, lists=1200, successes=240, start=t0 + timedelta(minutes=1))
    served(route="arm:svd", version_id=2, lists=800, successes=400, start=t0 + timedelta(minutes=1))
    experiment.refresh_from_db()
    snap = services.experiment_analyze(experiment=experiment, now=t0 + timedelta(hours=5))
    assert snap.srm["flagged"] and snap.srm["p_value"] < 0.001
    assert snap.decision == "invalid_srm" and "cannot be trusted" in snap.decision_reason


def test_hourly_snapshots_carry_the_running_minimum_and_stay_put_without_a_difference(experiment, users):
    t0 = timezone.now() - timedelta(hours=10)
    services.experiment_start(experiment=experiment, actor=users["operator"], now=t0)
    experiment.refresh_from_db()
    decisions = []
    for hour in range(4):
        start = t0 + timedelta(hours=hour, minutes=1)
        served(route="arm:control", version_id=1, lists=300, successes=60, start=start, spacing_seconds=1)
        served(route="arm:svd", version_id=2, lists=300, successes=61, start=start, spacing_seconds=1)
        snap = services.experiment_analyze(experiment=experiment, now=t0 + timedelta(hours=hour + 1, minutes=40))
        decisions.append(snap.decision)
    snaps = list(experiment.snapshots.order_by("computed_at"))
    ps = [s.sequential["svd"]["p_value"] for s in snaps if s.sequential.get("svd", {}).get("enough_data")]
    assert ps == sorted(ps, reverse=True) and decisions[-1] == "continue"
    from releases.selectors import experiment_chart

    data = experiment_chart(experiment=experiment)
    assert len(data["labels"]) == 4 and data["trials"]["svd"][-1] == 1200


def test_experiments_and_canaries_do_not_share_traffic(experiment, users):
    promotion = approved_promotion(VersionFactory(), status=PromotionRequest.Status.APPROVED, canary_steps=[5, 100],
                                   canary_interval_seconds=600)
    services.experiment_start(experiment=experiment, actor=users["operator"])
    with pytest.raises(Conflict, match="experiment 'svd-vs-pop' is running"):
        services.rollout_start(promotion=promotion, actor=None, system=ROLLOUT_SYSTEM)
    services.experiment_stop(experiment=experiment, actor=users["operator"], reason="done")
    services.rollout_start(promotion=promotion, actor=None, system=ROLLOUT_SYSTEM)
    second = services.experiment_create(
        name="next", actor=users["operator"],
        arms=[{"name": "a", "version": approved_promotion(VersionFactory()).version_id, "allocation": 10,
               "is_control": True},
              {"name": "b", "version": approved_promotion(VersionFactory()).version_id, "allocation": 10}])
    with pytest.raises(Conflict, match="holds a canary share"):
        services.experiment_start(experiment=second, actor=users["operator"])


# --- the sample size in viewers ------------------------------------------------------------------------


def _arm(rng, *, viewers: int, lists_each: int, rate: float, control: bool, concentration: float = 4.0) -> dict:
    """One arm's counts as the analysis gets them: viewers with their own propensity, ``lists_each`` lists."""
    import numpy as np

    from portal.stats import UnitMoments

    propensity = rng.beta(rate * concentration, (1 - rate) * concentration, size=viewers)
    trials = np.full(viewers, lists_each)
    successes = rng.binomial(trials, propensity)
    moments = UnitMoments.from_units(successes, trials)
    return {"version": 1, "allocation": 50, "control": control, "successes": int(successes.sum()),
            "trials": int(trials.sum()), "rate": float(successes.sum() / trials.sum()), "viewers": viewers,
            "moments": {"units": moments.units, "sum_trials_sq": moments.sum_trials_sq,
                        "sum_successes_sq": moments.sum_successes_sq, "sum_cross": moments.sum_cross},
            "guardrails": {"requests": 0}}


def _analyse(**arm_kwargs):
    import numpy as np

    from releases.models import Experiment
    from releases.services.experiments import analyse

    rng = np.random.default_rng(7)
    experiment = Experiment(name="plan", alpha=0.05, minimum_detectable_effect=0.03, power=0.8, guardrails={})
    per_arm = {"control": _arm(rng, control=True, **arm_kwargs), "svd": _arm(rng, control=False, **arm_kwargs)}
    return analyse(experiment=experiment, per_arm=per_arm, previous=None)


def test_the_plan_is_in_viewers_and_few_heavy_viewers_do_not_make_it():
    # 60 viewers per arm with 100 lists each: 6,000 lists per arm, more than the ~3,000 independent
    # lists an effect of 0.03 needs at 0.2 — the old list plan said "no difference" here.
    result = _analyse(viewers=60, lists_each=100, rate=0.2)
    sample = result["sample_size"]
    assert sample["unit"] == "viewer" and sample["design_effect_source"] == "prior"
    assert sample["design_effect"] == 2.0 and "EXPERIMENT_PRIOR_DESIGN_EFFECT" in sample["design_effect_note"]
    assert sample["lists_independent"] < result["ztest"]["svd"]["trials_a"]
    assert sample["viewers_per_arm"] == -(-sample["lists_needed"] // 100)  # ⌈lists needed / lists per viewer⌉
    assert sample["achieved_viewers"] == {"control": 60, "svd": 60} and not sample["reached"]
    assert result["decision"] == "continue" and "prior" in result["reason"] and "power now" in result["reason"]


def test_no_difference_only_at_the_planned_viewers_with_the_measured_design_effect():
    early = _analyse(viewers=300, lists_each=12, rate=0.2)["sample_size"]
    assert early["design_effect_source"] == "measured" and early["design_effect"] > 2  # ICC 0.2, 12 lists each
    # The plan is the independent-trials lists × the measured design effect ÷ 12 lists per viewer.
    assert early["viewers_per_arm"] == math.ceil(math.ceil(early["lists_independent"] * early["design_effect"]) / 12)
    assert early["viewers_per_arm"] > 300 and early["achieved_power_min"] < 0.5
    assert not early["reached"]

    late = _analyse(viewers=early["viewers_per_arm"] + 200, lists_each=12, rate=0.2)
    sample = late["sample_size"]
    assert sample["reached"] and sample["achieved_power_min"] >= 0.78
    assert late["decision"] == "no_difference"
    assert "viewers per arm" in late["reason"] and f"design effect {sample['design_effect']:.2f} (measured)" in late["reason"]
