"""Releases shown working in the simulated world (the catalog's world simulator, serving's runtime,
the real ingestion, training, audits and monitoring): an A/B test of SVD against popularity reaches
significance in SVD's favour, and a deliberately broken model's canary is rolled back on its own
with the decision and its numbers in the activity log. One world serves both (its history is the
expensive part)."""

from __future__ import annotations

import pytest

from portal.models import ActivityLogEntry
from recommender.models import PromotionRequest, Rollout
from recommender.releases import integrations
from recommender.releases.simulation import SVD_PARAMS, ReleaseSimulation, scenario_ab_test, scenario_canary
from recommender.releases.tests.factories import approved_promotion

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_svd_wins_its_ab_test_and_a_broken_canary_rolls_itself_back(settings):
    settings.AUDITS = {**(settings.AUDITS or {}), "TRUSTED_CLIENTS": ["simulation"]}
    settings.RECOMMENDER = {**settings.RECOMMENDER, "RELEASES": {"CANARY_MIN_TRIALS": 60, "CANARY_MAX_HOLDS": 20}}
    # ~45 ratings per viewer and ~150 per movie: enough for SVD to learn the world's tastes.
    sim = ReleaseSimulation.create(viewers=1000, movies=300, seed=5, visits_per_viewer_per_day=8)
    sim.backfill(days=6)
    popularity = sim.train("popularity")
    svd = sim.train("svd", hyperparameters=SVD_PARAMS)
    sim.bootstrap_production(popularity)
    # An arm serves viewers: SVD went through an approved promotion (gate passed, four eyes) first.
    approved_promotion(svd)

    # Given SVD and popularity, 50/50, analysed every simulated hour:
    ab = scenario_ab_test(sim, control=popularity, treatment=svd, hours=24, stop_when_significant=True)
    # then the always-valid test decides for SVD, with a confidence interval above zero and no SRM.
    trace = [(h["hour"], h["control"]["rate"], h["treatment"]["rate"]) for h in ab["hourly"][::4]]
    assert ab["decision"] == "ship:treatment", (ab["reason"], svd.metrics.get("ndcg_at_20"),
                                                popularity.metrics.get("ndcg_at_20"), trace)
    final = ab["final"]
    assert final["sequential"]["treatment"]["reject"] and final["sequential"]["treatment"]["difference"] > 0
    assert final["ztest"]["treatment"]["ci_low"] > 0 and not final["srm"]["flagged"]
    assert final["arms"]["treatment"]["rate"] > final["arms"]["control"]["rate"]

    # Given SVD in production and a broken copy of it (random item factors, offline metrics intact):
    from recommender.serving.services import deployment_update

    deployment_update(production=svd, actor=None, system="test", reason="SVD won its A/B test")
    sim.refresh()
    broken = sim.broken_copy(svd)
    result = scenario_canary(sim, candidate=broken, hours=16, steps=[50, 100], interval_hours=1.0,
                             waive_audit_findings=True)

    # then the gate let it through (its flaw is invisible offline), the requester could not approve it,
    assert result["gate_status"] == "awaiting_review" or result.get("rollout")
    # (a data scientist holds no reviewer's role: the role check refuses before four eyes would)
    assert result["self_approval"].startswith("refused: this needs the role: reviewer or admin")
    assert ActivityLogEntry.objects.filter(action="permission.refused", actor_label="sim_data_scientist").exists()
    # and its canary was rolled back by the step check, not by a person.
    rollout = Rollout.objects.get(pk=result["rollout"])
    assert rollout.state == "rolled_back", result["timeline"]
    last = rollout.step_records.order_by("-revision").first()
    assert last.outcome == "rolled_back" and last.decided_label == "system:recommender.releases.rollout_evaluate", \
        [(t["after_hours"], t["outcome"], t["canary"], t["production"], t["p_sequential"]) for t in result["timeline"]]
    assert "canary worse on online quality" in last.reason
    entry = ActivityLogEntry.objects.filter(action="release.rollout.rolled_back").order_by("-seq").first()
    numbers = entry.data["numbers"]
    assert numbers["always_valid_p"] <= 0.05 and numbers["canary"]["rate"] < numbers["production"]["rate"]
    assert numbers["canary"]["trials"] >= 60 and numbers["confidence_sequence"][1] < 0
    state = integrations.deployment_state()
    assert state["canary_version"] is None and state["canary_percent"] == 0 and state["production_version"] == svd.pk
    assert PromotionRequest.objects.get(pk=result["promotion"]).status == "rolled_back"
