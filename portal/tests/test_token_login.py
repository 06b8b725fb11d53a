"""`POST /api/v1/auth/token` with a username and password, as the README says: a token usable with
`Authorization: Token …`; bad credentials a JSON 401; the portal's login lockout a JSON 429; an
inactive account or one without a role refused."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from portal.models import ActivityLogEntry, ApiToken

pytestmark = pytest.mark.django_db
URL = "/api/v1/auth/token"


def _login(username: str, password: str, client: APIClient | None = None):
    return (client or APIClient()).post(URL, {"username": username, "password": password}, format="json")


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"}
    return body


def test_good_credentials_answer_a_token_usable_with_the_token_header(users):
    # Given a viewer with a password, when a script posts them
    viewer = users["viewer"]
    response = _login(viewer.username, viewer.raw_password)
    # Then it gets a token, shown once and stored only hashed
    assert response.status_code == 201
    key = response.json()["token"]
    stored = ApiToken.objects.get(user=viewer)
    assert key not in (stored.digest, stored.prefix) and key.startswith(stored.prefix)
    me = APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/me")
    assert me.status_code == 200 and me.json()["username"] == viewer.username
    entry = ActivityLogEntry.objects.filter(action="api_token.created").latest("seq")
    assert entry.data["via"] == "password" and entry.actor == viewer


def test_a_second_login_rotates_the_token(users):
    operator = users["operator"]
    first = _login(operator.username, operator.raw_password).json()["token"]
    second = _login(operator.username, operator.raw_password).json()["token"]
    assert first != second
    assert APIClient(HTTP_AUTHORIZATION=f"Token {first}").get("/api/v1/me").status_code == 401
    assert APIClient(HTTP_AUTHORIZATION=f"Token {second}").get("/api/v1/me").status_code == 200


@pytest.mark.parametrize("username, password", [("viewer_user", "wrong-password"), ("nobody-at-all", "whatever")])
def test_bad_credentials_are_a_json_401_and_no_token(users, username, password):
    response = _login(username, password)
    assert response["WWW-Authenticate"] == "Token"
    body = _error(response, 401)
    assert body == {"error": "Invalid username or password.", "detail": "authentication_failed"}
    assert not ApiToken.objects.exists()


def test_no_credentials_and_no_session_is_a_json_401(db):
    response = APIClient().post(URL, {}, format="json")
    body = _error(response, 401)
    assert "username and password" in body["error"] and response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("body, missing", [({"username": "x"}, "password"), ({"password": "x"}, "username")])
def test_half_the_credentials_is_a_400_naming_the_missing_field(db, body, missing):
    assert list(_error(APIClient().post(URL, body, format="json"), 400)["detail"]) == [missing]


def test_an_inactive_user_is_refused_like_a_wrong_password(users):
    reviewer = users["reviewer"]
    reviewer.is_active = False
    reviewer.save()
    assert _error(_login(reviewer.username, reviewer.raw_password), 401)["detail"] == "authentication_failed"
    assert not ApiToken.objects.exists()


def test_an_account_without_a_role_is_refused(users):
    from conftest import make_user

    roleless = make_user("viewer", username="leaver")
    roleless.groups.clear()
    body = _error(_login("leaver", roleless.raw_password), 403)
    assert "role" in body["error"] and body["detail"]["work"] == "token.own"
    assert not ApiToken.objects.exists()


def test_the_login_lockout_applies_and_answers_json_429(users, settings):
    # Given django-axes on, with a limit of 3 failures
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    operator = users["operator"]
    # When a wrong password is tried three times (the third failure locks)
    for _ in range(2):
        _error(_login(operator.username, "wrong-password"), 401)
    _error(_login(operator.username, "wrong-password"), 429)
    # Then even the right password is refused, in the API's shape with a Retry-After
    locked = _login(operator.username, operator.raw_password)
    body = _error(locked, 429)
    assert body["detail"] == "locked_out" and "locked" in body["error"]
    assert int(locked["Retry-After"]) > 0
    assert not ApiToken.objects.exists()
    # And the portal's login page is locked for that user too (one lockout for both doors)
    from django.test import Client

    page = Client().post("/portal/login/", {"username": operator.username, "password": operator.raw_password})
    assert page.status_code == 429 and 'data-testid="locked-out"' in page.content.decode()
    # While another user from the same client still gets a token
    viewer = users["viewer"]
    assert _login(viewer.username, viewer.raw_password).status_code == 201


def test_a_success_clears_the_failures(users, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    operator = users["operator"]
    for _ in range(2):
        _login(operator.username, "wrong-password")
    assert _login(operator.username, operator.raw_password).status_code == 201
    for _ in range(2):
        _login(operator.username, "wrong-password")
    assert _login(operator.username, operator.raw_password).status_code == 201  # 2 + 2 failures, not 4


def test_a_signed_in_session_still_creates_its_own_token_without_a_body(users):
    session = APIClient()
    session.force_login(users["data_scientist"])
    response = session.post(URL)
    assert response.status_code == 201
    assert ApiToken.objects.get().user == users["data_scientist"]


def test_revoking_still_needs_a_signed_in_user(db):
    assert _error(APIClient().delete(URL), 401)["detail"] == "not_authenticated"
