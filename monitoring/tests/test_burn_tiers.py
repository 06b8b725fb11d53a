"""Burn-rate alert tiers follow the SLO's own period: the SRE workbook's windows, factors f × P / W."""

from datetime import timedelta

import pytest

from monitoring.models import SLO, AlertRule
from monitoring.services.alerts import alert_rule_evaluate, alert_rule_update
from monitoring.services.slo import burn_tier, slo_burn_tiers, slo_status
from monitoring.services.telemetry import telemetry_rollup
from monitoring.tests.factories import request_line
from portal.errors import ValidationError
from recommender.models import RecommendationRequest

pytestmark = pytest.mark.django_db


def _tiers(days: int) -> dict:
    return {t.tier: (t.factor, t.long_minutes, t.short_minutes) for t in
            (burn_tier(tier=name, period_days=days) for name in ("fast", "slow", "leak"))}


def test_a_30_day_period_gives_the_workbook_factors_and_a_7_day_period_its_own():
    assert _tiers(30) == {"fast": (14.4, 60, 5), "slow": (6.0, 360, 30), "leak": (1.0, 4320, 360)}
    # 7 days: 2% of the budget in 1 h is 0.02 × 168 h / 1 h; 10% in 3 d would be 0.23×, which the budget
    # survives, so the leak tier fires at 1× over the 16.8 h in which 1× spends 10%.
    assert _tiers(7) == {"fast": (3.36, 60, 5), "slow": (1.4, 360, 30), "leak": (1.0, 1008, 84)}
    for days in (1, 7, 14, 30, 90):
        for tier in ("fast", "slow", "leak"):
            t = burn_tier(tier=tier, period_days=days)
            # what the tier promises: at its factor, its long window spends its share of the budget
            assert t.factor * t.long_minutes / (days * 1440) == pytest.approx(t.budget_fraction, rel=0.02)  # whole minutes
            assert t.factor >= 1
    with pytest.raises(ValueError, match="unknown burn-rate tier"):
        burn_tier(tier="medium", period_days=7)


def _traffic(t0, *, minutes: int, per_minute: int, failing: int) -> None:
    RecommendationRequest.objects.bulk_create([
        request_line(time=t0 + timedelta(minutes=m, seconds=i), viewer=1 + i, status=0 if i < failing else 200,
                     ms=600 if i < failing else 40, items=["movie+1+2000"])
        for m in range(minutes) for i in range(per_minute)])
    telemetry_rollup(since=t0, until=t0 + timedelta(minutes=minutes))


@pytest.fixture
def two_slos(db):
    AlertRule.objects.update(enabled=False)
    rules = {}
    for days in (7, 30):
        slo = SLO.objects.create(name=f"avail-{days}d", kind="availability", source="client", objective=0.99,
                                 window_days=days, latency_threshold_ms=600)
        # stored threshold and window deliberately stale: the tier, not the row, decides
        rules[days] = AlertRule.objects.create(name=f"fast burn {days}d", metric="slo_burn_rate",
                                               params={"slo": slo.name, "tier": "fast"}, threshold=99.0,
                                               window_minutes=5, severity="critical")
    return rules


@pytest.mark.parametrize("failing, fires", [
    (1, {7: False, 30: False}),   # 2% bad = burn 2×: below 3.36× (7 d) and 14.4× (30 d)
    (2, {7: True, 30: False}),    # 4% bad = 4×: pages a 7-day SLO, not a 30-day one
    (8, {7: True, 30: True}),     # 16% bad = 16×: pages both
])
def test_a_fast_burn_pages_by_the_slos_own_period(catalog, t0, two_slos, failing, fires):
    _traffic(t0, minutes=60, per_minute=50, failing=failing)
    now = t0 + timedelta(minutes=60)
    for days, rule in two_slos.items():
        evaluation = alert_rule_evaluate(rule=rule, now=now)
        rule.refresh_from_db()
        assert (evaluation.state == "firing") is fires[days], (days, evaluation)
        assert evaluation.value == pytest.approx(failing / 50 / 0.01)
        # the row follows the period's tier, and the evidence says which
        assert (rule.threshold, rule.window_minutes) == ({7: 3.36, 30: 14.4}[days], 60)
        assert rule.last_evidence["tier"]["factor"] == rule.threshold
        assert rule.last_evidence["short_window"]["window_minutes"] == 5


def test_the_slo_page_and_api_show_each_slos_tiers(catalog, t0, two_slos, client, users):
    _traffic(t0, minutes=10, per_minute=20, failing=0)
    status = slo_status(slo=SLO.objects.get(name="avail-7d"), now=t0 + timedelta(minutes=10))
    assert [(t["tier"], t["factor"], t["long_minutes"]) for t in status["burn_tiers"]] == [
        ("fast", 3.36, 60), ("slow", 1.4, 360), ("leak", 1.0, 1008)]
    assert status["burn_tiers"][2]["adjusted"] and not status["burn_tiers"][0]["burning"]
    client.force_login(users["viewer"])
    html = client.get("/portal/monitoring/slos/").content.decode()
    assert 'data-testid="burn-tiers"' in html and "3.36×" in html and "14.4×" in html and "1008 min / 84 min" in html
    api = client.get("/api/v1/monitoring/slos/status").json()
    tiers = {s["slo"]: s["burn_tiers"] for s in (api if isinstance(api, list) else api["results"])}
    assert [t["factor"] for t in tiers["avail-30d"]] == [14.4, 6.0, 1.0]


def test_a_tier_must_be_known_and_belong_to_a_burn_rate_rule(two_slos, users):
    rule = two_slos[7]
    with pytest.raises(ValidationError, match="tier"):
        alert_rule_update(rule=rule, actor=users["operator"], params={"slo": "avail-7d", "tier": "medium"})
    with pytest.raises(ValidationError, match="tier"):
        alert_rule_update(rule=rule, actor=users["operator"], metric="error_rate", params={"tier": "fast"})
    assert [t.tier for t in slo_burn_tiers(slo=SLO.objects.get(name="avail-7d"))] == ["fast", "slow", "leak"]
