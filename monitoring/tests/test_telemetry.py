"""Per-minute rollups, windows over them, SLO budgets and burn rates."""

from datetime import timedelta

import pytest

from monitoring import selectors
from monitoring.models import SLO, TelemetryMinute
from monitoring.services.slo import slo_burn_rate, slo_status
from monitoring.services.telemetry import telemetry_rollup
from monitoring.tests.factories import prediction, request_line
from recommender.models import RecommendationRequest

pytestmark = pytest.mark.django_db


def _lines(t0, minute, specs):
    """specs: list of (status, ms) for requests inside that minute."""
    return [
        request_line(time=t0 + timedelta(minutes=minute, seconds=i * 59 / len(specs)), viewer=1 + i % 5, status=status, ms=ms,
                     items=["movie+1+2000"] if status == 200 else [])
        for i, (status, ms) in enumerate(specs)
    ]


def test_client_rollup_counts_status_mix_latency_and_platform_availability(catalog, t0):
    # Given one minute: 6 fast answers, one 200 that took 700 ms (late for the platform), 1 timeout
    specs = [(200, 20), (200, 40), (200, 60), (200, 80), (200, 100), (200, 120), (200, 700), (0, 600)]
    RecommendationRequest.objects.bulk_create(_lines(t0, 0, specs))
    # When the minute is rolled up
    written = telemetry_rollup(since=t0, until=t0 + timedelta(minutes=1))
    # Then one client row carries every figure
    assert written == 1
    row = TelemetryMinute.objects.get()
    assert (row.source, row.requests, row.ok, row.errors) == ("client", 8, 7, 1)
    assert row.available == 6  # status 200 *and* within 600 ms
    assert row.status_counts == {"200": 7, "0": 1}
    assert row.latency_p50_ms == pytest.approx(90)
    assert row.latency_max_ms == 700
    assert sum(row.latency_buckets) == 8
    assert row.personalized is None  # the platform's lines cannot tell


def test_rollup_is_idempotent_and_picks_up_late_lines(catalog, t0):
    RecommendationRequest.objects.bulk_create(_lines(t0, 0, [(200, 10)] * 3))
    telemetry_rollup(since=t0, until=t0 + timedelta(minutes=5))
    telemetry_rollup(since=t0, until=t0 + timedelta(minutes=5))
    assert TelemetryMinute.objects.get().requests == 3
    # A line for the same minute arrives late: recomputing the minute counts it, once.
    RecommendationRequest.objects.bulk_create(_lines(t0, 0, [(0, 900)]))
    telemetry_rollup(since=t0, until=t0 + timedelta(minutes=5))
    row = TelemetryMinute.objects.get()
    assert (row.requests, row.errors) == (4, 1)


def test_no_requests_is_no_data_not_healthy(catalog, t0):
    assert telemetry_rollup(since=t0, until=t0 + timedelta(hours=1)) == 0
    window = selectors.telemetry_window(since=t0, until=t0 + timedelta(hours=1))
    assert window["no_data"] is True and "availability" not in window
    slo = SLO.objects.get(name="availability")
    status = slo_status(slo=slo, now=t0 + timedelta(hours=1))
    assert status["status"] == "no_data" and status["sli"] is None and status["budget_remaining"] is None
    assert slo_burn_rate(slo=slo, minutes=60, now=t0 + timedelta(hours=1))[0] is None


def test_slo_budget_and_burn_rates(catalog, t0):
    # 100 requests a minute for an hour; in the last 5 minutes 20% fail
    lines = []
    for minute in range(60):
        failing = 20 if minute >= 55 else 0
        lines += _lines(t0, minute, [(0, 600)] * failing + [(200, 50)] * (100 - failing))
    RecommendationRequest.objects.bulk_create(lines)
    telemetry_rollup(since=t0, until=t0 + timedelta(hours=1))
    slo = SLO.objects.get(name="availability")  # 99%: the budget is 1%
    now = t0 + timedelta(hours=1)
    short, figures = slo_burn_rate(slo=slo, minutes=5, now=now)
    assert short == pytest.approx(20.0)  # 20% bad / 1% budget
    long_rate, _ = slo_burn_rate(slo=slo, minutes=60, now=now)
    assert long_rate == pytest.approx((100 / 6000) / 0.01)
    status = slo_status(slo=slo, now=now)
    assert status["requests"] == 6000
    assert status["sli"] == pytest.approx(1 - 100 / 6000)
    assert status["budget_consumed"] == pytest.approx((100 / 6000) / 0.01)
    assert status["status"] == "exhausted"


