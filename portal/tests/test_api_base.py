"""The REST API base: error shape, tokens, throttling, pagination, JSON 404s, the schema."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from portal.api.exceptions import exception_handler
from portal.errors import Conflict, NotFound, PermissionDenied, ValidationError
from portal.models import ActivityLogEntry, ApiToken

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "exc, status, body",
    [
        (ValidationError("bad thing", detail={"field": "x"}), 400, {"error": "bad thing", "detail": {"field": "x"}}),
        (PermissionDenied("no"), 403, {"error": "no", "detail": None}),
        (NotFound("gone"), 404, {"error": "gone", "detail": None}),
        (Conflict("already done", detail={"status": "approved"}), 409,
         {"error": "already done", "detail": {"status": "approved"}}),
        (DjangoValidationError({"name": ["too long"]}), 400, {"error": "invalid input", "detail": {"name": ["too long"]}}),
    ],
)
def test_exception_handler_shape(exc, status, body):
    response = exception_handler(exc, {})
    assert response.status_code == status
    assert response.data == body


def test_unhandled_exceptions_are_left_to_django():
    assert exception_handler(RuntimeError("boom"), {}) is None


def test_missing_and_bad_credentials_are_401_with_a_clear_message(users):
    anonymous = APIClient().get("/api/v1/me")
    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": "Authentication credentials were not provided.", "detail": "not_authenticated"}
    assert anonymous["WWW-Authenticate"] == "Token"
    bad = APIClient(HTTP_AUTHORIZATION="Token not-a-real-token").get("/api/v1/me")
    assert bad.status_code == 401 and bad.json() == {"error": "Invalid token.", "detail": "authentication_failed"}


def test_user_without_a_role_is_403(db):
    from django.contrib.auth import get_user_model

    nobody = get_user_model().objects.create_user(username="nobody", password="pw-" + "x" * 20)
    client = APIClient()
    client.force_authenticate(nobody)
    response = client.get("/api/v1/activity")
    assert response.status_code == 403
    assert response.json()["error"] == "You need an Usher role to use this endpoint."


def test_unknown_api_path_is_a_json_404(client_for):
    response = client_for("viewer").get("/api/v1/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {"error": "No such path: /api/v1/no/such/thing (/api/schema/ lists every path)",
                               "detail": "not_found"}


def test_token_create_use_rotate_and_revoke(users):
    session = APIClient()
    session.force_login(users["viewer"])  # a read-only viewer may hold a token
    # When a token is created, it authenticates
    created = session.post("/api/v1/auth/token")
    assert created.status_code == 201
    key = created.json()["token"]
    with_token = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    me = with_token.get("/api/v1/me").json()
    assert me == {"username": "viewer_user", "roles": ["viewer"], "has_token": True}
    # When rotated, the old key stops working
    rotated = with_token.post("/api/v1/auth/token").json()["token"]
    assert rotated != key
    assert with_token.get("/api/v1/me").status_code == 401
    # When revoked, the new key stops working too
    revoker = APIClient(HTTP_AUTHORIZATION=f"Token {rotated}")
    assert revoker.delete("/api/v1/auth/token").status_code == 204
    assert revoker.get("/api/v1/me").status_code == 401
    assert not ApiToken.objects.filter(user=users["viewer"]).exists()
    # And every step is in the activity log
    actions = list(ActivityLogEntry.objects.order_by("seq").values_list("action", flat=True))
    assert actions == ["api_token.created", "api_token.created", "api_token.revoked"]


def test_token_page_creates_shows_once_and_revokes(users, web_client_for):
    client = web_client_for("operator")
    # When a token is created on the page, its key is in that answer
    shown = client.post("/portal/account/token/", {"action": "create"})
    assert shown.status_code == 200 and "no-store" in shown["Cache-Control"]
    key = re.search(r'data-testid="new-token">([^<]+)<', shown.content.decode()).group(1)
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/me").json()["username"] == "operator_user"
    # And nowhere afterwards: not on the page, not in the session, not in the database
    page = client.get("/portal/account/token/").content.decode()
    assert key not in page and key[:8] in page  # only its first characters
    assert not any(key in str(s.get_decoded()) for s in Session.objects.all())
    token = ApiToken.objects.get(user=users["operator"])
    assert token.digest == hashlib.sha256(key.encode()).hexdigest() and key not in str(token.__dict__)
    client.post("/portal/account/token/", {"action": "revoke"})
    assert not ApiToken.objects.filter(user=users["operator"]).exists()


def test_throttling_answers_429_with_retry_after(users, monkeypatch):
    # Given a rate of 3 requests a minute per user
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "3/min"})
    client = APIClient()
    client.force_authenticate(users["viewer"])
    codes = [client.get("/api/v1/me").status_code for _ in range(4)]
    # Then the fourth is refused, saying when to retry
    assert codes == [200, 200, 200, 429]
    response = client.get("/api/v1/me")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["detail"] == "throttled" and "throttled" in response.json()["error"]


def test_list_pagination(users, client_for):
    from portal.services import activity_log_record

    for i in range(7):
        activity_log_record(actor=users["operator"], action=f"x.{i}")
    page = client_for("viewer").get("/api/v1/activity", {"limit": 3, "offset": 3}).json()
    assert page["count"] == 7 and [r["action"] for r in page["results"]] == ["x.3", "x.2", "x.1"]
    assert page["next"] and page["previous"]


def test_schema_documents_every_portal_endpoint_and_the_error_shape(client_for):
    schema = client_for("viewer").get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in ["/api/v1/me", "/api/v1/auth/token", "/api/v1/activity", "/api/v1/reviews", "/api/v1/reviews/inbox",
                 "/api/v1/reviews/{review_id}", "/api/v1/reviews/{review_id}/decide"]:
        assert path in paths, path
    decide = paths["/api/v1/reviews/{review_id}/decide"]["post"]["responses"]
    assert {"200", "400", "401", "403", "404", "409", "429"} <= set(decide)
    assert set(schema["components"]["schemas"]["ApiError"]["properties"]) == {"error", "detail"}
    activity_params = {p["name"] for p in paths["/api/v1/activity"]["get"]["parameters"]}
    assert {"actor", "action", "target_type", "target_id", "since", "until", "limit", "offset"} <= activity_params


def test_swagger_and_redoc_are_served_offline(client_for):
    client = client_for("viewer")
    for url in ("/api/docs/", "/api/redoc/"):
        html = client.get(url).content.decode()
        assert "drf_spectacular_sidecar" in html
        assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html


def test_the_handler_is_wired():
    from rest_framework.settings import api_settings

    assert api_settings.EXCEPTION_HANDLER is exception_handler


@pytest.mark.parametrize(
    "params, field",
    [({"limit": "abc"}, "limit"), ({"limit": "0"}, "limit"), ({"limit": "5000"}, "limit"),
     ({"offset": "-1"}, "offset"), ({"offset": ["1", "2"]}, "offset"), ({"since": ""}, "since"),
     ({"until": "not-a-time"}, "until")],
)
def test_bad_list_parameters_are_400_naming_them(client_for, params, field):
    response = client_for("viewer").get("/api/v1/activity", params)
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"invalid query parameter '{field}'") and field in response.json()["detail"]


def test_empty_free_text_filter_is_fine(client_for):
    assert client_for("viewer").get("/api/v1/activity", {"actor": ""}).status_code == 200


def test_form_bodies_are_415(review_kind, users, client_for):
    from portal.services import review_request_create

    review = review_request_create(kind=review_kind.name, target=("x", 1), title="t", requester=users["operator"])
    response = client_for("reviewer").post(f"/api/v1/reviews/{review.pk}/decide", {"decision": "approve"})  # multipart
    assert response.status_code == 415
    assert set(response.json()) == {"error", "detail"}


def test_query_param_helpers_name_the_bad_parameter():
    from rest_framework.exceptions import ValidationError as DRFValidationError
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from portal.api.params import query_datetime, query_float, query_int

    def req(qs: str) -> Request:
        return Request(APIRequestFactory().get("/x?" + qs))

    assert query_int(req("n=5"), "n", minimum=1, maximum=10) == 5
    assert query_int(req(""), "n", default=3) == 3
    assert query_float(req("x=0.5"), "x") == 0.5
    assert query_datetime(req("t=2025-01-31T12:00:00"), "t").isoformat() == "2025-01-31T12:00:00+00:00"
    for call in (lambda: query_int(req("n=null"), "n"), lambda: query_int(req("n=50"), "n", maximum=10),
                 lambda: query_int(req("n=1&n=2"), "n"), lambda: query_float(req("x=nan"), "x"),
                 lambda: query_datetime(req("t=yesterday"), "t")):
        with pytest.raises(DRFValidationError) as caught:
            call()
        assert set(caught.value.detail) <= {"n", "x", "t"}


def test_schema_generates_without_warnings():
    # Enum and component names stay unique as apps add endpoints (portal.api.schema)
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_viewer_write_refusal_says_why(client_for):
    response = client_for("viewer").post("/api/v1/reviews/1/decide", {"decision": "approve"}, format="json")
    assert response.status_code == 403
    assert response.json() == {"error": "Your role (viewer) has read-only access.", "detail": "permission_denied"}


@pytest.mark.parametrize(
    "value, ok",
    [("0290-02-17T21:26:23-22:58", True), ("2025-01-31T12:00:00+15:59", True), ("0001-01-01T00:30:00+05:00", False)],
)
def test_time_filters_take_any_offset_python_accepts(client_for, value, ok):
    # PostgreSQL refuses offsets beyond ±15:59; the filter hands it UTC instead
    response = client_for("viewer").get("/api/v1/activity", {"since": value})
    assert response.status_code == (200 if ok else 400)
    if not ok:
        assert list(response.json()["detail"]) == ["since"] and "outside the supported time range" in str(
            response.json()["detail"])


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/", "/api/redoc/"])
def test_the_schema_and_its_viewers_need_a_login(api_client, client_for, url):
    # Given nobody signed in, when they ask for the API description, then they are refused
    assert api_client.get(url).status_code in (401, 403)
    # and a signed-in viewer gets it
    assert client_for("viewer").get(url).status_code == 200
