"""Writes on audit runs: create (and enqueue), execute, fail stuck runs.

A run is executed in three steps: mark it running (one transaction), compute every check without
writing anything, then write the results and all findings in one transaction. A crash anywhere
leaves the run ``failed`` with its error and no finding of it written.
"""

from __future__ import annotations

import logging
import traceback
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from audits import runners
from audits.checks.base import CheckOutcome, FindingDraft, jsonable
from audits.conf import DEFAULTS, audit_setting, settings_differences
from audits.errors import Conflict, NotFound, ValidationError
from audits.models import AuditFinding, AuditRun, Severity, severity_rank
from portal.permissions import require
from portal.queue import task_send
from portal.services import activity_log_record

log = logging.getLogger(__name__)

# Knobs a caller may override for one run (the rest come from settings.AUDITS).
OVERRIDABLE = {
    "fairness": {"FAIRNESS_BAND", "FAIRNESS_METRICS", "FAIRNESS_REFERENCE_GROUPS", "FAIRNESS_MIN_GROUP_VIEWERS",
                 "FAIRNESS_MIN_GROUP_ROWS", "FAIRNESS_ALPHA", "FAIRNESS_ATTRIBUTES", "FAIRNESS_MAX_VIEWERS",
                 "SYSTEM_BAND", "EXPOSURE_BAND", "EXPOSURE_FINDINGS"},
    "security": {"SECURITY_CHECKS"},
}
MAX_WINDOW_HOURS = 24 * 90


