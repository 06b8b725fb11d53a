"""Portal pages of releases with real records: the gate's evidence, a rollout's steps with the
numbers and who decided, an experiment's results with its charts' data, and the forms' refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from recommender.models import ModelVersion
from recommender.tests.factories_training import VersionFactory
from releases import services
from releases.models import PromotionRequest, ReleaseGateCheck
from releases.tests.factories import approved_promotion, in_production
from releases.tests.helpers import served

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(users):
    return in_production(VersionFactory(status=ModelVersion.Status.APPROVED), actor=users["operator"])


def test_promotion_page_shows_each_check_with_its_evidence_and_refuses_the_requesters_own_approval(client, users,
                                                                                                   world):
    promotion = services.promotion_request_create(version=VersionFactory(), actor=users["data_scientist"],
                                                  reason="better NDCG")
    ReleaseGateCheck.objects.create(
        promotion=promotion, attempt=1, name="offline_metrics", outcome="passed", summary="6 metrics within tolerance",
        evidence={"metrics": [{"metric": "ndcg_at_20", "candidate": 0.31, "production": 0.29, "better": "higher",
                               "tolerance": 0.01, "result": "passed"}]})
    from portal.services import review_request_create

    review = review_request_create(kind="model_promotion", target=promotion, title="Promote",
                                   requester=users["data_scientist"])
    PromotionRequest.objects.filter(pk=promotion.pk).update(status="awaiting_review", gate_attempt=1, review=review)
    client.force_login(users["admin"])  # an admin holds every role, the data scientist's included
    page = client.get(f"/portal/releases/promotions/{promotion.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "ndcg_at_20" in html and "0.3100" in html and "6 metrics within tolerance" in html
    assert 'data-testid="decide"' in html  # the admin did not request it: may decide
    client.force_login(users["data_scientist"])  # the requester holds no reviewer's role: refused, nothing changes
    response = client.post(f"/portal/releases/promotions/{promotion.pk}/", {"action": "approve"}, follow=True)
    assert response.status_code == 200 and "needs the role: reviewer or admin" in response.content.decode()
    assert PromotionRequest.objects.get(pk=promotion.pk).status == "awaiting_review"


def test_rollout_page_shows_steps_numbers_and_who_decided(client, users, world):
    promotion = approved_promotion(VersionFactory(), baseline=world, status=PromotionRequest.Status.APPROVED,
                                   canary_steps=[5, 25, 100], canary_interval_seconds=3600)
    t0 = timezone.now() - timedelta(hours=5)
    rollout = services.rollout_start(promotion=promotion, actor=users["operator"], now=t0)
    served(route="production", version_id=world.pk, lists=2000, successes=600, start=t0 + timedelta(minutes=1),
           spacing_seconds=1)
    served(route="canary", version_id=promotion.version_id, lists=400, successes=20, start=t0 + timedelta(minutes=1),
           spacing_seconds=1)
    services.rollout_evaluate(rollout=rollout, expected_revision=1, now=t0 + timedelta(hours=2))
    client.force_login(users["viewer"])
    html = client.get(f"/portal/releases/rollouts/{rollout.pk}/").content.decode()
    assert 'data-status="rolled_back">Rolled back</span>' in html  # the state's label, not its machine name
    assert "system:recommender.releases.rollout_evaluate" in html
    assert "canary worse on online quality" in html and "20/400" in html and "operator_user" in html
    assert "design effect 1.00" in html  # one list per viewer in this test: the binomial variance
    assert "unfold/js/chart/chart.js" in html and "cdn" not in html.lower()


def test_experiment_page_shows_the_decision_and_the_chart_series(client, users, world):
    a, b = approved_promotion(VersionFactory()).version, approved_promotion(VersionFactory()).version
    experiment = services.experiment_create(
        name="page-test", actor=users["operator"],
        arms=[{"name": "control", "version": a.pk, "allocation": 50, "is_control": True},
              {"name": "svd", "version": b.pk, "allocation": 50}])
    t0 = timezone.now() - timedelta(hours=6)
    services.experiment_start(experiment=experiment, actor=users["operator"], now=t0)
    served(route="arm:control", version_id=a.pk, lists=1500, successes=300, start=t0 + timedelta(minutes=1),
           spacing_seconds=2)
    served(route="arm:svd", version_id=b.pk, lists=1500, successes=420, start=t0 + timedelta(minutes=1),
           spacing_seconds=2)
    experiment.refresh_from_db()
    services.experiment_analyze(experiment=experiment, now=t0 + timedelta(hours=3))
    client.force_login(users["viewer"])
    html = client.get(f"/portal/releases/experiments/{experiment.pk}/").content.decode()
    assert "ship:svd" in html and "Sample-ratio check" in html and 'id="experiment-chart"' in html
    assert "Unit of analysis: the viewer" in html and "design effect 1.00" in html  # one list per viewer here
    plan = experiment.snapshots.get().sample_size
    assert f"{plan['viewers_per_arm']} viewers per arm" in html and f"1500 of {plan['viewers_per_arm']} viewers" in html
    assert "power now" in html.lower() and plan["design_effect_source"] == "measured"
    assert client.get("/portal/releases/experiments/?baseline=0.1&mde=0.02").content.decode().count("3841") == 1
    viewers = client.get("/portal/releases/experiments/?baseline=0.1&mde=0.02&lists_per_viewer=8&design_effect=3")
    assert "<strong>1441</strong> viewers per arm" in viewers.content.decode()  # ⌈3841 × 3 / 8⌉
    prior = client.get("/portal/releases/experiments/?baseline=0.1&mde=0.02&lists_per_viewer=8").content.decode()
    assert "<strong>961</strong> viewers per arm" in prior and "configured prior" in prior  # ⌈3841 × 2 / 8⌉
    bad = client.get("/portal/releases/experiments/?baseline=0.1&mde=0.02&lists_per_viewer=0").content.decode()
    assert "lists per viewer must be a positive number" in bad


def test_forms_report_what_was_wrong(client, users, world):
    client.force_login(users["data_scientist"])
    response = client.post("/portal/releases/", {"action": "request", "version": VersionFactory().pk,
                                                 "reason": "x", "canary_steps": "5, 50"}, follow=True)
    assert "ending at 100" in response.content.decode()
    client.force_login(users["operator"])
    response = client.post("/portal/releases/", {"action": "rollback_production", "reason": "x"}, follow=True)
    assert "no previous production version" in response.content.decode()
