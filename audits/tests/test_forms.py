"""The audits' portal forms: a refused form comes back (400) with everything typed, the error beside
its field and a summary at the top, and nothing stored; the API refuses the same value with a 400
naming the same field (one rule, in the service)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audits.models import AuditFinding, AuditRun, FindingWaiver
from audits.tests.factories import AuditFindingFactory
from portal.form_testing import read_form, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_worker(monkeypatch):
    monkeypatch.setattr("audits.services.runs._enqueue", lambda run_id: None)


@pytest.mark.parametrize("overrides, field, words, api", [
    ({"window_hours": "-3"}, "window_hours", "window_hours must be between 0 and", {"window_hours": -3}),
    ({"window_hours": "0"}, "window_hours", "window_hours must be between 0 and", {"window_hours": 0}),
    ({"overrides": '{"FAIRNESS_BAND": [2, 3]}', "kind": "fairness"}, "overrides",
     "FAIRNESS_BAND must be two numbers [low, high] with 0 < low < 1 < high", {"overrides": {"FAIRNESS_BAND": [2, 3]},
                                                                                "kind": "fairness"}),
    ({"overrides": '{"NOT_A_SETTING": 1}'}, "overrides", "these settings cannot be overridden for a security audit",
     {"overrides": {"NOT_A_SETTING": 1}}),
])
def test_a_refused_audit_run_form_keeps_what_was_typed(users, client_for, overrides, field, words, api):
    data = {"kind": "security", "model_version": "", "window_hours": "2", "overrides": "", **overrides}
    response = signed_in(users["data_scientist"]).post("/portal/audits/", data)

    assert response.status_code == 400
    form = read_form(response.content.decode(), "start-audit")
    assert words in form.error(field) and words in form.summary
    for name in ("kind", "model_version", "window_hours", "overrides"):
        assert form.value(name) == data[name], name
    assert not AuditRun.objects.exists()

    answer = client_for("data_scientist").post("/api/v1/audits/runs", {"kind": "security", **api}, format="json")
    assert answer.status_code == 400 and words in answer.json()["error"]
    assert not AuditRun.objects.exists()


def test_unknown_kind_and_version_are_named_beside_their_fields(users):
    response = signed_in(users["data_scientist"]).post("/portal/audits/", {"kind": "magic", "model_version": "x"})
    form = read_form(response.content.decode(), "start-audit")
    assert response.status_code == 400 and "magic" in form.error("kind") and form.error("model_version")
    assert form.value("model_version") == "x"

    response = signed_in(users["data_scientist"]).post("/portal/audits/", {"kind": "security", "model_version": "987"})
    form = read_form(response.content.decode(), "start-audit")
    assert response.status_code == 400 and "model version #987 does not exist" in form.error("model_version")
    assert not AuditRun.objects.exists()


@pytest.mark.parametrize("overrides, field, words, api", [
    ({"justification": "too short"}, "justification", "a waiver needs a justification of at least 20 characters",
     {"justification": "too short"}),
    ({"expires_at": "2001-01-01"}, "expires_at", "is not in the future", {"expires_at": "2001-01-01T00:00:00Z"}),
    ({"expires_at": (timezone.now() + timedelta(days=3650)).date().isoformat()}, "expires_at",
     "a waiver may last at most", {"expires_at": (timezone.now() + timedelta(days=3650)).isoformat()}),
])
def test_a_refused_waiver_request_keeps_what_was_typed(users, client_for, overrides, field, words, api):
    finding = AuditFindingFactory()
    expiry = (timezone.now() + timedelta(days=10)).date().isoformat()
    data = {"action": "waive", "justification": "accepted while the vendor ships the fix", "expires_at": expiry,
            **overrides}
    response = signed_in(users["operator"]).post(f"/portal/audits/findings/{finding.pk}/", data)

    assert response.status_code == 400
    form = read_form(response.content.decode(), "waive-form")
    assert words in form.error(field) and words in form.summary
    assert form.value("justification") == data["justification"] and form.value("expires_at") == data["expires_at"]
    assert not FindingWaiver.objects.exists()

    body = {"justification": "accepted while the vendor ships the fix",
            "expires_at": (timezone.now() + timedelta(days=10)).isoformat(), **api}
    answer = client_for("operator").post(f"/api/v1/audits/findings/{finding.pk}/waive", body, format="json")
    assert answer.status_code == 400 and words in answer.json()["error"]
    assert not FindingWaiver.objects.exists()


def test_a_date_that_is_not_a_date_is_named(users):
    finding = AuditFindingFactory()
    response = signed_in(users["operator"]).post(f"/portal/audits/findings/{finding.pk}/", {
        "action": "waive", "justification": "accepted while the vendor ships the fix", "expires_at": "soon"})
    form = read_form(response.content.decode(), "waive-form")
    assert response.status_code == 400 and "expires_at must be a date" in form.error("expires_at")
    assert form.value("expires_at") == "soon" and not FindingWaiver.objects.exists()


def test_a_resolution_without_a_comment_is_refused_beside_the_comment(users, client_for):
    finding = AuditFindingFactory()
    response = signed_in(users["operator"]).post(f"/portal/audits/findings/{finding.pk}/",
                                               {"action": "resolve", "comment": "   "})
    form = read_form(response.content.decode(), "resolve-form")
    assert response.status_code == 400
    assert "a comment saying how the finding was resolved is required" in form.error("comment")
    assert AuditFinding.objects.get(pk=finding.pk).status == "open"

    answer = client_for("operator").post(f"/api/v1/audits/findings/{finding.pk}/resolve", {"comment": " "},
                                         format="json")
    assert answer.status_code == 400 and "resolved is required" in answer.json()["error"]


def test_a_refused_sign_off_request_keeps_the_note(users):
    from audits.tests.factories import AuditRunFactory

    run = AuditRunFactory(status="succeeded")
    client = signed_in(users["operator"])
    assert client.post(f"/portal/audits/runs/{run.pk}/", {"comment": "first"}).status_code == 302
    response = client.post(f"/portal/audits/runs/{run.pk}/", {"comment": "again, please"})
    form = read_form(response.content.decode(), "signoff-form")
    assert response.status_code == 409 and "already has a pending sign-off request" in form.summary
    assert form.value("comment") == "again, please"
