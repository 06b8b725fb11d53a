"""A/B experiments: define arms (model versions and allocations), start and stop them on the
deployment (serving's deterministic bucketing), and analyse them: sample-ratio mismatch, a
two-proportion z-test with a confidence interval, an always-valid sequential test (so hourly looks
are safe) and the sample size in viewers for the minimum detectable effect (the unit arms are
assigned by, with the design effect the analysis measures) — ending in the decision the data
supports."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from portal.errors import Conflict, ValidationError
from portal.permissions import require
from portal.services import activity_log_record
from portal.stats import UnitMoments, two_proportion_ztest
from recommender.models import ModelVersion
from releases import clock, integrations, stats
from releases.conf import release_setting
from releases.models import Experiment, ExperimentSnapshot, ExperimentVariant, Rollout
from releases.services._common import actor_label, human, notify_on_commit, require_reason

SYSTEM = "recommender.releases.experiments_analyze"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
METRICS = {"online_quality": "share of served lists after which the viewer starts watching one of them within the window"}


class Decision:
    CONTINUE = "continue"
    SRM = "invalid_srm"
    GUARDRAIL = "guardrail_breach"
    SHIP = "ship"
    KEEP_CONTROL = "keep_control"
    NO_DIFFERENCE = "no_difference"


def route(arm_name: str) -> str:
    """Serving's route name for an experiment arm (as written in the prediction log)."""
    return f"arm:{arm_name}"


def experiment_create(
    *,
    name: str,
    arms: list[dict],
    actor: Any,
    hypothesis: str = "",
    primary_metric: str = "online_quality",
    guardrails: dict | None = None,
    alpha: float | None = None,
    minimum_detectable_effect: float = 0.02,
    power: float = 0.8,
) -> Experiment:
    """A draft experiment. ``arms``: ``[{"name", "version" (id or ModelVersion), "allocation", "is_control"}]``
    — two or more, exactly one control, slugs for names, allocations (percent of all traffic) adding up to ≤ 100."""
    require(actor, "experiment.manage")
    name = (name or "").strip()
    if not name:
        raise ValidationError("an experiment needs a name", field="name")
    if len(name) > 120:
        raise ValidationError(f"name: at most 120 characters, got {len(name)}", field="name")
    if primary_metric not in METRICS:
        raise ValidationError(f"unknown primary metric '{primary_metric}'", detail={"allowed": sorted(METRICS)},
                              field="primary_metric")
    alpha = float(alpha if alpha is not None else release_setting("EXPERIMENT_ALPHA"))
    if not 0 < alpha < 0.5:
        raise ValidationError(f"alpha must be in (0, 0.5), got {alpha}", field="alpha")
    if not 0 < power < 1:
        raise ValidationError(f"power must be in (0, 1), got {power}", field="power")
    if not 0 < minimum_detectable_effect < 1:
        raise ValidationError(f"minimum_detectable_effect must be in (0, 1), got {minimum_detectable_effect}",
                              field="minimum_detectable_effect")
    cleaned = _clean_arms(arms)
    # Arms serve viewers: only versions approved for live traffic, or the current production version.
    integrations.live_traffic_check(arms=[(a["name"], a["version"], a["allocation"]) for a in cleaned], actor=actor,
                                    system=None, reason=f"experiment '{name}' planned")
    limits = {**release_setting("EXPERIMENT_GUARDRAILS"), **(guardrails or {})}
    unknown = set(limits) - {"max_error_rate", "max_p99_ms", "max_fallback_rate"}
    if unknown:
        raise ValidationError(f"unknown guardrails {sorted(unknown)}",
                              detail={"allowed": ["max_error_rate", "max_p99_ms", "max_fallback_rate"]})
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                name=name, hypothesis=hypothesis, primary_metric=primary_metric, guardrails=limits, alpha=alpha,
                minimum_detectable_effect=minimum_detectable_effect, power=power, created_by=human(actor),
            )
            for arm in cleaned:
                ExperimentVariant.objects.create(experiment=experiment, **arm)
            activity_log_record(
                actor=actor, action="release.experiment.created", target=experiment,
                data={"arms": [{"name": a["name"], "version": a["version"].pk, "allocation": a["allocation"],
                                "control": a["is_control"]} for a in cleaned],
                      "primary_metric": primary_metric, "guardrails": limits, "alpha": alpha,
                      "mde": minimum_detectable_effect, "power": power},
            )
    except IntegrityError:
        raise Conflict(f"an experiment named '{name}' already exists")
    return experiment


