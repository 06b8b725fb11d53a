"""Portal pages of serving: reachable from the sidebar, forms call the services, provenance traces."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.models import ActivityLogEntry
from recommender.models import ModelAlias, PredictionLog
from recommender.serving.runtime import get_runtime
from recommender.serving.tests.conftest import deploy, make_version

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_are_in_the_sidebar_and_render(users):
    client = signed_in(users["viewer"])
    index = client.get("/portal/").content.decode()
    assert "/portal/serving/deployments/" in index and "/portal/serving/provenance/" in index
    from django.test import RequestFactory

    from portal.dashboard import dashboard_context

    request = RequestFactory().get("/portal/")
    request.user = users["viewer"]
    titles = {c["title"] for c in dashboard_context(request)["usher_cards"]}
    assert {"In production", "Answers in the last hour", "Fallback share, last hour"} <= titles  # training + serving
    for path in ("/portal/serving/deployments/", "/portal/serving/provenance/"):
        assert client.get(path).status_code == 200


def test_an_operator_changes_and_rolls_back_from_the_page(users):
    v1, v2 = make_version("v1"), make_version("v2")
    deploy(v1)
    client = signed_in(users["operator"])
    page = client.get("/portal/serving/deployments/").content.decode()
    assert 'data-testid="change-deployment"' in page
    response = client.post("/portal/serving/deployments/", {"action": "change", "production": v2.pk,
                                                             "canary": "keep", "shadow": "keep", "canary_percent": "0",
                                                             "reason": "v2 is better"}, follow=True)
    assert "revision" in response.content.decode()
    assert ModelAlias.objects.get(name="production").version == v2
    response = client.post("/portal/serving/deployments/", {"action": "rollback", "reason": "oops"}, follow=True)
    assert ModelAlias.objects.get(name="production").version == v1
    assert "v2 is better" in response.content.decode() and "rollback: oops" in response.content.decode()


def test_a_refused_change_is_a_message_and_a_viewer_cannot_change(users):
    client = signed_in(users["operator"])
    response = client.post("/portal/serving/deployments/", {"action": "change", "canary": "keep", "production": "keep",
                                                             "shadow": "keep", "canary_percent": "20",
                                                             "reason": "x"}, follow=True)
    assert "needs a canary version" in response.content.decode()
    viewer = signed_in(users["viewer"])
    assert 'data-testid="change-deployment"' not in viewer.get("/portal/serving/deployments/").content.decode()
    response = viewer.post("/portal/serving/deployments/", {"action": "rollback", "reason": "x"}, follow=True)
    assert "needs the role: operator or admin" in response.content.decode()
    refused = ActivityLogEntry.objects.filter(action="permission.refused", actor=users["viewer"]).get()
    assert refused.data["work"] == "release.operate"


def test_provenance_pages_trace_an_answer_and_search_by_viewer(users, client):
    version = make_version("v1")
    deploy(version)
    request_id = client.get("/recommend/7")["X-Request-Id"]
    get_runtime().predlog.flush()
    portal = signed_in(users["viewer"])
    response = portal.get(f"/portal/serving/provenance/?request_id={request_id}", follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert version.training_run.snapshot.content_sha256 in page and f"#{version.training_run.pk}" in page
    assert 'data-testid="code"' in page
    search = portal.get("/portal/serving/provenance/?viewer=7").content.decode()
    assert request_id[:12] in search
    assert portal.get("/portal/serving/provenance/?viewer=x").status_code == 200  # message, not a crash
    assert portal.get("/portal/serving/provenance/0190a8f6c1e87a3b9c2d4e5f60718293/").status_code == 404
    assert portal.get("/portal/serving/provenance/nonsense/").status_code == 404


def test_asking_for_a_viewers_recommendations_from_the_page(users):
    deploy(make_version("v1"))
    page = signed_in(users["viewer"]).get("/portal/serving/provenance/?try_viewer=7").content.decode()
    assert 'data-testid="answer"' in page and "movie-recommender v" in page
    get_runtime().predlog.flush()
    assert PredictionLog.objects.filter(client="portal:viewer_user", viewer_id=7).count() == 1


def test_admin_lists_the_serving_records(users, client):
    deploy(make_version("v1"))
    client.get("/recommend/7")
    get_runtime().predlog.flush()
    admin = signed_in(users["admin"])
    for path in ("/portal/recommender/deployment/", "/portal/recommender/deploymentchange/",
                 "/portal/recommender/predictionlog/", "/portal/recommender/predictionlog/?q=7",
                 "/portal/recommender/predictionlog/?q=abc"):
        assert admin.get(path).status_code == 200, path
