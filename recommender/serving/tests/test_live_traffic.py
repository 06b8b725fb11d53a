"""One door to live traffic: every route that changes what viewers are served (the deployment API and
page, the admin, the registry's alias move, experiment arms, the canary share, system callers) admits
a version only with an approved promotion (release gate passed, a reviewer who is not the requester).
Shadow stays open to operators; the one thing an operator does alone is an emergency rollback to a
former production version. A refusal is a 409 naming what is missing and where to start it, changes
nothing, and is in the activity log with who tried."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.errors import Conflict, PermissionDenied
from portal.models import ActivityLogEntry
from recommender.models import Deployment, DeploymentChange, ModelAlias
from recommender.registry.services import model_alias_move
from recommender.serving.selectors import deployment_describe, deployment_get, deployment_unreviewed
from recommender.serving.services import deployment_rollback, deployment_update
from recommender.serving.tests.conftest import deploy, make_version
from releases.models import Experiment, PromotionRequest
from releases.tests.factories import approved_promotion

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(users):
    """Production serves an approved version; a candidate has no promotion."""
    production = make_version("prod", seed=1)
    deploy(production)
    candidate = make_version("cand", seed=2, status="candidate")
    return {"production": production, "candidate": candidate}


def _snapshot() -> tuple:
    """Everything a refused change must leave exactly as it was."""
    deployment = deployment_get()
    aliases = tuple(ModelAlias.objects.order_by("name").values_list("name", "version_id", "moved_at"))
    return (deployment_describe(deployment=deployment), aliases, DeploymentChange.objects.count(),
            Deployment.objects.get().revision if deployment else None)


def _refusal(actor) -> ActivityLogEntry:
    return ActivityLogEntry.objects.filter(action="deployment.refused", actor=actor).order_by("-seq").first()


def web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("payload", [
    {"canary": "CAND", "canary_percent": "100"},   # the attack in the issue
    {"canary": "CAND", "canary_percent": "5"},
    {"production": "CAND"},
    {"arms": [{"name": "treatment", "version": "CAND", "percent": "50"}]},
])
def test_an_operator_alone_cannot_put_a_candidate_on_live_traffic_through_the_api(client_for, users, live, payload):
    candidate = live["candidate"]
    payload = {"reason": "x", **{k: candidate.pk if v == "CAND" else v for k, v in payload.items()}}
    if "arms" in payload:
        payload["arms"] = [{**payload["arms"][0], "version": candidate.pk}]
    before = _snapshot()
    response = client_for("operator").post("/api/v1/deployments/default/change", payload, format="json")
    assert response.status_code == 409, response.content
    body = response.json()
    assert "approved promotion" in body["error"] and f"{candidate} has no promotion request" in body["error"]
    assert f"/portal/releases/?version={candidate.pk}#request-promotion" in body["error"]
    refused = body["detail"]["refused"][0]
    assert refused["version"] == candidate.pk
    assert refused["start"] == {"page": f"/portal/releases/?version={candidate.pk}#request-promotion",
                                "api": "POST /api/v1/releases/promotions/new"}
    assert _snapshot() == before  # nothing changed: deployment, aliases, history
    entry = _refusal(users["operator"])
    assert entry.actor_label == "operator_user" and entry.data["refused"][0]["version"] == candidate.pk


def test_an_open_promotion_is_named_with_its_page(client_for, users, live):
    from releases.services import promotion_request_create

    promotion = promotion_request_create(version=live["candidate"], actor=users["data_scientist"], reason="better")
    response = client_for("operator").post("/api/v1/deployments/default/change",
                                           {"reason": "x", "production": live["candidate"].pk}, format="json")
    assert response.status_code == 409
    assert f"promotion #{promotion.pk}" in response.json()["error"] and "still in the release gate" in response.json()["error"]
    assert f"/portal/releases/promotions/{promotion.pk}/" in response.json()["error"]


def test_approval_through_the_registry_status_or_by_the_requester_is_not_enough(users, live):
    candidate = live["candidate"]
    # The requester approving their own promotion (only a forged record could say so) does not count.
    forged = approved_promotion(candidate, requester=users["data_scientist"], reviewer=users["reviewer"])
    forged.review.decided_by = users["data_scientist"]
    forged.review.save()
    PromotionRequest.objects.filter(pk=forged.pk).update(decided_by=users["data_scientist"])
    with pytest.raises(Conflict, match="approved promotion"):
        deployment_update(actor=users["operator"], reason="x", production=candidate)
    # A gate that did not pass does not count either, whatever the review says.
    PromotionRequest.objects.filter(pk=forged.pk).update(decided_by=users["reviewer"], gate_passed=False)
    forged.review.decided_by = users["reviewer"]
    forged.review.save()
    with pytest.raises(Conflict):
        deployment_update(actor=users["operator"], reason="x", production=candidate)
    PromotionRequest.objects.filter(pk=forged.pk).update(gate_passed=True)
    deployment_update(actor=users["operator"], reason="approved", production=candidate)
    assert ModelAlias.objects.get(name="production").version == candidate


def test_the_portal_deployment_form_refuses_and_logs(users, live):
    before = _snapshot()
    page = web(users["operator"]).post("/portal/serving/deployments/", {
        "action": "change", "production": "keep", "canary": str(live["candidate"].pk), "shadow": "keep",
        "canary_percent": "100", "reason": "x"}, follow=True).content.decode()
    assert "approved promotion" in page and "request-promotion" in page
    assert _snapshot() == before
    assert _refusal(users["operator"]).data["refused"][0]["role"] == "canary"


def test_the_registry_alias_move_goes_through_the_door(client_for, users, live):
    candidate = live["candidate"]
    before = _snapshot()
    response = client_for("operator").post("/api/v1/aliases/production", {"version": candidate.pk, "reason": "go"},
                                           format="json")
    assert response.status_code == 409 and "approved promotion" in response.json()["error"]
    page = web(users["operator"]).post("/portal/registry/", {"alias": "production", "version": candidate.pk,
                                                              "reason": "go"}, follow=True).content.decode()
    assert "approved promotion" in page
    assert _snapshot() == before
    assert ActivityLogEntry.objects.filter(action="deployment.refused", actor=users["operator"]).count() == 2
    # Parking it as the canary at 0% reaches no viewer; raising the canary share is refused.
    parked = client_for("operator").post("/api/v1/aliases/canary", {"version": candidate.pk, "reason": "park"},
                                         format="json")
    assert parked.status_code == 200
    assert Deployment.objects.get().canary_percent == 0
    raised = client_for("operator").post("/api/v1/deployments/default/change", {"reason": "x", "canary_percent": "10"},
                                         format="json")
    assert raised.status_code == 409 and "canary:" in raised.json()["error"]
    assert Deployment.objects.get().canary_percent == 0


def test_the_admin_offers_no_way_onto_live_traffic(users, live):
    alias = ModelAlias.objects.get(name="production")
    client = web(users["admin"])
    response = client.post(f"/portal/recommender/modelalias/{alias.pk}/change/",
                           {"name": "production", "version": live["candidate"].pk, "reason": "x"})
    assert response.status_code == 403
    deployment = Deployment.objects.get()
    response = client.post(f"/portal/recommender/deployment/{deployment.pk}/change/", {"canary_percent": "100"})
    assert response.status_code == 403
    assert ModelAlias.objects.get(name="production").version == live["production"]
    assert Deployment.objects.get().canary_percent == 0


def test_experiment_arms_take_only_versions_approved_for_live_traffic(client_for, users, live):
    arms = [{"name": "control", "version": live["production"].pk, "allocation": 50, "is_control": True},
            {"name": "treatment", "version": live["candidate"].pk, "allocation": 50}]
    response = client_for("operator").post("/api/v1/releases/experiments/new", {"name": "ab", "arms": arms},
                                           format="json")
    assert response.status_code == 409 and "arm:treatment" in response.json()["error"]
    assert not Experiment.objects.exists()
    assert _refusal(users["operator"]).data["refused"][0]["role"] == "arm:treatment"
    # The current production version (the control) and an approved version are fine.
    approved_promotion(live["candidate"])
    created = client_for("operator").post("/api/v1/releases/experiments/new", {"name": "ab", "arms": arms},
                                          format="json")
    assert created.status_code == 201, created.content


def test_starting_an_experiment_rechecks_its_arms(users, live):
    """An experiment planned while its arm was approved cannot start once that approval is gone."""
    from releases import services

    promotion = approved_promotion(live["candidate"])
    experiment = services.experiment_create(name="ab", actor=users["operator"], arms=[
        {"name": "control", "version": live["production"].pk, "allocation": 50, "is_control": True},
        {"name": "treatment", "version": live["candidate"].pk, "allocation": 50}])
    PromotionRequest.objects.filter(pk=promotion.pk).update(status="rolled_back")
    before = _snapshot()
    with pytest.raises(Conflict, match="arm:treatment"):
        services.experiment_start(experiment=experiment, actor=users["operator"])
    assert _snapshot() == before and Experiment.objects.get().status == "draft"
    assert _refusal(users["operator"]) is not None


def test_a_system_caller_needs_an_approved_promotion_too_and_bootstrap_only_while_empty(users, live):
    with pytest.raises(Conflict):
        deployment_update(actor=None, system="some.command", reason="x", production=live["candidate"])
    assert ActivityLogEntry.objects.filter(action="deployment.refused", actor_label="system:some.command").exists()
    with pytest.raises(Conflict):  # production is not empty: bootstrap is no exception any more
        model_alias_move(alias="production", version=live["candidate"], actor=None, reason="b", system="bootstrap")
    assert ModelAlias.objects.get(name="production").version == live["production"]


def test_shadow_is_open_to_operators_only(client_for, users, live):
    candidate = live["candidate"]
    ok = client_for("operator").post("/api/v1/deployments/default/change", {"reason": "compare", "shadow": candidate.pk},
                                     format="json")
    assert ok.status_code == 200 and ok.json()["shadow"]["id"] == candidate.pk
    refused = client_for("data_scientist").post("/api/v1/deployments/default/change",
                                                {"reason": "x", "shadow": None}, format="json")
    assert refused.status_code == 403
    with pytest.raises(PermissionDenied):
        deployment_update(actor=users["data_scientist"], reason="x", shadow=None)
    assert ActivityLogEntry.objects.filter(action="permission.refused", actor=users["data_scientist"]).exists()
    assert ModelAlias.objects.get(name="shadow").version == candidate


def test_an_emergency_rollback_to_a_former_production_version_needs_no_one_else(client_for, users):
    # The bootstrap model (no promotion) served first; an approved version replaced it.
    first = make_version("first", seed=1, status="candidate")
    model_alias_move(alias="production", version=first, actor=None, reason="bootstrap", system="bootstrap")
    second = make_version("second", seed=2)
    deploy(second)
    response = client_for("operator").post("/api/v1/deployments/default/rollback", {"reason": "lists look wrong"},
                                           format="json")
    assert response.status_code == 200, response.content
    assert ModelAlias.objects.get(name="production").version == first
    entry = ActivityLogEntry.objects.get(action="deployment.emergency_rollback")
    assert entry.actor_label == "operator_user" and (entry.data["from"], entry.data["to"]) == (second.pk, first.pk)
    assert ActivityLogEntry.objects.filter(action="deployment.changed", data__emergency_rollback=True).exists()
    # And back again, naming the version (it was in production before, too).
    deployment_rollback(actor=users["operator"], reason="false alarm", version=second.pk)
    assert ModelAlias.objects.get(name="production").version == second


def test_a_rollback_to_a_version_never_in_production_is_refused(client_for, users, live):
    before = _snapshot()
    response = client_for("operator").post("/api/v1/deployments/default/rollback",
                                           {"reason": "x", "version": live["candidate"].pk}, format="json")
    assert response.status_code == 409 and "was never in production" in response.json()["error"]
    assert _snapshot() == before
    assert _refusal(users["operator"]).data["refused"][0]["role"] == "production"
    assert not ActivityLogEntry.objects.filter(action="deployment.emergency_rollback").exists()


def test_an_approved_promotion_drives_its_canary_and_an_operator_advances_it(users, live):
    """The real approval: the reviewer (not the requester) approves in the inbox, the canary starts on
    its first step (the rollout system acts, not the reviewer), and an operator advances it."""
    from portal.services import review_request_create, review_request_decide
    from releases import services
    from releases.models import Rollout

    candidate = live["candidate"]
    promotion = services.promotion_request_create(version=candidate, actor=users["data_scientist"], reason="better",
                                                  canary_steps=[5, 50, 100], canary_interval_seconds=600)
    # The gate passed (its checks are tested in test_gate_checks): the review is open.
    review = review_request_create(kind="model_promotion", target=promotion, title="Promote",
                                   requester=users["data_scientist"])
    PromotionRequest.objects.filter(pk=promotion.pk).update(status="awaiting_review", gate_passed=True, gate_attempt=1,
                                                            review=review)
    review_request_decide(review=review, actor=users["reviewer"], decision="approve", comment="convincing")
    rollout = Rollout.objects.get(promotion=promotion)
    assert rollout.started_by_label == "system:recommender.releases.rollout_evaluate"
    assert ModelAlias.objects.get(name="canary").version == candidate and Deployment.objects.get().canary_percent == 5
    services.rollout_advance(rollout=rollout, actor=users["operator"], reason="looks fine")
    assert Deployment.objects.get().canary_percent == 50
    assert deployment_unreviewed() == []


def test_an_unreviewed_deployment_keeps_serving_and_says_so(users, live, client):
    # Production was moved behind the services' back (or before the door existed).
    ModelAlias.objects.filter(name="production").update(version=live["candidate"])
    unreviewed = deployment_unreviewed()
    assert [(u["role"], u["version"]) for u in unreviewed] == [("production", live["candidate"].pk)]
    assert client.get("/recommend/7").status_code == 200  # it keeps serving
    page = web(users["viewer"]).get("/portal/serving/deployments/").content.decode()
    assert 'data-testid="unreviewed"' in page and str(live["candidate"]) in page
    assert "deployment" not in client.get("/readyz").json()  # anonymous callers get ok flags only
    ready = web(users["operator"]).get("/readyz").json()
    assert ready["deployment"]["reviewed"] is False
    assert ready["deployment"]["unreviewed"][0]["version"] == live["candidate"].pk
    # The security audit of the live system raises a finding; a gate's audit of a candidate does not.
    from audits import services as audits

    run = audits.audit_run_execute(run_id=audits.audit_run_create(
        kind="security", actor=None, enqueue=False, overrides={"SECURITY_CHECKS": ["deployment_review"]}).pk)
    finding = run.findings.get()
    assert finding.fingerprint == f"security.deployment_review:production:{live['candidate'].pk}"
    assert finding.severity == "high" and "Unreviewed version serving viewers" in finding.title
    # Bootstrap is the documented exception.
    ModelAlias.objects.filter(name="production").update(version=live["production"])
    assert deployment_unreviewed() == [] and web(users["operator"]).get("/readyz").json()["deployment"]["reviewed"]


def test_the_bootstrap_model_is_not_unreviewed(users):
    first = make_version("first", status="candidate")
    model_alias_move(alias="production", version=first, actor=None, reason="bootstrap", system="bootstrap")
    assert deployment_unreviewed() == []


def test_the_admins_one_action_is_the_emergency_rollback(users):
    first, second = make_version("first", seed=1), make_version("second", seed=2)
    deploy(first)
    deploy(second)
    deployment = Deployment.objects.get()
    changelist = "/portal/recommender/deployment/"
    web(users["viewer"]).post(changelist, {"action": "rollback_production", "_selected_action": [deployment.pk]})
    assert ModelAlias.objects.get(name="production").version == second  # a viewer changes nothing
    # The admin's pages are for admins: an operator rolls back from the Deployments page or the API.
    web(users["operator"]).post(changelist, {"action": "rollback_production", "_selected_action": [deployment.pk]})
    assert ModelAlias.objects.get(name="production").version == second
    web(users["admin"]).post(changelist, {"action": "rollback_production", "_selected_action": [deployment.pk]})
    assert ModelAlias.objects.get(name="production").version == first
    entry = ActivityLogEntry.objects.get(action="deployment.emergency_rollback")
    assert entry.actor_label == "admin_user" and entry.data["reason"] == "rollback: from the admin list"
