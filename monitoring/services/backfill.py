"""Catching monitoring up with history: after a backfill of events (the simulator, a replayed file),
roll up every minute, compute every feedback-loop bucket and make today's reports."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Min
from django.utils import timezone

from monitoring.conf import monitoring_setting
from monitoring.services.data_quality import data_quality_report_create
from monitoring.services.drift import drift_report_create
from monitoring.services.feedback import feedback_snapshots_update
from monitoring.services.telemetry import telemetry_rollup
from portal.permissions import require


def first_event_time() -> datetime | None:
    from recommender.models import RatingEvent, RecommendationRequest, WatchSession

    times = [RatingEvent.objects.aggregate(t=Min("time"))["t"],
             WatchSession.objects.aggregate(t=Min("started_at"))["t"],
             RecommendationRequest.objects.aggregate(t=Min("time"))["t"]]
    times = [t for t in times if t is not None]
    return min(times) if times else None


def monitoring_backfill(*, since: datetime | None = None, until: datetime | None = None,
                        system: str | None = "monitoring.backfill", actor=None) -> dict:
    """Roll up ``[since, until)`` (default: from the first event to now), compute the feedback-loop
    buckets it covers, and make a data-quality and a drift report of the latest window (``config.manage``)."""
    require(actor, "config.manage", system=system)
    until = until or timezone.now()
    since = since or first_event_time()
    if since is None:
        return {"minutes": 0, "feedback_buckets": 0, "note": "no events: nothing to backfill"}
    rows = telemetry_rollup(since=since, until=until)
    bucket = timedelta(hours=int(monitoring_setting("FEEDBACK_BUCKET_HOURS")))
    buckets = max(1, int((until - since) / bucket))
    snapshots = feedback_snapshots_update(now=until, buckets=buckets, system=system)
    quality = data_quality_report_create(now=until, until=until, system=system)
    drift = drift_report_create(now=until, current_until=until, actor=actor, system=system)
    return {"since": since, "until": until, "telemetry_rows": rows, "feedback_buckets": len(snapshots),
            "data_quality": quality.status, "drift": drift.status}