def effective_config(*, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every knob's value for a run: defaults, then ``settings.AUDITS``, then the run's overrides."""
    config = {name: audit_setting(name) for name in DEFAULTS}
    config.update(overrides or {})
    return config


def _validate_overrides(kind: str, overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - OVERRIDABLE[kind])
    if unknown:
        raise ValidationError(f"these settings cannot be overridden for a {kind} audit: {unknown}",
                              detail={"allowed": sorted(OVERRIDABLE[kind])})
    clean = dict(overrides)
    for key in ("FAIRNESS_BAND", "SYSTEM_BAND", "EXPOSURE_BAND"):
        if key in clean:
            band = clean[key]
            if (not isinstance(band, list | tuple) or len(band) != 2
                    or not all(isinstance(x, int | float) for x in band) or not 0 < band[0] < 1 < band[1]):
                raise ValidationError(f"{key} must be two numbers [low, high] with 0 < low < 1 < high; got {band!r}")
            clean[key] = [float(band[0]), float(band[1])]
    if "FAIRNESS_METRICS" in clean:
        from audits.checks.fairness_model import JUDGEABLE_METRICS

        metrics = clean["FAIRNESS_METRICS"]
        if not isinstance(metrics, list) or not metrics or set(metrics) - set(JUDGEABLE_METRICS):
            raise ValidationError(f"FAIRNESS_METRICS must be a non-empty list of {list(JUDGEABLE_METRICS)}; "
                                  f"got {metrics!r}")
    if "FAIRNESS_ATTRIBUTES" in clean:
        attrs = clean["FAIRNESS_ATTRIBUTES"]
        allowed = set(DEFAULTS["FAIRNESS_ATTRIBUTES"])
        if not isinstance(attrs, list) or not attrs or set(attrs) - allowed:
            raise ValidationError(f"FAIRNESS_ATTRIBUTES must be a non-empty list of {sorted(allowed)}; got {attrs!r}")
    if "FAIRNESS_REFERENCE_GROUPS" in clean:
        refs = clean["FAIRNESS_REFERENCE_GROUPS"]
        allowed = set(clean.get("FAIRNESS_ATTRIBUTES") or DEFAULTS["FAIRNESS_ATTRIBUTES"])
        if not isinstance(refs, dict) or set(refs) - allowed or not all(isinstance(v, str) for v in refs.values()):
            raise ValidationError("FAIRNESS_REFERENCE_GROUPS must map attributes "
                                  f"{sorted(allowed)} to group names; got {refs!r}")
    for key in ("FAIRNESS_MIN_GROUP_VIEWERS", "FAIRNESS_MIN_GROUP_ROWS", "FAIRNESS_MAX_VIEWERS"):
        if key in clean and (not isinstance(clean[key], int) or clean[key] < 1):
            raise ValidationError(f"{key} must be a positive integer; got {clean[key]!r}")
    if "FAIRNESS_ALPHA" in clean and clean["FAIRNESS_ALPHA"] is not None:
        alpha = clean["FAIRNESS_ALPHA"]
        if not isinstance(alpha, int | float) or not 0 < alpha < 1:
            raise ValidationError(f"FAIRNESS_ALPHA must be between 0 and 1, or null; got {alpha!r}")
    if "SECURITY_CHECKS" in clean:
        checks = clean["SECURITY_CHECKS"]
        if not isinstance(checks, list) or not checks or set(checks) - set(runners.SECURITY_CHECKS):
            raise ValidationError(f"SECURITY_CHECKS must be a non-empty list of {list(runners.SECURITY_CHECKS)}; "
                                  f"got {checks!r}")
    return clean


def audit_run_create(
    *,
    kind: str,
    actor: Any | None,
    trigger: str = AuditRun.Trigger.MANUAL,
    model_version: Any | None = None,
    window_hours: float | None = None,
    window_end: datetime | None = None,
    overrides: dict[str, Any] | None = None,
    enqueue: bool = True,
    system: str | None = None,
) -> AuditRun:
    """Record a queued audit run and (after commit) hand it to the worker.

    With ``model_version`` the run audits that version (model-level fairness; for security, the
    artifact checks are limited to it). Without, it audits the live deployment over the window
    ending at ``window_end`` (now by default); a live fairness run also audits the production
    version at model level when there is one.

    A run whose settings differ from the configured ones (overrides that change a threshold, a
    subset of the security checks) is *exploratory*: stored and shown, never read by the release
    gate, and only roles with ``audit.explore`` may start one. Any other run (whoever starts it)
    is gate evidence, for the artifact whose sha256 it records here.
    """
    require(actor, "audit.run", system=system or "audits")
    if kind not in AuditRun.Kind.values:
        raise ValidationError(f"unknown audit kind '{kind}'", detail={"allowed": AuditRun.Kind.values}, field="kind")
    if trigger not in AuditRun.Trigger.values:
        raise ValidationError(f"unknown trigger '{trigger}'", detail={"allowed": AuditRun.Trigger.values})
    try:
        clean = _validate_overrides(kind, overrides or {})
    except ValidationError as exc:  # every refusal there is about the overrides
        exc.field = exc.field or "overrides"
        raise
    config = effective_config(overrides=clean)
    differs = settings_differences(jsonable(config))
    default_hours = audit_setting("SYSTEM_WINDOW_HOURS" if kind == "fairness" else "SECURITY_WINDOW_HOURS")
    hours = float(window_hours if window_hours is not None else default_hours)
    if not 0 < hours <= MAX_WINDOW_HOURS:
        raise ValidationError(f"window_hours must be between 0 and {MAX_WINDOW_HOURS}; got {window_hours!r}",
                              field="window_hours")
    # A security run (and any live run) judges traffic in its window: a shorter or longer one than
    # configured is not the configured audit (a one-minute window would see no abuse at all).
    if hours != float(default_hours) and (kind == AuditRun.Kind.SECURITY or model_version is None):
        differs.append("window_hours")
    if differs:  # the run judges with other settings than the gate's: exploratory
        require(actor, "audit.explore", system=system or "audits")
    end = window_end or timezone.now()
    if timezone.is_naive(end):
        raise ValidationError("window_end must carry a time zone")
    start = end - timedelta(hours=hours)
    if model_version is not None:
        target = AuditRun.Target.MODEL_VERSION
        target_repr = f"model version {model_version}"
        version = model_version
    else:
        target = AuditRun.Target.LIVE
        version = runners.live_version_for(kind)
        target_repr = f"live deployment {start:%Y-%m-%d %H:%M}–{end:%Y-%m-%d %H:%M} UTC"
        if version is not None:
            target_repr += f" (production: {version})"
    with transaction.atomic():
        run = AuditRun.objects.create(
            kind=kind, target=target, model_version=version, target_repr=target_repr[:255],
            window_start=start, window_end=end, trigger=trigger,
            exploratory=bool(differs), artifact_sha256=(getattr(version, "artifact_sha256", "") or "")[:64],
            params={"overrides": clean, "config": jsonable(config), "window_hours": hours,
                    "differs_from_configured": differs},
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,
            requested_label=actor.get_username() if getattr(actor, "is_authenticated", False)
            else f"system:{system or 'usher'}",
        )
        activity_log_record(actor=actor, system=system, action="audit_run.queued", target=run,
                            data={"kind": kind, "target": target, "trigger": trigger, "model_version": run.model_version_id,
                                  "window": [start.isoformat(), end.isoformat()], "overrides": clean,
                                  "exploratory": run.exploratory, "artifact_sha256": run.artifact_sha256})
        if enqueue:
            transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id: int) -> None:
    """Send ``audits.execute_run`` by name (called after the creating transaction commits). With the
    broker down the run stays queued and ``audit_runs_fail_stuck`` ends it with a clear error."""
    task_id = task_send("audits.execute_run", args=[run_id], what=f"audit run #{run_id}")
    if task_id:
        AuditRun.objects.filter(pk=run_id, task_id="").update(task_id=task_id)


def _persist_findings(run: AuditRun, drafts: list[FindingDraft], now: datetime, system: str | None
                      ) -> tuple[list[AuditFinding], list[AuditFinding]]:
    """(new findings, findings seen again). Called inside the closing transaction."""
    new, again = [], []
    seen_fingerprints: set[str] = set()
    for draft in drafts:
        if draft.fingerprint in seen_fingerprints:  # a check reporting one problem twice
            continue
        seen_fingerprints.add(draft.fingerprint)
        if draft.severity not in Severity.values:
            raise ValidationError(f"check {draft.check} drafted a finding with unknown severity '{draft.severity}'")
        existing = (AuditFinding.objects.select_for_update()
                    .filter(fingerprint=draft.fingerprint, status__in=AuditFinding.ACTIVE_STATUSES)
                    .order_by("-id").first())
        evidence = jsonable(draft.evidence)
        if existing is not None:
            existing.times_seen += 1
            existing.last_seen_at = now
            if not run.exploratory:  # an exploratory run's numbers never replace the configured evidence
                existing.evidence = evidence
                existing.title = draft.title[:255]  # the title states the figures of the evidence it heads
                if severity_rank(draft.severity) > severity_rank(existing.severity):
                    existing.severity = draft.severity
            existing.save(update_fields=["times_seen", "last_seen_at", "evidence", "title", "severity"])
            existing.runs.add(run)
            again.append(existing)
            continue
        finding = AuditFinding.objects.create(
            run=run, kind=run.kind, check_name=draft.check, fingerprint=draft.fingerprint, severity=draft.severity,
            title=draft.title[:255], evidence=evidence, model_version_id=draft.model_version_id,
            first_seen_at=now, last_seen_at=now,
        )
        finding.runs.add(run)
        activity_log_record(actor=None, system=system or "audits", action="audit_finding.raised", target=finding,
                            data={"run": run.pk, "check": draft.check, "severity": draft.severity, "title": draft.title})
        new.append(finding)
    return new, again


def _report(run: AuditRun, outcomes: list[CheckOutcome], new: list[AuditFinding], again: list[AuditFinding]) -> str:
    lines = [f"{run.kind.title()} audit #{run.pk} of {run.target_repr}",
             f"Trigger: {run.get_trigger_display()}; requested by {run.requested_label}."]
    if run.exploratory:
        lines.append("Exploratory run (settings other than the configured ones: "
                     + ", ".join(run.params.get("differs_from_configured") or sorted(run.params.get("overrides") or {}))
                     + "): the release gate ignores it.")
    lines.append("")
    for outcome in outcomes:
        lines.append(f"- {outcome.name} [{outcome.status}]: {outcome.summary}")
    lines.append("")
    if not new and not again:
        lines.append("No findings.")
    for finding in [*new, *again]:
        marker = "new" if finding in new else f"seen {finding.times_seen}×, {finding.status}"
        lines.append(f"* [{finding.severity}] #{finding.pk} ({marker}) {finding.title}")
    return "\n".join(lines)


def audit_run_execute(*, run_id: int | None = None, run: AuditRun | None = None, system: str | None = None
                      ) -> AuditRun:
    """Execute a queued run, named by ``run_id`` or ``run`` (idempotent: a run not queued is returned untouched)."""
    if run_id is None:
        if run is None:
            raise ValidationError("audit_run_execute needs run_id or run")
        run_id = run.pk
    with transaction.atomic():
        run = AuditRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            raise NotFound(f"audit run #{run_id} does not exist")
        if run.status != AuditRun.Status.QUEUED:
            return run
        run.status = AuditRun.Status.RUNNING
        run.started_at = timezone.now()
        run.save(update_fields=["status", "started_at"])
        activity_log_record(actor=None, system=system or "audits", action="audit_run.started", target=run,
                            data={"kind": run.kind, "target": run.target_repr})
    try:
        config = dict(run.params.get("config") or effective_config())
        outcomes = runners.perform(run=run, config=config)
        drafts = [draft for outcome in outcomes for draft in outcome.findings]
        now = timezone.now()
        with transaction.atomic():
            locked = AuditRun.objects.select_for_update().get(pk=run.pk)
            new, again = _persist_findings(locked, drafts, now, system)
            from audits.services.findings import findings_resolve_not_found

            closed = findings_resolve_not_found(run=locked, outcomes=outcomes,
                                                seen={d.fingerprint for d in drafts}, system=system or "audits")
            threshold = severity_rank(str(config.get("PASS_BELOW_SEVERITY", "medium")))
            blocking = [f for f in [*new, *again]
                        if f.severity_rank >= threshold and f.status != AuditFinding.Status.WAIVED]
            locked.results = {"checks": [o.as_dict() for o in outcomes],
                              "findings": {"new": [f.pk for f in new], "seen_again": [f.pk for f in again],
                                           "no_longer_found": closed}}
            locked.report = _report(locked, outcomes, new, again)
            locked.passed = not blocking
            locked.status = AuditRun.Status.SUCCEEDED
            locked.finished_at = timezone.now()
            locked.save(update_fields=["results", "report", "passed", "status", "finished_at"])
            activity_log_record(
                actor=None, system=system or "audits", action="audit_run.succeeded", target=locked,
                data={"passed": locked.passed, "new_findings": [f.pk for f in new],
                      "seen_again": [f.pk for f in again],
                      "checks": {o.name: o.status for o in outcomes}},
            )
            auto = severity_rank(str(config.get("AUTO_SIGNOFF_SEVERITY", "medium")))
            if any(f.severity_rank >= auto for f in new):
                from audits.services.findings import audit_run_signoff_request

                audit_run_signoff_request(run=locked, actor=None, system=system or "audits",
                                          comment="new findings need a reviewer's sign-off")
        return locked
    except Exception as exc:  # noqa: BLE001 - any failure ends the run as failed, with its error
        log.exception("audit run #%s failed", run_id)
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        detail = "".join(traceback.format_exception(exc)[-6:])
        with transaction.atomic():
            failed = AuditRun.objects.select_for_update().get(pk=run_id)
            failed.status = AuditRun.Status.FAILED
            failed.error = f"{type(exc).__name__}: {message}\n\n{detail}"[:20000]
            failed.finished_at = timezone.now()
            failed.passed = None
            failed.save(update_fields=["status", "error", "finished_at", "passed"])
            activity_log_record(actor=None, system=system or "audits", action="audit_run.failed", target=failed,
                                data={"error": f"{type(exc).__name__}: {message}"[:1000]})
        return failed


def audit_runs_fail_stuck(*, now: datetime | None = None, system: str = "audits.fail_stuck_runs") -> list[int]:
    """Runs left ``running`` (or ``queued``) longer than ``STUCK_RUN_MINUTES`` — a worker died — end as failed."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=int(audit_setting("STUCK_RUN_MINUTES")))
    stuck = list(AuditRun.objects.filter(status__in=[AuditRun.Status.RUNNING, AuditRun.Status.QUEUED],
                                         created_at__lt=cutoff).values_list("pk", flat=True))
    failed = []
    for run_id in stuck:
        with transaction.atomic():
            run = AuditRun.objects.select_for_update().get(pk=run_id)
            if run.status not in (AuditRun.Status.RUNNING, AuditRun.Status.QUEUED):
                continue
            if (run.started_at or run.created_at) >= cutoff:
                continue
            before = run.status
            run.status = AuditRun.Status.FAILED
            run.error = (f"the run stayed {before} for more than {audit_setting('STUCK_RUN_MINUTES')} minutes "
                         "(its worker stopped); start a new run")
            run.finished_at = now
            run.save(update_fields=["status", "error", "finished_at"])
            activity_log_record(actor=None, system=system, action="audit_run.failed", target=run,
                                data={"before": before, "error": run.error})
            failed.append(run.pk)
    return failed


def fairness_audit_create(*, version: Any, actor: Any | None, trigger: str = AuditRun.Trigger.MANUAL,
                          system: str | None = None, enqueue: bool = False) -> AuditRun:
    """A queued model-level fairness audit of ``version`` (the release gate executes it itself)."""
    if version is None:
        raise ValidationError("a fairness audit of a version needs the version")
    return audit_run_create(kind=AuditRun.Kind.FAIRNESS, actor=actor, trigger=trigger, model_version=version,
                            enqueue=enqueue, system=system)


def security_audit_create(*, actor: Any | None, trigger: str = AuditRun.Trigger.MANUAL, system: str | None = None,
                          window_hours: float | None = None, enqueue: bool = False) -> AuditRun:
    """A queued security audit of the live deployment over the last ``window_hours``."""
    return audit_run_create(kind=AuditRun.Kind.SECURITY, actor=actor, trigger=trigger, window_hours=window_hours,
                            enqueue=enqueue, system=system)


def audit_run_start_for_release(*, model_version: Any, actor: Any | None, system: str | None = None
                                ) -> dict[str, AuditRun]:
    """The release gate's audits of a version: a fairness and a security run, triggered by the gate."""
    if model_version is None:
        raise ValidationError("the release gate needs a model version to audit")
    active = AuditRun.objects.filter(model_version=model_version, trigger=AuditRun.Trigger.RELEASE_GATE,
                                     status__in=[AuditRun.Status.QUEUED, AuditRun.Status.RUNNING])
    if active.exists():
        raise Conflict(f"release-gate audits of {model_version} are already running: "
                       + ", ".join(f"#{r.pk}" for r in active))
    return {kind: audit_run_create(kind=kind, actor=actor, trigger=AuditRun.Trigger.RELEASE_GATE,
                                   model_version=model_version, system=system)
            for kind in (AuditRun.Kind.FAIRNESS, AuditRun.Kind.SECURITY)}
