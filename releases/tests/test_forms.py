"""The releases' portal forms: a refused form comes back (400) with everything typed, the error
beside its field and a summary at the top, and nothing stored; the API refuses the same value with
a 400 naming the same field (one rule, in the service)."""

from __future__ import annotations

import pytest

from portal.form_testing import read_form, signed_in
from recommender.models import ModelVersion
from recommender.tests.factories_training import VersionFactory
from releases.models import Experiment, PromotionRequest
from releases.tests.factories import in_production

pytestmark = pytest.mark.django_db


@pytest.fixture
def candidate(users):
    in_production(VersionFactory(status=ModelVersion.Status.APPROVED), actor=users["operator"])
    return VersionFactory()


@pytest.mark.parametrize("overrides, field, words, api", [
    ({"canary_interval_seconds": "-5"}, "canary_interval_seconds",
     "canary_interval_seconds: the seconds between steps must be from 10 to 604800 (a week), got -5",
     {"canary_interval_seconds": -5}),
    ({"canary_interval_seconds": "0"}, "canary_interval_seconds", "got 0", {"canary_interval_seconds": 0}),
    ({"canary_steps": "5, 50"}, "canary_steps", "canary_steps: at least two percents in 1–100 ending at 100",
     {"canary_steps": [5, 50]}),
    ({"canary_steps": "50, 25, 100"}, "canary_steps", "canary_steps: the canary steps must increase",
     {"canary_steps": [50, 25, 100]}),
    ({"reason": "  "}, "reason", "a reason for the promotion is required", {"reason": "  "}),
])
def test_a_refused_promotion_request_keeps_what_was_typed(users, candidate, client_for, overrides, field, words,
                                                          api):
    data = {"action": "request", "version": str(candidate.pk), "reason": "NDCG up",
            "canary_steps": "5, 25, 100", "canary_interval_seconds": "600", **overrides}
    before = PromotionRequest.objects.count()  # production's own
    response = signed_in(users["data_scientist"]).post("/portal/releases/", data)

    assert response.status_code == 400
    form = read_form(response.content.decode(), "request-promotion")
    assert words in form.error(field) and words in form.summary
    for name in ("version", "reason", "canary_steps", "canary_interval_seconds"):
        assert form.value(name) == data[name], name
    assert PromotionRequest.objects.count() == before

    body = {"version": candidate.pk, "reason": "NDCG up", **api}
    answer = client_for("data_scientist").post("/api/v1/releases/promotions/new", body, format="json")
    assert answer.status_code == 400 and words in answer.json()["error"]
    assert PromotionRequest.objects.count() == before


def test_seconds_between_steps_that_are_not_a_number_are_named(users, candidate):
    response = signed_in(users["data_scientist"]).post("/portal/releases/", {
        "action": "request", "version": str(candidate.pk), "reason": "x", "canary_interval_seconds": "ten"})
    form = read_form(response.content.decode(), "request-promotion")
    assert response.status_code == 400 and "whole number" in form.error("canary_interval_seconds")
    assert form.value("canary_interval_seconds") == "ten"
    assert not PromotionRequest.objects.filter(version=candidate).exists()


def test_a_version_not_listed_is_refused_beside_the_version(users, candidate):
    archived = VersionFactory(status=ModelVersion.Status.ARCHIVED)
    response = signed_in(users["data_scientist"]).post("/portal/releases/", {
        "action": "request", "version": str(archived.pk), "reason": "x"})
    form = read_form(response.content.decode(), "request-promotion")
    assert response.status_code == 400 and f"#{archived.pk} is not one of those listed" in form.error("version")
    assert not PromotionRequest.objects.filter(version=archived).exists()


def test_a_good_promotion_request_goes_through(users, candidate):
    response = signed_in(users["data_scientist"]).post("/portal/releases/", {
        "action": "request", "version": str(candidate.pk), "reason": "NDCG up", "canary_steps": "5, 100",
        "canary_interval_seconds": "60"})
    promotion = PromotionRequest.objects.get(version=candidate)
    assert response.status_code == 302 and promotion.canary_steps == [5, 100]
    assert promotion.canary_interval_seconds == 60