def _clean_arms(arms: list[dict]) -> list[dict]:
    if not isinstance(arms, list) or len(arms) < 2:
        raise ValidationError("an experiment needs at least two arms", field="arms")
    out, names = [], set()
    for i, arm in enumerate(arms):
        arm_name = str(arm.get("name", "")).strip().lower()
        if not _SLUG.match(arm_name):
            raise ValidationError(f"arm {i + 1}: name '{arm_name}' must be a slug (a-z, 0-9, - or _; ≤ 40)",
                                  field=f"arms.{i}.name")
        if arm_name in names:
            raise ValidationError(f"arm name '{arm_name}' is used twice", field=f"arms.{i}.name")
        names.add(arm_name)
        version = arm.get("version")
        if not isinstance(version, ModelVersion):
            version = ModelVersion.objects.filter(pk=version).first() if str(version).isdigit() else None
            if version is None:
                raise ValidationError(f"arm '{arm_name}': model version {arm.get('version')!r} does not exist",
                                      field=f"arms.{i}.version")
        if version.status in (ModelVersion.Status.REJECTED, ModelVersion.Status.ARCHIVED):
            raise ValidationError(f"arm '{arm_name}': {version} is {version.status} and cannot serve",
                                  field=f"arms.{i}.version")
        try:
            allocation = int(arm.get("allocation"))
        except (TypeError, ValueError):
            raise ValidationError(f"arm '{arm_name}': allocation must be a whole percent",
                                  field=f"arms.{i}.allocation") from None
        if not 1 <= allocation <= 100:
            raise ValidationError(f"arm '{arm_name}': allocation {allocation} is outside 1–100",
                                  field=f"arms.{i}.allocation")
        out.append({"name": arm_name, "version": version, "allocation": allocation,
                    "is_control": bool(arm.get("is_control"))})
    if sum(a["is_control"] for a in out) != 1:
        raise ValidationError("exactly one arm must be the control", field="arms.control")
    total = sum(a["allocation"] for a in out)
    if total > 100:
        raise ValidationError(f"arm allocations add up to {total}%, more than 100%", field="arms")
    return out


def experiment_start(*, experiment: Experiment, actor: Any, now: datetime | None = None) -> Experiment:
    """Put the arms on the deployment; from now on viewers are bucketed into them."""
    require(actor, "experiment.manage", target=experiment)
    integrations.live_traffic_check(arms=[(a.name, a.version, a.allocation) for a in experiment.arms.select_related("version")],
                                    actor=actor, system=None, reason=f"experiment '{experiment.name}' started")
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if locked.status != Experiment.Status.DRAFT:
            raise Conflict(f"experiment '{locked.name}' is {locked.status}; only a draft can start")
        active = Rollout.objects.filter(state__in=Rollout.ACTIVE).first()
        if active is not None:
            raise Conflict(f"an experiment cannot start while rollout #{active.pk} holds a canary share")
        other = Experiment.objects.filter(status=Experiment.Status.RUNNING).first()
        if other is not None:
            raise Conflict(f"experiment '{other.name}' is already running")
        arms = list(locked.arms.select_related("version"))
        reason = f"experiment '{locked.name}' started"
        salt = integrations.deployment_set_arms(
            arms=[(a.name, a.version, a.allocation) for a in arms], experiment=locked.name,
            actor=actor, system=None, reason=reason, salt=f"experiment-{locked.pk}",
        )
        locked.status = Experiment.Status.RUNNING
        locked.started_at = now or clock.now()
        locked.started_by_label = actor_label(actor, None)
        locked.salt = salt
        locked.save()
        activity_log_record(actor=actor, action="release.experiment.started", target=locked,
                            data={"arms": {a.name: a.allocation for a in arms}, "salt": salt})
        notify_on_commit(event="experiment.started", subject=f"Experiment '{locked.name}' started",
                         body=reason, payload={"experiment": locked.pk, "arms": {a.name: a.allocation for a in arms},
                                               "started_by": locked.started_by_label})
    return locked


