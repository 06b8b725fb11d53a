"""Canary rollouts: the candidate's share of traffic grows step by step while Celery compares it
with production on online quality (an always-valid sequential test) and guardrails, and moves it
on, completes it, or rolls it back on its own. Operators can pause, resume, advance or roll back.

Every transition happens in one transaction that bumps ``Rollout.revision``, writes a
``RolloutStep`` with the numbers, changes the deployment and writes the activity log: after a
crash either all of it happened or none of it did, and a task carrying an old revision is a no-op.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from portal.errors import Conflict, ValidationError
from portal.permissions import require
from portal.services import activity_log_record
from portal.stats import UnitMoments, two_proportion_ztest
from releases import clock, integrations, stats
from releases.conf import release_setting
from releases.models import Experiment, PromotionRequest, Rollout, RolloutStep
from releases.services._common import actor_label, human, notify_on_commit, require_reason

EVALUATE_TASK = "recommender.releases.rollout_evaluate"
SYSTEM = "recommender.releases.rollout_evaluate"
Outcome = RolloutStep.Outcome
# A check due within this much of beat's tick runs at that tick: with a one-minute check and a
# one-minute tick, one second of drift would otherwise make every check wait a whole extra tick.
DUE_SLACK = timedelta(seconds=5)


# --- start -----------------------------------------------------------------------------------------


def _blocker() -> str | None:
    active = Rollout.objects.filter(state__in=Rollout.ACTIVE).first()
    if active is not None:
        return f"rollout #{active.pk} of {active.version} is {active.state}"
    running = Experiment.objects.filter(status=Experiment.Status.RUNNING).first()
    if running is not None:
        return f"experiment '{running.name}' is running"
    return None


def rollout_start_if_free(*, promotion: PromotionRequest, actor: Any | None = None,
                          system: str | None = None, now: datetime | None = None) -> Rollout | None:
    """Start the canary of an approved promotion now, or leave it waiting (logged) when another
    rollout or an experiment holds the traffic split; the repair task starts it later."""
    blocker = _blocker()
    if blocker is not None:
        activity_log_record(actor=actor, system=system, action="release.rollout.waiting", target=promotion,
                            data={"reason": f"canary waits: {blocker}"})
        return None
    return rollout_start(promotion=promotion, actor=actor, system=system, now=now)


def rollout_start(*, promotion: PromotionRequest, actor: Any | None, system: str | None = None,
                  now: datetime | None = None) -> Rollout:
    """Put the approved version on the first canary step (or straight into production when
    nothing is in production to compare it with). ``now`` is the clock (simulations pass theirs)."""
    now = now or clock.now()
    with transaction.atomic():
        promotion = PromotionRequest.objects.select_for_update().get(pk=promotion.pk)
        if promotion.status != PromotionRequest.Status.APPROVED:
            raise Conflict(f"promotion #{promotion.pk} is {promotion.status}; only an approved one starts a canary")
        blocker = _blocker()
        if blocker is not None:
            raise Conflict(f"a canary cannot start while {blocker}")
        steps = [int(s) for s in (promotion.canary_steps or release_setting("CANARY_STEPS"))]
        interval = promotion.canary_interval_seconds or int(release_setting("CANARY_INTERVAL_SECONDS"))
        baseline = integrations.production_version()
        label = actor_label(actor, system)
        rollout = Rollout.objects.create(
            promotion=promotion, version=promotion.version, baseline_version=baseline, steps=steps,
            interval_seconds=interval, step_index=0, applied_percent=0, revision=0, created_at=now,
            step_started_at=now, next_check_at=now + timedelta(seconds=interval), started_by_label=label,
        )
        promotion.status = PromotionRequest.Status.ROLLING_OUT
        promotion.save(update_fields=["status", "updated_at"])
        if baseline is None:
            _transition(rollout, outcome=Outcome.COMPLETED, to_index=len(steps) - 1, metrics={},
                        reason="nothing is in production to compare with: the approved version goes straight to production",
                        actor=actor, system=system, now=now)
            return rollout
        _transition(rollout, outcome=Outcome.STARTED, to_index=0, metrics={},
                    reason=f"approved promotion #{promotion.pk}: canary at {steps[0]}% against {baseline}",
                    actor=actor, system=system, now=now)
    return rollout


# --- measuring --------------------------------------------------------------------------------------


def rollout_measure(*, rollout: Rollout, now: datetime | None = None) -> dict:
    """Online quality of canary vs production since the canary started (only lists old enough to
    have had their chance), the sequential test and the z-test on them, the canary's guardrail
    telemetry over the current step, and the evidence the step still needs with the time it takes
    at the current traffic rate (``evidence``)."""
    now = now or clock.now()
    alpha = float(release_setting("CANARY_ALPHA"))
    tau = float(release_setting("CANARY_TAU"))
    min_trials = int(release_setting("CANARY_MIN_TRIALS"))
    window = int(release_setting("CANARY_QUALITY_WINDOW_MINUTES") or integrations.quality_window_minutes())
    start = rollout.created_at
    step_start = rollout.step_started_at or start
    # Intent to treat: every list served on each route counts, fallbacks included.
    quality = integrations.online_quality_by_route(routes=["production", "canary"], start=start, end=now, now=now,
                                                   window_minutes=window)
    empty = {"successes": 0, "trials": 0}
    prod = quality.get("production", empty)
    canary = quality.get("canary", empty)
    step_quality = integrations.online_quality_by_route(
        routes=["canary"], start=step_start, end=now, now=now, window_minutes=window).get("canary", empty)
    out: dict[str, Any] = {
        "window": {"start": start.isoformat(), "end": now.isoformat()},
        "production": {"version": rollout.baseline_version_id, **prod,
                       "rate": prod["successes"] / prod["trials"] if prod["trials"] else None},
        "canary": {"version": rollout.version_id, **canary,
                   "rate": canary["successes"] / canary["trials"] if canary["trials"] else None,
                   "step_trials": step_quality["trials"]},
        "alpha": alpha, "tau": tau, "min_trials": min_trials,
        "max_degradation": float(release_setting("CANARY_MAX_DEGRADATION")),
        "quality_window_minutes": window,
    }
    if prod["trials"] and canary["trials"]:
        # Viewers are bucketed onto the canary: the viewer is the unit, with delta-method variances.
        units = {"moments_a": UnitMoments.from_dict(prod.get("moments")),
                 "moments_b": UnitMoments.from_dict(canary.get("moments"))}
        seq = stats.msprt(successes_a=prod["successes"], trials_a=prod["trials"], successes_b=canary["successes"],
                          trials_b=canary["trials"], alpha=alpha, tau=tau, min_trials=min_trials, **units)
        z = two_proportion_ztest(successes_a=prod["successes"], trials_a=prod["trials"],
                                       successes_b=canary["successes"], trials_b=canary["trials"], alpha=alpha,
                                       **units)
        out["sequential"] = seq.as_dict()
        out["ztest"] = z.as_dict()
    out["evidence"] = _evidence(rollout=rollout, metrics=out, now=now, step_start=step_start)
    # "Looks worse" is judged no finer than the data resolve: beyond the tolerance, and below production
    # by more than half the planned test's reach in standard errors, (z_{1-α/2} + z_power) / 2 = 1.4 at
    # α 0.05 and power 0.8 (the estimate is then nearer "harm δ" than "no harm" at the planned lists).
    # A healthy canary lands there about one check in twelve at any amount of data, a harmful one at
    # the planned lists eleven in twelve; on the point estimate alone, a 5 % step's handful of viewers
    # made an identical model "look worse" check after check.
    from scipy.stats import norm

    out["worse_z"] = float((norm.ppf(1 - alpha / 2) + norm.ppf(float(release_setting("CANARY_POWER")))) / 2)
    guard = integrations.guardrail_telemetry(route="canary", start=step_start, end=now)
    limits = release_setting("CANARY_GUARDRAILS")
    out["guardrails"] = {"observed": guard, "limits": limits,
                         "breaches": _breaches(guard, limits, int(release_setting("CANARY_GUARDRAIL_MIN_REQUESTS")))}
    return out


def _plan(rollout: Rollout, metrics: dict) -> tuple[stats.CanaryPlan, dict]:
    """The evidence plan from the smallest harm worth detecting, with production's measured success
    rate and design effect once there is enough of them (the priors before)."""
    prod = metrics["production"]
    min_trials = metrics["min_trials"]
    baseline, baseline_source = float(release_setting("CANARY_PRIOR_BASELINE")), "prior"
    if prod["trials"] >= min_trials and prod["rate"]:
        baseline, baseline_source = prod["rate"], "measured"
    design_effect, design_source = float(release_setting("CANARY_PRIOR_DESIGN_EFFECT")), "prior"
    seq = metrics.get("sequential") or {}
    viewers = min(int((prod.get("moments") or {}).get("units") or 0),
                  int((metrics["canary"].get("moments") or {}).get("units") or 0))
    if seq.get("enough_data") and seq.get("unit") == "viewer" and \
            viewers >= int(release_setting("CANARY_DESIGN_EFFECT_MIN_VIEWERS")):
        design_effect, design_source = max(1.0, float(seq["design_effect"])), "measured"
    plan = stats.canary_plan(steps=rollout.steps, baseline=baseline, mde=float(
        release_setting("CANARY_MIN_DETECTABLE_DEGRADATION")), alpha=metrics["alpha"],
        power=float(release_setting("CANARY_POWER")), design_effect=design_effect, min_trials=min_trials)
    return plan, {"baseline_source": baseline_source, "design_effect_source": design_source}


def _evidence(*, rollout: Rollout, metrics: dict, now: datetime, step_start: datetime) -> dict:
    """What this step still needs, in lists per side, and about how long that takes at the traffic
    rate of the last ``CANARY_RATE_WINDOW_MINUTES`` (served lists per minute, from the prediction log)."""
    plan, sources = _plan(rollout, metrics)
    index = min(rollout.step_index, len(plan.per_step) - 1)
    window = metrics["quality_window_minutes"]
    rate_minutes = max(1, int(release_setting("CANARY_RATE_WINDOW_MINUTES")))
    recent = integrations.lists_served(start=now - timedelta(minutes=rate_minutes), end=now,
                                       routes=["production", "canary"])
    # Over the minutes the log covers (at least one), so a server that just started is not
    # taken for a slow one.
    span = max(1.0, integrations.traffic_minutes(start=now - timedelta(minutes=rate_minutes), end=now))
    rate = recent["*"] / span
    share = rollout.applied_percent / 100
    # The canary's own rate once the step has run a minute (bucketing is by viewer, so its share of
    # lists is not exactly its share of viewers); before, the total rate × the share.
    step_minutes = min(rate_minutes, (now - step_start).total_seconds() / 60)
    canary_rate = rate * share
    if step_minutes >= 1:
        at_step = integrations.lists_served(start=now - timedelta(minutes=step_minutes), end=now, routes=["canary"])
        canary_rate = at_step.get("canary", 0) / step_minutes
    production_rate = recent.get("production", 0) / span
    served_step = integrations.lists_served(start=step_start, end=now, routes=["canary"]).get("canary", 0)
    served_prod = integrations.lists_served(start=rollout.created_at, end=now, routes=["production"]).get(
        "production", 0)
    canary = metrics["canary"]
    prod = metrics["production"]
    c_need, p_need = plan.per_step[index], plan.production_needed[index]
    c_more, c_minutes = stats.evidence_eta(needed=c_need, have=canary["step_trials"],
                                           pending=served_step - canary["step_trials"], lists_per_minute=canary_rate,
                                           window_minutes=window)
    p_more, p_minutes = stats.evidence_eta(needed=p_need, have=prod["trials"], pending=served_prod - prod["trials"],
                                           lists_per_minute=production_rate, window_minutes=window)
    minutes = None if (c_more and c_minutes is None) or (p_more and p_minutes is None) else \
        max(c_minutes or 0.0, p_minutes or 0.0)
    more = c_more + p_more
    if not more:
        message = (f"enough evidence: {canary['step_trials']} canary lists at this step (needed {c_need}) and "
                   f"{prod['trials']} production lists (needed {p_need})")
    else:
        parts = [f"{c_more} more canary lists ({canary['step_trials']} of {c_need} at this step)"] if c_more else []
        parts += [f"{p_more} more production lists ({prod['trials']} of {p_need})"] if p_more else []
        what = "needs " + " and ".join(parts)
        if recent["*"] == 0:
            message = f"{what}: no traffic in the last {rate_minutes} minutes"
        elif minutes is None:
            message = f"{what}: no canary traffic in the last {rate_minutes} minutes"
        else:
            message = (f"{what}, about {math.ceil(minutes)} minutes at the current rate ({rate:.1f} lists/min, "
                       f"{canary_rate:.1f} on the canary; a list counts {window} min after it is served)")
    return {
        "plan": {**plan.as_dict(), **sources},
        "step": index, "canary_needed": c_need, "canary_have": canary["step_trials"],
        "canary_pending": max(0, served_step - canary["step_trials"]), "canary_more": c_more,
        "production_needed": p_need, "production_have": prod["trials"],
        "production_pending": max(0, served_prod - prod["trials"]), "production_more": p_more,
        "needs_more": more, "minutes": None if minutes is None else round(minutes, 1),
        "lists_per_minute": round(rate, 2), "canary_lists_per_minute": round(canary_rate, 2),
        "rate_window_minutes": rate_minutes, "served_at_step": served_step, "message": message,
        "at": now.isoformat(),
    }


def _breaches(observed: dict, limits: dict, min_requests: int) -> list[str]:
    if (observed.get("requests") or 0) < min_requests:
        return []
    found = []
    for key, limit_key, unit in (("error_rate", "max_error_rate", ""), ("p99_ms", "max_p99_ms", " ms"),
                                 ("fallback_rate", "max_fallback_rate", "")):
        value, limit = observed.get(key), limits.get(limit_key)
        if value is not None and limit is not None and value > limit:
            found.append(f"{key} {value:.4g}{unit} > {limit}{unit}")
    return found


def _looks_worse(metrics: dict) -> bool:
    """The canary's online quality is below production's by more than the tolerated degradation
    (with enough lists on both sides to say so)."""
    prod, canary = metrics["production"], metrics["canary"]
    if prod["rate"] is None or canary["rate"] is None:
        return False
    if canary["step_trials"] < metrics["min_trials"] or prod["trials"] < metrics["min_trials"]:
        return False
    if canary["rate"] - prod["rate"] >= -metrics["max_degradation"]:
        return False
    z = (metrics.get("ztest") or {}).get("z")
    return z is None or "worse_z" not in metrics or z < -metrics["worse_z"]


def rollout_decide(*, rollout: Rollout, metrics: dict) -> tuple[str, str]:
    """The automatic decision at a step: (outcome, reason in words with the numbers)."""
    breaches = metrics["guardrails"]["breaches"]
    if breaches:
        return Outcome.ROLLED_BACK, "guardrail breached: " + "; ".join(breaches)
    seq = metrics.get("sequential")
    prod, canary = metrics["production"], metrics["canary"]
    if seq and seq["reject"] and seq["difference"] < 0:
        return Outcome.ROLLED_BACK, (
            f"canary worse on online quality: {canary['rate']:.4f} ({canary['successes']}/{canary['trials']}) vs "
            f"production {prod['rate']:.4f} ({prod['successes']}/{prod['trials']}), difference {seq['difference']:+.4f}, "
            f"always-valid p = {seq['p_value']:.3g} ≤ α = {seq['alpha']}"
        )
    evidence = metrics.get("evidence") or {}
    if evidence.get("needs_more"):
        return Outcome.HELD, f"not enough data yet: {evidence['message']}"
    worse = metrics["max_degradation"]
    nxt = rollout.step_index + 1
    z = metrics.get("ztest") or {}
    if nxt >= len(rollout.steps) - 1 and z.get("significant") and z["difference"] < 0:
        # The planned horizon: the canary has had the lists to detect the smallest harm worth
        # detecting with the planned power; the fixed-horizon test has the last word on harm.
        return Outcome.ROLLED_BACK, (
            f"canary worse on online quality at the planned horizon: {canary['rate']:.4f} "
            f"({canary['successes']}/{canary['trials']}) vs production {prod['rate']:.4f} "
            f"({prod['successes']}/{prod['trials']}), difference {z['difference']:+.4f}, "
            f"z-test p = {z['p_value']:.3g} < α = {metrics['alpha']}"
        )
    if _looks_worse(metrics):
        return Outcome.HELD, (
            f"canary looks worse ({canary['rate']:.4f} vs production {prod['rate']:.4f}, "
            f"{canary['rate'] - prod['rate']:+.4f}, beyond the {worse} tolerated"
            + (f", z = {z['z']:.2f}" if z.get("z") is not None else "") + ") but not significantly yet"
            + (f" (always-valid p = {seq['p_value']:.3g})" if seq else "")
            + f": holding at {rollout.applied_percent}% to collect more"
        )
    detail = (f"online quality canary {canary['rate']:.4f} vs production {prod['rate']:.4f}"
              + (f", always-valid p = {seq['p_value']:.3g}" if seq else "") + "; guardrails within limits")
    if nxt >= len(rollout.steps) - 1:
        return Outcome.COMPLETED, f"no harm detected at {rollout.applied_percent}% ({detail}): canary becomes production"
    return Outcome.ADVANCED, f"no harm detected at {rollout.applied_percent}% ({detail}): to {rollout.steps[nxt]}%"


def rollout_evaluate(*, rollout: Rollout, expected_revision: int | None = None, now: datetime | None = None,
                     system: str = SYSTEM) -> RolloutStep | None:
    """The step check run by Celery: measure, decide and apply — or nothing when the rollout
    is not running, has moved on from ``expected_revision``, or is not due yet."""
    now = now or clock.now()
    current = Rollout.objects.select_related("version", "baseline_version").get(pk=rollout.pk)
    if not _due(current, expected_revision, now):
        return None
    metrics = rollout_measure(rollout=current, now=now)
    outcome, reason = rollout_decide(rollout=current, metrics=metrics)
    with transaction.atomic():
        locked = Rollout.objects.select_for_update().get(pk=rollout.pk)
        if not _due(locked, current.revision, now):
            return None  # another worker got there first
        if outcome == Outcome.HELD:
            holds = _holds(locked, metrics)
            if holds >= int(release_setting("CANARY_MAX_HOLDS")):
                if _looks_worse(metrics):
                    # The burden of proof is on the canary: one that still looks worse than tolerated
                    # after the last hold goes back out of traffic (the safe side) instead of waiting.
                    return _transition(locked, outcome=Outcome.ROLLED_BACK, to_index=locked.step_index,
                                       metrics=metrics, actor=None, system=system, now=now,
                                       reason=f"not shown to be no worse after {holds} checks in a row: {reason}")
                return _transition(locked, outcome=Outcome.PAUSED, to_index=locked.step_index, metrics=metrics,
                                   reason=f"paused for a person after {holds} checks in a row without new canary lists: {reason}",
                                   actor=None, system=system, now=now)
            return _transition(locked, outcome=Outcome.HELD, to_index=locked.step_index, metrics=metrics,
                               reason=reason, actor=None, system=system, now=now,
                               extra={"holds": holds, "served_at_step": metrics["evidence"]["served_at_step"]})
        to_index = locked.step_index + 1 if outcome == Outcome.ADVANCED else locked.step_index
        if outcome == Outcome.COMPLETED:
            to_index = len(locked.steps) - 1
        return _transition(locked, outcome=outcome, to_index=to_index, metrics=metrics, reason=reason,
                           actor=None, system=system, now=now)


def _holds(rollout: Rollout, metrics: dict) -> int:
    """Consecutive holds that brought nothing new: a canary that looks worse always counts; one held
    for want of data counts only when no canary list was served since the previous check (a hold
    while the lists it waits for keep arriving is the plan working, not a stall)."""
    last = rollout.last_decision or {}
    previous = int(last.get("holds", 0)) if last.get("outcome") == Outcome.HELD else 0
    served_before = int(last.get("served_at_step", 0)) if last.get("outcome") == Outcome.HELD else 0
    if _looks_worse(metrics):
        return previous + 1
    if metrics["evidence"]["served_at_step"] > served_before:
        return 0
    return previous + 1


def _due(rollout: Rollout, expected_revision: int | None, now: datetime) -> bool:
    if rollout.state != Rollout.State.RUNNING:
        return False
    if expected_revision is not None and rollout.revision != expected_revision:
        return False
    return rollout.next_check_at is not None and rollout.next_check_at <= now + DUE_SLACK


# --- operator actions ---------------------------------------------------------------------------------


def _locked_active(rollout: Rollout) -> Rollout:
    locked = Rollout.objects.select_for_update().get(pk=rollout.pk)
    if locked.state not in Rollout.ACTIVE:
        raise Conflict(f"rollout #{locked.pk} is {locked.state}")
    return locked


def rollout_pause(*, rollout: Rollout, actor: Any, reason: str, now: datetime | None = None) -> RolloutStep:
    """Hold the canary at its current share until someone resumes, advances or rolls back."""
    require(actor, "release.operate")
    reason = require_reason(reason)
    with transaction.atomic():
        locked = _locked_active(rollout)
        if locked.state == Rollout.State.PAUSED:
            raise Conflict(f"rollout #{locked.pk} is already paused")
        return _transition(locked, outcome=Outcome.PAUSED, to_index=locked.step_index, metrics={},
                           reason=reason, actor=actor, system=None, now=now)


def rollout_resume(*, rollout: Rollout, actor: Any, reason: str, now: datetime | None = None) -> RolloutStep:
    """Let the automatic checks run again, the next one an interval from now."""
    require(actor, "release.operate")
    reason = require_reason(reason)
    with transaction.atomic():
        locked = _locked_active(rollout)
        if locked.state != Rollout.State.PAUSED:
            raise Conflict(f"rollout #{locked.pk} is not paused")
        return _transition(locked, outcome=Outcome.RESUMED, to_index=locked.step_index, metrics={},
                           reason=reason, actor=actor, system=None, now=now)


def _operator_action(*, rollout: Rollout, actor: Any, reason: str, now: datetime | None) -> tuple[str, dict]:
    """An operator's advance or rollback: allowed, with a reason, and the numbers as they stand recorded."""
    require(actor, "release.operate")
    reason = require_reason(reason)
    current = Rollout.objects.get(pk=rollout.pk)
    return reason, (rollout_measure(rollout=current, now=now) if current.state in Rollout.ACTIVE else {})


