"""Glue between a run and its checks: read the data (``audits.sources``), call the checks, return outcomes.

Nothing here writes; ``audits.services.runs.audit_run_execute`` persists what ``perform`` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from audits import sources
from audits.checks import (
    abuse,
    api_surface,
    artifacts,
    fairness_model,
    fairness_system,
    live_traffic,
    security_config,
)
from audits.checks.base import CheckOutcome
from audits.errors import AuditCheckError

SECURITY_CHECKS = ("deploy_config", "api_surface", "rating_poisoning", "rating_velocity", "scraping",
                   "artifact_integrity", "login_abuse", "deployment_review")


def live_version_for(kind: str) -> Any | None:
    """The version a live run records as its subject: production, when fairness audits it at model level."""
    return sources.production_version() if kind == "fairness" else None


def _window(run: Any) -> tuple[datetime, datetime]:
    return run.window_start, run.window_end


# --- fairness -----------------------------------------------------------------------------------

def _model_fairness(version: Any, config: dict[str, Any]) -> CheckOutcome:
    model = sources.serving_model(version=version)
    test, attributes, info = sources.test_part(version=version)
    viewers = test["viewer"].unique()
    limit = int(config["FAIRNESS_MAX_VIEWERS"])
    if len(viewers) > limit:
        keep = set(np.random.default_rng(0).choice(viewers, size=limit, replace=False).tolist())
        test = test[test["viewer"].isin(keep)]
        info["sampled_viewers"] = limit
    k = int(config["FAIRNESS_TOP_K"])

    def recommend(viewer: int) -> list[str]:
        return [item for item, _score in (model.recommend(viewer, k) or [])]

    def predict(viewer_ids: np.ndarray, movie_ids: np.ndarray) -> np.ndarray:
        values = [model.predict(int(v), str(m)) for v, m in zip(viewer_ids, movie_ids, strict=True)]
        return np.array([np.nan if v is None else v for v in values], dtype=float)

    outcome = fairness_model.model_fairness(
        test=test, attributes=attributes, recommend=recommend, predict=predict, config=config,
        subject=f"version={version.pk}", target_label=str(version),
    )
    outcome.results["test_part"] = info
    outcome.results["model_version"] = {"id": version.pk, "name": str(version), "algorithm": version.algorithm,
                                        "artifact_sha256": version.artifact_sha256}
    for draft in outcome.findings:
        draft.model_version_id = version.pk
    return outcome


def _online_quality(window: tuple[datetime, datetime]) -> tuple[pd.DataFrame | None, str]:
    """Per-viewer trials/successes from the monitoring app's online-quality definition."""
    quality = sources.online_quality_by_viewer(start=window[0], end=window[1])
    if quality is None:
        return None, "unavailable: the monitoring app's online_quality is not installed"
    return quality, ("monitoring.services.quality.online_quality per viewer, from the prediction log (or the "
                     "platform's lines when the log is empty): a served list succeeds when the viewer starts "
                     "watching one of its movies within the window; lists whose window has not closed are left out")


def _system_fairness(run: Any, config: dict[str, Any]) -> CheckOutcome:
    window = _window(run)
    notes: dict[str, str] = {}
    server = sources.prediction_requests(
        start=window[0], end=window[1],
        fields=("created_at", "viewer_id", "items", "latency_ms", "status", "fallback_reason"),
    )
    if server is None:
        notes["server"] = "unavailable: the serving prediction log is not installed"
    else:
        server = server.rename(columns={"viewer_id": "viewer"})
        server = server[server["viewer"].notna()].copy()
        server["viewer"] = server["viewer"].astype("int64")
        server["fallback"] = server["fallback_reason"].fillna("").astype(str) != ""
        notes["server"] = f"serving prediction log: {len(server)} answers"
    client = sources.client_requests(start=window[0], end=window[1])
    notes["client"] = f"the platform's recommendation lines: {len(client)} requests"
    quality, notes["online_quality"] = _online_quality(window)
    if (server is None or server.empty) and client.empty:
        return fairness_system.system_fairness_outcome(
            service=None, service_findings=[], exposure_results=None, exposure_findings=[],
            note=f"no recommendation requests between {window[0]:%Y-%m-%d %H:%M} and {window[1]:%Y-%m-%d %H:%M}")
    viewer_ids = set(client["viewer"].unique().tolist())
    if server is not None:
        viewer_ids |= set(server["viewer"].unique().tolist())
    attributes = sources.viewer_attributes(viewer_ids=sorted(viewer_ids))
    service, service_findings = fairness_system.group_service(
        server=server, client=client, quality=quality, attributes=attributes, config=config, window=window,
        notes=notes)
    # Exposure: what was recommended (the server's answers, else the platform's lines) vs what was watched.
    lists = server["items"] if server is not None and not server.empty else client["items"]
    recommended = pd.Series([m for items in lists for m in (items or [])], dtype=object)
    watched = sources.watched_movies(start=window[0], end=window[1])
    movies = sources.movie_table(movie_ids=sorted(set(recommended) | set(watched)))
    cuts = fairness_system.popularity_cuts(sources.catalog_popularity(), tuple(config["POPULARITY_TIERS"]))
    exposure_results, exposure_findings = fairness_system.exposure(
        recommended=recommended, watched=watched, movies=movies, cuts=cuts, config=config, window=window)
    exposure_results["recommendations_from"] = "server" if server is not None and not server.empty else "client"
    return fairness_system.system_fairness_outcome(
        service=service, service_findings=service_findings, exposure_results=exposure_results,
        exposure_findings=exposure_findings)


