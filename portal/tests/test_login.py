"""Login and logout through the portal, and the lockout after repeated failures (django-axes)."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/portal/login/"


def _login(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/portal/"})


@pytest.mark.parametrize("role", ["viewer", "data_scientist", "operator", "reviewer", "admin"])
def test_each_role_logs_in_and_out(users, role):
    client = Client()
    response = _login(client, users[role].username, users[role].raw_password)
    assert response.status_code == 302 and response["Location"] == "/portal/"
    assert client.get("/portal/").status_code == 200
    assert client.post("/portal/logout/").status_code in (200, 302)
    assert client.get("/portal/").status_code == 302  # back to the login page


def test_wrong_password_is_refused_with_a_message(users):
    response = _login(Client(), users["viewer"].username, "not-the-password")
    assert response.status_code == 200
    assert "Please enter the correct username and password" in response.content.decode()


def test_lockout_after_repeated_failures(users, settings):
    # Given django-axes on, with a limit of 3 failures
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    user = users["operator"]
    # When the wrong password is tried three times
    for _ in range(3):
        _login(client, user.username, "wrong-password")
    # Then even the right password is refused, with the lockout page
    locked = _login(client, user.username, user.raw_password)
    assert locked.status_code == 429
    assert 'data-testid="locked-out"' in locked.content.decode()
    assert client.get("/portal/").status_code == 302
    # And another user from the same client is not locked out (the lock is per user and client)
    other = users["viewer"]
    assert _login(Client(), other.username, other.raw_password).status_code == 302


def test_lockout_is_cleared_by_an_admin_command(users, settings):
    from django.core.management import call_command

    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 2
    user = users["reviewer"]
    for _ in range(2):
        _login(Client(), user.username, "wrong-password")
    assert _login(Client(), user.username, user.raw_password).status_code == 429
    call_command("axes_reset_username", user.username)
    assert _login(Client(), user.username, user.raw_password).status_code == 302
