"""Reads of the audits app: runs, findings with their review history, the release-gate view, exports."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from audits.checks.base import jsonable
from audits.models import SEVERITY_RANK, AuditFinding, AuditRun, FindingWaiver
from portal.models import ActivityLogEntry, ReviewRequest
from portal.selectors import activity_log_list


def audit_run_list(*, filters: dict | None = None) -> QuerySet[AuditRun]:
    filters = filters or {}
    qs = (AuditRun.objects.select_related("model_version__registered_model", "requested_by", "signed_off_by")
          .annotate(finding_count=Count("findings", distinct=True),
                    open_count=Count("findings", filter=Q(findings__status="open"), distinct=True))
          .order_by("-created_at", "-id"))
    for key in ("kind", "status", "trigger", "target"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    if filters.get("model_version"):
        qs = qs.filter(model_version_id=filters["model_version"])
    if filters.get("passed") in (True, False):
        qs = qs.filter(passed=filters["passed"])
    return qs


def audit_run_get(*, run_id: int) -> AuditRun | None:
    return audit_run_list().filter(pk=run_id).first()


def audit_finding_list(*, filters: dict | None = None) -> QuerySet[AuditFinding]:
    filters = filters or {}
    qs = (AuditFinding.objects.select_related("run", "model_version__registered_model", "status_changed_by")
          .prefetch_related(Prefetch("waivers", queryset=FindingWaiver.objects.select_related(
              "requested_by", "reviewed_by").order_by("-requested_at")))
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
    """Every activity-log entry about the finding, and about the review requests of its waivers."""
    review_ids = [str(pk) for pk in finding.waivers.exclude(review__isnull=True).values_list("review_id", flat=True)]
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
    """The latest finished run of each kind."""
    finished = audit_run_list().filter(status__in=[AuditRun.Status.SUCCEEDED, AuditRun.Status.FAILED])
    return {kind: finished.filter(kind=kind).first() for kind in AuditRun.Kind.values}


def audit_open_counts() -> dict[str, int]:
    """Findings needing attention (open or acknowledged) per severity."""
    rows = (AuditFinding.objects.filter(status__in=["open", "acknowledged"]).values("severity")
            .annotate(n=Count("id")))
    counts = {s: 0 for s in SEVERITY_RANK}
    for row in rows:
        counts[row["severity"]] = row["n"]
    return counts


def audit_release_gate(*, model_version: Any) -> dict[str, Any]:
    """What the release gate needs to know about a version's audits.

    Fairness: the latest succeeded fairness run of this version passed, or each of its failing
    findings is waived. Security: the latest succeeded security run (of this version, else the
    latest live one) likewise. Artifact integrity is part of the security run.
    """
    def verdict(run: AuditRun | None) -> dict[str, Any]:
        if run is None:
            return {"ok": False, "run": None, "reason": "no succeeded audit yet", "blocking_findings": []}
        threshold = SEVERITY_RANK[str(run.params.get("config", {}).get("PASS_BELOW_SEVERITY", "medium"))]
        blocking = [
            {"id": f.pk, "severity": f.severity, "status": f.status, "title": f.title}
            for f in run.findings.all()
            if SEVERITY_RANK[f.severity] >= threshold and f.status not in ("waived", "resolved")
        ]
        return {"ok": not blocking, "run": run.pk, "finished_at": run.finished_at, "passed": run.passed,
                "reason": "passed" if run.passed else ("failing findings waived or resolved" if not blocking
                                                        else f"{len(blocking)} finding(s) not waived"),
                "blocking_findings": blocking}

    succeeded = AuditRun.objects.filter(status=AuditRun.Status.SUCCEEDED).order_by("-finished_at", "-id")
    fairness = succeeded.filter(kind="fairness", model_version=model_version).first()
    security = (succeeded.filter(kind="security", model_version=model_version).first()
                or succeeded.filter(kind="security", target="live").first())
    result = {"model_version": getattr(model_version, "pk", None),
              "fairness": verdict(fairness), "security": verdict(security)}
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
        "status_comment": finding.status_comment,
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