def experiment_stop(*, experiment: Experiment, actor: Any | None, reason: str, system: str | None = None,
                    now: datetime | None = None) -> Experiment:
    """Take the arms off the deployment (their viewers go back to production), analyse once more
    and record the decision the data supports."""
    require(actor, "experiment.manage", system=system, target=experiment)
    reason = require_reason(reason)
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if locked.status != Experiment.Status.RUNNING:
            raise Conflict(f"experiment '{locked.name}' is {locked.status}, not running")
        integrations.deployment_set_arms(arms=[], experiment=locked.name, actor=actor, system=system,
                                         reason=f"experiment '{locked.name}' stopped: {reason}")
        locked.status = Experiment.Status.STOPPED
        locked.stopped_at = now or clock.now()
        locked.stopped_by_label = actor_label(actor, system)
        locked.stop_reason = reason
        locked.save()
    snapshot = experiment_analyze(experiment=locked, now=locked.stopped_at, actor=actor, system=system or SYSTEM)
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        locked.decision = snapshot.decision
        locked.decision_reason = snapshot.decision_reason
        locked.save(update_fields=["decision", "decision_reason"])
        activity_log_record(actor=actor, system=system, action="release.experiment.stopped", target=locked,
                            data={"reason": reason, "decision": snapshot.decision,
                                  "decision_reason": snapshot.decision_reason, "snapshot": snapshot.pk})
        notify_on_commit(event="experiment.stopped", subject=f"Experiment '{locked.name}' stopped: {snapshot.decision}",
                         body=f"{reason}\n\n{snapshot.decision_reason}",
                         payload={"experiment": locked.pk, "decision": snapshot.decision,
                                  "decision_reason": snapshot.decision_reason, "arms": snapshot.arms})
    return locked


def experiment_analyze(*, experiment: Experiment, now: datetime | None = None, actor: Any | None = None,
                       system: str | None = SYSTEM) -> ExperimentSnapshot:
    """Measure every arm since the start and record one analysis snapshot (hourly by beat; a person
    asking for one now needs ``experiment.manage``)."""
    require(actor, "experiment.manage", system=system, target=experiment)
    now = now or clock.now()
    if experiment.started_at is None:
        raise Conflict(f"experiment '{experiment.name}' has not started")
    end = min(now, experiment.stopped_at) if experiment.stopped_at else now
    arms = list(experiment.arms.select_related("version"))
    routes = [route(a.name) for a in arms]
    quality = integrations.online_quality_by_route(routes=routes, start=experiment.started_at, end=end, now=now)
    units = integrations.viewers_by_route(routes=routes, start=experiment.started_at, end=end)
    guard = {r: integrations.guardrail_telemetry(route=r, start=experiment.started_at, end=end) for r in routes}
    per_arm: dict[str, dict] = {}
    for arm in arms:
        q = quality.get(route(arm.name), {"successes": 0, "trials": 0, "moments": None})
        per_arm[arm.name] = {
            "version": arm.version_id, "allocation": arm.allocation, "control": arm.is_control,
            "successes": q["successes"], "trials": q["trials"], "moments": q.get("moments"),
            "rate": q["successes"] / q["trials"] if q["trials"] else None,
            "viewers": units.get(route(arm.name), 0), "guardrails": guard[route(arm.name)],
        }
    previous = experiment.snapshots.order_by("-computed_at").first()
    analysis = analyse(experiment=experiment, per_arm=per_arm, previous=previous)
    snapshot = ExperimentSnapshot.objects.create(
        experiment=experiment, computed_at=now, window_start=experiment.started_at, window_end=end, arms=per_arm,
        srm=analysis["srm"], ztest=analysis["ztest"], sequential=analysis["sequential"],
        sample_size=analysis["sample_size"], decision=analysis["decision"], decision_reason=analysis["reason"],
    )
    if previous is None or previous.decision != snapshot.decision:
        activity_log_record(actor=human(actor), system=system, action="release.experiment.analysed", target=experiment,
                            data={"decision": snapshot.decision, "reason": snapshot.decision_reason,
                                  "snapshot": snapshot.pk})
    return snapshot


