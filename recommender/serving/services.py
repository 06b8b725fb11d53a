"""Writes of the serving side: changing a deployment (versions per role, canary share, experiment arms,
salt, shadow) and rolling production back. Every change bumps the deployment's revision, keeps a
``DeploymentChange`` with the state before and after, and is recorded in the activity log.

**One door to live traffic.** ``deployment_update`` is the only write that changes what viewers are
served: the deployment API and page, the registry's alias move (``model_alias_move`` delegates here),
experiment arms, the canary share, the rollouts of approved promotions, commands and bootstrap all
come through it. A version reaches viewers (production, a canary share above 0%, an experiment arm)
only with an approved promotion: its release gate passed and a reviewer who is not its requester
approved it (``selectors.live_traffic_clearance``). Shadow (no viewer sees it) needs no promotion. The
exceptions are written here and nowhere else: the bootstrap step (``system='bootstrap'`` while nothing
is in production) and ``deployment_rollback``, the one emergency action an operator takes alone, which
only goes back to a version that was in production before. A refusal changes nothing, answers 409
naming what is missing with where to start it, and is logged (``deployment.refused``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from portal.errors import Conflict, NotFound, ValidationError
from portal.permissions import require
from portal.services import activity_log_record
from recommender.models import Deployment, DeploymentChange, ExperimentArm, ModelAlias, ModelVersion
from recommender.serving import bucketing
from recommender.serving.selectors import (
    deployment_describe,
    live_traffic_clearance,
    promotion_start_links,
    version_was_in_production,
)

UNCHANGED: Any = object()
ROLES = ("production", "canary", "shadow")
BOOTSTRAP_SYSTEM = "bootstrap"
WORK = "release.operate"


def _actor_label(actor: Any, system: str | None) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return f"system:{system or 'usher'}"


def _percent(value: Any, what: str, *, allow_zero: bool = True) -> Decimal:
    try:
        percent = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise ValidationError(f"{what} must be a number between 0 and 100, got {value!r}", field=what) from None
    if percent < 0 or percent > 100 or (not allow_zero and percent == 0):
        low = "0" if allow_zero else "above 0"
        raise ValidationError(f"{what} must be between {low} and 100, got {value}", field=what)
    return percent


def _version(value: Any, role: str) -> ModelVersion | None:
    if value is None or isinstance(value, ModelVersion):
        return value
    try:
        return ModelVersion.objects.get(pk=int(value))
    except (ModelVersion.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"{role}: model version {value!r} does not exist", field=role) from None


def deployment_get_or_create(*, name: str = "default") -> Deployment:
    """The deployment of that name, created with no canary and no arms on first use."""
    deployment, _ = Deployment.objects.get_or_create(name=name)
    return deployment


def deployment_update(
    *,
    actor: Any,
    reason: str,
    name: str = "default",
    production: Any = UNCHANGED,
    canary: Any = UNCHANGED,
    shadow: Any = UNCHANGED,
    canary_percent: Any = UNCHANGED,
    shadow_enabled: Any = UNCHANGED,
    salt: Any = UNCHANGED,
    arms: Any = UNCHANGED,
    system: str | None = None,
) -> Deployment:
    """Change what serves traffic; arguments left ``UNCHANGED`` stay as they are, ``None`` clears a role.

    ``arms`` replaces the experiment arms: ``[{"name", "version", "percent", "experiment"?}, ...]``.
    Needs ``release.operate`` (or a system name). A version put in front of viewers needs an approved
    promotion (see the module docstring). Atomic: on any refusal nothing changes. Returns the
    deployment (unchanged when nothing differs).
    """
    return _deployment_change(actor=actor, reason=reason, name=name, production=production, canary=canary,
                              shadow=shadow, canary_percent=canary_percent, shadow_enabled=shadow_enabled, salt=salt,
                              arms=arms, system=system, rollback=False)


def _deployment_change(*, actor: Any, reason: str, name: str, production: Any, canary: Any, shadow: Any,
                       canary_percent: Any, shadow_enabled: Any, salt: Any, arms: Any, system: str | None,
                       rollback: bool) -> Deployment:
    require(actor, WORK, system=system, target=("recommender.deployment", name, f"deployment {name}"))
    if not (reason or "").strip():
        raise ValidationError("a reason is required to change a deployment", field="reason")
    targets = {role: _version(value, role) for role, value in
               (("production", production), ("canary", canary), ("shadow", shadow)) if value is not UNCHANGED}
    new_arms = None if arms is UNCHANGED else _clean_arms(arms)
    if salt is not UNCHANGED:
        salt = str(salt).strip()
        if not salt or len(salt) > 64:
            raise ValidationError("salt must be 1 to 64 characters")
    # The door, checked before the transaction so that a refusal's log entry is kept.
    current = Deployment.objects.filter(name=name).first()
    plan = _plan(deployment=current, targets=targets, canary_percent=canary_percent, new_arms=new_arms)
    refusals = _live_traffic_refusals(plan=plan, system=system, rollback=rollback)
    if refusals:
        _refuse(refusals, actor=actor, system=system, name=name, reason=reason)
    with transaction.atomic():
        deployment = deployment_get_or_create(name=name)
        deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
        plan = _plan(deployment=deployment, targets=targets, canary_percent=canary_percent, new_arms=new_arms)
        before = plan["before"]
        refusals = _live_traffic_refusals(plan=plan, system=system, rollback=rollback)
        if refusals:  # the deployment moved between the check and the lock
            raise _conflict(refusals)
        new_percent = plan["canary_percent"]
        if new_percent > 0 and not plan["canary"]:
            raise ValidationError("a canary share above 0% needs a canary version", field="canary_percent")
        arm_shares = [(a["name"], a["percent"]) for a in (new_arms if new_arms is not None else before["arms"])]
        try:
            bucketing.build_layout(salt="check", canary_percent=new_percent, arms=arm_shares)
        except ValueError as exc:
            raise ValidationError(str(exc))

        for role, version in targets.items():
            from recommender.registry.aliases import model_alias_write

            model_alias_write(alias=role, version=version, actor=actor, reason=reason, system=system)
        deployment.canary_percent = new_percent
        if shadow_enabled is not UNCHANGED:
            deployment.shadow_enabled = bool(shadow_enabled)
        if salt is not UNCHANGED:
            deployment.salt = salt
        if new_arms is not None:
            deployment.arms.all().delete()
            ExperimentArm.objects.bulk_create([
                ExperimentArm(deployment=deployment, name=a["name"], version=a["version_obj"], percent=a["percent"],
                              experiment=a.get("experiment", ""), position=i)
                for i, a in enumerate(new_arms)
            ])
        deployment.save()
        after = deployment_describe(deployment=deployment)
        if _comparable(after) == _comparable(before):
            return deployment  # nothing differs: no new revision, nothing to log
        deployment.revision += 1
        deployment.updated_by = actor if getattr(actor, "is_authenticated", False) else None
        deployment.updated_by_label = _actor_label(actor, system)
        deployment.reason = reason
        deployment.save()
        after["revision"] = deployment.revision
        DeploymentChange.objects.create(
            deployment=deployment, revision=deployment.revision, actor=deployment.updated_by,
            actor_label=deployment.updated_by_label, reason=reason, before=before, after=after,
        )
        data = {"revision": deployment.revision, "reason": reason,
                "before": _comparable(before), "after": _comparable(after)}
        if rollback:
            data["emergency_rollback"] = True
        activity_log_record(actor=actor, system=system, action="deployment.changed", target=deployment, data=data)
        if rollback:
            activity_log_record(
                actor=actor, system=system, action="deployment.emergency_rollback", target=deployment,
                data={"revision": deployment.revision, "reason": reason,
                      "from": (before["production"] or {}).get("id"), "to": (after["production"] or {}).get("id"),
                      "rule": "back to a version that was in production before; no promotion needed"},
            )
    return deployment


def _plan(*, deployment: Deployment | None, targets: dict, canary_percent: Any, new_arms: list | None) -> dict:
    """The state before and the live roles after a change (versions as objects)."""
    before = deployment_describe(deployment=deployment)
    old_percent = Decimal(str(before["canary_percent"]))
    new_percent = old_percent if canary_percent is UNCHANGED else _percent(canary_percent, "canary_percent")

    def role(name: str) -> ModelVersion | None:
        if name in targets:
            return targets[name]
        ref = before[name]
        return ModelVersion.objects.select_related("registered_model").filter(pk=ref["id"]).first() if ref else None

    return {"before": before, "production": role("production"), "canary": role("canary"),
            "canary_percent": new_percent, "old_canary_percent": old_percent, "arms": new_arms,
            "production_changed": "production" in targets}


def _live_traffic_refusals(*, plan: dict, system: str | None, rollback: bool) -> list[dict]:
    """Every version this change would put in front of viewers (or give more of them) without the
    right to: an approved promotion, the bootstrap step, or an emergency rollback's former production."""
    before = plan["before"]
    refusals: list[dict] = []

    def check(role: str, version: ModelVersion) -> None:
        clearance = live_traffic_clearance(version=version)
        if not clearance["cleared"]:
            refusals.append({"role": role, "version": version.pk, "label": str(version),
                             "missing": clearance["missing"], "start": promotion_start_links(version=version)})

    production_before = (before["production"] or {}).get("id")
    production = plan["production"]
    if plan["production_changed"] and production is not None and production.pk != production_before:
        if rollback:
            if not version_was_in_production(version=production):
                refusals.append({"role": "production", "version": production.pk, "label": str(production),
                                 "missing": f"{production} was never in production: an emergency rollback only goes "
                                            "back to a former production version; anything else needs a promotion",
                                 "start": promotion_start_links(version=production)})
        elif not (system == BOOTSTRAP_SYSTEM and production_before is None):
            check("production", production)
    canary = plan["canary"]
    canary_before = (before["canary"] or {}).get("id")
    if canary is not None and plan["canary_percent"] > 0 and (
            canary.pk != canary_before or plan["canary_percent"] > plan["old_canary_percent"]):
        check("canary", canary)
    if plan["arms"] is not None:
        held: dict[int, Decimal] = {}
        for arm in before["arms"]:
            held[arm["version"]] = held.get(arm["version"], Decimal(0)) + Decimal(str(arm["percent"]))
        for arm in plan["arms"]:
            version = arm["version_obj"]
            if production is not None and version.pk == production.pk:
                continue  # the current production version may always be an arm (usually the control)
            if arm["percent"] <= held.get(version.pk, Decimal(-1)):
                continue  # no more viewers than it already had
            check(f"arm:{arm['name']}", version)
    return refusals