def rollout_advance(*, rollout: Rollout, actor: Any, reason: str, now: datetime | None = None) -> RolloutStep:
    """Move to the next step by hand (completing at the last one), with the numbers recorded."""
    reason, metrics = _operator_action(rollout=rollout, actor=actor, reason=reason, now=now)
    with transaction.atomic():
        locked = _locked_active(rollout)
        nxt = locked.step_index + 1
        outcome = Outcome.COMPLETED if nxt >= len(locked.steps) - 1 else Outcome.ADVANCED
        return _transition(locked, outcome=outcome, to_index=min(nxt, len(locked.steps) - 1), metrics=metrics,
                           reason=reason, actor=actor, system=None, now=now)


def rollout_rollback(*, rollout: Rollout, actor: Any, reason: str, now: datetime | None = None) -> RolloutStep:
    """Take the canary out of traffic now: every request goes back to production."""
    reason, metrics = _operator_action(rollout=rollout, actor=actor, reason=reason, now=now)
    with transaction.atomic():
        locked = _locked_active(rollout)
        return _transition(locked, outcome=Outcome.ROLLED_BACK, to_index=locked.step_index, metrics=metrics,
                           reason=reason, actor=actor, system=None, now=now)


# --- the one place a rollout changes ---------------------------------------------------------------------


