"""Writes of the serving side: changing a deployment (versions per role, canary share, experiment arms,
salt, shadow) and rolling production back. Every change bumps the deployment's revision, keeps a
``DeploymentChange`` with the state before and after, and is recorded in the activity log.

The version behind each role is the registry's alias (``production``, ``canary``, ``shadow``), moved
here through ``recommender.registry.services.model_alias_move`` so its rules apply (production takes
only an approved version) and its own log entry is written in the same transaction.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from portal.errors import Conflict, NotFound, ValidationError
from portal.services import activity_log_record
from recommender.models import Deployment, DeploymentChange, ExperimentArm, ModelAlias, ModelVersion
from recommender.serving import bucketing
from recommender.serving.selectors import deployment_describe

UNCHANGED: Any = object()
ROLES = ("production", "canary", "shadow")


def _actor_label(actor: Any, system: str | None) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return f"system:{system or 'usher'}"


def _percent(value: Any, what: str, *, allow_zero: bool = True) -> Decimal:
    try:
        percent = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise ValidationError(f"{what} must be a number between 0 and 100, got {value!r}")
    if percent < 0 or percent > 100 or (not allow_zero and percent == 0):
        low = "0" if allow_zero else "above 0"
        raise ValidationError(f"{what} must be between {low} and 100, got {value}")
    return percent


def _version(value: Any, role: str) -> ModelVersion | None:
    if value is None or isinstance(value, ModelVersion):
        return value
    try:
        return ModelVersion.objects.get(pk=int(value))
    except (ModelVersion.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"{role}: model version {value!r} does not exist")


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
    Atomic: on any refusal nothing changes. Returns the deployment (unchanged when nothing differs).
    """
    if not (reason or "").strip():
        raise ValidationError("a reason is required to change a deployment")
    with transaction.atomic():
        deployment = deployment_get_or_create(name=name)
        deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
        before = deployment_describe(deployment=deployment)

        targets = {role: _version(value, role) for role, value in
                   (("production", production), ("canary", canary), ("shadow", shadow)) if value is not UNCHANGED}
        new_percent = deployment.canary_percent if canary_percent is UNCHANGED else _percent(canary_percent, "canary_percent")
        canary_after = targets["canary"] if "canary" in targets else (before["canary"] or {}).get("id")
        if new_percent > 0 and not canary_after:
            raise ValidationError("a canary share above 0% needs a canary version")
        new_arms = None if arms is UNCHANGED else _clean_arms(arms)
        arm_shares = [(a["name"], a["percent"]) for a in (new_arms if new_arms is not None else before["arms"])]
        try:
            bucketing.build_layout(salt="check", canary_percent=new_percent, arms=arm_shares)
        except ValueError as exc:
            raise ValidationError(str(exc))
        if salt is not UNCHANGED:
            salt = str(salt).strip()
            if not salt or len(salt) > 64:
                raise ValidationError("salt must be 1 to 64 characters")

        for role, version in targets.items():
            from recommender.registry.services import model_alias_move

            model_alias_move(alias=role, version=version, actor=actor, reason=reason, system=system)
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
        activity_log_record(actor=actor, system=system, action="deployment.changed", target=deployment,
                            data={"revision": deployment.revision, "reason": reason,
                                  "before": _comparable(before), "after": _comparable(after)})
    return deployment


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


def deployment_rollback(*, actor: Any, reason: str, name: str = "default", system: str | None = None) -> Deployment:
    """Put back the production version that served before the current one (one action; ``release.operate``)."""
    from portal.permissions import require

    require(actor, "release.operate", system=system)
    current = ModelAlias.objects.filter(name="production").values_list("version_id", flat=True).first()
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
    return deployment_update(actor=actor, reason=f"rollback: {reason}", name=name, production=version, system=system)
