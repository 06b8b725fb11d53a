"""The audits REST API: wiring, permissions, status codes, shapes, and query counts of the lists."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audits import runners
from audits.checks.base import CheckOutcome, FindingDraft
from audits.models import AuditFinding, AuditRun
from audits.tests.factories import AuditFindingFactory, AuditRunFactory
from portal.models import ReviewRequest

pytestmark = pytest.mark.django_db


def test_lists_need_a_role(api_client):
    assert api_client.get("/api/v1/audits/runs").status_code in (401, 403)
    assert api_client.get("/api/v1/audits/findings").status_code in (401, 403)


def test_start_a_run_queues_it_and_a_viewer_may_not(client_for, django_capture_on_commit_callbacks, monkeypatch):
    queued = []
    monkeypatch.setattr("audits.services.runs._enqueue", lambda run_id: queued.append(run_id))
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("operator").post("/api/v1/audits/runs", {"kind": "security", "window_hours": 6},
                                               format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["kind"] == "security" and body["target"] == "live"
    assert queued == [body["id"]]
    run = AuditRun.objects.get(pk=body["id"])
    assert (run.window_end - run.window_start) == dt.timedelta(hours=6)

    assert client_for("viewer").post("/api/v1/audits/runs", {"kind": "security"}, format="json").status_code == 403


@pytest.mark.parametrize(
    ("payload", "status", "error"),
    [
        ({"kind": "privacy"}, 400, "unknown audit kind 'privacy'"),
        ({"kind": "fairness", "model_version": 999999}, 404, "model version #999999 does not exist"),
        ({"kind": "fairness", "overrides": {"FAIRNESS_BAND": [2, 3]}}, 400, "FAIRNESS_BAND"),
    ],
)
def test_bad_start_requests_say_what_is_wrong(client_for, payload, status, error):
    response = client_for("reviewer").post("/api/v1/audits/runs", payload, format="json")
    assert response.status_code == status
    assert error in response.json()["error"]
    assert not AuditRun.objects.exists()


def test_run_detail_and_export_carry_results_findings_and_history(client_for, monkeypatch):
    from audits import services

    outcome = CheckOutcome(name="security.scraping", summary="one client",
                           findings=[FindingDraft(check="security.scraping", subject="client=203.0.113.5",
                                                  severity="high", title="Scraping: client 203.0.113.5",
                                                  evidence={"client": "203.0.113.5", "distinct_viewers": 812})])
    monkeypatch.setattr(runners, "perform", lambda *, run, config: [outcome])
    run = services.audit_run_execute(run_id=services.audit_run_create(kind="security", actor=None, enqueue=False).pk)
    client = client_for("viewer")

    detail = client.get(f"/api/v1/audits/runs/{run.pk}").json()
    assert detail["passed"] is False and detail["results"]["checks"][0]["name"] == "security.scraping"
    export = client.get(f"/api/v1/audits/runs/{run.pk}/export")
    assert export.status_code == 200 and "attachment" in export["Content-Disposition"]
    data = export.json()
    assert data["run"]["id"] == run.pk
    assert data["findings"][0]["evidence"]["distinct_viewers"] == 812
    assert [h["action"] for h in data["findings"][0]["history"]] == ["audit_finding.raised"]
    assert "audit_run.succeeded" in [h["action"] for h in data["history"]]


def test_finding_transitions_over_the_api(client_for, users):
    finding = AuditFindingFactory()
    operator = client_for("operator")

    response = operator.post(f"/api/v1/audits/findings/{finding.pk}/acknowledge", {"comment": "mine"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "acknowledged"
    assert operator.post(f"/api/v1/audits/findings/{finding.pk}/acknowledge", {}, format="json").status_code == 409

    response = operator.post(f"/api/v1/audits/findings/{finding.pk}/waive",
                             {"justification": "accepted until the proxy rule ships next week",
                              "expires_at": (timezone.now() + dt.timedelta(days=7)).isoformat()}, format="json")
    assert response.status_code == 201
    review_id = response.json()["review"]
    # the requester cannot decide it; a reviewer can, through the portal's review API
    assert operator.post(f"/api/v1/reviews/{review_id}/decide", {"decision": "approve"}, format="json"
                         ).status_code == 403
    response = client_for("reviewer").post(f"/api/v1/reviews/{review_id}/decide",
                                           {"decision": "approve", "comment": "ok"}, format="json")
    assert response.status_code == 200, response.json()
    detail = client_for("viewer").get(f"/api/v1/audits/findings/{finding.pk}").json()
    assert detail["status"] == "waived"
    assert detail["waivers"][0]["reviewed_by"] == "reviewer_user"
    assert [h["action"] for h in detail["history"]] == [
        "audit_finding.acknowledged", "review.requested", "audit_finding.waiver_requested", "review.refused",
        "review.approve", "audit_finding.waived"]


def test_resolve_without_a_comment_is_400_and_viewers_get_403(client_for):
    finding = AuditFindingFactory()
    response = client_for("operator").post(f"/api/v1/audits/findings/{finding.pk}/resolve", {}, format="json")
    assert response.status_code == 400 and "comment" in str(response.json()["detail"])
    assert client_for("viewer").post(f"/api/v1/audits/findings/{finding.pk}/resolve", {"comment": "x"},
                                     format="json").status_code == 403
    assert client_for("operator").post("/api/v1/audits/findings/99999/resolve", {"comment": "x"},
                                       format="json").status_code == 404


def test_signoff_request_over_the_api(client_for):
    run = AuditRunFactory(passed=True)
    response = client_for("data_scientist").post(f"/api/v1/audits/runs/{run.pk}/signoff", {"comment": "gate"},
                                                 format="json")
    assert response.status_code == 201
    assert ReviewRequest.objects.get(pk=response.json()["id"]).kind == "audits.run_signoff"
    again = client_for("data_scientist").post(f"/api/v1/audits/runs/{run.pk}/signoff", {}, format="json")
    assert again.status_code == 409


def test_finding_filters_and_bad_filter_values(client_for):
    AuditFindingFactory(severity="low")
    high = AuditFindingFactory(severity="critical")
    client = client_for("viewer")
    body = client.get("/api/v1/audits/findings?min_severity=high").json()
    assert [f["id"] for f in body["results"]] == [high.pk]
    response = client.get("/api/v1/audits/findings?severity=apocalyptic")
    assert response.status_code == 400 and "severity" in response.json()["error"]


def test_list_endpoints_do_not_grow_queries_with_rows(client_for, django_assert_max_num_queries):
    client = client_for("viewer")
    for _ in range(15):
        finding = AuditFindingFactory()
        finding.runs.add(AuditRunFactory())
    with django_assert_max_num_queries(8):
        assert client.get("/api/v1/audits/findings").status_code == 200
    with django_assert_max_num_queries(8):
        assert client.get("/api/v1/audits/runs").status_code == 200
    assert AuditFinding.objects.count() == 15


def test_schedules_are_listed(client_for):
    rows = client_for("viewer").get("/api/v1/audits/schedules").json()
    names = {row["name"]: row for row in rows}
    assert names["audits: fairness nightly"]["kwargs"] == '{"kind": "fairness"}'
    assert names["audits: fairness nightly"]["schedule"].startswith("30 2 ")
    assert names["audits: security hourly"]["schedule"].startswith("15 * ")
    assert {"audits: expire waivers", "audits: fail stuck runs"} <= set(names)


def test_release_gate_view_of_a_version(client_for):
    from recommender.tests.factories_training import VersionFactory

    version = VersionFactory()
    client = client_for("viewer")
    gate = client.get(f"/api/v1/audits/gate/{version.pk}").json()
    assert gate["ok"] is False
    assert gate["fairness"]["reason"] == "no configured fairness audit of this artifact has succeeded"

    fairness = AuditRunFactory(kind="fairness", target="model_version", model_version=version, passed=False,
                               artifact_sha256=version.artifact_sha256)
    finding = AuditFindingFactory(run=fairness, kind="fairness", check_name="fairness.disparity", severity="high")
    AuditRunFactory(kind="security", target="model_version", model_version=version, passed=True,
                    artifact_sha256=version.artifact_sha256)
    gate = client.get(f"/api/v1/audits/gate/{version.pk}").json()
    assert gate["security"]["ok"] is True
    assert gate["fairness"]["ok"] is False
    assert gate["fairness"]["blocking_findings"][0]["id"] == finding.pk
    assert gate["fairness"]["blocking_findings"][0]["why"] == "open"
    assert client.get("/api/v1/audits/gate/999999").status_code == 404


def test_every_audits_endpoint_is_in_the_openapi_schema(client_for):
    schema = client_for("viewer").get("/api/schema/?format=json").json()
    paths = set(schema["paths"])
    for path in ("/api/v1/audits/runs", "/api/v1/audits/runs/{run_id}", "/api/v1/audits/runs/{run_id}/export",
                 "/api/v1/audits/runs/{run_id}/signoff", "/api/v1/audits/findings",
                 "/api/v1/audits/findings/{finding_id}", "/api/v1/audits/findings/{finding_id}/acknowledge",
                 "/api/v1/audits/findings/{finding_id}/resolve", "/api/v1/audits/findings/{finding_id}/waive",
                 "/api/v1/audits/gate/{version_id}", "/api/v1/audits/schedules"):
        assert path in paths, path