def _transition(rollout: Rollout, *, outcome: str, to_index: int, metrics: dict, reason: str, actor: Any | None,
                system: str | None, now: datetime | None = None, extra: dict | None = None) -> RolloutStep:
    """Apply one transition inside the caller's transaction (the rollout row is locked)."""
    now = now or clock.now()
    label = actor_label(actor, system)
    from_percent = rollout.applied_percent
    rollout.revision += 1
    promotion = rollout.promotion
    if outcome in (Outcome.STARTED, Outcome.ADVANCED):
        rollout.step_index = to_index
        rollout.applied_percent = int(rollout.steps[to_index])
        rollout.step_started_at = now
        rollout.next_check_at = now + timedelta(seconds=rollout.interval_seconds)
        integrations.deployment_set_canary(version=rollout.version, percent=rollout.applied_percent,
                                           actor=actor, system=system, reason=reason)
    elif outcome == Outcome.HELD:
        rollout.next_check_at = now + timedelta(seconds=rollout.interval_seconds)
    elif outcome == Outcome.PAUSED:
        rollout.state = Rollout.State.PAUSED
        rollout.next_check_at = None
    elif outcome == Outcome.RESUMED:
        rollout.state = Rollout.State.RUNNING
        rollout.next_check_at = now + timedelta(seconds=rollout.interval_seconds)
    elif outcome == Outcome.COMPLETED:
        rollout.step_index = len(rollout.steps) - 1
        rollout.applied_percent = 100
        rollout.state = Rollout.State.COMPLETED
        rollout.next_check_at = None
        rollout.finished_at = now
        rollout.finished_reason = reason
        integrations.deployment_promote(version=rollout.version, actor=actor, system=system, reason=reason)
        if promotion is not None:
            promotion.status = PromotionRequest.Status.RELEASED
    elif outcome == Outcome.ROLLED_BACK:
        rollout.applied_percent = 0
        rollout.state = Rollout.State.ROLLED_BACK
        rollout.next_check_at = None
        rollout.finished_at = now
        rollout.finished_reason = reason
        integrations.deployment_set_canary(version=None, percent=0, actor=actor, system=system, reason=reason)
        if promotion is not None:
            promotion.status = PromotionRequest.Status.ROLLED_BACK
    else:
        raise ValidationError(f"unknown rollout transition '{outcome}'")
    rollout.last_decision = {"outcome": outcome, "reason": reason, "by": label, "at": now.isoformat(),
                             "revision": rollout.revision, **(extra or {})}
    rollout.save()
    if promotion is not None and outcome in (Outcome.COMPLETED, Outcome.ROLLED_BACK):
        promotion.save(update_fields=["status", "updated_at"])
    step = RolloutStep.objects.create(
        rollout=rollout, revision=rollout.revision, created_at=now, step_index=rollout.step_index, from_percent=from_percent,
        to_percent=rollout.applied_percent, outcome=outcome, metrics=metrics, reason=reason,
        decided_by=human(actor), decided_label=label,
    )
    activity_log_record(
        actor=actor, system=system, action=f"release.rollout.{outcome}", target=rollout,
        data={"revision": rollout.revision, "from_percent": from_percent, "to_percent": rollout.applied_percent,
              "reason": reason, "numbers": _headline(metrics), "version": rollout.version_id,
              "production": rollout.baseline_version_id},
    )
    if outcome != Outcome.HELD:
        notify_on_commit(
            event=f"rollout.{outcome}",
            subject=f"Canary of {rollout.version}: {outcome.replace('_', ' ')} ({from_percent}% → {rollout.applied_percent}%)",
            body=f"{label}: {reason}",
            payload={"rollout": rollout.pk, "version": rollout.version_id, "production": rollout.baseline_version_id,
                     "outcome": outcome, "from_percent": from_percent, "to_percent": rollout.applied_percent,
                     "decided_by": label, "reason": reason, "numbers": _headline(metrics)},
        )
    return step


