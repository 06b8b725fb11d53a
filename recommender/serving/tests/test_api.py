"""The serving REST API: JSON recommendations, provenance, deployments; auth, errors, the schema."""

from __future__ import annotations

import pytest

from recommender.models import PredictionLog
from recommender.serving.runtime import get_runtime
from recommender.serving.services import deployment_update
from recommender.serving.tests.conftest import ITEM_IDS, deploy, make_version
from recommender.tests.factories_training import MovieFactory, RatingFactory, ViewerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def token_client(users, api_client):
    from portal.services import api_token_create

    _, key = api_token_create(user=users["viewer"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api_client


@pytest.fixture
def deployed():
    for i, movie in enumerate(ITEM_IDS):
        MovieFactory(id=movie, title=f"Title {i}")
    for movie in ITEM_IDS[:3]:
        RatingFactory(viewer=ViewerFactory(id=7), movie_id=movie)
    version = make_version("v1")
    deploy(version)
    from recommender.serving.snapshot import snapshot_build

    runtime = get_runtime()
    snapshot_build(root=runtime.config.snapshot_dir, fallback_size=20, window_days=14, half_life_days=3)
    runtime.refresh_all()
    return version


def test_json_recommendations_need_a_token(api_client, deployed):
    assert api_client.get("/api/v1/recommendations/7").status_code in (401, 403)


def test_json_recommendations_with_explanations(token_client, deployed):
    response = token_client.get("/api/v1/recommendations/7?k=5")
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == {"id": deployed.pk, "label": f"movie-recommender v{deployed.version}"}
    assert body["arm"] == "production" and body["fallback_reason"] == "" and body["k"] == 5
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4, 5]
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    for item in body["items"]:
        assert item["movie_id"] not in ITEM_IDS[:3]  # rated: left out
        assert item["title"].startswith("Title ")
        assert set(item["explanation"]["because"]) <= set(ITEM_IDS[:3]) and len(item["explanation"]["because"]) == 2
        assert "which you watched or rated" in item["explanation"]["text"]
    assert response["X-Request-Id"] == body["request_id"]
    get_runtime().predlog.flush()
    row = PredictionLog.objects.get(request_id=body["request_id"])
    assert row.endpoint == "api" and row.client == "user:viewer_user" and len(row.items) == 5


def test_unknown_viewer_json_is_the_fallback_with_its_reason(token_client, deployed):
    body = token_client.get("/api/v1/recommendations/123456").json()
    assert body["served_by"] == "fallback" and body["fallback_reason"] == "unknown_viewer"
    assert all(i["explanation"]["text"].startswith("Popular and recent") for i in body["items"])


@pytest.mark.parametrize("path,field", [("/api/v1/recommendations/abc", "integer"),
                                        ("/api/v1/recommendations/7?k=0", "k"),
                                        ("/api/v1/recommendations/7?k=x", "k"),
                                        ("/api/v1/recommendations/7?k=1000", "at most")])
def test_bad_json_requests_are_400_with_the_reason(token_client, path, field):
    response = token_client.get(path)
    assert response.status_code == 400
    assert field in str(response.json())


def test_json_endpoint_is_rate_limited_per_client(token_client, settings):
    from recommender.serving.runtime import runtime_reset

    settings.RECOMMENDER = {**settings.RECOMMENDER, "SERVING": {**settings.RECOMMENDER["SERVING"],
                                                                 "API_RATE": 0.1, "API_BURST": 2}}
    runtime_reset()
    codes = [token_client.get("/api/v1/recommendations/7").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    response = token_client.get("/api/v1/recommendations/7")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert "rate limit" in response.json()["error"]


def test_provenance_traces_an_answer_to_run_snapshot_and_code(client, token_client, deployed):
    request_id = client.get("/recommend/7")["X-Request-Id"]
    get_runtime().predlog.flush()
    response = token_client.get(f"/api/v1/provenance/{request_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["answer"]["request_id"] == request_id and body["answer"]["viewer_id"] == 7
    assert body["model_version"]["id"] == deployed.pk
    run, snapshot = deployed.training_run, deployed.training_run.snapshot
    assert body["training_run"]["id"] == run.pk and body["snapshot"]["id"] == snapshot.pk
    assert body["snapshot"]["content_sha256"] == snapshot.content_sha256
    assert {"window_start", "window_end", "rating_count"} <= set(body["snapshot"])
    assert set(body["code"]) >= {"code", "python", "libraries"}
    assert body["deployment"]["revision"] == body["answer"]["deployment_revision"]


def test_provenance_of_unknown_and_malformed_request_ids(token_client):
    assert token_client.get("/api/v1/provenance/0190a8f6c1e87a3b9c2d4e5f60718293").status_code == 404
    response = token_client.get("/api/v1/provenance/not-a-uuid")
    assert response.status_code == 400 and "UUID" in response.json()["error"]


def test_provenance_search_by_viewer_and_time(client, token_client, deployed, django_assert_max_num_queries):
    for viewer in (7, 7, 8):
        client.get(f"/recommend/{viewer}")
    get_runtime().predlog.flush()
    with django_assert_max_num_queries(8):
        response = token_client.get("/api/v1/provenance?viewer=7&since=2000-01-01T00:00")
    assert response.status_code == 200 and response.json()["count"] == 2
    assert token_client.get("/api/v1/provenance?viewer=7&until=2000-01-01T00:00").json()["count"] == 0
    assert token_client.get("/api/v1/provenance?since=yesterday").status_code == 400


def test_deployment_change_needs_an_operator(client_for, deployed):
    v2 = make_version("v2")
    response = client_for("viewer").post("/api/v1/deployments/default/change", {"reason": "x", "production": v2.pk},
                                         format="json")
    assert response.status_code == 403
    response = client_for("operator").post(
        "/api/v1/deployments/default/change",
        {"reason": "canary of v2", "canary": v2.pk, "canary_percent": "10"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["canary"]["id"] == v2.pk and response.json()["traffic_split"] == {"production": 90.0,
                                                                                            "canary": 10.0}
    history = client_for("viewer").get("/api/v1/deployments/default/history").json()
    assert history["results"][0]["reason"] == "canary of v2"


def test_deployment_change_errors_are_clear(client_for, deployed):
    operator = client_for("operator")
    response = operator.post("/api/v1/deployments/default/change", {"reason": "x", "canary_percent": "10"},
                             format="json")
    assert response.status_code == 400 and "canary version" in response.json()["error"]
    response = operator.post("/api/v1/deployments/default/change", {"production": deployed.pk}, format="json")
    assert response.status_code == 400 and "reason" in str(response.json()["detail"])
    assert operator.get("/api/v1/deployments/nope").status_code == 404


def test_deployment_detail_lists_workers_and_changes(client_for, deployed, users):
    get_runtime().write_status()
    body = client_for("viewer").get("/api/v1/deployments/default").json()
    assert body["production"]["id"] == deployed.pk
    assert body["workers"] and body["workers"][0]["routes"]["production"]["version_id"] == deployed.pk
    assert body["recent_changes"][0]["revision"] == body["revision"]
    status = client_for("viewer").get("/api/v1/serving/status").json()
    assert {"workers", "spill", "prediction_log_last_hour"} <= set(status)


def test_rollback_endpoint(client_for, deployed):
    v2 = make_version("v2")
    deployment_update(actor=None, system="test", reason="v2", production=v2)
    response = client_for("operator").post("/api/v1/deployments/default/rollback", {"reason": "bad"}, format="json")
    assert response.status_code == 200 and response.json()["production"]["id"] == deployed.pk


def test_every_serving_endpoint_is_in_the_openapi_schema(client_for):
    schema = client_for("viewer").get("/api/schema/?format=json").json()
    for path in ("/api/v1/recommendations/{userid}", "/api/v1/provenance", "/api/v1/provenance/{request_id}",
                 "/api/v1/deployments", "/api/v1/deployments/{name}", "/api/v1/deployments/{name}/change",
                 "/api/v1/deployments/{name}/rollback", "/api/v1/deployments/{name}/history",
                 "/api/v1/serving/status"):
        assert path in schema["paths"], path
