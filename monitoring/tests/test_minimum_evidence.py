"""Minimum evidence for the seeded burn-rate and freshness rules at low traffic (MONITORING's BURN_ALPHA,
BURN_SHORT_MIN_REQUESTS, FRESHNESS_ALPHA, FRESHNESS_RATE_WINDOW_MINUTES): a few requests and an ordinary
gap do not open an incident; a real outage does (benchmarks/calibration.py, docs/audits.md)."""

from datetime import timedelta

import pytest

from monitoring.models import AlertRule, Incident
from monitoring.services.alerts import alert_rule_evaluate
from monitoring.services.telemetry import telemetry_rollup
from monitoring.tests.factories import request_line
from recommender.models import RecommendationRequest

pytestmark = pytest.mark.django_db

SLOW_BURN = "availability: slow burn (5% of the budget)"  # 7-day SLO: 6 h / 30 min at 1.4×
STALE = "recommendation lines stale (15 min)"


def _low_traffic(t0, *, hours: int, failing_minutes: set[int]) -> None:
    """One request every 5 minutes (~300 a day, the calibration's clean world), failing at ``failing_minutes``."""
    RecommendationRequest.objects.bulk_create([
        request_line(time=t0 + timedelta(minutes=m), viewer=1 + m % 50, status=0 if m in failing_minutes else 200,
                     ms=600 if m in failing_minutes else 40, items=["movie+1+2000"])
        for m in range(0, hours * 60, 5)])
    telemetry_rollup(since=t0, until=t0 + timedelta(hours=hours))


def _rule(name: str) -> AlertRule:
    return AlertRule.objects.get(name=name)


def test_two_timeouts_in_a_quiet_six_hours_do_not_page_but_an_outage_does(catalog, t0):
    # 72 requests in 6 h, 2 timeouts (one in the last 30 min): a burn of 2.8× in both windows, above
    # the 1.4× factor, which used to fire. 2 of 72 at a 1 % budget is p = 0.16: not evidence.
    _low_traffic(t0, hours=6, failing_minutes={100, 345})
    now = t0 + timedelta(hours=6)
    rule = _rule(SLOW_BURN)
    evaluation = alert_rule_evaluate(rule=rule, now=now)
    rule.refresh_from_db()
    assert evaluation.value > rule.threshold
    assert evaluation.state == "ok" and not Incident.objects.filter(rule=rule).exists()
    assert "not significantly more" in rule.last_evidence["held"]
    assert rule.last_evidence["significance"]["bad"] == 2
    assert rule.last_evidence["significance"]["p_value"] > 0.01
    # the 30-minute short window held 6 requests: widened until it holds 30
    short = rule.last_evidence["short_window"]
    assert short["widened_from_minutes"] == 30 and short["requests"] >= 30

    # the next hour every request times out: an outage, at the same low traffic
    _low_traffic(now, hours=1, failing_minutes=set(range(60)))
    evaluation = alert_rule_evaluate(rule=rule, now=now + timedelta(hours=1))
    assert evaluation.state == "firing" and evaluation.opened
    assert Incident.objects.filter(rule=rule).count() == 1


def test_a_quarter_hour_gap_at_low_traffic_is_not_stale_but_a_stopped_stream_is(catalog, t0):
    _low_traffic(t0, hours=6, failing_minutes=set())  # last line at 5:55
    last = t0 + timedelta(hours=5, minutes=55)
    rule = _rule(STALE)
    # 20 minutes without a line, at 12 lines an hour: P(no line) = e^-4 ≈ 0.018, ordinary (it used to fire)
    evaluation = alert_rule_evaluate(rule=rule, now=last + timedelta(minutes=20))
    rule.refresh_from_db()
    assert evaluation.value == 1200 and evaluation.state == "ok"
    assert "ordinary" in rule.last_evidence["held"]
    assert rule.last_evidence["traffic"]["events"] == 72
    assert not Incident.objects.filter(rule=rule).exists()
    # an hour without a line: e^-12, the stream stopped
    evaluation = alert_rule_evaluate(rule=rule, now=last + timedelta(minutes=60))
    assert evaluation.state == "firing" and evaluation.opened


def test_busy_traffic_keeps_the_plain_thresholds(catalog, t0):
    # a line a minute: 16 minutes of silence is improbable (e^-16), so the 15-minute rule fires as before
    RecommendationRequest.objects.bulk_create([
        request_line(time=t0 + timedelta(minutes=m), viewer=1 + m % 50, items=["movie+1+2000"]) for m in range(360)])
    evaluation = alert_rule_evaluate(rule=_rule(STALE), now=t0 + timedelta(minutes=359 + 16))
    assert evaluation.state == "firing"


def test_the_evidence_guards_are_settings(catalog, t0, settings):
    settings.MONITORING = {"BURN_ALPHA": None, "FRESHNESS_ALPHA": None}
    _low_traffic(t0, hours=6, failing_minutes={100, 345})
    assert alert_rule_evaluate(rule=_rule(SLOW_BURN), now=t0 + timedelta(hours=6)).state == "firing"
    assert alert_rule_evaluate(rule=_rule(STALE), now=t0 + timedelta(hours=6, minutes=15)).state == "firing"