def live_traffic_arms_check(*, arms: list[dict], actor: Any, system: str | None, reason: str,
                            name: str = "default") -> None:
    """The door's rule for experiment arms, asked before a caller opens its transaction (so the
    refusal's log entry is kept): each arm's version is the current production version or has an
    approved promotion. ``arms``: ``[{"name", "version", "percent"}]``."""
    cleaned = [{"name": str(a["name"]), "version_obj": _version(a["version"], f"arm {a['name']}"),
                "percent": _percent(a["percent"], f"arm {a['name']} percent", allow_zero=False)} for a in arms]
    plan = _plan(deployment=Deployment.objects.filter(name=name).first(), targets={}, canary_percent=UNCHANGED,
                 new_arms=cleaned)
    refusals = _live_traffic_refusals(plan=plan, system=system, rollback=False)
    if refusals:
        _refuse(refusals, actor=actor, system=system, name=name, reason=reason)


def _conflict(refusals: list[dict]) -> Conflict:
    parts = [f"{r['role']}: {r['missing']}" for r in refusals]
    start = refusals[0]["start"]
    where = start.get("open_promotion", {}).get("page") or start["page"]
    return Conflict(
        "refused: a version reaches viewers only through an approved promotion (release gate passed, approved by "
        f"a reviewer who is not the requester). {'; '.join(parts)}. Start or follow it at {where} "
        f"(API: {start['api']}).",
        detail={"refused": refusals},
    )