def test_latency_slo_counts_requests_within_the_threshold(catalog, t0):
    RecommendationRequest.objects.bulk_create(_lines(t0, 0, [(200, 150)] * 90 + [(200, 400)] * 10))
    telemetry_rollup(since=t0, until=t0 + timedelta(minutes=1))
    slo = SLO.objects.get(name="latency-p95")  # 95% within 200 ms
    status = slo_status(slo=slo, now=t0 + timedelta(minutes=1))
    assert status["sli"] == pytest.approx(0.90)
    assert status["budget_consumed"] == pytest.approx(0.10 / 0.05)


def test_series_groups_minutes_into_steps_and_leaves_gaps(catalog, t0):
    RecommendationRequest.objects.bulk_create(_lines(t0, 0, [(200, 10)] * 2) + _lines(t0, 3, [(200, 10)] * 4)
                                              + _lines(t0, 20, [(0, 10)]))
    telemetry_rollup(since=t0, until=t0 + timedelta(minutes=30))
    points = selectors.telemetry_series(since=t0, until=t0 + timedelta(minutes=30), step_minutes=10)
    assert [(p["time"], p["requests"]) for p in points] == [(t0, 6), (t0 + timedelta(minutes=20), 1)]
    assert points[1]["availability"] == 0.0


def test_server_rollup_per_model_version_and_arm_with_personalization_and_fallbacks(catalog, t0):
    from recommender.models.serving import PredictionLog

    rows = [prediction(time=t0 + timedelta(seconds=i), viewer=1, items=["movie+1+2000"], version_id=7,
                       arm="production", latency=5.0) for i in range(8)]
    rows += [prediction(time=t0 + timedelta(seconds=i), viewer=2, items=["movie+2+2000"], version_id=None,
                        arm="production", latency=2.0, fallback="no_model") for i in range(2)]
    rows += [prediction(time=t0 + timedelta(seconds=i), viewer=3, items=["movie+3+2000"], version_id=9, arm="canary",
                        latency=900.0) for i in range(3)]
    # Production answered for an unavailable arm: still a model's answer, with its reason kept
    rows += [prediction(time=t0, viewer=4, items=["movie+4+2000"], version_id=7, arm="arm:b",
                        fallback="arm_unavailable")]
    PredictionLog.objects.bulk_create(rows)
    telemetry_rollup(since=t0, until=t0 + timedelta(minutes=1))
    server = {(r.model_version_id, r.arm): r for r in TelemetryMinute.objects.filter(source="server")}
    assert server[(7, "production")].requests == 8 and server[(7, "production")].personalized == 8
    fallback = server[(None, "production")]
    assert fallback.personalized == 0 and fallback.fallback_reasons == {"no_model": 2}
    canary = server[(9, "canary")]
    assert canary.available == 0 and canary.latency_p99_ms == pytest.approx(900)
    window = selectors.telemetry_window(since=t0, until=t0 + timedelta(minutes=1), source="server")
    assert server[(7, "arm:b")].personalized == 1
    assert window["personalization_rate"] == pytest.approx(12 / 14)
    assert window["fallback_rate"] == pytest.approx(2 / 14)
    assert window["fallback_reasons"] == {"no_model": 2, "arm_unavailable": 1}


def test_the_popular_fallback_reasons_match_the_serving_runtime():
    from monitoring.sources import NON_PERSONALIZED_REASONS
    from recommender.serving.runtime import POPULAR_REASONS

    assert NON_PERSONALIZED_REASONS == POPULAR_REASONS


def test_the_minute_pass_and_the_hourly_pass_of_beat(catalog):
    from django.utils import timezone

    from monitoring import tasks

    now = timezone.now().replace(second=0, microsecond=0)
    RecommendationRequest.objects.bulk_create(_lines(now - timedelta(minutes=3), 0, [(200, 10)] * 4))
    tasks.rollup_telemetry()
    assert TelemetryMinute.objects.get().requests == 4
    # A spilled batch replayed 40 minutes late: outside the per-minute pass, inside the hourly one
    RecommendationRequest.objects.bulk_create(_lines(now - timedelta(minutes=40), 0, [(0, 900)] * 2))
    tasks.rollup_telemetry()
    assert TelemetryMinute.objects.count() == 1
    tasks.rollup_telemetry_late()
    assert sorted(TelemetryMinute.objects.values_list("requests", flat=True)) == [2, 4]
