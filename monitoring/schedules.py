"""Monitoring's tasks operators may schedule (collected by ``portal.schedules``)."""

from __future__ import annotations

from portal.schedules import SchedulableTask

TASKS = [
    SchedulableTask("monitoring.rollup_telemetry", "Roll up the recent per-minute telemetry"),
    SchedulableTask("monitoring.rollup_telemetry_late", "Roll up late telemetry (last hours)"),
    SchedulableTask("monitoring.evaluate_alerts", "Evaluate the alert rules"),
    SchedulableTask("monitoring.deliver_due_notifications", "Send the notifications that are due"),
    SchedulableTask("monitoring.data_quality_report", "Data-quality report", min_interval_seconds=60),
    SchedulableTask("monitoring.drift_report", "Drift report against the training snapshot", min_interval_seconds=300),
    SchedulableTask("monitoring.feedback_snapshots", "Feedback-loop snapshots", min_interval_seconds=60),
]