def perform_fairness(run: Any, config: dict[str, Any]) -> list[CheckOutcome]:
    outcomes = []
    if run.model_version_id is not None:
        outcomes.append(_model_fairness(run.model_version, config))
    elif run.target == "model_version":
        raise AuditCheckError("the run names no model version to audit")
    else:
        outcomes.append(CheckOutcome(name="fairness.model", status="unavailable",
                                     summary="no version is in production: no model-level audit"))
    if run.target == "live":
        outcomes.append(_system_fairness(run, config))
    return outcomes


# --- security -----------------------------------------------------------------------------------

def _rating_checks(run: Any, config: dict[str, Any]) -> tuple[CheckOutcome, CheckOutcome]:
    window = _window(run)
    events = sources.rating_events(start=window[0], end=window[1])
    titles = sources.movie_titles(movie_ids=events["movie"].unique().tolist()) if not events.empty else {}
    history = sources.viewer_history(viewer_ids=events["viewer"].unique().tolist(), until=window[1]) \
        if not events.empty else pd.DataFrame(columns=["total_ratings", "first_seen"])
    poisoning = abuse.rating_poisoning(events=events, history=history, config=config, window=window,
                                       movie_titles=titles)
    flagged = {f.evidence["movie"] for f in poisoning.findings}
    accounts = {a for f in poisoning.findings for a in f.evidence["account_ids"]}
    velocity = abuse.rating_velocity(events=events, config=config, window=window, skip_movies=flagged,
                                     skip_accounts=accounts, movie_titles=titles)
    return poisoning, velocity


def _scraping(run: Any, config: dict[str, Any]) -> CheckOutcome:
    window = _window(run)
    requests = sources.prediction_requests(start=window[0], end=window[1],
                                           fields=("client", "viewer_id", "created_at"))
    if requests is None:
        return CheckOutcome(name="security.scraping", status="unavailable",
                            summary="the serving prediction log is not installed: no request records to check")
    requests = requests.rename(columns={"viewer_id": "viewer", "created_at": "time"})
    requests = requests[requests["viewer"].notna()]
    viewer_ids = requests["viewer"].astype("int64").unique().tolist()
    margin = timedelta(hours=float(config["SCRAPE_ACTIVITY_MARGIN_HOURS"]))
    return abuse.scraping(
        requests=requests, active_viewers=sources.active_viewers(start=window[0] - margin, end=window[1] + margin),
        known_viewers=sources.known_viewer_ids(viewer_ids=viewer_ids), config=config, window=window,
        source="serving prediction log (client = the caller's address, or the API user)",
    )


def _artifacts(run: Any, config: dict[str, Any]) -> CheckOutcome:
    refs, note = sources.artifact_refs(version=run.model_version if run.target == "model_version" else None)
    outcome = artifacts.artifact_integrity(refs, source_note=note)
    for draft in outcome.findings:  # a version's artifact finding belongs to that version (the gate reads it)
        if draft.subject.startswith("model_version="):
            draft.model_version_id = int(draft.subject.split("=", 1)[1])
    return outcome


def _login(run: Any, config: dict[str, Any]) -> CheckOutcome:
    window = _window(run)
    failures, source = sources.login_failures(start=window[0], end=window[1])
    return abuse.login_abuse(failures=failures, config=config, window=window, source=source)


def _deployment_review(run: Any, config: dict[str, Any]) -> CheckOutcome:
    return live_traffic.deployment_review(unreviewed=sources.deployment_unreviewed(), live=run.model_version_id is None)


def perform_security(run: Any, config: dict[str, Any]) -> list[CheckOutcome]:
    selected = list(config.get("SECURITY_CHECKS") or SECURITY_CHECKS)
    outcomes: list[CheckOutcome] = []
    if "deploy_config" in selected:
        outcomes.append(security_config.deploy_configuration())
    if "api_surface" in selected:
        outcomes.append(api_surface.api_surface(config))
    if "rating_poisoning" in selected or "rating_velocity" in selected:
        poisoning, velocity = _rating_checks(run, config)
        outcomes += [o for o, name in ((poisoning, "rating_poisoning"), (velocity, "rating_velocity"))
                     if name in selected]
    steps: dict[str, Callable[[Any, dict[str, Any]], CheckOutcome]] = {
        "scraping": _scraping, "artifact_integrity": _artifacts, "login_abuse": _login,
        "deployment_review": _deployment_review}
    for name, step in steps.items():
        if name in selected:
            outcomes.append(step(run, config))
    return outcomes


def perform(*, run: Any, config: dict[str, Any]) -> list[CheckOutcome]:
    """Every check of the run's kind, in order; raises on a crash (the run then fails)."""
    if "SECURITY_CHECKS" not in config:
        config = {**config, "SECURITY_CHECKS": list(SECURITY_CHECKS)}
    if run.kind == "fairness":
        return perform_fairness(run, config)
    if run.kind == "security":
        return perform_security(run, config)
    raise AuditCheckError(f"unknown audit kind '{run.kind}'")
