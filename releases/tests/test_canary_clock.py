"""A canary that finishes by itself, with an honest clock: the evidence each step needs follows from
the smallest harm worth detecting, the time it takes from the measured traffic rate; under a
compressed clock with the world simulator's traffic, beat's tick and the evaluate task take a
healthy canary through every step to production and roll a harmful one back, nobody advancing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from recommender.models import ModelVersion
from recommender.tests.factories_training import VersionFactory
from releases import clock, integrations, selectors, services, stats
from releases.models import PromotionRequest, Rollout
from releases.services.rollouts import SYSTEM as ROLLOUT_SYSTEM
from releases.services.rollouts import rollout_measure
from releases.tests.factories import approved_promotion, in_production
from releases.tests.helpers import served


def test_the_plan_follows_from_the_harm_worth_detecting():
    # Fleiss for 0.30 → 0.22 at α 0.05 and power 0.8 is 471 lists per side; × design effect 2 = 942,
    plan = stats.canary_plan(steps=[5, 25, 50, 100], baseline=0.3, mde=0.08, design_effect=2.0, min_trials=50)
    assert plan.lists_independent == stats.sample_size_two_proportions(baseline=0.3, mde=-0.08) == 471
    assert plan.lists_total == 942
    # spread over 5/25/50 in proportion to the share (each step about as long), at least the floor each.
    assert plan.per_step == [max(50, -(-plan.lists_total * s // 80)) for s in (5, 25, 50)]
    assert sum(plan.per_step) >= plan.lists_total and plan.production_needed[-1] == plan.lists_total
    # A smaller harm needs more lists; a floor holds when the plan asks for few.
    assert stats.canary_plan(steps=[5, 25, 50, 100], baseline=0.3, mde=0.02).lists_total > 10 * plan.lists_independent
    assert stats.canary_plan(steps=[10, 100], baseline=0.3, mde=0.5, min_trials=200).per_step == [200]
    with pytest.raises(ValueError, match="minimum detectable degradation"):
        stats.canary_plan(steps=[5, 100], baseline=0.3, mde=0)


@pytest.mark.parametrize(("needed", "have", "pending", "rate", "expected"), [
    (300, 100, 50, 10.0, (200, 150 / 10 + 5)),  # 150 still to serve at 10/min, the last counts 5 min later
    (300, 100, 250, 10.0, (200, 5.0)),  # all served: only the window is left
    (300, 300, 0, 0.0, (0, 0.0)),  # enough
    (300, 100, 0, 0.0, (200, None)),  # no traffic: no estimate
])
def test_the_estimate_from_a_known_rate(needed, have, pending, rate, expected):
    assert stats.evidence_eta(needed=needed, have=have, pending=pending, lists_per_minute=rate,
                              window_minutes=5) == expected


@pytest.mark.django_db
def test_a_rollout_says_how_many_lists_it_needs_and_how_long_they_take_at_the_measured_rate(users, settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "RELEASES": {
        "CANARY_MIN_TRIALS": 100, "CANARY_MIN_DETECTABLE_DEGRADATION": 0.25, "CANARY_QUALITY_WINDOW_MINUTES": 5,
        "CANARY_RATE_WINDOW_MINUTES": 10}}
    production = in_production(VersionFactory(status=ModelVersion.Status.APPROVED), actor=users["operator"])
    candidate = VersionFactory()
    promotion = approved_promotion(candidate, status=PromotionRequest.Status.APPROVED, canary_steps=[5, 25, 50, 100],
                                   canary_interval_seconds=600)
    now = timezone.now().replace(microsecond=0)
    rollout = services.rollout_start(promotion=promotion, actor=None, system=ROLLOUT_SYSTEM,
                                     now=now - timedelta(minutes=30))
    # Given the last 10 minutes: 300 production lists (one every 2 s) and 60 canary lists (one every 10 s),
    served(route="production", version_id=production.pk, lists=300, successes=45,
           start=now - timedelta(minutes=10), spacing_seconds=2)
    served(route="canary", version_id=candidate.pk, lists=60, successes=10, start=now - timedelta(minutes=10),
           spacing_seconds=10)
    # when the rollout measures at `now`,
    evidence = rollout_measure(rollout=rollout, now=now)["evidence"]
    # then 36 lists/min in all and 6 on the canary; the 30 canary lists older than the 5-minute window
    # count, 30 more are in flight; the step needs the floor of 100: 70 more, of which 40 are still
    # to be served at 6/min, the last counted 5 min later: 40/6 + 5 = 11.7 minutes.
    assert evidence["lists_per_minute"] == 36.0 and evidence["canary_lists_per_minute"] == 6.0
    assert (evidence["canary_have"], evidence["canary_pending"], evidence["canary_needed"]) == (30, 30, 100)
    assert evidence["canary_more"] == 70 and evidence["production_more"] == 0
    assert evidence["minutes"] == pytest.approx(40 / 6 + 5, abs=0.05)
    assert evidence["plan"]["baseline_source"] == "measured" and evidence["plan"]["baseline"] == pytest.approx(0.3)
    assert evidence["message"].startswith("needs 70 more canary lists (30 of 100 at this step), about 12 minutes "
                                          "at the current rate (36.0 lists/min, 6.0 on the canary")
    # The check holds with that sentence; the page and the API show it with the check's time.
    rollout.next_check_at = now
    rollout.save(update_fields=["next_check_at"])
    step = services.rollout_evaluate(rollout=rollout, now=now)
    assert step.outcome == "held" and "about 12 minutes at the current rate" in step.reason
    rollout.refresh_from_db()
    shown = selectors.rollout_evidence(rollout=rollout)
    assert shown["current"] and shown["needs_more"] == 70 and shown["checked_at"] == now

    # Ten minutes without a single list later, it says so instead of guessing.
    later = now + timedelta(minutes=20)
    quiet = rollout_measure(rollout=rollout, now=later)["evidence"]
    assert quiet["minutes"] is None and "no traffic in the last 10 minutes" in quiet["message"]


@pytest.mark.django_db
def test_the_rollout_page_and_api_show_the_evidence_and_an_empty_chart_says_why(client, users, settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "RELEASES": {"CANARY_QUALITY_WINDOW_MINUTES": 7}}
    production = in_production(VersionFactory(status=ModelVersion.Status.APPROVED), actor=users["operator"])
    promotion = approved_promotion(VersionFactory(), baseline=production, status=PromotionRequest.Status.APPROVED,
                                   canary_steps=[5, 25, 50, 100], canary_interval_seconds=600)
    rollout = services.rollout_start(promotion=promotion, actor=None, system=ROLLOUT_SYSTEM)
    client.force_login(users["viewer"])
    page = client.get(f"/portal/releases/rollouts/{rollout.pk}/").content.decode()
    assert 'data-testid="quality-empty"' in page and "no data yet" in page and "7-minute success window" in page
    assert "has not been checked yet; its first check is due at" in page
    body = client.get(f"/api/v1/releases/rollouts/{rollout.pk}").json()
    assert body["evidence"]["current"] is False and "first check is due" in body["evidence"]["message"]


# --- the whole path under a compressed clock, with the world simulator's traffic -----------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.django_db
def test_a_healthy_canary_completes_and_a_harmful_one_rolls_back_by_the_tasks_alone(settings, monkeypatch):
    from portal.celery import app
    from releases import tasks
    from releases.tests.simulation import SVD_PARAMS, ReleaseSimulation

    settings.AUDITS = {**(settings.AUDITS or {}), "TRUSTED_CLIENTS": ["simulation"]}
    # The production knobs but a harm of 0.1 (the plan stays small enough for a test's world) and the
    # monitoring's own 30-minute success window.
    settings.RECOMMENDER = {**settings.RECOMMENDER, "RELEASES": {
        "CANARY_MIN_DETECTABLE_DEGRADATION": 0.1, "CANARY_MIN_TRIALS": 50, "CANARY_MAX_HOLDS": 12}}
    monkeypatch.setitem(app.conf, "task_always_eager", True)  # beat's tick queues the task; it runs here
    sim = ReleaseSimulation.create(viewers=400, movies=200, seed=11, visits_per_viewer_per_day=24)
    sim.backfill(days=3)
    production = sim.train("svd", hyperparameters=SVD_PARAMS, seed=0)
    sim.bootstrap_production(production)
    healthy = sim.train("svd", hyperparameters=SVD_PARAMS, seed=1)  # production's configuration, another seed

    def run(version, *, hours: float) -> tuple[Rollout, list]:
        promotion = approved_promotion(version, status=PromotionRequest.Status.APPROVED, canary_steps=[5, 25, 50, 100],
                                       canary_interval_seconds=600)
        rollout = services.rollout_start(promotion=promotion, actor=None, system=ROLLOUT_SYSTEM, now=sim.now)
        trace = []
        end = sim.now + timedelta(hours=hours)
        while rollout.state == Rollout.State.RUNNING and sim.now < end:
            sim.serve(hours=10 / 60, chunk_minutes=10)
            with clock.simulated(lambda: sim.now + timedelta(seconds=1)):
                tasks.rollouts_tick()  # beat: queue the evaluate task of every due rollout
            rollout.refresh_from_db()
            last = rollout.step_records.order_by("-revision").first()
            trace.append((round((sim.now - rollout.created_at).total_seconds() / 3600, 2), last.outcome,
                          last.to_percent, last.reason[:160]))
        return rollout, trace

    # A healthy candidate goes 5 → 25 → 50 → production on its own:
    rollout, trace = run(healthy, hours=36)
    assert rollout.state == "completed", trace
    steps = list(rollout.step_records.order_by("revision"))
    assert [s.to_percent for s in steps if s.outcome in ("started", "advanced", "completed")] == [5, 25, 50, 100]
    assert {s.decided_label for s in steps} == {f"system:{ROLLOUT_SYSTEM}"}  # nobody advanced it
    assert integrations.deployment_state()["production_version"] == healthy.pk
    for s in steps:
        if s.outcome in ("advanced", "completed"):  # each step had the lists its plan asked for
            evidence = s.metrics["evidence"]
            assert evidence["needs_more"] == 0 and evidence["canary_have"] >= evidence["canary_needed"]

    # A harmful one (production's model with random item factors, offline metrics intact) is rolled back:
    broken = sim.broken_copy(healthy)
    rollout, trace = run(broken, hours=24)
    assert rollout.state == "rolled_back", trace
    last = rollout.step_records.order_by("-revision").first()
    # by the sequential test, or as a canary that kept looking worse than tolerated (the safe side)
    assert last.decided_label == f"system:{ROLLOUT_SYSTEM}"
    assert "canary worse on online quality" in last.reason or "not shown to be no worse" in last.reason
    assert last.metrics["canary"]["rate"] < last.metrics["production"]["rate"]
    assert integrations.deployment_state()["production_version"] == healthy.pk
    assert integrations.deployment_state()["canary_version"] is None
