"""API wiring of releases: permissions, status codes, error shapes, list query counts."""

from __future__ import annotations

import pytest

from recommender.tests.factories_training import VersionFactory
from releases.models import Experiment, PromotionRequest

pytestmark = pytest.mark.django_db


def test_request_a_promotion_over_the_api(client_for):
    version = VersionFactory()
    response = client_for("data_scientist").post(
        "/api/v1/releases/promotions/new",
        {"version": version.pk, "reason": "NDCG up", "canary_steps": [5, 50, 100], "canary_interval_seconds": 600},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "gate_pending" and body["version"]["id"] == version.pk
    assert body["canary_steps"] == [5, 50, 100] and body["requested_label"] == "data_scientist_user"


@pytest.mark.parametrize("role, payload, status, fragment", [
    ("viewer", {"version": 1, "reason": "x"}, 403, "data_scientist or operator"),
    ("reviewer", {"version": 1, "reason": "x"}, 403, "data_scientist or operator"),
    ("admin", {"version": 1, "reason": "x"}, 403, "data_scientist or operator"),
    ("data_scientist", {"version": 999999, "reason": "x"}, 400, "does not exist"),
    ("data_scientist", {"reason": "x"}, 400, "invalid input"),
    ("data_scientist", {"version": "V", "reason": "x", "canary_steps": [5, 50]}, 400, "invalid input"),
])
def test_promotion_request_refusals(client_for, role, payload, status, fragment):
    version = VersionFactory()
    if payload.get("version") == 1:
        payload = {**payload, "version": version.pk}
    response = client_for(role).post("/api/v1/releases/promotions/new", payload, format="json")
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "detail"} and fragment in (body["error"] + str(body["detail"]))


def test_bad_canary_plan_is_a_400_with_the_reason(client_for):
    response = client_for("data_scientist").post(
        "/api/v1/releases/promotions/new", {"version": VersionFactory().pk, "reason": "x", "canary_steps": [5, 50]},
        format="json")
    assert response.status_code == 400 and "ending at 100" in response.json()["error"]


def test_deciding_a_promotion_that_is_not_awaiting_review_is_a_409(client_for, users):
    from releases import services

    promotion = services.promotion_request_create(version=VersionFactory(), actor=users["data_scientist"], reason="x")
    response = client_for("reviewer").post(f"/api/v1/releases/promotions/{promotion.pk}/decide",
                                           {"decision": "approve"}, format="json")
    assert response.status_code == 409 and "gate_pending" in response.json()["error"]
    assert client_for("operator").post(f"/api/v1/releases/promotions/{promotion.pk}/decide",
                                       {"decision": "approve"}, format="json").status_code == 403


def test_promotion_list_and_detail(client_for, users, django_assert_max_num_queries):
    from releases import services

    for _ in range(5):
        services.promotion_request_create(version=VersionFactory(), actor=users["data_scientist"], reason="x")
    client = client_for("viewer")
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/releases/promotions")
    assert response.status_code == 200 and response.json()["count"] == 5
    pk = PromotionRequest.objects.first().pk
    detail = client.get(f"/api/v1/releases/promotions/{pk}").json()
    assert detail["checks"] == [] and detail["history"][0]["action"] == "release.promotion.requested"


def test_sample_size_endpoint(client_for):
    client = client_for("viewer")
    ok = client.post("/api/v1/releases/sample-size", {"baseline": 0.1, "mde": 0.02}, format="json")
    assert ok.status_code == 200 and ok.json()["per_arm"] == 3841
    viewers = client.post("/api/v1/releases/sample-size", {"baseline": 0.1, "mde": 0.02, "lists_per_viewer": 8,
                                                           "design_effect": 3}, format="json").json()
    assert viewers["per_arm"] == 3841 and viewers["lists_needed"] == 3841 * 3
    assert viewers["viewers_per_arm"] == -(-3841 * 3 // 8) and viewers["design_effect_source"] == "given"
    prior = client.post("/api/v1/releases/sample-size", {"baseline": 0.1, "mde": 0.02, "lists_per_viewer": 8},
                        format="json").json()
    assert prior["design_effect"] == 2.0 and prior["design_effect_source"] == "prior"
    bad = client.post("/api/v1/releases/sample-size", {"baseline": 0.1, "mde": 0}, format="json")
    assert bad.status_code == 400 and "non-zero effect" in bad.json()["error"]


def test_experiment_create_validation_over_the_api(client_for):
    from releases.tests.factories import approved_promotion

    a, b = approved_promotion(VersionFactory()).version, approved_promotion(VersionFactory()).version
    client = client_for("operator")
    arms = [{"name": "control", "version": a.pk, "allocation": 50, "is_control": True},
            {"name": "svd", "version": b.pk, "allocation": 50}]
    created = client.post("/api/v1/releases/experiments/new", {"name": "svd-vs-pop", "arms": arms}, format="json")
    assert created.status_code == 201, created.content
    assert [arm["name"] for arm in created.json()["arms"]] == ["control", "svd"]
    for bad_arms, fragment in [
        ([{**arms[0]}, {**arms[1], "allocation": 60}], "110%"),
        ([{**arms[0], "is_control": False}, arms[1]], "exactly one arm"),
        ([arms[0]], "at least two arms"),
        ([arms[0], {**arms[1], "name": "Bad Name"}], "slug"),
        ([arms[0], {**arms[1], "version": 999999}], "does not exist"),
    ]:
        response = client.post("/api/v1/releases/experiments/new", {"name": f"x{len(fragment)}", "arms": bad_arms},
                               format="json")
        assert response.status_code == 400 and fragment in response.json()["error"], (fragment, response.json())
    dup = client.post("/api/v1/releases/experiments/new", {"name": "svd-vs-pop", "arms": arms}, format="json")
    assert dup.status_code == 409
    assert client_for("viewer").post("/api/v1/releases/experiments/new", {"name": "v", "arms": arms},
                                     format="json").status_code == 403
    assert Experiment.objects.count() == 1


def test_every_release_endpoint_is_in_the_openapi_schema(client_for):
    schema = client_for("viewer").get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ["/api/v1/releases/promotions", "/api/v1/releases/promotions/new",
                 "/api/v1/releases/promotions/{promotion_id}/decide", "/api/v1/releases/rollouts/{rollout_id}/rollback",
                 "/api/v1/releases/production/rollback", "/api/v1/releases/experiments/{experiment_id}/results",
                 "/api/v1/releases/sample-size", "/api/v1/releases/shadow/reports/new"]:
        assert path in paths, path


@pytest.mark.parametrize("url", ["/portal/releases/", "/portal/releases/experiments/", "/portal/releases/shadow/"])
def test_pages_render_for_a_viewer(client, users, url):
    client.force_login(users["viewer"])
    response = client.get(url)
    assert response.status_code == 200
    assert b"Releases and experiments" in response.content  # the sidebar section
