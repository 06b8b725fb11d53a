"""The intake API: POST /api/v1/events (roles, limits, both body types), sources and quarantine endpoints."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from portal.models import ActivityLogEntry
from recommender.ingest import selectors
from recommender.ingest.services import ingest_lines
from recommender.models import IngestSource, QuarantinedLine, RatingEvent

LINES = [
    "2022-02-25T13:38:49,284508,GET /rate/audition+1999=3",
    "2022-02-25T13:39,284508,GET /data/m/audition+1999/0.mpg",
    "2022-02-25T13:41,284508,GET /rate/audition+1999=7",
    "garbage",
]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["operator", "admin"])
def test_operators_post_json_lines_and_get_the_summary(client_for, role: str) -> None:
    response = client_for(role).post("/api/v1/events", {"lines": LINES, "source": "sim"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "source": "http:sim",
        "lines_read": 4,
        "stored": {"rating": 1, "watch": 1, "recommendation": 0},
        "stored_total": 2,
        "duplicates": 0,
        "quarantined": {"missing_fields": 1, "rating_out_of_range": 1},
        "quarantined_total": 2,
    }
    entry = ActivityLogEntry.objects.get(action="events.ingested")
    assert entry.actor_label == f"{role}_user" and entry.data["stored_total"] == 2


@pytest.mark.django_db
def test_plain_text_body_is_accepted_and_redelivery_counts_once(client_for) -> None:
    client = client_for("operator")
    body = "\n".join(LINES) + "\n"
    first = client.generic("POST", "/api/v1/events", body, content_type="text/plain")
    again = client.generic("POST", "/api/v1/events", body, content_type="text/plain")

    assert first.status_code == again.status_code == 200
    assert first.json()["source"] == "http:operator_user" and first.json()["stored_total"] == 2
    assert again.json()["duplicates"] == 4 and again.json()["stored_total"] == 0
    assert RatingEvent.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "data_scientist", "reviewer"])
def test_other_roles_may_not_post_events(client_for, role: str) -> None:
    response = client_for(role).post("/api/v1/events", {"lines": LINES}, format="json")
    assert response.status_code == 403
    assert "operator" in response.json()["error"]


@pytest.mark.django_db
def test_anonymous_may_not_post_events(api_client) -> None:
    assert api_client.post("/api/v1/events", {"lines": LINES}, format="json").status_code in (401, 403)


@pytest.mark.django_db
def test_too_many_lines_is_413_with_the_limit(client_for, settings) -> None:
    settings.RECOMMENDER = {**settings.RECOMMENDER, "EVENTS_MAX_LINES": 3}
    response = client_for("operator").post("/api/v1/events", {"lines": LINES}, format="json")
    assert response.status_code == 413
    assert response.json() == {"error": "4 lines exceed EVENTS_MAX_LINES=3", "detail": {"max_lines": 3}}
    text = client_for("operator").generic("POST", "/api/v1/events", "\n".join(LINES), content_type="text/plain")
    assert text.status_code == 413
    assert RatingEvent.objects.count() == 0


@pytest.mark.django_db
def test_too_many_bytes_is_413_with_the_limit(client_for, settings) -> None:
    settings.RECOMMENDER = {**settings.RECOMMENDER, "EVENTS_MAX_BYTES": 100}
    response = client_for("operator").post("/api/v1/events", {"lines": LINES}, format="json")
    assert response.status_code == 413
    assert "exceeds EVENTS_MAX_BYTES=100" in response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        ('{"lines": "one line"}', "application/json", "invalid input"),
        ('{"rows": []}', "application/json", 'send {"lines": ["…", …]} as JSON, or the lines as text/plain'),
        ('{"lines": [1, {"a": 2}]}', "application/json", "invalid input"),
        ("{not json", "application/json", "JSON parse error"),
        ('{"lines": []}', "application/json", "no lines in the request"),
    ],
)
def test_bad_bodies_are_400_naming_the_problem(client_for, body: str, content_type: str, error: str) -> None:
    response = client_for("operator").generic("POST", "/api/v1/events", body, content_type=content_type)
    assert response.status_code == 400
    assert error in response.json()["error"]


@pytest.mark.django_db
def test_sources_endpoint_lists_status(client_for, django_assert_max_num_queries) -> None:
    for n in range(5):
        ingest_lines(lines=LINES, source=f"file:{n}")
    client = client_for("viewer")
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/ingest/sources")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 5
    first = body["results"][0]
    assert first["name"] == "file:0" and first["lines_read"] == 4 and first["lines_stored"] == 2
    assert first["quarantined"] == 2 and first["position"] == "4" and first["rate_per_s"] > 0
    detail = client.get(f"/api/v1/ingest/sources/{first['id']}")
    assert detail.status_code == 200 and detail.json()["name"] == "file:0"
    assert client.get("/api/v1/ingest/sources/999999").status_code == 404


@pytest.mark.django_db
def test_quarantine_list_filters_and_counts(client_for, django_assert_max_num_queries) -> None:
    ingest_lines(lines=LINES, source="a")
    ingest_lines(lines=["2022-02-25T13:41,1,GET /rate/x+1=0", "2022-13-01T00:00,1,GET /rate/x+1=3"], source="b")
    client = client_for("viewer")

    with django_assert_max_num_queries(6):
        everything = client.get("/api/v1/ingest/quarantine").json()
    assert everything["count"] == 4
    only = client.get("/api/v1/ingest/quarantine", {"reason_code": "rating_out_of_range"}).json()
    assert {row["source"] for row in only["results"]} == {"a", "b"}
    assert client.get("/api/v1/ingest/quarantine", {"source": "b", "q": "2022-13"}).json()["count"] == 1

    counts = client.get("/api/v1/ingest/quarantine/counts").json()
    assert counts["total"] == 4
    assert [(r["reason_code"], r["count"]) for r in counts["reasons"]] == [
        ("rating_out_of_range", 2),
        ("bad_timestamp", 1),
        ("missing_fields", 1),
    ]
    assert client.get("/api/v1/ingest/quarantine/counts", {"source": "a"}).json()["total"] == 2
    bad = client.get("/api/v1/ingest/quarantine", {"since": "yesterday"})
    assert bad.status_code == 400 and "'since': must be an ISO-8601 time" in bad.json()["error"]


@pytest.mark.django_db
def test_selectors_for_the_portal_pages() -> None:
    ingest_lines(lines=LINES, source="a")
    assert [s.name for s in selectors.ingest_source_list()] == ["a"]
    assert selectors.quarantined_line_list(filters={"reason_code": "missing_fields"}).get().position == "4"
    assert selectors.quarantine_counts(filters={"source": "zzz"}) == []


@pytest.mark.django_db
def test_every_intake_model_is_in_the_admin(client_for, users) -> None:
    from django.test import Client

    ingest_lines(lines=LINES, source="a")
    browser = Client()
    browser.force_login(users["admin"])
    for model in (IngestSource, QuarantinedLine):
        assert model in admin.site._registry
        url = reverse(f"admin:recommender_{model._meta.model_name}_changelist")
        assert browser.get(url).status_code == 200
    for name in ("ingestedline", "ratingevent", "rating", "watchsession", "recommendationrequest"):
        assert browser.get(reverse(f"admin:recommender_{name}_changelist")).status_code == 200
    assert QuarantinedLine.objects.count() == 2


@pytest.mark.django_db
def test_intake_endpoints_are_in_the_openapi_schema(client_for) -> None:
    schema = client_for("viewer").get("/api/schema/", {"format": "json"})
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/events",
        "/api/v1/ingest/sources",
        "/api/v1/ingest/sources/{source_id}",
        "/api/v1/ingest/quarantine",
        "/api/v1/ingest/quarantine/counts",
    ):
        assert path in paths, path
