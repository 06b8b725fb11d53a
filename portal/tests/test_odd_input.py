"""Odd query values that the database itself would refuse give a 400, never a 500 (found by schemathesis)."""

import pytest


@pytest.mark.parametrize("query", [
    "offset=7157078269771482265106140106850304",
    "since=0290-02-17T21%3A26%3A23-22%3A58&until=0076-05-02T00%3A48%3A56.540225Z",
    "target_id=-queued_at&target_type=%7B%21%C3%B8%C2%95%C3%A6%F0%95%94%A6%C2%9E%C3%8C%F3%A3%AB%99&action=.%C3%A4",
])
def test_odd_activity_queries_are_answered_without_a_server_error(client_for, query):
    # Given an admin, when they send values PostgreSQL would refuse (huge offset, ±22:58 offsets)
    response = client_for("admin").get("/api/v1/activity?" + query)
    # Then the answer is a clear success or 400, never a 500
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert set(response.json()) == {"error", "detail"}
