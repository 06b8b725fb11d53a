"""The release path through the portal in a real browser (Playwright + Debian's chromium against
the live server): a data scientist requests a promotion, the real release gate records its checks,
the requester has no way to approve it, a reviewer approves it and the canary starts, and an
operator pauses it with a reason — every step in the database and the activity log."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from audits.models import AuditRun
from portal.models import ActivityLogEntry
from recommender.models import ModelVersion
from releases import integrations, services
from releases.models import PromotionRequest, Rollout
from releases.tests.factories import in_production, version_with_artifact

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180), pytest.mark.django_db(transaction=True)]

METRICS = {"ndcg_at_20": 0.30, "precision_at_20": 0.10, "recall_at_20": 0.20, "hit_rate_at_20": 0.5,
           "rmse": 0.93, "mae": 0.73}


def _switch_user(page, browser_login, user):
    page.context.clear_cookies()
    return browser_login(user)


def _open_releases(page) -> None:
    """Through the sidebar: the "Releases and experiments" group, then "Releases"."""
    # The link's accessible name carries its icon's ligature and, with a canary running, its share
    # as a badge (e.g. "rocket_launch Releases 5%").
    link = page.get_by_role("link", name=re.compile(r"(^|\s)Releases( \d+%)?$")).first
    if not link.is_visible():  # the group remembers whether it was open
        page.get_by_text("Releases and experiments").first.click()
    link.click()
    page.wait_for_selector('h2:has-text("Promotion requests")')


def test_a_promotion_goes_through_the_portal_from_request_to_a_running_then_paused_canary(
        page, browser_login, users):
    production = version_with_artifact(metrics=METRICS, status=ModelVersion.Status.APPROVED)
    in_production(production, actor=users["operator"])
    candidate = version_with_artifact(metrics={**METRICS, "ndcg_at_20": 0.32}, seed=1)
    # Audits that passed earlier with the configured settings, of this artifact (the audits app's own
    # tests run them for real); the gate reads them.
    from audits.conf import configured_settings

    for kind in ("fairness", "security"):
        AuditRun.objects.create(kind=kind, target="model_version", model_version=candidate, trigger="manual",
                                status="succeeded", passed=True, requested_label="test", finished_at=timezone.now(),
                                params={"overrides": {}, "config": configured_settings()},
                                artifact_sha256=candidate.artifact_sha256)

    # A data scientist asks for the promotion from the Releases page.
    _switch_user(page, browser_login, users["data_scientist"])
    _open_releases(page)
    form = page.locator('[data-testid="request-promotion"]')
    form.locator("select[name=version]").select_option(str(candidate.pk))
    form.locator("textarea[name=reason]").fill("NDCG@20 0.32 against 0.30")
    form.locator("input[name=canary_steps]").fill("5, 50, 100")
    form.get_by_role("button", name="Request promotion").click()
    page.wait_for_selector('[data-testid="promotion-status"]')
    promotion = PromotionRequest.objects.get(version=candidate)
    assert page.locator('[data-testid="promotion-status"]').inner_text().strip() == "Gate queued"

    # The release gate runs (here in the test's thread, as the worker would) and records its checks.
    services.release_gate_run(promotion=promotion)
    page.reload()
    assert page.locator('[data-testid="promotion-status"]').inner_text().strip() == "Awaiting review"
    checks = page.locator('[data-testid="gate-checks"]').inner_text()
    for name in ("offline metrics vs production", "fairness", "security", "artifact integrity"):
        assert name in checks, checks
    assert checks.count("Passed") >= 4 and "Failed" not in checks  # each outcome by its label
    assert "0.3200" in checks and "0.3000" in checks  # the offline evidence, candidate and production
    # The requester (a data scientist, not a reviewer) has no decision form.
    assert page.locator('[data-testid="decide"]').count() == 0

    # A reviewer approves it with a comment: the canary starts at its first step.
    _switch_user(page, browser_login, users["reviewer"])
    page.goto(f"/portal/releases/promotions/{promotion.pk}/")
    page.locator('[data-testid="decide"] textarea[name=comment]').fill("gate evidence is convincing")
    page.get_by_role("button", name="Approve — start the canary").click()
    page.wait_for_selector("text=gate evidence is convincing")
    assert page.locator('[data-testid="promotion-status"]').inner_text().strip() == "Canary running"
    rollout = Rollout.objects.get(promotion=promotion)
    state = integrations.deployment_state()
    assert state["canary_version"] == candidate.pk and state["canary_percent"] == 5

    # An operator finds the rollout from the Releases page and pauses it with a reason.
    _switch_user(page, browser_login, users["operator"])
    _open_releases(page)
    page.get_by_role("link", name=f"rollout #{rollout.pk}").click()
    page.locator('[data-testid="operate"] input[name=reason]').fill("holiday traffic, resume on Monday")
    page.get_by_role("button", name="Pause").click()
    page.wait_for_selector('[data-testid="rollout-state"]:has-text("paused")')
    steps = page.locator('[data-testid="steps"]').inner_text()
    # The approved promotion drove the canary's start (the rollout system); the operator paused it.
    assert "operator_user" in steps and "holiday traffic" in steps and "system:recommender.releases" in steps
    rollout.refresh_from_db()
    assert rollout.state == "paused" and integrations.deployment_state()["canary_percent"] == 5
    actions = set(ActivityLogEntry.objects.values_list("action", flat=True))
    assert {"release.promotion.requested", "release.promotion.approved", "release.rollout.started",
            "release.rollout.paused"} <= actions, actions
    assert page.external_requests == []


def test_the_experiment_page_draws_each_arm_over_time_and_states_the_decision(page, browser_login, users):
    from datetime import timedelta

    from recommender.tests.factories_training import VersionFactory
    from releases.tests.factories import approved_promotion
    from releases.tests.helpers import served

    control = approved_promotion(VersionFactory()).version
    treatment = approved_promotion(VersionFactory()).version
    experiment = services.experiment_create(
        name="svd-vs-popularity", actor=users["operator"],
        arms=[{"name": "control", "version": control.pk, "allocation": 50, "is_control": True},
              {"name": "svd", "version": treatment.pk, "allocation": 50}])
    t0 = timezone.now() - timedelta(hours=8)
    services.experiment_start(experiment=experiment, actor=users["operator"], now=t0)
    for hour in range(4):  # four hourly analyses, as beat would record them
        start = t0 + timedelta(hours=hour, minutes=1)
        served(route="arm:control", version_id=control.pk, lists=400, successes=80, start=start, spacing_seconds=5)
        served(route="arm:svd", version_id=treatment.pk, lists=400, successes=116, start=start, spacing_seconds=5)
        experiment.refresh_from_db()
        services.experiment_analyze(experiment=experiment, now=t0 + timedelta(hours=hour + 1, minutes=50))

    page = browser_login(users["viewer"])
    link = page.get_by_role("link", name=re.compile(r"(^|\s)Experiments$")).first
    if not link.is_visible():
        page.get_by_text("Releases and experiments").first.click()
    link.click()
    page.get_by_role("link", name="svd-vs-popularity").click()
    decision = page.locator('[data-testid="decision"]').inner_text()
    assert "Ship svd" in decision and "confidence sequence" in decision
    assert "Unit of analysis: the viewer" in page.locator('[data-testid="unit"]').inner_text()
    # The chart helper drew three charts with one line per arm and a point per analysis.
    charts = page.evaluate("""() => ['rate', 'trials', 'diff'].map(id => {
        const c = Chart.getChart(document.getElementById(id));
        return c ? {labels: c.data.labels.length, sets: c.data.datasets.map(d => d.label)} : null; })""")
    assert charts[0] == {"labels": 4, "sets": ["control", "svd"]}, charts
    assert charts[1]["sets"] == ["control", "svd"]
    assert charts[2]["sets"] == ["svd − control", "svd interval low", "svd interval high", "no difference"]
    assert page.external_requests == []
