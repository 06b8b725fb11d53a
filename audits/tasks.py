"""Celery entry points of the audits app: execute a run, scheduled audits, waiver expiry, stuck runs.

Thin: each takes ids or plain values, re-fetches, guards on status and calls one service.
"""

from __future__ import annotations

from celery import shared_task

from audits import services
from audits.models import AuditRun


@shared_task(name="audits.execute_run", acks_late=True)
def execute_audit_run(run_id: int) -> str:
    """Execute a queued run; a run already handled is left alone (idempotent)."""
    if not AuditRun.objects.filter(pk=run_id, status=AuditRun.Status.QUEUED).exists():
        return "skipped"
    return services.audit_run_execute(run_id=run_id, system="audits.execute_run").status


@shared_task(name="audits.scheduled_audit", acks_late=True)
def scheduled_audit(kind: str, window_hours: float | None = None) -> int | None:
    """A beat-scheduled audit of the live deployment: create the run and execute it here.

    Skipped (None) while a run of the same kind started by the schedule is still queued or running.
    """
    busy = AuditRun.objects.filter(kind=kind, trigger=AuditRun.Trigger.SCHEDULE,
                                   status__in=[AuditRun.Status.QUEUED, AuditRun.Status.RUNNING])
    if busy.exists():
        return None
    run = services.audit_run_create(kind=kind, actor=None, trigger=AuditRun.Trigger.SCHEDULE,
                                    window_hours=window_hours, enqueue=False, system=f"audits.scheduled_audit:{kind}")
    return services.audit_run_execute(run_id=run.pk, system=f"audits.scheduled_audit:{kind}").pk


@shared_task(name="audits.expire_waivers")
def expire_waivers() -> list[int]:
    """Reopen the findings whose waiver has expired."""
    return services.finding_waivers_expire(system="audits.expire_waivers")


@shared_task(name="audits.fail_stuck_runs")
def fail_stuck_runs() -> list[int]:
    """End as failed the runs whose worker stopped."""
    return services.audit_runs_fail_stuck(system="audits.fail_stuck_runs")