def test_a_rollback_without_a_reason_is_refused_beside_the_reason(users, candidate):
    response = signed_in(users["operator"]).post("/portal/releases/", {"action": "rollback_production", "reason": ""})
    form = read_form(response.content.decode(), "rollback-production")
    assert response.status_code == 400 and "reason is required" in form.error("reason")


# --- a canary's operator controls --------------------------------------------------------------------------


@pytest.fixture
def rollout(users, candidate):
    from releases import services
    from releases.tests.factories import approved_promotion

    production = ModelVersion.objects.get(aliases__name="production")
    promotion = approved_promotion(candidate, baseline=production, status=PromotionRequest.Status.APPROVED,
                                   canary_steps=[5, 25, 100], canary_interval_seconds=3600)
    return services.rollout_start(promotion=promotion, actor=users["operator"])


@pytest.mark.parametrize("action", ["pause", "advance", "rollback"])
def test_a_rollout_action_without_a_reason_is_refused_beside_the_reason(users, rollout, action):
    response = signed_in(users["operator"]).post(f"/portal/releases/rollouts/{rollout.pk}/",
                                               {"action": action, "reason": "  "})
    form = read_form(response.content.decode(), "operate")
    assert response.status_code == 400
    assert "a reason is required" in form.error("reason") and "a reason is required" in form.summary
    rollout.refresh_from_db()
    assert rollout.state == "running" and rollout.applied_percent == 5 and rollout.step_records.count() == 1


def test_a_rollout_reason_too_long_is_refused_and_kept(users, rollout):
    from releases.services._common import REASON_MAX

    reason = "x" * (REASON_MAX + 1)
    response = signed_in(users["operator"]).post(f"/portal/releases/rollouts/{rollout.pk}/",
                                               {"action": "pause", "reason": reason})
    form = read_form(response.content.decode(), "operate")
    assert response.status_code == 400 and f"at most {REASON_MAX} characters" in form.error("reason")
    assert form.value("reason") == reason
    rollout.refresh_from_db()
    assert rollout.state == "running"


def test_a_rollout_paused_with_a_reason_says_so(users, rollout):
    response = signed_in(users["operator"]).post(f"/portal/releases/rollouts/{rollout.pk}/",
                                               {"action": "pause", "reason": "holiday traffic"}, follow=True)
    html = response.content.decode()
    assert response.status_code == 200 and f"Rollout #{rollout.pk}: paused." in html
    assert 'data-status="paused">Paused</span>' in html and "holiday traffic" in html
    rollout.refresh_from_db()
    assert rollout.state == "paused"


def test_a_viewer_cannot_operate_a_rollout(users, rollout):
    response = signed_in(users["viewer"]).post(f"/portal/releases/rollouts/{rollout.pk}/",
                                             {"action": "rollback", "reason": "no"}, follow=True)
    assert response.status_code == 200 and "needs the role" in response.content.decode()
    rollout.refresh_from_db()
    assert rollout.state == "running"


# --- experiments -------------------------------------------------------------------------------------------


def _experiment(version, **overrides):
    return {"name": "ab", "hypothesis": "better", "control": "0", "mde": "0.02", "alpha": "0.05",
            "arm0_name": "control", "arm0_version": str(version.pk), "arm0_allocation": "50",
            "arm1_name": "treatment", "arm1_version": str(version.pk), "arm1_allocation": "50",
            "arm2_name": "", "arm2_version": str(version.pk), "arm2_allocation": "",
            "arm3_name": "", "arm3_version": str(version.pk), "arm3_allocation": "", **overrides}