def _refuse(refusals: list[dict], *, actor: Any, system: str | None, name: str, reason: str) -> None:
    """Log the refused attempt (who, what, why it was refused) and raise the 409."""
    activity_log_record(
        actor=actor if getattr(actor, "is_authenticated", False) else None, system=system, action="deployment.refused",
        target=("recommender.deployment", name, f"deployment {name}"),
        data={"reason": reason, "refused": [{k: r[k] for k in ("role", "version", "label", "missing")} for r in refusals]},
    )
    raise _conflict(refusals)


def _comparable(description: dict) -> dict:
    return {k: v for k, v in description.items() if k not in ("revision", "updated_at", "updated_by", "reason")}


def _clean_arms(arms: Any) -> list[dict]:
    if not isinstance(arms, list | tuple):
        raise ValidationError("arms must be a list of {name, version, percent}")
    cleaned, names = [], set()
    for i, arm in enumerate(arms):
        if not isinstance(arm, dict):
            raise ValidationError(f"arms[{i}] must be an object with name, version and percent")
        name = str(arm.get("name", "")).strip()
        if not name or len(name) > 64 or not all(c.isalnum() or c in "-_" for c in name):
            raise ValidationError(f"arms[{i}].name must be 1–64 letters, digits, '-' or '_'")
        if name in names:
            raise ValidationError(f"arm name '{name}' is used twice")
        names.add(name)
        version = _version(arm.get("version"), f"arms[{i}]")
        if version is None:
            raise ValidationError(f"arms[{i}] needs a model version")
        if version.status in (ModelVersion.Status.REJECTED, ModelVersion.Status.ARCHIVED):
            raise Conflict(f"{version} is {version.status} and cannot serve an experiment arm")
        cleaned.append({"name": name, "version": version.pk, "version_obj": version,
                        "percent": _percent(arm.get("percent"), f"arms[{i}].percent", allow_zero=False),
                        "experiment": str(arm.get("experiment", ""))[:100]})
    return cleaned