def analyse(*, experiment: Experiment, per_arm: dict[str, dict], previous: ExperimentSnapshot | None) -> dict:
    """The statistics and the decision for per-arm counts (pure apart from reading knobs)."""
    alpha = experiment.alpha
    tau = float(release_setting("EXPERIMENT_TAU"))
    min_trials = int(release_setting("EXPERIMENT_MIN_TRIALS"))
    control = next(name for name, a in per_arm.items() if a["control"])
    treatments = [name for name in per_arm if name != control]
    # Bonferroni across treatments keeps the family-wise error at alpha.
    alpha_each = alpha / max(1, len(treatments))
    srm = stats.srm_check(counts=[a["viewers"] for a in per_arm.values()],
                          allocations=[a["allocation"] for a in per_arm.values()]).as_dict()
    srm["arms"] = list(per_arm)
    c = per_arm[control]
    ztest, sequential = {}, {}
    for name in treatments:
        t = per_arm[name]
        if c["trials"] and t["trials"]:
            # The viewer is the unit (arms are assigned by viewer): delta-method variances.
            units = {"moments_a": UnitMoments.from_dict(c.get("moments")),
                     "moments_b": UnitMoments.from_dict(t.get("moments"))}
            ztest[name] = two_proportion_ztest(successes_a=c["successes"], trials_a=c["trials"],
                                                     successes_b=t["successes"], trials_b=t["trials"],
                                                     alpha=alpha_each, **units).as_dict()
            seq = stats.msprt(successes_a=c["successes"], trials_a=c["trials"], successes_b=t["successes"],
                              trials_b=t["trials"], alpha=alpha_each, tau=tau, min_trials=min_trials,
                              **units).as_dict()
            prev = (previous.sequential or {}).get(name) if previous else None
            if prev and prev.get("enough_data") and seq["enough_data"]:
                # The always-valid p-value is the running minimum; the confidence sequence the intersection.
                seq["p_value"] = min(seq["p_value"], prev["p_value"])
                seq["cs_low"] = max(seq["cs_low"], prev["cs_low"])
                seq["cs_high"] = min(seq["cs_high"], prev["cs_high"])
                seq["reject"] = seq["p_value"] <= alpha_each
            sequential[name] = seq
    sample = _sample_size(experiment, per_arm, control, ztest, alpha_each)
    decision, reason = _decide(experiment, per_arm, control, srm, sequential, ztest, sample)
    return {"srm": srm, "ztest": ztest, "sequential": sequential, "sample_size": sample,
            "decision": decision, "reason": reason}


def _decide(experiment, per_arm, control, srm, sequential, ztest, sample) -> tuple[str, str]:
    if srm["flagged"]:
        counts = ", ".join(f"{n} {a['viewers']} ({a['allocation']}%)" for n, a in per_arm.items())
        return Decision.SRM, (f"sample-ratio mismatch (χ² = {srm['chi2']:.1f}, p = {srm['p_value']:.2g} < "
                              f"{srm['threshold']}): viewers {counts}; the results cannot be trusted — find the cause")
    breaches = []
    limits = experiment.guardrails or {}
    min_requests = int(release_setting("CANARY_GUARDRAIL_MIN_REQUESTS"))
    for name, arm in per_arm.items():
        g = arm["guardrails"]
        if (g.get("requests") or 0) < min_requests:
            continue
        for key, limit_key in (("error_rate", "max_error_rate"), ("p99_ms", "max_p99_ms"),
                               ("fallback_rate", "max_fallback_rate")):
            if g.get(key) is not None and limits.get(limit_key) is not None and g[key] > limits[limit_key]:
                breaches.append(f"{name}: {key} {g[key]:.4g} > {limits[limit_key]}")
    if breaches:
        return Decision.GUARDRAIL, "guardrail breached — " + "; ".join(breaches)
    winners, losers = [], []
    for name, seq in sequential.items():
        if seq["reject"]:
            (winners if seq["difference"] > 0 else losers).append(name)
    def describe(name: str) -> str:
        s, t = sequential[name], per_arm[name]
        return (f"{name} {t['rate']:.4f} vs {control} {per_arm[control]['rate']:.4f} "
                f"(difference {s['difference']:+.4f}, always-valid p = {s['p_value']:.3g}, "
                f"{100 * (1 - s['alpha']):.0f}% confidence sequence [{s['cs_low']:+.4f}, {s['cs_high']:+.4f}])")
    if winners:
        best = max(winners, key=lambda n: sequential[n]["difference"])
        return f"{Decision.SHIP}:{best}", f"ship {best}: {describe(best)}"
    if losers and len(losers) == len(sequential):
        return Decision.KEEP_CONTROL, "keep the control: every treatment is worse — " + "; ".join(describe(n) for n in losers)
    if sample.get("reached") and not winners:
        significant = [n for n, z in ztest.items() if z.get("significant")]
        if significant:
            return Decision.CONTINUE, (
                "keep collecting: at the planned sample size the fixed-horizon z-test sees a difference ("
                + ", ".join(f"{n} {ztest[n]['difference']:+.4f}, p = {ztest[n]['p_value']:.3g}" for n in significant)
                + ") that the always-valid test has not confirmed")
        return Decision.NO_DIFFERENCE, (
            f"no difference detected at the planned sample size: {_plan_text(sample)}; "
            f"achieved viewers {_achieved_text(sample)}, power now {sample['achieved_power_min']:.2f} "
            f"for an effect of {sample['mde']}: keep the control")
    have = ", ".join(f"{n} {a['trials']}" for n, a in per_arm.items())
    if not sample:
        return Decision.CONTINUE, f"keep collecting: no significant difference yet (lists: {have})"
    return Decision.CONTINUE, (
        f"keep collecting: no significant difference yet (viewers {_achieved_text(sample)}; lists {have}; "
        f"planned {_plan_text(sample)}; power now {sample['achieved_power_min']:.2f})")


