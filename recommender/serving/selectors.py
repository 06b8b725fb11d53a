"""Reads of the serving side: deployments and their history, the live state of the web workers,
the prediction log, the provenance of one answer (request → version → run → snapshot → code), and
the movie titles an explained answer names."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from portal.errors import ValidationError
from recommender.ingest.selectors import filter_time
from recommender.models import Deployment, DeploymentChange, ModelAlias, ModelVersion, Movie, PredictionLog
from recommender.serving import bucketing

POPULAR_REASONS = PredictionLog.POPULAR_FALLBACK_REASONS


def _version_ref(version: ModelVersion | None) -> dict | None:
    if version is None:
        return None
    return {"id": version.pk, "label": f"{version.registered_model.name} v{version.version}",
            "algorithm": version.algorithm, "status": version.status}


def deployment_list() -> QuerySet[Deployment]:
    return Deployment.objects.prefetch_related("arms__version__registered_model").order_by("name")


def deployment_get(*, name: str = "default") -> Deployment | None:
    return deployment_list().filter(name=name).first()


def deployment_describe(*, deployment: Deployment | None) -> dict:
    """The deployment as one dictionary: the version of each role (the registry's aliases), the canary
    share, the arms and the resulting traffic split. ``deployment=None`` describes the defaults."""
    aliases = {a.name: a.version for a in ModelAlias.objects.select_related("version__registered_model")}
    arms = []
    if deployment is not None and deployment.pk:
        for arm in deployment.arms.select_related("version__registered_model").order_by("position", "name"):
            arms.append({"name": arm.name, "version": arm.version_id, "version_label": _version_ref(arm.version)["label"],
                         "percent": str(arm.percent), "experiment": arm.experiment})
    canary_percent = deployment.canary_percent if deployment is not None else 0
    try:
        layout = bucketing.build_layout(salt="", canary_percent=canary_percent,
                                        arms=[(a["name"], a["percent"]) for a in arms])
        split = {"production": round(layout.share("production") * 100, 2)}
        for r in layout.ranges:
            split[r.route] = round((r.end - r.start) / 100, 2)
    except ValueError:
        split = {}
    return {
        "name": deployment.name if deployment is not None else "default",
        "revision": deployment.revision if deployment is not None else 0,
        "production": _version_ref(aliases.get("production")),
        "canary": _version_ref(aliases.get("canary")),
        "canary_percent": str(canary_percent),
        "shadow": _version_ref(aliases.get("shadow")),
        "shadow_enabled": deployment.shadow_enabled if deployment is not None else True,
        "salt": deployment.salt if deployment is not None else "",
        "arms": arms,
        "traffic_split": split,
        "updated_at": deployment.updated_at.isoformat() if deployment is not None and deployment.updated_at else None,
        "updated_by": deployment.updated_by_label if deployment is not None else "",
        "reason": deployment.reason if deployment is not None else "",
    }


def deployment_change_list(*, deployment: Deployment) -> QuerySet[DeploymentChange]:
    return DeploymentChange.objects.filter(deployment=deployment).select_related("actor").order_by("-revision")


def serving_worker_status_list(*, state_dir) -> list[dict]:
    """The status files the web workers of this machine write every 2 s; those of dead processes
    (or older than a minute) are left out."""
    folder = state_dir / "workers"
    out = []
    if not folder.is_dir():
        return out
    host = socket.gethostname()
    for path in sorted(folder.glob("*.json")):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if status.get("host") == host:
            try:
                os.kill(int(status["pid"]), 0)
            except ProcessLookupError:
                continue
            except (PermissionError, KeyError, ValueError):
                pass
        age = time.time() - float(status.get("written_at", 0))
        if age > 60:
            continue
        status["age_seconds"] = round(age, 1)
        out.append(status)
    return out


def prediction_log_list(*, filters: dict | None = None) -> QuerySet[PredictionLog]:
    """Prediction records newest first; filters: viewer, since, until, status, endpoint, arm,
    model_version, fallback ("yes"/"no")."""
    filters = filters or {}
    qs = PredictionLog.objects.order_by("-created_at")
    if filters.get("viewer") not in (None, ""):
        try:
            qs = qs.filter(viewer_id=int(filters["viewer"]))
        except (TypeError, ValueError):
            raise ValidationError(f"viewer must be an integer, got {filters['viewer']!r}")
    since = filter_time(filters.get("since"), "since")
    until = filter_time(filters.get("until"), "until")
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lte=until)
    for key in ("status", "endpoint", "arm", "model_version"):
        if filters.get(key) not in (None, ""):
            qs = qs.filter(**{key if key != "model_version" else "model_version_id": filters[key]})
    if filters.get("fallback") == "yes":
        qs = qs.filter(fallback_reason__in=POPULAR_REASONS)
    elif filters.get("fallback") == "no":
        qs = qs.exclude(fallback_reason__in=POPULAR_REASONS)
    return qs


def movie_titles(*, movie_ids: set[str]) -> dict[str, str]:
    """Titles of these movies (those without one left out); empty when the database cannot answer,
    so an answer is explained with ids rather than not at all."""
    try:
        return dict(Movie.objects.filter(id__in=movie_ids).exclude(title="").values_list("id", "title"))
    except DatabaseError:
        return {}


def prediction_log_get(*, request_id) -> PredictionLog | None:
    try:
        key = uuid.UUID(str(request_id))
    except (TypeError, ValueError):
        raise ValidationError(f"request id must be a UUID (32 hex digits), got {str(request_id)[:60]!r}")
    return PredictionLog.objects.filter(request_id=key).first()


def prediction_provenance(*, record: PredictionLog) -> dict:
    """Everything behind one answer: the record, the deployment revision, and for the version that
    answered its training run (code and library versions) and dataset snapshot (window, hash, rows)."""
    from recommender.registry.selectors import model_version_get, model_version_lineage

    served_by_fallback = record.is_fallback
    answer = {
        "request_id": record.request_id.hex, "created_at": record.created_at, "endpoint": record.endpoint,
        "client": record.client, "viewer_id": record.viewer_id, "status": record.status, "items": record.items,
        "scores": record.scores, "latency_ms": record.latency_ms, "arm": record.arm,
        "model_label": record.model_label, "fallback_reason": record.fallback_reason, "error": record.error,
        "deployment_revision": record.deployment_revision,
        "served_by": record.served_by if record.status == 200 else "",
    }
    lineage = None
    if record.model_version_id:
        version = model_version_get(version_id=record.model_version_id)
        if version is not None:
            lineage = model_version_lineage(version=version)
    change = (DeploymentChange.objects.filter(revision=record.deployment_revision).select_related("deployment")
              .order_by("-created_at").first()) if record.deployment_revision else None
    deployment = None
    if change is not None:
        deployment = {"revision": change.revision, "changed_at": change.created_at, "changed_by": change.actor_label,
                      "reason": change.reason, "state": change.after}
    fallback = None
    if served_by_fallback:
        fallback = {
            "reason": record.fallback_reason or "no_model",
            "explanation": "The items came from the popular-and-recent fallback ranking (the serving snapshot), "
                           "not from a model's personal scores.",
        }
    return {"answer": answer, "model_version": lineage["version"] if lineage else None,
            "training_run": lineage["run"] if lineage else None, "snapshot": lineage["snapshot"] if lineage else None,
            "code": _code_versions(lineage["run"]["environment"]) if lineage else None,
            "deployment": deployment, "fallback": fallback}


def _code_versions(environment: dict) -> dict:
    """The run's environment as captured by the training side: code (git commit or package version),
    Python and the library versions."""
    environment = environment or {}
    return {"code": environment.get("code"), "python": environment.get("python"),
            "platform": environment.get("platform"), "libraries": environment.get("libraries") or {}}


def prediction_log_summary(*, since: datetime | None = None) -> dict:
    """Counts over a window (default: the last hour) for the dashboard."""
    since = since or timezone.now() - timedelta(hours=1)
    qs = PredictionLog.objects.filter(created_at__gte=since)
    figures = qs.aggregate(
        total=Count("request_id"),
        fallback=Count("request_id", filter=Q(fallback_reason__in=POPULAR_REASONS)),
        errors=Count("request_id", filter=Q(status__gte=400)),
    )
    figures["fallback_rate"] = round(figures["fallback"] / figures["total"], 4) if figures["total"] else None
    return figures


# --- one door to live traffic: which versions may serve viewers ---------------------------------------

# Who may clear a version for viewers is the business of the app above serving that owns promotions
# (releases: gate → four-eyes review); it registers its policy at start-up. With none registered
# nothing is cleared: serving fails closed.
BOOTSTRAP_LABEL = "system:bootstrap"


@dataclass(frozen=True)
class ClearancePolicy:
    clearance: Callable[[ModelVersion], dict]  # {"cleared", "basis", "promotion", "missing"}
    start_links: Callable[[ModelVersion], dict]  # where to start or follow the promotion that would clear it


_clearance_policy: ClearancePolicy | None = None


def clearance_policy_register(policy: ClearancePolicy | None) -> None:
    """Install the policy that decides which versions may serve viewers (None removes it)."""
    global _clearance_policy
    _clearance_policy = policy


def promotion_start_links(*, version: ModelVersion) -> dict:
    """Where to start (or follow) the promotion that would let ``version`` serve viewers."""
    return _clearance_policy.start_links(version) if _clearance_policy is not None else {}


def live_traffic_clearance(*, version: ModelVersion) -> dict:
    """May ``version`` serve viewers? As the registered policy says; returns ``{"cleared", "basis",
    "promotion", "missing"}`` (``missing`` says in words what is not there yet). The bootstrap exception
    is the caller's to apply (see ``version_bootstrapped``)."""
    if _clearance_policy is None:
        return {"cleared": False, "basis": None, "promotion": None,
                "missing": "no release process is installed to clear versions for live traffic"}
    return _clearance_policy.clearance(version)


def _production_moves(version: ModelVersion):
    from portal.models import ActivityLogEntry

    return ActivityLogEntry.objects.filter(action="model_alias.moved", data__alias="production",
                                           data__after__version_id=version.pk)


def version_was_in_production(*, version: ModelVersion) -> bool:
    """True when the production alias has pointed at ``version`` (from the hash-chained activity log)."""
    return _production_moves(version).exists()


def version_bootstrapped(*, version: ModelVersion) -> bool:
    """True when ``version`` went into production by the bootstrap step (nothing was in production)."""
    return _production_moves(version).filter(actor_label=BOOTSTRAP_LABEL, data__before__version_id=None).exists()


def deployment_unreviewed(*, deployment: Deployment | None = None) -> list[dict]:
    """The versions serving viewers without an approved promotion (production, a canary above 0%,
    experiment arms), bootstrap excepted. They keep serving; the portal, ``/readyz`` and the
    security audit say so."""
    deployment = deployment if deployment is not None else deployment_get()
    aliases = {a.name: a.version for a in ModelAlias.objects.select_related("version__registered_model")}
    live: list[tuple[str, ModelVersion]] = []
    if aliases.get("production") is not None:
        live.append(("production", aliases["production"]))
    if aliases.get("canary") is not None and deployment is not None and deployment.canary_percent > 0:
        live.append(("canary", aliases["canary"]))
    if deployment is not None and deployment.pk:
        live += [(f"arm:{arm.name}", arm.version)
                 for arm in deployment.arms.select_related("version__registered_model")]
    found = []
    for role, version in live:
        if role == "production" and version_bootstrapped(version=version):
            continue
        clearance = live_traffic_clearance(version=version)
        if not clearance["cleared"]:
            found.append({"role": role, "version": version.pk, "label": str(version), "missing": clearance["missing"]})
    return found


def deployment_review_state() -> dict:
    """For ``/readyz`` detail: is everything that serves viewers reviewed? (Serving goes on either way.)"""
    unreviewed = deployment_unreviewed()
    return {"reviewed": not unreviewed, "unreviewed": unreviewed}
