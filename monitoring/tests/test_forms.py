"""Monitoring's portal forms: a refused form comes back (400) with what was typed, the error beside
its field and a summary at the top, and nothing stored; the API refuses the same value with a 400
naming the same field (one rule, in the service)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from monitoring.models import DataQualityReport, DriftReport, Incident, IncidentNote
from monitoring.tests.test_pages import world  # noqa: F401 - the fixture
from portal.form_testing import read_form, signed_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("hours, words", [
    ("-3", "window_hours must be a positive number of hours, got -3"),
    ("0", "window_hours must be a positive number of hours, got 0"),
    ("1e9", "window_hours may span at most 366 days"),
])
def test_a_refused_drift_window_keeps_what_was_typed(users, world, client_for, hours, words):  # noqa: F811
    before = DriftReport.objects.count()
    response = signed_in(users["operator"]).post(reverse("monitoring:drift"), {"hours": hours})

    assert response.status_code == 400
    form = read_form(response.content.decode(), "drift-run")
    assert words in form.error("hours") and words in form.summary and form.value("hours") == hours
    assert DriftReport.objects.count() == before

    answer = client_for("operator").post("/api/v1/monitoring/drift/run", {"window_hours": float(hours)},
                                         format="json")
    assert answer.status_code == 400 and words in answer.json()["error"]
    assert DriftReport.objects.count() == before


def test_a_current_window_that_ends_before_it_starts_is_refused_by_the_api(client_for, db):
    answer = client_for("operator").post("/api/v1/monitoring/drift/run", {
        "current_since": "2030-01-02T00:00:00Z", "current_until": "2030-01-01T00:00:00Z"}, format="json")
    assert answer.status_code == 400 and "current_since" in answer.json()["error"]
    assert not DriftReport.objects.exists()


@pytest.mark.parametrize("minutes, words", [
    ("-10", "window_minutes must be a positive number of minutes, got -10"),
    ("ten", "Enter a number"),
])
def test_a_refused_data_quality_window_keeps_what_was_typed(users, db, minutes, words):
    response = signed_in(users["operator"]).post(reverse("monitoring:data_quality"), {"minutes": minutes})
    form = read_form(response.content.decode(), "dq-run")
    assert response.status_code == 400 and words in form.error("minutes") and form.value("minutes") == minutes
    assert not DataQualityReport.objects.exists()


@pytest.mark.parametrize("action, words, api", [
    ("annotate", "a note needs some text", ("annotate", {"text": " "})),
    ("resolve", "say how the incident was resolved", ("resolve", {"resolution": " "})),
])
def test_an_incident_action_without_text_is_refused_beside_the_text(users, world, client_for, action, words,  # noqa: F811
                                                                    api):
    url = reverse("monitoring:incident", args=[world["incident"]])
    response = signed_in(users["operator"]).post(url, {"action": action, "text": "  "})
    form = read_form(response.content.decode(), "incident-actions")
    assert response.status_code == 400 and words in form.error("text") and words in form.summary
    assert Incident.objects.get(pk=world["incident"]).status == "open" and not IncidentNote.objects.exists()

    path, body = api
    answer = client_for("operator").post(f"/api/v1/monitoring/incidents/{world['incident']}/{path}", body,
                                         format="json")
    assert answer.status_code == 400 and words in answer.json()["error"]
    assert Incident.objects.get(pk=world["incident"]).status == "open" and not IncidentNote.objects.exists()