def _headline(metrics: dict) -> dict:
    """The numbers behind a decision, small enough for the activity log and a notification."""
    if not metrics:
        return {}
    seq, z = metrics.get("sequential") or {}, metrics.get("ztest") or {}
    return {
        "production": {**{k: metrics["production"].get(k) for k in ("successes", "trials", "rate")},
                       "viewers": (metrics["production"].get("moments") or {}).get("units")},
        "canary": {**{k: metrics["canary"].get(k) for k in ("successes", "trials", "rate", "step_trials")},
                   "viewers": (metrics["canary"].get("moments") or {}).get("units")},
        "unit": seq.get("unit") or z.get("unit"), "design_effect": seq.get("design_effect"),
        "difference": seq.get("difference"), "always_valid_p": seq.get("p_value"),
        "confidence_sequence": [seq.get("cs_low"), seq.get("cs_high")] if seq else None,
        "z": z.get("z"), "z_p": z.get("p_value"),
        "guardrails": metrics["guardrails"]["observed"], "breaches": metrics["guardrails"]["breaches"],
    }


# --- repair ---------------------------------------------------------------------------------------------


def rollouts_due(*, now: datetime | None = None) -> list[tuple[int, int]]:
    """(rollout id, revision) of running rollouts whose check is due."""
    now = now or clock.now()
    return list(Rollout.objects.filter(state=Rollout.State.RUNNING, next_check_at__lte=now + DUE_SLACK)
                .values_list("id", "revision"))


