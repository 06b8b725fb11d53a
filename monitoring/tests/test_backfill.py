"""Catching monitoring up with stored history: the command and the bootstrap step."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from monitoring.models import DataQualityReport, DriftReport, FeedbackLoopSnapshot, TelemetryMinute
from monitoring.tests.factories import request_line, watch
from recommender.models import RecommendationRequest, WatchSession

pytestmark = pytest.mark.django_db


def _history(catalog, days: int = 3):
    now = timezone.now().replace(second=0, microsecond=0)
    movies, viewers = catalog
    RecommendationRequest.objects.bulk_create([
        request_line(time=now - timedelta(hours=h), viewer=viewers[h % 60], items=movies[:5])
        for h in range(1, 24 * days + 1)])
    WatchSession.objects.bulk_create([
        watch(viewer=viewers[h % 60], movie=movies[h % 5], started_at=now - timedelta(hours=h) + timedelta(minutes=3))
        for h in range(1, 24 * days)])
    return now


def test_the_command_rolls_up_history_and_makes_reports(catalog):
    _history(catalog)
    out = StringIO()
    call_command("monitoring_backfill", stdout=out)
    assert TelemetryMinute.objects.filter(source="client").count() == 72
    assert FeedbackLoopSnapshot.objects.count() >= 2
    assert DataQualityReport.objects.count() == 1 and DriftReport.objects.get().status == "no_reference"
    assert "telemetry_rows: 72" in out.getvalue()


def test_the_command_names_a_bad_argument(db):
    with pytest.raises(CommandError, match="not an ISO-8601"):
        call_command("monitoring_backfill", since="last tuesday")
    with pytest.raises(CommandError, match="positive"):
        call_command("monitoring_backfill", days=-1)


def test_bootstrap_catches_up_once(catalog):
    from monitoring.bootstrap import steps

    assert list(steps()) == ["bootstrap: monitoring: no events: nothing to backfill"]
    _history(catalog, days=1)
    [line] = list(steps())
    assert "monitoring caught up: 24 minute rollups" in line
    assert list(steps()) == ["bootstrap: monitoring rollups present; backfill skipped"]
