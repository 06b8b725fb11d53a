"""The everyday path through the portal alone, in a real browser, under a compressed clock.

A data scientist makes a snapshot and trains a new algorithm from the portal's forms, then asks for
its promotion; the release gate (offline metrics on one evaluation set, the real fairness and
security audits of the candidate's artifact, the artifact's hash) passes on its own; a reviewer
approves from the review inbox; and nobody else acts: beat's tick and the evaluate task take the
canary through every step to production with the world simulator's traffic. No waiver, no
retraining of the old configuration, no manual advance.

Celery runs eagerly here (every queued task runs in the process that queued it, the live server's
thread for the portal's clicks): the worker's code, in this process, so the simulated clock reaches
it. Beat is the loop at the end, one tick per ten simulated minutes. The demo's canary knobs of
``make run`` are used (Makefile: a check a minute, 50 lists at least per step, a harm of 0.12, a
2-minute success window).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from portal.models import ActivityLogEntry
from recommender.models import ModelVersion, TrainingRun
from releases import clock, integrations
from releases.models import PromotionRequest, ReleaseGateCheck, Rollout
from releases.services.rollouts import SYSTEM as ROLLOUT_SYSTEM

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.django_db(transaction=True)]

DEMO_CANARY = {"CANARY_INTERVAL_SECONDS": 60, "CANARY_MIN_TRIALS": 50, "CANARY_MIN_DETECTABLE_DEGRADATION": 0.12,
               "CANARY_QUALITY_WINDOW_MINUTES": 2}


def _switch_user(page, browser_login, user):
    page.context.clear_cookies()
    return browser_login(user)


def _sidebar(page, group: str, name: str) -> None:
    """Follow the sidebar link ``name`` (opening its group first when it is folded)."""
    link = page.get_by_role("link", name=re.compile(rf"(^|\s){re.escape(name)}( \d+%)?$")).first
    if not link.is_visible():
        page.get_by_text(group).first.click()
    link.click()
    page.wait_for_load_state("load")


def test_a_new_algorithm_reaches_production_by_the_portal_alone(page, browser_login, users, settings, monkeypatch):
    from portal.celery import app
    from releases import tasks
    from releases.tests.simulation import SVD_PARAMS, ReleaseSimulation

    settings.RECOMMENDER = {**settings.RECOMMENDER, "RELEASES": {
        **(settings.RECOMMENDER.get("RELEASES") or {}), **DEMO_CANARY}}
    monkeypatch.setitem(app.conf, "task_always_eager", True)

    # The platform's recent history, ending now: the simulator's viewers, answered by its popularity
    # server; production is a baseline model put there by the bootstrap (nothing was in production).
    # Five days, as accounts younger than three count as new to the security audit (a world that is
    # younger than that is all new accounts).
    now = datetime.now(tz=UTC).replace(second=0, microsecond=0)
    sim = ReleaseSimulation.create(viewers=1500, movies=200, seed=11, visits_per_viewer_per_day=6,
                                   start=now - timedelta(days=5))
    sim.backfill(days=5)
    production = sim.train("baselineonly", seed=0)
    sim.bootstrap_production(production)
    sim.serve(hours=0.5)  # Usher answers for a while before anyone acts

    # A data scientist makes a snapshot of everything so far and trains SVD on it, from the forms.
    _switch_user(page, browser_login, users["data_scientist"])
    page.goto("/portal/training/snapshots/")
    form = page.locator('[data-testid="snapshot-form"]')
    form.locator("input[name=name]").fill("everything so far")
    form.get_by_role("button", name="Take snapshot").click()
    page.wait_for_load_state("load")
    page.goto("/portal/training/runs/")
    form = page.locator('[data-testid="train-form"]')
    snapshot_option = form.locator("select[name=snapshot] option").filter(has_text="everything so far").first
    form.locator("select[name=snapshot]").select_option(snapshot_option.get_attribute("value"))
    form.locator("input[name=algorithm][value=svd]").check()
    form.locator("textarea[name=hyperparameters]").fill(", ".join(f"{k}={v}" for k, v in SVD_PARAMS.items()))
    form.get_by_role("button", name="Queue runs").click()
    page.wait_for_load_state("load")
    run = TrainingRun.objects.get(algorithm="svd", snapshot__name="everything so far")
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    candidate = ModelVersion.objects.get(training_run=run)

    # ... and asks for its promotion from the Releases page with the default canary plan.
    page.goto("/portal/releases/")
    form = page.locator('[data-testid="request-promotion"]')
    form.locator("select[name=version]").select_option(str(candidate.pk))
    form.locator("textarea[name=reason]").fill("SVD learns the viewers' taste; the baseline only biases")
    form.get_by_role("button", name="Request promotion").click()
    page.wait_for_selector('[data-testid="promotion-status"]')
    promotion = PromotionRequest.objects.get(version=candidate)
    # The gate ran on its own (the worker's task) and passed every check: nothing waived.
    checks = {c.name: c for c in ReleaseGateCheck.objects.filter(promotion=promotion, attempt=promotion.gate_attempt)}
    assert {name: c.outcome for name, c in checks.items()} == {
        name: "passed" for name in ReleaseGateCheck.Name.values}, [c.summary for c in checks.values()]
    page.reload()
    assert page.locator('[data-testid="promotion-status"]').inner_text().strip() == "Awaiting review"

    # A reviewer finds it in the inbox and approves it.
    _switch_user(page, browser_login, users["reviewer"])
    page.goto("/portal/inbox/")
    page.locator('[data-testid="inbox-pending"]').get_by_role("link", name=re.compile("Promote")).first.click()
    page.locator('[data-testid="decide-form"] textarea[name=comment]').fill("better offline, gate clean")
    page.locator('[data-testid="decide-form"] button[value=approve]').click()
    page.wait_for_load_state("load")
    rollout = Rollout.objects.get(promotion=promotion)
    assert integrations.deployment_state()["canary_version"] == candidate.pk

    # Nobody else acts: the viewers keep coming, beat ticks every ten simulated minutes.
    trace = []
    for _ in range(200):
        sim.serve(hours=10 / 60, chunk_minutes=10)
        with clock.simulated(lambda: sim.now):
            tasks.rollouts_tick()
        rollout.refresh_from_db()
        last = rollout.step_records.order_by("-revision").first()
        trace.append((f"{sim.now:%H:%M}", last.outcome, last.to_percent, last.reason[:120]))
        if rollout.state != Rollout.State.RUNNING:
            break
    assert rollout.state == Rollout.State.COMPLETED, trace[-8:]
    steps = list(rollout.step_records.order_by("revision"))
    assert [s.to_percent for s in steps if s.outcome in ("started", "advanced", "completed")] == [5, 25, 50, 100]
    assert {s.decided_label for s in steps} == {f"system:{ROLLOUT_SYSTEM}"}, trace
    assert integrations.deployment_state()["production_version"] == candidate.pk
    # While it waited, each check said what it still needed and how long that takes at the current rate.
    holds = [reason for _, outcome, _, reason in trace if outcome == "held"]
    assert holds and all(re.search(r"needs \d+ more|no traffic", r) for r in holds), holds[:3]
    assert any("minutes at the current rate" in r for r in holds), holds[:3]
    print(f"completed after {len(trace)} ticks ({len(holds)} holds): " + " → ".join(
        f"{t[0]} {t[1]} {t[2]}%" for t in trace if t[1] != "held"))

    # Who acted: the data scientist, the reviewer and the system; no operator, no admin, no waiver.
    people = set(ActivityLogEntry.objects.exclude(actor=None).values_list("actor__username", flat=True))
    assert people <= {users["data_scientist"].username, users["reviewer"].username}, people
    actions = set(ActivityLogEntry.objects.values_list("action", flat=True))
    assert not {a for a in actions if "waiv" in a}, actions  # audit_finding.waiver_requested / .waived
    # No retraining of the old configuration: the one training run after production's is the new SVD.
    assert list(TrainingRun.objects.exclude(pk=production.training_run_id).values_list("algorithm", flat=True)) \
        == ["svd"]

    # Anyone reads the outcome on the rollout page.
    _switch_user(page, browser_login, users["viewer"])
    page.goto(f"/portal/releases/rollouts/{rollout.pk}/")
    assert "Completed" in page.locator('[data-testid="rollout-state"]').inner_text()
    assert page.external_requests == []
