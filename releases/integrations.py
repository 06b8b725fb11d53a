"""The releases app's one doorway to the other areas' services and selectors.

Training (the registry's aliases and version status), serving (the deployment's traffic split and
the prediction log), monitoring (online quality, guardrail telemetry, notifications) and audits
(fairness and security runs) are called only from here, so the release logic reads as a state
machine and each contract with another area is written down once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Count, Min

from audits.selectors import audit_release_gate
from audits.services import audit_run_create, audit_run_execute
from monitoring.conf import monitoring_setting
from monitoring.selectors import notification_channel_list
from monitoring.services.notifications import notification_send
from monitoring.services.quality import online_quality
from portal import queue
from portal.selectors import activity_log_list
from recommender.errors import ArtifactIntegrityError
from recommender.models import ModelVersion
from recommender.registry.artifacts import artifact_abspath, load_serving_model
from recommender.registry.selectors import model_alias_version
from recommender.registry.services import model_version_set_status
from recommender.serving.selectors import deployment_describe, deployment_get, prediction_log_list
from recommender.serving.services import deployment_rollback, deployment_update, live_traffic_arms_check
from recommender.training.comparison import compare_on_set, evaluation_set
from recommender.training.comparison import version_evaluation_data as rebuild
from releases.conf import release_setting

# --- Celery -------------------------------------------------------------------------------------------


def enqueue(task_name: str, *args: Any, **kwargs: Any) -> str | None:
    """Send a task by name (the tasks module imports services, not the other way round). With the
    broker down it logs and returns None: the repair pass re-queues what is still pending."""
    return queue.task_send(task_name, args=args, kwargs=kwargs, what=f"{args}")


# --- training: the registry -------------------------------------------------------------------------------


def production_version() -> ModelVersion | None:
    return model_alias_version(alias="production")


def alias_version(alias: str) -> ModelVersion | None:
    return model_alias_version(alias=alias)


def previous_production_version() -> ModelVersion | None:
    """The version production pointed at before its current one (from the alias-move history)."""
    current = production_version()
    if current is None:
        return None
    for entry in activity_log_list(filters={"action": "model_alias.moved"})[:1000]:
        data = entry.data or {}
        if data.get("alias") != "production":
            continue
        after = (data.get("after") or {}).get("version_id")
        before = (data.get("before") or {}).get("version_id")
        if after == current.pk and before and before != current.pk:
            return ModelVersion.objects.filter(pk=before).first()
    return None


def version_approve(*, version: ModelVersion, actor: Any | None, reason: str, system: str | None = None) -> None:
    """The version's status follows its approved promotion (the registry logs it). Serving itself
    admits a version to viewers by its approved promotion, not by this status."""
    if version.status != ModelVersion.Status.APPROVED:
        model_version_set_status(version=version, status=ModelVersion.Status.APPROVED, actor=actor,
                                 reason=reason, system=system)



def version_evaluation_data(*, version: ModelVersion) -> dict:
    """What a version was fitted and held out on, rebuilt from its training run (training's
    ``comparison.version_evaluation_data``; ``LookupError`` when it cannot be rebuilt)."""
    return rebuild(version=version)


def offline_evaluation_set(*, version: ModelVersion, baseline: ModelVersion, max_viewers: int, seed: int) -> dict:
    """The one evaluation set candidate and production are both scored on (training's
    ``comparison.evaluation_set``: the candidate's held-out rows neither was fitted on, viewers both
    know, a seeded sample); ``LookupError`` (``NoCommonSet`` among them) when there is none."""
    return evaluation_set(candidate=version, production=baseline, max_viewers=max_viewers, seed=seed,
                          limit_name="GATE_MAX_VIEWERS")


def offline_compare(*, common: dict, metrics: list[str], resamples: int, seed: int, confidence: float) -> dict:
    """Both models of ``common`` scored per viewer, and candidate − production per metric with a paired
    bootstrap interval over viewers (training's ``comparison.compare_on_set``)."""
    return compare_on_set(common=common, metrics=metrics, resamples=resamples, seed=seed, confidence=confidence)

# --- serving: the deployment --------------------------------------------------------------------------------


def deployment_state() -> dict:
    """What the deployment serves now: production/canary/shadow versions, canary share, arms."""
    d = deployment_describe(deployment=deployment_get())
    role = lambda name: (d.get(name) or {}).get("id")  # noqa: E731
    return {
        "production_version": role("production"),
        "canary_version": role("canary"),
        "canary_percent": float(d.get("canary_percent") or 0),
        "shadow_version": role("shadow"),
        "arms": d.get("arms") or [],
        "salt": d.get("salt"),
        "revision": d.get("revision"),
    }


def deployment_set_canary(*, version: ModelVersion | None, percent: int, actor: Any | None, system: str | None,
                          reason: str) -> None:
    """Canary → ``version`` at ``percent`` of viewers (``None`` clears it), in the caller's transaction."""
    if version is None:
        deployment_update(canary=None, canary_percent=0, actor=actor, system=system, reason=reason)
    else:
        deployment_update(canary=version, canary_percent=percent, actor=actor, system=system, reason=reason)


def deployment_promote(*, version: ModelVersion, actor: Any | None, system: str | None, reason: str) -> None:
    """``version`` becomes production for everyone; the canary is cleared (one deployment revision)."""
    with transaction.atomic():
        version_approve(version=version, actor=actor, reason=reason, system=system)
        deployment_update(production=version, canary=None, canary_percent=0, actor=actor, system=system,
                          reason=reason)


def deployment_rollback_production(*, version: ModelVersion, actor: Any, reason: str) -> None:
    """The emergency rollback: production back to ``version``, which was in production before
    (serving checks that and logs it as ``deployment.emergency_rollback``); the canary is cleared."""
    with transaction.atomic():
        deployment_rollback(actor=actor, reason=reason, version=version)
        deployment_update(canary=None, canary_percent=0, actor=actor, reason=reason)


def live_traffic_check(*, arms: list[tuple[str, ModelVersion, int]], actor: Any | None, system: str | None,
                       reason: str) -> None:
    """Serving's live-traffic rule for experiment arms, asked before a transaction opens so that
    a refusal is logged (``deployment.refused``) and nothing changes."""
    live_traffic_arms_check(arms=[{"name": n, "version": v, "percent": p} for n, v, p in arms], actor=actor,
                            system=system, reason=reason)


def deployment_set_arms(*, arms: list[tuple[str, ModelVersion, int]], experiment: str, actor: Any | None,
                        system: str | None, reason: str, salt: str | None = None) -> str:
    """Replace the deployment's experiment arms (``[]`` removes them); returns the bucketing salt.

    Starting arms sets the experiment's own salt, so no viewer carries the arm of an earlier
    experiment into this one (experiments and canaries never run together, so nothing else is
    reshuffled). The salt is derived from the experiment, so its bucketing can be reproduced."""
    changes: dict[str, Any] = {
        "arms": [{"name": name, "version": version, "percent": percent, "experiment": experiment}
                 for name, version, percent in arms],
    }
    if arms and salt:
        changes["salt"] = salt
    deployment = deployment_update(actor=actor, system=system, reason=reason, **changes)
    return deployment.salt


def deployment_set_shadow(*, version: ModelVersion | None, actor: Any | None, system: str | None, reason: str) -> None:
    """The shadow role → ``version`` (mirroring on), or cleared."""
    if version is None:
        deployment_update(shadow=None, actor=actor, system=system, reason=reason)
    else:
        deployment_update(shadow=version, shadow_enabled=True, actor=actor, system=system, reason=reason)


# --- monitoring: online quality and guardrail telemetry --------------------------------------------------


def online_quality_by_route(*, routes: list[str], start: datetime, end: datetime,
                            now: datetime | None = None, window_minutes: int | None = None) -> dict[str, dict]:
    """Successes and trials per serving route (``production``, ``canary``, ``arm:<name>``) of the
    lists served in ``[start, end)`` whose success window has closed — monitoring's one definition,
    with its window unless ``window_minutes`` is given — with ``moments``: the route's lists summed
    per viewer (the unit the routes are assigned by)."""
    if start >= end:
        return {}
    # source "auto" reads the prediction log whenever it has rows in the window (routes live only
    # there); with none it looks at the platform's lines, which carry no route, so the answer is
    # "no data". ("server" fails on a window with no rows at all in monitoring as of this writing.)
    groups = online_quality(since=start, until=end, group_by=("arm",), arms=routes, now=now or end, source="auto",
                            unit_moments=True, window_minutes=window_minutes)
    return {g.key["arm"]: {"successes": g.successes, "trials": g.trials, "moments": g.unit_moments} for g in groups}


def quality_window_minutes() -> int:
    """Monitoring's success window: a list counts once this many minutes have passed."""
    return int(monitoring_setting("ONLINE_QUALITY_WINDOW_MINUTES"))


def lists_served(*, start: datetime, end: datetime, routes: list[str] | None = None) -> dict[str, int]:
    """Lists answered (status 200) in ``[start, end)`` per route, from the prediction log, whether or
    not their success window has closed; ``"*"`` is the total over every route."""

    qs = prediction_log_list().filter(created_at__gte=start, created_at__lt=end, status=200)
    if routes is not None:
        qs = qs.filter(arm__in=routes)
    counts = {r["arm"]: r["n"] for r in qs.order_by().values("arm").annotate(n=Count("request_id"))}
    return {**counts, "*": sum(counts.values())}


def traffic_minutes(*, start: datetime, end: datetime) -> float:
    """Minutes of ``[start, end)`` the prediction log covers: from its first row in the range (a
    server that started a minute ago has served for a minute, not for the whole range)."""

    first = prediction_log_list().filter(created_at__gte=start, created_at__lt=end).aggregate(
        first=Min("created_at"))["first"]
    return max(0.0, (end - (first or end)).total_seconds() / 60)


def viewers_by_route(*, routes: list[str], start: datetime, end: datetime) -> dict[str, int]:
    """Distinct viewers served per route: the units of randomisation, for the SRM check."""

    rows = (prediction_log_list().filter(created_at__gte=start, created_at__lt=end, arm__in=routes)
            .order_by().values("arm").annotate(viewers=Count("viewer_id", distinct=True)))
    return {r["arm"]: r["viewers"] for r in rows}


def guardrail_telemetry(*, route: str, start: datetime, end: datetime) -> dict:
    """Requests, error rate, p99 latency and fallback rate of one route over a window."""
    rows = list(prediction_log_list().filter(created_at__gte=start, created_at__lt=end, arm=route)
                .values_list("status", "latency_ms", "fallback_reason"))
    if not rows:
        return {"requests": 0, "error_rate": None, "p99_ms": None, "fallback_rate": None}
    status = np.array([r[0] for r in rows])
    latency = np.array([r[1] for r in rows], dtype=float)
    fallback = np.array([bool(r[2]) for r in rows])
    return {"requests": len(rows), "error_rate": float((status != 200).mean()),
            "p99_ms": float(np.percentile(latency, 99)), "fallback_rate": float(fallback.mean())}


# --- monitoring: notifications ------------------------------------------------------------------------------


def notify(*, event: str, subject: str, body: str, payload: dict, emails: list[str]) -> list[int]:
    """E-mail and HMAC-signed webhooks through monitoring's ``notification_send`` (queued, retried,
    recorded). Recipients: the given addresses (the requester), ``RELEASES['NOTIFY_EMAILS']`` and
    ``NOTIFY_WEBHOOKS``, and monitoring's enabled notification channels, each reached as its kind
    says (monitoring's channel registry)."""
    sent = notification_send(
        event=f"release.{event}"[:32], subject=subject, body=body, payload=payload,
        recipients={"email": [*emails, *release_setting("NOTIFY_EMAILS")],
                    "webhook": list(release_setting("NOTIFY_WEBHOOKS"))},
        channels=[c for c in notification_channel_list() if c.enabled],
    )
    return [n.pk for n in sent]


# --- audits: fairness and security -------------------------------------------------------------------------


def audit_verdicts(*, version: ModelVersion) -> dict:
    """The audits app's own reading of a version's latest fairness and security runs (passed, or
    failing findings waived/resolved; the blocking findings otherwise)."""
    return audit_release_gate(model_version=version)


def audit_run_now(*, kind: str, version: ModelVersion, system: str) -> dict:
    """Run a fairness or security audit of ``version`` now, in this process (trigger: release gate)."""
    run = audit_run_create(kind=kind, actor=None, trigger="release_gate", model_version=version, enqueue=False,
                           system=system)
    run = audit_run_execute(run_id=run.pk, system=system)
    return {"id": run.pk, "status": run.status, "passed": run.passed, "error": (run.error or "")[:500]}


def artifact_verify(*, version: ModelVersion) -> tuple[bool, dict]:
    """Re-hash the manifest and every array file against the sha256 recorded at registration."""
    evidence: dict[str, Any] = {"artifact_path": version.artifact_path, "expected_sha256": version.artifact_sha256}
    try:
        model = load_serving_model(directory=artifact_abspath(version.artifact_path),
                                   expected_sha256=version.artifact_sha256)
    except (ArtifactIntegrityError, OSError, ValueError, KeyError) as exc:
        detail = getattr(exc, "detail", None)
        return False, {**evidence, "error": str(exc), **({"detail": detail} if detail else {})}
    evidence["files"] = {name: entry["sha256"] for name, entry in sorted(model.manifest["arrays"].items())}
    return True, evidence
