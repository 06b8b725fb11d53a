"""First-run step of monitoring for `manage.py bootstrap`: after the simulated backfill, roll up
its history so the dashboard has charts at once. Does nothing once rollups exist."""

from __future__ import annotations

from collections.abc import Iterator


def steps() -> Iterator[str]:
    from monitoring.models import TelemetryMinute
    from monitoring.services.backfill import monitoring_backfill

    if TelemetryMinute.objects.exists():
        yield "bootstrap: monitoring rollups present; backfill skipped"
        return
    summary = monitoring_backfill(system="bootstrap")
    if "note" in summary:
        yield f"bootstrap: monitoring: {summary['note']}"
        return
    yield (f"bootstrap: monitoring caught up: {summary['telemetry_rows']:,} minute rollups, "
           f"{summary['feedback_buckets']} feedback-loop buckets, data quality {summary['data_quality']}, "
           f"drift {summary['drift']}")