def _sample_size(experiment, per_arm: dict[str, dict], control: str, ztest: dict, alpha: float) -> dict:
    """The planned sample size in viewers per arm, what each arm has, and the power it has now.

    Arms are assigned by viewer, so the plan is in viewers: Fleiss' independent-trials lists per arm
    (at the control's rate) × the design effect the z-test measures (the largest over treatments; the
    configured prior until every arm has ``EXPERIMENT_DESIGN_EFFECT_MIN_VIEWERS`` viewers) ÷ the mean
    lists per viewer measured so far (``stats.sample_size_viewers``). The power now is that of the
    fixed-horizon z-test with the lists each treatment and the control have, at that design effect."""
    mde, power = experiment.minimum_detectable_effect, experiment.power
    base = per_arm[control]["rate"] or None
    if not base or not 0 < base < 1 or not 0 < base + mde < 1:
        return {}
    achieved = {n: _units(a) for n, a in per_arm.items()}
    min_viewers = int(release_setting("EXPERIMENT_DESIGN_EFFECT_MIN_VIEWERS"))
    measured = [z["design_effect"] for z in ztest.values() if z.get("unit") == "viewer"]
    if measured and len(measured) == len(ztest) and min(achieved.values()) >= min_viewers:
        design_effect, source = max(measured), "measured"
        note = f"measured by the analysis (the largest over treatments; every arm has ≥ {min_viewers} viewers)"
    else:
        design_effect, source = float(release_setting("EXPERIMENT_PRIOR_DESIGN_EFFECT")), "prior"
        note = (f"the configured prior (EXPERIMENT_PRIOR_DESIGN_EFFECT): the measured one is used once every "
                f"arm has {min_viewers} viewers" + (f"; measured so far {max(measured):.2f}" if measured else ""))
    lists = sum(a["trials"] for a in per_arm.values())
    viewers = sum(achieved.values())
    if not lists or not viewers:
        return {}
    per_viewer = lists / viewers
    plan = stats.sample_size_viewers(baseline=base, mde=mde, design_effect=design_effect, lists_per_viewer=per_viewer,
                                     alpha=alpha, power=power)
    c = per_arm[control]
    achieved_power = {
        n: stats.power_two_proportions(baseline=base, mde=mde, trials_a=c["trials"], trials_b=a["trials"],
                                       alpha=alpha, design_effect=design_effect)
        for n, a in per_arm.items() if n != control}
    reached = source == "measured" and all(v >= plan.viewers for v in achieved.values())
    return {
        "unit": "viewer", "per_arm": plan.viewers, "viewers_per_arm": plan.viewers,
        "lists_independent": plan.lists_independent, "lists_needed": plan.lists_needed,
        "design_effect": design_effect, "design_effect_source": source, "design_effect_note": note,
        "lists_per_viewer": per_viewer, "baseline": base, "mde": mde, "power": power, "alpha": alpha,
        "achieved_viewers": achieved, "achieved_power": achieved_power,
        "achieved_power_min": min(achieved_power.values()) if achieved_power else 0.0,
        "progress": {n: min(1.0, v / plan.viewers) for n, v in achieved.items()}, "reached": reached,
    }


def _units(arm: dict) -> int:
    """The arm's viewers in the analysis: those with a list whose window has closed (the moments' K),
    else the viewers served."""
    moments = arm.get("moments") or {}
    return int(moments.get("units") or arm.get("viewers") or 0)


def _plan_text(sample: dict) -> str:
    return (f"{sample['viewers_per_arm']:,} viewers per arm = {sample['lists_independent']:,} lists if independent × "
            f"design effect {sample['design_effect']:.2f} ({sample['design_effect_source']}) ÷ "
            f"{sample['lists_per_viewer']:.2f} lists per viewer, for an effect of {sample['mde']} at power "
            f"{sample['power']}")


def _achieved_text(sample: dict) -> str:
    return ", ".join(f"{n} {v:,}" for n, v in sample["achieved_viewers"].items())