def rollouts_reconcile(*, system: str) -> list[dict]:
    """Make the deployment hold exactly what each active rollout recorded (after a crash or a
    change made behind the rollout's back); each correction is logged."""
    fixes = []
    for rollout in Rollout.objects.filter(state__in=Rollout.ACTIVE).select_related("version"):
        with transaction.atomic():
            locked = Rollout.objects.select_for_update().get(pk=rollout.pk)
            if locked.state not in Rollout.ACTIVE:
                continue
            state = integrations.deployment_state()
            if state["canary_version"] == locked.version_id and state["canary_percent"] == locked.applied_percent:
                continue
            integrations.deployment_set_canary(version=locked.version, percent=locked.applied_percent, actor=None,
                                               system=system, reason=f"repair: restore rollout #{locked.pk}'s recorded state")
            fix = {"rollout": locked.pk, "found": {"canary_version": state["canary_version"],
                                                   "canary_percent": state["canary_percent"]},
                   "restored": {"canary_version": locked.version_id, "canary_percent": locked.applied_percent}}
            activity_log_record(actor=None, system=system, action="release.rollout.repaired", target=locked, data=fix)
            fixes.append(fix)
    return fixes


def production_rollback(*, actor: Any, reason: str) -> dict:
    """Put the previous production version back in one action (a running canary is rolled back
    first). Serving swaps models in place, so requests keep being answered throughout."""
    require(actor, "release.operate")
    reason = require_reason(reason)
    with transaction.atomic():
        for active in Rollout.objects.select_for_update().filter(state__in=Rollout.ACTIVE):
            _transition(active, outcome=Outcome.ROLLED_BACK, to_index=active.step_index, metrics={},
                        reason=f"production rollback: {reason}", actor=actor, system=None)
        current = integrations.production_version()
        previous = integrations.previous_production_version()
        if current is None or previous is None:
            raise Conflict("there is no previous production version to roll back to")
        integrations.deployment_rollback_production(version=previous, actor=actor,
                                                    reason=f"rollback from {current}: {reason}")
        released = Rollout.objects.filter(version=current, state=Rollout.State.COMPLETED).order_by("-finished_at").first()
        if released is not None and released.promotion_id:
            PromotionRequest.objects.filter(pk=released.promotion_id).update(status=PromotionRequest.Status.ROLLED_BACK)
        data = {"from": current.pk, "to": previous.pk, "reason": reason}
        activity_log_record(actor=actor, action="release.production.rolled_back", target=current, data=data)
        notify_on_commit(event="production.rolled_back", subject=f"Production rolled back from {current} to {previous}",
                         body=f"{actor.get_username()}: {reason}", payload={**data, "decided_by": actor.get_username()})
    return data
