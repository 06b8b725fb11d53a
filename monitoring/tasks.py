"""Celery entry points of monitoring (thin: each calls one service). Beat schedules are data,
seeded by migration 0002 and editable in the admin. Services send these by name
(``portal.queue.task_send``) and never import this module."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from monitoring.conf import monitoring_setting
from monitoring.services.alerts import alert_rules_evaluate
from monitoring.services.data_quality import data_quality_report_create
from monitoring.services.drift import drift_report_create
from monitoring.services.feedback import feedback_snapshots_update
from monitoring.services.notifications import notification_deliver, notifications_deliver_due
from monitoring.services.telemetry import telemetry_rollup

SYSTEM = "monitoring"


@shared_task(name="monitoring.rollup_telemetry", acks_late=True)
def rollup_telemetry() -> int:
    """Every minute: recompute the recent per-minute telemetry rollups."""
    return telemetry_rollup()


@shared_task(name="monitoring.rollup_telemetry_late", acks_late=True)
def rollup_telemetry_late() -> int:
    """Hourly: recompute the last ``ROLLUP_LATE_HOURS`` (rows that arrived after the per-minute pass)."""
    now = timezone.now()
    return telemetry_rollup(since=now - timedelta(hours=int(monitoring_setting("ROLLUP_LATE_HOURS")), minutes=5),
                            until=now)


@shared_task(name="monitoring.evaluate_alerts", acks_late=True)
def evaluate_alerts() -> dict:
    """Every minute: evaluate every enabled alert rule; firing rules open or update incidents."""
    evaluations = alert_rules_evaluate()
    states: dict[str, int] = {}
    for e in evaluations:
        states[e.state] = states.get(e.state, 0) + 1
    return {"rules": len(evaluations), "states": states, "opened": [e.incident_id for e in evaluations if e.opened]}


@shared_task(name="monitoring.data_quality_report", acks_late=True)
def data_quality_report() -> int:
    """Every 15 minutes: a data-quality report over the last window."""
    return data_quality_report_create(system="monitoring.data_quality_report").pk


@shared_task(name="monitoring.drift_report", acks_late=True, soft_time_limit=600)
def drift_report() -> int:
    """Hourly: a drift report of the last window against the production training snapshot."""
    return drift_report_create(system="monitoring.drift_report").pk


@shared_task(name="monitoring.feedback_snapshots", acks_late=True)
def feedback_snapshots() -> list[int]:
    """Hourly: (re)compute the latest feedback-loop buckets."""
    return [s.pk for s in feedback_snapshots_update(system="monitoring.feedback_snapshots")]


@shared_task(name="monitoring.deliver_notification", acks_late=True)
def deliver_notification(notification_id: int) -> str | None:
    """Queued on commit when an incident changes: try one notification (retries are the sweep's)."""
    notification = notification_deliver(notification_id=notification_id)
    return notification.status if notification else None


@shared_task(name="monitoring.deliver_due_notifications", acks_late=True)
def deliver_due_notifications() -> int:
    """Every minute: send the notifications that are due (first tries the queue missed, retries)."""
    return notifications_deliver_due()
