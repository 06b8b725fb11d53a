"""Reads of the audits app: runs, findings with their review history, the release-gate view, exports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from audits.checks.base import jsonable
from audits.conf import review_severity, settings_differences
from audits.models import SEVERITY_RANK, AuditFinding, AuditRun, FindingResolution, FindingWaiver
from portal.models import ActivityLogEntry, ReviewRequest
from portal.selectors import activity_log_list

# The stored output of a run (tens to hundreds of KiB each): read by a run's own page and exports,
# never by lists.
_RUN_OUTPUT_FIELDS = ("params", "results", "report", "error")


def _finding_count(**extra) -> Coalesce:
    """Findings first raised by the outer run, as a correlated subquery: no GROUP BY over the runs'
    columns (SQLite groups by every selected column, stored results included)."""
    counted = (AuditFinding.objects.filter(run=OuterRef("pk"), **extra).order_by()
               .values("run").annotate(n=Count("pk")).values("n"))
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def audit_run_list(*, filters: dict | None = None, summary: bool = False) -> QuerySet[AuditRun]:
    """Runs, newest first, with ``finding_count`` and ``open_count``; ``summary=True`` leaves the
    stored output (settings, results, report, error) unread, for lists."""
    filters = filters or {}
    qs = (AuditRun.objects.select_related("model_version__registered_model", "requested_by", "signed_off_by")
          .annotate(finding_count=_finding_count(), open_count=_finding_count(status="open"))
          .order_by("-created_at", "-id"))
    if summary:
        qs = qs.defer(*_RUN_OUTPUT_FIELDS)
    for key in ("kind", "status", "trigger", "target"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    if filters.get("model_version"):
        qs = qs.filter(model_version_id=filters["model_version"])
    if filters.get("exploratory") in (True, False):
        qs = qs.filter(exploratory=filters["exploratory"])
    if filters.get("passed") in (True, False):
        qs = qs.filter(passed=filters["passed"])
    return qs


def audit_run_get(*, run_id: int) -> AuditRun | None:
    return audit_run_list().filter(pk=run_id).first()


def audit_finding_list(*, filters: dict | None = None) -> QuerySet[AuditFinding]:
    filters = filters or {}
    qs = (AuditFinding.objects.select_related("run", "model_version__registered_model", "status_changed_by")
          .prefetch_related(Prefetch("waivers", queryset=FindingWaiver.objects.select_related(
              "requested_by", "reviewed_by").order_by("-requested_at")),
                            Prefetch("resolutions", queryset=FindingResolution.objects.select_related(
                                "proposed_by", "reviewed_by").order_by("-proposed_at")))
          .order_by("-last_seen_at", "-id"))
    for key in ("status", "severity", "kind", "check_name"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    if filters.get("run"):
        qs = qs.filter(runs__id=filters["run"])
    if filters.get("model_version"):
        qs = qs.filter(model_version_id=filters["model_version"])
    if filters.get("min_severity"):
        rank = SEVERITY_RANK[filters["min_severity"]]
        qs = qs.filter(severity__in=[s for s, r in SEVERITY_RANK.items() if r >= rank])
    if filters.get("active"):
        qs = qs.filter(status__in=AuditFinding.ACTIVE_STATUSES)
    return qs.distinct()


def audit_finding_get(*, finding_id: int) -> AuditFinding | None:
    return audit_finding_list().filter(pk=finding_id).first()


def audit_finding_history(*, finding: AuditFinding) -> QuerySet[ActivityLogEntry]:
    """Every activity-log entry about the finding, and about the review requests of its waivers and
    proposed resolutions."""
    review_ids = [str(pk) for pk in finding.waivers.exclude(review__isnull=True).values_list("review_id", flat=True)]
    review_ids += [str(pk) for pk in finding.resolutions.exclude(review__isnull=True)
                   .values_list("review_id", flat=True)]
    return (activity_log_list()
            .filter(Q(target_type="audits.auditfinding", target_id=str(finding.pk))
                    | Q(target_type="portal.reviewrequest", target_id__in=review_ids))
            .order_by("seq"))


def audit_run_history(*, run: AuditRun) -> QuerySet[ActivityLogEntry]:
    review_ids = [str(pk) for pk in ReviewRequest.objects.filter(
        target_type="audits.auditrun", target_id=str(run.pk)).values_list("pk", flat=True)]
    return (activity_log_list()
            .filter(Q(target_type="audits.auditrun", target_id=str(run.pk))
                    | Q(target_type="portal.reviewrequest", target_id__in=review_ids))
            .order_by("seq"))


def audit_run_reviews(*, run: AuditRun) -> QuerySet[ReviewRequest]:
    return ReviewRequest.objects.filter(target_type="audits.auditrun", target_id=str(run.pk)).order_by("-created_at")


def audit_latest_runs() -> dict[str, AuditRun | None]:
    """The latest finished run of each kind (summaries: the stored output is not read)."""
    finished = audit_run_list(summary=True).filter(status__in=[AuditRun.Status.SUCCEEDED, AuditRun.Status.FAILED])
    return {kind: finished.filter(kind=kind).first() for kind in AuditRun.Kind.values}


def audit_open_counts() -> dict[str, int]:
    """Findings needing attention (open or acknowledged) per severity."""
    rows = (AuditFinding.objects.filter(status__in=["open", "acknowledged"]).values("severity")
            .annotate(n=Count("id")))
    counts = {s: 0 for s in SEVERITY_RANK}
    for row in rows:
        counts[row["severity"]] = row["n"]
    return counts


def audit_run_gate_standing(*, run: AuditRun, version: Any) -> str | None:
    """Why the release gate may not read ``run`` as evidence for ``version``; None when it may.

    Evidence is a run with the configured settings (no overrides that change a threshold, the full
    configured check set: what is configured *now*), on the exact artifact the version holds (the
    sha256 recorded when the run was created equals the version's). Who started it does not matter.
    """
    if run.exploratory:
        changed = run.params.get("differs_from_configured") or sorted(run.params.get("overrides") or {})
        return f"exploratory: ran with settings other than the configured ones ({', '.join(changed)})"
    config = (run.params or {}).get("config")
    if not config:
        return "records no settings"
    differs = settings_differences(config)
    if differs:
        return f"ran with settings that are no longer the configured ones ({', '.join(differs)})"
    expected = getattr(version, "artifact_sha256", "") or ""
    if not expected:
        return "the version records no artifact sha256 to compare with"
    if run.artifact_sha256 != expected:
        return (f"audited artifact sha256 {run.artifact_sha256[:12] or 'unrecorded'}…, "
                f"the version's is {expected[:12]}…")
    return None


def _finding_judgement(finding: AuditFinding, now: datetime) -> tuple[bool, str]:
    """(blocks, why) for a finding at or above the review level, judged at ``now``."""
    if finding.status == AuditFinding.Status.RESOLVED:
        if finding.resolved_via == AuditFinding.ResolvedVia.REVIEW:
            return False, f"resolved, approved by {finding.status_changed_by or 'a reviewer'} (four eyes)"
        if finding.resolved_via == AuditFinding.ResolvedVia.RERUN:
            return False, f"resolved: {finding.status_comment}"
        return True, "resolved by one person without a second person's review"
    if finding.status == AuditFinding.Status.WAIVED:
        active = [w for w in finding.waivers.all() if w.status == FindingWaiver.Status.ACTIVE]
        for waiver in active:
            four_eyes = waiver.reviewed_by_id is not None and waiver.reviewed_by_id != waiver.requested_by_id
            if four_eyes and waiver.expires_at > now:
                return False, (f"waiver #{waiver.pk} approved by {waiver.reviewed_by} until "
                               f"{waiver.expires_at.isoformat()}")
        if active:
            latest = max(active, key=lambda w: w.expires_at)
            if latest.expires_at <= now:
                return True, f"waiver #{latest.pk} expired at {latest.expires_at.isoformat()}"
            return True, f"waiver #{latest.pk} was not approved by a second person"
        return True, "marked waived but holds no approved waiver"
    pending = [r for r in finding.resolutions.all() if r.status == FindingResolution.Status.PENDING]
    if pending:
        return True, f"{finding.status}; resolution proposed, waiting for review #{pending[0].review_id}"
    return True, str(finding.status)


def audit_release_gate(*, model_version: Any, now: datetime | None = None) -> dict[str, Any]:
    """What the release gate needs to know about a version's audits, judged at ``now``.

    For each kind, the latest succeeded run of this version that is gate evidence
    (``audit_run_gate_standing``); the runs that are not are listed under ``skipped_runs`` with the
    reason (the 20 latest), older evidence is counted under ``older_configured_runs``. Security reads runs of this version only (their artifact check covers its artifact).
    The gate then judges the run's findings itself: one at or above the review level blocks unless
    a reviewer other than its requester approved a waiver that has not expired at ``now`` (the
    expiry is checked here, not the status beat maintains), or it was resolved through a second
    person's review or by a configured re-run that no longer found it.
    """
    now = now or timezone.now()
    level = review_severity()
    threshold = SEVERITY_RANK[level]
    expected = getattr(model_version, "artifact_sha256", "") or ""

    def verdict(kind: str) -> dict[str, Any]:
        runs = (AuditRun.objects.filter(status=AuditRun.Status.SUCCEEDED, kind=kind, model_version=model_version)
                .order_by("-finished_at", "-id"))
        if kind == AuditRun.Kind.SECURITY:
            runs = runs.filter(target=AuditRun.Target.MODEL_VERSION)
        chosen, skipped, superseded = None, [], 0
        for run in runs[:200]:
            reason = audit_run_gate_standing(run=run, version=model_version)
            if reason is None:
                if chosen is None:
                    chosen = run
                else:
                    superseded += 1
            elif len(skipped) < 20:
                skipped.append({"run": run.pk, "trigger": run.trigger, "requested_by": run.requested_label,
                                "reason": reason})
        base = {"artifact_sha256": expected, "review_level": level, "skipped_runs": skipped,
                "older_configured_runs": superseded,
                "rule": "the latest succeeded run with the configured settings on this artifact; findings at or "
                        f"above {level} block unless waived (approved by a second person, not expired) or "
                        "resolved through review or a configured re-run"}
        if chosen is None:
            return {**base, "ok": False, "run": None, "passed": None, "finished_at": None,
                    "reason": f"no configured {kind} audit of this artifact has succeeded"
                              + (f" ({len(skipped)} run(s) skipped)" if skipped else ""),
                    "blocking_findings": [], "accepted_findings": []}
        findings = (chosen.findings.select_related("status_changed_by")
                    .prefetch_related(Prefetch("waivers", queryset=FindingWaiver.objects.select_related(
                        "reviewed_by")), "resolutions").order_by("pk"))
        blocking, accepted = [], []
        for f in findings:
            if SEVERITY_RANK[f.severity] < threshold:
                continue
            blocks, why = _finding_judgement(f, now)
            row = {"id": f.pk, "severity": f.severity, "status": f.status, "title": f.title, "why": why}
            (blocking if blocks else accepted).append(row)
        if blocking:
            reason = f"{len(blocking)} finding(s) block: " + "; ".join(f"#{r['id']} {r['why']}" for r in blocking[:3])
        elif accepted:
            reason = "failing findings waived or resolved through review"
        else:
            reason = "passed"
        return {**base, "ok": not blocking, "run": chosen.pk, "finished_at": chosen.finished_at,
                "passed": chosen.passed, "trigger": chosen.trigger, "requested_by": chosen.requested_label,
                "reason": reason, "blocking_findings": blocking, "accepted_findings": accepted}

    result = {"model_version": getattr(model_version, "pk", None), "judged_at": now,
              "fairness": verdict(AuditRun.Kind.FAIRNESS), "security": verdict(AuditRun.Kind.SECURITY)}
    result["ok"] = result["fairness"]["ok"] and result["security"]["ok"]
    return result


def audit_schedule_list() -> QuerySet:
    """The beat schedules of the audits app (django-celery-beat rows, changed on the Schedules page)."""
    from django_celery_beat.models import PeriodicTask

    return (PeriodicTask.objects.filter(task__startswith="audits.")
            .select_related("crontab", "interval").order_by("name"))


def _history_rows(entries) -> list[dict[str, Any]]:
    return [{"seq": e.seq, "at": e.created_at, "actor": e.actor_label, "action": e.action, "data": e.data}
            for e in entries]


def finding_as_dict(finding: AuditFinding, *, with_history: bool = False) -> dict[str, Any]:
    data = {
        "id": finding.pk, "kind": finding.kind, "check": finding.check_name, "severity": finding.severity,
        "title": finding.title, "status": finding.status, "evidence": finding.evidence,
        "first_run": finding.run_id, "model_version": finding.model_version_id,
        "times_seen": finding.times_seen, "first_seen_at": finding.first_seen_at, "last_seen_at": finding.last_seen_at,
        "status_changed_at": finding.status_changed_at,
        "status_changed_by": finding.status_changed_by.get_username() if finding.status_changed_by else None,
        "status_comment": finding.status_comment, "resolved_via": finding.resolved_via,
        "resolutions": [
            {"id": r.pk, "status": r.status, "comment": r.comment,
             "proposed_by": r.proposed_by.get_username() if r.proposed_by else None, "proposed_at": r.proposed_at,
             "reviewed_by": r.reviewed_by.get_username() if r.reviewed_by else None,
             "reviewed_at": r.reviewed_at, "review": r.review_id}
            for r in finding.resolutions.all()
        ],
        "waivers": [
            {"id": w.pk, "status": w.status, "justification": w.justification, "expires_at": w.expires_at,
             "requested_by": w.requested_by.get_username() if w.requested_by else None,
             "reviewed_by": w.reviewed_by.get_username() if w.reviewed_by else None,
             "reviewed_at": w.reviewed_at, "review": w.review_id}
            for w in finding.waivers.all()
        ],
    }
    if with_history:
        data["history"] = _history_rows(audit_finding_history(finding=finding))
    return data


def audit_run_export(*, run: AuditRun) -> dict[str, Any]:
    """The whole run as one JSON-able document: what was audited, settings, results, findings, history."""
    findings = audit_finding_list(filters={"run": run.pk})
    return jsonable({
        "exported_at": timezone.now(),
        "run": {
            "id": run.pk, "kind": run.kind, "target": run.target, "target_repr": run.target_repr,
            "model_version": run.model_version_id,
            "model_version_name": str(run.model_version) if run.model_version_id else None,
            "window_start": run.window_start, "window_end": run.window_end, "trigger": run.trigger,
            "exploratory": run.exploratory, "artifact_sha256": run.artifact_sha256,
            "status": run.status, "passed": run.passed, "requested_by": run.requested_label,
            "created_at": run.created_at, "started_at": run.started_at, "finished_at": run.finished_at,
            "error": run.error, "report": run.report,
            "signed_off_by": run.signed_off_by.get_username() if run.signed_off_by else None,
            "signed_off_at": run.signed_off_at, "signoff_comment": run.signoff_comment,
        },
        "settings": run.params,
        "results": run.results,
        "findings": [finding_as_dict(f, with_history=True) for f in findings],
        "history": _history_rows(audit_run_history(run=run)),
    })