@pytest.mark.parametrize("overrides, field, words, api", [
    ({"alpha": "0.7"}, "alpha", "alpha must be in (0, 0.5), got 0.7", {"alpha": 0.7}),
    ({"mde": "-0.1"}, "mde", "minimum_detectable_effect must be in (0, 1), got -0.1",
     {"minimum_detectable_effect": -0.1}),
    ({"arm1_allocation": "0"}, "arm1_allocation", "arm 'treatment': allocation 0 is outside 1–100",
     {"arms": [{"name": "control", "allocation": 50, "is_control": True}, {"name": "treatment", "allocation": 0}]}),
    ({"arm1_name": "Not a slug!"}, "arm1_name", "must be a slug",
     {"arms": [{"name": "control", "allocation": 50, "is_control": True}, {"name": "Not a slug!", "allocation": 50}]}),
    ({"name": ""}, "name", "an experiment needs a name", {"name": " "}),
])
def test_a_refused_experiment_keeps_what_was_typed(users, client_for, overrides, field, words, api):
    production = in_production(VersionFactory(status=ModelVersion.Status.APPROVED), actor=users["operator"])
    data = _experiment(production, **overrides)
    response = signed_in(users["operator"]).post("/portal/releases/experiments/", data)

    assert response.status_code == 400
    form = read_form(response.content.decode(), "create-experiment")
    assert words in form.error(field) and words in form.summary
    for name in ("name", "hypothesis", "mde", "alpha", "arm0_name", "arm1_name", "arm0_allocation", "arm1_allocation"):
        assert form.value(name) == data[name], name
    assert form.value("control") == "0" and form.value("arm1_version") == str(production.pk)
    assert not Experiment.objects.exists()

    body = {"name": "ab", "arms": [{"name": "control", "allocation": 50, "is_control": True},
                                   {"name": "treatment", "allocation": 50}]}
    body.update(api)
    for arm in body["arms"]:
        arm["version"] = production.pk
    answer = client_for("operator").post("/api/v1/releases/experiments/new", body, format="json")
    assert answer.status_code == 400 and words in answer.json()["error"]
    assert not Experiment.objects.exists()


def test_an_experiment_that_passes_is_created(users):
    production = in_production(VersionFactory(status=ModelVersion.Status.APPROVED), actor=users["operator"])
    response = signed_in(users["operator"]).post("/portal/releases/experiments/", _experiment(production))
    assert response.status_code == 302 and Experiment.objects.get().arms.count() == 2


# --- shadow ------------------------------------------------------------------------------------------------


def test_a_shadow_without_a_reason_is_refused_beside_the_reason(users, candidate, client_for):
    response = signed_in(users["operator"]).post("/portal/releases/shadow/", {
        "action": "start", "version": str(candidate.pk), "reason": ""})
    form = read_form(response.content.decode(), "shadow-start")
    assert response.status_code == 400 and "a reason is required" in form.error("reason")
    assert form.value("version") == str(candidate.pk)


def test_the_sample_size_calculator_keeps_its_values_and_names_a_bad_one(users):
    html = signed_in(users["viewer"]).get(
        "/portal/releases/experiments/?baseline=0.1&mde=0.02&lists_per_viewer=0&alpha=0.05").content.decode()
    form = read_form(html, "sample-size")
    assert "lists per viewer must be a positive number" in form.summary
    assert form.value("baseline") == "0.1" and form.value("lists_per_viewer") == "0"

    html = signed_in(users["viewer"]).get("/portal/releases/experiments/?baseline=abc&mde=0.02").content.decode()
    form = read_form(html, "sample-size")
    assert "Enter a number" in form.error("baseline") and form.value("baseline") == "abc"


def test_stopping_an_experiment_without_a_reason_is_refused_beside_the_reason(users, client_for):
    from releases import services

    production = in_production(VersionFactory(status=ModelVersion.Status.APPROVED), actor=users["operator"])
    experiment = services.experiment_create(name="ab", actor=users["operator"], arms=[
        {"name": "control", "version": production.pk, "allocation": 50, "is_control": True},
        {"name": "treatment", "version": production.pk, "allocation": 50}])
    services.experiment_start(experiment=experiment, actor=users["operator"])
    response = signed_in(users["operator"]).post(f"/portal/releases/experiments/{experiment.pk}/",
                                               {"action": "stop", "reason": "  "})
    form = read_form(response.content.decode(), "operate")
    assert response.status_code == 400 and "a reason is required" in form.error("reason")
    experiment.refresh_from_db()
    assert experiment.status == "running"

    answer = client_for("operator").post(f"/api/v1/releases/experiments/{experiment.pk}/stop", {"reason": " "},
                                         format="json")
    assert answer.status_code == 400 and "a reason is required" in answer.json()["error"]
    experiment.refresh_from_db()
    assert experiment.status == "running"
