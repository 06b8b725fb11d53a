"""The audits' tasks operators may schedule (collected by ``portal.schedules``)."""

from __future__ import annotations

from audits.models import AuditRun
from audits.services.runs import MAX_WINDOW_HOURS
from portal.schedules import Arg, SchedulableTask

TASKS = [
    SchedulableTask(
        "audits.scheduled_audit", "Audit the live deployment (fairness or security)",
        kwargs={
            "kind": Arg(str, required=True, choices=tuple(AuditRun.Kind.values), help="fairness or security"),
            "window_hours": Arg(float, minimum=0.1, maximum=MAX_WINDOW_HOURS,
                                help="hours of live traffic audited (default: the audits' setting)"),
        },
        min_interval_seconds=300,
    ),
    SchedulableTask("audits.expire_waivers", "Reopen the findings whose waiver has expired"),
    SchedulableTask("audits.fail_stuck_runs", "End as failed the audit runs whose worker stopped"),
]