def deployment_rollback(*, actor: Any, reason: str, name: str = "default", version: Any = None,
                        system: str | None = None) -> Deployment:
    """The emergency action an operator may take alone: production back to ``version`` (default: the
    one that served before the current one), which must have been in production before. Logged as
    ``deployment.emergency_rollback``; anything else that reaches viewers needs a promotion."""
    require(actor, WORK, system=system, target=("recommender.deployment", name, f"deployment {name}"))
    if not (reason or "").strip():
        raise ValidationError("a reason is required to roll production back")
    current = ModelAlias.objects.filter(name="production").values_list("version_id", flat=True).first()
    if version is None:
        previous = None
        from portal.selectors import activity_log_list

        for entry in activity_log_list(filters={"action": "model_alias.moved"}):
            data = entry.data or {}
            if data.get("alias") != "production":
                continue
            if (data.get("after") or {}).get("version_id") == current:
                previous = (data.get("before") or {}).get("version_id")
                if previous:
                    break
        if not previous:
            raise Conflict("there is no earlier production version to roll back to")
        version = ModelVersion.objects.filter(pk=previous).first()
        if version is None:
            raise Conflict(f"the earlier production version #{previous} no longer exists")
    else:
        version = _version(version, "rollback")
    if version.pk == current:
        raise Conflict(f"{version} is already in production")
    return _deployment_change(
        actor=actor, reason=f"rollback: {reason}", name=name, production=version, canary=UNCHANGED, shadow=UNCHANGED,
        canary_percent=UNCHANGED, shadow_enabled=UNCHANGED, salt=UNCHANGED, arms=UNCHANGED, system=system,
        rollback=True,
    )
